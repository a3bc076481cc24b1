"""Site flood drills: a design storm on a site's terrain, with its buildings and roads by code.

The terrain grid, building footprints and road polygons come from the CIM (the caller reads
them from the store); the rain is a Chicago design storm (:mod:`scenarios.flood.rain`)
falling on every active cell (rain on grid), with optional point inflows. The DEM may be
coarsened by an integer factor (block means) to keep a drill interactive. The run is the
surface model of :mod:`scenarios.flood.surface_model` with its rain made a hyetograph:
buildings are obstacles, roads deeper than 0.15 m close, buildings with water over 0.15 m
against their walls are affected — each named by its CIM code.

Rain on roofs is not routed (roof cells are walls); it is left out of the inflow volume.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
import simpy

from cim.terrain import TerrainGrid
from scenarios.flood.rain import chicago_hyetograph, intensity_formulas
from scenarios.flood.spec import DesignStorm
from scenarios.flood.surface_model import (
    DEPTH_CLASSES_M,
    PointInflow,
    SurfaceModel,
    SurfaceResult,
    SurfaceSpec,
)

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[float, str], None]

#: Most cells a site drill may run on (after coarsening).
MAX_CELLS = 1_000_000
#: Longest simulated time of a site drill, s.
MAX_DURATION_S = 86_400.0

# depth map colours: outside the data, dry ground, buildings, then one per depth class
_OUTSIDE_RGB = (255, 255, 255)
_DRY_RGB = (232, 232, 226)
_BUILDING_RGB = (90, 90, 90)
_WET_M = 0.01
_DEPTH_RGB = np.array(
    [[190, 220, 245], [120, 180, 235], [50, 120, 210], [20, 50, 150]], dtype=np.uint8
)


@dataclass(frozen=True)
class SiteFloodSpec:
    """One site flood drill.

    Attributes
    ----------
    terrain : the site's elevation grid (metres, the site's CRS)
    buildings : ``(code, footprint)`` of the site's buildings
    roads : ``(code, polygon or line)`` of the site's roads
    duration_s : simulated seconds
    storm : the design storm on every cell, or ``None`` (inflows only)
    rain_mm_h : instead of a storm, ``(t_s, mm/h)`` rows on every cell, each held until the
        next, the last ending the rain (live gauge rain, :mod:`twin.rainfall`)
    inflows : point inflows in the site's CRS
    cell_m : cell size to run on, or ``None``: rounded to a whole multiple of the terrain's
        (within 1 %); the run's actual cell size is in the result
    manning : surface Manning n
    record_step_s : how often closures and affected buildings are looked for
    """

    terrain: TerrainGrid
    buildings: tuple[tuple[str, Any], ...]
    roads: tuple[tuple[str, Any], ...]
    duration_s: float
    storm: DesignStorm | None = None
    inflows: tuple[PointInflow, ...] = ()
    cell_m: float | None = None
    manning: float = 0.03
    record_step_s: float = 60.0
    rain_mm_h: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self) -> None:
        if not 0 < self.duration_s <= MAX_DURATION_S:
            raise ValueError(f"duration_s(={self.duration_s}) must be in (0, {MAX_DURATION_S:g}]")
        if not 1 <= self.record_step_s <= self.duration_s:
            raise ValueError(f"record_step_s(={self.record_step_s}) must be in [1, duration_s]")
        if not 0 < self.manning <= 1:
            raise ValueError(f"manning(={self.manning}) must be in (0, 1]")
        if self.storm is not None and self.rain_mm_h is not None:
            raise ValueError("give a design storm or rain rows, not both")
        if self.rain_mm_h is not None:
            times = [t for t, _ in self.rain_mm_h]
            if len(times) < 2 or times != sorted(set(times)) or times[0] < 0:
                raise ValueError("rain rows must be two or more, from t >= 0, increasing")
            if not all(np.isfinite(v) and 0 <= v <= 1000 for _, v in self.rain_mm_h):
                raise ValueError("rain intensities must be in [0, 1000] mm/h")
        if self.storm is None and self.rain_mm_h is None and not self.inflows:
            raise ValueError("a site flood drill needs a storm, rain or at least one inflow")
        if self.storm is not None:
            self.hyetograph()  # raises on an unknown formula or parameters out of range
        rows, cols = coarse_shape(self.terrain, self.cell_m)
        if min(rows, cols) < 3:
            raise ValueError(
                f"cell_m(={self.cell_m}) leaves {rows} x {cols} cells: choose a smaller one"
            )
        if rows * cols > MAX_CELLS:
            raise ValueError(
                f"{rows} x {cols} = {rows * cols} cells is more than {MAX_CELLS}: "
                "choose a larger cell_m"
            )
        minx, miny, maxx, maxy = self.terrain.bounds()
        for inflow in self.inflows:
            if not (minx <= inflow.x <= maxx and miny <= inflow.y <= maxy):
                raise ValueError(f"inflow at ({inflow.x}, {inflow.y}) is outside the terrain")
            if not (np.isfinite(inflow.q_m3s) and 0 <= inflow.q_m3s <= 1000):
                raise ValueError(f"inflow q_m3s(={inflow.q_m3s}) must be in [0, 1000]")
            if not (np.isfinite(inflow.radius_m) and 0 <= inflow.radius_m <= 1000):
                raise ValueError(f"inflow radius_m(={inflow.radius_m}) must be in [0, 1000]")

    def hyetograph(self) -> tuple[FloatArray, FloatArray]:
        """Block start times (s) and intensities (mm/h) of the storm (empty without one).

        Raises
        ------
        ValueError
            If the formula is unknown or a parameter is out of range.
        """
        if self.rain_mm_h is not None:
            rows = np.array(self.rain_mm_h[:-1], dtype=np.float64).reshape(-1, 2)
            return rows[:, 0], rows[:, 1]
        if self.storm is None:
            return np.zeros(0), np.zeros(0)
        formulas = intensity_formulas()
        if self.storm.formula not in formulas:
            known = ", ".join(sorted(formulas))
            raise ValueError(f"storm formula {self.storm.formula!r} is unknown; known: {known}")
        if not 0 < self.storm.duration_min <= MAX_DURATION_S / 60:
            raise ValueError(f"storm duration_min(={self.storm.duration_min}) must be in (0, 1440]")
        return chicago_hyetograph(
            formulas[self.storm.formula],
            self.storm.return_period_a,
            self.storm.duration_min,
            self.storm.peak_ratio,
            min(self.storm.step_min, self.storm.duration_min),
        )


def coarse_shape(terrain: TerrainGrid, cell_m: float | None) -> tuple[int, int]:
    """Rows and columns of ``terrain`` run at ``cell_m``.

    Raises
    ------
    ValueError
        If the terrain's cells are not square, or ``cell_m`` is not a whole multiple of them.
    """
    factor = _factor(terrain, cell_m)
    rows, cols = terrain.shape
    return -(-rows // factor), -(-cols // factor)


def _factor(terrain: TerrainGrid, cell_m: float | None) -> int:
    if abs(terrain.cell_x - terrain.cell_y) > 1e-9 * terrain.cell_x:
        raise ValueError(f"terrain cells must be square, not {terrain.cell_x} x {terrain.cell_y}")
    if cell_m is None:
        return 1
    ratio = float(cell_m) / terrain.cell_x
    factor = round(ratio)
    if not (np.isfinite(ratio) and factor >= 1 and abs(ratio - factor) <= 0.01 * factor):
        raise ValueError(
            f"cell_m(={cell_m}) must be a whole multiple of the terrain's "
            f"{terrain.cell_x:g} m cells"
        )
    return int(factor)


def coarsen(terrain: TerrainGrid, cell_m: float | None) -> TerrainGrid:
    """The terrain at ``cell_m``: block means of the cells with data (NaN where none)."""
    factor = _factor(terrain, cell_m)
    if factor == 1:
        return terrain
    rows, cols = coarse_shape(terrain, cell_m)
    padded = np.full((rows * factor, cols * factor), np.nan)
    padded[: terrain.shape[0], : terrain.shape[1]] = terrain.heights
    blocks = padded.reshape(rows, factor, cols, factor)
    valid = np.isfinite(blocks)
    count = valid.sum(axis=(1, 3))
    total = np.where(valid, blocks, 0.0).sum(axis=(1, 3))
    heights = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return TerrainGrid(
        heights,
        terrain.origin_x,
        terrain.origin_y,
        terrain.cell_x * factor,
        terrain.cell_y * factor,
        terrain.crs,
    )


@dataclass
class SiteFloodResult:
    """What a site drill found, by CIM code, and its grids.

    ``affected_buildings`` and ``closures`` are lists of dicts with ``code``, the first time
    the threshold was passed and the maximum depth; ``building_max_depth_m`` holds every
    building in the terrain (0 where dry).
    """

    surface: SurfaceResult
    rain_mm: float
    cell_m: float
    shape: tuple[int, int]
    affected_buildings: list[dict[str, Any]]
    closures: list[dict[str, Any]]
    building_max_depth_m: dict[str, float]
    rasters: list[str] = field(default_factory=list)
    depth_png: str | None = None

    def summary(self) -> dict[str, Any]:
        """The headline figures."""
        s = self.surface
        return {
            "max_depth_m": s.max_depth_m,
            "flooded_area_m2": s.flooded_area_m2,
            "affected_buildings": len(self.affected_buildings),
            "closed_roads": len(self.closures),
            "rain_mm": self.rain_mm,
            "inflow_m3": s.inflow_m3,
            "volume_error_pct": s.volume_error_pct,
            "cells": s.cells,
            "cell_m": self.cell_m,
            "wall_s": s.wall_s,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe result, summary first."""
        surface = self.surface.to_dict()
        surface.pop("events", None)
        return {
            "summary": self.summary(),
            "affected_buildings": self.affected_buildings,
            "closures": self.closures,
            "building_max_depth_m": self.building_max_depth_m,
            "surface": surface,
            "shape": list(self.shape),
        }


class _StormSurface(SurfaceModel):
    """The surface model with a hyetograph on every active cell instead of constant rain."""

    def __init__(
        self,
        spec: SurfaceSpec,
        hyetograph: tuple[FloatArray, FloatArray],
        storm_end_s: float,
        progress: Progress | None,
    ) -> None:
        super().__init__(spec, progress)
        self.hyetograph = hyetograph
        self.storm_end_s = storm_end_s

    def rainfall(self, env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        """Block by block: inflows plus the block's rain on every active cell, then inflows."""
        self.source = self.base_source.copy()
        t_s, mm_h = self.hyetograph
        cell_area = self.raster.dx**2
        for start, intensity in zip(t_s, mm_h, strict=True):
            if start > env.now:
                yield env.timeout(float(start) - float(env.now))
            rain = float(intensity) * 1e-3 / 3600.0 * cell_area
            self.source = self.base_source + np.where(self.grid.active, rain, 0.0)
        if t_s.size:
            yield env.timeout(max(self.storm_end_s - float(env.now), 0.0))
            self.source = self.base_source.copy()


def _features(items: tuple[tuple[str, Any], ...], bounds: Any) -> dict[str, Any]:
    features = []
    for code, geom in items:
        if geom is None or geom.is_empty or not geom.intersects(bounds):
            continue
        features.append(
            {
                "type": "Feature",
                "properties": {"code": code},
                "geometry": shapely.geometry.mapping(geom),
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _write_dem(terrain: TerrainGrid, path: Path) -> None:
    import rasterio
    from affine import Affine

    rows, cols = terrain.shape
    profile = {
        "driver": "GTiff",
        "height": rows,
        "width": cols,
        "count": 1,
        "dtype": "float64",
        "crs": terrain.crs,
        "transform": Affine(
            terrain.cell_x, 0.0, terrain.origin_x, 0.0, -terrain.cell_y, terrain.origin_y
        ),
        "nodata": -9999.0,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.where(np.isfinite(terrain.heights), terrain.heights, -9999.0), 1)


def depth_image(max_depth: FloatArray, inside: Any, walls: Any) -> npt.NDArray[np.uint8]:
    """(rows, cols, 3) image of maximum depth, north up: blue by depth class (wet > 1 cm,
    then the closure classes), buildings dark grey, dry ground light grey."""
    image = np.empty((*max_depth.shape, 3), dtype=np.uint8)
    image[:] = _OUTSIDE_RGB
    image[inside] = _DRY_RGB
    klass = np.digitize(max_depth, np.array((_WET_M, *DEPTH_CLASSES_M)))
    wet = inside & (klass > 0)
    image[wet] = _DEPTH_RGB[np.minimum(klass[wet], len(_DEPTH_RGB)) - 1]
    image[walls] = _BUILDING_RGB
    return image


def run_site_flood(
    spec: SiteFloodSpec,
    out_dir: str | Path,
    progress: Progress | None = None,
) -> SiteFloodResult:
    """Run a site drill; the max-depth and time-of-max GeoTIFFs and a depth PNG are written
    to ``out_dir`` (``max_depth.tif``, ``max_depth_tmax.tif``, ``depth.png``).

    Raises
    ------
    ValueError
        If the run becomes unstable or an inflow falls on no active cell.
    """
    from scenarios.crowd.png import write_png

    terrain = coarsen(spec.terrain, spec.cell_m)
    out = Path(out_dir)
    hyetograph = spec.hyetograph()
    storm_end = spec.storm.duration_min * 60.0 if spec.storm is not None else 0.0
    if spec.rain_mm_h is not None:
        storm_end = spec.rain_mm_h[-1][0]
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        work = Path(tmp)
        _write_dem(terrain, work / "dem.tif")
        bounds = shapely.box(*terrain.bounds())
        (work / "buildings.geojson").write_text(json.dumps(_features(spec.buildings, bounds)))
        (work / "roads.geojson").write_text(json.dumps(_features(spec.roads, bounds)))
        surface_spec = SurfaceSpec(
            dem=str(work / "dem.tif"),
            duration_s=spec.duration_s,
            inflows=spec.inflows,
            buildings=str(work / "buildings.geojson"),
            roads=str(work / "roads.geojson"),
            manning=spec.manning,
            record_step_s=spec.record_step_s,
        )
        model = _StormSurface(surface_spec, hyetograph, storm_end, progress)
        result = model.run()
    assert result.max_depth is not None
    flat = result.max_depth.ravel()
    building_depth = {
        code: float(flat[cells].max()) if cells.size else 0.0 for code, cells in model.buildings
    }
    road_depth = {code: float(flat[cells].max()) for code, cells in model.roads if cells.size}
    affected = [
        {
            "code": e["building"],
            "first_t_s": e["t_s"],
            "depth_m": e["depth_m"],
            "max_depth_m": building_depth.get(e["building"], e["depth_m"]),
        }
        for e in result.events
        if "building" in e
    ]
    closures = [
        {
            "code": e["link"],
            "t_start_s": e["t_start_s"],
            "duration_s": e["duration_s"],
            "max_depth_m": road_depth.get(e["link"], 0.0),
        }
        for e in result.events
        if "link" in e
    ]
    rasters = model.write_rasters(result, out / "max_depth.tif")
    walls = model.raster.inside & ~model.grid.active
    image = depth_image(result.max_depth, model.raster.inside, walls)
    scale = max(1, min(8, 800 // max(image.shape[:2])))
    png = write_png(out / "depth.png", image, scale)
    t_s, mm_h = hyetograph
    rain_mm = float((np.diff(np.append(t_s, storm_end)) * mm_h).sum() / 3600.0) if t_s.size else 0.0
    return SiteFloodResult(
        surface=result,
        rain_mm=rain_mm,
        cell_m=terrain.cell_x,
        shape=terrain.shape,
        affected_buildings=affected,
        closures=closures,
        building_max_depth_m=building_depth,
        rasters=rasters,
        depth_png=str(png),
    )
