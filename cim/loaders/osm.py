"""OpenStreetMap streets (``.osm`` XML, ``.osm.pbf``) as road objects of the CIM.

Every way tagged ``highway=*`` of a road, street or walkway class becomes one ``Road``
object (unit class 04): its centre line buffered to the carriageway width with flat ends
and extruded as a thin slab (``SURFACE_M``), so that roads are pickable features of the
tiles and can be coloured by a value (a drill's congestion grade, a flood's depth). The
width is the ``width`` tag, else lanes x lane width, else a default by class (below).
Tags are kept as attributes; ``osm_nodes`` keeps the way's node ids, so a network can be
rebuilt from the CIM, and ``source_id`` is ``w<way id>`` (the traffic model's link codes
``osm:w<way id>/<segment><direction>`` name the same way).

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
}


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
    if lanes is not None and tags.get("highway") not in ("footway", "path", "steps"):
        return lanes * LANE_M
    return CLASS_WIDTHS.get(tags.get("highway", ""), (1, 4.0))[1]


#: One OSM way: id, tags, node ids, longitudes, latitudes (nodes without a location dropped).
Way = tuple[int, dict[str, str], list[int], list[float], list[float]]


def read_ways(path: Path, highways: set[str], skip_access: bool = False) -> list[Way]:
    """The ways of an OSM file tagged ``highway`` = one of ``highways`` (not areas; with
    ``skip_access``, not ``access=no|private`` either), with at least two located nodes.

    Raises
    ------
    SourceError
        If the file is missing or not readable as OSM.
    """
    import osmium

    if not path.is_file():
        raise SourceError(path, "no such file")
    ways: list[Way] = []
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
            refs, lons, lats = [], [], []
            for node in obj.nodes:
                if node.location.valid():
                    refs.append(node.ref)
                    lons.append(node.lon)
                    lats.append(node.lat)
            if len(refs) >= 2:
                ways.append((obj.id, tags, refs, lons, lats))
    except RuntimeError as exc:
        raise SourceError(path, f"not a readable OSM file ({exc})") from None
    return ways


def load_osm(path: str | Path) -> ParsedSource:
    """Parse the streets of an OSM file.

    Returns
    -------
    ParsedSource
        One ``Road`` per street way, in file order, in the UTM zone of the data.

    Raises
    ------
    SourceError
        If the file cannot be read as OSM, or holds no street.
    """
    path = Path(path)
    ways = read_ways(path, set(CLASS_WIDTHS))
    if not ways:
        raise SourceError(path, f"no streets (highway={', '.join(sorted(CLASS_WIDTHS))})")

    wgs84 = pyproj.CRS.from_epsg(4326)
    all_lon = np.concatenate([np.asarray(w[3]) for w in ways])
    all_lat = np.concatenate([np.asarray(w[4]) for w in ways])
    utm = site_crs_for(wgs84, (float(all_lon.mean()), float(all_lat.mean())))
    sizes = np.array([len(w[2]) for w in ways])
    lonlat = np.column_stack([all_lon, all_lat, np.zeros(len(all_lon))])
    xy = transform_points(lonlat, wgs84, utm)[:, :2]
    lines = shapely.linestrings(xy, indices=np.repeat(np.arange(len(ways)), sizes))
    widths = np.array([road_width_m(w[1]) for w in ways])
    ribbons = shapely.buffer(lines, widths / 2, cap_style="flat", join_style="round")
    ribbons = shapely.make_valid(ribbons)

    objects: list[SourceObject] = []
    rings = _Rings()
    for (way_id, tags, refs, _, _), ribbon, width in zip(ways, ribbons, widths, strict=True):
        polygons = _polygons(ribbon)
        if not polygons:
            continue
        sid = f"w{way_id}"
        attributes: dict[str, Any] = {
            **tags,
            "osm_id": way_id,
            "osm_nodes": refs,
            "width_m": round(float(width), 2),
            "lod": "1",
        }
        name = tags.get("name") or tags.get("ref") or f"{tags['highway']} {sid}"
        objects.append(SourceObject(sid, "Road", name, None, attributes))
        _add_polygons(path, sid, polygons, rings)
    geometry, footprints = _extrude(rings, np.full(len(objects), SURFACE_M), 0.0)
    return ParsedSource(path, "osm", utm.to_string(), objects, geometry, list(footprints))


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
