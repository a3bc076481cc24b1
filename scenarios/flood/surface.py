"""Water on a raster surface: the local-inertial scheme of Bates, Horritt & Fewtrell (2010).

Pure numpy over the whole grid. Unit discharges live on cell faces: ``qx`` (ny, nx+1) between
columns, ``qy`` (ny+1, nx) between rows (positive towards larger index). Each step

    q ← (q − g·h_f·Δt·∂η/∂x) / (1 + g·n²·Δt·|q| / h_f^(7/3))

with ``h_f = max(η_L, η_R) − max(z_L, z_R)`` the depth through the face, then
``h += Δt·(Σq_in − Σq_out)/Δx + Δt·source/Δx²``. Closed faces (buildings) carry nothing;
open faces (the edge of the data) let water leave at critical flow ``h·√(g·h)``. Outflows
of a cell are scaled so that no step drains more than the cell holds, so depth stays
non-negative and volume is conserved to round-off. The stable step is
``Δt = α·Δx/√(g·h_max)`` (α = 0.7 in the paper).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

GRAVITY = 9.80665
H_MIN_M = 1e-3
ALPHA = 0.7


@dataclass
class SurfaceGrid:
    """Static data of a surface run.

    Attributes
    ----------
    z : (ny, nx) float, m — ground elevation
    active : (ny, nx) bool — cells that hold water (not buildings, not outside the data)
    manning : (ny, nx) float — Manning n
    dx : float, m — cell size (square cells)
    open_x : (ny, nx+1) bool — x-faces where water may leave the grid
    open_y : (ny+1, nx) bool — y-faces where water may leave the grid
    """

    z: FloatArray
    active: BoolArray
    manning: FloatArray
    dx: float
    open_x: BoolArray
    open_y: BoolArray

    @classmethod
    def build(
        cls, z: FloatArray, dx: float, manning: FloatArray, inside: BoolArray, walls: BoolArray
    ) -> SurfaceGrid:
        """Grid from elevations, the cells with data (``inside``) and building cells (``walls``).

        Faces between a cell with data and one without (or the raster's edge) are open;
        faces next to buildings are closed.

        Raises
        ------
        ValueError
            If shapes differ, ``dx`` is not positive or an active cell has no elevation.
        """
        if z.shape != inside.shape or z.shape != walls.shape or z.shape != manning.shape:
            raise ValueError("z, manning, inside and walls must have one shape")
        if not dx > 0:
            raise ValueError(f"dx(={dx}) must be > 0")
        active = inside & ~walls
        if not np.isfinite(z[active]).all():
            raise ValueError("active cells must have finite elevations")
        ny, nx = z.shape
        pad = np.zeros((ny + 2, nx + 2), dtype=bool)
        pad[1:-1, 1:-1] = inside
        outside = ~pad
        act = np.zeros((ny + 2, nx + 2), dtype=bool)
        act[1:-1, 1:-1] = active
        open_x = (act[1:-1, :-1] & outside[1:-1, 1:]) | (outside[1:-1, :-1] & act[1:-1, 1:])
        open_y = (act[:-1, 1:-1] & outside[1:, 1:-1]) | (outside[:-1, 1:-1] & act[1:, 1:-1])
        return cls(np.where(active, z, 0.0), active, manning, float(dx), open_x, open_y)


@dataclass
class SurfaceState:
    """Depth (ny, nx) and face unit discharges (m2/s); volume that left through open faces (m3)."""

    h: FloatArray
    qx: FloatArray
    qy: FloatArray
    outflow_m3: float = 0.0

    @classmethod
    def dry(cls, grid: SurfaceGrid) -> SurfaceState:
        """A dry surface."""
        ny, nx = grid.z.shape
        return cls(np.zeros((ny, nx)), np.zeros((ny, nx + 1)), np.zeros((ny + 1, nx)))


def stable_step(grid: SurfaceGrid, state: SurfaceState, max_step_s: float) -> float:
    """Largest stable step (s): α·Δx/√(g·h_max), at most ``max_step_s``."""
    h_max = float(state.h.max(initial=0.0))
    if h_max <= H_MIN_M:
        return max_step_s
    return min(max_step_s, ALPHA * grid.dx / float(np.sqrt(GRAVITY * h_max)))


def _face_flux(
    q: FloatArray,
    eta_a: FloatArray,
    eta_b: FloatArray,
    z_a: FloatArray,
    z_b: FloatArray,
    n_face: FloatArray,
    both: BoolArray,
    dx: float,
    dt: float,
) -> FloatArray:
    h_flow = np.maximum(eta_a, eta_b) - np.maximum(z_a, z_b)
    wet = both & (h_flow > H_MIN_M)
    hf = np.where(wet, h_flow, 1.0)
    slope = (eta_b - eta_a) / dx
    new = (q - GRAVITY * hf * dt * slope) / (
        1.0 + GRAVITY * n_face**2 * dt * np.abs(q) / hf ** (7.0 / 3.0)
    )
    out: FloatArray = np.where(wet, new, 0.0)
    return out


def surface_step(grid: SurfaceGrid, state: SurfaceState, dt: float, source: FloatArray) -> None:
    """Advance ``state`` by ``dt`` seconds in place.

    Parameters
    ----------
    source : (ny, nx) float, m3/s — water added to (or, negative, taken from) each cell

    Raises
    ------
    FloatingPointError
        If depths stop being finite (the step broke the stability bound).
    """
    z, h, dx = grid.z, state.h, grid.dx
    act = grid.active
    eta = z + h
    n = grid.manning
    # interior faces
    both_x = act[:, :-1] & act[:, 1:]
    qx_in = _face_flux(
        state.qx[:, 1:-1],
        eta[:, :-1],
        eta[:, 1:],
        z[:, :-1],
        z[:, 1:],
        0.5 * (n[:, :-1] + n[:, 1:]),
        both_x,
        dx,
        dt,
    )
    both_y = act[:-1, :] & act[1:, :]
    qy_in = _face_flux(
        state.qy[1:-1, :],
        eta[:-1, :],
        eta[1:, :],
        z[:-1, :],
        z[1:, :],
        0.5 * (n[:-1, :] + n[1:, :]),
        both_y,
        dx,
        dt,
    )
    qx = np.zeros_like(state.qx)
    qy = np.zeros_like(state.qy)
    qx[:, 1:-1] = qx_in
    qy[1:-1, :] = qy_in
    # open faces: critical outflow from the inner cell
    crit = np.where(h > H_MIN_M, h * np.sqrt(GRAVITY * h), 0.0)
    padx = np.zeros_like(qx)
    padx[:, 1:] += np.where(grid.open_x[:, 1:], crit, 0.0)  # leaving to the right (+)
    padx[:, :-1] -= np.where(grid.open_x[:, :-1], crit, 0.0)  # leaving to the left (−)
    pady = np.zeros_like(qy)
    pady[1:, :] += np.where(grid.open_y[1:, :], crit, 0.0)
    pady[:-1, :] -= np.where(grid.open_y[:-1, :], crit, 0.0)
    qx = np.where(grid.open_x, padx, qx)
    qy = np.where(grid.open_y, pady, qy)
    # no cell gives more than it holds (plus what it receives from sources this step)
    give = (
        dt
        / dx
        * (
            np.maximum(qx[:, 1:], 0.0)
            + np.maximum(-qx[:, :-1], 0.0)
            + np.maximum(qy[1:, :], 0.0)
            + np.maximum(-qy[:-1, :], 0.0)
        )
    )
    have = h + dt * np.maximum(source, 0.0) / dx**2
    factor = np.where(give > have, have / np.maximum(give, 1e-300), 1.0)
    fx = np.ones_like(qx)
    fx[:, 1:] = np.where(qx[:, 1:] > 0, factor, 1.0)
    fx[:, :-1] = np.where(qx[:, :-1] < 0, np.minimum(fx[:, :-1], factor), fx[:, :-1])
    fy = np.ones_like(qy)
    fy[1:, :] = np.where(qy[1:, :] > 0, factor, 1.0)
    fy[:-1, :] = np.where(qy[:-1, :] < 0, np.minimum(fy[:-1, :], factor), fy[:-1, :])
    qx *= fx
    qy *= fy
    out = float((np.abs(qx[grid.open_x]).sum() + np.abs(qy[grid.open_y]).sum()) * dx * dt)
    dh = dt / dx * (qx[:, :-1] - qx[:, 1:] + qy[:-1, :] - qy[1:, :]) + dt * source / dx**2
    new_h = np.where(act, np.maximum(h + dh, 0.0), 0.0)
    if not np.isfinite(new_h).all():
        raise FloatingPointError("surface depth became non-finite")
    state.h = new_h
    state.qx = qx
    state.qy = qy
    state.outflow_m3 += out
