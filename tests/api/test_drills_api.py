"""Drills over HTTP: started as jobs from named server-side inputs, checked before they start."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from denhaag_twin import TestClient, Twin


def _finished(twin: Twin, job: dict[str, Any]) -> dict[str, Any]:
    return _wait_job(twin.client, twin.headers("planner"), job)


def _wait_job(client: TestClient, headers: dict[str, str], job: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while job["state"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
        job = client.get(f"/runs/{job['id']}", headers=headers).json()
    return job


def test_drills_list_their_named_inputs(twin: Twin) -> None:
    drills = twin.client.get("/drills", headers=twin.headers("display")).json()
    traffic = next(d for d in drills if d["name"] == "traffic")
    assert "tokyo_arterial" in traffic["inputs"]


def test_traffic_drill_with_a_closure_runs_as_a_job(twin: Twin) -> None:
    base = twin.client.post(
        "/drills/traffic", json={"network": "tokyo_arterial"}, headers=twin.headers("planner")
    )
    assert base.status_code == 202
    assert base.headers["Location"] == f"/runs/{base.json()['id']}"
    before = _finished(twin, base.json())
    assert before["state"] == "succeeded", before
    assert before["progress"] == 1.0
    flows = before["result"]["series"]["flow_vps"]
    totals = [sum(row[i] for row in flows) for i in range(len(flows[0]))]
    busiest = max(range(len(totals)), key=totals.__getitem__)
    assert totals[busiest] > 0
    road = before["result"]["links"]["names"][busiest]
    closed = twin.client.post(
        "/drills/traffic",
        json={"network": "tokyo_arterial", "closures": [{"link": road, "t_start_s": 0}]},
        headers=twin.headers("planner"),
    )
    assert closed.status_code == 202, closed.text
    after = _finished(twin, closed.json())
    assert after["state"] == "succeeded", after
    assert after["result"]["summary"]["vehicles"] == before["result"]["summary"]["vehicles"] > 0
    # the closed road carries nothing; its traffic went elsewhere or waits
    assert sum(row[busiest] for row in after["result"]["series"]["flow_vps"]) == 0
    assert [c["link"] for c in after["result"]["closures"]] == [road]
    # metering the same road to 0.02 veh/s holds its outflow there
    metered = twin.client.post(
        "/drills/traffic",
        json={
            "network": "tokyo_arterial",
            "meterings": [{"link": road, "t_start_s": 0, "rate_vps": 0.02}],
        },
        headers=twin.headers("planner"),
    )
    held = _finished(twin, metered.json())
    assert held["state"] == "succeeded", held
    series = held["result"]["series"]
    step = series["times_s"][1] - series["times_s"][0]
    passed = sum(row[busiest] for row in series["flow_vps"]) * step
    # at most the metered rate over the run, plus one platoon of 5 vehicles
    assert 0 < passed <= 0.02 * series["times_s"][-1] + 5 < totals[busiest] * step


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"network": "../traffic/tokyo_arterial"}, 422, "body.network"),
        ({"network": "nowhere"}, 404, "tokyo_arterial"),
        ({"network": "tokyo_arterial", "tmax_s": -5}, 422, "body.tmax_s"),
        (
            {"network": "tokyo_arterial", "closures": [{"link": "no-such-road", "t_start_s": 0}]},
            400,
            "no-such-road",
        ),
        ({"network": "tokyo_arterial", "speed": 3}, 422, "body.speed: Extra inputs"),
        (
            {
                "network": "tokyo_arterial",
                "meterings": [{"link": "zz", "t_start_s": 0, "rate_vps": 1}],
            },
            400,
            "no link named 'zz'",
        ),
        (
            {"network": "tokyo_arterial", "meterings": [{"link": "zz", "t_start_s": 0}]},
            422,
            "body.meterings.0.rate_vps",
        ),
    ],
)
def test_bad_drill_requests_are_refused_before_any_job(
    twin: Twin, body: dict[str, Any], status: int, message: str
) -> None:
    jobs_before = len(twin.client.get("/jobs", headers=twin.headers("admin")).json())
    response = twin.client.post("/drills/traffic", json=body, headers=twin.headers("planner"))
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
    assert len(twin.client.get("/jobs", headers=twin.headers("admin")).json()) == jobs_before


def test_only_planners_start_drills(twin: Twin) -> None:
    for role in ("display", "pilot", "device"):
        response = twin.client.post(
            "/drills/traffic", json={"network": "tokyo_arterial"}, headers=twin.headers(role)
        )
        assert response.status_code == 403, role
    assert (
        twin.client.post("/drills/nope", json={}, headers=twin.headers("admin")).status_code == 404
    )


def test_site_traffic_drill_colours_the_roads_and_closes_a_road_by_its_code(
    tmp_path: Path,
) -> None:
    from api.app import create_app
    from api.keys import KeyStore
    from api.settings import Settings
    from cim.importer import import_source
    from cim.store import open_store

    osm = Path(__file__).parents[2] / "assets" / "traffic" / "west_oakland.osm"
    store = open_store(tmp_path / "t.db")
    try:
        import_source(store, osm, site="oakland")
        roads = {r.source_id: r.code for r in store.by_kind("oakland", "Road")}
    finally:
        store.close()
    settings = Settings(store_url=tmp_path / "t.db")
    headers = {"X-API-Key": KeyStore(settings.keys_path).create_key("planner")}
    with TestClient(create_app(settings)) as client:
        body = {"site": "oakland", "osm": "west_oakland", "demand": {"pairs": 60, "seed": 1}}
        started = client.post("/drills/traffic", json=body, headers=headers)
        base = _wait_job(client, headers, started.json())
        assert base["state"] == "succeeded", base
        layer = client.get("/sites/oakland/layers/traffic-grade", headers=headers).json()
        assert layer["count"] > 0
        assert set(layer["values"]) <= set(roads.values())
        assert set(layer["values"].values()) <= {0.0, 1.0, 2.0, 3.0, 4.0}
        # close the busiest road by its CIM code: every link of it closes, and it goes idle
        flows = base["result"]["series"]["flow_vps"]
        codes = base["result"]["links"]["codes"]
        totals: dict[str, float] = {}
        for i, code in enumerate(codes):
            way = code.removeprefix("osm:").split("/")[0]
            totals[way] = totals.get(way, 0.0) + sum(row[i] for row in flows)
        busiest = max(totals, key=totals.__getitem__)
        closed_body = {**body, "closures": [{"link": roads[busiest], "t_start_s": 0}]}
        started = client.post("/drills/traffic", json=closed_body, headers=headers)
        assert started.status_code == 202, started.text
        closed = _wait_job(client, headers, started.json())
        assert closed["state"] == "succeeded", closed
        closed_links = [c["link"] for c in closed["result"]["closures"]]
        assert closed_links and all(c.startswith(f"osm:{busiest}/") for c in closed_links)
        index = [i for i, c in enumerate(codes) if c in closed_links]
        assert sum(row[i] for row in closed["result"]["series"]["flow_vps"] for i in index) == 0
        missing = client.post("/drills/traffic", json={**body, "site": "nowhere"}, headers=headers)
        assert missing.status_code == 404
        not_imported = client.post(
            "/drills/traffic", json={**body, "osm": "helsinki_center"}, headers=headers
        )
        assert not_imported.status_code == 400
        assert "import it first" in not_imported.json()["error"]["message"]


def test_flood_drill_with_a_design_storm_runs_as_a_job(twin: Twin) -> None:
    drills = {
        d["name"]: d for d in twin.client.get("/drills", headers=twin.headers("display")).json()
    }
    assert "bellinge_small" in drills["flood"]["inputs"]
    body = {
        "network": "bellinge_small",
        "storm": {"formula": "shanghai-2017", "return_period_a": 5, "duration_min": 120},
        "duration_s": 3 * 3600,
    }
    started = twin.client.post("/drills/flood", json=body, headers=twin.headers("planner"))
    assert started.status_code == 202, started.text
    job = _finished(twin, started.json())
    assert job["state"] == "succeeded", job
    summary = job["result"]["summary"]
    # the Shanghai 5-year storm floods Bellinge (SWMM 5.2 gives 944 m3 on the full event)
    assert summary["total_flood_volume_m3"] > 0
    assert summary["flooded_nodes"]
    assert abs(summary["continuity_error_pct"]) < 5
    bad = twin.client.post(
        "/drills/flood",
        json={**body, "storm": {"formula": "atlantis", "return_period_a": 5, "duration_min": 60}},
        headers=twin.headers("planner"),
    )
    assert bad.status_code == 400, bad.text


def _crowd_drill(twin: Twin, body: dict[str, Any]) -> dict[str, Any]:
    """Run a crowd drill as a planner to success; its result."""
    started = twin.client.post("/drills/crowd", json=body, headers=twin.headers("planner"))
    assert started.status_code == 202, started.text
    job = _finished(twin, started.json())
    assert job["state"] == "succeeded", job
    result: dict[str, Any] = job["result"]
    return result


def test_crowd_drill_with_an_exit_closed_and_its_density_map(twin: Twin) -> None:
    def drill(body: dict[str, Any]) -> dict[str, Any]:
        return _crowd_drill(twin, body)

    base = {"venue": "waterfront", "agents": 2000, "seed": 3}
    open_all = drill(base)
    closed = drill({**base, "measures": [{"exit": 1, "at_s": 0, "rate_pps": 0}]})
    assert open_all["summary"]["agents"] == closed["summary"]["agents"] == 2000
    assert closed["summary"]["exit_flows"]["1"] == 0 < open_all["summary"]["exit_flows"]["1"]
    assert closed["summary"]["evacuation_time_s"] >= open_all["summary"]["evacuation_time_s"]
    png = twin.client.get(open_all["density_png"], headers=twin.headers("display"))
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    for bad, status in (
        ({"venue": "../crowd/waterfront", "agents": 10}, 422),
        ({"venue": "waterfront", "agents": 0}, 422),
        ({"venue": "waterfront", "agents": 10, "density_png": "/etc/x.png"}, 422),
    ):
        response = twin.client.post("/drills/crowd", json=bad, headers=twin.headers("planner"))
        assert response.status_code == status, (bad, response.text)
    run_id = png.url.path.split("/")[2]
    for hostile in ("..%2F..%2Ft.db", "..%2Fr_other%2Fdensity.png", "density.PNG", "x.exe"):
        traversal = twin.client.get(
            f"/runs/{run_id}/files/{hostile}", headers=twin.headers("admin")
        )
        assert traversal.status_code in (404, 422), hostile


def test_crowd_drill_with_a_one_way_corridor(twin: Twin) -> None:
    def drill(body: dict[str, Any]) -> dict[str, Any]:
        return _crowd_drill(twin, body)

    # the southern strip of the waterfront, x 150..160, walkable westward only from 0 s:
    # the people west of it can no longer reach exit 4 at the strip's east end
    strip = [[150, 0], [160, 0], [160, 11.5], [150, 11.5]]
    base = {"venue": "waterfront", "agents": 1500, "seed": 2}
    free = drill(base)
    one_way = drill(
        {**base, "measures": [{"one_way": {"polygon": strip, "bearing_deg": 270, "at_s": 0}}]}
    )
    flows, free_flows = one_way["summary"]["exit_flows"], free["summary"]["exit_flows"]
    assert one_way["evacuated"] == 1500 and one_way["trapped"] == 0
    assert flows["4"] < free_flows["4"]
    assert sum(flows.values()) == 1500
    for measure, status, message in (
        (
            {"polygon": [[500, 500], [510, 500], [510, 510]], "bearing_deg": 0},
            400,
            "does not overlap",
        ),
        ({"polygon": strip, "bearing_deg": "west"}, 422, "one_way.bearing_deg: Input should be"),
        ({"polygon": [[0, 0], [2, 2], [2, 0], [0, 2]], "bearing_deg": 0}, 400, "not a valid area"),
        ({"polygon": strip}, 422, "one_way.bearing_deg: Field required"),
        ({"polygon": strip, "bearing_deg": 0, "colour": "red"}, 422, "colour: Extra inputs"),
    ):
        response = twin.client.post(
            "/drills/crowd",
            json={**base, "measures": [{"one_way": measure}]},
            headers=twin.headers("planner"),
        )
        assert response.status_code == status, (measure, response.text)
        assert message in response.text, response.text
