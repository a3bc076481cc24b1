"""The site mode of the flood drill: a storm, live rain or inflows on a site's CIM terrain,
around its buildings and over its roads (:mod:`scenarios.flood.site`).

The run leaves ``max_depth.tif``, ``time_of_max.tif`` and ``depth.png`` in its folder, the
layer ``flood-depth`` (maximum depth against each building), a drill alert per closed road
and affected building, and per-object results: each affected building's and closed road's
``max_depth_m`` (first time over the threshold), each closed road's ``closure_duration_s``.
"""

from __future__ import annotations

from typing import Any

from cim.store import Store
from scenarios.drills.base import (
    DrillRequestError,
    LayerValues,
    ObjectValue,
    PrepareContext,
    RunContext,
    RunFile,
    RunResult,
)
from scenarios.drills.flood import FloodDrill, _check_formula
from scenarios.drills.inputs import revalidate
from scenarios.drills.rain import read_live_rain

#: The layer a site flood drill leaves for the viewer: maximum depth against each building.
FLOOD_LAYER = "flood-depth"

#: The files of a run: ``detail["files"]`` key -> (file name, media type).
FILES = {
    "max_depth_tif": ("max_depth.tif", "image/tiff"),
    "time_of_max_tif": ("time_of_max.tif", "image/tiff"),
    "depth_png": ("depth.png", "image/png"),
}


def _terrain(spec: FloodDrill, store: Store) -> str:
    """The code of the DEM the drill runs on (``terrain``, or the site's one)."""
    assert spec.site is not None
    store.site(spec.site)
    rasters = sorted(store.raster_codes(spec.site))
    if spec.terrain is None:
        if not rasters:
            raise DrillRequestError(
                f"terrain: site {spec.site!r} holds no terrain: import a DEM into it first "
                "(twin import DEM.tif)"
            )
        return rasters[0]
    if spec.terrain not in rasters:
        raise DrillRequestError(f"terrain must be the code of one of the site's DEMs: {rasters}")
    return spec.terrain


def site_flood_spec(spec: FloodDrill, store: Store) -> Any:
    """The :class:`~scenarios.flood.site.SiteFloodSpec` of a site flood drill, read from the
    site's CIM: its terrain, its buildings and its roads by code.

    Raises
    ------
    NotFoundError
        If the site is unknown.
    DrillRequestError
        If the terrain is unknown, or the engine refuses the spec (cell size, inflows
        outside the terrain, storm parameters, too many cells).
    """
    from scenarios.flood.site import SiteFloodSpec
    from scenarios.flood.spec import DesignStorm
    from scenarios.flood.surface_model import PointInflow

    assert spec.site is not None and spec.duration_s is not None
    terrain = _terrain(spec, store)
    grid = store.raster(spec.site, terrain)
    buildings = tuple(
        (o.code, o.footprint)
        for o in store.by_kind(spec.site, "Building")
        if o.footprint is not None
    )
    roads = tuple(
        (o.code, o.footprint) for o in store.by_kind(spec.site, "Road") if o.footprint is not None
    )
    try:
        return SiteFloodSpec(
            terrain=grid,
            buildings=buildings,
            roads=roads,
            duration_s=spec.duration_s,
            storm=None if spec.storm is None else DesignStorm(**spec.storm.model_dump()),
            inflows=tuple(PointInflow(i.x, i.y, i.q_m3s, i.radius_m) for i in spec.inflows),
            cell_m=spec.cell_m,
            manning=0.03 if spec.manning is None else spec.manning,
            record_step_s=60.0 if spec.record_step_s is None else spec.record_step_s,
            rain_mm_h=None if spec.rain_mm_h is None else tuple(spec.rain_mm_h),
        )
    except ValueError as exc:
        raise DrillRequestError(f"flood: {exc}") from None


def prepare_site(spec: FloodDrill, ctx: PrepareContext) -> FloodDrill:
    """Check a site flood against the CIM; read live rain into ``rain_mm_h`` (the mean of
    the site's live rain gauges), name the terrain and count the cells.

    Raises
    ------
    NotFoundError
        If the site is unknown.
    DrillRequestError
        If the terrain or storm is unknown, live rain cannot be read, or the run would be
        too large (cells, cell-seconds).
    """
    from scenarios.flood.site import coarse_shape
    from twin.rainfall import RAIN_PROPERTIES, areal_rain

    assert spec.site is not None
    ctx.store.site(spec.site)
    _check_formula(spec.storm)
    changes: dict[str, Any] = {"terrain": _terrain(spec, ctx.store)}
    if spec.rain is not None:
        sensors = ctx.live.sensors("", site=spec.site) if ctx.live is not None else []
        gauges = {
            f"{s['code']}#{s['datastream']}": s["code"]
            for s in sensors
            if any(p in s["observedProperty"].lower() for p in RAIN_PROPERTIES)
        }
        rows, sources = read_live_rain(ctx.live, gauges, spec.rain, spec.site)
        areal = areal_rain({k: tuple(v) for k, v in rows.items()})
        changes.update(rain=None, rain_mm_h=list(areal), rain_sources=sources)
    spec = revalidate(spec, **changes)
    engine = site_flood_spec(spec, ctx.store)
    rows_n, cols_n = coarse_shape(engine.terrain, engine.cell_m)
    return revalidate(spec, cells=rows_n * cols_n)


def run_site(spec: FloodDrill, ctx: RunContext) -> RunResult:
    """Run a site flood into ``ctx.files_dir``.

    Raises
    ------
    DrillRequestError
        If the site's CIM no longer fits the spec.
    ValueError
        If the run becomes unstable.
    """
    from scenarios.drills.alerts import flood_alerts
    from scenarios.flood.site import run_site_flood

    assert spec.site is not None and spec.duration_s is not None
    engine = site_flood_spec(spec, ctx.store)
    result = run_site_flood(engine, ctx.files_dir, ctx.progress)
    (ctx.files_dir / "max_depth_tmax.tif").replace(ctx.files_dir / "time_of_max.tif")
    detail = result.to_dict()
    summary = detail.pop("summary")
    detail["files"] = {key: name for key, (name, _) in FILES.items()}
    detail["crs"] = engine.terrain.crs
    detail["rain"] = spec.rain_sources or {"live": False}
    out = RunResult(
        summary=summary,
        detail=detail,
        files=[RunFile(name, media) for name, media in FILES.values()],
    )
    for building in result.affected_buildings:
        out.objects.append(
            ObjectValue(
                building["code"],
                "max_depth_m",
                float(building["max_depth_m"]),
                float(building["first_t_s"]),
            )
        )
    out.objects += road_objects(result.closures, spec.duration_s)
    values = {code: round(v, 4) for code, v in result.building_max_depth_m.items()}
    out.layers = [
        LayerValues(spec.site, FLOOD_LAYER, values, "maximum water depth against the building", "m")
    ]
    if spec.alerts is not False:
        out.alerts = flood_alerts(spec.site, result.closures, result.affected_buildings)
    return out


def road_objects(closures: list[dict[str, Any]], duration_s: float) -> list[ObjectValue]:
    """Per closed road: ``max_depth_m`` from its first closure, and ``closure_duration_s``
    over all its closures (one still closed at the end counts to the end of the run).

    Parameters
    ----------
    closures : ``{"code", "t_start_s", "duration_s" (None: to the end), "max_depth_m"}``
    duration_s : the run's simulated seconds
    """
    first: dict[str, float] = {}
    depth: dict[str, float] = {}
    closed: dict[str, float] = {}
    for c in closures:
        code, start = str(c["code"]), float(c["t_start_s"])
        first[code] = min(first.get(code, start), start)
        depth[code] = max(depth.get(code, 0.0), float(c["max_depth_m"]))
        held = c["duration_s"] if c["duration_s"] is not None else duration_s - start
        closed[code] = closed.get(code, 0.0) + float(held)
    out = []
    for code in sorted(first):
        out.append(ObjectValue(code, "max_depth_m", depth[code], first[code]))
        out.append(ObjectValue(code, "closure_duration_s", closed[code], first[code]))
    return out
