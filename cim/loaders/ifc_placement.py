"""Where an IFC model stands: the map from its engineering frame (metres) to a CRS.

In this order (ADR 0013):

1. ``at = (X, Y, rotation_deg)`` given by the user: rotate counter-clockwise about the model
   origin, then shift to ``(X, Y)``; heights unchanged.
2. The file's ``IfcMapConversion`` (IFC4): a Helmert transformation to its
   ``IfcProjectedCRS``.
3. With a projected ``crs`` given by the user, the ``IfcSite``'s ``RefLatitude``,
   ``RefLongitude`` and ``RefElevation``: the site's placement origin goes to that point in
   ``crs``, and the model turns so that its ``TrueNorth`` points to true north there.

A file with none of these is refused: a building is never placed by guess.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
from numpy.typing import NDArray

from cim.errors import SourceError

Placement = Callable[[NDArray[np.float64]], NDArray[np.float64]]

_EPSG = re.compile(r"EPSG\s*:?\s*(\d+)", re.IGNORECASE)
_NONE = (
    "no IfcMapConversion: pass --at X,Y,ROTATION and --crs to place the building "
    "(X, Y in the site CRS, rotation in degrees counter-clockwise)"
)


def _module(name: str) -> Any:
    return importlib.import_module(name)


def placement_of(
    path: Path, model: Any, at: tuple[float, float, float] | None, crs: str | None
) -> tuple[Placement, str | None, dict[str, Any]]:
    """The map from model metres to real coordinates, the file's CRS and the attributes
    the site object records (``georeferencing`` and its parameters).

    Raises
    ------
    SourceError
        If ``at`` is not finite, or there is neither ``at``, an ``IfcMapConversion`` nor
        (with ``crs``) an ``IfcSite`` reference point inside the CRS's area of use.
    """
    if at is not None:
        x, y, degrees = (float(v) for v in at)
        if not all(math.isfinite(v) for v in (x, y, degrees)):
            raise SourceError(path, f"--at {at} must be three finite numbers")
        return (
            helmert(x, y, 0.0, math.radians(degrees), 1.0),
            None,
            {"georeferencing": "at", "at": [x, y, degrees]},
        )
    conversion = _map_conversion(model)
    if conversion is not None:
        return _from_map_conversion(model, conversion)
    site = _reference_site(model)
    if site is None:
        raise SourceError(path, _NONE)
    if crs is None:
        raise SourceError(
            path,
            f"{_NONE}; or --crs alone to place it at its IfcSite's RefLatitude/RefLongitude",
        )
    return _from_site(path, model, site, crs)


def compound_degrees(angle: Any) -> float:
    """Decimal degrees of an ``IfcCompoundPlaneAngleMeasure``: degrees, minutes, seconds
    and optionally millionths of a second, all of one sign.

    Raises
    ------
    ValueError
        If it has fewer than three or more than four parts, or a part is out of range.
    """
    parts = [int(v) for v in angle]
    if not 3 <= len(parts) <= 4:
        raise ValueError(f"{tuple(parts)} is not (degrees, minutes, seconds[, millionths])")
    degrees, minutes, seconds, millionths = [*parts, 0][:4]
    if abs(minutes) >= 60 or abs(seconds) >= 60 or abs(millionths) >= 1_000_000:
        raise ValueError(f"{tuple(parts)} has minutes, seconds or millionths out of range")
    return degrees + minutes / 60 + (seconds + millionths / 1e6) / 3600


def helmert(x: float, y: float, z: float, angle: float, factor: float) -> Placement:
    """``(X, Y, Z) = (x, y, z) + factor * R(angle) (u, v, w)``, angle counter-clockwise."""
    cos, sin = math.cos(angle), math.sin(angle)

    def apply(xyz: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.empty_like(xyz)
        with np.errstate(over="ignore", invalid="ignore"):  # load_source refuses overflows
            out[:, 0] = x + factor * (cos * xyz[:, 0] - sin * xyz[:, 1])
            out[:, 1] = y + factor * (sin * xyz[:, 0] + cos * xyz[:, 1])
            out[:, 2] = z + factor * xyz[:, 2]
        return out

    return apply


def _from_map_conversion(
    model: Any, conversion: Any
) -> tuple[Placement, str | None, dict[str, Any]]:
    units = _module("ifcopenshell.util.unit")

    project_m = float(units.calculate_unit_scale(model))
    target = conversion.TargetCRS
    unit = getattr(target, "MapUnit", None) if target is not None else None
    map_m = _unit_m(unit) if unit is not None else 1.0
    # Scale turns project units into map units; files that omit it mean the unit ratio
    scale = float(conversion.Scale) if conversion.Scale is not None else project_m / map_m
    a = float(conversion.XAxisAbscissa) if conversion.XAxisAbscissa is not None else 1.0
    b = float(conversion.XAxisOrdinate) if conversion.XAxisOrdinate is not None else 0.0
    angle = math.atan2(b, a)
    factor = scale / project_m  # ifcopenshell gives metres; the CRS takes map units
    transform = helmert(
        float(conversion.Eastings),
        float(conversion.Northings),
        float(conversion.OrthogonalHeight or 0.0),
        angle,
        factor,
    )
    name = str(target.Name) if target is not None and target.Name else None
    found = _EPSG.search(name) if name else None
    crs = f"EPSG:{found.group(1)}" if found else name
    return (
        transform,
        crs,
        {
            "georeferencing": "IfcMapConversion",
            "map_crs": name,
            "map_rotation_deg": math.degrees(angle),
        },
    )


def _reference_site(model: Any) -> Any:
    """The first ``IfcSite`` with both ``RefLatitude`` and ``RefLongitude``."""
    for site in model.by_type("IfcSite"):
        if site.RefLatitude is not None and site.RefLongitude is not None:
            return site
    return None


def _from_site(
    path: Path, model: Any, site: Any, crs: str
) -> tuple[Placement, str | None, dict[str, Any]]:
    """Place the site's origin at its reference point in ``crs`` (projected), turned so that
    the model's ``TrueNorth`` points to true north there (grid convergence included)."""
    gid = str(site.GlobalId)
    try:
        lat = compound_degrees(site.RefLatitude)
        lon = compound_degrees(site.RefLongitude)
    except (TypeError, ValueError) as exc:
        raise SourceError(path, f"unusable IfcSite RefLatitude/RefLongitude: {exc}", gid) from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        raise SourceError(
            path, f"IfcSite RefLatitude/RefLongitude ({lat:.6f}, {lon:.6f}) is no location", gid
        )
    try:
        target = pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        raise SourceError(path, f"--crs {crs!r} is not a CRS: {exc}") from None
    if not target.is_projected:
        raise SourceError(path, f"--crs {crs!r} must be a projected CRS to place the IfcSite")
    area = target.area_of_use
    if area is not None and not (area.west <= lon <= area.east and area.south <= lat <= area.north):
        raise SourceError(
            path,
            f"no IfcMapConversion, and the IfcSite's RefLatitude/RefLongitude ({lat:.6f}, "
            f"{lon:.6f}) lies outside the area of use of {crs} ({area.name.rstrip('.')}): "
            "pass the CRS of the site's region, or place it with --at X,Y,ROTATION",
            gid,
        )
    to_map = pyproj.Transformer.from_crs(4326, target, always_xy=True)
    east, north = to_map.transform(lon, lat)
    # true north at the site, as a direction in the map grid
    step = 1e-5
    north_east, north_north = to_map.transform(lon, lat + step)
    grid_north = math.atan2(north_north - north, north_east - east)
    true_north = _true_north(model)
    angle = grid_north - math.atan2(true_north[1], true_north[0])
    map_m = float(target.axis_info[0].unit_conversion_factor or 1.0) if target.axis_info else 1.0
    project_m = float(_module("ifcopenshell.util.unit").calculate_unit_scale(model))
    elevation = float(site.RefElevation or 0.0) * project_m  # a length in project units
    origin = _site_origin(model, site)
    base = helmert(east, north, elevation / map_m, angle, 1.0 / map_m)

    def apply(xyz: NDArray[np.float64]) -> NDArray[np.float64]:
        return base(xyz - origin)

    if not all(math.isfinite(v) for v in (east, north, angle)):
        raise SourceError(path, f"the IfcSite's reference point has no position in {crs}", gid)
    return (
        apply,
        crs,
        {
            "georeferencing": "IfcSite",
            "ref_latitude_deg": lat,
            "ref_longitude_deg": lon,
            "ref_elevation_m": elevation,
            "map_rotation_deg": math.degrees(angle),
        },
    )


def _true_north(model: Any) -> tuple[float, float]:
    """The ``TrueNorth`` of the model's 3D context in model x, y; ``(0, 1)`` without one."""
    for context in model.by_type("IfcGeometricRepresentationContext"):
        if context.is_a("IfcGeometricRepresentationSubContext"):
            continue
        if context.ContextType not in (None, "Model"):
            continue
        direction = context.TrueNorth
        if direction is not None:
            x, y = (float(v) for v in list(direction.DirectionRatios)[:2])
            if math.isfinite(x) and math.isfinite(y) and (x, y) != (0.0, 0.0):
                return x, y
    return 0.0, 1.0


def _site_origin(model: Any, site: Any) -> NDArray[np.float64]:
    """The site's placement origin in model metres (where its reference point is)."""
    if site.ObjectPlacement is None:
        return np.zeros(3)
    matrix = _module("ifcopenshell.util.placement").get_local_placement(site.ObjectPlacement)
    scale = float(_module("ifcopenshell.util.unit").calculate_unit_scale(model))
    return np.asarray(matrix, dtype=np.float64)[:3, 3] * scale


def _unit_m(unit: Any) -> float:
    """Metres per unit of an ``IfcNamedUnit`` of length."""
    units = _module("ifcopenshell.util.unit")

    if unit.is_a("IfcSIUnit"):
        return float(units.get_prefix_multiplier(unit.Prefix) if unit.Prefix else 1.0)
    factor = unit.ConversionFactor
    return float(factor.ValueComponent.wrappedValue) * _unit_m(factor.UnitComponent)


def _map_conversion(model: Any) -> Any:
    try:
        found = model.by_type("IfcMapConversion")
    except RuntimeError:  # IFC2X3 has no such entity
        return None
    return found[0] if found else None
