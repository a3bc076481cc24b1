"""Hostile files: each is refused with a SourceError naming the file and the object, and the
store is left exactly as it was (issue 18, "files accepted that should be refused")."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from api.cli import main
from cim.errors import SourceError
from cim.importer import import_source
from cim.loaders import LoadOptions, load_source
from cim.networks.roads import way_tags
from cim.store import Store, open_store
from tests.loaders import bad_files

AT = LoadOptions(crs="EPSG:28992", at=(85000.0, 446000.0, 30.0))
HOUSES = LoadOptions(default_height_m=6.0)
BELLINGE = LoadOptions(crs="EPSG:32632")


def snapshot(store: Store) -> dict[str, Any]:
    """Everything an import may change: sites, versions, sources and object counts."""
    return {
        site.name: (
            site.version,
            site.bbox,
            store.kind_counts(site.name),
            store.admin_counts(site.name),
            [(s["key"], s["sha256"]) for s in store.sources(site.name)],
        )
        for site in store.sites()
    }


@pytest.fixture
def held(tmp_path: Path, assets: Path) -> Iterator[Store]:
    """A store already holding a site (``m``, the Merewether houses)."""
    store = open_store(tmp_path / "held.db")
    import_source(store, assets / bad_files.HOUSES, site="m", options=HOUSES)
    try:
        yield store
    finally:
        store.close()


def assert_refused(
    store: Store, path: Path, options: LoadOptions, match: str, object_id: str | None
) -> SourceError:
    """Import ``path`` into a new site and into the held one: refused both times, naming
    the file and ``object_id``, and nothing in the store changes."""
    before = snapshot(store)
    assert sum(sum(counts.values()) for _, _, counts, _, _ in before.values()) > 0
    error: SourceError | None = None
    for site in ("new", "m"):
        with pytest.raises(SourceError, match=match) as info:
            import_source(store, path, site=site, options=options)
        assert info.value.path == str(path)
        assert str(path) in str(info.value)
        assert info.value.object_id == object_id
        assert snapshot(store) == before
        error = info.value
    assert error is not None
    return error


Case = tuple[Callable[[Path, Path], Any], LoadOptions, str, str | None]

CASES: dict[str, Case] = {
    "ifc_half": (
        bad_files.ifc_half,
        AT,
        r"does not end with END-ISO-10303-21; \(truncated\?\)",
        None,
    ),
    "ifc_string_point": (
        bad_files.ifc_string_point,
        AT,
        r"IfcCartesianPoint coordinates \('abc',\) are not finite numbers",
        "#44",
    ),
    "cityjson_zero_scale": (
        bad_files.cityjson_zero_scale,
        LoadOptions(),
        r"transform\.scale \[0, 0, 0\] must be three numbers > 0",
        None,
    ),
    "cityjson_far_vertex": (
        bad_files.cityjson_far_vertex,
        LoadOptions(),
        r"vertex \(1e\+305, 1e\+305, 2\.463\) is not finite or beyond ±1e\+08",
        "tin_01_Component_1",
    ),
    "geojson_bowtie": (
        bad_files.geojson_bowtie,
        HOUSES,
        r"invalid footprint: Self-intersection\[",
        "house003",
    ),
    "geojson_huge_height": (
        bad_files.geojson_huge_height,
        HOUSES,
        r"height=1e\+308 makes it higher than 2000 m",
        "house004",
    ),
    "geojson_null_geometry": (
        bad_files.geojson_null_geometry,
        HOUSES,
        r"feature 5 has no geometry",
        "house005",
    ),
    "geojson_far_footprint": (
        bad_files.geojson_far_footprint,
        HOUSES,
        r"the site would be 6,3\d\d km across \(at most 100 km\): this object lies",
        "house006",
    ),
    "osm_bad_latitude": (
        bad_files.osm_bad_latitude,
        LoadOptions(),
        r"not a readable OSM file \(wrong format for coordinate: 'abc'\)",
        None,
    ),
    "osm_way_of_missing_nodes": (
        bad_files.osm_way_of_missing_nodes,
        LoadOptions(),
        r"none of the way's nodes \(953027353, .*\) is in the file",
        "w6329561",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_file_is_refused_and_the_store_unchanged(
    held: Store, assets: Path, tmp_path: Path, name: str
) -> None:
    mutate, options, match, object_id = CASES[name]
    path = mutate(assets, tmp_path)
    assert_refused(held, path, options, match, object_id)


def test_ifc_broken_reference_names_the_element(held: Store, assets: Path, tmp_path: Path) -> None:
    path, wall = bad_files.ifc_broken_reference(assets, tmp_path)
    assert_refused(held, path, AT, r"Instance reference #9999999 used by instance #4131", wall)


def test_ifc_parse_errors_are_refused_without_log_decorations(
    held: Store, assets: Path, tmp_path: Path
) -> None:
    text = (assets / bad_files.DUPLEX).read_text()
    path = tmp_path / "duplex_enum.ifc"
    path.write_text(text.replace(".LENGTHUNIT.", ".LXNGTHUNIT.", 1))
    error = assert_refused(
        held,
        path,
        AT,
        r"malformed IFC: An enumeration literal 'LXNGTHUNIT' is not valid for type "
        r"'IfcUnitEnum' at offset \d+$",
        None,
    )
    assert "[" not in error.reason


def test_cityjson_dangling_parent_names_the_child(
    held: Store, assets: Path, tmp_path: Path
) -> None:
    path, part = bad_files.cityjson_dangling_parent(assets, tmp_path)
    assert_refused(
        held, path, LoadOptions(), r"parent 'no-such-building' is not a CityObject", part
    )


def test_swmm_negative_section_names_the_conduit(held: Store, assets: Path, tmp_path: Path) -> None:
    path, conduit = bad_files.swmm_negative_section(assets, tmp_path)
    assert_refused(
        held, path, BELLINGE, r"line \d+: cross-section geom1 must be >= 0, got -0\.35", conduit
    )


def test_the_unmutated_samples_still_import(held: Store, assets: Path) -> None:
    for name, options in (
        (bad_files.DUPLEX, AT),
        (bad_files.DENHAAG, LoadOptions()),
        (bad_files.BELLINGE, BELLINGE),
        (bad_files.OAKLAND, LoadOptions()),
    ):
        report = import_source(held, assets / name, site=name, options=options)
        assert report.objects > 0 and report.warnings == ()


def test_far_footprint_is_refused_before_the_grid_is_laid_out(
    assets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the grid of a 6,000 km site once took 20 GB: the check must come before any of it
    import cim.importer

    def no_grid(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the site grid was laid out for an absurd extent")

    monkeypatch.setattr(cim.importer, "_new_site", no_grid)
    monkeypatch.setattr(cim.importer, "_admin_objects", no_grid)
    path = bad_files.geojson_far_footprint(assets, tmp_path)
    store = open_store(tmp_path / "t.db")
    with pytest.raises(SourceError, match="house006"):
        import_source(store, path, site="s", options=HOUSES)


def test_extent_limit_can_be_raised(assets: Path, tmp_path: Path) -> None:
    document = json.loads((assets / bad_files.HOUSES).read_text())
    ring = document["features"][0]["geometry"]["coordinates"][0]
    document["features"][0]["geometry"]["coordinates"] = [[[x + 150_000, y] for x, y in ring]]
    path = tmp_path / "wide.geojson"
    path.write_text(json.dumps(document))
    store = open_store(tmp_path / "t.db")
    with pytest.raises(SourceError, match=r"1\d\d km across"):
        import_source(store, path, site="s", options=HOUSES)
    report = import_source(store, path, site="s", options=HOUSES, max_extent_m=200_000.0)
    assert report.objects == len(document["features"])


def test_an_object_far_from_the_held_site_is_refused(
    held: Store, assets: Path, tmp_path: Path
) -> None:
    document = json.loads((assets / bad_files.HOUSES).read_text())
    for feature in document["features"]:
        ring = feature["geometry"]["coordinates"][0]
        feature["geometry"]["coordinates"] = [[[x, y - 500_000] for x, y in ring]]
    path = tmp_path / "south.geojson"
    path.write_text(json.dumps(document))
    before = snapshot(held)
    with pytest.raises(SourceError, match="500 km from the site"):
        import_source(held, path, site="m", options=HOUSES)
    assert snapshot(held) == before
    import_source(held, path, site="elsewhere", options=HOUSES)  # alone it is a fine site


def test_osm_way_reaching_a_missing_node_keeps_its_longest_run(
    held: Store, assets: Path, tmp_path: Path
) -> None:
    path, way = bad_files.osm_missing_node(assets, tmp_path)
    parsed = load_source(path)
    (road,) = [o for o in parsed.objects if o.source_id == way]
    assert road.attributes["osm_missing_nodes"] == [999999999]
    # the way 53027353 - (missing) - 53027354 - ...: never drawn straight across the gap
    assert 53027353 not in road.attributes["osm_nodes"]
    assert road.attributes["osm_nodes"][0] == 53027354
    (warning,) = parsed.warnings
    assert "1 street way(s) reach nodes the file does not hold" in warning
    assert "w6329561 (1 node)" in warning
    report = import_source(held, path, site="oakland")
    assert report.warnings == (warning,)
    # the attribute is the loader's, not an OSM tag of the way rebuilt from the CIM
    (stored,) = [o for o in held.by_kind("oakland", "Road") if o.source_id == way]
    assert "osm_missing_nodes" not in way_tags(stored)
    assert stored.attributes["osm_missing_nodes"] == [999999999]


def test_cli_reports_a_refusal_in_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], assets: Path, tmp_path: Path
) -> None:
    path = bad_files.geojson_null_geometry(assets, tmp_path)
    store = str(tmp_path / "t.db")
    code = main(["import", str(path), "--store", store, "--default-height", "6"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        f"twin: error: {path}, object 'house005': feature 5 has no geometry "
        "(one of Point, MultiPoint, LineString, MultiLineString, Polygon, MultiPolygon, "
        "GeometryCollection)"
    )


def test_cli_prints_warnings(
    capsys: pytest.CaptureFixture[str], assets: Path, tmp_path: Path
) -> None:
    path, _ = bad_files.osm_missing_node(assets, tmp_path)
    code = main(["import", str(path), "--store", str(tmp_path / "t.db"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    assert f"{path}: warning: 1 street way(s) reach nodes" in err
    assert json.loads(out)[0]["warnings"][0].startswith("1 street way(s)")


def test_a_grid_of_too_many_cells_is_refused(assets: Path, tmp_path: Path) -> None:
    # the 300 m of Merewether houses in 0.1 m cells: 9 million cell objects
    store = open_store(tmp_path / "t.db")
    with pytest.raises(SourceError, match=r"0\.1 m grid cells over .* would be [\d,]+ cells"):
        import_source(store, assets / bad_files.HOUSES, site="s", options=HOUSES, cell_m=0.1)
    assert store.sites() == []
    report = import_source(store, assets / bad_files.HOUSES, site="s", options=HOUSES, cell_m=1)
    assert report.objects > 0


def test_a_raster_larger_than_the_limit_is_refused_unread(
    assets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cim.loaders.dem

    monkeypatch.setattr(cim.loaders.dem, "MAX_RASTER_CELLS", 100_000)
    dem = assets / "merewether" / "merewether_dtm_1m_epsg32756.tif"
    with pytest.raises(SourceError, match=r"321 x 416 cells is more than 100,000: crop"):
        load_source(dem)
