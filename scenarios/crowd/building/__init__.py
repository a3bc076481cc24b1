"""Evacuation of one building (issue 8 §5): a zone-network crowd model on its IFC spaces.

``run(store, spec, progress=None) -> dict`` builds the walk graph of the building's CIM
subtree (:mod:`.graph`) and runs the SimPy/numpy zone model (:mod:`.model`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cim.store.base import Store
from scenarios.crowd.building.graph import BuildingGraph, BuildingGraphError, load_building
from scenarios.crowd.building.live import live_loads
from scenarios.crowd.building.model import DEFAULT_LOAD_PM2, simulate
from scenarios.crowd.building.spec import (
    BuildingFlow,
    Closure,
    EvacuationSpec,
    StoreyRelease,
)


def run(
    store: Store, spec: EvacuationSpec, progress: Callable[[float, str], None] | None = None
) -> dict[str, Any]:
    """Build the walk graph of ``spec.building`` and evacuate it.

    Raises
    ------
    cim.errors.NotFoundError
        Unknown site or building code.
    ValueError
        Not a building, no spaces or exits, bad measure codes or loads.
    """
    graph = load_building(store, spec.site, spec.building)
    return simulate(graph, spec, progress)


__all__ = [
    "DEFAULT_LOAD_PM2",
    "BuildingFlow",
    "BuildingGraph",
    "BuildingGraphError",
    "Closure",
    "EvacuationSpec",
    "StoreyRelease",
    "live_loads",
    "load_building",
    "run",
    "simulate",
]
