"""Bounds of a SensorThings ``$filter``, on both engines: nesting depth, length and number of
conditions are refused with a :class:`~twin.errors.LimitError` naming the setting, quickly;
long "any of these ids" lists are answered right (they go to the store as ``IN`` lists and
balanced trees, not as a chain SQLite's parser cannot take)."""

from __future__ import annotations

import time

import pytest
from live_helpers import datastream_of, obs, thing_body

from twin.errors import LimitError
from twin.live import LiveTwin
from twin.sta.entities import ENTITY_SETS
from twin.sta.filter import FilterCompiler
from twin.sta.limits import StaLimits

BASE = "http://twin/sta/v1.1"


def _observations(live: LiveTwin, n: int) -> list[int]:
    """``n`` observations of one datastream (results 0..n-1); their ids in time order."""
    thing = live.sta.create("Things", thing_body("manhole a", "AAA001", "water depth"))
    ds = datastream_of(live, thing)
    report = live.ingestor.ingest([obs(ds, i, float(i)) for i in range(n)], "test", want_ids=True)
    return [report.ids[i] for i in range(n)]


def _ids(live: LiveTwin, text: str, top: int = 1000) -> list[int]:
    answer = live.sta.read("Observations", {"$filter": text, "$top": str(top)}, BASE)
    return sorted(o["@iot.id"] for o in answer["value"])


def test_deep_parentheses_are_refused_by_the_depth_limit(live: LiveTwin) -> None:
    _observations(live, 3)
    started = time.perf_counter()
    with pytest.raises(LimitError, match=r"deeper than 32 levels.*TWIN_STA_FILTER_MAX_DEPTH=32"):
        _ids(live, "(" * 164 + "result gt 0" + ")" * 164)
    for hostile in (
        "not " * 40 + "result gt 0",
        "length(" * 40 + "name" + ")" * 40 + " gt 0",
        "result " + "add 1 " * 40 + "gt 0",
        "(" * 10_000 + "result gt 0" + ")" * 10_000,  # 20,011 characters: the length limit
    ):
        with pytest.raises(LimitError, match=r"TWIN_STA_FILTER_MAX_(DEPTH|CHARS)"):
            _ids(live, hostile)
    assert time.perf_counter() - started < 5


def test_nesting_up_to_the_limit_is_answered(live: LiveTwin) -> None:
    ids = _observations(live, 3)
    assert _ids(live, "(" * 31 + "result gt 0" + ")" * 31) == ids[1:]
    assert _ids(live, "not " * 30 + "result gt 0") == ids[1:]  # an even count of nots
    assert _ids(live, "result " + "add 1 " * 30 + "gt 30") == ids[1:]


@pytest.mark.parametrize("shape", ["parentheses", "not", "arithmetic", "mixed"])
def test_the_deepest_filter_the_settings_allow_never_overflows_the_store(
    live: LiveTwin, shape: str
) -> None:
    """At the largest depth a deployment may set (64), a filter is answered or refused with
    a LimitError, never a store error."""
    _observations(live, 3)
    live.sta.filters.limits = StaLimits(filter_max_depth=64)
    text = {
        "parentheses": "(" * 63 + "result gt 0 or id eq 1" + ")" * 63,
        "not": "not (" * 31 + "result gt 0 or id eq 1" + ")" * 31,
        "arithmetic": "(" * 31 + "result" + " add 1)" * 31 + " add 1 gt 0",
        "mixed": "not (id eq 1 or (" * 21 + "result gt 0" + "))" * 21,
    }[shape]
    try:
        _ids(live, text)
    except LimitError as exc:
        assert "TWIN_STA_FILTER_MAX_DEPTH" in str(exc)


@pytest.mark.parametrize("n", [88, 300])
def test_any_of_these_ids_is_answered_right(live: LiveTwin, n: int) -> None:
    ids = _observations(live, n + 20)
    wanted = ids[10 : 10 + n]
    text = " or ".join(f"id eq {i}" for i in wanted)
    assert _ids(live, text) == wanted
    # the other way round, mixed with other conditions, and inside an and
    text = " or ".join(f"{i} eq id" for i in wanted) + " or result lt 2"
    assert _ids(live, text) == sorted({*wanted, *ids[:2]})
    text = f"result ge 15 and ({' or '.join(f'id eq {i}' for i in wanted)})"
    assert _ids(live, text) == [i for i in wanted if i >= ids[15]]
    # a long chain of other conditions is a balanced tree, not n levels of parentheses
    text = " or ".join(f"result le {i}" for i in range(n))
    assert _ids(live, text) == ids[:n]


def test_too_many_conditions_are_refused(live: LiveTwin) -> None:
    ids = _observations(live, 3)
    text = " or ".join(f"id eq {i}" for i in range(501))
    with pytest.raises(LimitError, match=r"501 conditions.*TWIN_STA_FILTER_MAX_TERMS=500"):
        _ids(live, text)
    assert _ids(live, " or ".join(f"id eq {i}" for i in ids * 166)) == ids  # 498 terms


def test_compiled_sql_stays_shallow() -> None:
    """300 OR-ed terms of any kind compile to SQL nesting about log2(300) deep (SQLite's
    parser overflows near 100 nested parentheses)."""
    compiler = FilterCompiler(postgres=False)
    sql, params = compiler.compile(
        ENTITY_SETS["Observations"], " or ".join(f"result gt {i}" for i in range(300))
    )
    assert len(params) == 300 and _nesting(sql) <= 12
    sql, params = compiler.compile(
        ENTITY_SETS["Observations"], " or ".join(f"id eq {i}" for i in range(300))
    )
    assert sql.count("IN (") == 1 and len(params) == 300


def _nesting(sql: str) -> int:
    depth = deepest = 0
    for ch in sql:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        deepest = max(deepest, depth)
    return deepest
