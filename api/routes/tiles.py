"""``/sites/{site}/tiles``: the site's 3D Tiles 1.1, built once per site version as a job.

``GET tileset.json`` serves the tileset when built; otherwise it starts (or joins) the build
job and answers ``202`` with the job record and ``Location: /jobs/{id}``. ``POST`` starts the
build explicitly (planner, admin). Tile files are served from the cache directory through
:func:`render.tiles.resolve_tile`, which refuses any path that could leave it; their ETag is
the site version and path, so a re-import changes every tag.

Pilots get 403 here: a tileset shows every building of the site; their unit's scene is
``/sites/{site}/objects/{code}/scene.glb``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.auth import Reader, Writer
from api.errors import PermissionDeniedError
from api.etag import matches
from api.jobs import Job, Progress
from api.keys import Principal
from api.state import State, TwinState
from api.tilecache import CachedFile
from cim.errors import TwinError
from render.tiles import build_tileset, resolve_tile, tileset_dir, tileset_version

router = APIRouter(prefix="/sites/{site}/tiles", tags=["tiles"])

MEDIA = {".json": "application/json", ".glb": "model/gltf-binary"}


def _whole_site_reader(principal: Principal) -> None:
    if principal.scoped:
        raise PermissionDeniedError(
            "a pilot key sees its units only: use /sites/{site}/objects/{code}/scene.glb"
        )


def built_dir(state: TwinState, site: str) -> tuple[str, Path]:
    """The site's tileset version and directory (which may not exist yet).

    Raises
    ------
    NotFoundError
        If there is no such site.
    """

    def lookup() -> tuple[str, Path]:
        version = tileset_version(state.store, site)
        return version, tileset_dir(state.settings.cache_path / "tiles", site, version)

    return state.tiles.version(site, lookup)


def cached_tile(state: TwinState, site: str, relative: str) -> CachedFile | None:
    """The built tileset's file ``relative`` from the cache, or ``None`` when there is no
    such site, the tileset is not built, or the path is bad (the routes say which)."""
    try:
        version, root = built_dir(state, site)
        return state.tiles.file(site, version, relative, lambda: resolve_tile(root, relative))
    except (TwinError, OSError):
        return None


def start_build(state: TwinState, principal: Principal, site: str, version: str) -> Job:
    """The build job of this site version (joining one that runs)."""
    cache = state.settings.cache_path / "tiles"

    def work(progress: Progress) -> dict[str, Any]:
        path = build_tileset(state.store, site, cache, progress=progress)
        return {
            "site": site,
            "version": version,
            "tileset": f"/sites/{site}/tiles/tileset.json",
            "files": sum(1 for p in path.parent.rglob("*") if p.is_file()),
        }

    return state.jobs.submit(
        "tiles", principal.key_id, work, {"site": site}, dedupe=f"tiles:{site}:{version}"
    )


def _accepted(job: Job) -> JSONResponse:
    return JSONResponse(
        job.to_public(),
        status_code=202,
        headers={"Location": f"/jobs/{job.id}", "Retry-After": "1"},
    )


def _file(
    state: TwinState, request: Request, site: str, version: str, root: Path, relative: str
) -> Response:
    entry = state.tiles.file(site, version, relative, lambda: resolve_tile(root, relative))
    headers = {"ETag": entry.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if matches(request.headers.get("if-none-match", ""), entry.etag):
        return Response(status_code=304, headers=headers)
    media = MEDIA.get(PurePosixPath(relative).suffix, "application/octet-stream")
    if "gzip" in request.headers.get("accept-encoding", "") and len(entry.data) > 1024:
        body = state.tiles.note_gzip(entry)
        return Response(body, media_type=media, headers={**headers, "Content-Encoding": "gzip"})
    return Response(entry.data, media_type=media, headers=headers)


@router.get("/tileset.json", response_model=None, responses={202: {"description": "building"}})
def read_tileset(site: str, request: Request, state: State, principal: Reader) -> Response:
    """The tileset, or ``202`` with the build job while it is being built.

    Raises
    ------
    NotFoundError
        If there is no such site.
    PermissionDeniedError
        For a pilot key (403).
    """
    _whole_site_reader(principal)
    version, root = built_dir(state, site)
    if not (root / "tileset.json").is_file():
        return _accepted(start_build(state, principal, site, version))
    return _file(state, request, site, version, root, "tileset.json")


@router.post("", status_code=202, response_model=None)
def build_tiles(site: str, state: State, principal: Writer) -> Response:
    """Start building the site's tileset (or join the build that runs); ``202`` with the job.

    Raises
    ------
    NotFoundError
        If there is no such site.
    """
    version, _ = built_dir(state, site)
    return _accepted(start_build(state, principal, site, version))


@router.get("/{path:path}", response_model=None)
def read_tile(site: str, path: str, request: Request, state: State, principal: Reader) -> Response:
    """One file of the built tileset (``buildings/2/1/3.glb`` ...).

    Raises
    ------
    NotFoundError
        If there is no such site or file, or the path tries to leave the tileset.
    PermissionDeniedError
        For a pilot key (403).
    """
    _whole_site_reader(principal)
    version, root = built_dir(state, site)
    return _file(state, request, site, version, root, path)
