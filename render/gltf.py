"""glTF export of a site, a subtree (grid cell, community, any code) or one object.

The node hierarchy mirrors the containment tree; every node is named by its object's code
and carries code, kind, name and attributes in ``extras``. Coordinates are y-up around the
site's ENU origin (see :mod:`render.placement`), recorded in ``asset.extras`` together with
the origin's longitude, latitude and height and the local-to-ECEF matrix. Each mesh node is
translated to its object's centre so that vertices stay small in float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from cim.model import CimObject
from cim.store import Store
from render.glb import GlbBuilder
from render.materials import kind_material
from render.placement import Z_UP_TO_Y_UP, site_frame
from render.scene import Progress, gather_geometry, subtree_objects


def _node_extras(obj: CimObject) -> dict[str, Any]:
    extras: dict[str, Any] = {"code": obj.code, "kind": obj.kind, "name": obj.name}
    if obj.source_id is not None:
        extras["source_id"] = obj.source_id
    if obj.attributes:
        extras["attributes"] = obj.attributes
    return extras


def export_glb(
    store: Store, site: str, root: str | None = None, *, progress: Progress | None = None
) -> bytes:
    """A binary glTF of a whole site, a subtree or one object.

    Parameters
    ----------
    store, site : where to read
    root : code of the subtree to export; ``None`` for the whole site
    progress : called with (fraction 0..1, message)

    Returns
    -------
    bytes : the GLB (``model/gltf-binary``)

    Raises
    ------
    NotFoundError
        If the site or ``root`` does not exist.
    """
    report = progress or (lambda fraction, message: None)
    info = store.site(site)
    frame = site_frame(info)
    report(0.0, "reading the tree")
    objects = subtree_objects(store, site, root)
    report(0.2, f"gathering the meshes of {len(objects)} objects")
    geometry = gather_geometry(store, site, objects)
    report(0.6, "writing the GLB")

    counts = np.diff(geometry.vertex_offsets)
    fcounts = np.diff(geometry.face_offsets)
    has_mesh = (counts > 0) & (fcounts > 0)
    bounds = geometry.bounds()
    centre = np.zeros((len(objects), 3))
    centre[has_mesh] = (bounds[has_mesh, :3] + bounds[has_mesh, 3:]) / 2 - frame.origin
    # a mesh node's translation, y-up, rounded to the millimetre so it reads cleanly
    centre_yup = np.round(centre @ Z_UP_TO_Y_UP.T, 3)
    per_vertex = np.repeat(centre_yup, counts, axis=0)
    positions: NDArray[np.float32] = (
        frame.local(geometry.vertices) @ Z_UP_TO_Y_UP.T - per_vertex
    ).astype(np.float32)
    owner = np.repeat(np.arange(len(objects)), fcounts)
    local_faces = (geometry.faces - geometry.vertex_offsets[:-1][owner][:, None]).astype(np.uint32)

    builder = GlbBuilder()
    builder.gltf["asset"]["extras"] = {"site": site, "root": root, **frame.extras()}
    position_view = builder.add_vertex_view(positions) if len(positions) else -1
    index_view = builder.add_index_view(local_faces) if len(local_faces) else -1
    lows = np.zeros((len(objects), 3), dtype=np.float32)
    highs = np.zeros((len(objects), 3), dtype=np.float32)
    if has_mesh.any():
        starts = geometry.vertex_offsets[:-1][has_mesh]
        lows[has_mesh] = np.minimum.reduceat(positions, starts, axis=0)
        highs[has_mesh] = np.maximum.reduceat(positions, starts, axis=0)

    materials: dict[str, int] = {}
    node_of: dict[str, int] = {}
    world: dict[str, list[float]] = {}
    zero = [0.0, 0.0, 0.0]
    # plain lists: one Python step per object, no numpy scalars in the loop
    has_l, counts_l, fcounts_l = has_mesh.tolist(), counts.tolist(), fcounts.tolist()
    voff_l, foff_l = geometry.vertex_offsets.tolist(), geometry.face_offsets.tolist()
    lows_l, highs_l, centre_l = lows.tolist(), highs.tolist(), centre_yup.tolist()
    for i, obj in enumerate(objects):
        node: dict[str, Any] = {"name": obj.code, "extras": _node_extras(obj)}
        parent_node = node_of.get(obj.parent) if obj.parent is not None else None
        parent_world = (
            world[obj.parent] if obj.parent is not None and parent_node is not None else zero
        )
        here = parent_world
        if has_l[i]:
            kind = obj.kind
            if kind not in materials:
                materials[kind] = builder.add_material(kind_material(kind))
            position = builder.add_accessor(
                position_view,
                np.float32,
                3,
                counts_l[i],
                offset_bytes=voff_l[i] * 12,
                minimum=lows_l[i],
                maximum=highs_l[i],
            )
            indices = builder.add_accessor(
                index_view, np.uint32, 1, fcounts_l[i] * 3, offset_bytes=foff_l[i] * 12
            )
            primitive = {
                "attributes": {"POSITION": position},
                "indices": indices,
                "material": materials[kind],
            }
            node["mesh"] = builder.add_mesh({"name": obj.code, "primitives": [primitive]})
            here = centre_l[i]
            translation = [a - b for a, b in zip(here, parent_world, strict=True)]
            if any(translation):
                node["translation"] = translation
        node_of[obj.code] = builder.add_node(node, parent_node)
        world[obj.code] = here
    report(1.0, "done")
    return builder.to_bytes()
