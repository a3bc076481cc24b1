"""OpenStreetMap streets as Road objects: counts, widths, codes, terrain, tiles."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import shapely

from cim.errors import SourceError
from cim.importer import import_source
from cim.loaders.osm import (
    CLASS_WIDTHS,
    LANE_M,
    SURFACE_M,
    WALKWAY_CLASSES,
    load_osm,
    road_width_m,
)
from cim.store import Store


def _street_ways(path: Path) -> dict[str, dict[str, str]]:
    """Street ways of an OSM XML file, read independently of the loader."""
    root = ET.parse(path).getroot()
    nodes = {n.get("id") for n in root.iter("node")}
    ways = {}
    for way in root.iter("way"):
        tags = {t.get("k"): t.get("v") for t in way.iter("tag")}
        refs = [nd.get("ref") for nd in way.iter("nd") if nd.get("ref") in nodes]
        if tags.get("highway") in CLASS_WIDTHS and tags.get("area") != "yes" and len(refs) > 1:
            ways[f"w{way.get('id')}"] = {k: v for k, v in tags.items() if k and v}
    return ways


def test_every_street_way_becomes_a_road_of_its_width(assets: Path) -> None:
    path = assets / "traffic" / "west_oakland.osm"
    expected = _street_ways(path)
    parsed = load_osm(path)
    assert parsed.crs == "EPSG:32610"  # UTM 10N: Oakland
    assert {o.source_id for o in parsed.objects} == set(expected)
    for obj in parsed.objects:
        walk = expected[obj.source_id]["highway"] in WALKWAY_CLASSES
        assert obj.kind == ("Walkway" if walk else "Road")
    assert parsed.footprints is not None
    bounds = parsed.geometry.bounds()
    for obj, footprint, box in zip(parsed.objects, parsed.footprints, bounds, strict=True):
        tags = expected[obj.source_id]
        width = road_width_m(tags)
        assert obj.attributes["width_m"] == pytest.approx(width, abs=0.01)
        assert obj.attributes["highway"] == tags["highway"]
        assert len(obj.attributes["osm_nodes"]) >= 2
        # a slab SURFACE_M thick; its footprint about as wide as the road everywhere
        assert box[5] - box[2] == pytest.approx(SURFACE_M)
        assert footprint.is_valid and footprint.area > 0
    lanes = {"lanes": "3", "highway": "primary"}
    assert road_width_m(lanes) == 3 * LANE_M
    assert road_width_m({"width": "12.5 m", "highway": "primary"}) == 12.5
    assert road_width_m({"highway": "residential"}) == CLASS_WIDTHS["residential"][1]


def test_footprint_area_is_length_times_width_for_straight_streets(assets: Path) -> None:
    parsed = load_osm(assets / "traffic" / "west_oakland.osm")
    assert parsed.footprints is not None
    checked = 0
    for obj, footprint in zip(parsed.objects, parsed.footprints, strict=True):
        if len(obj.attributes["osm_nodes"]) != 2:
            continue
        # a two-node way is a straight segment: its ribbon is a rectangle
        rect = shapely.minimum_rotated_rectangle(footprint)
        assert footprint.area == pytest.approx(rect.area, rel=1e-4)
        corners = np.asarray(rect.exterior.coords)[:3]
        sides = np.linalg.norm(np.diff(corners, axis=0), axis=1)
        assert sides.min() == pytest.approx(obj.attributes["width_m"], abs=0.02)
        checked += 1
    assert checked > 0


def test_roads_get_unit_codes_in_their_grid_cells(store: Store, assets: Path) -> None:
    report = import_source(store, assets / "traffic" / "west_oakland.osm", site="oakland")
    roads = store.by_kind("oakland", "Road")
    assert len(roads) == report.kinds["Road"] > 10
    assert all(len(r.code) == 21 and r.code[15:17] == "04" for r in roads)
    assert all(store.get("oakland", r.parent or "").kind == "GridCell" for r in roads)


def test_pbf_streets(assets: Path) -> None:
    parsed = load_osm(assets / "traffic" / "helsinki_center.osm.pbf")
    assert parsed.crs == "EPSG:32635"  # UTM 35N: Helsinki
    assert len(parsed.objects) > 1000
    names = {o.name for o in parsed.objects}
    assert "Mannerheimintie" in names
    widths = np.array([o.attributes["width_m"] for o in parsed.objects])
    assert (widths > 0).all()


def test_bad_osm_files_are_refused_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.osm"
    broken.write_text("<osm version='0.6'><node id='1' lat='1' lon='1'/><way id='2'>")
    with pytest.raises(SourceError, match=r"broken\.osm"):
        load_osm(broken)
    empty = tmp_path / "empty.osm"
    empty.write_text("<osm version='0.6'><node id='1' lat='1' lon='1'/></osm>")
    with pytest.raises(SourceError, match="no streets"):
        load_osm(empty)
