"""Triangle meshes of many objects in shared arrays with per-object offsets.

A city of 10^6 buildings is a handful of numpy arrays, not 10^6 mesh objects; a
:class:`trimesh.Trimesh` is built only on demand, for one object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import trimesh

#: Semantic surface classes of a face (CityJSON surface types); index 0 means "none".
SURFACE_TYPES: tuple[str, ...] = (
    "",
    "GroundSurface",
    "WallSurface",
    "RoofSurface",
    "ClosureSurface",
    "OuterCeilingSurface",
    "OuterFloorSurface",
    "Window",
    "Door",
    "InteriorWallSurface",
    "CeilingSurface",
    "FloorSurface",
    "WaterSurface",
    "WaterGroundSurface",
    "WaterClosureSurface",
    "TrafficArea",
    "AuxiliaryTrafficArea",
    "TransportationMarking",
    "TransportationHole",
)
SURFACE_CODES: dict[str, int] = {name: i for i, name in enumerate(SURFACE_TYPES) if name}


@dataclass(frozen=True)
class MeshColumns:
    """Triangle meshes of ``k`` objects.

    Attributes
    ----------
    vertices : (n, 3) float64, metres
        All vertices, object after object.
    faces : (m, 3) int64
        Triangles as indices into ``vertices`` (global, not per object).
    surfaces : (m,) uint8
        Semantic surface class of each face, an index into :data:`SURFACE_TYPES`.
    vertex_offsets : (k + 1,) int64
        Object ``i`` owns ``vertices[vertex_offsets[i]:vertex_offsets[i + 1]]``.
    face_offsets : (k + 1,) int64
        Object ``i`` owns ``faces[face_offsets[i]:face_offsets[i + 1]]``.
    """

    vertices: NDArray[np.float64]
    faces: NDArray[np.int64]
    surfaces: NDArray[np.uint8]
    vertex_offsets: NDArray[np.int64]
    face_offsets: NDArray[np.int64]

    def __post_init__(self) -> None:
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"vertices(shape={self.vertices.shape}) must be (n, 3)")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"faces(shape={self.faces.shape}) must be (m, 3)")
        if len(self.surfaces) != len(self.faces):
            raise ValueError("surfaces must hold one class per face")
        if len(self.vertex_offsets) != len(self.face_offsets):
            raise ValueError("vertex_offsets and face_offsets must have the same length")
        if int(self.vertex_offsets[-1]) != len(self.vertices):
            raise ValueError("vertex_offsets[-1] must equal the number of vertices")
        if int(self.face_offsets[-1]) != len(self.faces):
            raise ValueError("face_offsets[-1] must equal the number of faces")

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def empty(cls, count: int = 0) -> MeshColumns:
        """Columns for ``count`` objects that have no geometry."""
        zeros = np.zeros(count + 1, dtype=np.int64)
        return cls(
            np.zeros((0, 3)),
            np.zeros((0, 3), dtype=np.int64),
            np.zeros(0, dtype=np.uint8),
            zeros,
            zeros.copy(),
        )

    @classmethod
    def concat(cls, parts: Sequence[MeshColumns]) -> MeshColumns:
        """Join columns object-wise, re-basing face indices."""
        if not parts:
            return cls.empty()
        vcounts = np.array([len(p.vertices) for p in parts], dtype=np.int64)
        vbase = np.concatenate(([0], np.cumsum(vcounts)[:-1]))
        fbase = np.concatenate(([0], np.cumsum([len(p.faces) for p in parts])[:-1]))
        faces = (
            np.concatenate([p.faces + b for p, b in zip(parts, vbase, strict=True)])
            if parts
            else np.zeros((0, 3), dtype=np.int64)
        )
        voff = np.concatenate(
            [[0]] + [p.vertex_offsets[1:] + b for p, b in zip(parts, vbase, strict=True)]
        ).astype(np.int64)
        foff = np.concatenate(
            [[0]] + [p.face_offsets[1:] + b for p, b in zip(parts, fbase, strict=True)]
        ).astype(np.int64)
        return cls(
            np.concatenate([p.vertices for p in parts]).reshape(-1, 3),
            faces.reshape(-1, 3).astype(np.int64),
            np.concatenate([p.surfaces for p in parts]).astype(np.uint8),
            voff,
            foff,
        )

    # -- access -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.vertex_offsets) - 1

    def object_arrays(self, index: int) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """Vertices ``(n, 3)`` and local faces ``(m, 3)`` of object ``index``.

        Raises
        ------
        IndexError
            If ``index`` is not an object of these columns.
        """
        if not 0 <= index < len(self):
            raise IndexError(f"index(={index}) must be in [0, {len(self)})")
        v0, v1 = int(self.vertex_offsets[index]), int(self.vertex_offsets[index + 1])
        f0, f1 = int(self.face_offsets[index]), int(self.face_offsets[index + 1])
        return self.vertices[v0:v1], self.faces[f0:f1] - v0

    def to_trimesh(self, index: int) -> trimesh.Trimesh:
        """A :class:`trimesh.Trimesh` of one object, built on demand."""
        import trimesh

        vertices, faces = self.object_arrays(index)
        return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)

    def face_object(self) -> NDArray[np.int64]:
        """``(m,)`` int64: the object index of every face."""
        return np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.face_offsets))

    def bounds(self) -> NDArray[np.float64]:
        """``(k, 6)`` float64 boxes ``minx, miny, minz, maxx, maxy, maxz``; NaN where empty."""
        out = np.full((len(self), 6), np.nan)
        counts = np.diff(self.vertex_offsets)
        has = counts > 0
        if not has.any() or len(self.vertices) == 0:
            return out
        starts = self.vertex_offsets[:-1][has]
        out[has, :3] = np.minimum.reduceat(self.vertices, starts, axis=0)
        out[has, 3:] = np.maximum.reduceat(self.vertices, starts, axis=0)
        return out

    def face_normals(self) -> NDArray[np.float64]:
        """``(m, 3)`` unit normals of the faces (zero for degenerate faces)."""
        tri = self.vertices[self.faces]
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        length = np.linalg.norm(normal, axis=1, keepdims=True)
        unit: NDArray[np.float64] = np.divide(
            normal, length, out=np.zeros_like(normal), where=length > 0
        )
        return unit

    def transformed(self, xyz: NDArray[np.float64]) -> MeshColumns:
        """The same topology with new vertex positions ``(n, 3)``."""
        return MeshColumns(
            np.ascontiguousarray(xyz, dtype=np.float64),
            self.faces,
            self.surfaces,
            self.vertex_offsets,
            self.face_offsets,
        )

    def to_arrays(self) -> dict[str, NDArray[Any]]:
        """The five arrays by name, for storage."""
        return {
            "vertices": self.vertices,
            "faces": self.faces,
            "surfaces": self.surfaces,
            "vertex_offsets": self.vertex_offsets,
            "face_offsets": self.face_offsets,
        }
