"""A small GLB writer: numpy arrays in, one binary glTF 2.0 out.

Written here rather than through pygltflib or trimesh because scenes of thousands of objects
share a few large buffer views (one for all positions, one for all indices) and per-object
accessors into them; building that from arrays is a few lines and no per-object copies.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

_ARRAY_BUFFER = 34962
_ELEMENT_ARRAY_BUFFER = 34963
_COMPONENT: dict[np.dtype[Any], int] = {
    np.dtype(np.int8): 5120,
    np.dtype(np.uint8): 5121,
    np.dtype(np.int16): 5122,
    np.dtype(np.uint16): 5123,
    np.dtype(np.uint32): 5125,
    np.dtype(np.float32): 5126,
}
_TYPE = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4"}


class GlbBuilder:
    """Collects buffer views, accessors and the glTF JSON of one binary glTF.

    Parameters
    ----------
    generator : written to ``asset.generator``
    """

    def __init__(self, generator: str = "yiwang-citytwin render") -> None:
        self.gltf: dict[str, Any] = {
            "asset": {"version": "2.0", "generator": generator},
            "scene": 0,
            "scenes": [{"nodes": []}],
            "nodes": [],
            "meshes": [],
            "materials": [],
            "accessors": [],
            "bufferViews": [],
            "buffers": [],
        }
        self._parts: list[bytes] = []
        self._length = 0

    # -- binary data ----------------------------------------------------------------------------
    def add_view(
        self,
        data: bytes | NDArray[Any],
        target: int | None = None,
        stride: int | None = None,
        align: int = 4,
    ) -> int:
        """Append bytes (``align``-byte aligned) as a new buffer view; returns its index."""
        raw = data if isinstance(data, bytes) else np.ascontiguousarray(data).tobytes()
        pad = (-self._length) % align
        if pad:
            self._parts.append(b"\x00" * pad)
            self._length += pad
        view: dict[str, Any] = {"buffer": 0, "byteOffset": self._length, "byteLength": len(raw)}
        if target is not None:
            view["target"] = target
        if stride is not None:
            view["byteStride"] = stride
        self._parts.append(raw)
        self._length += len(raw)
        self.gltf["bufferViews"].append(view)
        return len(self.gltf["bufferViews"]) - 1

    def add_vertex_view(self, array: NDArray[Any]) -> int:
        """A buffer view of vertex attribute data (one element per row, strided so that
        several accessors may share it)."""
        stride = array.itemsize * (array.shape[1] if array.ndim == 2 else 1)
        return self.add_view(array, _ARRAY_BUFFER, max(stride, 4))

    def add_index_view(self, array: NDArray[np.uint32]) -> int:
        """A buffer view of triangle indices."""
        return self.add_view(array, _ELEMENT_ARRAY_BUFFER)

    def add_accessor(
        self,
        view: int,
        dtype: Any,
        width: int,
        count: int,
        *,
        offset_bytes: int = 0,
        minimum: list[float] | None = None,
        maximum: list[float] | None = None,
    ) -> int:
        """An accessor of ``count`` elements of ``width`` components into ``view``."""
        accessor: dict[str, Any] = {
            "bufferView": view,
            "componentType": _COMPONENT[dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)],
            "count": int(count),
            "type": _TYPE[width],
        }
        if offset_bytes:
            accessor["byteOffset"] = int(offset_bytes)
        if minimum is not None and maximum is not None:
            accessor["min"] = minimum
            accessor["max"] = maximum
        self.gltf["accessors"].append(accessor)
        return len(self.gltf["accessors"]) - 1

    # -- scene ------------------------------------------------------------------------------------
    def add_node(self, node: dict[str, Any], parent: int | None = None) -> int:
        """A node, as a child of ``parent`` or a root of the scene; returns its index."""
        self.gltf["nodes"].append(node)
        index = len(self.gltf["nodes"]) - 1
        if parent is None:
            self.gltf["scenes"][0]["nodes"].append(index)
        else:
            self.gltf["nodes"][parent].setdefault("children", []).append(index)
        return index

    def add_mesh(self, mesh: dict[str, Any]) -> int:
        """A mesh; returns its index."""
        self.gltf["meshes"].append(mesh)
        return len(self.gltf["meshes"]) - 1

    def add_material(self, material: dict[str, Any]) -> int:
        """A material; returns its index."""
        self.gltf["materials"].append(material)
        return len(self.gltf["materials"]) - 1

    def use_extension(self, name: str) -> None:
        """Declare an extension in ``extensionsUsed``."""
        used = self.gltf.setdefault("extensionsUsed", [])
        if name not in used:
            used.append(name)

    # -- output -----------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The GLB: header, JSON chunk (space padded), BIN chunk (zero padded)."""
        gltf = {k: v for k, v in self.gltf.items() if v != []}
        binary = b"".join(self._parts)
        binary += b"\x00" * ((-len(binary)) % 8)
        if binary:
            gltf["buffers"] = [{"byteLength": len(binary)}]
        else:
            gltf.pop("bufferViews", None)
            gltf.pop("accessors", None)
        return write_glb(gltf, binary)


def write_glb(gltf: dict[str, Any], binary: bytes) -> bytes:
    """A GLB of a glTF JSON and its BIN chunk (already padded to 8 bytes, or empty)."""
    text = orjson.dumps(gltf, option=orjson.OPT_SERIALIZE_NUMPY)
    text += b" " * ((-len(text)) % 4)
    chunks = struct.pack("<II", len(text), 0x4E4F534A) + text
    if binary:
        chunks += struct.pack("<II", len(binary), 0x004E4942) + binary
    return struct.pack("<III", 0x46546C67, 2, 12 + len(chunks)) + chunks


def read_glb(data: bytes) -> tuple[dict[str, Any], bytes]:
    """The JSON and the BIN chunk of a GLB.

    Raises
    ------
    ValueError
        If ``data`` is not a GLB.
    """
    if len(data) < 20 or data[:4] != b"glTF":
        raise ValueError("not a GLB (bad magic)")
    (json_length,) = struct.unpack_from("<I", data, 12)
    gltf: dict[str, Any] = orjson.loads(data[20 : 20 + json_length])
    rest = 20 + json_length
    binary = data[rest + 8 :] if len(data) > rest + 8 else b""
    return gltf, binary


def accessor_array(gltf: dict[str, Any], binary: bytes, index: int) -> NDArray[Any]:
    """The data of accessor ``index`` as an ``(count, width)`` array (tightly packed views)."""
    accessor = gltf["accessors"][index]
    view = gltf["bufferViews"][accessor["bufferView"]]
    dtype: np.dtype[Any] = {v: k for k, v in _COMPONENT.items()}[accessor["componentType"]]
    width = {v: k for k, v in _TYPE.items()}[accessor["type"]]
    start = view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
    count = accessor["count"] * width
    out: NDArray[Any] = np.frombuffer(binary, dtype=dtype, count=count, offset=start)
    return out.reshape(-1, width)
