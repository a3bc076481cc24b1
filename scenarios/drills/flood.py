"""The flood drill, three modes behind one name (chosen by the fields given):

- ``{"network": NAME, ...}``: a drainage drill on ``swmm/NAME.inp`` of the catalogue;
- ``{"network": NAME, "site": SITE, ...}``: the same network as imported into the site's
  CIM: nodes by code, the layer ``flood-network-depth``, a drill alert per overflowing node,
  and ``"rain": {"live": {...}}`` from the live gauges linked to the network's gauges;
- ``{"site": SITE, ...}``: rain on the site's terrain, around its buildings and over its
  roads (:mod:`scenarios.drills.flood_site`).

One flat model (:class:`FloodDrill`) keeps today's bodies valid; its validator refuses the
fields of another mode. ``prepare`` reads live rain into ``gauge_rain_mm_h`` (drainage) or
``rain_mm_h`` (site), so the stored spec alone reproduces the run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    Series,
)
from scenarios.drills.inputs import Code, Count, Name, named_input, revalidate
from scenarios.drills.rain import MAX_GAUGES, DesignStorm, LiveRain, RainRows, read_live_rain

#: The layer a drainage drill on a CIM site leaves: maximum depth at each node, by code.
NETWORK_LAYER = "flood-network-depth"
#: Longest simulated time of a drainage drill, s (a site flood: a day).
MAX_NETWORK_S = 7 * 86_400.0
#: Most report samples of a drainage drill (``duration_s / report_step_s``).
MAX_REPORTS = 50_000
#: Most recorded depths of a drainage drill (samples × nodes): ~0.4 GB as float64, more as
#: the result's JSON.
MAX_REPORT_VALUES = 50_000_000
#: Most routing steps of a drainage drill (``duration_s`` over the file's routing step).
MAX_ROUTING_STEPS = 5_000_000
#: Most cells a site flood runs on (after coarsening).
MAX_CELLS = 1_000_000
#: Longest simulated time of a site flood, s.
MAX_SITE_S = 86_400.0
#: Most cells × simulated seconds of a site flood: about 10^10 cell-seconds is 3·10^10
#: cell-steps at the 1 m grid's ~0.3 s step, an hour or two on two cores.
MAX_CELL_SECONDS = 1e10

_SWMM_NAME = Field(min_length=1, max_length=64, description="element name in the .inp file")
_T_S = Field(ge=0, le=MAX_NETWORK_S, description="simulated s")


class PumpFailure(BaseModel):
    """Pump ``name`` stops at ``t_s`` and stays off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = _SWMM_NAME
    t_s: float = _T_S


class LinkSetting(BaseModel):
    """At ``t_s`` set link ``name`` to ``value`` (pumps 0/1, gates 0..1, conduits 0/1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = _SWMM_NAME
    t_s: float = _T_S
    value: float = Field(ge=0, le=1_000)


class SiteInflow(BaseModel):
    """``q_m3s`` entering at (x, y) of the site's CRS, spread within ``radius_m``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x: float = Field(allow_inf_nan=False, description="site CRS, m")
    y: float = Field(allow_inf_nan=False, description="site CRS, m")
    q_m3s: float = Field(ge=0, le=1_000, description="m³/s")
    radius_m: float = Field(0.0, ge=0, le=1_000, description="m")


_NETWORK_ONLY = ("pump_failures", "settings", "report_step_s", "gauge_rain_mm_h")
_SITE_ONLY = (
    "terrain",
    "cell_m",
    "inflows",
    "manning",
    "record_step_s",
    "alerts",
    "rain_mm_h",
    "cells",
)


class FloodDrill(DrillSpec):
    """The body of ``POST /drills/flood``: a drainage network (``network``, with ``site``
    when imported there) or a site's surface (``site`` alone)."""

    network: Name | None = Field(None, description="swmm/NAME.inp of the catalogue")
    site: Name | None = Field(None, description="the CIM site (network imported there, or flooded)")
    duration_s: float | None = Field(
        None, gt=0, le=MAX_NETWORK_S, description="simulated s (a site flood: required, <= 1 day)"
    )
    storm: DesignStorm | None = Field(None, description="a design storm in place of the rain")
    rain: LiveRain | None = Field(
        None, description="rain from the live gauges (prepare reads it into the rain rows)"
    )
    # drainage
    pump_failures: list[PumpFailure] = Field(default_factory=list, max_length=1_000)
    settings: list[LinkSetting] = Field(default_factory=list, max_length=10_000)
    report_step_s: float | None = Field(None, ge=1, le=86_400, description="series step, s")
    gauge_rain_mm_h: (
        Annotated[
            dict[Annotated[str, Field(max_length=64)], RainRows], Field(max_length=MAX_GAUGES)
        ]
        | None
    ) = Field(None, description="rain rows per gauge (filled by prepare from live rain)")
    # site flood
    terrain: Code | None = Field(None, description="code of the site's DEM (default: its one)")
    cell_m: float | None = Field(
        None, ge=0.25, le=1_000, description="cell size to run on, m (a multiple of the DEM's)"
    )
    inflows: list[SiteInflow] = Field(default_factory=list, max_length=100)
    manning: float | None = Field(None, gt=0, le=1, description="surface Manning n (0.03)")
    record_step_s: float | None = Field(
        None, ge=1, le=MAX_SITE_S, description="closures are looked for this often, s (60)"
    )
    alerts: bool | None = Field(None, description="raise drill alerts (default true)")
    rain_mm_h: RainRows | None = Field(
        None, description="areal rain rows on every cell (filled by prepare from live rain)"
    )
    cells: Count | None = Field(
        None, ge=1, le=MAX_CELLS, description="cells of the run's grid (filled by prepare)"
    )
    rain_sources: dict[str, Any] | None = Field(
        None, max_length=8, description="where live rain came from (filled by prepare)"
    )

    @property
    def mode(self) -> str:
        """``"network"`` (drainage) or ``"site"`` (site surface flood)."""
        return "network" if self.network is not None else "site"

    @model_validator(mode="after")
    def _one_mode(self) -> FloodDrill:
        if self.network is None and self.site is None:
            raise ValueError("give network (a drainage drill) or site (a site flood)")

        def given(name: str) -> bool:
            return getattr(self, name) not in (None, [])

        others = _SITE_ONLY if self.mode == "network" else _NETWORK_ONLY
        wrong = [name for name in others if given(name)]
        if wrong:
            this = "a drainage drill (network)" if self.mode == "network" else "a site flood"
            raise ValueError(f"fields {', '.join(wrong)} are not for {this}")
        rains = [n for n in ("storm", "rain", "gauge_rain_mm_h", "rain_mm_h") if given(n)]
        if len(rains) > 1:
            raise ValueError(f"give a design storm or live rain, not both ({', '.join(rains)})")
        if self.mode == "network":
            if self.rain is not None and self.site is None:
                raise ValueError("rain from live gauges needs the site the network is in")
            if self.duration_s is not None and self.report_step_s is not None:
                reports = self.duration_s / self.report_step_s
                if reports > MAX_REPORTS:
                    raise ValueError(
                        f"duration_s / report_step_s = {self.duration_s:g} / "
                        f"{self.report_step_s:g} = {reports:.3g} samples, more than "
                        f"{MAX_REPORTS}: a longer report_step_s or a shorter duration_s"
                    )
            return self
        if self.duration_s is None:
            raise ValueError("duration_s is required: the simulated seconds")
        if self.duration_s > MAX_SITE_S:
            raise ValueError(f"duration_s(={self.duration_s:g}) of a site flood must be <= 86400")
        if not rains and not self.inflows:
            raise ValueError("a site flood drill needs a storm, rain or at least one inflow")
        if self.cells is not None and self.cells * self.duration_s > MAX_CELL_SECONDS:
            raise ValueError(
                f"cells × duration_s = {self.cells} × {self.duration_s:g} s is more than "
                f"{MAX_CELL_SECONDS:g} cell-seconds: choose a larger cell_m or a shorter run"
            )
        return self


def _inp(spec: FloodDrill, data_dir: Path) -> Path:
    assert spec.network is not None
    return named_input(data_dir, "swmm", (".inp",), spec.network, "network")


def _check_formula(storm: DesignStorm | None) -> None:
    from scenarios.flood.rain import intensity_formulas

    formulas = intensity_formulas()
    if storm is not None and storm.formula not in formulas:
        known = ", ".join(sorted(formulas))
        raise DrillRequestError(f"storm.formula {storm.formula!r} is unknown; known: {known}")


def _site_objects(spec: FloodDrill, ctx: PrepareContext | RunContext, inp: Path) -> list[Any]:
    """The objects the network's import brought into the site."""
    assert spec.site is not None
    ctx.store.site(spec.site)
    objects = [o for o in ctx.store.all_objects(spec.site) if o.source == inp.name]
    if not objects:
        raise DrillRequestError(
            f"network: site {spec.site!r} holds no import of {inp.name}: "
            "import it with twin import --crs"
        )
    _same_as_imported(spec.site, inp, ctx)
    return objects


def _same_as_imported(site: str, inp: Path, ctx: PrepareContext | RunContext) -> None:
    """Refuse a network whose file changed after its import into ``site``: the CIM's nodes
    (the codes results are keyed by) and the hydraulic model must come from the same bytes."""
    from cim.importer import file_sha256

    imported = {s["key"]: s["sha256"] for s in ctx.store.sources(site)}.get(inp.name)
    now = file_sha256(inp)
    if imported is not None and imported != now:
        raise DrillRequestError(
            f"network: {inp.name} changed after its import into site {site!r} "
            f"(imported sha256 {imported[:12]}, now {now[:12]}): import it again "
            f"(twin import --site {site} --crs CRS {inp.name}) so that the CIM and the drill "
            "hold the same network"
        )


def prepare(spec: FloodDrill, ctx: PrepareContext) -> FloodDrill:
    """Check the spec against the catalogue and the CIM; read live rain into rows.

    Raises
    ------
    NotFoundError
        If the network, site or terrain is unknown.
    DrillRequestError
        If the storm's formula is unknown, the site holds no import of the network, live
        rain cannot be read, or the site flood would be too large.
    """
    if spec.mode == "site":
        from scenarios.drills.flood_site import prepare_site

        return prepare_site(spec, ctx)
    inp = _inp(spec, ctx.data_dir)
    _check_formula(spec.storm)
    if spec.site is not None:
        objects = _site_objects(spec, ctx, inp)
        if spec.rain is not None:
            gauges = {
                str(o.attributes["swmm_name"]): o.code
                for o in objects
                if o.kind == "RainGage" and isinstance(o.attributes.get("swmm_name"), str)
            }
            rows, sources = read_live_rain(ctx.live, gauges, spec.rain, spec.site)
            window = spec.rain.live.lookback_s + spec.rain.live.forecast_s
            spec = revalidate(
                spec,
                rain=None,
                gauge_rain_mm_h=rows,
                rain_sources=sources,
                duration_s=spec.duration_s or window,
            )
    _flood_spec(spec, inp)
    check_network_size(spec, inp)
    return spec


def check_network_size(spec: FloodDrill, inp: Path) -> None:
    """Refuse a drainage drill whose samples, recorded depths or routing steps (the file's
    defaults filled in) would not fit this machine.

    Raises
    ------
    cim.errors.SourceError
        If the file cannot be read.
    DrillLimitError
        If a figure passes :data:`MAX_REPORTS`, :data:`MAX_REPORT_VALUES` or
        :data:`MAX_ROUTING_STEPS` (naming the fields and the figure).
    """
    from scenarios.flood.swmm_inp import load_swmm_inp

    net = load_swmm_inp(inp, rain_files=False)
    options = net.options
    duration = spec.duration_s if spec.duration_s is not None else options.duration_s
    step = spec.report_step_s or options.report_step_s
    reports = math.floor(duration / step) + 1
    nodes = len(net.nodes)
    what = f"duration_s(={duration:g}) / report_step_s(={step:g})"
    if reports > MAX_REPORTS:
        raise DrillLimitError(
            f"{what} = {reports} samples, more than {MAX_REPORTS}: a longer report_step_s or "
            "a shorter duration_s"
        )
    if reports * nodes > MAX_REPORT_VALUES:
        raise DrillLimitError(
            f"{what}: {reports} samples × {nodes} nodes of {inp.name} = {reports * nodes} "
            f"depths, more than {MAX_REPORT_VALUES}: a longer report_step_s"
        )
    routing = duration / max(options.routing_step_s, 1e-3)
    if routing > MAX_ROUTING_STEPS:
        raise DrillLimitError(
            f"duration_s(={duration:g}) at {inp.name}'s routing step of "
            f"{options.routing_step_s:g} s is {routing:.3g} steps, more than "
            f"{MAX_ROUTING_STEPS}: a shorter duration_s"
        )


def _flood_spec(spec: FloodDrill, inp: Path) -> Any:
    from scenarios.flood import FloodSpec
    from scenarios.flood.spec import DesignStorm as EngineStorm
    from scenarios.flood.spec import LinkSetting as EngineSetting
    from scenarios.flood.spec import PumpFailure as EngineFailure

    try:
        return FloodSpec(
            inp=str(inp),
            duration_s=spec.duration_s,
            pump_failures=tuple(EngineFailure(p.name, p.t_s) for p in spec.pump_failures),
            settings=tuple(EngineSetting(s.name, s.t_s, s.value) for s in spec.settings),
            storm=None if spec.storm is None else EngineStorm(**spec.storm.model_dump()),
            report_step_s=spec.report_step_s,
            gauge_rain_mm_h=None
            if spec.gauge_rain_mm_h is None
            else {g: tuple(rows) for g, rows in spec.gauge_rain_mm_h.items()},
        )
    except ValueError as exc:
        raise DrillRequestError(f"flood: {exc}") from None


_SUMMARY = (
    "total_flood_volume_m3",
    "flooded_nodes",
    "outfall_peak_flow_m3s",
    "continuity_error_pct",
    "wall_s",
)


def run(spec: FloodDrill, ctx: RunContext) -> RunResult:
    """Run the drill in its mode.

    Raises
    ------
    DrillRequestError
        If the inputs no longer fit the spec.
    ValueError
        If the run becomes unstable.
    """
    if spec.mode == "site":
        from scenarios.drills.flood_site import run_site

        return run_site(spec, ctx)
    import numpy as np

    from cim.networks.drainage import codes_by_swmm_name
    from scenarios.flood import run as run_flood

    inp = _inp(spec, ctx.data_dir)
    codes = codes_by_swmm_name(_site_objects(spec, ctx, inp)) if spec.site is not None else {}
    result = run_flood(_flood_spec(spec, inp), ctx.progress)
    detail = result.to_dict()
    summary = {k: detail[k] for k in _SUMMARY if k in detail}
    names = sorted(result.node_depth_series_m)
    ids = tuple(codes.get(n, n) for n in names) if spec.site else tuple(names)
    series = []
    if result.report_times_s and names:
        values = np.array([result.node_depth_series_m[n] for n in names], dtype=np.float64).T
        times = np.asarray(result.report_times_s, dtype=np.float64)
        series.append(Series("depth_m", times, ids, values, "m"))
    out = RunResult(summary=summary, detail=detail, series=series)
    if spec.site is None:
        return out
    from scenarios.drills.alerts import node_alerts

    depth, volume = result.node_max_depth_m, result.node_flood_volume_m3
    nodes: dict[str, dict[str, Any]] = {
        codes[name]: {
            "swmm": name,
            "max_depth_m": depth[name],
            "flood_volume_m3": volume.get(name, 0.0),
        }
        for name in depth
        if name in codes
    }
    detail["nodes_by_code"] = nodes
    detail["rain"] = spec.rain_sources or {"live": False}
    for code, node in sorted(nodes.items()):
        out.objects.append(ObjectValue(code, "max_depth_m", float(node["max_depth_m"])))
        out.objects.append(ObjectValue(code, "flood_volume_m3", float(node["flood_volume_m3"])))
    peaks = {code: float(node["max_depth_m"]) for code, node in nodes.items()}
    out.layers = [LayerValues(spec.site, NETWORK_LAYER, peaks, "peak depth at the node", "m")]
    out.alerts = node_alerts(spec.site, nodes)
    return out


DRILL = Drill(
    name="flood",
    spec=FloodDrill,
    help="flood drill: a drainage network (network) or a site's surface (site)",
    inputs=("swmm/NAME.inp",),
    prepare=prepare,
    run=run,
)
