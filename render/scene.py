"""What a scene holds: the objects of a subtree and their triangles, gathered column-wise."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from cim.geometry.columns import MeshColumns
from cim.geometry.ragged import concat_ranges
from cim.model import COMMUNITY, DISTRICT, STREET, CimObject
from cim.store import Store

Progress = Callable[[float, str], None]

#: Kinds whose subtree is large enough that one scan of the site beats a walk by queries.
_WIDE_KINDS = frozenset({DISTRICT, STREET, COMMUNITY})


def subtree_objects(store: Store, site: str, root: str | None = None) -> list[CimObject]:
    """The objects of a subtree in pre-order (parents before children, siblings by code).

    Parameters
    ----------
    store, site : where to read
    root : code of the subtree's root; ``None`` for the whole site

    Raises
    ------
    NotFoundError
        If the site or the root code does not exist.
    """
    store.site(site)
    top = None if root is None else store.get(site, root)
    if top is None or top.kind in _WIDE_KINDS:
        everything = store.all_objects(site)
        children: dict[str | None, list[CimObject]] = defaultdict(list)
        known = {o.code for o in everything}
        for obj in everything:
            # an object whose parent is missing is shown as a root rather than dropped
            parent = obj.parent if obj.parent in known else None
            children[parent].append(obj)
        for group in children.values():
            group.sort(key=lambda o: o.code)
        starts = children[None] if top is None else [top]
        return _preorder(starts, lambda o: children.get(o.code, []))
    return _preorder([top], lambda o: store.children(site, o.code))


def _preorder(
    starts: Sequence[CimObject], kids: Callable[[CimObject], Sequence[CimObject]]
) -> list[CimObject]:
    out: list[CimObject] = []
    stack = list(reversed(starts))
    seen: set[str] = set()
    while stack:
        obj = stack.pop()
        if obj.code in seen:
            continue
        seen.add(obj.code)
        out.append(obj)
        stack.extend(reversed(kids(obj)))
    return out


def select_columns(columns: MeshColumns, indices: NDArray[np.int64]) -> MeshColumns:
    """The meshes of objects ``indices`` (in that order) as new columns, faces re-based."""
    idx = np.asarray(indices, dtype=np.int64)
    v0, v1 = columns.vertex_offsets[idx], columns.vertex_offsets[idx + 1]
    f0, f1 = columns.face_offsets[idx], columns.face_offsets[idx + 1]
    vcount, fcount = v1 - v0, f1 - f0
    vstart = np.r_[0, np.cumsum(vcount)].astype(np.int64)
    fstart = np.r_[0, np.cumsum(fcount)].astype(np.int64)
    shift = np.repeat(vstart[:-1] - v0, fcount)
    face_index = concat_ranges(f0, f1)
    faces = columns.faces[face_index]
    faces += shift[:, None]
    return MeshColumns(
        columns.vertices[concat_ranges(v0, v1)],
        np.asarray(faces, dtype=np.int64).reshape(-1, 3),
        columns.surfaces[face_index],
        vstart,
        fstart,
    )


def gather_geometry(store: Store, site: str, objects: Sequence[CimObject]) -> MeshColumns:
    """The triangles of ``objects`` as columns in the same order (empty where none).

    Each geometry chunk of the store is read once and sliced with array operations.
    """
    by_chunk: dict[int, list[int]] = defaultdict(list)
    for position, obj in enumerate(objects):
        if obj.chunk is not None and obj.index is not None:
            by_chunk[obj.chunk].append(position)
    parts: list[MeshColumns] = []
    order: list[int] = []
    for chunk, positions in sorted(by_chunk.items()):
        columns = store.mesh_columns(site, chunk)
        index = np.array([objects[p].index for p in positions], dtype=np.int64)
        parts.append(select_columns(columns, index))
        order.extend(positions)
    missing = sorted(set(range(len(objects))) - set(order))
    if missing:
        parts.append(MeshColumns.empty(len(missing)))
        order.extend(missing)
    if not parts:
        return MeshColumns.empty(0)
    joined = parts[0] if len(parts) == 1 else MeshColumns.concat(parts)
    if order == list(range(len(objects))):
        return joined  # already in the caller's order (one chunk, all meshed)
    inverse = np.empty(len(objects), dtype=np.int64)
    inverse[np.asarray(order, dtype=np.int64)] = np.arange(len(order), dtype=np.int64)
    return select_columns(joined, inverse)
