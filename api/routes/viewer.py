"""``/``: the wall-display viewer, the ES modules it imports and the font it draws with.

The page, its script, the vendored three.js / 3d-tiles-renderer modules, the Swagger UI and
ReDoc programs of ``/docs`` and ``/redoc`` and the CJK font hold no city data
and are served without a key, like a login page; every request the page makes for data
(sites, tiles, objects, layers) carries the key the operator entered. Only these fixed
directories are served (Starlette's ``StaticFiles`` refuses paths leaving them).

The font is Noto Sans SC (SIL Open Font License 1.1) from ``@fontsource/noto-sans-sc``: of
its 1,800 files only the simplified-Chinese subset at weights 400 and 700 is served (about
1.2 MB each; the subset holds the Latin letters and digits too), so a wall shows Chinese
without a system CJK font (ADR 0021).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from cim.errors import NotFoundError

logger = logging.getLogger(__name__)

VIEWER_DIR = Path(__file__).resolve().parents[1] / "viewer"

#: npm packages the pages load, served under ``/vendor/<package>/``.
VENDORED = ("three", "3d-tiles-renderer", "swagger-ui-dist", "redoc")

FONT_PACKAGE = Path("@fontsource") / "noto-sans-sc"
#: ``/fonts/<name>`` -> the file of :data:`FONT_PACKAGE` it serves.
FONTS = {
    "noto-sans-sc-400.woff2": "files/noto-sans-sc-chinese-simplified-400-normal.woff2",
    "noto-sans-sc-700.woff2": "files/noto-sans-sc-chinese-simplified-700-normal.woff2",
    "noto-sans-sc-LICENSE.txt": "LICENSE",
}


class _Revalidated(StaticFiles):
    """Static files a browser asks about again on each load (a 304 when unchanged): the
    viewer's modules import each other, and one stale module among new ones breaks it."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def mount_viewer(app: FastAPI, node_modules: Path) -> None:
    """Serve the viewer at ``/`` and its modules from ``node_modules`` (``make install``
    puts them there); a missing package is logged, and the page says what failed."""

    @app.get("/", include_in_schema=False)
    def viewer_page() -> FileResponse:
        return FileResponse(VIEWER_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/viewer", _Revalidated(directory=VIEWER_DIR), name="viewer")
    for package in VENDORED:
        directory = node_modules / package
        if not directory.is_dir():
            logger.warning("viewer: %s is missing (run `make install`)", directory)
            continue
        app.mount(f"/vendor/{package}", StaticFiles(directory=directory), name=f"vendor-{package}")
    mount_fonts(app, node_modules / FONT_PACKAGE)


def mount_fonts(app: FastAPI, package: Path) -> None:
    """Serve the files of :data:`FONTS` from the font package at ``package``; a missing
    package is logged (the page then falls back to the system's fonts)."""
    if not package.is_dir():
        logger.warning("viewer: %s is missing (run `make install`)", package)
    # a font never changes under its name: a day's caching spares the wall 2.4 MB a load
    cached = {"Cache-Control": "public, max-age=86400"}

    @app.get("/fonts/{name}", include_in_schema=False)
    def font_file(name: str) -> FileResponse:
        found = FONTS.get(name)
        path = package / found if found is not None else None
        if path is None or not path.is_file():
            raise NotFoundError(f"no font {name!r}")
        return FileResponse(path, headers=cached)
