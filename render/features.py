"""Features of a tileset: the units a viewer picks (a building with its parts, a road...).

A feature is a non-administrative object directly under a grid cell or an admin level; its
descendants' triangles (a Building's BuildingParts) are merged into it. Terrain kinds are kept
apart for the terrain tiles. Everything is columnar: one :class:`MeshColumns` with one object
per feature, built with array operations over the store's geometry chunks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from cim.codes.tables import is_site_level
from cim.geometry.columns import MeshColumns
from cim.model import ADMIN_KINDS, CimObject
from cim.store import Store
from render.placement import SiteFrame
from render.scene import gather_geometry, select_columns


@dataclass(frozen=True)
class Features:
    """The pickable units of a site and their merged triangles.

    Attributes
    ----------
    objects : the feature objects, in feature order
    geometry : one object per feature; vertices in the local frame (metres, z up)
    bounds : (k, 6) float64 local boxes ``minx, miny, minz, maxx, maxy, maxz`` holding the
        mesh and the block
    corners : (k, 4, 2) float64 local corners of each footprint's oriented rectangle,
        counter-clockwise (the coarse "block" of the feature)
    gap_m : (k,) float64, how far the block strays from the footprint (square root of the
        area between them), metres
    """

    objects: list[CimObject]
    geometry: MeshColumns
    bounds: NDArray[np.float64]
    corners: NDArray[np.float64]
    gap_m: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.objects)


def _terrain(obj: CimObject) -> bool:
    return is_site_level(obj.kind)


def split_objects(
    objects: list[CimObject],
) -> tuple[list[CimObject], list[int], list[CimObject]]:
    """Feature objects, for every object with geometry the position of its feature in that
    list (``-1`` for none), and the terrain objects with geometry."""
    by_code = {o.code: o for o in objects}
    features: list[CimObject] = []
    position: dict[str, int] = {}
    for obj in objects:
        if obj.kind in ADMIN_KINDS or _terrain(obj):
            continue
        parent = by_code.get(obj.parent) if obj.parent is not None else None
        if parent is None or parent.kind in ADMIN_KINDS:
            position[obj.code] = len(features)
            features.append(obj)
    owner: list[int] = []
    terrain: list[CimObject] = []
    for obj in objects:
        if obj.chunk is None or obj.index is None:
            owner.append(-1)
            continue
        if _terrain(obj):
            terrain.append(obj)
            owner.append(-1)
            continue
        walk: CimObject | None = obj
        found = -1
        for _ in range(32):
            if walk is None:
                break
            if walk.code in position:
                found = position[walk.code]
                break
            walk = by_code.get(walk.parent) if walk.parent is not None else None
        owner.append(found)
    return features, owner, terrain


def site_features(store: Store, site: str, frame: SiteFrame) -> tuple[Features, MeshColumns]:
    """The features of a site and its terrain meshes (local frame, one object each).

    Features without any triangles are left out: there is nothing to draw or pick.
    """
    objects = store.all_objects(site)
    feature_objects, owner, terrain = split_objects(objects)
    owner_arr = np.asarray(owner, dtype=np.int64)
    meshed = np.flatnonzero(owner_arr >= 0)
    meshed = meshed[np.argsort(owner_arr[meshed], kind="stable")]
    geometry = gather_geometry(store, site, [objects[i] for i in meshed.tolist()])
    feature_of_object = owner_arr[meshed]
    # merge consecutive objects of one feature: offsets at the first object of each feature
    present, first = np.unique(feature_of_object, return_index=True)
    edges = np.r_[first, len(meshed)].astype(np.int64)
    merged = MeshColumns(
        frame.local(geometry.vertices),
        geometry.faces,
        geometry.surfaces,
        geometry.vertex_offsets[edges],
        geometry.face_offsets[edges],
    )
    keep = np.flatnonzero(np.diff(merged.face_offsets) > 0)
    merged = select_columns(merged, keep)
    kept_objects = [feature_objects[i] for i in present[keep].tolist()]
    bounds = merged.bounds()
    corners, gap = _blocks(kept_objects, bounds, frame)
    # an oriented rectangle's corners may stick out of the mesh's box: boxes hold both
    bounds[:, :2] = np.minimum(bounds[:, :2], corners.min(axis=1))
    bounds[:, 3:5] = np.maximum(bounds[:, 3:5], corners.max(axis=1))
    return Features(kept_objects, merged, bounds, corners, gap), terrain_meshes(
        store, site, terrain, frame
    )


#: Largest DEM meshed at full resolution for the terrain tiles, in cells.
MAX_DEM_CELLS = 4_000_000


def terrain_meshes(
    store: Store, site: str, terrain: list[CimObject], frame: SiteFrame
) -> MeshColumns:
    """Terrain triangles in the local frame, one object per terrain object: DEMs meshed
    from their raster at full resolution (coarser above :data:`MAX_DEM_CELLS` cells), TINs
    as stored."""
    rasters = set(store.raster_codes(site))
    parts = []
    for obj in terrain:
        if obj.code in rasters:
            grid = store.raster(site, obj.code)
            step = max(1, math.ceil(math.sqrt(grid.heights.size / MAX_DEM_CELLS)))
            parts.append(grid.to_mesh(step))
        else:
            parts.append(gather_geometry(store, site, [obj]))
    joined = MeshColumns.concat(parts)
    return joined.transformed(frame.local(joined.vertices))


def _blocks(
    objects: list[CimObject], bounds: NDArray[np.float64], frame: SiteFrame
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Oriented footprint rectangles (k, 4, 2) in the local frame and their area gaps."""
    k = len(objects)
    lo, hi = bounds[:, :2], bounds[:, 3:5]
    corners = np.stack(
        [lo, np.column_stack([hi[:, 0], lo[:, 1]]), hi, np.column_stack([lo[:, 0], hi[:, 1]])],
        axis=1,
    )
    gap = np.zeros(k)
    shapes = np.array([o.footprint for o in objects], dtype=object)
    polygonal = np.array(
        [s is not None and s.geom_type in ("Polygon", "MultiPolygon") for s in shapes],
        dtype=bool,
    )
    if polygonal.any():
        rects = shapely.oriented_envelope(shapes[polygonal])
        is_rect = shapely.get_type_id(rects) == 3
        idx = np.flatnonzero(polygonal)[is_rect]
        rects = rects[is_rect]
        rings = shapely.get_coordinates(shapely.get_exterior_ring(rects))
        counts = shapely.get_num_coordinates(shapely.get_exterior_ring(rects))
        ok = counts == 5
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        pick = starts[ok][:, None] + np.arange(4)
        xy = rings[pick] - frame.origin[:2]
        corners[idx[ok]] = xy
        area = shapely.area(shapes[idx[ok]])
        gap[idx[ok]] = np.sqrt(np.maximum(shapely.area(rects[ok]) - area, 0.0))
    # counter-clockwise seen from above
    x, y = corners[..., 0], corners[..., 1]
    signed = (x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(axis=1)
    corners[signed < 0] = corners[signed < 0][:, ::-1]
    return corners, gap


def block_mesh(
    corners: NDArray[np.float64], bottom: NDArray[np.float64], top: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Prisms over rectangles: 8 vertices and 10 triangles (top and sides) per block.

    Parameters
    ----------
    corners : (k, 4, 2) float64, counter-clockwise
    bottom, top : (k,) float64, metres

    Returns
    -------
    vertices : (8k, 3) float64, block after block
    faces : (10k, 3) int64
    """
    k = len(corners)
    low = np.concatenate([corners, bottom[:, None, None] * np.ones((k, 4, 1))], axis=2)
    high = np.concatenate([corners, top[:, None, None] * np.ones((k, 4, 1))], axis=2)
    vertices = np.concatenate([low, high], axis=1).reshape(-1, 3)
    local = [[4, 5, 6], [4, 6, 7]]
    for i in range(4):
        j = (i + 1) % 4
        local += [[i, j, 4 + j], [i, 4 + j, 4 + i]]
    template = np.array(local, dtype=np.int64)
    faces = (template[None, :, :] + 8 * np.arange(k)[:, None, None]).reshape(-1, 3)
    return vertices, faces


def property_columns(objects: list[CimObject], limit: int = 32) -> list[tuple[str, str, str]]:
    """Attribute columns of a property table: ``(property name, attribute key, type)`` with
    type ``"FLOAT64"`` where every present value is a number, else ``"STRING"``; the most
    frequent ``limit`` keys, names made valid metadata identifiers."""
    seen: dict[str, list[Any]] = {}
    for obj in objects:
        for key, value in obj.attributes.items():
            if key == "source_id" or value is None:
                continue
            seen.setdefault(key, []).append(value)
    ordered = sorted(seen, key=lambda key: (-len(seen[key]), key))[:limit]
    taken = {"code", "kind", "name", "source_id", "height_m"}
    out = []
    for key in ordered:
        name = "".join(c if c.isalnum() or c == "_" else "_" for c in key)
        if not name or not (name[0].isalpha() or name[0] == "_") or not name.isascii():
            name = "a_" + "".join(c if c.isascii() and c.isalnum() else "_" for c in key)
        while name in taken:
            name += "_"
        taken.add(name)
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in seen[key])
        out.append((name, key, "FLOAT64" if numeric else "STRING"))
    return out
