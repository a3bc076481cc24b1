"""Subcatchment runoff kernels: rain lookup, Horton infiltration, nonlinear reservoirs.

Rain lookup in numpy; infiltration and the reservoirs as compiled (numba) loops over the
subcatchments, the same formulas as the array form they replaced. Each subcatchment has three
subareas (impervious without depression storage, impervious, pervious), each a nonlinear
reservoir as in SWMM: ``dd/dt = i − α·(d − ds)^(5/3)`` with ``α = W/A·√S/n`` (SI Manning),
solved implicitly so a step conserves water exactly: ``d_new = d + i·dt − q·dt``. Subareas
with ``n = 0`` pass everything above depression storage at once, as SWMM does.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scenarios.flood.jit import njit
from scenarios.flood.network import TimeSeries

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MANNING_EXP = 5.0 / 3.0
NEWTON_ITERATIONS = 12
TIME_TOL_S = 0.5
# runoff_step() flags
RAINED, FLOWS, PONDED = 1, 2, 4


def gage_rates(series: list[TimeSeries], interval_s: FloatArray, t_s: float) -> FloatArray:
    """Rain intensity (m/s) of every gauge at time ``t_s``.

    A gauge record holds from its time for one recording interval; outside any record the
    rain is zero. Record times within ``TIME_TOL_S`` of ``t_s`` count as reached (files give
    times as decimal hours, so 0.083333 h is 299.9988 s).

    Returns
    -------
    (g,) float, m/s
    """
    out = np.zeros(len(series))
    for g, ts in enumerate(series):
        k = int(np.searchsorted(ts.t_s, t_s + TIME_TOL_S, side="right")) - 1
        if k >= 0 and t_s + TIME_TOL_S < ts.t_s[k] + interval_s[g]:
            out[g] = ts.values[k]
    return out


class GageTable:
    """All gauges' records flattened once, for :meth:`rates` at every runoff step."""

    def __init__(self, series: list[TimeSeries], interval_s: FloatArray) -> None:
        self.start = np.zeros(len(series) + 1, dtype=np.int64)
        self.start[1:] = np.cumsum([len(ts.t_s) for ts in series])
        self.t_s = np.concatenate(
            [np.asarray(ts.t_s, dtype=np.float64) for ts in series] or [np.zeros(0)]
        )
        self.values = np.concatenate(
            [np.asarray(ts.values, dtype=np.float64) for ts in series] or [np.zeros(0)]
        )
        self.interval_s = np.asarray(interval_s, dtype=np.float64)

    def rates(self, t_s: float) -> FloatArray:
        """:func:`gage_rates` at ``t_s`` (m/s), compiled."""
        out = np.zeros(len(self.start) - 1)
        _gage_rates(self.start, self.t_s, self.values, self.interval_s, float(t_s), out)
        return out


@njit
def gage_rates_into(
    start: npt.NDArray[np.int64],
    t_s: FloatArray,
    values: FloatArray,
    interval_s: FloatArray,
    t: float,
    out: FloatArray,
) -> None:
    """:meth:`GageTable.rates` into ``out`` (zeros), for compiled callers."""
    _gage_rates(start, t_s, values, interval_s, t, out)


@njit
def _gage_rates(
    start: npt.NDArray[np.int64],
    t_s: FloatArray,
    values: FloatArray,
    interval_s: FloatArray,
    t: float,
    out: FloatArray,
) -> None:
    for g in range(out.size):
        times = t_s[start[g] : start[g + 1]]
        k = int(np.searchsorted(times, t + TIME_TOL_S, side="right")) - 1
        if k >= 0 and t + TIME_TOL_S < times[k] + interval_s[g]:
            out[g] = values[start[g] + k]


def next_rain_change(series: list[TimeSeries], interval_s: FloatArray, t_s: float) -> float:
    """First time after ``t_s`` when a gauge record starts or stops (s); inf if none."""
    best = np.inf
    for g, ts in enumerate(series):
        edges = np.concatenate([ts.t_s, ts.t_s + interval_s[g]])
        later = edges[edges > t_s + TIME_TOL_S]
        if later.size:
            best = min(best, float(later.min()))
    return best


def horton_cumulative(
    tp_s: FloatArray, f0: FloatArray, fmin: FloatArray, decay: FloatArray
) -> FloatArray:
    """Horton infiltration capacity integrated from 0 to ``tp_s`` (m)."""
    safe = np.maximum(decay, 1e-30)
    out: FloatArray = fmin * tp_s + (f0 - fmin) / safe * (1.0 - np.exp(-safe * tp_s))
    return out


def horton_infiltration(
    horton: FloatArray, infiltrated_m: FloatArray, supply_mps: FloatArray, dt_s: float
) -> FloatArray:
    """Infiltration rate (m/s) over one step, Horton's capacity curve in cumulative form.

    The capacity curve's time is found from the volume already infiltrated, so a dry spell
    within the event does not reset it (no recovery modelled).

    Parameters
    ----------
    horton : (s, 5) float — f0 (m/s), fmin (m/s), decay (1/s), dry time (s), max volume (m; 0 none)
    infiltrated_m : (s,) float, m — volume infiltrated so far per unit area
    supply_mps : (s,) float, m/s — rain plus ponded water available this step
    dt_s : step (s)
    """
    out = np.zeros(len(horton))
    _horton(np.ascontiguousarray(horton, dtype=np.float64), infiltrated_m, supply_mps, dt_s, out)
    return out


@njit
def _cumulative_jit(tp: float, f0: float, fmin: float, decay: float) -> float:
    """:func:`horton_cumulative` for one subcatchment."""
    safe = max(decay, 1e-30)
    return float(fmin * tp + (f0 - fmin) / safe * (1.0 - np.exp(-safe * tp)))


@njit
def _horton(
    horton: FloatArray, infiltrated: FloatArray, supply: FloatArray, dt: float, out: FloatArray
) -> None:
    """Per subcatchment: the numpy formulation of :func:`horton_infiltration`, compiled."""
    for i in range(out.size):
        f0, fmin, decay, fmax = horton[i, 0], horton[i, 1], horton[i, 2], horton[i, 4]
        if not f0 > 0:
            out[i] = 0.0
            continue
        # invert F(tp) = infiltrated for tp by Newton (F is increasing and concave)
        tp = infiltrated[i] / max(f0, 1e-30) if fmin > 0 else 0.0
        for _ in range(NEWTON_ITERATIONS):
            rate = fmin + (f0 - fmin) * np.exp(-decay * tp)
            g = _cumulative_jit(tp, f0, fmin, decay) - infiltrated[i]
            tp_new = max(tp - g / max(rate, 1e-30), 0.0)
            if tp_new == tp:
                break  # a fixed point: further iterations would return the same tp
            tp = tp_new
        capacity = _cumulative_jit(tp + dt, f0, fmin, decay) - _cumulative_jit(tp, f0, fmin, decay)
        if fmax > 0:
            capacity = min(capacity, max(fmax - infiltrated[i], 0.0))
        out[i] = min(capacity / dt, max(supply[i], 0.0))


def subarea_runoff(
    depth_m: FloatArray,
    inflow_mps: FloatArray,
    alpha: FloatArray,
    dstore_m: FloatArray,
    routed: BoolArray,
    dt_s: float,
) -> tuple[FloatArray, FloatArray]:
    """One implicit step of the nonlinear reservoirs of all subareas.

    Parameters
    ----------
    depth_m : (s, 3) float, m — ponded depth at the start of the step
    inflow_mps : (s, 3) float, m/s — rain minus losses (may be negative)
    alpha : (s, 3) float — reservoir coefficient W/A·√S/n
    dstore_m : (s, 3) float, m — depression storage
    routed : (s, 3) bool — nonlinear reservoir (True) or direct runoff (False)
    dt_s : step (s)

    Returns
    -------
    depth : (s, 3) float, m — depth at the end of the step
    runoff : (s, 3) float, m/s — outflow rate per unit area over the step
    """
    new_depth = np.zeros(depth_m.shape)
    runoff = np.zeros(depth_m.shape)
    _reservoirs(
        np.ascontiguousarray(depth_m, dtype=np.float64),
        np.ascontiguousarray(inflow_mps, dtype=np.float64),
        np.ascontiguousarray(alpha, dtype=np.float64),
        np.ascontiguousarray(dstore_m, dtype=np.float64),
        np.ascontiguousarray(routed, dtype=np.bool_),
        dt_s,
        new_depth,
        runoff,
    )
    return new_depth, runoff


@njit
def _reservoirs(
    depth: FloatArray,
    inflow: FloatArray,
    alpha: FloatArray,
    dstore: FloatArray,
    routed: BoolArray,
    dt: float,
    new_depth: FloatArray,
    runoff: FloatArray,
) -> None:
    """Per subarea: the numpy formulation of :func:`subarea_runoff`, compiled."""
    rows, cols = depth.shape
    for i in range(rows):
        for j in range(cols):
            level = max(depth[i, j] + inflow[i, j] * dt, 0.0)
            excess = max(level - dstore[i, j], 0.0)
            held = min(level, dstore[i, j])
            if not routed[i, j]:
                runoff[i, j] = excess / dt
                new_depth[i, j] = held
                continue
            # solve e + dt·α·e^(5/3) = excess for the depth e above storage (Newton from excess)
            e = excess
            k = dt * alpha[i, j]
            for _ in range(NEWTON_ITERATIONS):
                g = e + k * e**MANNING_EXP - excess
                e_new = max(e - g / (1.0 + MANNING_EXP * k * np.cbrt(e * e)), 0.0)
                if e_new == e:
                    break  # a fixed point (dry subareas at once): the same e as 12 iterations
                e = e_new
            runoff[i, j] = (excess - e) / dt
            new_depth[i, j] = held + e


@njit
def runoff_step(
    g_start: npt.NDArray[np.int64],
    g_t: FloatArray,
    g_values: FloatArray,
    g_interval: FloatArray,
    s_gage: npt.NDArray[np.int64],
    horton: FloatArray,
    alpha: FloatArray,
    dstore: FloatArray,
    routed: BoolArray,
    area: FloatArray,
    t: float,
    dt: float,
    depth: FloatArray,
    infiltrated: FloatArray,
    rain: FloatArray,
    infil: FloatArray,
    flow: FloatArray,
) -> int:
    """One runoff step of every subcatchment in one compiled call (the model's runoff actor).

    The same operations in the same order as gauge lookup, :func:`horton_infiltration`,
    :func:`subarea_runoff` and the outflow sum over the three subareas done with numpy, so
    the results are bitwise the same. Updates ``depth`` (s, 3) and ``infiltrated`` (s,) in
    place; writes each subcatchment's rain (m/s), infiltration (m/s) and outflow (m3/s).
    Returns flags: ``RAINED`` (some rain or infiltration is not zero), ``FLOWS`` (some
    outflow > 0), ``PONDED`` (some subarea holds more than its depression storage + 1e-9 m).
    """
    s = s_gage.size
    rates = np.zeros(g_start.size - 1)
    _gage_rates(g_start, g_t, g_values, g_interval, t, rates)
    supply = np.empty(s)
    inflow = np.empty((s, 3))
    for i in range(s):
        rain[i] = rates[s_gage[i]]
        supply[i] = rain[i] + depth[i, 2] / dt
    _horton(horton, infiltrated, supply, dt, infil)
    for i in range(s):
        infiltrated[i] += infil[i] * dt
        inflow[i, 0] = rain[i]
        inflow[i, 1] = rain[i]
        inflow[i, 2] = rain[i] - infil[i]
    new_depth = np.zeros((s, 3))
    rate = np.zeros((s, 3))
    _reservoirs(depth, inflow, alpha, dstore, routed, dt, new_depth, rate)
    for i in range(s):
        total = 0.0
        for j in range(3):
            depth[i, j] = new_depth[i, j]
            total += rate[i, j] * area[i, j]
        flow[i] = total
    flags = 0
    for i in range(s):
        if rain[i] != 0.0 or infil[i] != 0.0:
            flags |= RAINED
        if flow[i] > 0:
            flags |= FLOWS
        for j in range(3):
            if depth[i, j] > dstore[i, j] + 1e-9:
                flags |= PONDED
    return flags
