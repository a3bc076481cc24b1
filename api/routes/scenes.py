"""Scenes out: GLB of a site, subtree or object; the site's 3D Tiles; PNG snapshots.

GLBs are built in the worker thread pool and kept on disk per site version and root, so a
wall of displays asking for the same building costs one export; the kept files are bounded
in bytes (:mod:`api.scene_cache`) and exploded gaps rounded to a few values. Tilesets are built as a
job: the first ``GET .../tiles/tileset.json`` answers ``202`` with the job (poll
``/jobs/{id}``; the viewer shows its progress), later ones serve the files. A re-import
changes the site version and with it every cached scene.

A pilot sees scenes of its units only: ``scene.glb`` of an object in its scope (its unit
when it has one), never the site tileset (403: it would show every other building).
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.auth import Reader
from api.errors import QueryError, responses
from api.keys import Principal
from api.routes.sites import scoped_view
from api.state import State, TwinState
from cim.errors import NotFoundError
from render.explode import explode_storeys
from render.gltf import export_glb

router = APIRouter(prefix="/sites/{site}", tags=["scenes"])

GLB = "model/gltf-binary"

#: Widest gap between exploded storeys, m.
MAX_EXPLODE_M = 20.0
#: Exploded gaps are rounded to this step, m.
EXPLODE_STEP_M = 0.5

#: Scene codes are digits and letters (terrain codes carry a ``T``).
CodeParam = Annotated[str | None, Query(pattern=r"^[0-9A-Za-z]{1,40}$")]


def scene_root(state: TwinState, principal: Principal, site: str, root: str | None) -> str | None:
    """The root a principal may export: any for a reader of the whole site; for a pilot an
    object in its scope, defaulting to its one unit.

    Raises
    ------
    NotFoundError
        If the site or root does not exist, or lies outside a pilot's scope.
    QueryError
        If a pilot with several units gives no root.
    """
    view = scoped_view(state, principal, site)
    if root is None and principal.scoped:
        units = principal.in_site(site)
        if len(units) != 1:
            raise QueryError("root", "a pilot with several units must name the one to export")
        root = units[0]
    if root is not None and root not in view.by_code:
        raise NotFoundError(f"site {site!r} has no object {root!r}")
    return root


def quantise_explode(gap_m: float) -> float:
    """``gap_m`` to the nearest :data:`EXPLODE_STEP_M` (so at most
    ``MAX_EXPLODE_M / EXPLODE_STEP_M`` exploded views of one root are ever built)."""
    return round(min(max(gap_m, 0.0), MAX_EXPLODE_M) / EXPLODE_STEP_M) * EXPLODE_STEP_M


def glb_response(state: TwinState, site: str, root: str | None, explode_m: float = 0.0) -> Response:
    """The GLB of ``root`` (the site when ``None``), from the cache when built; storeys
    ``explode_m`` apart when given."""
    info = state.store.site(site)
    name = f"{root or 'site'}.glb"
    path = state.settings.cache_path / "glb" / site / f"v{info.version}" / name
    data = state.scenes.get(path, lambda: export_glb(state.store, site, root))
    explode_m = quantise_explode(explode_m)
    if explode_m > 0:
        plain = data
        name = f"{root or 'site'}-exploded-{explode_m:g}.glb"
        data = state.scenes.get(path.with_name(name), lambda: explode_storeys(plain, explode_m))
    tag = hashlib.blake2b(f"{site}/{info.version}/{name}".encode(), digest_size=12).hexdigest()
    return Response(
        data,
        media_type=GLB,
        headers={
            "ETag": f'"{tag}"',
            "Content-Disposition": f'inline; filename="{site}-{name}"',
            "Cache-Control": "no-cache",
        },
    )


@router.get(
    "/scene.glb",
    response_class=Response,
    responses={200: {"content": {GLB: {}}}, **responses(400)},
)
def site_scene(site: str, state: State, principal: Reader, root: CodeParam = None) -> Response:
    """Binary glTF of the site, or of the subtree under ``root``: nodes mirror the
    containment tree, each with its code, kind, name and attributes in ``extras``; y-up
    around the site's ENU origin, recorded in the asset's ``extras``.

    Raises
    ------
    NotFoundError
        If the site or root does not exist (or is outside a pilot's scope).
    """
    return glb_response(state, site, scene_root(state, principal, site, root))


@router.get(
    "/objects/{code}/scene.glb",
    response_class=Response,
    responses={200: {"content": {GLB: {}}}, **responses(400)},
)
def object_scene(
    site: str,
    code: str,
    state: State,
    principal: Reader,
    explode: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_EXPLODE_M,
            description=f"storeys this many m apart (rounded to {EXPLODE_STEP_M:g} m)",
        ),
    ] = 0,
) -> Response:
    """Binary glTF of one object and everything under it; ``explode`` lifts a building's
    storeys apart (an exploded view), rounded to :data:`EXPLODE_STEP_M`.

    Raises
    ------
    NotFoundError
        If there is no such object (or it is outside a pilot's scope).
    """
    return glb_response(state, site, scene_root(state, principal, site, code), explode)
