"""Site flood drills over HTTP on the real Merewether site (1 m LiDAR run at 4 m, 60 houses,
the ANUGA road corridor): depth maps, buildings and road closures by CIM code, the
``flood-depth`` layer, drill alerts, and closures chained into a traffic drill."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rasterio
from denhaag_twin import TestClient
from served import Client, app_client

from api.app import create_app
from api.cli import main
from api.keys import KeyStore
from api.settings import Settings
from cim.importer import import_source
from cim.loaders import LoadOptions
from cim.store import open_store
from scenarios.traffic.osm import load_osm_roads
from tests.live.live_helpers import thing_body

#: also against the real multi-process server (``make test-served``)
pytestmark = pytest.mark.served

ASSETS = Path(__file__).parents[2] / "assets"
SITE = "merewether"
STORM = {"formula": "shanghai-2017", "return_period_a": 50, "duration_min": 60}


@dataclass(frozen=True)
class Site:
    client: Client
    headers: dict[str, str]
    display: dict[str, str]
    buildings: set[str]
    road: str
    store: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    path = tmp_path_factory.mktemp("merewether") / "t.db"
    store = open_store(path)
    try:
        for source in (
            ASSETS / "merewether" / "merewether_dtm_1m_epsg32756.tif",
            ASSETS / "merewether" / "merewether_houses_epsg32756.geojson",
            ASSETS / "flood" / "merewether_road.geojson",
        ):
            import_source(store, source, site=SITE, options=LoadOptions(default_height_m=6.0))
        buildings = {o.code for o in store.by_kind(SITE, "Building")}
        (road,) = store.by_kind(SITE, "Road")
    finally:
        store.close()
    settings = Settings(store_url=path)
    keys = KeyStore(settings.store_url)
    headers = {"X-API-Key": keys.create_key("planner")}
    display = {"X-API-Key": keys.create_key("display")}
    with app_client(settings) as client:
        yield Site(client, headers, display, buildings, road.code, path)


def _wait(site: Site, job: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    seen = set()
    while job["state"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, job
        seen.add(job["progress"])
        time.sleep(0.1)
        job = site.client.get(f"/runs/{job['id']}", headers=site.headers).json()
    job["seen_progress"] = sorted(seen)
    return job


@pytest.fixture(scope="module")
def drill(site: Site) -> dict[str, Any]:
    body = {"site": SITE, "storm": STORM, "duration_s": 1800, "cell_m": 4}
    started = site.client.post("/drills/flood", json=body, headers=site.headers)
    assert started.status_code == 202, started.text
    job = _wait(site, started.json())
    assert job["state"] == "succeeded", job
    return job


def test_site_drill_finds_buildings_and_the_road_by_code(site: Site, drill: dict[str, Any]) -> None:
    result = drill["result"]
    summary = result["summary"]
    assert drill["progress"] == 1.0 and any(0 < p < 1 for p in drill["seen_progress"])
    # a 50-year, 60-minute Shanghai storm: 88.8 mm, every drop on the grid accounted for
    assert summary["rain_mm"] == pytest.approx(88.83, abs=0.01)
    assert abs(summary["volume_error_pct"]) < 1e-6
    assert summary["cell_m"] == pytest.approx(4.0, abs=0.01)
    affected = result["affected_buildings"]
    assert affected and {b["code"] for b in affected} <= site.buildings
    assert all(b["max_depth_m"] >= b["depth_m"] > 0.15 for b in affected)
    (closure,) = result["closures"]
    assert closure["code"] == site.road and closure["code"][15:17] == "04"
    assert 0 < closure["t_start_s"] < 1800 and closure["max_depth_m"] > 0.15
    assert summary["affected_buildings"] == len(affected) < len(site.buildings)


def test_site_drill_leaves_geotiffs_a_png_and_a_layer(site: Site, drill: dict[str, Any]) -> None:
    files = drill["result"]["files"]
    tif = site.client.get(files["max_depth_tif"], headers=site.display)
    assert tif.status_code == 200 and tif.headers["content-type"] == "image/tiff"
    with rasterio.open(io.BytesIO(tif.content)) as src:
        assert src.crs.to_epsg() == 32756 and src.res == pytest.approx((4.0, 4.0), abs=0.01)
        depth = src.read(1, masked=True)
        assert depth.max() == pytest.approx(drill["result"]["summary"]["max_depth_m"], rel=1e-5)
    tmax = site.client.get(files["time_of_max_tif"], headers=site.display)
    with rasterio.open(io.BytesIO(tmax.content)) as src:
        assert 0 < src.read(1, masked=True).max() <= 1800
    png = site.client.get(files["depth_png"], headers=site.display)
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    layer = site.client.get(f"/sites/{SITE}/layers/flood-depth", headers=site.display).json()
    assert layer["unit"] == "m" and set(layer["values"]) <= site.buildings
    wettest = max(drill["result"]["affected_buildings"], key=lambda b: b["max_depth_m"])
    assert layer["values"][wettest["code"]] == pytest.approx(wettest["max_depth_m"], abs=1e-4)


def test_site_drill_raises_drill_alerts_not_sensor_alerts(
    site: Site, drill: dict[str, Any]
) -> None:
    result = drill["result"]
    assert result["drill_alerts"]["drill"] == drill["id"]
    drills = site.client.get("/alerts", params={"source": "drill"}, headers=site.display).json()
    mine = [a for a in drills if a["drill"] == drill["id"]]
    expected = len(result["closures"]) + len(result["affected_buildings"])
    assert len(mine) == result["drill_alerts"]["count"] == expected
    assert {a["source"] for a in mine} == {"drill"}
    closure = next(a for a in mine if a["kind"] == "road-closure")
    assert closure["objectCode"] == site.road and closure["severity"] in ("warning", "alarm")
    assert not site.client.get("/alerts", headers=site.display).json()
    assert not site.client.get("/alerts", params={"source": "sensor"}, headers=site.display).json()
    vitals = site.client.get("/live/vitals", headers=site.display).json()
    assert vitals["activeAlerts"] == {}
    building = result["affected_buildings"][0]["code"]
    unit = site.client.get(f"/sites/{SITE}/units/{building}/dashboard", headers=site.display)
    assert unit.status_code == 200 and unit.json()["alerts"] == []


def test_flood_closures_chain_into_a_traffic_drill_of_the_same_site_only(
    site: Site, drill: dict[str, Any]
) -> None:
    body = {"site": "oakland", "osm": "west_oakland", "closures_from": drill["id"]}
    other = site.client.post("/drills/traffic", json=body, headers=site.headers)
    assert other.status_code == 404  # this store holds no oakland site
    body["site"] = SITE
    wrong = site.client.post("/drills/traffic", json=body, headers=site.headers)
    assert wrong.status_code == 400  # merewether holds no OSM streets
    missing = site.client.post(
        "/drills/traffic", json={**body, "closures_from": "j_nope"}, headers=site.headers
    )
    assert missing.status_code in (400, 404)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"site": "atlantis", "storm": STORM, "duration_s": 60}, 404, "atlantis"),
        ({"site": "../merewether", "storm": STORM, "duration_s": 60}, 422, "body.site"),
        ({"site": SITE, "dem": "/etc/passwd", "duration_s": 60}, 422, "body.dem: Extra inputs"),
        ({"site": SITE, "storm": STORM, "duration_s": 60, "cell_m": 0.01}, 422, "body.cell_m"),
        ({"site": SITE, "storm": STORM, "duration_s": 60, "cell_m": 1e-300}, 422, "body.cell_m"),
        ({"site": SITE, "storm": STORM, "duration_s": 60, "cell_m": 1e300}, 422, "body.cell_m"),
        (
            {"site": SITE, "storm": STORM, "duration_s": 60, "record_step_s": 1e-9},
            422,
            "body.record_step_s",
        ),
        ({"site": SITE, "storm": STORM, "duration_s": 1e9}, 422, "body.duration_s"),
        ({"site": SITE, "storm": STORM}, 422, "duration_s is required"),
        ({"site": SITE, "duration_s": 60}, 422, "or at least one inflow"),
        (
            {"site": SITE, "storm": {**STORM, "formula": "atlantis"}, "duration_s": 60},
            400,
            "atlantis",
        ),
        (
            {"site": SITE, "storm": {**STORM, "peak_ratio": 2}, "duration_s": 60},
            422,
            "peak_ratio",
        ),
        (
            {"site": SITE, "duration_s": 60, "inflows": [{"x": 0, "y": 0, "q_m3s": 1}]},
            400,
            "outside the terrain",
        ),
        ({"site": SITE, "network": "bellinge_small", "duration_s": 60}, 400, "no import of"),
        ({"site": SITE, "storm": STORM, "duration_s": 60, "terrain": "x"}, 400, "terrain must"),
    ],
)
def test_hostile_site_drills_are_refused_before_any_job(
    site: Site, body: dict[str, Any], status: int, message: str
) -> None:
    before = len(site.client.get("/jobs", headers=site.headers).json())
    response = site.client.post("/drills/flood", json=body, headers=site.headers)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
    assert len(site.client.get("/jobs", headers=site.headers).json()) == before


def test_drill_files_serve_only_random_names(site: Site) -> None:
    for name in ("..%2F..%2Ft.db", "0" * 32 + ".tiff", "x" * 32 + ".tif"):
        response = site.client.get(f"/drills/files/{name}", headers=site.display)
        assert response.status_code in (404, 422), name
    missing = site.client.get(f"/drills/files/{'0' * 32}.tif", headers=site.display)
    assert missing.status_code == 404


def test_cli_runs_a_site_drill_from_the_store(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--store", str(site.store), "run", "flood", "--site", SITE]
    argv += ["--storm", "shanghai-2017:50:60", "--duration", "1800", "--cell-m", "4"]
    assert main([*argv, "--out-dir", str(tmp_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["crs"] == "EPSG:32756" and result["site"] == SITE
    assert [c["code"] for c in result["closures"]] == [site.road]
    assert {b["code"] for b in result["affected_buildings"]} <= site.buildings
    assert sorted(Path(p).name for p in result["files"]) == [
        "depth.png",
        "max_depth.tif",
        "max_depth_tmax.tif",
    ]
    with rasterio.open(tmp_path / "max_depth.tif") as src:
        assert src.crs.to_epsg() == 32756
    assert main([*argv[:-2], "--cell-m", "0.3", "--json"]) == 1
    assert "cell_m" in capsys.readouterr().err
    assert main([*argv, "--dem", "x.tif", "--json"]) == 2
    assert "exactly one" in capsys.readouterr().err


@pytest.mark.inprocess
def test_closures_from_a_flood_job_close_those_roads_in_the_traffic_drill(
    tmp_path: Path,
) -> None:
    osm = ASSETS / "traffic" / "west_oakland.osm"
    store = open_store(tmp_path / "t.db")
    try:
        import_source(store, osm, site="oakland")
        road_of_way = store.codes_of_source("oakland", osm.name)
    finally:
        store.close()
    network, _ = load_osm_roads(osm, deltan=5)
    way = network.link_codes[0].removeprefix("osm:").split("/")[0]
    road = road_of_way[way]
    settings = Settings(store_url=tmp_path / "t.db")
    headers = {"X-API-Key": KeyStore(settings.store_url).create_key("planner")}
    with TestClient(create_app(settings)) as client:  # looks inside: in process only
        state = client.app.state.twin  # type: ignore[attr-defined]
        # a finished site flood run on oakland (no terrain there yet) closing one road at 600 s
        flooded = {"closures": [{"code": road, "t_start_s": 600.0, "duration_s": None}]}
        job = state.runs.create("drill", "flood", "test", {}, site="oakland")
        assert state.runs.start(job.id, "test") and state.runs.succeed(job.id, flooded)
        body = {
            "site": "oakland",
            "osm": "west_oakland",
            "demand": {"pairs": 20, "seed": 1},
            "closures_from": job.id,
            "tmax_s": 1200,
        }
        started = client.post("/drills/traffic", json=body, headers=headers)
        assert started.status_code == 202, started.text
        done = _wait(
            Site(client, headers, headers, set(), "", tmp_path), started.json()
        )  # same polling
        assert done["state"] == "succeeded", done
        closed = done["result"]["closures"]
        assert closed and all(c["t_start_s"] == 600.0 for c in closed)
        assert {c["link"].split("/")[0] for c in closed} == {f"osm:{way}"}
        tiles = state.jobs.submit("tiles", "test", lambda progress: flooded, {"site": "oakland"})
        assert state.jobs.wait(tiles.id, 10).finished_state
        refused = client.post(
            "/drills/traffic", json={**body, "closures_from": tiles.id}, headers=headers
        )
        assert refused.status_code == 400 and "not a site flood drill" in refused.text


def test_crowd_drill_on_a_cim_object_raises_zone_alerts(twin: Any) -> None:
    body = {"venue": "waterfront", "agents": 2000, "seed": 3}
    body.update(site="denhaag", code=twin.building.code)
    started = twin.client.post("/drills/crowd", json=body, headers=twin.headers("planner"))
    assert started.status_code == 202, started.text
    job = _wait(Site(twin.client, twin.headers("planner"), {}, set(), "", Path()), started.json())
    assert job["state"] == "succeeded", job
    zones = {c["zone"] for c in job["result"]["alerts"]}
    raised = job["result"]["drill_alerts"]
    assert zones and raised["count"] == len(zones) and raised["drill"] == job["id"]
    alerts = twin.client.get(
        "/alerts",
        params={"source": "drill", "prefix": twin.building.code},
        headers=twin.headers("display"),
    ).json()
    mine = [a for a in alerts if a["drill"] == job["id"]]
    assert len(mine) == len(zones) and {a["kind"] for a in mine} == {"crowd-density"}
    assert all(a["objectCode"] == twin.building.code for a in mine)
    assert all("zone " in a["message"] for a in mine)
    assert {a["severity"] for a in mine} <= {"yellow", "orange", "red", "purple"}
    bad = twin.client.post(
        "/drills/crowd", json={**body, "code": "nope"}, headers=twin.headers("planner")
    )
    assert bad.status_code == 404


@pytest.mark.inprocess
def test_a_drill_over_the_cell_limit_is_refused(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scenarios.flood.site

    # Merewether at 1 m is 416 x 321 = 133 536 cells; a limit of 10 000 refuses it, not 4 m
    monkeypatch.setattr(scenarios.flood.site, "MAX_CELLS", 10_000)
    body = {"site": SITE, "storm": STORM, "duration_s": 60, "cell_m": 1}
    refused = site.client.post("/drills/flood", json=body, headers=site.headers)
    assert refused.status_code == 400
    assert "133536 cells is more than 10000" in refused.json()["error"]["message"]
    fine = site.client.post("/drills/flood", json={**body, "cell_m": 4}, headers=site.headers)
    assert fine.status_code == 202 and _wait(site, fine.json())["state"] == "succeeded"


def test_live_rain_of_the_sites_gauges_floods_the_site(site: Site) -> None:
    """A rain gauge on a Merewether house reads 80 then 150 mm/h; the drill rains the mean
    of the site's gauges (one here) as measured over the last 20 min, then held 10 min."""
    from twin.times import format_time, now_us

    keys = KeyStore(site.store)
    admin = {"X-API-Key": keys.create_key("admin")}
    body: dict[str, Any] = {
        "site": SITE,
        "rain": {"live": {"lookback_s": 1200, "forecast_s": 600}},
        "duration_s": 1800,
        "cell_m": 4,
    }
    silent = site.client.post("/drills/flood", json=body, headers=site.headers)
    assert silent.status_code == 400 and "no live rain gauge" in silent.text
    house = sorted(site.buildings)[0]
    thing = thing_body("roof gauge", house, "precipitation intensity", unit="mm/h")
    thing["properties"]["cimSite"] = SITE
    made = site.client.post("/sta/v1.1/Things", json=thing, headers=admin)
    assert made.status_code == 201, made.text
    stream = site.client.get(
        f"/sta/v1.1/Things({made.json()['@iot.id']})/Datastreams", headers=admin
    ).json()["value"][0]["@iot.id"]
    now = now_us()
    for minutes_ago, mm_h in ((15, 80.0), (5, 150.0)):
        reading = {"phenomenonTime": format_time(now - minutes_ago * 60_000_000), "result": mm_h}
        posted = site.client.post(
            f"/sta/v1.1/Datastreams({stream})/Observations", json=reading, headers=admin
        )
        assert posted.status_code == 201, posted.text
    both = site.client.post("/drills/flood", json={**body, "storm": STORM}, headers=site.headers)
    assert both.status_code == 422 and "not both" in both.text
    started = site.client.post("/drills/flood", json=body, headers=site.headers)
    assert started.status_code == 202, started.text
    job = _wait(site, started.json())
    assert job["state"] == "succeeded", job
    result = job["result"]
    (gauge,) = result["rain"]["gauges"].values()
    assert gauge["code"] == house and gauge["latest_mm_h"] == 150.0 and gauge["readings"] == 2
    # dry, then 80 mm/h for 10 min, 150 for the last 5 and the 10 held: 50.8 mm
    assert result["summary"]["rain_mm"] == pytest.approx(80 / 6 + 150 / 4, rel=1e-9)
    assert result["surface"]["inflow_m3"] > 0
    assert result["affected_buildings"]
