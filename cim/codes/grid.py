"""The unit grid: square cells with 15-digit codes (county 6 + street 3 + community 3 + cell 3).

Cells are numbered inside communities of ``block`` x ``block`` cells (30 x 30 = 900 cells,
under the 999 a 3-digit sequence allows); a site larger than one community spans several,
whose codes the store allocates on first use so they never change afterwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

_DIVISION = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class GridSpec:
    """How a site is cut into cells.

    Attributes
    ----------
    division : str
        12 digits: county (6, GB/T 2260) + street (3) + first community (3).
    origin_x, origin_y : float, metres
        South-west corner of cell (0, 0) in the site's projected CRS.
    cell_m : float, metres
        Cell edge length (default about 100 m: the "万米单元网格").
    block : int
        Cells per community edge.
    """

    division: str
    origin_x: float
    origin_y: float
    cell_m: float = 100.0
    block: int = 30

    def __post_init__(self) -> None:
        if not _DIVISION.match(self.division):
            raise ValueError(f"division(={self.division!r}) must be 12 digits")
        if not self.cell_m > 0:
            raise ValueError(f"cell_m(={self.cell_m}) must be > 0")
        if not 1 <= self.block <= 31:
            raise ValueError(f"block(={self.block}) must be in [1, 31] (999 cells at most)")

    @property
    def county(self) -> str:
        return self.division[:6]

    @property
    def street(self) -> str:
        return self.division[:9]

    def cell_index(self, xy: NDArray[np.float64]) -> NDArray[np.int64]:
        """``(n, 2)`` int64 column and row of the cells holding points ``(n, 2)`` metres."""
        pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return np.floor((pts - [self.origin_x, self.origin_y]) / self.cell_m).astype(np.int64)

    def block_of(self, cells: NDArray[np.int64]) -> NDArray[np.int64]:
        """``(n, 2)`` community block of cells ``(n, 2)``."""
        return np.floor_divide(cells, self.block)

    def sequence(self, cells: NDArray[np.int64]) -> NDArray[np.int64]:
        """``(n,)`` 1-based cell number inside its community, row-major from the south-west."""
        local = np.mod(cells, self.block)
        return local[:, 1] * self.block + local[:, 0] + 1

    def cell_bounds(self, cells: NDArray[np.int64]) -> NDArray[np.float64]:
        """``(n, 4)`` float64 ``minx, miny, maxx, maxy`` of cells ``(n, 2)``, metres."""
        low = np.asarray(cells, dtype=np.float64).reshape(-1, 2) * self.cell_m + [
            self.origin_x,
            self.origin_y,
        ]
        return np.column_stack([low, low + self.cell_m])


def community_code(division: str, index: int) -> str:
    """The 12-digit code of the ``index``-th community (0-based) of a site.

    Raises
    ------
    ValueError
        If the street has no room for that many communities.
    """
    first = int(division[9:12])
    number = first + index
    if number > 999:
        raise ValueError(f"community number {number} exceeds 999 for street {division[:9]}")
    return f"{division[:9]}{number:03d}"


def component_code(county: str, minor_class: str, serial: int) -> str:
    """The 16-digit component identifier: county (6) + major (2) + minor (2) + serial (6).

    Raises
    ------
    ValueError
        If a part has the wrong length or the serial does not fit six digits.
    """
    if len(county) != 6 or not county.isdigit():
        raise ValueError(f"county(={county!r}) must be 6 digits")
    if len(minor_class) != 4 or not minor_class.isdigit():
        raise ValueError(f"minor_class(={minor_class!r}) must be 4 digits (major + minor)")
    if not 1 <= serial <= 999_999:
        raise ValueError(f"serial(={serial}) must be in [1, 999999]")
    return f"{county}{minor_class}{serial:06d}"
