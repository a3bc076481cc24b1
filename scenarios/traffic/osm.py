"""OpenStreetMap road networks as a :class:`~scenarios.traffic.spec.RoadNetwork`, from an
``.osm`` or ``.osm.pbf`` file (:func:`load_osm_roads`, read with pyosmium) or from a site's
``Road`` objects (:func:`cim.networks.roads.ways_from_roads`): both give OSM ways to one
builder, :func:`network_from_ways`, so the two networks are the same link by link.

Drivable ways are cut at junctions (nodes shared by ways) and at their ends, so chains of
shape points become one link. Direction follows ``oneway`` (``yes``/``-1``; motorways and
roundabouts are one-way); lanes come from ``lanes``/``lanes:forward``/``lanes:backward``,
speed from ``maxspeed`` (km/h or mph), else defaults by road class; capacity per lane is a
class default (signalised urban roads carry less than the fundamental diagram's capacity).
Links shorter than one platoon at jam density are lengthened to it (UXsim issues #14, #203:
very short links gridlock a platoon model); the count is reported. Only the largest strongly
connected part is kept so that every node can reach every other.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cim.errors import SourceError
from cim.loaders.osm import Way, read_ways
from scenarios.traffic.grades import OSM_ROAD_CLASS
from scenarios.traffic.spec import DEFAULT_JAM_DENSITY_VPM, RoadNetwork

#: highway=* -> (free speed km/h, lanes per direction, capacity veh/h/lane)
CLASS_DEFAULTS: dict[str, tuple[float, int, float]] = {
    "motorway": (100.0, 2, 2000.0),
    "motorway_link": (60.0, 1, 1800.0),
    "trunk": (80.0, 2, 1800.0),
    "trunk_link": (50.0, 1, 1600.0),
    "primary": (60.0, 2, 1500.0),
    "primary_link": (40.0, 1, 1400.0),
    "secondary": (50.0, 1, 1300.0),
    "secondary_link": (40.0, 1, 1200.0),
    "tertiary": (40.0, 1, 1100.0),
    "tertiary_link": (30.0, 1, 1000.0),
    "unclassified": (30.0, 1, 900.0),
    "residential": (30.0, 1, 900.0),
    "living_street": (10.0, 1, 600.0),
}

#: The highway=* classes a traffic network is built of.
DRIVABLE_CLASSES = frozenset(CLASS_DEFAULTS)

_EARTH_M = 6_371_008.8


@dataclass(frozen=True)
class OsmReport:
    """What the reader kept: ways read, links made, links lengthened to one platoon, nodes
    dropped outside the largest strongly connected part."""

    ways: int
    links: int
    lengthened: int
    dropped_nodes: int


def _speed_kmh(tag: str | None, default: float) -> float:
    if not tag:
        return default
    match = re.match(r"\s*(\d+(?:\.\d+)?)\s*(mph)?", tag)
    if match is None:
        return default
    value = float(match.group(1))
    return value * 1.609344 if match.group(2) else value


def _int_tag(tag: str | None) -> int | None:
    if not tag:
        return None
    match = re.match(r"\s*(\d+)", tag)
    return int(match.group(1)) if match else None


def _haversine_m(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Lengths (m) of the segments between consecutive points."""
    lam, phi = np.radians(lon), np.radians(lat)
    dphi, dlam = np.diff(phi), np.diff(lam)
    a = np.sin(dphi / 2) ** 2 + np.cos(phi[:-1]) * np.cos(phi[1:]) * np.sin(dlam / 2) ** 2
    result: np.ndarray = 2 * _EARTH_M * np.arcsin(np.sqrt(a))
    return result


def load_osm_roads(
    path: str | Path, deltan: int = 5, keep_largest_component: bool = True
) -> tuple[RoadNetwork, OsmReport]:
    """Read the drivable roads of an OSM file into a network.

    The file's ways (:data:`DRIVABLE_CLASSES`, not ``access=no|private``) go through
    :func:`network_from_ways`, as a site's ``Road`` objects do
    (:func:`cim.networks.roads.ways_from_roads`).

    Parameters
    ----------
    path : ``.osm`` or ``.osm.pbf`` file
    deltan : platoon size the network will run with (sets the minimum link length)
    keep_largest_component : drop nodes outside the largest strongly connected part

    Returns
    -------
    network : RoadNetwork
        Node names are OSM node ids, node ``x``, ``y`` their longitude and latitude.
    report : OsmReport

    Raises
    ------
    SourceError
        The file cannot be read, or holds no drivable road.
    """
    path = Path(path)
    ways = read_ways(path, set(DRIVABLE_CLASSES), skip_access=True)
    return network_from_ways(ways, path, deltan, keep_largest_component)


def network_from_ways(
    ways: Sequence[Way],
    source: str | Path,
    deltan: int = 5,
    keep_largest_component: bool = True,
) -> tuple[RoadNetwork, OsmReport]:
    """The network of drivable OSM ways, however they were read (a file, the CIM).

    Ways are cut into links at nodes they share and at their ends; each link is named
    ``osm:w<way>/<segment><f|b>``. Ways are taken in the order given (an OSM file's order,
    by way id), which sets the order of the links.

    Parameters
    ----------
    ways : (way id, tags, node ids, longitudes, latitudes) per way, each of a class of
        :data:`CLASS_DEFAULTS`, with at least two nodes
    source : what the ways came from (a file, a site), named in errors and on the network
    deltan : platoon size the network will run with (sets the minimum link length)
    keep_largest_component : drop nodes outside the largest strongly connected part

    Returns
    -------
    network : RoadNetwork
        Node names are OSM node ids, node ``x``, ``y`` their longitude and latitude.
    report : OsmReport

    Raises
    ------
    SourceError
        If there is no way, or a way is of no class of :data:`CLASS_DEFAULTS`.
    """
    if not ways:
        raise SourceError(source, "no drivable roads (highway=motorway..living_street)")
    counts: dict[int, int] = {}
    for _, _, refs, _, _ in ways:
        for ref in refs:
            counts[ref] = counts.get(ref, 0) + 1
    min_length = deltan / DEFAULT_JAM_DENSITY_VPM
    node_xy: dict[int, tuple[float, float]] = {}
    rows: list[dict[str, object]] = []
    for way_id, tags, refs, lons, lats in ways:
        highway = tags.get("highway", "")
        if highway not in CLASS_DEFAULTS:
            raise SourceError(source, f"highway={highway!r} is not drivable", f"w{way_id}")
        speed_default, lanes_default, cap_default = CLASS_DEFAULTS[highway]
        speed = _speed_kmh(tags.get("maxspeed"), speed_default) / 3.6
        oneway_tag = tags.get("oneway", "")
        oneway = oneway_tag in ("yes", "true", "1", "-1") or (
            highway in ("motorway", "motorway_link") or tags.get("junction") == "roundabout"
        )
        if oneway_tag == "no":
            oneway = False
        total = _int_tag(tags.get("lanes"))
        forward = _int_tag(tags.get("lanes:forward"))
        backward = _int_tag(tags.get("lanes:backward"))
        if oneway:
            forward = forward or total or lanes_default
        else:
            half = math.ceil(total / 2) if total else lanes_default
            forward, backward = forward or half, backward or half
        steps = _haversine_m(np.asarray(lons), np.asarray(lats))
        cuts = [0] + [i for i in range(1, len(refs) - 1) if counts[refs[i]] > 1] + [len(refs) - 1]
        name = tags.get("name", "")
        for seg, (a, b) in enumerate(itertools.pairwise(cuts)):
            length = float(steps[a:b].sum())
            short = length < min_length
            length = max(length, min_length)
            node_xy[refs[a]] = (lons[a], lats[a])
            node_xy[refs[b]] = (lons[b], lats[b])
            directions = []
            if oneway_tag == "-1":
                directions.append(("b", refs[b], refs[a], forward))
            else:
                directions.append(("f", refs[a], refs[b], forward))
                if not oneway:
                    directions.append(("b", refs[b], refs[a], backward or lanes_default))
            for suffix, start, end, lanes in directions:
                lanes = max(int(lanes or 1), 1)
                rows.append(
                    {
                        "name": f"{name or highway} w{way_id}/{seg}{suffix}",
                        "code": f"osm:w{way_id}/{seg}{suffix}",
                        "start_node": str(start),
                        "end_node": str(end),
                        "length": length,
                        "free_flow_speed": speed,
                        "number_of_lanes": lanes,
                        "jam_density": DEFAULT_JAM_DENSITY_VPM * lanes,
                        "capacity_out": cap_default * lanes / 3600.0,
                        "road_class": OSM_ROAD_CLASS.get(highway, ""),
                        "lengthened": short,
                    }
                )
    dropped = 0
    if keep_largest_component:
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_edges_from((r["start_node"], r["end_node"]) for r in rows)
        keep = max(nx.strongly_connected_components(graph), key=len)
        dropped = graph.number_of_nodes() - len(keep)
        rows = [r for r in rows if r["start_node"] in keep and r["end_node"] in keep]
    lengthened = sum(1 for r in rows if r["lengthened"])
    used = sorted({str(r["start_node"]) for r in rows} | {str(r["end_node"]) for r in rows})
    nodes = [{"name": n, "x": node_xy[int(n)][0], "y": node_xy[int(n)][1]} for n in used]
    from scenarios.traffic.loaders import network_from_rows

    network = network_from_rows(source, nodes, rows)
    return network, OsmReport(len(ways), network.n_links, lengthened, dropped)
