"""Walkway graphs from OSM: lengths are geodesic lengths, widths and capacities attached."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import pytest
from pyproj import Geod

from cim.errors import SourceError
from cim.importer import import_source
from cim.store import Store
from scenarios.crowd.walkways import DEFAULT_WIDTH_M, load_walkways, walkways_from_cim


def test_west_oakland_walkways(crowd_assets: Path) -> None:
    path = crowd_assets / "west_oakland.osm"
    graph = load_walkways(path)
    kinds = nx.get_edge_attributes(graph, "kind")
    assert sum(1 for k in kinds.values() if k == "footway") == 14  # a loop counts twice
    assert graph.number_of_edges() == 60
    assert sum(1 for w in nx.get_edge_attributes(graph, "way").values() if ";" in w) == 4
    # total walkway area equals the WGS84 geodesic length × width of the same ways
    # (independent parse; parallel ways merge into one link whose areas add up)
    root = ET.parse(path).getroot()
    where = {n.get("id"): (float(n.get("lon")), float(n.get("lat"))) for n in root.iter("node")}
    geod = Geod(ellps="WGS84")
    total = 0.0
    for way in root.iter("way"):
        tags = {t.get("k"): t.get("v") for t in way.iter("tag")}
        if DEFAULT_WIDTH_M.get(tags.get("highway", ""), 0.0) <= 0:
            continue
        if tags.get("foot") == "no" or tags.get("access") == "private":
            continue
        lon, lat = zip(*(where[nd.get("ref")] for nd in way.iter("nd")), strict=True)
        total += geod.line_length(lon, lat) * DEFAULT_WIDTH_M[tags["highway"]]
    ours = sum(d["area_m2"] for *_, d in graph.edges(data=True))
    assert ours == pytest.approx(total, rel=1e-3)
    for *_, data in graph.edges(data=True):
        if ";" not in data["way"]:
            assert data["area_m2"] == pytest.approx(data["length_m"] * data["width_m"])
        assert data["capacity_pps"] == pytest.approx(1.9 * data["width_m"])


def test_bad_osm_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.osm"
    bad.write_text('<osm><way id="7"><nd ref="1"/><tag k="highway" v="footway"/></way></osm>')
    with pytest.raises(SourceError, match=r"'way 7'.*missing node 1"):
        load_walkways(bad)
    bad.write_text("<html/>")
    with pytest.raises(SourceError, match="expected <osm>"):
        load_walkways(bad)


def test_the_walkway_graph_from_the_cim_is_the_graph_from_the_file(
    store: Store, crowd_assets: Path
) -> None:
    path = crowd_assets / "west_oakland.osm"
    import_source(store, path, site="oakland")
    objects = store.all_objects("oakland")
    from_file = load_walkways(path)
    from_cim = walkways_from_cim(objects)
    assert set(from_cim.nodes) == set(from_file.nodes)
    assert {frozenset(e) for e in from_cim.edges} == {frozenset(e) for e in from_file.edges}
    codes = {o.source_id: o.code for o in objects}
    for u, v, data in from_file.edges(data=True):
        ours = from_cim.edges[u, v]
        for key in ("length_m", "width_m", "area_m2", "capacity_pps"):
            assert ours[key] == pytest.approx(data[key], rel=1e-9), key
        assert ours["way"] == data["way"] and ours["kind"] == data["kind"]
        assert ours["codes"] == [codes[f"w{w}"] for w in data["way"].split(";")]
