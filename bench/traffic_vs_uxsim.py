"""Traffic drill side by side with UXsim: the same CSV network and demand through UXsim's
Python engine, UXsim's C++ engine (``cpp=True``) and ours, in one run.

Run: ``make bench-traffic`` (or ``.venv/bin/python bench/traffic_vs_uxsim.py [--repeat N]
[--case sioux_falls] [--skip-python]``). Each measurement runs in a fresh subprocess, so peak
RSS (``ru_maxrss``) is that engine's alone; times are medians of ``--repeat`` runs (seeds
0..N-1); trip figures are medians too. ``build_s`` reads the CSVs and builds the world,
``sim_s`` simulates and gathers the trip statistics; ``wall_s`` is their sum. Results go to
``bench/out/traffic_vs_uxsim.json``.

Cases: Sioux Falls (``../shared/data/traffic/sfnetwork``, academic-use data, not shipped),
deltan 5, tmax 7200 s; the Tokyo arterial network shipped in ``assets/traffic`` with its
10,800-vehicle demand, deltan 5, tmax 5400 s; central Helsinki read from
``../shared/data/streets/helsinki_center.osm.pbf`` by our OSM reader with a seeded random
demand over an hour (400 OD pairs at 0.006 veh/s: 8,000 vehicles; 21.6 vehicles a pair, so
UXsim's floating-point accumulation of demand makes the same platoons as ours), written to
``bench/out`` as CSV so that every engine reads the same files, deltan 5, tmax 7200 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "sioux_falls": (ROOT.parent / "shared/data/traffic/sfnetwork", 5, 7200.0),
    "tokyo_arterial": (ROOT / "assets/traffic/tokyo_arterial", 5, 5400.0),
    "helsinki_osm": (ROOT / "bench/out/helsinki_osm", 5, 7200.0),
}
HELSINKI_PBF = ROOT.parent / "shared/data/streets/helsinki_center.osm.pbf"


def prepare_helsinki(prefix: Path, pairs: int = 400, flow_vps: float = 0.006) -> None:
    """Central Helsinki from OSM (our reader) plus a seeded random OD demand over one hour."""
    import numpy as np

    from scenarios.traffic import DemandWindow
    from scenarios.traffic.loaders import write_uxsim_csv
    from scenarios.traffic.osm import load_osm_roads

    network, report = load_osm_roads(HELSINKI_PBF, deltan=5)
    rng = np.random.default_rng(42)
    demand = []
    for _ in range(pairs):
        o, d = rng.choice(network.n_nodes, size=2, replace=False)
        demand.append(
            DemandWindow(network.node_names[o], network.node_names[d], 0.0, 3600.0, flow_vps)
        )
    prefix.parent.mkdir(parents=True, exist_ok=True)
    write_uxsim_csv(network, demand, prefix)
    print(f"helsinki_osm: {network.n_nodes} nodes, {network.n_links} links ({report})")


_OURS = """
import json, resource, sys, time
t0 = time.perf_counter()
from scenarios.traffic import TrafficSpec, load_uxsim_csv, run
prefix, deltan, tmax, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
t = time.perf_counter()
network, demand = load_uxsim_csv(prefix)
spec = TrafficSpec(network, demand, deltan=deltan, tmax_s=tmax, seed=seed)
from scenarios.traffic.model import TrafficModel
model = TrafficModel(spec)
build = time.perf_counter() - t
t = time.perf_counter()
result = model.run()
sim = time.perf_counter() - t
trips = result.trips
print(json.dumps({"build_s": build, "sim_s": sim, "vehicles": trips.vehicles,
                  "completed": trips.completed_trips,
                  "average_travel_time_s": trips.average_travel_time_s,
                  "average_delay_s": trips.average_delay_s,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_UXSIM = """
import csv, json, resource, sys, time
from uxsim import World
prefix, deltan, tmax, seed, cpp = (sys.argv[1], int(sys.argv[2]), float(sys.argv[3]),
                                    int(sys.argv[4]), sys.argv[5] == "1")
t = time.perf_counter()
W = World(name="", deltan=deltan, tmax=tmax, print_mode=0, save_mode=0, show_mode=0,
          random_seed=seed, cpp=cpp)
def rows(kind):
    with open(f"{prefix}_{kind}.csv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
for r in rows("nodes"):
    W.addNode(r["name"], float(r["x"]), float(r["y"]))
for r in rows("links"):
    extra = {}
    for key, conv in (("number_of_lanes", lambda v: int(float(v))), ("jam_density", float),
                      ("merge_priority", float), ("capacity_out", float),
                      ("capacity_in", float)):
        if r.get(key):
            extra[key] = conv(r[key])
    W.addLink(r["name"], r["start_node"], r["end_node"], length=float(r["length"]),
              free_flow_speed=float(r["free_flow_speed"]), **extra)
for r in rows("demand"):
    W.adddemand(r["orig"], r["dest"], float(r["t_start"]), float(r["t_end"]),
                flow=float(r["flow"]), volume=float(r["volume"]))
build = time.perf_counter() - t
t = time.perf_counter()
W.exec_simulation()
W.analyzer.basic_analysis()
sim = time.perf_counter() - t
a = W.analyzer
print(json.dumps({"build_s": build, "sim_s": sim, "vehicles": int(a.trip_all),
                  "completed": int(a.trip_completed),
                  "average_travel_time_s": float(a.average_travel_time),
                  "average_delay_s": float(a.average_delay),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

ENGINES = {
    "ours": (_OURS, ()),
    "uxsim_cpp": (_UXSIM, ("1",)),
    "uxsim_python": (_UXSIM, ("0",)),
}


def measure(engine: str, prefix: Path, deltan: int, tmax: float, seed: int) -> dict[str, Any]:
    code, extra = ENGINES[engine]
    args = [sys.executable, "-c", code, str(prefix), str(deltan), str(tmax), str(seed), *extra]
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{engine} failed:\n{done.stderr}")
    record: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    record["wall_s"] = record["build_s"] + record["sim_s"]
    return record


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case", action="append", choices=sorted(CASES))
    parser.add_argument("--skip-python", action="store_true", help="skip UXsim's Python engine")
    args = parser.parse_args()
    engines = [e for e in ENGINES if not (args.skip_python and e == "uxsim_python")]
    report: dict[str, Any] = {}
    for case in args.case or list(CASES):
        prefix, deltan, tmax = CASES[case]
        if case == "helsinki_osm" and HELSINKI_PBF.is_file():
            prepare_helsinki(prefix)
        if not Path(f"{prefix}_links.csv").is_file():
            print(f"{case}: {prefix}_links.csv not found, skipped")
            continue
        runs: dict[str, list[dict[str, Any]]] = {e: [] for e in engines}
        for seed in range(args.repeat):
            for engine in engines:  # interleaved, so load on the machine hits all alike
                runs[engine].append(measure(engine, prefix, deltan, tmax, seed))
        medians = {e: median_of(r) for e, r in runs.items()}
        ours, cpp = medians["ours"], medians["uxsim_cpp"]
        ratios = {
            "wall_ours_over_uxsim_cpp": ours["wall_s"] / cpp["wall_s"],
            "sim_ours_over_uxsim_cpp": ours["sim_s"] / cpp["sim_s"],
            "average_travel_time_vs_cpp": ours["average_travel_time_s"]
            / cpp["average_travel_time_s"]
            - 1,
            "completed_vs_cpp": ours["completed"] / cpp["completed"] - 1,
        }
        if "uxsim_python" in medians:
            py = medians["uxsim_python"]
            ratios["wall_ours_over_uxsim_python"] = ours["wall_s"] / py["wall_s"]
            ratios["average_travel_time_vs_python"] = (
                ours["average_travel_time_s"] / py["average_travel_time_s"] - 1
            )
            ratios["completed_vs_python"] = ours["completed"] / py["completed"] - 1
        report[case] = {
            "deltan": deltan,
            "tmax_s": tmax,
            "repeat": args.repeat,
            "medians": medians,
            "ratios": ratios,
            "runs": runs,
        }
        print(f"\n{case} (deltan {deltan}, tmax {tmax:.0f} s, medians of {args.repeat})")
        print(
            f"{'engine':14}{'build s':>9}{'sim s':>9}{'wall s':>9}{'vehicles':>10}"
            f"{'completed':>11}{'avg tt s':>10}{'avg delay':>11}{'peak MB':>9}"
        )
        for engine, m in medians.items():
            print(
                f"{engine:14}{m['build_s']:9.3f}{m['sim_s']:9.3f}{m['wall_s']:9.3f}"
                f"{m['vehicles']:10.0f}{m['completed']:11.0f}{m['average_travel_time_s']:10.1f}"
                f"{m['average_delay_s']:11.1f}{m['peak_rss_mb']:9.0f}"
            )
        for key, value in ratios.items():
            print(f"  {key}: {value:+.3f}" if "_vs_" in key else f"  {key}: {value:.3f}")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "traffic_vs_uxsim.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
