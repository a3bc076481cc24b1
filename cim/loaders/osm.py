"""OpenStreetMap streets and walkways (``.osm`` XML, ``.osm.pbf``) as objects of the CIM.

Every way tagged ``highway=*`` of a road or street class becomes one ``Road`` object, and of
a walkway class (:data:`WALKWAY_CLASSES`) one ``Walkway`` (both unit class 04): its centre
line buffered to the carriageway width with flat ends and extruded as a thin slab
(``SURFACE_M``), so that roads are pickable features of the tiles and can be coloured by a
value (a drill's congestion grade, a flood's depth). The width is the ``width`` tag, else
lanes x lane width, else a default by class (below).
Tags are kept as attributes; ``osm_nodes`` keeps the way's node ids, so a network can be
rebuilt from the CIM, ``osm_lonlat`` their WGS84 positions and ``length_m`` the way's
length; ``source_id`` is ``w<way id>`` (the traffic model's link codes
``osm:w<way id>/<segment><direction>`` name the same way). Pedestrian areas (squares,
plazas: a walkway class with ``area=yes`` on a closed way, or a multipolygon relation) become
``PedestrianArea`` objects (unit class 06, CityGML's TransportSquare) with ``area_m2``,
``width_m`` (the ``width`` tag, else the short side of their minimum rotated rectangle), their
ring nodes in ``osm_nodes`` (outer ring first) and source id ``w<way>`` or ``r<relation>``.
:mod:`cim.networks.walkways` rebuilds the walk graph from these objects.

Coordinates are projected from WGS84 to the data's UTM zone by the loader itself, since
widths are metres; the importer then takes them into the site's CRS. Files are read with
pyosmium (the OSM project's own C++ reader), which the traffic model uses too.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import shapely

from cim.errors import SourceError
from cim.frames import site_crs_for, transform_points
from cim.loaders.base import ParsedSource, SourceObject
from cim.loaders.geojson import _add_polygons, _extrude, _Rings

#: Road slab thickness, m (a kerb's height: roads stand just proud of the terrain)
SURFACE_M = 0.15

#: Lane width, m: 3.5 m for motor-vehicle lanes of urban roads (CJJ 37-2012, table 5.3.2)
LANE_M = 3.5

#: highway=* -> (default total lanes, default width m when lanes are not tagged)
CLASS_WIDTHS: dict[str, tuple[int, float]] = {
    "motorway": (4, 15.0),
    "motorway_link": (1, 5.0),
    "trunk": (4, 14.0),
    "trunk_link": (1, 5.0),
    "primary": (4, 14.0),
    "primary_link": (1, 5.0),
    "secondary": (2, 10.0),
    "secondary_link": (1, 5.0),
    "tertiary": (2, 8.0),
    "tertiary_link": (1, 4.5),
    "unclassified": (2, 7.0),
    "residential": (2, 7.0),
    "living_street": (1, 5.0),
    "service": (1, 4.0),
    "road": (2, 7.0),
    "pedestrian": (0, 6.0),
    "footway": (0, 2.0),
    "path": (0, 1.5),
    "cycleway": (0, 2.0),
    "steps": (0, 2.0),
    "corridor": (0, 2.0),
}

#: highway=* classes of ways people walk on rather than drive: ``Walkway`` objects
WALKWAY_CLASSES = frozenset({"footway", "pedestrian", "path", "steps", "corridor"})


def _positive(text: str | None) -> float | None:
    if not text:
        return None
    try:
        value = float(text.split(";")[0].strip().removesuffix("m").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def road_width_m(tags: dict[str, str]) -> float:
    """Carriageway width of a way from its tags: ``width``, else lanes x 3.5 m, else the
    class default."""
    width = _positive(tags.get("width"))
    if width is not None:
        return width
    lanes = _positive(tags.get("lanes"))
    if lanes is not None and tags.get("highway") not in WALKWAY_CLASSES:
        return lanes * LANE_M
    return CLASS_WIDTHS.get(tags.get("highway", ""), (1, 4.0))[1]


#: One OSM way: id, tags, node ids, longitudes, latitudes (nodes without a location dropped).
Way = tuple[int, dict[str, str], list[int], list[float], list[float]]


def read_ways(path: Path, highways: set[str], skip_access: bool = False) -> list[Way]:
    """The ways of an OSM file tagged ``highway`` = one of ``highways`` (not areas; with
    ``skip_access``, not ``access=no|private`` either), with at least two located nodes;
    nodes the file does not hold are left out.

    Raises
    ------
    SourceError
        If the file is missing or not readable as OSM.
    """
    return _read_ways(path, highways, skip_access, longest_run=False)[0]


def read_street_ways(path: Path, highways: set[str]) -> tuple[list[Way], dict[int, list[int]]]:
    """As :func:`read_ways`, but a way that reaches nodes the file does not hold (cut at
    the edge of an extract) keeps only its longest run of consecutive located nodes: it is
    never drawn straight across a node whose position is unknown. Also returns the missing
    node ids of each such way.

    Raises
    ------
    SourceError
        If the file is missing or not readable as OSM, or a way has no node the file
        holds (no extract makes such a way: the file is broken).
    """
    return _read_ways(path, highways, False, longest_run=True)


def _read_ways(
    path: Path, highways: set[str], skip_access: bool, longest_run: bool
) -> tuple[list[Way], dict[int, list[int]]]:
    import osmium

    if not path.is_file():
        raise SourceError(path, "no such file")
    ways: list[Way] = []
    missing: dict[int, list[int]] = {}
    try:
        processor = (
            osmium.FileProcessor(str(path))
            .with_locations()
            .with_filter(osmium.filter.KeyFilter("highway"))
        )
        for obj in processor:
            if not isinstance(obj, osmium.osm.Way):
                continue
            tags = dict(obj.tags)
            if tags.get("highway") not in highways or tags.get("area") == "yes":
                continue
            if skip_access and tags.get("access") in ("no", "private"):
                continue
            nodes = list(obj.nodes)
            located = [node.location.valid() for node in nodes]
            if not all(located):
                absent = [node.ref for node, ok in zip(nodes, located, strict=True) if not ok]
                missing[obj.id] = absent
                if longest_run:
                    if not any(located):
                        shown = ", ".join(map(str, absent[:5])) + (
                            ", ..." if len(absent) > 5 else ""
                        )
                        raise SourceError(
                            path, f"none of the way's nodes ({shown}) is in the file", f"w{obj.id}"
                        )
                    start, stop = _longest_run(located)
                    nodes = nodes[start:stop]
                else:
                    nodes = [node for node, ok in zip(nodes, located, strict=True) if ok]
            if len(nodes) >= 2:
                refs = [node.ref for node in nodes]
                lons = [node.lon for node in nodes]
                lats = [node.lat for node in nodes]
                ways.append((obj.id, tags, refs, lons, lats))
    except SourceError:
        raise
    except Exception as exc:  # pyosmium raises RuntimeError, InvalidLocationError, ...
        raise SourceError(path, f"not a readable OSM file ({exc})") from None
    return ways, missing


def _longest_run(flags: list[bool]) -> tuple[int, int]:
    """``start, stop`` of the longest run of true flags (the first of equal runs)."""
    best, start = (0, 0), None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    return best


#: A pedestrian area: source id, tags, polygons as rings of (node id, lon, lat), outer first.
Area = tuple[str, dict[str, str], list[list[list[tuple[int, float, float]]]]]


def read_areas(path: Path, highways: frozenset[str]) -> list[Area]:
    """The areas of an OSM file tagged ``highway`` = one of ``highways``: closed ways with
    ``area=yes`` and multipolygon relations, as pyosmium's area assembler builds them.

    Raises
    ------
    SourceError
        If the file is not readable as OSM.
    """
    import osmium

    areas: list[Area] = []
    try:
        processor = (
            osmium.FileProcessor(str(path))
            .with_areas()
            .with_filter(osmium.filter.KeyFilter("highway"))
        )
        for obj in processor:
            if not isinstance(obj, osmium.osm.Area):
                continue
            tags = dict(obj.tags)
            if tags.get("highway") not in highways:
                continue
            if obj.from_way() and tags.get("area") != "yes":
                continue  # a closed way without area=yes is a loop, read as a line
            polygons = []
            for outer in obj.outer_rings():
                rings = [outer, *obj.inner_rings(outer)]
                polygons.append([[(n.ref, n.lon, n.lat) for n in ring] for ring in rings])
            if polygons:
                sid = f"{'w' if obj.from_way() else 'r'}{obj.orig_id()}"
                areas.append((sid, tags, polygons))
    except Exception as exc:  # pyosmium raises RuntimeError, InvalidLocationError, ...
        raise SourceError(path, f"not a readable OSM file ({exc})") from None
    return areas


def load_osm(path: str | Path) -> ParsedSource:
    """Parse the streets of an OSM file.

    Returns
    -------
    ParsedSource
        One ``Road`` or ``Walkway`` per street way in file order, then one
        ``PedestrianArea`` per pedestrian area, in the UTM zone of the data.

    Raises
    ------
    SourceError
        If the file cannot be read as OSM, or holds no street.
    """
    path = Path(path)
    ways, missing = read_street_ways(path, set(CLASS_WIDTHS))
    areas = read_areas(path, WALKWAY_CLASSES)
    if not ways and not areas:
        raise SourceError(path, f"no streets (highway={', '.join(sorted(CLASS_WIDTHS))})")

    wgs84 = pyproj.CRS.from_epsg(4326)
    all_lon = np.concatenate([np.asarray(w[3]) for w in ways] + [_ring_column(areas, 1)])
    all_lat = np.concatenate([np.asarray(w[4]) for w in ways] + [_ring_column(areas, 2)])
    utm = site_crs_for(wgs84, (float(all_lon.mean()), float(all_lat.mean())))
    sizes = np.array([len(w[2]) for w in ways])
    lonlat = np.column_stack([all_lon, all_lat, np.zeros(len(all_lon))])
    xy_all = transform_points(lonlat, wgs84, utm)[:, :2]
    xy = xy_all[: int(sizes.sum())]
    lines = shapely.linestrings(xy, indices=np.repeat(np.arange(len(ways)), sizes))
    lengths = shapely.length(lines)
    widths = np.array([road_width_m(w[1]) for w in ways])
    ribbons = shapely.buffer(lines, widths / 2, cap_style="flat", join_style="round")
    ribbons = shapely.make_valid(ribbons)

    objects: list[SourceObject] = []
    rings = _Rings()
    rows = zip(ways, ribbons, widths, lengths, strict=True)
    for (way_id, tags, refs, lons, lats), ribbon, width, length in rows:
        polygons = _polygons(ribbon)
        if not polygons:
            continue
        sid = f"w{way_id}"
        attributes: dict[str, Any] = {
            **tags,
            "osm_id": way_id,
            "osm_nodes": refs,
            "osm_lonlat": _lonlat(lons, lats),
            "width_m": round(float(width), 2),
            "length_m": round(float(length), 3),
            "lod": "1",
        }
        if way_id in missing:
            attributes["osm_missing_nodes"] = missing[way_id]
        kind = "Walkway" if tags["highway"] in WALKWAY_CLASSES else "Road"
        if kind == "Walkway":
            attributes["area_m2"] = round(float(width * length), 2)
        name = tags.get("name") or tags.get("ref") or f"{tags['highway']} {sid}"
        objects.append(SourceObject(sid, kind, name, None, attributes))
        _add_polygons(path, sid, polygons, rings)
    start = int(sizes.sum())
    for sid, tags, area_rings in areas:
        shapes = []
        for polygon in area_rings:
            coords = []
            for ring in polygon:
                coords.append(xy_all[start : start + len(ring)])
                start += len(ring)
            shapes.append(shapely.Polygon(coords[0], coords[1:]))
        polygons = _polygons(shapely.make_valid(shapely.MultiPolygon(shapes)))
        if not polygons:
            continue
        nodes = [n for polygon in area_rings for ring in polygon for n in ring]
        outline = shapely.MultiPolygon([shapely.Polygon(p[0], p[1:]) for p in polygons])
        width = _positive(tags.get("width")) or _short_side(outline)
        attributes = {
            **tags,
            "osm_id": int(sid[1:]),
            "osm_nodes": [n[0] for n in nodes],
            "osm_lonlat": _lonlat([n[1] for n in nodes], [n[2] for n in nodes]),
            "osm_rings": [len(ring) for polygon in area_rings for ring in polygon],
            "area_m2": round(float(outline.area), 2),
            "width_m": round(float(width), 2),
            "lod": "1",
        }
        name = tags.get("name") or f"{tags['highway']} area {sid}"
        objects.append(SourceObject(sid, "PedestrianArea", name, None, attributes))
        _add_polygons(path, sid, polygons, rings)
    geometry, footprints = _extrude(rings, np.full(len(objects), SURFACE_M), 0.0)
    parsed = ParsedSource(path, "osm", utm.to_string(), objects, geometry, list(footprints))
    if missing:
        parsed.warnings.append(_missing_warning(missing, {w[0] for w in ways}))
    return parsed


def _missing_warning(missing: dict[int, list[int]], kept: set[int]) -> str:
    """One line on the ways that reach nodes the file does not hold."""
    shown = ", ".join(
        f"w{way} ({len(nodes)} node{'s' if len(nodes) > 1 else ''}"
        + (")" if way in kept else ", skipped: fewer than 2 nodes left)")
        for way, nodes in list(missing.items())[:5]
    )
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return (
        f"{len(missing)} street way(s) reach nodes the file does not hold (cut at an "
        f"extract's edge?): {shown}{more}; each keeps its longest run of present nodes, "
        "listed in osm_missing_nodes"
    )


def _short_side(shape: Any) -> float:
    """The short side of a shape's minimum rotated rectangle: a square's walkable width."""
    corners = np.asarray(shapely.minimum_rotated_rectangle(shape).exterior.coords)[:3]
    return float(np.linalg.norm(np.diff(corners, axis=0), axis=1).min())


def _ring_column(areas: list[Area], column: int) -> Any:
    """Longitudes (1) or latitudes (2) of every ring point of ``areas``, in order."""
    values = [n[column] for _, _, polygons in areas for p in polygons for r in p for n in r]
    return np.asarray(values, dtype=np.float64)


def _lonlat(lons: list[float], lats: list[float]) -> list[list[float]]:
    """WGS84 positions rounded to 1e-7 degrees (about a centimetre), as OSM stores them."""
    return [[round(a, 7), round(b, 7)] for a, b in zip(lons, lats, strict=True)]


def _polygons(shape: Any) -> list[list[list[tuple[float, float]]]]:
    """GeoJSON-style polygon coordinates of a (multi)polygon; nothing for degenerate shapes."""
    parts = getattr(shape, "geoms", [shape])
    out = []
    for part in parts:
        if part.geom_type != "Polygon" or part.is_empty or part.area <= 0:
            continue
        rings = [part.exterior, *part.interiors]
        out.append([list(r.coords) for r in rings if len(r.coords) >= 4])
    return out
