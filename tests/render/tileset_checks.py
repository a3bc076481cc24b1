"""Reading a 3D Tiles 1.1 tileset back: its tiles, boxes and per-feature property tables."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from render.glb import accessor_array, read_glb


def walk(
    tile: dict[str, Any], parent: dict[str, Any] | None = None
) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Every tile with its parent, parents first."""
    yield tile, parent
    for child in tile.get("children", []):
        yield from walk(child, tile)


def box_corners(box: list[float]) -> NDArray[np.float64]:
    """(8, 3) corners of a 3D Tiles ``box``."""
    centre = np.array(box[:3])
    axes = np.array(box[3:]).reshape(3, 3)
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
    out: NDArray[np.float64] = centre + signs @ axes
    return out


def box_contains(outer: list[float], points: NDArray[np.float64], tol: float = 1e-6) -> bool:
    """Whether all ``points`` (n, 3) lie in the oriented box ``outer``."""
    centre = np.array(outer[:3])
    axes = np.array(outer[3:]).reshape(3, 3)
    lengths = np.linalg.norm(axes, axis=1)
    local = (points - centre) @ (axes / lengths[:, None]).T
    return bool((np.abs(local) <= lengths + tol).all())


def load(path: Path) -> dict[str, Any]:
    tileset: dict[str, Any] = orjson.loads(path.read_bytes())
    return tileset


def tile_positions(
    gltf: dict[str, Any], binary: bytes
) -> list[tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64] | None, int | None]]:
    """Per primitive of the single mesh: local z-up vertices (tile frame), faces, feature ids
    and the material index."""
    node = gltf["nodes"][gltf["scenes"][0]["nodes"][0]]
    translation = np.array(node.get("translation", [0.0, 0.0, 0.0]))
    out = []
    for primitive in gltf["meshes"][node["mesh"]]["primitives"]:
        yup = accessor_array(gltf, binary, primitive["attributes"]["POSITION"]) + translation
        zup = np.column_stack([yup[:, 0], -yup[:, 2], yup[:, 1]])
        faces = accessor_array(gltf, binary, primitive["indices"]).reshape(-1, 3)
        ids = None
        if "_FEATURE_ID_0" in primitive["attributes"]:
            ids = accessor_array(gltf, binary, primitive["attributes"]["_FEATURE_ID_0"]).ravel()
        out.append((zup, faces.astype(np.int64), ids, primitive.get("material")))
    return out


def property_strings(gltf: dict[str, Any], binary: bytes, name: str) -> list[str]:
    """The string column ``name`` of the glb's first property table."""
    table = gltf["extensions"]["EXT_structural_metadata"]["propertyTables"][0]
    column = table["properties"][name]
    views = gltf["bufferViews"]
    values = views[column["values"]]
    offsets_view = views[column["stringOffsets"]]
    offsets = np.frombuffer(
        binary, dtype="<u4", count=table["count"] + 1, offset=offsets_view["byteOffset"]
    )
    raw = binary[values["byteOffset"] : values["byteOffset"] + values["byteLength"]]
    return [raw[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets)]


def property_numbers(gltf: dict[str, Any], binary: bytes, name: str) -> NDArray[np.float64]:
    """The FLOAT64 column ``name`` of the glb's first property table."""
    table = gltf["extensions"]["EXT_structural_metadata"]["propertyTables"][0]
    view = gltf["bufferViews"][table["properties"][name]["values"]]
    out: NDArray[np.float64] = np.frombuffer(
        binary, dtype="<f8", count=table["count"], offset=view["byteOffset"]
    )
    return out


def read_tile(path: Path) -> tuple[dict[str, Any], bytes]:
    return read_glb(path.read_bytes())
