"""``/sites/{site}/layers``: a value per object for the viewer to colour by, pushed live.

``PUT`` a layer (planner, admin) and every subscriber of ``/sites/{site}/layers/live`` gets
it within the same event-loop turn. The WebSocket authenticates with its first message,
``{"key": "<API key>"}`` (browsers cannot set headers on a WebSocket, and a key in the URL
would land in access logs); it is closed with code 4401 (no or unknown key), 4403 (a role
that may not read) or 4404 (no such site, or nothing of it in a pilot's scope).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Path, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field

from api.auth import Reader, Writer, first_message_principal
from api.layers import Layer, check_values, public_layer
from api.routes.sites import scoped_view
from api.state import State, get_state
from cim.errors import NotFoundError

router = APIRouter(prefix="/sites/{site}/layers", tags=["layers"])

LayerName = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]

#: Seconds a new WebSocket has to send its key.


class LayerIn(BaseModel):
    """A layer to put: object code -> value."""

    values: dict[str, float] = Field(max_length=1_000_000)
    legend: str = Field(default="", max_length=200)
    unit: str = Field(default="", max_length=32)


@router.get("")
def list_layers(site: str, state: State, principal: Reader) -> list[dict[str, Any]]:
    """The site's layers without their values (name, legend, unit, count, range); a pilot
    gets the layers holding a value of its units only."""
    scoped_view(state, principal, site)
    out = []
    for layer in state.layers.of_site(site):
        public = public_layer(layer, principal)
        if principal.scoped and not public["values"]:
            continue
        del public["values"]
        out.append(public)
    return out


@router.get("/{name}")
def read_layer(site: str, name: LayerName, state: State, principal: Reader) -> dict[str, Any]:
    """One layer with its values (a pilot: only the values of objects in its scope).

    Raises
    ------
    NotFoundError
        If there is no such site or layer.
    """
    scoped_view(state, principal, site)
    return public_layer(state.layers.get(site, name), principal)


@router.put("/{name}")
def put_layer(
    site: str, name: LayerName, body: LayerIn, state: State, principal: Writer
) -> dict[str, Any]:
    """Create or replace a layer and push it to live subscribers.

    Raises
    ------
    NotFoundError
        If there is no such site.
    LayerError
        If a value is not finite or a code is not an object of the site (400).
    """
    view = state.views.view(site)
    check_values(body.values, set(view.by_code), site)
    layer = state.layers.put(Layer(site, name, dict(body.values), body.legend, body.unit))
    public = public_layer(layer, principal)
    del public["values"]
    return public


@router.delete("/{name}", status_code=204)
def delete_layer(site: str, name: LayerName, state: State, principal: Writer) -> None:
    """Remove a layer.

    Raises
    ------
    NotFoundError
        If there is no such site or layer.
    """
    state.layers.delete(site, name)


@router.websocket("/live")
async def live_layers(websocket: WebSocket, site: str) -> None:
    """The site's layers now, then every change: ``{"type": "layer", "layer": {...}}`` or
    ``{"type": "deleted", "site", "name"}``."""
    state = get_state(websocket)
    await websocket.accept()
    principal = await first_message_principal(websocket, state)
    if principal is None:
        return
    try:
        await asyncio.to_thread(scoped_view, state, principal, site)
    except NotFoundError:
        await websocket.close(4404, f"no site named {site!r}")
        return
    queue = state.layers.subscribe(site, principal)
    await websocket.send_json({"type": "ready", "site": site, "role": principal.role.value})
    closed = asyncio.ensure_future(_until_closed(websocket))
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
            if closed in done:
                getter.cancel()
                break
            await websocket.send_json(getter.result())
    except WebSocketDisconnect:
        pass
    finally:
        state.layers.unsubscribe(queue)
        closed.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await closed


async def _until_closed(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()
