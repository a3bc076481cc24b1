"""3D Tiles 1.1 of a site: ``tileset.json`` and glb tiles, built once per site version.

Layout of a tileset::

    root (no content; transform = local frame -> ECEF at the site origin; REPLACE)
    ├── buildings quadtree: inner tiles draw footprint blocks of the largest features
    │   under them, leaves the full LoD; every feature has a feature id and a row
    │   (code, kind, name, attributes) in the tile's property table
    └── terrain quadtree: inner tiles simplified by vertex clustering, leaves full

Bounding volumes are ``box`` es in the local frame (grid east, grid north, up, metres
from the site's ENU origin); tiles sit under ``cache_dir/<site>/<version>/`` where the
version hashes the site's imported sources, so a re-import builds a new tileset.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from cim.errors import NotFoundError
from cim.geometry.columns import MeshColumns
from cim.store import Store
from render.features import Features, property_columns, site_features
from render.metadata import metadata_schema
from render.placement import site_frame
from render.scene import Progress
from render.simplify import cluster_vertices
from render.tile_content import feature_tile, terrain_tile
from render.tiling import TileNode, box_volume, build_quadtree, propagate_errors, tile_json

#: Bump when the tiles written for the same sources change.
FORMAT = "1"


@dataclass(frozen=True)
class TilingOptions:
    """How finely a site is tiled.

    Attributes
    ----------
    leaf_features : features per leaf tile at most
    coarse_features : footprint blocks an inner tile draws at most (the largest first)
    terrain_leaf_faces : terrain triangles per leaf tile at most
    terrain_grid : clusters across an inner terrain tile's cell when simplifying
    """

    leaf_features: int = 400
    coarse_features: int = 2000
    terrain_leaf_faces: int = 50_000
    terrain_grid: int = 64


def tileset_version(store: Store, site: str) -> str:
    """A short hash of what the tiles are made from (sources, their imports, the frame).

    Raises
    ------
    NotFoundError
        If there is no such site.
    """
    info = store.site(site)
    sources = [
        (s["key"], s["sha256"], str(s["imported"]))
        for s in sorted(store.sources(site), key=lambda s: str(s["key"]))
    ]
    payload = orjson.dumps(
        {
            "format": FORMAT,
            "site": site,
            "crs": info.crs,
            "origin": info.enu_origin,
            "version": info.version,
            "sources": sources,
        }
    )
    return hashlib.sha256(payload).hexdigest()[:16]


def _site_dir_name(site: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", site):
        return site
    return "site-" + hashlib.sha256(site.encode()).hexdigest()[:16]


def tileset_dir(cache_dir: Path, site: str, version: str) -> Path:
    """Where the tiles of one site version live."""
    return Path(cache_dir) / _site_dir_name(site) / version


def cached_tileset(store: Store, site: str, cache_dir: Path) -> Path | None:
    """The ``tileset.json`` of the site's current version if it is built, else ``None``
    (a server can then start :func:`build_tileset` as a job).

    Raises
    ------
    NotFoundError
        If there is no such site.
    """
    target = tileset_dir(cache_dir, site, tileset_version(store, site)) / "tileset.json"
    return target if target.is_file() else None


def resolve_tile(tileset_root: Path, relative: str) -> Path:
    """The file ``relative`` (``tileset.json``, ``buildings/2/1/3.glb``...) inside a tileset
    directory, refusing anything that could leave it.

    Raises
    ------
    NotFoundError
        If the path is absolute, holds ``..``/backslashes/empty parts, or names no file.
    """
    bad = (
        not relative
        or relative.startswith("/")
        or "\\" in relative
        or "\x00" in relative
        or any(part in ("", ".", "..") for part in relative.split("/"))
        or PurePosixPath(relative).is_absolute()
    )
    if bad:
        raise NotFoundError(f"no tile {relative!r}")
    root = Path(tileset_root).resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFoundError(f"no tile {relative!r}")
    return path


def build_tileset(
    store: Store,
    site: str,
    cache_dir: Path,
    *,
    progress: Progress | None = None,
    options: TilingOptions | None = None,
) -> Path:
    """The ``tileset.json`` of the site's current version, built on first use.

    A build writes into a temporary directory beside the target and renames it into place,
    so concurrent builds of the same version are safe (the first rename wins) and a reader
    never sees half a tileset. Older versions of the site are removed afterwards.

    Parameters
    ----------
    store, site : what to tile
    cache_dir : root of the tile cache
    progress : called with (fraction 0..1, message)
    options : tiling granularity

    Returns
    -------
    Path : ``cache_dir/<site>/<version>/tileset.json``

    Raises
    ------
    NotFoundError
        If there is no such site.
    """
    version = tileset_version(store, site)
    final = tileset_dir(cache_dir, site, version)
    target = final / "tileset.json"
    if target.is_file():
        if progress is not None:
            progress(1.0, "cached")
        return target
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=final.parent))
    try:
        write_tileset(store, site, work, progress=progress, options=options, version=version)
        try:
            os.rename(work, final)
        except OSError:
            if not target.is_file():
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    for other in final.parent.iterdir():
        if other.name != version and not other.name.startswith("."):
            shutil.rmtree(other, ignore_errors=True)
    return target


def write_tileset(
    store: Store,
    site: str,
    out_dir: Path,
    *,
    progress: Progress | None = None,
    options: TilingOptions | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """Write ``tileset.json`` and its tiles into ``out_dir``; returns a summary.

    Raises
    ------
    NotFoundError
        If there is no such site.
    """
    report = progress or (lambda fraction, message: None)
    opts = options or TilingOptions()
    info = store.site(site)
    frame = site_frame(info)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report(0.0, "reading features")
    features, terrain = site_features(store, site, frame)
    terrain_kind = "DEM" if store.raster_codes(site) else "TINRelief"
    report(0.2, f"tiling {len(features)} features")
    columns = property_columns(features.objects)
    schema = metadata_schema(columns)
    subtrees: list[TileNode] = []
    jobs: list[tuple[TileNode, str]] = []
    if len(features):
        tree = _feature_tree(features, opts)
        subtrees.append(tree)
        jobs += [(n, "buildings") for n in tree.walk()]
    terrain_tree: TileNode | None = None
    if len(terrain.faces):
        terrain_tree = _terrain_tree(terrain, opts)
        subtrees.append(terrain_tree)
        jobs += [(n, "terrain") for n in terrain_tree.walk()]
    total_bytes = 0
    for done, (node, group) in enumerate(jobs):
        uri = f"{group}/{node.level}/{node.x}/{node.y}.glb"
        name = f"{site} {group} {node.level}/{node.x}/{node.y}"
        if group == "buildings":
            data = feature_tile(
                features, node.content, schema, columns, blocks=not node.is_leaf, name=name
            )
        else:
            vertices, faces = _terrain_content(terrain, node, opts)
            if len(faces) == 0:
                continue  # simplified away: an empty tile
            data = terrain_tile(vertices, faces, terrain_kind, name=name)
        node.uri = uri
        path = out_dir / uri
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        total_bytes += len(data)
        report(0.2 + 0.78 * (done + 1) / len(jobs), f"tile {done + 1} of {len(jobs)}")
    boxes = np.array([t.box for t in subtrees]) if subtrees else np.zeros((1, 6))
    union = np.r_[boxes[:, :3].min(axis=0), boxes[:, 3:].max(axis=0)]
    top_error = max([t.geometric_error for t in subtrees] + [0.5]) * 2
    extent = float(np.linalg.norm(union[3:] - union[:3]))
    # the root draws nothing: stopping there loses the whole site, an error of its extent —
    # else a small site whose features fit one leaf is never refined past an empty root
    root_error = round(max(top_error, extent, 1.0), 3)
    root = {
        "transform": frame.tileset_transform(),
        "boundingVolume": {"box": box_volume(union)},
        "geometricError": root_error,
        "refine": "REPLACE",
        "children": [tile_json(t) for t in subtrees],
    }
    tileset = {
        "asset": {
            "version": "1.1",
            "tilesetVersion": version or tileset_version(store, site),
            "generator": "yiwang-citytwin render",
            "extras": {"site": site, **frame.extras()},
        },
        "geometricError": round(max(2 * root_error, extent), 3),
        "root": root,
    }
    (out_dir / "tileset.json").write_bytes(orjson.dumps(tileset, option=orjson.OPT_INDENT_2))
    report(1.0, f"{len(jobs)} tiles written")
    return {
        "site": site,
        "tiles": sum(1 for n, _ in jobs if n.uri is not None),
        "features": len(features),
        "terrain_faces": len(terrain.faces),
        "bytes": total_bytes,
        "levels": max((n.level for n, _ in jobs), default=-1) + 1,
    }


def _feature_tree(features: Features, opts: TilingOptions) -> TileNode:
    bounds = features.bounds
    centres = (bounds[:, :2] + bounds[:, 3:5]) / 2
    tree = build_quadtree(centres, bounds, opts.leaf_features)
    size = bounds[:, 3:] - bounds[:, :3]
    importance = size[:, 0] * size[:, 1] * np.maximum(size[:, 2], 1.0)
    diagonal = np.linalg.norm(size, axis=1)
    own: dict[int, float] = {}
    for node in tree.walk():
        if node.is_leaf:
            continue
        ranked = node.items[np.argsort(-importance[node.items], kind="stable")]
        kept, dropped = ranked[: opts.coarse_features], ranked[opts.coarse_features :]
        node.content = np.sort(kept)
        error = float(features.gap_m[kept].max()) if len(kept) else 0.0
        if len(dropped):
            error = max(error, float(diagonal[dropped].max()))
        own[id(node)] = error
    propagate_errors(tree, own)
    return tree


def _terrain_tree(terrain: MeshColumns, opts: TilingOptions) -> TileNode:
    tri = terrain.vertices[terrain.faces]
    boxes = np.concatenate([tri.min(axis=1), tri.max(axis=1)], axis=1)
    centres = tri[:, :, :2].mean(axis=1)
    tree = build_quadtree(centres, boxes, opts.terrain_leaf_faces)
    own: dict[int, float] = {}
    for node in tree.walk():
        if not node.is_leaf:
            _, _, error = _simplified(terrain, node, opts)
            own[id(node)] = error
    propagate_errors(tree, own)
    return tree


def _simplified(
    terrain: MeshColumns, node: TileNode, opts: TilingOptions
) -> tuple[NDArray[np.float64], NDArray[np.int64], float]:
    faces = terrain.faces[node.items]
    used, inverse = np.unique(faces, return_inverse=True)
    vertices = terrain.vertices[used]
    side = float(max(node.box[3] - node.box[0], node.box[4] - node.box[1], 1.0))
    return cluster_vertices(vertices, inverse.reshape(-1, 3), side / opts.terrain_grid)


def _terrain_content(
    terrain: MeshColumns, node: TileNode, opts: TilingOptions
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    if not node.is_leaf:
        vertices, faces, _ = _simplified(terrain, node, opts)
        return vertices, faces
    faces = terrain.faces[node.items]
    used, inverse = np.unique(faces, return_inverse=True)
    return terrain.vertices[used], inverse.reshape(-1, 3).astype(np.int64)
