"""The traffic drill as a SimPy model: SimPy schedules, the numpy kernel computes.

One ``integrator`` process steps :class:`~scenarios.traffic.kernel.LinkTransmission` every
``dt`` and records the per-link state; actors change the kernel's levers at their times:

* ``rerouting`` recomputes shortest paths every re-route interval;
* ``closure`` closes a link, or some of its lanes, for a while (incidents, floods, events);
* ``signal_plan`` turns a node's incoming links green and red by a fixed-time plan.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

from cim.errors import NotFoundError
from scenarios.traffic.grades import congestion_grades, grade_thresholds_mps
from scenarios.traffic.kernel import (
    DONE,
    STRANDED,
    LinkParameters,
    LinkTransmission,
    link_parameters,
    platoon_departures,
)
from scenarios.traffic.result import LinkSeries, Result, TripStats
from scenarios.traffic.routing import shortest_costs
from scenarios.traffic.spec import Closure, IntArray, Metering, SignalPlan, TrafficSpec

Progress = Callable[[float, str], None]
Process = Generator[simpy.Event, Any, None]


def _platoons(spec: TrafficSpec) -> tuple[IntArray, IntArray, IntArray]:
    """Origin, destination and departure step of every platoon, in demand order."""
    index = {name: i for i, name in enumerate(spec.network.node_names)}
    origs, dests, steps = [], [], []
    for window in spec.demand:
        try:
            o, d = index[window.orig], index[window.dest]
        except KeyError as exc:
            raise NotFoundError(f"demand names node {exc.args[0]!r}, not in the network") from None
        departures = platoon_departures(
            window.rate_vps(), window.t_start_s, window.t_end_s, spec.dt_s, spec.deltan
        )
        origs.append(np.full(departures.size, o, dtype=np.int64))
        dests.append(np.full(departures.size, d, dtype=np.int64))
        steps.append(departures)
    if not origs:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(origs), np.concatenate(dests), np.concatenate(steps)


def spec_links(spec: TrafficSpec) -> LinkParameters:
    """The fundamental diagram of every link of ``spec``'s network at its platoon size.

    Raises
    ------
    ValueError
        If a link holds less than one platoon of ``spec.deltan``.
    """
    net = spec.network
    return link_parameters(
        net.link_names,
        net.length_m,
        net.speed_mps,
        net.lanes,
        net.jam_density_vpm,
        net.capacity_out_vps,
        net.capacity_in_vps,
        spec.deltan,
        spec.reaction_time_s,
    )


class TrafficModel:
    """A traffic drill ready to run: the kernel, the SimPy environment and the recorder."""

    def __init__(self, spec: TrafficSpec) -> None:
        self.spec = spec
        net = spec.network
        self.dt = spec.dt_s
        self.tmax = spec.resolved_tmax_s()
        self.n_steps = int(self.tmax / self.dt)
        params = spec_links(spec)
        orig, dest, depart = _platoons(spec)
        keep = (orig != dest) & (depart < self.n_steps)
        self.orig, self.dest, self.depart = orig[keep], dest[keep], depart[keep]
        self.rng = np.random.default_rng(spec.seed)
        self.kernel = LinkTransmission(
            net.n_nodes,
            net.start,
            net.end,
            net.length_m,
            net.speed_mps,
            net.lanes,
            net.merge_priority,
            params,
            self.orig,
            self.dest,
            self.depart,
            self.dt,
            self.rng,
        )
        self.closures = [self._resolve(c) for c in spec.closures]
        self.signals = [self._signal_links(p) for p in spec.signals]
        self.meterings = [(self._index(m.link, "metering"), m) for m in spec.meterings]
        self.env = simpy.Environment()
        every = max(1, round(spec.record_interval_s / self.dt))
        self.record_every = every
        n_rec = self.n_steps // every + 1
        m = net.n_links
        self.times = np.zeros(n_rec)
        self.rec = {name: np.zeros((n_rec, m)) for name in LinkSeries.FIELDS if name != "grade"}
        self.n_rec = 0
        self.last_down = np.zeros(m, dtype=np.int64)
        self.thresholds = grade_thresholds_mps(net.road_class, net.speed_mps)
        self.clear_step: int | None = None

    def _index(self, link: str, what: str) -> int:
        try:
            return self.spec.network.link_index(link)
        except KeyError:
            raise NotFoundError(f"{what} names link {link!r}, not in the network") from None

    def metering(self, link: int, event: Metering) -> Process:
        """Hold ``link``'s outflow to ``event.rate_vps`` for ``event.duration_s``."""
        if event.t_start_s > self.env.now:
            yield self.env.timeout(event.t_start_s - self.env.now)
        self.kernel.set_outflow_limit(link, event.rate_vps * self.dt / self.spec.deltan)
        if event.duration_s is None:
            return
        yield self.env.timeout(event.duration_s)
        self.kernel.set_outflow_limit(link, None)

    def _resolve(self, closure: Closure) -> tuple[int, Closure]:
        try:
            return self.spec.network.link_index(closure.link), closure
        except KeyError:
            raise NotFoundError(
                f"closure names link {closure.link!r}, not in the network"
            ) from None

    def _signal_links(
        self, plan: SignalPlan
    ) -> tuple[SignalPlan, list[tuple[int, tuple[int, ...]]]]:
        net = self.spec.network
        if plan.node not in net.node_names:
            raise NotFoundError(f"signal plan names node {plan.node!r}, not in the network")
        links = []
        for key, phases in plan.green.items():
            try:
                links.append((net.link_index(key), phases))
            except KeyError:
                raise NotFoundError(f"signal at {plan.node!r} names link {key!r}") from None
        return plan, links

    # -- processes --------------------------------------------------------------------------

    def integrator(self, progress: Progress | None) -> Process:
        """Step the kernel every ``dt`` and sample the links every record interval."""
        kernel = self.kernel
        report_every = max(1, self.n_steps // 50)
        last_departure = int(self.depart.max(initial=0))
        self._record(0)
        for s in range(self.n_steps):
            kernel.step(s)
            if (s + 1) % self.record_every == 0:
                self._record(s + 1)
            if self.clear_step is None and s >= last_departure and kernel.finished():
                self.clear_step = s
            if progress is not None and s % report_every == 0:
                progress(s / self.n_steps, f"t = {s * self.dt:.0f} s")
            yield self.env.timeout(self.dt)

    def rerouting(self) -> Process:
        """Recompute routes on current travel times every re-route interval."""
        while True:
            yield self.env.timeout(self.spec.reroute_interval_s)
            self.reroute()

    def reroute(self, weight: float | None = None) -> None:
        """Recompute routes now (also done by the rerouting actor and on closures).

        ``weight`` is the share of the new shortest paths in the route preferences (default:
        the spec's ``route_weight``; closures announce themselves and use 1).
        """
        share = self.spec.route_weight if weight is None else weight
        self.kernel.reroute(self.env.now, share, self.spec.route_noise)

    def closure(self, link: int, event: Closure) -> Process:
        """Close ``event.lanes`` lanes (all when ``None``) of ``link`` for ``event.duration_s``."""
        if event.t_start_s > self.env.now:
            yield self.env.timeout(event.t_start_s - self.env.now)
        lanes = float(self.spec.network.lanes[link])
        closed = lanes if event.lanes is None else min(float(event.lanes), lanes)
        self.kernel.set_open_lanes(link, self.kernel.lanes_open[link] - closed)
        if self.spec.reroute_on_closure:
            self.reroute(weight=1.0)
        if event.duration_s is None:
            return
        yield self.env.timeout(event.duration_s)
        self.kernel.set_open_lanes(link, min(self.kernel.lanes_open[link] + closed, lanes))
        if self.spec.reroute_on_closure:
            self.reroute(weight=1.0)

    def signal_plan(self, plan: SignalPlan, links: list[tuple[int, tuple[int, ...]]]) -> Process:
        """Cycle through the plan's phases, turning each listed link green in its phases."""
        cycle = sum(plan.phases_s)
        t0 = -(plan.offset_s % cycle)
        phase = 0
        while True:
            for link, phases in links:
                self.kernel.set_green(np.asarray([link]), phase in phases)
            t0 += plan.phases_s[phase]
            wait = t0 - self.env.now
            if wait > 0:
                yield self.env.timeout(wait)
            phase = (phase + 1) % len(plan.phases_s)

    def _record(self, s: int) -> None:
        kernel, deltan = self.kernel, self.spec.deltan
        t = s * self.dt
        i = self.n_rec
        net = self.spec.network
        self.times[i] = t
        vehicles = kernel.on_links() * deltan
        self.rec["vehicles"][i] = vehicles
        self.rec["queue_veh"][i] = kernel.queued(t) * deltan
        interval = self.record_every * self.dt
        self.rec["flow_vps"][i] = (kernel.n_down - self.last_down) * deltan / interval if i else 0
        self.last_down = kernel.n_down.copy()
        self.rec["density_vpm"][i] = vehicles / net.length_m
        tt = kernel.travel_times(t)
        tt = np.where(np.isfinite(tt), tt, kernel.free_time)
        self.rec["speed_mps"][i] = net.length_m / tt
        self.n_rec += 1

    # -- the run ----------------------------------------------------------------------------

    def run(self, progress: Progress | None = None) -> Result:
        """Simulate to ``tmax`` and gather the result."""
        t0 = time.perf_counter()
        self.reroute()
        # actors first, so that what they do at time t applies to the step at t
        for link, event in self.closures:
            self.env.process(self.closure(link, event))
        for plan, links in self.signals:
            self.env.process(self.signal_plan(plan, links))
        for link, metering in self.meterings:
            self.env.process(self.metering(link, metering))
        self.env.process(self.rerouting())
        self.env.process(self.integrator(progress))
        self.env.run(until=self.tmax)
        result = self._result()
        result.wall_s = time.perf_counter() - t0
        if progress is not None:
            progress(1.0, "done")
        return result

    def _result(self) -> Result:
        kernel, net, deltan = self.kernel, self.spec.network, self.spec.deltan
        done = kernel.state == DONE
        travel = kernel.arrive_t[done] - self.depart[done] * self.dt
        free = shortest_costs(
            net.n_nodes, net.start, net.end, kernel.free_time, np.arange(net.n_nodes)
        )
        delay = travel - free[self.orig[done], self.dest[done]]
        completed = int(done.sum())
        stranded = kernel.state == STRANDED
        at_nodes = np.bincount(kernel.stranded_node[stranded], minlength=net.n_nodes)
        trips = TripStats(
            vehicles=int(self.orig.size * deltan),
            completed_trips=completed * deltan,
            total_travel_time_s=float(travel.sum() * deltan),
            average_travel_time_s=float(travel.mean()) if completed else 0.0,
            total_delay_s=float(delay.sum() * deltan),
            average_delay_s=float(delay.mean()) if completed else 0.0,
            stranded_vehicles=int(stranded.sum() * deltan),
            unfinished_vehicles=int((~done & ~stranded).sum() * deltan),
        )
        n = self.n_rec
        speed = self.rec["speed_mps"][:n]
        series = LinkSeries(
            times_s=self.times[:n].copy(),
            vehicles=self.rec["vehicles"][:n],
            queue_veh=self.rec["queue_veh"][:n],
            flow_vps=self.rec["flow_vps"][:n],
            density_vpm=self.rec["density_vpm"][:n],
            speed_mps=speed,
            grade=congestion_grades(speed, self.thresholds),
        )
        clear = None
        if self.clear_step is not None:
            clear = float(np.nanmax(kernel.arrive_t, initial=0.0))
        return Result(
            trips=trips,
            link_names=list(net.link_names),
            link_codes=list(net.link_codes),
            series=series,
            stranded_at={net.node_names[i]: int(c) * deltan for i, c in enumerate(at_nodes) if c},
            closures=[c.to_dict() for _, c in self.closures],
            clear_time_s=clear,
        )


def run(spec: TrafficSpec, progress: Progress | None = None) -> Result:
    """Run one traffic drill.

    Parameters
    ----------
    spec : network, demand, closures, signals and settings
    progress : called with (fraction 0..1, message) as the run goes

    Returns
    -------
    Result

    Raises
    ------
    NotFoundError
        Demand, a closure or a signal plan names a node or link the network lacks.
    StabilityError
        A link is too short to hold one platoon.
    """
    return TrafficModel(spec).run(progress)
