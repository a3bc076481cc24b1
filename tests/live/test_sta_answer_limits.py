"""Bounds of a SensorThings answer, on both engines: the largest ``$top`` (at the top and
inside ``$expand``), how deep ``$expand`` nests, and how many entities one answer holds
(expanded ones included) are refused with a :class:`~twin.errors.LimitError` naming the
setting, before the answer is built."""

from __future__ import annotations

import time

import pytest
from live_helpers import datastream_of, obs, thing_body

from twin.errors import LimitError
from twin.live import LiveTwin
from twin.sta.limits import StaLimits

BASE = "http://twin/sta/v1.1"


def _seed(live: LiveTwin, things: int, readings: int) -> None:
    for k in range(things):
        thing = live.sta.create("Things", thing_body(f"manhole {k}", f"AAA{k:03d}", "depth"))
        ds = datastream_of(live, thing)
        live.ingestor.ingest([obs(ds, i, float(i)) for i in range(readings)], "test")


def test_nested_top_beyond_the_limit_is_refused(live: LiveTwin) -> None:
    _seed(live, 2, 3)
    started = time.perf_counter()
    query = {"$top": "20", "$expand": "Observations($top=10001)"}
    with pytest.raises(
        LimitError, match=r"\$top=10001 inside \$expand is more than 10000.*TWIN_STA_MAX_TOP=10000"
    ):
        live.sta.read("Datastreams", query, BASE)
    with pytest.raises(LimitError, match=r"\$top=10001 is more than.*TWIN_STA_MAX_TOP=10000"):
        live.sta.read("Datastreams", {"$top": "10001"}, BASE)
    with pytest.raises(LimitError, match="TWIN_STA_MAX_TOP"):
        live.sta.read("Things", {"$expand": "Datastreams/Observations($top=20000)"}, BASE)
    assert time.perf_counter() - started < 5


def test_expand_deeper_than_the_limit_is_refused(live: LiveTwin) -> None:
    _seed(live, 1, 2)
    deep = "Datastreams($expand=Thing($expand=Datastreams($expand=Observations)))"
    with pytest.raises(LimitError, match=r"deeper than 3 levels.*TWIN_STA_EXPAND_MAX_DEPTH=3"):
        live.sta.read("Things", {"$expand": deep}, BASE)
    with pytest.raises(LimitError, match="TWIN_STA_EXPAND_MAX_DEPTH"):
        live.sta.read("Things", {"$expand": "Datastreams/Thing/Datastreams/Observations"}, BASE)
    hostile = "Datastreams($expand=" * 5_000 + "Thing" + ")" * 5_000
    with pytest.raises(LimitError, match="TWIN_STA_EXPAND_MAX_DEPTH"):
        live.sta.read("Things", {"$expand": hostile}, BASE)
    # three levels are answered
    answer = live.sta.read("Things", {"$expand": "Datastreams/Thing/Locations"}, BASE)
    assert answer["value"][0]["Datastreams"][0]["Thing"]["Locations"][0]["name"]


def test_an_answer_with_too_many_entities_is_refused(live: LiveTwin) -> None:
    """The pilot's request: 20 Datastreams, each with up to 10,000 Observations expanded."""
    _seed(live, 3, 30)
    live.sta.limits = StaLimits(max_entities=50)
    query = {"$top": "20", "$expand": "Observations($top=10000)"}
    started = time.perf_counter()
    with pytest.raises(LimitError, match=r"more than 50 entities.*TWIN_STA_MAX_ENTITIES=50"):
        live.sta.read("Datastreams", query, BASE)
    assert time.perf_counter() - started < 5
    # within the bound: 3 Datastreams and 3 x 10 Observations
    query = {"$top": "20", "$expand": "Observations($top=10)"}
    answer = live.sta.read("Datastreams", query, BASE)
    assert [len(d["Observations"]) for d in answer["value"]] == [10, 10, 10]
    # a plain page larger than the bound is refused too, one that fits is not
    with pytest.raises(LimitError, match="TWIN_STA_MAX_ENTITIES"):
        live.sta.read("Observations", {"$top": "51"}, BASE)
    assert len(live.sta.read("Observations", {"$top": "50"}, BASE)["value"]) == 50


def test_the_default_page_never_exceeds_a_smaller_max_top(live: LiveTwin) -> None:
    _seed(live, 1, 30)
    live.sta.limits = StaLimits(max_top=7)
    answer = live.sta.read("Observations", {}, BASE)
    assert len(answer["value"]) == 7 and "$top=7" in answer["@iot.nextLink"]


def test_the_pilots_request_at_the_default_bounds(live: LiveTwin) -> None:
    """``Datastreams?$top=20&$expand=Observations($top=10000)`` over 3 Datastreams of
    10,000 Observations each: 30,020 entities, beyond the default 20,000."""
    for k in range(3):
        thing = live.sta.create("Things", thing_body(f"gauge {k}", f"AAA{k:03d}", "depth"))
        ds = datastream_of(live, thing)
        with live.db.transaction() as cur:
            cur.executemany(
                live.db.sql(
                    "INSERT INTO sta_observations (datastream_id, phenomenon_time, result, "
                    "received) VALUES (?, ?, ?, ?)"
                ),
                [(ds, i * 1_000_000, float(i), 0) for i in range(10_000)],
            )
    query = {"$top": "20", "$expand": "Observations($top=10000)"}
    started = time.perf_counter()
    with pytest.raises(LimitError, match=r"more than 20000 entities.*TWIN_STA_MAX_ENTITIES=20000"):
        live.sta.read("Datastreams", query, BASE)
    assert time.perf_counter() - started < 5


def test_an_answer_too_large_is_refused(live: LiveTwin) -> None:
    """Five Things of 100 kB properties each, under a bound of 300 kB."""
    for k in range(5):
        body = thing_body(f"manhole {k}", f"AAA{k:03d}", "depth")
        body["properties"]["notes"] = "x" * 100_000
        live.sta.create("Things", body)
    live.sta.limits = StaLimits(max_answer_bytes=300_000)
    started = time.perf_counter()
    with pytest.raises(
        LimitError, match=r"larger than 300000 bytes.*TWIN_STA_MAX_ANSWER_BYTES=300000"
    ):
        live.sta.read("Things", {"$top": "5"}, BASE)
    with pytest.raises(LimitError, match="TWIN_STA_MAX_ANSWER_BYTES"):
        live.sta.read("Datastreams", {"$expand": "Thing"}, BASE)
    assert time.perf_counter() - started < 5
    assert len(live.sta.read("Things", {"$top": "2"}, BASE)["value"]) == 2
