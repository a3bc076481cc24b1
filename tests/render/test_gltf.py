"""glTF export: valid files, the containment tree as nodes, the frame recorded, exact geometry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gltf_validator import assert_valid, validate_files
from numpy.typing import NDArray

from cim.errors import NotFoundError
from cim.store import Store
from render.glb import accessor_array, read_glb
from render.gltf import export_glb
from render.placement import site_frame


def _world_translations(gltf: dict[str, Any]) -> dict[int, NDArray[np.float64]]:
    out: dict[int, NDArray[np.float64]] = {}
    stack = [(n, np.zeros(3)) for n in gltf["scenes"][0]["nodes"]]
    while stack:
        index, base = stack.pop()
        node = gltf["nodes"][index]
        here = base + np.array(node.get("translation", [0.0, 0.0, 0.0]))
        assert "rotation" not in node and "scale" not in node and "matrix" not in node
        out[index] = here
        stack.extend((c, here) for c in node.get("children", []))
    return out


@pytest.fixture(scope="module")
def site_glbs(scene_store: Store, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Whole-site exports and a few subtrees, written to files."""
    out = tmp_path_factory.mktemp("glb")
    files: dict[str, Path] = {}
    for site in ("denhaag", "merewether"):
        files[site] = out / f"{site}.glb"
        files[site].write_bytes(export_glb(scene_store, site))
    return files


def test_whole_sites_pass_the_validator(site_glbs: dict[str, Path]) -> None:
    reports = validate_files(list(site_glbs.values()))
    assert [r["errors"] for r in reports] == [0, 0]
    assert [r["warnings"] for r in reports] == [0, 0]


def test_every_object_of_a_grid_cell_and_every_kind_exports_valid(
    scene_store: Store, tmp_path: Path
) -> None:
    paths = []
    for site in ("denhaag", "merewether"):
        objects = scene_store.all_objects(site)
        cell = max(
            (o for o in objects if o.kind == "GridCell"),
            key=lambda c: sum(1 for o in objects if o.parent == c.code),
        )
        chosen = {o.code for o in objects if o.parent == cell.code}
        chosen |= {o.code for o in objects if o.parent in chosen}
        chosen |= {cell.code} | {
            next(o.code for o in objects if o.kind == k) for k in {o.kind for o in objects}
        }
        for code in sorted(chosen):
            path = tmp_path / f"{site}-{code}.glb"
            path.write_bytes(export_glb(scene_store, site, code))
            paths.append(path)
    assert len(paths) > 100
    assert_valid(paths)


def test_nodes_mirror_the_containment_tree(site_glbs: dict[str, Path], scene_store: Store) -> None:
    gltf, _ = read_glb(site_glbs["denhaag"].read_bytes())
    objects = {o.code: o for o in scene_store.all_objects("denhaag")}
    nodes = gltf["nodes"]
    assert len(nodes) == len(objects)
    assert [nodes[i]["name"] for i in gltf["scenes"][0]["nodes"]] == ["990100"]
    parent_of = {c: nodes[p]["name"] for p, n in enumerate(nodes) for c in n.get("children", [])}
    for index, node in enumerate(nodes):
        obj = objects[node["name"]]
        assert node["extras"]["code"] == obj.code
        assert node["extras"]["kind"] == obj.kind
        assert node["extras"]["name"] == obj.name
        assert node["extras"].get("attributes", {}) == obj.attributes
        assert parent_of.get(index) == obj.parent
        assert ("mesh" in node) == (obj.chunk is not None)
    materials = {m["name"] for m in gltf["materials"]}
    assert materials == {"BuildingPart", "Building", "TINRelief"}


def test_origin_is_recorded_and_places_the_site(
    site_glbs: dict[str, Path], scene_store: Store
) -> None:
    gltf, _ = read_glb(site_glbs["denhaag"].read_bytes())
    extras = gltf["asset"]["extras"]
    assert extras["crs"] == "EPSG:7415"
    assert extras["origin"] == pytest.approx([78642.342, 457940.515, 2.463])
    lon, lat, height = extras["origin_lon_lat_height"]
    # The Hague, central: about 4.27 E, 52.10 N
    assert lon == pytest.approx(4.2727, abs=1e-3)
    assert lat == pytest.approx(52.1044, abs=1e-3)
    assert height == pytest.approx(2.463)
    matrix = np.array(extras["local_to_ecef"]).reshape(4, 4).T
    # the origin lands on the WGS 84 ellipsoid plus its height
    radius = np.linalg.norm(matrix[:3, 3])
    assert 6_364_000 < radius < 6_366_000
    # RD New's grid north is about 0.8 degrees off true north at The Hague; the matrix keeps it
    frame = site_frame(scene_store.site("denhaag"))
    convergence = np.degrees(np.arctan2(frame.local_to_enu[1, 0], frame.local_to_enu[0, 0]))
    assert 0.5 < abs(convergence) < 1.2
    assert np.linalg.det(frame.local_to_enu[:2, :2]) == pytest.approx(1.0, abs=2e-4)


def test_vertices_transform_back_to_the_store_within_a_millimetre(
    site_glbs: dict[str, Path], scene_store: Store
) -> None:
    gltf, binary = read_glb(site_glbs["denhaag"].read_bytes())
    origin = np.array(gltf["asset"]["extras"]["origin"])
    world = _world_translations(gltf)
    checked = 0
    for index, node in enumerate(gltf["nodes"]):
        if "mesh" not in node or node["extras"]["kind"] not in ("BuildingPart", "Building"):
            continue
        obj = scene_store.get("denhaag", node["name"])
        assert obj.chunk is not None and obj.index is not None
        expected, faces = scene_store.mesh_columns("denhaag", obj.chunk).object_arrays(obj.index)
        primitive = gltf["meshes"][node["mesh"]]["primitives"][0]
        yup = accessor_array(gltf, binary, primitive["attributes"]["POSITION"]) + world[index]
        back = np.column_stack([yup[:, 0], -yup[:, 2], yup[:, 1]]) + origin
        assert np.abs(back - expected).max() < 1e-3
        got_faces = accessor_array(gltf, binary, primitive["indices"]).reshape(-1, 3)
        assert np.array_equal(got_faces, faces)
        checked += 1
    assert checked == 1653 + 337


def test_one_building_export_holds_its_parts_only(scene_store: Store) -> None:
    building = next(
        o
        for o in scene_store.by_kind("denhaag", "Building")
        if len(scene_store.children("denhaag", o.code)) >= 2
    )
    gltf, _ = read_glb(export_glb(scene_store, "denhaag", building.code))
    parts = scene_store.children("denhaag", building.code)
    assert [gltf["nodes"][i]["name"] for i in gltf["scenes"][0]["nodes"]] == [building.code]
    assert sorted(n["name"] for n in gltf["nodes"][1:]) == sorted(p.code for p in parts)
    assert gltf["asset"]["extras"]["root"] == building.code


def test_unknown_codes_and_sites_are_not_found(scene_store: Store) -> None:
    with pytest.raises(NotFoundError, match="no object '123'"):
        export_glb(scene_store, "denhaag", "123")
    with pytest.raises(NotFoundError, match="no site"):
        export_glb(scene_store, "atlantis")


def test_progress_runs_from_zero_to_one(scene_store: Store) -> None:
    seen: list[float] = []
    export_glb(scene_store, "merewether", progress=lambda f, m: seen.append(f))
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
