"""Alerts: rules applied to every change of a datastream's latest value, and to silence.

An alert is an object with a code (``AL`` + 8-digit serial), the rule, datastream and CIM
object it concerns, a level and severity, a state and a history of events:

- ``open`` when a value reaches level >= 1; the level moves up and down with the value
  (hysteresis in :mod:`twin.rules`), each move an event;
- ``cleared`` when the value is back to normal (the next excursion opens a new alert);
- ``acknowledged`` by an operator while open; ``closed`` by an operator at any time.

One alert per (rule, datastream) is active (open or acknowledged) at a time, in the store:
a partial unique index (``live_alerts_one_active``) refuses a second one, and every level
move re-reads the active alert inside its write transaction (``FOR UPDATE`` on
PostgreSQL), so several processes over one store (``twin serve --workers N``) evaluating
the same reading end with one alert and one event per move. Rules are the store's too: a
cheap version check (``MAX(id), COUNT(*)`` of ``live_rules``) before each evaluation picks
up rules another process added or deleted (ADR 0019).

Drill alerts (:meth:`AlertBook.raise_drill_alerts`) are what a drill found — a road a flood
drill closes, a building it reaches, a crowd zone over a density level — put into the live
twin beside the real ones so operators can rehearse on them. They carry ``source`` ``drill``
and the drill that raised them, no rule or datastream, codes ``DR`` + 8 digits, and are
never counted with sensor alerts: :meth:`AlertBook.find` returns sensor alerts unless asked
for ``source="drill"`` (or ``"all"``), so vital signs and unit dashboards are unchanged.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from cim.errors import NotFoundError
from twin.bus import EventBus
from twin.db import LiveDb
from twin.errors import TransitionError
from twin.ingest import Change, DatastreamInfo
from twin.rules import CasePolicy, Rule, stale_mask
from twin.state import scope_clause
from twin.times import format_time

_ACTIVE = ("open", "acknowledged")
_OPERATOR_ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "acknowledge": (("open",), "acknowledged"),
    "close": (("open", "acknowledged", "cleared"), "closed"),
}
_ALERT_COLUMNS = (
    "id, code, rule_id, datastream_id, site, object_code, kind, level, severity, state, "
    "value, opened, updated, closed, first_reading, message, source, drill"
)
#: Where an alert comes from: a rule on sensor readings, or a drill.
SOURCES = ("sensor", "drill")
#: The active sensor alerts (the predicate of the partial unique index).
_ACTIVE_SENSOR = "state IN ('open', 'acknowledged') AND source = 'sensor'"
#: PostgreSQL advisory lock key of this module's migration (concurrent starts take turns).
_MIGRATE_LOCK = 0x7477696E_616C
#: Attempts of a level move that lost a race to another process.
_ATTEMPTS = 3


@dataclass(frozen=True)
class DrillAlert:
    """One finding of a drill to raise as an alert.

    Attributes
    ----------
    site : the site drilled
    object_code : the CIM code it concerns (a road, a building, a venue's site code)
    kind : what happened (``road-closure``, ``building-flooded``, ``crowd-density``...)
    severity : ``warning``, ``alarm``...
    message : for the operator, naming the drill's time of the event
    value : the measure that crossed its threshold (a depth, a density), or ``None``
    level : 1 for the mildest
    """

    site: str
    object_code: str
    kind: str
    severity: str
    message: str
    value: float | None = None
    level: int = 1


#: Called when an alert reaches a rule's case level: ``(alert, policy)``.
CaseOpener = Callable[[dict[str, Any], CasePolicy], None]


class AlertBook:
    """Rules, active alerts and their evaluation.

    Parameters
    ----------
    db : the live store
    bus : where alert events are published
    """

    def __init__(self, db: LiveDb, bus: EventBus) -> None:
        self.db = db
        self.bus = bus
        self.case_opener: CaseOpener | None = None
        self._lock = threading.RLock()
        _migrate(db)
        #: the rules, as last read from the store (see :meth:`refresh`)
        self.rules: dict[int, Rule] = {}
        self._rules_version: tuple[int, int] | None = None
        #: (rule id, datastream id) -> (level, alert id) of active alerts, as last read
        self.active: dict[tuple[int, int], tuple[int, int]] = {}
        self.refresh()

    def refresh(self) -> None:
        """Re-read the active alerts, and the rules if another process changed them.

        Raises
        ------
        StoreError, sqlite3.Error, psycopg.Error
            If the store cannot be read.
        """
        with self._lock:
            top, count = self.db.query("SELECT MAX(id), COUNT(*) FROM live_rules")[0]
            version = (int(top or 0), int(count))
            if version != self._rules_version:
                self.rules = {
                    int(row[0]): _rule(row)
                    for row in self.db.query(
                        "SELECT id, name, kind, observed_property, code_prefix, levels, "
                        "hysteresis, missed, open_case FROM live_rules ORDER BY id"
                    )
                }
                self._rules_version = version
            self.active = {
                (int(r), int(d)): (int(level), int(a))
                for a, r, d, level in self.db.query(
                    "SELECT id, rule_id, datastream_id, level FROM live_alerts "
                    f"WHERE {_ACTIVE_SENSOR}"
                )
            }

    # -- rules --------------------------------------------------------------------------------
    def add_rule(self, rule: Rule) -> Rule:
        """Store a rule; returns it with its id."""
        with self._lock, self.db.transaction() as cur:
            ident = self.db.insert(
                cur,
                "INSERT INTO live_rules (name, kind, observed_property, code_prefix, levels, "
                "hysteresis, missed, open_case) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rule.name,
                    rule.kind,
                    rule.observed_property,
                    rule.code_prefix,
                    orjson.dumps([list(level) for level in rule.levels]).decode(),
                    rule.hysteresis,
                    rule.missed,
                    orjson.dumps(rule.open_case.to_dict()).decode() if rule.open_case else None,
                ),
            )
            stored = Rule(
                ident,
                rule.name,
                rule.kind,
                rule.levels,
                rule.observed_property,
                rule.code_prefix,
                rule.hysteresis,
                rule.missed,
                rule.open_case,
            )
            self.rules[ident] = stored
            self._rules_version = None  # re-read at the next evaluation
            return stored

    def delete_rule(self, ident: int) -> None:
        """Remove a rule (its alerts stay, as history).

        Raises
        ------
        NotFoundError
            If there is no such rule.
        """
        with self._lock:
            if not self.db.execute("DELETE FROM live_rules WHERE id = ?", (ident,)):
                raise NotFoundError(f"no rule {ident}")
            self.rules.pop(ident, None)
            self._rules_version = None
            for key in [k for k in self.active if k[0] == ident]:
                del self.active[key]

    # -- evaluation ---------------------------------------------------------------------------
    def on_changes(self, changes: list[Change]) -> None:
        """Apply the value rules to changes of latest values (an ingest listener)."""
        with self._lock:
            self.refresh()
            numeric = [c for c in changes if c.value is not None]
            for rule in list(self.rules.values()):
                if rule.kind == "stale":
                    continue
                if rule.kind in ("high", "low"):
                    self._peaks(rule, numeric)
                chosen = [
                    c
                    for c in numeric
                    if rule.applies(c.datastream.observed_property, c.datastream.code)
                    and (rule.kind != "rate" or c.previous_value is not None)
                ]
                if not chosen:
                    continue
                values = np.array([c.value for c in chosen], dtype=float)
                if rule.kind == "rate":
                    before = np.array([c.previous_value for c in chosen], dtype=float)
                    dt_s = np.array([(c.time_us - (c.previous_time_us or 0)) / 1e6 for c in chosen])
                    values = np.abs(values - before) / dt_s
                current = np.array(
                    [self.active.get((rule.id, c.datastream.id), (0, 0))[0] for c in chosen],
                    dtype=np.int64,
                )
                new = rule.levels_of(values, current)
                for j in np.flatnonzero(new != current):
                    c = chosen[int(j)]
                    # the level is worked out again from the store's current level
                    self._apply(rule, c.datastream, float(values[j]), c.time_us)
            self._sweep_clear_stale(changes)

    def _peaks(self, rule: Rule, changes: list[Change]) -> None:
        """Raise a high (low) rule's alert to the level of the highest (lowest) reading a
        batch carried before its last one: a burst's peak is never skipped. The last
        reading then sets the level the alert is left at. Call with the lock held."""
        for c in changes:
            extreme = c.peak if rule.kind == "high" else c.trough
            if extreme is None or extreme[0] == c.time_us:
                continue
            if not rule.applies(c.datastream.observed_property, c.datastream.code):
                continue
            current = self.active.get((rule.id, c.datastream.id), (0, 0))[0]
            level = rule.levels_of(np.array([extreme[1]]), np.array([current], dtype=np.int64))
            if int(level[0]) > current:
                self._apply(rule, c.datastream, float(extreme[1]), extreme[0])

    def _sweep_clear_stale(self, changes: list[Change]) -> None:
        """A reading ends a stale alert of its datastream."""
        for change in changes:
            for rule in self.rules.values():
                if rule.kind == "stale" and (rule.id, change.datastream.id) in self.active:
                    self._apply(rule, change.datastream, None, change.time_us, level=0)

    def sweep_stale(self, now_us: int, latest: dict[int, tuple[int, float | None]]) -> int:
        """Open alerts for datastreams silent too long (a periodic job); returns how many
        alerts it opened.

        Parameters
        ----------
        now_us : the current time, µs
        latest : datastream id -> (time µs, value) of its latest reading; read it from the
            store (``live_latest``), which every process's ingest moves

        Raises
        ------
        StoreError, sqlite3.Error, psycopg.Error
            If the store cannot be read or written.
        """
        with self._lock:
            self.refresh()
        stale_rules = [r for r in self.rules.values() if r.kind == "stale"]
        if not stale_rules:
            return 0
        rows = self.db.query(
            "SELECT d.id, d.observation_type, d.site, d.code, p.name, d.interval_s "
            "FROM sta_datastreams d JOIN sta_observed_properties p "
            "ON p.id = d.observed_property_id WHERE d.interval_s IS NOT NULL"
        )
        if not rows:
            return 0
        ids = np.array([int(r[0]) for r in rows], dtype=np.int64)
        times = np.array([latest.get(int(i), (now_us, None))[0] for i in ids], dtype=np.int64)
        intervals = np.array([float(r[5]) for r in rows])
        opened = 0
        with self._lock:
            for rule in stale_rules:
                mask = stale_mask(times, intervals, rule.missed, now_us)
                for i in np.flatnonzero(mask):
                    row = rows[int(i)]
                    info = DatastreamInfo(int(row[0]), True, row[2], row[3], str(row[4]), None)
                    if not rule.applies(info.observed_property, info.code):
                        continue
                    if (rule.id, info.id) in self.active:
                        continue
                    opened += self._apply(rule, info, None, int(times[i]), level=1, now_us=now_us)
        return opened

    def _apply(
        self,
        rule: Rule,
        info: DatastreamInfo,
        value: float | None,
        time_us: int,
        level: int | None = None,
        now_us: int | None = None,
    ) -> bool:
        """Move the alert of (rule, datastream) to ``level`` (``None``: the level of
        ``value`` from the store's current level); returns whether it moved."""
        key = (rule.id, info.id)
        stamp = now_us if now_us is not None else time_us
        moved: tuple[int, int, int] | None = None
        for attempt in range(_ATTEMPTS):
            try:
                moved = self._move(rule, info, value, time_us, level, stamp)
                break
            except Exception as exc:
                # another process opened the same alert first: read it and go again
                if not _is_unique_violation(exc) or attempt == _ATTEMPTS - 1:
                    raise
        if moved is None:
            return False
        current, new, alert_id = moved
        if new == 0:
            self.active.pop(key, None)
        else:
            self.active[key] = (new, alert_id)
        alert = self.get_by_id(alert_id)
        self.bus.publish({"type": "alert", "code": info.code, "alert": alert})
        policy = rule.open_case
        if (
            policy is not None
            and new >= policy.min_level
            and current < policy.min_level
            and self.case_opener is not None
        ):
            self.case_opener(alert, policy)
        return True

    def _move(
        self,
        rule: Rule,
        info: DatastreamInfo,
        value: float | None,
        time_us: int,
        level: int | None,
        stamp: int,
    ) -> tuple[int, int, int] | None:
        """One transaction of :meth:`_apply`: ``(level before, level after, alert id)``, or
        ``None`` when the store's alert is already at the level."""
        key = (rule.id, info.id)
        lock = " FOR UPDATE" if self.db.postgres else ""  # SQLite: the write lock is held
        with self.db.transaction() as cur:
            cur.execute(
                self.db.sql(
                    "SELECT level, id FROM live_alerts WHERE rule_id = ? AND datastream_id = ? "
                    f"AND {_ACTIVE_SENSOR}{lock}"
                ),
                key,
            )
            row = cur.fetchone()
            current, alert_id = (int(row[0]), int(row[1])) if row else (0, 0)
            if level is not None:
                new = level
            elif value is not None:
                new = int(rule.levels_of(np.array([value]), np.array([current]))[0])
            else:
                new = 0
            if new == current:
                if current == 0:
                    self.active.pop(key, None)
                else:
                    self.active[key] = (current, alert_id)
                return None
            severity = rule.severity(new)
            if current == 0:
                message = _message(rule, info, value, severity)
                alert_id = self.db.insert(
                    cur,
                    "INSERT INTO live_alerts (code, rule_id, datastream_id, site, object_code, "
                    "kind, level, severity, state, value, opened, updated, first_reading, message) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?)",
                    (
                        f"pending-{rule.id}-{info.id}-{stamp}",
                        rule.id,
                        info.id,
                        info.site,
                        info.code,
                        rule.kind,
                        new,
                        severity,
                        value,
                        stamp,
                        stamp,
                        time_us,
                        message,
                    ),
                )
                cur.execute(
                    self.db.sql("UPDATE live_alerts SET code = ? WHERE id = ?"),
                    (f"AL{alert_id:08d}", alert_id),
                )
                state, note = "open", message
            elif new == 0:
                cur.execute(
                    self.db.sql(
                        "UPDATE live_alerts SET level = 0, severity = 'normal', state = 'cleared', "
                        "value = ?, updated = ?, closed = ? WHERE id = ?"
                    ),
                    (value, stamp, stamp, alert_id),
                )
                state, note = "cleared", "back to normal"
            else:
                cur.execute(
                    self.db.sql(
                        "UPDATE live_alerts SET level = ?, severity = ?, value = ?, updated = ? "
                        "WHERE id = ?"
                    ),
                    (new, severity, value, stamp, alert_id),
                )
                state = "open"
                note = f"{'raised' if new > current else 'lowered'} to {severity}"
            cur.execute(
                self.db.sql(
                    "INSERT INTO live_alert_events (alert_id, t, state, level, severity, value, "
                    "note) VALUES (?, ?, ?, ?, ?, ?, ?)"
                ),
                (alert_id, stamp, state, new, severity, value, note),
            )
        return current, new, alert_id

    # -- drills -------------------------------------------------------------------------------
    def raise_drill_alerts(
        self, drill: str, alerts: Sequence[DrillAlert], now_us: int
    ) -> list[dict[str, Any]]:
        """Open one drill alert per finding, marked ``source="drill"`` with ``drill`` (a job
        id or drill name); returns them. They open no case and take no part in rules.

        Raises
        ------
        ValueError
            If ``drill`` is empty or a level is below 1.
        """
        if not drill:
            raise ValueError("a drill alert needs the drill that raised it")
        ids: list[int] = []
        with self._lock, self.db.transaction() as cur:
            for alert in alerts:
                if alert.level < 1:
                    raise ValueError(f"drill alert level(={alert.level}) must be >= 1")
                message = f"drill {drill}: {alert.message}"
                ident = self.db.insert(
                    cur,
                    "INSERT INTO live_alerts (code, rule_id, datastream_id, site, object_code, "
                    "kind, level, severity, state, value, opened, updated, first_reading, message, "
                    "source, drill) VALUES (?, 0, 0, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, "
                    "'drill', ?)",
                    (
                        f"pending-drill-{drill}-{len(ids)}-{now_us}",
                        alert.site,
                        alert.object_code,
                        alert.kind,
                        alert.level,
                        alert.severity,
                        alert.value,
                        now_us,
                        now_us,
                        now_us,
                        message,
                        drill,
                    ),
                )
                cur.execute(
                    self.db.sql("UPDATE live_alerts SET code = ? WHERE id = ?"),
                    (f"DR{ident:08d}", ident),
                )
                cur.execute(
                    self.db.sql(
                        "INSERT INTO live_alert_events (alert_id, t, state, level, severity, "
                        "value, note) VALUES (?, ?, 'open', ?, ?, ?, ?)"
                    ),
                    (ident, now_us, alert.level, alert.severity, alert.value, message),
                )
                ids.append(ident)
        out = [self.get_by_id(i) for i in ids]
        for alert_json in out:
            self.bus.publish(
                {"type": "alert", "code": alert_json["objectCode"], "alert": alert_json}
            )
        return out

    # -- reading and operator actions ---------------------------------------------------------
    def get_by_id(self, ident: int) -> dict[str, Any]:
        """One alert as JSON, with its history."""
        rows = self.db.query(f"SELECT {_ALERT_COLUMNS} FROM live_alerts WHERE id = ?", (ident,))
        if not rows:
            raise NotFoundError(f"no alert {ident}")
        return self._render(rows[0], history=True)

    def get(self, code: str, scopes: Sequence[str] | None = None) -> dict[str, Any]:
        """One alert by code, with its history.

        Raises
        ------
        NotFoundError
            If there is none (or it is outside the scopes).
        """
        scope, params = scope_clause(scopes, "object_code")
        rows = self.db.query(
            f"SELECT {_ALERT_COLUMNS} FROM live_alerts WHERE code = ? AND {scope}",
            [code, *params],
        )
        if not rows:
            raise NotFoundError(f"no alert {code!r}")
        return self._render(rows[0], history=True)

    def find(
        self,
        prefix: str = "",
        state: str | None = None,
        scopes: Sequence[str] | None = None,
        limit: int = 1000,
        source: str = "sensor",
    ) -> list[dict[str, Any]]:
        """Alerts of objects under ``prefix``, newest first; ``state="active"`` for open and
        acknowledged ones; ``source`` ``sensor`` (the default), ``drill`` or ``all``.

        Raises
        ------
        ValueError
            If ``source`` is none of those.
        """
        if source not in (*SOURCES, "all"):
            raise ValueError(f"source(={source!r}) must be sensor, drill or all")
        scope, params = scope_clause(scopes, "object_code")
        where = f"object_code LIKE ? ESCAPE '\\' AND {scope}"
        args: list[Any] = [_like(prefix), *params]
        if source != "all":
            where += " AND source = ?"
            args.append(source)
        if state == "active":
            where += " AND state IN ('open', 'acknowledged')"
        elif state is not None:
            where += " AND state = ?"
            args.append(state)
        rows = self.db.query(
            f"SELECT {_ALERT_COLUMNS} FROM live_alerts WHERE {where} ORDER BY id DESC LIMIT ?",
            [*args, limit],
        )
        return [self._render(r, history=False) for r in rows]

    def act(self, code: str, action: str, actor: str, note: str, now_us: int) -> dict[str, Any]:
        """An operator acknowledges or closes an alert.

        Raises
        ------
        NotFoundError
            If there is no such alert.
        TransitionError
            If the action is not allowed in the alert's state (409).
        ValueError
            If the action is unknown.
        """
        if action not in _OPERATOR_ACTIONS:
            raise ValueError(f"action(={action!r}) must be one of {', '.join(_OPERATOR_ACTIONS)}")
        with self._lock:
            alert = self.get(code)
            sources, target = _OPERATOR_ACTIONS[action]
            if alert["state"] not in sources:
                allowed = tuple(a for a, (s, _) in _OPERATOR_ACTIONS.items() if alert["state"] in s)
                raise TransitionError(code, alert["state"], action, allowed)
            with self.db.transaction() as cur:
                # only from the state read: another process may have moved the alert since
                cur.execute(
                    self.db.sql(
                        "UPDATE live_alerts SET state = ?, updated = ?"
                        + (", closed = ?" if target == "closed" else "")
                        + " WHERE id = ? AND state = ?"
                    ),
                    (
                        target,
                        now_us,
                        *([now_us] if target == "closed" else []),
                        alert["id"],
                        alert["state"],
                    ),
                )
                if cur.rowcount != 1:
                    moved = str(self.get(code)["state"])
                    allowed = tuple(a for a, (s, _) in _OPERATOR_ACTIONS.items() if moved in s)
                    raise TransitionError(code, moved, action, allowed)
                cur.execute(
                    self.db.sql(
                        "INSERT INTO live_alert_events (alert_id, t, state, level, severity, "
                        "value, note) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    ),
                    (
                        alert["id"],
                        now_us,
                        target,
                        alert["level"],
                        alert["severity"],
                        alert["value"],
                        f"{action} by {actor}" + (f": {note}" if note else ""),
                    ),
                )
            if target == "closed":
                self.active.pop((alert["rule"], alert["datastream"]), None)
            updated = self.get(code)
            self.bus.publish({"type": "alert", "code": updated["objectCode"], "alert": updated})
            return updated

    def _render(self, row: Sequence[Any], history: bool) -> dict[str, Any]:
        names = [n.strip() for n in _ALERT_COLUMNS.split(",")]
        data = dict(zip(names, row, strict=True))
        out = {
            "id": int(data["id"]),
            "code": data["code"],
            "rule": int(data["rule_id"]),
            "datastream": int(data["datastream_id"]),
            "site": data["site"],
            "objectCode": data["object_code"],
            "kind": data["kind"],
            "level": int(data["level"]),
            "severity": data["severity"],
            "state": data["state"],
            "value": data["value"],
            "opened": format_time(data["opened"]),
            "updated": format_time(data["updated"]),
            "closed": format_time(data["closed"]),
            "firstReading": format_time(data["first_reading"]),
            "message": data["message"],
            "source": data["source"],
            "drill": data["drill"],
        }
        if history:
            events = self.db.query(
                "SELECT t, state, level, severity, value, note FROM live_alert_events "
                "WHERE alert_id = ? ORDER BY t, state",
                (out["id"],),
            )
            out["history"] = [
                {
                    "time": format_time(t),
                    "state": s,
                    "level": int(level),
                    "severity": sev,
                    "value": v,
                    "note": n,
                }
                for t, s, level, sev, v, n in events
            ]
        return out


def _migrate(db: LiveDb) -> None:
    """The partial unique index of active sensor alerts; an old store's duplicates (two
    workers could open the same alert before it) are closed first, the newest kept."""
    with db.transaction() as cur:
        if db.postgres:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
        cur.execute(
            db.sql(
                "UPDATE live_alerts SET state = 'closed', closed = updated "
                f"WHERE {_ACTIVE_SENSOR} AND id NOT IN (SELECT MAX(id) FROM live_alerts "
                f"WHERE {_ACTIVE_SENSOR} GROUP BY rule_id, datastream_id)"
            )
        )
        cur.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS live_alerts_one_active "
            f"ON live_alerts (rule_id, datastream_id) WHERE {_ACTIVE_SENSOR}"
        )


def _is_unique_violation(exc: Exception) -> bool:
    """Whether ``exc`` is the store refusing a duplicate key (either engine)."""
    if isinstance(exc, sqlite3.IntegrityError):
        return True
    return getattr(exc, "sqlstate", None) == "23505"


def _like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _message(rule: Rule, info: DatastreamInfo, value: float | None, severity: str) -> str:
    where = info.code or f"datastream {info.id}"
    if rule.kind == "stale":
        return (
            f"{rule.name}: {info.observed_property} at {where} silent for {rule.missed} intervals"
        )
    return f"{rule.name}: {info.observed_property} at {where} is {value:g} ({severity})"


def _rule(row: Sequence[Any]) -> Rule:
    ident, name, kind, prop, prefix, levels, hysteresis, missed, open_case = row
    return Rule(
        int(ident),
        str(name),
        kind,
        tuple((float(t), str(s)) for t, s in orjson.loads(levels)),
        prop,
        prefix,
        float(hysteresis),
        int(missed),
        CasePolicy.from_dict(orjson.loads(open_case)) if open_case else None,
    )
