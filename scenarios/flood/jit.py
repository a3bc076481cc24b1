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


def specialise(dispatcher: Callable[..., Any], args: tuple[Any, ...]) -> Callable[..., Any]:
    """The compiled overload of ``dispatcher`` for the types of ``args``, without dispatch.

    numba types every argument on every call to pick an overload; for a kernel called once per
    SimPy event with ~40 arguments (one a tuple of ~60 arrays) that costs more than a routing
    step. A call site whose argument types never change takes the overload once and calls its
    entry point directly (compiling, or loading it from the cache, first if needed).
    """
    disp = cast(Any, dispatcher)
    key = tuple(disp.typeof_pyval(a) for a in args)
    if key not in disp.overloads:
        disp.compile(key)
    return cast(Callable[..., Any], disp.overloads[key].entry_point)
