"""Our 1D drainage model against EPA SWMM 5.2 (pyswmm) on the same real networks, one run.

For each network: SWMM and ours on the same ``.inp`` (a copy with ``THREADS 1`` so SWMM's
OpenMP does not oversubscribe this 2-core machine), each in a fresh subprocess so peak RSS
belongs to that engine alone; wall times are medians of ``--repeat`` runs. Accuracy per
network: each outfall's peak flow, total flood volume, the node flooding ranking, outflow
volume and continuity error.

Run: ``.venv/bin/python bench/flood_vs_swmm.py [--repeat 3]``; writes a Markdown table to
stdout and ``bench/out/flood_vs_swmm.json``. Networks from the shared data set (pystorms,
GPL-3.0) are read from ``../shared/data/swmm`` when present and never copied.

Shayler Crossing's gauge names a rain file that is not published with it: its two copies
(``shayler_storm_5a``: the file's physics; ``shayler_storm_5a_horton``: what both engines
model) read the Shanghai 5-year, 2-hour Chicago storm from a time series instead
(``--only shayler_storm_5a,shayler_storm_5a_horton`` runs just those).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "swmm"
ASSETS = ROOT / "assets" / "swmm"

_SWMM = """
import json, resource, sys, time
from pyswmm import Nodes, Simulation, SystemStats
from cim.loaders.swmm_units import unit_system
t = time.perf_counter()
with Simulation(sys.argv[1]) as sim:
    u = unit_system(sim.flow_units)
    nodes = list(Nodes(sim))
    for _ in sim:
        pass
    stats = SystemStats(sim).routing_stats
    out = {
        "peaks": {n.nodeid: n.statistics["peak_total_inflow"] * u.flow
                  for n in nodes if n.is_outfall()},
        "floods": {n.nodeid: n.statistics["flooding_volume"] * u.volume for n in nodes
                   if n.statistics["flooding_volume"] > 0},
        "outflow_m3": stats["outflow"] * u.volume,
        "flood_m3": stats["flooding"] * u.volume,
        "continuity_pct": stats["routing_error"],
    }
out["wall_s"] = time.perf_counter() - t
out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""

_OURS = """
import json, resource, sys, time
from scenarios.flood import FloodSpec, run
import scenarios.flood.model  # module imports are not run work (pyswmm's are done too)
t = time.perf_counter()
r = run(FloodSpec(sys.argv[1]))
out = {
    "peaks": r.outfall_peak_flow_m3s, "floods": r.node_flood_volume_m3,
    "outflow_m3": r.outflow_volume_m3, "flood_m3": r.total_flood_volume_m3,
    "continuity_pct": r.continuity_error_pct, "steps": r.steps,
    "ignored": r.ignored_sections,
}
out["wall_s"] = time.perf_counter() - t
out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def _networks(workdir: Path) -> dict[str, Path]:
    """Copies with THREADS 1 of every network we compare, written into ``workdir``."""
    sources = {
        "bellinge": ASSETS / "bellinge_small.inp",
        "state_plane": ASSETS / "model_state_plane.inp",
        "pump_control": ASSETS / "Pump_Control_Model.inp",
    }
    for name in ("alpha", "zeta", "gamma", "beta_threads1"):
        if (SHARED / "pystorms" / f"{name}.inp").is_file():
            sources[f"pystorms_{name}"] = SHARED / "pystorms" / f"{name}.inp"
    for name in ("SWMMExtCntrlModel", "model_lids", "test_inlet_drains"):
        # the other EPA examples (pump control, state plane are in assets/swmm already)
        if (SHARED / "examples" / f"{name}.inp").is_file():
            sources[f"epa_{name}"] = SHARED / "examples" / f"{name}.inp"
    shutil.copy(ASSETS / "storm.dat", workdir / "storm.dat")
    out = {}
    for name, src in sources.items():
        text = src.read_text(errors="replace")
        if re.search(r"^THREADS\s", text, flags=re.M):
            text = re.sub(r"^THREADS\s+\S+", "THREADS 1", text, flags=re.M)
        else:
            text = text.replace("[OPTIONS]", "[OPTIONS]\nTHREADS 1", 1)
        dst = workdir / f"{name}.inp"
        dst.write_text(text)
        out[name] = dst
    out["bellinge_storm_5a"] = _storm_copy(out["bellinge"], workdir / "bellinge_storm_5a.inp")
    shayler = SHARED / "shayler_crossing_SHC_NEW_event_noflood.inp"
    if shayler.is_file():
        out["shayler_storm_5a"] = _shayler_copy(shayler, workdir / "shayler_storm_5a.inp")
        out["shayler_storm_5a_horton"] = _shayler_copy(
            shayler, workdir / "shayler_storm_5a_horton.inp", same_physics=True
        )
    return out


def _shayler_copy(src: Path, dst: Path, same_physics: bool = False) -> Path:
    """Shayler Crossing (CFS) under the 5-year, 2-hour Shanghai Chicago storm, ``THREADS 1``.

    The file's gauge reads an external rain file ("Calibration Rainfall.dat") that is not
    shipped with it, so the copy's gauge reads a rain time series instead (in/h: the file's
    rain units). With ``same_physics`` the copy also drops what our model does not have
    (LID_USAGE, GROUNDWATER) and replaces Green-Ampt by Horton at the soil's Ksat (a constant
    rate: f0 = fmin = Ksat), so both engines model the same processes.
    """
    sys.path.insert(0, str(ROOT))
    from scenarios.flood.rain import chicago_hyetograph, intensity_formulas

    t_s, mm_h = chicago_hyetograph(intensity_formulas()["shanghai-2017"], 5.0, 120.0)
    lines, section = [], ""
    for line in src.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped.upper()
        data = bool(stripped) and not stripped.startswith((";", "["))
        if stripped.startswith("THREADS"):
            line = "THREADS 1"
        if section == "[RAINGAGES]" and data:
            line = f"{stripped.split()[0]} INTENSITY 0:05 1.0 TIMESERIES DS"
        if same_physics and data and section in ("[LID_USAGE]", "[GROUNDWATER]"):
            continue
        if same_physics and stripped.startswith("INFILTRATION"):
            line = "INFILTRATION HORTON"
        if same_physics and section == "[INFILTRATION]" and data:
            name, _suction, ksat = stripped.split()[:3]
            line = f"{name} {ksat} {ksat} 4 7 0"
        lines.append(line)
    series = "".join(f"DS {t / 3600:.6f} {i / 25.4:.6f}\n" for t, i in zip(t_s, mm_h, strict=True))
    dst.write_text("\n".join(lines).replace("[REPORT]", f"[TIMESERIES]\n{series}\n[REPORT]"))
    return dst


def _storm_copy(src: Path, dst: Path) -> Path:
    """Bellinge under a 5-year, 2-hour Shanghai Chicago storm written as a rain time series."""
    sys.path.insert(0, str(ROOT))
    from scenarios.flood.rain import chicago_hyetograph, intensity_formulas

    t_s, mm_h = chicago_hyetograph(intensity_formulas()["shanghai-2017"], 5.0, 120.0)
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
    dst.write_text("\n".join(lines).replace("[REPORT]", f"[TIMESERIES]\n{series}\n[REPORT]"))
    return dst


def _measure(code: str, path: Path) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        return {"error": last[:200]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _ranking(floods: dict[str, float], top: int = 5) -> list[str]:
    return [k for k, v in sorted(floods.items(), key=lambda kv: -kv[1]) if v > 0.01][:top]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", help="comma-separated network names")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        networks = _networks(Path(tmp))
        if args.only:
            networks = {k: v for k, v in networks.items() if k in args.only.split(",")}
        for name, path in networks.items():
            runs = {"swmm": [], "ours": []}
            for _ in range(args.repeat):
                for engine, code in (("swmm", _SWMM), ("ours", _OURS)):
                    runs[engine].append(_measure(code, path))
            row: dict[str, object] = {"network": name}
            for engine, results in runs.items():
                ok = [r for r in results if "error" not in r]
                if not ok:
                    row[engine] = {"error": results[0]["error"]}
                    continue
                best = dict(ok[-1])
                best["wall_s"] = statistics.median(float(r["wall_s"]) for r in ok)  # type: ignore[arg-type]
                best["rss_mb"] = max(float(r["rss_mb"]) for r in ok)  # type: ignore[arg-type]
                row[engine] = best
            rows.append(row)
            print(_line(row), flush=True)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "flood_vs_swmm.json").write_text(json.dumps(rows, indent=2))
    return 0


def _line(row: dict[str, object]) -> str:
    swmm, ours = row.get("swmm"), row.get("ours")
    name = row["network"]
    if (
        not isinstance(swmm, dict)
        or not isinstance(ours, dict)
        or "error" in swmm
        or "error" in ours
    ):
        s_err = swmm.get("error", "ok") if isinstance(swmm, dict) else "?"
        o_err = ours.get("error", "ok") if isinstance(ours, dict) else "?"
        return f"| {name} | SWMM: {s_err} | ours: {o_err} |"
    peaks = []
    for outfall, q in swmm["peaks"].items():  # type: ignore[union-attr]
        mine = ours["peaks"].get(outfall, float("nan"))  # type: ignore[union-attr]
        rel = (mine - q) / q * 100 if q > 1e-9 else float("nan")
        peaks.append(f"{outfall} {q:.4g}/{mine:.4g} ({rel:+.1f}%)")
    same_rank = _ranking(swmm["floods"]) == _ranking(ours["floods"])  # type: ignore[arg-type]
    return (
        f"| {name} | {'; '.join(peaks)} | {swmm['flood_m3']:.1f}/{ours['flood_m3']:.1f} | "
        f"{'same' if same_rank else 'differs'} | "
        f"{swmm['outflow_m3']:.1f}/{ours['outflow_m3']:.1f} | "
        f"{swmm['continuity_pct']:.2f}/{ours['continuity_pct']:.2f} | "
        f"{swmm['wall_s']:.3f} | {ours['wall_s']:.3f} | {ours['wall_s'] / swmm['wall_s']:.1f} | "  # type: ignore[operator]
        f"{swmm['rss_mb']:.0f}/{ours['rss_mb']:.0f} |"
    )


if __name__ == "__main__":
    print(
        "| network | outfall peak m3/s SWMM/ours (diff) | flood m3 SWMM/ours "
        "| flood ranking (top 5) "
        "| outflow m3 SWMM/ours | continuity % SWMM/ours | SWMM wall s | ours wall s | ratio "
        "| peak RSS MB SWMM/ours |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    sys.exit(main())
