"""A batch the store refuses as a whole is split until the refused reading is alone: the
good readings are stored once, the refused one dead-lettered; a store that does not answer
stops the batch instead (nothing stored, nothing dead-lettered: the transport retries)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from live_helpers import datastream_of, obs, thing_body

from cim.errors import StoreError
from twin.db import LiveDb
from twin.ingest import Reading
from twin.live import LiveTwin


def _count(db: LiveDb, table: str) -> int:
    return int(db.query(f"SELECT COUNT(*) FROM {table}")[0][0])


def test_a_refused_batch_is_split_and_only_the_refused_reading_dead_lettered(
    live: LiveTwin, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = datastream_of(live, live.sta.create("Things", thing_body("m", "AAA001", "depth")))
    check = live.ingestor.check

    def leaky_check(body: Any, now: int) -> Reading:
        # a check that misses something: a time no BIGINT holds reaches the store
        reading = check(body, now)
        return dataclasses.replace(reading, time_us=2**70) if body["result"] == 7 else reading

    monkeypatch.setattr(live.ingestor, "check", leaky_check)
    batch = [obs(ds, k, k) for k in range(20)]
    report = live.ingestor.ingest(batch, "test")
    assert (report.stored, report.duplicates) == (19, 0)
    assert [(i, r.split(" (")[0]) for i, r in report.rejected] == [(7, "the store refused it")]
    assert _count(live.db, "sta_observations") == 19
    assert live.db.query("SELECT SUM(result) FROM sta_observations")[0][0] == sum(range(20)) - 7
    (dead,) = live.ingestor.dead_letters()
    assert dead["reason"].startswith("the store refused it") and str(2**70) in dead["payload"]
    assert live.ingestor.counters["dead: store refused"] == 1
    # the latest value moved to the newest stored reading
    assert live.db.query("SELECT result FROM live_latest")[0][0] == 19.0
    again = live.ingestor.ingest(batch, "test")  # a redelivery: nothing stored twice
    assert (again.stored, again.duplicates) == (0, 19)
    assert _count(live.db, "sta_observations") == 19


def test_a_store_that_does_not_answer_stops_the_batch(store_url: str, live: LiveTwin) -> None:
    ds = datastream_of(live, live.sta.create("Things", thing_body("m", "AAA001", "depth")))
    live.ingestor.ingest([obs(ds, 0, 0.0)], "test")
    live.db.store.close()  # the store is gone: no reading is to blame
    with pytest.raises(StoreError, match="does not answer"):
        live.ingestor.ingest([obs(ds, k, k) for k in range(1, 5)], "test")
    other = LiveDb(store_url)
    try:
        assert _count(other, "sta_observations") == 1
        assert _count(other, "live_dead_letters") == 0
    finally:
        other.close()
    stale = live.db
    live.db = LiveDb(store_url)  # for the fixture's close
    stale.close()  # its idle read connections too (the SensorThings reads' own)
