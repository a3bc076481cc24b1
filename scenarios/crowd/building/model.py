"""The zone-network evacuation of one building: SimPy schedules, numpy computes.

People are array rows. Each stands in a node (space or stair), walks a straight line to the
link (door, opening, stair end) of its route at the speed its node's density allows
(Weidmann on floors, SFPE ``k(1 − aD)`` along a stair's slope), then queues there. Every step
a link lets through at most ``specific flow × effective width × dt`` people (a credit that
refills at that rate, as in a cell transmission model) in the order they reached it, and a
node takes no one beyond its jam density. Routes: the quickest free-flow way out from where
one stands (Dijkstra on links), recomputed when a measure closes a door or stair.
SimPy runs the integrator and the measures (closures, staged release per storey) as actors.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import shapely
import simpy
from numpy.typing import NDArray

from scenarios.crowd import kernel
from scenarios.crowd.building.graph import (
    EXIT,
    OPENING,
    SPACE,
    STAIR,
    STAIR_END,
    BuildingGraph,
)
from scenarios.crowd.building.spec import BuildingFlow, Closure, EvacuationSpec, StoreyRelease

Progress = Callable[[float, str], None]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Persons per m² when the request names no load.
DEFAULT_LOAD_PM2 = 0.2
_OUT = "out"


class Network:
    """Per-node and per-link arrays of a walk graph, and its routes."""

    def __init__(self, graph: BuildingGraph, flow: BuildingFlow) -> None:
        self.graph = graph
        self.flow = flow
        nodes, links = graph.nodes, graph.links
        self.n_nodes, self.n_links = len(nodes), len(links)
        self.area = np.array([n.area_m2 for n in nodes])
        self.is_stair = np.array([n.kind == STAIR for n in nodes])
        self.k_stair = np.zeros(self.n_nodes)
        stair_fsm = np.zeros(self.n_nodes)
        for i, n in enumerate(nodes):
            if n.kind == STAIR:
                self.k_stair[i], stair_fsm[i] = flow.stair_row(n.riser_m, n.tread_m)
        self.jam = np.where(self.is_stair, 1.0 / flow.stair_a, flow.fd.rho_max_pm2)
        self.free_speed = np.where(
            self.is_stair,
            self.k_stair * (1 - flow.stair_a * flow.stair_free_density_pm2),
            flow.fd.free_speed_mps,
        )
        self.a = np.array([link.a for link in links], dtype=np.int64)
        self.b = np.array([link.b for link in links], dtype=np.int64)
        self.point = np.array([link.point for link in links], dtype=np.float64).reshape(-1, 2)
        self.exit = np.array([link.exit for link in links], dtype=bool)
        capacity = np.zeros(self.n_links)
        for i, link in enumerate(links):
            if link.kind == STAIR_END:
                layer, fsm = flow.stair_boundary_m, stair_fsm[link.b]
            elif link.kind == OPENING:
                layer, fsm = flow.opening_boundary_m, flow.door_flow_pmps
            else:
                layer, fsm = flow.door_boundary_m, flow.door_flow_pmps
            capacity[i] = fsm * max(link.width_m - 2 * layer, flow.min_effective_m)
        self.capacity_pps = capacity
        self.node_links = graph.node_links
        #: closed_into[l, 0]: nobody enters node a through link l; [l, 1]: node b
        self.closed_into = np.zeros((self.n_links, 2), dtype=bool)
        self.reroute()

    def other(self, link: int, node: int) -> int:
        """The node on the far side of ``link`` from ``node`` (-1: outside)."""
        return int(self.b[link] if self.a[link] == node else self.a[link])

    def enterable(self, link: int, node: int) -> bool:
        """Whether one may cross ``link`` leaving ``node``."""
        return not bool(self.closed_into[link, 1 if self.a[link] == node else 0])

    def inner(self, node: int, p: FloatArray, link: int) -> float:
        """Walk distance inside ``node`` from point ``p`` to ``link``, m."""
        if self.is_stair[node]:
            return float(self.graph.nodes[node].slope_m)
        return float(np.hypot(*(self.point[link] - p)))

    def reroute(self) -> None:
        """Free-flow time and distance to the outside from each (link, node entered)."""
        g = nx.DiGraph()
        for node, members in enumerate(self.node_links):
            for l_in in members:
                for l_out in members:
                    if l_out == l_in or not self.enterable(l_out, node):
                        continue
                    far = self.other(l_out, node)
                    target = _OUT if far < 0 else (l_out, far)
                    metres = self.inner(node, self.point[l_in], l_out)
                    g.add_edge((l_in, node), target, t=metres / self.free_speed[node], m=metres)
        self.time_from: dict[Any, float] = {}
        self.metres_from: dict[Any, float] = {}
        if _OUT in g:
            reverse = g.reverse(copy=False)
            self.time_from = dict(nx.single_source_dijkstra_path_length(reverse, _OUT, weight="t"))
            self.metres_from = dict(
                nx.single_source_dijkstra_path_length(reverse, _OUT, weight="m")
            )
        self.next_hop: dict[tuple[int, int], tuple[int, float]] = {}
        for node, members in enumerate(self.node_links):
            for l_in in members:
                best = self.choose(node, self.point[l_in], exclude=l_in)
                if best is not None:
                    self.next_hop[(l_in, node)] = best

    def cost_after(self, link: int, node: int) -> float:
        """Free-flow time from the far side of ``link`` (crossed from ``node``) to outside."""
        far = self.other(link, node)
        return 0.0 if far < 0 else self.time_from.get((link, far), math.inf)

    def metres_after(self, link: int, node: int) -> float:
        far = self.other(link, node)
        return 0.0 if far < 0 else self.metres_from.get((link, far), math.inf)

    def choose(self, node: int, p: FloatArray, exclude: int = -1) -> tuple[int, float] | None:
        """The quickest link out of ``node`` from point ``p``, and the walk to it, m."""
        best: tuple[float, int, float] | None = None
        for link in self.node_links[node]:
            if link == exclude or not self.enterable(link, node):
                continue
            metres = self.inner(node, p, link)
            cost = metres / self.free_speed[node] + self.cost_after(link, node)
            if math.isfinite(cost) and (best is None or cost < best[0]):
                best = (cost, link, metres)
        return None if best is None else (best[1], best[2])


@dataclass
class Crowd:
    """The people of one drill, as arrays."""

    node: IntArray
    start_node: IntArray
    xy: FloatArray
    remaining: FloatArray
    target: IntArray  # link each walks to (-1: no way out)
    queued: NDArray[np.bool_]
    since: FloatArray
    released: NDArray[np.bool_]
    out_time: FloatArray
    left_storey: FloatArray
    walk_m: FloatArray  # free-flow route length at the start, m
    walk_s: FloatArray  # free-flow route time at the start, s


class EvacuationState:
    """Network, people and the figures recorded while the drill runs."""

    def __init__(self, net: Network, crowd: Crowd, spec: EvacuationSpec) -> None:
        self.net, self.crowd, self.spec = net, crowd, spec
        n = len(crowd.node)
        self.key = np.arange(n, dtype=np.float64) * 1e-9
        self.credit = np.ones(net.n_links)
        self.passed = np.zeros(net.n_links, dtype=np.int64)
        self.peak_queue = np.zeros(net.n_links, dtype=np.int64)
        self.queue_person_s = np.zeros(net.n_links)
        self.max_density = np.zeros(net.n_nodes)
        self.steps = 0
        self.peak_people = np.zeros(net.n_nodes, dtype=np.int64)
        storeys = [node.storey for node in net.graph.nodes]
        self.storey_of_node = np.array(storeys, dtype=object)

    @property
    def inside(self) -> NDArray[np.bool_]:
        return np.asarray(~np.isfinite(self.crowd.out_time))

    def moving(self) -> bool:
        """Whether anyone inside can still get out."""
        c = self.crowd
        return bool((self.inside & (c.target >= 0)).any())

    def step(self, now: float, dt: float) -> None:
        """Advance everyone by ``dt``: walk, queue, pass the gates."""
        net, c, flow = self.net, self.crowd, self.net.flow
        inside = self.inside
        counts = np.bincount(c.node[inside], minlength=net.n_nodes)
        density = counts / net.area
        self.max_density = np.maximum(self.max_density, density)
        self.peak_people = np.maximum(self.peak_people, counts)
        speed = np.where(
            net.is_stair,
            net.k_stair * (1 - flow.stair_a * np.maximum(density, flow.stair_free_density_pm2)),
            kernel.weidmann_speed(
                density, flow.fd.free_speed_mps, flow.fd.gamma_pm2, flow.fd.rho_max_pm2
            ),
        )
        speed = np.maximum(speed, flow.creep_mps)
        walking = inside & c.released & ~c.queued & (c.target >= 0)
        c.remaining[walking] -= speed[c.node[walking]] * dt
        arrived = walking & (c.remaining <= 0)
        c.queued[arrived] = True
        c.since[arrived] = now
        waiting = np.flatnonzero(inside & c.queued)
        queue = np.bincount(c.target[waiting], minlength=net.n_links)
        self.peak_queue = np.maximum(self.peak_queue, queue)
        self.queue_person_s += queue * dt
        # a gate's credit refills at its capacity; one step's worth plus one person at most,
        # so an idle door lets the first one through at once and a wide one keeps its rate
        self.credit = np.minimum(self.credit + net.capacity_pps * dt, net.capacity_pps * dt + 1)
        if waiting.size == 0:
            return
        link = c.target[waiting]
        here = c.node[waiting]
        far = np.where(net.a[link] == here, net.b[link], net.a[link])
        side = (net.a[link] == here).astype(np.int64)  # 0: entering a, 1: entering b
        open_ = ~net.closed_into[link, side]
        allowance = np.floor(self.credit + 1e-9).astype(np.int64)
        key = c.since[waiting] + self.key[waiting]
        gate = kernel.admit(link, allowance, key) & open_
        room = np.floor(net.jam * net.area + 1e-9).astype(np.int64) - counts
        dest = np.where(far < 0, net.n_nodes, far)
        room_all = np.append(np.maximum(room, 0), waiting.size)
        candidates = np.flatnonzero(gate)
        passed = np.zeros(waiting.size, dtype=bool)
        passed[candidates] = kernel.admit(dest[candidates], room_all, key[candidates])
        if not passed.any():
            return
        who = waiting[passed]
        np.subtract.at(self.credit, link[passed], 1.0)
        np.add.at(self.passed, link[passed], 1)
        t = now + dt
        storeys = self.storey_of_node
        for person, through, into in zip(who, link[passed], far[passed], strict=True):
            c.queued[person] = False
            start = storeys[c.start_node[person]]
            if into < 0:
                c.out_time[person] = t
                if not math.isfinite(c.left_storey[person]):
                    c.left_storey[person] = t
                continue
            if storeys[into] != start and not math.isfinite(c.left_storey[person]):
                c.left_storey[person] = t
            c.node[person] = into
            c.xy[person] = net.point[through]
            hop = net.next_hop.get((int(through), int(into)))
            c.target[person], c.remaining[person] = (-1, 0.0) if hop is None else hop

    def reroute(self) -> None:
        """After a closure: new routes, and everyone heading for a closed way turns."""
        net, c = self.net, self.crowd
        net.reroute()
        for person in np.flatnonzero(self.inside):
            link = int(c.target[person])
            node = int(c.node[person])
            if link >= 0 and net.enterable(link, node):
                continue
            choice = net.choose(node, c.xy[person])
            c.queued[person] = False
            c.target[person], c.remaining[person] = (-1, 0.0) if choice is None else choice


def _integrator(
    env: simpy.Environment, state: EvacuationState, dt: float, progress: Progress | None
) -> Generator[simpy.Event, Any, None]:
    yield env.timeout(0)  # closures and releases due at 0 act first
    total = max(len(state.crowd.node), 1)
    steps = 0
    while env.now < state.spec.max_time_s and state.moving():
        state.step(env.now, dt)
        steps += 1
        yield env.timeout(dt)
        if progress is not None and steps % 50 == 0:
            out = int(np.isfinite(state.crowd.out_time).sum())
            progress(min(out / total, 0.99), f"t={env.now:.0f} s, {out}/{total} out")
    state.steps = steps


def _closure(
    env: simpy.Environment, state: EvacuationState, links: list[int], at: float
) -> Generator[simpy.Event, Any, None]:
    yield env.timeout(at)
    net = state.net
    for link in links:
        if net.exit[link]:
            net.closed_into[link, 1] = True
        elif net.graph.links[link].kind == STAIR_END:
            net.closed_into[link, 1] = True  # nobody steps onto the stair; who is on it leaves
        else:
            net.closed_into[link, :] = True
    state.reroute()


def _release(
    env: simpy.Environment, state: EvacuationState, nodes: NDArray[np.bool_], at: float
) -> Generator[simpy.Event, Any, None]:
    yield env.timeout(at)
    c = state.crowd
    c.released |= nodes[c.start_node]


def occupant_counts(graph: BuildingGraph, spec: EvacuationSpec) -> list[int]:
    """Occupants per node of ``graph`` (0 for doors, stairs and unreachable spaces).

    Raises
    ------
    ValueError
        If ``loads`` names a code that is not a space of the building.
    """
    spaces = {n.code for n in graph.nodes if n.kind == SPACE}
    unknown = sorted(set(spec.loads) - spaces)
    if unknown:
        raise ValueError(
            f"loads name {', '.join(unknown)}, which are not spaces of building {spec.building}"
        )
    isolated = set(graph.isolated)
    counts = []
    for n in graph.nodes:
        if n.kind != SPACE:
            counts.append(0)
        elif spec.loads:
            counts.append(int(spec.loads.get(n.code, 0)))
        elif n.code in isolated:
            counts.append(0)  # no door reaches it: not an occupied room (roof space, shaft)
        elif spec.per_space is not None:
            counts.append(spec.per_space)
        else:
            load = DEFAULT_LOAD_PM2 if spec.load_pm2 is None else spec.load_pm2
            counts.append(round(load * n.area_m2))
    return counts


def _place(graph: BuildingGraph, counts: list[int], seed: int) -> tuple[IntArray, FloatArray]:
    """Start points: uniform in each space's footprint (seeded, so drills repeat)."""
    rng = np.random.default_rng(seed)
    nodes, points = [], []
    for i, (node, count) in enumerate(zip(graph.nodes, counts, strict=True)):
        if count == 0:
            continue
        shape = node.footprint
        minx, miny, maxx, maxy = shape.bounds
        found = np.zeros((0, 2))
        while len(found) < count:
            xy = rng.uniform((minx, miny), (maxx, maxy), size=(4 * count + 16, 2))
            found = np.concatenate([found, xy[shapely.contains_xy(shape, xy[:, 0], xy[:, 1])]])
        points.append(found[:count])
        nodes += [i] * count
    xy = np.concatenate(points) if points else np.zeros((0, 2))
    return np.asarray(nodes, dtype=np.int64), xy


def resolve_measures(
    graph: BuildingGraph, spec: EvacuationSpec
) -> tuple[list[tuple[list[int], Closure]], list[tuple[NDArray[np.bool_], StoreyRelease]]]:
    """Link indices of each closure and node masks of each staged storey.

    Raises
    ------
    ValueError
        If a code is not a door or stair of the building, or a storey not one of its storeys.
    """
    closures = []
    for closure in spec.closures:
        links = [
            i
            for i, link in enumerate(graph.links)
            if link.kind != OPENING and link.code.split("@")[0] == closure.code
        ]
        if not links:
            doors = sorted(
                {link.code.split("@")[0] for link in graph.links if link.kind != OPENING}
            )
            raise ValueError(
                f"close {closure.code!r}: not a door or stair of building {spec.building} "
                f"(known: {', '.join(doors)})"
            )
        closures.append((links, closure))
    stages = []
    for stage in spec.stages:
        if stage.storey not in graph.storeys:
            raise ValueError(
                f"stage {stage.storey!r}: not a storey of building {spec.building} "
                f"(storeys: {', '.join(sorted(graph.storeys))})"
            )
        mask = np.array([n.storey == stage.storey and n.kind == SPACE for n in graph.nodes])
        stages.append((mask, stage))
    return closures, stages


def simulate(
    graph: BuildingGraph, spec: EvacuationSpec, progress: Progress | None = None
) -> dict[str, Any]:
    """Run the drill on a built walk graph; the result as JSON-ready dict.

    Raises
    ------
    ValueError
        Bad measure codes or loads.
    """
    started = time.perf_counter()
    closures, stages = resolve_measures(graph, spec)
    net = Network(graph, spec.flow)
    counts = occupant_counts(graph, spec)
    node, xy = _place(graph, counts, spec.seed)
    n = len(node)
    crowd = Crowd(
        node=node.copy(),
        start_node=node,
        xy=xy,
        remaining=np.zeros(n),
        target=np.full(n, -1, dtype=np.int64),
        queued=np.zeros(n, dtype=bool),
        since=np.zeros(n),
        released=np.ones(n, dtype=bool),
        out_time=np.full(n, math.inf),
        left_storey=np.full(n, math.inf),
        walk_m=np.full(n, math.inf),
        walk_s=np.full(n, math.inf),
    )
    for p in range(n):
        choice = net.choose(int(node[p]), xy[p])
        if choice is not None:
            crowd.target[p], crowd.remaining[p] = choice
            link = choice[0]
            crowd.walk_m[p] = choice[1] + net.metres_after(link, int(node[p]))
            crowd.walk_s[p] = choice[1] / net.free_speed[node[p]] + net.cost_after(
                link, int(node[p])
            )
    staged = np.zeros(graph.nodes.__len__(), dtype=bool)
    for mask, _ in stages:
        staged |= mask
    crowd.released = ~staged[node]
    state = EvacuationState(net, crowd, spec)
    env = simpy.Environment()
    for links, closure in closures:
        env.process(_closure(env, state, links, closure.at_s))
    for mask, stage in stages:
        env.process(_release(env, state, mask, stage.at_s))
    if progress is not None:
        progress(0.0, f"{n} occupants in {sum(c > 0 for c in counts)} spaces")
    env.run(until=env.process(_integrator(env, state, spec.dt_s, progress)))
    if progress is not None:
        progress(1.0, "done")
    return _result(state, counts, time.perf_counter() - started)


def _seconds(value: float) -> float | None:
    return round(float(value), 2) if math.isfinite(value) else None


def _result(state: EvacuationState, counts: list[int], wall_s: float) -> dict[str, Any]:
    net, c, graph, spec = state.net, state.crowd, state.net.graph, state.spec
    n = len(c.node)
    out = np.isfinite(c.out_time)
    times = np.sort(c.out_time[out])
    if n == 0:
        t100 = t90 = 0.0
    else:
        t100 = float(times[-1]) if out.all() else math.inf
        need = math.ceil(0.9 * n)
        t90 = float(times[need - 1]) if out.sum() >= need else math.inf
    storeys = []
    for code, info in sorted(graph.storeys.items(), key=lambda kv: kv[1]["elevation"]):
        mine = np.array([graph.nodes[i].storey == code for i in c.start_node], dtype=bool)
        if not mine.any():
            continue
        storeys.append(
            {
                "code": code,
                "name": info["name"],
                "people": int(mine.sum()),
                "clear_s": _seconds(c.left_storey[mine].max()),
                "out_s": _seconds(c.out_time[mine].max()),
                "trapped": int((~out & mine).sum()),
            }
        )
    links: list[dict[str, Any]] = []
    for i, link in enumerate(graph.links):
        links.append(
            {
                "code": link.code,
                "kind": EXIT if link.exit else link.kind,
                "global_id": link.global_id,
                "between": [
                    graph.nodes[link.a].code,
                    graph.nodes[link.b].code if link.b >= 0 else "outside",
                ],
                "width_m": round(link.width_m, 3),
                "capacity_pps": round(float(net.capacity_pps[i]), 3),
                "passed": int(state.passed[i]),
                "peak_queue": int(state.peak_queue[i]),
                "queue_person_s": round(float(state.queue_person_s[i]), 1),
            }
        )
    bottlenecks = sorted(
        (x for x in links if x["queue_person_s"] > 0 and x["kind"] != OPENING),
        key=lambda x: (-x["queue_person_s"], x["code"]),
    )
    density = {
        node.code: round(float(state.max_density[i]), 3) for i, node in enumerate(graph.nodes)
    }
    trapped: dict[str, int] = {}
    for i in c.start_node[~out]:
        trapped[graph.nodes[i].code] = trapped.get(graph.nodes[i].code, 0) + 1
    walk = c.walk_m[np.isfinite(c.walk_m)]
    walk_s = c.walk_s[np.isfinite(c.walk_s)]
    summary = {
        "building": graph.building,
        "people": n,
        "out": int(out.sum()),
        "everyone_out": bool(n == 0 or out.all()),
        "t100_s": _seconds(t100),
        "t90_s": _seconds(t90),
        "longest_walk_m": round(float(walk.max()), 2) if walk.size else 0.0,
        "longest_free_walk_s": round(float(walk_s.max()), 2) if walk_s.size else 0.0,
        "bottlenecks": [
            {k: b[k] for k in ("code", "kind", "global_id", "peak_queue", "queue_person_s")}
            for b in bottlenecks[:5]
        ],
        "max_density_pm2": round(float(state.max_density.max()), 3) if net.n_nodes else 0.0,
        "wall_s": round(wall_s, 3),
    }
    return {
        "summary": summary,
        "graph": graph.summary(),
        "storeys": storeys,
        "links": links,
        "bottlenecks": bottlenecks,
        "max_density_pm2": density,
        "occupants": {graph.nodes[i].code: k for i, k in enumerate(counts) if k},
        "trapped": trapped,
        "measures": {
            "closures": [{"code": m.code, "at_s": m.at_s} for m in spec.closures],
            "stages": [{"storey": m.storey, "at_s": m.at_s} for m in spec.stages],
        },
        "parameters": {
            "dt_s": spec.dt_s,
            "seed": spec.seed,
            "steps": state.steps,
            "source": spec.flow.source,
        },
    }
