"""OpenStreetMap road networks (.osm.pbf and .osm) into the traffic network form."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cim.errors import SourceError
from scenarios.traffic import DemandWindow, TrafficSpec, run
from scenarios.traffic.loaders import load_uxsim_csv, write_uxsim_csv
from scenarios.traffic.osm import _speed_kmh, load_osm_roads


@pytest.fixture(scope="module")
def helsinki() -> tuple:
    path = Path(__file__).parents[3] / "assets" / "traffic" / "helsinki_center.osm.pbf"
    return load_osm_roads(path)


def test_helsinki_pbf_becomes_a_strongly_connected_network(helsinki: tuple) -> None:
    import networkx as nx

    network, report = helsinki
    assert (network.n_nodes, network.n_links) == (642, 1067)
    assert report.ways == 727 and report.dropped_nodes == 69
    graph = network.graph()
    assert nx.is_strongly_connected(graph)
    assert set(network.road_class) == {"arterial", "secondary", "branch"}
    # no link is shorter than one platoon of 5 at 0.2 veh/m
    assert network.length_m.min() == pytest.approx(25.0)
    assert report.lengthened == int(np.isclose(network.length_m, 25.0).sum())


def test_tags_set_direction_lanes_speed_and_capacity(helsinki: tuple) -> None:
    network, _ = helsinki
    # Erottajankatu, way 4236349: oneway=yes, lanes=2, maxspeed=30, highway=unclassified
    i = network.link_index("osm:w4236349/0f")
    assert network.link_names[i] == "Erottajankatu w4236349/0f"
    assert (network.node_names[network.start[i]], network.node_names[network.end[i]]) == (
        "1372477605",
        "2394117042",
    )
    assert "osm:w4236349/0b" not in network.link_codes
    assert network.lanes[i] == 2
    assert network.speed_mps[i] == pytest.approx(30 / 3.6)
    assert network.jam_density_vpm[i] == pytest.approx(0.4)
    assert network.capacity_out_vps[i] == pytest.approx(2 * 900 / 3600)
    assert network.road_class[i] == "branch"


@pytest.mark.parametrize(
    ("tag", "kmh"), [("50", 50.0), ("30 mph", 48.28032), ("none", 80.0), (None, 80.0)]
)
def test_maxspeed_tags(tag: str | None, kmh: float) -> None:
    assert _speed_kmh(tag, 80.0) == pytest.approx(kmh)


def test_osm_xml_reads_too(assets: Path) -> None:
    network, report = load_osm_roads(assets / "traffic" / "west_oakland.osm")
    assert (network.n_nodes, network.n_links, report.ways) == (23, 52, 17)
    assert network.length_m.sum() == pytest.approx(11007.65, abs=0.1)


def test_a_drill_runs_on_the_osm_network_and_through_csv(helsinki: tuple, tmp_path: Path) -> None:
    network, _ = helsinki
    rng = np.random.default_rng(0)
    demand = []
    for _ in range(60):
        o, d = rng.choice(network.n_nodes, size=2, replace=False)
        demand.append(DemandWindow(network.node_names[o], network.node_names[d], 0.0, 900.0, 0.01))
    result = run(TrafficSpec(network, demand, tmax_s=3600.0))
    assert result.trips.vehicles == 60 * 5  # 9 vehicles a pair: one platoon of 5
    assert result.trips.completed_trips == result.trips.vehicles
    assert result.trips.average_delay_s >= 0
    write_uxsim_csv(network, demand, tmp_path / "hel")
    again, demand_again = load_uxsim_csv(tmp_path / "hel")
    assert again.link_codes == network.link_codes
    assert np.allclose(again.capacity_out_vps, network.capacity_out_vps)
    assert run(TrafficSpec(again, demand_again, tmax_s=3600.0)).summary()["completed_trips"] == 300


def test_bad_osm_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        load_osm_roads(tmp_path / "missing.osm")
    broken = tmp_path / "broken.osm"
    broken.write_text("<osm><way id='1'><nd ref=")
    with pytest.raises(SourceError, match=r"broken.osm"):
        load_osm_roads(broken)
