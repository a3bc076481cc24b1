"""GeoJSON FeatureCollections: footprints extruded to LoD1 solids, points as components.

Polygon and MultiPolygon features become prisms from ``base_z`` up to their height
(ground, walls and roof with their semantic classes); Point features become street
components (manholes, lamps) without a mesh. Other geometry types are skipped.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import shapely
from numpy.typing import NDArray

from cim.errors import SourceError
from cim.geometry.columns import SURFACE_CODES, MeshColumns
from cim.geometry.triangulate import Polygons, triangulate_polygons
from cim.loaders.base import ParsedSource, SourceObject
from cim.loaders.cityjson import crs_from_reference
from cim.loaders.limits import MAX_COORDINATE, MAX_HEIGHT_M

_IMPLAUSIBLE = f"non-finite coordinates, or coordinates beyond ±{MAX_COORDINATE:g}"

_HEIGHT_KEYS = ("height", "measuredHeight", "building:height")
_STOREY_KEYS = ("storeys", "building:levels")
_CRS84 = ("CRS84", "CRS:84")
_GEOMETRY_TYPES = (
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
)


@dataclass
class _Rings:
    """Footprint rings of all polygon features, flattened (2D, not closed)."""

    points: list[NDArray[np.float64]] = field(default_factory=list)
    ring_sizes: list[int] = field(default_factory=list)
    rings_per_polygon: list[int] = field(default_factory=list)
    polygons_per_object: list[int] = field(default_factory=list)


def load_geojson(
    path: str | Path,
    *,
    crs: str | None = None,
    height_attribute: str | None = None,
    storey_height_m: float = 3.0,
    default_height_m: float | None = None,
    base_z: float = 0.0,
) -> ParsedSource:
    """Parse a GeoJSON FeatureCollection of footprints and point components.

    Parameters
    ----------
    path : the ``.geojson`` / ``.json`` file
    crs : the CRS of the coordinates; overrides what the file says
    height_attribute : the property holding a footprint's height in metres, tried first
    storey_height_m : metres per storey, for heights given as ``storeys`` or
        ``building:levels``
    default_height_m : the height of footprints that give none
    base_z : float, metres
        Elevation of the extruded solids' ground, and of points given without z.

    Returns
    -------
    ParsedSource
        One object per Polygon / MultiPolygon feature (kind ``Building`` or the feature's
        ``kind`` property; a closed LoD1 prism; footprint the shapely polygon) or Point
        feature (kind ``Component``; no mesh; footprint a shapely Point; ``points`` row
        its ``x, y, z``), in file order. Properties are kept as attributes; prisms add
        ``lod`` ``"1"`` and ``extrusion_height_m``. ``source_id`` is the feature ``id``,
        else ``properties.id``, else ``feature-<index>``.

        The CRS is ``crs`` if given, else the legacy ``crs`` member
        (``urn:ogc:def:crs:EPSG::32756`` gives ``"EPSG:32756"``). A file with no ``crs``
        member is RFC 7946 GeoJSON, WGS84 longitude/latitude: ``"EPSG:4326"`` is returned
        only if every coordinate lies within longitude/latitude ranges, else ``None``.

    Raises
    ------
    ValueError
        If ``storey_height_m`` or ``default_height_m`` is not a positive number.
    SourceError
        If the file is missing or not valid JSON, not a FeatureCollection, or a feature
        has malformed or non-finite coordinates, a ring with fewer than three distinct
        points, an unusable height, or no height when ``default_height_m`` is not given.
    """
    path = Path(path)
    if not (math.isfinite(storey_height_m) and storey_height_m > 0):
        raise ValueError(f"storey_height_m(={storey_height_m}) must be > 0")
    if default_height_m is not None and not (
        math.isfinite(default_height_m) and default_height_m > 0
    ):
        raise ValueError(f"default_height_m(={default_height_m}) must be > 0")
    document = _read(path)
    features = document["features"]

    objects: list[SourceObject] = []
    heights: list[float] = []
    points: list[tuple[float, float, float] | None] = []
    rings = _Rings()
    for index, feature in enumerate(features):
        if not isinstance(feature, dict):
            raise SourceError(path, f"feature {index} is not a JSON object")
        properties = feature.get("properties") or {}
        if not isinstance(properties, dict):
            properties = {}
        fid = _feature_id(feature, properties, index)
        geometry = feature.get("geometry")
        gtype = geometry.get("type") if isinstance(geometry, dict) else None
        if gtype not in _GEOMETRY_TYPES:
            shown = "no geometry" if geometry is None else f"geometry type {gtype!r}"
            raise SourceError(
                path,
                f"feature {index} has {shown} (one of {', '.join(_GEOMETRY_TYPES)})",
                object_id=fid,
            )
        coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
        kind = properties.get("kind")
        if gtype in ("Polygon", "MultiPolygon"):
            _add_polygons(path, fid, [coordinates] if gtype == "Polygon" else coordinates, rings)
            height = _height(
                path, fid, properties, height_attribute, storey_height_m, default_height_m
            )
            heights.append(height)
            points.append(None)
            objects.append(_object(fid, kind if isinstance(kind, str) else "Building", properties))
            objects[-1].attributes.setdefault("lod", "1")
            objects[-1].attributes.setdefault("extrusion_height_m", height)
        elif gtype == "Point":
            points.append(_point(path, fid, coordinates, base_z))
            objects.append(_object(fid, kind if isinstance(kind, str) else "Component", properties))

    is_point = np.array([p is not None for p in points], dtype=bool)
    xyz = np.full((len(objects), 3), np.nan)
    if is_point.any():
        xyz[is_point] = np.array([p for p in points if p is not None], dtype=np.float64)
    solids, footprints = _extrude(rings, np.asarray(heights, dtype=np.float64), base_z)
    _check_footprints(
        path, footprints, [o for o, p in zip(objects, points, strict=True) if p is None]
    )
    geometry = _interleave(solids, ~is_point)
    shapes = np.empty(len(objects), dtype=object)
    shapes[~is_point] = footprints
    if is_point.any():
        shapes[is_point] = shapely.points(xyz[is_point])
    file_crs = crs if crs is not None else _crs(document, rings, xyz[is_point])
    return ParsedSource(
        path, "geojson", file_crs, objects, geometry, list(shapes), xyz if is_point.any() else None
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SourceError(path, f"cannot read file: {exc.strerror}") from None
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:  # the standard library also reads the NaN / Infinity some writers emit
            document = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SourceError(path, f"not valid JSON (truncated or corrupt?): {exc}") from None
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise SourceError(path, "not a GeoJSON FeatureCollection")
    if not isinstance(document.get("features"), list):
        raise SourceError(path, "the FeatureCollection has no 'features' list")
    return document


def _feature_id(feature: dict[str, Any], properties: dict[str, Any], index: int) -> str:
    for value in (feature.get("id"), properties.get("id")):
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return f"feature-{index}"


def _object(fid: str, kind: str, properties: dict[str, Any]) -> SourceObject:
    name = properties.get("name")
    return SourceObject(fid, kind, name if isinstance(name, str) else fid, None, dict(properties))


def _number(value: Any) -> float | None:
    """A JSON number or numeric string as float; ``None`` if it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().removesuffix("m").strip())
        except ValueError:
            return None
    return None


def _height(
    path: Path,
    fid: str,
    properties: dict[str, Any],
    height_attribute: str | None,
    storey_height_m: float,
    default_height_m: float | None,
) -> float:
    """The extrusion height of one feature, metres."""
    keys = ((height_attribute,) if height_attribute else ()) + _HEIGHT_KEYS
    candidates = [(key, 1.0) for key in keys] + [(key, storey_height_m) for key in _STOREY_KEYS]
    for key, factor in candidates:
        value = properties.get(key)
        if value is None:
            continue
        number = _number(value)
        if number is None or not math.isfinite(number) or number <= 0:
            raise SourceError(path, f"{key}={value!r} is not a positive number", object_id=fid)
        if number * factor > MAX_HEIGHT_M:
            raise SourceError(
                path, f"{key}={value!r} makes it higher than {MAX_HEIGHT_M:g} m", object_id=fid
            )
        return number * factor
    if default_height_m is None:
        raise SourceError(
            path,
            "no height (none of "
            + ", ".join(key for key, _ in candidates)
            + "), pass default_height_m",
            object_id=fid,
        )
    return default_height_m


def _point(path: Path, fid: str, coordinates: Any, base_z: float) -> tuple[float, float, float]:
    try:
        xyz = np.asarray(coordinates, dtype=np.float64)
    except (TypeError, ValueError):
        raise SourceError(path, "malformed Point coordinates", object_id=fid) from None
    if xyz.shape not in ((2,), (3,)):
        raise SourceError(path, "a Point needs [x, y] or [x, y, z]", object_id=fid)
    if not _plausible(xyz):
        raise SourceError(path, _IMPLAUSIBLE, object_id=fid)
    z = float(xyz[2]) if len(xyz) == 3 else base_z
    return float(xyz[0]), float(xyz[1]), z


def _add_polygons(path: Path, fid: str, polygons: Any, rings: _Rings) -> None:
    """Append one feature's polygons; rings lose their closing point and repeated points."""
    if not isinstance(polygons, list) or not polygons:
        raise SourceError(path, "malformed polygon coordinates", object_id=fid)
    for polygon in polygons:
        if not isinstance(polygon, list) or not polygon:
            raise SourceError(path, "malformed polygon coordinates", object_id=fid)
        for ring in polygon:
            try:
                xy = np.asarray(ring, dtype=np.float64)
            except (TypeError, ValueError):
                raise SourceError(path, "malformed ring coordinates", object_id=fid) from None
            if xy.ndim != 2 or xy.shape[1] not in (2, 3):
                raise SourceError(path, "a ring needs [x, y] positions", object_id=fid)
            xy = xy[:, :2]
            if not _plausible(xy):
                raise SourceError(path, _IMPLAUSIBLE, object_id=fid)
            # drop repeats of the previous point, the closing point included
            keep = np.r_[True, (xy[1:] != xy[:-1]).any(axis=1)]
            xy = xy[keep]
            if len(xy) > 1 and (xy[0] == xy[-1]).all():
                xy = xy[:-1]
            if len(np.unique(xy, axis=0)) < 3:
                raise SourceError(
                    path, "invalid polygon: a ring with fewer than 3 distinct points", fid
                )
            rings.points.append(xy)
            rings.ring_sizes.append(len(xy))
        rings.rings_per_polygon.append(len(polygon))
    rings.polygons_per_object.append(len(polygons))


def _plausible(values: NDArray[np.float64]) -> bool:
    with np.errstate(invalid="ignore"):
        return bool((np.abs(values) <= MAX_COORDINATE).all())


def _check_footprints(
    path: Path, footprints: NDArray[np.object_], owners: list[SourceObject]
) -> None:
    """Refuse a self-intersecting or otherwise invalid footprint: its prism would have
    walls through its roof and an area that means nothing."""
    if len(footprints) == 0:
        return
    valid = shapely.is_valid(footprints)
    if valid.all():
        return
    first = int(np.flatnonzero(~valid)[0])
    reason = shapely.is_valid_reason(footprints[first])
    raise SourceError(path, f"invalid footprint: {reason}", owners[first].source_id)


def _extrude(
    rings: _Rings, heights: NDArray[np.float64], base_z: float
) -> tuple[MeshColumns, NDArray[np.object_]]:
    """Closed prisms and footprints of all polygon features, one object per feature.

    Object ``o`` holds its ring points at ``base_z`` followed by the same points at
    ``base_z + heights[o]``. Outer rings are made counter-clockwise and holes clockwise
    seen from above, so ground faces point down, roofs up and walls outwards.
    """
    n_objects = len(rings.polygons_per_object)
    if n_objects == 0:
        return MeshColumns.empty(), np.empty(0, dtype=object)
    xy = np.concatenate(rings.points)
    ring_size = np.asarray(rings.ring_sizes, dtype=np.int64)
    ring_offsets = np.r_[0, np.cumsum(ring_size)].astype(np.int64)
    rings_per_polygon = np.asarray(rings.rings_per_polygon, dtype=np.int64)
    polygon_offsets = np.r_[0, np.cumsum(rings_per_polygon)].astype(np.int64)
    polygon_object = np.repeat(
        np.arange(n_objects), np.asarray(rings.polygons_per_object, dtype=np.int64)
    )
    ring_polygon = np.repeat(np.arange(len(rings_per_polygon)), rings_per_polygon)
    ring_object = polygon_object[ring_polygon]
    slot_ring = np.repeat(np.arange(len(ring_size)), ring_size)
    slot_object = ring_object[slot_ring]
    slots = np.arange(len(xy))
    ring_start, ring_end = ring_offsets[:-1][slot_ring], ring_offsets[1:][slot_ring]
    following = np.where(slots + 1 == ring_end, ring_start, slots + 1)

    # orient outer rings counter-clockwise (positive shoelace area), holes clockwise;
    # coordinates relative to the ring's first point keep the products small
    local = xy - xy[ring_start]
    cross = local[:, 0] * local[following, 1] - local[following, 0] * local[:, 1]
    area = np.bincount(slot_ring, weights=cross, minlength=len(ring_size))
    outer = np.zeros(len(ring_size), dtype=bool)
    outer[polygon_offsets[:-1]] = True
    flip = (area > 0) != outer
    reverse = ring_start + ring_end - 1 - slots
    xy = xy[np.where(flip[slot_ring], reverse, slots)]

    object_points = np.bincount(slot_object, minlength=n_objects)
    object_start = np.r_[0, np.cumsum(object_points)[:-1]]
    bottom = slots + object_start[slot_object]
    top = bottom + object_points[slot_object]
    vertices = np.empty((2 * len(xy), 3))
    vertices[bottom, :2] = xy
    vertices[bottom, 2] = base_z
    vertices[top, :2] = xy
    vertices[top, 2] = base_z + heights[slot_object]

    roof, roof_polygon = triangulate_polygons(
        vertices, Polygons(top, ring_offsets, polygon_offsets)
    )
    ground, ground_polygon = triangulate_polygons(
        vertices, Polygons(bottom[reverse], ring_offsets, polygon_offsets)
    )
    # wall quad of the edge slot -> following: (b0, b1, t1, t0), outward for the orientation
    walls = np.concatenate(
        [
            np.column_stack([bottom, bottom[following], top[following]]),
            np.column_stack([bottom, top[following], top]),
        ]
    )
    faces = np.concatenate([ground, walls, roof])
    owner = np.concatenate(
        [
            polygon_object[ground_polygon],
            np.tile(slot_object, 2),
            polygon_object[roof_polygon],
        ]
    )
    surfaces = np.concatenate(
        [
            np.full(len(ground), SURFACE_CODES["GroundSurface"]),
            np.full(len(walls), SURFACE_CODES["WallSurface"]),
            np.full(len(roof), SURFACE_CODES["RoofSurface"]),
        ]
    ).astype(np.uint8)
    order = np.argsort(owner, kind="stable")
    geometry = MeshColumns(
        vertices,
        faces[order].astype(np.int64),
        surfaces[order],
        np.r_[0, np.cumsum(2 * object_points)].astype(np.int64),
        np.r_[0, np.cumsum(np.bincount(owner, minlength=n_objects))].astype(np.int64),
    )
    return geometry, _footprints(xy, slot_ring, ring_polygon, polygon_object, rings)


def _footprints(
    xy: NDArray[np.float64],
    slot_ring: NDArray[np.int64],
    ring_polygon: NDArray[np.int64],
    polygon_object: NDArray[np.int64],
    rings: _Rings,
) -> NDArray[np.object_]:
    """Shapely Polygons (one polygon) or MultiPolygons, one per object."""
    closed_ring = shapely.linearrings(xy, indices=slot_ring)
    polygons = shapely.polygons(closed_ring, indices=ring_polygon)
    multi = shapely.multipolygons(polygons, indices=polygon_object)
    single = np.asarray(rings.polygons_per_object) == 1
    first = np.r_[0, np.cumsum(rings.polygons_per_object)[:-1]]
    out: NDArray[np.object_] = np.asarray(multi, dtype=object)
    out[single] = polygons[first[single]]
    return out


def _interleave(solids: MeshColumns, is_solid: NDArray[np.bool_]) -> MeshColumns:
    """Columns for all objects: the solids' blocks where ``is_solid``, empty blocks elsewhere."""
    n = len(is_solid)
    vcount = np.zeros(n, dtype=np.int64)
    fcount = np.zeros(n, dtype=np.int64)
    vcount[is_solid] = np.diff(solids.vertex_offsets)
    fcount[is_solid] = np.diff(solids.face_offsets)
    return MeshColumns(
        solids.vertices,
        solids.faces,
        solids.surfaces,
        np.r_[0, np.cumsum(vcount)].astype(np.int64),
        np.r_[0, np.cumsum(fcount)].astype(np.int64),
    )


def _crs(document: dict[str, Any], rings: _Rings, points: NDArray[np.float64]) -> str | None:
    """The legacy ``crs`` member as ``EPSG:N``, or WGS84 for RFC 7946 lon/lat files."""
    member = document.get("crs")
    if member is not None:
        name = (member.get("properties") or {}).get("name") if isinstance(member, dict) else None
        if not isinstance(name, str):
            return None
        if name.upper().endswith(_CRS84):
            return "EPSG:4326"
        return crs_from_reference(name)
    xy = np.concatenate([*rings.points, points[:, :2], np.zeros((0, 2))])
    if len(xy) and (np.abs(xy[:, 0]) <= 180).all() and (np.abs(xy[:, 1]) <= 90).all():
        return "EPSG:4326"
    return None
