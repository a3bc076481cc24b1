"""glTF 2.0 (``.gltf``, ``.glb``) and Wavefront OBJ meshes, read through trimesh.

Each named glTF mesh node, or each OBJ object (``o`` name), becomes one ``Mesh`` object.
Meshes carry no CRS and often no real-world frame: the caller says how the file's numbers
map to real coordinates (``vertex * scale + offset``, after turning y-up files z-up).

trimesh reads glTF positions as they are stored (no axis swap), keeps every vertex of a
shared ``POSITION`` accessor in each mesh, and renames repeated node names to ``name_1``,
``name_2``..., which can collide with real names. This loader therefore keeps only the
vertices a mesh's faces use and takes names from the file's own node list.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import trimesh
from numpy.typing import NDArray

from cim.errors import SourceError
from cim.geometry.columns import MeshColumns
from cim.loaders.base import ParsedSource, SourceObject
from cim.loaders.limits import MAX_COORDINATE, plausible_rows

_FORMATS = {".gltf": "gltf", ".glb": "gltf", ".obj": "obj"}
_GLB_MAGIC = b"glTF"
_GLB_JSON_CHUNK = 0x4E4F534A
_OBJ_NAME = re.compile(rb"^o[ \t]+(.*?)[ \t]*\r?$", re.MULTILINE)


def load_mesh(
    path: str | Path,
    *,
    crs: str | None = None,
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
    scale: float = 1.0,
    up_axis: str = "z",
) -> ParsedSource:
    """Parse a glTF, GLB or OBJ file into one ``Mesh`` object per mesh node.

    Parameters
    ----------
    path : the ``.gltf`` (with its buffers beside it), ``.glb`` or ``.obj`` file
    crs : CRS of the real coordinates (meshes declare none), e.g. ``"EPSG:7415"``
    offset : (3,) float, metres
        Added to every scaled vertex: the real position of the file's origin.
    scale : float
        Real metres per file unit (``0.001`` for integer millimetres).
    up_axis : ``"z"`` or ``"y"``
        The file's up axis; ``"y"`` (the glTF convention) is turned z-up by
        ``(x, y, z) -> (x, -z, y)`` before scaling.

    Returns
    -------
    ParsedSource
        Objects of kind ``Mesh`` in file order, ``source_id`` and ``name`` the glTF node
        name (``node-<index>`` if it has none; repeats get ``#2``, ``#3``...) or the OBJ
        object name (trimesh joins the parts of a repeated ``o`` name into one object).
        Each node's world transform is applied and all primitives of its mesh are joined;
        meshes without triangles are skipped. Faces carry no semantic class and
        ``footprints`` is ``None`` (the importer derives them).

    Raises
    ------
    ValueError
        If ``up_axis`` is not ``"y"`` or ``"z"``, or ``scale`` is not a positive number.
    SourceError
        If the file is missing, not a supported format, unreadable or corrupt, holds no
        triangles, or a mesh has out-of-range face indices or non-finite coordinates.
    """
    path = Path(path)
    if up_axis not in ("y", "z"):
        raise ValueError(f"up_axis(={up_axis!r}) must be 'y' or 'z'")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale(={scale}) must be > 0")
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SourceError(path, f"not a mesh file: {path.suffix!r} is not .gltf, .glb or .obj")
    if not path.is_file():
        raise SourceError(path, "no such file")

    scene = _read_scene(path, fmt)
    original = _gltf_frame_names(path) if fmt == "gltf" else {}
    object_order = _obj_object_names(path) if fmt == "obj" else []
    names: list[str] = []
    blocks: list[tuple[NDArray[np.float64], NDArray[np.int64]]] = []
    for frame, nodes in _group_by_owner(scene, original, object_order):
        vertices, faces = _owner_mesh(path, scene, frame, nodes)
        if len(faces) == 0:
            continue
        names.append(original.get(frame, (0, frame))[1])
        blocks.append((vertices, faces))
    if not blocks:
        raise SourceError(path, "the file holds no triangle meshes")

    geometry = _columns(blocks)
    xyz = geometry.vertices
    if up_axis == "y":
        xyz = np.column_stack([xyz[:, 0], -xyz[:, 2], xyz[:, 1]])
    with np.errstate(over="ignore", invalid="ignore"):  # load_source refuses overflows
        xyz = xyz * scale + np.asarray(offset, dtype=np.float64)
    objects = [SourceObject(sid, "Mesh", sid) for sid in _deduplicate(names)]
    return ParsedSource(path, fmt, crs, objects, geometry.transformed(xyz))


def _read_scene(path: Path, fmt: str) -> trimesh.Scene:
    """The file as a trimesh scene, vertices neither merged nor reordered."""
    options: dict[str, Any] = {"process": False, "skip_materials": True}
    if fmt == "obj":
        options.update(split_objects=True, group_material=False)
    try:
        scene = trimesh.load(str(path), force="scene", **options)
    except Exception as exc:  # trimesh raises anything from ValueError to struct.error
        raise SourceError(path, f"cannot read as {fmt} (truncated or corrupt?): {exc}") from None
    if not isinstance(scene, trimesh.Scene):
        raise SourceError(path, f"cannot read as {fmt}: not a scene")
    return scene


def _gltf_frame_names(path: Path) -> dict[str, tuple[int, str]]:
    """trimesh's frame name of each glTF node -> (node index, the node's own name).

    trimesh makes node names unique with :func:`trimesh.util.unique_name` in node order;
    doing the same here recovers the name the file gives each node.
    """
    try:
        raw = path.read_bytes()
        if raw[:4] == _GLB_MAGIC:
            length, kind = struct.unpack_from("<II", raw, 12)
            if kind != _GLB_JSON_CHUNK:
                raise ValueError("the first GLB chunk is not JSON")
            header = orjson.loads(raw[20 : 20 + length])
        else:
            header = orjson.loads(raw)
        nodes = header.get("nodes", [])
    except (OSError, ValueError, struct.error, AttributeError) as exc:
        raise SourceError(path, f"cannot read the glTF node list: {exc}") from None
    taken: dict[str, int] = {}
    counts: dict[str | None, int] = {}
    for index, node in enumerate(nodes):
        start = node.get("name", str(index)) if isinstance(node, dict) else str(index)
        taken[trimesh.util.unique_name(start, taken, counts=counts)] = index
    out: dict[str, tuple[int, str]] = {}
    for frame, index in taken.items():
        node = nodes[index]
        own = node.get("name") if isinstance(node, dict) else None
        out[frame] = (index, own if isinstance(own, str) and own else f"node-{index}")
    return out


def _obj_object_names(path: Path) -> list[str]:
    """The ``o`` names of an OBJ file in file order."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SourceError(path, f"cannot read file: {exc.strerror}") from None
    return [m.decode("utf-8", "replace") for m in _OBJ_NAME.findall(raw)]


def _group_by_owner(
    scene: trimesh.Scene, original: dict[str, tuple[int, str]], object_order: list[str]
) -> list[tuple[str, list[str]]]:
    """Geometry frames grouped by the file node that owns them, in file order.

    trimesh puts each primitive of a multi-primitive glTF mesh on a child frame with a
    random suffix; such frames belong to their parent node. OBJ objects, which trimesh
    reorders, follow ``object_order`` (their ``o`` names as the file gives them).
    """
    parents = scene.graph.transforms.parents
    owners: dict[str, list[str]] = {}
    for frame in scene.graph.nodes_geometry:
        owner = frame
        if frame not in original and parents.get(frame) in original:
            owner = parents[frame]
        owners.setdefault(owner, []).append(frame)
    if original:
        return sorted(owners.items(), key=lambda item: original.get(item[0], (-1, ""))[0])
    rank = {name: i for i, name in enumerate(dict.fromkeys(object_order))}
    return sorted(owners.items(), key=lambda item: rank.get(item[0], len(rank)))


def _owner_mesh(
    path: Path, scene: trimesh.Scene, owner: str, frames: Iterable[str]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """World vertices ``(n, 3)`` and local faces ``(m, 3)`` of one node's triangles.

    Only vertices that faces use are kept, in their file order.
    """
    vertex_parts: list[NDArray[np.float64]] = []
    face_parts: list[NDArray[np.int64]] = []
    base = 0
    for frame in frames:
        transform, name = scene.graph[frame]
        mesh = scene.geometry.get(name)
        if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
            continue
        faces = np.asarray(mesh.faces, dtype=np.int64)
        vertices = np.asarray(mesh.vertices, dtype=np.float64)
        if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
            shapes = f"vertices {vertices.shape}, faces {faces.shape}"
            raise SourceError(path, f"malformed mesh ({shapes}; truncated?)", object_id=owner)
        if faces.min() < 0 or faces.max() >= len(vertices):
            raise SourceError(path, "face index out of range", object_id=owner)
        used, local = np.unique(faces, return_inverse=True)
        with np.errstate(over="ignore", invalid="ignore"):  # refused just below
            world = vertices[used] @ transform[:3, :3].T + transform[:3, 3]
        if not plausible_rows(world).all():
            raise SourceError(
                path, f"non-finite vertex coordinates, or beyond ±{MAX_COORDINATE:g}", owner
            )
        vertex_parts.append(world)
        face_parts.append(local.reshape(-1, 3) + base)
        base += len(used)
    if not face_parts:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    return np.concatenate(vertex_parts), np.concatenate(face_parts)


def _columns(blocks: list[tuple[NDArray[np.float64], NDArray[np.int64]]]) -> MeshColumns:
    vcount = np.array([len(v) for v, _ in blocks], dtype=np.int64)
    fcount = np.array([len(f) for _, f in blocks], dtype=np.int64)
    vertex_offsets = np.concatenate(([0], np.cumsum(vcount))).astype(np.int64)
    faces = np.concatenate([f for _, f in blocks]) + np.repeat(vertex_offsets[:-1], fcount)[:, None]
    return MeshColumns(
        np.concatenate([v for v, _ in blocks]),
        faces.astype(np.int64),
        np.zeros(len(faces), dtype=np.uint8),
        vertex_offsets,
        np.concatenate(([0], np.cumsum(fcount))).astype(np.int64),
    )


def _deduplicate(names: list[str]) -> list[str]:
    """Names made unique: the second ``a`` becomes ``a#2``, the third ``a#3``...

    A suffix never takes a name that another object has in the file.
    """
    taken = set(names)
    seen: set[str] = set()
    last: dict[str, int] = {}
    out: list[str] = []
    for name in names:
        if name not in seen:
            seen.add(name)
            out.append(name)
            continue
        number = last.get(name, 1) + 1
        while f"{name}#{number}" in taken:
            number += 1
        last[name] = number
        taken.add(f"{name}#{number}")
        out.append(f"{name}#{number}")
    return out
