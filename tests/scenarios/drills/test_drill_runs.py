"""Real runs of every drill through ``prepare`` and ``run`` on the sample data: the same
KPIs as the engines called directly (what the API's job adapters ran), per-object results by
real CIM codes, files in the run's folder, the viewer's layers by their names."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from drill_sites import ASSETS, Sites

from scenarios.drills import drill
from scenarios.drills.base import PrepareContext, RunContext, RunResult

STORM = {"formula": "shanghai-2017", "return_period_a": 50, "duration_min": 60}


def _run(name: str, body: dict[str, Any], pc: PrepareContext, rc: RunContext) -> RunResult:
    found = drill(name)
    result = found.run(found.prepare(found.spec.model_validate(body), pc), rc)
    assert rc.seen and max(rc.seen) == pytest.approx(1.0)  # type: ignore[attr-defined]
    return result


def _same(summary: dict[str, Any], engine: dict[str, Any]) -> None:
    """Equal KPIs, but for the wall time."""
    assert {k: v for k, v in summary.items() if k != "wall_s"} == {
        k: v for k, v in engine.items() if k != "wall_s"
    }


def _series(result: RunResult, metric: str) -> Any:
    (found,) = (s for s in result.series if s.metric == metric)
    assert found.values.shape == (found.times_s.size, len(found.codes))
    assert np.isfinite(found.values).all()
    return found


def test_traffic_on_a_catalogue_network(prepare_ctx: PrepareContext, run_ctx: RunContext) -> None:
    from scenarios.traffic import TrafficSpec, load_uxsim_csv
    from scenarios.traffic import run as run_traffic

    result = _run("traffic", {"network": "tokyo_arterial", "tmax_s": 1800}, prepare_ctx, run_ctx)
    network, demand = load_uxsim_csv(ASSETS / "traffic" / "tokyo_arterial")
    engine = run_traffic(TrafficSpec(network=network, demand=demand, tmax_s=1800))
    _same(result.summary, engine.summary())
    assert result.summary["vehicles"] == 10800
    assert "summary" not in result.detail and result.detail["trips"] == engine.trips.to_dict()
    speed = _series(result, "speed_mps")
    assert len(speed.codes) == network.n_links
    assert not result.objects and not result.layers and not result.alerts and not result.files


def test_traffic_on_a_site_closes_a_road_by_its_code(
    sites: Sites, prepare_ctx: PrepareContext, run_ctx: RunContext
) -> None:
    body: dict[str, Any] = {
        "site": "oakland",
        "osm": "west_oakland",
        "demand": {"pairs": 40, "seed": 1},
        "tmax_s": 1800,
    }
    base = _run("traffic", body, prepare_ctx, run_ctx)
    roads = set(sites.oakland_roads.values())
    grades = {o.code: o.value for o in base.objects if o.metric == "worst_grade"}
    assert grades and set(grades) <= roads and set(grades.values()) <= {0, 1, 2, 3, 4}
    (layer,) = base.layers
    assert (layer.site, layer.name, layer.values) == ("oakland", "traffic-grade", grades)
    per_road = _series(base, "road_grade")
    assert set(per_road.codes) == set(grades)
    assert per_road.values.max(axis=0).tolist() == [grades[c] for c in per_road.codes]
    # close the busiest road by its CIM code: each of its links closes and carries nothing
    flows = np.asarray(base.detail["series"]["flow_vps"])
    codes = base.detail["links"]["codes"]
    ways = [c.removeprefix("osm:").split("/")[0] for c in codes]
    busiest = max(
        set(ways), key=lambda w: flows[:, [i for i, x in enumerate(ways) if x == w]].sum()
    )
    road = sites.oakland_roads[busiest]
    closed = _run(
        "traffic", {**body, "closures": [{"link": road, "t_start_s": 0}]}, prepare_ctx, run_ctx
    )
    links = [c["link"] for c in closed.detail["closures"]]
    assert links and all(c.startswith(f"osm:{busiest}/") for c in links)
    index = [codes.index(c) for c in links]
    assert np.asarray(closed.detail["series"]["flow_vps"])[:, index].sum() == 0


def test_a_drainage_drill_on_a_catalogue_network(
    prepare_ctx: PrepareContext, run_ctx: RunContext
) -> None:
    from scenarios.flood import FloodSpec
    from scenarios.flood import run as run_flood
    from scenarios.flood.spec import DesignStorm

    storm = {**STORM, "return_period_a": 5}
    body = {"network": "bellinge_small", "storm": storm, "duration_s": 3600}
    result = _run("flood", body, prepare_ctx, run_ctx)
    engine = run_flood(
        FloodSpec(
            inp=str(ASSETS / "swmm" / "bellinge_small.inp"),
            duration_s=3600,
            storm=DesignStorm(**storm),
        )
    ).to_dict()
    _same(result.summary, {k: engine[k] for k in result.summary})
    assert set(result.summary) == {
        "total_flood_volume_m3",
        "flooded_nodes",
        "outfall_peak_flow_m3s",
        "continuity_error_pct",
        "wall_s",
    }
    assert result.summary["total_flood_volume_m3"] > 0 and result.summary["flooded_nodes"]
    depth = _series(result, "depth_m")
    assert set(depth.codes) == set(engine["node_max_depth_m"])
    # sampled at the report steps, never above the peak between them
    peaks = np.array([engine["node_max_depth_m"][c] for c in depth.codes])
    assert (depth.values.max(axis=0) <= peaks + 1e-9).all() and depth.values.max() > 0
    assert not result.objects and not result.layers and not result.alerts


def test_a_drainage_drill_on_a_site_reports_nodes_by_code(
    sites: Sites, prepare_ctx: PrepareContext, run_ctx: RunContext
) -> None:
    body = {
        "network": "bellinge_small",
        "site": "bellinge",
        "storm": {**STORM, "return_period_a": 5},
        "duration_s": 3600,
    }
    result = _run("flood", body, prepare_ctx, run_ctx)
    nodes = result.detail["nodes_by_code"]
    codes = set(sites.bellinge_codes.values())
    assert nodes and set(nodes) <= codes
    assert result.detail["rain"] == {"live": False}
    depths = {o.code: o.value for o in result.objects if o.metric == "max_depth_m"}
    volumes = {o.code: o.value for o in result.objects if o.metric == "flood_volume_m3"}
    assert set(depths) == set(volumes) == set(nodes)
    flooded = {sites.bellinge_codes[n] for n in result.summary["flooded_nodes"]}
    assert flooded and {c for c, v in volumes.items() if v > 0} == flooded
    (layer,) = result.layers
    assert layer.name == "flood-network-depth" and layer.values == depths
    assert {a.object_code for a in result.alerts} == flooded
    assert {a.kind for a in result.alerts} == {"node-flooding"}
    assert set(_series(result, "depth_m").codes) <= codes


def test_a_site_flood_leaves_files_objects_layer_and_alerts(
    sites: Sites, prepare_ctx: PrepareContext, run_ctx: RunContext
) -> None:
    import rasterio

    from scenarios.flood.site import SiteFloodSpec, run_site_flood
    from scenarios.flood.spec import DesignStorm

    body = {"site": "merewether", "storm": STORM, "duration_s": 1800, "cell_m": 4}
    result = _run("flood", body, prepare_ctx, run_ctx)
    store = sites.store
    (terrain,) = store.raster_codes("merewether")
    engine = run_site_flood(
        SiteFloodSpec(
            terrain=store.raster("merewether", terrain),
            buildings=tuple((o.code, o.footprint) for o in store.by_kind("merewether", "Building")),
            roads=tuple((o.code, o.footprint) for o in store.by_kind("merewether", "Road")),
            duration_s=1800,
            storm=DesignStorm(**STORM),
            cell_m=4,
        ),
        run_ctx.files_dir.parent,
    )
    _same(result.summary, engine.summary())
    assert result.summary["rain_mm"] == pytest.approx(88.83, abs=0.01)  # as over the API
    # files, named in the detail by their names in the run's folder
    assert result.detail["files"] == {
        "max_depth_tif": "max_depth.tif",
        "time_of_max_tif": "time_of_max.tif",
        "depth_png": "depth.png",
    }
    assert sorted(f.name for f in result.files) == sorted(
        p.name for p in run_ctx.files_dir.iterdir()
    )
    with rasterio.open(run_ctx.files_dir / "max_depth.tif") as src:
        assert src.crs.to_epsg() == 32756
        assert src.read(1, masked=True).max() == pytest.approx(
            result.summary["max_depth_m"], rel=1e-5
        )
    assert result.detail["crs"] == "EPSG:32756" and result.detail["rain"] == {"live": False}
    # per object: the affected buildings and the closed road, by code
    affected = {b["code"]: b for b in engine.affected_buildings}
    buildings = {o.code: o for o in result.objects if o.code in sites.buildings}
    assert affected and set(buildings) == set(affected) < sites.buildings
    for code, value in buildings.items():
        assert value.metric == "max_depth_m" and value.value == affected[code]["max_depth_m"]
        assert value.first_t_s == affected[code]["first_t_s"]
    (closure,) = engine.closures
    road = {o.metric: o for o in result.objects if o.code == sites.road}
    assert road["max_depth_m"].value == closure["max_depth_m"] > 0.15
    assert road["max_depth_m"].first_t_s == closure["t_start_s"]
    held = (
        closure["duration_s"] if closure["duration_s"] is not None else 1800 - closure["t_start_s"]
    )
    assert road["closure_duration_s"].value == held
    (layer,) = result.layers
    assert (
        layer.name == "flood-depth" and layer.unit == "m" and set(layer.values) <= sites.buildings
    )
    kinds = [a.kind for a in result.alerts]
    assert kinds.count("road-closure") == 1 and kinds.count("building-flooded") == len(affected)
    quiet = _run("flood", {**body, "alerts": False}, prepare_ctx, run_ctx)
    assert not quiet.alerts


def test_a_crowd_drill_with_few_people(
    sites: Sites, prepare_ctx: PrepareContext, run_ctx: RunContext
) -> None:
    from scenarios.crowd import CrowdSpec
    from scenarios.crowd import run as run_crowd

    body: dict[str, Any] = {"venue": "waterfront", "agents": 300, "seed": 3}
    result = _run("crowd", body, prepare_ctx, run_ctx)
    engine = run_crowd(
        CrowdSpec(venue=str(ASSETS / "crowd" / "waterfront.wkt"), agents=300, seed=3)
    )
    _same(result.summary, engine.summary())
    assert result.summary["agents"] == 300 == sum(result.summary["exit_flows"].values())
    assert result.detail["density_png"] == "density.png"
    assert (run_ctx.files_dir / "density.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [f.name for f in result.files] == ["density.png"]
    zones = _series(result, "density_pm2")
    assert zones.codes == tuple(z["zone"] for z in engine.zones)
    assert zones.values.max() == pytest.approx(
        max(z["max_density_pm2"] for z in engine.zones), abs=1e-3
    )
    out = _series(result, "evacuated")
    assert out.values[-1].sum() == 300
    assert (prepare_ctx.cache_dir / "crowd" / "waterfront.npz").is_dir()  # the venue's cells
    assert not result.objects and not result.alerts
    # on a CIM object: one result and one drill alert per zone that crossed a level
    building = sorted(sites.buildings)[0]
    anchored = _run("crowd", {**body, "site": "merewether", "code": building}, prepare_ctx, run_ctx)
    (value,) = anchored.objects
    assert (value.code, value.metric, value.value) == (
        building,
        "max_density_pm2",
        result.summary["max_density_pm2"],
    )
    zones_crossed = {a["zone"] for a in anchored.detail["alerts"]}
    assert len(anchored.alerts) == len(zones_crossed) > 0
    assert {a.object_code for a in anchored.alerts} == {building}


def test_the_duplex_evacuation(
    sites: Sites, prepare_ctx: PrepareContext, run_ctx: RunContext
) -> None:
    if sites.building is None:
        pytest.skip("ifcopenshell is not installed")
    from scenarios.crowd.building import EvacuationSpec, StoreyRelease, load_building, simulate

    upstairs = sites.storeys["Level 2"]
    body = {
        "site": "campus",
        "building": sites.building,
        "load_pm2": 0.5,
        "measures": [{"stage": upstairs, "at_s": 20}],
    }
    result = _run("evacuation", body, prepare_ctx, run_ctx)
    spec = EvacuationSpec(
        site="campus",
        building=sites.building,
        load_pm2=0.5,
        stages=(StoreyRelease(upstairs, 20),),
    )
    engine = simulate(load_building(sites.store, "campus", sites.building), spec)
    _same(result.summary, engine["summary"])
    assert result.summary["everyone_out"] and result.summary["people"] > 50
    assert next(s for s in result.detail["storeys"] if s["code"] == upstairs)["clear_s"] > 20
    densities = {o.code: o.value for o in result.objects}
    assert densities == engine["max_density_pm2"]
    assert all(code.startswith(sites.building) for code in densities)
    (layer,) = result.layers
    assert (layer.site, layer.name, layer.values) == ("campus", "evacuation-density", densities)
