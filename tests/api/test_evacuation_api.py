"""The building evacuation over HTTP: a job on an imported IFC building, a density layer."""

from __future__ import annotations

import time
from collections.abc import Iterator
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

#: also against the real multi-process server (``make test-served``)
pytestmark = pytest.mark.served

pytest.importorskip("ifcopenshell")

DUPLEX = Path(__file__).resolve().parents[2] / "assets" / "ifc" / "Duplex_A_20110907.ifc"
SITE = "campus"


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Client, dict[str, dict[str, str]], str, dict[str, str]]]:
    """(client, headers per role, building code, storey code by name)."""
    path = tmp_path_factory.mktemp("evac-api") / "t.db"
    store = open_store(path)
    try:
        import_source(
            store,
            DUPLEX,
            site=SITE,
            options=LoadOptions(at=(85000.0, 446000.0, 30.0), crs="EPSG:28992"),
        )
        (building,) = store.by_kind(SITE, "IfcBuilding")
        storeys = {o.name: o.code for o in store.by_kind(SITE, "IfcBuildingStorey")}
    finally:
        store.close()
    settings = Settings(store_url=path)
    keys = KeyStore(settings.store_url)
    headers = {
        role: {"X-API-Key": keys.create_key(role, name=role)}
        for role in ("admin", "planner", "display", "device")
    }
    headers["pilot"] = {"X-API-Key": keys.create_key("pilot", [building.code], name="pilot")}
    with app_client(settings) as client:
        yield client, headers, building.code, storeys


def _items(answer: Any) -> list[dict[str, Any]]:
    return list(answer["objects"] if isinstance(answer, dict) else answer)


def _wait(client: Client, headers: dict[str, str], job: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while job["state"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
        job = client.get(f"/runs/{job['id']}", headers=headers).json()
    return job


def test_evacuation_runs_as_a_job_and_leaves_a_density_layer(
    served: tuple[Client, dict[str, dict[str, str]], str, dict[str, str]],
) -> None:
    client, headers, building, storeys = served
    body = {
        "site": SITE,
        "building": building,
        "load_pm2": 0.5,
        "measures": [{"stage": storeys["Level 2"], "at_s": 20}],
    }
    started = client.post("/drills/evacuation", json=body, headers=headers["planner"])
    assert started.status_code == 202, started.text
    job = _wait(client, headers["planner"], started.json())
    assert job["state"] == "succeeded", job
    assert job["progress"] == 1.0
    result = job["result"]
    assert result["summary"]["everyone_out"] and result["summary"]["people"] > 50
    upstairs = next(s for s in result["storeys"] if s["name"] == "Level 2")
    assert upstairs["clear_s"] > 20
    layer = client.get(
        f"/sites/{SITE}/layers/evacuation-density", headers=headers["display"]
    ).json()
    assert layer["values"] == pytest.approx(result["max_density_pm2"])
    assert all(code.startswith(building) for code in layer["values"])


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"building": "123"}, 404, "no building '123'"),
        ({"site": "nowhere"}, 404, "nowhere"),
        ({"measures": [{"close": "42"}]}, 400, "not a door or stair"),
        ({"per_space": 3}, 422, "give live or one of"),
        ({"speed": 2}, 422, "body.speed: Extra inputs"),
    ],
)
def test_bad_requests_are_refused_before_a_job_starts(
    served: tuple[Client, dict[str, dict[str, str]], str, dict[str, str]],
    change: dict[str, Any],
    status: int,
    message: str,
) -> None:
    client, headers, building, _ = served
    body = {"site": SITE, "building": building, "load_pm2": 0.5, **change}
    answer = client.post("/drills/evacuation", json=body, headers=headers["planner"])
    assert answer.status_code == status, answer.text
    assert message in answer.text


def test_a_pilot_runs_the_evacuation_of_its_own_building_only(
    served: tuple[Client, dict[str, dict[str, str]], str, dict[str, str]],
) -> None:
    client, headers, building, _ = served
    pilot = headers["pilot"]
    body = {"site": SITE, "building": building, "load_pm2": 0.2}
    started = client.post("/drills/evacuation", json=body, headers=pilot)
    assert started.status_code == 202, started.text
    job = started.json()["id"]
    for _ in range(600):
        state = client.get(f"/runs/{job}", headers=pilot).json()
        if state["state"] in ("succeeded", "failed"):
            break
        time.sleep(0.05)
    assert state["state"] == "succeeded", state
    assert state["result"]["summary"]["everyone_out"] is True
    # a drill run is a record of the city: planners see the pilot's run too; the pilot
    # sees it in its list, and not the planners' runs of other drills
    assert client.get(f"/runs/{job}", headers=headers["planner"]).status_code == 200
    traffic = client.post(
        "/drills/traffic", json={"network": "tokyo_arterial"}, headers=headers["planner"]
    ).json()["id"]
    listed = [r["id"] for r in client.get("/runs", headers=pilot).json()["runs"]]
    assert job in listed and traffic not in listed
    assert client.get(f"/runs/{traffic}", headers=pilot).status_code == 404
    assert client.delete(f"/runs/{traffic}", headers=pilot).status_code == 404
    # another building, another drill, or a display key: refused
    other = {"site": SITE, "building": "990100001001999010001"}
    assert client.post("/drills/evacuation", json=other, headers=pilot).status_code == 404
    crowd = {"venue": "waterfront", "agents": 10}
    assert client.post("/drills/crowd", json=crowd, headers=pilot).status_code == 403
    display = headers["display"]
    assert client.post("/drills/evacuation", json=body, headers=display).status_code == 403


def test_live_people_counts_of_the_rooms_are_the_occupants(
    served: tuple[Client, dict[str, dict[str, str]], str, dict[str, str]],
) -> None:
    from twin.times import format_time, now_us

    client, headers, building, _ = served
    answer = client.post(
        "/drills/evacuation",
        json={"site": SITE, "building": building, "live": True},
        headers=headers["planner"],
    )
    assert answer.status_code == 400 and "no people count" in answer.text
    rooms = client.get(
        f"/sites/{SITE}/objects?prefix={building}&kind=IfcSpace", headers=headers["admin"]
    )
    assert rooms.status_code == 200, rooms.text
    room = sorted(o["code"] for o in _items(rooms.json()) if o["name"].startswith("A1"))[0]
    thing = thing_body("people counter", room, "people count", unit="persons")
    thing["properties"]["cimSite"] = SITE
    made = client.post("/sta/v1.1/Things", json=thing, headers=headers["admin"])
    assert made.status_code == 201, made.text
    streams = client.get(
        f"/sta/v1.1/Things({made.json()['@iot.id']})/Datastreams", headers=headers["admin"]
    ).json()["value"]
    posted = client.post(
        f"/sta/v1.1/Datastreams({streams[0]['@iot.id']})/Observations",
        json={"phenomenonTime": format_time(now_us() - 1_000_000), "result": 9},
        headers=headers["device"],
    )
    assert posted.status_code == 201, posted.text
    started = client.post(
        "/drills/evacuation",
        json={"site": SITE, "building": building, "live": True},
        headers=headers["planner"],
    )
    assert started.status_code == 202, started.text
    job = _wait(client, headers["planner"], started.json())
    assert job["state"] == "succeeded", job
    assert job["result"]["occupants"] == {room: 9}
    assert job["result"]["summary"]["everyone_out"]
