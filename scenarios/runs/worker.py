"""Executing one run, in whatever process holds it: a local worker process or a Ray task.

:func:`execute_run` is the one code path of every executor: it reads the run's resolved
spec from the store, runs the drill with a :class:`~scenarios.drills.base.RunContext` whose
progress goes to the store (and raises once a cancel is asked), and stores the result, the
per-object values, the series and the files in one transaction. What the run leaves on the
live twin (layers, drill alerts) is returned to the process that dispatched it, which owns
the twin.

Run as a module it is a local worker: ``python -m scenarios.runs.worker`` reads one JSON
task per line on stdin and answers one JSON line per task on its own copy of stdout (what
libraries print goes to stderr)::

    {"run": "r_…", "store": "twin.db", "files": ".../runs", "data": "assets", "cache": "..."}
    -> {"run": "r_…", "state": "succeeded", "finish": {"layers": [...], "alerts": [...]}}
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from cim.errors import TwinError
from cim.store import Store, open_store
from scenarios.runs.store import RunState, RunStore, file_digest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerPaths:
    """Where a worker finds the store and its folders.

    Attributes
    ----------
    store_url : the store (SQLite path or ``postgresql://``)
    files_root : the runs' folders (``<cache>/runs``)
    data_dir : the catalogue of named inputs
    cache_dir : shared derived files
    """

    store_url: str
    files_root: str
    data_dir: str
    cache_dir: str

    def to_dict(self) -> dict[str, str]:
        """As JSON."""
        return dataclasses.asdict(self)


#: Connections kept by a worker process between runs, by store URL.
_OPEN: dict[str, tuple[RunStore, Store]] = {}


def _connections(paths: WorkerPaths) -> tuple[RunStore, Store]:
    key = f"{paths.store_url}|{paths.files_root}"
    if key not in _OPEN:
        _OPEN[key] = (RunStore(paths.store_url, paths.files_root), open_store(paths.store_url))
    return _OPEN[key]


def execute_run(run_id: str, paths: WorkerPaths) -> dict[str, Any]:
    """Execute a running run and store its outcome.

    Returns
    -------
    dict
        ``{"run", "state", "message", "finish"}``: the state it ended in and, when it
        stored its outcome (``succeeded``: the run is "finishing"), ``finish`` =
        ``{"site", "layers", "alerts"}`` for the dispatcher to put on the live twin before it
        marks the run succeeded.
    """
    from scenarios.drills import drill as find_drill
    from scenarios.drills.base import RunCancelledError, RunContext

    runs, store = _connections(paths)
    record = runs.get(run_id)
    folder = runs.folder(run_id)
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last[0] < 0.2 and fraction < 1.0:
            return
        last[0] = now
        if runs.report(run_id, fraction, message):
            raise RunCancelledError(f"run {run_id} was cancelled")

    try:
        drill = find_drill(record.drill)
        spec = drill.spec.model_validate(record.spec)
        folder.mkdir(parents=True, exist_ok=True)
        context = RunContext(
            store=store,
            data_dir=Path(paths.data_dir),
            cache_dir=Path(paths.cache_dir),
            files_dir=folder,
            progress=progress,
            run_id=run_id,
        )
        result = drill.run(spec, context)
    except RunCancelledError:
        shutil.rmtree(folder, ignore_errors=True)
        runs.finish(run_id, RunState.CANCELLED, "cancelled")
        return {"run": run_id, "state": "cancelled", "message": "cancelled"}
    except MemoryError:
        shutil.rmtree(folder, ignore_errors=True)
        message = f"run {run_id} ran out of memory"
        runs.finish(run_id, RunState.FAILED, message, {"type": "MemoryError", "message": message})
        return {"run": run_id, "state": "failed", "message": message}
    except (TwinError, ValueError) as exc:  # bad input the engine found: its message
        shutil.rmtree(folder, ignore_errors=True)
        error = {"type": type(exc).__name__, "message": str(exc)}
        runs.finish(run_id, RunState.FAILED, str(exc), error)
        return {"run": run_id, "state": "failed", "message": str(exc)}
    except Exception as exc:  # a bug in the drill: logged here, never leaked in full
        logger.exception("run %s (%s) failed", run_id, record.drill)
        shutil.rmtree(folder, ignore_errors=True)
        error = {"type": "InternalError", "message": f"{type(exc).__name__} in the run"}
        runs.finish(run_id, RunState.FAILED, "internal error", error)
        return {"run": run_id, "state": "failed", "message": "internal error"}
    files = []
    hrefs = {}
    for item in result.files:
        path = folder / item.name
        if path.parent != folder or not path.is_file():
            continue
        size, digest = file_digest(path)
        files.append((item.name, item.media_type, size, digest))
        hrefs[item.name] = f"/runs/{run_id}/files/{item.name}"
    detail = _with_hrefs(result.detail, hrefs)
    named = detail.get("files")
    # the files by name, and by the roles the drill gave them (``max_depth_tif``)
    stored = {
        "summary": result.summary,
        **detail,
        "files": {**hrefs, **(named if isinstance(named, dict) else {})},
    }
    objects = [(o.code, o.metric, o.value, o.first_t_s) for o in result.objects]
    series = [(s.metric, s.unit, s.times_s, s.codes, s.values) for s in result.series]
    if not runs.store_outcome(run_id, stored, objects, series, files):
        shutil.rmtree(folder, ignore_errors=True)
        runs.finish(run_id, RunState.CANCELLED, "cancelled")
        return {"run": run_id, "state": "cancelled", "message": "cancelled"}
    finish = {
        "site": record.site,
        "layers": [dataclasses.asdict(layer) for layer in result.layers],
        "alerts": [dataclasses.asdict(alert) for alert in result.alerts],
    }
    return {"run": run_id, "state": "succeeded", "message": "done", "finish": finish}


def _with_hrefs(value: Any, hrefs: dict[str, str]) -> Any:
    """``value`` with every string that names one of the run's files replaced by its
    address (``"density.png"`` -> ``"/runs/r_…/files/density.png"``)."""
    if isinstance(value, str):
        return hrefs.get(value, value)
    if isinstance(value, dict):
        return {k: _with_hrefs(v, hrefs) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_hrefs(v, hrefs) for v in value]
    return value


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (a killed server leaves no run
    behind)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def main() -> int:
    """The local worker loop: tasks on stdin, answers on a private copy of stdout."""
    _die_with_parent()
    # drills yield the cores to the process serving HTTP (ADR 0018)
    with contextlib.suppress(OSError):
        os.nice(10)
        # the worker is its own session, hence its own scheduler autogroup: nice only counts
        # inside the group unless the group's own weight is lowered too
        with open("/proc/self/autogroup", "w", encoding="ascii") as group:
            group.write("10")
    parent = os.getppid()
    answers = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # whatever a library prints goes to stderr, never into the answers
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    for line in sys.stdin.buffer:
        if os.getppid() != parent:
            return 1
        if not line.strip():
            continue
        task = orjson.loads(line)
        paths = WorkerPaths(**task["paths"])
        answer = execute_run(task["run"], paths)
        answers.write(orjson.dumps(answer) + b"\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
