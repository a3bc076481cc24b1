"""Network and surface coupled at the junctions: the water that leaves one arrives in the other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from scenarios.flood.coupled import CoupledModel
from scenarios.flood.rain import apply_storm
from scenarios.flood.spec import DesignStorm, FloodSpec
from scenarios.flood.surface_model import SurfaceSpec
from scenarios.flood.swmm_inp import load_swmm_inp


def _rim_dem(net_path: Path, out: Path, dx: float = 5.0) -> None:
    """A terrain through the manhole rims of the network (inverse-distance weighting)."""
    net = load_swmm_inp(net_path)
    nodes = [n for n in net.nodes.values() if n.x is not None and n.y is not None]
    xs = np.array([n.x for n in nodes], dtype=float)
    ys = np.array([n.y for n in nodes], dtype=float)
    rim = np.array([n.invert_m + n.max_depth_m for n in nodes])
    x0, y1 = xs.min() - 40, ys.max() + 40
    nx, ny = int((xs.max() + 40 - x0) / dx), int((y1 - ys.min() + 40) / dx)
    gx, gy = np.meshgrid(x0 + (np.arange(nx) + 0.5) * dx, y1 - (np.arange(ny) + 0.5) * dx)
    weight = 1.0 / ((gx[..., None] - xs) ** 2 + (gy[..., None] - ys) ** 2 + 1.0)
    z = (weight * rim).sum(-1) / weight.sum(-1)
    with rasterio.open(
        out,
        "w",
        driver="GTiff",
        height=ny,
        width=nx,
        count=1,
        dtype="float64",
        crs="EPSG:32632",
        transform=Affine(dx, 0.0, x0, 0.0, -dx, y1),
    ) as dst:
        dst.write(z, 1)


def test_spilled_water_is_on_the_surface_or_back_in_the_pipes(
    swmm_dir: Path, tmp_path: Path
) -> None:
    inp = swmm_dir / "bellinge_small.inp"
    dem = tmp_path / "rims.tif"
    _rim_dem(inp, dem)
    net = load_swmm_inp(inp)
    apply_storm(net, DesignStorm("shanghai-2017", 50.0, 30.0))
    duration = 1800.0
    model = CoupledModel(
        net,
        FloodSpec(str(inp), duration_s=duration),
        SurfaceSpec(dem=str(dem), duration_s=duration),
    )
    result = model.run()
    assert len(result.coupled_nodes) == 15
    assert result.spilled_m3 > 50.0  # a 50-year burst floods Bellinge's small pipes
    assert result.drained_back_m3 > 0.0
    surface = result.surface
    # every cubic metre that spilled is on the surface, left over its edge, or drained back
    assert surface.stored_m3 + surface.outflow_m3 == pytest.approx(
        result.spilled_m3 - result.drained_back_m3, rel=0.01, abs=0.5
    )
    # the network floods where SWMM would, and the surface holds that water near the nodes
    assert result.network.total_flood_volume_m3 == pytest.approx(result.spilled_m3, rel=1e-9)
    assert surface.max_depth_m > 0.15
