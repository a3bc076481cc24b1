"""The walk graph of a site's walkways and pedestrian areas, rebuilt from CIM objects.

Walkways (and, when a width rule says so, streets by their sidewalks) become edges between
their end and junction nodes, as OSM ways meet at shared nodes; the ``osm_nodes`` and
``osm_lonlat`` attributes of the objects (:mod:`cim.loaders.osm`) are all it needs. Each edge
carries the codes of its objects, the highway kind, length, width and walkable area;
parallel ways between the same two nodes are one edge whose widths and areas add up. A
pedestrian area is a hub node (``"area:<code>"``) at its centroid joined to every ring node
a walkway reaches, plus its perimeter, so a square can be crossed; its edges have the area's
``width_m`` and no area of their own, the hub keeps ``area_m2``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import pairwise
from typing import Any

import networkx as nx
import numpy as np
from pyproj import Transformer

from cim.model import CimObject

WidthRule = Callable[[CimObject], float]


def walkway_width_m(obj: CimObject) -> float:
    """The default width rule: walkways by their ``width_m``; streets are not walked on
    (0 m). Ways tagged ``foot=no`` or ``access=private`` are never walkable."""
    return float(obj.attributes.get("width_m", 0.0)) if obj.kind == "Walkway" else 0.0


def walk_graph(
    objects: Iterable[CimObject],
    *,
    crs: str | None = None,
    width_m: WidthRule = walkway_width_m,
) -> nx.Graph:
    """The walk graph of ``objects`` (Walkway, Road and PedestrianArea objects of OSM imports).

    Parameters
    ----------
    objects : CIM objects; those without ``osm_nodes`` and ``osm_lonlat`` are ignored
    crs : CRS of the node coordinates ``x``, ``y``; by default a local azimuthal
        equidistant frame centred on the nodes (true lengths), kept in ``graph.graph["crs"]``
    width_m : walkable width of a way object, metres; 0 leaves it out

    Returns
    -------
    networkx.Graph
        Nodes are OSM node ids with ``x``, ``y``, ``lon``, ``lat``, plus one hub per
        pedestrian area; edges carry ``codes``, ``ways`` (OSM way ids), ``kind``,
        ``length_m``, ``width_m`` and ``area_m2``.

    Raises
    ------
    ValueError
        If an object's ``osm_nodes`` and ``osm_lonlat`` differ in length.
    """
    ways: list[tuple[CimObject, list[int], float]] = []
    areas: list[CimObject] = []
    lonlat: dict[int, tuple[float, float]] = {}
    for obj in objects:
        attributes = obj.attributes
        refs, positions = attributes.get("osm_nodes"), attributes.get("osm_lonlat")
        if not isinstance(refs, list) or not isinstance(positions, list):
            continue
        if len(refs) != len(positions):
            raise ValueError(f"{obj.code}: osm_nodes and osm_lonlat differ in length")
        if attributes.get("foot") == "no" or attributes.get("access") == "private":
            continue
        if obj.kind == "PedestrianArea":
            areas.append(obj)
        else:
            width = width_m(obj)
            if width <= 0:
                continue
            ways.append((obj, [int(r) for r in refs], width))
        for ref, (lon, lat) in zip(refs, positions, strict=True):
            lonlat[int(ref)] = (float(lon), float(lat))
    xy = _project(lonlat, crs)
    graph = nx.Graph(crs=xy.pop(None))
    uses: dict[int, int] = {}
    for _, refs, _ in ways:
        for ref in refs:
            uses[ref] = uses.get(ref, 0) + 1

    def link(u: Any, v: Any, obj: CimObject, kind: str, length: float, width: float) -> None:
        for node in (u, v):
            if node in lonlat and node not in graph:
                (x, y), (lon, lat) = xy[node], lonlat[node]
                graph.add_node(node, x=x, y=y, lon=lon, lat=lat)
        if u == v:
            return
        area = length * width if kind != "pedestrian-area" else 0.0
        if graph.has_edge(u, v):
            edge = graph.edges[u, v]
            edge["codes"].append(obj.code)
            edge["ways"].append(obj.source_id)
            edge["length_m"] = min(edge["length_m"], length)
            edge["width_m"] += width
            edge["area_m2"] += area
        else:
            graph.add_edge(
                u,
                v,
                codes=[obj.code],
                ways=[obj.source_id],
                kind=kind,
                length_m=length,
                width_m=width,
                area_m2=area,
            )

    for obj, refs, width in ways:
        kind = str(obj.attributes.get("highway", obj.kind))
        start = 0
        # a closed way is split halfway too, so that a loop is two edges, not a self-loop
        middle = len(refs) // 2 if refs[0] == refs[-1] and len(refs) > 3 else -1
        for i in range(1, len(refs)):
            if i == len(refs) - 1 or i == middle or uses[refs[i]] > 1:
                points = np.array([xy[r] for r in refs[start : i + 1]])
                length = float(np.hypot(*np.diff(points, axis=0).T).sum())
                link(refs[start], refs[i], obj, kind, length, width)
                start = i
    for obj in areas:
        _add_area(graph, obj, xy, uses, link)
    return graph


def _add_area(
    graph: nx.Graph,
    obj: CimObject,
    xy: dict[Any, tuple[float, float]],
    uses: dict[int, int],
    link: Callable[[Any, Any, CimObject, str, float, float], None],
) -> None:
    refs = [int(r) for r in obj.attributes["osm_nodes"]]
    sizes = obj.attributes.get("osm_rings") or [len(refs)]
    area = float(obj.attributes.get("area_m2", 0.0))
    width = float(obj.attributes.get("width_m") or np.sqrt(area))
    outer = refs[: sizes[0]]
    points = np.array([xy[r] for r in outer])
    hub = f"area:{obj.code}"
    centre = points[:-1].mean(axis=0) if len(points) > 1 else points[0]
    graph.add_node(hub, x=float(centre[0]), y=float(centre[1]), area_m2=area, code=obj.code)
    start = 0
    for size in sizes:
        ring = refs[start : start + size]
        start += size
        for u, v in pairwise(ring):
            length = float(np.hypot(*np.subtract(xy[v], xy[u])))
            link(u, v, obj, "pedestrian-area", length, width)
    for ref in dict.fromkeys(refs):
        if uses.get(ref, 0) > 0:
            length = float(np.hypot(*np.subtract(xy[ref], centre)))
            link(hub, ref, obj, "pedestrian-area", length, width)


def _project(lonlat: dict[int, tuple[float, float]], crs: str | None) -> dict[Any, Any]:
    """Node positions in ``crs``, or in a local equidistant frame (returned under ``None``)."""
    if not lonlat:
        return {None: crs}
    refs = sorted(lonlat)
    lon = np.array([lonlat[r][0] for r in refs])
    lat = np.array([lonlat[r][1] for r in refs])
    if crs is None:
        crs = f"+proj=aeqd +lat_0={lat.mean():.7f} +lon_0={lon.mean():.7f} +units=m +datum=WGS84"
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    out: dict[Any, Any] = {r: (float(a), float(b)) for r, a, b in zip(refs, x, y, strict=True)}
    out[None] = crs
    return out
