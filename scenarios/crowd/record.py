"""The recorder: samples densities, exits and alerts into arrays; builds the result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from scenarios.crowd import kernel
from scenarios.crowd.grid import CellGrid
from scenarios.crowd.png import density_image, write_png
from scenarios.crowd.spec import CrowdResult

if TYPE_CHECKING:
    from scenarios.crowd.model import CrowdState


HYSTERESIS = 0.8


class Recorder:
    """Density per zone over time, cell peaks, evacuation curve and threshold alerts.

    Zone density is the peak window density inside the zone (what a steward standing in the
    worst spot would see); alerts fire when it rises past an alert level, once until it has
    fallen back below 80 % of that level.
    """

    def __init__(self, grid: CellGrid, levels_pm2: tuple[float, ...], n_exits: int) -> None:
        self.grid = grid
        self.levels = np.sort(np.asarray(levels_pm2, dtype=np.float64))
        self.n_exits = n_exits
        n_zones = len(grid.zone_names)
        self.zone_area = np.bincount(grid.zone, weights=grid.area_m2, minlength=n_zones)
        self.cell_peak = np.zeros(grid.n_cells)
        self.zone_level = np.zeros(n_zones, dtype=np.int64)
        self.times: list[float] = []
        self.evacuated: list[int] = []
        self.exit_counts: list[NDArray[np.int64]] = []
        self.zone_peak: list[NDArray[np.float64]] = []
        self.alerts: list[dict[str, Any]] = []
        self.steps = 0

    def sample(self, t: float, state: CrowdState) -> None:
        """Record the state at time ``t`` (seconds)."""
        grid = self.grid
        counts = kernel.cell_counts(state.cell, grid.n_cells)
        occupied = np.unique(state.cell)
        density = kernel.window_density(grid, counts, occupied)
        self.cell_peak[occupied] = np.maximum(self.cell_peak[occupied], density)
        peak = kernel.group_reduce(
            np.maximum, grid.zone[occupied], density, self.zone_level.size, 0.0
        )
        level = np.searchsorted(self.levels, peak, side="right")
        for zone in np.flatnonzero(level > self.zone_level).tolist():
            self.alerts.append(
                {
                    "zone": grid.zone_names[zone],
                    "t": round(float(t), 3),
                    "density": round(float(peak[zone]), 3),
                    "level": float(self.levels[level[zone] - 1]),
                }
            )
        # a zone stays at its alert level until its density falls clearly (below 80 % of
        # the level) under it, so a density hovering at a threshold raises one alert
        cleared = np.searchsorted(self.levels, peak / HYSTERESIS, side="right")
        self.zone_level = np.maximum(level, np.minimum(self.zone_level, cleared))
        used = state.exit_used[state.exit_used >= 0]
        self.times.append(float(t))
        self.evacuated.append(int(used.size))
        self.exit_counts.append(np.bincount(used, minlength=self.n_exits))
        self.zone_peak.append(peak)

    def result(
        self, state: CrowdState, cell_m: float, dt_s: float, wall_s: float, png: str | None
    ) -> CrowdResult:
        """The drill's answer from what was recorded."""
        grid = self.grid
        times = np.asarray(self.times)
        zone_t = np.vstack(self.zone_peak)
        held = np.diff(times, append=times[-1])
        exit_time = state.exit_time
        total = exit_time.size
        done = np.sort(exit_time[np.isfinite(exit_time)])
        t100 = float(done[-1]) if total and done.size == total else (0.0 if not total else None)
        need90 = int(np.ceil(0.9 * total))
        t90 = float(done[need90 - 1]) if total and done.size >= need90 else None
        if not total:
            t90 = 0.0
        zone_max = zone_t.max(axis=0)
        levels = kernel.fruin_level(zone_max)
        rc_min = kernel.group_reduce(np.minimum, grid.zone, grid.rc, zone_max.size, 0)
        rc_max = kernel.group_reduce(np.maximum, grid.zone, grid.rc, zone_max.size, 0)
        lower = grid.origin + rc_min[:, ::-1] * cell_m
        upper = grid.origin + (rc_max[:, ::-1] + 1) * cell_m
        zones = []
        for index, name in enumerate(grid.zone_names):
            above = {
                f"{level:g}": round(float(held[zone_t[:, index] >= level].sum()), 3)
                for level in self.levels
            }
            zones.append(
                {
                    "zone": name,
                    "area_m2": round(float(self.zone_area[index]), 3),
                    "bbox": [round(float(v), 3) for v in (*lower[index], *upper[index])],
                    "max_density_pm2": round(float(zone_max[index]), 3),
                    "fruin_level": kernel.FRUIN_LEVELS[int(levels[index])],
                    "seconds_above": above,
                }
            )
        flows = np.bincount(state.exit_used[state.exit_used >= 0], minlength=self.n_exits)
        written = None
        if png is not None:
            written = str(write_png(png, density_image(grid, self.cell_peak), scale=2))
        return CrowdResult(
            agents=int(total),
            evacuated=int(done.size),
            evacuation_time_s=None if t100 is None else round(t100, 3),
            t90_s=None if t90 is None else round(t90, 3),
            max_density_pm2=round(float(self.cell_peak.max(initial=0.0)), 3),
            exit_flows={i: int(c) for i, c in enumerate(flows.tolist())},
            wall_s=round(wall_s, 3),
            cell_m=round(float(cell_m), 4),
            dt_s=float(dt_s),
            cells=grid.n_cells,
            steps=self.steps,
            curve_t_s=np.round(times, 3).tolist(),
            curve_evacuated=self.evacuated,
            exit_curves={i: [int(c[i]) for c in self.exit_counts] for i in range(self.n_exits)},
            zones=zones,
            alerts=self.alerts,
            zone_density_t=zone_t,
            exit_time_s=exit_time.copy(),
            density_png=written,
        )
