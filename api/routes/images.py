"""``/sites/{site}/image.png``: a headless snapshot of a site, cell or building.

Optionally coloured by a value layer (``layer=NAME``, see ``/sites/{site}/layers``) with its
legend. Rendering is off-screen and one at a time, rationed by :mod:`api.render_gate` (a few
in progress per key, a short queue; 429 with ``Retry-After`` beyond); a pilot gets snapshots
of objects in its scope only (its unit by default).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.auth import Reader
from api.errors import responses
from api.layers import public_layer
from api.routes.scenes import CodeParam, scene_root
from api.state import State
from render.images import render_png

router = APIRouter(prefix="/sites/{site}", tags=["scenes"])

LayerParam = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


@router.get(
    "/image.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **responses(400, 429)},
)
def site_image(
    site: str,
    state: State,
    principal: Reader,
    code: CodeParam = None,
    layer: LayerParam = None,
    width: Annotated[int, Query(ge=64, le=3840)] = 1280,
    height: Annotated[int, Query(ge=64, le=2160)] = 720,
) -> Response:
    """PNG of the site (or of ``code`` and what is under it), coloured by ``layer`` when
    given, with a legend.

    Raises
    ------
    NotFoundError
        If the site, object or layer does not exist (or is outside a pilot's scope).
    BusyError
        If the key has its renders in progress, or the renderer's queue is full (429).
    """
    root = scene_root(state, principal, site, code)
    values, legend = None, None
    if layer is not None:
        found = public_layer(state.layers.get(site, layer), principal)
        values = found["values"]
        legend = f"{found['name']}" + (f" ({found['unit']})" if found["unit"] else "")
    with state.renders.admit(principal.key_id):
        data = render_png(
            state.store, site, root, values=values, legend=legend, size=(width, height)
        )
    return Response(data, media_type="image/png", headers={"Cache-Control": "no-cache"})
