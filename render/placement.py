"""Where a scene sits on the globe: the site's local frame, glTF's y-up and ECEF.

Scenes hold coordinates relative to the site's ENU origin, in the site's projected CRS
(``local = xyz - origin``, metres, z up). A projected grid is not exactly east-north-up away
from its central meridian (grid convergence, scale factor), so the map from the local frame to
true ENU at the origin is measured with pyproj and kept as a 3 x 3 matrix; the 3D Tiles root
transform is ``ECEF <- ENU <- local``. glTF is y-up: ``(x, y, z)_gltf = (e, u, -n)``.

Heights are used as stored: the vertical datum of the site CRS (NAP, AHD...) is not turned
into ellipsoidal heights (no geoid grids ship here), so a globe client may see the model a few
tens of metres off the ellipsoid vertically.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pyproj
from numpy.typing import NDArray

from cim.model import SiteInfo

_A = 6378137.0  # WGS 84 semi-major axis, metres
_E2 = 6.69437999014e-3  # WGS 84 first eccentricity squared

#: glTF (y-up) from a z-up local frame: (x, y, z) -> (x, z, -y).
Z_UP_TO_Y_UP: NDArray[np.float64] = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])


def ecef_of(lon_deg: float, lat_deg: float, height_m: float) -> NDArray[np.float64]:
    """``(3,)`` WGS 84 earth-centred coordinates of a geodetic point, metres."""
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    n = _A / np.sqrt(1 - _E2 * np.sin(lat) ** 2)
    return np.array(
        [
            (n + height_m) * np.cos(lat) * np.cos(lon),
            (n + height_m) * np.cos(lat) * np.sin(lon),
            (n * (1 - _E2) + height_m) * np.sin(lat),
        ]
    )


def enu_axes(lon_deg: float, lat_deg: float) -> NDArray[np.float64]:
    """``(3, 3)``: columns are the east, north and up unit vectors in ECEF."""
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    east = np.array([-np.sin(lon), np.cos(lon), 0.0])
    north = np.array([-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)])
    up = np.array([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    return np.column_stack([east, north, up])


@cache
def _to_lon_lat(crs: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)


@dataclass(frozen=True)
class SiteFrame:
    """The local frame of a site's scenes.

    Attributes
    ----------
    crs : the site's projected CRS, ``"EPSG:N"``
    origin : (3,) float64, metres in ``crs``; local coordinates are ``xyz - origin``
    lon_lat_height : longitude, latitude (degrees, WGS 84) and height (metres) of the origin
    local_to_enu : (3, 3) float64, local (grid east, grid north, up) to true ENU at the origin
    """

    crs: str
    origin: NDArray[np.float64]
    lon_lat_height: tuple[float, float, float]
    local_to_enu: NDArray[np.float64]

    def local(self, xyz: NDArray[np.float64]) -> NDArray[np.float64]:
        """``(n, 3)`` float64 metres relative to the origin, z up."""
        out: NDArray[np.float64] = np.asarray(xyz, dtype=np.float64) - self.origin
        return out

    def local_to_ecef(self) -> NDArray[np.float64]:
        """``(4, 4)`` float64: homogeneous map from the local frame (z up) to ECEF."""
        lon, lat, h = self.lon_lat_height
        out = np.eye(4)
        out[:3, :3] = enu_axes(lon, lat) @ self.local_to_enu
        out[:3, 3] = ecef_of(lon, lat, h)
        return out

    def tileset_transform(self) -> list[float]:
        """The 3D Tiles root ``transform``: :meth:`local_to_ecef`, column-major."""
        return [float(v) for v in self.local_to_ecef().T.ravel()]

    def extras(self) -> dict[str, Any]:
        """What a client needs to place a glTF of this site (stored in ``asset.extras``)."""
        lon, lat, h = self.lon_lat_height
        return {
            "crs": self.crs,
            "origin": [float(v) for v in self.origin],
            "origin_lon_lat_height": [lon, lat, h],
            "up_axis": "y",
            "frame": "gltf (x, y, z) = (x - origin_x, z - origin_z, -(y - origin_y)) in crs",
            "local_to_ecef": self.tileset_transform(),
            "height_reference": "heights of the site CRS as stored (no geoid applied)",
        }


def site_frame(site: SiteInfo) -> SiteFrame:
    """The scene frame of ``site``, around its ENU origin.

    Raises
    ------
    ValueError
        If the site CRS cannot be transformed to WGS 84.
    """
    ox, oy, oz = site.enu_origin
    transformer = _to_lon_lat(site.crs)
    step = 50.0
    xs = np.array([ox, ox + step, ox - step, ox, ox])
    ys = np.array([oy, oy, oy, oy + step, oy - step])
    lons, lats = transformer.transform(xs, ys)
    if not np.isfinite(lons).all() or not np.isfinite(lats).all():
        raise ValueError(f"site {site.name!r}: CRS {site.crs} cannot be placed on WGS 84")
    lon0, lat0 = float(lons[0]), float(lats[0])
    ecef = np.array([ecef_of(lo, la, oz) for lo, la in zip(lons, lats, strict=True)])
    axes = enu_axes(lon0, lat0)
    # central differences of the projection, expressed in true ENU at the origin
    d_east = axes.T @ (ecef[1] - ecef[2]) / (2 * step)
    d_north = axes.T @ (ecef[3] - ecef[4]) / (2 * step)
    jacobian = np.column_stack([d_east, d_north, [0.0, 0.0, 1.0]])
    jacobian[2, :2] = 0.0  # the ellipsoid's curvature over 50 m is not a tilt of the grid
    return SiteFrame(site.crs, np.array([ox, oy, oz]), (lon0, lat0, oz), jacobian)
