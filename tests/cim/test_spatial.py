"""Spatial queries against brute-force shapely answers on the Den Haag tile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely

from cim.importer import import_source
from cim.model import ADMIN_KINDS
from cim.spatial import SiteIndex
from cim.store import open_store


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, denhaag_path: Path) -> SiteIndex:
    store = open_store(tmp_path_factory.mktemp("spatial") / "t.db")
    import_source(store, denhaag_path, site="dh")
    built = SiteIndex.build(store.all_objects("dh"))
    store.close()
    return built


def _users(index: SiteIndex) -> list:
    return [o for o in index.objects if o.kind not in ADMIN_KINDS]


def test_point_query_matches_brute_force(index: SiteIndex) -> None:
    rng = np.random.default_rng(7)
    site_box = index.boxes[~np.isnan(index.boxes).any(axis=1)]
    lo, hi = site_box[:, :2].min(axis=0), site_box[:, 3:5].max(axis=0)
    for x, y in rng.uniform(lo, hi, size=(40, 2)):
        point = shapely.Point(x, y)
        expected = {
            o.code
            for o in _users(index)
            if o.footprint is not None and o.footprint.intersects(point)
        }
        assert {o.code for o in index.at_point(x, y)} == expected


def test_point_inside_a_building_finds_it_and_its_part(index: SiteIndex) -> None:
    building = next(o for o in index.objects if o.kind == "Building")
    p = building.footprint.representative_point()
    found = {o.code for o in index.at_point(p.x, p.y, kinds={"Building", "BuildingPart"})}
    assert building.code in found
    assert any(code.startswith(building.code) and code != building.code for code in found)


def test_bbox_query_matches_brute_force(index: SiteIndex) -> None:
    minx, miny, maxx, maxy = 78500.0, 457800.0, 78700.0, 457950.0
    expected = {
        o.code
        for o in _users(index)
        if o.bbox is not None
        and o.bbox[0] <= maxx
        and o.bbox[3] >= minx
        and o.bbox[1] <= maxy
        and o.bbox[4] >= miny
    }
    got = {o.code for o in index.in_bbox(minx, miny, maxx, maxy)}
    assert got == expected and len(got) > 20
    with pytest.raises(ValueError, match="min <= max"):
        index.in_bbox(1, 1, 0, 0)


def test_nearest_is_sorted_and_matches_brute_force(index: SiteIndex) -> None:
    x, y = 78700.0, 457900.0
    buildings = [o for o in index.objects if o.kind == "Building"]
    distances = sorted((o.footprint.distance(shapely.Point(x, y)), o.code) for o in buildings)
    got = index.nearest(x, y, 5, kinds={"Building"})
    assert [round(d, 6) for _, d in got] == [round(d, 6) for d, _ in distances[:5]]
    assert [d for _, d in got] == sorted(d for _, d in got)
    with pytest.raises(ValueError, match="count"):
        index.nearest(x, y, 0)


def test_within_polygon(index: SiteIndex) -> None:
    building = next(o for o in index.objects if o.kind == "Building")
    area = building.footprint.buffer(0.5)
    got = {o.code for o in index.within(area)}
    expected = {
        o.code for o in _users(index) if o.footprint is not None and area.contains(o.footprint)
    }
    assert got == expected and building.code in got


def test_code_prefix_is_a_grid_cell(index: SiteIndex) -> None:
    building = next(o for o in index.objects if o.kind == "Building")
    cell = building.parent
    got = {o.code for o in index.with_prefix(cell)}
    assert cell in got and building.code in got
    assert all(code.startswith(cell) for code in got)
    assert len(index.with_prefix(cell[:12])) > len(got)
