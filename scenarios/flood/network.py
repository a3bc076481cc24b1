"""A drainage network as read from a SWMM file, in SI units.

Plain dataclasses, one per SWMM object class, held by :class:`Network`. The solver freezes
them into arrays (:mod:`scenarios.flood.arrays`); the topology is a NetworkX multigraph.
Every length is metres, area square metres, flow m3/s, rain m/s, time seconds from the
simulation start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import networkx as nx
import numpy as np
import numpy.typing as npt

from scenarios.flood.transect import TransectTables

NodeKind = Literal["junction", "outfall", "storage", "divider"]
LinkKind = Literal["conduit", "pump", "orifice", "weir", "outlet"]

FloatArray = npt.NDArray[np.float64]


@dataclass
class Node:
    """A junction, outfall or storage unit.

    ``storage_curve`` is ``("functional", a, b, c)`` with area = a·d^b + c (m2, d in m), or
    ``("tabular", depths_m, areas_m2)``. Outfalls carry ``outfall_type`` (FREE, NORMAL,
    FIXED) and ``stage_m`` for FIXED.
    """

    name: str
    kind: NodeKind
    invert_m: float
    max_depth_m: float
    init_depth_m: float = 0.0
    surcharge_depth_m: float = 0.0
    ponded_area_m2: float = 0.0
    storage_curve: tuple[Any, ...] | None = None
    outfall_type: str = "FREE"
    stage_m: float | None = None
    gated: bool = False
    x: float | None = None
    y: float | None = None


@dataclass
class XSection:
    """A link's cross-section: SWMM shape keyword and its geometry (m).

    IRREGULAR sections carry their transect's tables in ``transect``; their ``geom`` is
    (full depth, widest top width, 0, 0).
    """

    shape: str
    geom: tuple[float, float, float, float]
    barrels: int = 1
    transect: TransectTables | None = None


@dataclass
class Link:
    """A conduit, pump, orifice or weir between two nodes.

    Conduits use ``length_m``, ``roughness`` (Manning n), offsets (depth above the node
    invert, m), ``xsect`` and loss coefficients. Pumps use ``curve`` and the start-up and
    shut-off depths; orifices and weirs ``coeff`` (SI: Cd for orifices, Cw in m^0.5/s for
    weirs) and ``crest_m`` (offset of the opening above the inlet node invert); a weir whose
    ``surcharge`` is true (SWMM's default) runs as an orifice once water tops its opening.
    """

    name: str
    kind: LinkKind
    from_node: str
    to_node: str
    length_m: float = 0.0
    roughness: float = 0.0
    in_offset_m: float = 0.0
    out_offset_m: float = 0.0
    init_flow_m3s: float = 0.0
    max_flow_m3s: float = 0.0
    xsect: XSection | None = None
    k_entry: float = 0.0
    k_exit: float = 0.0
    k_avg: float = 0.0
    flap_gate: bool = False
    curve: str | None = None
    initially_on: bool = True
    startup_depth_m: float = 0.0
    shutoff_depth_m: float = 0.0
    subtype: str = ""
    crest_m: float = 0.0
    coeff: float = 0.0
    surcharge: bool = True
    gated: bool = False


@dataclass
class Subcatchment:
    """A subcatchment with its subareas and Horton infiltration.

    ``slope`` is a fraction (SWMM's %Slope / 100); ``pct_*`` stay percentages.
    """

    name: str
    gage: str
    outlet: str
    area_m2: float
    pct_imperv: float
    width_m: float
    slope: float
    n_imperv: float = 0.0
    n_perv: float = 0.0
    dstore_imperv_m: float = 0.0
    dstore_perv_m: float = 0.0
    pct_zero: float = 0.0
    horton: tuple[float, float, float, float, float] | None = None
    """(max rate m/s, min rate m/s, decay 1/s, dry time s, max infiltration m; 0 = none)"""


@dataclass
class Curve:
    """A SWMM curve: its type keyword and (x, y) points in SI."""

    name: str
    kind: str
    x: FloatArray
    y: FloatArray


@dataclass
class TimeSeries:
    """Times (s from the simulation start) and values (the file's units, as read)."""

    name: str
    t_s: FloatArray
    values: FloatArray


@dataclass
class RainGage:
    """A rain gauge: format (INTENSITY, VOLUME, CUMULATIVE), interval and its series.

    ``series`` holds rain intensity in m/s, piecewise constant over ``interval_s`` from each
    time (SWMM's convention for gauge records).
    """

    name: str
    form: str
    interval_s: float
    scf: float
    series: TimeSeries


@dataclass
class Pattern:
    """A SWMM time pattern: MONTHLY (12), DAILY (7, Sunday first), HOURLY or WEEKEND (24)."""

    name: str
    kind: str
    factors: tuple[float, ...]


@dataclass
class Inflow:
    """An external flow into a node: baseline·patterns + scale·series (m3/s).

    Dry-weather flow is an inflow with no series whose baseline is the average, multiplied by
    its ``patterns`` at each time.
    """

    node: str
    series: TimeSeries | None
    scale: float = 1.0
    baseline_m3s: float = 0.0
    patterns: tuple[Pattern, ...] = ()


@dataclass
class Options:
    """The [OPTIONS] a run uses, in SI."""

    flow_units: str = "CMS"
    flow_routing: str = "DYNWAVE"
    infiltration: str = "HORTON"
    allow_ponding: bool = False
    link_offsets: str = "DEPTH"
    routing_step_s: float = 20.0
    report_step_s: float = 900.0
    wet_step_s: float = 300.0
    duration_s: float = 86400.0
    min_surfarea_m2: float = 12.566 * 0.3048**2
    variable_step: float = 0.75
    normal_flow_limited: str = "BOTH"
    min_slope: float = 0.0
    start: str = ""


@dataclass
class Network:
    """Everything read from one SWMM file, SI units, names as in the file."""

    path: str
    options: Options
    nodes: dict[str, Node] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    subcatchments: dict[str, Subcatchment] = field(default_factory=dict)
    gages: dict[str, RainGage] = field(default_factory=dict)
    curves: dict[str, Curve] = field(default_factory=dict)
    timeseries: dict[str, TimeSeries] = field(default_factory=dict)
    inflows: list[Inflow] = field(default_factory=list)
    patterns: dict[str, Pattern] = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)
    """Control rules as text, one rule per entry (RULE ... PRIORITY)."""
    ignored_sections: list[str] = field(default_factory=list)
    """Sections read past without effect on the hydraulics (e.g. CONTROLS, LID_USAGE)."""

    def topology(self) -> nx.MultiDiGraph:
        """The network as a NetworkX multigraph: nodes by name, links keyed by name.

        Node attributes: ``kind``, ``invert_m``, ``max_depth_m``, ``x``, ``y``; edge
        attributes: ``kind``, ``length_m``. Subcatchments appear as ``outlet`` attributes
        (``subcatchments``: list of names) on their outlet node.
        """
        graph = nx.MultiDiGraph(source=self.path)
        for node in self.nodes.values():
            graph.add_node(
                node.name,
                kind=node.kind,
                invert_m=node.invert_m,
                max_depth_m=node.max_depth_m,
                x=node.x,
                y=node.y,
                subcatchments=[],
            )
        for link in self.links.values():
            graph.add_edge(
                link.from_node, link.to_node, key=link.name, kind=link.kind, length_m=link.length_m
            )
        for sub in self.subcatchments.values():
            if sub.outlet in graph:
                graph.nodes[sub.outlet]["subcatchments"].append(sub.name)
        return graph
