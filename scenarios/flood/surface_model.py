"""Surface flooding on a DEM as a SimPy model: inflow actors, one integrator, a recorder.

The integrator advances :func:`scenarios.flood.surface_kernel.advance` on the window of the grid
that holds water (plus a margin), with the stable step of Bates et al. (2010). The recorder
tracks maximum depth and its time for every cell, probe depths, and turns threshold
crossings into events in bulk: roads deeper than 0.15 m become closures, buildings with
water above a threshold against their walls become affected-building events.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
import simpy

from cim.errors import SourceError
from scenarios.flood.surface import SurfaceGrid, SurfaceState
from scenarios.flood.surface_kernel import (
    CELL_STEPS,
    INFLOW,
    N_TALLY,
    OUTFLOW,
    STATUS,
    STEPS,
    advance,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Progress = Callable[[float, str], None]

ROAD_CLOSURE_DEPTH_M = 0.15
BUILDING_DEPTH_M = 0.15
DEPTH_CLASSES_M = (0.15, 0.30, 0.50)
WINDOW_MARGIN = 3
MAX_STEP_S = 5.0


@dataclass(frozen=True)
class PointInflow:
    """``q_m3s`` entering at (x, y), spread over the cells within ``radius_m`` (at least one)."""

    x: float
    y: float
    q_m3s: float
    radius_m: float = 0.0


@dataclass(frozen=True)
class SurfaceSpec:
    """One surface run on a DEM; coordinates in the DEM's CRS (metres)."""

    dem: str
    duration_s: float
    inflows: tuple[PointInflow, ...] = ()
    buildings: str | None = None
    roads: str | None = None
    manning: float = 0.03
    manning_zones: tuple[tuple[str, float], ...] = ()
    probes: tuple[tuple[float, float], ...] = ()
    rain_mm_h: float = 0.0
    record_step_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.duration_s > 0:
            raise ValueError(f"duration_s(={self.duration_s}) must be > 0")
        if not self.manning > 0:
            raise ValueError(f"manning(={self.manning}) must be > 0")
        for inflow in self.inflows:
            if not inflow.q_m3s >= 0 or not inflow.radius_m >= 0:
                raise ValueError(f"inflow {inflow}: q and radius must be >= 0")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SurfaceSpec:
        """Build from a JSON-like dict."""
        data = dict(data)
        data["inflows"] = tuple(PointInflow(**i) for i in data.get("inflows", ()))
        data["manning_zones"] = tuple((str(p), float(n)) for p, n in data.get("manning_zones", ()))
        data["probes"] = tuple((float(x), float(y)) for x, y in data.get("probes", ()))
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return asdict(self)


@dataclass
class SurfaceResult:
    """Probe peaks, volume balance, events and the max-depth grids (not in ``to_dict``)."""

    probes: list[dict[str, float]]
    inflow_m3: float
    stored_m3: float
    outflow_m3: float
    volume_error_pct: float
    max_depth_m: float
    flooded_area_m2: dict[str, float]
    steps: int
    cells: int
    cell_steps_per_s: float
    wall_s: float
    events: list[dict[str, Any]] = field(default_factory=list)
    max_depth: FloatArray | None = None
    time_of_max_s: FloatArray | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (without the grids)."""
        out = asdict(self)
        out.pop("max_depth")
        out.pop("time_of_max_s")
        return out


@dataclass
class _Raster:
    z: FloatArray
    inside: BoolArray
    transform: Any
    crs: Any
    dx: float

    def centres(self) -> tuple[FloatArray, FloatArray]:
        ny, nx = self.z.shape
        cols, rows = np.meshgrid(np.arange(nx) + 0.5, np.arange(ny) + 0.5)
        x = self.transform.c + cols * self.transform.a + rows * self.transform.b
        y = self.transform.f + cols * self.transform.d + rows * self.transform.e
        return x, y

    def cell_of(self, x: float, y: float) -> tuple[int, int]:
        col = int(np.floor((x - self.transform.c) / self.transform.a))
        row = int(np.floor((y - self.transform.f) / self.transform.e))
        return row, col


def read_dem(path: str | Path) -> _Raster:
    """Elevations, the cells with data, transform and CRS of a GeoTIFF DEM.

    Raises
    ------
    cim.errors.SourceError
        If the file cannot be read, is rotated, or its cells are not square.
    """
    import rasterio

    try:
        with rasterio.open(path) as src:
            z = src.read(1).astype(np.float64)
            nodata = src.nodata
            transform, crs = src.transform, src.crs
    except rasterio.errors.RasterioIOError as exc:
        raise SourceError(path, f"cannot read DEM: {exc}") from None
    if transform.b != 0 or transform.d != 0 or abs(abs(transform.a) - abs(transform.e)) > 1e-9:
        raise SourceError(path, "DEM must be north-up with square cells")
    inside = np.isfinite(z)
    if nodata is not None:
        inside &= z != nodata
    return _Raster(z, inside, transform, crs, abs(float(transform.a)))


def _polygons_geojson(path: str | Path) -> list[tuple[str, Any]]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SourceError(path, f"cannot read GeoJSON: {exc}") from None
    out = []
    for k, feature in enumerate(data.get("features", [])):
        props = feature.get("properties") or {}
        name = str(props.get("code") or props.get("name") or props.get("id") or f"feature-{k}")
        try:
            geom = shapely.geometry.shape(feature["geometry"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SourceError(path, f"bad geometry: {exc}", name) from None
        out.append((name, geom))
    return out


def read_polygon_csv(path: str | Path) -> Any:
    """A polygon from a file of ``x,y`` lines (the issue's --manning-zone format).

    Raises
    ------
    cim.errors.SourceError
        If a line is not two numbers or there are fewer than three points.
    """
    points = []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise SourceError(path, f"cannot read: {exc.strerror}") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            x, y = (float(v) for v in line.replace(";", ",").split(",")[:2])
        except ValueError:
            raise SourceError(path, f"line {n}: expected x,y, got {line.strip()!r}") from None
        points.append((x, y))
    if len(points) < 3:
        raise SourceError(path, "a polygon needs at least three x,y lines")
    return shapely.Polygon(points)


def _cells_in(geom: Any, x: FloatArray, y: FloatArray) -> BoolArray:
    minx, miny, maxx, maxy = geom.bounds
    box = (x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy)
    out = np.zeros(x.shape, dtype=bool)
    if box.any():
        out[box] = shapely.contains_xy(geom, x[box], y[box])
    return out


class SurfaceModel:
    """One surface run; build it, then :meth:`run`."""

    def __init__(self, spec: SurfaceSpec, progress: Progress | None = None) -> None:
        self.spec = spec
        self.progress = progress
        raster = read_dem(spec.dem)
        self.raster = raster
        x, y = raster.centres()
        manning = np.full(raster.z.shape, spec.manning)
        for path, n in spec.manning_zones:
            if not n > 0:
                raise ValueError(f"manning zone {path}: n(={n}) must be > 0")
            manning[_cells_in(read_polygon_csv(path), x, y)] = n
        walls = np.zeros(raster.z.shape, dtype=bool)
        self.buildings: list[tuple[str, npt.NDArray[np.int64]]] = []
        if spec.buildings:
            for name, geom in _polygons_geojson(spec.buildings):
                cells = _cells_in(geom, x, y)
                walls |= cells
                # the ring of cells around the footprint: where water stands against the walls
                ring = _dilate(cells) & ~cells
                self.buildings.append((name, np.flatnonzero(ring)))
        self.roads: list[tuple[str, npt.NDArray[np.int64]]] = []
        if spec.roads:
            roads = (
                [(Path(spec.roads).stem, read_polygon_csv(spec.roads))]
                if str(spec.roads).endswith(".csv")
                else _polygons_geojson(spec.roads)
            )
            for name, geom in roads:
                area = geom if geom.area > 0 else geom.buffer(3.0)
                self.roads.append((name, np.flatnonzero(_cells_in(area, x, y))))
        self.grid = SurfaceGrid.build(raster.z, raster.dx, manning, raster.inside, walls)
        self.state = SurfaceState.dry(self.grid)
        self.source = np.zeros(raster.z.shape)
        self.base_source = np.zeros(raster.z.shape)
        for inflow in spec.inflows:
            cells = np.hypot(x - inflow.x, y - inflow.y) <= inflow.radius_m
            cells &= self.grid.active
            if not cells.any():
                row, col = raster.cell_of(inflow.x, inflow.y)
                if (
                    not (0 <= row < x.shape[0] and 0 <= col < x.shape[1])
                    or not self.grid.active[row, col]
                ):
                    raise ValueError(
                        f"inflow at ({inflow.x}, {inflow.y}) is not on an active DEM cell"
                    )
                cells[row, col] = True
            self.base_source[cells] += inflow.q_m3s / cells.sum()
        self.probe_cells = []
        for px, py in spec.probes:
            row, col = raster.cell_of(px, py)
            if not (0 <= row < x.shape[0] and 0 <= col < x.shape[1]) or not raster.inside[row, col]:
                raise ValueError(f"probe ({px}, {py}) is outside the DEM")
            self.probe_cells.append((row, col))
        self.probe_peak: list[float] = [0.0] * len(self.probe_cells)
        self.max_depth = np.zeros(raster.z.shape)
        self.time_of_max = np.full(raster.z.shape, np.nan)
        self.inflow_m3 = 0.0
        self.steps = 0
        self.cell_steps = 0
        self.events: list[dict[str, Any]] = []
        self._road_open: dict[str, float] = {}
        self._building_hit: set[str] = set()

    def rainfall(self, env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        """The rain and inflow actor: sets the source for the whole run (constant here)."""
        rain = self.spec.rain_mm_h * 1e-3 / 3600.0 * self.raster.dx**2
        self.source = self.base_source + np.where(self.grid.active, rain, 0.0)
        yield env.timeout(0)

    def integrator(self, env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        """Advance the surface in compiled chunks, each up to the next event of another actor.

        SimPy keeps the coarse events (record steps, coupling exchanges, the end of the run);
        :func:`scenarios.flood.surface_kernel.advance` takes every adaptive step in between.
        """
        grid, state = self.grid, self.state
        duration = self.spec.duration_s
        probe_r = np.array([r for r, _ in self.probe_cells], dtype=np.int64)
        probe_c = np.array([c for _, c in self.probe_cells], dtype=np.int64)
        peak = np.array(self.probe_peak, dtype=np.float64)
        tally = np.zeros(N_TALLY)
        while env.now < duration - 1e-9:
            t = float(env.now)
            t_stop = min(float(env.peek()), duration)
            tally[:] = 0.0
            t_next = advance(
                grid.z,
                grid.active,
                grid.manning,
                grid.open_x,
                grid.open_y,
                grid.dx,
                state.h,
                state.qx,
                state.qy,
                self.source,
                t,
                t_stop,
                duration,
                MAX_STEP_S,
                WINDOW_MARGIN,
                self.max_depth,
                self.time_of_max,
                probe_r,
                probe_c,
                peak,
                tally,
            )
            if tally[STATUS] != 0.0:
                raise ValueError(f"surface unstable at t={t_next:.1f} s: depth became non-finite")
            state.outflow_m3 += float(tally[OUTFLOW])
            self.inflow_m3 += float(tally[INFLOW])
            self.steps += int(tally[STEPS])
            self.cell_steps += int(tally[CELL_STEPS])
            self.probe_peak = [float(p) for p in peak]
            yield env.timeout(max(t_next - t, 0.0))

    def recorder(self, env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        """Threshold crossings in bulk every record step: road closures, affected buildings."""
        step = self.spec.record_step_s
        while True:
            t = float(env.now)
            flat = self.state.h.ravel()
            for name, cells in self.roads:
                deep = cells.size > 0 and float(flat[cells].max()) > ROAD_CLOSURE_DEPTH_M
                if deep and name not in self._road_open:
                    self._road_open[name] = t
                    self.events.append(
                        {
                            "link": name,
                            "t_start_s": t,
                            "duration_s": None,
                            "lanes": None,
                            "reason": "flood",
                        }
                    )
                elif not deep and name in self._road_open:
                    start = self._road_open.pop(name)
                    for event in self.events:
                        if event.get("link") == name and event["t_start_s"] == start:
                            event["duration_s"] = t - start
            for name, cells in self.buildings:
                if name in self._building_hit or cells.size == 0:
                    continue
                depth = float(flat[cells].max())
                if depth > BUILDING_DEPTH_M:
                    self._building_hit.add(name)
                    self.events.append(
                        {"building": name, "t_s": t, "depth_m": depth, "reason": "flood"}
                    )
            if self.progress is not None:
                self.progress(min(t / self.spec.duration_s, 1.0), "surface")
            yield env.timeout(step)

    def run(self) -> SurfaceResult:
        """Run to the end and summarise."""
        start = time.perf_counter()
        env = simpy.Environment()
        self.attach(env)
        env.run(until=self.spec.duration_s + 1e-6)
        return self.summarise(time.perf_counter() - start)

    def attach(self, env: simpy.Environment) -> None:
        """Register the model's processes with ``env`` (for runs coupled with others)."""
        self.probe_peak = [0.0] * len(self.probe_cells)
        env.process(self.rainfall(env))
        env.process(self.integrator(env))
        env.process(self.recorder(env))

    def summarise(self, wall: float) -> SurfaceResult:
        """The result of a finished run."""
        area = self.raster.dx**2
        stored = float(self.state.h.sum() * area)
        error = 0.0
        if self.inflow_m3 > 0:
            error = (self.inflow_m3 - stored - self.state.outflow_m3) / self.inflow_m3 * 100.0
        probes = []
        for (px, py), (row, col), peak in zip(
            self.spec.probes, self.probe_cells, self.probe_peak, strict=True
        ):
            probes.append(
                {
                    "x": px,
                    "y": py,
                    "peak_stage_m": float(self.raster.z[row, col] + peak),
                    "peak_depth_m": peak,
                }
            )
        classes = {}
        for low in DEPTH_CLASSES_M:
            classes[f">{low:.2f}"] = float((self.max_depth > low).sum() * area)
        if self.progress is not None:
            self.progress(1.0, "done")
        return SurfaceResult(
            probes=probes,
            inflow_m3=self.inflow_m3,
            stored_m3=stored,
            outflow_m3=self.state.outflow_m3,
            volume_error_pct=error,
            max_depth_m=float(self.max_depth.max()),
            flooded_area_m2=classes,
            steps=self.steps,
            cells=int(self.grid.active.sum()),
            cell_steps_per_s=self.cell_steps / wall if wall > 0 else 0.0,
            wall_s=wall,
            events=self.events,
            max_depth=self.max_depth,
            time_of_max_s=self.time_of_max,
        )

    def write_rasters(self, result: SurfaceResult, max_depth_path: str | Path) -> list[str]:
        """Write max depth and time of max as GeoTIFFs (``<name>`` and ``<name>_tmax``)."""
        import rasterio

        path = Path(max_depth_path)
        tmax = path.with_name(path.stem + "_tmax" + path.suffix)
        profile = {
            "driver": "GTiff",
            "height": self.raster.z.shape[0],
            "width": self.raster.z.shape[1],
            "count": 1,
            "dtype": "float32",
            "crs": self.raster.crs,
            "transform": self.raster.transform,
            "nodata": -9999.0,
            "compress": "deflate",
        }
        for target, grid in ((path, result.max_depth), (tmax, result.time_of_max_s)):
            assert grid is not None
            data = np.where(self.raster.inside & np.isfinite(grid), grid, -9999.0).astype(
                np.float32
            )
            with rasterio.open(target, "w", **profile) as dst:
                dst.write(data, 1)
        return [str(path), str(tmax)]


def depth_class_polygons(
    max_depth: FloatArray,
    transform: Any,
    inside: BoolArray,
    classes_m: tuple[float, ...] = DEPTH_CLASSES_M,
) -> dict[str, Any]:
    """Polygons of the depth classes (e.g. 0.15–0.30, 0.30–0.50, > 0.50 m) as GeoJSON.

    Parameters
    ----------
    max_depth : (ny, nx) float, m
    transform : the raster's affine transform
    inside : (ny, nx) bool — cells with data
    classes_m : class lower bounds, increasing

    Returns
    -------
    dict
        A GeoJSON FeatureCollection; each feature has ``min_depth_m``, ``max_depth_m``
        (None for the top class) and ``area_m2``.
    """
    from rasterio import features

    bounds = np.asarray(classes_m, dtype=np.float64)
    klass = np.digitize(max_depth, bounds).astype(np.int32)  # 0 below the first bound
    mask = inside & (klass > 0)
    out = []
    for geom, value in features.shapes(klass, mask=mask, transform=transform):
        k = int(value)
        shape = shapely.geometry.shape(geom)
        out.append(
            {
                "type": "Feature",
                "geometry": geom,
                "properties": {
                    "min_depth_m": float(bounds[k - 1]),
                    "max_depth_m": float(bounds[k]) if k < len(bounds) else None,
                    "area_m2": float(shape.area),
                },
            }
        )
    return {"type": "FeatureCollection", "features": out}


def _dilate(mask: BoolArray) -> BoolArray:
    out = mask.copy()
    out[1:, :] |= mask[:-1, :]
    out[:-1, :] |= mask[1:, :]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def _wet_window(h: FloatArray, source: FloatArray) -> tuple[int, int, int, int] | None:
    wet = (h > 0) | (source != 0)
    rows = np.flatnonzero(wet.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(wet.any(axis=0))
    ny, nx = h.shape
    return (
        max(int(rows[0]) - WINDOW_MARGIN, 0),
        min(int(rows[-1]) + WINDOW_MARGIN + 1, ny),
        max(int(cols[0]) - WINDOW_MARGIN, 0),
        min(int(cols[-1]) + WINDOW_MARGIN + 1, nx),
    )
