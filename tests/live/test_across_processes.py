"""One truth across processes: several live twins over one store (as the workers of
``twin serve --workers N`` are) share rules, alerts, events and one MQTT subscription, on
both engines (ADR 0019)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from live_helpers import T0, Clock, datastream_of, mqtt_publisher, obs, thing_body, wait_for

from twin.bus import Subscription
from twin.live import LiveTwin
from twin.mqtt import MqttSettings
from twin.rules import CasePolicy, Rule
from twin.times import format_time

BROKER = "mqtt://127.0.0.1:1883"
FLOOD = ((0.15, "red"),)


@pytest.fixture
def pair(store_url: str, clock: Clock) -> Iterator[tuple[LiveTwin, LiveTwin]]:
    """Two live twins over one store, as two API processes (not started)."""
    first = LiveTwin(store_url, clock=clock)
    second = LiveTwin(store_url, clock=clock)
    try:
        yield first, second
    finally:
        second.close()
        first.close()


def _gauge(live: LiveTwin, code: str = "AAA001") -> int:
    return datastream_of(live, live.sta.create("Things", thing_body("gauge", code, "water depth")))


def _alert_rows(live: LiveTwin) -> list[tuple[Any, ...]]:
    return live.db.query("SELECT rule_id, datastream_id, state, level FROM live_alerts")


def test_rules_added_or_deleted_in_one_process_are_used_by_the_other(
    pair: tuple[LiveTwin, LiveTwin], clock: Clock
) -> None:
    first, second = pair
    ds = _gauge(first)
    rule = first.alerts.add_rule(Rule(0, "flood", "high", FLOOD, observed_property="water depth"))
    clock.now = T0 + 100_000_000
    second.ingestor.ingest([obs(ds, 1, 0.3)], "test")  # the second never heard of the rule
    assert [(r, d, s) for r, d, s, _ in _alert_rows(first)] == [(rule.id, ds, "open")]
    second.alerts.delete_rule(rule.id)
    first.ingestor.ingest([obs(ds, 2, 0.0), obs(ds, 3, 0.0)], "test")
    assert rule.id not in first.alerts.rules
    assert [s for _, _, s, _ in _alert_rows(first)] == ["open"]  # no rule: nothing clears it


def test_two_processes_racing_on_one_reading_open_one_alert_and_one_case(
    store_url: str, pair: tuple[LiveTwin, LiveTwin], clock: Clock
) -> None:
    first, _ = pair
    ds = _gauge(first)
    policy = CasePolicy(min_level=1, class_code="0501", unit="water board")
    first.alerts.add_rule(
        Rule(0, "flood", "high", FLOOD, observed_property="water depth", open_case=policy)
    )
    # a process started after the rule was made: both know it from the start
    later = LiveTwin(store_url, clock=clock)
    try:
        _race(first, later, ds, clock)
    finally:
        later.close()


def _race(first: LiveTwin, later: LiveTwin, ds: int, clock: Clock) -> None:
    clock.now = T0 + 100_000_000
    errors: list[BaseException] = []

    def ingest(live: LiveTwin, barrier: threading.Barrier, step: int, value: float) -> None:
        try:
            barrier.wait(5)
            live.ingestor.ingest([obs(ds, step, value)], "test")
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    for step in range(8):  # every reading reaches both processes at the same moment
        barrier = threading.Barrier(2)
        value = 0.3 if step % 2 == 0 else 0.0
        threads = [
            threading.Thread(target=ingest, args=(live, barrier, step, value))
            for live in (first, later)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert errors == []
    rows = _alert_rows(first)
    assert len(rows) == 4 and [s for _, _, s, _ in rows] == ["cleared"] * 4
    events = first.db.query("SELECT alert_id, state FROM live_alert_events ORDER BY alert_id, t")
    assert [s for _, s in events] == ["open", "cleared"] * 4  # one event per move, not two
    assert int(first.db.query("SELECT COUNT(*) FROM live_cases")[0][0]) == 4


def test_the_store_refuses_a_second_active_alert(pair: tuple[LiveTwin, LiveTwin]) -> None:
    first, _ = pair
    insert = (
        "INSERT INTO live_alerts (code, rule_id, datastream_id, kind, level, severity, state, "
        "opened, updated, first_reading, message) VALUES (?, 1, 7, 'high', 1, 'red', ?, 0, 0, "
        "0, 'm')"
    )
    first.db.execute(insert, ("AL1", "open"))
    first.db.execute(insert, ("AL2", "cleared"))  # history may repeat
    with pytest.raises(Exception, match=r"(?i)unique"):
        first.db.execute(insert, ("AL3", "acknowledged"))


def test_an_alert_raised_in_one_process_reaches_the_stream_of_the_other(
    pair: tuple[LiveTwin, LiveTwin], clock: Clock
) -> None:
    first, second = pair
    ds = _gauge(first)
    first.alerts.add_rule(Rule(0, "flood", "high", FLOOD, observed_property="water depth"))
    here = first.bus.subscribe(Subscription(None, None))
    there = second.bus.subscribe(Subscription(["AAA"], None))
    first.start()
    second.start()
    clock.now = T0 + 100_000_000
    started = time.monotonic()
    first.ingestor.ingest([obs(ds, 1, 0.3)], "test")
    received: list[dict[str, Any]] = []

    def heard_both() -> bool:
        received.extend(there.drain())
        return {e["type"] for e in received} >= {"alert", "observation"}

    wait_for(heard_both, 1.0, "the alert and the reading in the other process")
    assert time.monotonic() - started < 1.0
    first.cases.open("blocked drain", "operator", "ops", clock.now, object_code="AAA001")
    wait_for(lambda: bool(received.extend(there.drain()) or len(received) >= 3), 1.0, "case")
    time.sleep(0.4)  # anything sent twice would arrive by now
    received.extend(there.drain())
    mine = here.drain()
    for events in (received, mine):
        assert sorted(e["type"] for e in events) == ["alert", "case", "observation"]
    alert = next(e for e in received if e["type"] == "alert")
    assert alert["alert"]["code"] == "AL00000001" and alert["code"] == "AAA001"
    reading = next(e for e in received if e["type"] == "observation")
    assert (reading["datastream"], reading["result"]) == (ds, 0.3)
    assert reading["observedProperty"] == "water depth"


def test_a_burst_crosses_as_the_latest_value_per_datastream(
    pair: tuple[LiveTwin, LiveTwin], clock: Clock
) -> None:
    first, second = pair
    streams = [_gauge(first, f"AAA00{i}") for i in range(1, 4)]
    there = second.bus.subscribe(Subscription(None, ("observation",)))
    second.start()
    clock.now = T0 + 100_000_000
    for second_ in range(50):
        first.ingestor.ingest([obs(ds, second_, float(second_)) for ds in streams], "test")
    assert first.bridge.flush() == 3  # one feed row for the whole burst
    got: dict[int, float] = {}
    wait_for(
        lambda: (
            bool(got.update({e["datastream"]: e["result"] for e in there.drain()})) or len(got) == 3
        ),
        1.0,
        "three datastreams",
    )
    assert got == dict.fromkeys(streams, 49.0)
    rows = first.db.query("SELECT COUNT(*) FROM twin_events WHERE topic = 'live.observations'")
    assert int(rows[0][0]) == 1


# -- MQTT: one subscriber per deployment -----------------------------------------------------
def _stored(live: LiveTwin) -> tuple[int, float]:
    count, total = live.db.query("SELECT COUNT(*), SUM(result) FROM sta_observations")[0]
    return int(count), float(total or 0)


def _publish(publisher: Any, prefix: str, ds: int, numbers: range) -> None:
    for k in numbers:
        body = orjson.dumps({"phenomenonTime": format_time(T0 + k * 1_000_000), "result": k})
        topic = f"{prefix}v1.1/Datastreams({ds})/Observations"
        publisher.publish(topic, body, qos=1).wait_for_publish(5)


def test_two_processes_ingest_each_message_once_and_a_standby_takes_over(
    store_url: str, clock: Clock
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:10]}/"
    settings = MqttSettings(
        BROKER, prefix=prefix, client_id=f"twin-{uuid.uuid4().hex[:10]}", lease_ttl_s=1.0
    )
    first = LiveTwin(store_url, mqtt=settings, clock=clock)
    second = LiveTwin(store_url, mqtt=settings, clock=clock)
    publisher = mqtt_publisher(BROKER)
    try:
        ds = _gauge(first)
        first.start()
        assert first.mqtt is not None and second.mqtt is not None
        wait_for(first.mqtt.connected.is_set, 5, "the first subscription")
        second.start()
        time.sleep(1.0)  # the second tries the lease three times meanwhile
        assert not second.mqtt.connected.is_set() and second.mqtt.connections == 0
        n = 200
        _publish(publisher, prefix, ds, range(n))
        wait_for(lambda: _stored(first)[0] >= n, 10, f"{n} observations")
        time.sleep(0.3)
        assert _stored(first) == (n, n * (n - 1) / 2)
        assert first.mqtt.connections == 1 and first.mqtt.disconnects == 0  # never kicked
        # the holder goes away: the standby takes over on the same session
        first.close()
        _publish(publisher, prefix, ds, range(n, 2 * n))  # queued while no one holds it
        wait_for(second.mqtt.connected.is_set, 5, "the standby taking over")
        wait_for(lambda: _stored(second)[0] >= 2 * n, 10, f"{2 * n} observations")
        time.sleep(0.3)
        assert _stored(second) == (2 * n, 2 * n * (2 * n - 1) / 2)
        assert second.mqtt.connections == 1 and second.mqtt.disconnects == 0
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        second.close()
        first.close()


def test_batches_of_readings_are_kept_briefly_in_the_feed(store_url: str) -> None:
    from twin.feed import EventFeed

    feed = EventFeed(store_url)
    try:
        feed.retain("bulky", 1.0)
        feed.publish("bulky", {"n": 0})
        feed.publish("other", {"n": 0})
        time.sleep(1.1)
        for n in range(1, 21):  # every 20th publish of the topic prunes it
            feed.publish("bulky", {"n": n})
        rows = feed.db.query("SELECT topic, payload FROM twin_events ORDER BY id")
    finally:
        feed.close()
    assert [(t, orjson.loads(p)["n"]) for t, p in rows[:2]] == [("other", 0), ("bulky", 1)]
    assert len(rows) == 21
