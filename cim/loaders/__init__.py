"""One loader module per source format, chosen by file name.

==============================  ==========================================
suffix                          loader
==============================  ==========================================
``.city.json``, ``.city.jsonl``  :func:`cim.loaders.cityjson.load_cityjson`
``.gltf``, ``.glb``, ``.obj``    :func:`cim.loaders.mesh.load_mesh`
``.geojson``                     :func:`cim.loaders.geojson.load_geojson`
``.osm``, ``.osm.pbf``           :func:`cim.loaders.osm.load_osm`
``.tif``, ``.tiff``              :func:`cim.loaders.dem.load_dem`
``.inp``                         :func:`cim.loaders.swmm.load_swmm` (needs ``crs``)
``.ifc``                         :func:`cim.loaders.ifc.load_ifc` (``ifc`` extra)
==============================  ==========================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cim.errors import SourceError
from cim.loaders.base import ParsedSource, SourceObject

__all__ = ["LoadOptions", "ParsedSource", "SourceObject", "detect_format", "load_source"]

_FORMATS = {
    ".city.json": "cityjson",
    ".city.jsonl": "cityjson",
    ".json": "cityjson",
    ".jsonl": "cityjson",
    ".gltf": "mesh",
    ".glb": "mesh",
    ".obj": "mesh",
    ".geojson": "geojson",
    ".osm": "osm",
    ".osm.pbf": "osm",
    ".tif": "dem",
    ".tiff": "dem",
    ".ifc": "ifc",
    ".inp": "swmm",
}


@dataclass(frozen=True)
class LoadOptions:
    """What a user may say about a file beyond its contents.

    Attributes
    ----------
    crs : the file's CRS when it declares none (or to override it), e.g. ``"EPSG:28992"``;
        required for SWMM ``.inp`` files
    lod : the CityJSON LoD to take; the highest by default
    offset, scale, up_axis : for meshes stored relative to an origin or in other units:
        ``real = vertex * scale + offset``; ``up_axis`` ``"y"`` for y-up glTF
    height_attribute, storey_height_m, default_height_m : GeoJSON footprint extrusion
    mesh_step : DEM cells per terrain-mesh vertex
    at : ``(X, Y, rotation_deg)`` placing an IFC model's origin in the site CRS (rotation
        counter-clockwise); without it an IFC file needs an ``IfcMapConversion``
    """

    crs: str | None = None
    lod: str | None = None
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: float = 1.0
    up_axis: str = "z"
    height_attribute: str | None = None
    storey_height_m: float = 3.0
    default_height_m: float | None = None
    mesh_step: int = 4
    at: tuple[float, float, float] | None = None


def detect_format(path: Path) -> str:
    """The loader family of a file, by suffix.

    Raises
    ------
    SourceError
        If no loader reads files of that kind.
    """
    name = path.name.lower()
    for suffix in sorted(_FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return _FORMATS[suffix]
    raise SourceError(path, f"unknown file type; readable: {', '.join(sorted(_FORMATS))}")


def load_source(path: str | Path, options: LoadOptions | None = None) -> ParsedSource:
    """Parse one file with the loader its name calls for, and check it against the limits
    of :mod:`cim.loaders.limits`.

    Raises
    ------
    SourceError
        If the file cannot be read as its format, or holds coordinates no city can have.
    """
    from cim.loaders.limits import check_parsed

    parsed = _load(Path(path), options)
    check_parsed(parsed)
    return parsed


def _load(path: Path, options: LoadOptions | None) -> ParsedSource:
    opts = options or LoadOptions()
    if not path.is_file():
        raise SourceError(path, "no such file")
    family = detect_format(path)
    if family == "cityjson":
        from cim.loaders.cityjson import load_cityjson

        return load_cityjson(path, lod=opts.lod)
    if family == "mesh":
        from cim.loaders.mesh import load_mesh

        return load_mesh(
            path, crs=opts.crs, offset=opts.offset, scale=opts.scale, up_axis=opts.up_axis
        )
    if family == "geojson":
        from cim.loaders.geojson import load_geojson

        return load_geojson(
            path,
            crs=opts.crs,
            height_attribute=opts.height_attribute,
            storey_height_m=opts.storey_height_m,
            default_height_m=opts.default_height_m,
        )
    if family == "osm":
        from cim.loaders.osm import load_osm

        return load_osm(path)
    if family == "swmm":
        from cim.loaders.swmm import load_swmm

        return load_swmm(path, crs=opts.crs)
    if family == "ifc":
        from cim.loaders.ifc import load_ifc

        return load_ifc(path, crs=opts.crs, at=opts.at)
    from cim.loaders.dem import load_dem

    return load_dem(path, crs=opts.crs, mesh_step=opts.mesh_step)
