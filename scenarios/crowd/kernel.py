"""Pure numpy kernels of the crowd model: speeds, densities, gated moves between cells.

People are rows in arrays. Each step every walker heads for the centroid of a neighbour cell
nearer its exit (the quickest way on, given how full the neighbours are), at the Weidmann
speed of the density ahead of it. Moves into another cell
pass two gates, as in a cell transmission model: the cell being left lets out at most
``specific flow × open width × dt`` people, and the cell being entered takes no one beyond its
jam density. Exits let out at most ``exit rate × dt``. Gates keep a credit that refills at
their rate, so a gate of 0.3 people per step passes one person every few steps.
No Python loop runs over people or cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scenarios.crowd.grid import CellGrid

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int32]

# Fruin (1971) walkway level of service by density, persons/m²: A .. F
FRUIN_BOUNDS_PM2 = np.array([0.31, 0.43, 0.72, 1.08, 2.17])
FRUIN_LEVELS = ("A", "B", "C", "D", "E", "F")
# head counts per cell the slowness lookup covers (more count as the last)
SLOWNESS_HEADS = 12


def weidmann_speed(
    density_pm2: FloatArray, free_speed_mps: FloatArray | float, gamma: float, rho_max: float
) -> FloatArray:
    """Walking speed from density by Weidmann's fundamental diagram.

    ``v = v0 · (1 − exp(−γ · (1/ρ − 1/ρmax)))``, ``v0`` at ρ = 0, 0 at and beyond ρmax.

    Parameters
    ----------
    density_pm2 : (n,) float, persons/m²
    free_speed_mps : (n,) float or float, free walking speed, m/s
    gamma : float, 1/m² (Weidmann: 1.913)
    rho_max : float, jam density, persons/m² (Weidmann: 5.4)
    """
    rho = np.asarray(density_pm2, dtype=np.float64)
    with np.errstate(divide="ignore"):
        inverse = np.where(rho > 0, 1.0 / np.maximum(rho, 1e-12), np.inf)
    factor = -np.expm1(-gamma * (inverse - 1.0 / rho_max))
    return np.asarray(free_speed_mps * np.clip(factor, 0.0, 1.0), dtype=np.float64)


def fruin_level(density_pm2: FloatArray) -> NDArray[np.int64]:
    """Fruin walkway level of service 0..5 (A..F) of each density (persons/m²)."""
    return np.searchsorted(FRUIN_BOUNDS_PM2, density_pm2, side="left").astype(np.int64)


def group_reduce(
    ufunc: np.ufunc,
    groups: NDArray[np.integer[Any]],
    values: NDArray[Any],
    n_groups: int,
    fill: float,
) -> NDArray[Any]:
    """``ufunc`` (``np.maximum``, ``np.minimum``) of ``values`` per group; ``fill`` if empty.

    Sorting plus ``reduceat``: much faster than ``ufunc.at`` on large inputs.
    """
    out = np.full((n_groups, *values.shape[1:]), fill, dtype=np.result_type(values, fill))
    if groups.size == 0:
        return out
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    out[sorted_groups[starts]] = ufunc.reduceat(values[order], starts, axis=0)
    return out


def cell_counts(cell: IntArray, n_cells: int) -> NDArray[np.int64]:
    """People per cell, with one trailing zero for the window padding index."""
    return np.bincount(cell, minlength=n_cells + 1)


def window_density(grid: CellGrid, counts: NDArray[np.int64], cells: IntArray) -> FloatArray:
    """Density over the window of each of ``cells``, persons/m²."""
    window = grid.window[cells]
    return np.asarray(counts[window].sum(axis=1) / grid.window_area_m2[cells], dtype=np.float64)


def admit(
    groups: NDArray[np.integer[Any]], allowance: NDArray[np.int64], key: FloatArray
) -> NDArray[np.bool_]:
    """Which members pass a gate that lets ``allowance[g]`` of group ``g`` through.

    Within a group, members pass in order of ``key`` (random keys: a fair lottery).

    Parameters
    ----------
    groups : (m,) int, gate of each member
    allowance : (g,) int, members each gate passes
    key : (m,) float, priority within a gate (lower first)
    """
    if groups.size == 0:
        return np.zeros(0, dtype=bool)
    # one float sort (gate + key in [0, 1)) orders as lexsort((key, groups)), in less time
    order = np.argsort(groups + np.clip(key, 0.0, 0.999_999), kind="stable")
    sorted_groups = groups[order]
    first = np.searchsorted(sorted_groups, sorted_groups, side="left")
    passed_sorted = (np.arange(groups.size) - first) < allowance[sorted_groups]
    passed = np.empty(groups.size, dtype=bool)
    passed[order] = passed_sorted
    return passed


@dataclass(frozen=True)
class Flow:
    """Flow parameters of one step.

    Attributes
    ----------
    gamma, rho_max : Weidmann parameters (1/m², persons/m²)
    specific_flow_pmps : capacity of a cell face per metre of open width, persons/(m·s)
    exit_rate_pps : (e,) float, what each exit lets out per second (0: closed)
    dt_s : step, seconds
    field_s : (e, n + 1) float or None, time to each exit under current congestion,
        seconds (see :func:`scenarios.crowd.grid.travel_time_fields`)
    distance_m : (e, n + 1) float or None, walking distance to each exit when one-way
        corridors are on (None: the grid's own, every edge both ways)
    blocked : (n + 1, 16) bool or None, neighbour-table edges that may not be walked (against
        a one-way corridor's direction); the last row pads
    """

    gamma: float
    rho_max: float
    specific_flow_pmps: float
    exit_rate_pps: FloatArray
    dt_s: float
    field_s: FloatArray | None = None
    distance_m: FloatArray | None = None
    blocked: NDArray[np.bool_] | None = None


@dataclass(frozen=True)
class Moved:
    """Result of one step.

    Attributes
    ----------
    cell : (n,) int, cell of each person (the cell they last entered)
    target : (n,) int, the cell each person walks toward
    origin : (n, 2) float, where each person's current leg started, metres
    walked_m, leg_m : (n,) float, metres walked along the current leg, and its length
    left : (n,) bool, passed their exit this step
    exit_used : (n,) int, the exit passed (-1 if none)
    """

    cell: IntArray
    target: IntArray
    origin: FloatArray
    walked_m: FloatArray
    leg_m: FloatArray
    left: NDArray[np.bool_]
    exit_used: IntArray


class Gates:
    """Outflow credit of every cell and exit: token buckets.

    A gate's credit refills at its rate (cells: ``specific flow × open width``; exits: their
    rate) up to one step's worth, at least one person, so a lone walker is never held and a
    crowd passes at capacity. Cell credit is refilled lazily, only where people leave.
    """

    def __init__(self, n_cells: int, n_exits: int) -> None:
        self.cell_credit = np.ones(n_cells)
        self.cell_stamp_s = np.zeros(n_cells)
        self.exit_credit = np.ones(n_exits)

    def cell_credit_at(
        self, grid: CellGrid, cells: IntArray, now_s: float, flow: Flow
    ) -> FloatArray:
        """The credit of ``cells`` at ``now_s`` plus this step's refill."""
        rate = flow.specific_flow_pmps * grid.area_m2[cells] / grid.cell_m
        elapsed = now_s + flow.dt_s - self.cell_stamp_s[cells]
        cap = np.maximum(rate * flow.dt_s, 1.0)
        return np.asarray(np.minimum(self.cell_credit[cells] + rate * elapsed, cap))


def positions(
    grid: CellGrid, target: IntArray, origin: FloatArray, walked_m: FloatArray, leg_m: FloatArray
) -> FloatArray:
    """(n, 2) positions, metres: each person is ``walked_m`` along the leg toward its target."""
    share = np.clip(walked_m / np.maximum(leg_m, 1e-12), 0.0, 1.0)[:, None]
    return np.asarray(origin + share * (grid.centroid[target] - origin), dtype=np.float64)


def density_ahead(
    grid: CellGrid, counts: NDArray[np.int64], target: IntArray, exit_id: IntArray
) -> FloatArray:
    """Density in front of each walker, persons/m².

    Measured over the cells of the target's window that are no farther from the exit than
    the target: the people ahead, not those behind (the front of a queue sees the open door,
    not the crowd at its back).
    """
    window = grid.window[target]
    people = np.where(grid.ahead_mask[exit_id, target], counts[window], 0).sum(axis=1)
    return np.asarray(people / grid.ahead_area_m2[exit_id, target], dtype=np.float64)


def slowness_table(
    grid: CellGrid, gamma: float, rho_max: float, heads: int = 12
) -> tuple[NDArray[np.int64], FloatArray]:
    """``1 / weidmann factor`` of each cell holding 0..heads-1 people, as a lookup.

    Returns ``(row, table)``: cell ``c`` with ``h`` people has slowness
    ``table[row[c] + h]``. Cells of equal area share a row (most cells are whole, so the
    rows read each step stay in cache). Capped at 1000 (a full cell is all but
    impassable); computed once per grid and diagram.
    """
    tables: dict[tuple[float, float, int], tuple[NDArray[np.int64], FloatArray]]
    tables = grid.__dict__.setdefault("_slowness", {})
    found = tables.get((gamma, rho_max, heads))
    if found is None:
        areas, row = np.unique(grid.padded_cell_area_m2, return_inverse=True)
        density = np.arange(heads)[None, :] / areas[:, None]
        table = 1.0 / np.maximum(weidmann_speed(density, 1.0, gamma, rho_max), 1e-3)
        found = (row.astype(np.int64) * heads, table.ravel())
        tables[(gamma, rho_max, heads)] = found
    return found


def choose_targets(
    grid: CellGrid,
    cell: IntArray,
    exit_id: IntArray,
    counts: NDArray[np.int64],
    free_speed_mps: FloatArray,
    flow: Flow,
) -> IntArray:
    """The neighbour each person steps to next: the quickest way on toward its exit.

    Among the neighbours nearer to the exit (so no one walks in circles), take the one with
    the least ``leg / v(density there) + time from there to the exit``: people follow the
    shortest path while it is free and spread sideways as it fills. Where no neighbour is
    nearer (at the exit, or cut off) the person stays.

    Parameters
    ----------
    cell, exit_id : (m,) int
    counts : (n + 1,) people per cell (from :func:`cell_counts`)
    free_speed_mps : (m,) float
    flow : step parameters; with ``flow.field_s`` the time to the exit is read from that
        congestion-aware field instead of walking distance at free speed
    """
    candidates = grid.neighbours[cell]
    width = candidates.shape[1]
    if flow.field_s is not None:
        field, speed = flow.field_s, None
    else:
        field = grid.padded_distance_m if flow.distance_m is None else flow.distance_m
        speed = free_speed_mps
    # flat gathers (row * stride + column): much cheaper than 2-d fancy indexing per step
    stride = field.shape[1]
    flat = field.ravel()
    base = exit_id.astype(np.int64) * stride
    remaining = flat[base[:, None] + candidates]
    here = flat[base + cell]
    if speed is not None:
        remaining = remaining / speed[:, None]
        here = here / speed
    # slowness (1 / Weidmann factor) looked up by cell and head count: no exp per candidate
    row, table = slowness_table(grid, flow.gamma, flow.rho_max, SLOWNESS_HEADS)
    heads = np.minimum(counts[candidates], SLOWNESS_HEADS - 1)
    slowness = table[row[candidates] + heads]
    cost = grid.neighbour_m[cell] * slowness / free_speed_mps[:, None] + remaining
    closed = ~(remaining < here[:, None])
    if flow.blocked is not None:
        closed |= flow.blocked[cell]
    cost[closed] = np.inf
    best = np.argmin(cost, axis=1)
    rows = np.arange(cell.size) * width
    chosen = candidates.ravel()[rows + best]
    stuck = ~np.isfinite(cost.ravel()[rows + best])
    return np.where(stuck, cell, chosen).astype(np.int32)


def step(
    grid: CellGrid,
    cell: IntArray,
    target: IntArray,
    exit_id: IntArray,
    origin: FloatArray,
    walked_m: FloatArray,
    leg_m: FloatArray,
    free_speed_mps: FloatArray,
    walking: NDArray[np.bool_],
    gates: Gates,
    now_s: float,
    flow: Flow,
    rng: np.random.Generator,
) -> Moved:
    """Move every walker one step along its way to its exit.

    A person walks a leg from ``origin`` to the centroid of its target cell (legs are graph
    edges, clear of walls) at the Weidmann speed of the density there. Arriving is a move
    into that cell, through the outflow gate of the cell left and the storage gate of the
    cell entered; a person who is refused waits at the end of the leg. Arriving at a cell of
    one's own exit is leaving, through the exit's gate.

    Parameters
    ----------
    grid : the venue's cells
    cell, target, exit_id : (n,) int, current cell, next cell and chosen exit of each person
    origin, walked_m, leg_m : the current leg (see :class:`Moved`)
    free_speed_mps : (n,) float, free walking speed
    walking : (n,) bool, False for people not yet released (they stand still)
    gates : the outflow credit of cells and exits, updated in place
    now_s : the time at the start of the step, seconds
    flow : step parameters
    rng : the run's generator (gate lotteries)
    """
    n_cells = grid.n_cells
    dt = flow.dt_s
    exit_rate = flow.exit_rate_pps * dt
    exit_credit = gates.exit_credit
    exit_credit[:] = np.where(
        exit_rate > 0, np.minimum(exit_credit + exit_rate, np.maximum(exit_rate, 1.0)), 0.0
    )
    counts = cell_counts(cell, n_cells)
    ahead = density_ahead(grid, counts, target, exit_id)
    speed = weidmann_speed(ahead, free_speed_mps, flow.gamma, flow.rho_max)
    speed[~walking] = 0.0
    walked = walked_m + speed * flow.dt_s
    # people standing in their exit's cells (placed there) leave as well
    at_exit = grid.exit_of_cell[cell] == exit_id
    arrived = (walked >= leg_m) & walking & ((target != cell) | at_exit)
    left = np.zeros(cell.size, dtype=bool)
    hop = np.zeros(cell.size, dtype=bool)
    exit_used = np.full(cell.size, -1, dtype=np.int32)

    into_exit = grid.exit_of_cell[target] == exit_id
    who = np.flatnonzero(arrived & into_exit)
    if who.size:
        allowance = np.floor(exit_credit + 1e-9).astype(np.int64)
        passed = who[admit(exit_id[who], allowance, rng.random(who.size))]
        exit_credit -= np.bincount(exit_id[passed], minlength=exit_credit.size)
        left[passed] = True
        exit_used[passed] = exit_id[passed]

    who = np.flatnonzero(arrived & ~into_exit)
    if who.size:
        src = cell[who]
        # outflow gate: the cell lets out specific flow × its open width per second
        sources, member = np.unique(src, return_inverse=True)
        member = member.astype(np.int32)
        credit = gates.cell_credit_at(grid, sources, now_s, flow)
        allowance = np.floor(credit + 1e-9).astype(np.int64)
        out_ok = admit(member, allowance, rng.random(who.size))
        used = np.bincount(member[out_ok], minlength=sources.size)
        gates.cell_credit[sources] = credit - used
        gates.cell_stamp_s[sources] = now_s + dt
        who = who[out_ok]
        # storage gate: the cell entered holds rho_max persons/m² (one person at least);
        # over larger areas the jam density is kept by the speed, which is 0 at rho_max
        targets, member = np.unique(target[who], return_inverse=True)
        cell_room = np.maximum(np.floor(flow.rho_max * grid.storage_area_m2[targets]), 1.0)
        room = cell_room - counts[targets]
        space = np.maximum(room, 0.0).astype(np.int64)
        entered = admit(member.astype(np.int32), space, rng.random(who.size))
        hop[who[entered]] = True
        # two people refused into each other's cells swap places (no gridlock where streams
        # to different exits meet head on)
        refused = who[~entered]
        if refused.size:
            forward = cell[refused].astype(np.int64) * n_cells + target[refused]
            backward = target[refused].astype(np.int64) * n_cells + cell[refused]
            hop[refused[np.isin(forward, backward)]] = True

    new_cell = np.where(hop, target, cell).astype(np.int32)
    new_target = target.copy()
    new_origin = origin.copy()
    new_leg = leg_m.copy()
    if hop.any():
        moved = np.flatnonzero(hop)
        counts_after = cell_counts(new_cell[~left], n_cells)
        ahead_cell = choose_targets(
            grid, new_cell[moved], exit_id[moved], counts_after, free_speed_mps[moved], flow
        )
        new_target[moved] = ahead_cell
        new_origin[moved] = grid.centroid[target[moved]]
        new_leg[moved] = np.hypot(*(grid.centroid[ahead_cell] - new_origin[moved]).T)
    # the rest of the step carries into the next leg; refused walkers wait at the leg's end
    new_walked = np.where(hop, np.minimum(walked - leg_m, new_leg), np.minimum(walked, leg_m))
    return Moved(
        cell=new_cell,
        target=new_target,
        origin=new_origin,
        walked_m=new_walked,
        leg_m=new_leg,
        left=left,
        exit_used=exit_used,
    )


def check_step(cell_m: float, dt_s: float, speed_max_mps: float) -> None:
    """The stability bound: no one may cross more than one cell in a step.

    Raises
    ------
    ValueError
        ``speed_max_mps · dt_s`` exceeds ``cell_m``.
    """
    if not dt_s > 0:
        raise ValueError(f"dt_s(={dt_s}) must be > 0")
    if speed_max_mps * dt_s > cell_m:
        raise ValueError(
            f"dt_s(={dt_s}) too long: the fastest walker ({speed_max_mps:.2f} m/s) would cross "
            f"more than one {cell_m:.2f} m cell per step; use dt_s <= {cell_m / speed_max_mps:.3f}"
        )
