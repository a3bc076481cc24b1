"""``/sites/{site}/units/{code}/dashboard``: one management unit's vital signs in one answer.

For the pilot team of a minimum management unit (a building, a park, a community): what the
unit holds (objects by kind, its storeys), its sensors and how many are online, occupancy
(the sum of the latest people counts under it), each sensor with the object it sits in
and its latest value (the unit page draws them in their rooms), open alerts, open cases
and their states, and the extreme current values per observed property — all restricted
to the unit's subtree, and for a pilot key to its scope (anything else is 404).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter

from api.live_deps import Live, LiveReader, scopes_of
from api.routes.sites import scoped_view
from api.state import State
from cim.errors import NotFoundError

router = APIRouter(prefix="/sites/{site}/units", tags=["units"])

#: Observed properties whose latest values add up to the people in a unit.
OCCUPANCY_PROPERTIES = ("people count", "occupancy", "persons")

#: How many of the newest alerts and cases the dashboard lists.
NEWEST = 50

#: How many sensors the dashboard lists (by code): enough for a building's rooms.
SENSORS = 500


@router.get("/{code}/dashboard")
def unit_dashboard(
    site: str, code: str, state: State, live: Live, principal: LiveReader
) -> dict[str, Any]:
    """The unit's contents, sensors, occupancy, alerts and cases.

    Raises
    ------
    NotFoundError
        If there is no such site or object, or it is outside a pilot's scope.
    """
    view = scoped_view(state, principal, site)
    unit = view.by_code.get(code)
    if unit is None:
        raise NotFoundError(f"site {site!r} has no object {code!r}")
    inside = [o for c, o in view.by_code.items() if c.startswith(code)]
    kinds = Counter(o.kind for o in inside if o.code != code)
    storeys = sorted(
        (o for o in inside if o.kind == "IfcBuildingStorey"),
        key=lambda o: (float(o.attributes.get("Elevation") or 0.0), o.code),
    )
    scopes = scopes_of(principal)
    vitals = live.vital_signs(code, scopes)
    properties = live.state.object_state(code, scopes)["properties"]
    occupancy = None
    for name, value in properties.items():
        if name.lower() in OCCUPANCY_PROPERTIES and value["mean"] is not None:
            occupancy = (occupancy or 0.0) + value["mean"] * value["reporting"]
    alerts = live.alerts.find(code, "active", scopes)[:NEWEST]
    cases = live.cases.find(code, None, scopes, limit=100_000)
    return {
        "site": site,
        "unit": {"code": unit.code, "kind": unit.kind, "name": unit.name},
        "objects": dict(sorted(kinds.items())),
        "storeys": [
            {"code": s.code, "name": s.name, "elevation_m": s.attributes.get("Elevation")}
            for s in storeys
        ],
        "sensors": vitals["sensors"],
        "sensorsOnline": vitals["sensorsOnline"],
        "sensorList": live.sensors(code, scopes)[:SENSORS],
        "occupancy": occupancy,
        "activeAlerts": vitals["activeAlerts"],
        "alerts": alerts,
        "openCases": vitals["openCases"],
        "casesByState": dict(sorted(Counter(c["state"] for c in cases).items())),
        "cases": [c for c in cases if c["state"] not in ("closed", "cancelled")][:NEWEST],
        "extremes": vitals["extremes"],
        "time": vitals["time"],
    }
