"""numpy arrays to and from bytes for the store (``.npy`` format, never pickles)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from numpy.typing import NDArray


def pack(array: NDArray[Any]) -> bytes:
    """The array as ``.npy`` bytes."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def unpack(blob: bytes | memoryview) -> NDArray[Any]:
    """The array stored by :func:`pack`."""
    array: NDArray[Any] = np.load(io.BytesIO(bytes(blob)), allow_pickle=False)
    return array
