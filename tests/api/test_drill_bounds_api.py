"""Hostile drill bodies over HTTP: each refused before a run is stored or started (ADR 0020).

A bound of one field or of fields together (steps, cells, samples) is 422 naming the fields
and the computed figure; counts and seeds are strict whole numbers.
"""

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


class Served:
    """The API over a store with the Duplex IFC building and the West Oakland streets."""

    def __init__(self, client: TestClient, keys: dict[str, str], building: str, space: str):
        self.client = client
        self.keys = keys
        self.building = building
        self.space = space

    def post(self, drill: str, body: dict[str, Any], role: str = "planner") -> Any:
        return self.client.post(
            f"/drills/{drill}", json=body, headers={"X-API-Key": self.keys[role]}
        )

    def runs(self) -> int:
        answer = self.client.get("/runs", headers={"X-API-Key": self.keys["admin"]})
        return int(answer.json()["total"])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    pytest.importorskip("ifcopenshell")
    path = tmp_path_factory.mktemp("drill-bounds") / "t.db"
    store = open_store(path)
    try:
        import_source(
            store,
            ASSETS / "ifc" / "Duplex_A_20110907.ifc",
            site=SITE,
            options=LoadOptions(at=(85000.0, 446000.0, 30.0), crs="EPSG:28992"),
        )
        import_source(store, ASSETS / "traffic" / "west_oakland.osm", site="oakland")
        (building,) = store.by_kind(SITE, "IfcBuilding")
        space = min(o.code for o in store.by_kind(SITE, "IfcSpace"))
    finally:
        store.close()
    settings = Settings(store_url=path, run_workers=1)
    keystore = KeyStore(settings.keys_path)
    keys = {role: keystore.create_key(role, name=role) for role in ("admin", "planner")}
    keys["pilot"] = keystore.create_key("pilot", [building.code], name="pilot")
    with TestClient(create_app(settings)) as client:
        yield Served(client, keys, building.code, space)


def _refused(served: Served, drill: str, body: dict[str, Any], role: str = "planner") -> str:
    """The message of a 422 answer to ``body``, after checking no run was stored."""
    before = served.runs()
    answer = served.post(drill, body, role)
    assert answer.status_code == 422, answer.text
    assert served.runs() == before
    return str(answer.json()["error"]["message"])


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"dt_s": 1e-9}, "body.dt_s"),
        ({"cell_m": 0.001}, "body.cell_m"),
        ({"window_m": 1e9}, "body.window_m"),
        ({"agents": 1.5}, "body.agents: Input should be a valid integer"),
        ({"agents": True}, "body.agents: Input should be a valid integer"),
        ({"agents": "10"}, "body.agents: Input should be a valid integer"),
        ({"seed": "x"}, "body.seed"),
        ({"seed": 2**32}, "body.seed"),
        ({"arrivals": [{"spawn": 0, "people": 5.5}]}, "body.arrivals.0.people"),
        ({"cell_m": 0.2, "window_m": 20}, "window_m / cell_m = 20 / 0.2 = 100 cells across"),
        (
            {"dt_s": 0.01, "max_time_s": 86400, "record_every_s": 10},
            "max_time_s / dt_s = 86400 / 0.01 = 8.64e+06 steps",
        ),
        ({"max_time_s": 86400, "record_every_s": 0.1}, "= 8.64e+05 samples, more than 50000"),
    ],
)
def test_crowd_bounds_are_refused_naming_the_field(
    served: Served, body: dict[str, Any], named: str
) -> None:
    message = _refused(served, "crowd", {"venue": "waterfront", "agents": 10, **body})
    assert named in message


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"cell_m": 0.2, "window_m": 8}, "window_m(=8) / cell_m(=0.2): 337900 cells × 41²"),
        ({"cell_m": 0.2, "dt_s": 0.01}, "337900 cells × 7.2e+05 steps = 2.43e+11 cell-steps"),
    ],
)
def test_a_crowd_grid_too_large_for_the_machine_is_refused_with_its_figure(
    served: Served, body: dict[str, Any], named: str
) -> None:
    message = _refused(served, "crowd", {"venue": "waterfront", "agents": 10, **body})
    assert named in message


def test_a_step_too_long_for_the_cells_is_refused_before_the_run(served: Served) -> None:
    before = served.runs()
    body = {"venue": "waterfront", "agents": 10, "cell_m": 0.2, "dt_s": 1}
    answer = served.post("crowd", body)
    assert answer.status_code == 400, answer.text
    assert "dt_s(=1.0) too long" in answer.json()["error"]["message"]
    assert served.runs() == before


def test_more_agents_than_the_venue_holds_are_refused_naming_its_capacity(served: Served) -> None:
    message = _refused(served, "crowd", {"venue": "bottleneck_040_venue", "agents": 200_000})
    assert "agents(=200000)" in message and "capacity 347 people" in message


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"duration_s": 1e12}, "body.duration_s"),
        ({"report_step_s": 1e-9}, "body.report_step_s"),
        ({"duration_s": 604800, "report_step_s": 1}, "= 6.05e+05 samples, more than 50000"),
        ({"report_step_s": 1}, "duration_s(=86400) / report_step_s(=1) = 86401 samples"),
    ],
)
def test_drainage_bounds_are_refused_naming_the_field(
    served: Served, body: dict[str, Any], named: str
) -> None:
    message = _refused(served, "flood", {"network": "model_state_plane", **body})
    assert named in message


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"tmax_s": 1e12}, "body.tmax_s"),
        ({"deltan": 1e9}, "body.deltan: Input should be a valid integer"),
        ({"deltan": 10**9}, "body.deltan: Input should be less than or equal to 100"),
        ({"deltan": True}, "body.deltan"),
    ],
)
def test_traffic_bounds_are_refused_naming_the_field(
    served: Served, body: dict[str, Any], named: str
) -> None:
    message = _refused(served, "traffic", {"network": "tokyo_arterial", **body})
    assert named in message


@pytest.mark.parametrize("seed", ["x", [], -1, True, 1.5, "7", 2**32, 2**64])
@pytest.mark.parametrize("where", ["seed", "demand"])
def test_a_site_traffic_seed_is_a_whole_number_in_uint32(
    served: Served, seed: Any, where: str
) -> None:
    body: dict[str, Any] = {"site": "oakland", "osm": "west_oakland"}
    if where == "seed":
        body["seed"] = seed
    else:
        body["demand"] = {"pairs": 10, "seed": seed}
    message = _refused(served, "traffic", body)
    assert ("body.demand.seed" if where == "demand" else "body.seed") in message


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"loads": {"SPACE": 1e9}}, "body.loads.SPACE: Input should be a valid integer"),
        ({"loads": {"SPACE": 100_000}}, "loads: 100000 people in space SPACE"),
        ({"per_space": 10_000}, "per_space: 10000 people in space"),
        ({"load_pm2": 1, "dt_s": 0.01, "max_time_s": 86400}, "= 8.64e+06 steps"),
        ({"per_space": 2.0}, "body.per_space: Input should be a valid integer"),
    ],
)
def test_a_pilots_evacuation_beyond_the_building_is_refused(
    served: Served, body: dict[str, Any], named: str
) -> None:
    if "loads" in body:
        body = {"loads": {served.space: body["loads"]["SPACE"]}}
    message = _refused(served, "evacuation", {"site": SITE, "building": served.building, **body})
    assert named.replace("SPACE", served.space) in message
    if "capacity" in message:
        assert "more than its capacity of" in message


def test_a_space_within_its_capacity_is_accepted(served: Served) -> None:
    body = {"site": SITE, "building": served.building, "loads": {served.space: 1}}
    answer = served.post("evacuation", body, role="pilot")
    assert answer.status_code == 202, answer.text


def test_a_platoon_larger_than_a_link_holds_is_refused_before_the_run(served: Served) -> None:
    # (a site's streets are merged to links long enough for the platoon instead)
    message = _refused(served, "traffic", {"network": "tokyo_arterial", "deltan": 100})
    assert "deltan(=100): link" in message and "less than one platoon of 100" in message
