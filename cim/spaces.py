"""Floor areas of building spaces, measured two ways from the stored geometry.

A space's **net** area is its floor as drawn: the footprint of its solid, inside the wall
finishes — what people stand on, so the area a crowd density divides by. Building owners
and the GSA BIM Guide (Series 02, spatial program validation) measure a space **to the
centre line of its bounding walls** instead; IFC files exported for them carry that figure
as a quantity (the Duplex's ``GSA Space Areas.GSA BIM Area``). Both are computed here from
the CIM's own footprints, so comparing the second with the file's quantity checks that the
tessellated geometry kept the building's dimensions.

The walls bounding a space come from its ``IfcRelSpaceBoundary`` rows (attribute
``ifc_boundaries``, written by the IFC loader). Each contributes the strip of its own
footprint within half its thickness of the space: ``space ∪ ⋃ (space ⊕ t/2 ∩ wall)`` with
mitred corners, so wall corners are counted once, to the centre-line intersection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shapely import unary_union

from cim.errors import NotFoundError, TwinError
from cim.model import CimObject
from cim.store import Store

#: IFC classes whose boundaries are measured to their centre line.
_WALLS = ("IfcWall", "IfcWallStandardCase", "IfcCurtainWall")


@dataclass(frozen=True)
class SpaceArea:
    """Areas of one space in square metres.

    Attributes
    ----------
    code : the space's CIM code
    net_m2 : floor inside the wall finishes (the space solid's footprint)
    centreline_m2 : floor to the centre lines of its bounding walls
    walls : CIM codes of the bounding walls used
    """

    code: str
    net_m2: float
    centreline_m2: float
    walls: tuple[str, ...]


def wall_thickness(footprint: Any) -> float:
    """Thickness of a thin wall from its footprint: the short side of the rectangle with
    the footprint's area ``A`` and perimeter ``P`` (``t = (P - sqrt(P² - 16A)) / 4``)."""
    area = float(footprint.area)
    perimeter = float(footprint.length)
    disc = max(perimeter * perimeter - 16.0 * area, 0.0)
    return (perimeter - math.sqrt(disc)) / 4.0


def space_area(store: Store, site: str, code: str) -> SpaceArea:
    """Net and centre-line floor areas of the space ``code``.

    Raises
    ------
    NotFoundError
        If the site has no such object.
    TwinError
        If the object is not a space with a stored footprint.
    """
    space = store.get(site, code)
    if space.kind != "IfcSpace" or space.footprint is None or space.footprint.is_empty:
        raise TwinError(f"object {code!r} in site {site!r} is not an IFC space with a footprint")
    walls = _bounding_walls(store, site, space)
    pieces = [space.footprint]
    for wall in walls:
        half = wall_thickness(wall.footprint) / 2.0
        pieces.append(space.footprint.buffer(half, join_style="mitre").intersection(wall.footprint))
    return SpaceArea(
        code=code,
        net_m2=float(space.footprint.area),
        centreline_m2=float(unary_union(pieces).area),
        walls=tuple(w.code for w in walls),
    )


def _bounding_walls(store: Store, site: str, space: CimObject) -> list[CimObject]:
    rows = space.attributes.get("ifc_boundaries") or []
    gids = {row[0] for row in rows if isinstance(row, list) and row and row[0]}
    if not gids:
        return []
    codes = store.codes_of_source(site, space.source)
    walls = []
    for gid in sorted(gids):
        wall_code = codes.get(gid)
        if wall_code is None:
            continue
        try:
            wall = store.get(site, wall_code)
        except NotFoundError:
            continue
        if wall.kind in _WALLS and wall.footprint is not None and not wall.footprint.is_empty:
            walls.append(wall)
    return walls
