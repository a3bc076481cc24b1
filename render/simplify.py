"""Mesh simplification by vertex clustering, for the coarse terrain tiles."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def cluster_vertices(
    vertices: NDArray[np.float64], faces: NDArray[np.int64], cell_m: float
) -> tuple[NDArray[np.float64], NDArray[np.int64], float]:
    """Merge the vertices in each ``cell_m`` grid cell (in plan) into their mean.

    Parameters
    ----------
    vertices : (n, 3) float64, metres
    faces : (m, 3) int64
    cell_m : plan size of a cluster, metres (> 0)

    Returns
    -------
    vertices : (p, 3) float64, the cluster means that faces still use
    faces : (q, 3) int64, the faces whose three corners fell in three clusters
    error_m : the largest distance from an input vertex to its cluster's mean

    Raises
    ------
    ValueError
        If ``cell_m <= 0``.
    """
    if not cell_m > 0:
        raise ValueError(f"cell_m(={cell_m}) must be > 0")
    if len(faces) == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), 0.0
    keys = np.floor((vertices[:, :2] - vertices[:, :2].min(axis=0)) / cell_m).astype(np.int64)
    _, cluster = np.unique(keys, axis=0, return_inverse=True)
    cluster = cluster.ravel()
    count = np.bincount(cluster)
    means = np.column_stack(
        [np.bincount(cluster, weights=vertices[:, k]) / count for k in range(3)]
    )
    error = float(np.linalg.norm(vertices - means[cluster], axis=1).max())
    mapped = cluster[faces]
    keep = (
        (mapped[:, 0] != mapped[:, 1])
        & (mapped[:, 1] != mapped[:, 2])
        & (mapped[:, 0] != mapped[:, 2])
    )
    mapped = mapped[keep]
    used, inverse = np.unique(mapped, return_inverse=True)
    return means[used], inverse.reshape(-1, 3).astype(np.int64), error
