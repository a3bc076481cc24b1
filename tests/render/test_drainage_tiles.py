"""A site with a SWMM drainage network exports valid tiles whose features carry its codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gltf_validator import assert_valid
from tileset_checks import load, property_strings, read_tile, walk

from cim.importer import import_source
from cim.loaders import LoadOptions
from cim.store import open_store
from render.tiles import build_tileset


def test_a_drainage_network_exports_valid_pickable_tiles(assets_dir: Path, tmp_path: Path) -> None:
    store = open_store(tmp_path / "t.db")
    try:
        import_source(
            store,
            assets_dir / "swmm" / "bellinge_small.inp",
            site="bellinge",
            options=LoadOptions(crs="EPSG:32632"),
        )
        drawn = {
            o.code: o.kind
            for o in store.all_objects("bellinge")
            if o.index is not None and o.kind in ("Manhole", "Conduit", "Outfall", "Subcatchment")
        }
        path = build_tileset(store, "bellinge", tmp_path / "tiles")
    finally:
        store.close()
    files = sorted(path.parent.rglob("*.glb"))
    assert files
    assert_valid(files)
    seen: dict[str, str] = {}
    for tile, _ in walk(load(path)["root"]):
        uri = tile.get("content", {}).get("uri", "")
        if "children" in tile or not uri.endswith(".glb"):
            continue
        gltf, binary = read_tile(path.parent / uri)
        codes = property_strings(gltf, binary, "code")
        kinds = property_strings(gltf, binary, "kind")
        seen.update(zip(codes, kinds, strict=True))
    assert {c: k for c, k in seen.items() if c in drawn} == drawn
    # the root draws nothing: its error is the site's extent, so that a viewer refines into
    # the one leaf instead of stopping at an empty root (a small site once showed nothing)
    root = load(path)["root"]
    half = np.array(root["boundingVolume"]["box"][3:]).reshape(3, 3)
    assert "content" not in root
    assert root["geometricError"] >= 0.99 * 2 * float(np.linalg.norm(half.sum(axis=0)))
