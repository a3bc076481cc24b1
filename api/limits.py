"""The request body limit: a pure ASGI middleware in front of everything else.

A body larger than the limit is refused with ``413`` before any of it is parsed, whether it
announces its length (``Content-Length`` over the limit: refused before a byte is read) or
streams without one (``Transfer-Encoding: chunked``: refused as soon as the bytes read pass
the limit). A request carrying a body without a valid key is refused with ``401`` before the
body is read, so a client without a key can make the service neither read nor parse
anything. Every route that takes a body needs a key (``tests/api/test_limits.py`` checks
it).

The limit is :attr:`api.settings.Settings.max_body_bytes` (``TWIN_MAX_BODY_BYTES``, 1 MiB)
for every route but the uploads of :data:`UPLOAD_ROUTES`, whose limit is
:attr:`~api.settings.Settings.max_upload_bytes` (``TWIN_MAX_UPLOAD_BYTES``, 64 MiB): a
layer of up to a million values, a ``CreateObservations`` batch.

Bodies within the limit are read here and handed on whole; the application reads them as
before.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body
from api.keys import UnknownKeyError
from api.settings import Settings
from cim.errors import StoreError

#: ``(method, path pattern)`` of the routes that take large bodies (the upload limit).
UPLOAD_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("PUT", re.compile(r"^/sites/[^/]+/layers/[^/]+$")),
    ("POST", re.compile(r"^/sta/v1\.1/CreateObservations$")),
)


def _key(headers: Headers) -> str | None:
    """The API key a request sends (``X-API-Key`` or ``Authorization: Bearer``)."""
    key = headers.get("x-api-key")
    if key:
        return key
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


class BodyLimitMiddleware:
    """Refuses bodies over the limit (413) and bodies sent without a valid key (401) before
    reading them.

    Parameters
    ----------
    app : the application it wraps
    settings : where the limits come from
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def limit_of(self, method: str, path: str) -> tuple[int, str]:
        """The body limit of a request, bytes, and the environment variable setting it."""
        if any(method == m and pattern.match(path) for m, pattern in UPLOAD_ROUTES):
            return self.settings.max_upload_bytes, "TWIN_MAX_UPLOAD_BYTES"
        return self.settings.max_body_bytes, "TWIN_MAX_BODY_BYTES"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit, name = self.limit_of(scope["method"], scope["path"])
        length_text = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if length_text is None and not chunked:
            # no body announced: pass on, still never reading more than the limit
            await self.app(scope, _guarded(receive, limit, name), send)
            return
        length = None
        if length_text is not None:
            if not length_text.strip().isdigit():
                await _answer(scope, receive, send, 400, "Content-Length must be a number")
                return
            length = int(length_text)
            if length > limit:
                await _too_large(scope, receive, send, limit, name)
                return
            if length == 0 and not chunked:
                await self.app(scope, receive, send)
                return
        refused = await self._refuse_without_key(scope, headers)
        if refused is not None:
            await refused(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
            if len(body) > limit:
                await _too_large(scope, receive, send, limit, name)
                return
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _refuse_without_key(self, scope: Scope, headers: Headers) -> JSONResponse | None:
        """The ``401`` (or ``503``) answer to a body without a valid key, or ``None``."""
        state = getattr(scope["app"].state, "twin", None) if "app" in scope else None
        if state is None:  # not started: the application answers for itself
            return None
        key = _key(headers)
        if key is None:
            return _unauthenticated(
                "an API key is required: send X-API-Key or Authorization: Bearer"
            )
        try:
            await run_in_threadpool(state.keys.authenticate, key)
        except UnknownKeyError:
            return _unauthenticated("unknown API key")
        except StoreError as exc:
            return JSONResponse(error_body("StoreError", str(exc)), status_code=503)
        return None


def _unauthenticated(message: str) -> JSONResponse:
    return JSONResponse(
        error_body("AuthenticationError", message),
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="city-twin"', "Connection": "close"},
    )


async def _answer(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    response = JSONResponse(
        error_body("RequestError", message), status_code=status, headers={"Connection": "close"}
    )
    await response(scope, receive, send)


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int, name: str) -> None:
    response = JSONResponse(
        error_body(
            "LimitError",
            f"the request body is larger than {limit} bytes (limit {name}={limit})",
            limit=name,
            value=limit,
        ),
        status_code=413,
        headers={"Connection": "close"},
    )
    await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands over ``body`` whole, then waits for the disconnect."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _guarded(receive: Receive, limit: int, name: str) -> Receive:
    """A ``receive`` that raises ``413`` once more than ``limit`` bytes came."""
    seen = 0

    async def guarded() -> Message:
        nonlocal seen
        message: dict[str, Any] = dict(await receive())
        seen += len(message.get("body", b""))
        if seen > limit:
            raise HTTPException(
                413, f"the request body is larger than {limit} bytes (limit {name}={limit})"
            )
        return message

    return guarded
