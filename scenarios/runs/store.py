"""Runs in the store: the record of every drill and long job, its results, series and files.

Tables (both engines; ADR 0018):

- ``runs``: one row per run — id, kind (``drill``, ``tiles``…), drill, site, owner (key id),
  scope (the unit a pilot's run belongs to), state, progress and message, the resolved spec,
  the baseline run, the result (summary and detail, JSON), the error, timings, the runner
  that holds it and its heartbeat, and whether a cancel was asked;
- ``run_objects``: (run, code, metric, value, first crossing time) — per-object results;
- ``run_series``: (run, metric, unit, times, codes, values) — compact arrays (float64
  bytes), one row per metric;
- ``run_files``: (run, name, media type, size, SHA-256) — files under the run's folder;
- ``run_runners``: the processes holding runs (host, pid, heartbeat), so a run held by a
  process that died is found and marked ``interrupted``.

State changes are compare-and-set (``UPDATE … WHERE state = ?``): two processes never both
start, finish or cancel the same run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from cim.errors import NotFoundError, TwinError
from twin.db import LiveDb

#: PostgreSQL advisory lock key serialising the per-owner count of unfinished runs with the
#: insert that follows it (a constant of our own).
_CREATE_LOCK = 0x7255_4E53


class RunLimitError(TwinError):
    """An owner already has as many unfinished runs as it may (429).

    Parameters
    ----------
    limit : the setting's environment variable (``TWIN_MAX_RUNS_PER_KEY``)
    value : the bound
    running : the owner's queued and running runs now
    """

    def __init__(self, limit: str, value: int, running: int) -> None:
        self.limit = limit
        self.value = value
        self.running = running
        super().__init__(
            f"this key has {running} drill runs queued or running, the most it may "
            f"(limit {limit}={value}): wait for one to finish or cancel one (DELETE /runs/ID)"
        )


class RunState(StrEnum):
    """Where a run is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


FINISHED = frozenset(
    {RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.INTERRUPTED}
)
UNFINISHED = frozenset({RunState.QUEUED, RunState.RUNNING})

_DDL = [
    """CREATE TABLE IF NOT EXISTS runs (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, drill TEXT NOT NULL, site TEXT,
        owner TEXT NOT NULL, scope TEXT, state TEXT NOT NULL, progress DOUBLE PRECISION NOT NULL,
        message TEXT NOT NULL, spec TEXT NOT NULL, baseline TEXT, result TEXT, error TEXT,
        created DOUBLE PRECISION NOT NULL, started DOUBLE PRECISION,
        finished DOUBLE PRECISION, runner TEXT, cancel_requested BIGINT NOT NULL DEFAULT 0,
        dedupe TEXT)""",
    "CREATE INDEX IF NOT EXISTS runs_state ON runs (state)",
    "CREATE INDEX IF NOT EXISTS runs_created ON runs (created)",
    """CREATE TABLE IF NOT EXISTS run_objects (
        run_id TEXT NOT NULL, code TEXT NOT NULL, metric TEXT NOT NULL,
        value DOUBLE PRECISION NOT NULL, first_t_s DOUBLE PRECISION)""",
    "CREATE INDEX IF NOT EXISTS run_objects_run ON run_objects (run_id, metric, code)",
    """CREATE TABLE IF NOT EXISTS run_series (
        run_id TEXT NOT NULL, metric TEXT NOT NULL, unit TEXT NOT NULL, n BIGINT NOT NULL,
        m BIGINT NOT NULL, times {blob} NOT NULL, codes TEXT NOT NULL, vals {blob} NOT NULL,
        PRIMARY KEY (run_id, metric))""",
    """CREATE TABLE IF NOT EXISTS run_files (
        run_id TEXT NOT NULL, name TEXT NOT NULL, media_type TEXT NOT NULL, size BIGINT NOT NULL,
        sha256 TEXT NOT NULL, PRIMARY KEY (run_id, name))""",
    """CREATE TABLE IF NOT EXISTS run_runners (
        id TEXT PRIMARY KEY, host TEXT NOT NULL, pid BIGINT NOT NULL,
        started DOUBLE PRECISION NOT NULL, heartbeat DOUBLE PRECISION NOT NULL)""",
]

#: Seconds after which a runner that stopped beating is taken for dead.
RUNNER_TIMEOUT_S = 30.0


def _iso(t: float | None) -> str | None:
    return None if t is None else dt.datetime.fromtimestamp(t, dt.UTC).isoformat()


@dataclass(frozen=True)
class RunRecord:
    """One run as stored.

    Attributes
    ----------
    id : ``r_`` and 16 hex digits
    kind : ``drill`` for drills; ``tiles`` and others for long jobs
    drill : the drill's (or job's) name
    site : the CIM site it is on, if any
    owner : key id of who started it
    scope : the unit code a pilot's run is about (``None`` for planners' runs)
    state, progress, message : where it is (progress 0..1)
    spec : the resolved spec (JSON)
    baseline : the run it is a variant of, if any
    result : ``{"summary", ...detail, "files"}`` once it succeeded
    error : ``{"type", "message"}`` once it failed
    created, started, finished : epoch seconds (UTC)
    runner : the process that holds it
    cancel_requested : a cancel was asked
    """

    id: str
    kind: str
    drill: str
    site: str | None
    owner: str
    scope: str | None
    state: RunState
    progress: float
    message: str
    spec: dict[str, Any]
    baseline: str | None
    result: dict[str, Any] | None
    error: dict[str, str] | None
    created: float
    started: float | None
    finished: float | None
    runner: str | None
    cancel_requested: bool

    @property
    def finished_state(self) -> bool:
        """Whether the run has ended (in any way)."""
        return self.state in FINISHED

    def to_public(self) -> dict[str, Any]:
        """The record as the API shows it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "drill": self.drill,
            "site": self.site,
            "state": self.state.value,
            "progress": round(self.progress, 4),
            "message": self.message,
            "spec": self.spec,
            "baseline": self.baseline,
            "result": self.result,
            "error": self.error,
            "created": _iso(self.created),
            "started": _iso(self.started),
            "finished": _iso(self.finished),
            "href": f"/runs/{self.id}",
        }


_COLUMNS = (
    "id, kind, drill, site, owner, scope, state, progress, message, spec, baseline, result, "
    "error, created, started, finished, runner, cancel_requested"
)


def _record(row: Sequence[Any]) -> RunRecord:
    return RunRecord(
        id=str(row[0]),
        kind=str(row[1]),
        drill=str(row[2]),
        site=row[3],
        owner=str(row[4]),
        scope=row[5],
        state=RunState(row[6]),
        progress=float(row[7]),
        message=str(row[8]),
        spec=orjson.loads(row[9]),
        baseline=row[10],
        result=orjson.loads(row[11]) if row[11] is not None else None,
        error=orjson.loads(row[12]) if row[12] is not None else None,
        created=float(row[13]),
        started=float(row[14]) if row[14] is not None else None,
        finished=float(row[15]) if row[15] is not None else None,
        runner=row[16],
        cancel_requested=bool(row[17]),
    )


#: One series to store: ``(metric, unit, times (n,), codes (m,), values (n, m))``.
SeriesRow = tuple[str, str, "np.ndarray[Any, Any]", Sequence[str], "np.ndarray[Any, Any]"]


def _dumps(value: Any) -> str:
    """JSON of a result (numpy scalars and arrays, and non-string keys, allowed)."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


def new_run_id() -> str:
    """A fresh run id: ``r_`` and 16 hex digits."""
    return f"r_{secrets.token_hex(8)}"


def file_digest(path: Path) -> tuple[int, str]:
    """``(size in bytes, SHA-256 hex)`` of a file."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


class RunStore:
    """The run tables over one connection of their own.

    Parameters
    ----------
    url : the store (SQLite path or ``postgresql://``)
    files_root : where runs keep their folders (``<cache>/runs``)

    Raises
    ------
    StoreError
        If the store cannot be opened.
    """

    def __init__(self, url: str | Path, files_root: str | Path) -> None:
        self.url = str(url)
        self.db = LiveDb(url)
        self.files_root = Path(files_root)
        blob = self.db.store.blob_type
        with self.db.transaction() as cur:
            for statement in _DDL:
                cur.execute(self.db.ddl(statement.replace("{blob}", blob)))

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def folder(self, run_id: str) -> Path:
        """The run's folder (not created)."""
        return self.files_root / run_id

    # -- records ------------------------------------------------------------------------------
    def create(
        self,
        kind: str,
        drill: str,
        owner: str,
        spec: dict[str, Any],
        site: str | None = None,
        scope: str | None = None,
        baseline: str | None = None,
        dedupe: str | None = None,
        runner: str | None = None,
        max_unfinished: int | None = None,
        limit: str = "max_unfinished",
    ) -> RunRecord:
        """A new queued run (or, with ``dedupe``, the unfinished run with the same key).

        With ``max_unfinished`` (and ``limit``, the setting that gives it), an owner that
        already has that many queued or running runs of ``kind`` gets none: the count and
        the insert are one transaction (on PostgreSQL under an advisory lock, so processes
        take turns).

        Raises
        ------
        RunLimitError
            If the owner has ``max_unfinished`` unfinished runs of this kind.
        """
        with self.db.transaction() as cur:
            if max_unfinished is not None:
                if self.db.postgres:
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
                cur.execute(
                    self.db.sql(
                        "SELECT COUNT(*) FROM runs WHERE kind = ? AND owner = ? "
                        "AND state IN ('queued', 'running')"
                    ),
                    (kind, owner),
                )
                running = int(cur.fetchone()[0])
                if running >= max_unfinished:
                    raise RunLimitError(limit, max_unfinished, running)
            if dedupe is not None:
                cur.execute(
                    self.db.sql(
                        f"SELECT {_COLUMNS} FROM runs WHERE dedupe = ? "
                        "AND state IN ('queued', 'running') ORDER BY created LIMIT 1"
                    ),
                    (dedupe,),
                )
                row = cur.fetchone()
                if row is not None:
                    return _record(row)
            run_id = new_run_id()
            cur.execute(
                self.db.sql(
                    "INSERT INTO runs (id, kind, drill, site, owner, scope, state, progress, "
                    "message, spec, baseline, created, runner, dedupe) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'queued', 0, 'queued', ?, ?, ?, ?, ?)"
                ),
                (
                    run_id,
                    kind,
                    drill,
                    site,
                    owner,
                    scope,
                    orjson.dumps(spec).decode(),
                    baseline,
                    time.time(),
                    runner,
                    dedupe,
                ),
            )
        return self.get(run_id)

    def unfinished(self, kind: str, owner: str) -> int:
        """How many runs of ``kind`` the owner has queued or running."""
        rows = self.db.query(
            "SELECT COUNT(*) FROM runs WHERE kind = ? AND owner = ? "
            "AND state IN ('queued', 'running')",
            (kind, owner),
        )
        return int(rows[0][0])

    def get(self, run_id: str) -> RunRecord:
        """One run.

        Raises
        ------
        NotFoundError
            If there is no such run.
        """
        rows = self.db.query(f"SELECT {_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise NotFoundError(f"no run {run_id!r}")
        return _record(rows[0])

    def find(
        self,
        kind: str | None = None,
        drill: str | None = None,
        site: str | None = None,
        state: str | None = None,
        owner: str | None = None,
        scopes: Sequence[str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[RunRecord], int]:
        """Runs, newest first, and how many match in all. ``scopes`` keeps only runs whose
        scope lies under one of those codes (a pilot's view)."""
        where, params = self._where(kind, drill, site, state, owner, scopes)
        total = int(self.db.query(f"SELECT COUNT(*) FROM runs{where}", params)[0][0])
        rows = self.db.query(
            f"SELECT {_COLUMNS} FROM runs{where} ORDER BY created DESC, id LIMIT ? OFFSET ?",
            (*params, int(limit), int(offset)),
        )
        return [_record(r) for r in rows], total

    @staticmethod
    def _where(
        kind: str | None,
        drill: str | None,
        site: str | None,
        state: str | None,
        owner: str | None,
        scopes: Sequence[str] | None,
    ) -> tuple[str, tuple[Any, ...]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("kind", kind),
            ("drill", drill),
            ("site", site),
            ("state", state),
            ("owner", owner),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if scopes is not None:
            if not scopes:
                clauses.append("1 = 0")
            else:
                clauses.append("(" + " OR ".join("substr(scope, 1, ?) = ?" for _ in scopes) + ")")
                for prefix in scopes:
                    params += [len(prefix), prefix]
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)

    # -- life ---------------------------------------------------------------------------------
    def start(self, run_id: str, runner: str) -> bool:
        """``queued`` -> ``running`` held by ``runner``; ``False`` if it was not queued (or a
        cancel was asked, which cancels it)."""
        now = time.time()
        with self.db.transaction() as cur:
            cur.execute(
                self.db.sql(
                    "UPDATE runs SET state = 'cancelled', message = 'cancelled before it started', "
                    "finished = ? WHERE id = ? AND state = 'queued' AND cancel_requested = 1"
                ),
                (now, run_id),
            )
            cur.execute(
                self.db.sql(
                    "UPDATE runs SET state = 'running', message = 'started', started = ?, "
                    "runner = ? WHERE id = ? AND state = 'queued'"
                ),
                (now, runner, run_id),
            )
            return bool(cur.rowcount)

    def report(self, run_id: str, fraction: float, message: str) -> bool:
        """Progress of a running run; returns whether a cancel was asked."""
        with self.db.transaction() as cur:
            cur.execute(
                self.db.sql(
                    "UPDATE runs SET progress = MAX(progress, ?), message = ? "
                    "WHERE id = ? AND state = 'running'"
                    if not self.db.postgres
                    else "UPDATE runs SET progress = GREATEST(progress, ?), message = ? "
                    "WHERE id = ? AND state = 'running'"
                ),
                (min(1.0, max(0.0, float(fraction))), message[:500], run_id),
            )
            cur.execute(self.db.sql("SELECT cancel_requested FROM runs WHERE id = ?"), (run_id,))
            row = cur.fetchone()
        return bool(row and row[0])

    def request_cancel(self, run_id: str) -> RunRecord:
        """Ask a run to stop: a queued run is cancelled at once, a running one by the process
        that holds it (within its poll interval). A finished run is left as it is.

        Raises
        ------
        NotFoundError
            If there is no such run.
        """
        self.get(run_id)
        now = time.time()
        with self.db.transaction() as cur:
            cur.execute(
                self.db.sql(
                    "UPDATE runs SET cancel_requested = 1 WHERE id = ? "
                    "AND state IN ('queued', 'running')"
                ),
                (run_id,),
            )
            cur.execute(
                self.db.sql(
                    "UPDATE runs SET state = 'cancelled', message = 'cancelled before it started', "
                    "finished = ? WHERE id = ? AND state = 'queued'"
                ),
                (now, run_id),
            )
        return self.get(run_id)

    def cancels_asked(self, run_ids: Iterable[str]) -> set[str]:
        """Which of these runs had a cancel asked."""
        ids = list(run_ids)
        if not ids:
            return set()
        marks = ", ".join("?" for _ in ids)
        rows = self.db.query(
            f"SELECT id FROM runs WHERE cancel_requested = 1 AND id IN ({marks})", ids
        )
        return {str(r[0]) for r in rows}

    def finish(
        self,
        run_id: str,
        state: RunState,
        message: str,
        error: dict[str, str] | None = None,
    ) -> bool:
        """End an unfinished run without a result (failed, cancelled, interrupted)."""
        if state not in FINISHED or state is RunState.SUCCEEDED:
            raise ValueError(f"finish(state={state}) must be failed, cancelled or interrupted")
        with self.db.transaction() as cur:
            cur.execute(
                self.db.sql(
                    "UPDATE runs SET state = ?, message = ?, error = ?, finished = ? "
                    "WHERE id = ? AND state IN ('queued', 'running')"
                ),
                (
                    state.value,
                    message[:2000],
                    orjson.dumps(error).decode() if error is not None else None,
                    time.time(),
                    run_id,
                ),
            )
            ended = bool(cur.rowcount)
            if ended:
                cur.execute(self.db.sql("UPDATE runs SET result = NULL WHERE id = ?"), (run_id,))
                self._drop_outcome(cur, run_id)
            return ended

    def succeed(
        self,
        run_id: str,
        result: dict[str, Any],
        objects: Sequence[tuple[str, str, float, float | None]] = (),
        series: Sequence[SeriesRow] = (),
        files: Sequence[tuple[str, str, int, str]] = (),
    ) -> bool:
        """Store a running run's outcome and mark it succeeded, in one transaction
        (:meth:`store_outcome`, then :meth:`mark_succeeded`)."""
        with self.db.transaction() as cur:
            if not self._store_outcome(cur, run_id, result, objects, series, files):
                return False
            return self._mark_succeeded(cur, run_id, {})

    def store_outcome(
        self,
        run_id: str,
        result: dict[str, Any],
        objects: Sequence[tuple[str, str, float, float | None]] = (),
        series: Sequence[SeriesRow] = (),
        files: Sequence[tuple[str, str, int, str]] = (),
    ) -> bool:
        """Store a run's result, per-object values ``(code, metric, value, first_t_s)``,
        series ``(metric, unit, times (n,), codes (m,), values (n, m))`` and files
        ``(name, media type, size, sha256)`` in one transaction, only while it is running and
        no cancel was asked. The run stays ``running`` ("finishing") until
        :meth:`mark_succeeded`: it is succeeded only once the twin has it too."""
        with self.db.transaction() as cur:
            return self._store_outcome(cur, run_id, result, objects, series, files)

    def mark_succeeded(self, run_id: str, extra: dict[str, Any]) -> bool:
        """A finishing run is succeeded, ``extra`` added to its result; ``False`` if it was
        cancelled meanwhile (its outcome is then removed)."""
        with self.db.transaction() as cur:
            return self._mark_succeeded(cur, run_id, extra)

    def _store_outcome(
        self,
        cur: Any,
        run_id: str,
        result: dict[str, Any],
        objects: Sequence[tuple[str, str, float, float | None]],
        series: Sequence[SeriesRow],
        files: Sequence[tuple[str, str, int, str]],
    ) -> bool:
        cur.execute(
            self.db.sql(
                "UPDATE runs SET message = 'finishing', progress = 1, result = ? "
                "WHERE id = ? AND state = 'running' AND cancel_requested = 0"
            ),
            (_dumps(result), run_id),
        )
        if not cur.rowcount:
            return False
        if objects:
            cur.executemany(
                self.db.sql(
                    "INSERT INTO run_objects (run_id, code, metric, value, first_t_s) "
                    "VALUES (?, ?, ?, ?, ?)"
                ),
                [(run_id, c, m, float(v), t) for c, m, v, t in objects],
            )
        for metric, unit, times, codes, values in series:
            t = np.ascontiguousarray(times, dtype="<f8")
            v = np.ascontiguousarray(values, dtype="<f8").reshape(len(t), len(codes))
            cur.execute(
                self.db.sql(
                    "INSERT INTO run_series (run_id, metric, unit, n, m, times, codes, vals) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                (
                    run_id,
                    metric,
                    unit,
                    len(t),
                    len(codes),
                    t.tobytes(),
                    orjson.dumps(list(codes)).decode(),
                    v.tobytes(),
                ),
            )
        if files:
            cur.executemany(
                self.db.sql(
                    "INSERT INTO run_files (run_id, name, media_type, size, sha256) "
                    "VALUES (?, ?, ?, ?, ?)"
                ),
                [(run_id, n, t, int(s), h) for n, t, s, h in files],
            )
        return True

    def _mark_succeeded(self, cur: Any, run_id: str, extra: dict[str, Any]) -> bool:
        cur.execute(self.db.sql("SELECT result FROM runs WHERE id = ?"), (run_id,))
        row = cur.fetchone()
        result = {**(orjson.loads(row[0]) if row and row[0] else {}), **extra}
        cur.execute(
            self.db.sql(
                "UPDATE runs SET state = 'succeeded', message = 'done', result = ?, finished = ? "
                "WHERE id = ? AND state = 'running' AND cancel_requested = 0"
            ),
            (_dumps(result), time.time(), run_id),
        )
        if cur.rowcount:
            return True
        self._drop_outcome(cur, run_id)
        return False

    def _drop_outcome(self, cur: Any, run_id: str) -> None:
        for table in ("run_objects", "run_series", "run_files"):
            cur.execute(self.db.sql(f"DELETE FROM {table} WHERE run_id = ?"), (run_id,))

    def delete(self, run_id: str) -> None:
        """Remove a finished run's rows (its folder is the caller's to remove).

        Raises
        ------
        NotFoundError
            If there is no such run.
        ValueError
            If it has not finished.
        """
        record = self.get(run_id)
        if not record.finished_state:
            raise ValueError(f"run {run_id} is {record.state.value}: cancel it first")
        with self.db.transaction() as cur:
            self._drop_outcome(cur, run_id)
            cur.execute(self.db.sql("DELETE FROM runs WHERE id = ?"), (run_id,))

    # -- results ------------------------------------------------------------------------------
    def objects(
        self, run_id: str, metric: str | None = None, prefix: str | None = None
    ) -> list[dict[str, Any]]:
        """Per-object values ``{"code", "metric", "value", "first_t_s"}``, by code."""
        clauses: list[str] = ["run_id = ?"]
        params: list[Any] = [run_id]
        if metric is not None:
            clauses.append("metric = ?")
            params.append(metric)
        if prefix:
            clauses.append("substr(code, 1, ?) = ?")
            params += [len(prefix), prefix]
        rows = self.db.query(
            "SELECT code, metric, value, first_t_s FROM run_objects WHERE "
            + " AND ".join(clauses)
            + " ORDER BY code, metric",
            params,
        )
        return [
            {"code": str(c), "metric": str(m), "value": float(v), "first_t_s": t}
            for c, m, v, t in rows
        ]

    def metrics(self, run_id: str) -> list[str]:
        """The metrics of a run's series."""
        rows = self.db.query(
            "SELECT metric FROM run_series WHERE run_id = ? ORDER BY metric", (run_id,)
        )
        return [str(r[0]) for r in rows]

    def series(
        self, run_id: str, metric: str
    ) -> tuple[str, np.ndarray[Any, Any], list[str], np.ndarray[Any, Any]]:
        """``(unit, times (n,), codes (m,), values (n, m))`` of one metric.

        Raises
        ------
        NotFoundError
            If the run has no series of that metric.
        """
        rows = self.db.query(
            "SELECT unit, n, m, times, codes, vals FROM run_series WHERE run_id = ? AND metric = ?",
            (run_id, metric),
        )
        if not rows:
            known = ", ".join(self.metrics(run_id)) or "none"
            raise NotFoundError(f"run {run_id} has no series {metric!r}; it has: {known}")
        unit, n, m, times, codes, vals = rows[0]
        t = np.frombuffer(bytes(times), dtype="<f8")
        v = np.frombuffer(bytes(vals), dtype="<f8").reshape(int(n), int(m))
        return str(unit), t, list(orjson.loads(codes)), v

    def files(self, run_id: str) -> list[dict[str, Any]]:
        """The run's files ``{"name", "media_type", "size", "sha256"}``."""
        rows = self.db.query(
            "SELECT name, media_type, size, sha256 FROM run_files WHERE run_id = ? ORDER BY name",
            (run_id,),
        )
        return [
            {"name": str(n), "media_type": str(t), "size": int(s), "sha256": str(h)}
            for n, t, s, h in rows
        ]

    # -- runners ------------------------------------------------------------------------------
    def register_runner(self) -> str:
        """Record this process as a runner; returns its id."""
        runner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        now = time.time()
        self.db.execute(
            "INSERT INTO run_runners (id, host, pid, started, heartbeat) VALUES (?, ?, ?, ?, ?)",
            (runner, socket.gethostname(), os.getpid(), now, now),
        )
        return runner

    def beat(self, runner: str) -> None:
        """This runner is alive."""
        self.db.execute("UPDATE run_runners SET heartbeat = ? WHERE id = ?", (time.time(), runner))

    def retire_runner(self, runner: str) -> None:
        """This runner stops (its unfinished runs are its own to end first)."""
        self.db.execute("DELETE FROM run_runners WHERE id = ?", (runner,))

    def orphans(self) -> list[RunRecord]:
        """Unfinished runs whose runner is gone: a process on this host that no longer
        exists, a runner that stopped beating, or no runner record at all."""
        host = socket.gethostname()
        now = time.time()
        alive: set[str] = set()
        for ident, rhost, pid, beat in self.db.query(
            "SELECT id, host, pid, heartbeat FROM run_runners"
        ):
            if rhost == host and not _pid_alive(int(pid)):
                continue
            if now - float(beat) > RUNNER_TIMEOUT_S:
                continue
            alive.add(str(ident))
        rows = self.db.query(f"SELECT {_COLUMNS} FROM runs WHERE state IN ('queued', 'running')")
        return [_record(r) for r in rows if r[16] not in alive]

    def forget_dead_runners(self) -> None:
        """Drop runner records that stopped beating long ago."""
        self.db.execute(
            "DELETE FROM run_runners WHERE heartbeat < ?", (time.time() - 10 * RUNNER_TIMEOUT_S,)
        )


def _pid_alive(pid: int) -> bool:
    """Whether a process of this host runs: a zombie (killed, not yet reaped by an init that
    may never reap it) is dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")
