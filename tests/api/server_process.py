"""The real server as a user starts it: ``twin serve`` in its own process group, on a free
port, with a number of uvicorn workers; stopped gently or killed with ``kill -9``."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

TWIN = [sys.executable, "-m", "api.cli"]
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def twin_cli(store: Path, *args: str) -> str:
    """Run the ``twin`` command on ``store``; its standard output."""
    done = subprocess.run(
        [*TWIN, "--store", str(store), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def new_key(store: Path, role: str, folder: Path, scope: str | None = None) -> str:
    """A key of ``role`` made with ``twin keys create``."""
    out = folder / f"{role}-{time.monotonic_ns()}.key"
    args = ["keys", "create", "--role", role, "--output", str(out)]
    if scope is not None:
        args += ["--scope", scope]
    twin_cli(store, *args)
    return out.read_text().strip()


@dataclass
class Server:
    """A running ``twin serve``."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def stop(self) -> None:
        """SIGTERM to the whole group, as a service manager stops it."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def kill(self) -> None:
        """``kill -9`` of every server process: a crash."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def start_server(
    store: Path, cache: Path, workers: int, env: dict[str, str] | None = None
) -> Server:
    """Start ``twin serve --workers N`` and wait until ``/health`` answers.

    Raises
    ------
    AssertionError
        If it does not answer within 90 s (its log is in the message).
    """
    port = free_port()
    log = cache.parent / f"server-{port}.log"
    environ = {
        **os.environ,
        "TWIN_CACHE": str(cache),
        "TWIN_RUN_WORKERS": "1",
        **(env or {}),
    }
    environ.pop("TWIN_MQTT_URL", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*TWIN, "--store", str(store), "serve", "--workers", str(workers), "--port", str(port)],
            cwd=ROOT,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                # every worker must be up: health answers from any of them
                time.sleep(1.0 if workers > 1 else 0)
                return server
        time.sleep(0.2)
    server.kill()
    raise AssertionError(f"server did not answer: {log.read_text()[-3000:]}")


@contextlib.contextmanager
def serving(
    store: Path, cache: Path, workers: int, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """A server for the ``with`` block."""
    server = start_server(store, cache, workers, env)
    try:
        yield server
    finally:
        server.stop()


def wait_run(client: httpx.Client, run_id: str, timeout_s: float = 120) -> dict[str, Any]:
    """Poll ``/runs/{id}`` until it ends; the record."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record: dict[str, Any] = client.get(f"/runs/{run_id}").json()
        if record.get("state") not in ("queued", "running"):
            return record
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not end: {record}")
