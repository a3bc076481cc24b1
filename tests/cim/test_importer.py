"""Import details: terrain draping, geometry instances, malformed boundaries, CRS changes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cim.errors import CRSError, SourceError
from cim.importer import import_source
from cim.loaders import LoadOptions
from cim.loaders.cityjson import load_cityjson
from cim.store import Store
from cim.terrain import TinTerrain


def test_footprints_stand_on_the_site_terrain(store: Store, assets: Path) -> None:
    merewether = assets / "merewether"
    import_source(store, merewether / "merewether_dtm_1m_epsg32756.tif", site="m")
    import_source(
        store,
        merewether / "merewether_houses_epsg32756.geojson",
        site="m",
        options=LoadOptions(default_height_m=6.0),
    )
    dem_code = next(o.code for o in store.all_objects("m") if o.kind == "DEM")
    dem = store.raster("m", dem_code)
    houses = [o for o in store.all_objects("m") if o.kind == "Building"]
    assert len(houses) == 60
    for house in houses:
        mesh = store.mesh_columns("m", house.chunk).to_trimesh(house.index)
        under = dem.sample(mesh.vertices[:, :2])
        ground = house.attributes["ground_m"]
        assert ground == pytest.approx(np.nanmin(under), abs=1e-3)
        assert house.bbox is not None
        assert house.bbox[2] == pytest.approx(ground, abs=1e-3)
        assert house.bbox[5] - house.bbox[2] == pytest.approx(6.0)


def test_geometry_instances_are_placed(tmp_path: Path) -> None:
    doc = {
        "type": "CityJSON",
        "version": "2.0",
        "transform": {"scale": [0.01, 0.01, 0.01], "translate": [1000.0, 2000.0, 5.0]},
        "metadata": {"referenceSystem": "https://www.opengis.net/def/crs/EPSG/0/28992"},
        "geometry-templates": {
            "templates": [
                {"type": "MultiSurface", "lod": "2", "boundaries": [[[0, 1, 2]], [[0, 2, 3]]]}
            ],
            "vertices-templates": [[0, 0, 0], [1, 0, 0], [1, 1, 2], [0, 1, 2]],
        },
        "CityObjects": {
            "tree1": {
                "type": "SolitaryVegetationObject",
                "geometry": [
                    {
                        "type": "GeometryInstance",
                        "template": 0,
                        "boundaries": [0],
                        "transformationMatrix": [2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1],
                    }
                ],
            }
        },
        "vertices": [[100, 200, 0]],
    }
    path = tmp_path / "tree.city.json"
    path.write_text(json.dumps(doc))
    parsed = load_cityjson(path)
    vertices, faces = parsed.geometry.object_arrays(0)
    # anchor (1001, 2002, 5) plus the template scaled by 2 in x and y
    np.testing.assert_allclose(vertices.min(axis=0), [1001, 2002, 5])
    np.testing.assert_allclose(vertices.max(axis=0), [1003, 2004, 7])
    assert len(faces) == 2


@pytest.mark.parametrize(
    ("geometry", "reason"),
    [
        ({"type": "Solid", "lod": "1", "boundaries": [[[0, 1, 2]]]}, "do not match its type"),
        (
            {"type": "MultiSurface", "lod": "1", "boundaries": [[[[0, 1, 2]]]]},
            "do not match its type",
        ),
        ({"type": "MultiSurface", "lod": "1", "boundaries": [[]]}, "surface without rings"),
        (
            {"type": "MultiSurface", "lod": "1", "boundaries": [[[0, -1, 2]]]},
            "do not match its type",
        ),
        (
            {
                "type": "MultiSurface",
                "lod": "1",
                "boundaries": [[[0, 1, 2]]],
                "semantics": {"surfaces": [{"type": "RoofSurface"}], "values": [0, 0]},
            },
            "semantics 'values' hold 2 entries for 1 surfaces",
        ),
    ],
)
def test_malformed_boundaries_name_the_object(tmp_path: Path, geometry: dict, reason: str) -> None:
    doc = {
        "type": "CityJSON",
        "version": "2.0",
        "transform": {"scale": [1, 1, 1], "translate": [0, 0, 0]},
        "CityObjects": {
            "good": {
                "type": "Building",
                "geometry": [{"type": "MultiSurface", "lod": "1", "boundaries": [[[0, 1, 2]]]}],
            },
            "bad": {"type": "Building", "geometry": [geometry]},
        },
        "vertices": [[0, 0, 0], [1, 0, 0], [1, 1, 0]],
    }
    path = tmp_path / "bad.city.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SourceError, match=reason) as info:
        load_cityjson(path)
    assert info.value.object_id == "bad"


def test_later_sources_are_reprojected_into_the_site_crs(store: Store, assets: Path) -> None:
    # the Rotterdam subset in RD New (EPSG:28992) joins a site created in EPSG:7415 (RD + NAP)
    import_source(store, assets / "cityjson/delft_bgt_lod1.city.json", site="nl")
    report = import_source(
        store,
        assets / "cityjson/rotterdam_subset.city.json",
        site="nl",
        options=LoadOptions(crs="EPSG:28992"),
    )
    assert report.crs == "EPSG:7415"
    rotterdam = [o for o in store.all_objects("nl") if o.source == "rotterdam_subset.city.json"]
    assert len(rotterdam) == 16
    for obj in rotterdam:
        assert obj.bbox is not None
        assert 90_000 < obj.bbox[0] < 92_000 and 435_000 < obj.bbox[1] < 437_000


def test_raster_in_another_crs_is_refused(store: Store, assets: Path) -> None:
    import_source(store, assets / "cityjson/delft_bgt_lod1.city.json", site="nl")
    with pytest.raises(CRSError, match="re-project the raster"):
        import_source(store, assets / "merewether/merewether_dtm_1m_epsg32756.tif", site="nl")
    assert store.kind_counts("nl").get("DEM") is None


def test_wgs84_source_gets_a_utm_site(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "points.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "id": "lamp-1",
                        "properties": {"component_class": "0108"},
                        "geometry": {"type": "Point", "coordinates": [121.4737, 31.2304]},
                    }
                ],
            }
        )
    )
    report = import_source(store, path, site="shanghai", division="310101001001")
    assert report.crs == "EPSG:32651"  # WGS 84 / UTM zone 51N
    lamp = next(o for o in store.all_objects("shanghai") if o.source)
    assert lamp.code.startswith("3101010108")
    assert lamp.bbox is not None and 350_000 < lamp.bbox[0] < 360_000


def test_footprints_stand_on_a_tin(store: Store, denhaag_path: Path, tmp_path: Path) -> None:
    import shapely

    import_source(store, denhaag_path, site="dh")
    buildings = sorted(store.by_kind("dh", "Building"), key=lambda o: o.code)[:25]
    features = [
        {
            "type": "Feature",
            "id": f"fp-{n}",
            "properties": {"height": 10.0},
            "geometry": shapely.geometry.mapping(b.footprint.convex_hull),
        }
        for n, b in enumerate(buildings)
    ]
    path = tmp_path / "footprints.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::7415"}},
                "features": features,
            }
        )
    )
    import_source(store, path, site="dh")
    tin_object = store.by_kind("dh", "TINRelief")[0]
    assert tin_object.chunk is not None and tin_object.index is not None
    vertices, faces = store.mesh_columns("dh", tin_object.chunk).object_arrays(tin_object.index)
    tin = TinTerrain(vertices, faces)
    draped = [o for o in store.all_objects("dh") if o.source == "footprints.geojson"]
    assert len(draped) == 25
    for obj in draped:
        mesh = store.mesh_columns("dh", obj.chunk).to_trimesh(obj.index)
        assert obj.bbox is not None
        under = tin.sample(mesh.vertices[:, :2])
        assert obj.attributes["ground_m"] == pytest.approx(np.nanmin(under), abs=1e-3)
        assert obj.bbox[5] - obj.bbox[2] == pytest.approx(10.0)


def test_tin_sampling_is_exact_at_vertices_and_linear_inside() -> None:
    vertices = np.array([[0, 0, 1.0], [10, 0, 2.0], [0, 10, 3.0], [10, 10, 5.0]])
    tin = TinTerrain(vertices, np.array([[0, 1, 2], [1, 3, 2]]))
    np.testing.assert_allclose(tin.sample(vertices[:, :2]), vertices[:, 2])
    np.testing.assert_allclose(tin.sample(np.array([[2.0, 3.0]])), [1 + 0.2 + 0.6])
    assert np.isnan(tin.sample(np.array([[20.0, 20.0]]))).all()


def test_meshes_land_where_the_cityjson_puts_them(store: Store, assets: Path) -> None:
    import_source(store, assets / "denhaag_01/denhaag_01_lod2.city.json", site="dh")
    import_source(
        store,
        assets / "denhaag_01/DenHaag_01.gltf",
        site="dh",
        options=LoadOptions(crs="EPSG:7415", scale=0.001, offset=(78248.66, 457604.591, 2.463)),
    )
    by_source: dict[str, dict[str, object]] = {}
    for obj in store.all_objects("dh"):
        if obj.source and obj.source_id is not None:
            by_source.setdefault(obj.source, {})[obj.source_id] = obj
    meshes = by_source["DenHaag_01.gltf"]
    cityjson = by_source["denhaag_01_lod2.city.json"]
    assert len(meshes) == 1991
    matched = 0
    for sid, mesh in meshes.items():
        twin = cityjson.get(sid)
        if twin is None:
            continue
        matched += 1
        assert mesh.kind == "Mesh" and mesh.footprint is not None
        np.testing.assert_allclose(mesh.bbox, twin.bbox, atol=2e-3)
        # the outline seen from below matches the CityJSON ground surface
        assert mesh.footprint.area == pytest.approx(twin.footprint.area, rel=1e-3, abs=0.05)
    assert matched == 1991


def test_obj_buildings_get_footprints_and_cells(store: Store, assets: Path) -> None:
    report = import_source(
        store,
        assets / "zurich/zurich_subset_lod2.obj",
        site="zh",
        options=LoadOptions(crs="EPSG:2056"),
    )
    assert report.kinds == {"Mesh": 161}
    cells = {o.code: o for o in store.by_kind("zh", "GridCell")}
    for obj in store.by_kind("zh", "Mesh"):
        assert obj.footprint is not None and obj.footprint.is_valid and obj.footprint.area > 0
        assert cells[obj.parent].footprint.contains(obj.footprint.centroid)
