"""Footprints (ground outlines) derived from triangle meshes, for objects whose source has none."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from cim.geometry.columns import MeshColumns


def footprints_from_mesh(columns: MeshColumns, indices: NDArray[np.int64]) -> list[Any]:
    """The xy outline of objects ``indices``: the union of their near-horizontal
    downward-facing triangles (the ground), else their upward-facing ones (flat land cover,
    roads), else of all of them.

    Returns
    -------
    list of shapely geometries (``None`` for an object without a non-degenerate triangle),
    one per entry of ``indices``.
    """
    out: list[Any] = [None] * len(indices)
    if len(indices) == 0 or len(columns.faces) == 0:
        return out
    nz = columns.face_normals()[:, 2]
    tri_xy = columns.vertices[columns.faces][:, :, :2]
    area2 = np.abs(
        (tri_xy[:, 1, 0] - tri_xy[:, 0, 0]) * (tri_xy[:, 2, 1] - tri_xy[:, 0, 1])
        - (tri_xy[:, 2, 0] - tri_xy[:, 0, 0]) * (tri_xy[:, 1, 1] - tri_xy[:, 0, 1])
    )
    usable = area2 > 1e-9
    for n, index in enumerate(indices.tolist()):
        f0, f1 = int(columns.face_offsets[index]), int(columns.face_offsets[index + 1])
        if f0 == f1:
            continue
        ok = usable[f0:f1]
        local_nz = nz[f0:f1]
        # ground faces are near-horizontal and face down; a steep downward face is more
        # likely a mis-oriented roof (seen in real LoD2 data) than a floor
        for mask in (ok & (local_nz < -0.95), ok & (local_nz > 0.5), ok):
            if mask.any():
                break
        else:
            continue
        tris = tri_xy[f0:f1][mask]
        polys = shapely.polygons(np.concatenate([tris, tris[:, :1]], axis=1))
        out[n] = polys[0] if len(polys) == 1 else dissolve(list(polys))
    return out


def dissolve(parts: list[Any]) -> Any:
    """The union of polygons. Triangles of one surface and the parts of one building
    usually tile without overlapping, which GEOS's coverage union handles many times faster;
    anything else (overlaps, unnoded edges) falls back to a full union."""
    try:
        merged = shapely.coverage_union_all(parts)
    except shapely.errors.GEOSException:
        return shapely.union_all(parts)
    total = float(np.sum(shapely.area(np.asarray(parts, dtype=object))))
    if merged.is_valid and abs(merged.area - total) <= 1e-6 * max(total, 1.0):
        return merged
    return shapely.union_all(parts)


def union_groups(shapes: NDArray[np.object_], groups: NDArray[np.int64]) -> dict[int, Any]:
    """The union of the shapes of each group (a building's parts), as ``{group: outline}``.

    Unions are made in rounds of one vectorised pairwise ``shapely.union`` across all
    groups, instead of one call per group.
    """
    order = np.argsort(groups, kind="stable")
    shapes, groups = shapes[order], groups[order]
    heads = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]
    counts = np.diff(np.r_[heads, len(groups)])
    merged = shapes[heads].copy()
    for k in range(1, int(counts.max(initial=1))):
        more = counts > k
        merged[more] = shapely.union(merged[more], shapes[heads[more] + k])
    return dict(zip(groups[heads].tolist(), merged, strict=True))
