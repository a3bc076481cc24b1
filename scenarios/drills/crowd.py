"""The crowd drill: people leave a catalogue venue (``crowd/NAME.wkt`` or ``.geojson``).

Measures close, meter or reopen exits, or make a corridor one-way; releases stage the
evacuation order; arrivals bring people in. With ``site`` and ``code`` (the CIM object the
venue stands for) each zone's highest density level crossed becomes a drill alert on that
object. The run leaves ``density.png`` (peak density) in its folder.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from cim.errors import SourceError
from scenarios.crowd import spec as engine
from scenarios.drills.base import (
    Drill,
    DrillLimitError,
    DrillRequestError,
    DrillSpec,
    ObjectValue,
    PrepareContext,
    RunContext,
    RunFile,
    RunResult,
    Series,
)
from scenarios.drills.inputs import Code, Count, Name, Seed, named_input

#: Most people in one drill (placed plus arriving).
MAX_AGENTS = 200_000
#: Most cells of a venue's grid (its walkable area over ``cell_m²``).
MAX_CELLS = 2_000_000
#: Most person-steps of one run (people × steps): about an hour on two cores.
MAX_PERSON_STEPS = 5e10
#: Most recorded samples (``max_time_s / record_every_s``).
MAX_SAMPLES = 50_000
#: Longest simulated time, s.
MAX_TIME_S = 86_400.0
#: Most time steps of one run (``max_time_s / dt_s``): a day at 0.0864 s.
MAX_STEPS = 1_000_000
#: Most cells across a density window (``window_m / cell_m``).
MAX_WINDOW_SPAN = 41
#: Most raster cells of a venue's bounding box (the grid is cut from it): ~0.5 GB of indices.
MAX_RASTER_CELLS = 8_000_000
#: Most entries of the density windows (cells × window cells): ~2.5 GB while they are built.
MAX_WINDOW_ENTRIES = 100_000_000
#: Most cell-steps of one run (cells × steps): the kernel's work besides the people's.
MAX_CELL_STEPS = 1e11
_SUFFIXES = (".wkt", ".geojson")

if TYPE_CHECKING:
    from scenarios.crowd.venue import Venue

_AT_S = Field(0.0, ge=0, le=MAX_TIME_S, description="simulated s")
Coordinate = Annotated[float, Field(allow_inf_nan=False, ge=-1e7, le=1e7)]


class ExitMeasure(BaseModel):
    """Close (``rate_pps`` 0), meter (> 0) or reopen (``None``) exit ``exit`` at ``at_s``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exit: Count = Field(ge=0, le=10_000, description="exit index of the venue")
    at_s: float = _AT_S
    rate_pps: float | None = Field(0.0, ge=0, le=1_000, description="persons per second")


class OneWayCorridor(BaseModel):
    """From ``at_s`` people inside ``polygon`` (venue coordinates, m) walk only along
    ``bearing_deg`` (degrees clockwise from north, +y)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    polygon: list[tuple[Coordinate, Coordinate]] = Field(min_length=3, max_length=1_000)
    bearing_deg: float = Field(ge=-360, le=360)
    at_s: float = _AT_S


def _measure_kind(value: Any) -> str:
    """Which measure a body item is: ``one_way`` when it has that key, else an exit."""
    if isinstance(value, dict):
        return "one_way" if "one_way" in value else "exit"
    return "one_way" if isinstance(value, OneWayMeasure) else "exit"


class OneWayMeasure(BaseModel):
    """``{"one_way": {...}}``: a one-way corridor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    one_way: OneWayCorridor


class Release(BaseModel):
    """People start walking at ``at_s``: those of spawn area ``spawn``, or all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at_s: float = Field(ge=0, le=MAX_TIME_S, description="simulated s")
    spawn: Count | None = Field(None, ge=0, le=10_000)


class Arrival(BaseModel):
    """``people`` enter spawn area ``spawn`` at a steady random rate between two times."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spawn: Count = Field(ge=0, le=10_000)
    people: Count = Field(ge=1, le=MAX_AGENTS)
    start_s: float = Field(0.0, ge=0, le=MAX_TIME_S)
    end_s: float = Field(60.0, gt=0, le=MAX_TIME_S)


class FundamentalDiagram(BaseModel):
    """Walking speeds and capacities (defaults: Weidmann 1993, Seyfried et al. 2009)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    free_speed_mps: float = Field(1.34, ge=0.1, le=5)
    free_speed_sd_mps: float = Field(0.26, ge=0, le=2)
    gamma_pm2: float = Field(1.913, gt=0, le=10)
    rho_max_pm2: float = Field(5.4, ge=1, le=12)
    specific_flow_pmps: float = Field(1.9, gt=0, le=5)
    single_file_m: float = Field(0.6, ge=0.1, le=2)
    source: str | None = Field(None, max_length=2_000)


class CrowdDrill(DrillSpec):
    """The body of ``POST /drills/crowd``."""

    venue: Name = Field(description="crowd/NAME.wkt or .geojson of the catalogue")
    site: Name | None = Field(None, description="site of the CIM object the venue stands for")
    code: Code | None = Field(None, description="the CIM object the venue stands for")
    agents: Count = Field(ge=1, le=MAX_AGENTS, description="people placed at the start")
    seed: Seed = 0
    cell_m: float | None = Field(None, ge=0.2, le=5, description="cell edge, m (default auto)")
    dt_s: float | None = Field(None, ge=0.01, le=10, description="time step, s (default auto)")
    window_m: float = Field(1.5, ge=0.5, le=20, description="density window side, m")
    zone_m: float = Field(10.0, ge=1, le=1_000, description="reporting zone side, m")
    record_every_s: float = Field(1.0, ge=0.1, le=3_600, description="sampling, s")
    max_time_s: float = Field(7200.0, gt=0, le=MAX_TIME_S, description="simulated s")
    placement: str = Field("uniform", pattern="^(uniform|spawn)$")
    measures: list[
        Annotated[
            Annotated[ExitMeasure, Tag("exit")] | Annotated[OneWayMeasure, Tag("one_way")],
            Discriminator(_measure_kind),
        ]
    ] = Field(default_factory=list, max_length=100)
    releases: list[Release] = Field(default_factory=list, max_length=100)
    arrivals: list[Arrival] = Field(default_factory=list, max_length=100)
    reroute_every_s: float | None = Field(None, ge=1, le=MAX_TIME_S, description="s")
    alert_levels_pm2: list[Annotated[float, Field(gt=0, le=12)]] = Field(
        default_factory=lambda: [2.0, 4.0, 5.0, 6.0], max_length=10
    )
    fd: FundamentalDiagram = Field(default_factory=lambda: FundamentalDiagram.model_validate({}))

    @model_validator(mode="after")
    def _bounded(self) -> CrowdDrill:
        if (self.site is None) != (self.code is None):
            raise ValueError("site and code must name the CIM object the venue stands for")
        people = self.agents + sum(a.people for a in self.arrivals)
        if people > MAX_AGENTS:
            raise ValueError(f"agents and arrivals bring {people} people, more than {MAX_AGENTS}")
        samples = self.max_time_s / self.record_every_s
        if samples > MAX_SAMPLES:
            raise ValueError(
                f"max_time_s / record_every_s = {self.max_time_s:g} / {self.record_every_s:g} = "
                f"{samples:.3g} samples, more than {MAX_SAMPLES}: record less often"
            )
        if self.cell_m is not None and self.window_m / self.cell_m > MAX_WINDOW_SPAN:
            raise ValueError(
                f"window_m / cell_m = {self.window_m:g} / {self.cell_m:g} = "
                f"{self.window_m / self.cell_m:.0f} cells across a density window, more than "
                f"{MAX_WINDOW_SPAN}: a smaller window_m or a larger cell_m"
            )
        dt_s = self.step_s(self.cell_m or 0.4)
        if self.max_time_s / dt_s > MAX_STEPS:
            raise ValueError(
                f"max_time_s / dt_s = {self.max_time_s:g} / {dt_s:.3g} = "
                f"{self.max_time_s / dt_s:.3g} steps, more than {MAX_STEPS}: a longer dt_s "
                "or a shorter max_time_s"
            )
        if people * self.max_time_s / dt_s > MAX_PERSON_STEPS:
            raise ValueError(
                f"{people} people × {self.max_time_s:g} s / dt_s {dt_s:.3g} s is more than "
                f"{MAX_PERSON_STEPS:g} person-steps: fewer people, a shorter run or a longer dt_s"
            )
        return self

    def step_s(self, cell_m: float) -> float:
        """The time step, s: ``dt_s``, else the engine's (0.95 cell at the fastest walker)."""
        v_max = self.fd.free_speed_mps + 2 * self.fd.free_speed_sd_mps
        return self.dt_s or round(0.95 * cell_m / v_max, 3)


def _crowd_spec(
    spec: CrowdDrill, venue: Path, png: Path | None, cache: Path | None
) -> engine.CrowdSpec:
    try:
        fd_values = spec.fd.model_dump(exclude_none=True)
        return engine.CrowdSpec(
            venue=str(venue),
            agents=spec.agents,
            seed=spec.seed,
            cell_m=spec.cell_m,
            dt_s=spec.dt_s,
            window_m=spec.window_m,
            zone_m=spec.zone_m,
            record_every_s=spec.record_every_s,
            max_time_s=spec.max_time_s,
            placement=spec.placement,
            measures=tuple(
                engine.ExitMeasure(m.exit, m.at_s, m.rate_pps)
                for m in spec.measures
                if isinstance(m, ExitMeasure)
            ),
            one_ways=tuple(
                engine.OneWay(tuple(m.one_way.polygon), m.one_way.bearing_deg, m.one_way.at_s)
                for m in spec.measures
                if isinstance(m, OneWayMeasure)
            ),
            releases=tuple(engine.Release(r.at_s, r.spawn) for r in spec.releases),
            arrivals=tuple(
                engine.Arrival(a.spawn, a.people, a.start_s, a.end_s) for a in spec.arrivals
            ),
            reroute_every_s=spec.reroute_every_s,
            alert_levels_pm2=tuple(spec.alert_levels_pm2),
            fd=engine.FundamentalDiagram(**fd_values),
            density_png=None if png is None else str(png),
            grid_cache=None if cache is None else str(cache),
        )
    except ValueError as exc:
        raise DrillRequestError(f"crowd: {exc}") from None


def _venue_error(spec: CrowdDrill, path: Path, exc: SourceError) -> DrillRequestError:
    """A bad catalogue venue, named by its file name: a client never learns the server's
    folders."""
    where = path.name + (f", object {exc.object_id!r}" if exc.object_id is not None else "")
    return DrillRequestError(f"crowd: venue {spec.venue} ({where}): {exc.reason}")


def prepare(spec: CrowdDrill, ctx: PrepareContext) -> CrowdDrill:
    """Check the venue, the measures against its exits and walkable area, the grid's size,
    and the CIM object the venue stands for.

    Raises
    ------
    NotFoundError
        If the venue, site or object is unknown.
    DrillRequestError
        If a measure names no exit or spawn, a one-way polygon misses the walkable area, or
        ``dt_s`` is too long for the cells (a walker would cross more than one a step).
    DrillLimitError
        If the grid would not fit (:func:`check_grid`) or the agents exceed the venue's
        capacity at jam density.
    """
    from scenarios.crowd import load_venue
    from scenarios.crowd.grid import auto_cell_m
    from scenarios.crowd.kernel import check_step
    from scenarios.crowd.model import check_spec

    if spec.site is not None and spec.code is not None:
        ctx.store.get(spec.site, spec.code)
    path = named_input(ctx.data_dir, "crowd", _SUFFIXES, spec.venue, "venue")
    crowd_spec = _crowd_spec(spec, path, None, None)
    try:
        venue = load_venue(path)
        check_spec(venue, crowd_spec)
    except SourceError as exc:
        raise _venue_error(spec, path, exc) from None
    except ValueError as exc:
        raise DrillRequestError(f"crowd: {exc}") from None
    cell_m = spec.cell_m or auto_cell_m(venue)
    check_grid(spec, venue, cell_m)
    fd = crowd_spec.fd
    try:
        check_step(cell_m, spec.step_s(cell_m), fd.free_speed_mps + 2 * fd.free_speed_sd_mps)
    except ValueError as exc:
        raise DrillRequestError(f"crowd: {exc}") from None
    holds = crowd_spec.fd.rho_max_pm2 * venue.area_m2
    if spec.agents > holds:
        raise DrillLimitError(
            f"agents(={spec.agents}) exceed what venue {spec.venue} holds at jam density "
            f"(capacity {int(holds)} people on {venue.area_m2:.0f} m² at "
            f"fd.rho_max_pm2={crowd_spec.fd.rho_max_pm2:g})"
        )
    return spec


def check_grid(spec: CrowdDrill, venue: Venue, cell_m: float) -> None:
    """Refuse a grid that would not fit this machine: its raster, cells, density windows
    and cell-steps, each named with the fields that make it and the computed figure.

    Raises
    ------
    DrillLimitError
        If a figure passes its bound (:data:`MAX_RASTER_CELLS`, :data:`MAX_CELLS`,
        :data:`MAX_WINDOW_ENTRIES`, :data:`MAX_CELL_STEPS`).
    """
    minx, miny, maxx, maxy = venue.walkable.bounds
    raster = max(1, math.ceil((maxx - minx) / cell_m)) * max(1, math.ceil((maxy - miny) / cell_m))
    if raster > MAX_RASTER_CELLS:
        raise DrillLimitError(
            f"cell_m(={cell_m:g}) rasters the {maxx - minx:.0f} × {maxy - miny:.0f} m bounds of "
            f"{spec.venue} into {raster} cells, more than {MAX_RASTER_CELLS}: a larger cell_m"
        )
    cells = math.ceil(venue.area_m2 / cell_m**2)
    if cells > MAX_CELLS:
        raise DrillLimitError(
            f"cell_m(={cell_m:g}) makes about {cells} cells of {spec.venue}, more "
            f"than {MAX_CELLS}: choose a larger cell_m"
        )
    span = 2 * max(0, math.ceil((spec.window_m / cell_m - 1) / 2)) + 1
    if cells * span**2 > MAX_WINDOW_ENTRIES:
        raise DrillLimitError(
            f"window_m(={spec.window_m:g}) / cell_m(={cell_m:g}): {cells} cells × {span}² "
            f"window cells = {cells * span**2} entries, more than {MAX_WINDOW_ENTRIES:g}: "
            "a smaller window_m or a larger cell_m"
        )
    steps = spec.max_time_s / spec.step_s(cell_m)
    if cells * steps > MAX_CELL_STEPS:
        raise DrillLimitError(
            f"cell_m(={cell_m:g}), dt_s(={spec.step_s(cell_m):.3g}), max_time_s"
            f"(={spec.max_time_s:g}): {cells} cells × {steps:.3g} steps = "
            f"{cells * steps:.3g} cell-steps, more than {MAX_CELL_STEPS:g}: a larger cell_m, "
            "a longer dt_s or a shorter run"
        )


def run(spec: CrowdDrill, ctx: RunContext) -> RunResult:
    """Evacuate the venue: KPIs, zone densities over time, the density map.

    Raises
    ------
    DrillRequestError
        If the venue no longer fits the spec, or its file is unreadable (named by its file
        name, not the server's path).
    """
    from scenarios.crowd import run as run_crowd
    from scenarios.drills.alerts import crowd_alerts

    path = named_input(ctx.data_dir, "crowd", _SUFFIXES, spec.venue, "venue")
    png = ctx.files_dir / "density.png"
    cache = ctx.cache_dir / "crowd" / f"{spec.venue}.npz"
    cache.mkdir(parents=True, exist_ok=True)
    try:
        result = run_crowd(_crowd_spec(spec, path, png, cache), ctx.progress)
    except SourceError as exc:
        raise _venue_error(spec, path, exc) from None
    detail = result.to_dict()
    detail["density_png"] = png.name if png.is_file() else None
    times = np.asarray(result.curve_t_s, dtype=np.float64)
    exits = sorted(result.exit_curves)
    out = RunResult(
        summary=result.summary(),
        detail=detail,
        files=[RunFile(png.name, "image/png")] if png.is_file() else [],
        series=[
            Series(
                "density_pm2",
                times,
                tuple(z["zone"] for z in result.zones),
                np.asarray(result.zone_density_t, dtype=np.float64),
                "P/m²",
            ),
            Series(
                "evacuated",
                times,
                tuple(str(e) for e in exits),
                np.array([result.exit_curves[e] for e in exits], dtype=np.float64)
                .reshape(len(exits), times.size)
                .T,
                "persons",
            ),
        ],
    )
    if spec.site is not None and spec.code is not None:
        first = min((float(a["t"]) for a in result.alerts), default=None)
        out.objects = [ObjectValue(spec.code, "max_density_pm2", result.max_density_pm2, first)]
        out.alerts = crowd_alerts(spec.site, spec.code, spec.venue, result.alerts)
    return out


DRILL = Drill(
    name="crowd",
    spec=CrowdDrill,
    help="crowd drill: people leave a venue by walking distance",
    inputs=("crowd/NAME.wkt", "crowd/NAME.geojson"),
    prepare=prepare,
    run=run,
)
