"""Vectorised spatial queries over one site's objects.

A :class:`SiteIndex` holds the objects' boxes, footprints and codes as arrays and a shapely
STRtree over the footprints; every query is one array operation or one tree query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from cim.model import ADMIN_KINDS, CimObject


@dataclass(frozen=True)
class SiteIndex:
    """Spatial index of a site's objects.

    Attributes
    ----------
    objects : the indexed objects, in index order
    codes : (k,) str array of their codes
    boxes : (k, 6) float64, metres; NaN rows for objects without extent
    footprints : (k,) object array of shapely geometries (``None`` where absent)
    tree : STRtree over the objects that have a footprint
    tree_index : (t,) int64, the object index of each tree entry
    """

    objects: list[CimObject]
    codes: NDArray[np.str_]
    boxes: NDArray[np.float64]
    footprints: NDArray[np.object_]
    tree: shapely.STRtree
    tree_index: NDArray[np.int64]

    @classmethod
    def build(cls, objects: Iterable[CimObject]) -> SiteIndex:
        """Index ``objects``."""
        items = list(objects)
        boxes = np.array(
            [o.bbox if o.bbox is not None else (np.nan,) * 6 for o in items], dtype=np.float64
        ).reshape(-1, 6)
        footprints = np.empty(len(items), dtype=object)
        footprints[:] = [o.footprint for o in items]
        with_shape = np.flatnonzero([f is not None for f in footprints])
        return cls(
            items,
            np.array([o.code for o in items], dtype=np.str_),
            boxes,
            footprints,
            shapely.STRtree(footprints[with_shape]),
            with_shape.astype(np.int64),
        )

    def _pick(
        self, index: NDArray[np.int64], kinds: set[str] | None, include_admin: bool
    ) -> list[CimObject]:
        out = [self.objects[i] for i in np.unique(index).tolist()]
        if kinds is not None:
            return [o for o in out if o.kind in kinds]
        if not include_admin:
            return [o for o in out if o.kind not in ADMIN_KINDS]
        return out

    def in_bbox(
        self,
        minx: float,
        miny: float,
        maxx: float,
        maxy: float,
        *,
        kinds: set[str] | None = None,
        include_admin: bool = False,
    ) -> list[CimObject]:
        """Objects whose box overlaps the rectangle (metres, site CRS).

        Raises
        ------
        ValueError
            If the rectangle is empty or inverted.
        """
        if not (minx <= maxx and miny <= maxy):
            raise ValueError(f"bbox(={minx}, {miny}, {maxx}, {maxy}) must have min <= max")
        b = self.boxes
        hit = (b[:, 0] <= maxx) & (b[:, 3] >= minx) & (b[:, 1] <= maxy) & (b[:, 4] >= miny)
        return self._pick(np.flatnonzero(hit), kinds, include_admin)

    def at_point(
        self, x: float, y: float, *, kinds: set[str] | None = None, include_admin: bool = False
    ) -> list[CimObject]:
        """Objects whose footprint contains the point ``(x, y)``."""
        hits = self.tree.query(shapely.Point(x, y), predicate="intersects")
        return self._pick(self.tree_index[hits], kinds, include_admin)

    def within(
        self,
        polygon: shapely.Geometry,
        *,
        kinds: set[str] | None = None,
        include_admin: bool = False,
    ) -> list[CimObject]:
        """Objects whose footprint lies inside ``polygon``."""
        hits = self.tree.query(polygon, predicate="contains")
        return self._pick(self.tree_index[hits], kinds, include_admin)

    def nearest(
        self,
        x: float,
        y: float,
        count: int = 1,
        *,
        kinds: set[str] | None = None,
        include_admin: bool = False,
    ) -> list[tuple[CimObject, float]]:
        """The ``count`` objects whose footprints are nearest to ``(x, y)``, with distances
        in metres (0 inside a footprint), nearest first.

        Raises
        ------
        ValueError
            If ``count`` is not positive.
        """
        if count < 1:
            raise ValueError(f"count(={count}) must be >= 1")
        candidates = self.tree_index
        keep = np.array(
            [
                (kinds is None or self.objects[i].kind in kinds)
                and (include_admin or kinds is not None or self.objects[i].kind not in ADMIN_KINDS)
                for i in candidates.tolist()
            ],
            dtype=bool,
        )
        candidates = candidates[keep]
        if len(candidates) == 0:
            return []
        distance = shapely.distance(self.footprints[candidates], shapely.Point(x, y))
        k = min(count, len(candidates))
        best = np.argpartition(distance, k - 1)[:k]
        best = best[np.lexsort((self.codes[candidates[best]], distance[best]))]
        return [(self.objects[int(candidates[i])], float(distance[i])) for i in best]

    def with_prefix(self, prefix: str) -> list[CimObject]:
        """Objects whose code starts with ``prefix`` (a grid cell, a community...)."""
        hit = np.char.startswith(self.codes, prefix)
        return [self.objects[i] for i in np.flatnonzero(hit).tolist()]
