"""The live twin's tables, in the same store as the CIM (SQLite or PostgreSQL).

:class:`LiveDb` owns its own connection to the store (opened with
:func:`cim.store.open_store`), so the ingest thread never shares a cursor with the API's CIM
reads. Reads a client can make expensive (SensorThings queries) go through
:meth:`LiveDb.read` instead: on connections of their own (a small pool), never holding the
lock the ingest writes under, and stopped at a :class:`Deadline` (PostgreSQL
``SET LOCAL statement_timeout``, a SQLite progress handler).

SQL is written once with ``?`` placeholders; :meth:`LiveDb.sql` rewrites it for psycopg, and
the DDL spells the two engines' identity columns through ``{id}``.

Times are integer microseconds since the Unix epoch (UTC) in ``BIGINT`` columns: exact, so
``(datastream, phenomenon time)`` is a sound idempotency key, and ordered the same in both
engines.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cim.errors import StoreError
from cim.store import Store, open_store
from twin.errors import QueryTimeoutError

LIVE_SCHEMA_VERSION = "1"

_DDL = [
    """CREATE TABLE IF NOT EXISTS sta_things (
        id {id}, name TEXT NOT NULL, description TEXT NOT NULL, properties TEXT NOT NULL,
        site TEXT, code TEXT)""",
    "CREATE INDEX IF NOT EXISTS sta_things_code ON sta_things (code)",
    """CREATE TABLE IF NOT EXISTS sta_locations (
        id {id}, name TEXT NOT NULL, description TEXT NOT NULL, encoding_type TEXT NOT NULL,
        location TEXT NOT NULL, properties TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sta_thing_locations (
        thing_id BIGINT NOT NULL, location_id BIGINT NOT NULL,
        PRIMARY KEY (thing_id, location_id))""",
    """CREATE TABLE IF NOT EXISTS sta_sensors (
        id {id}, name TEXT NOT NULL, description TEXT NOT NULL, encoding_type TEXT NOT NULL,
        metadata TEXT NOT NULL, properties TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sta_observed_properties (
        id {id}, name TEXT NOT NULL, definition TEXT NOT NULL, description TEXT NOT NULL,
        properties TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sta_datastreams (
        id {id}, name TEXT NOT NULL, description TEXT NOT NULL, unit TEXT NOT NULL,
        observation_type TEXT NOT NULL, properties TEXT NOT NULL,
        thing_id BIGINT NOT NULL, sensor_id BIGINT NOT NULL, observed_property_id BIGINT NOT NULL,
        site TEXT, code TEXT, interval_s DOUBLE PRECISION)""",
    "CREATE INDEX IF NOT EXISTS sta_datastreams_code ON sta_datastreams (code)",
    "CREATE INDEX IF NOT EXISTS sta_datastreams_thing ON sta_datastreams (thing_id)",
    """CREATE TABLE IF NOT EXISTS sta_features (
        id {id}, name TEXT NOT NULL, description TEXT NOT NULL, encoding_type TEXT NOT NULL,
        feature TEXT NOT NULL, properties TEXT NOT NULL, location_id BIGINT)""",
    """CREATE TABLE IF NOT EXISTS sta_observations (
        id {id}, datastream_id BIGINT NOT NULL, phenomenon_time BIGINT NOT NULL,
        result_time BIGINT, result DOUBLE PRECISION, result_json TEXT,
        parameters TEXT, feature_id BIGINT, received BIGINT NOT NULL,
        UNIQUE (datastream_id, phenomenon_time))""",
    """CREATE TABLE IF NOT EXISTS live_latest (
        datastream_id BIGINT PRIMARY KEY, phenomenon_time BIGINT NOT NULL,
        result DOUBLE PRECISION, result_json TEXT, received BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS live_rollups (
        datastream_id BIGINT NOT NULL, interval_s BIGINT NOT NULL, bucket BIGINT NOT NULL,
        n BIGINT NOT NULL, vmin DOUBLE PRECISION NOT NULL, vmax DOUBLE PRECISION NOT NULL,
        vsum DOUBLE PRECISION NOT NULL, PRIMARY KEY (datastream_id, interval_s, bucket))""",
    """CREATE TABLE IF NOT EXISTS live_dead_letters (
        id {id}, received BIGINT NOT NULL, source TEXT NOT NULL, reason TEXT NOT NULL,
        payload TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS live_rules (
        id {id}, name TEXT NOT NULL, kind TEXT NOT NULL, observed_property TEXT,
        code_prefix TEXT, levels TEXT NOT NULL, hysteresis DOUBLE PRECISION NOT NULL,
        missed BIGINT NOT NULL, open_case TEXT)""",
    """CREATE TABLE IF NOT EXISTS live_alerts (
        id {id}, code TEXT NOT NULL UNIQUE, rule_id BIGINT NOT NULL, datastream_id BIGINT NOT NULL,
        site TEXT, object_code TEXT, kind TEXT NOT NULL, level BIGINT NOT NULL,
        severity TEXT NOT NULL, state TEXT NOT NULL, value DOUBLE PRECISION,
        opened BIGINT NOT NULL, updated BIGINT NOT NULL, closed BIGINT,
        first_reading BIGINT NOT NULL, message TEXT NOT NULL,
        source TEXT NOT NULL DEFAULT 'sensor', drill TEXT)""",
    "CREATE INDEX IF NOT EXISTS live_alerts_object ON live_alerts (object_code)",
    """CREATE TABLE IF NOT EXISTS live_alert_events (
        alert_id BIGINT NOT NULL, t BIGINT NOT NULL, state TEXT NOT NULL, level BIGINT NOT NULL,
        severity TEXT NOT NULL, value DOUBLE PRECISION, note TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS live_cases (
        id {id}, code TEXT NOT NULL UNIQUE, title TEXT NOT NULL, source TEXT NOT NULL,
        alert_id BIGINT, site TEXT, object_code TEXT, grid_code TEXT, class_code TEXT NOT NULL,
        urgency TEXT NOT NULL, unit TEXT NOT NULL, state TEXT NOT NULL, reworks BIGINT NOT NULL,
        created BIGINT NOT NULL, updated BIGINT NOT NULL, deadline BIGINT,
        first_reading BIGINT, handled BIGINT, closed BIGINT)""",
    "CREATE INDEX IF NOT EXISTS live_cases_object ON live_cases (object_code)",
    """CREATE TABLE IF NOT EXISTS live_case_events (
        case_id BIGINT NOT NULL, t BIGINT NOT NULL, from_state TEXT, to_state TEXT NOT NULL,
        actor TEXT NOT NULL, note TEXT NOT NULL)""",
]


#: PostgreSQL only: prefix (``LIKE 'code%'``) lookups of the CIM link use these indexes.
_POSTGRES_DDL = [
    "CREATE INDEX IF NOT EXISTS sta_datastreams_code_prefix "
    "ON sta_datastreams (code text_pattern_ops)",
    "CREATE INDEX IF NOT EXISTS sta_things_code_prefix ON sta_things (code text_pattern_ops)",
]


#: Idle read connections kept open for :meth:`LiveDb.read`.
READ_POOL = 4
#: SQLite virtual-machine steps between two looks at the clock of a bounded read.
_PROGRESS_STEPS = 1_000


@dataclass(frozen=True)
class Deadline:
    """When the statements of one request must have finished.

    Attributes
    ----------
    at_s : :func:`time.monotonic` time of the end, seconds
    timeout_s : the whole time allowed, seconds (for the message)
    limit : the setting that sets it (``TWIN_STA_TIMEOUT_S``)
    """

    at_s: float
    timeout_s: float
    limit: str

    @classmethod
    def after(cls, timeout_s: float, limit: str) -> Deadline:
        """A deadline ``timeout_s`` from now."""
        return cls(time.monotonic() + timeout_s, timeout_s, limit)

    def left_s(self) -> float:
        """Seconds left.

        Raises
        ------
        QueryTimeoutError
            If none are.
        """
        left = self.at_s - time.monotonic()
        if left <= 0:
            raise QueryTimeoutError(self.limit, self.timeout_s)
        return left


class LiveDb:
    """A connection of the live twin to the store, with its tables created.

    Parameters
    ----------
    url : the store URL (SQLite file path or ``postgresql://...``)

    Raises
    ------
    StoreError
        If the store cannot be opened or the live tables cannot be created.
    """

    def __init__(self, url: str | Path) -> None:
        self.store: Store = open_store(url)
        self.postgres = self.store.placeholder != "?"
        self.lock = threading.RLock()
        self._url = str(url)
        self._readers: list[Any] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._migrate()

    def close(self) -> None:
        """Close the connection (and the idle read connections)."""
        with self._readers_lock:
            self._closed = True
            readers, self._readers = self._readers, []
        for connection in readers:
            connection.close()
        self.store.close()

    def sql(self, text: str) -> str:
        """``text`` with placeholders of this engine."""
        return text.replace("%", "%%").replace("?", "%s") if self.postgres else text

    def ddl(self, text: str) -> str:
        """``text`` with this engine's identity column in place of ``{id}``."""
        ident = (
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
            if self.postgres
            else "INTEGER PRIMARY KEY"
        )
        return text.replace("{id}", ident)

    def _migrate(self) -> None:
        try:
            with self.transaction() as cur:
                for statement in _DDL + (_POSTGRES_DDL if self.postgres else []):
                    cur.execute(self.ddl(statement))
                self._add_columns(cur)
        except Exception as exc:
            raise StoreError(f"{self.store.url}: cannot prepare the live tables ({exc})") from exc

    def _add_columns(self, cur: Any) -> None:
        """Columns added since a table was first made: alerts' ``source`` (``sensor`` or
        ``drill``) and ``drill`` (the drill that raised it)."""
        added = {"source": "TEXT NOT NULL DEFAULT 'sensor'", "drill": "TEXT"}
        if self.postgres:
            for name, kind in added.items():
                cur.execute(f"ALTER TABLE live_alerts ADD COLUMN IF NOT EXISTS {name} {kind}")
            return
        cur.execute("PRAGMA table_info(live_alerts)")
        present = {str(row[1]) for row in cur.fetchall()}
        for name, kind in added.items():
            if name not in present:
                cur.execute(f"ALTER TABLE live_alerts ADD COLUMN {name} {kind}")

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor in one transaction, holding this connection's lock."""
        with self.lock, self.store.transaction() as cur:
            yield cur

    def query(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read (in its own implicit transaction: no write lock is taken)."""
        with self.lock:
            # the engine's connection runs in autocommit mode, so one SELECT is one snapshot
            cursor = self.store._connection().cursor()
            try:
                cursor.execute(self.sql(text), tuple(params))
                return [tuple(row) for row in cursor.fetchall()]
            finally:
                cursor.close()

    def read(self, text: str, params: Sequence[Any], deadline: Deadline) -> list[tuple[Any, ...]]:
        """Rows of one read on a read connection of its own, stopped at ``deadline``.

        The connection is not this store's main one: a long read never holds the lock the
        ingest writes under, and (WAL, MVCC) never blocks a writer.

        Raises
        ------
        QueryTimeoutError
            If the deadline passes before the rows are read.
        """
        connection = self._take_reader()
        try:
            if self.postgres:
                return self._read_postgres(connection, text, params, deadline)
            return self._read_sqlite(connection, text, params, deadline)
        finally:
            self._give_back(connection)

    def _read_sqlite(
        self, connection: Any, text: str, params: Sequence[Any], deadline: Deadline
    ) -> list[tuple[Any, ...]]:
        end = deadline.at_s
        deadline.left_s()  # none left: refused before the statement starts
        connection.set_progress_handler(lambda: int(time.monotonic() > end), _PROGRESS_STEPS)
        cursor = connection.cursor()
        try:
            cursor.execute(text, tuple(params))
            return [tuple(row) for row in cursor.fetchall()]
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc) and time.monotonic() > end:
                raise QueryTimeoutError(deadline.limit, deadline.timeout_s) from None
            raise
        finally:
            cursor.close()
            connection.set_progress_handler(None, 0)

    def _read_postgres(
        self, connection: Any, text: str, params: Sequence[Any], deadline: Deadline
    ) -> list[tuple[Any, ...]]:
        import psycopg

        timeout_ms = max(1, int(deadline.left_s() * 1000))
        try:
            with connection.transaction(), connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION READ ONLY")
                cursor.execute(f"SET LOCAL statement_timeout = {timeout_ms}")
                cursor.execute(self.sql(text), tuple(params))
                return [tuple(row) for row in cursor.fetchall()]
        except psycopg.errors.QueryCanceled:
            raise QueryTimeoutError(deadline.limit, deadline.timeout_s) from None

    def _take_reader(self) -> Any:
        with self._readers_lock:
            if self._readers:
                return self._readers.pop()
        try:
            if self.postgres:
                import psycopg

                return psycopg.connect(self._url, autocommit=True)
            connection = sqlite3.connect(self._url, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA query_only = ON")
            return connection
        except Exception as exc:
            raise StoreError(f"{self.store.url}: cannot open a read connection ({exc})") from None

    def _give_back(self, connection: Any) -> None:
        broken = bool(getattr(connection, "closed", False))
        with self._readers_lock:
            if not broken and not self._closed and len(self._readers) < READ_POOL:
                self._readers.append(connection)
                return
        if not broken:
            connection.close()

    def execute(self, text: str, params: Sequence[Any] = ()) -> int:
        """Run one write in its own transaction; returns the row count."""
        with self.transaction() as cur:
            cur.execute(self.sql(text), tuple(params))
            return int(cur.rowcount)

    def insert(self, cur: Any, text: str, params: Sequence[Any]) -> int:
        """Run ``INSERT ... RETURNING id`` on ``cur``; returns the new id."""
        cur.execute(self.sql(text + " RETURNING id"), tuple(params))
        return int(cur.fetchone()[0])
