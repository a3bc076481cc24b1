"""Coordinate frames: the source CRS of a file, the site's projected CRS in metres.

A missing CRS is an explicit user choice (``--crs``), never a guess.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pyproj
from numpy.typing import NDArray
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info


def parse_crs(text: str) -> pyproj.CRS:
    """A CRS from ``"EPSG:N"``, a URN/URL or WKT.

    Raises
    ------
    ValueError
        If pyproj does not know it.
    """
    try:
        return _cached_crs(text.strip())
    except pyproj.exceptions.CRSError:
        raise ValueError(f"unknown CRS {text!r}") from None


@cache
def _cached_crs(text: str) -> pyproj.CRS:
    return pyproj.CRS.from_user_input(text)


def crs_label(crs: pyproj.CRS) -> str:
    """``"EPSG:N"`` where the CRS has an EPSG code, else its name."""
    code = crs.to_epsg()
    return f"EPSG:{code}" if code is not None else str(crs.name)


def is_projected(crs: pyproj.CRS) -> bool:
    """Whether horizontal coordinates are projected metres (compound CRSs included)."""
    horizontal = crs.sub_crs_list[0] if crs.is_compound else crs
    return bool(horizontal.is_projected) and all(
        axis.unit_name in ("metre", "meter") for axis in horizontal.axis_info[:2]
    )


def site_crs_for(crs: pyproj.CRS, lon_lat: tuple[float, float]) -> pyproj.CRS:
    """The projected CRS a new site takes: the source's own if projected, else its UTM zone.

    Parameters
    ----------
    crs : the first source's CRS
    lon_lat : a point of the data in degrees, to pick the UTM zone of a geographic source
    """
    if is_projected(crs):
        return crs
    lon, lat = lon_lat
    infos = query_utm_crs_info(
        datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat)
    )
    if not infos:
        raise ValueError(f"no UTM zone found for lon/lat ({lon}, {lat})")
    return pyproj.CRS.from_epsg(int(infos[0].code))


def transform_points(
    xyz: NDArray[np.float64], source: pyproj.CRS, target: pyproj.CRS
) -> NDArray[np.float64]:
    """Points ``(n, 3)`` from ``source`` to ``target`` (x east / lon first, heights kept)."""
    if source == target or len(xyz) == 0:
        return xyz
    transformer = _transformer(source.to_wkt(), target.to_wkt())
    out = np.array(xyz, dtype=np.float64, copy=True)
    out[:, 0], out[:, 1] = transformer.transform(xyz[:, 0], xyz[:, 1])
    return out


@cache
def _transformer(source_wkt: str, target_wkt: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(source_wkt, target_wkt, always_xy=True)


def lon_lat_of(xy: tuple[float, float], crs: pyproj.CRS) -> tuple[float, float]:
    """Longitude and latitude of one point given in ``crs``."""
    lon, lat = _transformer(crs.to_wkt(), pyproj.CRS.from_epsg(4326).to_wkt()).transform(*xy)
    return float(lon), float(lat)
