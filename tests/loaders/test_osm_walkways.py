"""OSM walkways and pedestrian areas as CIM objects, and the walk graph rebuilt from them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import osmium
import pytest
import shapely
from pyproj import Geod

from cim.importer import import_source
from cim.loaders.osm import CLASS_WIDTHS, WALKWAY_CLASSES, load_osm
from cim.networks.walkways import walk_graph
from cim.store import Store


def test_west_oakland_footways_are_walkways_with_widths_and_lengths(assets: Path) -> None:
    path = assets / "crowd" / "west_oakland.osm"
    root = ET.parse(path).getroot()
    where = {
        n.get("id"): (float(n.get("lon", "")), float(n.get("lat", ""))) for n in root.iter("node")
    }
    geod = Geod(ellps="WGS84")
    expected = {}
    for way in root.iter("way"):
        tags = {t.get("k"): t.get("v") for t in way.iter("tag")}
        if tags.get("highway") in WALKWAY_CLASSES and tags.get("area") != "yes":
            lon, lat = zip(*(where[nd.get("ref")] for nd in way.iter("nd")), strict=True)
            expected[f"w{way.get('id')}"] = (tags, geod.line_length(lon, lat))
    parsed = load_osm(path)
    walkways = [o for o in parsed.objects if o.kind == "Walkway"]
    assert {o.source_id for o in walkways} == set(expected) and len(walkways) == 7
    for obj in walkways:
        tags, length = expected[obj.source_id]
        width = float(tags.get("width", CLASS_WIDTHS[tags["highway"]][1]))
        assert obj.attributes["width_m"] == pytest.approx(width)
        # UTM lengths differ from geodesic ones by the zone's scale factor, under 0.1 %
        assert obj.attributes["length_m"] == pytest.approx(length, rel=1e-3)
        assert obj.attributes["area_m2"] == pytest.approx(
            width * obj.attributes["length_m"], rel=1e-3
        )
        assert len(obj.attributes["osm_lonlat"]) == len(obj.attributes["osm_nodes"])


def test_helsinki_squares_are_pedestrian_areas(assets: Path) -> None:
    path = assets / "traffic" / "helsinki_center.osm.pbf"
    complete = set()
    for obj in (
        osmium.FileProcessor(str(path))
        .with_locations()
        .with_filter(osmium.filter.KeyFilter("highway"))
    ):
        tags = obj.tags
        if (
            isinstance(obj, osmium.osm.Way)
            and tags.get("highway") in WALKWAY_CLASSES
            and tags.get("area") == "yes"
            and obj.is_closed()
            and all(n.location.valid() for n in obj.nodes)
        ):
            complete.add(f"w{obj.id}")
    parsed = load_osm(path)
    assert parsed.footprints is not None
    areas = {
        o.source_id: (o, f)
        for o, f in zip(parsed.objects, parsed.footprints, strict=True)
        if o.kind == "PedestrianArea"
    }
    # every complete closed area=yes walkway way, plus multipolygon relations
    assert {s for s in areas if s.startswith("w")} == complete
    assert any(s.startswith("r") for s in areas)
    assert "Kompassitaso" in {o.name for o, _ in areas.values()}
    for obj, footprint in areas.values():
        assert obj.attributes["area_m2"] == pytest.approx(footprint.area, abs=0.006)
        assert sum(obj.attributes["osm_rings"]) == len(obj.attributes["osm_nodes"])


def test_walk_graph_of_west_oakland_is_connected_and_coded(store: Store, assets: Path) -> None:
    path = assets / "crowd" / "west_oakland.osm"
    report = import_source(store, path, site="oakland")
    walkways = {o.code: o for o in store.by_kind("oakland", "Walkway")}
    assert len(walkways) == report.kinds["Walkway"] == 7
    assert all(len(c) == 21 and c[15:17] == "04" for c in walkways)
    crs = store.site("oakland").crs
    graph = walk_graph(store.all_objects("oakland"), crs=crs)
    assert nx.is_connected(graph)
    assert {c for _, _, codes in graph.edges(data="codes") for c in codes} == set(walkways)
    # the walkable area is the walkways' length x width, split over their edges
    total = sum(o.attributes["length_m"] * o.attributes["width_m"] for o in walkways.values())
    assert sum(a for *_, a in graph.edges(data="area_m2")) == pytest.approx(total, rel=1e-3)
    # nodes lie on their walkways' ribbons, in the site CRS
    for obj in walkways.values():
        ribbon = shapely.buffer(obj.footprint, 0.01)
        refs = obj.attributes["osm_nodes"]
        assert refs[0] in graph and refs[-1] in graph
        for ref in (r for r in refs if r in graph):
            node = graph.nodes[ref]
            assert ribbon.covers(shapely.Point(node["x"], node["y"]))
    again = import_source(store, path, site="oakland")
    assert again.objects == report.objects
    assert {o.code for o in store.by_kind("oakland", "Walkway")} == set(walkways)


def test_a_square_joins_the_walkways_that_reach_it(store: Store, assets: Path) -> None:
    import_source(store, assets / "traffic" / "helsinki_center.osm.pbf", site="helsinki")
    objects = store.all_objects("helsinki")
    graph = walk_graph(objects, crs=store.site("helsinki").crs)
    hubs = [n for n in graph if isinstance(n, str) and n.startswith("area:")]
    assert len(hubs) == len(store.by_kind("helsinki", "PedestrianArea"))
    reached = [h for h in hubs if graph.degree(h) > 0]
    assert len(reached) > len(hubs) // 2
    largest = max(nx.connected_components(graph), key=len)
    assert len(largest) > 0.6 * graph.number_of_nodes()
    assert sum(1 for h in hubs if h in largest) > 10
