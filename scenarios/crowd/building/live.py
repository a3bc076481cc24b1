"""Occupants from the live twin: the latest people counts of sensors linked to the rooms."""

from __future__ import annotations

import math
from pathlib import Path

from scenarios.crowd.building.graph import SPACE, BuildingGraph
from twin.db import LiveDb
from twin.state import LiveState

#: Observed properties whose latest values are people in a room (as the unit dashboard's).
OCCUPANCY_PROPERTIES = ("people count", "occupancy", "persons")


def live_loads(store_url: str | Path, graph: BuildingGraph) -> dict[str, int]:
    """Persons per space code: the sum of the latest people counts of datastreams linked to
    the space or to an object inside it (rounded, negatives as 0).

    Raises
    ------
    ValueError
        If no people-count datastream of the building has reported a value.
    """
    db = LiveDb(store_url)
    try:
        rows = LiveState(db).latest(prefix=graph.building, limit=100_000)
    finally:
        db.close()
    spaces = sorted((n.code for n in graph.nodes if n.kind == SPACE), key=len, reverse=True)
    loads: dict[str, float] = {}
    for row in rows:
        value = row["result"]
        if (
            row["site"] != graph.site
            or str(row["observedProperty"]).lower() not in OCCUPANCY_PROPERTIES
            or not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            continue
        space = next((s for s in spaces if str(row["code"]).startswith(s)), None)
        if space is not None:
            loads[space] = loads.get(space, 0.0) + max(float(value), 0.0)
    if not loads:
        raise ValueError(
            f"no people count has come from a sensor in a room of building {graph.building} "
            f"(observed properties {', '.join(OCCUPANCY_PROPERTIES)}): give --load or --per-space"
        )
    return {code: round(n) for code, n in sorted(loads.items())}
