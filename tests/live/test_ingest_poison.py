"""Hostile MQTT input against the real broker: a message that cannot be stored goes to the
dead letters with its reason, is acknowledged, and never holds up the messages after it —
not in the batch it came in, and not after a restart on the same persistent session."""

from __future__ import annotations

import uuid

import orjson
import pytest
from live_helpers import T0, Clock, datastream_of, mqtt_publisher, thing_body, wait_for

from twin.live import LiveTwin
from twin.mqtt import MqttSettings
from twin.times import format_time

POISON_ID = "99999999999999999999999"  # > 2**63: no BIGINT holds it


def _twin(store_url: str, clock: Clock, broker: str, prefix: str, client_id: str) -> LiveTwin:
    twin = LiveTwin(
        store_url, mqtt=MqttSettings(broker, prefix=prefix, client_id=client_id), clock=clock
    )
    twin.start()
    assert twin.mqtt is not None
    wait_for(twin.mqtt.connected.is_set, 15, "the MQTT subscription")
    return twin


def _counts(twin: LiveTwin) -> tuple[int, float]:
    n, total = twin.db.query("SELECT COUNT(*), COALESCE(SUM(result), 0) FROM sta_observations")[0]
    return int(n), float(total)


def _publish(publisher: object, topic: str, seconds: range) -> None:
    for k in seconds:
        body = orjson.dumps({"phenomenonTime": format_time(T0 + k * 1_000_000), "result": k})
        publisher.publish(topic, body, qos=1).wait_for_publish(5)  # type: ignore[attr-defined]


@pytest.mark.parametrize("protocol", ["", "?protocol=3.1.1"], ids=["mqtt5", "mqtt311"])
def test_poison_message_is_dead_lettered_and_never_wedges_ingest(
    store_url: str, clock: Clock, ingest_broker: str, protocol: str
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:10]}/"
    client_id = f"twin-{uuid.uuid4().hex[:10]}"
    subscribe_at = ingest_broker + protocol
    twin = _twin(store_url, clock, subscribe_at, prefix, client_id)
    publisher = mqtt_publisher(ingest_broker)
    try:
        ds = datastream_of(twin, twin.sta.create("Things", thing_body("m", "AAA001", "depth")))
        topic = f"{prefix}v1.1/Datastreams({ds})/Observations"
        poison = orjson.dumps({"phenomenonTime": format_time(T0), "result": 1.0})
        publisher.publish(
            f"{prefix}v1.1/Datastreams({POISON_ID})/Observations", poison, qos=1
        ).wait_for_publish(5)
        _publish(publisher, topic, range(50))
        wait_for(lambda: _counts(twin)[0] == 50, 15, "the 50 valid observations")
        wait_for(lambda: twin.ingestor.dead_letter_count() == 1, 5, "one dead letter")
        (dead,) = twin.ingestor.dead_letters()
        assert POISON_ID in dead["reason"] and "out of range" in dead["reason"]
        assert dead["source"] == "mqtt"
        twin.close()
        # while the ingest is down the broker queues for its session; the restarted ingest
        # (same client id) gets those, and no redelivered poison or re-stored reading
        _publish(publisher, topic, range(50, 60))
        twin = _twin(store_url, clock, subscribe_at, prefix, client_id)
        wait_for(lambda: _counts(twin)[0] == 60, 15, "the 10 queued observations")
        assert twin.mqtt is not None
        wait_for(lambda: twin.mqtt is not None and twin.mqtt.received >= 10, 5, "the count")
        assert _counts(twin) == (60, sum(range(60)))
        assert twin.ingestor.dead_letter_count() == 1
        assert twin.ingestor.counters["duplicates"] == 0
        assert twin.mqtt.received == 10
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        twin.close()


def test_every_kind_of_hostile_message_is_dead_lettered_with_its_reason(
    store_url: str, clock: Clock, ingest_broker: str
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:10]}/"
    twin = _twin(store_url, clock, ingest_broker, prefix, f"twin-{uuid.uuid4().hex[:10]}")
    publisher = mqtt_publisher(ingest_broker)
    try:
        ds = datastream_of(twin, twin.sta.create("Things", thing_body("m", "AAA001", "depth")))
        topic = f"{prefix}v1.1/Datastreams({ds})/Observations"
        anywhere = f"{prefix}v1.1/Observations"
        hostile: list[tuple[str, bytes, str]] = [
            (anywhere, b'{"Datastream": {"@iot.id": "x"}, "result": 1}', "no Datastream"),
            (
                anywhere,
                b'{"Datastream": {"@iot.id": 18446744073709551615}, "result": 1}',
                "18446744073709551615 is out of range",
            ),
            (anywhere, b'{"Datastream": {"@iot.id": 0}, "result": 1}', "@iot.id 0 is out of range"),
            (topic, b"\x00\xff{junk", "malformed JSON"),
            (topic, b'{"result": 1e400}', "malformed JSON"),
            (topic, b'{"phenomenonTime": "soon", "result": 1}', "not an ISO 8601 time"),
            (
                topic,
                b'{"phenomenonTime": -1e300, "result": 1}',
                "phenomenonTime: -1e+300 epoch seconds is outside the years 1..9999",
            ),
            (
                topic,
                b'{"resultTime": 1e300, "result": 1}',
                "resultTime: 1e+300 epoch seconds is outside the years 1..9999",
            ),
            (
                topic,
                b'{"result": 1, "FeatureOfInterest": {"@iot.id": 9223372036854775808}}',
                "FeatureOfInterest @iot.id 9223372036854775808 is out of range",
            ),
            (topic, b'{"result": "wet\\u0000"}', "not a number"),
            (
                f"{prefix}v1.1/Datastreams(987654)/Observations",
                b'{"result": 1}',
                "unknown datastream 987654",
            ),
            (
                topic,
                b'{"result": 1, "pad": "' + b"x" * (1024 * 1024) + b'"}',
                "over the size limit",
            ),
            (
                f"{prefix}twin/v1/bulk",
                b'{"obs": [[%d, -1e300, 1]]}' % ds,
                "phenomenonTime: -1e+300",
            ),
        ]
        for k, (where, payload, _) in enumerate(hostile):
            publisher.publish(where, payload, qos=1).wait_for_publish(5)
            _publish(publisher, topic, range(k * 3, k * 3 + 3))
        wanted = 3 * len(hostile)
        wait_for(lambda: _counts(twin)[0] == wanted, 15, f"the {wanted} valid observations")
        wait_for(lambda: twin.ingestor.dead_letter_count() == len(hostile), 5, "the dead letters")
        assert _counts(twin) == (wanted, sum(range(wanted)))
        # within a batch, what the transport refused is written before what ingest refused
        left = [d["reason"] for d in twin.ingestor.dead_letters()]
        for _, _, expected in hostile:
            found = next((r for r in left if expected in r), None)
            assert found is not None, f"no dead letter says {expected!r}: {left}"
            left.remove(found)
        assert all(len(d["payload"]) <= 2000 for d in twin.ingestor.dead_letters())
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        twin.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mqtt://127.0.0.1:1884?protocol=4", "protocol '4' must be one of ['5', '3.1.1']"),
        ("mqtt://127.0.0.1:1884?qos=2", "unknown option(s) ['qos']"),
    ],
)
def test_a_broker_url_with_an_unknown_protocol_or_option_is_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        MqttSettings(url).protocol  # noqa: B018
    assert message in str(caught.value)
    assert MqttSettings("mqtt://h:1?protocol=3.1.1").protocol == 4  # paho's MQTTv311
    assert MqttSettings("mqtt://h:1").protocol == 5
