"""A density map as PNG, written with numpy and zlib (no imaging library needed)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from scenarios.crowd.grid import CellGrid

# alert ladder colours: below 2, 2–4 (yellow), 4–5 (orange), 5–6 (red), 6+ (purple)
LADDER_PM2 = np.array([2.0, 4.0, 5.0, 6.0])
LADDER_RGB = np.array(
    [[46, 160, 67], [240, 200, 40], [245, 130, 30], [215, 40, 40], [130, 40, 160]], dtype=np.uint8
)
EMPTY_RGB = np.array([225, 225, 225], dtype=np.uint8)
WALL_RGB = np.array([255, 255, 255], dtype=np.uint8)


def density_image(grid: CellGrid, density_pm2: NDArray[np.float64]) -> NDArray[np.uint8]:
    """(rows, cols, 3) image of a per-cell density, north up; walls white, empty cells grey."""
    rows, cols = grid.shape
    image = np.tile(WALL_RGB, (rows, cols, 1))
    colour = LADDER_RGB[np.searchsorted(LADDER_PM2, density_pm2, side="right")]
    colour[density_pm2 <= 0] = EMPTY_RGB
    image[grid.rc[:, 0], grid.rc[:, 1]] = colour
    return np.ascontiguousarray(image[::-1])


def write_png(path: str | Path, image: NDArray[np.uint8], scale: int = 1) -> Path:
    """Write an (h, w, 3) uint8 RGB image as PNG, each pixel repeated ``scale`` times."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (h, w, 3) uint8, got {image.shape} {image.dtype}")
    if scale > 1:
        image = image.repeat(scale, axis=0).repeat(scale, axis=1)
    height, width = image.shape[:2]
    raw = np.concatenate([np.zeros((height, 1), dtype=np.uint8), image.reshape(height, -1)], 1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
        + chunk(b"IEND", b"")
    )
    path = Path(path)
    path.write_bytes(data)
    return path
