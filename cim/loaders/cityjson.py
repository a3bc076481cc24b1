"""CityJSON 1.1 / 2.0 (``.city.json``) and CityJSONSeq (``.city.jsonl``).

Every CityObject type is kept under its CityJSON type name. Of an object's geometries the
highest LoD is taken unless a LoD is chosen; surfaces are triangulated in bulk
(:mod:`cim.geometry.triangulate`) with their semantic classes, and ``GroundSurface``
polygons become footprints. ``TINRelief`` objects become terrain.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import shapely
from numpy.typing import NDArray

from cim.errors import SourceError
from cim.geometry.columns import SURFACE_CODES, MeshColumns
from cim.geometry.footprints import union_groups
from cim.geometry.ragged import concat_ranges
from cim.geometry.triangulate import Polygons, triangulate_polygons
from cim.loaders.base import ParsedSource, SourceObject
from cim.loaders.boundaries import RING_DEPTH, BoundaryError, flatten_surfaces
from cim.loaders.jsonspans import cut_arrays, read_int_array
from cim.loaders.limits import implausible, plausible_rows

_GROUND = SURFACE_CODES["GroundSurface"]
_EPSG = re.compile(r"EPSG(?:/0/|::|:)(\d+)", re.IGNORECASE)


def crs_from_reference(reference: str | None) -> str | None:
    """``"EPSG:N"`` from a CityJSON ``referenceSystem`` (OGC URL or URN), else ``None``."""
    if not reference:
        return None
    match = _EPSG.search(reference)
    return f"EPSG:{match.group(1)}" if match else None


def _lod_key(geometry: dict[str, Any]) -> float:
    try:
        return float(geometry.get("lod", 0))
    except (TypeError, ValueError):
        return 0.0


def _lod_of(geometry: dict[str, Any]) -> str:
    return str(geometry.get("lod"))


def _choose(geometries: list[dict[str, Any]], lod: str | None) -> dict[str, Any] | None:
    if not geometries:
        return None
    if lod is not None:
        exact = [g for g in geometries if str(g.get("lod")) == lod]
        if exact:
            return exact[0]
    return max(geometries, key=_lod_key)


def _read_document(path: Path, fast: bool) -> tuple[list[dict[str, Any]], list[bytes]]:
    """The file as a list of JSON documents (one for CityJSON, many for CityJSONSeq), and
    for a CityJSON file read ``fast`` the numeric arrays cut out of it (see
    :mod:`cim.loaders.jsonspans`)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SourceError(path, f"cannot read file: {exc.strerror}") from None
    if path.name.endswith(".jsonl"):
        docs = []
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                docs.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise SourceError(path, f"line {number} is not valid JSON ({exc})") from None
        return docs, []
    if fast:
        reduced, spans, _ = cut_arrays(raw)
        try:
            return [orjson.loads(reduced)], spans
        except orjson.JSONDecodeError:
            pass  # the full parse below reports the error at its real position
    try:
        return [orjson.loads(raw)], []
    except orjson.JSONDecodeError as exc:
        raise SourceError(path, f"not valid JSON (truncated or corrupt?): {exc}") from None


def load_cityjson(path: str | Path, lod: str | None = None, *, fast: bool = True) -> ParsedSource:
    """Parse a CityJSON or CityJSONSeq file.

    Parameters
    ----------
    path : the ``.city.json`` or ``.city.jsonl`` file
    lod : the LoD to take (``"1.2"``, ``"2"``...); the highest of each object by default
    fast : read the big integer arrays straight from the bytes (the result is the same;
        ``False`` parses everything as JSON)

    Returns
    -------
    ParsedSource in the file's CRS; ``TINRelief`` objects keep their triangles.

    Raises
    ------
    SourceError
        If the file is not valid JSON, not CityJSON, or an object has a vertex index out
        of range, a ring with fewer than three distinct vertices, or non-finite coordinates.
    """
    path = Path(path)
    docs, spans = _read_document(path, fast)
    referenced = 0

    def resolve(value: Any) -> Any:
        """A cut-out array back as lists (geometry instances and templates only)."""
        if type(value) is int and spans and -len(spans) <= value < 0:
            return orjson.loads(spans[-1 - value])
        return value

    if not docs or not isinstance(docs[0], dict) or docs[0].get("type") != "CityJSON":
        raise SourceError(path, "not CityJSON: the first document must have type 'CityJSON'")
    header = docs[0]
    version = str(header.get("version", ""))
    if not version.startswith(("1.1", "2.0")):
        raise SourceError(path, f"CityJSON version {version!r} is not supported (1.1 or 2.0)")
    scale, translate = _transform(path, header.get("transform"))
    metadata = header.get("metadata") or {}
    crs = crs_from_reference(metadata.get("referenceSystem"))

    pools: list[NDArray[np.float64]] = []
    objects: list[SourceObject] = []
    chosen: list[tuple[dict[str, Any] | None, int]] = []
    base = 0
    templates = header.get("geometry-templates")
    if isinstance(templates, dict):
        for template in templates.get("templates") or []:
            if isinstance(template, dict):
                referenced += type(template.get("boundaries")) is int
                template["boundaries"] = resolve(template.get("boundaries"))
    for number, doc in enumerate(docs):
        if number > 0 and doc.get("type") != "CityJSONFeature":
            raise SourceError(path, f"line {number + 1}: expected a CityJSONFeature")
        city_objects = doc.get("CityObjects")
        vertices = doc.get("vertices")
        vertex_array = None
        if isinstance(vertices, int) and spans and -len(spans) <= vertices < 0:
            vertex_array = read_int_array(spans[-1 - vertices], 3)
            if vertex_array is None:
                return load_cityjson(path, lod, fast=False)
            referenced += 1
            vertices = []
        if not isinstance(city_objects, dict) or not isinstance(vertices, list):
            raise SourceError(path, "missing 'CityObjects' or 'vertices'")
        extra: list[list[float]] = []  # vertices of expanded geometry instances
        for oid, obj in city_objects.items():
            if not isinstance(obj, dict) or "type" not in obj:
                raise SourceError(path, "CityObject has no 'type'", object_id=oid)
            parents = obj.get("parents")
            if parents is not None and not (
                isinstance(parents, list) and all(isinstance(p, str) for p in parents)
            ):
                raise SourceError(path, "'parents' must be a list of object ids", object_id=oid)
            attributes = obj.get("attributes")
            if not isinstance(attributes, dict):
                attributes = {}
            name = attributes.get("name")
            objects.append(
                SourceObject(
                    oid,
                    str(obj["type"]),
                    name if isinstance(name, str) else oid,
                    parents[0] if parents else None,
                    attributes,
                )
            )
            geometries = obj.get("geometry")
            if spans and geometries:
                referenced += sum(type(g.get("boundaries")) is int for g in geometries)
            if (
                geometries
                and len(geometries) == 1
                and (lod is None or _lod_of(geometries[0]) == lod)
            ):
                geometry = geometries[0]
            else:
                geometry = _choose(geometries or [], lod)
            if geometry is not None and geometry.get("type") == "GeometryInstance":
                geometry["boundaries"] = resolve(geometry.get("boundaries"))
                lookup = vertex_array if vertex_array is not None else vertices
                geometry, placed = _instance(
                    path,
                    oid,
                    geometry,
                    templates,
                    lookup,
                    len(lookup) + len(extra),
                    scale,
                    translate,
                )
                extra.extend(placed)
            if geometry is not None:
                objects[-1].attributes.setdefault("lod", str(geometry.get("lod", "")))
            chosen.append((geometry, base))
        try:
            if vertex_array is not None and not vertices:
                pool = vertex_array.astype(np.float64)
                if extra:
                    pool = np.concatenate([pool, np.asarray(extra, dtype=np.float64)])
            else:
                pool = np.asarray(vertices + extra if extra else vertices, dtype=np.float64)
            pools.append(pool.reshape(-1, 3))
        except (ValueError, TypeError):
            raise SourceError(path, "'vertices' must be a list of [x, y, z] numbers") from None
        base += len(pools[-1])
    _check_parents(path, objects)
    if spans and referenced != len(spans):
        # an array was cut where no geometry expected one (an attribute named
        # "boundaries"?): read the file the plain way
        return load_cityjson(path, lod, fast=False)
    del docs, header, city_objects, vertices  # the geometry lists go once flattened
    with np.errstate(over="ignore", invalid="ignore"):  # overflows are refused in _check
        xyz = (np.concatenate(pools) if pools else np.zeros((0, 3))) * scale + translate
    del pools
    return _assemble(path, crs, objects, chosen, xyz, spans)


def _transform(path: Path, transform: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``transform.scale`` and ``transform.translate``: three finite numbers each, scales
    positive (a zero scale puts every vertex on one point)."""
    if transform is None:
        return np.ones(3), np.zeros(3)
    if not isinstance(transform, dict):
        raise SourceError(path, "'transform' must be an object with 'scale' and 'translate'")
    out = []
    for key, default in (("scale", 1.0), ("translate", 0.0)):
        value = transform.get(key, [default] * 3)
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            array = np.zeros(0)
        if array.shape != (3,) or not np.isfinite(array).all():
            raise SourceError(path, f"transform.{key} {value!r} must be three finite numbers")
        out.append(array)
    if not (out[0] > 0).all():
        raise SourceError(path, f"transform.scale {transform['scale']!r} must be three numbers > 0")
    return out[0], out[1]


def _check_parents(path: Path, objects: list[SourceObject]) -> None:
    """Refuse a parent reference to an object the file does not hold: the child would
    silently become a building of its own."""
    known = {o.source_id for o in objects}
    for obj in objects:
        if obj.parent_id is not None and obj.parent_id not in known:
            raise SourceError(
                path, f"parent {obj.parent_id!r} is not a CityObject of the file", obj.source_id
            )


def _instance(
    path: Path,
    oid: str,
    geometry: dict[str, Any],
    templates: dict[str, Any] | None,
    vertices: Any,
    first_index: int,
    scale: NDArray[np.float64],
    translate: NDArray[np.float64],
) -> tuple[dict[str, Any], list[list[float]]]:
    """Expand a GeometryInstance into a plain geometry whose vertices (returned, in the
    file's integer space) follow the document's own, from ``first_index`` on."""
    if not templates:
        raise SourceError(path, "GeometryInstance without geometry-templates", object_id=oid)
    try:
        template = templates["templates"][geometry["template"]]
        tverts = np.asarray(templates["vertices-templates"], dtype=np.float64)
        matrix = np.asarray(geometry["transformationMatrix"], dtype=np.float64).reshape(4, 4)
        anchor = np.asarray(vertices[geometry["boundaries"][0]], dtype=np.float64)
    except (KeyError, IndexError, ValueError, TypeError):
        raise SourceError(path, "malformed GeometryInstance", object_id=oid) from None
    # template vertices are real offsets from the anchor (a real point once transformed)
    with np.errstate(over="ignore", invalid="ignore"):  # overflows are refused in _check
        placed = tverts @ matrix[:3, :3].T + matrix[:3, 3] + (anchor * scale + translate)
    shifted = dict(template)
    shifted["boundaries"] = _shift(template["boundaries"], first_index)
    shifted["lod"] = template.get("lod", geometry.get("lod"))
    with np.errstate(over="ignore", invalid="ignore"):
        return shifted, ((placed - translate) / scale).tolist()


def _shift(boundaries: Any, by: int) -> Any:
    if isinstance(boundaries, list):
        return [_shift(b, by) for b in boundaries]
    return int(boundaries) + by


def _assemble(
    path: Path,
    crs: str | None,
    objects: list[SourceObject],
    chosen: list[tuple[dict[str, Any] | None, int]],
    xyz: NDArray[np.float64],
    spans: list[bytes],
) -> ParsedSource:
    picked = [
        (number, geometry, base)
        for number, (geometry, base) in enumerate(chosen)
        if geometry is not None and geometry.get("type") in RING_DEPTH
    ]
    geometries = [geometry for _, geometry, _ in picked]
    geometry_owner = np.array([number for number, _, _ in picked], dtype=np.int64)
    try:
        flat = flatten_surfaces(
            geometries, np.array([b for _, _, b in picked], dtype=np.int64), spans
        )
    except BoundaryError as exc:
        owner_id = objects[int(geometry_owner[exc.geometry])].source_id
        raise SourceError(path, str(exc), owner_id) from None
    sizes, table = _surface_tables(geometries)
    chosen.clear()  # free the parsed boundary lists of a large file early
    del picked, geometries
    table_start = np.r_[0, np.cumsum(sizes)[:-1]] if len(sizes) else sizes
    value = flat.polygon_value
    in_range = (value >= 0) & (value < sizes[flat.polygon_geometry]) if len(value) else value > 0
    surface = np.where(
        in_range, table[np.where(in_range, table_start[flat.polygon_geometry] + value, -1)], 0
    ).astype(np.uint8)
    owner = geometry_owner[flat.polygon_geometry] if len(geometry_owner) else flat.polygon_geometry
    polygons = Polygons(flat.ring_vertices, flat.ring_offsets, flat.polygon_offsets)
    n_objects = len(objects)
    _check(path, objects, xyz, polygons, owner)
    polygons, owner, surface, dropped = _drop_degenerate(xyz, polygons, owner, surface)
    for index, count in zip(*np.unique(dropped, return_counts=True), strict=True):
        objects[int(index)].attributes["degenerate_surfaces_dropped"] = int(count)

    triangles, tri_polygon = triangulate_polygons(xyz, polygons)
    tri_owner = owner[tri_polygon]
    order = np.argsort(tri_owner, kind="stable")
    triangles, tri_owner = triangles[order], tri_owner[order]
    tri_surface = surface[tri_polygon[order]]
    geometry = _columns(xyz, triangles, tri_owner, tri_surface, n_objects)
    footprints = _ground_footprints(xyz, polygons, owner, surface, n_objects)
    return ParsedSource(path, "cityjson", crs, objects, geometry, footprints)


def _surface_tables(
    geometries: list[dict[str, Any]],
) -> tuple[NDArray[np.int64], NDArray[np.uint8]]:
    """Each geometry's ``semantics.surfaces`` as class codes, concatenated (plus a final 0),
    with the number of surfaces per geometry."""
    lists = [(geometry.get("semantics") or {}).get("surfaces") or [] for geometry in geometries]
    sizes = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    codes = SURFACE_CODES
    try:
        flat = [codes.get(surface["type"], 0) for surfaces in lists for surface in surfaces]
    except (TypeError, KeyError):  # a surface that is not a dict with a type: no class
        flat = [
            codes.get(str(surface.get("type")), 0) if isinstance(surface, dict) else 0
            for surfaces in lists
            for surface in surfaces
        ]
    return sizes, np.array([*flat, 0], dtype=np.uint8)


def _check(
    path: Path,
    objects: list[SourceObject],
    xyz: NDArray[np.float64],
    polygons: Polygons,
    owner: NDArray[np.int64],
) -> None:
    """Refuse out-of-range indices, degenerate rings and non-finite coordinates."""
    rv, ro, po = polygons.ring_vertices, polygons.ring_offsets, polygons.polygon_offsets
    if len(rv) == 0:
        return
    ring_polygon = np.repeat(np.arange(len(polygons)), np.diff(po))
    vertex_ring = np.repeat(np.arange(len(ro) - 1), np.diff(ro))

    def owner_of_vertex_slot(slot: int) -> str:
        return objects[int(owner[ring_polygon[vertex_ring[slot]]])].source_id

    bad = np.flatnonzero((rv < 0) | (rv >= len(xyz)))
    if len(bad):
        slot = int(bad[0])
        raise SourceError(
            path,
            f"vertex index {int(rv[slot])} is out of range (the file has {len(xyz)} vertices)",
            owner_of_vertex_slot(slot),
        )
    # before triangulation: numbers near 1e308 overflow its cross products
    plausible = plausible_rows(xyz)
    bad = np.flatnonzero(~plausible[rv])
    if len(bad):
        slot = int(bad[0])
        raise SourceError(path, implausible("vertex", xyz[rv[slot]]), owner_of_vertex_slot(slot))
    ring_size = np.diff(ro)
    short = np.flatnonzero(ring_size < 3)
    if len(short):
        ring = int(short[0])
        raise SourceError(
            path,
            f"invalid polygon: a ring with {int(ring_size[ring])} vertex indices (at least 3)",
            objects[int(owner[ring_polygon[ring]])].source_id,
        )


def _drop_degenerate(
    xyz: NDArray[np.float64],
    polygons: Polygons,
    owner: NDArray[np.int64],
    surface: NDArray[np.uint8],
) -> tuple[Polygons, NDArray[np.int64], NDArray[np.uint8], NDArray[np.int64]]:
    """Remove rings with fewer than three distinct vertices (zero area, common in real
    data); a polygon whose outer ring goes goes with it. Returns the kept polygons, their
    owners and classes, and the number of dropped surfaces per owner index."""
    rv, ro, po = polygons.ring_vertices, polygons.ring_offsets, polygons.polygon_offsets
    n_rings = len(ro) - 1
    if n_rings == 0:
        return polygons, owner, surface, np.zeros(0, dtype=np.int64)
    # a ring has fewer than three distinct vertices iff all its entries are its min or max
    starts = ro[:-1]
    low = np.minimum.reduceat(rv, starts)
    high = np.maximum.reduceat(rv, starts)
    vertex_ring = np.repeat(np.arange(n_rings), np.diff(ro))
    extreme = (rv == low[vertex_ring]) | (rv == high[vertex_ring])
    bad_ring = np.add.reduceat(extreme.astype(np.int64), starts) == np.diff(ro)
    dropped = np.zeros(0, dtype=np.int64)
    if not bad_ring.any():
        return polygons, owner, surface, dropped
    ring_polygon = np.repeat(np.arange(len(polygons)), np.diff(po))
    outer = np.zeros(n_rings, dtype=bool)
    outer[po[:-1]] = True
    bad_polygon = np.zeros(len(polygons), dtype=bool)
    bad_polygon[ring_polygon[bad_ring & outer]] = True
    keep_ring = ~bad_ring & ~bad_polygon[ring_polygon]
    keep_slot = keep_ring[vertex_ring]
    new_rv = rv[keep_slot]
    new_ro = np.r_[0, np.cumsum(np.diff(ro)[keep_ring])]
    keep_polygon = ~bad_polygon
    rings_left = np.bincount(ring_polygon[keep_ring], minlength=len(polygons))[keep_polygon]
    new_po = np.r_[0, np.cumsum(rings_left)]
    dropped = owner[bad_polygon]
    return (
        Polygons(new_rv.astype(np.int64), new_ro.astype(np.int64), new_po.astype(np.int64)),
        owner[keep_polygon],
        surface[keep_polygon],
        dropped,
    )


def _columns(
    xyz: NDArray[np.float64],
    triangles: NDArray[np.int64],
    tri_owner: NDArray[np.int64],
    tri_surface: NDArray[np.uint8],
    n_objects: int,
) -> MeshColumns:
    """Give each object its own contiguous vertex block (vertices shared within an object)."""
    n = len(xyz) + 1
    keys = tri_owner[:, None] * n + triangles
    unique, inverse = np.unique(keys.ravel(), return_inverse=True)
    vertex_owner = unique // n
    vertices = xyz[unique % n]
    vcount = np.bincount(vertex_owner, minlength=n_objects)
    fcount = np.bincount(tri_owner, minlength=n_objects)
    return MeshColumns(
        vertices.reshape(-1, 3),
        inverse.reshape(-1, 3).astype(np.int64),
        tri_surface.astype(np.uint8),
        np.concatenate(([0], np.cumsum(vcount))).astype(np.int64),
        np.concatenate(([0], np.cumsum(fcount))).astype(np.int64),
    )


def _ground_footprints(
    xyz: NDArray[np.float64],
    polygons: Polygons,
    owner: NDArray[np.int64],
    surface: NDArray[np.uint8],
    n_objects: int,
) -> list[Any]:
    """Footprints from ``GroundSurface`` polygons; ``None`` where an object has none."""
    footprints: list[Any] = [None] * n_objects
    ground = np.flatnonzero(surface == _GROUND)
    if len(ground) == 0:
        return footprints
    rv, ro, po = polygons.ring_vertices, polygons.ring_offsets, polygons.polygon_offsets
    ring_ids = concat_ranges(po[ground], po[ground + 1])
    slots = concat_ranges(ro[ring_ids], ro[ring_ids + 1])
    ring_index = np.repeat(np.arange(len(ring_ids)), ro[ring_ids + 1] - ro[ring_ids])
    rings = shapely.linearrings(xyz[rv[slots], :2], indices=ring_index)
    polygon_index = np.repeat(np.arange(len(ground)), po[ground + 1] - po[ground])
    polys = shapely.polygons(rings, indices=polygon_index)  # first ring shell, others holes
    invalid = ~shapely.is_valid(polys)
    if invalid.any():
        polys[invalid] = shapely.make_valid(polys[invalid])
    outlines = union_groups(polys, owner[ground])
    for obj, outline in outlines.items():
        footprints[obj] = outline
    return footprints
