"""MQTT ingest against the twin's own Mosquitto (config/mosquitto.conf; unique topic prefix per
test)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import orjson
import pytest
from live_helpers import T0, Clock, datastream_of, mqtt_publisher, thing_body, wait_for

from twin.live import LiveTwin
from twin.mqtt import MqttSettings
from twin.times import format_time


@pytest.fixture
def mqtt_live(store_url: str, clock: Clock, ingest_broker: str) -> Iterator[tuple[LiveTwin, str]]:
    """A started live twin subscribed under a fresh topic prefix; yields it and the prefix."""
    prefix = f"test-{uuid.uuid4().hex[:10]}/"
    settings = MqttSettings(ingest_broker, prefix=prefix, client_id=f"twin-{uuid.uuid4().hex[:10]}")
    twin = LiveTwin(store_url, mqtt=settings, clock=clock)
    twin.start()
    try:
        assert twin.mqtt is not None
        wait_for(twin.mqtt.connected.is_set, 5, "the MQTT subscription")
        yield twin, prefix
    finally:
        twin.close()


def _stored(live: LiveTwin) -> int:
    return int(live.db.query("SELECT COUNT(*) FROM sta_observations")[0][0])


def test_sensorthings_topic_bulk_topic_and_bad_messages(
    mqtt_live: tuple[LiveTwin, str], ingest_broker: str
) -> None:
    live, prefix = mqtt_live
    ds = datastream_of(live, live.sta.create("Things", thing_body("m", "AAA001", "water depth")))
    publisher = mqtt_publisher(ingest_broker)
    try:
        topic = f"{prefix}v1.1/Datastreams({ds})/Observations"
        body = orjson.dumps({"phenomenonTime": format_time(T0), "result": 0.12})
        for _ in range(3):  # a device that repeats itself is stored once
            publisher.publish(topic, body, qos=1).wait_for_publish(5)
        bulk = {"obs": [[ds, format_time(T0 + 60_000_000 * i), 0.1 * i] for i in range(1, 11)]}
        publisher.publish(f"{prefix}twin/v1/bulk", orjson.dumps(bulk), qos=1).wait_for_publish(5)
        publisher.publish(topic, b"{oops", qos=1).wait_for_publish(5)
        publisher.publish(
            f"{prefix}v1.1/Datastreams(9999)/Observations", body, qos=1
        ).wait_for_publish(5)
        wait_for(lambda: live.ingestor.dead_letter_count() == 2, 5, "two dead letters")
        wait_for(lambda: _stored(live) == 11, 5, "11 observations")
    finally:
        publisher.loop_stop()
        publisher.disconnect()
    assert live.ingestor.counters["duplicates"] == 2
    assert live.state.latest("AAA001")[0]["result"] == pytest.approx(1.0)
    reasons = sorted(d["reason"] for d in live.ingestor.dead_letters())
    assert reasons[0].startswith("malformed JSON") and reasons[1] == "unknown datastream 9999"


def test_shared_subscription_spreads_messages_over_two_ingests(
    store_url: str, clock: Clock, ingest_broker: str
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:10]}/"
    group = f"g{uuid.uuid4().hex[:8]}"
    twins = [
        LiveTwin(
            store_url,
            mqtt=MqttSettings(
                ingest_broker, prefix, f"twin-{uuid.uuid4().hex[:10]}", share_group=group
            ),
            clock=clock,
        )
        for _ in range(2)
    ]
    publisher = None
    try:
        ds = datastream_of(twins[0], twins[0].sta.create("Things", thing_body("m", "A1", "depth")))
        for twin in twins:
            twin.start()
            assert twin.mqtt is not None
            wait_for(twin.mqtt.connected.is_set, 5, "the subscription")
        publisher = mqtt_publisher(ingest_broker)
        topic = f"{prefix}v1.1/Datastreams({ds})/Observations"
        for k in range(200):
            body = orjson.dumps({"phenomenonTime": format_time(T0 + k * 1_000_000), "result": k})
            publisher.publish(topic, body, qos=1).wait_for_publish(5)
        wait_for(lambda: _stored(twins[0]) == 200, 10, "200 observations")
        # counted once the batch's listeners (rules, bus) are done, a moment after the commit
        wait_for(
            lambda: sum(t.mqtt.received for t in twins if t.mqtt is not None) >= 200, 5, "counts"
        )
        received = [t.mqtt.received for t in twins if t.mqtt is not None]
        assert sum(received) == 200 and min(received) > 0
    finally:
        if publisher is not None:
            publisher.loop_stop()
            publisher.disconnect()
        for twin in twins:
            twin.close()
