"""Chicago design storms: closed-form totals, and a flooding storm against SWMM."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from pyswmm import Nodes, Simulation, SystemStats

from scenarios.flood import DesignStorm, FloodSpec, run
from scenarios.flood.rain import chicago_hyetograph, intensity_formulas


def test_shanghai_formula_matches_its_published_q() -> None:
    shanghai = intensity_formulas()["shanghai-2017"]
    # DB31/T 1043-2017: q = 1600(1 + 0.846 lg P)/(t + 7)^0.656 L/(s·hm2), q = 167 i
    for p, t in [(1, 10), (5, 60), (100, 120)]:
        q = 1600 * (1 + 0.846 * np.log10(p)) / (t + 7.0) ** 0.656
        assert shanghai.intensity_mm_per_min(p, t) * 167 == pytest.approx(q, rel=1e-3)
    assert "DB31/T 1043-2017" in shanghai.source


@pytest.mark.parametrize("r", [0.3, 0.405, 0.5])
def test_chicago_total_depth_and_peak(r: float) -> None:
    formula = intensity_formulas()["shanghai-2017"]
    t_s, mm_h = chicago_hyetograph(formula, 5.0, 120.0, r, 5.0)
    assert len(t_s) == 24 and t_s[0] == 0.0 and t_s[-1] == 115 * 60
    depth = float(np.sum(mm_h * 5 / 60))
    assert depth == pytest.approx(formula.intensity_mm_per_min(5.0, 120.0) * 120.0, rel=1e-9)
    # the peak block is the one holding r·T
    assert int(np.argmax(mm_h)) == int(r * 120 // 5)
    # no block is more intense than the formula's 5-minute average
    assert mm_h.max() / 60 <= formula.intensity_mm_per_min(5.0, 5.0) + 1e-9


def test_bad_storm_arguments() -> None:
    formula = intensity_formulas()["suzhou-2025"]
    with pytest.raises(ValueError, match="peak_ratio"):
        chicago_hyetograph(formula, 5.0, 120.0, 1.2)
    with pytest.raises(ValueError, match="return_period_a"):
        chicago_hyetograph(formula, 0.0, 120.0)


def _storm_file(src: Path, dst: Path, formula: str, p: float, minutes: float) -> None:
    t_s, mm_h = chicago_hyetograph(intensity_formulas()[formula], p, minutes)
    lines, section = [], ""
    for line in src.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped.upper()
        if section == "[RAINGAGES]" and stripped and not stripped.startswith((";", "[")):
            line = f"{stripped.split()[0]} INTENSITY 0:05 1.0 TIMESERIES DS"
        if stripped.startswith("END_TIME"):
            line = "END_TIME 03:00:00"
        lines.append(line)
    series = "".join(f"DS {t / 3600:.6f} {i:.6f}\n" for t, i in zip(t_s, mm_h, strict=True))
    text = "\n".join(lines).replace("[REPORT]", f"[TIMESERIES]\n{series}\n[REPORT]")
    dst.write_text(text)


def test_design_storm_flooding_matches_swmm(swmm_dir: Path, tmp_path: Path) -> None:
    """A 5-year, 2-hour Shanghai storm on Bellinge: SWMM with the storm as a time series, ours
    with the storm applied by the spec; flooding per node and in total, outfall peak."""
    path = tmp_path / "storm.inp"
    _storm_file(swmm_dir / "bellinge_small.inp", path, "shanghai-2017", 5.0, 120.0)
    shutil.copy(swmm_dir / "storm.dat", tmp_path / "storm.dat")
    with Simulation(str(path)) as sim:
        nodes = list(Nodes(sim))
        for _ in sim:
            pass
        swmm_flood = {n.nodeid: n.statistics["flooding_volume"] for n in nodes}
        swmm_peak = (
            nodes[[n.nodeid for n in nodes].index("G72F050_outfall")].statistics[
                "peak_total_inflow"
            ]
            * 1e-3
        )
        swmm_total = SystemStats(sim).routing_stats["flooding"]
    storm = DesignStorm("shanghai-2017", 5.0, 120.0)
    ours = run(FloodSpec(str(swmm_dir / "bellinge_small.inp"), duration_s=3 * 3600, storm=storm))
    assert swmm_total > 500  # the storm floods the network
    assert ours.total_flood_volume_m3 == pytest.approx(swmm_total, rel=0.10)
    assert ours.outfall_peak_flow_m3s["G72F050_outfall"] == pytest.approx(swmm_peak, rel=0.05)
    ranked_swmm = sorted((v, k) for k, v in swmm_flood.items() if v > 1)[::-1]
    ranked_ours = sorted((v, k) for k, v in ours.node_flood_volume_m3.items() if v > 1)[::-1]
    assert [k for _, k in ranked_ours] == [k for _, k in ranked_swmm]
