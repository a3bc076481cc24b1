"""The OSM ways of a site's streets, rebuilt from its ``Road`` objects.

The OSM loader (:mod:`cim.loaders.osm`) keeps, per way, its tags as attributes, its node ids
(``osm_nodes``), their WGS84 positions (``osm_lonlat``) and ``w<way id>`` as source id: all a
road network needs. :func:`ways_from_roads` gives them back as the loader's
:data:`~cim.loaders.osm.Way` tuples, filtered as :func:`~cim.loaders.osm.read_ways` filters a
file's ways, so that a network built from the CIM equals the one built from the file (the
traffic model builds both with one function, ``scenarios.traffic.osm.network_from_ways``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

from cim.model import CimObject

if TYPE_CHECKING:
    from cim.loaders.osm import Way

#: Attributes the loader and importer add to a way's tags (:mod:`cim.loaders.osm`,
#: :mod:`cim.importer`): not OSM tags.
NOT_TAGS = frozenset(
    {
        "osm_id",
        "osm_nodes",
        "osm_lonlat",
        "osm_rings",
        "osm_missing_nodes",
        "width_m",
        "length_m",
        "area_m2",
        "lod",
        "source_id",
        "ground_m",
        "component_class",
        "BGID",
    }
)


def way_id(obj: CimObject) -> int | None:
    """The OSM way id of an object imported from OSM (source id ``w<id>``), else None."""
    sid = obj.source_id or ""
    if not sid.startswith("w") or not sid[1:].isdigit():
        return None
    return int(sid[1:])


def way_tags(obj: CimObject) -> dict[str, str]:
    """The OSM tags of an imported way: its text attributes the loader did not add."""
    return {k: v for k, v in obj.attributes.items() if isinstance(v, str) and k not in NOT_TAGS}


def codes_by_way(objects: Iterable[CimObject]) -> dict[str, str]:
    """``"w<way id>" -> CIM code`` of the objects that came from OSM ways; of a way imported
    twice (two overlapping files), the lowest code, the object :func:`ways_from_roads` reads."""
    codes: dict[str, str] = {}
    for obj in sorted(objects, key=lambda o: o.code):
        wid = way_id(obj)
        if wid is not None:
            codes.setdefault(f"w{wid}", obj.code)
    return codes


def ways_from_roads(
    objects: Iterable[CimObject], highways: Collection[str], skip_access: bool = False
) -> list[Way]:
    """The OSM ways of ``objects`` tagged ``highway`` = one of ``highways``.

    As :func:`cim.loaders.osm.read_ways` reads a file: no areas (``area=yes``), with
    ``skip_access`` no ``access=no|private`` either, at least two nodes. Objects that did not
    come from an OSM way (no ``w<id>`` source id, no ``osm_nodes`` or ``osm_lonlat``) are
    left out; a way imported twice (two overlapping files) is read once, from its object of
    the lowest code.

    Parameters
    ----------
    objects : CIM objects, typically a site's ``Road`` objects
    highways : the ``highway=*`` classes to keep
    skip_access : leave out ways tagged ``access=no`` or ``access=private``

    Returns
    -------
    list of (way id, tags, node ids, longitudes, latitudes)
        Sorted by way id, the order of an OSM file, so the result does not depend on the
        order the store returns objects in; positions are WGS84 degrees.

    Raises
    ------
    ValueError
        If an object's ``osm_nodes`` and ``osm_lonlat`` differ in length.
    """
    found: dict[int, Way] = {}
    seen: set[int] = set()
    for obj in sorted(objects, key=lambda o: o.code):
        wid = way_id(obj)
        if wid is None or wid in seen:
            continue
        seen.add(wid)
        refs, positions = obj.attributes.get("osm_nodes"), obj.attributes.get("osm_lonlat")
        if not isinstance(refs, list) or not isinstance(positions, list):
            continue
        if len(refs) != len(positions):
            raise ValueError(f"{obj.code}: osm_nodes and osm_lonlat differ in length")
        tags = way_tags(obj)
        if tags.get("highway") not in highways or tags.get("area") == "yes":
            continue
        if skip_access and tags.get("access") in ("no", "private"):
            continue
        if len(refs) < 2:
            continue
        lons = [float(p[0]) for p in positions]
        lats = [float(p[1]) for p in positions]
        found[wid] = (wid, tags, [int(r) for r in refs], lons, lats)
    return [found[wid] for wid in sorted(found)]
