"""Flattening CityJSON ``boundaries`` and semantic ``values`` into ragged numpy arrays.

Walking nested lists surface by surface in Python costs more than parsing the whole file.
Instead the nested lists are serialised once (``orjson.dumps``, in C) and the bytes are
tokenised with array operations: bracket depth gives rings and surfaces, digit runs give
vertex indices. The geometry type fixes at which depth rings sit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from cim.loaders.jsonspans import parse_ints

#: Depth of a ring's opening bracket when all boundaries are wrapped in one outer list.
RING_DEPTH: dict[str, int] = {
    "MultiSurface": 4,
    "CompositeSurface": 4,
    "Solid": 5,
    "MultiSolid": 6,
    "CompositeSolid": 6,
}

_OPEN, _CLOSE, _ZERO, _NINE, _N = ord("["), ord("]"), ord("0"), ord("9"), ord("n")


class BoundaryError(ValueError):
    """Boundaries that do not match their geometry type; ``geometry`` is its position."""

    def __init__(self, geometry: int, message: str) -> None:
        self.geometry = geometry
        super().__init__(message)


@dataclass(frozen=True)
class FlatSurfaces:
    """Surfaces of many geometries as flat arrays.

    Attributes
    ----------
    ring_vertices : (p,) int64 vertex indices, ring after ring (as written in the file)
    ring_offsets : (r + 1,) int64
    polygon_offsets : (q + 1,) int64, rings of each surface (outer ring first)
    polygon_geometry : (q,) int64, the geometry each surface belongs to
    polygon_value : (q,) int64, the surface's semantic value (index into its geometry's
        ``semantics.surfaces``), -1 where none
    """

    ring_vertices: NDArray[np.int64]
    ring_offsets: NDArray[np.int64]
    polygon_offsets: NDArray[np.int64]
    polygon_geometry: NDArray[np.int64]
    polygon_value: NDArray[np.int64]


class _Scan:
    """Brackets and unsigned integer tokens of a JSON text, found with array operations.

    Depth is only evaluated where it is needed (at brackets and tokens) by counting the
    brackets before a position, never as a running sum over every byte.
    """

    def __init__(self, text: bytes) -> None:
        b = np.frombuffer(text, dtype=np.uint8)
        self.bytes = b
        self.opens = np.flatnonzero(b == _OPEN)
        self.closes = np.flatnonzero(b == _CLOSE)
        digit = (b >= _ZERO) & (b <= _NINE)
        self.starts = (np.flatnonzero(digit[1:] & ~digit[:-1]) + 1).astype(np.int64)
        if len(b) and digit[0]:
            self.starts = np.r_[0, self.starts].astype(np.int64)
        self.values = self._parse(text, b, digit)

    def _parse(
        self, text: bytes, b: NDArray[np.uint8], digit: NDArray[np.bool_]
    ) -> NDArray[np.int64]:
        """The integer tokens in order: numpy's C text parser over the text with brackets
        blanked, checked against the token count; digit arithmetic where that fails."""
        fast = parse_ints(text)
        if len(fast) == len(self.starts) and (fast >= 0).all():
            return fast
        ends = np.flatnonzero(digit[:-1] & ~digit[1:]) + 1
        if len(b) and digit[-1]:
            ends = np.r_[ends, len(b)]
        length = ends - self.starts
        if len(length) and length.max() > 18:
            raise BoundaryError(0, "an index has more than 18 digits")
        values = np.zeros(len(self.starts), dtype=np.int64)
        for width in np.unique(length).tolist():
            which = np.flatnonzero(length == width)
            chars = b[self.starts[which, None] + np.arange(width)].astype(np.int64) - _ZERO
            values[which] = chars @ (10 ** np.arange(width - 1, -1, -1, dtype=np.int64))
        return values

    def depth(self, positions: NDArray[np.int64]) -> NDArray[np.int64]:
        """Bracket depth just after each position."""
        depth: NDArray[np.int64] = np.searchsorted(
            self.opens, positions, side="right"
        ) - np.searchsorted(self.closes, positions, side="right")
        return depth


def flatten_surfaces(
    geometries: list[dict[str, Any]],
    bases: NDArray[np.int64],
    spans: list[bytes] | None = None,
) -> FlatSurfaces:
    """Flatten the surfaces of surface-bearing geometries.

    Parameters
    ----------
    geometries : CityJSON geometry objects whose ``type`` is a key of :data:`RING_DEPTH`
    bases : (g,) int64, added to each geometry's vertex indices
    spans : arrays cut out of the file text; a geometry whose ``boundaries`` is the
        placeholder ``-(k + 1)`` takes ``spans[k]``

    Raises
    ------
    BoundaryError
        If a geometry's boundaries or semantic values do not have its type's shape.
    """
    g = len(geometries)
    if g == 0:
        empty = np.zeros(0, dtype=np.int64)
        zero = np.zeros(1, dtype=np.int64)
        return FlatSurfaces(empty, zero, zero.copy(), empty.copy(), empty.copy())
    text = _boundaries_text(geometries, spans or [])
    scan = _Scan(text)
    b, starts, values, opens = scan.bytes, scan.starts, scan.values, scan.opens
    open_depth = scan.depth(opens)
    geom_open = opens[open_depth == 2]
    if len(geom_open) != g:
        bad = _first_not_list(text, g)
        raise BoundaryError(bad, "'boundaries' must be a list")
    ring_depth = np.array([RING_DEPTH[geometry["type"]] for geometry in geometries])
    open_geom = np.searchsorted(geom_open, opens, side="right") - 1
    open_ring_depth = np.where(open_geom >= 0, ring_depth[np.maximum(open_geom, 0)], -1)
    ring_opens = opens[open_depth == open_ring_depth]
    surface_opens = opens[open_depth == open_ring_depth - 1]
    # every index must sit directly inside a ring, and rings must hold only indices
    token_geom = np.searchsorted(geom_open, starts, side="right") - 1
    misplaced = scan.depth(starts) != ring_depth[token_geom]
    deep = (open_geom >= 0) & (open_depth > open_ring_depth)
    if misplaced.any() or deep.any() or (b == ord("-")).any() or (b == ord(".")).any():
        culprits = [int(token_geom[misplaced][0])] if misplaced.any() else []
        if deep.any():
            culprits.append(int(open_geom[deep][0]))
        bad = min(culprits) if culprits else _first_with(text, geom_open, (b"-", b"."))
        raise BoundaryError(bad, "geometry 'boundaries' do not match its type")
    ring_of_token = np.searchsorted(ring_opens, starts, side="right") - 1
    ring_count = np.bincount(ring_of_token, minlength=len(ring_opens))
    polygon_of_ring = np.searchsorted(surface_opens, ring_opens, side="right") - 1
    rings_per_polygon = np.bincount(polygon_of_ring, minlength=len(surface_opens))
    polygon_geometry = np.searchsorted(geom_open, surface_opens, side="right") - 1
    if (rings_per_polygon == 0).any():
        bad = int(polygon_geometry[np.flatnonzero(rings_per_polygon == 0)[0]])
        raise BoundaryError(bad, "a surface without rings")
    ring_geometry = polygon_geometry[polygon_of_ring]
    ring_vertices = values + bases[ring_geometry[ring_of_token]]
    polygon_value = _semantic_values(geometries, polygon_geometry)
    return FlatSurfaces(
        ring_vertices.astype(np.int64),
        np.r_[0, np.cumsum(ring_count)].astype(np.int64),
        np.r_[0, np.cumsum(rings_per_polygon)].astype(np.int64),
        polygon_geometry.astype(np.int64),
        polygon_value,
    )


def _boundaries_text(geometries: list[dict[str, Any]], spans: list[bytes]) -> bytes:
    """One JSON list holding every geometry's boundaries, cut-out spans put back."""
    if not spans:
        return orjson.dumps([geometry.get("boundaries") for geometry in geometries])
    parts = []
    for geometry in geometries:
        value = geometry.get("boundaries")
        if type(value) is int and -len(spans) <= value < 0:
            parts.append(spans[-1 - value])
        else:
            parts.append(orjson.dumps(value))
    return b"[" + b",".join(parts) + b"]"


def _semantic_values(
    geometries: list[dict[str, Any]], polygon_geometry: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Per-surface semantic value, -1 where none; flattened values follow surface order."""
    out = np.full(len(polygon_geometry), -1, dtype=np.int64)
    which = [
        i
        for i, geometry in enumerate(geometries)
        if (geometry.get("semantics") or {}).get("values") is not None
    ]
    if not which:
        return out
    text = orjson.dumps([geometries[i]["semantics"]["values"] for i in which])
    scan = _Scan(text)
    starts, values = scan.starts, scan.values
    nulls = np.flatnonzero(scan.bytes == _N)
    opens = scan.opens[scan.depth(scan.opens) == 2]
    positions = np.r_[starts, nulls]
    tokens = np.r_[values, np.full(len(nulls), -1, dtype=np.int64)]
    order = np.argsort(positions, kind="stable")
    positions, tokens = positions[order], tokens[order]
    owner = np.asarray(np.searchsorted(opens, positions, side="right"), dtype=np.int64) - 1
    per_geometry = np.bincount(owner, minlength=len(which))
    surfaces = np.bincount(polygon_geometry, minlength=len(geometries))
    chosen = np.asarray(which, dtype=np.int64)
    mismatch = np.flatnonzero(per_geometry != surfaces[chosen])
    if len(mismatch):
        bad = int(chosen[mismatch[0]])
        raise BoundaryError(
            bad,
            f"semantics 'values' hold {int(per_geometry[mismatch[0]])} entries for "
            f"{int(surfaces[bad])} surfaces",
        )
    has = np.isin(polygon_geometry, chosen)
    out[has] = tokens  # both follow geometry order, then surface order
    return out


def _first_not_list(text: bytes, count: int) -> int:
    for i, item in enumerate(orjson.loads(text)):
        if not isinstance(item, list):
            return i
    return count - 1


def _first_with(text: bytes, geom_open: NDArray[np.int64], needles: tuple[bytes, ...]) -> int:
    position = min((p for p in (text.find(n) for n in needles) if p >= 0), default=0)
    return int(np.searchsorted(geom_open, position, side="right") - 1)
