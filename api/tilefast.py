"""The tile fast path: cached tile files sent without the framework's per-request work.

Tiles are most of the traffic of a wall of displays, and each is an immutable file of a
built tileset. This ASGI middleware answers a ``GET /sites/{site}/tiles/{path}`` itself when
everything is in order — a key of a role that may read the whole site, a built tileset, a
file inside it — from :class:`api.tilecache.TileCache`, with ETag/304 and gzip. Anything
else (no key, a pilot, an unknown site, a missing file, a tileset still to build) falls
through to the routes in :mod:`api.routes.tiles`, which give the proper answer and error
envelope; so the fast path can only ever serve what the routes would serve.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.etag import matches
from api.keys import READ_ROLES, UnknownKeyError

_TILE = re.compile(r"^/sites/([^/]+)/tiles/(.+)$")
MEDIA = {".json": b"application/json", ".glb": b"model/gltf-binary"}


class TileFastPath:
    """Serves cached tiles directly; everything else goes on to ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match = _TILE.match(scope["path"])
            if match is not None and await self._serve(scope, send, *match.groups()):
                return
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, send: Send, site: str, relative: str) -> bool:
        # imported here: the routes module imports the application's state
        from api.routes.tiles import cached_tile

        state: Any = getattr(scope["app"].state, "twin", None)
        if state is None:
            return False
        headers = Headers(scope=scope)
        key = headers.get("x-api-key")
        if not key:
            auth = headers.get("authorization", "")
            key = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not key:
            return False
        try:
            principal = state.keys.authenticate(key)
        except UnknownKeyError:
            return False
        if principal.role not in READ_ROLES or principal.scoped:
            return False
        entry = cached_tile(state, site, relative)
        if entry is None:
            return False
        suffix = relative[relative.rfind(".") :]
        out = [
            (b"etag", entry.etag.encode()),
            (b"cache-control", b"no-cache"),
            (b"vary", b"Accept-Encoding"),
        ]
        if matches(headers.get("if-none-match", ""), entry.etag):
            await send({"type": "http.response.start", "status": 304, "headers": out})
            await send({"type": "http.response.body", "body": b""})
            return True
        body = entry.data
        if "gzip" in headers.get("accept-encoding", "") and len(body) > 1024:
            body = state.tiles.note_gzip(entry)
            out.append((b"content-encoding", b"gzip"))
        out.append((b"content-type", MEDIA.get(suffix, b"application/octet-stream")))
        out.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send({"type": "http.response.body", "body": body})
        return True
