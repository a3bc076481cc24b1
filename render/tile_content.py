"""The glb of one tile: features with ids and a property table, or a piece of terrain.

Vertices are stored relative to the tile's centre (float32 keeps sub-millimetre precision
within a tile) and the glTF root node carries that centre as its translation, y-up.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from render.features import Features, block_mesh
from render.glb import GlbBuilder
from render.materials import kind_material
from render.metadata import FEATURES, Column, add_property_table, feature_ids_extension
from render.placement import Z_UP_TO_Y_UP
from render.scene import select_columns


def _positions(vertices: NDArray[np.float64], centre: NDArray[np.float64]) -> NDArray[np.float32]:
    out: NDArray[np.float32] = ((vertices - centre) @ Z_UP_TO_Y_UP.T).astype(np.float32)
    return out


def _root_node(builder: GlbBuilder, name: str, centre: NDArray[np.float64]) -> int:
    translation = [float(v) for v in Z_UP_TO_Y_UP @ centre]
    return builder.add_node({"name": name, "translation": translation})


def _primitive(
    builder: GlbBuilder,
    positions: NDArray[np.float32],
    faces: NDArray[np.int64],
    material: int,
    feature_ids: NDArray[np.float32] | None,
    feature_count: int,
) -> dict[str, Any]:
    position = builder.add_accessor(
        builder.add_vertex_view(positions),
        np.float32,
        3,
        len(positions),
        minimum=[float(v) for v in positions.min(axis=0)],
        maximum=[float(v) for v in positions.max(axis=0)],
    )
    indices = builder.add_accessor(
        builder.add_index_view(faces.astype(np.uint32)), np.uint32, 1, faces.size
    )
    primitive: dict[str, Any] = {
        "attributes": {"POSITION": position},
        "indices": indices,
        "material": material,
    }
    if feature_ids is not None:
        ids = builder.add_accessor(
            builder.add_vertex_view(feature_ids), np.float32, 1, len(feature_ids)
        )
        primitive["attributes"]["_FEATURE_ID_0"] = ids
        primitive["extensions"] = feature_ids_extension(feature_count)
    return primitive


def feature_tile(
    features: Features,
    items: NDArray[np.int64],
    schema: dict[str, Any],
    columns: list[Column],
    *,
    blocks: bool,
    name: str,
) -> bytes:
    """A tile of features ``items``: full meshes, or footprint blocks when ``blocks``.

    Features are grouped by kind (one primitive and material per kind); the feature id of a
    vertex is the row of its feature in the tile's property table.
    """
    kinds = [features.objects[i].kind for i in items.tolist()]
    order = np.argsort(np.array(kinds, dtype=object), kind="stable")
    items = items[order]
    kinds = [kinds[i] for i in order.tolist()]
    if blocks:
        vertices, faces = block_mesh(
            features.corners[items], features.bounds[items, 2], features.bounds[items, 5]
        )
        vcounts = np.full(len(items), 8, dtype=np.int64)
        fcounts = np.full(len(items), 10, dtype=np.int64)
    else:
        picked = select_columns(features.geometry, items)
        vertices, faces = picked.vertices, picked.faces
        vcounts = np.diff(picked.vertex_offsets)
        fcounts = np.diff(picked.face_offsets)
    box = features.bounds[items]
    centre = np.round((box[:, :3].min(axis=0) + box[:, 3:].max(axis=0)) / 2, 3)
    positions = _positions(vertices, centre)
    feature_of_vertex = np.repeat(np.arange(len(items), dtype=np.float32), vcounts)
    vstart = np.r_[0, np.cumsum(vcounts)]
    fstart = np.r_[0, np.cumsum(fcounts)]

    builder = GlbBuilder()
    builder.use_extension(FEATURES)
    heights = box[:, 5] - box[:, 2]
    add_property_table(builder, schema, columns, [features.objects[i] for i in items], heights)
    primitives = []
    bounds_of_kind = np.r_[0, np.flatnonzero(np.array(kinds[1:]) != np.array(kinds[:-1])) + 1]
    for a, b in zip(
        bounds_of_kind.tolist(), [*bounds_of_kind[1:].tolist(), len(items)], strict=True
    ):
        v0, v1, f0, f1 = int(vstart[a]), int(vstart[b]), int(fstart[a]), int(fstart[b])
        material = builder.add_material(kind_material(kinds[a]))
        primitives.append(
            _primitive(
                builder,
                positions[v0:v1],
                faces[f0:f1] - v0,
                material,
                feature_of_vertex[v0:v1],
                b - a,
            )
        )
    mesh = builder.add_mesh({"name": name, "primitives": primitives})
    root = _root_node(builder, name, centre)
    builder.gltf["nodes"][root]["mesh"] = mesh
    return builder.to_bytes()


def terrain_tile(
    vertices: NDArray[np.float64], faces: NDArray[np.int64], kind: str, *, name: str
) -> bytes:
    """A tile of terrain triangles (local frame, z up)."""
    centre = np.round((vertices.min(axis=0) + vertices.max(axis=0)) / 2, 3)
    builder = GlbBuilder()
    material = builder.add_material(kind_material(kind))
    primitive = _primitive(builder, _positions(vertices, centre), faces, material, None, 0)
    mesh = builder.add_mesh({"name": name, "primitives": [primitive]})
    root = _root_node(builder, name, centre)
    builder.gltf["nodes"][root]["mesh"] = mesh
    return builder.to_bytes()
