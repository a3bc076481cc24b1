"""A drainage drill on a network imported into the CIM (Bellinge, Denmark): nodes by code,
the node-depth layer, drill alerts on overflowing manholes, and rain from the twin's live
gauges — what the gauge measured in the last half hour, then held ("this storm, now")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from served import Client, app_client

from api.keys import KeyStore
from api.settings import Settings
from cim.importer import import_source
from cim.loaders import LoadOptions
from cim.store import open_store
from tests.live.live_helpers import thing_body
from twin.times import format_time, now_us

#: also against the real multi-process server (``make test-served``)
pytestmark = pytest.mark.served

ASSETS = Path(__file__).parents[2] / "assets"
SITE = "bellinge"
STORM = {"formula": "shanghai-2017", "return_period_a": 5, "duration_min": 60}


@dataclass(frozen=True)
class Net:
    client: Client
    planner: dict[str, str]
    device: dict[str, str]
    admin: dict[str, str]
    codes: dict[str, str]  # SWMM name -> code
    gauge: str


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    path = tmp_path_factory.mktemp("bellinge") / "t.db"
    store = open_store(path)
    try:
        import_source(
            store,
            ASSETS / "swmm" / "bellinge_small.inp",
            site=SITE,
            options=LoadOptions(crs="EPSG:32632"),
        )
        objects = store.all_objects(SITE)
        codes = {
            str(o.attributes["swmm_name"]): o.code for o in objects if "swmm_name" in o.attributes
        }
        (gauge,) = (o.code for o in objects if o.kind == "RainGage")
    finally:
        store.close()
    settings = Settings(store_url=path)
    keys = KeyStore(settings.store_url)
    planner = {"X-API-Key": keys.create_key("planner")}
    device = {"X-API-Key": keys.create_key("device")}
    admin = {"X-API-Key": keys.create_key("admin")}
    with app_client(settings) as client:
        yield Net(client, planner, device, admin, codes, gauge)


def _run(net: Net, body: dict[str, Any]) -> dict[str, Any]:
    started = net.client.post("/drills/flood", json=body, headers=net.planner)
    assert started.status_code == 202, started.text
    job = started.json()
    deadline = time.monotonic() + 300
    while job["state"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
        job = net.client.get(f"/runs/{job['id']}", headers=net.planner).json()
    assert job["state"] == "succeeded", job
    return dict(job["result"])


def _gauge_stream(net: Net, code: str, unit: str = "mm/h") -> int:
    thing = thing_body("rain gauge 1", code, "rainfall intensity", unit=unit)
    thing["properties"]["cimSite"] = SITE
    made = net.client.post("/sta/v1.1/Things", json=thing, headers=net.admin)
    assert made.status_code == 201, made.text
    streams = net.client.get(
        f"/sta/v1.1/Things({made.json()['@iot.id']})/Datastreams", headers=net.admin
    ).json()["value"]
    return int(streams[0]["@iot.id"])


def test_nodes_come_back_by_code_with_a_layer_and_drill_alerts(net: Net) -> None:
    result = _run(
        net, {"network": "bellinge_small", "site": SITE, "storm": STORM, "duration_s": 3 * 3600}
    )
    nodes = result["nodes_by_code"]
    assert nodes and set(nodes) <= set(net.codes.values())
    assert {n["swmm"] for n in nodes.values()} == set(result["node_max_depth_m"])
    assert all(net.codes[n["swmm"]] == code for code, n in nodes.items())
    flooded = {code for code, n in nodes.items() if n["flood_volume_m3"] > 0}
    assert flooded, "the Shanghai 5-year storm floods Bellinge (SWMM agrees)"
    layer = net.client.get(f"/sites/{SITE}/layers/flood-network-depth", headers=net.planner)
    assert layer.status_code == 200 and set(layer.json()["values"]) == set(nodes)
    alerts = net.client.get("/alerts", params={"source": "drill"}, headers=net.planner).json()
    assert {a["objectCode"] for a in alerts if a["kind"] == "node-flooding"} == flooded
    assert result["rain"] == {"live": False}


def test_live_gauge_rain_drives_the_drill(net: Net) -> None:
    stream = _gauge_stream(net, net.gauge)
    now = now_us()
    for minutes_ago, mm_h in ((25, 0.0), (15, 40.0), (5, 90.0), (1, 120.0)):
        reading = {"phenomenonTime": format_time(now - minutes_ago * 60_000_000), "result": mm_h}
        posted = net.client.post(
            f"/sta/v1.1/Datastreams({stream})/Observations", json=reading, headers=net.device
        )
        assert posted.status_code == 201, posted.text
    body: dict[str, Any] = {
        "network": "bellinge_small",
        "site": SITE,
        "rain": {"live": {"lookback_s": 1800, "forecast_s": 1800}},
    }
    held = _run(net, body)
    gauge = held["rain"]["gauges"]["1"]
    assert held["rain"]["live"] and gauge["code"] == net.gauge
    assert gauge["readings"] == 4 and gauge["latest_mm_h"] == 120.0
    # without the persisted half hour the same measurements give less water
    body["rain"]["live"]["forecast_s"] = 0
    measured = _run(net, body)
    (outfall,) = held["summary"]["outfall_peak_flow_m3s"]
    peak = held["summary"]["outfall_peak_flow_m3s"][outfall]
    assert peak > measured["summary"]["outfall_peak_flow_m3s"][outfall] > 0
    assert held["summary"]["total_flood_volume_m3"] >= measured["summary"]["total_flood_volume_m3"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"network": "bellinge_small", "rain": {"live": {}}}, 422, "needs the site"),
        ({"network": "model_state_plane", "site": SITE}, 400, "no import of"),
        ({"network": "bellinge_small", "site": "nowhere"}, 404, "nowhere"),
        (
            {"network": "bellinge_small", "site": SITE, "rain": {"live": {"lookahead": 1}}},
            422,
            "body.rain.live.lookahead: Extra inputs",
        ),
        (
            {"network": "bellinge_small", "site": SITE, "storm": STORM, "rain": {"live": {}}},
            422,
            "not both",
        ),
    ],
)
def test_bad_network_site_bodies_are_refused(
    net: Net, body: dict[str, Any], status: int, message: str
) -> None:
    response = net.client.post("/drills/flood", json=body, headers=net.planner)
    assert response.status_code == status, response.text
    assert message in response.text


def test_a_gauge_in_the_wrong_unit_is_named(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store = open_store(path)
    try:
        import_source(
            store,
            ASSETS / "swmm" / "bellinge_small.inp",
            site=SITE,
            options=LoadOptions(crs="EPSG:32632"),
        )
        (gauge,) = (o.code for o in store.by_kind(SITE, "RainGage"))
    finally:
        store.close()
    settings = Settings(store_url=path)
    keys = KeyStore(settings.store_url)
    planner = {"X-API-Key": keys.create_key("planner")}
    admin = {"X-API-Key": keys.create_key("admin")}
    with app_client(settings) as client:
        other = Net(client, planner, planner, admin, {}, gauge)
        body = {"network": "bellinge_small", "site": SITE, "rain": {"live": {}}}
        silent = client.post("/drills/flood", json=body, headers=planner)
        assert silent.status_code == 400 and "no live rain datastream" in silent.text
        _gauge_stream(other, gauge, unit="in/h")
        wrong = client.post("/drills/flood", json=body, headers=planner)
        assert wrong.status_code == 400 and "not mm/h" in wrong.text
