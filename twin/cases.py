"""Cases (早处置): the disposal workflow of the city-management standards, as a state
machine with an audit timeline.

::

    reported --file--> filed --dispatch--> dispatched --handle--> handled --verify--> verified
        |                 |                    ^   |                  |                  |
        +----cancel-------+------cancel--------|---+                  +--rework--+     close
                                               +-------------rework--------------+       v
                                                                                       closed

(立案 file, 派遣 dispatch, 处置 handle, 核查 verify, 结案 close; a failed check sends the
case back to the unit: rework.) A case is opened by an alert (its rule's case policy), an
operator or an API call; the clock starts at dispatch, with a deadline by class and
urgency. Every step records who and when.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from cim.errors import NotFoundError
from cim.model import GRID_CELL
from twin.bus import EventBus
from twin.db import LiveDb
from twin.errors import TransitionError
from twin.state import scope_clause
from twin.times import format_time

#: action -> (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "file": (("reported",), "filed"),
    "dispatch": (("filed",), "dispatched"),
    "handle": (("dispatched",), "handled"),
    "verify": (("handled",), "verified"),
    "close": (("verified",), "closed"),
    "rework": (("handled", "verified"), "dispatched"),
    "cancel": (("reported", "filed", "dispatched"), "cancelled"),
}
STATES: tuple[str, ...] = (
    "reported",
    "filed",
    "dispatched",
    "handled",
    "verified",
    "closed",
    "cancelled",
)
URGENCIES: tuple[str, ...] = ("urgent", "high", "normal", "low")
SOURCES: tuple[str, ...] = ("alert", "operator", "api")

#: Disposal deadline in hours by class-code prefix (longest match wins; ``""`` is the
#: default) and urgency.
DEADLINE_HOURS: dict[str, dict[str, float]] = {
    "": {"urgent": 2.0, "high": 4.0, "normal": 24.0, "low": 72.0},
}

_CASE_COLUMNS = (
    "id, code, title, source, alert_id, site, object_code, grid_code, class_code, urgency, "
    "unit, state, reworks, created, updated, deadline, first_reading, handled, closed"
)


def allowed_actions(state: str) -> tuple[str, ...]:
    """The actions allowed from ``state``."""
    return tuple(a for a, (sources, _) in TRANSITIONS.items() if state in sources)


def deadline_hours(
    class_code: str, urgency: str, table: Mapping[str, Mapping[str, float]] = DEADLINE_HOURS
) -> float:
    """Hours to dispose of a case of this class and urgency.

    Raises
    ------
    ValueError
        If the urgency is unknown.
    """
    if urgency not in URGENCIES:
        raise ValueError(f"urgency(={urgency!r}) must be one of {', '.join(URGENCIES)}")
    best = max((p for p in table if class_code.startswith(p)), key=len, default="")
    hours = table.get(best, DEADLINE_HOURS[""])
    return float(hours.get(urgency, DEADLINE_HOURS[""][urgency]))


class CaseBook:
    """Cases in the live store.

    Parameters
    ----------
    db : the live store
    bus : where case changes are published
    deadlines : hours by class prefix and urgency
    """

    def __init__(
        self,
        db: LiveDb,
        bus: EventBus,
        deadlines: Mapping[str, Mapping[str, float]] = DEADLINE_HOURS,
    ) -> None:
        self.db = db
        self.bus = bus
        self.deadlines = deadlines
        self._lock = threading.RLock()

    def grid_of(self, site: str | None, code: str | None) -> str | None:
        """The grid cell an object lies in (walking up the CIM tree), or ``None``."""
        if site is None or code is None:
            return None
        seen = 0
        current: str | None = code
        while current is not None and seen < 12:
            try:
                obj = self.db.store.get(site, current)
            except NotFoundError:
                return None
            if obj.kind == GRID_CELL:
                return obj.code
            current = obj.parent
            seen += 1
        return None

    def open(
        self,
        title: str,
        source: str,
        actor: str,
        now_us: int,
        site: str | None = None,
        object_code: str | None = None,
        class_code: str = "",
        urgency: str = "normal",
        unit: str = "",
        alert_id: int | None = None,
        first_reading_us: int | None = None,
    ) -> dict[str, Any]:
        """Open a case in state ``reported``.

        Raises
        ------
        ValueError
            If the source or urgency is unknown, or the title is empty.
        NotFoundError
            If ``site`` and ``object_code`` name an object that does not exist.
        """
        if source not in SOURCES:
            raise ValueError(f"source(={source!r}) must be one of {', '.join(SOURCES)}")
        if urgency not in URGENCIES:
            raise ValueError(f"urgency(={urgency!r}) must be one of {', '.join(URGENCIES)}")
        if not title.strip():
            raise ValueError("a case needs a title")
        if site is not None and object_code is not None:
            self.db.store.get(site, object_code)
        grid = self.grid_of(site, object_code)
        with self._lock, self.db.transaction() as cur:
            ident = self.db.insert(
                cur,
                "INSERT INTO live_cases (code, title, source, alert_id, site, object_code, "
                "grid_code, class_code, urgency, unit, state, reworks, created, updated, "
                "first_reading) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'reported', 0, ?, ?, ?)",
                (
                    f"pending-{now_us}-{title[:20]}",
                    title,
                    source,
                    alert_id,
                    site,
                    object_code,
                    grid,
                    class_code,
                    urgency,
                    unit,
                    now_us,
                    now_us,
                    first_reading_us,
                ),
            )
            cur.execute(
                self.db.sql("UPDATE live_cases SET code = ? WHERE id = ?"),
                (f"CS{ident:08d}", ident),
            )
            cur.execute(
                self.db.sql(
                    "INSERT INTO live_case_events (case_id, t, from_state, to_state, actor, note) "
                    "VALUES (?, ?, NULL, 'reported', ?, ?)"
                ),
                (ident, now_us, actor, f"opened from {source}"),
            )
        case = self.get(f"CS{ident:08d}")
        self.bus.publish({"type": "case", "code": object_code, "case": case})
        return case

    def act(
        self, code: str, action: str, actor: str, now_us: int, note: str = ""
    ) -> dict[str, Any]:
        """Move a case along the workflow.

        Raises
        ------
        NotFoundError
            If there is no such case.
        TransitionError
            If ``action`` is not allowed from the case's state (409).
        """
        with self._lock:
            case = self.get(code)
            state = case["state"]
            if action not in TRANSITIONS or state not in TRANSITIONS[action][0]:
                raise TransitionError(code, state, action, allowed_actions(state))
            target = TRANSITIONS[action][1]
            sets: dict[str, Any] = {"state": target, "updated": now_us}
            if action == "dispatch" or (action == "rework" and case["deadline"] is None):
                hours = deadline_hours(case["classCode"], case["urgency"], self.deadlines)
                sets["deadline"] = now_us + round(hours * 3600e6)
            if action == "handle":
                sets["handled"] = now_us
            if action == "rework":
                sets["reworks"] = case["reworks"] + 1
                sets["handled"] = None
            if target in ("closed", "cancelled"):
                sets["closed"] = now_us
            with self.db.transaction() as cur:
                assignments = ", ".join(f"{k} = ?" for k in sets)
                # only from the state read: another process may have moved the case since
                cur.execute(
                    self.db.sql(f"UPDATE live_cases SET {assignments} WHERE id = ? AND state = ?"),
                    (*sets.values(), case["id"], state),
                )
                if cur.rowcount != 1:
                    moved = str(self.get(code)["state"])
                    raise TransitionError(code, moved, action, allowed_actions(moved))
                cur.execute(
                    self.db.sql(
                        "INSERT INTO live_case_events (case_id, t, from_state, to_state, actor, "
                        "note) VALUES (?, ?, ?, ?, ?, ?)"
                    ),
                    (case["id"], now_us, state, target, actor, note),
                )
            updated = self.get(code)
        self.bus.publish({"type": "case", "code": updated["objectCode"], "case": updated})
        return updated

    def get(self, code: str, scopes: Sequence[str] | None = None) -> dict[str, Any]:
        """One case with its timeline.

        Raises
        ------
        NotFoundError
            If there is none (or it is outside the scopes).
        """
        scope, params = scope_clause(scopes, "object_code")
        rows = self.db.query(
            f"SELECT {_CASE_COLUMNS} FROM live_cases WHERE code = ? AND {scope}", [code, *params]
        )
        if not rows:
            raise NotFoundError(f"no case {code!r}")
        case = _render(rows[0])
        events = self.db.query(
            "SELECT t, from_state, to_state, actor, note FROM live_case_events WHERE case_id = ? "
            "ORDER BY t",
            (case["id"],),
        )
        case["timeline"] = [
            {"time": format_time(t), "from": a, "to": b, "actor": who, "note": n}
            for t, a, b, who, n in events
        ]
        case["allowed"] = list(allowed_actions(case["state"]))
        return case

    def find(
        self,
        prefix: str = "",
        state: str | None = None,
        scopes: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Cases of objects under ``prefix`` (all cases for ``""``), newest first."""
        scope, params = scope_clause(scopes, "object_code")
        where = f"{scope}"
        args: list[Any] = list(params)
        if prefix:
            where += " AND object_code LIKE ? ESCAPE '\\'"
            args.append(prefix.replace("%", "\\%").replace("_", "\\_") + "%")
        if state is not None:
            where += " AND state = ?"
            args.append(state)
        rows = self.db.query(
            f"SELECT {_CASE_COLUMNS} FROM live_cases WHERE {where} ORDER BY id DESC LIMIT ?",
            [*args, limit],
        )
        return [_render(r) for r in rows]

    def statistics(self, by: str, scopes: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Case indicators per grid cell (``by="grid"``) or responsible unit (``"unit"``):
        counts, closure rate, on-time disposal rate (handled by the deadline, of those
        handled), rework rate, and the mean hours from first reading to disposal (the 四早
        chain, for cases opened by alerts).

        Raises
        ------
        ValueError
            If ``by`` is neither ``grid`` nor ``unit``.
        """
        column = {"grid": "grid_code", "unit": "unit"}.get(by)
        if column is None:
            raise ValueError(f"by(={by!r}) must be 'grid' or 'unit'")
        scope, params = scope_clause(scopes, "object_code")
        rows = self.db.query(
            f"SELECT {column}, state, reworks, deadline, handled, first_reading, closed "
            f"FROM live_cases WHERE {scope}",
            params,
        )
        groups: dict[str, list[tuple[Any, ...]]] = {}
        for row in rows:
            groups.setdefault(row[0] or "", []).append(row)
        out = []
        for key in sorted(groups):
            items = groups[key]
            total = len(items)
            closed = sum(1 for r in items if r[1] == "closed")
            handled = [r for r in items if r[4] is not None]
            on_time = sum(1 for r in handled if r[3] is not None and r[4] <= r[3])
            reworked = sum(1 for r in items if int(r[2]) > 0)
            chain = [(r[4] - r[5]) / 3600e6 for r in handled if r[5] is not None]
            out.append(
                {
                    by: key or None,
                    "cases": total,
                    "open": sum(1 for r in items if r[1] not in ("closed", "cancelled")),
                    "closed": closed,
                    "closureRate": closed / total,
                    "onTimeRate": on_time / len(handled) if handled else None,
                    "reworkRate": reworked / total,
                    "meanHoursReadingToDisposal": sum(chain) / len(chain) if chain else None,
                }
            )
        return out


def _render(row: Sequence[Any]) -> dict[str, Any]:
    names = [n.strip() for n in _CASE_COLUMNS.split(",")]
    data = dict(zip(names, row, strict=True))
    return {
        "id": int(data["id"]),
        "code": data["code"],
        "title": data["title"],
        "source": data["source"],
        "alert": int(data["alert_id"]) if data["alert_id"] is not None else None,
        "site": data["site"],
        "objectCode": data["object_code"],
        "gridCode": data["grid_code"],
        "classCode": data["class_code"],
        "urgency": data["urgency"],
        "unit": data["unit"],
        "state": data["state"],
        "reworks": int(data["reworks"]),
        "created": format_time(data["created"]),
        "updated": format_time(data["updated"]),
        "deadline": format_time(data["deadline"]),
        "firstReading": format_time(data["first_reading"]),
        "handled": format_time(data["handled"]),
        "closed": format_time(data["closed"]),
    }
