"""Jobs: long work off the event loop, with progress, ownership and cancellation."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from denhaag_twin import Twin

from api.jobs import JobManager, Progress, RunState
from cim.errors import NotFoundError, SourceError
from scenarios.runs.store import RunStore


def _wait(manager: JobManager, job_id: str) -> dict[str, Any]:
    job = manager.wait(job_id, 10)
    assert job.finished_state, "job did not finish"
    return job.to_public()


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[RunStore]:
    store = RunStore(tmp_path / "t.db", tmp_path / "runs")
    yield store
    store.close()


def test_job_runs_reports_progress_and_keeps_its_result(runs: RunStore) -> None:
    manager = JobManager(runs, "test-runner", workers=1)
    seen: list[float] = []

    def work(progress: Progress) -> dict[str, Any]:
        for i in range(4):
            progress(i / 4 if i < 3 else 1.0, f"step {i}")
            seen.append(i / 4 if i < 3 else 1.0)
        return {"answer": 42}

    job = manager.submit("test", "owner", work, {"n": 4})
    record = _wait(manager, job.id)
    manager.shutdown()
    assert record["state"] == "succeeded"
    assert record["result"] == {"answer": 42}
    assert record["progress"] == 1.0
    assert record["spec"] == {"n": 4}
    assert seen == [0.0, 0.25, 0.5, 1.0]
    assert record["started"] is not None and record["finished"] >= record["started"]


def test_domain_error_fails_the_job_with_its_message_and_a_bug_is_not_leaked(
    runs: RunStore,
) -> None:
    manager = JobManager(runs, "test-runner", workers=1)

    def bad_input(progress: Progress) -> dict[str, Any]:
        raise SourceError("venue.wkt", "ring not closed")

    def bug(progress: Progress) -> dict[str, Any]:
        raise KeyError("secret internals")

    failed = _wait(manager, manager.submit("t", "o", bad_input).id)
    crashed = _wait(manager, manager.submit("t", "o", bug).id)
    manager.shutdown()
    assert failed["state"] == "failed"
    assert failed["error"]["type"] == "SourceError"
    assert "venue.wkt" in failed["error"]["message"]
    assert crashed["state"] == "failed"
    assert crashed["error"] == {"type": "InternalError", "message": "KeyError in the job"}
    assert "secret" not in str(crashed)


def test_cancel_stops_a_running_job_at_its_next_progress_report(runs: RunStore) -> None:
    manager = JobManager(runs, "test-runner", workers=1)
    started, release = threading.Event(), threading.Event()
    steps: list[int] = []

    def work(progress: Progress) -> dict[str, Any]:
        started.set()
        for i in range(1000):
            release.wait(5)
            progress(1.0, "working")  # reported at once (progress is throttled below 1)
            steps.append(i)
        return {}

    job = manager.submit("t", "o", work)
    queued = manager.submit("t", "o", work)  # one worker: this one waits
    assert started.wait(5)
    manager.cancel(queued.id)
    manager.cancel(job.id)
    release.set()
    assert _wait(manager, job.id)["state"] == "cancelled"
    assert manager.get(queued.id).state is RunState.CANCELLED
    manager.shutdown()
    assert len(steps) < 2


def test_same_work_is_not_started_twice(runs: RunStore) -> None:
    manager = JobManager(runs, "test-runner", workers=1)
    release = threading.Event()

    def work(progress: Progress) -> dict[str, Any]:
        release.wait(5)
        return {"built": True}

    first = manager.submit("tiles", "a", work, dedupe="tiles:denhaag:1")
    second = manager.submit("tiles", "b", work, dedupe="tiles:denhaag:1")
    release.set()
    assert first.id == second.id
    _wait(manager, first.id)
    third = manager.submit("tiles", "a", work, dedupe="tiles:denhaag:1")
    assert third.id != first.id
    _wait(manager, third.id)
    manager.shutdown()


def test_unknown_job_is_not_found(runs: RunStore) -> None:
    manager = JobManager(runs, "test-runner", workers=1)
    with pytest.raises(NotFoundError, match="r_nope"):
        manager.get("r_nope")
    manager.shutdown()


@pytest.mark.inprocess
def test_jobs_over_http_are_private_to_their_owner(twin: Twin) -> None:
    state = twin.client.app.state.twin  # type: ignore[attr-defined]
    planner = state.keys.authenticate(twin.keys["planner"])
    job = state.jobs.submit("test", planner.key_id, lambda progress: {"ok": True})
    assert state.jobs.wait(job.id, 5).finished_state
    mine = twin.client.get(f"/jobs/{job.id}", headers=twin.headers("planner"))
    assert mine.status_code == 200
    assert mine.json()["result"] == {"ok": True}
    assert [j["id"] for j in twin.client.get("/jobs", headers=twin.headers("planner")).json()][
        :1
    ] == [job.id]
    # an admin sees every job; anyone else gets 404, as if it did not exist
    assert twin.client.get(f"/jobs/{job.id}", headers=twin.headers("admin")).status_code == 200
    for role in ("display", "pilot"):
        response = twin.client.get(f"/jobs/{job.id}", headers=twin.headers(role))
        assert response.status_code == 404, role
        assert job.id not in [
            j["id"] for j in twin.client.get("/jobs", headers=twin.headers(role)).json()
        ]
    assert twin.client.get(f"/jobs/{job.id}").status_code == 401
    # a display key may not cancel, even its own; the owner may
    assert twin.client.delete(f"/jobs/{job.id}", headers=twin.headers("display")).status_code == 403
    cancelled = twin.client.delete(f"/jobs/{job.id}", headers=twin.headers("planner"))
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "succeeded"  # finished jobs stay as they are
