"""Columnar geometry: shared arrays, per-object offsets, trimesh only on demand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from cim.geometry.columns import MeshColumns
from cim.loaders.cityjson import load_cityjson


def test_site_geometry_is_a_few_shared_arrays(denhaag_path: Path) -> None:
    columns = load_cityjson(denhaag_path).geometry
    assert len(columns) == 2498
    assert columns.vertices.shape[1] == 3 and columns.vertices.dtype == np.float64
    assert columns.faces.dtype == np.int64
    assert (np.diff(columns.vertex_offsets) >= 0).all()
    # every face of object i indexes only object i's vertices
    owner = columns.face_object()
    lo = columns.vertex_offsets[owner]
    hi = columns.vertex_offsets[owner + 1]
    assert ((columns.faces >= lo[:, None]) & (columns.faces < hi[:, None])).all()


def test_trimesh_on_demand_for_one_object(denhaag_path: Path) -> None:
    parsed = load_cityjson(denhaag_path)
    index = next(i for i, o in enumerate(parsed.objects) if o.kind == "BuildingPart")
    mesh = parsed.geometry.to_trimesh(index)
    assert isinstance(mesh, trimesh.Trimesh)
    np.testing.assert_allclose(np.concatenate(mesh.bounds), parsed.geometry.bounds()[index])
    assert mesh.volume > 0  # closed LoD2 solids, outward normals
    with pytest.raises(IndexError):
        parsed.geometry.object_arrays(len(parsed.geometry))


def test_concat_rebases_faces() -> None:
    a = MeshColumns(
        np.eye(3),
        np.array([[0, 1, 2]]),
        np.zeros(1, np.uint8),
        np.array([0, 3]),
        np.array([0, 1]),
    )
    both = MeshColumns.concat([a, MeshColumns.empty(2), a])
    assert len(both) == 4
    np.testing.assert_array_equal(both.faces, [[0, 1, 2], [3, 4, 5]])
    bounds = both.bounds()
    assert np.isnan(bounds[1]).all() and np.isnan(bounds[2]).all()
    np.testing.assert_array_equal(bounds[3], [0, 0, 0, 1, 1, 1])


def test_inconsistent_offsets_are_refused() -> None:
    with pytest.raises(ValueError, match="vertex_offsets"):
        MeshColumns(
            np.zeros((3, 3)),
            np.zeros((0, 3), np.int64),
            np.zeros(0, np.uint8),
            np.array([0, 2]),
            np.array([0, 0]),
        )
