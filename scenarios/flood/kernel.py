"""Dynamic-wave routing of a link-node network: one time step for all links and nodes at once.

The scheme follows SWMM's dynamic-wave formulation (Rossman, SWMM Reference Manual Vol. II,
ch. 3): per conduit, the momentum equation with friction and local losses taken
semi-implicitly, ``q = (q_old − Δq_pressure + Δq_inertia) / (1 + Δq_friction + Δq_losses)``,
with upstream weighting and inertial damping by Froude number, a normal-flow limit, and
critical depth at free-fall ends; per node, continuity over the node's surface area (its own
plus half of each connected conduit's), or, when a junction is surcharged above the crown of
its pipes, a head correction ``Δh = Σq / Σ(∂q/∂h)``. Link flows and node heads are iterated
(under-relaxed Picard) until heads change by less than a tolerance. What a node cannot hold
above its rim is flooding (lost, or ponded where the file allows). Everything is numpy over
all rows; the few pumps with their own curves are a loop over pumps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scenarios.flood.arrays import JUNCTION, OUTFALL, NetworkArrays
from scenarios.flood.xsect import GRAVITY

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

FUDGE = 3.048e-5  # SWMM's 0.0001 ft: depths and flows below this are zero
CROWN_CUTOFF = 0.96
MAX_VELOCITY = 15.24  # 50 ft/s
OMEGA = 0.5
MAX_TRIALS = 8
HEAD_TOL_M = 0.0015  # 0.005 ft


@dataclass
class RoutingState:
    """Hydraulic state of the network (SI units).

    depth : (n,) node depth above invert, m
    q : (m,) conduit flow per barrel, m3/s
    a_mid : (m,) conduit mid-length flow area at the last step, m2
    pump_q, pump_on : (p,) pump flow m3/s and on/off
    reg_q : (r,) orifice and weir flows, m3/s
    net_inflow : (n,) net inflow to each node at the end of the last step, m3/s
    overflow : (n,) flooding rate over the last step, m3/s
    ponded : (n,) ponded volume above the rim, m3
    old_surf : (n,) last unsurcharged node surface area, m2
    dydt : (n,) |Δdepth|/dt of the last step, m/s
    froude : (m,) conduit Froude number
    """

    depth: FloatArray
    q: FloatArray
    a_mid: FloatArray
    pump_q: FloatArray
    pump_on: BoolArray
    reg_q: FloatArray
    net_inflow: FloatArray
    overflow: FloatArray
    ponded: FloatArray
    old_surf: FloatArray
    dydt: FloatArray
    froude: FloatArray

    @classmethod
    def initial(cls, arr: NetworkArrays) -> RoutingState:
        """Initial depths and flows from the file."""
        n, m = arr.n_nodes, len(arr.conduit_names)
        q0 = arr.init_flow / arr.barrels
        return cls(
            depth=arr.init_depth.copy(),
            q=q0,
            a_mid=np.zeros(m),
            pump_q=np.zeros(len(arr.pump_names)),
            pump_on=arr.p_init_on.copy(),
            reg_q=np.zeros(len(arr.reg_names)),
            net_inflow=np.zeros(n),
            overflow=np.zeros(n),
            ponded=np.zeros(n),
            old_surf=np.zeros(n),
            dydt=np.zeros(n),
            froude=np.zeros(m),
        )


def node_area(arr: NetworkArrays, depth: FloatArray) -> FloatArray:
    """Own surface area of each node (storage curves; 0 for junctions), m2."""
    area: FloatArray = arr.store_a * np.power(np.maximum(depth, 0.0), arr.store_b) + arr.store_c
    for i, (x, y) in arr.store_tabular.items():
        area[i] = float(np.interp(depth[i], x, y))
    return area


def node_volume(arr: NetworkArrays, depth: FloatArray, min_surfarea_m2: float) -> FloatArray:
    """Water held in each node (m3): storage curves integrated; junctions over the minimum area."""
    d = np.maximum(depth, 0.0)
    volume: FloatArray = (
        arr.store_a / (arr.store_b + 1.0) * d ** (arr.store_b + 1.0) + arr.store_c * d
    )
    for i, (x, y) in arr.store_tabular.items():
        xs = np.append(x[x < d[i]], d[i])
        ys = np.interp(xs, x, y)
        volume[i] = float(np.sum(0.5 * (ys[1:] + ys[:-1]) * np.diff(xs)))
    is_junction = arr.node_kind == JUNCTION
    volume[is_junction] = d[is_junction] * min_surfarea_m2
    volume[arr.node_kind == OUTFALL] = 0.0
    return volume


def link_volume(arr: NetworkArrays, state: RoutingState) -> float:
    """Water held in conduits (m3)."""
    return float(np.sum(state.a_mid * arr.length * arr.barrels))


def prime(arr: NetworkArrays, state: RoutingState) -> None:
    """Set outfall depths and conduit areas from the initial depths (before the first step)."""
    y_crit, y_norm = _crit_and_normal(arr, state.q)
    _outfall_depths(arr, state, y_crit, y_norm)
    xs = arr.xs
    h1 = np.maximum(
        arr.invert[arr.c_from] + state.depth[arr.c_from], arr.invert[arr.c_from] + arr.z_in
    )
    h2 = np.maximum(arr.invert[arr.c_to] + state.depth[arr.c_to], arr.invert[arr.c_to] + arr.z_out)
    y1 = np.minimum(h1 - arr.invert[arr.c_from] - arr.z_in, xs.y_full)
    y2 = np.minimum(h2 - arr.invert[arr.c_to] - arr.z_out, xs.y_full)
    state.a_mid = 0.5 * (xs.lookup(xs.area, y1) + xs.lookup(xs.area, y2))


def courant_step(
    arr: NetworkArrays, state: RoutingState, max_step_s: float, factor: float
) -> float:
    """SWMM's variable step: Courant condition on conduits, depth-change limit on nodes (s)."""
    q = np.abs(state.q)
    ok = (q > FUDGE) & (state.a_mid > FUDGE) & (state.froude > 0.01)
    step = max_step_s
    if ok.any():
        t = state.a_mid[ok] * arr.length[ok] / q[ok] * state.froude[ok] / (1.0 + state.froude[ok])
        step = min(step, float(t.min()) * factor)
    crown = arr.crown_depth
    watch = (
        (arr.node_kind != OUTFALL)
        & (state.depth > FUDGE)
        & (state.depth + FUDGE < crown)
        & (state.dydt > FUDGE)
        & (crown * 0.25 > FUDGE)
    )
    if watch.any():
        step = min(step, float((0.25 * crown[watch] / state.dydt[watch]).min()))
    return step


def _crit_and_normal(arr: NetworkArrays, q: FloatArray) -> tuple[FloatArray, FloatArray]:
    xs = arr.xs
    y_crit = xs.invert(xs.q_crit, np.abs(q))
    y_norm = np.where(
        arr.beta > 0, xs.invert(xs.section, np.abs(q) / np.maximum(arr.beta, 1e-30)), xs.y_full
    )
    return y_crit, y_norm


def _outfall_depths(
    arr: NetworkArrays, state: RoutingState, y_crit: FloatArray, y_norm: FloatArray
) -> None:
    outfalls = np.flatnonzero(arr.node_kind == OUTFALL)
    if outfalls.size == 0:
        return
    link = arr.outfall_conduit[outfalls]
    depth = np.zeros(outfalls.size)
    has = link >= 0
    if has.any():
        j = link[has]
        offset = arr.z_out[j]
        free = np.minimum(y_crit[j], y_norm[j])
        depth[has] = np.where(offset > 0, 0.0, free)
    fixed = arr.outfall_fixed[outfalls]
    depth[fixed] = np.maximum(arr.outfall_stage[outfalls][fixed], 0.0)
    state.depth[outfalls] = depth


@dataclass
class _ConduitResult:
    q: FloatArray
    dqdh: FloatArray
    surf1: FloatArray
    surf2: FloatArray
    a_mid: FloatArray
    froude: FloatArray


def conduit_flows(
    arr: NetworkArrays,
    depth: FloatArray,
    q_old: FloatArray,
    q_last: FloatArray,
    a_old: FloatArray,
    dt: float,
    relax: bool,
    closed: BoolArray,
    y_min: FloatArray,
) -> _ConduitResult:
    """New flow per barrel in every conduit from the node depths (one Picard trial)."""
    xs = arr.xs
    n1, n2 = arr.c_from, arr.c_to
    z1 = arr.invert[n1] + arr.z_in
    z2 = arr.invert[n2] + arr.z_out
    h1 = np.maximum(arr.invert[n1] + depth[n1], z1)
    h2 = np.maximum(arr.invert[n2] + depth[n2], z2)
    y1 = np.minimum(np.maximum(h1 - z1, FUDGE), xs.y_full)
    y2 = np.minimum(np.maximum(h2 - z2, FUDGE), xs.y_full)
    full = (y1 >= xs.y_full) & (y2 >= xs.y_full)
    wet1, wet2 = y1 > FUDGE, y2 > FUDGE
    off1 = (arr.z_in > 0) | (arr.node_kind[n1] == OUTFALL)
    off2 = (arr.z_out > 0) | (arr.node_kind[n2] == OUTFALL)
    dry = ~wet1 & ~wet2
    dn_dry = wet1 & ~wet2 & (h1 < z2)
    up_dry = ~wet1 & wet2 & (h2 < z1)
    dn_crit = ~full & off2 & wet1 & ~dn_dry & (q_last >= 0) & (y2 < y_min)
    up_crit = ~full & off1 & wet2 & ~up_dry & (q_last < 0) & (y1 < y_min)
    y2 = np.where(dn_crit, y_min, y2)
    h2 = np.where(dn_crit, z2 + y2, h2)
    y1 = np.where(up_crit, y_min, y1)
    h1 = np.where(up_crit, z1 + y1, h1)
    y_mid = np.maximum(0.5 * (y1 + y2), FUDGE)

    cap = np.where(xs.closed, CROWN_CUTOFF * xs.y_full, xs.y_full)
    g1 = xs.geometry_at(y1)
    g2 = xs.geometry_at(y2)
    gm = xs.geometry_at(y_mid)
    a1, r1 = g1[:, 0], g1[:, 1]
    a2 = g2[:, 0]
    am, rm = gm[:, 0], gm[:, 1]
    # top widths of closed conduits near the crown are taken at the crown cutoff
    near_crown = xs.closed & (np.maximum(np.maximum(y1, y2), y_mid) > cap)
    if near_crown.any():
        w1 = xs.lookup(xs.width, np.minimum(y1, cap))
        w2 = xs.lookup(xs.width, np.minimum(y2, cap))
        wm = xs.lookup(xs.width, np.minimum(y_mid, cap))
    else:
        w1, w2, wm = g1[:, 2], g2[:, 2], gm[:, 2]
    length = arr.length
    surf1 = (w1 + wm) * length / 4.0
    surf2 = (wm + w2) * length / 4.0
    surf1 = np.where(dn_crit, (w1 + wm) * length / 2.0, np.where(up_crit, 0.0, surf1))
    surf2 = np.where(up_crit, (wm + w2) * length / 2.0, np.where(dn_crit, 0.0, surf2))
    surf1 = np.where(up_dry & (arr.z_in > 0), 0.0, surf1)
    surf2 = np.where(dn_dry & (arr.z_out > 0), 0.0, surf2)
    surf1 = np.where(dry, FUDGE * length / 2.0, surf1)
    surf2 = np.where(dry, FUDGE * length / 2.0, surf2)

    no_flow = dry | dn_dry | up_dry | closed | (am <= FUDGE)

    v = np.minimum(np.maximum(q_last / np.maximum(am, FUDGE), -MAX_VELOCITY), MAX_VELOCITY)
    hyd_depth = np.where(y_mid >= xs.y_full, xs.y_full, am / np.maximum(wm, FUDGE))
    froude = np.where(
        full & xs.closed, 0.0, np.abs(v) / np.sqrt(GRAVITY * np.maximum(hyd_depth, FUDGE))
    )
    sigma = np.minimum(np.maximum(2.0 * (1.0 - froude), 0.0), 1.0)
    rho = np.where(~full & (q_last > 0) & (h1 >= h2), sigma, 1.0)
    a_w = a1 + (am - a1) * rho
    r_w = r1 + (rm - r1) * rho
    sigma = np.where(full & xs.closed, 0.0, sigma)

    dq1 = dt * GRAVITY * arr.roughness**2 / np.maximum(r_w, FUDGE) ** (4.0 / 3.0) * np.abs(v)
    dq2 = dt * GRAVITY * a_w * (h2 - h1) / length
    dq3 = 2.0 * v * (am - a_old) * sigma
    dq4 = dt * v * v * (a2 - a1) / length * sigma
    aq = np.abs(q_last)
    losses = (
        np.where(a1 > FUDGE, arr.loss_in * aq / np.maximum(a1, FUDGE), 0.0)
        + np.where(a2 > FUDGE, arr.loss_out * aq / np.maximum(a2, FUDGE), 0.0)
        + np.where(am > FUDGE, arr.loss_avg * aq / np.maximum(am, FUDGE), 0.0)
    )
    dq5 = losses / 2.0 / length * dt
    denom = 1.0 + dq1 + dq5
    q = (q_old - dq2 + dq3 + dq4) / denom
    dqdh = GRAVITY * dt * a_w / length / denom * arr.barrels

    # normal-flow limit (slope test, or Froude >= 1 upstream), not at critical-depth ends
    has_outfall = (arr.node_kind[n1] == OUTFALL) | (arr.node_kind[n2] == OUTFALL)
    check = y1 < y2
    fr1 = np.abs(q / np.maximum(a1, FUDGE)) / np.sqrt(
        GRAVITY * np.maximum(a1 / np.maximum(w1, FUDGE), FUDGE)
    )
    check |= ~has_outfall & wet1 & wet2 & (fr1 >= 1.0)
    limit = (q > 0) & (y1 < xs.y_full) & ~dn_crit & ~up_crit & check & (arr.beta > 0)
    q_norm = arr.beta * a1 * r1 ** (2.0 / 3.0)
    q = np.where(limit, np.minimum(q, q_norm), q)

    if relax:
        q = (1.0 - OMEGA) * q_last + OMEGA * q
        q = np.where(q * q_last < 0.0, 0.001 * np.sign(q), q)
    q = np.where(arr.max_flow > 0, np.minimum(np.maximum(q, -arr.max_flow), arr.max_flow), q)
    q = np.where(arr.flap & (q < 0), 0.0, q)
    q = np.where((q > FUDGE) & (depth[n1] <= FUDGE), FUDGE, q)
    q = np.where((q < -FUDGE) & (depth[n2] <= FUDGE), -FUDGE, q)
    q = np.where(no_flow, 0.0, q)
    dqdh = np.where(no_flow, GRAVITY * dt * am / length * arr.barrels, dqdh)
    a_avg = np.where(no_flow, 0.5 * (a1 + a2), am)
    return _ConduitResult(q, dqdh, surf1, surf2, a_avg, np.where(no_flow, 0.0, froude))


def pump_flows(
    arr: NetworkArrays,
    state: RoutingState,
    depth: FloatArray,
    volume: FloatArray,
    inflow: FloatArray,
) -> FloatArray:
    """Flow of each pump from its curve, state and the inlet node (m3/s)."""
    out = np.zeros(len(arr.pump_names))
    heads = arr.invert + depth
    for k in range(len(out)):
        if not state.pump_on[k]:
            continue
        n1, n2 = arr.p_from[k], arr.p_to[k]
        x, y = arr.p_curve[k]
        kind = arr.p_type[k]
        if kind == 0:
            flow = max(inflow[n1], 0.0)
        elif kind in (1, 2):
            level = volume[n1] if kind == 1 else depth[n1]
            i = min(int(np.searchsorted(x, level, side="left")), len(y) - 1)
            flow = float(y[i])
        elif kind == 3:
            flow = float(np.interp(heads[n2] - heads[n1], x, y))
        else:
            flow = float(np.interp(depth[n1], x, y))
        if depth[n1] <= FUDGE:
            flow = min(flow, max(inflow[n1], 0.0))
        out[k] = flow
    return out


def switch_pumps(arr: NetworkArrays, state: RoutingState, enabled: BoolArray) -> None:
    """Start-up and shut-off depths, and the actors' enable mask, set each pump on or off."""
    d = state.depth[arr.p_from]
    on = state.pump_on
    on = np.where((arr.p_startup > 0) & (d >= arr.p_startup), True, on)
    on = np.where((arr.p_shutoff > 0) & (d < arr.p_shutoff), False, on)
    state.pump_on = on & enabled


def regulator_flows(
    arr: NetworkArrays, depth: FloatArray, setting: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Orifice and weir flows (m3/s, positive from inlet to outlet node) and ∂q/∂h."""
    if len(arr.reg_names) == 0:
        return np.zeros(0), np.zeros(0)
    h1 = arr.invert[arr.r_from] + depth[arr.r_from]
    h2 = arr.invert[arr.r_to] + depth[arr.r_to]
    up = np.maximum(h1, h2)
    down = np.minimum(h1, h2)
    sign = np.where(h1 >= h2, 1.0, -1.0)
    crest = arr.invert[arr.r_from] + arr.r_crest
    head = np.maximum(up - crest, 0.0)
    opening = arr.r_height * setting
    # orifice: weir-like until the opening is submerged, then Cd·A·√(2gΔh)
    area = np.where(arr.r_circular, np.pi / 4.0 * opening**2, opening * arr.r_width)
    centroid = crest + opening / 2.0
    dh_orifice = np.maximum(up - np.maximum(down, centroid), 0.0)
    q_orifice = arr.r_coeff * area * np.sqrt(2.0 * GRAVITY * dh_orifice)
    partial = head < opening
    q_part = (
        arr.r_coeff
        * area
        * np.sqrt(2.0 * GRAVITY * np.maximum(head / 2.0, 0.0))
        * np.where(opening > 0, head / np.maximum(opening, FUDGE), 0.0)
    )
    q_orifice = np.where(partial, q_part, q_orifice)
    # weir: Cw·L·h^1.5 with Villemonte submergence
    h_down = np.maximum(down - crest, 0.0)
    ratio = np.where(head > 0, h_down / np.maximum(head, FUDGE), 0.0)
    submerge = np.power(np.maximum(1.0 - ratio**1.5, 0.0), 0.385)
    q_weir = arr.r_coeff * arr.r_width * setting * head**1.5 * submerge
    # a surcharged weir (water above its height y) is an orifice through its opening's
    # mid-height, continuous with the weir law at h = y (SWMM's weir_getInflow)
    y = arr.r_height
    surcharged = arr.r_is_weir & (y > 0) & (head > y)
    dh_surcharged = np.maximum(up - np.maximum(down, crest + y / 2.0), 0.0)
    q_surcharged = (
        arr.r_coeff
        * arr.r_width
        * setting
        * y**1.5
        / np.sqrt(np.maximum(y / 2.0, FUDGE))
        * np.sqrt(dh_surcharged)
    )
    q_weir = np.where(surcharged, q_surcharged, q_weir)
    q = np.where(arr.r_is_weir, q_weir, q_orifice) * sign
    q = np.where(arr.r_gated & (q < 0), 0.0, q)
    dqdh = np.where(
        arr.r_is_weir & ~surcharged,
        1.5 * np.abs(q) / np.maximum(head, 0.01),
        0.5 * np.abs(q) / np.maximum(np.where(surcharged, dh_surcharged, dh_orifice), 0.01),
    )
    return q, dqdh


@dataclass
class StepResult:
    """What one routing step reports: node inflows to outfalls and the flooding (m3/s)."""

    outfall_flow: FloatArray
    overflow: FloatArray
    trials: int


def route_step(
    arr: NetworkArrays,
    state: RoutingState,
    lateral: FloatArray,
    dt: float,
    min_surfarea_m2: float,
    pump_enabled: BoolArray,
    reg_setting: FloatArray,
    conduit_closed: BoolArray,
) -> StepResult:
    """Advance ``state`` by ``dt`` seconds in place.

    Parameters
    ----------
    lateral : (n,) float, m3/s — runoff and external inflow into each node over the step
    pump_enabled : (p,) bool — pumps the actors allow to run
    reg_setting : (r,) float — orifice/weir opening, 0 closed .. 1 open
    conduit_closed : (m,) bool — conduits closed by a gate actor

    Raises
    ------
    FloatingPointError
        If the step produced non-finite depths (the stability bound was broken).
    """
    n = arr.n_nodes
    not_outfall = arr.node_kind != OUTFALL
    y_old = state.depth.copy()
    q_old = state.q.copy()
    switch_pumps(arr, state, pump_enabled)
    can_pond = arr.ponded_area > 0
    y_max = np.where(can_pond, arr.full_depth, arr.flood_depth)
    crown = arr.crown_depth
    junction = arr.node_kind == JUNCTION
    volume = node_volume(arr, y_old, min_surfarea_m2)
    q_last = q_old.copy()
    trials = 0
    conduit = None
    overflow = np.zeros(n)
    y_crit, y_norm = _crit_and_normal(arr, q_old)
    y_min = np.maximum(np.minimum(y_crit, y_norm), FUDGE)
    _outfall_depths(arr, state, y_crit, y_norm)
    for trial in range(MAX_TRIALS):
        trials = trial + 1
        y_last = state.depth.copy()
        conduit = conduit_flows(
            arr, y_last, q_old, q_last, state.a_mid, dt, trial > 0, conduit_closed, y_min
        )
        q_last = conduit.q
        flow = conduit.q * arr.barrels
        inflow = (
            lateral
            + np.bincount(arr.c_to, np.maximum(flow, 0), n)
            + np.bincount(arr.c_from, np.maximum(-flow, 0), n)
        )
        pumps = pump_flows(arr, state, y_last, volume, inflow)
        regs, reg_dqdh = regulator_flows(arr, y_last, reg_setting)
        surf = (
            node_area(arr, y_last)
            + np.bincount(arr.c_from, conduit.surf1 * arr.barrels, n)
            + np.bincount(arr.c_to, conduit.surf2 * arr.barrels, n)
        )
        surf = np.maximum(surf, min_surfarea_m2)
        if len(regs) or len(pumps):
            # regulators and pumps cannot draw more than a node holds plus what it receives
            gives = (
                np.bincount(arr.r_from, np.maximum(regs, 0.0), n)
                + np.bincount(arr.r_to, np.maximum(-regs, 0.0), n)
                + np.bincount(arr.p_from, pumps, n)
            )
            have = np.maximum(
                y_old * surf / dt + inflow - np.bincount(arr.c_from, np.maximum(flow, 0), n), 0.0
            )
            factor = np.where(gives > have, have / np.maximum(gives, 1e-12), 1.0)
            regs = regs * np.where(regs >= 0, factor[arr.r_from], factor[arr.r_to])
            pumps = pumps * factor[arr.p_from]
        net = (
            lateral
            + np.bincount(arr.c_to, flow, n)
            - np.bincount(arr.c_from, flow, n)
            + np.bincount(arr.p_to, pumps, n)
            - np.bincount(arr.p_from, pumps, n)
            + np.bincount(arr.r_to, regs, n)
            - np.bincount(arr.r_from, regs, n)
        )
        ponded_now = can_pond & (y_last > arr.full_depth)
        surf = np.where(ponded_now, arr.ponded_area, surf)
        sum_dqdh = (
            np.bincount(arr.c_from, conduit.dqdh, n)
            + np.bincount(arr.c_to, conduit.dqdh, n)
            + np.bincount(arr.r_from, reg_dqdh, n)
            + np.bincount(arr.r_to, reg_dqdh, n)
        )
        dv = 0.5 * (state.net_inflow + net) * dt
        surcharged = junction & ~ponded_now & (crown > 0) & (y_last > crown)
        y_free = y_old + dv / surf
        if trial > 0:
            y_free = (1.0 - OMEGA) * y_last + OMEGA * y_free
        y_free = np.where(ponded_now, np.maximum(y_free, arr.full_depth - FUDGE), y_free)
        denom = sum_dqdh.copy()
        near = y_last < 1.25 * crown
        f = (y_last - crown) / np.maximum(crown, FUDGE)
        denom = np.where(near, denom + (state.old_surf / dt - sum_dqdh) * np.exp(-15.0 * f), denom)
        y_sur = np.maximum(
            y_last + np.where(denom > 0, net / np.maximum(denom, 1e-12), 0.0), crown - FUDGE
        )
        y_new = np.maximum(np.where(surcharged, y_sur, y_free), 0.0)
        state.old_surf = np.where(~surcharged & ~ponded_now, surf, state.old_surf)
        over = not_outfall & (y_new > y_max)
        # flooded: what the node cannot hold leaves (or ponds where allowed)
        # as SWMM: a flooded node loses the step's whole net inflow
        overflow = np.where(over & ~can_pond, np.maximum(dv / dt, 0.0), 0.0)
        ponded_vol = np.where(
            can_pond & over, np.maximum(y_new - arr.full_depth, 0.0) * arr.ponded_area, 0.0
        )
        y_new = np.where(over & ~can_pond, y_max, y_new)
        state.depth = np.where(not_outfall, y_new, state.depth)
        state.ponded = ponded_vol
        state.pump_q = pumps
        state.reg_q = regs
        if not np.isfinite(state.depth).all():
            raise FloatingPointError("routing step produced non-finite depths")
        if trial > 0 and np.all(np.abs(state.depth - y_last)[not_outfall] <= HEAD_TOL_M):
            break
    assert conduit is not None
    state.q = q_last
    state.a_mid = conduit.a_mid
    state.froude = conduit.froude
    state.overflow = overflow
    flow = state.q * arr.barrels
    final_net = (
        lateral
        + np.bincount(arr.c_to, flow, n)
        - np.bincount(arr.c_from, flow, n)
        + np.bincount(arr.p_to, state.pump_q, n)
        - np.bincount(arr.p_from, state.pump_q, n)
        + np.bincount(arr.r_to, state.reg_q, n)
        - np.bincount(arr.r_from, state.reg_q, n)
    )
    state.net_inflow = np.where(not_outfall, final_net, 0.0)
    state.dydt = np.abs(state.depth - y_old) / dt
    outfall_flow = np.where(arr.node_kind == OUTFALL, final_net, 0.0)
    return StepResult(outfall_flow=outfall_flow, overflow=overflow, trials=trials)
