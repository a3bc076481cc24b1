"""``/live``: latest state per datastream and object, history and aggregates, city vital
signs, the ingest's counters and dead letters, and the WebSocket stream.

The stream (``/live/ws?prefix=...&kind=...``, the key sent as the first message ``{"key":
...}``) sends JSON arrays of events
(``observation``, ``alert``, ``case``) for objects under the prefixes asked for; a pilot gets
only its subtree whatever it asks. A slow client never slows ingest: its buffer keeps the
latest observation per datastream (see :mod:`twin.bus`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field

from api.auth import first_message_principal
from api.errors import AuthenticationError, PermissionDeniedError, QueryError, responses
from api.keys import READ_ROLES, Principal, UnknownKeyError
from api.live_deps import Live, LiveReader, StaEditor, get_live, scopes_of
from api.params import parse_bbox
from api.routes.sites import scoped_view
from api.site_views import SiteView
from api.state import get_state
from cim.errors import NotFoundError, TwinError
from cim.model import DISTRICT, STREET
from twin.bus import KINDS, Subscription
from twin.errors import RequestError
from twin.sta.limits import MAX_INT
from twin.times import format_time, parse_time

router = APIRouter(prefix="/live", tags=["live"])


#: The longest duration a route takes, seconds: its microseconds fit the stores' integers.
MAX_SECONDS = MAX_INT // 1_000_000
#: A datastream id in a path: the stores' integers end at ``MAX_INT``.
DatastreamId = Annotated[int, Path(ge=0, le=MAX_INT, description="datastream id")]


class CompactRequest(BaseModel):
    """Retention: raw history older than ``retention_s`` is rolled into aggregates."""

    retention_s: int = Field(gt=0, le=MAX_SECONDS)
    rollup_interval_s: int = Field(60, gt=0, le=MAX_SECONDS)


def _time(name: str, text: str) -> int:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise RequestError(f"{name}: {exc}") from None


def _check_datastream(live: Any, principal: Principal, ident: int) -> None:
    info = live.ingestor.datastream(ident)
    if info is None or (principal.scoped and not principal.sees(info.code or "")):
        raise NotFoundError(f"no datastream {ident}")


@router.get("/state")
def read_latest(
    live: Live,
    principal: LiveReader,
    prefix: Annotated[str, Query(description="object code prefix")] = "",
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> list[dict[str, Any]]:
    """The latest value of every datastream of objects under ``prefix``."""
    return live.state.latest(prefix, scopes_of(principal), limit)


@router.get("/objects/{code}")
def read_object_state(code: str, live: Live, principal: LiveReader) -> dict[str, Any]:
    """An object's live state: aggregated latest values per observed property of all its
    sensors (and those of its parts), each sensor's latest value, active alerts and open
    cases."""
    if not principal.sees(code):
        raise NotFoundError(f"no object {code!r}")
    scopes = scopes_of(principal)
    out = live.state.object_state(code, scopes)
    out["datastreams"] = live.state.latest(code, scopes)
    out["alerts"] = live.alerts.find(code, "active", scopes)
    out["cases"] = [
        c for c in live.cases.find(code, None, scopes) if c["state"] not in ("closed", "cancelled")
    ]
    return out


@router.get("/datastreams/{ident}/history", responses=responses(400))
def read_history(
    ident: DatastreamId,
    live: Live,
    principal: LiveReader,
    start: Annotated[str, Query(description="ISO 8601, inclusive")],
    end: Annotated[str, Query(description="ISO 8601, exclusive")],
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> dict[str, Any]:
    """Raw readings of one datastream in ``[start, end)``."""
    _check_datastream(live, principal, ident)
    rows = live.state.history(ident, _time("start", start), _time("end", end), limit)
    return {"datastream": ident, "values": [[format_time(t), v] for t, v in rows]}


@router.get("/datastreams/{ident}/aggregates", responses=responses(400))
def read_aggregates(
    ident: DatastreamId,
    live: Live,
    principal: LiveReader,
    start: Annotated[str, Query(description="ISO 8601, inclusive")],
    end: Annotated[str, Query(description="ISO 8601, exclusive")],
    interval_s: Annotated[
        int, Query(gt=0, le=MAX_SECONDS, description="bucket length, seconds")
    ] = 3600,
) -> dict[str, Any]:
    """``n, min, max, mean`` per interval of one datastream in ``[start, end)``."""
    _check_datastream(live, principal, ident)
    buckets = live.state.aggregates(ident, _time("start", start), _time("end", end), interval_s)
    return {"datastream": ident, "interval_s": interval_s, "buckets": buckets}


@router.get("/vitals", responses=responses(404))
def read_vital_signs(
    live: Live,
    principal: LiveReader,
    prefix: Annotated[str, Query(description="grid cell, community or site code prefix")] = "",
) -> dict[str, Any]:
    """City vital signs: sensors and how many are online, active alerts by severity, open
    cases, extreme current values."""
    if principal.scoped and not any(
        prefix.startswith(s) or s.startswith(prefix) for s in scopes_of(principal) or ()
    ):
        raise NotFoundError(f"nothing under {prefix!r} in this key's scope")
    return live.vital_signs(prefix, scopes_of(principal))


@router.get("/vitals/{level}")
def read_vital_signs_by(
    level: Literal["grid", "community"],
    live: Live,
    principal: LiveReader,
    prefix: Annotated[str, Query(description="code prefix to look under")] = "",
) -> list[dict[str, Any]]:
    """City vital signs per grid cell or community that has sensors."""
    return live.vital_signs_by(level, prefix, scopes_of(principal))


@router.get("/ingest")
def read_ingest(live: Live, principal: LiveReader) -> dict[str, Any]:
    """Ingest counters (stored, duplicates, dead letters by reason) and the newest dead
    letters: the city's ingest, not a unit's, so not for a pilot key (403).

    Raises
    ------
    PermissionDeniedError
        For a pilot key.
    """
    if principal.scoped:
        raise PermissionDeniedError(
            "ingest counters are the whole city's: a pilot key sees its units only"
        )
    mqtt = live.mqtt
    return {
        "counters": dict(live.ingestor.counters),
        "deadLetters": live.ingestor.dead_letter_count(),
        "recent": live.ingestor.dead_letters(50),
        "mqtt": {
            "connected": mqtt.connected.is_set(),
            "received": mqtt.received,
            "topics": mqtt.topics,
        }
        if mqtt is not None
        else None,
    }


@router.post("/compact")
def compact_history(
    body: CompactRequest,
    live: Live,
    principal: StaEditor,
) -> dict[str, Any]:
    """Roll raw history older than the retention into aggregates (admin)."""
    removed = live.state.compact(live.clock(), body.retention_s, body.rollup_interval_s)
    return {"removed": removed}


def _principal(websocket: WebSocket, key: str | None) -> Principal:
    token = key or websocket.headers.get("x-api-key")
    if not token:
        raise AuthenticationError('an API key is required: send {"key": ...} first')
    try:
        principal = get_state(websocket).keys.authenticate(token)
    except UnknownKeyError:
        raise AuthenticationError("unknown API key") from None
    if principal.role not in READ_ROLES:
        raise AuthenticationError(f"a {principal.role.value} key may not read the stream")
    return principal


def _public(event: dict[str, Any]) -> dict[str, Any]:
    """An event as sent: observation times as ISO 8601."""
    if event["type"] != "observation":
        return event
    out = {k: v for k, v in event.items() if k != "timeUs"}
    out["phenomenonTime"] = format_time(event["timeUs"])
    return out


#: containers a site may share with other sites of its county or street
ADMIN_KINDS = frozenset({DISTRICT, STREET})


def _site_roots(view: SiteView) -> list[str]:
    """The fewest code prefixes covering a site's objects and nothing of another site:
    its communities and its county-level codes (terrain, street components), not the
    district and street it may share with other sites."""
    codes = sorted(c for c, o in view.by_code.items() if o.kind not in ADMIN_KINDS)
    roots: list[str] = []
    for code in codes:
        if not roots or not code.startswith(roots[-1]):
            roots.append(code)
    return roots


@router.websocket("/ws")
async def live_stream(
    websocket: WebSocket,
    key: str | None = None,
    prefix: Annotated[list[str] | None, Query()] = None,
    kind: Annotated[list[str] | None, Query()] = None,
    site: str | None = None,
    bbox: str | None = None,
) -> None:
    """Push observations, alerts and case changes of objects under ``prefix`` (repeatable;
    none: everything the key may see), or of the objects of ``site`` whose boxes overlap
    ``bbox`` (``minx,miny,maxx,maxy``, metres in the site CRS), of the given ``kind`` s
    (repeatable; none: all). The key comes as the first message ``{"key": ...}`` (or, for
    older clients, the ``X-API-Key`` header or ``?key=``, which lands in access logs)."""
    accepted = False
    try:
        live = get_live(websocket)  # type: ignore[arg-type]
        if key or websocket.headers.get("x-api-key"):
            principal = _principal(websocket, key)
        else:  # the key comes as the first message, out of URLs and access logs
            await websocket.accept()
            accepted = True
            found = await first_message_principal(websocket, get_state(websocket))
            if found is None:
                return
            principal = found
    except AuthenticationError as exc:
        await websocket.close(code=4401, reason=str(exc))
        return
    kinds = [k for k in kind or KINDS if k in KINDS]
    prefixes: list[str] | None = list(prefix) if prefix else None
    if bbox is not None:
        try:
            if site is None:
                raise QueryError("site", "an area (bbox) needs its site")
            state = get_state(websocket)
            view = scoped_view(state, principal, site)
            area = view.index.in_bbox(*parse_bbox("bbox", bbox))
        except (QueryError, TwinError) as exc:
            await websocket.close(code=4400, reason=str(exc)[:120])
            return
        prefixes = (prefixes or []) + [o.code for o in area]
    if site is not None and bbox is None:
        # the objects of one site: its pilot's units there, or every code of the site
        try:
            state = get_state(websocket)
            view = scoped_view(state, principal, site)
        except TwinError as exc:
            await websocket.close(code=4404, reason=str(exc)[:120])
            return
        roots = list(principal.in_site(site)) if principal.scoped else _site_roots(view)
        prefixes = roots if prefixes is None else [p for p in prefixes if p in view.by_code]
    if principal.scoped:
        scopes = scopes_of(principal) or ()
        if prefixes is None:
            prefixes = list(scopes)
        else:
            prefixes = [p for p in prefixes if p.startswith(scopes)] + [
                s for s in scopes if any(s.startswith(p) for p in prefixes)
            ]
    if not accepted:
        await websocket.accept()
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()

    def notify() -> None:
        loop.call_soon_threadsafe(ready.set)

    subscription = live.bus.subscribe(Subscription(prefixes, kinds, notify))
    await websocket.send_json({"type": "subscribed", "prefixes": prefixes, "kinds": kinds})

    async def watch_close() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.receive_text()

    closer = asyncio.create_task(watch_close())
    try:
        while not closer.done():
            waiter = asyncio.create_task(ready.wait())
            await asyncio.wait({waiter, closer}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            ready.clear()
            events = [_public(e) for e in subscription.drain()]
            if events and not closer.done():
                await websocket.send_json(events)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        live.bus.unsubscribe(subscription)
        closer.cancel()
