"""Unit-grid cells (15 digits), unit and part codes, street components (16 digits)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from cim.codes.assign import SequenceAllocator
from cim.codes.grid import GridSpec, community_code, component_code
from cim.codes.tables import component_class, load_table, unit_class
from cim.errors import SourceError
from cim.importer import import_source
from cim.loaders import LoadOptions
from cim.store import Store


def test_every_object_sits_in_the_cell_holding_its_footprint_centroid(
    store: Store, denhaag_path: Path
) -> None:
    import_source(store, denhaag_path, site="dh")
    objects = {o.code: o for o in store.all_objects("dh")}
    cells = {c: o for c, o in objects.items() if o.kind == "GridCell"}
    assert cells and all(re.fullmatch(r"\d{15}", c) for c in cells)
    buildings = [o for o in objects.values() if o.kind == "Building"]
    assert len(buildings) == 844
    for building in buildings:
        assert re.fullmatch(r"\d{21}", building.code)
        cell = cells[building.parent]
        centroid = building.footprint.centroid
        minx, miny, maxx, maxy = cell.footprint.bounds
        assert minx <= centroid.x < maxx and miny <= centroid.y < maxy
        assert building.code.startswith(cell.code + "01")  # unit class 01: Building
    for part in (o for o in objects.values() if o.kind == "BuildingPart"):
        assert re.fullmatch(r"\d{24}", part.code)
        assert objects[part.parent].kind == "Building"
        assert part.code.startswith(part.parent)
    # the tree: district -> street -> community -> cell
    for cell in cells.values():
        community = objects[cell.parent]
        street = objects[community.parent]
        district = objects[street.parent]
        assert (community.kind, street.kind, district.kind) == ("Community", "Street", "District")
        assert district.parent is None
        assert cell.code[:12] == community.code and community.code[:9] == street.code


def test_cells_tile_the_extent_without_gaps(store: Store, denhaag_path: Path) -> None:
    import_source(store, denhaag_path, site="dh")
    site = store.site("dh")
    cells = [o.footprint for o in store.all_objects("dh") if o.kind == "GridCell"]
    union = shapely.union_all(cells)
    assert union.geom_type == "Polygon" and not list(union.interiors)
    assert union.area == pytest.approx(len(cells) * site.cell_m**2)
    assert site.bbox is not None
    assert union.contains(shapely.box(*site.bbox[:2], *site.bbox[3:5]))


def test_cell_size_is_configurable(store: Store, denhaag_path: Path) -> None:
    from cim.importer import import_source as run

    run(store, denhaag_path, site="coarse", cell_m=250.0)
    cells = [o for o in store.all_objects("coarse") if o.kind == "GridCell"]
    assert {round(c.footprint.area) for c in cells} == {62_500}


def test_street_components_get_16_digit_codes(store: Store, assets: Path) -> None:
    import_source(
        store, assets / "bellinge/bellinge_manholes.geojson", site="odense", division="320508001001"
    )
    features = json.loads((assets / "bellinge/bellinge_manholes.geojson").read_text())["features"]
    (minor,) = {f["properties"]["component_class"] for f in features}
    components = [o for o in store.all_objects("odense") if o.source]
    assert len(components) == len(features) == 15
    serials = []
    for obj in components:
        assert re.fullmatch(rf"320508{minor}\d{{6}}", obj.code), obj.code
        assert obj.attributes["BGID"] == obj.parent
        assert re.fullmatch(r"320508001\d{6}", obj.parent)
        serials.append(int(obj.code[-6:]))
    assert sorted(serials) == list(range(1, 16))


def test_code_tables_are_versioned_data() -> None:
    table = load_table("gbt30428.2-2013")
    assert table["identifier_digits"] == 16
    assert table["minor"]["0101"] == "上水井盖"
    assert unit_class("Building") == "01"
    assert unit_class("SomethingNew") == "99"
    assert component_class("CityFurniture", {}) == "0108"
    assert component_class("Building", {}) is None
    with pytest.raises(ValueError, match="not in table"):
        component_class("Component", {"component_class": "9999"})
    with pytest.raises(KeyError):
        load_table("no-such-table")


def test_component_code_layout() -> None:
    assert component_code("320508", "0101", 1) == "3205080101000001"
    with pytest.raises(ValueError, match="serial"):
        component_code("320508", "0101", 1_000_000)
    with pytest.raises(ValueError, match="6 digits"):
        component_code("3205", "0101", 1)


def test_communities_are_numbered_from_the_division() -> None:
    assert community_code("310101001001", 0) == "310101001001"
    assert community_code("310101001001", 4) == "310101001005"
    with pytest.raises(ValueError, match="exceeds 999"):
        community_code("310101001990", 10)


@settings(deadline=None)
@given(
    st.lists(st.tuples(st.floats(-5e4, 5e4), st.floats(-5e4, 5e4)), min_size=1, max_size=200),
    st.sampled_from([10.0, 100.0, 333.0]),
)
def test_cell_numbers_are_unique_within_a_community(points: list, cell_m: float) -> None:
    grid = GridSpec("310101001001", 1000.0, -2000.0, cell_m=cell_m)
    cells = grid.cell_index(np.array(points))
    seq = grid.sequence(cells)
    assert ((seq >= 1) & (seq <= grid.block**2)).all()
    blocks = grid.block_of(cells)
    keys = {(tuple(b), int(s)) for b, s in zip(blocks.tolist(), seq.tolist(), strict=True)}
    assert len(keys) == len({tuple(c) for c in cells.tolist()})
    for (x, y), (x0, y0, x1, y1) in zip(points, grid.cell_bounds(cells).tolist(), strict=True):
        assert x0 - 1e-6 <= x <= x1 + 1e-6 and y0 - 1e-6 <= y <= y1 + 1e-6


def test_grid_spec_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="12 digits"):
        GridSpec("31010100100", 0, 0)
    with pytest.raises(ValueError, match="cell_m"):
        GridSpec("310101001001", 0, 0, cell_m=0)


def test_allocator_keeps_existing_numbers() -> None:
    allocator = SequenceAllocator(["990100001001001010003", "990100001001001010001"])
    assert allocator.take("99010000100100101", 4) == "990100001001001010004"
    assert allocator.take("99010000100100201", 4) == "990100001001002010001"
    with pytest.raises(ValueError, match="no free"):
        full = SequenceAllocator(["A9"])
        full.take("A", 1)


def test_division_is_used_for_a_new_site(store: Store, denhaag_path: Path) -> None:
    import_source(store, denhaag_path, site="sh", division="310101002003", options=LoadOptions())
    codes = store.codes("sh")
    assert "310101" in codes and "310101002" in codes and "310101002003" in codes


ADMIN = {"District", "Street"}


def test_codes_are_unique_in_the_store(store: Store, denhaag_path: Path, assets: Path) -> None:
    """Sites of one store never share a code below the street (the issue's finding: 79 unit
    codes of Den Haag were also Merewether's): each new site takes a street of its own, and
    terrain and street components are numbered across the store."""
    import_source(store, denhaag_path, site="denhaag")
    merewether = assets / "merewether"
    import_source(store, merewether / "merewether_dtm_1m_epsg32756.tif", site="merewether")
    import_source(
        store,
        merewether / "merewether_houses_epsg32756.geojson",
        site="merewether",
        options=LoadOptions(default_height_m=6.0),
    )
    import_source(store, assets / "crowd" / "west_oakland.osm", site="oakland")
    divisions = {s.name: s.division for s in store.sites()}
    assert divisions == {
        "denhaag": "990100001001",
        "merewether": "990100002001",
        "oakland": "990100003001",
    }
    owner: dict[str, str] = {}
    shared = []
    for site in divisions:
        for obj in store.all_objects(site):
            if obj.kind in ADMIN:
                continue
            if owner.setdefault(obj.code, site) != site:
                shared.append((obj.code, owner[obj.code], site))
    assert len(owner) > 2000 and shared == []
    # a site's own division is refused to the next site
    with pytest.raises(SourceError, match="division 990100002001 is already site merewether"):
        import_source(store, denhaag_path, site="again", division="990100002001")
    assert "again" not in {s.name for s in store.sites()}
