"""Strict parsing of query parameters: coordinates, boxes and WKT polygons.

Each parser names its parameter in the :class:`~api.errors.QueryError` it raises, so a 400
says which parameter was wrong.
"""

from __future__ import annotations

import math
import re

import shapely
from shapely.errors import ShapelyError

from api.errors import QueryError

#: The longest WKT polygon a query may send, characters.
MAX_WKT_CHARS = 10_000

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def parse_numbers(parameter: str, text: str, count: int) -> tuple[float, ...]:
    """``count`` finite comma-separated decimal numbers.

    Raises
    ------
    QueryError
        If there are not exactly ``count`` numbers, or one is not a finite decimal.
    """
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != count:
        raise QueryError(parameter, f"expected {count} comma-separated numbers, got {len(parts)}")
    values = []
    for part in parts:
        if not _NUMBER.fullmatch(part):
            raise QueryError(parameter, f"{part[:40]!r} is not a number")
        value = float(part)
        if not math.isfinite(value):
            raise QueryError(parameter, f"{part[:40]!r} is not a finite number")
        values.append(value)
    return tuple(values)


def parse_point(parameter: str, text: str) -> tuple[float, float]:
    """``x,y`` in metres of the site CRS.

    Raises
    ------
    QueryError
        If the text is not two finite numbers.
    """
    x, y = parse_numbers(parameter, text, 2)
    return x, y


def parse_bbox(parameter: str, text: str) -> tuple[float, float, float, float]:
    """``minx,miny,maxx,maxy`` in metres of the site CRS.

    Raises
    ------
    QueryError
        If the text is not four finite numbers with ``min <= max``.
    """
    minx, miny, maxx, maxy = parse_numbers(parameter, text, 4)
    if minx > maxx or miny > maxy:
        raise QueryError(parameter, "must be minx,miny,maxx,maxy with min <= max")
    return minx, miny, maxx, maxy


def parse_polygon(parameter: str, text: str) -> shapely.Geometry:
    """A WKT ``POLYGON`` or ``MULTIPOLYGON`` of at most :data:`MAX_WKT_CHARS` characters.

    Raises
    ------
    QueryError
        If the text is too long, not WKT, not a polygon, empty, invalid or not finite.
    """
    if len(text) > MAX_WKT_CHARS:
        raise QueryError(parameter, f"WKT longer than {MAX_WKT_CHARS} characters")
    try:
        geometry = shapely.from_wkt(text)
    except (ShapelyError, ValueError, TypeError):
        raise QueryError(parameter, "is not valid WKT") from None
    if geometry is None or geometry.geom_type not in ("Polygon", "MultiPolygon"):
        raise QueryError(parameter, "must be a WKT POLYGON or MULTIPOLYGON")
    if geometry.is_empty:
        raise QueryError(parameter, "polygon is empty")
    if not math.isfinite(sum(geometry.bounds)):
        raise QueryError(parameter, "polygon coordinates must be finite")
    if not geometry.is_valid:
        raise QueryError(parameter, f"polygon is invalid ({shapely.is_valid_reason(geometry)})")
    return geometry
