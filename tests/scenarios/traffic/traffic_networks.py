"""Small networks built in code for the traffic verification tests (imported by them)."""

from __future__ import annotations

from typing import Any

from scenarios.traffic import DemandWindow, RoadNetwork, TrafficSpec
from scenarios.traffic.loaders import network_from_rows

Link = tuple[str, str, str, float, float]  # name, start, end, length_m, speed_mps


def build_network(links: list[Link] | list[dict[str, Any]]) -> RoadNetwork:
    """A network from link tuples or full link dicts; nodes are laid out on a line."""
    rows: list[dict[str, Any]] = []
    for link in links:
        if isinstance(link, dict):
            rows.append(link)
        else:
            name, a, b, length, speed = link
            rows.append(
                {
                    "name": name,
                    "start_node": a,
                    "end_node": b,
                    "length": length,
                    "free_flow_speed": speed,
                }
            )
    names: list[str] = []
    for row in rows:
        for key in ("start_node", "end_node"):
            if row[key] not in names:
                names.append(row[key])
    nodes = [{"name": n, "x": float(i), "y": 0.0} for i, n in enumerate(names)]
    return network_from_rows("<test>", nodes, rows)


def spec_for(net: RoadNetwork, demand: list[DemandWindow], **settings: Any) -> TrafficSpec:
    return TrafficSpec(network=net, demand=demand, **settings)
