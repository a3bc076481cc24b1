"""Reliability: the ingest process killed (SIGKILL) mid-stream and restarted, and the broker
restarted mid-stream. Every observation the broker acknowledged is stored exactly once."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from live_helpers import T0, mqtt_publisher, thing_body, wait_for

from twin.db import LiveDb
from twin.live import LiveTwin
from twin.mqtt import MqttSettings
from twin.times import format_time

ROOT = Path(__file__).parents[2]
STREAMS = 5


def _prepare(store_url: str) -> list[int]:
    live = LiveTwin(store_url)
    try:
        for i in range(STREAMS):
            live.sta.create("Things", thing_body(f"gauge {i}", f"G{i:03d}", "water depth"))
        return [int(r[0]) for r in live.db.query("SELECT id FROM sta_datastreams ORDER BY id")]
    finally:
        live.close()


def _counts(db: LiveDb) -> tuple[int, float]:
    n, total = db.query("SELECT COUNT(*), COALESCE(SUM(result), 0) FROM sta_observations")[0]
    return int(n), float(total)


def _messages(prefix: str, ids: list[int], n: int) -> list[tuple[str, bytes]]:
    """``n`` observations spread over the datastreams, result = sequence number."""
    out = []
    for k in range(n):
        ds = ids[k % len(ids)]
        body = {"phenomenonTime": format_time(T0 + k * 1_000_000), "result": float(k)}
        out.append((f"{prefix}v1.1/Datastreams({ds})/Observations", orjson.dumps(body)))
    return out


def _publish_all(client: Any, messages: list[tuple[str, bytes]], acked: list[int]) -> None:
    """Publish at QoS 1 one after the other, each until the broker acknowledges it (PUBACK,
    seen by ``on_publish``; paho keeps a message queued while the broker is away and sends it
    on reconnection)."""
    pubacks: set[int] = set()
    client.on_publish = lambda _c, _u, mid, _rc, _p: pubacks.add(mid)
    for k, (topic, payload) in enumerate(messages):
        info = client.publish(topic, payload, qos=1)
        end = time.monotonic() + 30
        while info.mid not in pubacks and time.monotonic() < end:
            time.sleep(0.001)
        if info.mid in pubacks:
            acked.append(k)
            pubacks.discard(info.mid)


def _service(store_url: str, prefix: str, client_id: str, broker: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "twin.ingest_service",
            "--store",
            store_url,
            "--mqtt",
            broker,
            "--prefix",
            prefix,
            "--client-id",
            client_id,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == "ready", f"ingest service did not start: {line!r}"
    return process


def _stop(process: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
    process.wait(10)
    if process.stdout is not None:
        process.stdout.close()


def test_sigkill_mid_stream_loses_nothing_and_stores_nothing_twice(
    store_url: str, ingest_broker: str
) -> None:
    ids = _prepare(store_url)
    # more than Mosquitto's default queue of 1,000 per offline session (the twin's broker
    # queues 1,000,000: config/mosquitto.conf)
    n = 1500
    prefix, client_id = f"test-{uuid.uuid4().hex[:10]}/", f"twin-{uuid.uuid4().hex[:10]}"
    broker = ingest_broker
    db = LiveDb(store_url)
    service = _service(store_url, prefix, client_id, broker)
    publisher = mqtt_publisher(broker)
    acked: list[int] = []
    sender = threading.Thread(
        target=_publish_all, args=(publisher, _messages(prefix, ids, n), acked)
    )
    try:
        sender.start()
        wait_for(lambda: _counts(db)[0] >= n // 4, 20, "a quarter stored")
        _stop(service, signal.SIGKILL)
        killed_at = _counts(db)[0]
        sender.join(30)
        assert len(acked) == n  # the broker acknowledged every publish
        service = _service(store_url, prefix, client_id, broker)
        try:
            wait_for(lambda: _counts(db)[0] >= n, 60, "every acknowledged observation")
        except AssertionError:
            stored = {int(r[0]) for r in db.query("SELECT result FROM sta_observations")}
            missing = sorted(set(range(n)) - stored)
            raise AssertionError(f"missing after restart: {missing[:50]}") from None
        time.sleep(0.3)  # anything redelivered late would show up now
        count, total = _counts(db)
    finally:
        _stop(service)
        publisher.loop_stop()
        publisher.disconnect()
        db.close()
    assert killed_at < n
    assert count == n
    assert total == n * (n - 1) / 2  # each sequence number exactly once


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A Mosquitto of this test's own (persistent), so it can be restarted; yields its URL
    and a function that restarts it."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        pytest.fail("the broker tests need Mosquitto (Debian package mosquitto)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        # run as root, Mosquitto would drop to user mosquitto, who cannot write in tmp_path
        f"persistence_location {tmp_path}/\nuser {getpass.getuser()}\n"
    )
    state: dict[str, subprocess.Popen[bytes]] = {}

    def start() -> None:
        state["p"] = subprocess.Popen(
            [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, 5, "the test broker")

    def restart() -> None:
        state["p"].terminate()
        state["p"].wait(5)
        time.sleep(0.5)
        start()

    start()
    try:
        yield f"mqtt://127.0.0.1:{port}", restart
    finally:
        state["p"].terminate()
        state["p"].wait(5)


def test_broker_restart_mid_stream(store_url: str, own_broker: tuple[str, Any]) -> None:
    url, restart = own_broker
    ids = _prepare(store_url)
    n = 400
    prefix = f"test-{uuid.uuid4().hex[:10]}/"
    live = LiveTwin(store_url, mqtt=MqttSettings(url, prefix=prefix, client_id="twin-restart"))
    live.start()
    assert live.mqtt is not None
    wait_for(live.mqtt.connected.is_set, 5, "the subscription")
    publisher = mqtt_publisher(url, client_id="pub-restart")
    acked: list[int] = []
    sender = threading.Thread(
        target=_publish_all, args=(publisher, _messages(prefix, ids, n), acked)
    )
    try:
        sender.start()
        wait_for(lambda: _counts(live.db)[0] >= n // 4, 20, "a quarter stored")
        restart()
        sender.join(60)
        assert len(acked) == n
        wait_for(lambda: _counts(live.db)[0] >= n, 30, "every acknowledged observation")
        time.sleep(0.3)
        count, total = _counts(live.db)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        live.close()
    assert count == n and total == n * (n - 1) / 2
