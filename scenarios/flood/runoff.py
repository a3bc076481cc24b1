"""Subcatchment runoff kernels: rain lookup, Horton infiltration, nonlinear reservoirs.

Pure numpy over all subcatchments at once. Each subcatchment has three subareas (impervious
without depression storage, impervious, pervious), each a nonlinear reservoir as in SWMM:
``dd/dt = i − α·(d − ds)^(5/3)`` with ``α = W/A·√S/n`` (SI Manning), solved implicitly so
a step conserves water exactly: ``d_new = d + i·dt − q·dt``. Subareas with ``n = 0`` pass
everything above depression storage at once, as SWMM does.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scenarios.flood.network import TimeSeries

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MANNING_EXP = 5.0 / 3.0
NEWTON_ITERATIONS = 12
TIME_TOL_S = 0.5


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
    f0, fmin, decay, fmax = horton[:, 0], horton[:, 1], horton[:, 2], horton[:, 4]
    active = f0 > 0
    # invert F(tp) = infiltrated for tp by Newton (F is increasing and concave)
    tp = np.where(fmin > 0, infiltrated_m / np.maximum(f0, 1e-30), 0.0)
    for _ in range(NEWTON_ITERATIONS):
        rate = fmin + (f0 - fmin) * np.exp(-decay * tp)
        tp = np.maximum(
            tp - (horton_cumulative(tp, f0, fmin, decay) - infiltrated_m) / np.maximum(rate, 1e-30),
            0.0,
        )
    capacity = horton_cumulative(tp + dt_s, f0, fmin, decay) - horton_cumulative(
        tp, f0, fmin, decay
    )
    capacity = np.where(
        fmax > 0, np.minimum(capacity, np.maximum(fmax - infiltrated_m, 0.0)), capacity
    )
    out: FloatArray = np.where(
        active, np.minimum(capacity / dt_s, np.maximum(supply_mps, 0.0)), 0.0
    )
    return out


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
    level = np.maximum(depth_m + inflow_mps * dt_s, 0.0)
    excess = np.maximum(level - dstore_m, 0.0)
    # solve e + dt·α·e^(5/3) = excess for the depth e above storage (Newton from e = excess)
    e = excess.copy()
    k = dt_s * alpha
    for _ in range(NEWTON_ITERATIONS):
        g = e + k * e**MANNING_EXP - excess
        e = np.maximum(e - g / (1.0 + MANNING_EXP * k * np.cbrt(e * e)), 0.0)
    routed_out = (excess - e) / dt_s
    runoff = np.where(routed, routed_out, excess / dt_s)
    new_depth = np.where(routed, np.minimum(level, dstore_m) + e, np.minimum(level, dstore_m))
    return new_depth, runoff
