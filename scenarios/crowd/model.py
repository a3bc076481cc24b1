"""The crowd drill as a SimPy model: one integrator, a few actors, a recorder.

SimPy schedules, numpy computes: the ``crowd_flow`` process calls the vectorised kernel each
step for all people at once; actors (``exit_measure``, ``evacuation_order``, ``arrivals``,
``rerouter``) only change exit rates, masks and routes; the :class:`Recorder` samples densities
into arrays. One seeded generator drives every random draw, so a seed fixes the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import shapely
import simpy
from numpy.typing import NDArray

from scenarios.crowd import kernel
from scenarios.crowd.grid import CellGrid, auto_cell_m, cached_grid, travel_time_fields
from scenarios.crowd.record import Recorder
from scenarios.crowd.spec import (
    Arrival,
    CrowdResult,
    CrowdSpec,
    ExitMeasure,
    OneWay,
    Release,
)
from scenarios.crowd.venue import Venue, load_venue

Progress = Callable[[float, str], None]


class CrowdState:
    """People as rows: positions, cells, exits, speeds; plus the exits' state."""

    def __init__(self, venue: Venue, grid: CellGrid, spec: CrowdSpec) -> None:
        self.venue = venue
        self.grid = grid
        self.spec = spec
        self.rng = np.random.default_rng(spec.seed)
        n_exits = len(venue.exits)
        widths = np.maximum(np.array(venue.exit_widths_m()), spec.fd.single_file_m)
        self.capacity_pps = widths * spec.fd.specific_flow_pmps
        self.exit_rate_pps = self.capacity_pps.copy()
        self.exit_open = np.ones(n_exits, dtype=bool)
        self.origin = np.zeros((0, 2))
        self.walked = np.zeros(0)
        self.leg = np.zeros(0)
        self.cell = np.zeros(0, dtype=np.int32)
        self.target = np.zeros(0, dtype=np.int32)
        self.exit_id = np.zeros(0, dtype=np.int32)
        self.speed = np.zeros(0)
        self.walking = np.zeros(0, dtype=bool)
        self.person = np.zeros(0, dtype=np.int64)
        self.exit_time = np.zeros(0)
        self.exit_used = np.zeros(0, dtype=np.int32)
        self.pending_arrivals = 0
        self.gates = kernel.Gates(grid.n_cells, n_exits)
        self.field_s: NDArray[np.float64] | None = None
        self.reachable = np.asarray(np.isfinite(grid.distance_m).any(axis=0), dtype=bool)
        # one-way corridors switched on so far, the edges they forbid and the walking
        # distances that respect them (None while there are none)
        self.one_ways: list[OneWay] = []
        self.blocked: NDArray[np.bool_] | None = None
        self.distance_m: NDArray[np.float64] | None = None
        self.trapped = np.zeros(0, dtype=bool)
        self.pending_actors = 0

    @property
    def people(self) -> int:
        return int(self.person.size)

    def positions(self) -> NDArray[np.float64]:
        """(n, 2) current positions of the people still inside, metres."""
        return kernel.positions(self.grid, self.target, self.origin, self.walked, self.leg)

    def flow(self, dt_s: float) -> kernel.Flow:
        """The kernel's parameters for a step of ``dt_s``."""
        fd = self.spec.fd
        return kernel.Flow(
            gamma=fd.gamma_pm2,
            rho_max=fd.rho_max_pm2,
            specific_flow_pmps=fd.specific_flow_pmps,
            exit_rate_pps=self.exit_rate_pps,
            dt_s=dt_s,
            field_s=self.field_s,
            distance_m=self.distance_m,
            blocked=self.blocked,
        )

    def choose(
        self, exit_id: NDArray[np.int32], everyone: bool | NDArray[np.bool_] = False
    ) -> None:
        """Set new exits; whoever changes exit (or ``everyone``: all, or a mask) starts a new
        leg from where they stand, toward the best next cell now (legs are drawn geometry
        only: moves follow the cell graph).

        While one-way corridors are on, people on an allowed leg finish it and choose again
        on arriving (a new leg from mid-way could run against a corridor). Trapped people
        stand where they are.
        """
        changed = (exit_id != self.exit_id) | everyone
        self.exit_id = exit_id.astype(np.int32)
        if not changed.any():
            return
        who = np.flatnonzero(changed)
        here = self.positions()[who]
        counts = kernel.cell_counts(self.cell, self.grid.n_cells)
        target = kernel.choose_targets(
            self.grid,
            self.cell[who],
            self.exit_id[who],
            counts,
            self.speed[who],
            self.flow(1.0),
        )
        if self.one_ways:
            # while one-way corridors are on, whoever is on an allowed leg finishes it (and
            # re-aims on arriving): a new leg from mid-way could run against a corridor
            old = self.target[who]
            keep = (old != self.cell[who]) & ~self.blocked_move(self.cell[who], old)
            keep &= ~self.against(here, self.grid.centroid[old])
            keep &= ~self.trapped[who]
            who, here, target = who[~keep], here[~keep], target[~keep]
        self.target[who] = target
        self.origin[who] = here
        self.walked[who] = 0.0
        self.leg[who] = np.hypot(*(self.grid.centroid[target] - here).T)
        stand = who[self.trapped[who]]
        self.target[stand] = self.cell[stand]
        self.leg[stand] = 0.0

    def against(self, start: NDArray[np.float64], end: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Which legs ``start -> end`` cross an active one-way corridor without a positive
        component along its bearing."""
        out = np.zeros(len(start), dtype=bool)
        if not len(start):
            return out
        lines = shapely.linestrings(np.stack([start, end], axis=1))
        moving = np.hypot(*(end - start).T) > 1e-9  # a leg already walked to its end
        for one_way in self.one_ways:
            ahead = (end - start) @ np.asarray(one_way.direction) > 1e-9
            out |= moving & ~ahead & shapely.intersects(one_way.area, lines)
        return out

    def blocked_move(self, cell: NDArray[np.int32], target: NDArray[np.int32]) -> NDArray[np.bool_]:
        """Which moves ``cell -> target`` (neighbours or the cell itself) are forbidden."""
        if self.blocked is None:
            return np.zeros(cell.size, dtype=bool)
        slot = self.grid.neighbours[cell] == target[:, None]
        return np.asarray((self.blocked[cell] & slot).any(axis=1), dtype=bool)

    def switch_on(self, one_way: OneWay) -> None:
        """Add a one-way corridor: forbid the edges against it, recompute walking distances
        and who is trapped."""
        self.one_ways.append(one_way)
        grid = self.grid
        blocked = np.zeros((grid.n_cells + 1, grid.neighbours.shape[1]), dtype=bool)
        if self.blocked is not None:
            blocked |= self.blocked
        blocked[:-1] |= blocked_edges(grid, one_way)
        self.blocked = blocked
        every = np.ones(len(self.venue.exits), dtype=bool)
        self.distance_m = travel_time_fields(grid, None, every, ~blocked[:-1])

    def update_trapped(self) -> None:
        """Mark who has no way left to an open exit (to any exit while all are closed)."""
        field = self.field_s if self.field_s is not None else self.distance_m
        if field is None:
            field = self.grid.padded_distance_m
        usable = self.exit_open if self.exit_open.any() else np.ones_like(self.exit_open)
        self.trapped = np.asarray(~np.isfinite(field[usable][:, self.cell]).any(axis=0))

    def add(self, xy: NDArray[np.float64], walking: bool) -> None:
        """Add people at ``xy`` (already checked to lie in reachable cells)."""
        m = len(xy)
        first = self.exit_time.size
        fd = self.spec.fd
        speed = self.rng.normal(fd.free_speed_mps, fd.free_speed_sd_mps, m)
        spread = 2 * fd.free_speed_sd_mps  # a normal truncated at two standard deviations
        speed = np.clip(speed, fd.free_speed_mps - spread, fd.free_speed_mps + spread)
        cell = self.grid.cell_of(xy)
        exit_id = self.nearest_exit(cell)
        counts = kernel.cell_counts(np.concatenate([self.cell, cell]), self.grid.n_cells)
        target = kernel.choose_targets(self.grid, cell, exit_id, counts, speed, self.flow(1.0))
        self.target = np.concatenate([self.target, target]).astype(np.int32)
        self.origin = np.concatenate([self.origin, xy])
        self.walked = np.concatenate([self.walked, np.zeros(m)])
        self.leg = np.concatenate([self.leg, np.hypot(*(self.grid.centroid[target] - xy).T)])
        self.cell = np.concatenate([self.cell, cell]).astype(np.int32)
        self.exit_id = np.concatenate([self.exit_id, exit_id]).astype(np.int32)
        self.speed = np.concatenate([self.speed, speed])
        self.walking = np.concatenate([self.walking, np.full(m, walking)])
        self.person = np.concatenate([self.person, np.arange(first, first + m)])
        self.exit_time = np.concatenate([self.exit_time, np.full(m, np.nan)])
        self.exit_used = np.concatenate([self.exit_used, np.full(m, -1, dtype=np.int32)])
        self.update_trapped()

    def nearest_exit(self, cell: NDArray[np.int32]) -> NDArray[np.int32]:
        """The nearest open exit by walking distance (all exits if every one is closed)."""
        source = self.grid.distance_m if self.distance_m is None else self.distance_m[:, :-1]
        distance = source[:, cell]
        if self.exit_open.any():
            distance = np.where(self.exit_open[:, None], distance, np.inf)
        return np.asarray(np.argmin(distance, axis=0), dtype=np.int32)

    def reroute(self, congestion: bool, everyone: bool = False) -> None:
        """Re-choose exits: the nearest open one, or the quickest under current congestion.

        With ``congestion`` the walking-time field to every open exit is recomputed with
        each cell's Weidmann pace at its present density (one Dijkstra per exit, along the
        edges one-way corridors allow); people then take the exit and the way that is
        quickest now, and spread around crowded corners. ``everyone`` re-aims people who
        keep their exit too (routes changed under them). People left without a way to an
        open exit are marked trapped.
        """
        allowed = None if self.blocked is None else ~self.blocked[:-1]
        # whoever stood trapped re-aims too: a reopened exit may have freed them
        was_trapped = self.trapped.copy()
        if not congestion:
            self.field_s = None
            self.update_trapped()
            if self.people:
                self.choose(self.nearest_exit(self.cell), was_trapped | everyone)
            return
        fd = self.spec.fd
        counts = kernel.cell_counts(self.cell, self.grid.n_cells)
        every_cell = np.arange(self.grid.n_cells, dtype=np.int32)
        density = kernel.window_density(self.grid, counts, every_cell)
        speed = kernel.weidmann_speed(density, fd.free_speed_mps, fd.gamma_pm2, fd.rho_max_pm2)
        pace = 1.0 / np.maximum(speed, 0.05 * fd.free_speed_mps)
        self.field_s = travel_time_fields(self.grid, pace, self.exit_open, allowed)
        self.update_trapped()
        if self.people:
            cost = self.field_s[:, self.cell]
            if np.isfinite(cost).any(axis=0).all() or self.one_ways:
                # everyone re-aims on the new field, so all next steps lead downhill in it
                best = np.argmin(cost, axis=0).astype(np.int32)
                best = np.where(self.trapped, self.exit_id, best).astype(np.int32)
                self.choose(best, everyone=True)

    def advance(self, t: float, dt_s: float) -> None:
        """One kernel step; people who passed their exit leave the arrays."""
        moved = kernel.step(
            self.grid,
            self.cell,
            self.target,
            self.exit_id,
            self.origin,
            self.walked,
            self.leg,
            self.speed,
            self.walking & ~self.trapped,
            self.gates,
            t,
            self.flow(dt_s),
            self.rng,
        )
        self.origin, self.walked, self.leg = moved.origin, moved.walked_m, moved.leg_m
        self.cell, self.target = moved.cell, moved.target
        if not moved.left.any():
            return
        gone = self.person[moved.left]
        self.exit_time[gone] = t + dt_s
        self.exit_used[gone] = moved.exit_used[moved.left]
        stay = ~moved.left
        for name in (
            "origin",
            "walked",
            "leg",
            "cell",
            "target",
            "exit_id",
            "speed",
            "walking",
            "trapped",
        ):
            setattr(self, name, getattr(self, name)[stay])
        self.person = self.person[stay]


def blocked_edges(grid: CellGrid, one_way: OneWay) -> NDArray[np.bool_]:
    """(n, 16) the neighbour-table edges a one-way corridor forbids: those whose segment
    between cell centroids meets its polygon without a positive component along its
    bearing (so no one enters, crosses or leaves it going the wrong way)."""
    n = grid.n_cells
    area = one_way.area
    shapely.prepare(area)
    out = np.zeros(grid.neighbours.shape, dtype=bool)
    # an edge spans at most a knight's move (< 2.5 cells): only cells that near can meet it
    near = np.flatnonzero(shapely.dwithin(area, shapely.points(grid.centroid), 2.5 * grid.cell_m))
    table = grid.neighbours[near]
    rows, slots = np.nonzero(table < n)
    src, dst = near[rows], table[rows, slots]
    step = grid.centroid[dst] - grid.centroid[src]
    against = step @ np.asarray(one_way.direction) <= 1e-9
    src, dst, slots = src[against], dst[against], slots[against]
    lines = shapely.linestrings(np.stack([grid.centroid[src], grid.centroid[dst]], axis=1))
    hit = shapely.intersects(area, lines)
    out[src[hit], slots[hit]] = True
    return out


def place_uniform(
    state: CrowdState, count: int, areas: list[shapely.Geometry] | None = None
) -> NDArray[np.float64]:
    """``count`` points uniform over the reachable walkable area (or over ``areas``).

    Raises
    ------
    ValueError
        More people than the area holds at jam density, or no reachable area to place them.
    """
    grid = state.grid
    eligible = state.reachable & (grid.exit_of_cell < 0)
    region = state.venue.walkable
    if areas:
        region = shapely.union_all(areas).intersection(state.venue.walkable)
        eligible &= shapely.contains_xy(region, grid.centroid[:, 0], grid.centroid[:, 1])
    area = np.where(eligible, grid.area_m2, 0.0)
    if count and area.sum() <= 0:
        raise ValueError("no reachable walkable area to place people in")
    limit = state.spec.fd.rho_max_pm2 * area.sum()
    if count > limit:
        raise ValueError(
            f"agents(={count}) exceed what the area holds at jam density ({int(limit)})"
        )
    shapely.prepare(region)
    out = np.zeros((0, 2))
    weights = area / area.sum() if count else area
    while len(out) < count:
        need = int((count - len(out)) * 1.3) + 16
        chosen = state.rng.choice(grid.n_cells, size=need, p=weights)
        corner = grid.origin + grid.rc[chosen][:, ::-1] * grid.cell_m
        xy = corner + state.rng.random((need, 2)) * grid.cell_m
        ok = (grid.cell_of(xy) == chosen) & shapely.contains_xy(region, xy[:, 0], xy[:, 1])
        out = np.concatenate([out, xy[ok]])
    return out[:count]


def crowd_flow(
    env: simpy.Environment,
    state: CrowdState,
    recorder: Recorder,
    dt_s: float,
    progress: Progress | None,
) -> Generator[simpy.Event, Any, None]:
    """The integrator: step the kernel every ``dt_s`` until everyone is out or time is up."""
    max_time = state.spec.max_time_s
    every = max(1, round(state.spec.record_every_s / dt_s))
    steps = 0
    yield env.timeout(0)  # measures and orders due at time 0 act before the first step
    recorder.sample(env.now, state)
    while env.now < max_time and (
        state.people > int(state.trapped.sum()) or state.pending_arrivals or state.pending_actors
    ):
        if state.people:
            state.advance(env.now, dt_s)
        steps += 1
        yield env.timeout(dt_s)
        if steps % every == 0 or not (state.people or state.pending_arrivals):
            recorder.sample(env.now, state)
            if progress is not None:
                total = max(state.exit_time.size, 1)
                done = int(np.isfinite(state.exit_time).sum())
                progress(done / total, f"t={env.now:.0f} s, {done}/{total} out")
    recorder.steps = steps


def exit_measure(
    env: simpy.Environment, state: CrowdState, measure: ExitMeasure, congestion: bool
) -> Generator[simpy.Event, Any, None]:
    """Close, meter or reopen an exit at its time; walkers re-route when exits open or close."""
    yield env.timeout(measure.at_s)
    state.pending_actors -= 1
    index = measure.exit
    rate = state.capacity_pps[index] if measure.rate_pps is None else measure.rate_pps
    state.exit_rate_pps[index] = rate
    was_open = bool(state.exit_open[index])
    state.exit_open[index] = rate > 0
    if was_open != bool(state.exit_open[index]):
        state.reroute(congestion)


def one_way(
    env: simpy.Environment, state: CrowdState, corridor: OneWay, congestion: bool
) -> Generator[simpy.Event, Any, None]:
    """Switch a one-way corridor on at its time; everyone re-routes on the new graph."""
    yield env.timeout(corridor.at_s)
    state.pending_actors -= 1
    state.switch_on(corridor)
    state.reroute(congestion, everyone=True)


def evacuation_order(
    env: simpy.Environment, state: CrowdState, release: Release
) -> Generator[simpy.Event, Any, None]:
    """Release the people of one spawn area (or everyone) at the order's time."""
    yield env.timeout(release.at_s)
    if release.spawn is None:
        state.walking[:] = True
        return
    area = state.venue.spawns[release.spawn]
    here = state.positions()
    state.walking |= shapely.contains_xy(area, here[:, 0], here[:, 1])


def arrivals(
    env: simpy.Environment, state: CrowdState, arrival: Arrival
) -> Generator[simpy.Event, Any, None]:
    """People enter a spawn area at a steady random rate (already walking)."""
    yield env.timeout(arrival.start_s)
    duration = max(arrival.end_s - arrival.start_s, 1e-9)
    rate = arrival.people / duration
    left = arrival.people
    area = [state.venue.spawns[arrival.spawn]]
    while left > 0:
        batch = min(left, int(state.rng.poisson(rate)))
        if env.now + 1.0 >= arrival.end_s:
            batch = left
        if batch:
            state.add(place_uniform(state, batch, area), walking=True)
            left -= batch
            state.pending_arrivals -= batch
        yield env.timeout(1.0)


def rerouter(
    env: simpy.Environment, state: CrowdState, every_s: float
) -> Generator[simpy.Event, Any, None]:
    """Congestion-aware route choice every ``every_s``."""
    while True:
        yield env.timeout(every_s)
        state.reroute(congestion=True)


def simulate(venue: Venue, spec: CrowdSpec, progress: Progress | None = None) -> CrowdResult:
    """Run a crowd drill on an already loaded venue.

    Raises
    ------
    ValueError
        Bad spec values (unknown exit or spawn index, too many people, unstable step).
    """
    started = time.perf_counter()
    check_spec(venue, spec)
    cell_m = spec.cell_m or auto_cell_m(venue)
    if progress is not None:
        progress(0.0, f"discretising {venue.source} into {cell_m:.2f} m cells")
    grid = cached_grid(venue, cell_m, spec.window_m, spec.zone_m, spec.grid_cache)
    state = CrowdState(venue, grid, spec)
    fd = spec.fd
    v_max = fd.free_speed_mps + 2 * fd.free_speed_sd_mps
    dt_s = spec.dt_s or round(0.95 * cell_m / v_max, 3)
    kernel.check_step(cell_m, dt_s, v_max)
    walking_at_start = not spec.releases
    if spec.positions is not None:
        xy = np.asarray(spec.positions, dtype=np.float64).reshape(-1, 2)
        cell = grid.cell_of(xy)
        bad = np.flatnonzero((cell < 0) | ~state.reachable[np.maximum(cell, 0)])
        if bad.size:
            raise ValueError(f"position {bad[0]} {tuple(xy[bad[0]])} is not in a reachable cell")
    else:
        spawns = venue.spawns if spec.placement == "spawn" else None
        if spec.placement == "spawn" and not spawns:
            raise ValueError(f"placement 'spawn' but {venue.source} has no spawn areas")
        xy = place_uniform(state, spec.agents, spawns)
    state.add(xy, walking=walking_at_start)
    state.pending_arrivals = sum(a.people for a in spec.arrivals)

    env = simpy.Environment()
    recorder = Recorder(grid, spec.alert_levels_pm2, len(venue.exits))
    congestion = spec.reroute_every_s is not None
    for measure in spec.measures:
        env.process(exit_measure(env, state, measure, congestion))
    for corridor in spec.one_ways:
        env.process(one_way(env, state, corridor, congestion))
    state.pending_actors = len(spec.measures) + len(spec.one_ways)
    for release in spec.releases:
        env.process(evacuation_order(env, state, release))
    for arrival in spec.arrivals:
        env.process(arrivals(env, state, arrival))
    if spec.reroute_every_s is not None:
        env.process(rerouter(env, state, spec.reroute_every_s))
    integrator = env.process(crowd_flow(env, state, recorder, dt_s, progress))
    env.run(until=integrator)
    result = recorder.result(state, cell_m, dt_s, time.perf_counter() - started, spec.density_png)
    result.trapped = int(state.trapped.sum())
    return result


def run(spec: CrowdSpec, progress: Progress | None = None) -> CrowdResult:
    """Load the spec's venue and run the drill (the API and CLI entry point).

    Raises
    ------
    cim.errors.SourceError
        The venue file is unreadable or its geometry invalid.
    ValueError
        Bad spec values.
    """
    return simulate(load_venue(spec.venue), spec, progress)


def check_spec(venue: Venue, spec: CrowdSpec) -> None:
    """Check a spec's indices and one-way corridors against its venue.

    Raises
    ------
    ValueError
        An unknown exit or spawn index, a bad rate, a one-way polygon off the walkable area.
    """
    n_exits, n_spawns = len(venue.exits), len(venue.spawns)
    for index, corridor in enumerate(spec.one_ways):
        overlap = shapely.intersection(corridor.area, venue.walkable).area
        if not overlap > 0:
            raise ValueError(
                f"one_way {index}: polygon {corridor.area.wkt[:80]} does not overlap the "
                f"walkable area of {venue.source} (bounds "
                f"{tuple(round(v, 1) for v in venue.walkable.bounds)}; venue coordinates, m)"
            )
    for measure in spec.measures:
        if not 0 <= measure.exit < n_exits:
            raise ValueError(f"exit(={measure.exit}) must be in 0..{n_exits - 1}")
        if measure.rate_pps is not None and not measure.rate_pps >= 0:
            raise ValueError(f"rate_pps(={measure.rate_pps}) must be >= 0")
    for spawn in [r.spawn for r in spec.releases if r.spawn is not None] + [
        a.spawn for a in spec.arrivals
    ]:
        if not 0 <= spawn < n_spawns:
            raise ValueError(f"spawn(={spawn}) must be in 0..{n_spawns - 1} ({venue.source})")
