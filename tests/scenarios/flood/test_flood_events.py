"""Control rules and report samples inside the compiled routing against the SimPy actors.

The model runs the file's control rules and its report sampling inside the compiled routing
call, replaying the routing activations SimPy had when both were actors of their own
(ADR 0015, section 8). Forcing them back into actors must give the same run bit for bit.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from scenarios.flood.model import DrainageModel
from scenarios.flood.spec import FloodSpec
from scenarios.flood.swmm_inp import load_swmm_inp


def _run(path: Path, compiled: bool, duration_s: float | None = None) -> dict[str, Any]:
    net = load_swmm_inp(path)
    model = DrainageModel(net, FloodSpec(str(path), duration_s=duration_s))
    if not compiled:
        model.compiled_rules = False
        model.compiled_reports = False
    result = asdict(model.run())
    result.pop("wall_s")
    return result


@pytest.mark.parametrize(
    ("name", "duration_s"),
    [
        ("Pump_Control_Model.inp", 6 * 3600.0),  # rules, report = rule = routing step (20 s)
        ("bellinge_small.inp", None),  # variable steps, dry spells skipped between reports
        ("model_state_plane.inp", 6 * 3600.0),  # variable steps, no rules
    ],
)
def test_compiled_rules_and_reports_match_simpy_actors(
    swmm_dir: Path, name: str, duration_s: float | None
) -> None:
    compiled = _run(swmm_dir / name, True, duration_s)
    actors = _run(swmm_dir / name, False, duration_s)
    assert compiled["steps"] == actors["steps"] > 0
    assert compiled["node_depth_series_m"] == actors["node_depth_series_m"]
    assert compiled["events"] == actors["events"]
    assert compiled == actors


def test_pump_control_rules_switch_pumps(swmm_dir: Path) -> None:
    """The compiled rules do act: pump switches are logged with their rule, in time order."""
    result = _run(swmm_dir / "Pump_Control_Model.inp", True)
    switches = [e for e in result["events"] if e["kind"] in ("pump_on", "pump_off")]
    assert len(switches) >= 4
    assert all(e["rule"] and e["pump"] for e in switches)
    times = [e["t_s"] for e in switches]
    assert times == sorted(times)
