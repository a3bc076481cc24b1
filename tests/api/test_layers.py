"""Value layers: put by planners, read by everyone who may read, pushed over a WebSocket."""

from __future__ import annotations

import pytest
from denhaag_twin import SITE, Twin
from starlette.websockets import WebSocketDisconnect


def _values(twin: Twin) -> dict[str, float]:
    return {twin.building.code: 7.5, twin.other_building.code: 2.0}


def test_put_then_read_layer(twin: Twin) -> None:
    put = twin.client.put(
        f"/sites/{SITE}/layers/height-test",
        json={"values": _values(twin), "legend": "test value", "unit": "m"},
        headers=twin.headers("planner"),
    )
    assert put.status_code == 200, put.text
    assert put.json()["count"] == 2
    assert (put.json()["min"], put.json()["max"]) == (2.0, 7.5)
    layer = twin.client.get(f"/sites/{SITE}/layers/height-test", headers=twin.headers("display"))
    assert layer.json()["values"] == _values(twin)
    listing = twin.client.get(f"/sites/{SITE}/layers", headers=twin.headers("display")).json()
    # layers live in the store: the session's store may hold other modules' layers too
    assert "height-test" in [item["name"] for item in listing]
    assert all("values" not in item for item in listing)
    # the pilot sees only the value of its own building
    pilot = twin.client.get(f"/sites/{SITE}/layers/height-test", headers=twin.headers("pilot"))
    assert pilot.json()["values"] == {twin.building.code: 7.5}


@pytest.mark.parametrize("role", ["display", "pilot", "device"])
def test_read_only_roles_may_not_put_or_delete(twin: Twin, role: str) -> None:
    path = f"/sites/{SITE}/layers/not-mine"
    response = twin.client.put(path, json={"values": _values(twin)}, headers=twin.headers(role))
    assert response.status_code == 403
    assert twin.client.delete(path, headers=twin.headers(role)).status_code == 403


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"990100001001999999": 1.0}, "has no objects 990100001001999999"),
        ({"X": float("nan")}, "finite"),
    ],
)
def test_bad_values_are_refused_and_nothing_changes(
    twin: Twin, values: dict[str, float], message: str
) -> None:
    path = f"/sites/{SITE}/layers/bad"
    # NaN is not JSON: send it the way a careless client would
    body = '{"values": {"X": NaN}}' if "X" in values else {"values": values}
    if isinstance(body, str):
        response = twin.client.put(
            path,
            content=body,
            headers={**twin.headers("admin"), "Content-Type": "application/json"},
        )
    else:
        response = twin.client.put(path, json=body, headers=twin.headers("admin"))
    assert response.status_code in (400, 422)
    assert message in response.json()["error"]["message"]
    assert twin.client.get(path, headers=twin.headers("admin")).status_code == 404


def test_bad_layer_name_is_refused(twin: Twin) -> None:
    response = twin.client.put(
        f"/sites/{SITE}/layers/a%20b", json={"values": {}}, headers=twin.headers("admin")
    )
    assert response.status_code == 422


def test_websocket_pushes_layers_and_scopes_pilots(twin: Twin) -> None:
    path = f"/sites/{SITE}/layers/live"
    with twin.client.websocket_connect(path) as planner_ws:
        planner_ws.send_json({"key": twin.keys["display"]})
        assert planner_ws.receive_json()["type"] in ("layer", "ready")
        with twin.client.websocket_connect(path) as pilot_ws:
            pilot_ws.send_json({"key": twin.keys["pilot"]})
            messages = [pilot_ws.receive_json()]
            while messages[-1]["type"] != "ready":
                messages.append(pilot_ws.receive_json())
            twin.client.put(
                f"/sites/{SITE}/layers/live-test",
                json={"values": _values(twin), "legend": "pushed"},
                headers=twin.headers("planner"),
            )
            pushed = pilot_ws.receive_json()
            while pushed["layer"]["name"] != "live-test":
                pushed = pilot_ws.receive_json()
            assert pushed["type"] == "layer"
            assert pushed["layer"]["values"] == {twin.building.code: 7.5}
        seen = planner_ws.receive_json()
        while seen.get("layer", {}).get("name") != "live-test":
            seen = planner_ws.receive_json()
        assert seen["layer"]["values"] == _values(twin)
        twin.client.delete(f"/sites/{SITE}/layers/live-test", headers=twin.headers("admin"))
        assert planner_ws.receive_json() == {"type": "deleted", "site": SITE, "name": "live-test"}


@pytest.mark.parametrize(
    ("hello", "code"),
    [({"key": "twk_nope"}, 4401), ({"nokey": 1}, 4401), ("device", 4403)],
)
def test_websocket_refuses_bad_keys(twin: Twin, hello: object, code: int) -> None:
    message = {"key": twin.keys["device"]} if hello == "device" else hello
    with twin.client.websocket_connect(f"/sites/{SITE}/layers/live") as ws:
        ws.send_json(message)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == code


def test_websocket_unknown_site_is_4404(twin: Twin) -> None:
    with twin.client.websocket_connect("/sites/nowhere/layers/live") as ws:
        ws.send_json({"key": twin.keys["admin"]})
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4404
