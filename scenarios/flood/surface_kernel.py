"""The local-inertial surface scheme of :mod:`scenarios.flood.surface`, compiled (numba).

:func:`advance` takes as many adaptive steps as fit before the next coarse event (a record
step, a coupling exchange, the end of the run) in one compiled call, over the wet window only.
Per step it is the numpy scheme line for line: step ``α·Δx/√(g·h_max)``, face fluxes with
semi-implicit friction, critical outflow at open faces, outflows scaled so no cell gives more
than it holds, then continuity. ``h^(7/3)`` is taken as ``h²·∛h``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scenarios.flood.jit import njit

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

GRAVITY = 9.80665
H_MIN_M = 1e-3
ALPHA = 0.7

# indices into the ``tally`` array advance() accumulates into
OUTFLOW, INFLOW, STEPS, CELL_STEPS, STATUS = 0, 1, 2, 3, 4
N_TALLY = 5


@njit
def _flux(
    q: float,
    eta_a: float,
    eta_b: float,
    z_a: float,
    z_b: float,
    n_face: float,
    dx: float,
    dt: float,
) -> float:
    h_flow = max(eta_a, eta_b) - max(z_a, z_b)
    if h_flow <= H_MIN_M:
        return 0.0
    slope = (eta_b - eta_a) / dx
    h73 = h_flow * h_flow * float(np.cbrt(h_flow))
    return (q - GRAVITY * h_flow * dt * slope) / (
        1.0 + GRAVITY * n_face * n_face * dt * abs(q) / h73
    )


@njit
def _crit(h: float) -> float:
    return h * np.sqrt(GRAVITY * h) if h > H_MIN_M else 0.0


@njit
def advance(
    z: FloatArray,
    active: BoolArray,
    manning: FloatArray,
    open_x: BoolArray,
    open_y: BoolArray,
    dx: float,
    h: FloatArray,
    qx: FloatArray,
    qy: FloatArray,
    source: FloatArray,
    t: float,
    t_stop: float,
    t_end: float,
    max_step: float,
    margin: int,
    max_depth: FloatArray,
    time_of_max: FloatArray,
    probe_r: IntArray,
    probe_c: IntArray,
    probe_peak: FloatArray,
    tally: FloatArray,
) -> float:
    """Step ``h``, ``qx``, ``qy`` in place from ``t`` until ``t >= t_stop`` (at least one step).

    ``tally`` gains the volume out of open faces, the source volume in, steps and cell-steps;
    ``tally[STATUS]`` is set to 1 if depths stopped being finite. Returns the new time (s).
    """
    ny, nx = h.shape
    nqx = np.zeros_like(qx)
    nqy = np.zeros_like(qy)
    factor = np.ones_like(h)
    inv_area = 1.0 / (dx * dx)
    # wet box of the depths and of the sources, and the deepest cell
    sr0, sr1, sc0, sc1 = ny, -1, nx, -1
    wr0, wr1, wc0, wc1 = ny, -1, nx, -1
    h_max = 0.0
    source_sum = 0.0
    for r in range(ny):
        for c in range(nx):
            if source[r, c] != 0.0:
                source_sum += source[r, c]
                sr0, sr1, sc0, sc1 = min(sr0, r), max(sr1, r), min(sc0, c), max(sc1, c)
            if h[r, c] > 0.0:
                wr0, wr1, wc0, wc1 = min(wr0, r), max(wr1, r), min(wc0, c), max(wc1, c)
                h_max = max(h_max, h[r, c])
    first = True
    while first or (t < t_stop - 1e-9 and t < t_end - 1e-9):
        first = False
        dt = max_step
        if h_max > H_MIN_M:
            dt = min(max_step, ALPHA * dx / np.sqrt(GRAVITY * h_max))
        dt = min(dt, t_end - t)
        r0, r1 = min(sr0, wr0), max(sr1, wr1)
        c0, c1 = min(sc0, wc0), max(sc1, wc1)
        if r1 < 0:
            t += min(max_step, t_end - t)
            continue
        r0, r1 = max(r0 - margin, 0), min(r1 + margin + 1, ny)
        c0, c1 = max(c0 - margin, 0), min(c1 + margin + 1, nx)
        # face fluxes: interior faces of the window, open faces critical, window edges shut
        for r in range(r0, r1):
            for j in range(c0, c1 + 1):
                q = 0.0
                if open_x[r, j]:
                    if j - 1 >= c0:
                        q += _crit(h[r, j - 1])
                    if j <= c1 - 1:
                        q -= _crit(h[r, j])
                elif c0 < j < c1 and active[r, j - 1] and active[r, j]:
                    q = _flux(
                        qx[r, j],
                        z[r, j - 1] + h[r, j - 1],
                        z[r, j] + h[r, j],
                        z[r, j - 1],
                        z[r, j],
                        0.5 * (manning[r, j - 1] + manning[r, j]),
                        dx,
                        dt,
                    )
                nqx[r, j] = q
        for i in range(r0, r1 + 1):
            for c in range(c0, c1):
                q = 0.0
                if open_y[i, c]:
                    if i - 1 >= r0:
                        q += _crit(h[i - 1, c])
                    if i <= r1 - 1:
                        q -= _crit(h[i, c])
                elif r0 < i < r1 and active[i - 1, c] and active[i, c]:
                    q = _flux(
                        qy[i, c],
                        z[i - 1, c] + h[i - 1, c],
                        z[i, c] + h[i, c],
                        z[i - 1, c],
                        z[i, c],
                        0.5 * (manning[i - 1, c] + manning[i, c]),
                        dx,
                        dt,
                    )
                nqy[i, c] = q
        # no cell gives more than it holds plus its source this step
        for r in range(r0, r1):
            for c in range(c0, c1):
                give = (
                    dt
                    / dx
                    * (
                        max(nqx[r, c + 1], 0.0)
                        + max(-nqx[r, c], 0.0)
                        + max(nqy[r + 1, c], 0.0)
                        + max(-nqy[r, c], 0.0)
                    )
                )
                have = h[r, c] + dt * max(source[r, c], 0.0) * inv_area
                factor[r, c] = have / max(give, 1e-300) if give > have else 1.0
        out = 0.0
        for r in range(r0, r1):
            for j in range(c0, c1 + 1):
                q = nqx[r, j]
                if q > 0.0 and j - 1 >= c0:
                    q *= factor[r, j - 1]
                elif q < 0.0 and j <= c1 - 1:
                    q *= factor[r, j]
                qx[r, j] = q
                if open_x[r, j]:
                    out += abs(q)
        for i in range(r0, r1 + 1):
            for c in range(c0, c1):
                q = nqy[i, c]
                if q > 0.0 and i - 1 >= r0:
                    q *= factor[i - 1, c]
                elif q < 0.0 and i <= r1 - 1:
                    q *= factor[i, c]
                qy[i, c] = q
                if open_y[i, c]:
                    out += abs(q)
        tally[OUTFLOW] += out * dx * dt
        # continuity; the new wet box and deepest cell
        wr0, wr1, wc0, wc1 = ny, -1, nx, -1
        h_max = 0.0
        t_new = t + dt
        for r in range(r0, r1):
            for c in range(c0, c1):
                new = 0.0
                if active[r, c]:
                    dh = dt / dx * (qx[r, c] - qx[r, c + 1] + qy[r, c] - qy[r + 1, c])
                    raw = h[r, c] + dh + dt * source[r, c] * inv_area
                    if not np.isfinite(raw):
                        tally[STATUS] = 1.0
                        return t
                    new = max(raw, 0.0)
                h[r, c] = new
                if new > 0.0:
                    wr0, wr1, wc0, wc1 = min(wr0, r), max(wr1, r), min(wc0, c), max(wc1, c)
                    h_max = max(h_max, new)
                if new > max_depth[r, c]:
                    max_depth[r, c] = new
                    if new > 0.01:
                        time_of_max[r, c] = t_new
        for k in range(probe_r.size):
            probe_peak[k] = max(probe_peak[k], h[probe_r[k], probe_c[k]])
        tally[INFLOW] += source_sum * dt
        tally[STEPS] += 1.0
        tally[CELL_STEPS] += (r1 - r0) * (c1 - c0)
        t = t_new
    return t
