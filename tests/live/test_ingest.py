"""Ingest: idempotency, out-of-order arrivals, dead letters; state and aggregates."""

from __future__ import annotations

import math

import pytest
from live_helpers import T0, Clock, datastream_of, obs, thing_body

from twin.live import LiveTwin
from twin.mqtt import parse_message
from twin.times import format_time


def _one(live: LiveTwin, code: str = "AAA001", prop: str = "water depth") -> int:
    return datastream_of(live, live.sta.create("Things", thing_body("m", code, prop)))


def _count(live: LiveTwin, table: str) -> int:
    return int(live.db.query(f"SELECT COUNT(*) FROM {table}")[0][0])


def test_redelivery_is_not_a_duplicate(live: LiveTwin) -> None:
    ds = _one(live)
    batch = [obs(ds, 0, 0.1), obs(ds, 60, 0.2)]
    first = live.ingestor.ingest(batch, "test")
    again = live.ingestor.ingest([*batch, obs(ds, 120, 0.3)], "test")
    assert (first.stored, first.duplicates) == (2, 0)
    assert (again.stored, again.duplicates) == (1, 2)
    assert _count(live, "sta_observations") == 3


def test_out_of_order_lands_in_history_without_moving_latest(live: LiveTwin) -> None:
    ds = _one(live)
    heard: list[float | None] = []
    live.ingestor.listeners.append(lambda changes: heard.extend(c.value for c in changes))
    live.ingestor.ingest([obs(ds, 120, 0.3)], "test")
    live.ingestor.ingest([obs(ds, 60, 0.9)], "test")  # late
    latest = live.state.latest("AAA001")
    assert latest[0]["result"] == 0.3
    assert latest[0]["phenomenonTime"] == format_time(T0 + 120_000_000)
    assert live.state.history(ds, T0, T0 + 10**9) == [
        (T0 + 60_000_000, 0.9),
        (T0 + 120_000_000, 0.3),
    ]
    assert heard == [0.3]  # the late reading changed nothing the rules or stream see
    # a second service instance reads latest from the store, not from memory
    assert live.db.query("SELECT result FROM live_latest")[0][0] == 0.3


def test_bad_messages_are_dead_lettered_and_counted(live: LiveTwin, clock: Clock) -> None:
    ds = _one(live)
    bodies, rejected = parse_message("p/v1.1/Datastreams(1)/Observations", b"{not json", "p/")
    assert bodies == [] and "malformed JSON" in rejected[0][0]
    nan_bodies, nan_rejected = parse_message("v1.1/Datastreams(1)/Observations", b'{"result": NaN}')
    assert nan_bodies == [] and "malformed JSON" in nan_rejected[0][0]
    future = format_time(clock.now + 86_400_000_000)
    report = live.ingestor.ingest(
        [
            obs(ds, 0, 0.1),
            obs(999, 0, 0.1),
            obs(ds, 1, "wet"),
            obs(ds, 2, math.nan),
            {**obs(ds, 3, 0.2), "phenomenonTime": future},
            obs(ds, 4, True),
            {"Datastream": {"@iot.id": ds}},
            {**obs(ds, 5, 0.1), "phenomenonTime": "yesterday"},
            obs(ds, 6, 0.4),
        ],
        "test",
        rejected=rejected + nan_rejected,
    )
    assert report.stored == 2
    assert [i for i, _ in report.rejected] == [1, 2, 3, 4, 5, 6, 7]
    counters = live.ingestor.counters
    assert counters["dead: malformed JSON"] == 2
    assert counters["dead: unknown datastream"] == 1
    assert counters["dead: not a number"] == 2
    assert counters["dead: not finite"] == 1
    assert counters["dead: in the future"] == 1
    assert counters["dead: no result"] == 1
    assert counters["dead: phenomenonTime"] == 1
    assert live.ingestor.dead_letter_count() == 9
    reasons = {d["reason"] for d in live.ingestor.dead_letters()}
    assert "unknown datastream 999" in reasons
    # ingest goes on after the bad ones
    assert live.ingestor.ingest([obs(ds, 7, 0.5)], "test").stored == 1


def test_bulk_topic_rows(live: LiveTwin) -> None:
    ds = _one(live)
    payload = b'{"obs": [[%d, "2026-11-26T10:00:00Z", 0.1], [%d, %d, 0.2], [1, 2]]}' % (
        ds,
        ds,
        T0 // 1_000_000 + 60,
    )
    bodies, rejected = parse_message("twin/v1/bulk", payload)
    assert len(bodies) == 2 and len(rejected) == 1
    assert live.ingestor.ingest(bodies, "bulk", rejected=rejected).stored == 2
    assert live.state.history(ds, T0, T0 + 10**9)[1] == (T0 + 60_000_000, 0.2)


def test_object_state_aggregates_its_sensors(live: LiveTwin) -> None:
    a = _one(live, "AAA001")
    b = _one(live, "AAA002")
    c = _one(live, "BBB001")
    live.ingestor.ingest([obs(a, 0, 0.1), obs(b, 0, 0.3), obs(c, 0, 9.0)], "test")
    state = live.state.object_state("AAA")["properties"]["water depth"]
    assert state["datastreams"] == 2 and state["reporting"] == 2
    assert (state["min"], state["max"]) == (0.1, 0.3)
    assert state["mean"] == pytest.approx(0.2)


def test_aggregates_and_retention_are_exact(live: LiveTwin, clock: Clock) -> None:
    ds = _one(live)
    # 4 hours of one reading a minute: value = minute index
    clock.now = T0 + 4 * 3_600_000_000
    live.ingestor.ingest([obs(ds, 60 * i, float(i)) for i in range(240)], "test")
    hourly = live.state.aggregates(ds, T0, T0 + 4 * 3_600_000_000, 3600)
    expected = [(60, 60 * h, 60 * h + 59, 60 * h + 29.5) for h in range(4)]
    assert [(b["n"], b["min"], b["max"], b["mean"]) for b in hourly] == expected
    # keep 2 hours raw: the first 2 hours go to 5-minute rollups, aggregates do not change
    removed = live.state.compact(clock.now, retention_s=2 * 3600, rollup_interval_s=300)
    assert removed == 120
    assert _count(live, "sta_observations") == 120
    assert _count(live, "live_rollups") == 24
    again = live.state.aggregates(ds, T0, T0 + 4 * 3_600_000_000, 3600)
    assert [(b["n"], b["min"], b["max"], b["mean"]) for b in again] == expected
    # a late reading for an already compacted bucket merges into its rollup
    live.ingestor.ingest([obs(ds, 30, 1000.0)], "test")
    live.state.compact(clock.now, retention_s=2 * 3600, rollup_interval_s=300)
    first = live.state.aggregates(ds, T0, T0 + 3_600_000_000, 3600)[0]
    assert (first["n"], first["max"]) == (61, 1000.0)


def test_deleted_datastream_takes_no_more_readings(live: LiveTwin) -> None:
    ds = _one(live)
    assert live.ingestor.ingest([obs(ds, 0, 0.1)], "test").stored == 1
    live.sta.delete(f"Datastreams({ds})")
    report = live.ingestor.ingest([obs(ds, 60, 0.2)], "test")
    assert report.stored == 0 and report.rejected == [(0, f"unknown datastream {ds}")]
    assert _count(live, "sta_observations") == 0 and _count(live, "live_latest") == 0
