"""The live twin's tables, in the same store as the CIM (SQLite or PostgreSQL).

:class:`LiveDb` owns its own connection to the store (opened with
:func:`cim.store.open_store`), so the ingest thread never shares a cursor with the API's CIM
reads. SQL is written once with ``?`` placeholders; :meth:`LiveDb.sql` rewrites it for
psycopg, and the DDL spells the two engines' identity columns through ``{id}``.

Times are integer microseconds since the Unix epoch (UTC) in ``BIGINT`` columns: exact, so
``(datastream, phenomenon time)`` is a sound idempotency key, and ordered the same in both
engines.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cim.errors import StoreError
from cim.store import Store, open_store

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
        self._migrate()

    def close(self) -> None:
        """Close the connection."""
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

    def execute(self, text: str, params: Sequence[Any] = ()) -> int:
        """Run one write in its own transaction; returns the row count."""
        with self.transaction() as cur:
            cur.execute(self.sql(text), tuple(params))
            return int(cur.rowcount)

    def insert(self, cur: Any, text: str, params: Sequence[Any]) -> int:
        """Run ``INSERT ... RETURNING id`` on ``cur``; returns the new id."""
        cur.execute(self.sql(text + " RETURNING id"), tuple(params))
        return int(cur.fetchone()[0])
