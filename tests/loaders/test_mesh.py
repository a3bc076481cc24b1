"""glTF / GLB / OBJ loading through trimesh, checked against the files' own numbers."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cim.errors import SourceError
from cim.loaders.cityjson import load_cityjson
from cim.loaders.mesh import load_mesh

DENHAAG_ORIGIN = (78248.66, 457604.591, 2.463)


def _denhaag(assets: Path, **options: Any) -> Any:
    return load_mesh(assets / "denhaag_01" / "DenHaag_01.gltf", **options)


def _glb_header(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    (length,) = struct.unpack_from("<I", raw, 12)
    header: dict[str, Any] = json.loads(raw[20 : 20 + length])
    return header


def _assert_compact(parsed: Any) -> None:
    """Every object's faces index its own block and use every vertex of it."""
    geometry = parsed.geometry
    for index in range(len(geometry)):
        vertices, faces = geometry.object_arrays(index)
        assert len(faces) > 0
        np.testing.assert_array_equal(np.unique(faces), np.arange(len(vertices)))


def test_denhaag_gltf_boxes_equal_the_cityjson_boxes(assets: Path) -> None:
    parsed = _denhaag(assets, crs="EPSG:7415", scale=0.001, offset=DENHAAG_ORIGIN)
    city = load_cityjson(assets / "denhaag_01" / "denhaag_01_lod2.city.json")
    index = {obj.source_id: i for i, obj in enumerate(city.objects)}

    ids = [obj.source_id for obj in parsed.objects]
    assert len(ids) == 1991
    assert set(ids) <= set(index)
    rows = [index[i] for i in ids]
    # the glTF holds integer millimetres exactly (float32), so the boxes agree to rounding
    # of the same arithmetic; the brief's tolerance is 2 mm
    np.testing.assert_allclose(parsed.geometry.bounds(), city.geometry.bounds()[rows], atol=1e-6)


def test_denhaag_gltf_objects(assets: Path) -> None:
    parsed = _denhaag(assets, crs="EPSG:7415", scale=0.001, offset=DENHAAG_ORIGIN)
    header = json.loads((assets / "denhaag_01" / "DenHaag_01.gltf").read_bytes())

    assert parsed.format == "gltf"
    assert parsed.crs == "EPSG:7415"
    assert parsed.footprints is None
    assert parsed.points is None
    assert [o.source_id for o in parsed.objects] == [n["name"] for n in header["nodes"]]
    assert all(o.kind == "Mesh" and o.name == o.source_id for o in parsed.objects)
    assert len(parsed.geometry.faces) == 41_183
    assert not parsed.geometry.surfaces.any()
    _assert_compact(parsed)


def test_scale_offset_and_y_up(assets: Path) -> None:
    raw = _denhaag(assets).geometry.vertices
    scaled = _denhaag(assets, scale=0.001, offset=DENHAAG_ORIGIN).geometry.vertices
    turned = _denhaag(assets, up_axis="y").geometry.vertices

    np.testing.assert_array_equal(scaled, raw * 0.001 + np.array(DENHAAG_ORIGIN))
    np.testing.assert_array_equal(turned, np.column_stack([raw[:, 0], -raw[:, 2], raw[:, 1]]))
    # the file stores integer millimetres, z-up, untouched by trimesh
    np.testing.assert_array_equal(raw, np.round(raw))
    assert raw[:, 2].min() == 0.0


def test_delft_glb(assets: Path) -> None:
    path = assets / "delft" / "delft.glb"
    parsed = load_mesh(path, crs="EPSG:28992")
    header = _glb_header(path)
    position = header["accessors"][header["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]

    assert [o.source_id for o in parsed.objects] == [n["name"] for n in header["nodes"]]
    assert len(parsed.geometry.faces) == 21_801
    box = parsed.geometry.vertices
    # absolute coordinates stored as float32: 1/32 m steps near y = 447,000 m
    np.testing.assert_allclose(box.min(axis=0), position["min"], rtol=0, atol=1 / 32)
    np.testing.assert_allclose(box.max(axis=0), position["max"], rtol=0, atol=1 / 32)
    _assert_compact(parsed)


def test_zurich_obj_triangles_are_the_files(assets: Path) -> None:
    path = assets / "zurich" / "zurich_subset_lod2.obj"
    parsed = load_mesh(path, crs="EPSG:2056")

    vertices: list[list[float]] = []
    faces: dict[str, list[list[int]]] = {}
    current = ""
    for line in path.read_text().splitlines():
        key, _, rest = line.partition(" ")
        if key == "v":
            vertices.append([float(x) for x in rest.split()])
        elif key == "o":
            current = rest.strip()
            faces[current] = []
        elif key == "f":
            faces[current].append([int(x.split("/")[0]) - 1 for x in rest.split()])
    xyz = np.array(vertices)

    assert parsed.format == "obj"
    assert [o.source_id for o in parsed.objects] == list(faces)
    assert len(parsed.objects) == 161
    assert len(parsed.geometry.faces) == 5141
    for index, name in enumerate(faces):
        local_vertices, local_faces = parsed.geometry.object_arrays(index)
        np.testing.assert_array_equal(local_vertices[local_faces], xyz[np.array(faces[name])])
    _assert_compact(parsed)


def _gltf(path: Path, nodes: list[dict[str, Any]], meshes: list[dict[str, Any]]) -> Path:
    """A small glTF: accessor 0 = 4 positions, 1 = triangle (0 1 2), 2 = triangle (0 2 3)."""
    positions = np.array([[0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 3]], dtype=np.float32)
    indices = np.array([0, 1, 2, 0, 2, 3], dtype=np.uint32)
    blob = positions.tobytes() + indices.tobytes()
    document = {
        "asset": {"version": "2.0"},
        "scene": 0,
        "scenes": [{"nodes": list(range(len(nodes)))}],
        "nodes": nodes,
        "meshes": meshes,
        "buffers": [
            {
                "byteLength": len(blob),
                "uri": "data:application/octet-stream;base64," + base64.b64encode(blob).decode(),
            }
        ],
        "bufferViews": [
            {"buffer": 0, "byteOffset": 0, "byteLength": 48},
            {"buffer": 0, "byteOffset": 48, "byteLength": 12},
            {"buffer": 0, "byteOffset": 60, "byteLength": 12},
        ],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": 5126,
                "count": 4,
                "type": "VEC3",
                "min": [0, 0, 0],
                "max": [1, 2, 3],
            },
            {"bufferView": 1, "componentType": 5125, "count": 3, "type": "SCALAR"},
            {"bufferView": 2, "componentType": 5125, "count": 3, "type": "SCALAR"},
        ],
    }
    path.write_text(json.dumps(document))
    return path


def test_gltf_names_transforms_and_primitives(tmp_path: Path) -> None:
    first = {"primitives": [{"attributes": {"POSITION": 0}, "indices": 1}]}
    both = {
        "primitives": [
            {"attributes": {"POSITION": 0}, "indices": 1},
            {"attributes": {"POSITION": 0}, "indices": 2},
        ]
    }
    points = {"primitives": [{"attributes": {"POSITION": 0}, "mode": 0}]}
    nodes: list[dict[str, Any]] = [
        {"name": "A_1", "mesh": 0, "translation": [10.0, 20.0, 30.0]},
        {"name": "A_1", "mesh": 1},
        {"name": "A_2", "mesh": 0, "scale": [2.0, 2.0, 2.0]},
        {"name": "cloud", "mesh": 2},
        {"mesh": 0},
    ]
    parsed = load_mesh(_gltf(tmp_path / "small.gltf", nodes, [first, both, points]))

    # trimesh alone would call the third node "A_3"; the points-only node has no triangles
    assert [o.source_id for o in parsed.objects] == ["A_1", "A_1#2", "A_2", "node-4"]
    triangle = np.array([[0, 0, 0], [1, 0, 0], [0, 2, 0]], dtype=np.float64)
    first_vertices, first_faces = parsed.geometry.object_arrays(0)
    np.testing.assert_array_equal(
        first_vertices[first_faces[0]], triangle + np.array([10.0, 20.0, 30.0])
    )
    both_vertices, both_faces = parsed.geometry.object_arrays(1)
    assert len(both_faces) == 2
    np.testing.assert_array_equal(both_vertices.min(axis=0), [0, 0, 0])
    np.testing.assert_array_equal(both_vertices.max(axis=0), [1, 2, 3])
    scaled_vertices, scaled_faces = parsed.geometry.object_arrays(2)
    np.testing.assert_array_equal(scaled_vertices[scaled_faces[0]], 2 * triangle)
    _assert_compact(parsed)


def test_obj_repeated_object_name_is_one_object(tmp_path: Path) -> None:
    path = tmp_path / "parts.obj"
    path.write_text(
        "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\no B\nf 1 2 3\no A\nf 1 2 4\no B\nf 2 3 4\n"
    )
    parsed = load_mesh(path)

    assert [o.source_id for o in parsed.objects] == ["B", "A"]
    np.testing.assert_array_equal(np.diff(parsed.geometry.face_offsets), [2, 1])
    _assert_compact(parsed)


def test_truncated_glb_is_a_source_error(assets: Path, tmp_path: Path) -> None:
    path = tmp_path / "delft.glb"
    raw = (assets / "delft" / "delft.glb").read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(SourceError, match="cannot read as gltf") as info:
        load_mesh(path)
    assert info.value.path == str(path)


@pytest.mark.parametrize(
    "content", [b"garbage \x00\x01 not obj\nfoo bar\n", b"", b"v 0 0 0\nv 1 0 0\n"]
)
def test_obj_without_triangles_is_a_source_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.obj"
    path.write_bytes(content)
    with pytest.raises(SourceError, match="no triangle meshes") as info:
        load_mesh(path)
    assert info.value.path == str(path)


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        load_mesh(tmp_path / "missing.glb")
    (tmp_path / "model.fbx").write_bytes(b"Kaydara FBX Binary")
    with pytest.raises(SourceError, match="not a mesh file"):
        load_mesh(tmp_path / "model.fbx")
    with pytest.raises(SourceError, match="cannot read"):
        load_mesh(_gltf_with_bad_json(tmp_path))


def _gltf_with_bad_json(tmp_path: Path) -> Path:
    path = tmp_path / "broken.gltf"
    path.write_text('{"asset": {"version": "2.0"}, "nodes": [')
    return path


def test_bad_arguments(assets: Path) -> None:
    with pytest.raises(ValueError, match="up_axis"):
        _denhaag(assets, up_axis="x")
    with pytest.raises(ValueError, match="scale"):
        _denhaag(assets, scale=0.0)
