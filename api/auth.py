"""Who is calling, and may they: the authentication dependencies.

A key is sent as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``. A missing or
unknown key is 401; a role that may not do something is 403; a pilot asking for something
outside its scope gets 404, exactly as if it did not exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, WebSocket
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.errors import AuthenticationError, PermissionDeniedError
from api.keys import READ_ROLES, KeyStore, Principal, Role, UnknownKeyError
from api.settings import Settings
from api.state import State, TwinState

_api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key made with `twin keys create`.",
)
_bearer = HTTPBearer(
    auto_error=False, scheme_name="Bearer", description="The same API key as a bearer token."
)


def create_key(settings: Settings, role: str, scopes: Iterable[str] = (), name: str = "") -> str:
    """Make a key in the key file of ``settings`` (``settings.keys_path``); returns the
    plaintext, shown once and never stored.

    Raises
    ------
    ValueError
        If the role or scopes are invalid.
    """
    return KeyStore(settings.keys_path).create_key(role, scopes, name)


def request_principal(
    state: State,
    api_key: Annotated[str | None, Depends(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The principal behind the request's key.

    Raises
    ------
    AuthenticationError
        If no key is sent, or the key is not known.
    """
    key = api_key or (bearer.credentials if bearer is not None else None)
    if not key:
        raise AuthenticationError("an API key is required: send X-API-Key or Authorization: Bearer")
    try:
        return state.keys.authenticate(key)
    except UnknownKeyError:
        raise AuthenticationError("unknown API key") from None


CurrentPrincipal = Annotated[Principal, Depends(request_principal)]


def require_reader(principal: CurrentPrincipal) -> Principal:
    """The principal, if its role may read the CIM.

    Raises
    ------
    PermissionDeniedError
        If the role may not read (a device key).
    """
    if principal.role not in READ_ROLES:
        raise PermissionDeniedError(f"a {principal.role.value} key may not read the CIM")
    return principal


Reader = Annotated[Principal, Depends(require_reader)]


#: Roles that may change the twin or start work (drills, tilesets, layers).
WRITE_ROLES: frozenset[Role] = frozenset({Role.ADMIN, Role.PLANNER})


def require_writer(principal: CurrentPrincipal) -> Principal:
    """The principal, if its role may change things or start work.

    Raises
    ------
    PermissionDeniedError
        If the role is read-only (display, pilot) or ingest-only (device).
    """
    if principal.role not in WRITE_ROLES:
        raise PermissionDeniedError(f"a {principal.role.value} key may not change anything here")
    return principal


Writer = Annotated[Principal, Depends(require_writer)]


#: Seconds a WebSocket client has to send its key as its first message.
AUTH_TIMEOUT_S = 5.0


async def first_message_principal(websocket: WebSocket, state: TwinState) -> Principal | None:
    """Authenticate an accepted WebSocket by its first message ``{"key": ...}`` (keys in
    messages stay out of URLs and access logs); a reader's principal, or ``None`` after
    closing the socket with 4401 (no or unknown key) or 4403 (a role that may not read)."""
    try:
        hello = await asyncio.wait_for(websocket.receive_json(), AUTH_TIMEOUT_S)
    except (TimeoutError, ValueError, KeyError):
        hello = None
    key = hello.get("key") if isinstance(hello, dict) else None
    if not isinstance(key, str) or not key:
        await websocket.close(4401, 'send {"key": ...} first')
        return None
    try:
        principal = state.keys.authenticate(key)
    except UnknownKeyError:
        await websocket.close(4401, "unknown API key")
        return None
    if principal.role not in READ_ROLES:
        await websocket.close(4403, f"a {principal.role.value} key may not read")
        return None
    return principal
