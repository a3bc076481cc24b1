"""The evacuation drill of one imported building (IFC): its spaces, doors and stairs as a
zone network (:mod:`scenarios.crowd.building`).

Occupants: ``loads`` per space code, else ``per_space`` in every space, else ``load_pm2``
persons per m², or ``live: true`` — the rooms' latest people counts, which ``prepare``
reads into ``loads``. The peak density per space and stair is the layer
``evacuation-density``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from scenarios.crowd.building.spec import Closure, EvacuationSpec, StoreyRelease
from scenarios.drills.base import (
    Drill,
    DrillLimitError,
    DrillRequestError,
    DrillSpec,
    LayerValues,
    ObjectValue,
    PrepareContext,
    RunContext,
    RunResult,
)
from scenarios.drills.inputs import Code, Count, Name, Seed, revalidate

if TYPE_CHECKING:
    from scenarios.crowd.building.graph import BuildingGraph

#: The layer a building evacuation leaves for the viewer: peak density per space and stair.
EVACUATION_LAYER = "evacuation-density"
#: Most occupants of one drill.
MAX_PEOPLE = 200_000
#: Most time steps of one run (``max_time_s / dt_s``): a day at 0.0864 s.
MAX_STEPS = 1_000_000
#: Most person-steps of one run (occupants × steps): about an hour on two cores.
MAX_PERSON_STEPS = 5e9
#: Persons per m² a space holds at most (jam density; a space under 1 m² counts as 1 m²).
JAM_PM2 = 5.4

_AT_S = Field(0.0, ge=0, le=86_400, description="simulated s")


class CloseMeasure(BaseModel):
    """Close a door or stair (by CIM code) at ``at_s``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    close: Code
    at_s: float = _AT_S


class StageMeasure(BaseModel):
    """Staged evacuation: the occupants of a storey (by CIM code) start at ``at_s``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: Code
    at_s: float = _AT_S


class EvacuationDrill(DrillSpec):
    """The body of ``POST /drills/evacuation``."""

    site: Name = Field(description="the site holding the imported building")
    building: Code = Field(description="CIM code of the IfcBuilding")
    load_pm2: float | None = Field(None, ge=0, le=5, description="persons per m² of floor")
    per_space: Count | None = Field(None, ge=0, le=10_000, description="persons in every space")
    loads: dict[Code, Annotated[Count, Field(ge=0, le=MAX_PEOPLE)]] = Field(
        default_factory=dict, max_length=100_000, description="persons per space code"
    )
    live: bool = Field(
        False, description="the rooms' latest people counts (prepare reads them into loads)"
    )
    measures: list[CloseMeasure | StageMeasure] = Field(default_factory=list, max_length=1_000)
    dt_s: float = Field(0.2, ge=0.01, le=1, description="time step, s")
    max_time_s: float = Field(3600.0, gt=0, le=86_400, description="simulated s")
    seed: Seed = 0

    @model_validator(mode="after")
    def _one_load(self) -> EvacuationDrill:
        given = [self.load_pm2 is not None, self.per_space is not None, bool(self.loads)]
        if sum(given) > 1 or (self.live and any(given)):
            raise ValueError("give live or one of load_pm2, per_space and loads")
        if sum(self.loads.values()) > MAX_PEOPLE:
            raise ValueError(f"loads bring more than {MAX_PEOPLE} people")
        steps = self.max_time_s / self.dt_s
        if steps > MAX_STEPS:
            raise ValueError(
                f"max_time_s / dt_s = {self.max_time_s:g} / {self.dt_s:g} = {steps:.3g} steps, "
                f"more than {MAX_STEPS}: a longer dt_s or a shorter max_time_s"
            )
        return self

    def unit_code(self) -> str | None:
        """The building: its unit pilot may start this drill."""
        return self.building


def _engine_spec(spec: EvacuationDrill) -> EvacuationSpec:
    try:
        return EvacuationSpec(
            site=spec.site,
            building=spec.building,
            load_pm2=spec.load_pm2,
            per_space=spec.per_space,
            loads=dict(spec.loads),
            closures=tuple(
                Closure(m.close, m.at_s) for m in spec.measures if isinstance(m, CloseMeasure)
            ),
            stages=tuple(
                StoreyRelease(m.stage, m.at_s) for m in spec.measures if isinstance(m, StageMeasure)
            ),
            dt_s=spec.dt_s,
            max_time_s=spec.max_time_s,
            seed=spec.seed,
        )
    except ValueError as exc:
        raise DrillRequestError(f"evacuation: {exc}") from None


def prepare(spec: EvacuationDrill, ctx: PrepareContext) -> EvacuationDrill:
    """Build the walk graph (checking the building), read live loads, check the measures.

    Raises
    ------
    NotFoundError
        If the site or building is unknown.
    DrillRequestError
        If the code is not a building with spaces and exits, no room has a live people
        count, or a measure names no door, stair or storey of the building.
    DrillLimitError
        If the occupants pass a space's capacity or the run's bounds
        (:func:`check_occupants`).
    """
    from scenarios.crowd.building import live_loads, load_building
    from scenarios.crowd.building.model import occupant_counts, resolve_measures

    ctx.store.site(spec.site)
    try:
        graph = load_building(ctx.store, spec.site, spec.building)
        if spec.live:
            spec = revalidate(spec, live=False, loads=live_loads(ctx.store_url, graph))
        engine = _engine_spec(spec)
        resolve_measures(graph, engine)
        counts = occupant_counts(graph, engine)
    except ValueError as exc:
        raise DrillRequestError(f"evacuation: {exc}") from None
    check_occupants(spec, graph, counts)
    return spec


def check_occupants(spec: EvacuationDrill, graph: BuildingGraph, counts: list[int]) -> None:
    """Refuse more occupants than a space holds at jam density, or than the run can step.

    Parameters
    ----------
    counts : occupants per node of ``graph`` (:func:`occupant_counts`)

    Raises
    ------
    DrillLimitError
        If a space's occupants pass its capacity (``area × JAM_PM2``), all of them
        :data:`MAX_PEOPLE`, or occupants × steps :data:`MAX_PERSON_STEPS`.
    """
    field = "loads" if spec.loads else "per_space" if spec.per_space is not None else "load_pm2"
    for node, count in zip(graph.nodes, counts, strict=True):
        holds = math.floor(JAM_PM2 * max(node.area_m2, 1.0))
        if count > holds:
            raise DrillLimitError(
                f"{field}: {count} people in space {node.code} ({node.area_m2:.1f} m²), more "
                f"than its capacity of {holds} at {JAM_PM2:g} persons/m²"
            )
    people = sum(counts)
    if people > MAX_PEOPLE:
        raise DrillLimitError(f"{field}: {people} occupants, more than {MAX_PEOPLE}")
    steps = spec.max_time_s / spec.dt_s
    if people * steps > MAX_PERSON_STEPS:
        raise DrillLimitError(
            f"{field}, max_time_s, dt_s: {people} occupants × {steps:.3g} steps = "
            f"{people * steps:.3g} person-steps, more than {MAX_PERSON_STEPS:g}: fewer "
            "occupants, a shorter max_time_s or a longer dt_s"
        )


def run(spec: EvacuationDrill, ctx: RunContext) -> RunResult:
    """Evacuate the building: KPIs, storeys, doors, the peak density per space and stair.

    Raises
    ------
    NotFoundError
        If the building is gone from the store.
    DrillRequestError
        If the building no longer fits the spec.
    """
    from scenarios.crowd.building import load_building, simulate

    try:
        graph = load_building(ctx.store, spec.site, spec.building)
        detail = simulate(graph, _engine_spec(spec), ctx.progress)
    except ValueError as exc:
        raise DrillRequestError(f"evacuation: {exc}") from None
    summary = detail.pop("summary")
    densities = {code: float(v) for code, v in detail["max_density_pm2"].items()}
    return RunResult(
        summary=summary,
        detail=detail,
        objects=[ObjectValue(c, "max_density_pm2", v) for c, v in sorted(densities.items())],
        layers=[
            LayerValues(spec.site, EVACUATION_LAYER, densities, "peak evacuation density", "P/m²")
        ],
    )


DRILL = Drill(
    name="evacuation",
    spec=EvacuationDrill,
    help="evacuation drill of one building: its IFC spaces, doors and stairs as a zone network",
    inputs=(),
    prepare=prepare,
    run=run,
)
