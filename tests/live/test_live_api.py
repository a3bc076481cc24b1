"""The live twin through the API: SensorThings routes, MQTT to GET, roles, the WebSocket,
alerts and cases over HTTP, on the real Den Haag sample."""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from live_helpers import mqtt_publisher, thing_body, wait_for

from api.app import create_app
from api.keys import KeyStore
from api.settings import Settings
from cim.importer import import_source
from cim.model import CimObject
from cim.store import open_store
from twin.times import format_time, now_us

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r".*httpx2")
    from fastapi.testclient import TestClient

SITE = "denhaag"
DENHAAG = Path(__file__).parents[2] / "assets" / "denhaag_01" / "denhaag_01_lod2.city.json"


@dataclass
class Api:
    client: TestClient
    keys: dict[str, str]
    building: CimObject
    other: CimObject
    prefix: str

    def h(self, role: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[role]}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The API over a Den Haag store, subscribed to Mosquitto under a fresh prefix."""
    path = tmp_path_factory.mktemp("live") / "t.db"
    store = open_store(path)
    try:
        import_source(store, DENHAAG, site=SITE)
        buildings = sorted(store.by_kind(SITE, "Building"), key=lambda o: o.code)
    finally:
        store.close()
    prefix = f"test-{uuid.uuid4().hex[:10]}/"
    settings = Settings(
        store_url=path,
        mqtt_url="mqtt://127.0.0.1:1883",
        mqtt_prefix=prefix,
        mqtt_client_id=f"twin-{uuid.uuid4().hex[:10]}",
    )
    keystore = KeyStore(settings.keys_path)
    keys = {r: keystore.create_key(r) for r in ("admin", "planner", "display", "device")}
    keys["pilot"] = keystore.create_key("pilot", [buildings[0].code])
    with TestClient(create_app(settings)) as client:
        live = client.app.state.live  # type: ignore[attr-defined]
        wait_for(live.mqtt.connected.is_set, 5, "the MQTT subscription")
        yield Api(client, keys, buildings[0], buildings[1], prefix)


def _thing(api: Api, obj: CimObject, prop: str) -> tuple[int, int]:
    body = thing_body(obj.name or obj.code, obj.code, prop)
    body["properties"]["cimSite"] = SITE
    created = api.client.post("/sta/v1.1/Things", json=body, headers=api.h("admin"))
    assert created.status_code == 201, created.text
    thing = created.json()["@iot.id"]
    assert created.headers["Location"].endswith(f"/sta/v1.1/Things({thing})")
    found = api.client.get(f"/sta/v1.1/Things({thing})/Datastreams", headers=api.h("admin"))
    return thing, found.json()["value"][0]["@iot.id"]


def test_service_root_and_roles(api: Api) -> None:
    root = api.client.get("/sta/v1.1", headers=api.h("display")).json()
    assert [v["name"] for v in root["value"]][:3] == ["Things", "Locations", "Datastreams"]
    assert any(c.endswith("data-array/data-array") for c in root["serverSettings"]["conformance"])
    body = thing_body("x", api.building.code, "water depth")
    assert (
        api.client.post("/sta/v1.1/Things", json=body, headers=api.h("display")).status_code == 403
    )
    assert api.client.get("/sta/v1.1/Things", headers=api.h("device")).status_code == 403
    assert api.client.get("/sta/v1.1/Things").status_code == 401
    bad = api.client.get("/sta/v1.1/Things", params={"$filter": "name eq"}, headers=api.h("admin"))
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "RequestError"
    missing = dict(body, properties={"cimSite": SITE, "cimCode": "no-such-object"})
    gone = api.client.post("/sta/v1.1/Things", json=missing, headers=api.h("admin"))
    assert gone.status_code == 404


def test_mqtt_reading_reaches_sta_state_stream_alert_and_case(api: Api) -> None:
    _, ds = _thing(api, api.building, "water depth")
    rule = {
        "name": "road water",
        "kind": "high",
        "levels": [[0.15, "red"]],
        "observed_property": "water depth",
        "code_prefix": api.building.code,
        "open_case": {"class_code": "0501", "unit": "drainage", "urgency": "urgent"},
    }
    assert api.client.post("/rules", json=rule, headers=api.h("planner")).status_code == 201
    key = api.keys["display"]
    with api.client.websocket_connect(f"/live/ws?prefix={api.building.code}") as ws:
        ws.send_json({"key": key})  # the key as the first message, out of the URL
        assert ws.receive_json()["type"] == "subscribed"
        publisher = mqtt_publisher()
        sent = time.monotonic()
        t = format_time(now_us() - 1_000_000)
        body = orjson.dumps({"phenomenonTime": t, "result": 0.2})
        topic = f"{api.prefix}v1.1/Datastreams({ds})/Observations"
        publisher.publish(topic, body, qos=1).wait_for_publish(5)
        events: list[dict[str, Any]] = []
        while {e["type"] for e in events} != {"observation", "alert", "case"}:
            events.extend(ws.receive_json())
        elapsed_s = time.monotonic() - sent
        publisher.loop_stop()
        publisher.disconnect()
    assert elapsed_s < 1.0
    observation = next(e for e in events if e["type"] == "observation")
    assert observation["datastream"] == ds and observation["result"] == 0.2
    assert observation["code"] == api.building.code
    latest = api.client.get(
        f"/sta/v1.1/Datastreams({ds})/Observations",
        params={"$orderby": "phenomenonTime desc", "$top": "1"},
        headers=api.h("display"),
    ).json()["value"][0]
    assert latest["result"] == 0.2 and latest["phenomenonTime"] == t
    state = api.client.get(f"/live/objects/{api.building.code}", headers=api.h("pilot")).json()
    assert state["properties"]["water depth"]["max"] == 0.2
    assert [a["severity"] for a in state["alerts"]] == ["red"]
    case = state["cases"][0]
    assert case["unit"] == "drainage" and case["gridCode"] is not None
    assert api.building.code.startswith(case["gridCode"])
    # the case workflow over HTTP, with a clear 409
    h = api.h("planner")
    refused = api.client.post(f"/cases/{case['code']}/close", headers=h)
    assert (
        refused.status_code == 409 and "allowed: file, cancel" in refused.json()["error"]["message"]
    )
    for step in ("file", "dispatch", "handle"):
        assert api.client.post(f"/cases/{case['code']}/{step}", headers=h).status_code == 200
    stats = api.client.get("/cases/statistics", params={"by": "unit"}, headers=h).json()
    drainage = next(s for s in stats if s["unit"] == "drainage")
    assert drainage["onTimeRate"] == 1.0 and drainage["meanHoursReadingToDisposal"] < 0.1
    vitals = api.client.get("/live/vitals", headers=api.h("display")).json()
    assert vitals["activeAlerts"] == {"red": 1} and vitals["sensorsOnline"] >= 1
    cells = api.client.get("/live/vitals/grid", headers=api.h("display")).json()
    cell = next(c for c in cells if c["prefix"] == case["gridCode"])
    assert cell["activeAlerts"] == {"red": 1} and cell["extremes"]["water depth"]["max"] == 0.2
    assert api.client.get("/live/vitals/street", headers=api.h("display")).status_code == 422


def test_pilot_sees_only_its_subtree(api: Api) -> None:
    _, mine = _thing(api, api.building, "people count")
    _, theirs = _thing(api, api.other, "people count")
    seen = api.client.get(
        "/sta/v1.1/Datastreams",
        params={"$filter": "ObservedProperty/name eq 'people count'"},
        headers=api.h("pilot"),
    ).json()["value"]
    assert [d["@iot.id"] for d in seen] == [mine]
    hidden = api.client.get(f"/sta/v1.1/Datastreams({theirs})", headers=api.h("pilot"))
    assert hidden.status_code == 404
    other = api.client.get(f"/live/objects/{api.other.code}", headers=api.h("pilot"))
    assert other.status_code == 404
    with api.client.websocket_connect(f"/live/ws?key={api.keys['pilot']}") as ws:
        hello = ws.receive_json()
        assert hello["prefixes"] == [api.building.code]


def test_device_posts_observations_and_create_observations(api: Api) -> None:
    _, ds = _thing(api, api.other, "noise")
    h = api.h("device")
    t0 = now_us() - 60_000_000
    one = api.client.post(
        f"/sta/v1.1/Datastreams({ds})/Observations",
        json={"phenomenonTime": format_time(t0), "result": 51.5},
        headers=h,
    )
    assert one.status_code == 201 and one.json()["result"] == 51.5
    bad = api.client.post(
        f"/sta/v1.1/Datastreams({ds})/Observations", json={"result": "loud"}, headers=h
    )
    assert bad.status_code == 400 and "not a number" in bad.json()["error"]["message"]
    rows = [[format_time(t0 + i * 1_000_000), 50.0 + i] for i in range(1, 4)] + [["x", 1]]
    created = api.client.post(
        "/sta/v1.1/CreateObservations",
        json=[
            {
                "Datastream": {"@iot.id": ds},
                "components": ["phenomenonTime", "result"],
                "dataArray": rows,
            }
        ],
        headers=h,
    )
    assert created.status_code == 201
    links = created.json()
    assert links[-1] == "error" and all(s.startswith("Observations(") for s in links[:3])
    ingest = api.client.get("/live/ingest", headers=api.h("admin")).json()
    assert ingest["deadLetters"] >= 2 and ingest["mqtt"]["connected"] is True


def test_history_aggregates_alert_actions_and_rule_errors(api: Api) -> None:
    _, ds = _thing(api, api.other, "pressure")
    h = api.h("admin")
    start = (now_us() // 3_600_000_000 - 2) * 3_600_000_000  # two whole hours ago
    rows = [[format_time(start + i * 600_000_000), float(i)] for i in range(12)]  # 10-min steps
    links = api.client.post(
        "/sta/v1.1/CreateObservations",
        json=[
            {
                "Datastream": {"@iot.id": ds},
                "components": ["phenomenonTime", "result"],
                "dataArray": rows,
            }
        ],
        headers=api.h("device"),
    ).json()
    assert "error" not in links
    window = {"start": format_time(start), "end": format_time(start + 7_200_000_000)}
    history = api.client.get(f"/live/datastreams/{ds}/history", params=window, headers=h)
    assert [v for _, v in history.json()["values"]] == [float(i) for i in range(12)]
    hourly = api.client.get(
        f"/live/datastreams/{ds}/aggregates", params={**window, "interval_s": 3600}, headers=h
    ).json()["buckets"]
    assert [(b["n"], b["min"], b["max"], b["mean"]) for b in hourly] == [
        (6, 0.0, 5.0, 2.5),
        (6, 6.0, 11.0, 8.5),
    ]
    hidden = api.client.get(
        f"/live/datastreams/{ds}/history", params=window, headers=api.h("pilot")
    )
    assert hidden.status_code == 404
    bad_time = api.client.get(
        f"/live/datastreams/{ds}/history", params={"start": "soon", "end": "later"}, headers=h
    )
    assert bad_time.status_code == 400
    # a rule whose thresholds fall is refused with a reason, not a 500
    bad_rule = {"name": "x", "kind": "high", "levels": [[5, "a"], [1, "b"]]}
    refused = api.client.post("/rules", json=bad_rule, headers=h)
    assert refused.status_code == 400 and "rise" in refused.json()["error"]["message"]
    assert api.client.post("/rules", json=bad_rule, headers=api.h("display")).status_code == 403
    rule = {
        "name": "pressure",
        "kind": "high",
        "levels": [[10, "red"]],
        "observed_property": "pressure",
    }
    assert api.client.post("/rules", json=rule, headers=h).status_code == 201
    api.client.post(
        f"/sta/v1.1/Datastreams({ds})/Observations",
        json={"phenomenonTime": format_time(now_us()), "result": 12.0},
        headers=api.h("device"),
    )
    alerts = api.client.get(
        "/alerts", params={"prefix": api.other.code, "state": "active"}, headers=api.h("display")
    ).json()
    code = alerts[0]["code"]
    assert (
        api.client.post(f"/alerts/{code}/acknowledge", headers=api.h("display")).status_code == 403
    )
    acked = api.client.post(f"/alerts/{code}/acknowledge", json={"note": "seen"}, headers=h)
    assert acked.json()["state"] == "acknowledged"
    again = api.client.post(f"/alerts/{code}/acknowledge", headers=h)
    assert again.status_code == 409
    assert api.client.get(f"/alerts/{code}", headers=api.h("pilot")).status_code == 404


def test_stream_by_area(api: Api) -> None:
    from starlette.websockets import WebSocketDisconnect

    assert api.building.bbox is not None
    x0, y0, _, x1, y1, _ = api.building.bbox
    area = f"{x0},{y0},{x1},{y1}"
    key = api.keys["display"]
    with api.client.websocket_connect(f"/live/ws?key={key}&site={SITE}&bbox={area}") as ws:
        hello = ws.receive_json()
        assert api.building.code in hello["prefixes"]
        # the building, its parts and the neighbours whose boxes touch it: not the city
        assert len({p[:21] for p in hello["prefixes"]}) < 10
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        api.client.websocket_connect(f"/live/ws?key={key}&site={SITE}&bbox=1,2"),
    ):
        pass
    assert closed.value.code == 4400
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        api.client.websocket_connect("/live/ws?key=twk_nope"),
    ):
        pass
    assert refused.value.code == 4401
    for hello in ({"key": "twk_nope"}, {"token": key}, ["key"]):
        with api.client.websocket_connect("/live/ws") as ws:
            ws.send_json(hello)
            with pytest.raises(WebSocketDisconnect) as first:
                ws.receive_json()
            assert first.value.code == 4401, hello
    with api.client.websocket_connect("/live/ws") as ws:
        ws.send_json({"key": api.keys["device"]})
        with pytest.raises(WebSocketDisconnect) as device:
            ws.receive_json()
        assert device.value.code == 4403


def test_pilot_opens_cases_only_in_its_subtree(api: Api) -> None:
    h = api.h("pilot")
    inside = {"title": "lift stuck", "site": SITE, "object_code": api.building.code}
    created = api.client.post("/cases", json=inside, headers=h)
    assert created.status_code == 201
    case = created.json()
    assert case["source"] == "api" and api.building.code.startswith(case["gridCode"])
    outside = {**inside, "object_code": api.other.code}
    assert api.client.post("/cases", json=outside, headers=h).status_code == 403
    assert api.client.post("/cases", json=inside, headers=api.h("display")).status_code == 403
    missing = {**inside, "object_code": api.building.code + "999"}
    assert api.client.post("/cases", json=missing, headers=api.h("admin")).status_code == 404
    mine = api.client.get("/cases", headers=h).json()
    assert all(c["objectCode"].startswith(api.building.code) for c in mine)


def test_a_reading_becomes_the_viewers_live_layer_within_a_second(api: Api) -> None:
    _, ds = _thing(api, api.other, "people count")
    key = api.keys["display"]
    with api.client.websocket_connect(f"/sites/{SITE}/layers/live") as ws:
        ws.send_json({"key": key})
        first = ws.receive_json()
        while first["type"] != "ready":
            first = ws.receive_json()
        sent = time.monotonic()
        posted = api.client.post(
            f"/sta/v1.1/Datastreams({ds})/Observations",
            json={"phenomenonTime": format_time(now_us() - 1_000_000), "result": 37},
            headers=api.h("device"),
        )
        assert posted.status_code == 201, posted.text
        pushed = ws.receive_json()
        while pushed.get("layer", {}).get("name") != "live-people-count":
            pushed = ws.receive_json()
        elapsed = time.monotonic() - sent
    assert elapsed < 1.0
    assert pushed["layer"]["values"][api.other.code] == 37.0
    assert pushed["layer"]["legend"] == "live people count"
    # a pilot of another building does not see this reading in the layer
    pilot = api.client.get(f"/sites/{SITE}/layers/live-people-count", headers=api.h("pilot"))
    assert pilot.status_code == 200 and api.other.code not in pilot.json()["values"]
