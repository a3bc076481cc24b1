"""Design storms: the Chicago (Keifer–Chu) hyetograph from a city's intensity formula.

The formula is GB 50014's form ``i = A(1 + C·lg P)/(t + b)^n`` (mm/min, t in min, P in
years). The Chicago storm puts the peak at ``r·T`` and keeps, for every window around the
peak, the formula's depth ``a·t/(t + b)^n`` with ``a = A(1 + C·lg P)``. Blocks are cut from
that cumulative curve, so the storm's total depth equals the formula's for the duration
exactly. Formula parameters live in ``tables/intensity_formulas.json`` with their sources.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from scenarios.flood.network import Network, RainGage, TimeSeries
from scenarios.flood.spec import DesignStorm

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class IntensityFormula:
    """``i = A(1 + C·lg P)/(t + b)^n`` in mm/min; ``r`` the city's peak ratio; its source."""

    name: str
    a: float
    c: float
    b: float
    n: float
    r: float
    source: str

    def intensity_mm_per_min(self, return_period_a: float, duration_min: float) -> float:
        """Average intensity over ``duration_min`` for a return period (mm/min)."""
        return float(
            self.a * (1 + self.c * np.log10(return_period_a)) / (duration_min + self.b) ** self.n
        )


@cache
def intensity_formulas() -> dict[str, IntensityFormula]:
    """The formulas shipped as data, by name."""
    text = resources.files("scenarios.flood").joinpath("tables/intensity_formulas.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return {
        name: IntensityFormula(name, v["A"], v["C"], v["b"], v["n"], v["r"], v["source"])
        for name, v in data.items()
        if not name.startswith("_")
    }


def chicago_hyetograph(
    formula: IntensityFormula,
    return_period_a: float,
    duration_min: float,
    peak_ratio: float | None = None,
    step_min: float = 5.0,
) -> tuple[FloatArray, FloatArray]:
    """Block intensities of a Chicago design storm.

    Parameters
    ----------
    formula : the city's intensity formula
    return_period_a : return period P, years (> 0)
    duration_min : storm duration T, minutes
    peak_ratio : r in (0, 1), the peak's position as a fraction of T (None: the formula's)
    step_min : block length, minutes

    Returns
    -------
    t_s : (k,) float, s — start of each block
    intensity : (k,) float, mm/h — mean intensity of each block

    Raises
    ------
    ValueError
        If an argument is out of range.
    """
    r = formula.r if peak_ratio is None else peak_ratio
    if not return_period_a > 0:
        raise ValueError(f"return_period_a(={return_period_a}) must be > 0")
    if not duration_min > 0 or not step_min > 0 or step_min > duration_min:
        raise ValueError(
            f"duration_min(={duration_min}) and step_min(={step_min}) must be 0 < step <= duration"
        )
    if not 0 < r < 1:
        raise ValueError(f"peak_ratio(={r}) must be in (0, 1)")
    a = formula.a * (1 + formula.c * np.log10(return_period_a))

    def window_depth(t: FloatArray) -> FloatArray:
        out: FloatArray = a * t / (t + formula.b) ** formula.n
        return out

    edges = np.append(np.arange(0.0, duration_min, step_min), duration_min)
    peak = r * duration_min
    total_before = r * window_depth(np.asarray(peak / r))
    before = total_before - r * window_depth(np.maximum(peak - edges, 0.0) / r)
    after = total_before + (1 - r) * window_depth(np.maximum(edges - peak, 0.0) / (1 - r))
    cumulative = np.where(edges <= peak, before, after)
    depth = np.diff(cumulative)
    return edges[:-1] * 60.0, depth / np.diff(edges) * 60.0


def apply_storm(net: Network, storm: DesignStorm) -> None:
    """Replace the rain of every gauge of ``net`` by the design storm.

    Raises
    ------
    ValueError
        If the formula is unknown or the storm's parameters are out of range.
    """
    formulas = intensity_formulas()
    if storm.formula not in formulas:
        raise ValueError(f"formula(={storm.formula}) must be one of {', '.join(formulas)}")
    t_s, mm_per_h = chicago_hyetograph(
        formulas[storm.formula],
        storm.return_period_a,
        storm.duration_min,
        storm.peak_ratio,
        storm.step_min,
    )
    series = TimeSeries(f"chicago-{storm.formula}", t_s, mm_per_h * 1e-3 / 3600.0)
    for name in net.gages:
        net.gages[name] = RainGage(name, "INTENSITY", storm.step_min * 60.0, 1.0, series)


def apply_gauge_rain(net: Network, rain_mm_h: dict[str, tuple[tuple[float, float], ...]]) -> None:
    """Replace the rain of the named gauges of ``net`` by ``(t_s, mm/h)`` rows, each
    intensity held until the next row; the last row lasts one step of the finest spacing
    (end a series with a zero row to stop the rain at a given time).

    Raises
    ------
    ValueError
        If a gauge is not in the network or its rows are not increasing in time.
    """
    for name, rows in rain_mm_h.items():
        if name not in net.gages:
            known = ", ".join(sorted(net.gages)) or "none"
            raise ValueError(f"gauge {name!r} is not in the network (its gauges: {known})")
        t_s = np.array([t for t, _ in rows], dtype=np.float64)
        if t_s.size == 0 or np.any(np.diff(t_s) <= 0):
            raise ValueError(f"gauge {name!r}: rain rows must increase in time")
        steps = np.diff(t_s)
        interval = float(steps.min()) if steps.size else 3600.0
        # a regular series at the finest step, each row's intensity held until the next
        grid = np.arange(t_s[0], t_s[-1] + interval / 2, interval)
        held = np.array([v for _, v in rows], dtype=np.float64)[
            np.searchsorted(t_s, grid, side="right") - 1
        ]
        series = TimeSeries(f"gauge-{name}", grid, held * 1e-3 / 3600.0)
        net.gages[name] = RainGage(name, "INTENSITY", interval, 1.0, series)
