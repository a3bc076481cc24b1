"""Importing source files into a site: parse, re-project, place in the grid, code, store.

Parsing and every check happen before the store's transaction starts, and the write is one
transaction: a bad file leaves the store exactly as it was.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from cim.codes.assign import SequenceAllocator
from cim.codes.grid import GridSpec, community_code, component_code
from cim.codes.tables import component_class, is_site_level, unit_class
from cim.errors import CRSError, SourceError
from cim.frames import (
    crs_label,
    is_projected,
    lon_lat_of,
    parse_crs,
    site_crs_for,
    transform_points,
)
from cim.geometry.footprints import footprints_from_mesh, union_groups
from cim.loaders import LoadOptions, ParsedSource, load_source
from cim.loaders.limits import MAX_SITE_EXTENT_M, check_extent
from cim.model import COMMUNITY, DISTRICT, GRID_CELL, STREET, CimObject, SiteInfo
from cim.store import ImportPlan, Store
from cim.terrain import TerrainGrid, TinTerrain

#: The county range 99xxxx is not used by GB/T 2260; sample sites live there.
DEFAULT_DIVISION = "990100001001"

Progress = Callable[[str, float], None]
Box = tuple[float, float, float, float, float, float]


@dataclass(frozen=True)
class ImportReport:
    """What one import did."""

    site: str
    source: str
    objects: int
    kinds: dict[str, int]
    seconds: float
    site_version: int
    crs: str
    warnings: tuple[str, ...] = ()


def _quiet(step: str, fraction: float) -> None:
    """The default progress sink."""


def import_source(
    store: Store,
    path: str | Path,
    *,
    site: str,
    options: LoadOptions | None = None,
    division: str | None = None,
    cell_m: float = 100.0,
    progress: Progress = _quiet,
    max_extent_m: float = MAX_SITE_EXTENT_M,
) -> ImportReport:
    """Import one file into ``site`` (created on first import).

    Parameters
    ----------
    store : where to write
    path : the source file
    site : site name
    options : CRS, LoD and format options
    division : 12-digit county + street + community code of a new site
    cell_m : grid cell edge of a new site, metres
    progress : called with a step name and the fraction done
    max_extent_m : the widest the site may become with this file, metres; checked before
        the site grid is laid out

    Raises
    ------
    SourceError, CRSError
        If the file is malformed, has no CRS, or would make the site wider than
        ``max_extent_m``; nothing is written.
    StoreError
        If writing fails; nothing is written.
    """
    started = time.perf_counter()
    path = Path(path)
    opts = options or LoadOptions()
    GridSpec(division or DEFAULT_DIVISION, 0.0, 0.0, cell_m=cell_m)  # bad arguments: ValueError
    progress("parse", 0.0)
    parsed = load_source(path, opts)
    progress("parse", 0.5)
    existing = store.find_site(site)
    source_crs, site_crs = _frames(parsed, opts, existing)
    _reproject(parsed, source_crs, site_crs)
    if parsed.format in ("geojson", "osm") and existing is not None:
        _drape(store, existing.name, parsed)
    progress("place", 0.6)
    boxes, shapes = _boxes_and_footprints(parsed)
    site_box, site_cell = (existing.bbox, existing.cell_m) if existing else (None, cell_m)
    check_extent(parsed, boxes, site_box, max_extent_m, site_cell)
    if existing is None:
        division = _division_of_new_site(store, site, division)
        grid, info = _new_site(site, site_crs, boxes, division, cell_m)
    else:
        info = existing
        grid = GridSpec(info.division, *info.origin, cell_m=info.cell_m)
    plan = _plan(store, info, grid, parsed, boxes, shapes, path)
    progress("write", 0.8)
    updated = store.apply_import(plan)
    progress("done", 1.0)
    kinds: dict[str, int] = {}
    for obj in parsed.objects:
        kinds[obj.kind] = kinds.get(obj.kind, 0) + 1
    return ImportReport(
        site=site,
        source=plan.source_key,
        objects=len(parsed.objects),
        kinds=kinds,
        seconds=time.perf_counter() - started,
        site_version=updated.version,
        crs=updated.crs,
        warnings=tuple(parsed.warnings),
    )


def _frames(parsed: ParsedSource, opts: LoadOptions, existing: SiteInfo | None) -> tuple[Any, Any]:
    text = opts.crs or parsed.crs
    if text is None and opts.at is not None and existing is not None:
        text = existing.crs  # placed with --at: X, Y are in the site's CRS
    if text is None:
        raise CRSError(
            parsed.path,
            "the file declares no coordinate reference system; pass one with --crs "
            "(e.g. --crs EPSG:28992)",
        )
    try:
        source_crs = parse_crs(text)
    except ValueError as exc:
        raise CRSError(parsed.path, str(exc)) from None
    if existing is not None:
        return source_crs, parse_crs(existing.crs)
    if is_projected(source_crs):
        return source_crs, source_crs
    xy = _any_point(parsed)
    lon_lat = xy if source_crs.is_geographic else lon_lat_of(xy, source_crs)
    try:
        return source_crs, site_crs_for(source_crs, lon_lat)
    except ValueError as exc:
        raise CRSError(parsed.path, str(exc)) from None


def _any_point(parsed: ParsedSource) -> tuple[float, float]:
    if len(parsed.geometry.vertices):
        mid = np.nanmedian(parsed.geometry.vertices[:, :2], axis=0)
        return float(mid[0]), float(mid[1])
    if parsed.points is not None and np.isfinite(parsed.points).any():
        mid = np.nanmedian(parsed.points[:, :2], axis=0)
        return float(mid[0]), float(mid[1])
    for grid in parsed.rasters.values():
        x0, y0, x1, y1 = grid.bounds()
        return (x0 + x1) / 2, (y0 + y1) / 2
    raise SourceError(parsed.path, "the file holds no coordinates")


def _reproject(parsed: ParsedSource, source: Any, target: Any) -> None:
    if source == target:
        return
    if parsed.rasters:
        raise CRSError(
            parsed.path,
            f"raster CRS {crs_label(source)} differs from the site's {crs_label(target)}; "
            "re-project the raster first (e.g. gdalwarp)",
        )
    parsed.geometry = parsed.geometry.transformed(
        transform_points(parsed.geometry.vertices, source, target)
    )
    if parsed.points is not None:
        parsed.points = transform_points(parsed.points, source, target)
    if parsed.footprints is not None:

        def move(coords: NDArray[np.float64]) -> NDArray[np.float64]:
            xyz = np.column_stack([coords, np.zeros(len(coords))])
            return transform_points(xyz, source, target)[:, :2]

        parsed.footprints = [
            None if f is None else shapely.transform(f, move) for f in parsed.footprints
        ]


def _terrains(store: Store, site: str) -> list[TerrainGrid | TinTerrain]:
    """The site's terrain surfaces: DEM grids and TINRelief networks."""
    out: list[TerrainGrid | TinTerrain] = [store.raster(site, c) for c in store.raster_codes(site)]
    for tin in store.by_kind(site, "TINRelief"):
        if tin.chunk is not None and tin.index is not None:
            vertices, faces = store.mesh_columns(site, tin.chunk).object_arrays(tin.index)
            out.append(TinTerrain(vertices, faces))
    return out


def _drape(store: Store, site: str, parsed: ParsedSource) -> None:
    """Stand extruded footprints on the site's terrain: each solid is lifted by the lowest
    terrain height under its vertices (from the site's DEMs, bilinear, or TINs, linear in
    each triangle), and the height used is kept as the ``ground_m`` attribute."""
    columns = parsed.geometry
    terrains = _terrains(store, site) if len(columns.vertices) else []
    if not terrains:
        return
    ground = np.full(len(columns.vertices), np.nan)
    for terrain in terrains:
        sampled = terrain.sample(columns.vertices[:, :2])
        ground = np.where(np.isnan(ground), sampled, ground)
    counts = np.diff(columns.vertex_offsets)
    has = counts > 0
    lift = np.full(len(counts), np.nan)
    if has.any():
        starts = columns.vertex_offsets[:-1][has]
        with np.errstate(invalid="ignore"):
            filled = np.where(np.isnan(ground), np.inf, ground)
            lowest = np.minimum.reduceat(filled, starts)
        lift[has] = np.where(np.isfinite(lowest), lowest, np.nan)
    per_vertex = np.repeat(np.nan_to_num(lift), counts)
    xyz = columns.vertices.copy()
    xyz[:, 2] += per_vertex
    parsed.geometry = columns.transformed(xyz)
    for obj, value in zip(parsed.objects, lift.tolist(), strict=True):
        if value == value:  # not NaN: the object stands on terrain
            obj.attributes["ground_m"] = round(value, 3)


def _boxes_and_footprints(parsed: ParsedSource) -> tuple[NDArray[np.float64], list[Any]]:
    """Per-object boxes ``(k, 6)`` (NaN where unknown) and footprints, with geometry-less
    parents (a Building made of BuildingParts) taking the union of their children."""
    objects = parsed.objects
    boxes = parsed.geometry.bounds()
    if parsed.points is not None:
        has_point = np.isfinite(parsed.points).all(axis=1)
        boxes[has_point] = np.column_stack([parsed.points[has_point]] * 2)
    shapes = list(parsed.footprints) if parsed.footprints is not None else [None] * len(objects)
    if parsed.points is not None:
        for i in np.flatnonzero(np.isfinite(parsed.points).all(axis=1)).tolist():
            if shapes[i] is None:
                shapes[i] = shapely.Point(parsed.points[i, :2])
    counts = np.diff(parsed.geometry.face_offsets)
    missing = np.array(
        [i for i, s in enumerate(shapes) if s is None and counts[i] > 0], dtype=np.int64
    )
    for i, shape in zip(
        missing.tolist(), footprints_from_mesh(parsed.geometry, missing), strict=True
    ):
        shapes[i] = shape
    # parents without geometry take their children's extent and outline, deepest first
    position = {o.source_id: i for i, o in enumerate(objects)}
    parent_of = np.array(
        [position.get(o.parent_id, -1) if o.parent_id is not None else -1 for o in objects],
        dtype=np.int64,
    )
    depth = np.asarray(_depths(objects, position), dtype=np.int64)
    for level in sorted(set(depth[parent_of >= 0].tolist()), reverse=True):
        kids = np.flatnonzero((parent_of >= 0) & (depth == level))
        kids = kids[np.argsort(parent_of[kids], kind="stable")]
        owners = parent_of[kids]
        heads = np.r_[0, np.flatnonzero(np.diff(owners)) + 1]
        parents = owners[heads]
        empty = np.isnan(boxes[parents]).all(axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN children stay NaN
            low = np.fmin.reduceat(boxes[kids, :3], heads)
            high = np.fmax.reduceat(boxes[kids, 3:], heads)
        boxes[parents[empty], :3] = low[empty]
        boxes[parents[empty], 3:] = high[empty]
        need = np.array([shapes[p] is None for p in parents.tolist()], dtype=bool)
        has = np.array([shapes[k] is not None for k in kids.tolist()], dtype=bool)
        take = need[np.searchsorted(heads, np.arange(len(kids)), side="right") - 1] & has
        if take.any():
            groups = owners[take]
            outlines = union_groups(
                np.array([shapes[k] for k in kids[take].tolist()], dtype=object), groups
            )
            for parent, outline in outlines.items():
                shapes[parent] = outline
    return boxes, shapes


def _division_of_new_site(store: Store, site: str, division: str | None) -> str:
    """The division of a new site: ``division`` when no site of the store holds its first
    community, else refused; without one, the sample county's first street no site uses.
    Codes are unique in the store: every code at and below a community, hence every unit a
    pilot may be scoped to, belongs to one site only.

    Raises
    ------
    SourceError
        If ``division``'s community is another site's, or no street of the county is free.
    """
    taken = store.community_codes()
    for other in store.sites():  # a site's own first community, even before it has cells
        taken.setdefault(other.division, other.name)
    if division is not None:
        if division in taken:
            raise SourceError(
                site,
                f"division {division} is already site {taken[division]}'s: codes are unique "
                "in the store; give the new site a division of its own",
            )
        return division
    county = DEFAULT_DIVISION[:6]
    streets = {code[:9] for code in taken}
    for street in range(int(DEFAULT_DIVISION[6:9]), 1000):
        candidate = f"{county}{street:03d}{DEFAULT_DIVISION[9:]}"
        if candidate[:9] not in streets:
            return candidate
    raise SourceError(site, f"every street of county {county} holds a site: give --division")


class _CommunityPool:
    """Codes for a site's new communities: the next numbers under its street that no site
    of the store holds."""

    def __init__(self, division: str, taken: set[str]) -> None:
        self.division = division
        self.taken = taken
        self.index = 0

    def take(self) -> str:
        """The next free community code.

        Raises
        ------
        ValueError
            If the street has no free community number left.
        """
        while True:
            code = community_code(self.division, self.index)
            self.index += 1
            if code not in self.taken:
                self.taken.add(code)
                return code


def _new_site(
    name: str, crs: Any, boxes: NDArray[np.float64], division: str, cell_m: float
) -> tuple[GridSpec, SiteInfo]:
    finite = boxes[np.isfinite(boxes).all(axis=1)]
    if len(finite) == 0:
        lo = np.zeros(3)
        hi = np.zeros(3)
    else:
        lo, hi = finite[:, :3].min(axis=0), finite[:, 3:].max(axis=0)
    origin = (float(np.floor(lo[0] / cell_m) * cell_m), float(np.floor(lo[1] / cell_m) * cell_m))
    grid = GridSpec(division, *origin, cell_m=cell_m)
    enu = (float((lo[0] + hi[0]) / 2), float((lo[1] + hi[1]) / 2), float(lo[2]))
    info = SiteInfo(name, crs_label(crs), division, cell_m, origin, enu, None, 0)
    return grid, info


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's content ("" when it cannot be read)."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()


def _plan(
    store: Store,
    info: SiteInfo,
    grid: GridSpec,
    parsed: ParsedSource,
    boxes: NDArray[np.float64],
    shapes: list[Any],
    path: Path,
) -> ImportPlan:
    key, sha = path.name, file_sha256(path)
    objects = parsed.objects
    exists = store.find_site(info.name) is not None
    known = store.codes_of_source(info.name, key) if exists else {}
    # codes this source had keep their numbers; new objects take the next free ones
    # seeded with every site's codes: county-level codes (terrain, street components) are
    # numbered across the store, so no two sites share one
    allocator = SequenceAllocator(store.all_codes())
    communities = store.communities(info.name) if exists else {}
    new_communities: dict[tuple[int, int], str] = {}
    pool = _CommunityPool(grid.division, set(store.community_codes()))

    # where each object lies: its footprint centroid, else its box centre
    anchors = np.full((len(objects), 2), np.nan)
    present = [i for i, s in enumerate(shapes) if s is not None and not s.is_empty]
    if present:
        cent = shapely.centroid(np.array([shapes[i] for i in present], dtype=object))
        anchors[present] = shapely.get_coordinates(cent)
    no_shape = np.isnan(anchors[:, 0]) & np.isfinite(boxes[:, 0])
    anchors[no_shape] = (boxes[no_shape, :2] + boxes[no_shape, 3:5]) / 2
    located = np.isfinite(anchors).all(axis=1)
    cells = grid.cell_index(np.nan_to_num(anchors))
    blocks = grid.block_of(cells)
    block_keys, block_index = np.unique(blocks, axis=0, return_inverse=True)
    block_index = block_index.ravel()
    occupied = np.zeros(len(block_keys), dtype=bool)
    occupied[block_index[located]] = True  # unlocated objects sit in no block
    block_codes: list[str] = []
    for (bi, bj), used in zip(block_keys.tolist(), occupied.tolist(), strict=True):
        code = communities.get((bi, bj)) or new_communities.get((bi, bj))
        if code is None and used:
            try:
                code = pool.take()
            except ValueError as exc:
                raise SourceError(path, str(exc)) from None
            new_communities[(bi, bj)] = code
        block_codes.append(code or "")
    cell_codes = np.char.add(
        np.array(block_codes, dtype=str)[block_index],
        np.char.zfill(grid.sequence(cells).astype(str), 3),
    ).tolist()
    located_list = located.tolist()
    cell_list = [tuple(c) for c in cells.tolist()]

    kinds = {o.kind for o in objects}
    unit_classes = {k: unit_class(k) for k in kinds}
    site_level = {k for k in kinds if is_site_level(k)}
    position = {o.source_id: i for i, o in enumerate(objects)}
    depth = _depths(objects, position)
    codes: list[str] = [""] * len(objects)
    parents: list[str | None] = [None] * len(objects)
    used_cells: set[tuple[int, int]] = set()
    unlocated = f"{grid.division}000"  # the community's reserved cell for the unplaceable
    for i in sorted(range(len(objects)), key=depth.__getitem__):
        obj = objects[i]
        sid = obj.source_id
        parent_index = position.get(obj.parent_id) if obj.parent_id is not None else None
        if parent_index is not None:
            parent_code = codes[parent_index]
            parents[i] = parent_code
            try:
                codes[i] = known.get(sid) or allocator.take(parent_code, 3)
            except ValueError as exc:
                raise SourceError(path, f"too many parts under one parent: {exc}", sid) from None
            continue
        if obj.kind in site_level:
            parents[i] = grid.county
            codes[i] = known.get(sid) or allocator.take(f"{grid.county}T", 4)
            continue
        try:
            minor = component_class(obj.kind, obj.attributes)
        except ValueError as exc:
            raise SourceError(path, str(exc), sid) from None
        cell_code = cell_codes[i] if located_list[i] else unlocated
        if located_list[i]:
            used_cells.add(cell_list[i])
        parents[i] = cell_code
        if minor is not None:
            if not located_list[i]:
                raise SourceError(path, "a street component needs a location", sid)
            obj.attributes.setdefault("component_class", minor)
            obj.attributes["BGID"] = cell_code
            codes[i] = known.get(sid) or _component(allocator, grid.county, minor)
        else:
            codes[i] = known.get(sid) or allocator.take(f"{cell_code}{unit_classes[obj.kind]}", 4)

    counts = np.diff(parsed.geometry.face_offsets).tolist()
    finite = np.asarray(np.isfinite(boxes).all(axis=1), dtype=bool).tolist()
    box_rows: list[Box] = [(a, b, c, d, e, f) for a, b, c, d, e, f in boxes.tolist()]
    result: list[CimObject] = []
    for i, obj in enumerate(objects):
        obj.attributes["source_id"] = obj.source_id
        result.append(
            CimObject(
                code=codes[i],
                kind=obj.kind,
                name=obj.name,
                parent=parents[i],
                source=key,
                source_id=obj.source_id,
                attributes=obj.attributes,
                bbox=box_rows[i] if finite[i] else None,
                footprint=shapes[i],
                index=i if counts[i] > 0 else None,
            )
        )
    rasters = {codes[position[sid]]: g for sid, g in parsed.rasters.items() if sid in position}
    admin = _admin_objects(info, grid, boxes, used_cells, communities, new_communities, pool)
    return ImportPlan(
        site=info,
        source_key=key,
        source_path=str(path),
        source_format=parsed.format,
        sha256=sha,
        objects=result,
        admin=admin,
        geometry=parsed.geometry,
        rasters=rasters,
        communities=new_communities,
    )


def _depths(objects: list[Any], position: dict[str, int]) -> list[int]:
    """Nesting depth of every object inside its file (0 for top-level objects)."""
    depth = [-1] * len(objects)
    for start in range(len(objects)):
        chain = []
        i: int | None = start
        while i is not None and depth[i] < 0 and i not in chain:
            chain.append(i)
            parent = objects[i].parent_id
            i = position.get(parent) if parent is not None else None
        base = depth[i] + 1 if i is not None and depth[i] >= 0 else 0
        for offset, j in enumerate(reversed(chain)):
            depth[j] = base + offset
    return depth


def _component(allocator: SequenceAllocator, county: str, minor: str) -> str:
    code = allocator.take(f"{county}{minor}", 6)
    component_code(county, minor, int(code[-6:]))  # validates the layout
    return code


def _admin_objects(
    info: SiteInfo,
    grid: GridSpec,
    boxes: NDArray[np.float64],
    used_cells: set[tuple[int, int]],
    communities: dict[tuple[int, int], str],
    new_communities: dict[tuple[int, int], str],
    pool: _CommunityPool,
) -> list[CimObject]:
    """District, street, communities and the grid cells covering this import's extent."""
    out = [
        CimObject(grid.county, DISTRICT, f"{info.name} district", None),
        CimObject(grid.street, STREET, f"{info.name} street", grid.county),
    ]
    finite = boxes[np.isfinite(boxes).all(axis=1)]
    cells = set(used_cells)
    z0 = z1 = 0.0
    if len(finite):
        lo, hi = finite[:, :3].min(axis=0), finite[:, 3:].max(axis=0)
        z0, z1 = float(lo[2]), float(hi[2])
        c0 = grid.cell_index(lo[None, :2])[0]
        c1 = grid.cell_index(hi[None, :2])[0]
        cells |= {
            (i, j)
            for i in range(int(c0[0]), int(c1[0]) + 1)
            for j in range(int(c0[1]), int(c1[1]) + 1)
        }
    all_communities = {**communities, **new_communities}
    index = np.array(sorted(cells), dtype=np.int64).reshape(-1, 2)
    blocks = grid.block_of(index)
    seqs = grid.sequence(index)
    bounds = grid.cell_bounds(index)
    squares = shapely.box(*bounds.T)
    rows = zip(
        index.tolist(), blocks.tolist(), seqs.tolist(), bounds.tolist(), squares, strict=True
    )
    for (ci, cj), (bi, bj), seq, (left, bottom, right, top), square in rows:
        community = all_communities.get((bi, bj))
        if community is None:
            try:
                community = pool.take()
            except ValueError as exc:
                raise SourceError(
                    info.name, f"the grid needs too many communities: {exc}"
                ) from None
            all_communities[(bi, bj)] = community
            new_communities[(bi, bj)] = community
        out.append(
            CimObject(
                f"{community}{seq:03d}",
                GRID_CELL,
                f"cell {ci},{cj}",
                community,
                attributes={"column": ci, "row": cj, "cell_m": grid.cell_m},
                bbox=(left, bottom, z0, right, top, z1),
                footprint=square,
            )
        )
    for (bi, bj), code in sorted(all_communities.items(), key=lambda kv: kv[1]):
        out.append(
            CimObject(
                code, COMMUNITY, f"community {bi},{bj}", grid.street, attributes={"block": [bi, bj]}
            )
        )
    return out
