"""Ingest: check observations, store them idempotently, move the latest state, tell listeners.

Every transport (HTTP, MQTT, the replay feed) hands :meth:`Ingestor.ingest` a batch of
Observation bodies (SensorThings JSON with ``Datastream: {"@iot.id": n}``). A bad one never
stops the batch: it goes to ``live_dead_letters`` with its reason and the reason's counter
rises. Ids and times are checked against what a ``BIGINT`` holds, so what the checks let
through the store takes; should the store still refuse a batch while it answers (a check
missed something), the batch is split in halves until the refused readings stand alone:
they are dead-lettered, the rest stored once. Only a store that does not answer stops a
batch (:class:`~cim.errors.StoreError`, nothing of it stored: the transport retries).

Good ones are written in one transaction with ``ON CONFLICT DO NOTHING`` on
``(datastream, phenomenonTime)``, so a redelivered message is not stored twice. ``latest``
moves only forwards in phenomenon time (the SQL upsert is guarded too), so an out-of-order
arrival lands in history and leaves the latest value alone; listeners (rules, live stream)
hear only about datastreams whose latest value moved; a listener that fails is logged, and
does not undo or repeat the stored batch.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from cim.errors import StoreError
from twin.db import LiveDb
from twin.sta.entities import OBSERVATION_NUMERIC
from twin.times import now_us, parse_time

#: Observations further ahead of the clock than this are refused, microseconds.
MAX_FUTURE_US = 300 * 1_000_000
#: Longest payload excerpt kept in a dead letter, characters.
DEAD_PAYLOAD_CHARS = 2000
#: Longest reason kept in a dead letter, characters.
DEAD_REASON_CHARS = 500
#: The largest id a ``BIGINT`` column holds (ids start at 1).
MAX_ID = 2**63 - 1
#: Times from year 1 to year 9999 (what ISO 8601 and the API's formatting can write), µs.
MIN_TIME_US = -62_135_596_800_000_000
MAX_TIME_US = 253_402_300_799_999_999

logger = logging.getLogger(__name__)


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
    #: the highest and lowest reading of the batch newer than the previous latest, with
    #: their times: a rule sees a peak a burst carried, not only the burst's last reading
    peak: tuple[int, float] | None = None
    trough: tuple[int, float] | None = None


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
        if not 1 <= ident <= MAX_ID:
            raise RejectedError(f"Datastream @iot.id {ident} is out of range (1 to 2**63 - 1)")
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
            result_json = _json_text(result, "result")
        time_us = _time_of(body, "phenomenonTime") if "phenomenonTime" in body else now
        if time_us > now + self.max_future_us:
            raise RejectedError("phenomenonTime is in the future")
        result_time: int | None = None
        if body.get("resultTime") is not None:
            result_time = _time_of(body, "resultTime")
        parameters = body.get("parameters")
        foi = body.get("FeatureOfInterest")
        if foi is not None:
            feature = foi.get("@iot.id") if isinstance(foi, dict) else None
            if not isinstance(feature, int) or isinstance(feature, bool):
                raise RejectedError('FeatureOfInterest must be {"@iot.id": id}')
            if not 1 <= feature <= MAX_ID:
                raise RejectedError(
                    f"FeatureOfInterest @iot.id {feature} is out of range (1 to 2**63 - 1)"
                )
        else:
            feature = self.feature_of(ident)
        return Reading(
            info,
            time_us,
            value,
            result_json,
            result_time,
            _json_text(parameters, "parameters") if parameters is not None else None,
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
            If the store does not answer (nothing of the batch is then stored).
        """
        now = self.clock()
        report = IngestReport()
        readings: list[tuple[int, Reading]] = []
        dead = [_dead_letter(now, source, reason, payload) for reason, payload in rejected]
        for reason, _ in rejected:
            self.counters[_reason_key(reason)] += 1
        for index, body in enumerate(bodies):
            try:
                readings.append((index, self.check(body, now)))
            except RejectedError as exc:
                self._reject(report, dead, index, str(exc), body, now, source)
            except Exception as exc:  # a lookup the store refused (or a bug): this body only
                self._require_store(exc)
                reason = f"cannot be checked ({type(exc).__name__}: {exc})"
                self._reject(report, dead, index, reason, body, now, source)
        changes = self._store(readings, dead, now, report, want_ids, source)
        self.counters["stored"] += report.stored
        self.counters["duplicates"] += report.duplicates
        if changes:
            for listener in list(self.listeners):
                try:
                    listener(changes)
                except Exception:  # stored is stored: a listener's failure is its own
                    logger.exception("ingest: a listener failed on %d changes", len(changes))
        return report

    def _reject(
        self,
        report: IngestReport,
        dead: list[tuple[int, str, str, str]],
        index: int,
        reason: str,
        body: Any,
        now: int,
        source: str,
    ) -> None:
        report.rejected.append((index, reason))
        self.counters[_reason_key(reason)] += 1
        dead.append(_dead_letter(now, source, reason, _excerpt(body)))

    def _require_store(self, exc: Exception) -> None:
        """Return if the store answers (so ``exc`` was about the data), else raise.

        Raises
        ------
        StoreError
            If the store does not answer a trivial query.
        """
        try:
            self.db.query("SELECT 1")
        except Exception as probe:
            raise StoreError(
                f"{self.db.store.url}: the store does not answer ({probe}) after: {exc}"
            ) from exc

    def _store(
        self,
        readings: list[tuple[int, Reading]],
        dead: list[tuple[int, str, str, str]],
        now: int,
        report: IngestReport,
        want_ids: bool,
        source: str,
    ) -> list[Change]:
        """Write a batch in one transaction; if the store refuses it but answers, split it
        in halves until the refused readings are alone, and dead-letter them."""
        if not readings and not dead:
            return []
        try:
            with self._lock:
                return self._write(readings, dead, now, report, want_ids)
        except Exception as exc:
            self._require_store(exc)
            failure = exc
        if dead:  # the dead letters alone (their text is made safe: see _dead_letter)
            try:
                with self._lock:
                    self._write([], dead, now, report, False)
            except Exception as exc:
                self._require_store(exc)
                logger.exception("ingest: %d dead letters could not be written", len(dead))
        if len(readings) == 1:
            index, reading = readings[0]
            reason = f"the store refused it ({type(failure).__name__}: {failure})"
            report.rejected.append((index, reason))
            self.counters[_reason_key(reason)] += 1
            letter = _dead_letter(now, source, reason, _excerpt(_body_of(reading)))
            try:
                with self._lock:
                    self._write([], [letter], now, report, False)
            except Exception as exc:
                self._require_store(exc)
                logger.exception("ingest: the dead letter of %r could not be written", reason)
            return []
        half = len(readings) // 2
        return self._store(readings[:half], [], now, report, want_ids, source) + self._store(
            readings[half:], [], now, report, want_ids, source
        )

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
        extremes: dict[int, tuple[tuple[int, float], tuple[int, float]]] = {}
        for _, r in readings:
            before = self.latest.get(r.datastream.id)
            if r.value is None or (before is not None and r.time_us <= before[0]):
                continue
            high, low = extremes.get(r.datastream.id, ((r.time_us, r.value), (r.time_us, r.value)))
            extremes[r.datastream.id] = (
                (r.time_us, r.value) if r.value > high[1] else high,
                (r.time_us, r.value) if r.value < low[1] else low,
            )
        changes = []
        for ds, r in newest.items():
            before = self.latest.get(ds)
            if before is None or r.time_us > before[0]:
                high_low = extremes.get(ds)
                changes.append(
                    Change(
                        r.datastream,
                        r.time_us,
                        r.value,
                        before[0] if before else None,
                        before[1] if before else None,
                        high_low[0] if high_low else None,
                        high_low[1] if high_low else None,
                    )
                )
        db = self.db
        stored = 0
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
        # counted once committed: a batch that fails is split and written again
        if readings:
            report.stored += stored
            report.duplicates += len(readings) - stored
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


def _time_of(body: dict[str, Any], name: str) -> int:
    """The time ``body[name]`` in µs, within years 1 to 9999.

    Raises
    ------
    RejectedError
        If it is not a time or out of range.
    """
    try:
        us = parse_time(body[name])
    except (ValueError, OverflowError) as exc:
        raise RejectedError(f"{name}: {exc}") from None
    if not MIN_TIME_US <= us <= MAX_TIME_US:
        raise RejectedError(f"{name}: {str(body[name])[:40]} is out of range (years 1 to 9999)")
    return us


def _json_text(value: Any, name: str) -> str:
    """``value`` as JSON text.

    Raises
    ------
    RejectedError
        If JSON cannot hold it (an integer past 64 bits, a non-string key...).
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError as exc:
        raise RejectedError(f"{name} cannot be stored as JSON ({exc})") from None


def _excerpt(body: Any) -> str:
    """A dead letter's payload text of ``body``: never fails, whatever ``body`` holds."""
    try:
        return orjson.dumps(body, default=str).decode()
    except TypeError:  # an int past 64 bits, say
        return repr(body)[:DEAD_PAYLOAD_CHARS]


def _dead_letter(now: int, source: str, reason: str, payload: str) -> tuple[int, str, str, str]:
    """A dead-letter row any store takes: cut to length, without NUL (PostgreSQL text
    cannot hold it)."""
    return (
        now,
        source[:DEAD_REASON_CHARS].replace("\x00", "\\x00"),
        reason[:DEAD_REASON_CHARS].replace("\x00", "\\x00"),
        payload[:DEAD_PAYLOAD_CHARS].replace("\x00", "\\x00"),
    )


def _body_of(reading: Reading) -> dict[str, Any]:
    """An Observation body of a checked reading (for its dead letter)."""
    body: dict[str, Any] = {
        "Datastream": {"@iot.id": reading.datastream.id},
        "phenomenonTime": reading.time_us,
        "result": reading.value if reading.result_json is None else reading.result_json,
    }
    if reading.result_time_us is not None:
        body["resultTime"] = reading.result_time_us
    if reading.feature is not None:
        body["FeatureOfInterest"] = {"@iot.id": reading.feature}
    return body


def _reason_key(reason: str) -> str:
    """The counter a reason goes to: its words up to the first detail."""
    for key in (
        "store refused",
        "cannot be checked",
        "out of range",
        "cannot be stored as JSON",
        "over the size limit",
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
