"""The walk graph of one building, built from its CIM unit subtree (an imported IFC model).

Nodes are the places people stand in: ``IfcSpace`` objects and stairs (one node per
``IfcStair``, its area = width × horizontal run). Links are the ways between them:

- **doors**: an ``IfcDoor`` joins the two spaces of its storey that most overlap its footprint
  buffered by :data:`DOOR_BUFFER_M` (a door sits in a wall, so it touches neither space
  itself); a door that overlaps only one space of the ground storey is an **exit**;
- **openings**: two spaces of one storey whose footprints touch (a room separation line, no
  wall between them) are joined over their shared boundary;
- **stair ends**: a stair joins the space of its base storey nearest its lowest tread and the
  space of its top storey nearest its highest tread.

Walk distances inside a node are straight lines between link points (a door's footprint
centroid, a stair end's tread centroid); along a stair they are the slope length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import shapely
from numpy.typing import NDArray

from cim.errors import NotFoundError
from cim.model import CimObject
from cim.store.base import Store

#: Buffer around a door footprint that reaches the spaces on both sides of its wall, m.
DOOR_BUFFER_M = 0.3
#: Footprints closer than this share an opening (no wall between them), m.
TOUCH_M = 0.05
#: Shared boundaries shorter than this are corners, not openings, m.
MIN_OPENING_M = 0.6

SPACE, STAIR = "space", "stair"
DOOR, OPENING, STAIR_END, EXIT = "door", "opening", "stair", "exit"


class BuildingGraphError(ValueError):
    """The building cannot be turned into a walk graph (no spaces, unknown code...)."""


@dataclass
class Node:
    """A space or a stair: where people stand and walk."""

    code: str
    kind: str  # SPACE or STAIR
    name: str
    storey: str  # storey code (a stair: its base storey)
    area_m2: float
    centroid: tuple[float, float]
    global_id: str | None
    footprint: Any = None
    riser_m: float = 0.0
    tread_m: float = 0.0
    slope_m: float = 0.0


@dataclass
class Link:
    """A door, opening or stair end between two nodes (``b`` is ``-1`` for an exit)."""

    code: str  # door / stair CIM code; openings: "spaceA|spaceB"
    kind: str  # DOOR, OPENING, STAIR_END
    a: int
    b: int
    width_m: float
    point: tuple[float, float]
    global_id: str | None = None
    exit: bool = False


@dataclass
class BuildingGraph:
    """Nodes, links and storeys of one building, with the links of each node."""

    site: str
    building: str
    name: str
    nodes: list[Node]
    links: list[Link]
    storeys: dict[str, dict[str, Any]]  # code -> {"name", "elevation"}
    isolated: list[str] = field(default_factory=list)  # spaces no door, opening or stair reaches

    @property
    def node_links(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in self.nodes]
        for i, link in enumerate(self.links):
            out[link.a].append(i)
            if link.b >= 0:
                out[link.b].append(i)
        return out

    def node_index(self) -> dict[str, int]:
        return {n.code: i for i, n in enumerate(self.nodes)}

    def to_networkx(self) -> nx.MultiGraph:
        """Nodes by code (``"outside"`` for the exits' far side), one edge per link."""
        g = nx.MultiGraph()
        for n in self.nodes:
            g.add_node(n.code, kind=n.kind, storey=n.storey, area_m2=n.area_m2)
        g.add_node("outside", kind="outside")
        for link in self.links:
            far = self.nodes[link.b].code if link.b >= 0 else "outside"
            g.add_edge(self.nodes[link.a].code, far, key=link.code, kind=link.kind)
        return g

    def summary(self) -> dict[str, Any]:
        kinds = [link.kind for link in self.links]
        return {
            "spaces": sum(n.kind == SPACE for n in self.nodes),
            "stairs": sum(n.kind == STAIR for n in self.nodes),
            "doors": kinds.count(DOOR),
            "openings": kinds.count(OPENING),
            "exits": sum(link.exit for link in self.links),
            "isolated_spaces": list(self.isolated),
        }


def _storey_of(obj: CimObject, by_code: dict[str, CimObject]) -> str | None:
    code = obj.parent
    while code is not None and code in by_code:
        if by_code[code].kind == "IfcBuildingStorey":
            return code
        code = by_code[code].parent
    return None


def _number(attrs: dict[str, Any], *suffixes: str) -> float | None:
    """The first positive number among attributes whose key ends with one of ``suffixes``."""
    for suffix in suffixes:
        for key in sorted(attrs):
            value = attrs[key]
            if (
                (
                    key.endswith(suffix)
                    and isinstance(value, int | float)
                    and not isinstance(value, bool)
                )
                and math.isfinite(value)
                and value > 0
            ):
                return float(value)
    return None


def _long_side(shape: Any) -> float:
    rect = shapely.minimum_rotated_rectangle(shape)
    xy = np.asarray(rect.exterior.coords)[:3]
    return float(max(np.hypot(*(xy[1] - xy[0])), np.hypot(*(xy[2] - xy[1]))))


def _short_side(shape: Any) -> float:
    rect = shapely.minimum_rotated_rectangle(shape)
    xy = np.asarray(rect.exterior.coords)[:3]
    return float(min(np.hypot(*(xy[1] - xy[0])), np.hypot(*(xy[2] - xy[1]))))


def door_width(door: CimObject) -> float:
    """Clear width, m: ``OverallWidth`` or a property set ``Width``, else the footprint's
    long side."""
    found = _number(door.attributes, "OverallWidth", "DoorCommon.Width", ".Width")
    return found if found is not None else _long_side(door.footprint)


def load_building(store: Store, site: str, building: str) -> BuildingGraph:
    """The walk graph of building ``building`` (a CIM code) of ``site``.

    Raises
    ------
    cim.errors.NotFoundError
        If the site or the code does not exist.
    BuildingGraphError
        If the code is not an ``IfcBuilding`` or the building has no spaces or no exit.
    """
    try:
        root = store.get(site, building)
    except NotFoundError:
        raise NotFoundError(
            f"no building {building!r} in site {site!r} (twin info --site {site} lists units)"
        ) from None
    if root.kind != "IfcBuilding":
        raise BuildingGraphError(
            f"{building!r} in site {site!r} is of kind {root.kind}, not an IfcBuilding"
        )
    objects = [o for o in store.by_prefix(site, building) if o.code != building]
    by_code = {o.code: o for o in objects}
    storeys: dict[str, dict[str, Any]] = {
        o.code: {
            "name": o.name,
            "elevation": float(o.attributes.get("Elevation") or (o.bbox[2] if o.bbox else 0.0)),
        }
        for o in objects
        if o.kind == "IfcBuildingStorey"
    }
    spaces = [
        o for o in objects if o.kind == "IfcSpace" and o.footprint is not None and o.footprint.area
    ]
    if not spaces:
        raise BuildingGraphError(
            f"building {building!r} of site {site!r} has no IfcSpace with a footprint: "
            "an evacuation needs its rooms"
        )
    nodes = [
        Node(
            s.code,
            SPACE,
            s.attributes.get("LongName") or s.name,
            _storey_of(s, by_code) or "",
            float(s.footprint.area),
            (float(s.footprint.centroid.x), float(s.footprint.centroid.y)),
            s.attributes.get("GlobalId"),
            s.footprint,
        )
        for s in sorted(spaces, key=lambda o: o.code)
    ]
    on_storey: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        on_storey.setdefault(n.storey, []).append(i)
    links: list[Link] = []
    door_storeys: list[float] = [
        float(storeys[s]["elevation"])
        for s in {_storey_of(o, by_code) for o in objects if o.kind == "IfcDoor"}
        if s in storeys
    ]
    ground = min(door_storeys) if door_storeys else None
    for door in sorted((o for o in objects if o.kind == "IfcDoor"), key=lambda o: o.code):
        link = _door_link(door, nodes, on_storey.get(_storey_of(door, by_code) or "", []))
        if link is None:
            continue
        storey = _storey_of(door, by_code)
        if link.b < 0 and (storey is None or storeys[storey]["elevation"] != ground):
            continue  # a door to a balcony or the outside of an upper storey is no exit
        links.append(link)
    links += _openings(nodes, on_storey)
    links += _stairs(store, site, objects, by_code, storeys, nodes, on_storey)
    touched = {link.a for link in links} | {link.b for link in links}
    isolated = [n.code for i, n in enumerate(nodes) if i not in touched]
    if not any(link.exit for link in links):
        raise BuildingGraphError(
            f"building {building!r} of site {site!r} has no exit: no door of its ground storey "
            "opens to the outside"
        )
    return BuildingGraph(site, building, root.name, nodes, links, storeys, isolated)


def _door_link(door: CimObject, nodes: list[Node], candidates: list[int]) -> Link | None:
    if door.footprint is None or door.footprint.is_empty:
        return None
    reach = door.footprint.buffer(DOOR_BUFFER_M)
    overlaps = sorted(
        (
            (float(reach.intersection(nodes[i].footprint).area), i)
            for i in candidates
            if reach.intersects(nodes[i].footprint)
        ),
        key=lambda t: (-t[0], nodes[t[1]].code),
    )
    overlaps = [t for t in overlaps if t[0] > 0]
    if not overlaps:
        return None
    first = overlaps[0][0]
    # the space behind the wall overlaps the buffer about as much as the one in front;
    # a corner of a third space only grazes it
    sides = [i for area, i in overlaps[:2] if area >= max(0.1, 0.25 * first)]
    centre = door.footprint.centroid
    return Link(
        door.code,
        DOOR,
        sides[0],
        sides[1] if len(sides) > 1 else -1,
        door_width(door),
        (float(centre.x), float(centre.y)),
        door.attributes.get("GlobalId"),
        exit=len(sides) == 1,
    )


def _openings(nodes: list[Node], on_storey: dict[str, list[int]]) -> list[Link]:
    out = []
    for members in on_storey.values():
        for k, i in enumerate(members):
            for j in members[k + 1 :]:
                a, b = nodes[i].footprint, nodes[j].footprint
                if a.distance(b) > TOUCH_M:
                    continue
                shared = a.boundary.buffer(TOUCH_M).intersection(b.boundary)
                if shared.length < MIN_OPENING_M:
                    continue
                mid = shared.centroid if not shared.is_empty else a.centroid
                out.append(
                    Link(
                        f"{nodes[i].code}|{nodes[j].code}",
                        OPENING,
                        i,
                        j,
                        float(shared.length),
                        (float(mid.x), float(mid.y)),
                    )
                )
    return out


def _stairs(
    store: Store,
    site: str,
    objects: list[CimObject],
    by_code: dict[str, CimObject],
    storeys: dict[str, dict[str, Any]],
    nodes: list[Node],
    on_storey: dict[str, list[int]],
) -> list[Link]:
    links: list[Link] = []
    for stair in sorted((o for o in objects if o.kind == "IfcStair"), key=lambda o: o.code):
        parts = [o for o in objects if o.parent == stair.code and o.chunk is not None]
        if stair.chunk is not None:
            parts.append(stair)
        verts = [
            store.mesh_columns(site, p.chunk).object_arrays(p.index)[0]  # type: ignore[arg-type]
            for p in parts
            if p.index is not None
        ]
        xyz = np.concatenate(verts) if verts else np.zeros((0, 3))
        if len(xyz) == 0 or stair.footprint is None:
            continue
        base, top = _stair_storeys(stair, by_code, storeys, xyz)
        if base is None or top is None:
            continue
        low = xyz[xyz[:, 2] <= xyz[:, 2].min() + 0.3].mean(axis=0)
        flight_top = _flight_top(parts, xyz)
        high = xyz[np.abs(xyz[:, 2] - flight_top) <= 0.3].mean(axis=0)
        bottom_space = _nearest(nodes, on_storey.get(base, []), low)
        top_space = _nearest(nodes, on_storey.get(top, []), high)
        if bottom_space is None or top_space is None:
            continue
        rise = storeys[top]["elevation"] - storeys[base]["elevation"]
        attrs = {**{k: v for p in parts for k, v in p.attributes.items()}, **stair.attributes}
        treads = _number(attrs, "NumberOfTreads")
        tread = _number(attrs, "TreadLength", "Tread Depth") or 0.28
        riser = _number(attrs, "RiserHeight", "Riser Height") or 0.18
        run = treads * tread if treads else float(np.hypot(*(high[:2] - low[:2])))
        run = max(run, rise * tread / riser)
        width = _number(attrs, "StairFlightCommon.Width", "Dimensions.Width", ".Width") or (
            _short_side(stair.footprint)
        )
        area = max(width * run, 1.0)
        index = len(nodes)
        centre = stair.footprint.centroid
        nodes.append(
            Node(
                stair.code,
                STAIR,
                stair.name,
                base,
                area,
                (float(centre.x), float(centre.y)),
                stair.attributes.get("GlobalId"),
                stair.footprint,
                riser_m=riser,
                tread_m=tread,
                slope_m=float(math.hypot(run, rise)),
            )
        )
        gid = stair.attributes.get("GlobalId")
        for end, space, point in (("base", bottom_space, low), ("top", top_space, high)):
            links.append(
                Link(
                    f"{stair.code}@{end}",
                    STAIR_END,
                    space,
                    index,
                    width,
                    (float(point[0]), float(point[1])),
                    gid,
                )
            )
    return links


def _flight_top(parts: list[CimObject], xyz: NDArray[np.float64]) -> float:
    """Height of the highest tread: the top of the flights, not of railings."""
    tops = [p.bbox[5] for p in parts if p.kind == "IfcStairFlight" and p.bbox is not None]
    return float(max(tops)) if tops else float(xyz[:, 2].max())


def _stair_storeys(
    stair: CimObject,
    by_code: dict[str, CimObject],
    storeys: dict[str, dict[str, Any]],
    xyz: NDArray[np.float64],
) -> tuple[str | None, str | None]:
    """Base and top storey: the file's base/top level names if given, else by height."""
    by_name = {v["name"]: k for k, v in storeys.items()}
    base = by_name.get(str(stair.attributes.get("PSet_Revit_Constraints.Base Level", "")))
    top = by_name.get(str(stair.attributes.get("PSet_Revit_Constraints.Top Level", "")))
    if base is None:
        base = _storey_of(stair, by_code)
    if top is None and base is not None:
        above = sorted(
            (v["elevation"], k)
            for k, v in storeys.items()
            if storeys[base]["elevation"] < v["elevation"] <= xyz[:, 2].max() + 0.3
        )
        top = above[0][1] if above else None
    return base, top


def _nearest(nodes: list[Node], members: list[int], xyz: NDArray[np.float64]) -> int | None:
    if not members:
        return None
    point = shapely.Point(float(xyz[0]), float(xyz[1]))
    return min(members, key=lambda i: (nodes[i].footprint.distance(point), nodes[i].code))
