"""Venue geometry: the walkable area, its exits and spawn areas, read from WKT or GeoJSON.

WKT follows JuPedSim's examples: one ``GEOMETRYCOLLECTION`` whose members are, in order, the
walkable area (holes are obstacles), the exits, and the spawn areas; each member may itself be a
polygon, a multipolygon or a collection of polygons. GeoJSON is a ``FeatureCollection`` whose
features carry ``properties.role``: ``walkable``, ``obstacle``, ``exit``, ``spawn`` or ``zone``.
Coordinates are metres in a projected frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from cim.errors import SourceError

ROLES = ("walkable", "obstacle", "exit", "spawn", "zone")


@dataclass(frozen=True)
class Venue:
    """A walkable area with exits and spawn areas.

    Attributes
    ----------
    walkable : shapely Polygon or MultiPolygon, metres; holes are obstacles
    exits : one polygon per exit, in file order (exit index = position)
    spawns : spawn-area polygons (may be empty: people are placed over the walkable area)
    zones : named reporting zones (may be empty: square tiles are used)
    source : where the venue came from, for error messages
    """

    walkable: BaseGeometry
    exits: list[BaseGeometry]
    spawns: list[BaseGeometry] = field(default_factory=list)
    zones: dict[str, BaseGeometry] = field(default_factory=dict)
    source: str = "<memory>"

    @property
    def area_m2(self) -> float:
        """Walkable area in m²."""
        return float(self.walkable.area)

    def exit_widths_m(self) -> list[float]:
        """The opening width of each exit, metres.

        The opening is the part of the exit's outline that lies inside the walkable area (not
        along a wall); an exit drawn as a strip across a corridor end opens by the corridor's
        width. It is capped by the long side of the exit's minimum rotated rectangle.
        """
        walls = self.walkable.boundary.buffer(1e-3)
        widths = []
        for exit_area in self.exits:
            open_edge = exit_area.boundary.difference(walls).length
            rect = shapely.minimum_rotated_rectangle(exit_area)
            xs, ys = rect.exterior.coords.xy
            sides = [((xs[i + 1] - xs[i]) ** 2 + (ys[i + 1] - ys[i]) ** 2) ** 0.5 for i in range(2)]
            long_side = max(sides) if max(sides) > 0 else exit_area.length / 2
            widths.append(float(min(open_edge, long_side) if open_edge > 0 else long_side))
        return widths


def load_venue(path: str | Path) -> Venue:
    """Read a venue from a ``.wkt`` or ``.geojson``/``.json`` file.

    Raises
    ------
    SourceError
        The file cannot be read, is not the expected structure, or its geometry is invalid
        (self-intersections, no area, exits that miss the walkable area).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".wkt", ".geojson", ".json"):
        raise SourceError(path, f"unknown venue format {suffix!r}: expected .wkt or .geojson")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(path, f"cannot read venue file: {exc}") from None
    if suffix == ".wkt":
        return venue_from_wkt(text, source=str(path))
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(path, f"not JSON: {exc.msg} at line {exc.lineno}") from None
    return venue_from_geojson(document, source=str(path))


def venue_from_wkt(text: str, source: str = "<wkt>") -> Venue:
    """A venue from WKT: ``GEOMETRYCOLLECTION(walkable, exits, spawns)`` or a bare polygon.

    A bare polygon has no exits; it is only accepted by callers that add exits themselves,
    so here it raises.

    Raises
    ------
    SourceError
        Unparsable WKT, wrong structure or invalid geometry.
    """
    try:
        geometry = shapely.from_wkt(text.strip())
    except shapely.errors.GEOSException as exc:
        raise SourceError(source, f"not valid WKT: {exc}") from None
    if geometry is None or geometry.is_empty:
        raise SourceError(source, "empty geometry")
    if geometry.geom_type != "GeometryCollection":
        raise SourceError(
            source,
            f"expected GEOMETRYCOLLECTION(walkable area, exits, spawn areas), got "
            f"{geometry.geom_type}: a bare polygon has no exits",
        )
    members = list(geometry.geoms)
    if len(members) < 2:
        raise SourceError(
            source, f"the collection has {len(members)} member(s); needs walkable area and exits"
        )
    walkable = _union(_polygons(members[0], source, "walkable area"))
    exits = _polygons(members[1], source, "exits")
    spawns = _polygons(members[2], source, "spawn areas") if len(members) > 2 else []
    return _checked(walkable, exits, spawns, {}, source)


def venue_from_geojson(document: Any, source: str = "<geojson>") -> Venue:
    """A venue from a GeoJSON FeatureCollection with a ``role`` property per feature.

    Raises
    ------
    SourceError
        Not a FeatureCollection, a feature without a known role or with bad geometry.
    """
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise SourceError(source, "expected a GeoJSON FeatureCollection")
    parts: dict[str, list[tuple[str, BaseGeometry]]] = {role: [] for role in ROLES}
    for index, feature in enumerate(document.get("features") or []):
        fid = str(feature.get("id", index)) if isinstance(feature, dict) else str(index)
        if not isinstance(feature, dict):
            raise SourceError(source, "feature is not an object", fid)
        props = feature.get("properties") or {}
        role = props.get("role")
        if role not in ROLES:
            raise SourceError(source, f"role {role!r} is not one of {', '.join(ROLES)}", fid)
        try:
            geometry = shapely.from_geojson(json.dumps(feature.get("geometry")))
        except shapely.errors.GEOSException as exc:
            raise SourceError(source, f"bad geometry: {exc}", fid) from None
        for polygon in _polygons(geometry, source, role, fid):
            parts[role].append((str(props.get("name", fid)), polygon))
    if not parts["walkable"]:
        raise SourceError(source, "no feature with role 'walkable'")
    walkable = _union([g for _, g in parts["walkable"]])
    if parts["obstacle"]:
        walkable = walkable.difference(_union([g for _, g in parts["obstacle"]]))
    zones = {name: g for name, g in parts["zone"]}
    exits = [g for _, g in parts["exit"]]
    spawns = [g for _, g in parts["spawn"]]
    return _checked(walkable, exits, spawns, zones, source)


def _polygons(
    geometry: BaseGeometry, source: str, what: str, fid: str | None = None
) -> list[BaseGeometry]:
    """The polygons in a polygon, multipolygon or (nested) collection."""
    kind = geometry.geom_type
    if kind == "Polygon":
        return [] if geometry.is_empty else [geometry]
    if kind in ("MultiPolygon", "GeometryCollection"):
        out: list[BaseGeometry] = []
        for member in geometry.geoms:
            out.extend(_polygons(member, source, what, fid))
        return out
    raise SourceError(source, f"{what}: expected polygons, got {kind}", fid)


def _union(polygons: list[BaseGeometry]) -> BaseGeometry:
    return shapely.union_all(polygons) if len(polygons) > 1 else polygons[0]


def _checked(
    walkable: BaseGeometry,
    exits: list[BaseGeometry],
    spawns: list[BaseGeometry],
    zones: dict[str, BaseGeometry],
    source: str,
) -> Venue:
    if not walkable.is_valid:
        raise SourceError(source, f"invalid walkable area: {shapely.is_valid_reason(walkable)}")
    if walkable.is_empty or walkable.area <= 0:
        raise SourceError(source, "the walkable area is empty")
    if not exits:
        raise SourceError(source, "the venue has no exits")
    for index, exit_area in enumerate(exits):
        if not exit_area.is_valid:
            reason = shapely.is_valid_reason(exit_area)
            raise SourceError(source, f"invalid exit polygon: {reason}", f"exit {index}")
        if not exit_area.intersects(walkable):
            raise SourceError(source, "exit does not touch the walkable area", f"exit {index}")
    for index, spawn in enumerate(spawns):
        if not spawn.is_valid or spawn.intersection(walkable).area <= 0:
            raise SourceError(
                source, "spawn area is invalid or outside the walkable area", f"spawn {index}"
            )
    return Venue(walkable=walkable, exits=exits, spawns=spawns, zones=zones, source=source)
