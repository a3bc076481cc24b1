"""Long work as jobs: run outside the event loop, with progress, cancellable.

A route submits a function that takes a progress callback and returns a JSON-safe result;
the :class:`JobManager` runs it on a small worker pool (threads: the heavy parts are numpy,
SQLite and PostgreSQL calls that release the GIL) and keeps its record — state, progress
fraction and message, timings, result or error — for clients polling ``GET /jobs/{id}``::

    job = jobs.submit("tiles", owner=principal.key_id, work=build, params={"site": "denhaag"})
    job.id  # 'j_5f0c...'; GET /jobs/j_5f0c... -> {"state": "running", "progress": 0.4, ...}

Identical work already queued or running (same ``dedupe`` key) is not started twice: the
running job is returned. Records live in memory and the oldest finished ones are dropped
beyond ``keep``; a restart forgets them (results that matter, such as tilesets, are written
to disk by the work itself).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cim.errors import NotFoundError, TwinError

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]

#: The id of the job whose work runs in this thread (``None`` outside jobs).
CURRENT_JOB: ContextVar[str | None] = ContextVar("current_job", default=None)
Work = Callable[[Progress], dict[str, Any]]


class JobState(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


class JobCancelledError(Exception):
    """Raised inside a job's work by its progress callback once the job is cancelled."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Job:
    """One unit of long work and what is known about it.

    Attributes
    ----------
    id : ``j_`` and 16 hex digits
    kind : what the work is (``tiles``, ``export``, ``traffic``, ...)
    owner : key id of the principal that submitted it
    params : what it was asked, as given (JSON-safe)
    state, progress, message : where it is; progress runs 0..1
    result : the work's JSON-safe result once it succeeded
    error : ``{"type", "message"}`` once it failed
    """

    id: str
    kind: str
    owner: str
    params: dict[str, Any]
    state: JobState = JobState.QUEUED
    progress: float = 0.0
    message: str = "queued"
    created: dt.datetime = field(default_factory=_now)
    started: dt.datetime | None = None
    finished: dt.datetime | None = None
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    dedupe: str | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event, repr=False)
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The public record."""
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state.value,
            "progress": round(self.progress, 4),
            "message": self.message,
            "params": self.params,
            "created": self.created.isoformat(),
            "started": self.started.isoformat() if self.started else None,
            "finished": self.finished.isoformat() if self.finished else None,
            "result": self.result,
            "error": self.error,
        }


class JobManager:
    """Runs jobs on a worker pool and keeps their records.

    Parameters
    ----------
    workers : jobs that run at once (the rest queue)
    keep : finished records kept, oldest dropped first
    """

    def __init__(self, workers: int = 2, keep: int = 500) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="twin-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._keep = keep

    def submit(
        self,
        kind: str,
        owner: str,
        work: Work,
        params: dict[str, Any] | None = None,
        dedupe: str | None = None,
    ) -> Job:
        """Queue ``work``; returns its job (or the unfinished job with the same ``dedupe``)."""
        with self._lock:
            if dedupe is not None:
                for job in self._jobs.values():
                    if job.dedupe == dedupe and job.state not in FINISHED:
                        return job
            job = Job(
                id=f"j_{secrets.token_hex(8)}",
                kind=kind,
                owner=owner,
                params=dict(params or {}),
                dedupe=dedupe,
            )
            self._jobs[job.id] = job
            self._trim()
        self._pool.submit(self._run, job, work)
        return job

    def get(self, job_id: str) -> Job:
        """The job with this id.

        Raises
        ------
        NotFoundError
            If there is none (or it was dropped).
        """
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no job {job_id!r}")
        return job

    def list(self, owner: str | None = None) -> list[Job]:
        """Jobs, newest first; only ``owner``'s when given."""
        with self._lock:
            jobs = list(self._jobs.values())
        return [j for j in reversed(jobs) if owner is None or j.owner == owner]

    def cancel(self, job_id: str) -> Job:
        """Ask a job to stop: a queued job never starts, a running one stops at its next
        progress report. Finished jobs are left as they are.

        Raises
        ------
        NotFoundError
            If there is no such job.
        """
        job = self.get(job_id)
        job.cancel_requested.set()
        with self._lock:
            if job.state is JobState.QUEUED:
                self._finish(job, JobState.CANCELLED, "cancelled before it started")
        return job

    def shutdown(self) -> None:
        """Cancel what is unfinished and stop the workers."""
        for job in self.list():
            if job.state not in FINISHED:
                job.cancel_requested.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _trim(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.state in FINISHED]
        for job_id in finished[: max(0, len(finished) - self._keep)]:
            del self._jobs[job_id]

    def _finish(self, job: Job, state: JobState, message: str) -> None:
        job.state = state
        job.message = message
        job.finished = _now()
        job.done.set()

    def _run(self, job: Job, work: Work) -> None:
        with self._lock:
            if job.state is not JobState.QUEUED:
                return
            job.state = JobState.RUNNING
            job.started = _now()
            job.message = "started"

        def progress(fraction: float, message: str) -> None:
            if job.cancel_requested.is_set():
                raise JobCancelledError
            job.progress = min(1.0, max(job.progress, float(fraction)))
            job.message = message

        token = CURRENT_JOB.set(job.id)
        try:
            result = work(progress)
        except JobCancelledError:
            with self._lock:
                self._finish(job, JobState.CANCELLED, "cancelled")
            return
        except TwinError as exc:
            job.error = {"type": type(exc).__name__, "message": str(exc)}
            with self._lock:
                self._finish(job, JobState.FAILED, str(exc))
            return
        except Exception as exc:  # a bug in the work: logged, never leaked in full
            logger.exception("job %s (%s) failed", job.id, job.kind)
            job.error = {"type": "InternalError", "message": f"{type(exc).__name__} in the job"}
            with self._lock:
                self._finish(job, JobState.FAILED, "internal error")
            return
        finally:
            CURRENT_JOB.reset(token)
        with self._lock:
            job.result = result
            job.progress = 1.0
            self._finish(job, JobState.SUCCEEDED, "done")
