"""Ragged-array helpers shared by the loaders and the triangulator."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def concat_ranges(starts: NDArray[np.int64], stops: NDArray[np.int64]) -> NDArray[np.int64]:
    """``concatenate([arange(a, b) for a, b in zip(starts, stops)])`` without the loop.

    Parameters
    ----------
    starts, stops : (k,) int64, with ``stops >= starts``

    Returns
    -------
    (sum(stops - starts),) int64
    """
    size = np.asarray(stops, dtype=np.int64) - np.asarray(starts, dtype=np.int64)
    first = np.r_[0, np.cumsum(size)[:-1]].astype(np.int64)
    out: NDArray[np.int64] = np.repeat(starts - first, size) + np.arange(int(size.sum()))
    return out
