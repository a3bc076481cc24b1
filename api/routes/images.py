"""``/sites/{site}/image.png``: a headless snapshot of a site, cell or building.

Optionally coloured by a value layer (``layer=NAME``, see ``/sites/{site}/layers``) with its
legend. Rendering is off-screen and one at a time (VTK's render windows are not meant to be
driven from several threads at once); a pilot gets snapshots of objects in its scope only
(its unit by default).
"""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.auth import Reader
from api.layers import public_layer
from api.routes.scenes import CodeParam, scene_root
from api.state import State
from render.images import render_png

router = APIRouter(prefix="/sites/{site}", tags=["scenes"])

_RENDER_LOCK = threading.Lock()

LayerParam = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


@router.get("/image.png", response_class=Response, responses={200: {"content": {"image/png": {}}}})
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
    """
    root = scene_root(state, principal, site, code)
    values, legend = None, None
    if layer is not None:
        found = public_layer(state.layers.get(site, layer), principal)
        values = found["values"]
        legend = f"{found['name']}" + (f" ({found['unit']})" if found["unit"] else "")
    with _RENDER_LOCK:
        data = render_png(
            state.store, site, root, values=values, legend=legend, size=(width, height)
        )
    return Response(data, media_type="image/png", headers={"Cache-Control": "no-cache"})
