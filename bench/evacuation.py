"""Building evacuation on the Duplex: wall time, and the zone model against the crowd drill's
cell model (ADR 0008) as peer on the ground floor.

Peer set-up: Level 1 of the Duplex as a crowd venue (its rooms, the door leaves widened
across their walls, the four exterior doors as exits), the same people at the same start
points (Level 1 rooms only, 0.5 P/m²), the same parameters in both models (Weidmann
v0 1.34 m/s without spread, doors 1.9 P/(m·s) without boundary layers, one file 0.6 m), so
that the ratio of evacuation times compares the models, not their parameters; the zone
model's T100 with its own SFPE door flows (1.3 P/(s·m), 15 cm boundary layers) is given too.

Run: ``.venv/bin/python bench/evacuation.py [--repeat 3]``; results to
``bench/out/evacuation.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from cim.importer import import_source
from cim.loaders import LoadOptions
from cim.store import open_store
from scenarios.crowd import CrowdSpec, FundamentalDiagram, Venue, simulate
from scenarios.crowd.building import BuildingFlow, EvacuationSpec, load_building
from scenarios.crowd.building import simulate as evacuate
from scenarios.crowd.building.graph import SPACE, BuildingGraph
from scenarios.crowd.building.model import _place

ROOT = Path(__file__).resolve().parent.parent
DUPLEX = ROOT / "assets/ifc/Duplex_A_20110907.ifc"


def _across_wall(shape: Any, depth: float = 0.7) -> Any:
    """The door's rectangle, stretched across its wall (``depth`` m deep)."""
    rect = np.asarray(shapely.minimum_rotated_rectangle(shape).exterior.coords)[:4]
    e1, e2 = rect[1] - rect[0], rect[2] - rect[1]
    long_, short = (e1, e2) if np.hypot(*e1) >= np.hypot(*e2) else (e2, e1)
    u, w = long_ / 2, short / np.hypot(*short) * depth / 2
    c = rect.mean(axis=0)
    return shapely.Polygon([c - u - w, c + u - w, c + u + w, c - u + w])


def _level1_venue(graph: BuildingGraph, storey: str) -> Venue:
    rooms = [n.footprint for n in graph.nodes if n.kind == SPACE and n.storey == storey]
    doors, exits = [], []
    store_doors = {link.code: link for link in graph.links if link.kind == "door"}
    for link in store_doors.values():
        if graph.nodes[link.a].storey != storey:
            continue
        rect = _across_wall(graph.door_shapes[link.code])
        doors.append(rect)
        if link.exit:
            exits.append(rect.difference(shapely.union_all(rooms).buffer(0.3)))
    walkable = shapely.union_all([r.buffer(0.01) for r in rooms] + doors)
    return Venue(walkable, exits, source="Duplex Level 1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "t.db")
        import_source(
            store,
            DUPLEX,
            site="campus",
            options=LoadOptions(at=(85000.0, 446000.0, 30.0), crs="EPSG:28992"),
        )
        (building,) = store.by_kind("campus", "IfcBuilding")
        storey = next(
            o.code for o in store.by_kind("campus", "IfcBuildingStorey") if o.name == "Level 1"
        )
        door_shapes = {o.code: o.footprint for o in store.by_kind("campus", "IfcDoor")}
        t = time.perf_counter()
        graph = load_building(store, "campus", building.code)
        graph_s = time.perf_counter() - t
        store.close()
    graph.door_shapes = door_shapes  # type: ignore[attr-defined]
    spec = EvacuationSpec(site="campus", building=building.code, load_pm2=0.5)
    walls = []
    for _ in range(args.repeat):
        result = evacuate(graph, spec)
        walls.append(result["summary"]["wall_s"])
    whole = result["summary"]

    # the peer comparison: Level 1 only, same people, same parameters
    loads = {
        n.code: round(0.5 * n.area_m2)
        for n in graph.nodes
        if n.kind == SPACE and n.storey == storey
    }
    flow = BuildingFlow(
        door_flow_pmps=1.9, door_boundary_m=0.0, opening_boundary_m=0.0, min_effective_m=0.6
    )
    level1 = EvacuationSpec(site="campus", building=building.code, loads=loads, flow=flow)
    ours = evacuate(graph, level1)
    sfpe = evacuate(graph, EvacuationSpec(site="campus", building=building.code, loads=loads))
    counts = [loads.get(n.code, 0) for n in graph.nodes]
    _, xy = _place(graph, counts, level1.seed)
    venue = _level1_venue(graph, storey)
    peer_walls, peer = [], None
    for _ in range(args.repeat):
        peer = simulate(
            venue,
            CrowdSpec(
                venue="duplex-level1",
                agents=len(xy),
                positions=tuple(map(tuple, xy)),
                cell_m=0.2,
                fd=FundamentalDiagram(free_speed_sd_mps=0.0),
            ),
        )
        peer_walls.append(peer.wall_s)
    assert peer is not None
    out = {
        "duplex_0.5pm2": {
            "graph_s": round(graph_s, 3),
            "wall_s_median": statistics.median(walls),
            **{k: whole[k] for k in ("people", "t100_s", "t90_s", "longest_free_walk_s")},
            "storeys": result["storeys"],
            "bottlenecks": [b["code"] for b in whole["bottlenecks"]],
        },
        "level1_vs_cell_model": {
            "people": ours["summary"]["people"],
            "zone_t100_s": ours["summary"]["t100_s"],
            "cell_t100_s": peer.evacuation_time_s,
            "t100_ratio_zone_over_cell": round(
                ours["summary"]["t100_s"] / peer.evacuation_time_s, 3
            ),
            "zone_t100_s_own_sfpe_parameters": sfpe["summary"]["t100_s"],
            "zone_wall_s": ours["summary"]["wall_s"],
            "cell_wall_s_median": statistics.median(peer_walls),
        },
    }
    target = ROOT / "bench" / "out"
    target.mkdir(parents=True, exist_ok=True)
    (target / "evacuation.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
