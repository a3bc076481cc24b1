"""The dynamic-wave routing of :mod:`scenarios.flood.kernel`, compiled (numba), many steps a call.

:func:`advance` runs the routing integrator from one coarse event to the next (a runoff step,
a control rule, a report, a coupling exchange): per step SWMM's variable step, the lateral
inflow at the step's end (runoff interpolated between runoff times, external inflows with
their hourly pattern and time series), :func:`_route_step` (the numpy ``route_step`` line for
line, per row instead of per array) and the run's statistics. It hands back to SimPy when the
network may be quiet (so the model can skip a dry spell) or when an inflow pattern's hour
changes. :class:`JitNetwork` packs the static arrays once.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from scenarios.flood.arrays import JUNCTION, OUTFALL, NetworkArrays
from scenarios.flood.controls import (
    L_PUMP,
    L_REG,
    P_CLOCK,
    P_DEPTH,
    P_HEAD,
    P_INFLOW,
    P_STATUS,
    P_TIME,
    JitRules,
)
from scenarios.flood.jit import njit, njit_inline
from scenarios.flood.kernel import (
    CROWN_CUTOFF,
    FUDGE,
    HEAD_TOL_M,
    MAX_TRIALS,
    MAX_VELOCITY,
    OMEGA,
)
from scenarios.flood.runoff import gage_rates_into
from scenarios.flood.xsect import GRAVITY, N_TABLE

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

# advance() status
REACHED, QUIET, NEW_HOUR, UNSTABLE, LOG_FULL = 0, 1, 2, 3, 4
# indices into the ``tally`` array
T_INFLOW, T_STEPS, T_STATUS, T_HOUR, T_TRIALS, T_LOG, T_CALL = 0, 1, 2, 3, 4, 5, 6
N_TALLY = 7
# indices into the ``clock`` array: the control-rule and report clocks kept inside the kernel
(
    C_RULE_T, C_RULE_STEP, C_START_SOD, C_REPORT_T, C_REPORT_STEP, C_PREV_T, C_PREV_FIRST,
    C_WAIT, C_WAIT_B, C_K, C_RULES_ON, C_REC_ON, C_INFLOW,
) = range(13)  # fmt: skip
N_CLOCK = 13
N_WS_N, N_WS_M = 10, 12


class JitNetwork(NamedTuple):
    """Static arrays of a network in the form the compiled kernel takes."""

    node_kind: IntArray
    invert: FloatArray
    full_depth: FloatArray
    flood_depth: FloatArray
    crown_depth: FloatArray
    ponded_area: FloatArray
    store_a: FloatArray
    store_b: FloatArray
    store_c: FloatArray
    tab_start: IntArray
    """(n+1,) offsets into tab_x/tab_y per node; empty range: no tabular curve"""
    tab_x: FloatArray
    tab_y: FloatArray
    outfall_stage: FloatArray
    outfall_fixed: BoolArray
    outfall_conduit: IntArray
    c_from: IntArray
    c_to: IntArray
    length: FloatArray
    roughness: FloatArray
    z_in: FloatArray
    z_out: FloatArray
    beta: FloatArray
    barrels: FloatArray
    max_flow: FloatArray
    loss_in: FloatArray
    loss_out: FloatArray
    loss_avg: FloatArray
    flap: BoolArray
    y_full: FloatArray
    closed_x: BoolArray
    area: FloatArray
    radius: FloatArray
    width: FloatArray
    section: FloatArray
    q_crit: FloatArray
    p_from: IntArray
    p_to: IntArray
    p_type: IntArray
    p_start: IntArray
    p_x: FloatArray
    p_y: FloatArray
    p_startup: FloatArray
    p_shutoff: FloatArray
    r_from: IntArray
    r_to: IntArray
    r_is_weir: BoolArray
    r_crest: FloatArray
    r_coeff: FloatArray
    r_height: FloatArray
    r_width: FloatArray
    r_gated: BoolArray
    r_circular: BoolArray
    s_outlet: IntArray
    inflow_node: IntArray
    inflow_scale: FloatArray
    inflow_start: IntArray
    """(k+1,) offsets into inflow_t/inflow_v; empty range: no time series"""
    inflow_t: FloatArray
    inflow_v: FloatArray


def _flat(curves: list[tuple[FloatArray, FloatArray]]) -> tuple[IntArray, FloatArray, FloatArray]:
    sizes = [len(x) for x, _ in curves]
    start = np.zeros(len(curves) + 1, dtype=np.int64)
    start[1:] = np.cumsum(sizes)
    xs = [np.asarray(x, dtype=np.float64) for x, _ in curves] or [np.zeros(0)]
    ys = [np.asarray(y, dtype=np.float64) for _, y in curves] or [np.zeros(0)]
    return start, np.concatenate(xs), np.concatenate(ys)


def pack(arr: NetworkArrays) -> JitNetwork:
    """The kernel's view of ``arr`` (arrays are shared where the dtype already fits)."""
    i64 = np.int64
    empty = (np.zeros(0), np.zeros(0))
    tab = [arr.store_tabular.get(i, empty) for i in range(arr.n_nodes)]
    tab_start, tab_x, tab_y = _flat(tab)
    p_start, p_x, p_y = _flat(list(arr.p_curve))
    series = [(s.t_s, s.values) if s is not None else empty for s in arr.inflow_series]
    in_start, in_t, in_v = _flat(series)
    xs = arr.xs
    f = np.ascontiguousarray
    return JitNetwork(
        node_kind=arr.node_kind.astype(i64),
        invert=arr.invert,
        full_depth=arr.full_depth,
        flood_depth=arr.flood_depth,
        crown_depth=arr.crown_depth,
        ponded_area=arr.ponded_area,
        store_a=arr.store_a,
        store_b=arr.store_b,
        store_c=arr.store_c,
        tab_start=tab_start,
        tab_x=tab_x,
        tab_y=tab_y,
        outfall_stage=arr.outfall_stage,
        outfall_fixed=arr.outfall_fixed.astype(np.bool_),
        outfall_conduit=arr.outfall_conduit.astype(i64),
        c_from=arr.c_from.astype(i64),
        c_to=arr.c_to.astype(i64),
        length=arr.length,
        roughness=arr.roughness,
        z_in=arr.z_in,
        z_out=arr.z_out,
        beta=arr.beta,
        barrels=arr.barrels.astype(np.float64),
        max_flow=arr.max_flow,
        loss_in=arr.loss_in,
        loss_out=arr.loss_out,
        loss_avg=arr.loss_avg,
        flap=arr.flap.astype(np.bool_),
        y_full=xs.y_full,
        closed_x=xs.closed.astype(np.bool_),
        area=f(xs.area),
        radius=f(xs.radius),
        width=f(xs.width),
        section=f(xs.section),
        q_crit=f(xs.q_crit),
        p_from=arr.p_from.astype(i64),
        p_to=arr.p_to.astype(i64),
        p_type=arr.p_type.astype(i64),
        p_start=p_start,
        p_x=p_x,
        p_y=p_y,
        p_startup=arr.p_startup,
        p_shutoff=arr.p_shutoff,
        r_from=arr.r_from.astype(i64),
        r_to=arr.r_to.astype(i64),
        r_is_weir=arr.r_is_weir.astype(np.bool_),
        r_crest=arr.r_crest,
        r_coeff=arr.r_coeff,
        r_height=arr.r_height,
        r_width=arr.r_width,
        r_gated=arr.r_gated.astype(np.bool_),
        r_circular=arr.r_circular.astype(np.bool_),
        s_outlet=arr.s_outlet.astype(i64),
        inflow_node=arr.inflow_node.astype(i64),
        inflow_scale=arr.inflow_scale.astype(np.float64),
        inflow_start=in_start,
        inflow_t=in_t,
        inflow_v=in_v,
    )


@njit
def _lookup(table: FloatArray, j: int, y: float, y_full: float) -> float:
    pos = min(max(y / y_full, 0.0), 1.0) * (N_TABLE - 1)
    i0 = min(int(pos), N_TABLE - 2)
    frac = pos - i0
    return float(table[j, i0] * (1.0 - frac) + table[j, i0 + 1] * frac)


@njit
def _at(y: float, y_full: float) -> tuple[int, float]:
    """Table row position of depth ``y``: lower index and fraction (as ``_lookup``)."""
    pos = min(max(y / y_full, 0.0), 1.0) * (N_TABLE - 1)
    i0 = min(int(pos), N_TABLE - 2)
    return i0, pos - i0


@njit
def _invert(table: FloatArray, j: int, value: float, y_full: float) -> float:
    above = int(np.searchsorted(table[j], value, side="left"))
    i1 = min(max(above, 1), N_TABLE - 1)
    lo, hi = table[j, i1 - 1], table[j, i1]
    frac = min(max((value - lo) / max(hi - lo, 1e-30), 0.0), 1.0)
    return float((i1 - 1 + frac) / (N_TABLE - 1) * y_full)


@njit_inline
def _node_areas(net: JitNetwork, depth: FloatArray, out: FloatArray) -> None:
    for i in range(depth.size):
        a0, a1 = net.tab_start[i], net.tab_start[i + 1]
        if a1 > a0:
            out[i] = np.interp(depth[i], net.tab_x[a0:a1], net.tab_y[a0:a1])
        else:
            out[i] = net.store_a[i] * max(depth[i], 0.0) ** net.store_b[i] + net.store_c[i]


@njit_inline
def _node_volumes(net: JitNetwork, depth: FloatArray, min_area: float, out: FloatArray) -> None:
    for i in range(depth.size):
        out[i] = _node_volume(
            net.node_kind[i], net.tab_x[net.tab_start[i] : net.tab_start[i + 1]],
            net.tab_y[net.tab_start[i] : net.tab_start[i + 1]], net.store_a[i], net.store_b[i],
            net.store_c[i], depth[i], min_area,
        )  # fmt: skip


@njit
def _node_volume(
    kind: int,
    x: FloatArray,
    y: FloatArray,
    store_a: float,
    store_b: float,
    store_c: float,
    depth: float,
    min_area: float,
) -> float:
    d = max(depth, 0.0)
    if kind == OUTFALL:
        return 0.0
    if kind == JUNCTION:
        return d * min_area
    if x.size:
        # trapezoids over the curve's points below d, then up to d (as the numpy version)
        vol = 0.0
        started = False
        x_prev = y_prev = 0.0
        for k in range(x.size):
            if x[k] < d:
                yk = float(np.interp(x[k], x, y))
                if started:
                    vol += 0.5 * (yk + y_prev) * (x[k] - x_prev)
                x_prev, y_prev, started = x[k], yk, True
        if started:
            vol += 0.5 * (float(np.interp(d, x, y)) + y_prev) * (d - x_prev)
        return vol
    b = store_b
    return float(store_a / (b + 1.0) * d ** (b + 1.0) + store_c * d)


@njit_inline
def courant_step(
    net: JitNetwork,
    q: FloatArray,
    a_mid: FloatArray,
    froude: FloatArray,
    depth: FloatArray,
    dydt: FloatArray,
    max_step: float,
    factor: float,
) -> float:
    """SWMM's variable step (see :func:`scenarios.flood.kernel.courant_step`), s."""
    t_min = np.inf
    for j in range(q.size):
        aq = abs(q[j])
        if aq > FUDGE and a_mid[j] > FUDGE and froude[j] > 0.01:
            t_min = min(t_min, a_mid[j] * net.length[j] / aq * froude[j] / (1.0 + froude[j]))
    step = max_step
    if t_min < np.inf:
        step = min(step, t_min * factor)
    for i in range(depth.size):
        crown = net.crown_depth[i]
        if (
            net.node_kind[i] != OUTFALL
            and depth[i] > FUDGE
            and depth[i] + FUDGE < crown
            and dydt[i] > FUDGE
            and crown * 0.25 > FUDGE
        ):
            step = min(step, 0.25 * crown / dydt[i])
    return step


@njit_inline
def _conduits(
    net: JitNetwork,
    depth: FloatArray,
    q_old: FloatArray,
    q_last: FloatArray,
    a_old: FloatArray,
    dt: float,
    relax: bool,
    closed: BoolArray,
    y_min: FloatArray,
    q_out: FloatArray,
    dqdh_out: FloatArray,
    surf1_out: FloatArray,
    surf2_out: FloatArray,
    a_out: FloatArray,
    froude_out: FloatArray,
) -> None:
    for j in range(q_old.size):
        n1, n2 = net.c_from[j], net.c_to[j]
        yf = net.y_full[j]
        length = net.length[j]
        closed_x = net.closed_x[j]
        ql = q_last[j]
        z1 = net.invert[n1] + net.z_in[j]
        z2 = net.invert[n2] + net.z_out[j]
        h1 = max(net.invert[n1] + depth[n1], z1)
        h2 = max(net.invert[n2] + depth[n2], z2)
        y1 = min(max(h1 - z1, FUDGE), yf)
        y2 = min(max(h2 - z2, FUDGE), yf)
        full = y1 >= yf and y2 >= yf
        wet1, wet2 = y1 > FUDGE, y2 > FUDGE
        off1 = net.z_in[j] > 0 or net.node_kind[n1] == OUTFALL
        off2 = net.z_out[j] > 0 or net.node_kind[n2] == OUTFALL
        dry = not wet1 and not wet2
        dn_dry = wet1 and not wet2 and h1 < z2
        up_dry = not wet1 and wet2 and h2 < z1
        dn_crit = not full and off2 and wet1 and not dn_dry and ql >= 0 and y2 < y_min[j]
        up_crit = not full and off1 and wet2 and not up_dry and ql < 0 and y1 < y_min[j]
        if dn_crit:
            y2 = y_min[j]
            h2 = z2 + y2
        if up_crit:
            y1 = y_min[j]
            h1 = z1 + y1
        y_mid = max(0.5 * (y1 + y2), FUDGE)
        cap = CROWN_CUTOFF * yf if closed_x else yf
        area, radius, width = net.area, net.radius, net.width
        i1, f1 = _at(y1, yf)
        i2, f2 = _at(y2, yf)
        im, fm = _at(y_mid, yf)
        a1 = area[j, i1] * (1.0 - f1) + area[j, i1 + 1] * f1
        r1 = radius[j, i1] * (1.0 - f1) + radius[j, i1 + 1] * f1
        a2 = area[j, i2] * (1.0 - f2) + area[j, i2 + 1] * f2
        am = area[j, im] * (1.0 - fm) + area[j, im + 1] * fm
        rm = radius[j, im] * (1.0 - fm) + radius[j, im + 1] * fm
        # top widths of closed conduits near the crown are taken at the crown cutoff
        if closed_x and max(max(y1, y2), y_mid) > cap:
            w1 = _lookup(width, j, min(y1, cap), yf)
            w2 = _lookup(width, j, min(y2, cap), yf)
            wm = _lookup(width, j, min(y_mid, cap), yf)
        else:
            w1 = width[j, i1] * (1.0 - f1) + width[j, i1 + 1] * f1
            w2 = width[j, i2] * (1.0 - f2) + width[j, i2 + 1] * f2
            wm = width[j, im] * (1.0 - fm) + width[j, im + 1] * fm
        surf1 = (w1 + wm) * length / 4.0
        surf2 = (wm + w2) * length / 4.0
        if dn_crit:
            surf1 = (w1 + wm) * length / 2.0
        elif up_crit:
            surf1 = 0.0
        if up_crit:
            surf2 = (wm + w2) * length / 2.0
        elif dn_crit:
            surf2 = 0.0
        if up_dry and net.z_in[j] > 0:
            surf1 = 0.0
        if dn_dry and net.z_out[j] > 0:
            surf2 = 0.0
        if dry:
            surf1 = FUDGE * length / 2.0
            surf2 = FUDGE * length / 2.0
        no_flow = dry or dn_dry or up_dry or closed[j] or am <= FUDGE

        v = min(max(ql / max(am, FUDGE), -MAX_VELOCITY), MAX_VELOCITY)
        hyd_depth = yf if y_mid >= yf else am / max(wm, FUDGE)
        froude = 0.0
        if not (full and closed_x):
            froude = abs(v) / np.sqrt(GRAVITY * max(hyd_depth, FUDGE))
        sigma = min(max(2.0 * (1.0 - froude), 0.0), 1.0)
        rho = sigma if (not full and ql > 0 and h1 >= h2) else 1.0
        a_w = a1 + (am - a1) * rho
        r_w = r1 + (rm - r1) * rho
        if full and closed_x:
            sigma = 0.0
        n_r = net.roughness[j]
        dq1 = dt * GRAVITY * n_r * n_r / max(r_w, FUDGE) ** (4.0 / 3.0) * abs(v)
        dq2 = dt * GRAVITY * a_w * (h2 - h1) / length
        dq3 = 2.0 * v * (am - a_old[j]) * sigma
        dq4 = dt * v * v * (a2 - a1) / length * sigma
        aq = abs(ql)
        losses = 0.0
        if a1 > FUDGE:
            losses += net.loss_in[j] * aq / a1
        if a2 > FUDGE:
            losses += net.loss_out[j] * aq / a2
        if am > FUDGE:
            losses += net.loss_avg[j] * aq / am
        dq5 = losses / 2.0 / length * dt
        denom = 1.0 + dq1 + dq5
        q = (q_old[j] - dq2 + dq3 + dq4) / denom
        dqdh = GRAVITY * dt * a_w / length / denom * net.barrels[j]

        # normal-flow limit (slope test, or Froude >= 1 upstream), not at critical-depth ends
        has_outfall = net.node_kind[n1] == OUTFALL or net.node_kind[n2] == OUTFALL
        check = y1 < y2
        fr1 = abs(q / max(a1, FUDGE)) / np.sqrt(GRAVITY * max(a1 / max(w1, FUDGE), FUDGE))
        if not has_outfall and wet1 and wet2 and fr1 >= 1.0:
            check = True
        beta = net.beta[j]
        if q > 0 and y1 < yf and not dn_crit and not up_crit and check and beta > 0:
            q = min(q, beta * a1 * r1 ** (2.0 / 3.0))

        if relax:
            q = (1.0 - OMEGA) * ql + OMEGA * q
            if q * ql < 0.0:
                q = 0.001 * np.sign(q)
        mf = net.max_flow[j]
        if mf > 0:
            q = min(max(q, -mf), mf)
        if net.flap[j] and q < 0:
            q = 0.0
        if q > FUDGE and depth[n1] <= FUDGE:
            q = FUDGE
        if q < -FUDGE and depth[n2] <= FUDGE:
            q = -FUDGE
        a_avg = am
        if no_flow:
            q = 0.0
            dqdh = GRAVITY * dt * am / length * net.barrels[j]
            a_avg = 0.5 * (a1 + a2)
            froude = 0.0
        q_out[j] = q
        dqdh_out[j] = dqdh
        surf1_out[j] = surf1
        surf2_out[j] = surf2
        a_out[j] = a_avg
        froude_out[j] = froude


@njit_inline
def _pumps(
    net: JitNetwork,
    pump_on: BoolArray,
    depth: FloatArray,
    volume: FloatArray,
    inflow: FloatArray,
    out: FloatArray,
) -> None:
    for k in range(out.size):
        out[k] = 0.0
        if not pump_on[k]:
            continue
        n1, n2 = net.p_from[k], net.p_to[k]
        x = net.p_x[net.p_start[k] : net.p_start[k + 1]]
        y = net.p_y[net.p_start[k] : net.p_start[k + 1]]
        kind = net.p_type[k]
        if kind == 0:
            flow = max(inflow[n1], 0.0)
        elif kind == 1 or kind == 2:
            level = volume[n1] if kind == 1 else depth[n1]
            i = min(int(np.searchsorted(x, level, side="left")), y.size - 1)
            flow = float(y[i])
        elif kind == 3:
            dh = (net.invert[n2] + depth[n2]) - (net.invert[n1] + depth[n1])
            flow = float(np.interp(dh, x, y))
        else:
            flow = float(np.interp(depth[n1], x, y))
        if depth[n1] <= FUDGE:
            flow = min(flow, max(inflow[n1], 0.0))
        out[k] = flow


@njit_inline
def _regulators(
    net: JitNetwork, depth: FloatArray, setting: FloatArray, q_out: FloatArray, dqdh_out: FloatArray
) -> None:
    for k in range(q_out.size):
        rf, rt = net.r_from[k], net.r_to[k]
        h1 = net.invert[rf] + depth[rf]
        h2 = net.invert[rt] + depth[rt]
        up, down = max(h1, h2), min(h1, h2)
        sign = 1.0 if h1 >= h2 else -1.0
        crest = net.invert[rf] + net.r_crest[k]
        head = max(up - crest, 0.0)
        opening = net.r_height[k] * setting[k]
        coeff = net.r_coeff[k]
        circle = np.pi / 4.0 * opening * opening
        area = circle if net.r_circular[k] else opening * net.r_width[k]
        centroid = crest + opening / 2.0
        dh_orifice = max(up - max(down, centroid), 0.0)
        if head < opening:
            frac = head / max(opening, FUDGE) if opening > 0 else 0.0
            q_orifice = coeff * area * np.sqrt(2.0 * GRAVITY * max(head / 2.0, 0.0)) * frac
        else:
            q_orifice = coeff * area * np.sqrt(2.0 * GRAVITY * dh_orifice)
        y = net.r_height[k]
        surcharged = net.r_is_weir[k] and y > 0 and head > y
        dh_surcharged = max(up - max(down, crest + y / 2.0), 0.0)
        if surcharged:
            # an orifice through the opening's mid-height (SWMM's weir_getInflow)
            q = (
                coeff * net.r_width[k] * setting[k] * y**1.5 / np.sqrt(max(y / 2.0, FUDGE))
                * np.sqrt(dh_surcharged) * sign
            )  # fmt: skip
        elif net.r_is_weir[k]:
            h_down = max(down - crest, 0.0)
            ratio = h_down / max(head, FUDGE) if head > 0 else 0.0
            submerge = max(1.0 - ratio**1.5, 0.0) ** 0.385
            q = coeff * net.r_width[k] * setting[k] * head**1.5 * submerge * sign
        else:
            q = q_orifice * sign
        if net.r_gated[k] and q < 0:
            q = 0.0
        q_out[k] = q
        if surcharged:
            dqdh_out[k] = 0.5 * abs(q) / max(dh_surcharged, 0.01)
        elif net.r_is_weir[k]:
            dqdh_out[k] = 1.5 * abs(q) / max(head, 0.01)
        else:
            dqdh_out[k] = 0.5 * abs(q) / max(dh_orifice, 0.01)


@njit_inline
def _net_flow(
    net: JitNetwork,
    lateral: FloatArray,
    flow: FloatArray,
    pumps: FloatArray,
    regs: FloatArray,
    out: FloatArray,
) -> None:
    out[:] = lateral
    for j in range(flow.size):
        out[net.c_to[j]] += flow[j]
        out[net.c_from[j]] -= flow[j]
    for k in range(pumps.size):
        out[net.p_to[k]] += pumps[k]
        out[net.p_from[k]] -= pumps[k]
    for k in range(regs.size):
        out[net.r_to[k]] += regs[k]
        out[net.r_from[k]] -= regs[k]


@njit_inline
def route_step(
    net: JitNetwork,
    depth: FloatArray,
    q: FloatArray,
    a_mid: FloatArray,
    pump_q: FloatArray,
    pump_on: BoolArray,
    reg_q: FloatArray,
    net_inflow: FloatArray,
    overflow: FloatArray,
    ponded: FloatArray,
    old_surf: FloatArray,
    dydt: FloatArray,
    froude: FloatArray,
    lateral: FloatArray,
    dt: float,
    min_area: float,
    pump_enabled: BoolArray,
    reg_setting: FloatArray,
    conduit_closed: BoolArray,
    outfall_flow: FloatArray,
) -> int:
    """One step of :func:`scenarios.flood.kernel.route_step` on the state arrays, in place.

    Returns the Picard trials taken, or -1 if depths stopped being finite.
    """
    ws_n, ws_m, ws_p, ws_r = workspace(depth.size, q.size, pump_q.size, reg_q.size)
    return _route_step(
        net, depth, q, a_mid, pump_q, pump_on, reg_q, net_inflow, overflow, ponded, old_surf,
        dydt, froude, lateral, dt, min_area, pump_enabled, reg_setting, conduit_closed,
        outfall_flow, ws_n, ws_m, ws_p, ws_r,
    )  # fmt: skip


@njit_inline
def workspace(
    n: int, m: int, p: int, r: int
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Scratch rows for :func:`_route_step`."""
    return np.zeros((N_WS_N, n)), np.zeros((N_WS_M, m)), np.zeros((1, p)), np.zeros((2, r))


@njit_inline
def _route_step(
    net: JitNetwork,
    depth: FloatArray,
    q: FloatArray,
    a_mid: FloatArray,
    pump_q: FloatArray,
    pump_on: BoolArray,
    reg_q: FloatArray,
    net_inflow: FloatArray,
    overflow: FloatArray,
    ponded: FloatArray,
    old_surf: FloatArray,
    dydt: FloatArray,
    froude: FloatArray,
    lateral: FloatArray,
    dt: float,
    min_area: float,
    pump_enabled: BoolArray,
    reg_setting: FloatArray,
    conduit_closed: BoolArray,
    outfall_flow: FloatArray,
    ws_n: FloatArray,
    ws_m: FloatArray,
    ws_p: FloatArray,
    ws_r: FloatArray,
) -> int:
    """:func:`route_step` with scratch rows ``ws_n`` (N_WS_N, n), ``ws_m`` (N_WS_M, m), ``ws_p``
    (1, p) and ``ws_r`` (2, r) instead of allocating them every step."""
    n, m = depth.size, q.size
    n_pumps, n_regs = pump_q.size, reg_q.size
    y_old, volume, inflow, surf, net_q = ws_n[0], ws_n[1], ws_n[2], ws_n[3], ws_n[4]
    sum_dqdh, y_last, gives, factor, have = ws_n[5], ws_n[6], ws_n[7], ws_n[8], ws_n[9]
    q_old, y_crit, y_norm, y_min, q_last, cq = ws_m[0], ws_m[1], ws_m[2], ws_m[3], ws_m[4], ws_m[5]
    dqdh, surf1, surf2, a_new, fr_new, flow = ws_m[6], ws_m[7], ws_m[8], ws_m[9], ws_m[10], ws_m[11]
    pumps, regs, reg_dqdh = ws_p[0], ws_r[0], ws_r[1]
    y_old[:] = depth
    q_old[:] = q
    for k in range(n_pumps):
        d = depth[net.p_from[k]]
        on = pump_on[k]
        if net.p_startup[k] > 0 and d >= net.p_startup[k]:
            on = True
        if net.p_shutoff[k] > 0 and d < net.p_shutoff[k]:
            on = False
        pump_on[k] = on and pump_enabled[k]
    if n_pumps:
        _node_volumes(net, y_old, min_area, volume)
    # critical and normal depth of the old flows; outfall depths
    for j in range(m):
        yf = net.y_full[j]
        aq = abs(q_old[j])
        y_crit[j] = _invert(net.q_crit, j, aq, yf)
        y_norm[j] = yf
        if net.beta[j] > 0:
            y_norm[j] = _invert(net.section, j, aq / max(net.beta[j], 1e-30), yf)
        y_min[j] = max(min(y_crit[j], y_norm[j]), FUDGE)
    for i in range(n):
        if net.node_kind[i] != OUTFALL:
            continue
        d = 0.0
        link = net.outfall_conduit[i]
        if link >= 0 and not net.z_out[link] > 0:
            d = min(y_crit[link], y_norm[link])
        if net.outfall_fixed[i]:
            d = max(net.outfall_stage[i], 0.0)
        depth[i] = d

    q_last[:] = q_old
    pumps[:] = 0.0
    regs[:] = 0.0
    reg_dqdh[:] = 0.0
    trials = 0
    for trial in range(MAX_TRIALS):
        trials = trial + 1
        y_last[:] = depth
        _conduits(
            net, y_last, q_old, q_last, a_mid, dt, trial > 0, conduit_closed, y_min,
            cq, dqdh, surf1, surf2, a_new, fr_new,
        )  # fmt: skip
        q_last[:] = cq
        inflow[:] = lateral
        for j in range(m):
            flow[j] = cq[j] * net.barrels[j]
            if flow[j] > 0:
                inflow[net.c_to[j]] += flow[j]
            else:
                inflow[net.c_from[j]] += -flow[j]
        _pumps(net, pump_on, y_last, volume, inflow, pumps)
        _regulators(net, y_last, reg_setting, regs, reg_dqdh)
        _node_areas(net, y_last, surf)
        for j in range(m):
            surf[net.c_from[j]] += surf1[j] * net.barrels[j]
            surf[net.c_to[j]] += surf2[j] * net.barrels[j]
        for i in range(n):
            surf[i] = max(surf[i], min_area)
        if n_regs or n_pumps:
            # regulators and pumps cannot draw more than a node holds plus what it receives
            gives[:] = 0.0
            for k in range(n_regs):
                gives[net.r_from[k]] += max(regs[k], 0.0)
                gives[net.r_to[k]] += max(-regs[k], 0.0)
            for k in range(n_pumps):
                gives[net.p_from[k]] += pumps[k]
            for i in range(n):
                have[i] = y_old[i] * surf[i] / dt + inflow[i]
            for j in range(m):
                have[net.c_from[j]] -= max(flow[j], 0.0)
            for i in range(n):
                h = max(have[i], 0.0)
                factor[i] = h / max(gives[i], 1e-12) if gives[i] > h else 1.0
            for k in range(n_regs):
                regs[k] *= factor[net.r_from[k]] if regs[k] >= 0 else factor[net.r_to[k]]
            for k in range(n_pumps):
                pumps[k] *= factor[net.p_from[k]]
        _net_flow(net, lateral, flow, pumps, regs, net_q)
        sum_dqdh[:] = 0.0
        for j in range(m):
            sum_dqdh[net.c_from[j]] += dqdh[j]
            sum_dqdh[net.c_to[j]] += dqdh[j]
        for k in range(n_regs):
            sum_dqdh[net.r_from[k]] += reg_dqdh[k]
            sum_dqdh[net.r_to[k]] += reg_dqdh[k]
        converged = True
        for i in range(n):
            kind = net.node_kind[i]
            can_pond = net.ponded_area[i] > 0
            full_d = net.full_depth[i]
            y_max = full_d if can_pond else net.flood_depth[i]
            crown = net.crown_depth[i]
            yl = y_last[i]
            ponded_now = can_pond and yl > full_d
            s = net.ponded_area[i] if ponded_now else surf[i]
            dv = 0.5 * (net_inflow[i] + net_q[i]) * dt
            surcharged = kind == JUNCTION and not ponded_now and crown > 0 and yl > crown
            y_free = y_old[i] + dv / s
            if trial > 0:
                y_free = (1.0 - OMEGA) * yl + OMEGA * y_free
            if ponded_now:
                y_free = max(y_free, full_d - FUDGE)
            denom = sum_dqdh[i]
            if yl < 1.25 * crown:
                f = (yl - crown) / max(crown, FUDGE)
                denom = denom + (old_surf[i] / dt - sum_dqdh[i]) * np.exp(-15.0 * f)
            step = net_q[i] / max(denom, 1e-12) if denom > 0 else 0.0
            y_sur = max(yl + step, crown - FUDGE)
            y_new = max(y_sur if surcharged else y_free, 0.0)
            if not surcharged and not ponded_now:
                old_surf[i] = surf[i]
            over = kind != OUTFALL and y_new > y_max
            # flooded: what the node cannot hold leaves (or ponds where allowed);
            # as SWMM: a flooded node loses the step's whole net inflow
            overflow[i] = max(dv / dt, 0.0) if (over and not can_pond) else 0.0
            ponded[i] = (
                max(y_new - full_d, 0.0) * net.ponded_area[i] if (can_pond and over) else 0.0
            )
            if over and not can_pond:
                y_new = y_max
            if kind != OUTFALL:
                depth[i] = y_new
                if not np.isfinite(y_new):
                    return -1
                if abs(y_new - yl) > HEAD_TOL_M:
                    converged = False
        pump_q[:] = pumps
        reg_q[:] = regs
        if trial > 0 and converged:
            break
    q[:] = q_last
    a_mid[:] = a_new
    froude[:] = fr_new
    for j in range(m):
        flow[j] = q[j] * net.barrels[j]
    _net_flow(net, lateral, flow, pump_q, reg_q, net_q)
    for i in range(n):
        out = net.node_kind[i] == OUTFALL
        net_inflow[i] = 0.0 if out else net_q[i]
        outfall_flow[i] = net_q[i] if out else 0.0
        dydt[i] = abs(depth[i] - y_old[i]) / dt
    return trials


@njit_inline
def _compare(x: float, op: int, v: float) -> bool:
    if op == 0:
        return x == v
    if op == 1:
        return x != v
    if op == 2:
        return x < v
    if op == 3:
        return x <= v
    if op == 4:
        return x > v
    return x >= v


@njit_inline
def _clock_time(start_sod: float, t: float) -> float:
    """Seconds since midnight at ``t`` s after a start ``start_sod`` s after midnight (whole
    seconds, the run time rounded to microseconds first, as ``datetime + timedelta`` does)."""
    us = np.round(t * 1e6)
    return float((start_sod + np.floor(us / 1e6)) % 86400.0)


@njit_inline
def _apply_rules(
    rules: JitRules,
    net: JitNetwork,
    now: float,
    start_sod: float,
    depth: FloatArray,
    net_inflow: FloatArray,
    q: FloatArray,
    pump_q: FloatArray,
    pump_on: BoolArray,
    reg_q: FloatArray,
    pump_enabled: BoolArray,
    reg_setting: FloatArray,
    conduit_closed: BoolArray,
    log: FloatArray,
    tally: FloatArray,
) -> None:
    """One pass of the control rules at time ``now``, as the model's Python rule actor does:
    rules in order, premises left to right with AND/OR, actions applied at once (a later rule
    sees an earlier one's pump status). Pump switches go to ``log`` (t, rule, pump, on)."""
    for r in range(rules.r_premise.size - 1):
        result = True
        p0 = rules.r_premise[r]
        for p in range(p0, rules.r_premise[r + 1]):
            subject, k, kind = rules.p_subject[p], rules.p_index[p], rules.p_link_kind[p]
            if subject == P_TIME:
                x = now
            elif subject == P_CLOCK:
                x = _clock_time(start_sod, now)
            elif subject == P_DEPTH:
                x = depth[k]
            elif subject == P_HEAD:
                x = depth[k] + net.invert[k]
            elif subject == P_INFLOW:
                x = net_inflow[k]
            elif subject == P_STATUS:
                if kind == L_PUMP:
                    x = 1.0 if pump_on[k] else 0.0
                else:
                    x = 0.0 if conduit_closed[k] else 1.0
            elif kind == L_PUMP:
                x = pump_q[k]
            elif kind == L_REG:
                x = reg_q[k]
            else:
                x = q[k] * net.barrels[k]
            value = _compare(x, rules.p_op[p], rules.p_value[p])
            if p == p0:
                result = value
            elif rules.p_or[p]:
                result = result or value
            else:
                result = result and value
        a0 = rules.r_action[2 * r] if result else rules.r_action[2 * r + 1]
        a1 = rules.r_action[2 * r + 1] if result else rules.r_action[2 * r + 2]
        for a in range(a0, a1):
            kind, k, v = rules.a_kind[a], rules.a_index[a], rules.a_value[a]
            if kind == L_PUMP:
                on = v > 0
                if on != pump_on[k] and pump_enabled[k]:
                    pump_on[k] = on
                    e = int(tally[T_LOG])
                    log[e, 0], log[e, 1], log[e, 2] = now, r, k
                    log[e, 3] = 1.0 if on else 0.0
                    tally[T_LOG] += 1.0
            elif kind == L_REG:
                reg_setting[k] = min(max(v, 0.0), 1.0)
            else:
                conduit_closed[k] = v <= 0


@njit_inline
def _sample(series: FloatArray, depth: FloatArray, clock: FloatArray, first: float) -> None:
    k = int(clock[C_K])
    series[k, :] = depth
    clock[C_PREV_T] = clock[C_REPORT_T]
    clock[C_PREV_FIRST] = first
    clock[C_REPORT_T] += clock[C_REPORT_STEP]
    clock[C_K] = k + 1


@njit_inline
def _record(
    series: FloatArray, depth: FloatArray, clock: FloatArray, t: float, call_t: float
) -> None:
    """The report samples a step ending at ``t`` gives (the old SimPy recorder's, exactly).

    The recorder actor read the state at report time P after SimPy ran whatever routing
    activation came first: the state after the step crossing P; after one more step when
    that step ended within 1e-9 s short of P; and when it ended exactly on P, after one more
    step only if routing's activation was scheduled before the recorder's (its call began
    before the previous report time, or at it and ahead of the recorder there).
    """
    while clock[C_K] < series.shape[0]:
        if clock[C_WAIT] > 0:
            first = clock[C_WAIT_B]
            clock[C_WAIT] = 0.0
            clock[C_WAIT_B] = 0.0
            _sample(series, depth, clock, first)
            continue
        p = clock[C_REPORT_T]
        if t < p - 1e-9:
            return
        if t > p:
            _sample(series, depth, clock, 0.0)
            continue
        if t < p:
            clock[C_WAIT] = 1.0
            return
        if call_t < clock[C_PREV_T] or (call_t == clock[C_PREV_T] and clock[C_PREV_FIRST] > 0):
            clock[C_WAIT] = 1.0
            clock[C_WAIT_B] = 1.0
            return
        _sample(series, depth, clock, 0.0)


@njit
def skip_reports(
    series: FloatArray, depth: FloatArray, clock: FloatArray, call_t: float, until: float
) -> None:
    """Report samples over a dry spell: routing's activation at ``call_t`` skipped to ``until``."""
    n = series.shape[0]
    if clock[C_K] < n and clock[C_WAIT] > 0:
        first = clock[C_WAIT_B]
        clock[C_WAIT] = 0.0
        clock[C_WAIT_B] = 0.0
        _sample(series, depth, clock, first)
    while clock[C_K] < n and clock[C_REPORT_T] < until:
        _sample(series, depth, clock, 0.0)
    if clock[C_K] < n and clock[C_REPORT_T] == until:
        if call_t < clock[C_PREV_T] or (call_t == clock[C_PREV_T] and clock[C_PREV_FIRST] > 0):
            clock[C_WAIT] = 1.0
            clock[C_WAIT_B] = 1.0
        else:
            _sample(series, depth, clock, 0.0)


@njit_inline
def _end_call(clock: FloatArray, tally: FloatArray) -> None:
    """The old model added each activation's inflow to the run total: the same sums."""
    clock[C_INFLOW] += tally[T_INFLOW]
    tally[T_INFLOW] = 0.0


@njit
def advance(
    net: JitNetwork,
    depth: FloatArray,
    q: FloatArray,
    a_mid: FloatArray,
    pump_q: FloatArray,
    pump_on: BoolArray,
    reg_q: FloatArray,
    net_inflow: FloatArray,
    overflow: FloatArray,
    ponded: FloatArray,
    old_surf: FloatArray,
    dydt: FloatArray,
    froude: FloatArray,
    t: float,
    t_stop: float,
    duration: float,
    routing_step: float,
    variable_step: float,
    min_route_step: float,
    min_area: float,
    pump_enabled: BoolArray,
    reg_setting: FloatArray,
    conduit_closed: BoolArray,
    runoff_old: FloatArray,
    runoff_new: FloatArray,
    runoff_t_old: float,
    runoff_t_new: float,
    extra_lateral: FloatArray,
    inflow_base: FloatArray,
    hour: int,
    may_quiet: bool,
    no_quiet_until: float,
    quiet_flow: float,
    g_start: IntArray,
    g_t: FloatArray,
    g_values: FloatArray,
    g_interval: FloatArray,
    flood_m3: FloatArray,
    spilled: FloatArray,
    outfall_m3: FloatArray,
    outfall_peak: FloatArray,
    link_peak: FloatArray,
    max_depth: FloatArray,
    surcharge_s: FloatArray,
    rules: JitRules,
    clock: FloatArray,
    series: FloatArray,
    log: FloatArray,
    tally: FloatArray,
) -> float:
    """Route from ``t`` until ``t >= t_stop`` (at least one step unless handing back early).

    ``t_stop`` is the next event of a SimPy actor. Between, the kernel replays the routing
    activations the old per-event model had at every control-rule time and report time
    (``clock[C_RULES_ON]``, ``clock[C_REC_ON]``): each begins at the time SimPy would have
    given it (start + (end − start)), applies the rules due by then, and stops where SimPy's
    next event would have stopped it, so steps, rules and report samples are bitwise those
    of one SimPy event per rule and report. ``may_quiet`` says whether runoff, coupled and
    external inflows allow a dry spell; rain is checked here at each activation.

    Hands back early with ``tally[T_STATUS]`` = ``QUIET`` (before a step, when the network
    may be quiet and no conduit or pump moves water), ``NEW_HOUR`` (the next step ends in
    another hour than ``inflow_base`` was made for; ``tally[T_HOUR]`` names it),
    ``LOG_FULL`` (flush ``log``, ``tally[T_LOG]`` rows) or ``UNSTABLE``; ``tally[T_CALL]`` is
    then the start of the activation. Returns the new time (s): the start of the next
    activation when ``REACHED`` or ``LOG_FULL``, the time reached otherwise.
    """
    n = depth.size
    lateral = np.empty(n)
    outfall_flow = np.empty(n)
    rates = np.zeros(g_start.size - 1)
    ws_n, ws_m, ws_p, ws_r = workspace(n, q.size, pump_q.size, reg_q.size)
    tally[T_STATUS] = REACHED
    rules_on = clock[C_RULES_ON] > 0
    rec_on = clock[C_REC_ON] > 0
    call_t = t
    while True:
        tally[T_CALL] = call_t
        if rules_on:
            while clock[C_RULE_T] <= call_t:
                if tally[T_LOG] + rules.a_kind.size > log.shape[0]:
                    tally[T_STATUS] = LOG_FULL
                    _end_call(clock, tally)
                    return call_t
                _apply_rules(
                    rules, net, clock[C_RULE_T], clock[C_START_SOD], depth, net_inflow, q,
                    pump_q, pump_on, reg_q, pump_enabled, reg_setting, conduit_closed, log,
                    tally,
                )  # fmt: skip
                clock[C_RULE_T] += clock[C_RULE_STEP]
        stop = t_stop
        if rules_on:
            stop = min(stop, clock[C_RULE_T])
        if rec_on and clock[C_K] < series.shape[0]:
            stop = min(stop, call_t if clock[C_WAIT_B] > 0 else clock[C_REPORT_T])
        quiet_ok = may_quiet and call_t > no_quiet_until
        if quiet_ok and rates.size:
            rates[:] = 0.0
            gage_rates_into(g_start, g_t, g_values, g_interval, call_t, rates)
            quiet_ok = not rates.max() > 0
        t = call_t
        first = True
        while first or (t < stop - 1e-9 and t < duration - 1e-9):
            first = False
            if variable_step > 0:
                dt = courant_step(net, q, a_mid, froude, depth, dydt, routing_step, variable_step)
                dt = min(max(dt, min_route_step), routing_step)
            else:
                dt = routing_step
            dt = min(dt, duration - t)
            if quiet_ok:
                quiet = True
                for j in range(q.size):
                    if abs(q[j]) > quiet_flow:
                        quiet = False
                        break
                for k in range(pump_q.size):
                    if pump_q[k] > 0:
                        quiet = False
                if quiet:
                    tally[T_STATUS] = QUIET
                    _end_call(clock, tally)
                    return t
            t_end = t + dt
            if net.inflow_node.size and int(t_end // 3600.0) != hour:
                tally[T_STATUS] = NEW_HOUR
                tally[T_HOUR] = int(t_end // 3600.0)
                _end_call(clock, tally)
                return t
            # lateral inflow at the step's end
            lateral[:] = extra_lateral
            span = runoff_t_new - runoff_t_old
            f = 1.0 if span <= 0 else min(max((t_end - runoff_t_old) / span, 0.0), 1.0)
            for s in range(runoff_old.size):
                lateral[net.s_outlet[s]] += runoff_old[s] + (runoff_new[s] - runoff_old[s]) * f
            for k in range(net.inflow_node.size):
                ext = inflow_base[k]
                a0, a1 = net.inflow_start[k], net.inflow_start[k + 1]
                if a1 > a0:
                    ext += net.inflow_scale[k] * float(
                        np.interp(t_end, net.inflow_t[a0:a1], net.inflow_v[a0:a1])
                    )
                lateral[net.inflow_node[k]] += ext
            trials = _route_step(
                net, depth, q, a_mid, pump_q, pump_on, reg_q, net_inflow, overflow, ponded,
                old_surf, dydt, froude, lateral, dt, min_area, pump_enabled, reg_setting,
                conduit_closed, outfall_flow, ws_n, ws_m, ws_p, ws_r,
            )  # fmt: skip
            if trials < 0:
                tally[T_STATUS] = UNSTABLE
                _end_call(clock, tally)
                return t
            tally[T_STEPS] += 1.0
            tally[T_TRIALS] += trials
            tally[T_INFLOW] += lateral.sum() * dt
            for i in range(n):
                flood_m3[i] += overflow[i] * dt
                spilled[i] += overflow[i] * dt
                out = outfall_flow[i]
                outfall_m3[i] += max(out, 0.0) * dt
                if net.node_kind[i] == OUTFALL:
                    tally[T_INFLOW] += max(-out, 0.0) * dt
                outfall_peak[i] = max(outfall_peak[i], out)
                max_depth[i] = max(max_depth[i], depth[i])
                crown = net.crown_depth[i]
                if depth[i] > crown + FUDGE and crown > 0 and net.node_kind[i] != OUTFALL:
                    surcharge_s[i] += dt
            for j in range(q.size):
                link_peak[j] = max(link_peak[j], abs(q[j]) * net.barrels[j])
            t = t_end
            if rec_on:
                _record(series, depth, clock, t, call_t)
        # the activation ends; SimPy's clock then reads start + (end - start)
        next_t = call_t + (t - call_t)
        _end_call(clock, tally)
        if t >= t_stop - 1e-9 or next_t >= duration - 1e-9:
            return next_t
        call_t = next_t
