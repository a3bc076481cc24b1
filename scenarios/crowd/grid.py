"""Discretise a venue into square cells and compute walking distances to each exit.

Cells are a regular raster clipped to the walkable polygon (shapely vectorised): corners
and boundary points classify every cell as full, empty or partial without a polygon per
cell, and only partial cells are clipped, each against the piece of the walkable area in its
16 x 16-cell block (same cells, areas and centroids as clipping against the whole polygon,
in about half the time on JuPedSim's 38,700 m² test venue). Each kept
cell is a node; edges join cells up to a knight's move apart (16 directions, so walking
distances on the cell graph are within ~3 % of Euclidean) when the straight segment between
their centroids stays inside the walkable area. Distances to each exit come from one
multi-source Dijkstra per exit (``scipy.sparse.csgraph``).
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import shapely
from numpy.typing import NDArray

from scenarios.crowd.venue import Venue

# one of each pair of opposite offsets (di, dj): rook, bishop and knight moves
_OFFSETS = np.array([(1, 0), (0, 1), (1, 1), (1, -1), (1, 2), (2, 1), (1, -2), (2, -1)])
MIN_OPEN_FRACTION = 0.15


@dataclass(frozen=True, eq=False)
class CellGrid:
    """The cells of a venue and their graph.

    Attributes
    ----------
    cell_m : edge length of a raster cell, metres
    origin : (2,) float, the raster's lower-left corner, metres
    shape : (rows, cols) of the raster
    lookup : (rows, cols) int32, cell index of each raster position, -1 where not walkable
    rc : (n, 2) int32, raster (row, col) of each cell
    centroid : (n, 2) float, centroid of each cell's walkable part, metres
    area_m2 : (n,) float, walkable area of each cell
    window : (n, k) int32, the cells of each cell's density window; ``n`` pads missing ones
    window_area_m2 : (n,) float, walkable area of each window (at least half a full one)
    exit_of_cell : (n,) int32, the exit a cell belongs to, -1 if none
    distance_m : (e, n) float, walking distance from each cell to each exit (inf: unreachable)
    neighbours : (n, 16) int32, the cells joined to each cell, slot ``k`` at offset
        ``_OFFSETS[k]``, slot ``k + 8`` at its opposite; ``n`` pads missing ones
    neighbour_m : (n, 16) float, centroid distances to them, metres (inf for padding)
    zone : (n,) int32, reporting zone of each cell
    zone_names : names of the zones
    walkable : the walkable polygon (prepared), for points that leave the kept cells
    """

    cell_m: float
    origin: NDArray[np.float64]
    shape: tuple[int, int]
    lookup: NDArray[np.int32]
    rc: NDArray[np.int32]
    centroid: NDArray[np.float64]
    area_m2: NDArray[np.float64]
    window: NDArray[np.int32]
    window_area_m2: NDArray[np.float64]
    exit_of_cell: NDArray[np.int32]
    distance_m: NDArray[np.float64]
    neighbours: NDArray[np.int32]
    neighbour_m: NDArray[np.float64]
    zone: NDArray[np.int32]
    zone_names: list[str]
    walkable: shapely.Geometry

    @property
    def n_cells(self) -> int:
        return int(self.area_m2.size)

    @cached_property
    def padded_distance_m(self) -> NDArray[np.float64]:
        """(e, n + 1) ``distance_m`` with an inf column for the padding index."""
        pad = np.full((self.distance_m.shape[0], 1), np.inf)
        return np.concatenate([self.distance_m, pad], axis=1)

    @cached_property
    def ahead_mask(self) -> NDArray[np.bool_]:
        """(e, n, k) which cells of each cell's window are no farther from exit ``e``."""
        return np.asarray(
            self.padded_distance_m[:, self.window] <= self.distance_m[:, :, None], dtype=bool
        )

    @cached_property
    def ahead_area_m2(self) -> NDArray[np.float64]:
        """(e, n) area of the part of each window that lies ahead (at least a quarter window)."""
        area = (self.padded_area_m2[self.window][None] * self.ahead_mask).sum(axis=2)
        return np.asarray(np.maximum(area, 0.25 * self.window.shape[1] * self.cell_m**2))

    @cached_property
    def padded_area_m2(self) -> NDArray[np.float64]:
        """(n + 1,) ``area_m2`` with a 0 for the padding index."""
        return np.append(self.area_m2, 0.0)

    @cached_property
    def storage_area_m2(self) -> NDArray[np.float64]:
        """(n,) area that holds people: a sliver beside a wall counts as half a cell."""
        return np.maximum(self.area_m2, 0.5 * self.cell_m**2)

    @cached_property
    def padded_cell_area_m2(self) -> NDArray[np.float64]:
        """(n + 1,) per-cell area for densities (a window's share; 1 for the padding)."""
        return np.append(self.window_area_m2 / self.window.shape[1], 1.0)

    def cell_of(self, xy: NDArray[np.float64]) -> NDArray[np.int32]:
        """Cell index of each point (-1 outside the cells).

        Parameters
        ----------
        xy : (m, 2) float, metres
        """
        ij = np.floor((xy - self.origin) / self.cell_m).astype(np.int64)
        rows, cols = self.shape
        inside = (ij[:, 1] >= 0) & (ij[:, 1] < rows) & (ij[:, 0] >= 0) & (ij[:, 0] < cols)
        out = np.full(len(xy), -1, dtype=np.int32)
        out[inside] = self.lookup[ij[inside, 1], ij[inside, 0]]
        return out


def auto_cell_m(venue: Venue) -> float:
    """A cell size for a venue: about 50,000 cells, between 0.4 and 1 m."""
    return float(min(1.0, max(0.4, math.sqrt(venue.area_m2 / 50_000))))


def build_grid(
    venue: Venue, cell_m: float, window_m: float = 1.5, zone_m: float = 10.0
) -> CellGrid:
    """Discretise ``venue`` into cells of ``cell_m`` and route every cell to every exit.

    Parameters
    ----------
    venue : the venue
    cell_m : raster cell edge, metres (> 0)
    window_m : side of the square window densities are measured over, metres
    zone_m : side of the square reporting zones when the venue names none, metres

    Raises
    ------
    ValueError
        A non-positive size, or a cell size that leaves an exit without cells.
    """
    if not cell_m > 0 or not window_m > 0 or not zone_m > 0:
        raise ValueError(f"cell_m(={cell_m}), window_m(={window_m}), zone_m(={zone_m}) must be > 0")
    walkable = venue.walkable
    minx, miny, maxx, maxy = walkable.bounds
    cols = max(1, math.ceil((maxx - minx) / cell_m))
    rows = max(1, math.ceil((maxy - miny) / cell_m))
    jj, ii = np.meshgrid(np.arange(cols), np.arange(rows))
    x0 = minx + jj.ravel() * cell_m
    y0 = miny + ii.ravel() * cell_m
    shapely.prepare(walkable)
    full, partial = _classify(walkable, (minx, miny), cell_m, rows, cols)
    area = np.where(full, cell_m * cell_m, 0.0)
    centroid = np.column_stack([x0 + cell_m / 2, y0 + cell_m / 2])
    clipped = _clip_cells(walkable, np.flatnonzero(partial), (minx, miny), cell_m, cols)
    area[partial] = shapely.area(clipped)
    # an empty clip (the cell only touches the area) has no point, and it is not kept
    solid = np.flatnonzero(partial)[~shapely.is_empty(clipped)]
    centroid[solid] = shapely.get_coordinates(
        shapely.point_on_surface(clipped[~shapely.is_empty(clipped)])
    )
    keep = area >= MIN_OPEN_FRACTION * cell_m * cell_m
    flat = np.flatnonzero(keep)
    lookup = np.full(rows * cols, -1, dtype=np.int32)
    lookup[flat] = np.arange(flat.size, dtype=np.int32)
    lookup = lookup.reshape(rows, cols)
    rc = np.column_stack([flat // cols, flat % cols]).astype(np.int32)
    cents = centroid[flat]
    areas = area[flat]

    neighbours, neighbour_m = _cell_graph(walkable, lookup, cents, (~full).reshape(rows, cols))
    exit_of_cell = _exit_cells(venue, (minx, miny), cell_m, lookup, areas)
    exits = np.ones(len(venue.exits), dtype=bool)
    distance = _fields(neighbours, neighbour_m, exit_of_cell, exits, None, None)
    window, window_area = _windows(lookup, rc, areas, cell_m, window_m)
    zone, names = _zones(venue, rc, cents, cell_m, zone_m)
    return CellGrid(
        cell_m=float(cell_m),
        origin=np.array([minx, miny]),
        shape=(rows, cols),
        lookup=lookup,
        rc=rc,
        centroid=cents,
        area_m2=areas,
        window=window,
        window_area_m2=window_area,
        exit_of_cell=exit_of_cell,
        distance_m=distance,
        neighbours=neighbours,
        neighbour_m=neighbour_m,
        zone=zone,
        zone_names=names,
        walkable=walkable,
    )


def _cell_graph(
    walkable: shapely.Geometry,
    lookup: NDArray[np.int32],
    cents: NDArray[np.float64],
    not_full: NDArray[np.bool_],
) -> tuple[NDArray[np.int32], NDArray[np.float64]]:
    """Edges between cells a rook, bishop or knight move apart, as the neighbour table.

    Slot ``k`` of a cell holds its neighbour at offset ``_OFFSETS[k]``, slot ``k + 8`` the one
    at the opposite offset (``n`` and inf pad missing ones), so the direction of every edge
    is known from its slot. Pairs are found on raster slices (no per-cell gather); only
    edges whose bounding rectangle holds a partial cell are tested against the walls.
    """
    rows, cols = lookup.shape
    n = cents.shape[0]
    width = 2 * len(_OFFSETS)
    table = np.full((n, width), n, dtype=np.int32)
    metres = np.full((n, width), np.inf)
    # summed-area table of partial cells: an edge whose bounding rectangle holds none is safe
    summed = np.zeros((rows + 1, cols + 1), dtype=np.int64)
    summed[1:, 1:] = np.cumsum(np.cumsum(not_full, axis=0), axis=1)
    for slot, (di, dj) in enumerate(_OFFSETS.tolist()):
        h, w = di + 1, abs(dj) + 1
        if h > rows or w > cols:
            continue
        span = cols - abs(dj)
        c0 = max(0, -dj)
        a = lookup[: rows - di, c0 : c0 + span]
        b = lookup[di:, c0 + dj : c0 + dj + span]
        pair = (a >= 0) & (b >= 0)
        if di + abs(dj) == 3:
            # a knight's segment passes through four cells: its ends and the two between
            # them (not the other two corners of its rectangle)
            mi, mj = (0, int(np.sign(dj))) if di == 1 else (1, 0)
            ni, nj = (1, int(np.sign(dj))) if di == 1 else (1, dj)
            crossed = (
                not_full[: rows - di, c0 : c0 + span]
                | not_full[di:, c0 + dj : c0 + dj + span]
                | not_full[mi : mi + rows - di, c0 + mj : c0 + mj + span]
                | not_full[ni : ni + rows - di, c0 + nj : c0 + nj + span]
            )
        else:
            boxed = summed[h:, w:] - summed[:-h, w:] - summed[h:, :-w] + summed[:-h, :-w]
            crossed = boxed > 0
        src, dst, partial = a[pair], b[pair], crossed[pair]
        if partial.any():
            lines = shapely.linestrings(
                np.stack([cents[src[partial]], cents[dst[partial]]], axis=1)
            )
            inside = np.ones(src.size, dtype=bool)
            inside[partial] = shapely.covers(walkable, lines)
            src, dst = src[inside], dst[inside]
        length = np.hypot(*(cents[src] - cents[dst]).T)
        table[src, slot], metres[src, slot] = dst, length
        table[dst, slot + len(_OFFSETS)], metres[dst, slot + len(_OFFSETS)] = src, length
    return table, metres


def travel_time_fields(
    grid: CellGrid,
    seconds_per_m: NDArray[np.float64] | None,
    exits: NDArray[np.bool_],
    allowed: NDArray[np.bool_] | None = None,
) -> NDArray[np.float64]:
    """(e, n + 1) walking time to each exit at the given pace per cell, seconds.

    An edge costs its length times the pace of the cell it enters (``None``: 1 s/m, so the
    field is the walking distance in metres); exits not in ``exits`` get an infinite field.
    With ``allowed`` ((n, 16) bool over the neighbour table) only those directed edges may be
    walked (one-way corridors). The last column pads the neighbour table's missing index.

    Parameters
    ----------
    seconds_per_m : (n,) float, 1 / speed in each cell, or None
    exits : (e,) bool, which exits to compute
    allowed : (n, 16) bool, or None for every edge both ways
    """
    field = _fields(
        grid.neighbours, grid.neighbour_m, grid.exit_of_cell, exits, seconds_per_m, allowed
    )
    return np.concatenate([field, np.full((exits.size, 1), np.inf)], axis=1)


def _fields(
    table: NDArray[np.int32],
    metres: NDArray[np.float64],
    exit_of_cell: NDArray[np.int32],
    exits: NDArray[np.bool_],
    seconds_per_m: NDArray[np.float64] | None,
    allowed: NDArray[np.bool_] | None,
) -> NDArray[np.float64]:
    """(e, n) cost of the cheapest walk from each cell into each exit's cells: one
    multi-source Dijkstra per exit on the reversed graph (C, ``scipy.sparse.csgraph``).

    scipy is imported here, not with the module: a run on a cached grid without re-routing
    never needs it (its import pulls in ``scipy.sparse.linalg``, about 0.1 s)."""
    from scipy.sparse import coo_matrix, csr_matrix
    from scipy.sparse.csgraph import dijkstra

    n = table.shape[0]
    valid = table < n
    if allowed is not None:
        valid &= allowed
    weight = metres[valid]
    if seconds_per_m is not None:
        weight = weight * seconds_per_m[table[valid]]
    if allowed is None and seconds_per_m is None:
        # every edge both ways at its length: the graph is its own reverse, CSR by row as is
        indptr = np.concatenate([[0], np.cumsum(valid.sum(axis=1))])
        reverse = csr_matrix((weight, table[valid], indptr), shape=(n, n))
    else:
        # walking *to* an exit: edges reversed (tail -> head)
        head = np.repeat(np.arange(n, dtype=np.int32), valid.sum(axis=1))
        reverse = coo_matrix((weight, (table[valid], head)), shape=(n, n)).tocsr()
    field = np.full((exits.size, n), np.inf)
    for index in np.flatnonzero(exits).tolist():
        sources = np.flatnonzero(exit_of_cell == index)
        field[index] = dijkstra(reverse, directed=True, indices=sources, min_only=True)
    return field


def _classify(
    walkable: shapely.Geometry, origin: tuple[float, float], cell_m: float, rows: int, cols: int
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Raster cells wholly inside ``walkable`` and cells its boundary passes through, both
    flat (rows * cols) — without a polygon per cell.

    A cell is *partial* when its four corners disagree, or when a point of the boundary lies
    in it (every vertex, and points every third of a cell along every edge: a straight edge
    crossing a cell without a vertex in it either cuts a corner off or spans it, so one of
    the two tests sees it); otherwise all-corners-inside cells are *full* and the rest empty.
    """
    minx, miny = origin
    xs = minx + np.arange(cols + 1) * cell_m
    ys = miny + np.arange(rows + 1) * cell_m
    gx, gy = np.meshgrid(xs, ys)
    corner = shapely.contains_xy(walkable, gx, gy)
    c00, c01, c10, c11 = corner[:-1, :-1], corner[:-1, 1:], corner[1:, :-1], corner[1:, 1:]
    all_in = c00 & c01 & c10 & c11
    any_in = c00 | c01 | c10 | c11
    touched = np.zeros((rows, cols), dtype=bool)
    rings = shapely.get_rings(shapely.get_parts(walkable))
    for ring in rings:
        xy = shapely.get_coordinates(ring)
        a, b = xy[:-1], xy[1:]
        steps = np.maximum(np.ceil(np.hypot(*(b - a).T) / (cell_m / 3.0)).astype(np.int64), 1)
        seg = np.repeat(np.arange(a.shape[0]), steps + 1)
        t = np.arange(seg.size) - np.repeat(np.cumsum(steps + 1) - (steps + 1), steps + 1)
        frac = (t / steps[seg])[:, None]
        points = a[seg] + frac * (b[seg] - a[seg])
        j = np.clip(((points[:, 0] - minx) // cell_m).astype(np.int64), 0, cols - 1)
        i = np.clip(((points[:, 1] - miny) // cell_m).astype(np.int64), 0, rows - 1)
        touched[i, j] = True
    partial = touched | (any_in & ~all_in)
    full = all_in & ~partial
    return full.ravel(), partial.ravel()


_BLOCK = 16  # cells per side of the blocks the walkable area is cut into before clipping


def _clip_cells(
    walkable: shapely.Geometry,
    flat: NDArray[np.int64],
    origin: tuple[float, float],
    cell_m: float,
    cols: int,
) -> NDArray[np.object_]:
    """``cell ∩ walkable`` for each partial cell (flat raster index), through the piece of
    the walkable area in the cell's block of ``_BLOCK``² cells: each clip then sees a few
    vertices, not all. GEOS's rectangle clipping (``clip_by_rect``) is several times
    quicker than a general intersection with a box polygon, for the same areas."""
    per_row = cols // _BLOCK + 1
    block = (flat // cols // _BLOCK) * per_row + (flat % cols) // _BLOCK
    keys, which = np.unique(block, return_inverse=True)
    size = _BLOCK * cell_m
    bx = origin[0] + (keys % per_row) * size
    by = origin[1] + (keys // per_row) * size
    clip = shapely.clip_by_rect
    pieces = [
        clip(walkable, a - cell_m, b - cell_m, a + size + cell_m, b + size + cell_m)
        for a, b in zip(bx.tolist(), by.tolist(), strict=True)
    ]
    x0 = origin[0] + (flat % cols) * cell_m
    y0 = origin[1] + (flat // cols) * cell_m
    return np.array(
        [
            clip(pieces[k], x, y, x + cell_m, y + cell_m)
            for k, x, y in zip(which.tolist(), x0.tolist(), y0.tolist(), strict=True)
        ],
        dtype=object,
    )


def _exit_cells(
    venue: Venue,
    origin: tuple[float, float],
    cell_m: float,
    lookup: NDArray[np.int32],
    areas: NDArray[np.float64],
) -> NDArray[np.int32]:
    """The exit each cell belongs to: cells mostly covered by the exit polygon."""
    exit_of_cell = np.full(areas.size, -1, dtype=np.int32)
    rows, cols = lookup.shape
    for index, exit_area in enumerate(venue.exits):
        # the kept cells under the exit's bounding box, then those it really touches
        x0, y0, x1, y1 = exit_area.bounds
        j0, j1 = (
            max(0, min(cols, int((v - origin[0]) // cell_m) + d)) for v, d in ((x0, 0), (x1, 1))
        )
        i0, i1 = (
            max(0, min(rows, int((v - origin[1]) // cell_m) + d)) for v, d in ((y0, 0), (y1, 1))
        )
        window = lookup[i0:i1, j0:j1]
        near = window[window >= 0]
        ii, jj = np.nonzero(window >= 0)
        bx = origin[0] + (jj + j0) * cell_m
        by = origin[1] + (ii + i0) * cell_m
        boxes = shapely.box(bx, by, bx + cell_m, by + cell_m)
        hit = shapely.intersects(exit_area, boxes)
        candidates, boxes = near[hit], boxes[hit]
        if candidates.size == 0:
            raise ValueError(f"exit {index} covers no cell; use a smaller cell size")
        shared = shapely.area(
            shapely.intersection(shapely.intersection(boxes, exit_area), venue.walkable)
        )
        mostly = candidates[shared >= 0.5 * areas[candidates]]
        chosen = mostly if mostly.size else candidates[[int(np.argmax(shared))]]
        exit_of_cell[chosen] = index
    return exit_of_cell


def _windows(
    lookup: NDArray[np.int32],
    rc: NDArray[np.int32],
    areas: NDArray[np.float64],
    cell_m: float,
    window_m: float,
) -> tuple[NDArray[np.int32], NDArray[np.float64]]:
    """Each cell's square density window (the smallest odd number of cells spanning
    ``window_m``)."""
    half = max(0, math.ceil((window_m / cell_m - 1) / 2))
    rows, cols = lookup.shape
    n = rc.shape[0]
    span = np.arange(-half, half + 1)
    di, dj = (a.ravel() for a in np.meshgrid(span, span))
    r2 = rc[:, :1] + di
    c2 = rc[:, 1:] + dj
    ok = (r2 >= 0) & (r2 < rows) & (c2 >= 0) & (c2 < cols)
    window = np.full(r2.shape, n, dtype=np.int32)
    window[ok] = lookup[r2[ok], c2[ok]]
    window[window < 0] = n
    padded = np.append(areas, 0.0)
    # a sliver beside a wall is measured over at least half a full window: the person in it
    # takes room from the cells around
    floor_m2 = 0.5 * (span.size * cell_m) ** 2
    return window, np.maximum(padded[window].sum(axis=1), floor_m2)


def _zones(
    venue: Venue, rc: NDArray[np.int32], cents: NDArray[np.float64], cell_m: float, zone_m: float
) -> tuple[NDArray[np.int32], list[str]]:
    """Reporting zones: the venue's named zones, else square tiles of ``zone_m``."""
    if venue.zones:
        names = list(venue.zones)
        zone = np.full(rc.shape[0], len(names), dtype=np.int32)
        points = shapely.points(cents)
        for index, polygon in enumerate(venue.zones.values()):
            zone[(zone == len(names)) & shapely.contains(polygon, points)] = index
        if (zone == len(names)).any():
            names.append("rest")
        return zone, names
    per = max(1, round(zone_m / cell_m))
    tile = (rc[:, 0] // per).astype(np.int64) * 100_000 + rc[:, 1] // per
    keys, zone = np.unique(tile, return_inverse=True)
    names = [f"r{k // 100_000}c{k % 100_000}" for k in keys.tolist()]
    return zone.astype(np.int32), names


_CACHE_VERSION = 3
_DERIVED = ("ahead_mask", "ahead_area_m2")
_ARRAYS = (
    "origin",
    "lookup",
    "rc",
    "centroid",
    "area_m2",
    "window",
    "window_area_m2",
    "exit_of_cell",
    "distance_m",
    "neighbours",
    "neighbour_m",
    "zone",
)


def grid_key(venue: Venue, cell_m: float, window_m: float, zone_m: float) -> str:
    """A digest of everything a grid depends on: geometry, sizes, format version."""
    digest = hashlib.sha256(f"{_CACHE_VERSION}|{cell_m!r}|{window_m!r}|{zone_m!r}".encode())
    for geometry in [venue.walkable, *venue.exits]:
        digest.update(shapely.to_wkb(geometry))
    for name, polygon in venue.zones.items():
        digest.update(name.encode() + shapely.to_wkb(polygon))
    return digest.hexdigest()[:32]


def cached_grid(
    venue: Venue, cell_m: float, window_m: float, zone_m: float, cache_dir: str | Path | None
) -> CellGrid:
    """:func:`build_grid`, kept as ``.npz`` in ``cache_dir`` (built only once per venue)."""
    if cache_dir is None:
        return build_grid(venue, cell_m, window_m, zone_m)
    path = Path(cache_dir) / f"grid-{grid_key(venue, cell_m, window_m, zone_m)}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in _ARRAYS}
                derived = {name: data[name] for name in _DERIVED}
                names = [str(n) for n in data["zone_names"]]
                rows, cols = (int(v) for v in data["shape"])
            shapely.prepare(venue.walkable)
            grid = CellGrid(
                cell_m=float(cell_m),
                shape=(rows, cols),
                zone_names=names,
                walkable=venue.walkable,
                **arrays,
            )
            grid.__dict__.update(derived)  # the cached properties, computed once
            return grid
        except (OSError, KeyError, ValueError):
            path.unlink(missing_ok=True)  # a damaged cache file is rebuilt
    grid = build_grid(venue, cell_m, window_m, zone_m)
    path.parent.mkdir(parents=True, exist_ok=True)
    # one temporary file per process: runs building the same venue at once must not share it
    partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp.npz")
    np.savez(
        partial,
        shape=np.array(grid.shape),
        zone_names=np.array(grid.zone_names),
        **{name: getattr(grid, name) for name in _ARRAYS + _DERIVED},
    )
    partial.replace(path)
    return grid
