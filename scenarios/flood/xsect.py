"""Cross-section geometry as per-link tables, looked up for all links at once.

Each link gets a row of area, hydraulic radius, top width, section factor (A·R^(2/3)) and
critical flow (A·sqrt(g·A/W)) at ``N_TABLE`` evenly spaced depths from 0 to full. Lookups
interpolate linearly, so every shape costs the same per step and the solver has no branch per
shape. Depths are metres, areas m2, flows m3/s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scenarios.flood.transect import TransectTables, resample

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

N_TABLE = 101
GRAVITY = 9.80665
CLOSED_SHAPES = frozenset({"CIRCULAR", "FORCE_MAIN", "RECT_CLOSED"})


@dataclass(frozen=True)
class XsectTables:
    """Geometry tables of ``m`` links over ``N_TABLE`` depths.

    Attributes
    ----------
    y_full : (m,) float, m — full depth
    a_full, r_full : (m,) float — area (m2) and hydraulic radius (m) when full
    w_max : (m,) float, m — largest top width
    closed : (m,) bool — closed conduits surcharge; open channels do not
    area, radius, width, section, q_crit : (m, N_TABLE) float
    """

    y_full: FloatArray
    a_full: FloatArray
    r_full: FloatArray
    w_max: FloatArray
    closed: npt.NDArray[np.bool_]
    area: FloatArray
    radius: FloatArray
    width: FloatArray
    section: FloatArray
    q_crit: FloatArray
    geometry: FloatArray
    """(m, N_TABLE, 3) float — area, hydraulic radius and top width stacked for one gather"""

    def lookup(self, table: FloatArray, y: FloatArray) -> FloatArray:
        """Interpolate ``table`` (an (m, N) array) at depths ``y`` (m,), clipped to full."""
        pos = np.minimum(np.maximum(y / self.y_full, 0.0), 1.0) * (N_TABLE - 1)
        i0 = np.minimum(pos.astype(np.int64), N_TABLE - 2)
        frac = pos - i0
        rows = np.arange(len(y))
        out: FloatArray = table[rows, i0] * (1.0 - frac) + table[rows, i0 + 1] * frac
        return out

    def geometry_at(self, y: FloatArray) -> FloatArray:
        """Area (m2), hydraulic radius (m) and top width (m) at depths ``y``: (m, 3)."""
        pos = np.minimum(np.maximum(y / self.y_full, 0.0), 1.0) * (N_TABLE - 1)
        i0 = np.minimum(pos.astype(np.int64), N_TABLE - 2)
        frac = (pos - i0)[:, None]
        rows = np.arange(len(y))
        out: FloatArray = (
            self.geometry[rows, i0] * (1.0 - frac) + self.geometry[rows, i0 + 1] * frac
        )
        return out

    def invert(self, table: FloatArray, value: FloatArray) -> FloatArray:
        """Depth (m) at which a monotone ``table`` reaches ``value`` per link; capped at full."""
        rows = np.arange(len(value))
        above = (table < value[:, None]).sum(axis=1)
        i1 = np.minimum(np.maximum(above, 1), N_TABLE - 1)
        lo, hi = table[rows, i1 - 1], table[rows, i1]
        frac = np.minimum(np.maximum((value - lo) / np.maximum(hi - lo, 1e-30), 0.0), 1.0)
        depth: FloatArray = (i1 - 1 + frac) / (N_TABLE - 1) * self.y_full
        return depth


def _shape_geometry(
    shape: str, geom: tuple[float, float, float, float], y: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Area, wetted perimeter and top width of one shape at depths ``y``."""
    g1, g2, g3, g4 = geom
    if shape in ("CIRCULAR", "FORCE_MAIN"):
        theta = 2.0 * np.arccos(np.clip(1.0 - 2.0 * y / g1, -1.0, 1.0))
        area = g1 * g1 / 8.0 * (theta - np.sin(theta))
        perimeter = g1 * theta / 2.0
        width = g1 * np.sin(theta / 2.0)
        return area, perimeter, width
    if shape in ("RECT_CLOSED", "RECT_OPEN"):
        area = g2 * y
        perimeter = g2 + 2.0 * y
        if shape == "RECT_CLOSED":
            perimeter = np.where(y >= g1, 2.0 * (g1 + g2), perimeter)
        return area, perimeter, np.full_like(y, g2)
    if shape == "TRAPEZOIDAL":
        area = y * (g2 + 0.5 * y * (g3 + g4))
        perimeter = g2 + y * (np.sqrt(1.0 + g3 * g3) + np.sqrt(1.0 + g4 * g4))
        return area, perimeter, g2 + y * (g3 + g4)
    if shape == "TRIANGULAR":
        slope = g2 / (2.0 * g1)
        area = slope * y * y
        perimeter = 2.0 * y * np.sqrt(1.0 + slope * slope)
        return area, perimeter, 2.0 * slope * y
    raise ValueError(f"shape(={shape}) has no geometry")


def build_tables(
    shapes: list[str],
    geoms: list[tuple[float, float, float, float]],
    transects: list[TransectTables | None] | None = None,
) -> XsectTables:
    """Tables for links of the given SWMM shapes and geometries (m).

    IRREGULAR links take their rows from their transect's tables (``transects``, one entry
    per link, None for the others), looked up at our depths the way SWMM looks them up.

    Raises
    ------
    ValueError
        If a shape has no geometry here (the reader refuses those first).
    """
    m = len(shapes)
    frac = np.linspace(0.0, 1.0, N_TABLE)
    area = np.zeros((m, N_TABLE))
    radius = np.zeros((m, N_TABLE))
    width = np.zeros((m, N_TABLE))
    y_full = np.array([g[0] for g in geoms], dtype=np.float64)
    for j, (shape, geom) in enumerate(zip(shapes, geoms, strict=True)):
        transect = transects[j] if transects is not None else None
        if shape == "IRREGULAR":
            if transect is None:
                raise ValueError(f"link {j} is IRREGULAR but has no transect tables")
            area[j], radius[j], width[j] = resample(transect, N_TABLE)
            y_full[j] = transect.y_full
            continue
        y = frac * geom[0]
        a, p, w = _shape_geometry(shape, geom, y)
        area[j] = a
        radius[j] = np.where(p > 0, a / np.maximum(p, 1e-30), 0.0)
        width[j] = w
    # a closed circle has zero width at the crown: keep a sliver so node areas stay positive
    width = np.maximum(width, 1e-3 * np.max(width, axis=1, keepdims=True))
    section = area * radius ** (2.0 / 3.0)
    q_crit = area * np.sqrt(GRAVITY * area / width)
    closed = np.array([s in CLOSED_SHAPES for s in shapes], dtype=bool)
    return XsectTables(
        y_full=y_full,
        a_full=area[:, -1].copy(),
        r_full=radius[:, -1].copy(),
        w_max=width.max(axis=1),
        closed=closed,
        area=area,
        radius=radius,
        width=width,
        section=np.maximum.accumulate(section, axis=1),
        q_crit=np.maximum.accumulate(q_crit, axis=1),
        geometry=np.stack([area, radius, width], axis=2),
    )
