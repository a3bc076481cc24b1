"""DEM rasters through rasterio: the grid must sample like rasterio reads the file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import Affine

from cim.errors import SourceError
from cim.loaders.dem import load_dem

MEREWETHER = "merewether/merewether_dtm_1m_epsg32756.tif"


def _north_up(x0: float, y0: float, cell_x: float, cell_y: float) -> Affine:
    # rasterio.transform.from_origin raises affine's PendingDeprecationWarning
    return Affine(cell_x, 0.0, x0, 0.0, -cell_y, y0)


def _write_tif(path: Path, heights: np.ndarray, transform: Affine, **profile: Any) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=heights.shape[0],
        width=heights.shape[1],
        count=1,
        dtype=heights.dtype,
        transform=transform,
        **profile,
    ) as dataset:
        dataset.write(heights, 1)
    return path


def test_merewether_grid(assets: Path) -> None:
    path = assets / MEREWETHER
    parsed = load_dem(path, mesh_step=3)
    with rasterio.open(path) as dataset:
        band = dataset.read(1, masked=True)
        bounds = tuple(dataset.bounds)

    assert parsed.format == "dem"
    assert parsed.crs == "EPSG:32756"
    assert [(o.source_id, o.kind) for o in parsed.objects] == [
        ("merewether_dtm_1m_epsg32756", "DEM")
    ]
    grid = parsed.rasters["merewether_dtm_1m_epsg32756"]
    assert grid.shape == (416, 321)
    assert grid.crs == "EPSG:32756"
    assert grid.heights.dtype == np.float64
    np.testing.assert_array_equal(np.isnan(grid.heights), band.mask)
    assert int(band.mask.sum()) == 73
    np.testing.assert_array_equal(grid.heights[~band.mask], band.compressed().astype(np.float64))
    np.testing.assert_allclose(grid.bounds(), bounds, rtol=0, atol=1e-6)
    assert (parsed.footprints or [None])[0].equals(shapely.box(*grid.bounds()))
    mesh = grid.to_mesh(3)
    np.testing.assert_array_equal(parsed.geometry.vertices, mesh.vertices)
    np.testing.assert_array_equal(parsed.geometry.faces, mesh.faces)
    assert np.isfinite(parsed.geometry.vertices).all()


def test_sample_matches_rasterio(assets: Path) -> None:
    path = assets / MEREWETHER
    grid = load_dem(path).rasters["merewether_dtm_1m_epsg32756"]
    rng = np.random.default_rng(7)
    rows = rng.integers(0, 415, 400)
    cols = rng.integers(0, 320, 400)

    with rasterio.open(path) as dataset:
        transform = dataset.transform
        nodata = dataset.nodata

        def read(r: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            x, y = rasterio.transform.xy(transform, r, c)
            values = np.array([v[0] for v in dataset.sample(zip(x, y, strict=True))], float)
            values[values == nodata] = np.nan
            return np.column_stack([x, y]), values

        centres, expected = read(rows, cols)
        # exact up to the rounding of x -> column with a 0.99993681 m cell (~1e-10 m)
        np.testing.assert_allclose(grid.sample(centres), expected, rtol=0, atol=1e-9)
        assert np.isfinite(expected).sum() > 390

        corners = [read(rows + dr, cols + dc) for dr in (0, 1) for dc in (0, 1)]
    midpoints = np.mean([xy for xy, _ in corners], axis=0)
    mean = np.mean([values for _, values in corners], axis=0)
    sampled = grid.sample(midpoints)
    np.testing.assert_allclose(sampled, mean, rtol=0, atol=1e-9)
    assert np.isfinite(mean).sum() > 350

    left, bottom, right, top = grid.bounds()
    outside = np.array([[left - 0.01, top - 5], [right + 0.01, bottom + 5], [left + 5, top + 1]])
    assert np.isnan(grid.sample(outside)).all()


def test_crs_and_nodata_of_a_small_raster(tmp_path: Path) -> None:
    heights = np.array([[1.0, 2.0, -1.0], [3.0, 4.0, 5.0]], dtype=np.float32)
    path = _write_tif(tmp_path / "small.tif", heights, _north_up(100, 200, 2, 0.5), nodata=-1)
    parsed = load_dem(path, crs="EPSG:28992", mesh_step=1)

    grid = parsed.rasters["small"]
    assert parsed.crs == grid.crs == "EPSG:28992"
    np.testing.assert_array_equal(grid.heights, [[1, 2, np.nan], [3, 4, 5]])
    assert grid.bounds() == (100.0, 199.0, 106.0, 200.0)
    centres = np.array([[101.0, 199.75], [101.0, 199.25]])
    np.testing.assert_array_equal(grid.sample(centres), [1.0, 3.0])
    np.testing.assert_array_equal(grid.sample(np.array([[102.0, 199.5]])), [2.5])
    # a no-data neighbour with zero weight does not spoil a valid cell's centre...
    np.testing.assert_array_equal(grid.sample(np.array([[103.0, 199.25]])), [4.0])
    # ...but one with weight makes the sample NaN
    assert np.isnan(grid.sample(np.array([[104.0, 199.5]]))).all()
    # the quads touching the no-data cell are left out: one quad, two triangles
    assert len(parsed.geometry.faces) == 2
    np.testing.assert_array_equal(np.sort(parsed.geometry.vertices[:, 2]), [1, 2, 3, 4])


def test_raster_without_crs(tmp_path: Path) -> None:
    heights = np.zeros((2, 2), dtype=np.float64)
    path = _write_tif(tmp_path / "plain.tif", heights, _north_up(0, 10, 1, 1))
    assert load_dem(path).crs is None


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
@pytest.mark.parametrize(
    "transform",
    [
        Affine(1.0, 0.2, 0.0, 0.0, -1.0, 10.0),  # rotated
        Affine(1.0, 0.0, 0.0, 0.0, 1.0, 10.0),  # rows run northwards
        Affine.identity(),  # no georeferencing at all
    ],
)
def test_not_north_up_is_a_source_error(tmp_path: Path, transform: Affine) -> None:
    path = _write_tif(tmp_path / "turned.tif", np.zeros((3, 3)), transform)
    with pytest.raises(SourceError, match="not north-up") as info:
        load_dem(path)
    assert info.value.path == str(path)


def test_unreadable_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.tif"
    text.write_text("not a raster at all")
    with pytest.raises(SourceError, match="not a readable raster"):
        load_dem(text)
    with pytest.raises(SourceError, match="no such file"):
        load_dem(tmp_path / "missing.tif")
    narrow = _write_tif(tmp_path / "narrow.tif", np.zeros((1, 5)), _north_up(0, 1, 1, 1))
    with pytest.raises(SourceError, match="at least 2 x 2"):
        load_dem(narrow)


def test_missing_rasterio(assets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rasterio", None)
    with pytest.raises(SourceError, match="install the 'terrain' extra"):
        load_dem(assets / MEREWETHER)


def test_mesh_step_must_be_positive(assets: Path) -> None:
    with pytest.raises(ValueError, match="mesh_step"):
        load_dem(assets / MEREWETHER, mesh_step=0)
