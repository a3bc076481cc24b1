"""Irregular cross-sections from SWMM ``[TRANSECTS]`` (HEC-2 style NC / X1 / GR records).

A transect is a channel profile of station/elevation points with a Manning n for the left
overbank, the main channel and the right overbank. SWMM 5.2 (``transect.c``) turns it into
tables of area, hydraulic radius and top width at ``N_TRANSECT_TBL`` (51) evenly spaced
depths, closing the profile with vertical walls at both ends up to its highest point. The
hydraulic radius is not A/P: it is the one that gives the composite Manning flow of the
sub-sections with the main-channel n, ``R = (Σ q_k · n_ch / 1.49 / A)^1.5`` with
``q_k = 1.486 / n_k · a_k · (a_k / p_k)^(2/3)``; a sub-section closes where the ground
rises above the water, at the bank stations where n changes, and at the last station. We
follow that procedure line by line (including its 1.486 / 1.49 mismatch, which makes the
radius of a single-n channel 0.996 · A/P) so our geometry is SWMM's geometry.

:func:`resample` evaluates SWMM's table lookup (linear, quadratic in the first two
intervals) at the solver's own table depths, so the kernels need no branch for transects.
Lengths are in the file's units when read and metres once scaled; areas in their squares.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

N_TRANSECT_TBL = 51
_PHI = 1.486  # SWMM's Manning constant in US units (consts.h)
_PHI_HRAD = 1.49  # the constant transect.c divides by when it backs out the radius


@dataclass(frozen=True)
class TransectProfile:
    """One transect as read, modifiers applied (file units).

    Attributes
    ----------
    name : the X1 record's transect name
    stations, elevations : (k,) float — station (x) and ground elevation of each GR point,
        stations non-decreasing
    n_left, n_right, n_channel : Manning n of the overbanks and the main channel
    x_left_bank, x_right_bank : float — stations where the left overbank ends and the right
        overbank begins
    length_factor : main channel / flood plain length ratio (meander modifier; 1 if none)
    """

    name: str
    stations: FloatArray
    elevations: FloatArray
    n_left: float
    n_right: float
    n_channel: float
    x_left_bank: float
    x_right_bank: float
    length_factor: float = 1.0


@dataclass(frozen=True)
class TransectTables:
    """SWMM's geometry tables of one transect, in SI.

    Attributes
    ----------
    y_full : float, m — highest point minus lowest point of the profile
    a_full, r_full, w_max : float — area (m2), hydraulic radius (m), width (m) when full
    area, radius, width : (N_TRANSECT_TBL,) float — fractions of the full values at depths
        ``i / (N_TRANSECT_TBL - 1) · y_full``, as SWMM stores them
    roughness : float — the main channel's Manning n before the meander modifier (SWMM
        gives it to every conduit using the transect)
    """

    y_full: float
    a_full: float
    r_full: float
    w_max: float
    area: FloatArray
    radius: FloatArray
    width: FloatArray
    roughness: float


def transect_tables(profile: TransectProfile, length_m: float = 1.0) -> TransectTables:
    """SWMM's area, hydraulic-radius and width tables of ``profile``.

    Parameters
    ----------
    profile : the transect in file units
    length_m : metres per file length unit (0.3048 for US files)

    Raises
    ------
    ValueError
        If the profile has fewer than 2 stations, no depth, a channel n not > 0 or its left
        bank right of its right bank (SWMM's own checks, same order).
    """
    if len(profile.stations) < 2:
        raise ValueError(f"transect {profile.name}: needs at least 2 stations")
    if profile.n_channel <= 0:
        raise ValueError(f"transect {profile.name}: main channel Manning n must be > 0")
    if profile.x_left_bank > profile.x_right_bank:
        raise ValueError(f"transect {profile.name}: left bank station is right of the right bank")
    y_max, y_min = float(profile.elevations.max()), float(profile.elevations.min())
    if y_min >= y_max:
        raise ValueError(f"transect {profile.name}: the profile is flat (no depth)")
    n_channel = profile.n_channel * np.sqrt(profile.length_factor)
    # vertical walls at both ends up to the highest point, as SWMM adds them
    station = np.concatenate(([profile.stations[0]], profile.stations, [profile.stations[-1]]))
    elev = np.concatenate(([y_max], profile.elevations, [y_max]))
    n_last = len(station) - 1
    dy = (y_max - y_min) / (N_TRANSECT_TBL - 1)
    area = np.zeros(N_TRANSECT_TBL)
    radius = np.zeros(N_TRANSECT_TBL)
    width = np.zeros(N_TRANSECT_TBL)
    y = y_min
    for i in range(1, N_TRANSECT_TBL):
        y += dy  # accumulated, as SWMM does
        a_sum = wp_sum = q_sum = 0.0
        for k in range(1, n_last + 1):
            y_lo, y_hi = sorted((float(elev[k - 1]), float(elev[k])))
            if y_lo >= y:
                continue
            w, a, wp = _slice(float(station[k] - station[k - 1]), y, y_lo, y_hi)
            wp_sum += wp
            a_sum += a
            area[i] += a
            width[i] += w
            q = _subsection_flow(profile, station, n_channel, k, n_last, a_sum, wp_sum, y, elev)
            if q > 0.0:
                q_sum += q
                a_sum = wp_sum = 0.0
        if area[i] == 0.0:
            radius[i] = radius[i - 1]
        else:
            radius[i] = (q_sum * n_channel / _PHI_HRAD / area[i]) ** 1.5
    a_full, r_full, w_max = area[-1], radius[-1], width[-1]
    area[1:] /= a_full
    radius[1:] /= r_full
    width[1:] /= w_max
    width[0] = width[1]
    return TransectTables(
        y_full=(y_max - y_min) * length_m,
        a_full=float(a_full) * length_m**2,
        r_full=float(r_full) * length_m,
        w_max=float(w_max) * length_m,
        area=area,
        radius=radius,
        width=width,
        roughness=profile.n_channel,
    )


def _slice(width: float, y: float, y_lo: float, y_hi: float) -> tuple[float, float, float]:
    """Top width, area and wetted perimeter of the wet part of one slice (transect.c)."""
    width = abs(width)
    wp = float(np.hypot(width, y_hi - y_lo))
    if y > y_hi:
        return width, width * ((y - y_hi) + (y - y_lo)) / 2.0, wp
    if y_hi > y_lo:
        ratio = (y - y_lo) / (y_hi - y_lo)
        return width * ratio, width * (y_hi - y_lo) / 2.0 * ratio * ratio, wp * ratio
    return width, 0.0, wp


def _subsection_flow(
    profile: TransectProfile,
    station: FloatArray,
    n_channel: float,
    k: int,
    n_last: int,
    a: float,
    wp: float,
    y: float,
    elev: FloatArray,
) -> float:
    """Manning flow per unit slope of the sub-section ending at station ``k``, or 0 when
    the sub-section does not close there (transect.c ``getFlow``)."""
    close = elev[k] >= y or k == n_last - 1
    if not close and station[k] == profile.x_left_bank:
        close = profile.n_left != n_channel and station[k] != station[k - 1]
    elif not close and station[k] == profile.x_right_bank and k + 1 < len(station):
        close = profile.n_right != n_channel and station[k] != station[k + 1]
    if not close:
        return 0.0
    n = n_channel
    if station[k - 1] < profile.x_left_bank:
        n = profile.n_left
    if station[k] > profile.x_right_bank:
        n = profile.n_right
    if wp <= 0.0:
        return 0.0
    return float(_PHI / n * a * (a / wp) ** (2.0 / 3.0))


def swmm_lookup(table: FloatArray, fraction: FloatArray) -> FloatArray:
    """SWMM's geometry-table lookup (xsect.c ``lookup``) at depth fractions in [0, 1].

    Linear between entries, with the quadratic correction in the first two intervals; never
    negative.
    """
    n = len(table)
    delta = 1.0 / (n - 1)
    x = np.clip(fraction, 0.0, 1.0)
    i = np.minimum((x / delta).astype(np.int64), n - 1)
    last = i >= n - 1
    i = np.minimum(i, n - 2)
    x0 = i * delta
    y = table[i] + (x - x0) * (table[i + 1] - table[i]) / delta
    low = i < 2
    j = np.where(low, i, 0)
    y2 = y + (x - x0) * (x - x0 - delta) / (delta * delta) * (
        table[j] / 2.0 - table[j + 1] + table[j + 2] / 2.0
    )
    y = np.where(low & (y2 > 0.0), y2, y)
    y = np.where(last, table[-1], y)
    out: FloatArray = np.maximum(y, 0.0)
    return out


def resample(tables: TransectTables, n: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Area (m2), hydraulic radius (m) and top width (m) at ``n`` evenly spaced depths from
    0 to full, as SWMM's lookups give them.

    Returns
    -------
    area, radius, width : (n,) float
    """
    frac = np.linspace(0.0, 1.0, n)
    return (
        swmm_lookup(tables.area, frac) * tables.a_full,
        swmm_lookup(tables.radius, frac) * tables.r_full,
        swmm_lookup(tables.width, frac) * tables.w_max,
    )
