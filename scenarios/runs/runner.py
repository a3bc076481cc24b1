"""The runner: executes this process's runs outside it, on local worker processes or Ray.

One :class:`Runner` per API process. Its dispatcher thread starts queued runs on a free
executor slot, watches them (a cancel asked through any API process kills the run within
its poll interval; a run past its wall-time or memory bound is killed and fails saying so),
beats the process's heartbeat in the store, and marks ``interrupted`` the runs whose holder
died (at start and every :data:`SWEEP_S`). The HTTP-serving process never runs a drill in
its own threads; a killed worker is replaced.

Executors (ADR 0018):

- :class:`LocalExecutor` — ``TWIN_RUN_WORKERS`` worker processes
  (``python -m scenarios.runs.worker``), started on demand and kept for the next run;
  cancelling kills the process (SIGKILL), so a drill that never reports progress still stops.
- :class:`RayExecutor` — each run a Ray task (``TWIN_RAY=auto`` starts or joins a local
  cluster, ``ray://host:port`` a remote one), cancelled with ``ray.cancel(force=True)``.

Both call :func:`scenarios.runs.worker.execute_run`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import orjson

from scenarios.runs.store import RunState, RunStore
from scenarios.runs.worker import WorkerPaths

logger = logging.getLogger(__name__)

#: Seconds between the dispatcher's looks at its runs (cancel, bounds, ends).
POLL_S = 0.2
#: Seconds between heartbeats and between sweeps for orphaned runs.
BEAT_S = 5.0
SWEEP_S = 15.0

#: Called in the dispatcher thread when a run of this process stored its outcome:
#: ``(run id, finish payload {"site", "layers", "alerts"})`` -> what to add to its result.
OnSucceeded = Callable[[str, dict[str, Any]], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Bounds:
    """What one run may use before it is killed."""

    max_wall_s: float = 86_400.0
    max_memory_mb: int = 8_000


class Handle(Protocol):
    """A run an executor is executing."""

    def answer(self) -> dict[str, Any] | None:
        """The worker's answer once it ended, else ``None``."""

    def alive(self) -> bool:
        """Whether it still executes."""

    def rss_mb(self) -> float | None:
        """Resident memory of its process, MB (``None`` where unknown)."""

    def kill(self) -> None:
        """Stop it now."""


class Executor(Protocol):
    """Somewhere runs execute."""

    slots: int

    def submit(self, run_id: str, paths: WorkerPaths) -> Handle:
        """Start executing a run."""

    def close(self) -> None:
        """Stop everything."""


class _Worker:
    """One local worker process."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scenarios.runs.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            env=env,
            start_new_session=True,
        )
        self._answers: deque[dict[str, Any]] = deque()
        self._reader = threading.Thread(target=self._read, name="run-worker-out", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        out: IO[bytes] | None = self.process.stdout
        if out is None:
            return
        for line in out:
            try:
                self._answers.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                logger.warning("run worker %s wrote %r", self.process.pid, line[:200])

    def send(self, run_id: str, paths: WorkerPaths) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(orjson.dumps({"run": run_id, "paths": paths.to_dict()}) + b"\n")
        stdin.flush()

    def take(self) -> dict[str, Any] | None:
        return self._answers.popleft() if self._answers else None

    def alive(self) -> bool:
        return self.process.poll() is None

    def rss_mb(self) -> float | None:
        try:
            with open(f"/proc/{self.process.pid}/statm", encoding="ascii") as statm:
                pages = int(statm.read().split()[1])
        except (OSError, ValueError, IndexError):
            return None
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.close_pipes()

    def stop(self) -> None:
        """End the worker gently (no more tasks), killing it if it does not end."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
        self.close_pipes()

    def close_pipes(self) -> None:
        self._reader.join(timeout=2)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


class _LocalHandle:
    def __init__(self, executor: LocalExecutor, worker: _Worker) -> None:
        self._executor = executor
        self._worker = worker
        self._done: dict[str, Any] | None = None

    def answer(self) -> dict[str, Any] | None:
        if self._done is None:
            self._done = self._worker.take()
            if self._done is not None:
                self._executor.release(self._worker)
        return self._done

    def alive(self) -> bool:
        return self._done is None and self._worker.alive()

    def rss_mb(self) -> float | None:
        return self._worker.rss_mb()

    def kill(self) -> None:
        self._worker.kill()
        self._executor.discard(self._worker)


class LocalExecutor:
    """Worker processes on this machine, at most ``slots`` at once.

    Parameters
    ----------
    slots : runs executing at once (``TWIN_RUN_WORKERS``)
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"slots(={slots}) must be >= 1")
        self.slots = slots
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._lock = threading.Lock()

    def submit(self, run_id: str, paths: WorkerPaths) -> Handle:
        with self._lock:
            worker = None
            while self._idle:
                candidate = self._idle.pop()
                if candidate.alive():
                    worker = candidate
                    break
                self._all.remove(candidate)
            if worker is None:
                worker = _Worker()
                self._all.append(worker)
        worker.send(run_id, paths)
        return _LocalHandle(self, worker)

    def release(self, worker: _Worker) -> None:
        """A worker finished its run and waits for the next."""
        with self._lock:
            if worker.alive() and worker in self._all:
                self._idle.append(worker)

    def discard(self, worker: _Worker) -> None:
        """A worker was killed."""
        with self._lock:
            if worker in self._idle:
                self._idle.remove(worker)
            if worker in self._all:
                self._all.remove(worker)

    def close(self) -> None:
        with self._lock:
            workers = list(self._all)
            self._all.clear()
            self._idle.clear()
        for worker in workers:
            worker.stop()


class _RayHandle:
    def __init__(self, ref: Any) -> None:
        self._ref = ref
        self._done: dict[str, Any] | None = None
        self._failed = False

    def answer(self) -> dict[str, Any] | None:
        import ray

        if self._done is None and not self._failed:
            ready, _ = ray.wait([self._ref], timeout=0)
            if ready:
                try:
                    self._done = ray.get(self._ref)
                except Exception as exc:  # the task died (killed, out of memory)
                    logger.warning("ray task failed: %s", exc)
                    self._failed = True
        return self._done

    def alive(self) -> bool:
        return self.answer() is None and not self._failed

    def rss_mb(self) -> float | None:
        return None

    def kill(self) -> None:
        import ray

        ray.cancel(self._ref, force=True)
        self._failed = True


class RayExecutor:
    """Each run a task on a Ray cluster.

    Parameters
    ----------
    address : ``auto`` (join or start a local cluster) or ``ray://host:port``
    slots : runs submitted at once (the cluster queues beyond its CPUs)
    num_cpus : CPUs of a local cluster this process starts (``None``: Ray's default)
    """

    def __init__(self, address: str, slots: int, num_cpus: int | None = None) -> None:
        import ray

        if not ray.is_initialized():
            if address == "auto":
                try:
                    ray.init(address="auto", log_to_driver=False)
                except (ConnectionError, RuntimeError):
                    ray.init(num_cpus=num_cpus, log_to_driver=False, include_dashboard=False)
            elif address == "local":
                ray.init(num_cpus=num_cpus, log_to_driver=False, include_dashboard=False)
            else:
                ray.init(address=address, log_to_driver=False)
        self.slots = slots
        self._task = ray.remote(num_cpus=1, max_retries=0)(_ray_execute)

    def submit(self, run_id: str, paths: WorkerPaths) -> Handle:
        return _RayHandle(self._task.remote(run_id, paths.to_dict()))

    def close(self) -> None:
        pass


def _ray_execute(run_id: str, paths: dict[str, str]) -> dict[str, Any]:
    from scenarios.runs.worker import execute_run

    return execute_run(run_id, WorkerPaths(**paths))


@dataclass
class _Running:
    run_id: str
    handle: Handle
    bounds: Bounds
    started: float = field(default_factory=time.monotonic)


class Runner:
    """Dispatches this process's runs to an executor and keeps the store in step.

    Parameters
    ----------
    runs : the run store (this process's connection)
    executor : where runs execute
    paths : what the workers are told
    on_succeeded : called with ``(run id, finish payload)`` when a run succeeded
    """

    def __init__(
        self,
        runs: RunStore,
        executor: Executor,
        paths: WorkerPaths,
        on_succeeded: OnSucceeded | None = None,
    ) -> None:
        self.runs = runs
        self.executor = executor
        self.paths = paths
        self.on_succeeded = on_succeeded
        self.id = runs.register_runner()
        self._queue: deque[tuple[str, Bounds]] = deque()
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sweep()

    # -- public -------------------------------------------------------------------------------
    def submit(self, run_id: str, bounds: Bounds | None = None) -> None:
        """Queue a run (created in the store with this runner as holder)."""
        with self._lock:
            self._queue.append((run_id, bounds or Bounds()))
        self._wake.set()

    def start(self) -> None:
        """Start the dispatcher thread."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="run-dispatcher", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop: unfinished runs of this process end ``interrupted``, workers are stopped."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            running = list(self._running.values())
            queued = list(self._queue)
            self._running.clear()
            self._queue.clear()
        for item in running:
            item.handle.kill()
            self._end(item.run_id, RunState.INTERRUPTED, "interrupted: the server stopped")
        for run_id, _ in queued:
            self._end(run_id, RunState.INTERRUPTED, "interrupted: the server stopped")
        self.executor.close()
        self.runs.retire_runner(self.id)

    def sweep(self) -> list[str]:
        """Mark ``interrupted`` the unfinished runs whose holder is gone, removing their
        partial files; returns their ids."""
        ended = []
        for record in self.runs.orphans():
            if record.runner == self.id:
                continue
            if self.runs.finish(
                record.id, RunState.INTERRUPTED, "interrupted: the process running it stopped"
            ):
                shutil.rmtree(self.runs.folder(record.id), ignore_errors=True)
                ended.append(record.id)
        self.runs.forget_dead_runners()
        return ended

    @property
    def busy(self) -> int:
        """Runs executing now."""
        with self._lock:
            return len(self._running)

    # -- the dispatcher -----------------------------------------------------------------------
    def _loop(self) -> None:
        last_beat = last_sweep = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(POLL_S)
            self._wake.clear()
            try:
                self._step()
                now = time.monotonic()
                if now - last_beat > BEAT_S:
                    self.runs.beat(self.id)
                    last_beat = now
                if now - last_sweep > SWEEP_S:
                    self.sweep()
                    last_sweep = now
            except Exception:  # the store may be briefly busy: try again next time
                logger.exception("run dispatcher step failed")

    def _step(self) -> None:
        with self._lock:
            running = list(self._running.values())
        for run_id in self.runs.cancels_asked(r.run_id for r in running):
            item = self._running.get(run_id)
            if item is not None and item.handle.answer() is None:
                item.handle.kill()
                self._drop(run_id)
                self._end(run_id, RunState.CANCELLED, "cancelled")
        for item in running:
            if item.run_id not in self._running:
                continue
            answer = item.handle.answer()
            if answer is not None:
                self._drop(item.run_id)
                if answer.get("state") == "succeeded":
                    self._finish_succeeded(item.run_id, answer.get("finish") or {})
                continue
            elapsed = time.monotonic() - item.started
            rss = item.handle.rss_mb()
            if elapsed > item.bounds.max_wall_s:
                self._kill(item, f"exceeded its time bound of {item.bounds.max_wall_s:g} s")
            elif rss is not None and rss > item.bounds.max_memory_mb:
                self._kill(
                    item,
                    f"exceeded its memory bound of {item.bounds.max_memory_mb} MB "
                    f"({rss:.0f} MB resident)",
                )
            elif not item.handle.alive() and item.handle.answer() is None:
                self._drop(item.run_id)
                self._end(item.run_id, RunState.FAILED, "the worker process died", "WorkerDied")
        self._start_queued()

    def _start_queued(self) -> None:
        while True:
            with self._lock:
                if not self._queue or len(self._running) >= self.executor.slots:
                    return
                run_id, bounds = self._queue.popleft()
            if not self.runs.start(run_id, self.id):
                continue  # cancelled before it started
            handle = self.executor.submit(run_id, self.paths)
            with self._lock:
                self._running[run_id] = _Running(run_id, handle, bounds)

    def _finish_succeeded(self, run_id: str, finish: dict[str, Any]) -> None:
        extra: dict[str, Any] = {}
        if self.runs.cancels_asked([run_id]):  # cancelled while finishing: nothing on the twin
            self._end(run_id, RunState.CANCELLED, "cancelled")
            return
        if self.on_succeeded is not None:
            try:
                extra = self.on_succeeded(run_id, finish) or {}
            except Exception:
                logger.exception("finishing run %s on the twin failed", run_id)
                self._end(run_id, RunState.FAILED, "finishing the run on the twin failed", "Error")
                return
        if not self.runs.mark_succeeded(run_id, extra):
            self._end(run_id, RunState.CANCELLED, "cancelled")

    def _kill(self, item: _Running, reason: str) -> None:
        item.handle.kill()
        self._drop(item.run_id)
        self._end(item.run_id, RunState.FAILED, f"run {item.run_id} {reason}", "RunBoundError")

    def _drop(self, run_id: str) -> None:
        with self._lock:
            self._running.pop(run_id, None)

    def _end(self, run_id: str, state: RunState, message: str, error: str | None = None) -> None:
        details = {"type": error, "message": message} if error else None
        if self.runs.finish(run_id, state, message, details):
            shutil.rmtree(self.runs.folder(run_id), ignore_errors=True)
