"""Exploded views: a building's storeys lifted apart, so every floor can be seen at once.

Works on any GLB from :func:`render.gltf.export_glb`: the nodes of storeys (kind
``IfcBuildingStorey`` in their ``extras``) are raised, in order of elevation, by
``gap_m`` each above the one below; everything under a storey moves with it.
"""

from __future__ import annotations

from typing import Any

from render.glb import read_glb, write_glb

STOREY_KINDS = frozenset({"IfcBuildingStorey", "BuildingStorey", "Storey"})


def explode_storeys(glb: bytes, gap_m: float) -> bytes:
    """``glb`` with its storeys ``gap_m`` apart (y is up in glTF).

    Raises
    ------
    ValueError
        If ``gap_m`` is negative or not finite, or ``glb`` is not a GLB.
    """
    if not (gap_m >= 0 and gap_m != float("inf")):
        raise ValueError(f"gap_m(={gap_m}) must be a finite number >= 0")
    gltf, binary = read_glb(glb)
    storeys: list[tuple[float, int]] = []
    for index, node in enumerate(gltf.get("nodes", [])):
        extras: dict[str, Any] = node.get("extras") or {}
        if extras.get("kind") in STOREY_KINDS:
            attributes = extras.get("attributes") or {}
            try:
                elevation = float(attributes.get("Elevation") or 0.0)
            except (TypeError, ValueError):
                elevation = 0.0
            storeys.append((elevation, index))
    for rank, (_, index) in enumerate(sorted(storeys)):
        node = gltf["nodes"][index]
        x, y, z = node.get("translation", [0.0, 0.0, 0.0])
        node["translation"] = [x, y + rank * gap_m, z]
    return write_glb(gltf, binary)
