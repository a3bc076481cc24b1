"""The compiled dynamic-wave step against the numpy step it replaces, on the real networks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scenarios.flood.arrays import OUTFALL, freeze
from scenarios.flood.kernel import RoutingState, prime
from scenarios.flood.kernel import route_step as numpy_step
from scenarios.flood.network_kernel import pack
from scenarios.flood.network_kernel import route_step as compiled_step
from scenarios.flood.swmm_inp import load_swmm_inp


@pytest.mark.parametrize(
    "name", ["bellinge_small.inp", "model_state_plane.inp", "Pump_Control_Model.inp"]
)
def test_compiled_step_matches_numpy_step(swmm_dir: Path, name: str) -> None:
    """300 steps of 5 s, 20 L/s into every node but outfalls: same depths, flows, flooding."""
    net = load_swmm_inp(swmm_dir / name)
    arr = freeze(net)
    jit = pack(arr)
    a, b = RoutingState.initial(arr), RoutingState.initial(arr)
    prime(arr, a)
    prime(arr, b)
    n, m = arr.n_nodes, len(arr.conduit_names)
    lateral = np.where(arr.node_kind != OUTFALL, 0.02, 0.0)
    pumps_on = np.ones(len(arr.pump_names), bool)
    setting = np.ones(len(arr.reg_names))
    closed = np.zeros(m, bool)
    min_area = net.options.min_surfarea_m2
    outfall = np.zeros(n)
    flood_a = flood_b = 0.0
    for _ in range(300):
        result = numpy_step(arr, a, lateral, 5.0, min_area, pumps_on, setting, closed)
        trials = compiled_step(
            jit, b.depth, b.q, b.a_mid, b.pump_q, b.pump_on, b.reg_q, b.net_inflow,
            b.overflow, b.ponded, b.old_surf, b.dydt, b.froude, lateral, 5.0, min_area,
            pumps_on, setting, closed, outfall,
        )  # fmt: skip
        assert trials == result.trials
        flood_a += float(result.overflow.sum()) * 5.0
        flood_b += float(b.overflow.sum()) * 5.0
    assert np.abs(a.q).max() > 0.01
    np.testing.assert_allclose(b.depth, a.depth, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(b.q, a.q, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(b.net_inflow, a.net_inflow, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(b.pump_on, a.pump_on)
    assert flood_b == pytest.approx(flood_a, rel=1e-9, abs=1e-9)


def test_a_surcharged_weir_runs_as_an_orifice_unless_told_not_to(tmp_path: Path) -> None:
    """SWMM's weir above its opening: continuous with Cw·L·h^1.5 at h = y, then
    Cw·L·y^1.5/√(y/2)·√(h − y/2); a weir marked Surcharge NO keeps the weir law."""
    from scenarios.flood.kernel import regulator_flows

    def weir_flows(surcharge: str, heads: list[float]) -> list[float]:
        inp = tmp_path / f"weir_{surcharge}.inp"
        inp.write_text(
            "[OPTIONS]\nFLOW_UNITS CMS\nSTART_DATE 01/01/2020\nEND_DATE 01/01/2020\n"
            "START_TIME 00:00\nEND_TIME 01:00\n[JUNCTIONS]\nA 0 5\n[OUTFALLS]\nB -2 FREE\n"
            f"[WEIRS]\nW A B TRANSVERSE 0 1.8 NO 0 0 {surcharge}\n"
            "[XSECTIONS]\nW RECT_OPEN 0.5 2.0 0 0\n[COORDINATES]\nA 0 0\nB 10 0\n"
        )
        arr = freeze(load_swmm_inp(inp))
        out = []
        for head in heads:
            depth = np.zeros(len(arr.node_names))
            depth[arr.node_names.index("A")] = head
            q, _ = regulator_flows(arr, depth, np.ones(1))
            out.append(float(q[0]))
        return out

    y = 0.5
    below, at, above = weir_flows("YES", [0.3, y, 1.5])
    assert below == pytest.approx(1.8 * 2.0 * 0.3**1.5)
    assert at == pytest.approx(1.8 * 2.0 * y**1.5)
    assert above == pytest.approx(1.8 * 2.0 * y**1.5 / np.sqrt(y / 2) * np.sqrt(1.5 - y / 2))
    assert above < 1.8 * 2.0 * 1.5**1.5
    (free,) = weir_flows("NO", [1.5])
    assert free == pytest.approx(1.8 * 2.0 * 1.5**1.5)
