"""IFC import: the buildingSMART Duplex (IFC2X3) and a small IFC4 model with IfcMapConversion."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import ifcopenshell
import ifcopenshell.api
import ifcopenshell.api.aggregate
import ifcopenshell.api.context
import ifcopenshell.api.geometry
import ifcopenshell.api.georeference
import ifcopenshell.api.project
import ifcopenshell.api.pset
import ifcopenshell.api.root
import ifcopenshell.api.spatial
import ifcopenshell.api.unit
import numpy as np
import pytest

from api.cli import main
from cim.errors import SourceError, TwinError
from cim.importer import import_source
from cim.loaders import LoadOptions, load_source
from cim.loaders.base import ParsedSource
from cim.loaders.ifc import load_ifc
from cim.store import Store, open_store
from tests.render.gltf_validator import assert_valid

AT = (85000.0, 446000.0, 30.0)
CRS = "EPSG:28992"


@pytest.fixture(scope="module")
def duplex_path() -> Path:
    return Path(__file__).parent.parent.parent / "assets" / "ifc" / "Duplex_A_20110907.ifc"


@pytest.fixture(scope="module")
def duplex(duplex_path: Path) -> ParsedSource:
    return load_ifc(duplex_path, crs=CRS, at=AT)


@pytest.fixture(scope="module")
def duplex_local(duplex_path: Path) -> ParsedSource:
    return load_ifc(duplex_path, crs=CRS, at=(0.0, 0.0, 0.0))


@pytest.fixture(scope="module")
def duplex_model(duplex_path: Path) -> ifcopenshell.file:
    return ifcopenshell.open(str(duplex_path))


def _of_kind(parsed: ParsedSource, kind: str) -> list[int]:
    return [i for i, o in enumerate(parsed.objects) if o.kind == kind]


@pytest.mark.parametrize("ifc_class", ["IfcBuildingStorey", "IfcSpace", "IfcDoor", "IfcWindow"])
def test_counts_equal_ifcopenshell(
    duplex: ParsedSource, duplex_model: ifcopenshell.file, ifc_class: str
) -> None:
    expected = len(duplex_model.by_type(ifc_class))
    assert expected > 0
    assert len(_of_kind(duplex, ifc_class)) == expected


def test_the_duplex_numbers(duplex: ParsedSource) -> None:
    kinds = [o.kind for o in duplex.objects]
    # 295 IfcProducts, 50 of them openings (voids, not objects)
    assert len(kinds) == 245
    assert (kinds.count("IfcBuildingStorey"), kinds.count("IfcSpace")) == (4, 21)
    assert (kinds.count("IfcDoor"), kinds.count("IfcFurnishingElement")) == (14, 61)
    assert "IfcOpeningElement" not in kinds


def test_global_ids_are_kept(duplex: ParsedSource, duplex_model: ifcopenshell.file) -> None:
    ids = {o.source_id for o in duplex.objects}
    assert len(ids) == len(duplex.objects)
    for door in duplex_model.by_type("IfcDoor"):
        assert door.GlobalId in ids
    for obj in duplex.objects:
        assert obj.attributes["GlobalId"] == obj.source_id
        assert duplex_model.by_guid(obj.source_id).is_a() == obj.kind


def test_every_element_chain_reaches_the_building(duplex: ParsedSource) -> None:
    by_id = {o.source_id: o for o in duplex.objects}
    (building,) = [o for o in duplex.objects if o.kind == "IfcBuilding"]
    assert building.parent_id is None
    (site,) = [o for o in duplex.objects if o.kind == "IfcSite"]
    assert building.attributes["ifc_site"] == site.source_id and site.parent_id is None
    for obj in duplex.objects:
        if obj.kind in ("IfcSite", "IfcBuilding"):
            continue
        chain = [obj.kind]
        node = obj
        while node.parent_id is not None:
            node = by_id[node.parent_id]
            chain.append(node.kind)
        assert node is building, chain
    storeys = {o.source_id for o in duplex.objects if o.kind == "IfcBuildingStorey"}
    for obj in duplex.objects:
        if obj.kind in ("IfcSpace", "IfcBuildingStorey"):
            assert obj.parent_id in storeys | {building.source_id}
    assert all(
        by_id[o.parent_id].kind == "IfcBuilding" for o in duplex.objects if o.source_id in storeys
    )


def test_names_and_property_sets(duplex: ParsedSource) -> None:
    spaces = {o.name: o for o in duplex.objects if o.kind == "IfcSpace"}
    living = spaces["A102"]
    assert living.attributes["LongName"] == "Living Room"
    assert living.attributes["Pset_SpaceCommon.FloorCovering"] == "FloorCovering"
    assert living.attributes["GSA Space Areas.GSA BIM Area"] == pytest.approx(30.1416, abs=1e-3)
    with_psets = [o for o in duplex.objects if any("." in k for k in o.attributes)]
    assert len(with_psets) > 200
    json.dumps([o.attributes for o in duplex.objects], allow_nan=False)  # JSON-safe


def test_building_mesh_has_the_duplex_size(duplex_local: ParsedSource) -> None:
    geometry = duplex_local.geometry
    counts = np.diff(geometry.face_offsets)
    spaces = _of_kind(duplex_local, "IfcSpace")
    assert (counts[spaces] > 0).all()
    assert (counts[_of_kind(duplex_local, "IfcDoor")] > 0).all()
    lo, hi = geometry.vertices.min(axis=0), geometry.vertices.max(axis=0)
    size = hi - lo
    # two flats side by side, 9.28 m deep (footings) and 26.57 m long with the decks, 10.55 m
    # from the footings' base to the roof
    np.testing.assert_allclose(size, [9.283, 26.565, 10.55], atol=0.01)
    footings = geometry.bounds()[_of_kind(duplex_local, "IfcFooting")]
    outline = footings[:, 3:5].max(axis=0) - footings[:, :2].min(axis=0)
    np.testing.assert_allclose(outline, [9.283, 18.283], atol=0.01)
    boxes = geometry.bounds()[spaces]
    assert (boxes[:, 5] - boxes[:, 2] > 2.0).all()  # rooms are higher than 2 m


def test_at_moves_and_rotates_the_mesh(duplex: ParsedSource, duplex_local: ParsedSource) -> None:
    local = duplex_local.geometry.vertices
    x, y, degrees = AT
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    expected = np.column_stack(
        [x + c * local[:, 0] - s * local[:, 1], y + s * local[:, 0] + c * local[:, 1], local[:, 2]]
    )
    np.testing.assert_allclose(duplex.geometry.vertices, expected, atol=1e-6)
    # counter-clockwise: the model's +x axis points 30° north of east
    door = _of_kind(duplex, "IfcDoor")[0]
    a, b = (
        duplex.geometry.object_arrays(door)[0][0],
        duplex_local.geometry.object_arrays(door)[0][0],
    )
    bearing = math.degrees(math.atan2(a[1] - y, a[0] - x) - math.atan2(b[1], b[0]))
    assert (bearing + 360.0) % 360.0 == pytest.approx(30.0, abs=1e-6)
    (site,) = _of_kind(duplex, "IfcSite")
    assert duplex.objects[site].attributes["georeferencing"] == "at"


def test_no_georeferencing_and_no_at_is_refused(duplex_path: Path) -> None:
    with pytest.raises(SourceError, match="no IfcMapConversion: pass --at X,Y,ROTATION and --crs"):
        load_source(duplex_path)
    # its IfcSite says Chicago: the Dutch grid cannot place it
    with pytest.raises(SourceError, match="outside the area of use of EPSG:28992"):
        load_source(duplex_path, LoadOptions(crs=CRS))
    with pytest.raises(SourceError, match=r"Duplex_A_20110907\.ifc"):
        load_source(duplex_path)


def test_missing_ifcopenshell_says_how_to_install(
    duplex_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ifcopenshell", None)
    with pytest.raises(SourceError, match=r"pip install 'yiwang-citytwin\[ifc\]'"):
        load_ifc(duplex_path, at=AT)


def test_bad_files_are_refused_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.ifc"
    bad.write_text("ISO-10303-21;\nHEADER;\nthis is not STEP\n")
    with pytest.raises(SourceError, match=r"broken\.ifc"):
        load_ifc(bad, at=AT)
    with pytest.raises(SourceError, match="no such file"):
        load_source(tmp_path / "missing.ifc", LoadOptions(at=AT))


def _ifc4_house(path: Path, conversion: dict[str, float]) -> None:
    """A one-storey IFC4 model in millimetres: one 5 m wall, placed by IfcMapConversion."""
    api = ifcopenshell.api
    f = api.project.create_file(version="IFC4")
    project = api.root.create_entity(f, ifc_class="IfcProject", name="P")
    api.unit.assign_unit(f, length={"is_metric": True, "raw": "MILLIMETERS"})
    model = api.context.add_context(f, context_type="Model")
    body = api.context.add_context(
        f,
        context_type="Model",
        context_identifier="Body",
        target_view="MODEL_VIEW",
        parent=model,
    )
    site = api.root.create_entity(f, ifc_class="IfcSite", name="S")
    building = api.root.create_entity(f, ifc_class="IfcBuilding", name="B")
    storey = api.root.create_entity(f, ifc_class="IfcBuildingStorey", name="G")
    api.aggregate.assign_object(f, products=[site], relating_object=project)
    api.aggregate.assign_object(f, products=[building], relating_object=site)
    api.aggregate.assign_object(f, products=[storey], relating_object=building)
    wall = api.root.create_entity(f, ifc_class="IfcWall", name="W")
    api.geometry.edit_object_placement(f, product=wall, matrix=np.eye(4))
    shape = api.geometry.add_wall_representation(f, context=body, length=5, height=3, thickness=0.2)
    api.geometry.assign_representation(f, product=wall, representation=shape)
    api.spatial.assign_container(f, products=[wall], relating_structure=storey)
    pset = api.pset.add_pset(f, product=wall, name="Pset_WallCommon")
    api.pset.edit_pset(f, pset=pset, properties={"IsExternal": True})
    api.georeference.add_georeferencing(f)
    api.georeference.edit_georeferencing(
        f,
        projected_crs={"Name": "EPSG:28992"},
        coordinate_operation=conversion,
    )
    f.write(str(path))


def test_ifc4_map_conversion_places_the_model(tmp_path: Path) -> None:
    path = tmp_path / "house.ifc"
    angle = math.radians(90.0)
    _ifc4_house(
        path,
        {
            "Eastings": 1000.0,
            "Northings": 2000.0,
            "OrthogonalHeight": 5.0,
            "XAxisAbscissa": math.cos(angle),
            "XAxisOrdinate": math.sin(angle),
            "Scale": 0.001,  # millimetres -> metres
        },
    )
    parsed = load_source(path)
    assert parsed.crs == "EPSG:28992"
    (wall,) = _of_kind(parsed, "IfcWall")
    lo, hi = parsed.geometry.bounds()[wall].reshape(2, 3)
    # the 5 m wall along local +x, 0.2 m thick: turned 90° it runs north from (1000, 2000)
    assert hi[1] - lo[1] == pytest.approx(5.0, abs=1e-6)
    assert hi[0] - lo[0] == pytest.approx(0.2, abs=1e-6)
    assert lo[1] == pytest.approx(2000.0, abs=1e-6)
    assert (lo[2], hi[2]) == (pytest.approx(5.0), pytest.approx(8.0))
    assert parsed.objects[wall].attributes["Pset_WallCommon.IsExternal"] is True
    assert parsed.objects[wall].attributes["ifc_schema"] == "IFC4"
    (site,) = _of_kind(parsed, "IfcSite")
    assert parsed.objects[site].attributes["georeferencing"] == "IfcMapConversion"
    # the CRS comes from the file: no --crs needed to import it
    store = open_store(tmp_path / "house.db")
    report = import_source(store, path, site="house")
    assert report.crs == "EPSG:28992" and report.kinds["IfcWall"] == 1
    (stored,) = store.by_kind("house", "IfcWall")
    assert stored.bbox is not None and stored.bbox[1] == pytest.approx(2000.0, abs=1e-6)
    # an explicit placement wins over the file's
    moved = load_source(path, LoadOptions(at=(10.0, 20.0, 0.0)))
    lo, hi = moved.geometry.bounds()[wall].reshape(2, 3)
    assert (lo[0], hi[0]) == (pytest.approx(10.0), pytest.approx(15.0))
    assert moved.crs is None


def test_import_into_a_store_with_stable_codes(
    store: Store, duplex_path: Path, tmp_path: Path
) -> None:
    options = LoadOptions(crs=CRS, at=AT)
    report = import_source(store, duplex_path, site="duplex", options=options)
    assert report.kinds["IfcSpace"] == 21 and report.kinds["IfcBuildingStorey"] == 4
    (building,) = store.by_kind("duplex", "IfcBuilding")
    assert len(building.code) == 21 and building.code[15:17] == "01"
    assert store.get("duplex", building.parent).kind == "GridCell"  # type: ignore[arg-type]
    assert building.bbox is not None
    assert 15.0 < building.bbox[3] - building.bbox[0] < 30.0
    storeys = store.by_kind("duplex", "IfcBuildingStorey")
    assert {s.parent for s in storeys} == {building.code}
    assert all(len(s.code) == 24 and s.code.startswith(building.code) for s in storeys)
    codes = {o.source_id: o.code for kind in report.kinds for o in store.by_kind("duplex", kind)}
    for kind in ("IfcSpace", "IfcDoor", "IfcFurnishingElement"):
        for obj in store.by_kind("duplex", kind):
            assert obj.code.startswith(building.code)
            assert obj.attributes["GlobalId"] == obj.source_id
    import_source(store, duplex_path, site="duplex", options=options)
    again = {o.source_id: o.code for kind in report.kinds for o in store.by_kind("duplex", kind)}
    assert again == codes
    # a second store gets the same codes from the same file
    other = open_store(tmp_path / "other.db")
    import_source(other, duplex_path, site="duplex", options=options)
    fresh = {o.source_id: o.code for kind in report.kinds for o in other.by_kind("duplex", kind)}
    assert fresh == codes


def test_cli_import_with_at_and_info_counts_ifc_classes(
    duplex_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "cli.db")
    assert (
        main(["--store", db, "import", "--site", "d", "--crs", CRS, "--json", str(duplex_path)])
        == 1
    )
    assert "no IfcMapConversion" in capsys.readouterr().err
    code = main(
        [
            "--store",
            db,
            "import",
            "--site",
            "d",
            "--crs",
            CRS,
            "--at=-10,20.5,45",
            "--json",
            str(duplex_path),
        ]
    )
    assert code == 0
    capsys.readouterr()
    assert main(["--store", db, "info", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)["sites"]["d"]["objects"]
    assert (counts["IfcBuildingStorey"], counts["IfcSpace"], counts["IfcDoor"]) == (4, 21, 14)
    # the building's subtree exports as a valid GLB
    cli_store = open_store(db)
    (building,) = cli_store.by_kind("d", "IfcBuilding")
    assert building.name == building.source_id  # the Duplex's building has no Name
    cli_store.close()
    glb = tmp_path / "duplex.glb"
    assert main(["--store", db, "export", "--site", "d", "--out", str(glb), building.code]) == 0
    assert_valid([glb])


def test_placed_into_a_city_site_in_its_crs(store: Store, assets: Path) -> None:
    import_source(store, assets / "denhaag_01" / "denhaag_01_lod2.city.json", site="denhaag")
    at = (78600.0, 457900.0, 30.0)
    report = import_source(
        store, assets / "ifc" / "Duplex_A_20110907.ifc", site="denhaag", options=LoadOptions(at=at)
    )
    assert report.kinds["IfcSpace"] == 21
    (building,) = store.by_kind("denhaag", "IfcBuilding")
    assert building.bbox is not None
    minx, miny, _, maxx, maxy, _ = building.bbox
    # the 9.3 x 26.6 m Duplex stands at the given point of the Dutch grid, not at 0, 0
    assert minx - 30 < at[0] < maxx + 30 and miny - 30 < at[1] < maxy + 30
    assert maxx - minx < 40 and maxy - miny < 40


def test_space_boundaries_are_kept(duplex: ParsedSource, duplex_model: ifcopenshell.file) -> None:
    spaces = {duplex.objects[i].source_id: duplex.objects[i] for i in _of_kind(duplex, "IfcSpace")}
    rels = duplex_model.by_type("IfcRelSpaceBoundary")
    total = sum(len(o.attributes.get("ifc_boundaries", [])) for o in spaces.values())
    assert total == len(
        {
            (
                r.RelatingSpace.GlobalId,
                getattr(r.RelatedBuildingElement, "GlobalId", None),
                r.PhysicalOrVirtualBoundary,
                r.InternalOrExternalBoundary,
            )
            for r in rels
        }
    )
    # the entrance door bounds the foyer only: an exit; a virtual boundary opens A102 to A103
    doors = {
        d.GlobalId: d.Name for d in duplex_model.by_type("IfcDoor") if d.Name.endswith(":146596")
    }
    (entrance,) = doors
    foyer = next(o for o in spaces.values() if o.name == "A101")
    rows = foyer.attributes["ifc_boundaries"]
    assert any(row[0] == entrance and row[1] == "PHYSICAL" for row in rows)
    assert any(row[0] is None and row[1] == "VIRTUAL" for row in rows)


def test_space_areas_match_the_file_quantity(store: Store, duplex_path: Path) -> None:
    """Every Duplex space measured to its walls' centre lines from the stored footprints is
    within 2 % of the file's ``GSA BIM Area`` quantity; its net floor is smaller."""
    from cim.spaces import space_area

    import_source(store, duplex_path, site="area", options=LoadOptions(crs=CRS, at=AT))
    spaces = store.by_kind("area", "IfcSpace")
    assert len(spaces) == 21
    checked = 0
    for space in spaces:
        quantity = space.attributes.get("GSA Space Areas.GSA BIM Area")
        assert isinstance(quantity, float)
        area = space_area(store, "area", space.code)
        assert area.walls, space.name
        assert area.centreline_m2 == pytest.approx(quantity, rel=0.02), space.name
        assert area.net_m2 < area.centreline_m2
        checked += 1
    assert checked == 21
    (wall, *_) = store.by_kind("area", "IfcWallStandardCase")
    with pytest.raises(TwinError, match="not an IFC space"):
        space_area(store, "area", wall.code)
