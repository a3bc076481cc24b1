"""Fixtures of the live-twin tests: a live twin per engine with a settable clock."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from live_helpers import INGEST_BROKER, Clock

from twin.live import LiveTwin


@pytest.fixture
def clock() -> Clock:
    """A fixed clock an hour after ``T0``."""
    return Clock()


@pytest.fixture
def live(store_url: str, clock: Clock) -> Iterator[LiveTwin]:
    """A live twin over an empty store, once per engine (not started: no threads)."""
    twin = LiveTwin(store_url, clock=clock)
    try:
        yield twin
    finally:
        twin.close()


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


@pytest.fixture(scope="session")
def ingest_broker() -> str:
    """The URL of the twin's own Mosquitto (``config/mosquitto.conf``, 127.0.0.1:1884, or
    ``TWIN_TEST_MQTT_URL``), started by ``.ci/services broker`` if it is not running."""
    parsed = urlparse(INGEST_BROKER)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 1883
    if not _listening(host, port) and host == "127.0.0.1":
        script = Path(__file__).parents[2] / ".ci" / "services"
        subprocess.run(
            ["bash", str(script), "broker"],
            env={**os.environ, "TWIN_MQTT_PORT": str(port)},
            check=False,
            timeout=30,
        )
    if not _listening(host, port):
        pytest.fail(
            f"the twin's MQTT broker is not reachable at {INGEST_BROKER}; `make broker` starts "
            "it (Debian package mosquitto)"
        )
    return INGEST_BROKER
