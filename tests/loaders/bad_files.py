"""Small hostile mutations of the shipped sample files, written where a test asks.

Each function takes the assets folder and a directory and returns the path of one bad file,
named for what is wrong with it; the tests of refusals and the fuzz tests share them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

DUPLEX = "ifc/Duplex_A_20110907.ifc"
DENHAAG = "denhaag_01/denhaag_01_lod2.city.json"
HOUSES = "merewether/merewether_houses_epsg32756.geojson"
BELLINGE = "swmm/bellinge_small.inp"
OAKLAND = "crowd/west_oakland.osm"


def _json(assets: Path, name: str) -> Any:
    return json.loads((assets / name).read_text())


def _write_json(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path


# -- IFC ----------------------------------------------------------------------------------


def ifc_half(assets: Path, out: Path) -> Path:
    """The Duplex cut at half its length."""
    raw = (assets / DUPLEX).read_bytes()
    path = out / "duplex_half.ifc"
    path.write_bytes(raw[: len(raw) // 2])
    return path


def ifc_broken_reference(assets: Path, out: Path) -> tuple[Path, str]:
    """A wall whose placement is ``#9999999``, an instance the file does not hold; with the
    wall's GlobalId."""
    text = (assets / DUPLEX).read_text()
    wall = re.search(
        r"^#\d+=IFCWALLSTANDARDCASE\('([^']*)',#\d+,'[^']*',\$,'[^']*',(#\d+)", text, re.M
    )
    assert wall is not None
    start, end = wall.span(2)
    path = out / "duplex_ref.ifc"
    path.write_text(text[:start] + "#9999999" + text[end:])
    return path, wall.group(1)


def ifc_string_point(assets: Path, out: Path) -> Path:
    """An ``IfcCartesianPoint`` (``#44``) with a string for its x."""
    text = (assets / DUPLEX).read_text()
    bad = text.replace(
        "#44=IFCCARTESIANPOINT((0.,0.,-1.25));", "#44=IFCCARTESIANPOINT(('abc',0.,-1.25));"
    )
    assert bad != text
    path = out / "duplex_string_point.ifc"
    path.write_text(bad)
    return path


# -- CityJSON -----------------------------------------------------------------------------


def cityjson_zero_scale(assets: Path, out: Path) -> Path:
    document = _json(assets, DENHAAG)
    document["transform"]["scale"] = [0, 0, 0]
    return _write_json(out / "denhaag_zero_scale.city.json", document)


def cityjson_far_vertex(assets: Path, out: Path) -> Path:
    """Vertex 0 at 1e305 m (1e308 in the file's integer space, scale 0.001)."""
    document = _json(assets, DENHAAG)
    document["vertices"][0] = [1e308, 1e308, 0]
    return _write_json(out / "denhaag_far_vertex.city.json", document)


def cityjson_dangling_parent(assets: Path, out: Path) -> tuple[Path, str]:
    """A BuildingPart whose parent is not in the file; with the part's id."""
    document = _json(assets, DENHAAG)
    part = next(k for k, v in document["CityObjects"].items() if v.get("parents"))
    document["CityObjects"][part]["parents"] = ["no-such-building"]
    return _write_json(out / "denhaag_dangling_parent.city.json", document), part


# -- GeoJSON ------------------------------------------------------------------------------


def _houses(assets: Path) -> Any:
    return _json(assets, HOUSES)


def geojson_bowtie(assets: Path, out: Path) -> Path:
    """house003's footprint replaced by a self-intersecting bow tie."""
    document = _houses(assets)
    feature = document["features"][3]
    (x, y), *_ = feature["geometry"]["coordinates"][0]
    feature["geometry"]["coordinates"] = [
        [[x, y], [x + 10, y + 10], [x + 10, y], [x, y + 10], [x, y]]
    ]
    return _write_json(out / "houses_bowtie.geojson", document)


def geojson_huge_height(assets: Path, out: Path) -> Path:
    """house004 1e308 m high."""
    document = _houses(assets)
    document["features"][4]["properties"]["height"] = 1e308
    return _write_json(out / "houses_huge_height.geojson", document)


def geojson_null_geometry(assets: Path, out: Path) -> Path:
    """house005 with a null geometry."""
    document = _houses(assets)
    document["features"][5]["geometry"] = None
    return _write_json(out / "houses_null_geometry.geojson", document)


def geojson_far_footprint(assets: Path, out: Path) -> Path:
    """house006 moved to (0, 0) of the projected CRS: 6,000 km from the others."""
    document = _houses(assets)
    ring = document["features"][6]["geometry"]["coordinates"][0]
    x0, y0 = ring[0]
    document["features"][6]["geometry"]["coordinates"] = [[[x - x0, y - y0] for x, y in ring]]
    return _write_json(out / "houses_far_footprint.geojson", document)


# -- SWMM ---------------------------------------------------------------------------------


def swmm_negative_section(assets: Path, out: Path) -> tuple[Path, str]:
    """The first conduit's cross-section -0.35 high; with the conduit's name."""
    lines = (assets / BELLINGE).read_text().splitlines()
    start = lines.index("[XSECTIONS]")
    row = next(i for i in range(start + 1, len(lines)) if lines[i] and not lines[i].startswith(";"))
    name = lines[row].split()[0]
    lines[row] = lines[row].replace(" 0.35 ", " -0.35 ", 1)
    assert "-0.35" in lines[row]
    path = out / "bellinge_negative_section.inp"
    path.write_text("\n".join(lines) + "\n")
    return path, name


# -- OSM ----------------------------------------------------------------------------------


def _oakland(assets: Path) -> str:
    return (assets / OAKLAND).read_text()


def osm_missing_node(assets: Path, out: Path) -> tuple[Path, str]:
    """The middle node of way 6329561 replaced by a node the file does not hold."""
    text = _oakland(assets)
    bad = text.replace('<nd ref="2293870067"/>', '<nd ref="999999999"/>', 1)
    assert bad != text
    path = out / "oakland_missing_node.osm"
    path.write_text(bad)
    return path, "w6329561"


def osm_way_of_missing_nodes(assets: Path, out: Path) -> Path:
    """Way 6329561 made only of nodes the file does not hold."""
    text = _oakland(assets)
    start = text.index('<way id="6329561"')
    end = text.index("</way>", start)
    way = re.sub(r'<nd ref="(\d+)"/>', r'<nd ref="9\g<1>"/>', text[start:end])
    path = out / "oakland_way_of_missing_nodes.osm"
    path.write_text(text[:start] + way + text[end:])
    return path


def osm_bad_latitude(assets: Path, out: Path) -> Path:
    """The first node at ``lat="abc"``."""
    text = _oakland(assets)
    bad = re.sub(r'lat="[^"]*"', 'lat="abc"', text, count=1)
    path = out / "oakland_bad_latitude.osm"
    path.write_text(bad)
    return path
