"""Surface runs on the real Merewether terrain and houses (1 m LiDAR, 60 footprints)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rasterio

from api.cli import main
from scenarios.flood.surface_model import PointInflow, SurfaceModel, SurfaceSpec

ROAD_POINT = (382300.0, 6354290.0)


@pytest.fixture(scope="module")
def merewether(assets_dir: Path) -> dict[str, str]:
    return {
        "dem": str(assets_dir / "merewether" / "merewether_dtm_1m_epsg32756.tif"),
        "houses": str(assets_dir / "merewether" / "merewether_houses_epsg32756.geojson"),
        "road": str(assets_dir / "flood" / "merewether_road_polygon.csv"),
    }


@pytest.fixture(scope="module")
def run_on_road(merewether: dict[str, str]) -> tuple[SurfaceModel, object]:
    spec = SurfaceSpec(
        dem=merewether["dem"],
        duration_s=300.0,
        inflows=(PointInflow(*ROAD_POINT, 2.0, 3.0),),
        buildings=merewether["houses"],
        roads=merewether["road"],
        manning=0.04,
        manning_zones=((merewether["road"], 0.02),),
        probes=(ROAD_POINT,),
        record_step_s=30.0,
    )
    model = SurfaceModel(spec)
    return model, model.run()


def test_volume_balance_and_buildings_stay_dry(run_on_road: tuple[SurfaceModel, object]) -> None:
    model, result = run_on_road
    assert result.inflow_m3 == pytest.approx(600.0)  # type: ignore[attr-defined]
    # inflow = stored + out through the edges, to round-off
    assert abs(result.volume_error_pct) < 1e-6  # type: ignore[attr-defined]
    walls = model.grid.z.shape
    assert model.state.h.shape == walls
    inside_houses = model.raster.inside & ~model.grid.active
    assert model.state.h[inside_houses].max(initial=0.0) == 0.0


def test_road_closure_event_shape(run_on_road: tuple[SurfaceModel, object]) -> None:
    _, result = run_on_road
    closures = [e for e in result.events if "link" in e]  # type: ignore[attr-defined]
    assert closures, "water 2 m3/s onto the road must close it"
    event = closures[0]
    assert set(event) == {"link", "t_start_s", "duration_s", "lanes", "reason"}
    assert event["link"] == "merewether_road_polygon" and event["reason"] == "flood"
    assert event["lanes"] is None and isinstance(event["t_start_s"], float)
    probe = result.probes[0]  # type: ignore[attr-defined]
    assert probe["peak_depth_m"] > 0.15
    assert probe["peak_stage_m"] == pytest.approx(model_z(run_on_road) + probe["peak_depth_m"])


def model_z(run: tuple[SurfaceModel, object]) -> float:
    model, _ = run
    row, col = model.raster.cell_of(*ROAD_POINT)
    return float(model.raster.z[row, col])


def test_geotiffs_are_georeferenced(
    run_on_road: tuple[SurfaceModel, object], tmp_path: Path
) -> None:
    model, result = run_on_road
    paths = model.write_rasters(result, tmp_path / "maxdepth.tif")  # type: ignore[arg-type]
    with rasterio.open(paths[0]) as src:
        depth = src.read(1)
        assert src.crs.to_epsg() == 32756 and src.transform == model.raster.transform
        assert float(depth.max()) == pytest.approx(result.max_depth_m, rel=1e-6)  # type: ignore[attr-defined]
    with rasterio.open(paths[1]) as src:
        tmax = src.read(1)
        wet = depth > 0.01
        assert (tmax[wet] > 0).all() and (tmax[wet] <= 300.0).all()


def test_depth_class_polygons_cover_the_flooded_area(
    run_on_road: tuple[SurfaceModel, object],
) -> None:
    from scenarios.flood.surface_model import depth_class_polygons

    model, result = run_on_road
    collection = depth_class_polygons(result.max_depth, model.raster.transform, model.raster.inside)  # type: ignore[attr-defined]
    total = sum(f["properties"]["area_m2"] for f in collection["features"])
    # 1 m cells: the polygons' area is the count of cells deeper than 0.15 m
    assert total == pytest.approx(result.flooded_area_m2[">0.15"])  # type: ignore[attr-defined]
    top = [f for f in collection["features"] if f["properties"]["max_depth_m"] is None]
    assert sum(f["properties"]["area_m2"] for f in top) == pytest.approx(
        result.flooded_area_m2[">0.50"]
    )  # type: ignore[attr-defined]


def test_cli_surface_contract(
    capsys: pytest.CaptureFixture[str], merewether: dict[str, str]
) -> None:
    code = main(
        [
            "run",
            "flood",
            "--dem",
            merewether["dem"],
            "--buildings",
            merewether["houses"],
            "--manning",
            "0.04",
            "--manning-zone",
            f"{merewether['road']}:0.02",
            "--inflow",
            "382300,6354290,1.0,2",
            "--duration",
            "120",
            "--probe",
            "382300,6354290",
            "--probe",
            "382400,6354400",
            "--json",
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    data = json.loads(out)
    assert set(data["probes"][0]) == {"x", "y", "peak_stage_m", "peak_depth_m"}
    assert data["probes"][0]["peak_depth_m"] > 0 and data["probes"][1]["peak_depth_m"] == 0.0
    assert data["wall_s"] > 0
    assert data["inflow_m3"] == pytest.approx(120.0)


def test_cli_surface_bad_inputs(
    capsys: pytest.CaptureFixture[str], merewether: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "zone.csv"
    bad.write_text("1,2\nthree,4\n")
    code = main(
        [
            "run",
            "flood",
            "--dem",
            merewether["dem"],
            "--inflow",
            "382300,6354290,1",
            "--duration",
            "10",
            "--manning-zone",
            f"{bad}:0.02",
        ]
    )
    assert code == 1 and "zone.csv: line 2: expected x,y" in capsys.readouterr().err
    code = main(
        ["run", "flood", "--dem", merewether["dem"], "--inflow", "0,0,1", "--duration", "10"]
    )
    assert code == 2 and "not on an active DEM cell" in capsys.readouterr().err
