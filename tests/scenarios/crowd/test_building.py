"""Evacuation of one building: the buildingSMART Duplex imported from IFC into a temp store."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from pathlib import Path

import networkx as nx
import pytest

from api.cli import main
from cim.errors import NotFoundError
from cim.importer import import_source
from cim.loaders import LoadOptions
from cim.store import Store, open_store
from scenarios.crowd.building import (
    BuildingGraph,
    BuildingGraphError,
    Closure,
    EvacuationSpec,
    StoreyRelease,
    load_building,
    simulate,
)
from scenarios.crowd.building.graph import DOOR, STAIR, STAIR_END

pytest.importorskip("ifcopenshell")

DUPLEX = Path(__file__).resolve().parents[3] / "assets" / "ifc" / "Duplex_A_20110907.ifc"
SITE = "campus"


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("evac") / "t.db"
    store = open_store(path)
    try:
        import_source(
            store,
            DUPLEX,
            site=SITE,
            options=LoadOptions(at=(85000.0, 446000.0, 30.0), crs="EPSG:28992"),
        )
    finally:
        store.close()
    return path


@pytest.fixture(scope="module")
def store(store_path: Path) -> Iterator[Store]:
    opened = open_store(store_path)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def building(store: Store) -> str:
    (found,) = store.by_kind(SITE, "IfcBuilding")
    return found.code


@pytest.fixture(scope="module")
def graph(store: Store, building: str) -> BuildingGraph:
    return load_building(store, SITE, building)


def _storey(store: Store, name: str) -> str:
    return next(o.code for o in store.by_kind(SITE, "IfcBuildingStorey") if o.name == name)


def _spec(building: str, **kw: object) -> EvacuationSpec:
    return EvacuationSpec(site=SITE, building=building, **kw)  # type: ignore[arg-type]


def test_walk_graph_of_the_duplex(graph: BuildingGraph, store: Store) -> None:
    summary = graph.summary()
    # 20 rooms on levels 1-2, 1 roof space no door reaches; both flats' stairs
    assert summary["spaces"] == 21 and summary["stairs"] == 2
    roof = _storey(store, "Roof")
    assert summary["isolated_spaces"] == [
        o.code for o in store.by_kind(SITE, "IfcSpace") if o.parent == roof
    ]
    # every one of the 14 doors joins two rooms or a room and the outside
    assert summary["doors"] == len(store.by_kind(SITE, "IfcDoor")) == 14
    # each flat: front door (foyer) and garden door (living room), on Level 1
    level1 = _storey(store, "Level 1")
    exits = [link for link in graph.links if link.exit]
    assert len(exits) == 4
    assert all(graph.nodes[link.a].storey == level1 for link in exits)
    # stairs join Level 1 and Level 2
    level2 = _storey(store, "Level 2")
    for i, node in enumerate(graph.nodes):
        if node.kind != STAIR:
            continue
        ends = [graph.nodes[link.a].storey for link in graph.links if link.b == i]
        assert sorted(ends) == [level1, level2]
        assert 4.0 < node.slope_m < 6.0  # 15 treads of 0.25 m, 3.1 m rise
    # every room of levels 1-2 reaches the outside
    g = graph.to_networkx()
    for node in graph.nodes:
        if node.code not in graph.isolated:
            assert nx.has_path(g, node.code, "outside"), node.name


def test_door_adjacency_agrees_with_the_ifc_space_boundaries(graph: BuildingGraph) -> None:
    """Where the file's IfcRelSpaceBoundary names one or two rooms of a door, the geometric
    adjacency finds the same rooms."""
    ifcopenshell = pytest.importorskip("ifcopenshell")
    model = ifcopenshell.open(str(DUPLEX))
    bounded: dict[str, set[str]] = {}
    for rel in model.by_type("IfcRelSpaceBoundary"):
        element = rel.RelatedBuildingElement
        if element is not None and element.is_a("IfcDoor"):
            bounded.setdefault(element.GlobalId, set()).add(rel.RelatingSpace.GlobalId)
    checked = 0
    for link in graph.links:
        if link.kind != DOOR or link.global_id not in bounded:
            continue
        spaces = bounded[link.global_id]
        ours = {graph.nodes[link.a].global_id} | (
            {graph.nodes[link.b].global_id} if link.b >= 0 else set()
        )
        if len(spaces) > 2:  # one door of the file has three boundaries: ours are two of them
            assert ours < spaces, link.code
            continue
        assert ours == spaces, link.code
        checked += 1
    assert checked == 13


def test_everyone_gets_out_no_faster_than_free_walking(graph: BuildingGraph, building: str) -> None:
    result = simulate(graph, _spec(building, load_pm2=0.5))
    s = result["summary"]
    assert s["people"] == sum(result["occupants"].values()) > 50
    assert s["everyone_out"] and s["out"] == s["people"]
    assert sum(link["passed"] for link in result["links"] if link["kind"] == "exit") == s["people"]
    assert s["t100_s"] > s["longest_walk_m"] / 1.34
    assert s["t100_s"] >= s["longest_free_walk_s"]
    assert s["t90_s"] <= s["t100_s"]
    by_name = {st["name"]: st for st in result["storeys"]}
    assert set(by_name) == {"Level 1", "Level 2"}
    assert by_name["Level 2"]["clear_s"] <= by_name["Level 2"]["out_s"] <= s["t100_s"]
    # the upstairs people queue for the stairs: a bottleneck named by code and GlobalId
    assert s["bottlenecks"] and s["bottlenecks"][0]["global_id"]
    assert any(b["kind"] in (STAIR_END, "exit") for b in s["bottlenecks"])
    densities = result["max_density_pm2"]
    assert max(densities.values()) == s["max_density_pm2"] > 0.5
    assert all(v <= 5.4 + 1e-9 for v in densities.values())


def test_the_drill_repeats_exactly(graph: BuildingGraph, building: str) -> None:
    a = simulate(graph, _spec(building, per_space=3))
    b = simulate(graph, _spec(building, per_space=3))
    a["summary"].pop("wall_s")
    b["summary"].pop("wall_s")
    assert a == b
    assert a["summary"]["people"] == 3 * 20


def test_closing_both_front_doors_and_staging_take_longer(
    graph: BuildingGraph, building: str, store: Store
) -> None:
    base = simulate(graph, _spec(building, load_pm2=0.5))["summary"]["t100_s"]
    fronts = [
        link.code
        for link in graph.links
        if link.exit and link.width_m > 1.0  # the 1.25 m front doors; the garden doors remain
    ]
    assert len(fronts) == 2
    closed = simulate(
        graph, _spec(building, load_pm2=0.5, closures=tuple(Closure(c) for c in fronts))
    )
    assert closed["summary"]["everyone_out"]
    assert closed["summary"]["t100_s"] > base
    assert all(link["passed"] == 0 for link in closed["links"] if link["code"] in fronts)
    staged = simulate(
        graph,
        _spec(building, load_pm2=0.5, stages=(StoreyRelease(_storey(store, "Level 2"), 60.0),)),
    )
    upstairs = next(s for s in staged["storeys"] if s["name"] == "Level 2")
    assert staged["summary"]["everyone_out"]
    assert upstairs["clear_s"] > 60.0 and staged["summary"]["t100_s"] > base


def test_closing_a_flats_only_stair_traps_its_upstairs_rooms(
    graph: BuildingGraph, building: str, store: Store
) -> None:
    stair = next(n for n in graph.nodes if n.kind == STAIR)
    result = simulate(graph, _spec(building, per_space=2, closures=(Closure(stair.code),)))
    s = result["summary"]
    assert not s["everyone_out"] and s["t100_s"] is None
    level2 = _storey(store, "Level 2")
    assert result["trapped"] and all(code.startswith(level2) for code in result["trapped"])
    assert s["people"] - s["out"] == sum(result["trapped"].values()) == 2 * 5
    # closed half-way, some have already gone down
    late = simulate(graph, _spec(building, per_space=2, closures=(Closure(stair.code, 8.0),)))
    assert sum(late["trapped"].values()) < 10


def test_bad_codes_are_refused_clearly(store: Store, building: str, graph: BuildingGraph) -> None:
    with pytest.raises(NotFoundError, match="no building '123' in site 'campus'"):
        load_building(store, SITE, "123")
    storey = _storey(store, "Level 1")
    with pytest.raises(BuildingGraphError, match="IfcBuildingStorey, not an IfcBuilding"):
        load_building(store, SITE, storey)
    with pytest.raises(ValueError, match="close '42': not a door or stair of building"):
        simulate(graph, _spec(building, closures=(Closure("42"),)))
    with pytest.raises(ValueError, match="stage '42': not a storey"):
        simulate(graph, _spec(building, stages=(StoreyRelease("42", 1.0),)))
    with pytest.raises(ValueError, match="loads name nowhere"):
        simulate(graph, _spec(building, loads={"nowhere": 3}))
    with pytest.raises(ValueError, match="give one of"):
        _spec(building, load_pm2=1.0, per_space=2)


def test_given_loads_per_space(graph: BuildingGraph, building: str) -> None:
    rooms = [n.code for n in graph.nodes if n.kind == "space" and n.code not in graph.isolated]
    result = simulate(graph, _spec(building, loads={rooms[0]: 7, rooms[-1]: 4}))
    assert result["occupants"] == {rooms[0]: 7, rooms[-1]: 4}
    assert result["summary"]["everyone_out"]
    empty = simulate(graph, _spec(building, loads={rooms[0]: 0}))["summary"]
    assert empty["people"] == 0 and empty["everyone_out"] and empty["t100_s"] == 0.0


def test_cli_runs_the_drill(
    store_path: Path, building: str, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    level2 = _storey(store, "Level 2")
    argv = ["--store", str(store_path), "run", "evacuation", "--site", SITE]
    assert main([*argv, "--building", building, "--load", "0.3", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert (
        main([*argv, "--building", building, "--load", "0.3", "--stage", f"{level2}@30", "--json"])
        == 0
    )
    staged = json.loads(capsys.readouterr().out)
    assert plain["everyone_out"] and staged["everyone_out"]
    assert staged["t100_s"] > plain["t100_s"] > 0
    assert [s["name"] for s in plain["storeys"]] == ["Level 1", "Level 2"]
    assert main([*argv, "--building", "123", "--json"]) == 1
    assert "no building '123'" in capsys.readouterr().err
    # no sensor has counted anyone yet: --live says so
    assert main([*argv, "--building", building, "--live", "--json"]) == 2
    assert "no people count has come from a sensor" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: T must be seconds
        main([*argv, "--building", building, "--close-stair", "9@x", "--json"])


def test_parameters_are_data(graph: BuildingGraph, building: str) -> None:
    """A slower stair table (k halved) makes the upstairs slower, nothing else changes."""
    from scenarios.crowd.building import BuildingFlow

    base = simulate(graph, _spec(building, per_space=2))
    flow = BuildingFlow(stair_a=0.266 * 1.5)
    slow = simulate(graph, dataclasses.replace(_spec(building, per_space=2), flow=flow))
    assert slow["summary"]["t100_s"] >= base["summary"]["t100_s"]
    assert math.isfinite(slow["summary"]["t100_s"])
