"""Link transmission kernel: Newell's simplified kinematic wave on every link, pure numpy.

Each link has a triangular fundamental diagram (free speed ``u``, backward wave speed ``w``,
jam density ``kappa``) and cumulative counts at both ends. Vehicles move as platoons of
``deltan`` vehicles, one row each. In a step of ``dt = deltan * reaction_time``:

* a platoon may leave a link once its free-flow time ``length / u`` has passed (sending flow),
  limited by the link's outflow capacity and a green signal;
* a link accepts a platoon while ``N_up(t) + 1 <= N_down(t - length / w) + kappa * length``
  (receiving flow: space frees at the upstream end ``length / w`` after it frees downstream,
  so queues spill back across junctions) and while its inflow capacity lasts;
* links are first-in first-out, so a blocked head platoon holds the ones behind it (diverge);
* where several links feed one, each accepted platoon is drawn in proportion to the feeding
  links' ``merge_priority`` (merge);
* waiting platoons at an origin enter in departure order.

Work per step is a few array operations over the links that can move, repeated in rounds
until no platoon moves; there is no Python loop over links or vehicles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scenarios.traffic.routing import next_hops, update_preferences
from scenarios.traffic.spec import FloatArray, IntArray

#: platoon states
HOME, WAITING, RUNNING, DONE, STRANDED = 0, 1, 2, 3, 4
MAX_ROUNDS = 64

BoolArray = npt.NDArray[np.bool_]


class StabilityError(ValueError):
    """A link cannot hold one platoon, so the kernel could never move traffic through it."""


@dataclass
class LinkParameters:
    """Per-link constants derived from the network, in platoons and steps.

    Attributes
    ----------
    w_mps : (m,) float, backward wave speed
    capacity_vps : (m,) float, flow capacity of the fundamental diagram (all lanes)
    rate_out, rate_in : (m,) float, platoons a step may leave / enter
    storage : (m,) float, platoons the link holds at jam density
    lag_steps : (m,) int, backward wave travel time, steps
    """

    w_mps: FloatArray
    capacity_vps: FloatArray
    rate_out: FloatArray
    rate_in: FloatArray
    storage: FloatArray
    lag_steps: IntArray


def link_parameters(
    names: list[str],
    length_m: FloatArray,
    speed_mps: FloatArray,
    lanes: IntArray,
    jam_density_vpm: FloatArray,
    capacity_out_vps: FloatArray,
    capacity_in_vps: FloatArray,
    deltan: int,
    reaction_time_s: float,
) -> LinkParameters:
    """Triangular fundamental diagram of every link, as UXsim defines it.

    Headway ``reaction_time / lanes`` and spacing ``1 / kappa`` give ``w = lanes / (tau kappa)``
    and capacity ``u w kappa / (u + w)``; ``capacity_out``/``capacity_in`` cap it when lower.

    Raises
    ------
    StabilityError
        A link's jam storage is under one platoon (``kappa * length < deltan``).
    """
    dt = deltan * reaction_time_s
    w = lanes / (reaction_time_s * jam_density_vpm)
    capacity = speed_mps * w * jam_density_vpm / (speed_mps + w)
    out = np.fmin(capacity, capacity_out_vps)
    inflow = np.fmin(capacity, capacity_in_vps)
    storage = jam_density_vpm * length_m / deltan
    short = np.flatnonzero(storage < 1.0)
    if short.size:
        i = int(short[0])
        raise StabilityError(
            f"link {names[i]!r} holds {storage[i] * deltan:.1f} vehicles at jam density, less "
            f"than one platoon of {deltan}; lengthen or merge short links, or lower deltan "
            f"({short.size} such links)"
        )
    return LinkParameters(
        w_mps=w,
        capacity_vps=capacity,
        rate_out=out * dt / deltan,
        rate_in=inflow * dt / deltan,
        storage=storage,
        lag_steps=np.rint(length_m / w / dt).astype(np.int64),
    )


class LinkTransmission:
    """State and step of the link transmission model for one run.

    Parameters
    ----------
    n_nodes : number of nodes
    start, end : (m,) int, link end nodes
    length_m, speed_mps : (m,) float
    lanes : (m,) int
    merge_priority : (m,) float
    params : from :func:`link_parameters`
    orig, dest : (p,) int, platoon origin and destination nodes
    depart_step : (p,) int, step at which each platoon joins its origin's queue
    dt_s : step, s
    rng : the run's random generator
    """

    def __init__(
        self,
        n_nodes: int,
        start: IntArray,
        end: IntArray,
        length_m: FloatArray,
        speed_mps: FloatArray,
        lanes: IntArray,
        merge_priority: FloatArray,
        params: LinkParameters,
        orig: IntArray,
        dest: IntArray,
        depart_step: IntArray,
        dt_s: float,
        rng: np.random.Generator,
    ) -> None:
        m = start.size
        self.n_nodes, self.n_links, self.dt = n_nodes, m, dt_s
        self.half = 0.5 * dt_s
        self.rng = rng
        self.start, self.end = start, end
        self.length, self.speed = length_m, speed_mps
        self.free_time = length_m / speed_mps
        self.lanes = lanes.astype(np.float64)
        self.prio = np.where(merge_priority > 0, merge_priority, 1e-9)
        self.params = params
        # parameters that actors change
        self.open_fraction = np.ones(m)
        self.meter_out = np.full(m, np.inf)  # operator limits on outflow, platoons/step
        self.green = np.ones(m, dtype=bool)
        self.rate_out = params.rate_out.copy()
        self.rate_in = params.rate_in.copy()
        self.storage = params.storage.copy()
        self.lanes_open = self.lanes.copy()
        # link state: cumulative platoon counts and capacity left this step
        self.n_up = np.zeros(m, dtype=np.int64)
        self.n_down = np.zeros(m, dtype=np.int64)
        self.cap_out = self.lanes.copy()  # an idle link can pass a platoon at once
        self.cap_in = self.lanes.copy()
        self.history = int(params.lag_steps.max()) + 2
        self.down_hist = np.zeros((self.history, m), dtype=np.int64)
        self.link_cols = np.arange(m)
        # FIFO of platoon ids per link in one flat ring buffer
        self.buf_len = np.ceil(params.storage).astype(np.int64) + 2
        self.buf_off = np.concatenate(([0], np.cumsum(self.buf_len)[:-1]))
        self.buf = np.full(int(self.buf_len.sum()), -1, dtype=np.int64)
        # node out-links (CSR)
        order = np.argsort(start, kind="stable")
        self.out_links = order
        self.out_deg = np.bincount(start, minlength=n_nodes)
        self.out_ptr = np.concatenate(([0], np.cumsum(self.out_deg)[:-1]))
        self.out_lanes = np.bincount(start, weights=self.lanes, minlength=n_nodes)
        # platoons
        p = orig.size
        self.orig, self.dest, self.depart_step = orig, dest, depart_step
        self.dest_nodes, self.dest_row = np.unique(dest, return_inverse=True)
        self.state = np.zeros(p, dtype=np.int8)
        self.link = np.full(p, -1, dtype=np.int64)
        self.ready_t = np.zeros(p)
        self.enter_t = np.zeros(p)
        self.arrive_t = np.full(p, np.nan)
        self.distance = np.zeros(p)
        self.next_link = np.full(p, -1, dtype=np.int64)
        self.drawn_step = np.full(p, -1, dtype=np.int64)
        self.stranded_node = np.full(p, -1, dtype=np.int64)
        # origin queues: platoons ordered by (origin, departure); per node a head and a tail
        self.gen_order = np.lexsort((np.arange(p), depart_step, orig))
        counts = np.bincount(orig, minlength=n_nodes)
        self.gen_ptr = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        self.rel_ptr = self.gen_ptr.copy()
        by_step = np.argsort(depart_step, kind="stable")
        self.release_order = by_step
        self.release_steps = depart_step[by_step]
        # routing
        self.pref = np.zeros((self.dest_nodes.size, m))
        self.reach = np.ones((self.dest_nodes.size, n_nodes), dtype=bool)
        self.departed_total = np.zeros(m, dtype=np.int64)

    # -- actors' levers -------------------------------------------------------------------

    def set_open_lanes(self, link: int, lanes_open: float) -> None:
        """Open ``lanes_open`` of a link's lanes (0 closes it to new traffic).

        Platoons already on a fully closed link still drain out of it; a partly closed link
        keeps the share of its capacity and storage that its open lanes carry.
        """
        lanes = self.lanes[link]
        fraction = min(max(lanes_open / lanes, 0.0), 1.0)
        self.open_fraction[link] = fraction
        self.lanes_open[link] = max(lanes_open, 0.0)
        self.rate_in[link] = self.params.rate_in[link] * fraction
        self._apply_rate_out(link)
        self.storage[link] = max(self.params.storage[link] * fraction, 1.0)

    def set_outflow_limit(self, link: int, rate: float | None) -> None:
        """Hold a link's outflow to ``rate`` platoons per step (``None`` lifts the limit),
        below what its open lanes would pass."""
        self.meter_out[link] = np.inf if rate is None else max(float(rate), 0.0)
        self._apply_rate_out(link)

    def _apply_rate_out(self, link: int) -> None:
        fraction = float(self.open_fraction[link])
        lanes_rate = self.params.rate_out[link] * (fraction if fraction > 0 else 1.0)
        self.rate_out[link] = min(lanes_rate, self.meter_out[link])

    def set_green(self, links: IntArray, green: bool) -> None:
        """Let the head platoons of ``links`` go (``True``) or hold them (``False``)."""
        self.green[links] = green

    # -- routing ----------------------------------------------------------------------------

    def queued(self, t: float) -> IntArray:
        """(m,) int: platoons on each link that have reached its downstream end by ``t``."""
        on = self.state == RUNNING
        at_end = on & (self.ready_t <= t + self.half)
        return np.bincount(self.link[at_end], minlength=self.n_links)

    def travel_times(self, t: float) -> FloatArray:
        """(m,) float, s: what entering each link now would cost; ``inf`` when closed.

        Free-flow time plus the queue ahead: the larger of the queue over the outflow
        capacity and how long the head platoon has already waited (a blocked exit).
        """
        queue = self.queued(t)
        tt = self.free_time.copy()
        busy = np.flatnonzero(queue > 0)
        if busy.size:
            heads = self.buf[self.buf_off[busy] + self.n_down[busy] % self.buf_len[busy]]
            waited = np.maximum(t - self.ready_t[heads], 0.0)
            rate = np.maximum(self.rate_out[busy], 1e-6) / self.dt
            tt[busy] += np.maximum(queue[busy] / rate, waited)
        tt[self.rate_in <= 0] = np.inf
        return tt

    def reroute(self, t: float, weight: float, noise: float) -> None:
        """Recompute shortest paths on current travel times and blend them into preferences."""
        cost = self.travel_times(t)
        if noise > 0:
            cost = cost * self.rng.uniform(1.0, 1.0 + noise, size=cost.size)
        nxt, dist = next_hops(self.n_nodes, self.start, self.end, cost, self.dest_nodes)
        update_preferences(self.pref, nxt, self.start, self.end, weight)
        self.reach = np.isfinite(dist)

    def _choose(self, plts: IntArray, nodes: IntArray) -> IntArray:
        """Next link for each platoon at each node, drawn in proportion to route preference.

        Closed links and links from whose end the destination cannot be reached are never
        drawn; with no preferred usable link any usable link is drawn; with none, -1.
        """
        deg = self.out_deg[nodes]
        k = plts.size
        choice = np.full(k, -1, dtype=np.int64)
        has = deg > 0
        if not has.all():
            plts, nodes, deg, rows = plts[has], nodes[has], deg[has], np.flatnonzero(has)
        else:
            rows = np.arange(k)
        if not plts.size:
            return choice
        seg = np.cumsum(deg) - deg
        rep = np.repeat(np.arange(plts.size), deg)
        cand = self.out_links[self.out_ptr[nodes][rep] + np.arange(rep.size) - seg[rep]]
        rows_d = self.dest_row[plts][rep]
        open_ = (self.rate_in[cand] > 0) & self.reach[rows_d, self.end[cand]]
        weight = self.pref[rows_d, cand] * open_
        total = np.add.reduceat(weight, seg)
        none = total <= 0
        if none.any():
            fallback = none[rep]
            weight[fallback] = open_[fallback]
            total = np.add.reduceat(weight, seg)
        cum = np.cumsum(weight)
        before = cum[seg] - weight[seg]
        idx = np.searchsorted(cum, before + self.rng.random(plts.size) * total, side="right")
        idx = np.minimum(idx, seg + deg - 1)
        picked = np.where(total > 0, cand[idx], -1)
        choice[rows] = picked
        return choice

    # -- the step -----------------------------------------------------------------------------

    def _admits(self, links: IntArray, space: FloatArray) -> BoolArray:
        admitted: BoolArray = (self.cap_in[links] >= 1.0) & (self.n_up[links] < space[links])
        return admitted

    def _enter(self, plts: IntArray, links: IntArray, t_enter: FloatArray | float) -> None:
        """Put platoons at the upstream end of ``links`` (distinct links) at ``t_enter``."""
        seq = self.n_up[links]
        self.buf[self.buf_off[links] + seq % self.buf_len[links]] = plts
        self.n_up[links] = seq + 1
        self.cap_in[links] -= 1.0
        self.link[plts] = links
        self.enter_t[plts] = t_enter
        self.ready_t[plts] = t_enter + self.free_time[links]
        self.state[plts] = RUNNING

    def step(self, s: int) -> None:
        """Advance the network through step ``s`` (transfers at ``t = s * dt``)."""
        t = s * self.dt
        lanes = self.lanes_open
        drain = np.where(lanes > 0, lanes, self.lanes)  # a closed link still empties
        self.cap_out = np.where(self.cap_out < drain, self.cap_out + self.rate_out, self.cap_out)
        self.cap_in = np.where(self.cap_in < lanes, self.cap_in + self.rate_in, self.cap_in)
        self.down_hist[s % self.history] = self.n_down
        lag = self.params.lag_steps
        lagged = self.down_hist[(s - lag) % self.history, self.link_cols]
        lagged = np.where(lag <= s, lagged, 0)
        space = lagged + self.storage  # admits while n_up + 1 <= space
        self._release(s)
        self._generate(s, t, space)
        self._transfer(s, t, space)

    def _release(self, s: int) -> None:
        lo = np.searchsorted(self.release_steps, s, side="left")
        hi = np.searchsorted(self.release_steps, s, side="right")
        if hi > lo:
            new = self.release_order[lo:hi]
            self.state[new] = WAITING
            self.rel_ptr += np.bincount(self.orig[new], minlength=self.n_nodes)

    def _generate(self, s: int, t: float, space: FloatArray) -> None:
        nodes = np.flatnonzero(self.gen_ptr < self.rel_ptr)
        tries = np.zeros(nodes.size, dtype=np.int64)
        limit = self.out_lanes[nodes]
        while nodes.size:
            heads = self.gen_order[self.gen_ptr[nodes]]
            routed = self.reach[self.dest_row[heads], nodes]
            if not routed.all():
                lost = heads[~routed]
                self.state[lost] = STRANDED
                self.stranded_node[lost] = nodes[~routed]
                self.gen_ptr[nodes[~routed]] += 1
            links = np.where(routed, self._choose(heads, nodes), -1)
            ok = links >= 0
            ok[ok] = self._admits(links[ok], space)
            if ok.any():
                self._enter(heads[ok], links[ok], t)
                self.gen_ptr[nodes[ok]] += 1
            tries += 1
            keep = (ok | ~routed) & (self.gen_ptr[nodes] < self.rel_ptr[nodes]) & (tries < limit)
            nodes, tries, limit = nodes[keep], tries[keep], limit[keep]

    def _transfer(self, s: int, t: float, space: FloatArray) -> None:
        cand = np.arange(self.n_links)
        horizon = t + self.half
        for _ in range(MAX_ROUNDS):
            cand = cand[self.n_up[cand] > self.n_down[cand]]
            if not cand.size:
                return
            heads = self.buf[self.buf_off[cand] + self.n_down[cand] % self.buf_len[cand]]
            ready = self.ready_t[heads] <= horizon
            cand, heads = cand[ready], heads[ready]
            if not cand.size:
                return
            exit_t = np.where(self.ready_t[heads] > t - self.half, self.ready_t[heads], t)
            done = self.dest[heads] == self.end[cand]
            moved = [cand[done]]
            if done.any():
                finished = heads[done]
                self.n_down[cand[done]] += 1
                self.state[finished] = DONE
                self.link[finished] = -1
                self.arrive_t[finished] = exit_t[done]
                self.distance[finished] += self.length[cand[done]]
            go = ~done & self.green[cand] & (self.cap_out[cand] >= 1.0)
            links, plts, exit_t = cand[go], heads[go], exit_t[go]
            if plts.size:
                fresh = self.drawn_step[plts] != s
                if fresh.any():
                    p_new = plts[fresh]
                    at = self.end[links[fresh]]
                    routed = self.reach[self.dest_row[p_new], at]
                    nxt = np.where(routed, self._choose(p_new, at), -1)
                    self.next_link[p_new] = nxt
                    self.drawn_step[p_new] = s
                    if not routed.all():
                        lost = ~routed
                        gone = p_new[lost]
                        self.n_down[links[fresh][lost]] += 1
                        self.state[gone] = STRANDED
                        self.link[gone] = -1
                        self.stranded_node[gone] = at[lost]
                        moved.append(links[fresh][lost])
                        keep = np.ones(plts.size, dtype=bool)
                        keep[np.flatnonzero(fresh)[lost]] = False
                        links, plts, exit_t = links[keep], plts[keep], exit_t[keep]
                target = self.next_link[plts]
                ok = target >= 0
                ok[ok] = self._admits(target[ok], space)
                links, plts, exit_t, target = links[ok], plts[ok], exit_t[ok], target[ok]
            losers = np.empty(0, dtype=np.int64)
            if plts.size:
                if plts.size > 1:
                    key = self.rng.exponential(size=plts.size) / self.prio[links]
                    order = np.lexsort((key, target))
                    first = np.ones(order.size, dtype=bool)
                    first[1:] = target[order][1:] != target[order][:-1]
                    losers = links[order[~first]]
                    win = order[first]
                    links, plts, exit_t, target = links[win], plts[win], exit_t[win], target[win]
                self.n_down[links] += 1
                self.cap_out[links] -= 1.0
                self.distance[plts] += self.length[links]
                self._enter(plts, target, exit_t)
                moved.append(links)
            if len(moved) == 1 and not moved[0].size:
                return
            moved.append(losers)
            cand = np.unique(np.concatenate(moved))

    # -- read-outs ------------------------------------------------------------------------

    def on_links(self) -> IntArray:
        """(m,) int: platoons on each link."""
        return self.n_up - self.n_down

    def finished(self) -> bool:
        """No platoon waiting at an origin or running on a link."""
        return bool((self.gen_ptr == self.rel_ptr).all() and (self.n_up == self.n_down).all())


def platoon_departures(
    rate_vps: float, t_start_s: float, t_end_s: float, dt_s: float, deltan: int
) -> IntArray:
    """Departure steps of the platoons of one demand window, as UXsim generates them.

    Demand accumulates ``rate * dt`` a step from step ``int(t_start / dt)`` to
    ``int(t_end / dt)``; a platoon leaves whenever ``deltan`` vehicles have built up.
    """
    first, last = int(t_start_s / dt_s), int(t_end_s / dt_s)
    n = last - first
    if n <= 0 or rate_vps <= 0:
        return np.empty(0, dtype=np.int64)
    built = np.floor(np.arange(1, n + 1) * (rate_vps * dt_s / deltan) + 1e-9).astype(np.int64)
    per_step = np.diff(built, prepend=0)
    return np.repeat(np.arange(first, last, dtype=np.int64), per_step)


def round_up(value: float, step: float) -> float:
    """``value`` rounded up to a whole number of ``step``."""
    return math.ceil(value / step - 1e-9) * step
