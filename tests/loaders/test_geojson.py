"""GeoJSON footprints extruded to LoD1 prisms, and point components."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from shapely.geometry import shape

from cim.errors import SourceError
from cim.geometry.columns import SURFACE_CODES
from cim.loaders.geojson import load_geojson

SQUARE = [[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0], [0.0, 0.0]]]
HOLE = [[2.0, 2.0], [2.0, 4.0], [4.0, 4.0], [4.0, 2.0], [2.0, 2.0]]


def _write(tmp_path: Path, features: list[dict[str, Any]], **extra: Any) -> Path:
    path = tmp_path / "features.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", **extra, "features": features}))
    return path


def _polygon(coordinates: Any, **properties: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": properties,
        "geometry": {"type": "Polygon", "coordinates": coordinates},
    }


def _assert_closed_prisms(parsed: Any, heights: list[float], base_z: float) -> None:
    """Each prism is watertight, outward, area x height in volume, from base_z up."""
    geometry = parsed.geometry
    normals = geometry.face_normals()
    tri = geometry.vertices[geometry.faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    owner = geometry.face_object()
    for index, height in enumerate(heights):
        footprint = parsed.footprints[index]
        mesh = geometry.to_trimesh(index)
        assert mesh.is_watertight and mesh.is_winding_consistent
        assert mesh.volume == pytest.approx(footprint.area * height, rel=1e-9)
        np.testing.assert_allclose(
            geometry.bounds()[index],
            [*footprint.bounds[:2], base_z, *footprint.bounds[2:], base_z + height],
        )
        mine = owner == index
        for name, z in (("GroundSurface", -1.0), ("RoofSurface", 1.0)):
            faces = mine & (geometry.surfaces == SURFACE_CODES[name])
            np.testing.assert_allclose(normals[faces], np.tile([0.0, 0.0, z], (faces.sum(), 1)))
            assert area[faces].sum() == pytest.approx(footprint.area, rel=1e-9)
        walls = mine & (geometry.surfaces == SURFACE_CODES["WallSurface"])
        classes = [SURFACE_CODES[n] for n in ("GroundSurface", "WallSurface", "RoofSurface")]
        assert np.isin(geometry.surfaces[mine], classes).all()
        np.testing.assert_allclose(normals[walls, 2], 0.0, atol=1e-12)
        # a step outwards from each wall's centre leaves the footprint
        outside = tri[walls].mean(axis=1)[:, :2] + 1e-3 * normals[walls, :2]
        assert not shapely.contains_xy(footprint, outside[:, 0], outside[:, 1]).any()


def test_merewether_houses(assets: Path) -> None:
    path = assets / "merewether" / "merewether_houses_epsg32756.geojson"
    document = json.loads(path.read_text())
    parsed = load_geojson(path, default_height_m=6.0, base_z=10.0)

    assert parsed.format == "geojson"
    assert parsed.crs == "EPSG:32756"
    assert len(parsed.objects) == 60
    assert [o.source_id for o in parsed.objects] == [
        f["properties"]["id"] for f in document["features"]
    ]
    assert len({o.source_id for o in parsed.objects}) == 60
    assert all(o.kind == "Building" for o in parsed.objects)
    assert parsed.objects[0].attributes == {"id": "house000", "lod": "1", "extrusion_height_m": 6.0}
    assert parsed.points is None
    for footprint, feature in zip(parsed.footprints or [], document["features"], strict=True):
        assert footprint.geom_type == "Polygon"
        assert footprint.normalize().equals_exact(shape(feature["geometry"]).normalize(), 1e-9)
    _assert_closed_prisms(parsed, [6.0] * 60, 10.0)


def test_merewether_needs_a_height(assets: Path) -> None:
    path = assets / "merewether" / "merewether_houses_epsg32756.geojson"
    with pytest.raises(SourceError, match="pass default_height_m") as info:
        load_geojson(path)
    assert info.value.object_id == "house000"
    assert info.value.path == str(path)


def test_bellinge_manholes(assets: Path) -> None:
    path = assets / "bellinge" / "bellinge_manholes.geojson"
    features = json.loads(path.read_text())["features"]
    parsed = load_geojson(path)

    assert parsed.crs == "EPSG:32632"
    assert len(parsed.objects) == 15
    assert [o.source_id for o in parsed.objects] == [f["id"] for f in features]
    assert all(o.kind == "Component" for o in parsed.objects)
    assert all(o.attributes["component_class"] == "0102" for o in parsed.objects)
    assert len(parsed.geometry) == 15
    assert len(parsed.geometry.vertices) == 0
    assert parsed.points is not None
    np.testing.assert_array_equal(parsed.points, [f["geometry"]["coordinates"] for f in features])
    np.testing.assert_array_equal(
        parsed.points[:, 2], [o.attributes["surface_elevation"] for o in parsed.objects]
    )
    assert (
        parsed.points[:, 2] > [o.attributes["chamber_floor_elevation"] for o in parsed.objects]
    ).all()
    assert all(
        p.has_z and (p.x, p.y, p.z) == tuple(row)
        for p, row in zip(parsed.footprints or [], parsed.points, strict=True)
    )


def test_mixed_features_keep_file_order(tmp_path: Path) -> None:
    features = [
        {
            "type": "Feature",
            "id": 7,
            "properties": {"kind": "Lamp"},
            "geometry": {"type": "Point", "coordinates": [1.0, 2.0]},
        },
        _polygon(SQUARE, height=4),
        {
            "type": "Feature",
            "properties": {},
            "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
        },
        {
            "type": "Feature",
            "properties": {"id": "tree"},
            "geometry": {"type": "Point", "coordinates": [5.0, 6.0, 7.0]},
        },
        _polygon(SQUARE, height=2, kind="Bridge", name="the bridge"),
    ]
    parsed = load_geojson(_write(tmp_path, features), base_z=-1.0)

    assert [(o.source_id, o.kind, o.name) for o in parsed.objects] == [
        ("7", "Lamp", "7"),
        ("feature-1", "Building", "feature-1"),
        ("tree", "Component", "tree"),
        ("feature-4", "Bridge", "the bridge"),
    ]
    np.testing.assert_array_equal(np.diff(parsed.geometry.vertex_offsets), [0, 8, 0, 8])
    assert parsed.points is not None
    np.testing.assert_array_equal(parsed.points[[0, 2]], [[1.0, 2.0, -1.0], [5.0, 6.0, 7.0]])
    assert np.isnan(parsed.points[[1, 3]]).all()
    assert parsed.crs == "EPSG:4326"  # no crs member and every number fits lon/lat
    bounds = parsed.geometry.bounds()
    np.testing.assert_array_equal(bounds[[1, 3], 5], [3.0, 1.0])
    assert np.isnan(bounds[[0, 2]]).all()
    # a feature without geometry is refused, not dropped: the file lost something
    features.insert(3, {"type": "Feature", "properties": {"id": "p"}, "geometry": None})
    with pytest.raises(SourceError, match="feature 3 has no geometry") as info:
        load_geojson(_write(tmp_path, features))
    assert info.value.object_id == "p"


def test_multipolygon_with_hole_and_clockwise_rings(tmp_path: Path) -> None:
    clockwise = [[[20.0, 0.0], [20.0, 5.0], [25.0, 5.0], [25.0, 0.0], [20.0, 0.0]]]
    counter_clockwise_hole = [SQUARE[0], HOLE[::-1]]
    feature = {
        "type": "Feature",
        "id": "m",
        "properties": {"height": "5.5"},
        "geometry": {"type": "MultiPolygon", "coordinates": [counter_clockwise_hole, clockwise]},
    }
    parsed = load_geojson(_write(tmp_path, [feature, _polygon([SQUARE[0], HOLE], height=1)]))

    footprint = (parsed.footprints or [])[0]
    assert footprint.geom_type == "MultiPolygon"
    assert footprint.area == pytest.approx(100 - 4 + 25)
    _assert_closed_prisms(parsed, [5.5, 1.0], 0.0)


@pytest.mark.parametrize(
    ("properties", "options", "height"),
    [
        ({"height": 12, "measuredHeight": 1}, {}, 12.0),
        ({"measuredHeight": "8.5", "building:levels": 2}, {}, 8.5),
        ({"building:height": "7 m"}, {}, 7.0),
        ({"building:levels": "4", "storeys": 9}, {"storey_height_m": 2.5}, 22.5),
        ({"building:levels": 4}, {"storey_height_m": 2.5}, 10.0),
        ({"h": 3.25, "height": 99}, {"height_attribute": "h"}, 3.25),
        ({"height": 99}, {"height_attribute": "h"}, 99.0),
        ({}, {"default_height_m": 4.0}, 4.0),
    ],
)
def test_height_sources(
    tmp_path: Path, properties: dict[str, Any], options: dict[str, Any], height: float
) -> None:
    parsed = load_geojson(_write(tmp_path, [_polygon(SQUARE, **properties)]), **options)
    assert parsed.geometry.bounds()[0, 5] == pytest.approx(height)
    assert parsed.objects[0].attributes["extrusion_height_m"] == pytest.approx(height)


@pytest.mark.parametrize("value", ["tall", 0, -3, True, [4]])
def test_unusable_height_is_a_source_error(tmp_path: Path, value: Any) -> None:
    features = [_polygon(SQUARE, id="b1", height=value)]
    with pytest.raises(SourceError, match="not a positive number") as info:
        load_geojson(_write(tmp_path, features), default_height_m=3.0)
    assert info.value.object_id == "b1"


@pytest.mark.parametrize(
    ("extra", "coordinates", "crs"),
    [
        ({}, [4.89, 52.37], "EPSG:4326"),
        ({}, [120000.0, 480000.0], None),
        ({"crs": {"type": "name", "properties": {"name": "EPSG:28992"}}}, [1.0, 2.0], "EPSG:28992"),
        (
            {"crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}},
            [4.89, 52.37],
            "EPSG:4326",
        ),
        ({"crs": {"type": "name", "properties": {"name": "local grid"}}}, [4.89, 52.37], None),
    ],
)
def test_crs(
    tmp_path: Path, extra: dict[str, Any], coordinates: list[float], crs: str | None
) -> None:
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Point", "coordinates": coordinates},
    }
    path = _write(tmp_path, [feature], **extra)
    assert load_geojson(path).crs == crs
    assert load_geojson(path, crs="EPSG:3857").crs == "EPSG:3857"


def test_invalid_files(tmp_path: Path) -> None:
    path = tmp_path / "bad.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(SourceError, match="not valid JSON"):
        load_geojson(path)
    path.write_text('{"type": "Feature", "properties": {}, "geometry": null}')
    with pytest.raises(SourceError, match="not a GeoJSON FeatureCollection"):
        load_geojson(path)
    with pytest.raises(SourceError, match="cannot read file"):
        load_geojson(tmp_path / "missing.geojson")


@pytest.mark.parametrize(
    ("coordinates", "message"),
    [
        ([[[0, 0], [1, 1], [0, 0], [1, 1], [0, 0]]], "fewer than 3 distinct points"),
        ([[[0, 0], [1, 0], [1, 0], [0, 0]]], "fewer than 3 distinct points"),
        ([[[0, 0], [1, 0], [1, "x"], [0, 0]]], "malformed ring"),
        ([[[0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0]]], "positions"),
        ([], "malformed polygon"),
    ],
)
def test_bad_rings_name_the_feature(tmp_path: Path, coordinates: Any, message: str) -> None:
    path = _write(tmp_path, [_polygon(coordinates, id="f9", height=3)])
    with pytest.raises(SourceError, match=message) as info:
        load_geojson(path)
    assert info.value.object_id == "f9"
    assert info.value.path == str(path)


def test_non_finite_coordinates_name_the_feature(tmp_path: Path) -> None:
    path = tmp_path / "nan.geojson"
    ring = [[0, 0], [1, 0], [float("nan"), 1], [0, 0]]
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    _polygon([ring], id="a", height=3),
                ],
            }
        )
    )
    with pytest.raises(SourceError, match="non-finite") as info:
        load_geojson(path)
    assert info.value.object_id == "a"
    point = {
        "type": "Feature",
        "id": "p",
        "properties": {},
        "geometry": {"type": "Point", "coordinates": [1.0, float("inf")]},
    }
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [point]}))
    with pytest.raises(SourceError, match="non-finite") as info:
        load_geojson(path)
    assert info.value.object_id == "p"


def test_bad_arguments(tmp_path: Path) -> None:
    path = _write(tmp_path, [])
    with pytest.raises(ValueError, match="storey_height_m"):
        load_geojson(path, storey_height_m=0)
    with pytest.raises(ValueError, match="default_height_m"):
        load_geojson(path, default_height_m=float("nan"))
    empty = load_geojson(path)
    assert empty.objects == [] and len(empty.geometry) == 0 and empty.crs is None
