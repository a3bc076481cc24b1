"""Drills over HTTP: started as jobs from named server-side inputs, checked before they start."""

from __future__ import annotations

import time
from typing import Any

import pytest
from denhaag_twin import Twin


def _finished(twin: Twin, job: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while job["state"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
        job = twin.client.get(f"/jobs/{job['id']}", headers=twin.headers("planner")).json()
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
    assert base.headers["Location"] == f"/jobs/{base.json()['id']}"
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


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"network": "../traffic/tokyo_arterial"}, 400, "network must name"),
        ({"network": "nowhere"}, 404, "tokyo_arterial"),
        ({"network": "tokyo_arterial", "tmax_s": -5}, 400, "tmax_s"),
        (
            {"network": "tokyo_arterial", "closures": [{"link": "no-such-road", "t_start_s": 0}]},
            400,
            "no-such-road",
        ),
        ({"network": "tokyo_arterial", "speed": 3}, 400, "unknown fields speed"),
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
