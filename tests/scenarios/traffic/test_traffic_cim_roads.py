"""A site's ``Road`` objects make the same traffic network as the OSM file they were imported
from, link by link, and a seeded site drill on them gives the file network's KPIs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cim.importer import import_source
from cim.loaders.osm import read_ways
from cim.model import CimObject
from cim.networks.roads import codes_by_way, ways_from_roads
from cim.store import Store, open_store
from scenarios.drills import drill
from scenarios.drills.base import DrillRequestError, PrepareContext, RunContext
from scenarios.drills.traffic import RandomDemand, random_demand, road_network
from scenarios.traffic import RoadNetwork, TrafficSpec
from scenarios.traffic import run as run_traffic
from scenarios.traffic.osm import DRIVABLE_CLASSES, load_osm_roads, network_from_ways

ASSETS = Path(__file__).resolve().parents[3] / "assets"
#: site -> the OSM file imported into it
FILES = {
    "oakland": ASSETS / "traffic" / "west_oakland.osm",
    "helsinki": ASSETS / "traffic" / "helsinki_center.osm.pbf",
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    opened = open_store(tmp_path_factory.mktemp("roads") / "t.db")
    try:
        for site, path in FILES.items():
            import_source(opened, path, site=site)
        yield opened
    finally:
        opened.close()


def _roads(store: Store, site: str) -> list[CimObject]:
    return store.by_kind(site, "Road")


def _links(network: RoadNetwork) -> list[tuple[Any, ...]]:
    """Every link with what the kernel reads of it, by name."""
    return [
        (
            network.link_codes[i],
            network.link_names[i],
            network.node_names[network.start[i]],
            network.node_names[network.end[i]],
            float(network.length_m[i]),
            int(network.lanes[i]),
            float(network.speed_mps[i]),
            float(network.capacity_out_vps[i]),
            float(network.jam_density_vpm[i]),
            network.road_class[i],
        )
        for i in range(network.n_links)
    ]


@pytest.mark.parametrize("site", sorted(FILES))
def test_the_roads_give_back_the_files_drivable_ways(store: Store, site: str) -> None:
    from_file = read_ways(FILES[site], set(DRIVABLE_CLASSES), skip_access=True)
    from_cim = ways_from_roads(_roads(store, site), DRIVABLE_CLASSES, skip_access=True)
    assert [w[0] for w in from_cim] == [w[0] for w in from_file]
    assert from_cim == from_file  # tags, node ids and WGS84 positions, exactly


@pytest.mark.parametrize(("site", "nodes", "links"), [("oakland", 23, 52), ("helsinki", 642, 1067)])
def test_the_cim_network_equals_the_file_network_link_by_link(
    store: Store, site: str, nodes: int, links: int
) -> None:
    from_file, file_report = load_osm_roads(FILES[site], deltan=5)
    from_cim, road_of_way = road_network(_roads(store, site), f"site {site}", deltan=5)
    assert (from_cim.n_nodes, from_cim.n_links) == (nodes, links)
    assert _links(from_cim) == _links(from_file)
    assert from_cim.node_names == from_file.node_names
    assert np.array_equal(from_cim.x, from_file.x) and np.array_equal(from_cim.y, from_file.y)
    assert np.array_equal(from_cim.capacity_in_vps, from_file.capacity_in_vps, equal_nan=True)
    assert np.array_equal(from_cim.merge_priority, from_file.merge_priority)
    ways = _roads(store, site)
    _, cim_report = network_from_ways(
        ways_from_roads(ways, DRIVABLE_CLASSES, skip_access=True), site, deltan=5
    )
    assert cim_report == file_report
    # every link names a way the site holds as a Road
    assert {c.removeprefix("osm:").split("/")[0] for c in from_cim.link_codes} <= set(road_of_way)
    assert road_of_way == {o.source_id: o.code for o in ways}


def test_the_network_follows_the_cim_not_the_file(store: Store) -> None:
    roads = _roads(store, "oakland")
    network, _ = road_network(roads, "site oakland", deltan=5)
    two_way = next(c for c in network.link_codes if c.endswith("b"))
    way = two_way.removeprefix("osm:").split("/")[0]
    edited = [
        dataclasses.replace(o, attributes={**o.attributes, "oneway": "yes"})
        if o.source_id == way
        else o
        for o in roads
    ]
    changed, _ = road_network(edited, "site oakland", deltan=5)
    assert two_way not in changed.link_codes
    assert two_way[:-1] + "f" in changed.link_codes  # now one way only


def _way(code: str, sid: str, tags: dict[str, str], nodes: int = 2) -> CimObject:
    attributes: dict[str, Any] = {
        **tags,
        "osm_nodes": list(range(1, nodes + 1)),
        "osm_lonlat": [[float(i), 0.0] for i in range(nodes)],
        "width_m": 7.0,
        "lod": "1",
        "source_id": sid,
    }
    return CimObject(code, "Road", "r", None, "x.osm", sid, attributes, None)


def test_roads_are_filtered_as_the_file_reader_filters_ways() -> None:
    objects = [
        _way("a1", "w1", {"highway": "residential"}),
        _way("a2", "w2", {"highway": "service"}),  # not drivable
        _way("a3", "w3", {"highway": "residential", "access": "private"}),
        _way("a4", "w4", {"highway": "residential", "area": "yes"}),
        _way("a5", "w5", {"highway": "residential"}, nodes=1),
        _way("a6", "r6", {"highway": "residential"}),  # a relation, not a way
        _way("a0", "w7", {"highway": "primary", "name": "Main"}),
        _way("a9", "w7", {"highway": "primary", "name": "Main, again"}),  # imported twice
    ]
    ways = ways_from_roads(objects, DRIVABLE_CLASSES, skip_access=True)
    assert [(w[0], w[1]) for w in ways] == [
        (1, {"highway": "residential"}),
        (7, {"highway": "primary", "name": "Main"}),
    ]
    assert ways[0][2:] == ([1, 2], [0.0, 1.0], [0.0, 0.0])
    with_private = ways_from_roads(objects, DRIVABLE_CLASSES)
    assert [w[0] for w in with_private] == [1, 3, 7]
    assert codes_by_way(objects) == {f"w{i}": f"a{i}" for i in range(1, 6)} | {"w7": "a0"}
    broken = dataclasses.replace(objects[0], attributes={**objects[0].attributes, "osm_nodes": [1]})
    with pytest.raises(ValueError, match="a1: osm_nodes and osm_lonlat differ"):
        ways_from_roads([broken], DRIVABLE_CLASSES)
    with pytest.raises(DrillRequestError, match="site x holds no drivable streets"):
        road_network(objects[1:2], "site x", deltan=5)


def _contexts(store: Store, tmp_path: Path, data_dir: Path) -> tuple[PrepareContext, RunContext]:
    files = tmp_path / "files"
    files.mkdir(exist_ok=True)
    prepare = PrepareContext(store, data_dir, tmp_path / "cache", "")
    return prepare, RunContext(store, data_dir, tmp_path / "cache", files, lambda f, m: None)


def _without_wall(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k != "wall_s"}


@pytest.mark.parametrize(
    "body",
    [
        {"site": "oakland", "osm": "west_oakland"},
        {"site": "oakland"},  # every road of the site: the same file
    ],
)
def test_a_seeded_site_drill_gives_the_file_networks_summary(
    store: Store, tmp_path: Path, body: dict[str, Any]
) -> None:
    demand = {"pairs": 40, "seed": 1}
    body = {**body, "demand": demand, "tmax_s": 1800, "seed": 3}
    # an empty catalogue: the drill reads the site's roads, never the file
    pc, rc = _contexts(store, tmp_path, tmp_path / "empty")
    traffic = drill("traffic")
    result = traffic.run(traffic.prepare(traffic.spec.model_validate(body), pc), rc)

    network, _ = load_osm_roads(FILES["oakland"], deltan=5)
    windows = random_demand(network, RandomDemand.model_validate(demand))
    engine = run_traffic(TrafficSpec(network=network, demand=windows, tmax_s=1800, seed=3))
    assert engine.trips.vehicles > 0
    assert _without_wall(result.summary) == _without_wall(engine.summary())
    assert result.detail["links"]["codes"] == network.link_codes
    assert result.detail["trips"] == engine.trips.to_dict()


def test_a_site_without_roads_of_the_file_is_refused(store: Store, tmp_path: Path) -> None:
    pc, _ = _contexts(store, tmp_path, ASSETS)
    traffic = drill("traffic")
    body = {"site": "oakland", "osm": "helsinki_center"}
    with pytest.raises(DrillRequestError, match=r"holds no streets from helsinki_center\.osm\.pbf"):
        traffic.prepare(traffic.spec.model_validate(body), pc)
    spec = traffic.spec.model_validate({"site": "helsinki", "osm": "helsinki_center"})
    assert traffic.prepare(spec, pc) == spec
