"""Terrain as a regular elevation grid: vectorised sampling and a decimated mesh."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cim.geometry.columns import MeshColumns


@dataclass(frozen=True)
class TerrainGrid:
    """A north-up elevation raster.

    Attributes
    ----------
    heights : (rows, cols) float64, metres
        Cell-centre elevations; NaN where the source has no data.
    origin_x, origin_y : float, metres
        Upper-left corner of the upper-left cell (GeoTIFF convention).
    cell_x, cell_y : float, metres
        Cell width and height (both positive; rows run southwards).
    crs : str or None
        CRS of the coordinates, e.g. ``"EPSG:32756"``.
    """

    heights: NDArray[np.float64]
    origin_x: float
    origin_y: float
    cell_x: float
    cell_y: float
    crs: str | None = None

    def __post_init__(self) -> None:
        if self.heights.ndim != 2 or min(self.heights.shape) < 2:
            raise ValueError(f"heights(shape={self.heights.shape}) must be at least 2 x 2")
        if not (self.cell_x > 0 and self.cell_y > 0):
            raise ValueError(f"cell size(={self.cell_x}, {self.cell_y}) must be > 0")

    @property
    def shape(self) -> tuple[int, int]:
        rows, cols = self.heights.shape
        return int(rows), int(cols)

    def bounds(self) -> tuple[float, float, float, float]:
        """``(minx, miny, maxx, maxy)`` of the raster's outer edges, metres."""
        rows, cols = self.shape
        return (
            self.origin_x,
            self.origin_y - rows * self.cell_y,
            self.origin_x + cols * self.cell_x,
            self.origin_y,
        )

    def sample(self, xy: NDArray[np.float64]) -> NDArray[np.float64]:
        """Bilinear elevation at points.

        Parameters
        ----------
        xy : (n, 2) float64, metres

        Returns
        -------
        (n,) float64, metres; NaN outside the grid or next to no-data cells.
        """
        pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        rows, cols = self.shape
        # continuous index of cell centres
        c = (pts[:, 0] - self.origin_x) / self.cell_x - 0.5
        r = (self.origin_y - pts[:, 1]) / self.cell_y - 0.5
        inside = (c >= -0.5) & (c <= cols - 0.5) & (r >= -0.5) & (r <= rows - 0.5)
        c = np.clip(c, 0, cols - 1)
        r = np.clip(r, 0, rows - 1)
        c0 = np.minimum(np.floor(c).astype(np.int64), cols - 2)
        r0 = np.minimum(np.floor(r).astype(np.int64), rows - 2)
        fc, fr = c - c0, r - r0
        # snap round-off so that a cell centre reads its own cell exactly
        fc = np.where(np.abs(fc - np.round(fc)) < 1e-9, np.round(fc), fc)
        fr = np.where(np.abs(fr - np.round(fr)) < 1e-9, np.round(fr), fr)
        h = self.heights

        def term(
            rows: NDArray[np.int64], cols: NDArray[np.int64], weight: NDArray[np.float64]
        ) -> NDArray[np.float64]:
            # a no-data neighbour with zero weight must not turn the sample into NaN
            value: NDArray[np.float64] = np.where(weight == 0, 0.0, h[rows, cols] * weight)
            return value

        out = (
            term(r0, c0, (1 - fc) * (1 - fr))
            + term(r0, c0 + 1, fc * (1 - fr))
            + term(r0 + 1, c0, (1 - fc) * fr)
            + term(r0 + 1, c0 + 1, fc * fr)
        )
        out[~inside] = np.nan
        result: NDArray[np.float64] = out
        return result

    def to_mesh(self, step: int = 1) -> MeshColumns:
        """A triangle mesh of the grid, one vertex per ``step``-th cell centre in each axis.

        Quads touching a no-data cell are left out. Returns columns holding one object.
        """
        if step < 1:
            raise ValueError(f"step(={step}) must be >= 1")
        rows, cols = self.shape
        ri = np.unique(np.r_[np.arange(0, rows, step), rows - 1])
        ci = np.unique(np.r_[np.arange(0, cols, step), cols - 1])
        z = self.heights[np.ix_(ri, ci)]
        x = self.origin_x + (ci + 0.5) * self.cell_x
        y = self.origin_y - (ri + 0.5) * self.cell_y
        gx, gy = np.meshgrid(x, y)
        vertices = np.column_stack([gx.ravel(), gy.ravel(), z.ravel()])
        nr, nc = len(ri), len(ci)
        idx = np.arange(nr * nc).reshape(nr, nc)
        a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
        c, d = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
        # rows run south: (a, c, b) is counter-clockwise seen from above
        faces = np.concatenate([np.column_stack([a, c, b]), np.column_stack([b, c, d])])
        valid = np.isfinite(vertices[faces, 2]).all(axis=1)
        faces = faces[valid]
        used, inverse = np.unique(faces, return_inverse=True)
        return MeshColumns(
            vertices[used],
            inverse.reshape(-1, 3).astype(np.int64),
            np.zeros(len(faces), dtype=np.uint8),
            np.array([0, len(used)], dtype=np.int64),
            np.array([0, len(faces)], dtype=np.int64),
        )


@dataclass(frozen=True)
class TinTerrain:
    """Terrain as a triangulated irregular network (a CityJSON ``TINRelief``).

    Attributes
    ----------
    vertices : (n, 3) float64, metres
    faces : (m, 3) int64, triangles of the surface
    """

    vertices: NDArray[np.float64]
    faces: NDArray[np.int64]

    def sample(self, xy: NDArray[np.float64]) -> NDArray[np.float64]:
        """Height of the surface at points, interpolated linearly inside its triangles.

        Parameters
        ----------
        xy : (k, 2) float64, metres

        Returns
        -------
        (k,) float64, metres; NaN outside the TIN. Where triangles overlap in plan, the
        highest surface wins.
        """
        import shapely

        pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        out = np.full(len(pts), np.nan)
        if len(pts) == 0 or len(self.faces) == 0:
            return out
        tri = self.vertices[self.faces]
        area2 = (tri[:, 1, 0] - tri[:, 0, 0]) * (tri[:, 2, 1] - tri[:, 0, 1]) - (
            tri[:, 2, 0] - tri[:, 0, 0]
        ) * (tri[:, 1, 1] - tri[:, 0, 1])
        usable = np.flatnonzero(np.abs(area2) > 1e-12)
        rings = np.concatenate([tri[usable, :, :2], tri[usable, :1, :2]], axis=1)
        tree = shapely.STRtree(shapely.polygons(rings))
        point_index, hit = tree.query(shapely.points(pts), predicate="intersects")
        if len(point_index) == 0:
            return out
        t = tri[usable[hit]]
        p = pts[point_index]
        a = area2[usable[hit]]
        # barycentric weights of vertices 1 and 2
        w1 = (
            (p[:, 0] - t[:, 0, 0]) * (t[:, 2, 1] - t[:, 0, 1])
            - (t[:, 2, 0] - t[:, 0, 0]) * (p[:, 1] - t[:, 0, 1])
        ) / a
        w2 = (
            (t[:, 1, 0] - t[:, 0, 0]) * (p[:, 1] - t[:, 0, 1])
            - (p[:, 0] - t[:, 0, 0]) * (t[:, 1, 1] - t[:, 0, 1])
        ) / a
        z = t[:, 0, 2] + w1 * (t[:, 1, 2] - t[:, 0, 2]) + w2 * (t[:, 2, 2] - t[:, 0, 2])
        np.fmax.at(out, point_index, z)
        return out
