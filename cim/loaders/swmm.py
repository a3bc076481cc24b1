"""Drainage networks from EPA SWMM 5 input files (``.inp``) as objects of the CIM.

One file becomes a ``DrainageNetwork`` unit (its outline is the hull of its nodes) and one
object per element, each keeping its SWMM name as ``swmm_name`` so that a flood drill's
results (by node or link name) map to CIM codes:

=============================  ====================  =====================================
SWMM section                   kind                  geometry
=============================  ====================  =====================================
JUNCTIONS, DIVIDERS            ``Manhole``           octagonal shaft, invert to rim
STORAGE                        ``StorageUnit``       square tank, invert to rim (a
                                                     ``Manhole`` if its area is a
                                                     shaft's, see :func:`_is_shaft`)
OUTFALLS                       ``Outfall``           square head wall
CONDUITS (+ XSECTIONS)         ``Conduit``           box along the polyline, as wide and
                                                     high as the section
PUMPS, ORIFICES, WEIRS,        ``Pump``, ``Orifice``,  thin box from node to node
OUTLETS                        ``Weir``, ``Outlet``
SUBCATCHMENTS (+ Polygons)     ``Subcatchment``      thin slab at its outlet's rim
RAINGAGES (+ SYMBOLS)          ``RainGage``          a point
=============================  ====================  =====================================

Manholes take the manhole-cover component class of GB/T 30428.2 (``component_class``,
``0103`` 雨水井盖 by default: SWMM models storm and combined sewers); everything else is a
unit of its grid cell. Elevations, depths and lengths are converted to metres (``*_m``
attributes) from the file's ``FLOW_UNITS`` (US units are feet); cross-section dimensions
are kept as written with the section shape. A SWMM file names no coordinate reference
system, so the caller must give the one of its [COORDINATES]: this loader never guesses.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import shapely

from cim.errors import CRSError, SourceError
from cim.frames import parse_crs
from cim.loaders.base import ParsedSource, SourceObject
from cim.loaders.geojson import _add_polygons, _extrude, _interleave, _Rings
from cim.loaders.limits import MAX_COORDINATE
from cim.loaders.osm import _polygons
from cim.loaders.swmm_sections import Line, read_sections
from cim.loaders.swmm_units import unit_system

#: GB/T 30428.2-2013 component class of a manhole cover: 0103 雨水井盖 (storm water)
MANHOLE_CLASS = "0103"
#: Largest constant plan area (m2) of a STORAGE node taken for a manhole shaft
SHAFT_AREA_M2 = 5.0
#: Shaft radius (m) of a manhole, side (m) of a storage tank and an outfall's head wall
MANHOLE_RADIUS_M = 0.6
STORAGE_SIDE_M = 3.0
OUTFALL_SIDE_M = 1.0
#: Width and height (m) of the box drawn for pumps, orifices, weirs and outlets
REGULATOR_M = 0.4
#: Thickness (m) of a subcatchment's slab
SLAB_M = 0.05

_NODE_SECTIONS = {
    "JUNCTIONS": "Manhole",
    "DIVIDERS": "Manhole",
    "STORAGE": "StorageUnit",
    "OUTFALLS": "Outfall",
}
_LINK_SECTIONS = {
    "CONDUITS": "Conduit",
    "PUMPS": "Pump",
    "ORIFICES": "Orifice",
    "WEIRS": "Weir",
    "OUTLETS": "Outlet",
}


class _File:
    """Checked access to the rows of one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sections = read_sections(path)

    def rows(self, section: str) -> list[Line]:
        return self.sections.get(section, [])

    def fail(self, lineno: int, message: str, name: str | None = None) -> SourceError:
        return SourceError(self.path, f"line {lineno}: {message}", name)

    def number(self, lineno: int, tokens: list[str], index: int, what: str) -> float:
        name = tokens[0] if tokens else None
        if index >= len(tokens):
            raise self.fail(lineno, f"missing {what}", name)
        try:
            value = float(tokens[index])
        except ValueError:
            raise self.fail(
                lineno, f"{what} must be a number, got {tokens[index]!r}", name
            ) from None
        if not math.isfinite(value) or abs(value) > MAX_COORDINATE:
            raise self.fail(
                lineno,
                f"{what} must be finite and within ±{MAX_COORDINATE:g}, got {tokens[index]!r}",
                name,
            )
        return value

    def optional(self, lineno: int, tokens: list[str], index: int, what: str) -> float:
        if index >= len(tokens) or tokens[index] == "*":
            return 0.0
        return self.number(lineno, tokens, index, what)

    def option(self, key: str, default: str) -> str:
        for _, tokens in self.rows("OPTIONS"):
            if tokens[0].upper() == key and len(tokens) > 1:
                return tokens[1].upper()
        return default


def load_swmm(path: str | Path, crs: str | None) -> ParsedSource:
    """Parse the network of a SWMM 5 input file.

    Parameters
    ----------
    path : the ``.inp`` file
    crs : CRS of its [COORDINATES], e.g. ``"EPSG:32632"``; required

    Returns
    -------
    ParsedSource
        The network unit, then nodes, links, subcatchments and rain gauges in file order.

    Raises
    ------
    CRSError
        If ``crs`` is not given or not a usable CRS.
    SourceError
        If a row is malformed, a name is defined twice, a link names an unknown node or a
        node has no coordinates; the message names the file and the line.
    """
    path = Path(path)
    if crs is None:
        raise CRSError(
            path,
            "a SWMM .inp file declares no coordinate reference system; pass the one of its "
            "[COORDINATES] with --crs (e.g. --crs EPSG:32632)",
        )
    try:
        unit_m = _metres_per_unit(parse_crs(crs))
    except ValueError as exc:
        raise CRSError(path, str(exc)) from None
    inp = _File(path)
    try:
        units = unit_system(inp.option("FLOW_UNITS", "CFS"))
    except ValueError as exc:
        raise SourceError(path, f"[OPTIONS] {exc}") from None
    length_m, area_m2 = units.length, units.area
    elevation_offsets = inp.option("LINK_OFFSETS", "DEPTH") == "ELEVATION"

    xy = _coordinates(inp, "COORDINATES")
    objects: list[SourceObject] = []
    shapes: list[Any] = []
    rings = _Rings()
    solid: list[bool] = []
    heights: list[float] = []
    bases: list[float] = []

    def add(obj: SourceObject, shape: Any, outline: Any, base: float, height: float) -> None:
        objects.append(obj)
        shapes.append(shape)
        polygons = _polygons(shapely.make_valid(outline)) if outline is not None else []
        solid.append(bool(polygons))
        if polygons:
            _add_polygons(path, obj.source_id, polygons, rings)
            heights.append(height)
            bases.append(base)

    network = SourceObject("network", "DrainageNetwork", _title(inp, path), None, {})
    add(network, None, None, 0.0, 0.0)

    nodes: dict[str, dict[str, Any]] = {}
    for section, section_kind in _NODE_SECTIONS.items():
        for lineno, t in inp.rows(section):
            kind = section_kind
            name = t[0]
            if name in nodes:
                raise inp.fail(lineno, "node name defined twice", name)
            if name not in xy:
                raise inp.fail(lineno, "node has no [COORDINATES] row", name)
            invert = inp.number(lineno, t, 1, "invert elevation") * length_m
            depth = 0.0 if section == "OUTFALLS" else inp.optional(lineno, t, 2, "max depth")
            depth *= length_m
            attributes: dict[str, Any] = {
                "swmm_name": name,
                "swmm_section": section,
                "invert_m": round(invert, 4),
                "max_depth_m": round(depth, 4),
                "rim_m": round(invert + depth, 4),
            }
            if section == "OUTFALLS":
                if len(t) < 3:
                    raise inp.fail(lineno, "outfall needs name, elevation and type", name)
                attributes["outfall_type"] = t[2].upper()
            if section == "STORAGE" and _is_shaft(inp, lineno, t, length_m):
                kind = "Manhole"  # a manhole modelled as a storage node for its volume
            if kind == "Manhole":
                attributes["component_class"] = MANHOLE_CLASS
            nodes[name] = attributes
            x, y = xy[name]
            if kind == "Manhole":
                outline = shapely.Point(x, y).buffer(MANHOLE_RADIUS_M / unit_m, quad_segs=2)
            else:
                side = (STORAGE_SIDE_M if kind == "StorageUnit" else OUTFALL_SIDE_M) / unit_m
                outline = shapely.box(x - side / 2, y - side / 2, x + side / 2, y + side / 2)
            add(
                SourceObject(name, kind, name, None, attributes),
                shapely.Point(x, y),
                outline,
                invert,
                max(depth, 0.1),
            )

    sections = _cross_sections(inp)
    vertices = _vertices(inp)
    links: set[str] = set()
    for section, kind in _LINK_SECTIONS.items():
        for lineno, t in inp.rows(section):
            name = t[0]
            if name in links:
                raise inp.fail(lineno, "link name defined twice", name)
            links.add(name)
            if len(t) < 3:
                raise inp.fail(lineno, "link needs name, from node and to node", name)
            for end in t[1:3]:
                if end not in nodes:
                    raise inp.fail(lineno, f"link refers to unknown node {end!r}", name)
            start, stop = nodes[t[1]], nodes[t[2]]
            line = shapely.LineString([xy[t[1]], *vertices.get(name, []), xy[t[2]]])
            attributes = {"swmm_name": name, "from_node": t[1], "to_node": t[2]}
            width = height = REGULATOR_M
            low = min(start["invert_m"], stop["invert_m"])
            if kind == "Conduit":
                if len(t) < 5:
                    raise inp.fail(lineno, "conduit needs name, nodes, length and roughness", name)
                length = inp.number(lineno, t, 3, "length") * length_m
                roughness = inp.number(lineno, t, 4, "roughness")
                if length <= 0 or roughness <= 0:
                    raise inp.fail(lineno, "length and roughness must be > 0", name)
                offsets = [inp.optional(lineno, t, i, "offset") * length_m for i in (5, 6)]
                ends = (
                    offsets
                    if elevation_offsets
                    else [start["invert_m"] + offsets[0], stop["invert_m"] + offsets[1]]
                )
                low = min(ends)
                attributes |= {
                    "length_m": round(length, 4),
                    "roughness": roughness,
                    "in_offset_m": round(offsets[0], 4),
                    "out_offset_m": round(offsets[1], 4),
                }
                shape, geoms, barrels, named = sections.get(
                    name, ("CIRCULAR", [1.0, 0.0, 0.0, 0.0], 1, None)
                )
                attributes |= {"shape": shape, "barrels": barrels}
                if named is not None:
                    attributes["section_name"] = named
                attributes |= {f"geom{i + 1}": g for i, g in enumerate(geoms)}
                height = max(geoms[0] * length_m, 0.05)
                wide = shape.startswith(("RECT", "TRAPEZOIDAL", "TRIANGULAR", "HORIZ", "ARCH"))
                width = max(geoms[1] * length_m if wide and geoms[1] > 0 else height, 0.05)
                width *= max(barrels, 1)
            elif len(t) > 3:
                attributes["type" if kind in ("Orifice", "Weir") else "curve"] = t[3]
            outline = line.buffer(width / 2 / unit_m, cap_style="flat", join_style="mitre")
            add(SourceObject(name, kind, name, None, attributes), line, outline, low, height)

    polygons = _coordinates_lists(inp, "POLYGONS")
    for lineno, t in inp.rows("SUBCATCHMENTS"):
        name = t[0]
        if len(t) < 8:
            raise inp.fail(
                lineno, "subcatchment needs gage, outlet, area, %imperv, width, slope", name
            )
        attributes = {
            "swmm_name": name,
            "rain_gage": t[1],
            "outlet": t[2],
            "area_m2": round(inp.number(lineno, t, 3, "area") * area_m2, 2),
            "imperv_pct": inp.number(lineno, t, 4, "%imperv"),
            "width_m": round(inp.number(lineno, t, 5, "width") * length_m, 3),
            "slope_pct": inp.number(lineno, t, 6, "%slope"),
        }
        ring = polygons.get(name, [])
        outline = shapely.make_valid(shapely.Polygon(ring)) if len(ring) >= 3 else None
        base = nodes[t[2]]["rim_m"] if t[2] in nodes else 0.0
        add(
            SourceObject(name, "Subcatchment", name, None, attributes),
            outline,
            outline,
            base,
            SLAB_M,
        )

    symbols = _coordinates(inp, "SYMBOLS")
    for lineno, t in inp.rows("RAINGAGES"):
        name = t[0]
        if len(t) < 5:
            raise inp.fail(lineno, "rain gage needs format, interval, SCF and source", name)
        attributes = {"swmm_name": name, "format": t[1], "interval": t[2], "source": t[4]}
        point = shapely.Point(symbols[name]) if name in symbols else None
        add(SourceObject(name, "RainGage", name, None, attributes), point, None, 0.0, 0.0)

    if len(objects) == 1:
        raise SourceError(path, "no drainage network: no nodes, links or subcatchments")
    node_points = [shapely.Point(xy[n]) for n in nodes]
    network.attributes = {
        "flow_units": units.flow_units,
        "nodes": len(nodes),
        "links": len(links),
        "subcatchments": len(inp.rows("SUBCATCHMENTS")),
    }
    shapes[0] = shapely.MultiPoint(node_points).convex_hull if node_points else None
    return _parsed(path, crs, objects, shapes, rings, solid, heights, bases)


def _parsed(
    path: Path,
    crs: str,
    objects: list[SourceObject],
    shapes: list[Any],
    rings: _Rings,
    solid: list[bool],
    heights: list[float],
    bases: list[float],
) -> ParsedSource:
    """Prisms for the solid objects, each lifted to its own base elevation."""
    prisms, _ = _extrude(rings, np.asarray(heights, dtype=np.float64), 0.0)
    counts = np.diff(prisms.vertex_offsets)
    xyz = prisms.vertices.copy()
    xyz[:, 2] += np.repeat(np.asarray(bases, dtype=np.float64), counts)
    geometry = _interleave(prisms.transformed(xyz), np.asarray(solid, dtype=bool))
    points = np.full((len(objects), 3), np.nan)
    for i, obj in enumerate(objects):
        if obj.kind == "RainGage" and shapes[i] is not None:
            points[i] = (shapes[i].x, shapes[i].y, 0.0)
    return ParsedSource(path, "swmm", crs, objects, geometry, shapes, points)


def _is_shaft(inp: _File, lineno: int, tokens: list[str], length_m: float) -> bool:
    """Whether a STORAGE row is a manhole shaft: a constant surface area (FUNCTIONAL with
    no depth term) of at most :data:`SHAFT_AREA_M2`."""
    if len(tokens) < 8 or tokens[4].upper() != "FUNCTIONAL":
        return False
    a, b, c = (inp.optional(lineno, tokens, i, "storage coefficient") for i in (5, 6, 7))
    area = c * length_m**2 + (a * length_m**2 if b == 0 else 0.0)
    return (a == 0 or b == 0) and 0 < area <= SHAFT_AREA_M2


def _metres_per_unit(crs: pyproj.CRS) -> float:
    if not crs.axis_info:
        return 1.0
    factor = crs.axis_info[0].unit_conversion_factor
    return float(factor) if factor else 1.0


def _title(inp: _File, path: Path) -> str:
    rows = inp.rows("TITLE")
    return " ".join(rows[0][1]) if rows else path.stem


def _coordinates(inp: _File, section: str) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for lineno, t in inp.rows(section):
        if t[0] in out:
            raise inp.fail(lineno, f"[{section}] gives this name twice", t[0])
        out[t[0]] = (inp.number(lineno, t, 1, "x"), inp.number(lineno, t, 2, "y"))
    return out


def _coordinates_lists(inp: _File, section: str) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    for lineno, t in inp.rows(section):
        point = (inp.number(lineno, t, 1, "x"), inp.number(lineno, t, 2, "y"))
        out.setdefault(t[0], []).append(point)
    return out


def _vertices(inp: _File) -> dict[str, list[tuple[float, float]]]:
    return _coordinates_lists(inp, "VERTICES")


def _cross_sections(inp: _File) -> dict[str, tuple[str, list[float], int, str | None]]:
    """Per link: shape, geom1..4 as written, barrels, and the curve, transect or street
    section the shape names (``None`` for geometric shapes)."""
    out: dict[str, tuple[str, list[float], int, str | None]] = {}
    for lineno, t in inp.rows("XSECTIONS"):
        if len(t) < 3:
            raise inp.fail(lineno, "cross-section needs link, shape and geom1", t[0])
        shape = t[1].upper()
        named: str | None = None
        if shape in ("IRREGULAR", "STREET"):
            # geom1 names a transect or street section: drawn 1 m high
            geoms, barrels, named = [1.0, 0.0, 0.0, 0.0], 1, t[2]
        elif shape == "CUSTOM":
            # geom2 names the shape curve: keep the full height only
            geoms, barrels = [inp.number(lineno, t, 2, "geom1"), 0.0, 0.0, 0.0], 1
            named = t[3] if len(t) > 3 else None
        else:
            geoms = [inp.optional(lineno, t, i, f"geom{i - 1}") for i in range(2, 6)]
            barrels = int(inp.optional(lineno, t, 6, "barrels")) or 1
        for number, value in enumerate(geoms, start=1):
            if value < 0:
                raise inp.fail(
                    lineno, f"cross-section geom{number} must be >= 0, got {value:g}", t[0]
                )
        if barrels < 0:
            raise inp.fail(lineno, f"cross-section barrels must be >= 0, got {barrels}", t[0])
        out[t[0]] = (shape, geoms, barrels, named)
    return out
