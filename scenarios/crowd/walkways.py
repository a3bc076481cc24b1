"""Walkway networks from OpenStreetMap XML: a NetworkX graph with widths, areas, capacities.

Ways people walk on (footways, pedestrian streets, paths, steps, and streets by their
sidewalks) become edges between their end and junction nodes, in local metres (an
azimuthal equidistant projection centred on the data, so lengths are true). Each edge carries
its OSM way id, kind, length, width (the ``width`` tag, else a default per kind), area and
capacity (``width × specific flow``), ready for coarse crowd routing or to draw per-feature
values in the viewer. :func:`walkways_from_cim` builds the same graph from the walkway and
road objects of the CIM (an OSM import), so that its edges name the objects by code.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

import networkx as nx
import numpy as np
from pyproj import Transformer

from cim.errors import SourceError
from cim.model import CimObject
from cim.networks.walkways import walk_graph

# default walkable width by highway kind, metres: an assumption where OSM has no width tag
# (streets count their two sidewalks)
DEFAULT_WIDTH_M = {
    "footway": 2.0,
    "pedestrian": 6.0,
    "path": 1.5,
    "steps": 1.5,
    "living_street": 4.0,
    "cycleway": 0.0,
    "residential": 3.0,
    "service": 1.5,
    "unclassified": 3.0,
    "tertiary": 4.0,
    "secondary": 4.0,
    "primary": 4.0,
}


def load_walkways(path: str | Path, specific_flow_pmps: float = 1.9) -> nx.Graph:
    """Read an ``.osm`` file into a walkway graph.

    Returns
    -------
    networkx.Graph ; nodes are OSM node ids with ``x``, ``y`` (local metres) and ``lon``,
    ``lat``; edges carry ``way``, ``kind``, ``length_m``, ``width_m``, ``area_m2`` and
    ``capacity_pps``. ``graph.graph["crs"]`` is the PROJ string of the local frame.

    Raises
    ------
    SourceError
        Not OSM XML, a way referring to a missing node, or a width tag that is not a length.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise SourceError(path, f"not OSM XML: {exc}") from None
    if root.tag != "osm":
        raise SourceError(path, f"root element is <{root.tag}>, expected <osm>")
    lonlat = {
        n.get("id", ""): (float(n.get("lon", "nan")), float(n.get("lat", "nan")))
        for n in root.iter("node")
    }
    ways = []
    for way in root.iter("way"):
        tags = {t.get("k"): t.get("v") for t in way.iter("tag")}
        kind = tags.get("highway")
        width_default = DEFAULT_WIDTH_M.get(kind or "", 0.0)
        if tags.get("foot") in ("yes", "designated") and kind is not None:
            width_default = max(width_default, 1.5)
        if width_default <= 0 or tags.get("foot") == "no" or tags.get("access") == "private":
            continue
        refs = [nd.get("ref", "") for nd in way.iter("nd")]
        missing = [r for r in refs if r not in lonlat]
        if missing:
            raise SourceError(path, f"refers to missing node {missing[0]}", f"way {way.get('id')}")
        width = _width(path, way.get("id", ""), tags.get("width"), width_default)
        ways.append((way.get("id", ""), kind, refs, width))
    if not ways:
        raise SourceError(path, "no walkable ways (footway, pedestrian, path, steps, streets)")
    used = sorted({r for _, _, refs, _ in ways for r in refs})
    lon = np.array([lonlat[r][0] for r in used])
    lat = np.array([lonlat[r][1] for r in used])
    crs = f"+proj=aeqd +lat_0={lat.mean():.7f} +lon_0={lon.mean():.7f} +units=m +datum=WGS84"
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    xy = {r: (float(a), float(b)) for r, a, b in zip(used, x, y, strict=True)}
    # a node splits ways where two ways meet or a way ends
    uses: dict[str, int] = {}
    for _, _, refs, _ in ways:
        for r in refs:
            uses[r] = uses.get(r, 0) + 1
    graph = nx.Graph(crs=crs, source=str(path))
    for way_id, kind, refs, width in ways:
        start = 0
        # a closed way is split halfway too, so that a loop is two edges, not a self-loop
        middle = len(refs) // 2 if refs[0] == refs[-1] and len(refs) > 3 else -1
        for i in range(1, len(refs)):
            if i == len(refs) - 1 or i == middle or uses[refs[i]] > 1:
                segment = np.array([xy[r] for r in refs[start : i + 1]])
                length = float(np.hypot(*np.diff(segment, axis=0).T).sum())
                u, v = refs[start], refs[i]
                for node in (u, v):
                    graph.add_node(
                        node, x=xy[node][0], y=xy[node][1], lon=lonlat[node][0], lat=lonlat[node][1]
                    )
                if u != v and graph.has_edge(u, v):
                    # parallel ways (two carriageways' sidewalks, a path beside a street) are
                    # one link whose widths, areas and capacities add up
                    edge = graph.edges[u, v]
                    edge["way"] = f"{edge['way']};{way_id}"
                    edge["length_m"] = min(edge["length_m"], length)
                    edge["width_m"] += width
                    edge["area_m2"] += length * width
                    edge["capacity_pps"] += width * specific_flow_pmps
                elif u != v:
                    graph.add_edge(
                        u,
                        v,
                        way=way_id,
                        kind=kind,
                        length_m=length,
                        width_m=width,
                        area_m2=length * width,
                        capacity_pps=width * specific_flow_pmps,
                    )
                start = i
    return graph


def _width(path: Path, way_id: str, text: str | None, default: float) -> float:
    if text is None:
        return default
    value = text.strip().removesuffix("m").strip()
    try:
        width = float(value)
    except ValueError:
        raise SourceError(
            path, f"width {text!r} is not a length in metres", f"way {way_id}"
        ) from None
    if not width > 0:
        raise SourceError(path, f"width {text!r} must be > 0", f"way {way_id}")
    return width


def _walkable_width_m(obj: CimObject) -> float:
    """The width rule of :func:`load_walkways`, on a CIM object's OSM tags."""
    tags = obj.attributes
    kind = tags.get("highway")
    default = DEFAULT_WIDTH_M.get(kind or "", 0.0)
    if tags.get("foot") in ("yes", "designated") and kind is not None:
        default = max(default, 1.5)
    if default <= 0:
        return 0.0
    text = tags.get("width")
    return _width(Path(obj.source), obj.source_id or obj.code, text, default)


def walkways_from_cim(
    objects: Iterable[CimObject], specific_flow_pmps: float = 1.9, crs: str | None = None
) -> nx.Graph:
    """The walkway graph of :func:`load_walkways` from CIM objects instead of a file.

    Parameters
    ----------
    objects : the ``Walkway``, ``Road`` and ``PedestrianArea`` objects of a site (others
        are ignored)
    specific_flow_pmps : persons per metre of width per second
    crs : CRS of the node coordinates (the site's); a local frame by default

    Returns
    -------
    networkx.Graph ; as :func:`load_walkways` (node ids as strings, ``way`` the OSM way ids
    joined by ``;``), each edge also naming its objects in ``codes``; pedestrian areas are
    hub nodes ``area:<code>``.

    Raises
    ------
    SourceError
        A width tag that is not a length.
    """
    graph = walk_graph(objects, crs=crs, width_m=_walkable_width_m)
    graph = nx.relabel_nodes(graph, {n: str(n) for n in graph if isinstance(n, int)})
    for *_, data in graph.edges(data=True):
        data["way"] = ";".join(w.removeprefix("w") for w in data["ways"])
        data["capacity_pps"] = data["width_m"] * specific_flow_pmps
    return graph
