"""Digital elevation models (GeoTIFF and other single-band rasters), read through rasterio.

The raster becomes one ``DEM`` object: a :class:`~cim.terrain.TerrainGrid` for sampling
and a decimated triangle mesh for display. rasterio is the optional ``terrain`` extra.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import shapely

from cim.errors import SourceError
from cim.loaders.base import ParsedSource, SourceObject
from cim.terrain import TerrainGrid

#: Most cells of a raster read whole (a 1 m DEM of 10 x 10 km; 800 MB as float64 heights)
MAX_RASTER_CELLS = 100_000_000


def load_dem(path: str | Path, *, crs: str | None = None, mesh_step: int = 4) -> ParsedSource:
    """Parse band 1 of a north-up elevation raster.

    Parameters
    ----------
    path : the raster file (``.tif``, ``.tiff``)
    crs : the CRS of the raster; the file's own (as ``"EPSG:N"`` where it has an EPSG
        code, else its WKT) by default
    mesh_step : cells per terrain-mesh vertex in each axis

    Returns
    -------
    ParsedSource
        One object of kind ``DEM`` with ``source_id`` the file stem; its geometry block is
        ``TerrainGrid.to_mesh(mesh_step)``, ``rasters`` maps the source id to the grid
        (float64 metres, no-data cells NaN) and its footprint is the grid's bounding box.

    Raises
    ------
    ValueError
        If ``mesh_step`` is below 1.
    SourceError
        If rasterio is not installed, the file is missing, not a raster or unreadable,
        smaller than 2 x 2 cells or larger than :data:`MAX_RASTER_CELLS`, or not north-up
        (rotated or sheared, or rows running northwards).
    """
    path = Path(path)
    if mesh_step < 1:
        raise ValueError(f"mesh_step(={mesh_step}) must be >= 1")
    try:
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning, RasterioError
    except ImportError:
        raise SourceError(
            path, "reading rasters needs rasterio: install the 'terrain' extra"
        ) from None
    if not path.is_file():
        raise SourceError(path, "no such file")
    try:
        # a raster without georeferencing has an identity transform, refused below
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as dataset:
                transform = dataset.transform
                file_crs = dataset.crs
                cells = dataset.width * dataset.height
                if cells > MAX_RASTER_CELLS:  # a header may claim any size: read none of it
                    raise SourceError(
                        path,
                        f"{dataset.width} x {dataset.height} cells is more than "
                        f"{MAX_RASTER_CELLS:,}: crop or resample it first (gdalwarp)",
                    )
                band = dataset.read(1, masked=True)
    except (RasterioError, OSError) as exc:
        raise SourceError(path, f"not a readable raster: {exc}") from None

    if not (transform.b == 0 and transform.d == 0 and transform.a > 0 and transform.e < 0):
        raise SourceError(path, f"the raster is not north-up (transform {tuple(transform)[:6]})")
    heights = np.ma.filled(band.astype(np.float64), np.nan)
    if heights.ndim != 2 or min(heights.shape) < 2:
        raise SourceError(path, f"a terrain grid needs at least 2 x 2 cells, not {heights.shape}")
    if crs is None and file_crs is not None:
        epsg = file_crs.to_epsg()
        crs = f"EPSG:{epsg}" if epsg is not None else file_crs.to_wkt()

    grid = TerrainGrid(
        heights,
        float(transform.c),
        float(transform.f),
        float(transform.a),
        float(-transform.e),
        crs,
    )
    source_id = path.stem
    return ParsedSource(
        path,
        "dem",
        crs,
        [SourceObject(source_id, "DEM", source_id)],
        grid.to_mesh(mesh_step),
        [shapely.box(*grid.bounds())],
        rasters={source_id: grid},
    )
