"""PNG snapshots: real pictures of the samples, coloured by kind or by value with a legend."""

from __future__ import annotations

import io

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from cim.errors import NotFoundError
from cim.store import Store
from render.images import render_png

VIRIDIS_TOP = np.array([253, 231, 37])
VIRIDIS_BOTTOM = np.array([68, 1, 84])


def _pixels(png: bytes) -> NDArray[np.int64]:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB"), dtype=np.int64)


def _has_colour(pixels: NDArray[np.int64], colour: NDArray[np.int64], tol: int = 12) -> int:
    return int((np.abs(pixels - colour).max(axis=2) <= tol).sum())


def test_site_picture_is_not_blank_and_has_the_size(scene_store: Store) -> None:
    pixels = _pixels(render_png(scene_store, "merewether", size=(400, 300)))
    assert pixels.shape == (300, 400, 3)
    background = np.array([0x0F, 0x17, 0x20])
    drawn = (np.abs(pixels - background).max(axis=2) > 20).mean()
    assert 0.15 < drawn < 0.95
    # terrain green and the houses' pale walls are both in the picture
    green = (pixels[..., 1] > pixels[..., 0] + 15) & (pixels[..., 1] > pixels[..., 2] + 15)
    assert green.mean() > 0.05
    assert _has_colour(pixels, VIRIDIS_TOP) == 0


def test_values_colour_buildings_and_draw_a_legend(scene_store: Store) -> None:
    houses = sorted(scene_store.by_kind("merewether", "Building"), key=lambda o: o.code)
    values = {h.code: float(i) for i, h in enumerate(houses)}
    pixels = _pixels(
        render_png(scene_store, "merewether", values=values, legend="rank", size=(400, 300))
    )
    # the colour bar shows both ends of the colour map, unshaded
    assert _has_colour(pixels, VIRIDIS_TOP) > 20
    assert _has_colour(pixels, VIRIDIS_BOTTOM) > 20
    # terrain has no value and is drawn in the no-value grey, not green
    green = (pixels[..., 1] > pixels[..., 0] + 15) & (pixels[..., 1] > pixels[..., 2] + 15)
    assert green.mean() < 0.05


def test_a_building_value_colours_its_parts(scene_store: Store) -> None:
    building = next(
        o
        for o in scene_store.by_kind("denhaag", "Building")
        if o.chunk is None and len(scene_store.children("denhaag", o.code)) >= 2
    )
    plain = _pixels(render_png(scene_store, "denhaag", building.code, size=(320, 240)))
    valued = _pixels(
        render_png(
            scene_store, "denhaag", building.code, values={building.code: 5.0}, size=(320, 240)
        )
    )
    assert plain.shape == valued.shape == (240, 320, 3)
    assert np.abs(plain - valued).max() > 50


def test_bad_requests_are_refused(scene_store: Store) -> None:
    with pytest.raises(NotFoundError):
        render_png(scene_store, "denhaag", "nope", size=(64, 64))
    cell = next(o for o in scene_store.all_objects("denhaag") if o.kind == "Community")
    with pytest.raises(ValueError, match="size"):
        render_png(scene_store, "denhaag", cell.code, size=(0, 64))
    with pytest.raises(ValueError, match="finite"):
        render_png(scene_store, "merewether", values={"x": float("nan")}, size=(64, 64))
