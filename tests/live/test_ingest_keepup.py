"""Keeping up: single-reading QoS 1 messages published as fast as the broker takes them are
all stored, exactly once — on the twin's broker and on a broker with Mosquitto's defaults
(20 messages in flight, 1,000 queued per session), where an MQTT 3.1.1 subscriber that
acknowledges after its commit fell behind and the broker dropped the rest. The full figure
(10,000 devices at 20,000 messages/s for 30 s) is measured by ``bench/ingest.py``."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as paho
import pytest
from live_helpers import T0, thing_body, wait_for
from paho.mqtt.enums import CallbackAPIVersion

from twin.live import LiveTwin
from twin.mqtt import MqttSettings

MESSAGES = 5000
STREAMS = 50


@pytest.fixture(scope="module")
def default_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Mosquitto of this module's own with the defaults of its sizing; yields its URL."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        pytest.fail("the broker tests need Mosquitto (Debian package mosquitto)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path_factory.mktemp("broker") / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
    )
    process = subprocess.Popen(
        [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(listening, 5, "the test broker")
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(5)


def _fast_publisher(url: str) -> Any:
    """A connected paho client with 1,000 QoS 1 messages in flight (paho's default: 20)."""
    parsed = urlparse(url)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:10]}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(parsed.hostname or "127.0.0.1", parsed.port or 1883)
    client.loop_start()
    return client


@pytest.mark.parametrize("which", ["twin broker", "twin broker, MQTT 3.1.1", "mosquitto defaults"])
def test_single_reading_messages_as_fast_as_the_broker_takes_them_are_all_stored_once(
    which: str, store_url: str, request: pytest.FixtureRequest
) -> None:
    broker = request.getfixturevalue(
        "default_broker" if which == "mosquitto defaults" else "ingest_broker"
    )
    # MQTT 3.1.1 keeps up only where the broker lets many messages be in flight (its
    # configuration, config/mosquitto.conf); MQTT 5 announces its own Receive Maximum
    subscribe_at = broker + "?protocol=3.1.1" if which.endswith("3.1.1") else broker
    prefix = f"test-{uuid.uuid4().hex[:10]}/"
    # a real clock: the readings are "now"
    twin = LiveTwin(
        store_url,
        mqtt=MqttSettings(subscribe_at, prefix=prefix, client_id=f"twin-{uuid.uuid4().hex[:8]}"),
    )
    for i in range(STREAMS):
        twin.sta.create("Things", thing_body(f"d{i}", f"D{i:03d}", "depth"))
    ids = [int(r[0]) for r in twin.db.query("SELECT id FROM sta_datastreams ORDER BY id")]
    twin.start()
    assert twin.mqtt is not None
    wait_for(twin.mqtt.connected.is_set, 15, "the MQTT subscription")
    publisher = _fast_publisher(broker)
    acked: list[int] = []
    publisher.on_publish = lambda *_: acked.append(1)
    try:
        began = time.monotonic()
        for k in range(MESSAGES):
            # result = sequence number; each datastream's times 1 s apart
            topic = f"{prefix}v1.1/Datastreams({ids[k % STREAMS]})/Observations"
            payload = b'{"phenomenonTime":%d,"result":%d}' % (T0 // 1_000_000 + k, k)
            publisher.publish(topic, payload, qos=1)
        wait_for(lambda: len(acked) == MESSAGES, 20, "the broker's acknowledgements")
        publish_s = time.monotonic() - began

        def stored() -> int:
            return int(twin.db.query("SELECT COUNT(*) FROM sta_observations")[0][0])

        try:
            wait_for(lambda: stored() >= MESSAGES, 20, f"{MESSAGES} observations")
        except AssertionError:
            raise AssertionError(
                f"{stored()} of {MESSAGES} stored ({MESSAGES} published in {publish_s:.1f} s)"
            ) from None
        time.sleep(0.3)  # a redelivery would show now
        n, total = twin.db.query("SELECT COUNT(*), SUM(result) FROM sta_observations")[0]
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        twin.close()
    assert (int(n), float(total)) == (MESSAGES, MESSAGES * (MESSAGES - 1) / 2)
    assert twin.ingestor.counters["duplicates"] == 0
    assert not [k for k in twin.ingestor.counters if k.startswith("dead:")]
