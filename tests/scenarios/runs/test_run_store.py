"""The run store on both engines: records and their life, compare-and-set, results, series,
files, paging and scopes, and a failed or cancelled run keeping nothing half-way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cim.errors import NotFoundError
from scenarios.runs.store import RunState, RunStore


@pytest.fixture
def runs(store_url: str, tmp_path: Path) -> Iterator[RunStore]:
    store = RunStore(store_url, tmp_path / "runs")
    yield store
    store.close()


def _series() -> tuple[str, str, np.ndarray, list[str], np.ndarray]:
    times = np.array([0.0, 60.0, 120.0])
    values = np.array([[0.0, 0.1], [0.2, 0.4], [0.3, 0.0]])
    return ("depth_m", "m", times, ["990100001001001010001", "990100001001001010002"], values)


def test_a_run_lives_queued_running_succeeded_with_its_results(runs: RunStore) -> None:
    record = runs.create("drill", "flood", "k1", {"duration_s": 60}, site="s", runner="me")
    assert record.state is RunState.QUEUED and record.progress == 0
    assert record.spec == {"duration_s": 60} and record.id.startswith("r_")
    assert runs.start(record.id, "me")
    assert not runs.start(record.id, "other")  # compare-and-set: one holder
    assert not runs.report(record.id, 0.5, "half")
    assert runs.report(record.id, 0.2, "late") is False
    assert runs.get(record.id).progress == 0.5  # progress never moves back
    objects = [("990100001001001010001", "max_depth_m", 0.3, 60.0)]
    assert runs.store_outcome(record.id, {"summary": {"n": 1}}, objects, [_series()])
    assert runs.get(record.id).state is RunState.RUNNING  # finishing: not succeeded yet
    assert runs.mark_succeeded(record.id, {"drill_alerts": None})
    done = runs.get(record.id)
    assert done.state is RunState.SUCCEEDED and done.finished is not None
    assert done.result == {"summary": {"n": 1}, "drill_alerts": None}
    assert runs.objects(record.id) == [
        {"code": "990100001001001010001", "metric": "max_depth_m", "value": 0.3, "first_t_s": 60.0}
    ]
    unit, times, codes, values = runs.series(record.id, "depth_m")
    assert unit == "m" and codes == _series()[3]
    np.testing.assert_array_equal(times, _series()[2])
    np.testing.assert_array_equal(values, _series()[4])
    with pytest.raises(NotFoundError, match="has no series 'speed'; it has: depth_m"):
        runs.series(record.id, "speed")
    public = done.to_public()
    assert public["href"] == f"/runs/{record.id}" and public["state"] == "succeeded"
    assert runs.finish(record.id, RunState.FAILED, "too late") is False  # finished stays


def test_a_cancel_asked_while_finishing_keeps_nothing(runs: RunStore) -> None:
    record = runs.create("drill", "flood", "k1", {}, runner="me")
    runs.start(record.id, "me")
    assert runs.store_outcome(record.id, {"summary": {}}, [("c", "m", 1.0, None)], [_series()])
    runs.request_cancel(record.id)
    assert not runs.mark_succeeded(record.id, {})
    assert runs.finish(record.id, RunState.CANCELLED, "cancelled")
    ended = runs.get(record.id)
    assert ended.state is RunState.CANCELLED and ended.result is None
    assert runs.objects(record.id) == [] and runs.metrics(record.id) == []


def test_a_queued_run_cancelled_never_starts(runs: RunStore) -> None:
    record = runs.create("drill", "crowd", "k1", {}, runner="me")
    assert runs.request_cancel(record.id).state is RunState.CANCELLED
    assert not runs.start(record.id, "me")


def test_dedupe_joins_the_unfinished_run(runs: RunStore) -> None:
    first = runs.create("tiles", "tiles", "a", {}, dedupe="tiles:s:1")
    assert runs.create("tiles", "tiles", "b", {}, dedupe="tiles:s:1").id == first.id
    runs.finish(first.id, RunState.FAILED, "x")
    assert runs.create("tiles", "tiles", "b", {}, dedupe="tiles:s:1").id != first.id


def test_find_filters_pages_and_scopes(runs: RunStore) -> None:
    ids = []
    for i in range(5):
        record = runs.create(
            "drill",
            "evacuation" if i % 2 else "flood",
            f"k{i % 2}",
            {"i": i},
            site="denhaag",
            scope="990100001001094010001" if i % 2 else None,
        )
        ids.append(record.id)
    runs.create("tiles", "tiles", "k0", {})
    records, total = runs.find(kind="drill")
    assert total == 5 and {r.id for r in records} == set(ids)
    page, total = runs.find(kind="drill", limit=2, offset=2)
    assert total == 5 and len(page) == 2
    assert {r.drill for r in runs.find(drill="evacuation")[0]} == {"evacuation"}
    assert runs.find(owner="k1")[1] == 2
    mine, _ = runs.find(kind="drill", scopes=["990100001001094"])
    assert len(mine) == 2 and all(r.scope for r in mine)
    assert runs.find(kind="drill", scopes=["990100001001095"])[1] == 0
    assert runs.find(kind="drill", scopes=[])[1] == 0
    with pytest.raises(NotFoundError):
        runs.get("r_0000000000000000")


def test_deleting_a_run_removes_its_rows(runs: RunStore) -> None:
    record = runs.create("drill", "flood", "k", {})
    runs.start(record.id, "me")
    runs.succeed(record.id, {"summary": {}}, [("c", "m", 1.0, None)], [_series()])
    unfinished = runs.create("drill", "flood", "k", {})
    with pytest.raises(ValueError, match="cancel it first"):
        runs.delete(unfinished.id)
    runs.delete(record.id)
    with pytest.raises(NotFoundError):
        runs.get(record.id)
    assert runs.objects(record.id) == [] and runs.metrics(record.id) == []


def test_an_owner_gets_no_more_unfinished_runs_than_its_limit_even_racing(
    runs: RunStore, store_url: str, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from scenarios.runs.store import RunLimitError

    other = RunStore(store_url, tmp_path / "runs")  # a second connection: another process
    try:

        def create(store: RunStore) -> str:
            try:
                store.create("drill", "crowd", "k1", {}, max_unfinished=3, limit="TWIN_X")
            except RunLimitError as exc:
                assert (exc.limit, exc.value, exc.running) == ("TWIN_X", 3, 3)
                return "refused"
            return "created"

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(create, [runs, other] * 4))
    finally:
        other.close()
    assert sorted(answers) == ["created"] * 3 + ["refused"] * 5
    assert runs.unfinished("drill", "k1") == 3
    # another owner, or another kind, is not held by k1's runs
    runs.create("drill", "crowd", "k2", {}, max_unfinished=3)
    runs.create("tiles", "tiles", "k1", {}, max_unfinished=3)
    # a finished run frees its place
    (first, *_), _ = runs.find(owner="k1", kind="drill")
    runs.request_cancel(first.id)
    runs.create("drill", "crowd", "k1", {}, max_unfinished=3)
    with pytest.raises(RunLimitError, match=r"has 3 drill runs queued or running"):
        runs.create("drill", "crowd", "k1", {}, max_unfinished=3)
