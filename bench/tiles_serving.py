"""Tile serving under load: our API against nginx serving the same files from disk.

Both serve the Den Haag tileset (built once by the API's own code) on loopback; ``wrk``
drives 50 concurrent connections over every tile file of the tileset (round robin, with the
API key header for ours) and reports throughput and the latency distribution. Runs alternate
ours / nginx ``--repeat`` times; medians are reported. Both servers get the same number of
processes (``--workers``, default 2 = this machine's cores).

Run: ``make bench-serving`` (installs Debian's nginx and wrk where missing), or
``.venv/bin/python bench/tiles_serving.py [--repeat 3] [--seconds 10] [--connections 50]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DENHAAG = ROOT / "assets/denhaag_01/denhaag_01_lod2.city.json"
OUT = ROOT / "bench" / "out"
SITE = "denhaag"

NGINX_CONF = """
worker_processes {workers};
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    types {{ application/json json; model/gltf-binary glb; }}
    server {{
        listen 127.0.0.1:{port};
        location /sites/{site}/tiles/ {{
            alias {tiles}/;
            etag on;
        }}
    }}
}}
"""

WRK_SCRIPT = """
local paths = {{ {paths} }}
local i = 0
request = function()
  i = (i % #paths) + 1
  return wrk.format("GET", paths[i], {{ ["X-API-Key"] = "{key}" }})
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_http(url: str, headers: dict[str, str], timeout: float = 60) -> bytes:
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as r:
                if r.status == 200:
                    return bytes(r.read())
        except OSError as exc:
            last = str(exc)
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {url} did not answer 200 within {timeout} s ({last})")
        time.sleep(0.3)


def _wrk(url: str, script: Path, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def latency(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert rps and transfer, out
    mb = float(transfer.group(1)) * {"B": 1e-6, "KB": 1e-3, "MB": 1.0, "GB": 1e3}[transfer.group(2)]
    return {
        "rps": float(rps.group(1)),
        "mb_s": mb,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"bench: {tool} is missing (make bench-serving installs it)")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"

    from api.keys import KeyStore
    from api.settings import Settings
    from cim.importer import import_source
    from cim.store import open_store
    from render.tiles import build_tileset

    work = Path(tempfile.mkdtemp(prefix="tiles-serving-"))
    work.chmod(0o755)  # nginx's workers run as an unprivileged user
    store_path = work / "bench.db"
    store = open_store(store_path)
    import_source(store, DENHAAG, site=SITE)
    settings = Settings(store_url=store_path)
    tileset = build_tileset(store, SITE, settings.cache_path / "tiles")
    store.close()
    tiles_dir = tileset.parent
    for folder, dirs, _ in os.walk(work):  # readable by nginx's unprivileged workers
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o755)
    files = sorted(p.relative_to(tiles_dir).as_posix() for p in tiles_dir.rglob("*") if p.is_file())
    key = KeyStore(settings.keys_path).create_key("display", name="bench")
    paths = ", ".join(f'"/sites/{SITE}/tiles/{f}"' for f in files)
    script = work / "rotate.lua"
    script.write_text(WRK_SCRIPT.format(paths=paths, key=key))
    sizes = [(tiles_dir / f).stat().st_size for f in files]

    OUT.mkdir(parents=True, exist_ok=True)
    ours_port, nginx_port = _free_port(), _free_port()
    conf = work / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            workers=args.workers, work=work, port=nginx_port, site=SITE, tiles=tiles_dir
        )
    )
    env = {**os.environ, "TWIN_STORE": str(store_path)}
    ours = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "api.cli",
            "--store",
            str(store_path),
            "serve",
            "--port",
            str(ours_port),
            "--workers",
            str(args.workers),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(OUT / "tiles_serving_api.log").open("wb"),
        start_new_session=True,
    )
    web = subprocess.Popen(
        [nginx, "-c", str(conf), "-p", str(work)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    results: dict[str, list[dict[str, float]]] = {"ours": [], "nginx": []}
    print(f"bench: serving {len(files)} files; API log in {OUT / 'tiles_serving_api.log'}")
    try:
        first = f"/sites/{SITE}/tiles/{files[0]}"
        header = {"X-API-Key": key}
        a = _wait_http(f"http://127.0.0.1:{ours_port}{first}", header)
        b = _wait_http(f"http://127.0.0.1:{nginx_port}{first}", header)
        assert a == b, "the two servers do not serve the same bytes"
        for _ in range(args.repeat):
            for name, port in (("ours", ours_port), ("nginx", nginx_port)):
                results[name].append(
                    _wrk(f"http://127.0.0.1:{port}", script, args.seconds, args.connections)
                )
    finally:
        for proc in (ours, web):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        shutil.rmtree(work, ignore_errors=True)

    summary = {
        name: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for name, runs in results.items()
    }
    summary["ratio_ours_to_nginx_rps"] = summary["ours"]["rps"] / summary["nginx"]["rps"]
    summary["files"] = len(files)
    summary["mean_file_kb"] = statistics.mean(sizes) / 1024
    summary["runs"] = results
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "tiles_serving.json").write_text(json.dumps(summary, indent=1))
    print(
        f"{len(files)} files, mean {summary['mean_file_kb']:.1f} KB; {args.connections} "
        f"connections, {args.workers} processes each, medians of {args.repeat} x {args.seconds} s"
    )
    print(f"{'server':8} {'req/s':>9} {'MB/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name in ("ours", "nginx"):
        s = summary[name]
        print(
            f"{name:8} {s['rps']:9.0f} {s['mb_s']:8.1f} {s['p50_ms']:8.2f} {s['p99_ms']:8.2f} "
            f"{s['non_2xx']:8.0f}"
        )
    print(f"ours / nginx throughput: {summary['ratio_ours_to_nginx_rps']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
