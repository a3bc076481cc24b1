"""Read EPA SWMM 5 input files (``.inp``) into a :class:`~scenarios.flood.network.Network`.

Sections read: OPTIONS, JUNCTIONS, OUTFALLS, STORAGE, CONDUITS, XSECTIONS, LOSSES, PUMPS,
ORIFICES, WEIRS, CURVES, SUBCATCHMENTS, SUBAREAS, INFILTRATION (Horton), RAINGAGES (time
series or rain file), TIMESERIES, COORDINATES, INFLOWS (flow), DWF (average flow). The file's
flow units fix the other units (:mod:`cim.loaders.swmm_units`, the one unit table the CIM
loader uses too); everything comes out SI.
Sections that would change the hydraulics but are not modelled (CONTROLS, LID_USAGE,
GROUNDWATER, ...) are listed in ``Network.ignored_sections``; display-only sections
(MAP, VERTICES, Polygons, TAGS, ...) are skipped silently.

Every malformed line raises :class:`cim.errors.SourceError` naming the file, the line and
the object.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from cim.errors import SourceError
from cim.loaders.swmm_sections import Line, read_sections
from cim.loaders.swmm_units import UnitSystem, unit_system
from scenarios.flood.network import (
    Curve,
    Inflow,
    Link,
    Network,
    Node,
    Options,
    Pattern,
    RainGage,
    Subcatchment,
    TimeSeries,
    XSection,
)
from scenarios.flood.transect import TransectProfile, TransectTables, transect_tables

#: cross-section shapes the solver models; others are refused naming the line
SUPPORTED_SHAPES = frozenset(
    {
        "CIRCULAR",
        "FORCE_MAIN",
        "RECT_CLOSED",
        "RECT_OPEN",
        "TRAPEZOIDAL",
        "TRIANGULAR",
        "IRREGULAR",
    }
)
_DISPLAY_SECTIONS = frozenset(
    {
        "TITLE",
        "MAP",
        "VERTICES",
        "POLYGONS",
        "SYMBOLS",
        "LABELS",
        "TAGS",
        "REPORT",
        "BACKDROP",
        "PROFILES",
        "EVAPORATION",
        "TEMPERATURE",
        "SNOWPACKS",
        "POLLUTANTS",
        "LANDUSES",
        "COVERAGES",
        "LOADINGS",
        "BUILDUP",
        "WASHOFF",
        "TREATMENT",
        "ADJUSTMENTS",
        "FILES",
    }
)


class _Reader:
    """One pass over one file; holds the path for error messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.units: UnitSystem = unit_system("CMS")
        self.start = datetime(2000, 1, 1)
        self.transects: dict[str, TransectTables] = {}
        self.rain_files = True

    def fail(self, lineno: int, message: str, object_id: str | None = None) -> SourceError:
        return SourceError(self.path, f"line {lineno}: {message}", object_id)

    def number(self, lineno: int, tokens: list[str], index: int, what: str) -> float:
        if index >= len(tokens):
            raise self.fail(lineno, f"missing {what}", tokens[0] if tokens else None)
        text = tokens[index]
        try:
            value = float(text)
        except ValueError:
            raise self.fail(lineno, f"{what} must be a number, got {text!r}", tokens[0]) from None
        if value != value or value in (float("inf"), float("-inf")):
            raise self.fail(lineno, f"{what} must be finite, got {text!r}", tokens[0])
        return value

    def optional(self, lineno: int, tokens: list[str], index: int, what: str) -> float:
        if index >= len(tokens) or tokens[index] == "*":
            return 0.0
        return self.number(lineno, tokens, index, what)

    def duration(self, lineno: int, text: str, what: str) -> float:
        """Seconds from ``H:MM[:SS]``, or from a plain number (seconds)."""
        try:
            if ":" in text:
                parts = [float(p) for p in text.split(":")]
                while len(parts) < 3:
                    parts.append(0.0)
                return parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
            return float(text)
        except ValueError:
            raise self.fail(lineno, f"{what} must be H:MM:SS or seconds, got {text!r}") from None

    def hours(self, lineno: int, text: str, what: str) -> float:
        """Seconds from ``H:MM[:SS]`` or decimal hours (the form of time-series times)."""
        if ":" in text:
            return self.duration(lineno, text, what)
        try:
            return float(text) * 3600.0
        except ValueError:
            raise self.fail(lineno, f"{what} must be H:MM or decimal hours, got {text!r}") from None

    def date(self, lineno: int, text: str) -> datetime:
        when = _date(text)
        if when is None:
            raise self.fail(lineno, f"date must be MM/DD/YYYY, got {text!r}")
        return when


@functools.lru_cache(maxsize=4096)
def _date(text: str) -> datetime | None:
    """``text`` as a date in one of SWMM's forms, or None (cached: time series repeat dates)."""
    for form in ("%m/%d/%Y", "%m-%d-%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, form)
        except ValueError:
            continue
    return None


def load_swmm_inp(path: str | Path, *, rain_files: bool = True) -> Network:
    """Read a SWMM 5 input file.

    Parameters
    ----------
    path : the ``.inp`` file; rain files named in [RAINGAGES] are found beside it
    rain_files : False when the caller replaces every gauge's rain (a design storm): the
        rain files are then not read (gauges fed by one get a dry series), so a model whose
        rain file is not published still runs a design storm

    Returns
    -------
    Network
        Nodes, links, subcatchments, gauges, curves and series in SI units.

    Raises
    ------
    cim.errors.SourceError
        If the file cannot be read, a line is malformed, a name is undefined or a feature is
        not supported; the message names the file and line.
    """
    path = Path(path)
    sections = read_sections(path)
    reader = _Reader(path)
    reader.rain_files = rain_files
    options = _read_options(reader, sections.get("OPTIONS", []))
    net = Network(path=str(path), options=options)
    handlers: dict[str, Callable[[_Reader, Network, list[Line]], None]] = {
        "PATTERNS": _read_patterns,
        "CONTROLS": _read_controls,
        "CURVES": _read_curves,
        "TRANSECTS": _read_transects,
        "TIMESERIES": _read_timeseries,
        "JUNCTIONS": _read_junctions,
        "OUTFALLS": _read_outfalls,
        "STORAGE": _read_storage,
        "DIVIDERS": _read_dividers,
        "CONDUITS": _read_conduits,
        "PUMPS": _read_pumps,
        "ORIFICES": _read_orifices,
        "WEIRS": _read_weirs,
        "XSECTIONS": _read_xsections,
        "LOSSES": _read_losses,
        "RAINGAGES": _read_raingages,
        "SUBCATCHMENTS": _read_subcatchments,
        "SUBAREAS": _read_subareas,
        "INFILTRATION": _read_infiltration,
        "COORDINATES": _read_coordinates,
        "INFLOWS": _read_inflows,
        "DWF": _read_dwf,
    }
    for name, handler in handlers.items():
        handler(reader, net, sections.get(name, []))
    for name, lines in sections.items():
        if name in handlers or name == "OPTIONS" or name in _DISPLAY_SECTIONS or not lines:
            continue
        net.ignored_sections.append(name)
    _check(reader, net, sections)
    return net


def _read_options(reader: _Reader, lines: list[Line]) -> Options:
    values: dict[str, tuple[int, str]] = {}
    for lineno, tokens in lines:
        if len(tokens) < 2:
            raise reader.fail(lineno, f"option {tokens[0]} has no value")
        values[tokens[0].upper()] = (lineno, tokens[1])
    flow_lineno, flow_units = values.get("FLOW_UNITS", (0, "CFS"))
    try:
        reader.units = unit_system(flow_units)
    except ValueError as exc:
        raise reader.fail(flow_lineno, str(exc)) from None
    units = reader.units

    def text(key: str, default: str) -> str:
        return values[key][1].upper() if key in values else default

    def when(date_key: str, time_key: str, default: datetime) -> datetime:
        day = reader.date(*values[date_key]) if date_key in values else default
        seconds = reader.duration(*values[time_key], time_key) if time_key in values else 0.0
        return datetime(day.year, day.month, day.day) + timedelta(seconds=seconds)

    start = when("START_DATE", "START_TIME", datetime(2000, 1, 1))
    end = when("END_DATE", "END_TIME", start)
    reader.start = start
    options = Options(
        flow_units=units.flow_units,
        flow_routing=text("FLOW_ROUTING", "KINWAVE"),
        infiltration=text("INFILTRATION", "HORTON"),
        allow_ponding=text("ALLOW_PONDING", "NO") == "YES",
        link_offsets=text("LINK_OFFSETS", "DEPTH"),
        normal_flow_limited=text("NORMAL_FLOW_LIMITED", "BOTH"),
        duration_s=(end - start).total_seconds(),
        start=start.isoformat(),
    )
    for key, attr in (
        ("ROUTING_STEP", "routing_step_s"),
        ("REPORT_STEP", "report_step_s"),
        ("WET_STEP", "wet_step_s"),
    ):
        if key in values:
            setattr(options, attr, reader.duration(*values[key], key))
    if "VARIABLE_STEP" in values:
        lineno, value = values["VARIABLE_STEP"]
        options.variable_step = reader.number(lineno, ["VARIABLE_STEP", value], 1, "VARIABLE_STEP")
    if "MIN_SURFAREA" in values:
        lineno, value = values["MIN_SURFAREA"]
        area = reader.number(lineno, ["MIN_SURFAREA", value], 1, "MIN_SURFAREA")
        if area > 0:
            options.min_surfarea_m2 = area * units.surface_area
    if "MIN_SLOPE" in values:
        lineno, value = values["MIN_SLOPE"]
        options.min_slope = reader.number(lineno, ["MIN_SLOPE", value], 1, "MIN_SLOPE") / 100.0
    if options.duration_s <= 0:
        where = values.get("END_TIME", values.get("END_DATE", (0, "")))[0]
        raise reader.fail(where, "END_DATE/END_TIME must be after START_DATE/START_TIME")
    return options


_PATTERN_LENGTHS = {"MONTHLY": 12, "DAILY": 7, "HOURLY": 24, "WEEKEND": 24}


def _read_patterns(reader: _Reader, net: Network, lines: list[Line]) -> None:
    kinds: dict[str, tuple[str, int]] = {}
    factors: dict[str, list[float]] = defaultdict(list)
    for lineno, tokens in lines:
        name, rest = tokens[0], tokens[1:]
        if name not in kinds:
            if not rest or rest[0].upper() not in _PATTERN_LENGTHS:
                raise reader.fail(
                    lineno, "pattern type must be MONTHLY, DAILY, HOURLY or WEEKEND", name
                )
            kinds[name] = (rest[0].upper(), lineno)
            rest = rest[1:]
        factors[name].extend(reader.number(lineno, rest, i, "multiplier") for i in range(len(rest)))
    for name, (kind, lineno) in kinds.items():
        if len(factors[name]) != _PATTERN_LENGTHS[kind]:
            raise reader.fail(
                lineno,
                f"{kind} pattern needs {_PATTERN_LENGTHS[kind]} multipliers, "
                f"got {len(factors[name])}",
                name,
            )
        net.patterns[name] = Pattern(name, kind, tuple(factors[name]))


def _read_controls(reader: _Reader, net: Network, lines: list[Line]) -> None:
    current: list[str] = []
    for _lineno, tokens in lines:
        if tokens[0].upper() == "RULE" and current:
            net.rules.append(" ".join(current))
            current = []
        current.extend(tokens)
    if current:
        net.rules.append(" ".join(current))


def _read_curves(reader: _Reader, net: Network, lines: list[Line]) -> None:
    points: dict[str, list[float]] = {}
    kinds: dict[str, str] = {}
    for lineno, tokens in lines:
        name, rest = tokens[0], tokens[1:]
        if name not in points:
            if not rest:
                raise reader.fail(lineno, "curve has no type", name)
            kinds[name], rest = rest[0].upper(), rest[1:]
            points[name] = []
        elif rest and not _is_number(rest[0]):
            rest = rest[1:]
        if len(rest) % 2:
            raise reader.fail(lineno, "curve points come in x y pairs", name)
        points[name].extend(reader.number(lineno, rest, i, "curve value") for i in range(len(rest)))
    u = reader.units
    for name, values in points.items():
        xy = np.asarray(values, dtype=np.float64).reshape(-1, 2)
        kind = kinds[name]
        x_scale, y_scale = {
            "STORAGE": (u.length, u.surface_area),
            "PUMP1": (u.volume, u.flow),
            "PUMP2": (u.length, u.flow),
            "PUMP3": (u.length, u.flow),
            "PUMP4": (u.length, u.flow),
            "PUMP5": (u.length, u.flow),
            "RATING": (u.length, u.flow),
            "TIDAL": (1.0, u.length),
        }.get(kind, (1.0, 1.0))
        net.curves[name] = Curve(name, kind, xy[:, 0] * x_scale, xy[:, 1] * y_scale)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_timeseries(reader: _Reader, net: Network, lines: list[Line]) -> None:
    data: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for lineno, tokens in lines:
        name, rest = tokens[0], tokens[1:]
        if rest and rest[0].upper() == "FILE":
            raise reader.fail(lineno, "time series from external files are not supported", name)
        day: datetime | None = None
        while rest:
            if "/" in rest[0] or ("-" in rest[0] and not _is_number(rest[0])):
                day = reader.date(lineno, rest[0])
                rest = rest[1:]
            if len(rest) < 2:
                raise reader.fail(lineno, "time series entries are [date] time value", name)
            seconds = reader.hours(lineno, rest[0], "time")
            if day is not None:
                seconds += (day - reader.start).total_seconds()
            data[name].append((seconds, reader.number(lineno, rest, 1, "value")))
            rest = rest[2:]
    for name, pairs in data.items():
        arr = np.asarray(pairs, dtype=np.float64)
        net.timeseries[name] = TimeSeries(name, arr[:, 0], arr[:, 1])


def _read_junctions(reader: _Reader, net: Network, lines: list[Line]) -> None:
    u = reader.units.length
    area = reader.units.surface_area
    for lineno, t in lines:
        _unique(reader, net.nodes, lineno, t[0])
        net.nodes[t[0]] = Node(
            t[0],
            "junction",
            invert_m=reader.number(lineno, t, 1, "elevation") * u,
            max_depth_m=reader.optional(lineno, t, 2, "max depth") * u,
            init_depth_m=reader.optional(lineno, t, 3, "initial depth") * u,
            surcharge_depth_m=reader.optional(lineno, t, 4, "surcharge depth") * u,
            ponded_area_m2=reader.optional(lineno, t, 5, "ponded area") * area,
        )


def _unique(reader: _Reader, table: Mapping[str, object], lineno: int, name: str) -> None:
    if name in table:
        raise reader.fail(lineno, "name defined twice", name)


def _read_outfalls(reader: _Reader, net: Network, lines: list[Line]) -> None:
    u = reader.units.length
    for lineno, t in lines:
        _unique(reader, net.nodes, lineno, t[0])
        if len(t) < 3:
            raise reader.fail(lineno, "outfall needs name, elevation and type", t[0])
        kind = t[2].upper()
        stage: float | None = None
        rest = t[3:]
        if kind == "FIXED":
            stage = reader.number(lineno, t, 3, "fixed stage") * u
            rest = t[4:]
        elif kind in ("TIDAL", "TIMESERIES"):
            raise reader.fail(lineno, f"{kind} outfalls are not supported (FREE, NORMAL, FIXED)")
        elif kind not in ("FREE", "NORMAL"):
            raise reader.fail(lineno, f"unknown outfall type {t[2]!r}", t[0])
        net.nodes[t[0]] = Node(
            t[0],
            "outfall",
            invert_m=reader.number(lineno, t, 1, "elevation") * u,
            max_depth_m=0.0,
            outfall_type=kind,
            stage_m=stage,
            gated=bool(rest) and rest[0].upper() == "YES",
        )


def _read_storage(reader: _Reader, net: Network, lines: list[Line]) -> None:
    u = reader.units.length
    for lineno, t in lines:
        _unique(reader, net.nodes, lineno, t[0])
        if len(t) < 5:
            raise reader.fail(lineno, "storage needs name, elevation, depths and shape", t[0])
        shape = t[4].upper()
        curve: tuple[object, ...]
        if shape == "FUNCTIONAL":
            a, b, c = (reader.optional(lineno, t, i, "storage coefficient") for i in (5, 6, 7))
            # area(ft2) = a·d(ft)^b + c  ->  area(m2) = a·u^(2-b)·d(m)^b + c·u²
            curve = ("functional", a * u ** (2.0 - b), b, c * u * u)
        elif shape == "TABULAR":
            if len(t) < 6:
                raise reader.fail(lineno, "TABULAR storage needs a curve name", t[0])
            curve = ("tabular_name", t[5], lineno)
        elif shape == "CYLINDRICAL":
            major, minor = (reader.number(lineno, t, i, "storage axis") for i in (5, 6))
            curve = ("functional", 0.0, 0.0, np.pi / 4.0 * major * minor * u * u)
        else:
            raise reader.fail(lineno, f"storage shape {shape} is not supported", t[0])
        net.nodes[t[0]] = Node(
            t[0],
            "storage",
            invert_m=reader.number(lineno, t, 1, "elevation") * u,
            max_depth_m=reader.number(lineno, t, 2, "max depth") * u,
            init_depth_m=reader.optional(lineno, t, 3, "initial depth") * u,
            storage_curve=curve,
        )


def _read_dividers(reader: _Reader, net: Network, lines: list[Line]) -> None:
    for lineno, t in lines:
        raise reader.fail(lineno, "flow dividers are not supported", t[0])


def _read_conduits(reader: _Reader, net: Network, lines: list[Line]) -> None:
    u = reader.units.length
    for lineno, t in lines:
        _unique(reader, net.links, lineno, t[0])
        if len(t) < 5:
            raise reader.fail(lineno, "conduit needs name, nodes, length and roughness", t[0])
        length = reader.number(lineno, t, 3, "length") * u
        roughness = reader.number(lineno, t, 4, "roughness")
        if length <= 0 or roughness <= 0:
            raise reader.fail(lineno, "length and roughness must be > 0", t[0])
        net.links[t[0]] = Link(
            t[0],
            "conduit",
            t[1],
            t[2],
            length_m=length,
            roughness=roughness,
            in_offset_m=reader.optional(lineno, t, 5, "inlet offset") * u,
            out_offset_m=reader.optional(lineno, t, 6, "outlet offset") * u,
            init_flow_m3s=reader.optional(lineno, t, 7, "initial flow") * reader.units.flow,
            max_flow_m3s=reader.optional(lineno, t, 8, "max flow") * reader.units.flow,
        )


def _read_pumps(reader: _Reader, net: Network, lines: list[Line]) -> None:
    u = reader.units.length
    for lineno, t in lines:
        _unique(reader, net.links, lineno, t[0])
        if len(t) < 4:
            raise reader.fail(lineno, "pump needs name, nodes and curve", t[0])
        net.links[t[0]] = Link(
            t[0],
            "pump",
            t[1],
            t[2],
            curve=None if t[3] == "*" else t[3],
            initially_on=len(t) < 5 or t[4].upper() != "OFF",
            startup_depth_m=reader.optional(lineno, t, 5, "start-up depth") * u,
            shutoff_depth_m=reader.optional(lineno, t, 6, "shut-off depth") * u,
        )


def _read_orifices(reader: _Reader, net: Network, lines: list[Line]) -> None:
    u = reader.units.length
    for lineno, t in lines:
        _unique(reader, net.links, lineno, t[0])
        if len(t) < 6:
            raise reader.fail(lineno, "orifice needs name, nodes, type, offset, coefficient", t[0])
        net.links[t[0]] = Link(
            t[0],
            "orifice",
            t[1],
            t[2],
            subtype=t[3].upper(),
            crest_m=reader.number(lineno, t, 4, "offset") * u,
            coeff=reader.number(lineno, t, 5, "discharge coefficient"),
            gated=len(t) > 6 and t[6].upper() == "YES",
        )


def _read_weirs(reader: _Reader, net: Network, lines: list[Line]) -> None:
    u = reader.units.length
    for lineno, t in lines:
        _unique(reader, net.links, lineno, t[0])
        if len(t) < 6:
            raise reader.fail(lineno, "weir needs name, nodes, type, crest, coefficient", t[0])
        subtype = t[3].upper()
        if subtype not in ("TRANSVERSE", "SIDEFLOW", "V-NOTCH", "TRAPEZOIDAL"):
            raise reader.fail(lineno, f"weir type {subtype} is not supported", t[0])
        # Cw: Q = Cw·L·h^1.5 (V-notch h^2.5); its units carry length^0.5 (or ^-0.5) per second
        scale = u**0.5
        net.links[t[0]] = Link(
            t[0],
            "weir",
            t[1],
            t[2],
            subtype=subtype,
            crest_m=reader.number(lineno, t, 4, "crest height") * u,
            coeff=reader.number(lineno, t, 5, "discharge coefficient") * scale,
            gated=len(t) > 6 and t[6].upper() == "YES",
            # [WEIRS] Name From To Type Crest Cd Gated EC Cd2 Surcharge ... (YES by default)
            surcharge=not (len(t) > 9 and t[9].upper() == "NO"),
        )


def _read_xsections(reader: _Reader, net: Network, lines: list[Line]) -> None:
    u = reader.units.length
    for lineno, t in lines:
        link = _link(reader, net, lineno, t[0])
        shape = t[1].upper() if len(t) > 1 else ""
        if shape == "DUMMY" and link.kind == "conduit":
            # SWMM's dynamic wave moves a dummy conduit's upstream node inflow straight
            # through (link_getInflow -> node_getOutflow), which is what an ideal pump does
            net.links[t[0]] = Link(t[0], "pump", link.from_node, link.to_node, subtype="DUMMY")
            continue
        if shape not in SUPPORTED_SHAPES:
            raise reader.fail(
                lineno,
                f"cross-section {shape or '(none)'} is not supported "
                f"(supported: {', '.join(sorted(SUPPORTED_SHAPES))})",
                t[0],
            )
        if shape == "IRREGULAR":
            if len(t) < 3 or t[2] not in reader.transects:
                name = t[2] if len(t) > 2 else "(none)"
                raise reader.fail(lineno, f"transect {name!r} is not defined in [TRANSECTS]", t[0])
            tables = reader.transects[t[2]]
            barrels = int(reader.optional(lineno, t, 6, "barrels") or 1)
            geometry = (tables.y_full, tables.w_max, 0.0, 0.0)
            link.xsect = XSection(shape, geometry, barrels, tables)
            if link.kind == "conduit":  # SWMM gives the conduit the transect's channel n
                link.roughness = tables.roughness
            continue
        geom = tuple(reader.optional(lineno, t, i, f"geom{i - 1}") for i in range(2, 6))
        if shape == "TRAPEZOIDAL":  # geom3, geom4 are side slopes (run/rise): no length unit
            geom = (geom[0] * u, geom[1] * u, geom[2], geom[3])
        elif shape == "FORCE_MAIN":  # geom2 is a roughness (C or ε), not a length
            geom = (geom[0] * u, 0.0, 0.0, 0.0)
        else:
            geom = (geom[0] * u, geom[1] * u, geom[2] * u, geom[3] * u)
        if geom[0] <= 0:
            raise reader.fail(lineno, "cross-section depth (geom1) must be > 0", t[0])
        barrels = int(reader.optional(lineno, t, 6, "barrels") or 1)
        link.xsect = XSection(shape, (geom[0], geom[1], geom[2], geom[3]), barrels)


@dataclass
class _OpenTransect:
    """The transect whose GR records are being read (file units, modifiers applied)."""

    lineno: int
    name: str
    n: tuple[float, float, float]
    banks: tuple[float, float]
    length_factor: float
    x_factor: float
    y_offset: float
    points: list[tuple[float, float]] = field(default_factory=list)


def _read_transects(reader: _Reader, net: Network, lines: list[Line]) -> None:
    """HEC-2 records: ``NC nLeft nRight nChannel`` (0 keeps the previous n), ``X1 name nSta
    xLeftBank xRightBank 0 0 lengthFactor xFactor yFactor``, then ``GR elev station ...``."""
    n_left = n_right = n_channel = 0.0
    current: _OpenTransect | None = None
    for lineno, t in lines:
        key = t[0].upper()
        if key == "NC":
            if len(t) < 4:
                raise reader.fail(lineno, "NC record needs n of left bank, right bank, channel")
            values = [reader.number(lineno, t, i, "Manning n") for i in (1, 2, 3)]
            if min(values) < 0:
                raise reader.fail(lineno, "NC Manning n must be >= 0")
            n_left, n_right, n_channel = (
                v or old for v, old in zip(values, (n_left, n_right, n_channel), strict=True)
            )
            n_left, n_right = n_left or n_channel, n_right or n_channel
        elif key == "X1":
            _finish_transect(reader, current)
            if len(t) < 10:
                raise reader.fail(
                    lineno,
                    "X1 record needs name, stations, left and right bank stations, 0, 0, "
                    "length factor, station factor, elevation offset",
                )
            if t[1] in reader.transects or (current is not None and current.name == t[1]):
                raise reader.fail(lineno, "transect defined twice", t[1])
            x = [reader.number(lineno, t, i, f"X1 field {i}") for i in range(2, 10)]
            x_factor = x[6] or 1.0
            current = _OpenTransect(
                lineno,
                t[1],
                (n_left, n_right, n_channel),
                (x[1] * x_factor, x[2] * x_factor),
                x[5] or 1.0,
                x_factor,
                x[7],
            )
        elif key == "GR":
            if current is None:
                raise reader.fail(lineno, "GR record before any X1 record")
            if len(t) < 3 or (len(t) - 1) % 2:
                raise reader.fail(lineno, "GR records hold elevation station pairs", current.name)
            for i in range(1, len(t), 2):
                elev = reader.number(lineno, t, i, "GR elevation")
                station = reader.number(lineno, t, i + 1, "GR station") * current.x_factor
                if current.points and station < current.points[-1][0]:
                    raise reader.fail(
                        lineno,
                        f"GR stations must not decrease ({station:g} after "
                        f"{current.points[-1][0]:g})",
                        current.name,
                    )
                current.points.append((station, elev + current.y_offset))
        else:
            raise reader.fail(lineno, f"transect record must be NC, X1 or GR, got {t[0]!r}")
    _finish_transect(reader, current)


def _finish_transect(reader: _Reader, current: _OpenTransect | None) -> None:
    """Tabulate the transect just read, naming its X1 line if SWMM would refuse it."""
    if current is None:
        return
    xy = np.asarray(current.points, dtype=np.float64).reshape(-1, 2)
    profile = TransectProfile(
        current.name,
        stations=xy[:, 0],
        elevations=xy[:, 1],
        n_left=current.n[0],
        n_right=current.n[1],
        n_channel=current.n[2],
        x_left_bank=current.banks[0],
        x_right_bank=current.banks[1],
        length_factor=current.length_factor,
    )
    try:
        reader.transects[current.name] = transect_tables(profile, reader.units.length)
    except ValueError as exc:
        raise reader.fail(current.lineno, str(exc), current.name) from None


def _link(reader: _Reader, net: Network, lineno: int, name: str) -> Link:
    try:
        return net.links[name]
    except KeyError:
        raise reader.fail(lineno, "no such link", name) from None


def _read_losses(reader: _Reader, net: Network, lines: list[Line]) -> None:
    for lineno, t in lines:
        link = _link(reader, net, lineno, t[0])
        link.k_entry = reader.optional(lineno, t, 1, "entry loss")
        link.k_exit = reader.optional(lineno, t, 2, "exit loss")
        link.k_avg = reader.optional(lineno, t, 3, "average loss")
        link.flap_gate = len(t) > 4 and t[4].upper() == "YES"


def _read_raingages(reader: _Reader, net: Network, lines: list[Line]) -> None:
    for lineno, t in lines:
        if len(t) < 6:
            raise reader.fail(lineno, "rain gauge needs name, format, interval, SCF, source", t[0])
        form = t[1].upper()
        if form not in ("INTENSITY", "VOLUME", "CUMULATIVE"):
            raise reader.fail(lineno, f"unknown rain format {t[1]!r}", t[0])
        interval = reader.hours(lineno, t[2], "rain interval")
        scf = reader.number(lineno, t, 3, "snow catch factor")
        source = t[4].upper()
        depth_unit = reader.units.rain_depth
        if source == "TIMESERIES":
            try:
                series = net.timeseries[t[5]]
            except KeyError:
                raise reader.fail(lineno, f"time series {t[5]!r} is not defined", t[0]) from None
        elif source == "FILE":
            if len(t) < 7:
                raise reader.fail(lineno, "rain file needs a station id", t[0])
            if len(t) > 7:
                depth_unit = {"IN": 0.0254, "MM": 1e-3}.get(t[7].upper(), depth_unit)
            if reader.rain_files:
                series = _rain_file(reader, lineno, t[0], t[5], t[6])
            else:
                series = TimeSeries(t[5], np.zeros(1), np.zeros(1))
        else:
            raise reader.fail(lineno, f"rain source must be TIMESERIES or FILE, got {t[4]!r}")
        net.gages[t[0]] = RainGage(
            t[0], form, interval, scf, _rain_rate(series, form, interval, depth_unit)
        )


def _rain_rate(series: TimeSeries, form: str, interval_s: float, depth_m: float) -> TimeSeries:
    values = series.values.astype(np.float64)
    if form == "CUMULATIVE":
        values = np.diff(values, prepend=0.0)
    rate = values * depth_m / 3600.0 if form == "INTENSITY" else values * depth_m / interval_s
    return TimeSeries(series.name, series.t_s.copy(), np.maximum(rate, 0.0))


def _rain_file(reader: _Reader, lineno: int, gage: str, name: str, station: str) -> TimeSeries:
    path = reader.path.parent / name
    if not path.is_file():
        raise reader.fail(lineno, f"rain file {name!r} not found beside the .inp", gage)
    times: list[float] = []
    values: list[float] = []
    for n, raw in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        tokens = raw.split(";", 1)[0].split()
        if not tokens or tokens[0] != station:
            continue
        if len(tokens) < 7:
            raise SourceError(path, f"line {n}: rain records are 'station Y M D h m value'")
        try:
            y, mo, d, h, mi = (int(v) for v in tokens[1:6])
            value = float(tokens[6])
        except ValueError:
            raise SourceError(path, f"line {n}: rain record is not numbers") from None
        times.append((datetime(y, mo, d, h, mi) - reader.start).total_seconds())
        values.append(value)
    if not times:
        raise reader.fail(lineno, f"rain file {name!r} has no records for station {station}")
    return TimeSeries(name, np.asarray(times), np.asarray(values))


def _read_subcatchments(reader: _Reader, net: Network, lines: list[Line]) -> None:
    u = reader.units
    for lineno, t in lines:
        _unique(reader, net.subcatchments, lineno, t[0])
        if len(t) < 7:
            raise reader.fail(lineno, "subcatchment needs gage, outlet, area, %imperv, width", t[0])
        net.subcatchments[t[0]] = Subcatchment(
            t[0],
            gage=t[1],
            outlet=t[2],
            area_m2=reader.number(lineno, t, 3, "area") * u.area,
            pct_imperv=reader.number(lineno, t, 4, "%imperv"),
            width_m=reader.number(lineno, t, 5, "width") * u.length,
            slope=reader.number(lineno, t, 6, "%slope") / 100.0,
        )


def _subcatchment(reader: _Reader, net: Network, lineno: int, name: str) -> Subcatchment:
    try:
        return net.subcatchments[name]
    except KeyError:
        raise reader.fail(lineno, "no such subcatchment", name) from None


def _read_subareas(reader: _Reader, net: Network, lines: list[Line]) -> None:
    depth = reader.units.rain_depth
    for lineno, t in lines:
        sub = _subcatchment(reader, net, lineno, t[0])
        sub.n_imperv = reader.number(lineno, t, 1, "N-imperv")
        sub.n_perv = reader.number(lineno, t, 2, "N-perv")
        sub.dstore_imperv_m = reader.number(lineno, t, 3, "S-imperv") * depth
        sub.dstore_perv_m = reader.number(lineno, t, 4, "S-perv") * depth
        sub.pct_zero = reader.number(lineno, t, 5, "%zero")
        if len(t) > 7 and t[6].upper() != "OUTLET" and float(t[7]) > 0:
            net.ignored_sections.append(f"SUBAREAS routing {t[6].upper()} ({t[0]})")


def _read_infiltration(reader: _Reader, net: Network, lines: list[Line]) -> None:
    method = net.options.infiltration
    rate = reader.units.rain_rate
    for lineno, t in lines:
        sub = _subcatchment(reader, net, lineno, t[0])
        row_method = t[6].upper() if len(t) > 6 and not _is_number(t[6]) else method
        if row_method not in ("HORTON", "MODIFIED_HORTON"):
            if f"INFILTRATION {row_method}" not in net.ignored_sections:
                net.ignored_sections.append(f"INFILTRATION {row_method}")
            continue
        values = [reader.optional(lineno, t, i, "Horton parameter") for i in range(1, 6)]
        sub.horton = (
            values[0] * rate,
            values[1] * rate,
            values[2] / 3600.0,
            values[3] * 86400.0,
            values[4] * reader.units.rain_depth,
        )


def _read_coordinates(reader: _Reader, net: Network, lines: list[Line]) -> None:
    for lineno, t in lines:
        node = net.nodes.get(t[0])
        if node is None:
            continue  # SWMM tolerates coordinates of absent nodes; so do we
        node.x = reader.number(lineno, t, 1, "x")
        node.y = reader.number(lineno, t, 2, "y")


def _node(reader: _Reader, net: Network, lineno: int, name: str) -> Node:
    try:
        return net.nodes[name]
    except KeyError:
        raise reader.fail(lineno, "no such node", name) from None


def _read_inflows(reader: _Reader, net: Network, lines: list[Line]) -> None:
    for lineno, t in lines:
        _node(reader, net, lineno, t[0])
        if len(t) < 3 or t[1].upper() != "FLOW":
            continue  # pollutant inflows do not change the hydraulics
        series: TimeSeries | None = None
        if t[2] not in ('""', ""):
            series = net.timeseries.get(t[2])
            if series is None:
                raise reader.fail(lineno, f"time series {t[2]!r} is not defined", t[0])
        mfactor = reader.optional(lineno, t, 4, "units factor") or 1.0
        sfactor = reader.optional(lineno, t, 5, "scale factor") or 1.0
        baseline = reader.optional(lineno, t, 6, "baseline")
        flow = reader.units.flow
        patterns: tuple[Pattern, ...] = ()
        if len(t) > 7 and t[7] not in ("", '""'):
            if t[7] not in net.patterns:
                raise reader.fail(lineno, f"pattern {t[7]!r} is not defined", t[0])
            patterns = (net.patterns[t[7]],)
        net.inflows.append(
            Inflow(t[0], series, mfactor * sfactor * flow, baseline * flow, patterns)
        )


def _read_dwf(reader: _Reader, net: Network, lines: list[Line]) -> None:
    for lineno, t in lines:
        _node(reader, net, lineno, t[0])
        if len(t) < 3 or t[1].upper() != "FLOW":
            continue
        average = reader.number(lineno, t, 2, "average dry-weather flow") * reader.units.flow
        patterns = []
        for name in t[3:]:
            if name in ("", '""'):
                continue
            if name not in net.patterns:
                raise reader.fail(lineno, f"pattern {name!r} is not defined", t[0])
            patterns.append(net.patterns[name])
        net.inflows.append(Inflow(t[0], None, 1.0, average, tuple(patterns)))


def _check(reader: _Reader, net: Network, sections: dict[str, list[Line]]) -> None:
    """Resolve names across sections, convert elevation offsets, fill defaults."""
    lines = {
        t[0]: n
        for key in ("CONDUITS", "PUMPS", "ORIFICES", "WEIRS")
        for n, t in sections.get(key, [])
    }
    for link in net.links.values():
        lineno = lines.get(link.name, 0)
        for end in (link.from_node, link.to_node):
            if end not in net.nodes:
                raise reader.fail(lineno, f"node {end!r} is not defined", link.name)
        if link.kind in ("conduit", "orifice", "weir") and link.xsect is None:
            raise reader.fail(lineno, "link has no [XSECTIONS] entry", link.name)
        if link.kind == "pump" and link.curve is not None and link.curve not in net.curves:
            raise reader.fail(lineno, f"pump curve {link.curve!r} is not defined", link.name)
        if net.options.link_offsets == "ELEVATION" and link.kind == "conduit":
            link.in_offset_m = max(link.in_offset_m - net.nodes[link.from_node].invert_m, 0.0)
            link.out_offset_m = max(link.out_offset_m - net.nodes[link.to_node].invert_m, 0.0)
        if link.kind == "conduit":
            # SWMM's conduit slope floor keeps a flat pipe from stalling
            drop = (net.nodes[link.from_node].invert_m + link.in_offset_m) - (
                net.nodes[link.to_node].invert_m + link.out_offset_m
            )
            if abs(drop) < net.options.min_slope * link.length_m:
                link.out_offset_m -= net.options.min_slope * link.length_m - drop
    for node in net.nodes.values():
        curve = node.storage_curve
        if curve is not None and curve[0] == "tabular_name":
            found = net.curves.get(str(curve[1]))
            if found is None:
                raise reader.fail(
                    int(curve[2]), f"storage curve {curve[1]!r} is not defined", node.name
                )
            node.storage_curve = ("tabular", found.x, found.y)
    sub_lines = {t[0]: n for n, t in sections.get("SUBCATCHMENTS", [])}
    for sub in net.subcatchments.values():
        lineno = sub_lines.get(sub.name, 0)
        if sub.gage not in net.gages:
            raise reader.fail(lineno, f"rain gauge {sub.gage!r} is not defined", sub.name)
        if sub.outlet not in net.nodes and sub.outlet not in net.subcatchments:
            raise reader.fail(
                lineno, f"outlet {sub.outlet!r} is neither node nor subcatchment", sub.name
            )
