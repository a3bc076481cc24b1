"""The request body limit against the real server (``twin serve``): a body over the limit is
refused before it is read, whether it announces its length or streams in chunks, and a body
sent without a valid key is refused before it is read."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from server_process import Server, new_key, serving

from api.limits import UPLOAD_ROUTES
from api.settings import MAX_BODY_BYTES, MAX_UPLOAD_BYTES, Settings

#: A body far beyond the limit, as the pilot sent (67 MB).
HUGE = 67_000_000


@dataclass(frozen=True)
class Served:
    server: Server
    admin: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("limits")
    store = folder / "t.db"
    admin = new_key(store, "admin", folder)
    with serving(store, folder / "cache", 1) as server:
        yield Served(server, admin)


def _connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def _head(path: str, headers: dict[str, str], method: str = "POST") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the one response on ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return int(status_line.split()[1]), headers, body


def test_a_declared_body_over_the_limit_is_refused_before_a_byte_is_sent(served: Served) -> None:
    # the pilot's 67 MB body without a key took 5.5 s and 430 MB before its 401: now the
    # headers alone are answered, and the body is never read
    for key in ({}, {"X-API-Key": served.admin}):
        with _connect(served.server) as sock:
            started = time.monotonic()
            sock.sendall(_head("/sta/v1.1/Things", {"Content-Length": str(HUGE), **key}))
            status, headers, body = _response(sock)
            elapsed = time.monotonic() - started
        assert status == 413, body
        assert elapsed < 2.0
        assert headers["connection"] == "close"
        error = json.loads(body)["error"]
        assert error["type"] == "LimitError"
        assert error["limit"] == "TWIN_MAX_BODY_BYTES" and error["value"] == MAX_BODY_BYTES
        assert f"{MAX_BODY_BYTES} bytes" in error["message"]


def test_a_body_without_a_valid_key_gets_401_before_it_is_read(served: Served) -> None:
    for key in ({}, {"X-API-Key": "not-a-key"}, {"Authorization": "Bearer not-a-key"}):
        with _connect(served.server) as sock:
            started = time.monotonic()
            # a body within the limit is announced but never sent: the 401 comes anyway
            sock.sendall(_head("/cases", {"Content-Length": str(MAX_BODY_BYTES), **key}))
            status, headers, body = _response(sock)
            elapsed = time.monotonic() - started
        assert status == 401, body
        assert elapsed < 2.0
        assert headers["www-authenticate"].startswith("Bearer")
        assert json.loads(body)["error"]["type"] == "AuthenticationError"
    # the same without a key sent chunked: refused before the first chunk is read
    with _connect(served.server) as sock:
        sock.sendall(_head("/cases", {"Transfer-Encoding": "chunked"}))
        status, _, _ = _response(sock)
    assert status == 401


def test_a_chunked_body_is_cut_at_the_limit(served: Served) -> None:
    chunk = b"[" + b"1," * 32_000 + b"1]"  # 64 kB of a JSON array, again and again
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    with _connect(served.server) as sock:
        sock.sendall(
            _head("/sta/v1.1/Things", {"Transfer-Encoding": "chunked", "X-API-Key": served.admin})
        )
        sock.setblocking(False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sent < 16 * MAX_BODY_BYTES:
            readable, writable, _ = select.select([sock], [sock], [], 1.0)
            if readable:
                break
            if writable:
                try:
                    sent += sock.send(frame)
                except BlockingIOError:
                    continue
        sock.setblocking(True)
        status, _, body = _response(sock)
    assert status == 413, body
    assert json.loads(body)["error"]["limit"] == "TWIN_MAX_BODY_BYTES"
    # the server stopped reading just past the limit (what sat in socket buffers aside)
    assert MAX_BODY_BYTES < sent < 8 * MAX_BODY_BYTES


def test_a_body_within_the_limit_still_works(served: Served) -> None:
    with served.server.client(served.admin) as client:
        opened = client.post("/cases", json={"title": "water on the road"})
        assert opened.status_code == 201, opened.text
        chunks = (part for part in (b'{"title": ', b'"chunked"}'))
        streamed = client.post(
            "/cases", content=chunks, headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 201, streamed.text
        assert streamed.json()["title"] == "chunked"


def test_upload_routes_take_the_upload_limit(tmp_path: Path) -> None:
    from api.app import create_app
    from api.limits import BodyLimitMiddleware

    app = create_app(Settings(store_url=tmp_path / "t.db"))
    middleware = BodyLimitMiddleware(app, Settings(store_url=tmp_path / "t.db"))
    assert middleware.limit_of("PUT", "/sites/denhaag/layers/heat") == (
        MAX_UPLOAD_BYTES,
        "TWIN_MAX_UPLOAD_BYTES",
    )
    assert middleware.limit_of("POST", "/sta/v1.1/CreateObservations")[0] == MAX_UPLOAD_BYTES
    assert middleware.limit_of("POST", "/sta/v1.1/Things")[0] == MAX_BODY_BYTES
    assert middleware.limit_of("GET", "/sites/denhaag/layers/heat")[0] == MAX_BODY_BYTES
    assert len(UPLOAD_ROUTES) == 2


def test_limits_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {"TWIN_MAX_BODY_BYTES": "2048", "TWIN_STA_MAX_TOP": "50", "TWIN_STA_TIMEOUT_S": "0.5"}
    )
    assert settings.max_body_bytes == 2048
    assert settings.sta_limits.max_top == 50 and settings.sta_limits.timeout_s == 0.5
    assert Settings.from_env({}).max_body_bytes == MAX_BODY_BYTES
    with pytest.raises(ValueError, match="TWIN_MAX_BODY_BYTES must be a whole number"):
        Settings.from_env({"TWIN_MAX_BODY_BYTES": "lots"})
    with pytest.raises(ValueError, match="TWIN_STA_MAX_TOP must be in"):
        Settings.from_env({"TWIN_STA_MAX_TOP": "0"})


def test_every_route_that_takes_a_body_needs_a_key(tmp_path: Path) -> None:
    """The middleware refuses a body without a key: so must every route that takes one."""
    from api.app import create_app

    schema = create_app(Settings(store_url=tmp_path / "t.db")).openapi()
    bodies = [
        (method, path, op)
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
        if "requestBody" in op
    ]
    assert len(bodies) >= 10
    for method, path, op in bodies:
        assert op.get("security"), f"{method.upper()} {path} takes a body without a key"
