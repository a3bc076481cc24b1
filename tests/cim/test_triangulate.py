"""Triangulation invariants: area and orientation are kept, for any plane and winding."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from cim.geometry.triangulate import Polygons, triangulate_polygons


def _star(n: int, seed: int) -> np.ndarray:
    """A star-shaped (often non-convex) ring of ``n`` vertices in the xy plane."""
    rng = np.random.default_rng(seed)
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radius = rng.uniform(0.3, 1.0, n)
    return np.column_stack([radius * np.cos(angles), radius * np.sin(angles), np.zeros(n)])


def _rotation(seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


@settings(max_examples=60, deadline=None)
@given(st.integers(3, 12), st.integers(0, 10_000), st.booleans())
def test_area_and_orientation_are_preserved(n: int, seed: int, reverse: bool) -> None:
    ring = _star(n, seed)
    if shapely.Polygon(ring[:, :2]).area < 1e-3 or not shapely.Polygon(ring[:, :2]).is_valid:
        return
    if reverse:
        ring = ring[::-1]
    ccw = shapely.LinearRing(ring[:, :2]).is_ccw
    rot = _rotation(seed)
    vertices = ring @ rot.T + np.array([1000.0, -50.0, 3.0])
    polygons = Polygons(np.arange(n), np.array([0, n]), np.array([0, 1]))
    triangles, owner = triangulate_polygons(vertices, polygons)
    assert len(triangles) == n - 2 and (owner == 0).all()
    tri = vertices[triangles]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    expected_normal = rot[:, 2] * (1 if ccw else -1)
    area = np.linalg.norm(normals, axis=1).sum() / 2
    assert area == pytest.approx(shapely.Polygon(ring[:, :2]).area, rel=1e-9)
    assert (normals @ expected_normal > -1e-9).all()


def test_holes_are_cut_out() -> None:
    outer = [[0, 0, 0], [4, 0, 0], [4, 4, 0], [0, 4, 0]]
    hole = [[1, 1, 0], [1, 3, 0], [3, 3, 0], [3, 1, 0]]
    vertices = np.array(outer + hole, dtype=float)
    polygons = Polygons(np.arange(8), np.array([0, 4, 8]), np.array([0, 2]))
    triangles, _ = triangulate_polygons(vertices, polygons)
    tri = vertices[triangles]
    areas = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])[:, 2] / 2
    assert areas.sum() == pytest.approx(12.0)
    assert (areas > 0).all()
    centroids = tri.mean(axis=1)
    inside_hole = (np.abs(centroids[:, :2] - 2) < 1).all(axis=1)
    assert not inside_hole.any()


def test_non_convex_quad_uses_the_inner_diagonal() -> None:
    # a dart: vertex 2 is reflex, so the 0-2 diagonal lies inside and 1-3 outside
    vertices = np.array([[0, 0, 0], [2, 1, 0], [0, 0.2, 0], [-2, 1, 0]], dtype=float)
    for start in range(4):
        order = np.roll(np.arange(4), -start)
        polygons = Polygons(order, np.array([0, 4]), np.array([0, 1]))
        triangles, _ = triangulate_polygons(vertices, polygons)
        tri = vertices[triangles]
        areas = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])[:, 2] / 2
        assert areas.sum() == pytest.approx(shapely.Polygon(vertices[:, :2]).area)
        assert (areas > 0).all()


def test_short_rings_are_refused() -> None:
    polygons = Polygons(np.array([0, 1]), np.array([0, 2]), np.array([0, 1]))
    with pytest.raises(ValueError, match="ring with 2 vertices"):
        triangulate_polygons(np.zeros((2, 3)), polygons)
