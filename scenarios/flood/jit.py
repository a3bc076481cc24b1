"""numba's ``njit`` with the project's settings and a type mypy can see through.

Kernels are compiled on first call and cached next to this package (``__pycache__``); when
that directory is read-only numba falls back to its user-wide cache, and ``NUMBA_CACHE_DIR``
moves the cache anywhere (ADR 0015). Single-threaded on purpose: the machine runs several
jobs and the SWMM peer is timed with ``THREADS 1``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


def njit(fn: F) -> F:
    """Compile ``fn`` in nopython mode, cached on disk, without the GIL."""
    return cast(F, numba.njit(cache=True, nogil=True, error_model="numpy")(fn))


def njit_inline(fn: F) -> F:
    """As :func:`njit`, inlined at numba IR level into compiled callers.

    For helpers that take the many-array :class:`~scenarios.flood.network_kernel.JitNetwork`:
    a real call would count references on every one of its arrays each time.
    """
    return cast(F, numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")(fn))


@numba.njit(cache=True)
def _ready() -> int:
    return 1


# numba's CPU target imports its registries (numpy, linalg through scipy) on first use, ~0.4 s;
# loading one cached trivial kernel here makes that part of importing the flood kernels, as
# pyswmm loads SWMM's library on import, instead of the first run's wall time.
_ready()
