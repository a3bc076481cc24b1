"""Rebuild tokyo_arterial_*.csv from UXsim's ``dat/tokyo_arterial_{nodes,links}.csv``.

The links are converted from UXsim's old column names (start, end, u, kappa; cp932 text) to the
current form (start_node, end_node, free_flow_speed, jam_density; UTF-8). The demand is ours:
40 OD pairs drawn with a fixed seed among node pairs at least 3 km apart that are connected,
each 0.15 veh/s over the first 30 minutes (10,800 vehicles).

    python assets/traffic/make_tokyo_arterial.py SRC_DIR assets/traffic
"""

import csv
import math
import sys
from pathlib import Path

import networkx as nx
import numpy as np

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
nodes = list(csv.DictReader((src / "tokyo_arterial_nodes.csv").open(encoding="utf-8")))
links = list(csv.DictReader((src / "tokyo_arterial_links.csv").open(encoding="cp932")))
with (dst / "tokyo_arterial_nodes.csv").open("w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["name", "x", "y"])
    for n in nodes:
        w.writerow([n["name"], n["x"], n["y"]])
with (dst / "tokyo_arterial_links.csv").open("w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(
        [
            "name",
            "start_node",
            "end_node",
            "length",
            "free_flow_speed",
            "jam_density",
            "merge_priority",
            "road_class",
        ]
    )
    for link in links:
        w.writerow(
            [
                link["name"],
                link["start"],
                link["end"],
                link["length"],
                link["u"],
                link["kappa"],
                link["merge_priority"],
                "arterial",
            ]
        )
graph = nx.DiGraph()
graph.add_edges_from((link["start"], link["end"]) for link in links)
xy = {n["name"]: (float(n["x"]), float(n["y"])) for n in nodes}


def metres(a: str, b: str) -> float:
    (x1, y1), (x2, y2) = xy[a], xy[b]
    dx = (x2 - x1) * 111_320 * math.cos(math.radians((y1 + y2) / 2))
    return math.hypot(dx, (y2 - y1) * 110_540)


rng = np.random.default_rng(2026)
names = sorted(graph.nodes)
pairs: list[tuple[str, str]] = []
while len(pairs) < 40:
    o, d = rng.choice(names, size=2, replace=False)
    if (o, d) not in pairs and metres(o, d) > 3000 and nx.has_path(graph, o, d):
        pairs.append((str(o), str(d)))
with (dst / "tokyo_arterial_demand.csv").open("w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["orig", "dest", "t_start", "t_end", "flow", "volume"])
    for o, d in pairs:
        w.writerow([o, d, 0, 1800, 0.15, -1])
