"""The CityJSON / CityJSONSeq loader on the real files in assets/cityjson and assets/denhaag_01."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest

from cim.errors import SourceError
from cim.geometry.columns import SURFACE_CODES
from cim.loaders.cityjson import crs_from_reference, load_cityjson

FILES = {
    "denhaag_01/denhaag_01_lod2.city.json": "EPSG:7415",
    "cityjson/rotterdam_subset.city.json": None,
    "cityjson/zurich_subset_lod2.city.json": "EPSG:2056",
    "cityjson/delft_bgt_lod1.city.json": "EPSG:7415",
    "cityjson/3dbag_v210908_tile901_trimmed.city.jsonl": "EPSG:7415",
}


def _documents(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [json.loads(path.read_text())]


@pytest.mark.parametrize(("name", "crs"), FILES.items())
def test_every_city_object_is_kept_with_its_type(assets: Path, name: str, crs: str | None) -> None:
    path = assets / name
    expected = collections.Counter(
        obj["type"] for doc in _documents(path) for obj in doc["CityObjects"].values()
    )
    parsed = load_cityjson(path)
    assert collections.Counter(o.kind for o in parsed.objects) == expected
    assert parsed.crs == crs
    assert len(parsed.geometry) == len(parsed.objects)


def test_vertices_are_transformed_to_real_coordinates(assets: Path) -> None:
    # Zürich objects carry their own geographicalExtent: our boxes must reproduce them
    path = assets / "cityjson/zurich_subset_lod2.city.json"
    doc = json.loads(path.read_text())
    parsed = load_cityjson(path)
    boxes = parsed.geometry.bounds()
    checked = 0
    for i, obj in enumerate(parsed.objects):
        extent = doc["CityObjects"][obj.source_id].get("geographicalExtent")
        if extent is None or np.isnan(boxes[i]).any():
            continue
        np.testing.assert_allclose(boxes[i], extent, atol=2e-3)
        checked += 1
    assert checked == 161


def test_parents_and_children_are_linked(assets: Path) -> None:
    parsed = load_cityjson(assets / "denhaag_01/denhaag_01_lod2.city.json")
    ids = {o.source_id for o in parsed.objects}
    parts = [o for o in parsed.objects if o.kind == "BuildingPart"]
    assert len(parts) == 1653
    assert all(p.parent_id in ids for p in parts)
    buildings = {o.source_id for o in parsed.objects if o.kind == "Building"}
    assert {p.parent_id for p in parts} <= buildings


def test_semantic_surfaces_are_kept_per_triangle(assets: Path) -> None:
    parsed = load_cityjson(assets / "denhaag_01/denhaag_01_lod2.city.json")
    surfaces = set(np.unique(parsed.geometry.surfaces).tolist())
    for name in ("GroundSurface", "WallSurface", "RoofSurface"):
        assert SURFACE_CODES[name] in surfaces
    # roofs face up, grounds face down
    nz = parsed.geometry.face_normals()[:, 2]
    roof = parsed.geometry.surfaces == SURFACE_CODES["RoofSurface"]
    ground = parsed.geometry.surfaces == SURFACE_CODES["GroundSurface"]
    assert np.median(nz[roof]) > 0.5
    assert np.median(nz[ground]) < -0.99


def test_ground_surfaces_become_footprints(assets: Path) -> None:
    parsed = load_cityjson(assets / "denhaag_01/denhaag_01_lod2.city.json")
    assert parsed.footprints is not None
    for obj, footprint, box in zip(
        parsed.objects, parsed.footprints, parsed.geometry.bounds(), strict=True
    ):
        if obj.kind != "BuildingPart":
            continue
        assert footprint is not None and footprint.is_valid and footprint.area > 0
        minx, miny, maxx, maxy = footprint.bounds
        assert minx >= box[0] - 1e-6 and maxx <= box[3] + 1e-6
        assert miny >= box[1] - 1e-6 and maxy <= box[4] + 1e-6


def test_tin_relief_is_terrain_with_its_triangles(assets: Path) -> None:
    path = assets / "denhaag_01/denhaag_01_lod2.city.json"
    doc = json.loads(path.read_text())
    tin_id, tin = next((k, v) for k, v in doc["CityObjects"].items() if v["type"] == "TINRelief")
    parsed = load_cityjson(path)
    index = next(i for i, o in enumerate(parsed.objects) if o.source_id == tin_id)
    _, faces = parsed.geometry.object_arrays(index)
    assert len(faces) == len(tin["geometry"][0]["boundaries"])


def test_lod_is_selectable(assets: Path) -> None:
    path = assets / "cityjson/3dbag_v210908_tile901_trimmed.city.jsonl"
    highest = load_cityjson(path)
    lod12 = load_cityjson(path, lod="1.2")
    parts_high = [o for o in highest.objects if o.kind == "BuildingPart"]
    parts_12 = [o for o in lod12.objects if o.kind == "BuildingPart"]
    assert {o.attributes["lod"] for o in parts_high} == {"2.2"}
    assert {o.attributes["lod"] for o in parts_12} == {"1.2"}
    assert len(lod12.geometry.faces) < len(highest.geometry.faces)


def test_degenerate_rings_of_real_files_are_dropped_and_counted(assets: Path) -> None:
    parsed = load_cityjson(assets / "cityjson/rotterdam_subset.city.json")
    dropped = [o for o in parsed.objects if "degenerate_surfaces_dropped" in o.attributes]
    assert dropped, "the Rotterdam subset has rings with repeated vertices"
    assert len(parsed.geometry.faces) > 0


def test_crs_from_reference_system_forms() -> None:
    assert crs_from_reference("https://www.opengis.net/def/crs/EPSG/0/7415") == "EPSG:7415"
    assert crs_from_reference("urn:ogc:def:crs:EPSG::7415") == "EPSG:7415"
    assert crs_from_reference(None) is None
    assert crs_from_reference("local") is None


# -- bad input -----------------------------------------------------------------------------


def _broken(tmp_path: Path, assets: Path, edit) -> Path:
    doc = json.loads((assets / "cityjson/rotterdam_subset.city.json").read_text())
    edit(doc)
    out = tmp_path / "broken.city.json"
    out.write_text(json.dumps(doc))
    return out


def test_truncated_file_names_the_file(tmp_path: Path, assets: Path) -> None:
    raw = (assets / "cityjson/rotterdam_subset.city.json").read_bytes()
    path = tmp_path / "truncated.city.json"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(SourceError, match=r"truncated.city.json.*not valid JSON") as info:
        load_cityjson(path)
    assert info.value.path == str(path)


def test_vertex_index_out_of_range_names_the_object(tmp_path: Path, assets: Path) -> None:
    victim = "{C9D4A5CF-094A-47DA-97E4-4A3BFD75D3AE}"

    def edit(doc: dict) -> None:
        doc["CityObjects"][victim]["geometry"][0]["boundaries"][0][0][1] = 999_999

    with pytest.raises(SourceError, match="out of range") as info:
        load_cityjson(_broken(tmp_path, assets, edit))
    assert info.value.object_id == victim


def test_ring_with_two_vertices_is_an_invalid_polygon(tmp_path: Path, assets: Path) -> None:
    victim = "{C9D4A5CF-094A-47DA-97E4-4A3BFD75D3AE}"

    def edit(doc: dict) -> None:
        doc["CityObjects"][victim]["geometry"][0]["boundaries"][1] = [[0, 1]]

    with pytest.raises(SourceError, match="invalid polygon") as info:
        load_cityjson(_broken(tmp_path, assets, edit))
    assert info.value.object_id == victim


def test_not_cityjson_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.city.json"
    path.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(SourceError, match="not CityJSON"):
        load_cityjson(path)


def test_unsupported_version_is_refused(tmp_path: Path, assets: Path) -> None:
    def edit(doc: dict) -> None:
        doc["version"] = "0.9"

    with pytest.raises(SourceError, match="version"):
        load_cityjson(_broken(tmp_path, assets, edit))
