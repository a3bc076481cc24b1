"""What every loader returns: objects, their geometry and footprints, in source coordinates."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cim.geometry.columns import MeshColumns
from cim.terrain import TerrainGrid


@dataclass
class SourceObject:
    """One object as the source file describes it.

    Attributes
    ----------
    source_id : the object's id in the file (stable across re-imports of the file)
    kind : CityJSON type name (``Building``, ``TINRelief``...), or a project kind
        (``Footprint``, ``DEM``, ``Component``)
    name : a human name; the source id when the file has none
    parent_id : source id of the parent object in the same file, if any
    attributes : the file's attributes, JSON-serialisable
    """

    source_id: str
    kind: str
    name: str
    parent_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParsedSource:
    """A parsed file: ``objects[i]`` owns geometry block ``i`` and ``footprints[i]``.

    Coordinates are in the file's CRS (``crs``, ``None`` when the file declares none).
    ``footprints`` holds shapely geometries (Polygon, MultiPolygon or Point) or ``None``
    where the importer should derive one from the mesh. ``points`` holds ``(k, 3)``
    locations for objects that are points (street components) and NaN elsewhere.
    ``warnings`` are one-line notes on what was read but not as the file says (a way cut
    where its nodes are missing), for the importer to report.
    """

    path: Path
    format: str
    crs: str | None
    objects: list[SourceObject]
    geometry: MeshColumns
    footprints: list[Any] | None = None
    points: NDArray[np.float64] | None = None
    rasters: dict[str, TerrainGrid] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.geometry) != len(self.objects):
            raise ValueError(
                f"geometry has {len(self.geometry)} blocks for {len(self.objects)} objects"
            )
