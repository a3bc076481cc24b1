"""Long work that is not a drill (tileset builds, exports) as jobs recorded in the store.

A route submits a function that takes a progress callback and returns a JSON-safe result;
the :class:`JobManager` runs it on a small thread pool of this process (the heavy parts are
numpy, SQLite and PostgreSQL calls that release the GIL) while its record — state,
progress, timings, result or error — lives in the run store beside the drills' runs, so
every API process answers ``GET /jobs/{id}`` alike and a restart keeps it::

    job = jobs.submit("tiles", owner=principal.key_id, work=build, params={"site": "denhaag"})
    job.id  # 'r_5f0c...'; GET /jobs/r_5f0c... -> {"state": "running", "progress": 0.4, ...}

Identical work already queued or running anywhere (same ``dedupe`` key) is not started twice:
that job is returned. A cancel asked through any process stops the work at its next progress
report. Drills do not run here: they are runs (:mod:`scenarios.runs`), executed outside the
API process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cim.errors import TwinError
from scenarios.runs.store import FINISHED, RunRecord, RunState, RunStore

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
Work = Callable[[Progress], dict[str, Any]]
Job = RunRecord

__all__ = ["FINISHED", "Job", "JobCancelledError", "JobManager", "Progress", "RunState", "Work"]


class JobCancelledError(Exception):
    """Raised inside a job's work by its progress callback once the job is cancelled."""


class JobManager:
    """Runs jobs on a thread pool and keeps their records in the run store.

    Parameters
    ----------
    runs : the run store
    runner : this process's runner id (so other processes know the job is held)
    workers : jobs that run at once (the rest queue)
    """

    def __init__(self, runs: RunStore, runner: str, workers: int = 2) -> None:
        self.runs = runs
        self.runner = runner
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="twin-job")
        self._done: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def submit(
        self,
        kind: str,
        owner: str,
        work: Work,
        params: dict[str, Any] | None = None,
        dedupe: str | None = None,
    ) -> Job:
        """Queue ``work``; returns its job (or the unfinished job with the same ``dedupe``)."""
        spec = dict(params or {})
        site = spec.get("site")
        record = self.runs.create(
            kind,
            kind,
            owner,
            spec,
            site=site if isinstance(site, str) else None,
            dedupe=dedupe,
            runner=self.runner,
        )
        with self._lock:
            if record.id in self._done or record.state is not RunState.QUEUED:
                return record
            self._done[record.id] = threading.Event()
        self._pool.submit(self._run, record.id, work)
        return record

    def get(self, job_id: str) -> Job:
        """The job with this id.

        Raises
        ------
        NotFoundError
            If there is none.
        """
        return self.runs.get(job_id)

    def list(self, owner: str | None = None, limit: int = 500) -> list[Job]:
        """Jobs and runs, newest first; only ``owner``'s when given."""
        return self.runs.find(owner=owner, limit=limit)[0]

    def cancel(self, job_id: str) -> Job:
        """Ask a job to stop: a queued job never starts, a running one stops at its next
        progress report. Finished jobs are left as they are.

        Raises
        ------
        NotFoundError
            If there is no such job.
        """
        return self.runs.request_cancel(job_id)

    def wait(self, job_id: str, timeout_s: float = 30.0) -> Job:
        """Wait until a job of this process ends (or the timeout passes); its record."""
        with self._lock:
            done = self._done.get(job_id)
        if done is not None:
            done.wait(timeout_s)
        return self.runs.get(job_id)

    def shutdown(self) -> None:
        """Cancel what is unfinished here and stop the workers."""
        with self._lock:
            pending = [j for j, e in self._done.items() if not e.is_set()]
        for job_id in pending:
            self.runs.request_cancel(job_id)
        self._pool.shutdown(wait=True, cancel_futures=True)
        for job_id in pending:
            self.runs.finish(job_id, RunState.INTERRUPTED, "interrupted: the server stopped")

    def _run(self, job_id: str, work: Work) -> None:
        try:
            self._execute(job_id, work)
        finally:
            with self._lock:
                event = self._done.get(job_id)
            if event is not None:
                event.set()

    def _execute(self, job_id: str, work: Work) -> None:
        if not self.runs.start(job_id, self.runner):
            return
        last = [0.0]

        def progress(fraction: float, message: str) -> None:
            now = time.monotonic()
            if now - last[0] < 0.2 and fraction < 1.0:
                return
            last[0] = now
            if self.runs.report(job_id, fraction, message):
                raise JobCancelledError

        try:
            result = work(progress)
        except JobCancelledError:
            self.runs.finish(job_id, RunState.CANCELLED, "cancelled")
            return
        except TwinError as exc:
            error = {"type": type(exc).__name__, "message": str(exc)}
            self.runs.finish(job_id, RunState.FAILED, str(exc), error)
            return
        except Exception as exc:  # a bug in the work: logged, never leaked in full
            logger.exception("job %s failed", job_id)
            error = {"type": "InternalError", "message": f"{type(exc).__name__} in the job"}
            self.runs.finish(job_id, RunState.FAILED, "internal error", error)
            return
        if not self.runs.succeed(job_id, result):
            self.runs.finish(job_id, RunState.CANCELLED, "cancelled")
