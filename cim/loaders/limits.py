"""Plausibility bounds every parsed file must keep, whatever its format.

A loader reads what a file says; these checks refuse what no city can be: coordinates beyond
:data:`MAX_COORDINATE` (in any CRS unit: metres, feet or degrees) or not finite, heights
beyond :data:`MAX_HEIGHT_M`, raster cells of no size. They run on the parsed result, before
the importer re-projects, places or allocates anything (:func:`check_parsed`); the site's
extent is checked by the importer once every object is in the site CRS
(:func:`check_extent`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cim.errors import SourceError
from cim.loaders.base import ParsedSource

#: Largest absolute coordinate of any vertex or point, CRS units (the Earth is 4e7 m round;
#: no projected CRS needs 1e8, no geographic one more than 360)
MAX_COORDINATE = 1e8
#: Largest extrusion or object height, metres (the tallest building is 828 m)
MAX_HEIGHT_M = 2000.0
#: Largest extent of a site, metres in its CRS: the site grid of 100 m cells then has at most
#: 1e6 cells. A city district is a few km across; an object far outside it is an error.
MAX_SITE_EXTENT_M = 100_000.0
#: Most grid cells one import may lay out: those of a 100 km square at the default 100 m
#: cells (a 1 m ``--cell`` over a few km would otherwise make millions of cell objects)
MAX_GRID_CELLS = 1_010_025


def check_parsed(parsed: ParsedSource) -> None:
    """Refuse a parsed file holding coordinates no city can have.

    Raises
    ------
    SourceError
        If a vertex, point or raster corner is not finite or beyond
        :data:`MAX_COORDINATE`, or a raster cell has no positive finite size; names the
        file and the first offending object.
    """
    columns = parsed.geometry
    vertices = columns.vertices
    if len(vertices):
        bad = ~plausible_rows(vertices)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            owner = int(np.searchsorted(columns.vertex_offsets, first, side="right") - 1)
            _refuse(parsed, owner, "vertex", vertices[first])
    if parsed.points is not None and len(parsed.points):
        rows = parsed.points
        located = ~np.isnan(rows).all(axis=1)
        bad = located & ~plausible_rows(rows)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            _refuse(parsed, first, "point", rows[first])
    for source_id, grid in parsed.rasters.items():
        cells = (grid.cell_x, grid.cell_y)
        if not all(math.isfinite(c) and c > 0 for c in cells):
            raise SourceError(parsed.path, f"raster cells of size {cells} (must be > 0)", source_id)
        corners = np.array([grid.bounds()], dtype=np.float64)
        if not plausible_rows(corners).all():
            raise SourceError(
                parsed.path,
                f"raster extent {tuple(corners[0].tolist())} is beyond ±{MAX_COORDINATE:g}",
                source_id,
            )
        heights = grid.heights[~np.isnan(grid.heights)]  # NaN is no data; infinity is not
        if len(heights) and not float(np.abs(heights).max()) <= MAX_COORDINATE:
            message = f"raster heights infinite or beyond ±{MAX_COORDINATE:g}"
            raise SourceError(parsed.path, message, source_id)


def check_extent(
    parsed: ParsedSource,
    boxes: NDArray[np.float64],
    site_box: tuple[float, ...] | None,
    limit_m: float = MAX_SITE_EXTENT_M,
    cell_m: float = 100.0,
) -> None:
    """Refuse an import that would make its site wider than ``limit_m``, or lay out more
    than :data:`MAX_GRID_CELLS` grid cells of ``cell_m``.

    Parameters
    ----------
    parsed : the file, for its path and object ids
    boxes : (k, 6) float, site CRS metres; NaN rows for objects without a location
    site_box : the site's extent so far (minx, miny, minz, maxx, maxy, maxz), or ``None``
    limit_m : the widest site, metres
    cell_m : the site's grid cell edge, metres

    Raises
    ------
    SourceError
        If an object's box is partly non-finite (a re-projection that failed), the extent
        of the site with this file would exceed ``limit_m`` in x or y (naming the object
        farthest from the others), or the cells covering this file's extent would be more
        than :data:`MAX_GRID_CELLS`.
    """
    partial = ~np.isfinite(boxes).all(axis=1) & ~np.isnan(boxes).all(axis=1)
    if partial.any():
        first = int(np.flatnonzero(partial)[0])
        raise SourceError(
            parsed.path,
            "coordinates not finite in the site CRS (outside the CRS's area of use?)",
            parsed.objects[first].source_id,
        )
    located = np.flatnonzero(np.isfinite(boxes).all(axis=1))
    if len(located) == 0:
        return
    own_lo = boxes[located, :2].min(axis=0)
    own_hi = boxes[located, 3:5].max(axis=0)
    lo, hi = own_lo, own_hi
    if site_box is not None:
        lo = np.minimum(lo, site_box[:2])
        hi = np.maximum(hi, site_box[3:5])
    width = float((hi - lo).max())
    if width <= limit_m:
        # a wider limit, asked for, brings the cells of its square at 100 m cells
        budget = max(MAX_GRID_CELLS, int((limit_m / 100.0 + 1) ** 2))
        _check_cells(parsed, own_hi - own_lo, cell_m, budget)
        return
    centres = (boxes[located, :2] + boxes[located, 3:5]) / 2
    if site_box is not None:
        middle = np.array([(site_box[0] + site_box[3]) / 2, (site_box[1] + site_box[4]) / 2])
    else:
        middle = np.median(centres, axis=0)
    distance = np.hypot(*(centres - middle).T)
    far = int(np.argmax(distance))
    raise SourceError(
        parsed.path,
        f"the site would be {width / 1000:,.0f} km across (at most {limit_m / 1000:,.0f} km): "
        f"this object lies {float(distance[far]) / 1000:,.0f} km from the "
        f"{'site' if site_box is not None else 'others'} (wrong coordinates or CRS?)",
        parsed.objects[int(located[far])].source_id,
    )


def _check_cells(
    parsed: ParsedSource, size: NDArray[np.float64], cell_m: float, budget: int
) -> None:
    """Refuse a file whose extent ``size`` (x, y metres) takes more than ``budget`` cells."""
    cells = float(np.prod(np.floor(size / cell_m) + 2))  # the importer's cover, at most
    if cells > budget:
        raise SourceError(
            parsed.path,
            f"{cell_m:g} m grid cells over its {size[0]:,.0f} x {size[1]:,.0f} m would be "
            f"{cells:,.0f} cells (at most {budget:,}): a site takes a larger --cell",
        )


def plausible_rows(xyz: NDArray[np.float64]) -> NDArray[np.bool_]:
    """``(k,) bool``: rows whose every value is finite and within ±:data:`MAX_COORDINATE`."""
    with np.errstate(invalid="ignore"):
        ok = np.asarray((np.abs(xyz) <= MAX_COORDINATE).all(axis=1), dtype=bool)
    return ok


def implausible(what: str, values: Any) -> str:
    """The refusal of one vertex or point: ``vertex (x, y, z) is not finite or beyond ...``."""
    shown = ", ".join(f"{float(v):g}" for v in values)
    return f"{what} ({shown}) is not finite or beyond ±{MAX_COORDINATE:g} CRS units"


def _refuse(parsed: ParsedSource, index: int, what: str, values: Any) -> None:
    raise SourceError(parsed.path, implausible(what, values), parsed.objects[index].source_id)
