"""IFC import time and peak memory: our whole import (ifcopenshell parse + tessellation,
structure, property sets, placement, grid, codes, store commit) against the bare peer,
IfcOpenShell opening the file and tessellating every product with the same settings.

Run: ``make bench-ifc`` (or ``.venv/bin/python bench/import_ifc.py [--repeat N]``). Each
measurement runs in a fresh subprocess so that peak RSS is its own; timings are medians of
``--repeat`` runs. Results go to ``bench/out/import_ifc.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = {
    "duplex": ROOT / "assets/ifc/Duplex_A_20110907.ifc",
    # LGPL: measured from the shared data set when present, never copied into assets/
    "openhouse": Path("/work/shared/data/ifc/IfcOpenHouse_IFC4.ifc"),
}

_PEER = """
import json, resource, sys, time
import ifcopenshell, ifcopenshell.geom
path = sys.argv[1]
t = time.perf_counter()
model = ifcopenshell.open(path)
settings = ifcopenshell.geom.settings()
settings.set("use-world-coords", True)
products = [p for p in model.by_type("IfcProduct") if not p.is_a("IfcOpeningElement")]
it = ifcopenshell.geom.iterator(settings, model, 1, include=products)
shapes = triangles = 0
ok = it.initialize()
while ok:
    shape = it.get()
    shapes += 1
    triangles += len(shape.geometry.faces) // 3
    ok = it.next()
wall = time.perf_counter() - t
print(json.dumps({"wall_s": wall, "shapes": shapes, "triangles": triangles,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_OURS = """
import json, os, resource, sys, time
from cim.store import open_store
from cim.importer import import_source
from cim.loaders import LoadOptions
import cim.loaders.ifc, ifcopenshell.geom  # module imports are not import work
path, workdir = sys.argv[1], sys.argv[2]
store = open_store(os.path.join(workdir, "bench.db"))
t = time.perf_counter()
report = import_source(store, path, site="bench",
                       options=LoadOptions(crs="EPSG:28992", at=(85000.0, 446000.0, 30.0)))
wall = time.perf_counter() - t
store.close()
print(json.dumps({"wall_s": wall, "objects": report.objects,
                  "storeys": report.kinds.get("IfcBuildingStorey", 0),
                  "spaces": report.kinds.get("IfcSpace", 0),
                  "doors": report.kinds.get("IfcDoor", 0),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _run(code: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, cwd=ROOT
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for name, path in FILES.items():
        if not path.is_file():
            continue
        peer, ours = [], []
        for _ in range(args.repeat):
            peer.append(_run(_PEER, str(path)))
            with tempfile.TemporaryDirectory() as workdir:
                ours.append(_run(_OURS, str(path), workdir))
        row = {
            "file": name,
            "size_mb": round(path.stat().st_size / 2**20, 2),
            "peer_s": statistics.median(r["wall_s"] for r in peer),
            "ours_s": statistics.median(r["wall_s"] for r in ours),
            "peer_peak_mb": max(r["peak_mb"] for r in peer),
            "ours_peak_mb": max(r["peak_mb"] for r in ours),
            "shapes": peer[0]["shapes"],
            "triangles": peer[0]["triangles"],
            **{k: ours[0][k] for k in ("objects", "storeys", "spaces", "doors")},
        }
        row["ratio"] = row["ours_s"] / row["peer_s"]
        rows.append(row)
        print(
            f"{name:10s} {row['size_mb']:5.2f} MB  peer {row['peer_s']:.2f} s "
            f"({row['peer_peak_mb']:.0f} MB)  ours {row['ours_s']:.2f} s "
            f"({row['ours_peak_mb']:.0f} MB)  ratio {row['ratio']:.2f}  "
            f"objects {row['objects']:.0f} storeys {row['storeys']:.0f} "
            f"spaces {row['spaces']:.0f} doors {row['doors']:.0f}"
        )
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "import_ifc.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
