"""Scene output at scale: tileset build time, bytes per building and peak memory for Den Haag
and for copies of it tiled side by side (25,000 and 100,000 buildings by default), and the
whole-site glb export against the peer, trimesh (a ``trimesh.Scene`` of one mesh per object,
exported as glb), from the same store. cjio's ``export2glb`` was the first choice of peer but
needs the ``triangle`` package (non-free licence) to triangulate, and there is no Python
3D Tiles builder for meshes to compare the tileset build with.

Run: ``make bench-tiles`` (or ``.venv/bin/python bench/tiles_scale.py [--scale 25000,100000]
[--repeat 3] [--peer-max 25000]``). Each measurement runs in a fresh subprocess so that its
peak RSS is its own; wall times are medians of ``--repeat`` runs. The store for each size is
imported once (not timed here: see ``bench/import_cityjson.py``). Figures go to stdout and to
``bench/out/tiles_scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from import_cityjson import FILES, tile_denhaag  # noqa: E402

_IMPORT = """
import sys
from cim.store import open_store
from cim.importer import import_source
store = open_store(sys.argv[2])
import_source(store, sys.argv[1], site="bench")
store.close()
"""

_TILES = """
import json, sys, time, shutil, tempfile
def hwm_mb():  # peak RSS of this process (fresh after exec, unlike ru_maxrss)
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmHWM")) / 1024
from cim.store import open_store
import render.tiles, render.features, shapely, pyproj  # module imports are not tiling work
store = open_store(sys.argv[1])
out = tempfile.mkdtemp(dir=sys.argv[2])
base = hwm_mb() * 1024
t = time.perf_counter()
summary = render.tiles.write_tileset(store, "bench", out)
wall = time.perf_counter() - t
store.close()
shutil.rmtree(out)
print(json.dumps({"wall_s": wall, **summary,
                  "peak_rss_mb": hwm_mb(),
                  "base_rss_mb": base / 1024}))
"""

_GLB = """
import json, sys, time
def hwm_mb():  # peak RSS of this process (fresh after exec, unlike ru_maxrss)
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmHWM")) / 1024
from cim.store import open_store
import render.gltf
store = open_store(sys.argv[1])
base = hwm_mb() * 1024
t = time.perf_counter()
data = render.gltf.export_glb(store, "bench")
wall = time.perf_counter() - t
print(json.dumps({"wall_s": wall, "bytes": len(data),
                  "peak_rss_mb": hwm_mb(),
                  "base_rss_mb": base / 1024}))
"""

_TRIMESH = """
import json, sys, time
def hwm_mb():  # peak RSS of this process (fresh after exec, unlike ru_maxrss)
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmHWM")) / 1024
import numpy as np, trimesh
from cim.store import open_store
from render.scene import gather_geometry, subtree_objects
store = open_store(sys.argv[1])
base = hwm_mb() * 1024
t = time.perf_counter()
objects = subtree_objects(store, "bench")
geometry = gather_geometry(store, "bench", objects)
scene = trimesh.Scene()
origin = geometry.vertices.min(axis=0) if len(geometry.vertices) else np.zeros(3)
for i, obj in enumerate(objects):
    vertices, faces = geometry.object_arrays(i)
    if len(faces):
        mesh = trimesh.Trimesh(vertices=vertices - origin, faces=faces, process=False)
        scene.add_geometry(mesh, node_name=obj.code, geom_name=obj.code,
                           parent_node_name=None)
data = scene.export(file_type="glb")
wall = time.perf_counter() - t
print(json.dumps({"wall_s": wall, "bytes": len(data),
                  "peak_rss_mb": hwm_mb(),
                  "base_rss_mb": base / 1024}))
"""


def _run(script: str, *args: str, timeout_s: float = 1800) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VTK_DEFAULT_OPENGL_WINDOW": "vtkEGLRenderWindow"}
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=timeout_s,
    )
    if done.returncode != 0:
        raise SystemExit(f"measurement failed:\n{done.stderr}")
    lines = done.stdout.strip().splitlines()
    result: dict[str, float] = json.loads(lines[-1]) if lines else {}
    return result


def _median(script: str, repeat: int, *args: str) -> dict[str, float]:
    runs = [_run(script, *args) for _ in range(repeat)]
    out = dict(runs[0])
    out["wall_s"] = statistics.median(r["wall_s"] for r in runs)
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    out["runs"] = len(runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", default="25000,100000", help="building counts ('' to skip)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale-repeat", type=int, default=1)
    parser.add_argument(
        "--peer-max", type=int, default=25000, help="largest site the trimesh peer is run on"
    )
    args = parser.parse_args()
    results = []
    header = (
        f"{'buildings':>9} {'what':<18} {'wall s':>9} {'bldg/s':>9} {'tiles':>6} "
        f"{'bytes/bldg':>11} {'peak RSS MB':>12} {'base MB':>8}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as work:
        sizes: list[tuple[int, Path]] = [(844, FILES["denhaag"])]
        for count in (int(c) for c in args.scale.split(",") if c):
            path = Path(work) / f"denhaag_x{count}.city.json"
            sizes.append((tile_denhaag(count, path), path))
        for buildings, source in sizes:
            store = Path(work) / f"bench_{buildings}.db"
            _run(_IMPORT, str(source), str(store))
            repeat = args.repeat if buildings < 10_000 else args.scale_repeat
            rows = [
                ("tileset (ours)", _median(_TILES, repeat, str(store), work)),
                ("site glb (ours)", _median(_GLB, repeat, str(store))),
            ]
            if buildings <= args.peer_max:
                rows.append(("site glb (trimesh)", _median(_TRIMESH, repeat, str(store))))
            for what, row in rows:
                row.update({"buildings": buildings, "what": what})
                results.append(row)
                print(
                    f"{buildings:>9} {what:<18} {row['wall_s']:>9.3f} "
                    f"{buildings / row['wall_s']:>9.0f} {int(row.get('tiles', 1)):>6} "
                    f"{row['bytes'] / buildings:>11.0f} {row['peak_rss_mb']:>12.1f} "
                    f"{row['base_rss_mb']:>8.1f}"
                )
            peer = next((r for w, r in rows if w == "site glb (trimesh)"), None)
            if peer is not None:
                ours = rows[1][1]
                print(
                    f"{buildings:>9} ratio trimesh scene export time / our export_glb time = "
                    f"{peer['wall_s'] / ours['wall_s']:.1f}"
                )
            store.unlink()
            if source.parent == Path(work):
                source.unlink()
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "tiles_scale.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
