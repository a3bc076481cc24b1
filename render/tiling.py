"""A quadtree over a site's extent, and the JSON of its tiles.

Items (features, terrain triangles) go to the quadrant holding their centre; a node with more
than ``capacity`` items splits. Bounding boxes are the union of the items' own boxes, so a
parent always contains its children and every item sticks out of its cell harmlessly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass
class TileNode:
    """One tile of the quadtree.

    Attributes
    ----------
    level, x, y : address (level 0 is the root; x east, y north)
    items : (n,) int64 indices of every item under the tile
    children : the non-empty quadrants
    content : (c,) int64 items its own content draws (all of them for a leaf)
    geometric_error : metres; 0 for leaves
    box : (6,) float64 local ``minx, miny, minz, maxx, maxy, maxz`` of everything under it
    uri : content path relative to the tileset, or ``None`` for an empty tile
    """

    level: int
    x: int
    y: int
    items: NDArray[np.int64]
    children: list[TileNode] = field(default_factory=list)
    content: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    geometric_error: float = 0.0
    box: NDArray[np.float64] = field(default_factory=lambda: np.zeros(6))
    uri: str | None = None

    def walk(self) -> list[TileNode]:
        """This tile and all below it, parents first."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out

    @property
    def is_leaf(self) -> bool:
        return not self.children


def build_quadtree(
    centres: NDArray[np.float64],
    boxes: NDArray[np.float64],
    capacity: int,
    max_level: int = 12,
) -> TileNode:
    """Split items into a quadtree of at most ``capacity`` items per leaf.

    Parameters
    ----------
    centres : (k, 2) float64, metres
    boxes : (k, 6) float64, metres, each item's own box
    capacity : items per leaf (a leaf at ``max_level`` may hold more)

    Raises
    ------
    ValueError
        If ``capacity < 1``.
    """
    if capacity < 1:
        raise ValueError(f"capacity(={capacity}) must be >= 1")
    if len(centres):
        lo, hi = centres.min(axis=0), centres.max(axis=0)
    else:
        lo = hi = np.zeros(2)
    side = float(max(hi[0] - lo[0], hi[1] - lo[1], 1.0)) * (1 + 1e-9)
    root = TileNode(0, 0, 0, np.arange(len(centres), dtype=np.int64))
    stack = [root]
    while stack:
        node = stack.pop()
        node.box = _union(boxes[node.items])
        if len(node.items) <= capacity or node.level >= max_level:
            node.content = node.items
            continue
        cell = side / 2**node.level
        mid_x = lo[0] + (node.x + 0.5) * cell
        mid_y = lo[1] + (node.y + 0.5) * cell
        pts = centres[node.items]
        east = pts[:, 0] >= mid_x
        north = pts[:, 1] >= mid_y
        for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
            mask = (east == bool(dx)) & (north == bool(dy))
            if mask.any():
                child = TileNode(node.level + 1, 2 * node.x + dx, 2 * node.y + dy, node.items[mask])
                node.children.append(child)
                stack.append(child)
    return root


def _union(boxes: NDArray[np.float64]) -> NDArray[np.float64]:
    if len(boxes) == 0:
        return np.zeros(6)
    out: NDArray[np.float64] = np.r_[boxes[:, :3].min(axis=0), boxes[:, 3:].max(axis=0)]
    return out


def box_volume(box: NDArray[np.float64], pad_m: float = 0.01) -> list[float]:
    """A 3D Tiles ``box`` (centre and three half-axes) of a local min/max box, padded so that
    float rounding never puts content outside it."""
    lo, hi = box[:3] - pad_m, box[3:] + pad_m
    centre = (lo + hi) / 2
    half = np.maximum((hi - lo) / 2, pad_m)
    return [
        *(float(v) for v in centre),
        float(half[0]),
        0.0,
        0.0,
        0.0,
        float(half[1]),
        0.0,
        0.0,
        0.0,
        float(half[2]),
    ]


def propagate_errors(root: TileNode, own: dict[int, float], floor_m: float = 1.0) -> None:
    """Set geometric errors bottom-up so that they strictly decrease downwards.

    Leaves get 0; a parent gets the larger of its own simplification error (``own``, keyed by
    ``id(node)``), ``floor_m`` and twice its largest child's error.
    """
    for node in reversed(root.walk()):
        if node.is_leaf:
            node.geometric_error = 0.0
            continue
        largest_child = max(c.geometric_error for c in node.children)
        node.geometric_error = max(own.get(id(node), 0.0), floor_m, 2.0 * largest_child)


def tile_json(node: TileNode) -> dict[str, Any]:
    """The tile and its children as 3D Tiles 1.1 JSON (refinement inherited from the root)."""
    out: dict[str, Any] = {
        "boundingVolume": {"box": box_volume(node.box)},
        "geometricError": round(float(node.geometric_error), 3),
    }
    if node.uri is not None:
        out["content"] = {"uri": node.uri}
    if node.children:
        out["children"] = [tile_json(c) for c in node.children]
    return out
