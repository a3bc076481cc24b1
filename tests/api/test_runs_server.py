"""Runs against the real server as a user starts it (``twin serve --workers N``): the same
answer from every worker, results that outlive a restart, and a crash that leaves
``interrupted`` runs with no partial files and a sound store."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from server_process import new_key, serving, start_server, twin_cli, wait_run

ASSETS = Path(__file__).parents[2] / "assets"
STORM = {"formula": "shanghai-2017", "return_period_a": 5, "duration_min": 120}


@dataclass(frozen=True)
class Deployment:
    store: Path
    cache: Path
    planner: str
    display: str


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("served")
    store = folder / "t.db"
    twin_cli(
        store,
        "import",
        "--site",
        "bellinge",
        "--crs",
        "EPSG:32632",
        str(ASSETS / "swmm" / "bellinge_small.inp"),
    )
    yield Deployment(
        store,
        folder / "cache",
        new_key(store, "planner", folder),
        new_key(store, "display", folder),
    )


def test_a_run_reads_the_same_from_every_worker_and_outlives_a_restart(
    deployment: Deployment,
) -> None:
    body = {"network": "bellinge_small", "site": "bellinge", "storm": STORM, "duration_s": 10800}
    with serving(deployment.store, deployment.cache, workers=2) as server:
        planner, display = server.client(deployment.planner), server.client(deployment.display)
        started = planner.post("/drills/flood", json=body)
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        assert started.headers["location"] == f"/runs/{run_id}"
        done = wait_run(display, run_id)
        assert done["state"] == "succeeded", done
        # 20 reads in a row, spread over both workers by new connections: one answer
        answers = []
        for _ in range(20):
            with server.client(deployment.display) as fresh:
                answers.append(fresh.get(f"/runs/{run_id}").json())
        assert {a["state"] for a in answers} == {"succeeded"}
        assert all(a["result"] == done["result"] for a in answers)
        layers = set()
        for _ in range(10):
            with server.client(deployment.display) as fresh:
                layers.add(fresh.get("/sites/bellinge/layers/flood-network-depth").status_code)
        assert layers == {200}
        raised = done["result"]["drill_alerts"]
        assert raised is not None and raised["count"] > 0 and raised["drill"] == run_id
        objects = display.get(f"/runs/{run_id}/objects", params={"metric": "max_depth_m"})
        assert objects.status_code == 200 and len(objects.json()["objects"]) > 10
        planner.close()
        display.close()
    # a restart: the run, its result, its layer and its alerts are still there
    with serving(deployment.store, deployment.cache, workers=1) as server:
        display = server.client(deployment.display)
        again = display.get(f"/runs/{run_id}").json()
        assert again["state"] == "succeeded" and again["result"] == done["result"]
        layer = display.get("/sites/bellinge/layers/flood-network-depth").json()
        assert layer["run"] == run_id and layer["count"] > 0
        planner = server.client(deployment.planner)
        alerts = planner.get("/alerts", params={"source": "drill", "state": "active"}).json()
        mine = [a for a in alerts if run_id in a["message"]]
        assert len(mine) == raised["count"]
        listed = display.get("/runs", params={"drill": "flood", "state": "succeeded"}).json()
        assert run_id in [r["id"] for r in listed["runs"]]
        display.close()
        planner.close()


def test_kill_9_mid_run_leaves_it_interrupted_without_partial_files(
    deployment: Deployment,
) -> None:
    body = {"venue": "waterfront", "agents": 70000, "seed": 1}
    server = start_server(deployment.store, deployment.cache, workers=2)
    try:
        planner = server.client(deployment.planner)
        started = planner.post("/drills/crowd", json=body)
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            record = planner.get(f"/runs/{run_id}").json()
            if record["state"] == "running" and record["progress"] > 0:
                break
            time.sleep(0.2)
        assert record["state"] == "running", record
        folder = deployment.cache / "runs" / run_id
        assert folder.is_dir()
        planner.close()
    finally:
        server.kill()
    with serving(deployment.store, deployment.cache, workers=1) as server:
        with server.client(deployment.display) as display:
            record = display.get(f"/runs/{run_id}").json()
        assert record["state"] == "interrupted", record
        assert not folder.exists()
    with sqlite3.connect(deployment.store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
