"""A key's unfinished drill runs are bounded (``TWIN_MAX_RUNS_PER_KEY``, 429), and a pilot
stops its own (ADR 0020)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from denhaag_twin import TestClient

from api.app import create_app
from api.keys import KeyStore
from api.settings import Settings
from cim.importer import import_source
from cim.loaders import LoadOptions
from cim.store import open_store

ASSETS = Path(__file__).resolve().parents[2] / "assets"
SITE = "campus"


class Held:
    """The API with a runner that holds every run queued (no worker starts it)."""

    def __init__(self, client: TestClient, keys: dict[str, dict[str, str]], building: str):
        self.client = client
        self.keys = keys
        self.building = building
        self.submitted: list[str] = []

    def evacuation(self, role: str = "pilot") -> Any:
        body = {"site": SITE, "building": self.building, "load_pm2": 0.2}
        return self.client.post("/drills/evacuation", json=body, headers=self.keys[role])

    def runs(self) -> int:
        return int(self.client.get("/runs", headers=self.keys["admin"]).json()["total"])


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Held]:
    pytest.importorskip("ifcopenshell")
    path = tmp_path_factory.mktemp("runs-per-key") / "t.db"
    store = open_store(path)
    try:
        import_source(
            store,
            ASSETS / "ifc" / "Duplex_A_20110907.ifc",
            site=SITE,
            options=LoadOptions(at=(85000.0, 446000.0, 30.0), crs="EPSG:28992"),
        )
        (building,) = store.by_kind(SITE, "IfcBuilding")
    finally:
        store.close()
    settings = Settings(store_url=path, run_workers=1, max_runs_per_key=2)
    keystore = KeyStore(settings.keys_path)
    keys = {
        role: {"X-API-Key": keystore.create_key(role, name=role)} for role in ("admin", "planner")
    }
    for name in ("pilot", "other pilot"):
        keys[name] = {"X-API-Key": keystore.create_key("pilot", [building.code], name=name)}
    with TestClient(create_app(settings)) as client:
        served = Held(client, keys, building.code)
        runner = client.app.state.twin.runner  # type: ignore[attr-defined]
        runner.submit = lambda run_id, bounds=None: served.submitted.append(run_id)
        yield served


def test_a_key_at_its_run_limit_gets_429_and_others_still_start(held: Held) -> None:
    first, second = held.evacuation(), held.evacuation()
    assert first.status_code == second.status_code == 202, (first.text, second.text)
    before = held.runs()
    third = held.evacuation()
    assert third.status_code == 429, third.text
    assert third.headers["Retry-After"] == "30"
    error = third.json()["error"]
    assert error["type"] == "RunLimitError"
    assert error["limit"] == "TWIN_MAX_RUNS_PER_KEY" and error["value"] == 2
    assert error["running"] == 2
    assert "this key has 2 drill runs queued or running" in error["message"]
    assert "TWIN_MAX_RUNS_PER_KEY=2" in error["message"]
    assert held.runs() == before  # nothing stored, nothing handed to the runner
    assert len(held.submitted) == 2
    # the limit is the key's: a planner's drill and another pilot's are not held behind it
    assert held.evacuation("planner").status_code == 202
    assert held.evacuation("other pilot").status_code == 202

    # the pilot stops its own run; another pilot of the same unit may not
    run_id = first.json()["id"]
    assert (
        held.client.delete(f"/runs/{run_id}", headers=held.keys["other pilot"]).status_code == 403
    )
    stopped = held.client.delete(f"/runs/{run_id}", headers=held.keys["pilot"])
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["state"] == "cancelled"
    # which frees a place
    assert held.evacuation().status_code == 202
    assert held.evacuation().status_code == 429
    # a planner stops a pilot's run too
    run_id = second.json()["id"]
    assert held.client.delete(f"/runs/{run_id}", headers=held.keys["planner"]).status_code == 200
    assert held.client.get(f"/runs/{run_id}", headers=held.keys["pilot"]).json()["state"] == (
        "cancelled"
    )


def test_the_concurrency_and_cache_bounds_come_from_the_environment() -> None:
    env = {
        "TWIN_MAX_RUNS_PER_KEY": "7",
        "TWIN_RENDERS_PER_KEY": "3",
        "TWIN_RENDER_QUEUE": "0",
        "TWIN_SCENE_CACHE_BYTES": str(2 << 20),
    }
    settings = Settings.from_env(env)
    assert (settings.max_runs_per_key, settings.renders_per_key, settings.render_queue) == (7, 3, 0)
    assert settings.scene_cache_bytes == 2 << 20
    defaults = Settings.from_env({})
    assert (defaults.max_runs_per_key, defaults.renders_per_key, defaults.render_queue) == (4, 2, 4)
    assert defaults.scene_cache_bytes == 1 << 30
    for variable, bad in (("TWIN_MAX_RUNS_PER_KEY", "0"), ("TWIN_RENDERS_PER_KEY", "x")):
        with pytest.raises(ValueError, match=variable):
            Settings.from_env({variable: bad})
