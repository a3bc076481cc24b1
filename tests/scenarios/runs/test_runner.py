"""The runner on real drills: worker processes and a real local Ray, cancel within 2 s,
time and memory bounds, identical seeded results on both executors, and interrupted runs
after their holder died."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cim.store import open_store
from scenarios.drills import DRILLS
from scenarios.drills.base import PrepareContext
from scenarios.runs.runner import Bounds, Executor, LocalExecutor, RayExecutor, Runner
from scenarios.runs.store import RunState, RunStore
from scenarios.runs.worker import WorkerPaths

ASSETS = Path(__file__).parents[3] / "assets"
TRAFFIC = {"network": "tokyo_arterial", "seed": 3}
LONG_CROWD = {"venue": "waterfront", "agents": 70000, "seed": 1}


@pytest.fixture(scope="module")
def ray_executor() -> Iterator[RayExecutor]:
    import ray

    executor = RayExecutor("local", slots=2, num_cpus=2)
    yield executor
    ray.shutdown()


class Bench:
    def __init__(self, folder: Path, executor: Executor) -> None:
        self.url = str(folder / "t.db")
        self.runs = RunStore(self.url, folder / "runs")
        self.finished: list[tuple[str, dict[str, Any]]] = []
        paths = WorkerPaths(self.url, str(folder / "runs"), str(ASSETS), str(folder / "cache"))
        self.runner = Runner(self.runs, executor, paths, lambda r, f: self.finished.append((r, f)))
        self.runner.start()

    def submit(self, drill: str, body: dict[str, Any], bounds: Bounds | None = None) -> str:
        spec = DRILLS[drill].spec.model_validate(body)
        store = open_store(self.url)
        try:
            context = PrepareContext(store, ASSETS, Path(self.url).parent / "cache", self.url)
            resolved = DRILLS[drill].prepare(spec, context)
        finally:
            store.close()
        record = self.runs.create(
            "drill", drill, "test", resolved.model_dump(mode="json"), runner=self.runner.id
        )
        self.runner.submit(record.id, bounds)
        return record.id

    def wait(self, run_id: str, timeout_s: float = 180, until: str | None = None) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            record = self.runs.get(run_id)
            if until is not None and record.state.value == until and record.progress > 0:
                return record
            if until is None and record.finished_state:
                return record
            time.sleep(0.05)
        raise AssertionError(f"run {run_id}: {self.runs.get(run_id)}")

    def close(self) -> None:
        self.runner.close()
        self.runs.close()


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Bench]:
    bench = Bench(tmp_path, LocalExecutor(2))
    yield bench
    bench.close()


@pytest.fixture
def on_ray(tmp_path: Path, ray_executor: RayExecutor) -> Iterator[Bench]:
    bench = Bench(tmp_path, ray_executor)
    yield bench
    bench.close()


def _worker_pids() -> set[int]:
    out = subprocess.run(
        ["pgrep", "-P", str(os.getpid()), "-f", "scenarios.runs.worker"],
        capture_output=True,
        text=True,
        check=False,
    )
    return {int(p) for p in out.stdout.split()}


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_cancel_stops_a_running_drill_within_two_seconds(
    executor: str, request: pytest.FixtureRequest
) -> None:
    bench: Bench = request.getfixturevalue("local" if executor == "local" else "on_ray")
    run_id = bench.submit("crowd", LONG_CROWD)
    bench.wait(run_id, until="running")
    asked = time.monotonic()
    bench.runs.request_cancel(run_id)
    record = bench.wait(run_id, timeout_s=2.0)
    assert time.monotonic() - asked < 2.0
    assert record.state is RunState.CANCELLED
    assert not bench.runs.folder(run_id).exists()
    assert bench.runs.objects(run_id) == [] and bench.runs.files(run_id) == []


def test_the_same_seeded_run_gives_identical_results_on_the_pool_and_on_ray(
    local: Bench, on_ray: Bench
) -> None:
    first = local.wait(local.submit("traffic", TRAFFIC))
    second = on_ray.wait(on_ray.submit("traffic", TRAFFIC))
    assert first.state is RunState.SUCCEEDED, first.error
    assert second.state is RunState.SUCCEEDED, second.error
    drop = {"wall_s"}
    a = {k: v for k, v in first.result["summary"].items() if k not in drop}
    b = {k: v for k, v in second.result["summary"].items() if k not in drop}
    assert a == b and a["vehicles"] > 0
    strip = {"summary", "wall_s", "files"}
    assert {k: v for k, v in first.result.items() if k not in strip} == {
        k: v for k, v in second.result.items() if k not in strip
    }


def test_a_run_past_its_time_bound_is_killed_and_says_so(local: Bench) -> None:
    run_id = local.submit("crowd", LONG_CROWD, Bounds(max_wall_s=2.0))
    record = local.wait(run_id, timeout_s=60)
    assert record.state is RunState.FAILED
    assert "exceeded its time bound of 2 s" in record.message
    assert record.error == {"type": "RunBoundError", "message": record.message}


def test_a_run_past_its_memory_bound_is_killed_and_says_so(local: Bench) -> None:
    run_id = local.submit("crowd", LONG_CROWD, Bounds(max_memory_mb=60))
    record = local.wait(run_id, timeout_s=60)
    assert record.state is RunState.FAILED
    assert "exceeded its memory bound of 60 MB" in record.message
    # the runner lives on and runs the next one
    after = local.wait(local.submit("traffic", TRAFFIC))
    assert after.state is RunState.SUCCEEDED


def test_a_worker_that_dies_fails_its_run_and_is_replaced(local: Bench) -> None:
    before = _worker_pids()
    run_id = local.submit("crowd", LONG_CROWD)
    local.wait(run_id, until="running")
    for pid in _worker_pids() - before:
        os.kill(pid, 9)
    record = local.wait(run_id, timeout_s=10)
    assert record.state is RunState.FAILED and "worker process died" in record.message
    assert local.wait(local.submit("traffic", TRAFFIC)).state is RunState.SUCCEEDED


def test_runs_of_a_dead_holder_become_interrupted_with_their_files_removed(
    tmp_path: Path,
) -> None:
    url = tmp_path / "t.db"
    runs = RunStore(url, tmp_path / "runs")
    # a holder that crashed: a process of this host that exists no more
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    runs.db.execute(
        "INSERT INTO run_runners (id, host, pid, started, heartbeat) VALUES (?, ?, ?, ?, ?)",
        ("ghost", os.uname().nodename, dead.pid, time.time(), time.time()),
    )
    running = runs.create("drill", "traffic", "o", TRAFFIC, runner="ghost")
    assert runs.start(running.id, "ghost")
    queued = runs.create("drill", "traffic", "o", TRAFFIC, runner="ghost")
    (runs.folder(running.id)).mkdir(parents=True)
    (runs.folder(running.id) / "partial.tif").write_bytes(b"half")
    finished = runs.create("drill", "traffic", "o", TRAFFIC, runner="ghost")
    runs.finish(finished.id, RunState.FAILED, "earlier")
    runner = Runner(
        runs, LocalExecutor(1), WorkerPaths(str(url), str(tmp_path / "runs"), str(ASSETS), "")
    )
    try:
        assert runs.get(running.id).state is RunState.INTERRUPTED
        assert runs.get(queued.id).state is RunState.INTERRUPTED
        assert runs.get(finished.id).state is RunState.FAILED
        assert not runs.folder(running.id).exists()
        mine = runs.create("drill", "traffic", "o", TRAFFIC, runner=runner.id)
        assert runner.sweep() == [] and runs.get(mine.id).state is RunState.QUEUED
    finally:
        runner.close()
        runs.close()


def test_a_cancel_asked_while_a_run_finishes_ends_it_cancelled_with_nothing_kept(
    local: Bench,
) -> None:
    for _ in range(5):
        run_id = local.submit("traffic", TRAFFIC)
        while local.runs.get(run_id).state.value == "queued":
            time.sleep(0.01)
        local.runs.request_cancel(run_id)
        record = local.wait(run_id, timeout_s=10)
        assert record.state in (RunState.CANCELLED, RunState.SUCCEEDED), record
        if record.state is RunState.CANCELLED:
            assert local.runs.objects(run_id) == [] and record.result is None
            assert run_id not in [r for r, _ in local.finished]
