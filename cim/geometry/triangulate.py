"""Triangulation of planar polygons with holes, vectorised where the polygon allows.

Triangles and quads (most faces of LoD1/LoD2 city models) are split with array operations;
only the rest goes, one polygon at a time, through earcut (``mapbox_earcut``) in the plane
that drops the axis of the polygon's dominant normal component.
"""

from __future__ import annotations

from dataclasses import dataclass

import mapbox_earcut
import numpy as np
from numpy.typing import NDArray

from cim.geometry.ragged import concat_ranges


@dataclass(frozen=True)
class Polygons:
    """Polygons with holes over a shared vertex array, as flat ragged arrays.

    Attributes
    ----------
    ring_vertices : (p,) int64
        Vertex indices of all rings, ring after ring (rings are not closed).
    ring_offsets : (r + 1,) int64
        Ring ``j`` is ``ring_vertices[ring_offsets[j]:ring_offsets[j + 1]]``.
    polygon_offsets : (q + 1,) int64
        Polygon ``i`` has rings ``polygon_offsets[i]:polygon_offsets[i + 1]``; the first is
        the outer ring, the others are holes.
    """

    ring_vertices: NDArray[np.int64]
    ring_offsets: NDArray[np.int64]
    polygon_offsets: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.polygon_offsets) - 1


def triangulate_polygons(
    vertices: NDArray[np.float64], polygons: Polygons
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Triangles covering each polygon.

    Parameters
    ----------
    vertices : (n, 3) float64
        The shared vertex array.
    polygons : Polygons
        The polygons to triangulate.

    Returns
    -------
    triangles : (t, 3) int64
        Vertex indices into ``vertices``; orientation follows the outer ring.
    polygon_of_triangle : (t,) int64
        The polygon each triangle belongs to, in ascending order.

    Raises
    ------
    ValueError
        If a polygon has a ring with fewer than three vertices.
    """
    rv, ro, po = polygons.ring_vertices, polygons.ring_offsets, polygons.polygon_offsets
    q = len(polygons)
    if q == 0:
        return np.zeros((0, 3), dtype=np.int64), np.zeros(0, dtype=np.int64)
    ring_size = np.diff(ro)
    if (ring_size < 3).any():
        bad = int(np.flatnonzero(ring_size < 3)[0])
        polygon = int(np.searchsorted(po, bad, side="right") - 1)
        raise ValueError(f"polygon {polygon} has a ring with {int(ring_size[bad])} vertices")
    n_rings = np.diff(po)
    outer_size = ring_size[po[:-1]]
    simple = n_rings == 1
    tri_mask = simple & (outer_size == 3)
    quad_mask = simple & (outer_size == 4)
    other = np.flatnonzero(~(tri_mask | quad_mask))
    fan_ids = other[simple[other]]
    if len(fan_ids):
        fan_ids = fan_ids[_convex(vertices, polygons, fan_ids)]
        other = np.setdiff1d(other, fan_ids, assume_unique=True)

    pieces: list[NDArray[np.int64]] = []
    owners: list[NDArray[np.int64]] = []

    tri_ids = np.flatnonzero(tri_mask)
    if len(tri_ids):
        start = ro[po[tri_ids]]
        pieces.append(rv[start[:, None] + np.arange(3)])
        owners.append(tri_ids)

    quad_ids = np.flatnonzero(quad_mask)
    if len(quad_ids):
        start = ro[po[quad_ids]]
        corners = rv[start[:, None] + np.arange(4)]
        p = vertices[corners]
        # Split along 0-2 unless the two halves fold against each other (a reflex corner at
        # 1 or 3); then 1-3 is the diagonal inside the quad.
        n_a = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
        n_b = np.cross(p[:, 2] - p[:, 0], p[:, 3] - p[:, 0])
        use_02 = np.einsum("ij,ij->i", n_a, n_b) >= 0
        first = np.where(use_02[:, None], corners[:, [0, 1, 2]], corners[:, [0, 1, 3]])
        second = np.where(use_02[:, None], corners[:, [0, 2, 3]], corners[:, [1, 2, 3]])
        pieces.append(np.stack([first, second], axis=1).reshape(-1, 3))
        owners.append(np.repeat(quad_ids, 2))

    if len(fan_ids):
        size = outer_size[fan_ids]
        start = ro[po[fan_ids]]
        count = size - 2
        owner = np.repeat(fan_ids, count)
        first = np.repeat(start, count)
        step = concat_ranges(np.zeros(len(count), dtype=np.int64), count)
        fan = np.column_stack([rv[first], rv[first + step + 1], rv[first + step + 2]])
        corner = vertices[fan]
        span = np.linalg.norm(
            np.cross(corner[:, 1] - corner[:, 0], corner[:, 2] - corner[:, 0]), axis=1
        )
        keep = span > 1e-12 * np.einsum(
            "ij,ij->i", corner[:, 1] - corner[:, 0], corner[:, 1] - corner[:, 0]
        ).clip(min=1e-300)
        pieces.append(fan[keep])  # a collinear corner makes a zero-area triangle: drop it
        owners.append(owner[keep])

    if len(other):
        tris, owner = _earcut(vertices, polygons, other)
        pieces.append(tris)
        owners.append(owner)

    if not pieces:
        return np.zeros((0, 3), dtype=np.int64), np.zeros(0, dtype=np.int64)
    triangles = np.concatenate(pieces).astype(np.int64)
    owner = np.concatenate(owners).astype(np.int64)
    order = np.argsort(owner, kind="stable")
    return triangles[order], owner[order]


_PLANE_AXES = np.array([[1, 2], [2, 0], [0, 1]])


def _earcut(
    vertices: NDArray[np.float64], polygons: Polygons, ids: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Triangles of polygons ``ids`` through earcut, one call each, everything around the
    calls vectorised: each polygon is projected onto the axis plane its normal is closest
    to (right-handed, so a polygon seen from its back comes out clockwise and its
    triangles are flipped back)."""
    ro, po, rv = polygons.ring_offsets, polygons.polygon_offsets, polygons.ring_vertices
    normals = _outer_normals(vertices, polygons, ids)
    drop = np.argmax(np.abs(normals), axis=1)
    backwards = normals[np.arange(len(ids)), drop] < 0
    first_slot, last_slot = ro[po[ids]], ro[po[ids + 1]]
    size = last_slot - first_slot
    slots = concat_ranges(first_slot, last_slot)
    points = vertices[rv[slots]]
    axes = _PLANE_AXES[np.repeat(drop, size)]
    rows = np.arange(len(slots))
    plane = np.column_stack([points[rows, axes[:, 0]], points[rows, axes[:, 1]]])
    start = np.r_[0, np.cumsum(size)[:-1]]
    # ring ends relative to their polygon's first vertex, for every ring
    ring_polygon = np.repeat(np.arange(len(polygons)), np.diff(po))
    ends = (ro[1:] - ro[po[ring_polygon]]).astype(np.uint32)
    local: list[NDArray[np.uint32]] = []
    counts = np.zeros(len(ids), dtype=np.int64)
    for n, (pid, begin, length) in enumerate(
        zip(ids.tolist(), start.tolist(), size.tolist(), strict=True)
    ):
        tris = mapbox_earcut.triangulate_float64(
            plane[begin : begin + length], ends[po[pid] : po[pid + 1]]
        )
        counts[n] = len(tris) // 3
        local.append(tris + begin)
    if not local:
        return np.zeros((0, 3), dtype=np.int64), np.zeros(0, dtype=np.int64)
    triangles = rv[slots[np.concatenate(local).astype(np.int64).reshape(-1, 3)]]
    flip = np.repeat(backwards, counts)
    triangles[flip] = triangles[flip][:, ::-1]
    return triangles, np.repeat(ids, counts)


def _convex(
    vertices: NDArray[np.float64], polygons: Polygons, ids: NDArray[np.int64]
) -> NDArray[np.bool_]:
    """Which single-ring polygons ``ids`` are strictly convex and simple in their own plane
    (every turn the same way, total turning one full circle): those a fan splits correctly."""
    ro, po, rv = polygons.ring_offsets, polygons.polygon_offsets, polygons.ring_vertices
    normals = _outer_normals(vertices, polygons, ids)
    drop = np.argmax(np.abs(normals), axis=1)
    sign = np.sign(normals[np.arange(len(ids)), drop])
    start, stop = ro[po[ids]], ro[po[ids] + 1]
    size = stop - start
    first = np.r_[0, np.cumsum(size)[:-1]]
    local = np.arange(size.sum()) - np.repeat(first, size)
    ring_start, ring_size = np.repeat(start, size), np.repeat(size, size)
    slot = ring_start + local
    nxt = ring_start + (local + 1) % ring_size
    axes = _PLANE_AXES[np.repeat(drop, size)]
    p = vertices[rv[slot]]
    q = vertices[rv[nxt]]
    rows = np.arange(len(slot))
    edge = np.column_stack(
        [q[rows, axes[:, 0]] - p[rows, axes[:, 0]], q[rows, axes[:, 1]] - p[rows, axes[:, 1]]]
    )
    following = edge[np.repeat(first, size) + (local + 1) % ring_size]
    cross = (edge[:, 0] * following[:, 1] - edge[:, 1] * following[:, 0]) * np.repeat(sign, size)
    dot = edge[:, 0] * following[:, 0] + edge[:, 1] * following[:, 1]
    scale = np.hypot(*edge.T) * np.hypot(*following.T)
    right = cross < -1e-9 * scale  # a turn the wrong way; straight (collinear) corners are fine
    turning = np.add.reduceat(np.arctan2(cross, dot), first)
    no_right = np.add.reduceat(right.astype(np.int64), first) == 0
    no_backtrack = (
        np.add.reduceat(((np.abs(cross) <= 1e-9 * scale) & (dot < 0)).astype(np.int64), first) == 0
    )
    result: NDArray[np.bool_] = (
        no_right & no_backtrack & (np.abs(turning - 2 * np.pi) < 1e-6) & (sign != 0)
    )
    return result


def _outer_normals(
    vertices: NDArray[np.float64], polygons: Polygons, ids: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Newell normals ``(len(ids), 3)`` of the outer rings of polygons ``ids``.

    Newell's method is robust for non-convex and slightly non-planar rings.
    """
    ro, po, rv = polygons.ring_offsets, polygons.polygon_offsets, polygons.ring_vertices
    outer = po[ids]
    start, stop = ro[outer], ro[outer + 1]
    size = stop - start
    slot = concat_ranges(start, stop)
    nxt = slot + 1
    ring_end = np.repeat(stop, size)
    nxt[nxt == ring_end] = np.repeat(start, size)[nxt == ring_end]
    p, q = vertices[rv[slot]], vertices[rv[nxt]]
    terms = np.column_stack(
        [
            (p[:, 1] - q[:, 1]) * (p[:, 2] + q[:, 2]),
            (p[:, 2] - q[:, 2]) * (p[:, 0] + q[:, 0]),
            (p[:, 0] - q[:, 0]) * (p[:, 1] + q[:, 1]),
        ]
    )
    return np.add.reduceat(terms, np.r_[0, np.cumsum(size)[:-1]], axis=0)
