"""1D network and 2D surface in one SimPy run, exchanging water at the junctions.

What a node cannot hold (its flooding) spills onto the surface cell around the node; water
standing on that cell drains back into the node through its inlet (an orifice,
``Cd·A·√(2·g·h)``) while the node is below its rim. The ``exchange`` actor moves the water
every ``exchange_step_s``: the spill as a surface source, the drainage as a surface sink and a
lateral inflow to the node, so the two models' volumes add up to what the rain brought.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import simpy

from scenarios.flood.model import DrainageModel
from scenarios.flood.network import Network
from scenarios.flood.spec import FloodResult, FloodSpec
from scenarios.flood.surface import GRAVITY
from scenarios.flood.surface_model import SurfaceModel, SurfaceResult, SurfaceSpec

IntArray = npt.NDArray[np.int64]
Progress = Callable[[float, str], None]

INLET_CD = 0.6
INLET_AREA_M2 = 0.5


@dataclass
class CoupledResult:
    """Both models' results and the water that crossed between them (m3)."""

    network: FloodResult
    surface: SurfaceResult
    spilled_m3: float
    drained_back_m3: float
    coupled_nodes: list[str]
    wall_s: float


class CoupledModel:
    """A drainage network and its surface; nodes outside the DEM stay uncoupled."""

    def __init__(
        self,
        net: Network,
        spec: FloodSpec,
        surface: SurfaceSpec,
        exchange_step_s: float = 10.0,
        progress: Progress | None = None,
    ) -> None:
        if not exchange_step_s > 0:
            raise ValueError(f"exchange_step_s(={exchange_step_s}) must be > 0")
        self.drainage = DrainageModel(net, spec, progress)
        self.surface = SurfaceModel(surface)
        self.step = exchange_step_s
        arr = self.drainage.arr
        raster = self.surface.raster
        nodes, cells = [], []
        ny, nx = raster.z.shape
        for i, name in enumerate(arr.node_names):
            node = net.nodes[name]
            if node.kind == "outfall" or node.x is None or node.y is None:
                continue
            row, col = raster.cell_of(node.x, node.y)
            if 0 <= row < ny and 0 <= col < nx and self.surface.grid.active[row, col]:
                nodes.append(i)
                cells.append(row * nx + col)
        self.nodes: IntArray = np.asarray(nodes, dtype=np.int64)
        self.cells: IntArray = np.asarray(cells, dtype=np.int64)
        self.spilled_m3 = 0.0
        self.drained_m3 = 0.0

    def exchange(self, env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        """Every exchange step: spill flooding onto the surface, drain standing water back."""
        drainage, surface = self.drainage, self.surface
        arr = drainage.arr
        area = surface.raster.dx**2
        base = surface.base_source.copy()
        while True:
            spill = drainage.spilled[self.nodes]
            drainage.spilled[:] = 0.0
            self.spilled_m3 += float(spill.sum())
            h = surface.state.h.ravel()[self.cells]
            room = drainage.state.depth[self.nodes] < arr.full_depth[self.nodes] - 0.01
            inlet = INLET_CD * INLET_AREA_M2 * np.sqrt(2.0 * GRAVITY * np.maximum(h, 0.0))
            drain = np.where(room, np.minimum(inlet, h * area / self.step), 0.0)
            source = base.copy().ravel()
            np.add.at(source, self.cells, spill / self.step - drain)
            surface.source = source.reshape(base.shape)
            drainage.extra_lateral[:] = 0.0
            np.add.at(drainage.extra_lateral, self.nodes, drain)
            self.drained_m3 += float(drain.sum() * self.step)
            yield env.timeout(self.step)

    def run(self) -> CoupledResult:
        """Run both models to the end of the network's duration."""
        start = time.perf_counter()
        env = simpy.Environment()
        self.drainage.attach(env)
        self.surface.attach(env)
        env.process(self.exchange(env))
        env.run(until=self.drainage.duration + 1e-6)
        wall = time.perf_counter() - start
        names = self.drainage.arr.node_names
        return CoupledResult(
            network=self.drainage.summarise(wall),
            surface=self.surface.summarise(wall),
            spilled_m3=self.spilled_m3,
            drained_back_m3=self.drained_m3,
            coupled_nodes=[names[i] for i in self.nodes],
            wall_s=wall,
        )
