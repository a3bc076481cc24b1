"""A unit pilot's dashboard on a real building from IFC placed in Den Haag."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from live_helpers import thing_body

from api.app import create_app
from api.keys import KeyStore
from api.settings import Settings
from cim.importer import import_source
from cim.loaders import LoadOptions
from cim.model import CimObject
from cim.store import open_store
from twin.times import format_time, now_us

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r".*httpx2")
    from fastapi.testclient import TestClient

ASSETS = Path(__file__).parents[2] / "assets"
SITE = "denhaag"


@dataclass
class Unit:
    client: TestClient
    keys: dict[str, str]
    building: CimObject
    spaces: list[CimObject]
    other: CimObject

    def h(self, role: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[role]}


@pytest.fixture(scope="module")
def unit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Unit]:
    path = tmp_path_factory.mktemp("unit") / "t.db"
    store = open_store(path)
    try:
        import_source(store, ASSETS / "denhaag_01" / "denhaag_01_lod2.city.json", site=SITE)
        import_source(
            store,
            ASSETS / "ifc" / "Duplex_A_20110907.ifc",
            site=SITE,
            options=LoadOptions(at=(78600.0, 457900.0, 30.0)),
        )
        (building,) = store.by_kind(SITE, "IfcBuilding")
        spaces = sorted(store.by_kind(SITE, "IfcSpace"), key=lambda o: o.code)
        other = sorted(store.by_kind(SITE, "Building"), key=lambda o: o.code)[0]
    finally:
        store.close()
    settings = Settings(store_url=path)
    keystore = KeyStore(settings.keys_path)
    keys = {r: keystore.create_key(r) for r in ("admin", "planner", "device")}
    keys["pilot"] = keystore.create_key("pilot", [building.code])
    keys["other_pilot"] = keystore.create_key("pilot", [other.code])
    with TestClient(create_app(settings)) as client:
        yield Unit(client, keys, building, spaces, other)


def test_dashboard_counts_the_building_its_sensors_people_alerts_and_cases(unit: Unit) -> None:
    rule = {
        "name": "crowded room",
        "kind": "high",
        "levels": [[10, "yellow"]],
        "observed_property": "people count",
        "code_prefix": unit.building.code,
        "open_case": {"class_code": "0601", "unit": "building management", "urgency": "high"},
    }
    assert unit.client.post("/rules", json=rule, headers=unit.h("planner")).status_code == 201
    for space, people in zip(unit.spaces[:2], (12, 8), strict=True):
        body = thing_body(space.name or space.code, space.code, "people count", unit="persons")
        body["properties"]["cimSite"] = SITE
        made = unit.client.post("/sta/v1.1/Things", json=body, headers=unit.h("admin"))
        assert made.status_code == 201, made.text
        streams = unit.client.get(
            f"/sta/v1.1/Things({made.json()['@iot.id']})/Datastreams", headers=unit.h("admin")
        ).json()["value"]
        reading = {"phenomenonTime": format_time(now_us() - 1_000_000), "result": people}
        posted = unit.client.post(
            f"/sta/v1.1/Datastreams({streams[0]['@iot.id']})/Observations",
            json=reading,
            headers=unit.h("device"),
        )
        assert posted.status_code == 201, posted.text

    board = unit.client.get(
        f"/sites/{SITE}/units/{unit.building.code}/dashboard", headers=unit.h("pilot")
    ).json()
    assert board["unit"]["kind"] == "IfcBuilding"
    assert board["objects"]["IfcBuildingStorey"] == 4
    assert board["objects"]["IfcSpace"] == 21
    assert board["objects"]["IfcDoor"] == 14
    elevations = [s["elevation_m"] for s in board["storeys"]]
    assert len(elevations) == 4 and elevations == sorted(elevations)
    assert board["sensors"] == board["sensorsOnline"] == 2
    assert board["occupancy"] == pytest.approx(20.0)
    assert board["activeAlerts"] == {"yellow": 1}
    assert board["openCases"] == 1 and board["casesByState"] == {"reported": 1}
    assert board["cases"][0]["unit"] == "building management"
    assert board["extremes"]["people count"] == {"min": 8.0, "max": 12.0, "reporting": 2}
    # each sensor sits in its room, with its latest value, for the unit page to draw
    placed = {s["code"]: s for s in board["sensorList"]}
    assert sorted(placed) == sorted(s.code for s in unit.spaces[:2])
    assert {placed[s.code]["value"] for s in unit.spaces[:2]} == {12.0, 8.0}
    assert all(
        s["online"] and s["observedProperty"] == "people count" and s["unit"] == "persons"
        for s in placed.values()
    )


def test_dashboard_is_the_units_own(unit: Unit) -> None:
    path = f"/sites/{SITE}/units/{unit.building.code}/dashboard"
    assert unit.client.get(path, headers=unit.h("other_pilot")).status_code == 404
    assert unit.client.get(path).status_code == 401
    assert unit.client.get(path, headers=unit.h("device")).status_code == 403
    other = f"/sites/{SITE}/units/{unit.other.code}/dashboard"
    assert unit.client.get(other, headers=unit.h("pilot")).status_code == 404
    board = unit.client.get(other, headers=unit.h("other_pilot")).json()
    assert board["sensors"] == 0 and board["occupancy"] is None and board["alerts"] == []
    assert board["sensorList"] == []


def test_each_storey_is_its_own_valid_scene(unit: Unit, tmp_path: Path) -> None:
    import json
    import struct

    from tests.render.gltf_validator import assert_valid

    board = unit.client.get(
        f"/sites/{SITE}/units/{unit.building.code}/dashboard", headers=unit.h("pilot")
    ).json()
    files = []
    for storey in board["storeys"]:
        response = unit.client.get(
            f"/sites/{SITE}/objects/{storey['code']}/scene.glb", headers=unit.h("pilot")
        )
        assert response.status_code == 200
        length = struct.unpack_from("<I", response.content, 12)[0]
        document = json.loads(response.content[20 : 20 + length])
        codes = {n["extras"]["code"] for n in document["nodes"] if "code" in n.get("extras", {})}
        assert codes and all(c.startswith(storey["code"]) for c in codes)
        files.append(tmp_path / f"{storey['code']}.glb")
        files[-1].write_bytes(response.content)
    assert len(files) == 4
    assert_valid(files)


def test_exploded_view_lifts_each_storey_by_the_gap(unit: Unit, tmp_path: Path) -> None:
    from render.glb import read_glb
    from tests.render.gltf_validator import assert_valid

    path = f"/sites/{SITE}/objects/{unit.building.code}/scene.glb"
    plain = unit.client.get(path, headers=unit.h("pilot"))
    exploded = unit.client.get(f"{path}?explode=4", headers=unit.h("pilot"))
    assert plain.status_code == exploded.status_code == 200
    assert plain.headers["ETag"] != exploded.headers["ETag"]

    def storey_heights(glb: bytes) -> list[float]:
        gltf, _ = read_glb(glb)
        nodes = [n for n in gltf["nodes"] if n.get("extras", {}).get("kind") == "IfcBuildingStorey"]
        nodes.sort(key=lambda n: float(n["extras"]["attributes"].get("Elevation") or 0))
        return [n.get("translation", [0, 0, 0])[1] for n in nodes]

    before, after = storey_heights(plain.content), storey_heights(exploded.content)
    assert len(after) == 4
    assert [b - a for a, b in zip(before, after, strict=True)] == pytest.approx([0, 4, 8, 12])
    (tmp_path / "exploded.glb").write_bytes(exploded.content)
    assert_valid([tmp_path / "exploded.glb"])
    bad = unit.client.get(f"{path}?explode=-1", headers=unit.h("pilot"))
    assert bad.status_code == 422
