"""Crowd drill vs JuPedSim: same venue, same people, same start positions and exits, one run.

Run with ``make bench-crowd`` (installs jupedsim without its viewer dependencies), or::

    .venv/bin/python bench/crowd_vs_jupedsim.py --agents 1000 2000 --repeats 5

Both models start from JuPedSim's own ``distribute_by_number`` positions (0.4 m apart, 0.3 m
from walls) and send each person to the exit nearest by walking distance (computed once on
our cell graph and given to both). JuPedSim runs its collision-free speed model (dt 0.01 s,
desired speed 1.34 m/s, radius 0.15 m, as in its performance test); ours runs with the same
free speed for everyone. Each run is a separate process, so peak RSS is per model. Our wall
time is end to end (venue file to result); the first run discretises the venue (cold), the
next ``--repeats`` load the cached cells (warm, the median is reported); JuPedSim's is the
median of ``--peer-repeats``. Results go to ``bench/out/crowd_vs_jupedsim.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
DEFAULT_VENUE = ROOT.parent / "shared" / "data" / "crowd" / "Geometrie_verwinkelt_v1.wkt"


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM: not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def prepare(venue_path: Path, agents: int, seed: int) -> tuple[Path, Path]:
    """Start positions (JuPedSim's distribution) and nearest exits, saved for the children."""
    import jupedsim as jps

    from scenarios.crowd import load_venue
    from scenarios.crowd.grid import auto_cell_m, build_grid

    venue = load_venue(venue_path)
    xy = np.array(
        jps.distribute_by_number(
            polygon=venue.walkable,
            number_of_agents=agents,
            distance_to_agents=0.4,
            distance_to_polygon=0.3,
            seed=seed,
        )
    )
    grid = build_grid(venue, auto_cell_m(venue))
    cell = grid.cell_of(xy)
    exit_id = np.argmin(grid.distance_m[:, cell], axis=0)
    OUT.mkdir(parents=True, exist_ok=True)
    positions = OUT / f"crowd_positions_{agents}.npy"
    exits = OUT / f"crowd_exits_{agents}.npy"
    np.save(positions, xy)
    np.save(exits, exit_id)
    return positions, exits


def run_ours(venue_path: Path, positions: Path, cache: Path | None) -> dict[str, float | None]:
    # imports stay outside the timing, as for JuPedSim (the grid imports scipy lazily)
    import scipy.sparse.csgraph  # noqa: F401

    from scenarios.crowd import CrowdSpec, FundamentalDiagram, run

    xy = np.load(positions)
    started = time.perf_counter()
    result = run(
        CrowdSpec(
            venue=str(venue_path),
            agents=0,
            positions=tuple((float(x), float(y)) for x, y in xy),
            fd=FundamentalDiagram(free_speed_sd_mps=0.0),
            grid_cache=None if cache is None else str(cache),
        )
    )
    return {
        "wall_s": time.perf_counter() - started,
        "evacuation_time_s": result.evacuation_time_s,
        "t90_s": result.t90_s,
        "steps": result.steps,
        "cell_m": result.cell_m,
        "dt_s": result.dt_s,
        "peak_rss_mb": _peak_rss_mb(),
    }


def run_scale(venue_path: Path, agents: int, seed: int) -> dict[str, float | None]:
    """Ours alone at a size the peer cannot reach here: uniform placement, nearest exits."""
    from scenarios.crowd import CrowdSpec, run

    started = time.perf_counter()
    result = run(CrowdSpec(venue=str(venue_path), agents=agents, seed=seed))
    return {
        "wall_s": time.perf_counter() - started,
        "evacuation_time_s": result.evacuation_time_s,
        "t90_s": result.t90_s,
        "max_density_pm2": result.max_density_pm2,
        "steps": result.steps,
        "peak_rss_mb": _peak_rss_mb(),
    }


def run_jupedsim(venue_path: Path, positions: Path, exits: Path) -> dict[str, float | None]:
    import jupedsim as jps

    from scenarios.crowd import load_venue

    started = time.perf_counter()
    venue = load_venue(venue_path)
    xy = np.load(positions)
    exit_id = np.load(exits)
    sim = jps.Simulation(model=jps.CollisionFreeSpeedModel(), geometry=venue.walkable, dt=0.01)
    stages = [sim.add_exit_stage(list(e.exterior.coords)) for e in venue.exits]
    journeys = [sim.add_journey(jps.JourneyDescription([s])) for s in stages]
    for (x, y), e in zip(xy, exit_id.tolist(), strict=True):
        sim.add_agent(
            jps.CollisionFreeSpeedModelAgentParameters(
                position=(float(x), float(y)),
                journey_id=journeys[e],
                stage_id=stages[e],
                desired_speed=1.34,
                radius=0.15,
            )
        )
    total = sim.agent_count()
    out_times: list[float] = []
    while sim.agent_count() > 0:
        sim.iterate()
        gone = total - sim.agent_count()
        while len(out_times) < gone:
            out_times.append(sim.elapsed_time())
        if sim.elapsed_time() > 3600:
            break
    need90 = int(np.ceil(0.9 * total))
    return {
        "wall_s": time.perf_counter() - started,
        "evacuation_time_s": sim.elapsed_time() if sim.agent_count() == 0 else None,
        "t90_s": out_times[need90 - 1] if len(out_times) >= need90 else None,
        "steps": sim.iteration_count(),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _child(args: list[str]) -> dict[str, float | None]:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venue", type=Path, default=DEFAULT_VENUE)
    parser.add_argument("--agents", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peer-repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", choices=("ours", "jupedsim", "scale"))
    parser.add_argument("--positions", type=Path)
    parser.add_argument("--exits", type=Path)
    parser.add_argument("--grid-cache", type=Path)
    parser.add_argument(
        "--scale", type=int, default=0, help="also run ours alone with this many people"
    )
    args = parser.parse_args()
    if args.child == "ours":
        print(json.dumps(run_ours(args.venue, args.positions, args.grid_cache)))
        return 0
    if args.child == "scale":
        print(json.dumps(run_scale(args.venue, args.agents[0], args.seed)))
        return 0
    if args.child == "jupedsim":
        print(json.dumps(run_jupedsim(args.venue, args.positions, args.exits)))
        return 0
    try:
        import jupedsim  # noqa: F401
    except ImportError:
        sys.exit("jupedsim is not installed: run `make bench-crowd`")
    if not args.venue.exists():
        sys.exit(f"{args.venue}: venue not found (the JuPedSim venues live in ../shared/data)")
    rows = []
    for agents in args.agents:
        positions, exits = prepare(args.venue, agents, args.seed)
        common = ["--venue", str(args.venue), "--positions", str(positions)]
        cache = OUT / f"crowd_grid_cache_{agents}"
        shutil.rmtree(cache, ignore_errors=True)
        # the first run builds the venue's cells (cold); the others load them (warm)
        runs = [
            _child(["--child", "ours", *common, "--grid-cache", str(cache)])
            for _ in range(args.repeats + 1)
        ]
        cold, ours = runs[0], runs[1:]
        peer = [
            _child(["--child", "jupedsim", *common, "--exits", str(exits)])
            for _ in range(args.peer_repeats)
        ]

        def median(runs: list[dict[str, float | None]], key: str) -> float | None:
            values = [r[key] for r in runs if r[key] is not None]
            return statistics.median(values) if values else None  # type: ignore[type-var]

        row = {
            "venue": args.venue.name,
            "agents": agents,
            "ours": {k: median(ours, k) for k in ours[0]},
            "jupedsim": {k: median(peer, k) for k in peer[0]},
            "ours_cold_wall_s": cold["wall_s"],
            "ours_runs_wall_s": [r["wall_s"] for r in ours],
            "jupedsim_runs_wall_s": [r["wall_s"] for r in peer],
        }
        t_ours, t_peer = row["ours"]["evacuation_time_s"], row["jupedsim"]["evacuation_time_s"]
        row["evacuation_time_ratio"] = t_ours / t_peer if t_ours and t_peer else None
        t90_ours, t90_peer = row["ours"]["t90_s"], row["jupedsim"]["t90_s"]
        row["t90_ratio"] = t90_ours / t90_peer if t90_ours and t90_peer else None
        row["speedup"] = row["jupedsim"]["wall_s"] / row["ours"]["wall_s"]
        row["speedup_cold"] = row["jupedsim"]["wall_s"] / cold["wall_s"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.scale:
        scale = _child(
            ["--child", "scale", "--venue", str(args.venue), "--agents", str(args.scale)]
        )
        rows.append({"venue": args.venue.name, "agents": args.scale, "ours_only": scale})
        print(json.dumps(rows[-1]), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "crowd_vs_jupedsim.json").write_text(json.dumps(rows, indent=2))
    print()
    print("| agents | model | wall s (median) | T100 s | T90 s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        if "ours_only" in row:
            r = row["ours_only"]
            print(
                f"| {row['agents']} | ours only | {r['wall_s']:.1f} | {r['evacuation_time_s']} "
                f"| {r['t90_s']} | {r['peak_rss_mb']:.0f} |"
            )
            continue
        for name in ("ours", "jupedsim"):
            r = row[name]
            print(
                f"| {row['agents']} | {name} | {r['wall_s']:.2f} | {r['evacuation_time_s']} "
                f"| {r['t90_s']} | {r['peak_rss_mb']:.0f} |"
            )
        print(
            f"| {row['agents']} | ours, cold (discretising) | {row['ours_cold_wall_s']:.2f} | | | |"
        )
        print(
            f"| {row['agents']} | ratio | x{row['speedup']:.0f} warm, x{row['speedup_cold']:.0f}"
            f" cold | {_fmt(row['evacuation_time_ratio'])} | {_fmt(row['t90_ratio'])} | |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
