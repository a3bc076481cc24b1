"""The live twin, assembled: store, SensorThings service, ingest, state, alerts, cases, the
event bus, and (when a broker is set) the MQTT subscriber and the stale-sensor sweep.

Several live twins over one store (one per API worker process) are one twin: rules, alerts,
cases and keys live in the store; the bus is bridged through the store's event feed
(:mod:`twin.fanout`), so a WebSocket client of any process hears every process's events;
one process at a time holds the MQTT subscription (a lease, :mod:`twin.lease`); the stale
sweep reads the latest readings from the store (ADR 0019).

::

    live = LiveTwin("twin.db", mqtt=MqttSettings("mqtt://127.0.0.1:1883"))
    live.start()            # MQTT subscriber + sweep thread
    ...
    live.close()
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twin.alerts import AlertBook
from twin.bus import EventBus
from twin.cases import CaseBook
from twin.db import LiveDb
from twin.errors import RequestError
from twin.fanout import BusBridge
from twin.feed import EventFeed
from twin.ingest import Change, Ingestor
from twin.lease import Lease
from twin.mqtt import MqttIngest, MqttSettings
from twin.rules import CasePolicy
from twin.sta.limits import StaLimits
from twin.sta.service import SensorThings
from twin.state import LiveState, scope_clause
from twin.times import format_time, now_us, parse_time

logger = logging.getLogger(__name__)


class LiveTwin:
    """Everything live, over one store.

    Parameters
    ----------
    url : the store (SQLite path or ``postgresql://``)
    mqtt : the broker to subscribe to, or ``None`` for HTTP ingest only
    clock : current time in µs
    sweep_s : how often silent sensors are looked for, seconds
    feed : the store's event feed to bridge the bus through (``None``: one of its own over
        ``url``, started by :meth:`start` and closed by :meth:`close`; a given feed is
        started and closed by its owner)
    sta_limits : the bounds of SensorThings requests (``None``: the defaults)

    Raises
    ------
    StoreError
        If the store cannot be opened or its live tables made.
    """

    def __init__(
        self,
        url: str | Path,
        mqtt: MqttSettings | None = None,
        clock: Callable[[], int] = now_us,
        sweep_s: float = 10.0,
        feed: EventFeed | None = None,
        sta_limits: StaLimits | None = None,
    ) -> None:
        self.clock = clock
        self.db = LiveDb(url)
        self.bus = EventBus()
        self.feed = feed if feed is not None else EventFeed(url)
        self._owns_feed = feed is None
        self.bridge = BusBridge(self.bus, self.feed)
        self.ingestor = Ingestor(self.db, clock=clock)
        self.sta = SensorThings(self.db, self._sink, sta_limits)
        self.sta.on_change = self.ingestor.forget
        self.state = LiveState(self.db)
        self.alerts = AlertBook(self.db, self.bus)
        self.cases = CaseBook(self.db, self.bus)
        self.alerts.case_opener = self._open_case
        self.ingestor.listeners.append(self._publish_changes)
        self.ingestor.listeners.append(self.alerts.on_changes)
        self.mqtt: MqttIngest | None = None
        if mqtt is not None:
            lease = (
                Lease(self.db, f"mqtt:{mqtt.client_id}", mqtt.lease_ttl_s)
                if mqtt.lease_ttl_s is not None
                else None
            )
            self.mqtt = MqttIngest(self.ingestor, mqtt, lease)
        self.sweep_s = sweep_s
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    def start(self) -> None:
        """Start following the event feed, the bridge, the MQTT subscriber (if any) and
        the stale-sensor sweep."""
        if self._owns_feed:
            self.feed.start()
        self.bridge.start()
        if self.mqtt is not None:
            self.mqtt.start()
        self._stop.clear()
        self._sweeper = threading.Thread(target=self._sweep, name="stale-sweep", daemon=True)
        self._sweeper.start()

    def close(self) -> None:
        """Stop the threads and close the store (and the feed, if it is this twin's)."""
        self._stop.set()
        if self.mqtt is not None:
            self.mqtt.stop()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
        self.bridge.close()
        if self._owns_feed:
            self.feed.close()
        self.db.close()

    def latest(self) -> dict[int, tuple[int, float | None]]:
        """Datastream id -> (time µs, value) of its latest reading, from the store (which
        the ingest of every process moves)."""
        return {
            int(ds): (int(t), None if v is None else float(v))
            for ds, t, v in self.db.query(
                "SELECT datastream_id, phenomenon_time, result FROM live_latest"
            )
        }

    def _sweep(self) -> None:
        while not self._stop.wait(self.sweep_s):
            try:
                self.alerts.sweep_stale(self.clock(), self.latest())
            except Exception:  # a failed sweep must not end the thread
                logger.exception("stale sweep failed")

    def _sink(self, bodies: list[dict[str, Any]], source: str) -> list[int]:
        report = self.ingestor.ingest(bodies, source, want_ids=True)
        if report.rejected:
            index, reason = report.rejected[0]
            raise RequestError(f"observation {index}: {reason}")
        return [report.ids[i] for i in range(len(bodies))]

    def create_observations(self, body: Any) -> list[str]:
        """``POST CreateObservations``: the dataArray extension. Returns one entry per row:
        the new Observation's self link path (``Observations(ID)``) or ``"error"``.

        Raises
        ------
        RequestError
            If the body is not a list of ``{Datastream, components, dataArray}``.
        """
        if not isinstance(body, list):
            raise RequestError("CreateObservations takes a JSON array")
        bodies: list[Any] = []
        for group in body:
            if not isinstance(group, dict):
                raise RequestError("each CreateObservations item must be an object")
            components, rows = group.get("components"), group.get("dataArray")
            datastream = group.get("Datastream")
            if not isinstance(components, list) or not isinstance(rows, list):
                raise RequestError("each item needs components and dataArray lists")
            if not isinstance(datastream, dict) or "@iot.id" not in datastream:
                raise RequestError('each item needs "Datastream": {"@iot.id": ...}')
            unknown = set(components) - {"phenomenonTime", "result", "resultTime", "parameters"}
            if unknown:
                raise RequestError(f"unsupported component {sorted(unknown)[0]!r}")
            for row in rows:
                if not isinstance(row, list) or len(row) != len(components):
                    bodies.append(None)
                    continue
                item = dict(zip(components, row, strict=True))
                item["Datastream"] = {"@iot.id": datastream["@iot.id"]}
                bodies.append(item)
        report = self.ingestor.ingest(bodies, "http:CreateObservations", want_ids=True)
        return [
            f"Observations({report.ids[i]})" if i in report.ids else "error"
            for i in range(len(bodies))
        ]

    def _publish_changes(self, changes: list[Change]) -> None:
        for c in changes:
            self.bus.publish(
                {
                    "type": "observation",
                    "site": c.datastream.site,
                    "code": c.datastream.code,
                    "datastream": c.datastream.id,
                    "observedProperty": c.datastream.observed_property,
                    "timeUs": c.time_us,  # formatted when sent: most are overwritten first
                    "result": c.value,
                }
            )

    def _open_case(self, alert: dict[str, Any], policy: CasePolicy) -> None:
        self.cases.open(
            title=alert["message"],
            source="alert",
            actor="rules",
            now_us=self.clock(),
            site=alert["site"],
            object_code=alert["objectCode"],
            class_code=policy.class_code,
            urgency=policy.urgency,
            unit=policy.unit,
            alert_id=alert["id"],
            first_reading_us=_parse(alert["firstReading"]),
        )

    def vital_signs(self, prefix: str = "", scopes: Any = None) -> dict[str, Any]:
        """City vital signs under a code prefix: sensors online (reported within 3 of their
        intervals, or within 10 minutes without one), active alerts by severity, open cases,
        and the current extreme values per observed property."""
        now = self.clock()
        scope, params = scope_clause(scopes, "d.code")
        like = prefix.replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self.db.query(
            "SELECT d.interval_s, l.phenomenon_time FROM sta_datastreams d LEFT JOIN "
            f"live_latest l ON l.datastream_id = d.id WHERE d.code LIKE ? ESCAPE '\\' AND {scope}",
            [like, *params],
        )
        online = sum(1 for interval, t in rows if _online(now, interval, t))
        alerts: dict[str, int] = {}
        for alert in self.alerts.find(prefix, "active", scopes):
            alerts[alert["severity"]] = alerts.get(alert["severity"], 0) + 1
        open_cases = sum(
            1
            for c in self.cases.find(prefix, None, scopes, limit=100_000)
            if c["state"] not in ("closed", "cancelled")
        )
        extremes = self.state.object_state(prefix, scopes)["properties"]
        return {
            "prefix": prefix,
            "time": format_time(now),
            "sensors": len(rows),
            "sensorsOnline": online,
            "activeAlerts": alerts,
            "openCases": open_cases,
            "extremes": {
                name: {"min": v["min"], "max": v["max"], "reporting": v["reporting"]}
                for name, v in extremes.items()
            },
        }

    def sensors(
        self, prefix: str = "", scopes: Any = None, site: str | None = None
    ) -> list[dict[str, Any]]:
        """Every datastream linked to an object under ``prefix`` (of ``site`` when given): its
        id, name, object code, observed property, unit, latest value and time, and whether it
        is online (as in :meth:`vital_signs`), ordered by code then id — what a unit page draws
        in its rooms."""
        now = self.clock()
        scope, params = scope_clause(scopes, "d.code")
        if site is not None:
            scope, params = f"{scope} AND d.site = ?", [*params, site]
        like = prefix.replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self.db.query(
            "SELECT d.id, d.name, d.code, p.name, d.unit, d.interval_s, l.phenomenon_time, "
            "l.result FROM sta_datastreams d JOIN sta_observed_properties p "
            "ON p.id = d.observed_property_id LEFT JOIN live_latest l ON l.datastream_id = d.id "
            f"WHERE d.code LIKE ? ESCAPE '\\' AND {scope} ORDER BY d.code, d.id",
            [like, *params],
        )
        return [
            {
                "datastream": int(ident),
                "name": str(name),
                "code": str(code),
                "observedProperty": str(prop),
                "unit": _symbol(unit),
                "value": None if result is None else float(result),
                "time": None if t is None else format_time(int(t)),
                "online": _online(now, interval, t),
            }
            for ident, name, code, prop, unit, interval, t, result in rows
        ]

    def vital_signs_by(
        self, level: str, prefix: str = "", scopes: Any = None
    ) -> list[dict[str, Any]]:
        """:meth:`vital_signs` for every grid cell (15-digit code) or community (12-digit)
        under ``prefix`` that has sensors.

        Raises
        ------
        ValueError
            If ``level`` is neither ``grid`` nor ``community``.
        """
        length = {"grid": 15, "community": 12}.get(level)
        if length is None:
            raise ValueError(f"level(={level!r}) must be 'grid' or 'community'")
        scope, params = scope_clause(scopes, "code")
        like = prefix.replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self.db.query(
            f"SELECT DISTINCT SUBSTR(code, 1, {length}) FROM sta_datastreams "
            f"WHERE code LIKE ? ESCAPE '\\' AND LENGTH(code) >= {length} AND {scope}",
            [like, *params],
        )
        return [self.vital_signs(str(r[0]), scopes) for r in sorted(rows)]


def _symbol(unit: Any) -> str | None:
    """The symbol of a stored ``unitOfMeasurement``."""
    try:
        parsed = json.loads(unit) if unit else None
    except ValueError:
        return None
    symbol = parsed.get("symbol") if isinstance(parsed, dict) else None
    return str(symbol) if symbol is not None else None


def _online(now_us: int, interval_s: Any, time_us: Any) -> bool:
    """Reported within 3 of its intervals, or within 10 minutes without one."""
    window_us = (3 * float(interval_s) if interval_s else 600.0) * 1e6
    return time_us is not None and now_us - int(time_us) <= window_us


def _parse(text: str | None) -> int | None:
    return parse_time(text) if text is not None else None
