"""The drainage network of a SWMM import as a NetworkX graph keyed by CIM codes.

Nodes are the network's manholes, storage units and outfalls (by code); every conduit,
pump, orifice, weir and outlet is a directed edge from its SWMM from-node to its to-node,
keyed by its own code, so parallel links stay distinct. Subcatchments are listed on the
node they drain to. A flood drill's results, named by SWMM ids, map to codes through
:func:`codes_by_swmm_name`.
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from cim.errors import SourceError
from cim.model import CimObject

#: Kinds of the network's nodes and links (see :mod:`cim.loaders.swmm`)
NODE_KINDS = frozenset({"Manhole", "StorageUnit", "Outfall"})
LINK_KINDS = frozenset({"Conduit", "Pump", "Orifice", "Weir", "Outlet"})


def codes_by_swmm_name(objects: Iterable[CimObject]) -> dict[str, str]:
    """SWMM name -> CIM code of the elements of one imported ``.inp`` file (nodes, links,
    subcatchments and rain gauges; SWMM names are unique within each of those families, and
    node names win over link names that repeat them)."""
    out: dict[str, str] = {}
    for obj in sorted(objects, key=lambda o: o.kind in NODE_KINDS):
        name = obj.attributes.get("swmm_name")
        if isinstance(name, str):
            out[name] = obj.code
    return out


def drainage_graph(objects: Iterable[CimObject]) -> nx.MultiDiGraph:
    """The drainage graph of the objects of one imported ``.inp`` file.

    Parameters
    ----------
    objects : the objects of one source (e.g. those whose ``source`` is the file's key)

    Returns
    -------
    networkx.MultiDiGraph
        Nodes by code with ``kind``, ``swmm_name``, ``invert_m``, ``rim_m``, ``x``, ``y``
        (site CRS, metres) and ``subcatchments`` (codes draining to it); edges
        ``(from_code, to_code, link_code)`` with ``kind``, ``swmm_name`` and ``length_m``
        (conduits: the SWMM length; other links: the drawn length).

    Raises
    ------
    SourceError
        If a link names a node that is not among ``objects``.
    """
    objects = list(objects)
    graph = nx.MultiDiGraph()
    by_name: dict[str, str] = {}
    for obj in objects:
        if obj.kind not in NODE_KINDS:
            continue
        name = str(obj.attributes["swmm_name"])
        by_name[name] = obj.code
        point = obj.footprint
        graph.add_node(
            obj.code,
            kind=obj.kind,
            swmm_name=name,
            invert_m=obj.attributes.get("invert_m"),
            rim_m=obj.attributes.get("rim_m"),
            x=float(point.x) if point is not None else None,
            y=float(point.y) if point is not None else None,
            subcatchments=[],
        )
    for obj in objects:
        if obj.kind in LINK_KINDS:
            ends = [obj.attributes["from_node"], obj.attributes["to_node"]]
            missing = [n for n in ends if n not in by_name]
            if missing:
                raise SourceError(
                    obj.source, f"link refers to unknown node {missing[0]!r}", obj.code
                )
            length = obj.attributes.get("length_m")
            if length is None and obj.footprint is not None:
                length = round(float(obj.footprint.length), 4)
            graph.add_edge(
                by_name[ends[0]],
                by_name[ends[1]],
                key=obj.code,
                kind=obj.kind,
                swmm_name=obj.attributes["swmm_name"],
                length_m=length,
            )
        elif obj.kind == "Subcatchment" and obj.attributes.get("outlet") in by_name:
            graph.nodes[by_name[obj.attributes["outlet"]]]["subcatchments"].append(obj.code)
    return graph
