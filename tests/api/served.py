"""The API suite against the real multi-process server (``make test-served``).

With ``TWIN_TEST_SERVE_WORKERS=N`` in the environment, the ``twin`` fixture serves the Den
Haag store with ``twin serve --workers N`` in its own process group and the tests talk to it
over HTTP and WebSocket, as the wall and the planners do; every request may land on any of
the N workers. A test that looks inside the application (its state, its settings object, an
application it builds itself) is marked ``inprocess`` and runs in the in-process suite only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from denhaag_twin import TestClient
from server_process import serving
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from api.app import create_app
from api.settings import Settings

__all__ = ["Client", "ServedClient", "app_client", "serve_workers"]

#: what a test talks to: the in-process test client or a client of the real server
Client = httpx.Client


def serve_workers() -> int:
    """The worker count of the served mode; 0 when the suite runs in process."""
    return int(os.environ.get("TWIN_TEST_SERVE_WORKERS", "0") or 0)


class ServedSocket:
    """A WebSocket to the real server with the test client's ``send_json`` /
    ``receive_json``; a close from the server raises ``WebSocketDisconnect`` with its code."""

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection

    def send_json(self, data: Any) -> None:
        self._connection.send(json.dumps(data))

    def receive_json(self, timeout: float = 30.0) -> Any:
        try:
            message = self._connection.recv(timeout=timeout)
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else 1006
            raise WebSocketDisconnect(code) from closed
        return json.loads(message)

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> ServedSocket:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


class ServedClient(httpx.Client):
    """An HTTP client of the real server that also opens its WebSockets."""

    def __init__(self, url: str) -> None:
        super().__init__(base_url=url, timeout=60)
        self.url = url

    @contextmanager
    def websocket_connect(self, path: str) -> Iterator[ServedSocket]:
        ws_url = "ws" + self.url.removeprefix("http") + path
        with connect(ws_url, open_timeout=30) as connection:
            yield ServedSocket(connection)

    def openapi(self) -> dict[str, Any]:
        """The served OpenAPI document."""
        document: dict[str, Any] = self.get("/openapi.json").json()
        return document


@contextmanager
def app_client(settings: Settings) -> Iterator[httpx.Client]:
    """A client of the application over ``settings``' store: in process, or in served mode
    the real ``twin serve --workers N`` over that store. Keys must be in the store (or in
    its key file before this starts): every worker reads them there."""
    workers = serve_workers()
    if not workers:
        with TestClient(create_app(settings)) as client:
            yield client
        return
    with (
        serving(Path(settings.store_url), settings.cache_path, workers) as server,
        ServedClient(server.url) as client,
    ):
        yield client
