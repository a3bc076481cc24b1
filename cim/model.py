"""The objects of the CIM and the sites that hold them.

The containment tree runs district (county, 6 digits) -> street (9) -> community (12) ->
grid cell (15) -> unit (building, road, park...: 21) -> part (24); terrain hangs under the
district and street components (16 digits) under their grid cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Kinds the importer creates for the administrative and grid levels of the tree.
DISTRICT = "District"
STREET = "Street"
COMMUNITY = "Community"
GRID_CELL = "GridCell"
COMPONENT = "Component"
ADMIN_KINDS: frozenset[str] = frozenset({DISTRICT, STREET, COMMUNITY, GRID_CELL})


@dataclass
class CimObject:
    """One object of the CIM.

    Attributes
    ----------
    code : unique within its site, stable across re-imports of the same source
    kind : CityJSON type (``Building``...), ``GridCell``, ``Component``...
    name : human name
    parent : code of the containing object (``None`` for the district root)
    source : key of the source file it came from (``""`` for grid and admin objects)
    source_id : its id in that file
    attributes : JSON-serialisable attributes (source attributes, ``lod``...)
    bbox : ``(minx, miny, minz, maxx, maxy, maxz)`` metres in the site CRS, or ``None``
    footprint : shapely geometry in the site CRS, or ``None``
    chunk, index : where its mesh lives in the store's geometry chunks, or ``None``
    """

    code: str
    kind: str
    name: str
    parent: str | None
    source: str = ""
    source_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    bbox: tuple[float, float, float, float, float, float] | None = None
    footprint: Any = None
    chunk: int | None = None
    index: int | None = None

    def summary(self) -> dict[str, Any]:
        """The JSON shape of the object without its footprint geometry."""
        return {
            "code": self.code,
            "kind": self.kind,
            "name": self.name,
            "parent": self.parent,
            "source": self.source or None,
            "source_id": self.source_id,
            "bbox": list(self.bbox) if self.bbox is not None else None,
        }


@dataclass(frozen=True)
class SiteInfo:
    """A site: a district or city held in one projected CRS.

    Attributes
    ----------
    name : the site's name
    crs : ``"EPSG:N"`` of the projected CRS all geometry is stored in
    division : 12-digit county + street + first community code
    cell_m : grid cell edge, metres
    origin : south-west corner of grid cell (0, 0), metres
    enu_origin : local origin for scenes (glTF / 3D Tiles), metres in ``crs``
    bbox : extent of all objects, metres, or ``None`` while empty
    version : increases with every import
    """

    name: str
    crs: str
    division: str
    cell_m: float
    origin: tuple[float, float]
    enu_origin: tuple[float, float, float]
    bbox: tuple[float, float, float, float, float, float] | None
    version: int
