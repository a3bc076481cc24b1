"""``/``: the wall-display viewer, and the ES modules it imports.

The page, its script and the vendored three.js / 3d-tiles-renderer modules hold no city data
and are served without a key, like a login page; every request the page makes for data
(sites, tiles, objects, layers) carries the key the operator entered. Only these fixed
directories are served (Starlette's ``StaticFiles`` refuses paths leaving them).
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

logger = logging.getLogger(__name__)

VIEWER_DIR = Path(__file__).resolve().parents[1] / "viewer"

#: npm packages the viewer imports, served under ``/vendor/<package>/``.
VENDORED = ("three", "3d-tiles-renderer")


def mount_viewer(app: FastAPI, node_modules: Path) -> None:
    """Serve the viewer at ``/`` and its modules from ``node_modules`` (``make install``
    puts them there); a missing package is logged, and the page says what failed."""

    @app.get("/", include_in_schema=False)
    def viewer_page() -> FileResponse:
        return FileResponse(VIEWER_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/viewer", StaticFiles(directory=VIEWER_DIR), name="viewer")
    for package in VENDORED:
        directory = node_modules / package
        if not directory.is_dir():
            logger.warning("viewer: %s is missing (run `make install`)", directory)
            continue
        app.mount(f"/vendor/{package}", StaticFiles(directory=directory), name=f"vendor-{package}")
