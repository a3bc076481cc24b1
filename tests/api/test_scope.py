"""A unit pilot reaches nothing outside its site and unit, through any operation.

The store holds two sites, as the samples do: Den Haag and Merewether. Before codes were
unique in the store, both sites' first community was ``990100001001`` and 79 unit codes
existed in both, so a Den Haag building's pilot read a Merewether house. Here an admin
gives the other unit and the other site sensors with a secret property, readings, a rule,
a case and layers; then the walker calls every read operation of the OpenAPI document
with a pilot key, its path parameters filled with the other unit's and the other site's
names, codes and ids, and asserts that no answer carries any of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from served import Client, app_client
from starlette.websockets import WebSocketDisconnect

from api.keys import KeyStore
from api.settings import Settings
from cim.importer import import_source
from cim.loaders import LoadOptions
from cim.store import open_store

pytestmark = pytest.mark.served

ROOT = Path(__file__).resolve().parents[2]
DENHAAG = ROOT / "assets" / "denhaag_01" / "denhaag_01_lod2.city.json"
HOUSES = ROOT / "assets" / "merewether" / "merewether_houses_epsg32756.geojson"
SECRET = "zq-secret-of-the-other-unit"


@dataclass
class Walk:
    client: Client
    admin: dict[str, str]
    pilot: dict[str, str]
    mine: str  # the pilot's building (Den Haag)
    other: str  # another Den Haag building
    house: str  # a Merewether house
    fills: dict[str, list[str]]  # path parameter -> the other unit's / site's values
    forbidden: list[str]  # what no answer to the pilot may carry
    store: Path


def _thing(
    client: Client, admin: dict[str, str], site: str, code: str, tag: str, secret: str = SECRET
) -> int:
    body = {
        "name": f"{tag} box",
        "description": f"{tag} sensor box",
        "properties": {"cimCode": code, "cimSite": site, "secret": f"{tag}-{secret}"},
        "Locations": [
            {
                "name": f"{tag} location",
                "description": "where it stands",
                "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [151.75, -32.94]},
            }
        ],
        "Datastreams": [
            {
                "name": f"{tag} depth",
                "description": f"water depth at {tag}",
                "unitOfMeasurement": {"name": "m", "symbol": "m", "definition": "urn:m"},
                "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/"
                "OM_Measurement",
                "Sensor": {
                    "name": f"{tag} sensor",
                    "description": f"{tag} gauge",
                    "encodingType": "text/plain",
                    "metadata": f"{tag} metadata",
                },
                "ObservedProperty": {
                    "name": f"{tag} water depth",
                    "definition": f"urn:{tag}:depth",
                    "description": f"{tag} property",
                },
            }
        ],
    }
    created = client.post("/sta/v1.1/Things", json=body, headers=admin)
    assert created.status_code == 201, created.text
    thing = created.json()["@iot.id"]
    found = client.get(f"/sta/v1.1/Things({thing})/Datastreams", headers=admin).json()
    ds = int(found["value"][0]["@iot.id"])
    feature = {
        "name": f"{tag} feature",
        "description": f"{tag} foi",
        "encodingType": "application/geo+json",
        "feature": {"type": "Point", "coordinates": [151.75, -32.94]},
    }
    foi = client.post("/sta/v1.1/FeaturesOfInterest", json=feature, headers=admin)
    assert foi.status_code == 201, foi.text
    reading = {
        "phenomenonTime": "2026-12-08T01:00:00Z",
        "result": 0.7,
        "FeatureOfInterest": {"@iot.id": foi.json()["@iot.id"]},
    }
    posted = client.post(f"/sta/v1.1/Datastreams({ds})/Observations", json=reading, headers=admin)
    assert posted.status_code == 201, posted.text
    return ds


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    path = tmp_path_factory.mktemp("scope") / "t.db"
    store = open_store(path)
    try:
        import_source(store, DENHAAG, site="denhaag")
        import_source(store, HOUSES, site="merewether", options=LoadOptions(default_height_m=6.0))
        buildings = sorted(store.by_kind("denhaag", "Building"), key=lambda o: o.code)
        houses = sorted(store.by_kind("merewether", "Building"), key=lambda o: o.code)
    finally:
        store.close()
    mine, other, house = buildings[0].code, buildings[1].code, houses[0].code
    keys = KeyStore(path)
    admin = {"X-API-Key": keys.create_key("admin")}
    pilot = {"X-API-Key": keys.create_key("pilot", [mine])}
    keys.close()
    settings = Settings(store_url=path)
    with app_client(settings) as client:
        ds_house = _thing(client, admin, "merewether", house, "zqhouse")
        ds_other = _thing(client, admin, "denhaag", other, "zqneighbour")
        _thing(client, admin, "denhaag", mine, "mine", secret="the pilot's own")
        rule = {
            "name": f"rule-{SECRET}",
            "kind": "high",
            "levels": [[0.1, "yellow"]],
            "code_prefix": house,
            "open_case": None,
        }
        assert client.post("/rules", json=rule, headers=admin).status_code == 201
        for site, code in (("merewether", house), ("denhaag", other)):
            case = {"title": f"case-{SECRET}", "site": site, "object_code": code}
            assert client.post("/cases", json=case, headers=admin).status_code == 201
        for site, code in (("merewether", house), ("denhaag", other)):
            # a layer's legend is the layer's, not a unit's: only its values are scoped
            layer = {"values": {code: 3.0}, "legend": "people"}
            put = client.put(f"/sites/{site}/layers/other-{site}", json=layer, headers=admin)
            assert put.status_code == 200, put.text
        cases = client.get("/cases", headers=admin).json()
        case_codes = [c["code"] for c in (cases if isinstance(cases, list) else cases["cases"])]
        fills = {
            "site": ["merewether", "denhaag"],
            "code": [house, other, *case_codes],
            "ident": [str(ds_house), str(ds_other)],
            "name": ["other-merewether", "other-denhaag"],
            "level": ["community", "cell"],
        }
        # every name, description and property of the other unit's sensors carries its tag
        forbidden = [house, other, "merewether", SECRET, "zqhouse", "zqneighbour"]
        yield Walk(client, admin, pilot, mine, other, house, fills, forbidden, path)


def _paths(walk: Walk) -> list[str]:
    """Every read operation, each path parameter filled with every hostile value."""
    spec = walk.client.get("/openapi.json").json()
    out = []
    for template, operations in spec["paths"].items():
        if "get" not in operations or "{path}" in template or template == "/health":
            continue
        names = re.findall(r"\{(\w+)\}", template)
        combos: list[dict[str, str]] = [{}]
        for name in names:
            values = walk.fills.get(name, ["x1"])
            combos = [{**c, name: v} for c in combos for v in values]
        for combo in combos:
            out.append(re.sub(r"\{(\w+)\}", lambda m, c=combo: c[m.group(1)], template))  # type: ignore[misc]
    return out


STA = [
    "Things",
    "Locations",
    "HistoricalLocations",
    "Datastreams",
    "Sensors",
    "ObservedProperties",
    "Observations",
    "FeaturesOfInterest",
    "Things?$expand=Datastreams($expand=Sensor,ObservedProperty,Observations),Locations",
    "Sensors?$expand=Datastreams($expand=Thing)",
    "ObservedProperties?$expand=Datastreams($expand=Thing)",
    "FeaturesOfInterest?$expand=Observations($expand=Datastream)",
    # navigation inside $filter reads another unit's Thing one character at a time
    "Sensors?$filter=startswith(Datastreams/Thing/properties/secret,'zqhouse')",
    "Sensors?$filter=Datastreams/Thing/properties/cimSite eq 'merewether'",
    "ObservedProperties?$filter=startswith(Datastreams/Thing/properties/secret,'zqneighbour')",
    "Observations?$filter=startswith(Datastream/Thing/properties/secret,'zqhouse')",
    "Locations?$filter=startswith(Things/properties/secret,'zqhouse')",
]


def _leaks(walk: Walk, body: str) -> list[str]:
    return [word for word in walk.forbidden if word in body]


def test_a_pilot_reads_nothing_of_another_unit_or_site(walk: Walk) -> None:
    paths = _paths(walk) + [f"/sta/v1.1/{p}" for p in STA]
    paths += [f"/live/state?prefix={walk.house}", f"/live/vitals?prefix={walk.house}"]
    paths += [f"/alerts?prefix={walk.house}", f"/cases?prefix={walk.other}"]
    assert len(paths) > 60
    violations = []
    for path in paths:
        answer = walk.client.get(path, headers=walk.pilot)
        if answer.status_code >= 500:
            violations.append((path, answer.status_code, answer.text[:200]))
        elif answer.status_code == 200 and _leaks(walk, answer.text):
            violations.append((path, 200, _leaks(walk, answer.text)))
        elif answer.status_code not in (200, 304, 400, 403, 404, 405, 422):
            violations.append((path, answer.status_code, answer.text[:200]))
    assert violations == [], json.dumps(violations, indent=1)
    # and the pilot does see its own unit
    mine = walk.client.get(f"/sites/denhaag/objects/{walk.mine}", headers=walk.pilot)
    assert mine.status_code == 200
    own = walk.client.get("/sta/v1.1/Things", headers=walk.pilot).json()["value"]
    assert [t["properties"]["cimCode"] for t in own] == [walk.mine]
    sites = walk.client.get("/sites", headers=walk.pilot).json()
    assert [s["name"] for s in sites] == ["denhaag"]


def test_the_other_site_is_not_found_for_a_pilot(walk: Walk) -> None:
    for path in ("/sites/merewether", f"/sites/merewether/objects/{walk.house}"):
        assert walk.client.get(path, headers=walk.pilot).status_code == 404
        assert walk.client.get(path, headers=walk.admin).status_code == 200


def test_layer_lists_and_rules_show_a_pilot_its_own_only(walk: Walk) -> None:
    layers = walk.client.get("/sites/denhaag/layers", headers=walk.pilot).json()
    assert "other-denhaag" not in [layer["name"] for layer in layers]
    admin = walk.client.get("/sites/denhaag/layers", headers=walk.admin).json()
    assert "other-denhaag" in [layer["name"] for layer in admin]
    rules = walk.client.get("/rules", headers=walk.pilot).json()
    assert SECRET not in json.dumps(rules)
    assert SECRET in json.dumps(walk.client.get("/rules", headers=walk.admin).json())
    ingest = walk.client.get("/live/ingest", headers=walk.pilot)
    assert ingest.status_code == 403


def test_live_stream_of_another_site_is_refused_and_a_site_stream_keeps_to_its_site(
    walk: Walk,
) -> None:
    with walk.client.websocket_connect("/live/ws?site=merewether") as ws:  # type: ignore[attr-defined]
        ws.send_json({"key": walk.pilot["X-API-Key"]})
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4404
    with walk.client.websocket_connect("/live/ws?site=merewether") as ws:  # type: ignore[attr-defined]
        ws.send_json({"key": walk.admin["X-API-Key"]})
        subscribed: dict[str, Any] = ws.receive_json()
    assert subscribed["type"] == "subscribed"
    assert walk.house in subscribed["prefixes"] or any(
        walk.house.startswith(p) for p in subscribed["prefixes"]
    )
    assert not any(walk.mine.startswith(p) for p in subscribed["prefixes"])
    with walk.client.websocket_connect("/live/ws") as ws:  # type: ignore[attr-defined]
        ws.send_json({"key": walk.pilot["X-API-Key"]})
        mine: dict[str, Any] = ws.receive_json()
    assert mine["prefixes"] == [walk.mine]


def test_a_pilot_key_names_its_site(walk: Walk) -> None:
    keys = KeyStore(walk.store)
    try:
        made = keys.create_key("pilot", [walk.house], name="house pilot")
        (listed,) = [k for k in keys.list_keys() if k["name"] == "house pilot"]
        assert listed["scopes"] == [f"merewether:{walk.house}"]
        with pytest.raises(ValueError, match="no site holds that code; name the site"):
            keys.create_key("pilot", ["990100999001"])
        explicit = keys.create_key("pilot", [f"denhaag:{walk.other}"])
    finally:
        keys.close()
    house = {"X-API-Key": made}
    assert (
        walk.client.get(f"/sites/merewether/objects/{walk.house}", headers=house).status_code == 200
    )
    assert walk.client.get(f"/sites/denhaag/objects/{walk.mine}", headers=house).status_code == 404
    other = {"X-API-Key": explicit}
    assert walk.client.get(f"/sites/denhaag/objects/{walk.other}", headers=other).status_code == 200
    assert (
        walk.client.get(f"/sites/merewether/objects/{walk.house}", headers=other).status_code == 404
    )


def test_a_pilot_opens_cases_on_its_own_unit_only(walk: Walk) -> None:
    for site, code in (
        ("merewether", walk.house),
        ("denhaag", walk.other),
        ("merewether", walk.mine),
    ):
        body = {"title": "leak", "site": site, "object_code": code}
        assert walk.client.post("/cases", json=body, headers=walk.pilot).status_code == 403
    own = {"title": "leak", "site": "denhaag", "object_code": walk.mine}
    assert walk.client.post("/cases", json=own, headers=walk.pilot).status_code == 201
