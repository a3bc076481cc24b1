"""Ingest: check observations, store them idempotently, move the latest state, tell listeners.

Every transport (HTTP, MQTT, the replay feed) hands :meth:`Ingestor.ingest` a batch of
Observation bodies (SensorThings JSON with ``Datastream: {"@iot.id": n}``). A bad one never
stops the batch: it goes to ``live_dead_letters`` with its reason and the reason's counter
rises. Good ones are written in one transaction with ``ON CONFLICT DO NOTHING`` on
``(datastream, phenomenonTime)``, so a redelivered message is not stored twice. ``latest``
moves only forwards in phenomenon time (the SQL upsert is guarded too), so an out-of-order
arrival lands in history and leaves the latest value alone; listeners (rules, live stream)
hear only about datastreams whose latest value moved.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from twin.db import LiveDb
from twin.sta.entities import OBSERVATION_NUMERIC
from twin.sta.limits import MAX_INT
from twin.times import now_us, parse_time

#: Observations further ahead of the clock than this are refused, microseconds.
MAX_FUTURE_US = 300 * 1_000_000
#: Longest payload excerpt kept in a dead letter, characters.
DEAD_PAYLOAD_CHARS = 2000


@dataclass(frozen=True)
class DatastreamInfo:
    """What ingest and rules need of a datastream."""

    id: int
    numeric: bool
    site: str | None
    code: str | None
    observed_property: str
    interval_s: float | None


@dataclass(frozen=True)
class Reading:
    """A checked observation, ready to store. Times in µs since the epoch."""

    datastream: DatastreamInfo
    time_us: int
    value: float | None
    result_json: str | None
    result_time_us: int | None
    parameters: str | None
    feature: int | None = None


@dataclass(frozen=True)
class Change:
    """A datastream's latest value moved forwards."""

    datastream: DatastreamInfo
    time_us: int
    value: float | None
    previous_time_us: int | None
    previous_value: float | None


@dataclass
class IngestReport:
    """What one batch did.

    Attributes
    ----------
    stored : new observations written
    duplicates : observations already stored (redeliveries)
    rejected : ``(index in the batch, reason)`` of the dead letters
    ids : new or existing observation id per accepted index (when asked for)
    """

    stored: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    ids: dict[int, int] = field(default_factory=dict)


class RejectedError(Exception):
    """An observation that goes to the dead letters, with its reason."""


Listener = Callable[[list[Change]], None]


class Ingestor:
    """Checks and stores observations; keeps the latest value per datastream in memory.

    Parameters
    ----------
    db : the live store
    clock : current time in µs (tests pass a fixed clock)
    max_future_us : how far ahead of the clock a phenomenon time may be
    """

    def __init__(
        self,
        db: LiveDb,
        clock: Callable[[], int] = now_us,
        max_future_us: int = MAX_FUTURE_US,
    ) -> None:
        self.db = db
        self.clock = clock
        self.max_future_us = max_future_us
        self.listeners: list[Listener] = []
        self.counters: Counter[str] = Counter()
        self._datastreams: dict[int, DatastreamInfo] = {}
        # FeatureOfInterest of each datastream (from its Thing's first Location)
        self._features: dict[int, int | None] = {}
        self._ds_location: dict[int, int | None] | None = None
        self._location_feature: dict[int, int] = {}
        self._lock = threading.Lock()
        self.latest: dict[int, tuple[int, float | None]] = {
            int(ds): (int(t), float(v) if v is not None else None)
            for ds, t, v in db.query(
                "SELECT datastream_id, phenomenon_time, result FROM live_latest"
            )
        }

    # -- datastreams --------------------------------------------------------------------------
    def datastream(self, ident: int) -> DatastreamInfo | None:
        """The datastream ``ident`` (cached; a miss re-reads the store), or ``None``."""
        info = self._datastreams.get(ident)
        if info is not None:
            return info
        if not -MAX_INT - 1 <= ident <= MAX_INT:  # beyond the store's integers: no such id
            return None
        # the first miss loads every datastream in one query; later misses one each
        where, params = ("1 = 1", ()) if not self._datastreams else ("d.id = ?", (ident,))
        rows = self.db.query(
            "SELECT d.id, d.observation_type, d.site, d.code, p.name, d.interval_s "
            "FROM sta_datastreams d JOIN sta_observed_properties p "
            f"ON p.id = d.observed_property_id WHERE {where}",
            params,
        )
        for ds, kind, site, code, prop, interval in rows:
            self._datastreams[int(ds)] = DatastreamInfo(
                int(ds),
                kind in OBSERVATION_NUMERIC,
                site,
                code,
                str(prop),
                float(interval) if interval is not None else None,
            )
        return self._datastreams.get(ident)

    def forget(self, ident: int | None = None) -> None:
        """Drop cached datastream descriptions (after an update or delete)."""
        if ident is None:
            self._datastreams.clear()
        else:
            self._datastreams.pop(ident, None)
        self._features.clear()
        self._ds_location = None

    def feature_of(self, ident: int) -> int | None:
        """The FeatureOfInterest of readings of datastream ``ident`` that name none: made
        once from its Thing's first Location (SensorThings' automatic FoI), or ``None`` if
        the Thing has no Location."""
        if ident in self._features:
            return self._features[ident]
        if self._ds_location is None or ident not in self._ds_location:
            rows = self.db.query(
                "SELECT d.id, MIN(tl.location_id) FROM sta_datastreams d LEFT JOIN "
                "sta_thing_locations tl ON tl.thing_id = d.thing_id GROUP BY d.id"
            )
            self._ds_location = {int(d): int(loc) if loc is not None else None for d, loc in rows}
            self._location_feature = {
                int(loc): int(f)
                for f, loc in self.db.query(
                    "SELECT id, location_id FROM sta_features WHERE location_id IS NOT NULL"
                )
            }
        location = self._ds_location.get(ident)
        feature = None
        if location is not None:
            feature = self._location_feature.get(location)
            if feature is None:
                with self.db.transaction() as cur:
                    feature = self.db.insert(
                        cur,
                        "INSERT INTO sta_features (name, description, encoding_type, feature, "
                        "properties, location_id) SELECT name, description, encoding_type, "
                        "location, '{}', id FROM sta_locations WHERE id = ?",
                        (location,),
                    )
                self._location_feature[location] = feature
        self._features[ident] = feature
        return feature

    # -- checking -----------------------------------------------------------------------------
    def check(self, body: Any, now: int) -> Reading:
        """A reading from an Observation body.

        Raises
        ------
        RejectedError
            With the reason the body cannot be stored.
        """
        if not isinstance(body, dict):
            raise RejectedError("an observation must be a JSON object")
        link = body.get("Datastream")
        ident = link.get("@iot.id") if isinstance(link, dict) else None
        if not isinstance(ident, int) or isinstance(ident, bool):
            raise RejectedError("no Datastream @iot.id")
        info = self.datastream(ident)
        if info is None:
            raise RejectedError(f"unknown datastream {ident}")
        if "result" not in body:
            raise RejectedError("no result")
        result = body["result"]
        value: float | None = None
        result_json: str | None = None
        if info.numeric:
            if isinstance(result, bool) or not isinstance(result, int | float):
                raise RejectedError(f"result {str(result)[:40]!r} is not a number")
            value = float(result)
            if not math.isfinite(value):
                raise RejectedError("result is not finite")
        elif isinstance(result, int | float) and not isinstance(result, bool):
            value = float(result)
            if not math.isfinite(value):
                raise RejectedError("result is not finite")
        else:
            result_json = _json_text("result", result)
        try:
            time_us = parse_time(body["phenomenonTime"]) if "phenomenonTime" in body else now
        except ValueError as exc:
            raise RejectedError(f"phenomenonTime: {exc}") from None
        if time_us > now + self.max_future_us:
            raise RejectedError("phenomenonTime is in the future")
        result_time: int | None = None
        if body.get("resultTime") is not None:
            try:
                result_time = parse_time(body["resultTime"])
            except ValueError as exc:
                raise RejectedError(f"resultTime: {exc}") from None
        parameters = body.get("parameters")
        foi = body.get("FeatureOfInterest")
        if foi is not None:
            feature = foi.get("@iot.id") if isinstance(foi, dict) else None
            if not isinstance(feature, int) or isinstance(feature, bool):
                raise RejectedError('FeatureOfInterest must be {"@iot.id": id}')
            if not -MAX_INT - 1 <= feature <= MAX_INT:
                raise RejectedError(f"FeatureOfInterest {feature}: ids end at {MAX_INT}")
        else:
            feature = self.feature_of(ident)
        return Reading(
            info,
            time_us,
            value,
            result_json,
            result_time,
            _json_text("parameters", parameters) if parameters is not None else None,
            feature,
        )

    # -- storing ------------------------------------------------------------------------------
    def ingest(
        self,
        bodies: Sequence[Any],
        source: str,
        rejected: Sequence[tuple[str, str]] = (),
        want_ids: bool = False,
    ) -> IngestReport:
        """Check and store a batch; returns what happened to each body.

        Parameters
        ----------
        bodies : Observation bodies
        source : where they came from (``http``, an MQTT topic...), kept in dead letters
        rejected : ``(reason, payload)`` the transport already refused (malformed JSON...)
        want_ids : look up the observation id of each accepted body

        Raises
        ------
        StoreError
            If the store cannot be written (nothing of the batch is then stored).
        """
        now = self.clock()
        report = IngestReport()
        readings: list[tuple[int, Reading]] = []
        dead = [(now, source, reason, payload[:DEAD_PAYLOAD_CHARS]) for reason, payload in rejected]
        for reason, _ in rejected:
            self.counters[_reason_key(reason)] += 1
        for index, body in enumerate(bodies):
            try:
                readings.append((index, self.check(body, now)))
            except RejectedError as exc:
                reason = str(exc)
                report.rejected.append((index, reason))
                self.counters[_reason_key(reason)] += 1
                text = _payload_text(body)[:DEAD_PAYLOAD_CHARS]
                dead.append((now, source, reason, text))
        with self._lock:
            changes = self._write(readings, dead, now, report, want_ids)
        self.counters["stored"] += report.stored
        self.counters["duplicates"] += report.duplicates
        if changes:
            for listener in list(self.listeners):
                listener(changes)
        return report

    def _write(
        self,
        readings: list[tuple[int, Reading]],
        dead: list[tuple[int, str, str, str]],
        now: int,
        report: IngestReport,
        want_ids: bool,
    ) -> list[Change]:
        # the newest reading per datastream in this batch
        newest: dict[int, Reading] = {}
        for _, r in readings:
            best = newest.get(r.datastream.id)
            if best is None or r.time_us > best.time_us:
                newest[r.datastream.id] = r
        changes = []
        for ds, r in newest.items():
            before = self.latest.get(ds)
            if before is None or r.time_us > before[0]:
                changes.append(
                    Change(
                        r.datastream,
                        r.time_us,
                        r.value,
                        before[0] if before else None,
                        before[1] if before else None,
                    )
                )
        db = self.db
        with db.transaction() as cur:
            if dead:
                cur.executemany(
                    db.sql(
                        "INSERT INTO live_dead_letters (received, source, reason, payload) "
                        "VALUES (?, ?, ?, ?)"
                    ),
                    dead,
                )
            if readings:
                rows = [
                    (
                        r.datastream.id,
                        r.time_us,
                        r.result_time_us,
                        r.value,
                        r.result_json,
                        r.parameters,
                        r.feature,
                        now,
                    )
                    for _, r in readings
                ]
                columns = (
                    "INSERT INTO sta_observations (datastream_id, phenomenon_time, "
                    "result_time, result, result_json, parameters, feature_id, received) "
                )
                if db.postgres:
                    # one statement over arrays: a round trip per batch, not per row
                    cur.execute(
                        db.sql(
                            columns + "SELECT * FROM unnest(?::bigint[], ?::bigint[], "
                            "?::bigint[], ?::float8[], ?::text[], ?::text[], ?::bigint[], "
                            "?::bigint[]) "
                            "ON CONFLICT DO NOTHING"
                        ),
                        [list(column) for column in zip(*rows, strict=True)],
                    )
                else:
                    cur.executemany(
                        db.sql(columns + "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
                        rows,
                    )
                stored = max(int(cur.rowcount), 0)
                report.stored = stored
                report.duplicates = len(rows) - stored
            if changes:
                latest_rows = [
                    (c.datastream.id, c.time_us, c.value, newest[c.datastream.id].result_json, now)
                    for c in changes
                ]
                upsert = (
                    " ON CONFLICT (datastream_id) DO UPDATE SET "
                    "phenomenon_time = excluded.phenomenon_time, result = excluded.result, "
                    "result_json = excluded.result_json, received = excluded.received "
                    "WHERE live_latest.phenomenon_time < excluded.phenomenon_time"
                )
                into = (
                    "INSERT INTO live_latest (datastream_id, phenomenon_time, result, "
                    "result_json, received) "
                )
                if db.postgres:
                    cur.execute(
                        db.sql(
                            into + "SELECT * FROM unnest(?::bigint[], ?::bigint[], "
                            "?::float8[], ?::text[], ?::bigint[])" + upsert
                        ),
                        [list(column) for column in zip(*latest_rows, strict=True)],
                    )
                else:
                    cur.executemany(db.sql(into + "VALUES (?, ?, ?, ?, ?)" + upsert), latest_rows)
            if want_ids:
                for index, r in readings:
                    cur.execute(
                        db.sql(
                            "SELECT id FROM sta_observations WHERE datastream_id = ? "
                            "AND phenomenon_time = ?"
                        ),
                        (r.datastream.id, r.time_us),
                    )
                    report.ids[index] = int(cur.fetchone()[0])
        for c in changes:
            self.latest[c.datastream.id] = (c.time_us, c.value)
        return changes

    # -- dead letters -------------------------------------------------------------------------
    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest dead letters."""
        rows = self.db.query(
            "SELECT id, received, source, reason, payload FROM live_dead_letters "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        names = ("id", "received", "source", "reason", "payload")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def dead_letter_count(self) -> int:
        """How many dead letters the store holds."""
        return int(self.db.query("SELECT COUNT(*) FROM live_dead_letters")[0][0])


def _json_text(name: str, value: Any) -> str:
    """``value`` as JSON text to store; an integer beyond 64 bits is refused (orjson, and the
    readers of the store, stop at 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError as exc:
        raise RejectedError(f"{name}: {exc}") from None


def _payload_text(body: Any) -> str:
    """A rejected body as JSON text for its dead letter, whatever numbers it holds."""
    try:
        return orjson.dumps(body, default=str).decode()
    except TypeError:  # an integer beyond 64 bits: the standard library writes any integer
        return json.dumps(body, default=str)


def _reason_key(reason: str) -> str:
    """The counter a reason goes to: its words up to the first detail."""
    for key in (
        "unknown datastream",
        "not a number",
        "not finite",
        "in the future",
        "malformed JSON",
        "phenomenonTime",
        "no result",
        "no Datastream",
    ):
        if key in reason:
            return "dead: " + key
    return "dead: other"
