"""ETag and ``304 Not Modified`` for every successful ``GET``.

A pure ASGI middleware: it holds the body of a ``200`` answer to a ``GET`` or ``HEAD``,
tags it with a strong ETag (blake2b of the body, unless the route set its own ``ETag``) and
answers ``304`` with no body when the request's ``If-None-Match`` names that tag. It sits
inside the gzip middleware, so the tag is that of the representation before compression and
one tag serves compressed and plain clients alike. Streaming answers (the viewer's static
files are small; tiles are whole files) are buffered; WebSocket traffic passes untouched.
"""

from __future__ import annotations

import hashlib

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def entity_tag(body: bytes) -> str:
    """The strong ETag of a body."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def matches(if_none_match: str, tag: str) -> bool:
    """Whether an ``If-None-Match`` header value names ``tag`` (weak comparison, RFC 9110)."""
    if if_none_match.strip() == "*":
        return True
    wanted = tag.removeprefix("W/")
    return any(part.strip().removeprefix("W/") == wanted for part in if_none_match.split(","))


class ETagMiddleware:
    """Adds ETags to ``GET``/``HEAD`` answers and turns matching requests into ``304``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        if_none_match = Headers(scope=scope).get("if-none-match")
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if message["status"] != 200:
                    start = None
                    await send(message)
                    return
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            headers = MutableHeaders(raw=start["headers"])
            tag = headers.get("etag") or entity_tag(body)
            headers["ETag"] = tag
            if if_none_match is not None and matches(if_none_match, tag):
                del headers["content-length"]
                del headers["content-type"]
                await send({"type": "http.response.start", "status": 304, "headers": headers.raw})
                await send({"type": "http.response.body", "body": b""})
                return
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, buffered)
