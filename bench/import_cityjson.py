"""Import throughput and peak memory: our whole import (parse, triangulate, grid, codes,
store commit) against cjio's read-only ``cityjson.load`` on the same file, then a scale run
that tiles the Den Haag buildings into sites of up to 100,000 buildings.

Run: ``make bench`` (or ``.venv/bin/python bench/import_cityjson.py [--repeat N]
[--scale 25000,50000,100000]``). Every measurement runs in a fresh subprocess so that peak
RSS belongs to that measurement alone; timings are medians of ``--repeat`` runs.
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
FILES = {
    "denhaag": ROOT / "assets/denhaag_01/denhaag_01_lod2.city.json",
    "zurich": ROOT / "assets/cityjson/zurich_subset_lod2.city.json",
}

_OURS = """
import json, resource, sys, time, tempfile, os
from cim.store import open_store
from cim.importer import import_source
import cim.loaders.cityjson  # module imports are not import work (cjio's are done too)
path, workdir = sys.argv[1], sys.argv[2]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
store = open_store(os.path.join(workdir, "bench.db"))
t = time.perf_counter()
report = import_source(store, path, site="bench")
wall = time.perf_counter() - t
store.close()
print(json.dumps({"wall_s": wall, "buildings": report.kinds.get("Building", 0),
                  "objects": report.objects,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "import_rss_mb": base / 1024}))
"""

_CJIO = """
import json, resource, sys, time
from cjio import cityjson
path = sys.argv[1]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
with open(path, encoding="utf-8") as handle:
    model = cityjson.reader(handle)  # what `cjio FILE ...` does before any operator
wall = time.perf_counter() - t
count = sum(1 for o in model.j["CityObjects"].values() if o["type"] == "Building")
print(json.dumps({"wall_s": wall, "buildings": count, "objects": len(model.j["CityObjects"]),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "import_rss_mb": base / 1024}))
"""


def _run(script: str, *args: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"measurement failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _median(script: str, repeat: int, *args: str) -> dict[str, float]:
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as work:
            runs.append(_run(script, *args, work) if script is _OURS else _run(script, *args))
    out = dict(runs[0])
    out["wall_s"] = statistics.median(r["wall_s"] for r in runs)
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    out["runs"] = len(runs)
    return out


def tile_denhaag(buildings: int, target: Path) -> int:
    """Write a CityJSON file of ``buildings`` Den Haag buildings (with their parts): copies of
    the tile laid side by side, ids suffixed. Returns the number of buildings written."""
    doc = json.loads(FILES["denhaag"].read_text())
    scale = doc["transform"]["scale"]
    source = doc["CityObjects"]
    vertices = doc["vertices"]
    used = sorted(
        {
            v
            for o in source.values()
            if o["type"] != "TINRelief"
            for g in o.get("geometry", [])
            for v in _flatten(g["boundaries"])
        }
    )
    remap = {v: i for i, v in enumerate(used)}
    local_vertices = [vertices[v] for v in used]
    members = {k: _remap_object(o, remap) for k, o in source.items() if o["type"] != "TINRelief"}
    per_tile = sum(1 for o in members.values() if o["type"] == "Building")
    span_x = int(
        max(v[0] for v in local_vertices) - min(v[0] for v in local_vertices) + 50 / scale[0]
    )
    span_y = int(
        max(v[1] for v in local_vertices) - min(v[1] for v in local_vertices) + 50 / scale[1]
    )
    tiles = -(-buildings // per_tile)
    side = int(tiles**0.5) + 1
    objects: dict[str, dict] = {}
    all_vertices: list[list[int]] = []
    written = 0
    for tile in range(tiles):
        dx, dy = (tile % side) * span_x, (tile // side) * span_y
        base = len(all_vertices)
        all_vertices.extend([v[0] + dx, v[1] + dy, v[2]] for v in local_vertices)
        for bid, building in members.items():
            if building["type"] != "Building":
                continue
            if written == buildings:
                break
            suffix = f"~{tile}"
            for oid in [bid, *building.get("children", [])]:
                obj = members[oid]
                copy = dict(obj)
                copy["geometry"] = [
                    {**g, "boundaries": _shift(g["boundaries"], base)}
                    for g in obj.get("geometry", [])
                ]
                if "children" in copy:
                    copy["children"] = [c + suffix for c in copy["children"]]
                if "parents" in copy:
                    copy["parents"] = [p + suffix for p in copy["parents"]]
                objects[oid + suffix] = copy
            written += 1
    out = {
        "type": "CityJSON",
        "version": "2.0",
        "transform": doc["transform"],
        "metadata": doc.get("metadata", {}),
        "CityObjects": objects,
        "vertices": all_vertices,
    }
    target.write_text(json.dumps(out, separators=(",", ":")))
    return written


def _shift(boundaries: object, by: int) -> object:
    if isinstance(boundaries, list):
        return [_shift(b, by) for b in boundaries]
    return int(boundaries) + by  # type: ignore[call-overload]


def _flatten(boundaries: object) -> list[int]:
    if isinstance(boundaries, list):
        return [v for b in boundaries for v in _flatten(b)]
    return [int(boundaries)]  # type: ignore[call-overload]


def _remap(boundaries: object, remap: dict[int, int]) -> object:
    if isinstance(boundaries, list):
        return [_remap(b, remap) for b in boundaries]
    return remap[int(boundaries)]  # type: ignore[call-overload]


def _remap_object(obj: dict, remap: dict[int, int]) -> dict:
    copy = dict(obj)
    copy["geometry"] = [
        {**g, "boundaries": _remap(g["boundaries"], remap)} for g in obj.get("geometry", [])
    ]
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--scale",
        default="25000,50000,100000",
        help="building counts of the scale run ('' to skip)",
    )
    parser.add_argument("--scale-repeat", type=int, default=3)
    args = parser.parse_args()

    print(
        f"{'file':<10} {'engine':<8} {'buildings':>9} {'wall s (median)':>16} "
        f"{'buildings/s':>12} {'peak RSS MB':>12}"
    )
    for name, path in FILES.items():
        ours = _median(_OURS, args.repeat, str(path))
        cjio = _median(_CJIO, args.repeat, str(path))
        for engine, row in (("ours", ours), ("cjio", cjio)):
            print(
                f"{name:<10} {engine:<8} {int(row['buildings']):>9} {row['wall_s']:>16.4f} "
                f"{row['buildings'] / row['wall_s']:>12.0f} {row['peak_rss_mb']:>12.1f}"
            )
        print(
            f"{name:<10} ratio cjio read time / our import time = "
            f"{cjio['wall_s'] / ours['wall_s']:.2f} (target >= 1.0)"
        )

    if args.scale:
        print()
        print(
            f"{'scale':>8} {'engine':<8} {'wall s (median)':>16} {'buildings/s':>12} "
            f"{'peak RSS MB':>12} {'MB per 1k buildings':>20}"
        )
        with tempfile.TemporaryDirectory() as work:
            for count in (int(c) for c in args.scale.split(",")):
                path = Path(work) / f"denhaag_x{count}.city.json"
                written = tile_denhaag(count, path)
                rows = [("ours", _median(_OURS, args.scale_repeat, str(path)))]
                rows.append(("cjio", _median(_CJIO, 1, str(path))))
                for engine, row in rows:
                    growth = (row["peak_rss_mb"] - row["import_rss_mb"]) / (written / 1000)
                    print(
                        f"{written:>8} {engine:<8} {row['wall_s']:>16.3f} "
                        f"{written / row['wall_s']:>12.0f} {row['peak_rss_mb']:>12.1f} "
                        f"{growth:>20.2f}"
                    )
                path.unlink()


if __name__ == "__main__":
    main()
