"""3D Tiles 1.1: valid tiles, a sound hierarchy, picking metadata, exact leaves, caching."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from gltf_validator import validate_files
from tileset_checks import (
    box_contains,
    box_corners,
    load,
    property_numbers,
    property_strings,
    read_tile,
    tile_positions,
    walk,
)

from cim.errors import NotFoundError
from cim.importer import import_source
from cim.loaders import LoadOptions
from cim.store import Store, open_store
from render.placement import ecef_of
from render.tiles import (
    TilingOptions,
    build_tileset,
    cached_tileset,
    resolve_tile,
    tileset_version,
)

FINE = TilingOptions(leaf_features=40, coarse_features=80, terrain_leaf_faces=800)


@pytest.fixture(scope="module")
def tilesets(scene_store: Store, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tilesets of both samples with the default tiling, and Den Haag and Merewether tiled
    finely (several levels)."""
    cache = tmp_path_factory.mktemp("tiles")
    fine = tmp_path_factory.mktemp("tiles-fine")
    return {
        "denhaag": build_tileset(scene_store, "denhaag", cache),
        "merewether": build_tileset(scene_store, "merewether", cache),
        "denhaag-fine": build_tileset(scene_store, "denhaag", fine, options=FINE),
        "merewether-fine": build_tileset(scene_store, "merewether", fine, options=FINE),
    }


def _site(name: str) -> str:
    return name.split("-")[0]


def test_every_tile_passes_the_validator(tilesets: dict[str, Path]) -> None:
    files = sorted(p for t in tilesets.values() for p in t.parent.rglob("*.glb"))
    assert len(files) > 40
    reports = validate_files(files)
    assert [r for r in reports if r["errors"] or r["warnings"]] == []


def test_hierarchy_boxes_errors_and_uris(tilesets: dict[str, Path]) -> None:
    for name, path in tilesets.items():
        tileset = load(path)
        assert tileset["asset"]["version"] == "1.1"
        root = tileset["root"]
        assert root["refine"] == "REPLACE"
        assert len(root["transform"]) == 16
        assert tileset["geometricError"] >= root["geometricError"]
        uris = []
        for tile, parent in walk(root):
            assert set(tile["boundingVolume"]) == {"box"}
            if parent is None:
                continue
            assert box_contains(
                parent["boundingVolume"]["box"], box_corners(tile["boundingVolume"]["box"])
            ), name
            assert tile["geometricError"] < parent["geometricError"], name
            if "children" not in tile:
                assert tile["geometricError"] == 0
            if "content" in tile:
                uris.append(tile["content"]["uri"])
        assert len(uris) == len(set(uris))
        on_disk = sorted(str(p.relative_to(path.parent)) for p in path.parent.rglob("*.glb"))
        assert sorted(uris) == on_disk
        for uri in uris:
            assert resolve_tile(path.parent, uri).is_file()
    depth = max(len(list(walk(load(tilesets["denhaag-fine"])["root"]))), 0)
    assert depth > 20


def test_tile_content_lies_in_its_bounding_volume(tilesets: dict[str, Path]) -> None:
    for path in tilesets.values():
        for tile, _ in walk(load(path)["root"]):
            if "content" not in tile:
                continue
            gltf, binary = read_tile(path.parent / tile["content"]["uri"])
            for vertices, _, _, _ in tile_positions(gltf, binary):
                assert box_contains(tile["boundingVolume"]["box"], vertices, tol=1e-3)


def test_feature_ids_map_to_rows_whose_codes_exist(
    tilesets: dict[str, Path], scene_store: Store
) -> None:
    for name, path in tilesets.items():
        site = _site(name)
        objects = {o.code: o for o in scene_store.all_objects(site)}
        leaf_codes: list[str] = []
        for tile, _ in walk(load(path)["root"]):
            uri = tile.get("content", {}).get("uri", "")
            if not uri.startswith("buildings/"):
                continue
            gltf, binary = read_tile(path.parent / uri)
            assert "EXT_mesh_features" in gltf["extensionsUsed"]
            codes = property_strings(gltf, binary, "code")
            kinds = property_strings(gltf, binary, "kind")
            heights = property_numbers(gltf, binary, "height_m")
            assert len(set(codes)) == len(codes)
            seen = set()
            for _, _, ids, _ in tile_positions(gltf, binary):
                assert ids is not None
                assert np.array_equal(ids, np.round(ids))
                assert ids.min() >= 0 and ids.max() < len(codes)
                seen |= set(ids.astype(int).tolist())
            assert seen == set(range(len(codes)))
            for code, kind, height in zip(codes, kinds, heights, strict=True):
                obj = objects[code]
                assert obj.kind == kind
                assert obj.bbox is not None
                assert height == pytest.approx(obj.bbox[5] - obj.bbox[2], abs=1e-6)
            if "children" not in tile:
                leaf_codes.extend(codes)
        meshed = {o.code for o in objects.values() if o.kind == "Building"}
        # every building is in exactly one leaf (full LoD)
        assert sorted(leaf_codes) == sorted(meshed)


def test_merewether_attributes_in_the_property_table(
    tilesets: dict[str, Path], scene_store: Store
) -> None:
    path = tilesets["merewether"]
    gltf, binary = read_tile(path.parent / "buildings/0/0/0.glb")
    codes = property_strings(gltf, binary, "code")
    ground = property_numbers(gltf, binary, "ground_m")
    names = property_strings(gltf, binary, "id")
    for code, value, source in zip(codes, ground, names, strict=True):
        obj = scene_store.get("merewether", code)
        assert value == pytest.approx(obj.attributes["ground_m"])
        assert source == obj.attributes["id"]


def test_leaf_vertices_transform_back_within_a_millimetre(
    tilesets: dict[str, Path], scene_store: Store
) -> None:
    path = tilesets["denhaag-fine"]
    origin = np.array(load(path)["asset"]["extras"]["origin"])
    checked = 0
    for tile, _ in walk(load(path)["root"]):
        uri = tile.get("content", {}).get("uri", "")
        if "children" in tile or not uri.startswith("buildings/"):
            continue
        gltf, binary = read_tile(path.parent / uri)
        codes = property_strings(gltf, binary, "code")
        for vertices, _, ids, _ in tile_positions(gltf, binary):
            assert ids is not None
            row = int(ids[0])
            mine = vertices[ids == row] + origin
            building = scene_store.get("denhaag", codes[row])
            parts = [building, *scene_store.children("denhaag", building.code)]
            expected = np.concatenate(
                [
                    scene_store.mesh_columns("denhaag", p.chunk).object_arrays(p.index)[0]
                    for p in parts
                    if p.chunk is not None and p.index is not None
                ]
            )
            assert mine.shape == expected.shape
            assert np.abs(mine - expected).max() < 1e-3
            checked += 1
    assert checked >= 20


def test_root_transform_puts_the_origin_on_the_globe(tilesets: dict[str, Path]) -> None:
    tileset = load(tilesets["merewether"])
    matrix = np.array(tileset["root"]["transform"]).reshape(4, 4).T
    lon, lat, height = tileset["asset"]["extras"]["origin_lon_lat_height"]
    assert np.allclose(matrix[:3, 3], ecef_of(lon, lat, height), atol=1e-6)
    # Merewether, Newcastle NSW: about 151.75 E, 32.95 S
    assert lon == pytest.approx(151.75, abs=0.05) and lat == pytest.approx(-32.95, abs=0.05)
    rotation = matrix[:3, :3]
    assert np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-3)  # near-rotation (scale ~1)


def test_terrain_has_its_own_tiles(tilesets: dict[str, Path], scene_store: Store) -> None:
    for name in ("denhaag-fine", "merewether-fine", "merewether"):
        path = tilesets[name]
        terrain = load(path)["root"]["children"][1]
        leaves = [t for t, _ in walk(terrain) if "children" not in t]
        faces = 0
        for leaf in leaves:
            gltf, binary = read_tile(path.parent / leaf["content"]["uri"])
            faces += sum(len(f) for _, f, _, _ in tile_positions(gltf, binary))
        site = _site(name)
        obj = next(o for o in scene_store.all_objects(site) if o.kind in ("TINRelief", "DEM"))
        if obj.kind == "DEM":
            # the leaves hold the raster at full resolution: two triangles per quad of cell
            # centres, less the quads touching a no-data cell
            grid = scene_store.raster(site, obj.code)
            rows, cols = grid.heights.shape
            assert faces == len(grid.to_mesh(1).faces)
            assert 0.99 * 2 * (rows - 1) * (cols - 1) < faces <= 2 * (rows - 1) * (cols - 1)
        else:
            assert obj.chunk is not None and obj.index is not None
            _, expected = scene_store.mesh_columns(site, obj.chunk).object_arrays(obj.index)
            assert faces == len(expected)
        assert len(leaves) > 3


def test_second_build_is_cached_and_reimport_invalidates(assets_dir: Path, tmp_path: Path) -> None:
    houses = assets_dir / "merewether" / "merewether_houses_epsg32756.geojson"
    store = open_store(tmp_path / "s.db")
    try:
        import_source(store, houses, site="m", options=LoadOptions(default_height_m=6.0))
        assert cached_tileset(store, "m", tmp_path / "cache") is None
        first = build_tileset(store, "m", tmp_path / "cache")
        assert cached_tileset(store, "m", tmp_path / "cache") == first
        stamp = first.stat().st_mtime_ns
        started = time.perf_counter()
        assert build_tileset(store, "m", tmp_path / "cache") == first
        assert time.perf_counter() - started < 0.5
        assert first.stat().st_mtime_ns == stamp
        import_source(store, houses, site="m", options=LoadOptions(default_height_m=9.0))
        second = build_tileset(store, "m", tmp_path / "cache")
        assert second != first and second.is_file() and not first.exists()
        assert cached_tileset(store, "m", tmp_path / "cache") == second
        assert second.parent.name == tileset_version(store, "m")
    finally:
        store.close()


def test_concurrent_builds_agree(scene_store_path: Path, tmp_path: Path) -> None:
    results: list[Path] = []
    errors: list[BaseException] = []

    def build() -> None:
        store = open_store(scene_store_path)
        try:
            results.append(build_tileset(store, "merewether", tmp_path))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1 and results[0].is_file()
    assert [p.name for p in (tmp_path / "merewether").iterdir()] == [results[0].parent.name]


@pytest.mark.parametrize(
    "bad",
    ["../x.glb", "/etc/passwd", "buildings/../../x", "a\\b", "", "buildings//0.glb", "nope.glb"],
)
def test_tile_paths_cannot_leave_the_tileset(tilesets: dict[str, Path], bad: str) -> None:
    with pytest.raises(NotFoundError):
        resolve_tile(tilesets["merewether"].parent, bad)


def test_unknown_site_is_not_found(scene_store: Store, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        build_tileset(scene_store, "atlantis", tmp_path)


def test_metadata_schema_and_tables_are_well_formed(tilesets: dict[str, Path]) -> None:
    identifier = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
    path = tilesets["merewether"]
    gltf, _ = read_tile(path.parent / "buildings/0/0/0.glb")
    metadata = gltf["extensions"]["EXT_structural_metadata"]
    schema = metadata["schema"]
    assert identifier.match(schema["id"])
    properties = schema["classes"]["feature"]["properties"]
    assert {"code", "kind", "name", "height_m", "ground_m", "id"} <= set(properties)
    assert all(identifier.match(name) for name in properties)
    table = metadata["propertyTables"][0]
    assert table["class"] == "feature" and table["count"] == 60
    assert set(table["properties"]) == set(properties)
    for column in table["properties"].values():
        for key in ("values", "stringOffsets"):
            if key in column:
                view = gltf["bufferViews"][column[key]]
                assert view["byteOffset"] % 8 == 0 and view["byteLength"] > 0
    primitive = gltf["meshes"][0]["primitives"][0]
    feature_ids = primitive["extensions"]["EXT_mesh_features"]["featureIds"][0]
    assert feature_ids == {"featureCount": 60, "attribute": 0, "propertyTable": 0}


def test_build_reports_progress_from_zero_to_one(scene_store: Store, tmp_path: Path) -> None:
    seen: list[tuple[float, str]] = []
    build_tileset(scene_store, "denhaag", tmp_path, progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert any("tile 6 of" in m for _, m in seen)


def test_an_ifc_building_is_one_pickable_feature_of_its_city_tileset(
    assets_dir: Path, tmp_path: Path
) -> None:
    """The Duplex placed in Den Haag (as ``make sample`` does) stands in the site tileset at
    its place: one feature with its IFC building code, inside its leaf's volume."""
    store = open_store(tmp_path / "t.db")
    try:
        import_source(store, assets_dir / "denhaag_01" / "denhaag_01_lod2.city.json", site="dh")
        import_source(
            store,
            assets_dir / "ifc" / "Duplex_A_20110907.ifc",
            site="dh",
            options=LoadOptions(at=(78600.0, 457900.0, 30.0)),
        )
        (building,) = store.by_kind("dh", "IfcBuilding")
        path = build_tileset(store, "dh", tmp_path / "tiles")
    finally:
        store.close()
    found = []
    for tile, _ in walk(load(path)["root"]):
        uri = tile.get("content", {}).get("uri", "")
        if "children" in tile or not uri.startswith("buildings/"):
            continue
        gltf, binary = read_tile(path.parent / uri)
        codes = property_strings(gltf, binary, "code")
        if building.code in codes:
            kinds = property_strings(gltf, binary, "kind")
            assert kinds[codes.index(building.code)] == "IfcBuilding"
            found.append(path.parent / uri)
    assert len(found) == 1
    (report,) = validate_files(found)
    assert report["errors"] == 0 and report["warnings"] == 0, report["messages"]
