"""``/runs`` over HTTP: typed drill bodies in OpenAPI, the run record, per-object results,
frames (JSON and binary), files, paging and filters, cancel within 2 s, delete with its
alerts, layers and files, and who may see and stop what."""

from __future__ import annotations

import json
import struct
import time
from typing import Any

import numpy as np
from denhaag_twin import Twin

from twin.layers import Layer, LayerTable

TRAFFIC = {"network": "tokyo_arterial", "seed": 2}


def _wait(twin: Twin, run_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        record: dict[str, Any] = twin.client.get(
            f"/runs/{run_id}", headers=twin.headers("planner")
        ).json()
        if record["state"] not in ("queued", "running"):
            return record
        assert time.monotonic() < deadline, record
        time.sleep(0.1)


def _start(twin: Twin, drill: str, body: dict[str, Any]) -> str:
    started = twin.client.post(f"/drills/{drill}", json=body, headers=twin.headers("planner"))
    assert started.status_code == 202, started.text
    run_id: str = started.json()["id"]
    assert started.headers["Location"] == started.json()["href"] == f"/runs/{run_id}"
    return run_id


def test_every_drill_body_is_a_named_schema_in_openapi(twin: Twin) -> None:
    spec = twin.client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for drill in ("traffic", "flood", "crowd", "evacuation"):
        body = spec["paths"][f"/drills/{drill}"]["post"]["requestBody"]["content"]
        ref = body["application/json"]["schema"]["$ref"]
        name = ref.rsplit("/", 1)[1]
        assert name.endswith("Drill") and schemas[name]["additionalProperties"] is False
        assert schemas[name]["properties"], name
    assert "duration_s" in schemas["FloodDrill"]["properties"]
    listed = twin.client.get("/drills", headers=twin.headers("display")).json()
    assert {d["schema"] for d in listed} >= {"TrafficDrill", "CrowdDrill"}


def test_a_run_reads_back_with_its_objects_frames_and_place_in_the_list(twin: Twin) -> None:
    run_id = _start(twin, "traffic", TRAFFIC)
    done = _wait(twin, run_id)
    assert done["state"] == "succeeded", done
    assert done["drill"] == "traffic" and done["spec"]["network"] == "tokyo_arterial"
    assert done["result"]["summary"]["vehicles"] > 0 and done["progress"] == 1.0
    display = twin.headers("display")
    metrics = done["result"]
    frames = twin.client.get(
        f"/runs/{run_id}/frames", params={"metric": "speed_kmh"}, headers=display
    )
    if frames.status_code == 404:  # the series' names are the drill's: take the first
        message = frames.json()["error"]["message"]
        metric = message.rsplit("it has: ", 1)[1].split(", ")[0]
        frames = twin.client.get(
            f"/runs/{run_id}/frames", params={"metric": metric}, headers=display
        )
    assert frames.status_code == 200, frames.text
    data = frames.json()
    values = np.array(data["values"])
    assert values.shape == (len(data["times_s"]), len(data["codes"])) and values.size > 0
    binary = twin.client.get(
        f"/runs/{run_id}/frames",
        params={"metric": data["metric"], "format": "binary"},
        headers=display,
    )
    body = binary.content
    assert body[:4] == b"TWRF"
    (length,) = struct.unpack("<I", body[4:8])
    header = json.loads(body[8 : 8 + length])
    n, m = header["n"], header["m"]
    times = np.frombuffer(body[8 + length : 8 + length + 8 * n], dtype="<f8")
    packed = np.frombuffer(body[8 + length + 8 * n :], dtype="<f4").reshape(n, m)
    assert header["codes"] == data["codes"] and times.tolist() == data["times_s"]
    np.testing.assert_allclose(packed, values, rtol=1e-6, atol=1e-6)
    listed = twin.client.get(
        "/runs", params={"drill": "traffic", "state": "succeeded"}, headers=display
    ).json()
    assert run_id in [r["id"] for r in listed["runs"]] and listed["total"] >= 1
    assert all("result" not in r and "summary" in r for r in listed["runs"])
    paged = twin.client.get("/runs", params={"limit": 1}, headers=display).json()
    assert len(paged["runs"]) == 1 and paged["limit"] == 1
    for bad in ({"limit": 0}, {"limit": 10_000}, {"state": "exploded"}, {"offset": -1}):
        assert twin.client.get("/runs", params=bad, headers=display).status_code == 422, bad
    assert metrics  # the whole result came back with the record


def test_cancelling_over_http_stops_a_running_drill_within_two_seconds(twin: Twin) -> None:
    run_id = _start(twin, "crowd", {"venue": "waterfront", "agents": 70000, "seed": 1})
    deadline = time.monotonic() + 120
    while True:
        record = twin.client.get(f"/runs/{run_id}", headers=twin.headers("planner")).json()
        if record["state"] == "running" and record["progress"] > 0:
            break
        assert time.monotonic() < deadline, record
        time.sleep(0.1)
    display = twin.client.delete(f"/runs/{run_id}", headers=twin.headers("display"))
    assert display.status_code == 403
    asked = time.monotonic()
    answer = twin.client.delete(f"/runs/{run_id}", headers=twin.headers("planner"))
    assert answer.status_code == 200
    assert _wait(twin, run_id, timeout_s=2.0)["state"] == "cancelled"
    assert time.monotonic() - asked < 2.0


def test_deleting_a_run_closes_its_alerts_and_removes_its_files_and_layers(twin: Twin) -> None:
    body = {"venue": "waterfront", "agents": 2000, "seed": 3}
    run_id = _start(twin, "crowd", {**body, "site": "denhaag", "code": twin.building.code})
    done = _wait(twin, run_id)
    assert done["state"] == "succeeded", done
    raised = done["result"]["drill_alerts"]
    assert raised["count"] > 0 and raised["drill"] == run_id
    png = done["result"]["density_png"]
    assert png == f"/runs/{run_id}/files/density.png"
    assert twin.client.get(png, headers=twin.headers("display")).status_code == 200
    for hostile in ("../t.db", "%2e%2e%2ft.db", "density.exe", "x" * 300 + ".png"):
        response = twin.client.get(f"/runs/{run_id}/files/{hostile}", headers=twin.headers("admin"))
        assert response.status_code == 404, hostile
    # a layer the run made, written to the store as a drill writes it (any worker then sees it)
    table = LayerTable(twin.settings.store_url)
    try:
        table.put(Layer("denhaag", "crowd-test", {twin.building.code: 2.5}, run_id=run_id))
    finally:
        table.close()
    runs_folder = twin.settings.cache_path / "runs"
    admin = twin.headers("admin")
    deleted = twin.client.delete(f"/runs/{run_id}", headers=twin.headers("planner")).json()
    assert deleted == {
        "id": run_id,
        "deleted": True,
        "alerts_closed": raised["count"],
        "layers_removed": ["crowd-test"],
    }
    assert twin.client.get(f"/runs/{run_id}", headers=admin).status_code == 404
    assert twin.client.get(png, headers=admin).status_code == 404
    assert (runs_folder / run_id).parent.is_dir()
    assert not (runs_folder / run_id).exists()
    alerts = twin.client.get("/alerts", params={"source": "drill"}, headers=admin).json()
    mine = [a for a in alerts if a["drill"] == run_id]
    assert mine and {a["state"] for a in mine} == {"closed"}
    layers = twin.client.get("/sites/denhaag/layers", headers=admin).json()
    assert "crowd-test" not in json.dumps(layers)


def test_a_pilot_sees_no_planners_run_and_unknown_runs_are_404(twin: Twin) -> None:
    run_id = _start(twin, "traffic", TRAFFIC)
    pilot = twin.headers("pilot")
    assert twin.client.get(f"/runs/{run_id}", headers=pilot).status_code == 404
    assert twin.client.get(f"/runs/{run_id}/objects", headers=pilot).status_code == 404
    assert run_id not in [r["id"] for r in twin.client.get("/runs", headers=pilot).json()["runs"]]
    assert twin.client.get("/runs/r_nope", headers=twin.headers("admin")).status_code == 404
    assert twin.client.get(f"/runs/{run_id}").status_code == 401
    device = twin.client.get(f"/runs/{run_id}", headers=twin.headers("device"))
    assert device.status_code == 403
    _wait(twin, run_id)
