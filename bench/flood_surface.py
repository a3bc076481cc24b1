"""Surface benchmark: a 1-hour point-inflow event on the Merewether 1 m terrain with its houses.

Reports wall time, cell-steps per second, steps, the volume balance and peak RSS, as medians of
``--repeat`` runs in fresh subprocesses. The event: 19.7 m3/s (the 1 % AEP inflow ANUGA's
Merewether example uses) entering over a 15 m radius at the top of the catchment, Manning
0.04 with 0.02 on the road corridor, houses as walls, open edges.

Run: ``.venv/bin/python bench/flood_surface.py [--repeat 3] [--duration 3600]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_RUN = """
import json, resource, sys
from scenarios.flood.surface_model import PointInflow, SurfaceModel, SurfaceSpec
root, duration = sys.argv[1], float(sys.argv[2])
spec = SurfaceSpec(
    dem=f"{root}/assets/merewether/merewether_dtm_1m_epsg32756.tif",
    buildings=f"{root}/assets/merewether/merewether_houses_epsg32756.geojson",
    roads=f"{root}/assets/flood/merewether_road_polygon.csv",
    manning=0.04,
    manning_zones=((f"{root}/assets/flood/merewether_road_polygon.csv", 0.02),),
    inflows=(PointInflow(382300.0, 6354290.0, 19.7, 15.0),),
    probes=((382300.0, 6354290.0), (382390.0, 6354400.0)),
    duration_s=duration,
)
r = SurfaceModel(spec).run()
out = r.to_dict()
out["events"] = len(r.events)
out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3600.0)
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeat):
        proc = subprocess.run(
            [sys.executable, "-c", _RUN, str(ROOT), str(args.duration)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    last = runs[-1]
    summary = {
        "duration_s": args.duration,
        "wall_s_median": statistics.median(r["wall_s"] for r in runs),
        "wall_s_all": [r["wall_s"] for r in runs],
        "cell_steps_per_s_median": statistics.median(r["cell_steps_per_s"] for r in runs),
        "steps": last["steps"],
        "active_cells": last["cells"],
        "inflow_m3": last["inflow_m3"],
        "stored_m3": last["stored_m3"],
        "outflow_m3": last["outflow_m3"],
        "volume_error_pct": last["volume_error_pct"],
        "max_depth_m": last["max_depth_m"],
        "flooded_area_m2": last["flooded_area_m2"],
        "events": last["events"],
        "probes": last["probes"],
        "peak_rss_mb": max(r["rss_mb"] for r in runs),
    }
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "flood_surface.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
