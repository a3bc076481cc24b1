"""Drills as runs: serving while drills run, and the throughput of 20 traffic drills.

Two measurements in one run, on a temporary store holding the Den Haag sample (site
``denhaag``) and the Helsinki centre streets (site ``helsinki``):

1. **Serving under drills.** The real server (``twin serve``, ``--api-workers`` uvicorn workers (1),
   ``TWIN_RUN_WORKERS=4``, local worker processes) builds the Den Haag tileset; ``wrk``
   drives 50 concurrent connections for ``--seconds`` over (a) every tile file of the
   tileset, round robin with the API key header (as ``bench/tiles_serving.py`` does), and
   (b) ``/health``, each while no drill runs and while ``--drills`` (4) long crowd drills run
   at once (checked ``running`` before and after each window, then cancelled with
   ``DELETE /runs/{id}``). The two conditions alternate ``--repeat`` times; medians of p50,
   p99 and requests/s are reported side by side with the ratio busy / idle. Targets: p99
   below 50 ms idle and below 100 ms with 4 drills running.
2. **Throughput of 20 Helsinki traffic drills** (seeded random demand, ``--pairs`` OD pairs,
   about 1-2 s each): serially in this process (prepare + run), on the local pool (a
   ``Runner`` on ``LocalExecutor(2)``) and on a real local Ray (``RayExecutor("local", 2,
   num_cpus=2)``). Each executor first runs ``slots`` warm-up drills (untimed, reported), so
   the timed 20 measure steady state; Ray's start-up is reported, not timed. The per-run
   results must be identical across the three (summary without ``wall_s``, the rest of the
   result without ``summary``, ``files`` and wall times, and the per-road values);
   otherwise the script exits 1.

Prints markdown tables and writes ``bench/out/runs.json`` (the server's log goes to
``bench/out/runs_api.log``).

Examples
--------
``make bench-runs`` (installs Debian's ``wrk`` where missing), or::

    .venv/bin/python bench/runs.py [--repeat 3] [--seconds 10] [--connections 50]
        [--drills 4] [--traffic 20] [--pairs 600]
"""

from __future__ import annotations

import argparse
import contextlib
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
DENHAAG = ASSETS / "denhaag_01/denhaag_01_lod2.city.json"
HELSINKI = ASSETS / "traffic/helsinki_center.osm.pbf"
OUT = ROOT / "bench" / "out"
TWIN = [sys.executable, "-m", "api.cli"]

#: p99 targets, ms: with no drill running, and with the drills running.
TARGET_IDLE_P99_MS = 50.0
TARGET_BUSY_P99_MS = 100.0

#: A crowd drill that runs for minutes (about 2 min alone on one core): 60 000 people
#: leave the waterfront venue (it holds 72 776 at jam density).
LONG_CROWD_AGENTS = 60_000

WRK_SCRIPT = """
local paths = {{ {paths} }}
local i = 0
request = function()
  i = (i % #paths) + 1
  return wrk.format("GET", paths[i], {{ ["X-API-Key"] = "{key}" }})
end
"""


# -- helpers --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _twin(store: Path, *args: str) -> str:
    done = subprocess.run(
        [*TWIN, "--store", str(store), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench: twin {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def _wrk(url: str, seconds: int, connections: int, script: Path | None) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout

    def latency(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    assert rps and total, out
    return {
        "rps": float(rps.group(1)),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "requests": float(total.group(1)),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
        "socket_errors": float(sum(int(g) for g in sockets.groups()[:3])) if sockets else 0.0,
        "timeouts": float(sockets.group(4)) if sockets else 0.0,
    }


class Server:
    """``twin serve`` in its own process group."""

    def __init__(
        self, store: Path, cache: Path, run_workers: int, log: Path, api_workers: int = 1
    ) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        port = str(self.port)
        env = {**os.environ, "TWIN_CACHE": str(cache), "TWIN_RUN_WORKERS": str(run_workers)}
        for name in ("TWIN_RAY", "TWIN_MQTT_URL", "TWIN_STORE"):
            env.pop(name, None)
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    *TWIN,
                    "--store",
                    str(store),
                    "serve",
                    "--workers",
                    str(api_workers),
                    "--port",
                    port,
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.log = log
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"bench: the server exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"bench: the server did not answer:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def _median(rows: list[dict[str, float]], key: str) -> float:
    return float(statistics.median(r[key] for r in rows))


# -- 1. serving under drills ----------------------------------------------------------------


class Drills:
    """Long crowd drills started, checked and cancelled through the API."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.seed = 0

    def start(self, count: int, timeout_s: float = 180) -> tuple[list[str], float]:
        """Start ``count`` drills and wait until each is running with progress; their ids
        and the seconds that took."""
        began = time.monotonic()
        ids = []
        for _ in range(count):
            body = {"venue": "waterfront", "agents": LONG_CROWD_AGENTS, "seed": self.seed}
            self.seed += 1
            answer = self.client.post("/drills/crowd", json=body)
            if answer.status_code != 202:
                raise SystemExit(f"bench: POST /drills/crowd: {answer.status_code} {answer.text}")
            ids.append(answer.json()["id"])
        deadline = time.monotonic() + timeout_s
        while True:
            records = self.records(ids)
            bad = [r for r in records if r["state"] not in ("queued", "running")]
            if bad:
                raise SystemExit(f"bench: a crowd drill ended before the window: {bad[0]}")
            if all(r["state"] == "running" and r["progress"] > 0 for r in records):
                return ids, time.monotonic() - began
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: the crowd drills did not all start: {records}")
            time.sleep(0.2)

    def records(self, ids: list[str]) -> list[dict[str, Any]]:
        out = []
        for run_id in ids:
            answer = self.client.get(f"/runs/{run_id}")
            answer.raise_for_status()
            out.append(answer.json())
        return out

    def cancel(self, ids: list[str], timeout_s: float = 30) -> float:
        """Cancel them all; the seconds until the last is ``cancelled``."""
        began = time.monotonic()
        for run_id in ids:
            answer = self.client.delete(f"/runs/{run_id}")
            if answer.status_code != 200:
                raise SystemExit(f"bench: DELETE /runs/{run_id}: {answer.status_code}")
        deadline = time.monotonic() + timeout_s
        while True:
            records = self.records(ids)
            if all(r["state"] == "cancelled" for r in records):
                return time.monotonic() - began
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: the crowd drills were not cancelled: {records}")
            time.sleep(0.1)


def serving_under_drills(
    args: argparse.Namespace, work: Path, store: Path, problems: list[str], notes: list[str]
) -> dict[str, Any]:
    """Part 1: tiles and ``/health`` under ``wrk`` with 0 and ``--drills`` drills running."""
    key_file = work / "planner.key"
    _twin(store, "keys", "create", "--role", "planner", "--output", str(key_file))
    key = key_file.read_text().strip()
    cache = work / "cache"
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / "runs_api.log"
    server = Server(store, cache, args.drills, log, args.api_workers)
    print(f"bench: server on {server.url} (log {log})", flush=True)
    try:
        client = httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=30)
        began = time.monotonic()
        while True:
            answer = client.get("/sites/denhaag/tiles/tileset.json")
            if answer.status_code == 200:
                break
            if answer.status_code != 202 or time.monotonic() - began > 300:
                raise SystemExit(f"bench: tileset.json: {answer.status_code} {answer.text}")
            time.sleep(0.5)
        build_s = time.monotonic() - began
        tilesets = list((cache / "tiles").rglob("tileset.json"))
        assert len(tilesets) == 1, tilesets
        tiles_dir = tilesets[0].parent
        files = sorted(p.relative_to(tiles_dir).as_posix() for p in tiles_dir.rglob("*"))
        files = [f for f in files if (tiles_dir / f).is_file()]
        for name in files:  # every path wrk asks for answers 200 with the file's bytes
            answer = client.get(f"/sites/denhaag/tiles/{name}")
            assert answer.status_code == 200, (name, answer.status_code)
        script = work / "tiles.lua"
        paths = ", ".join(f'"/sites/denhaag/tiles/{f}"' for f in files)
        script.write_text(WRK_SCRIPT.format(paths=paths, key=key))
        print(
            f"bench: tileset built in {build_s:.1f} s, {len(files)} files; "
            f"{args.repeat} x (0 drills, {args.drills} drills) x (tiles, health) "
            f"x {args.seconds} s",
            flush=True,
        )
        drills = Drills(client)
        # one drill alone first builds the venue's cell grid into the shared cache: drills
        # that build it at once race on its temporary file (scenarios/crowd/grid.py,
        # cached_grid) and all but one fail with FileNotFoundError
        first, grid_s = drills.start(1)
        drills.cancel(first)
        print(f"bench: crowd grid cached by a first drill in {grid_s:.1f} s", flush=True)
        windows: list[dict[str, Any]] = []
        for rep in range(args.repeat):
            for running in (0, args.drills):
                ids: list[str] = []
                window: dict[str, Any] = {"repeat": rep, "drills": running}
                if running:
                    ids, window["start_s"] = drills.start(running)
                    before = drills.records(ids)
                    window["progress_before"] = [r["progress"] for r in before]
                window["tiles"] = _wrk(server.url, args.seconds, args.connections, script)
                if running:
                    middle = drills.records(ids)
                    not_running = [r["id"] for r in middle if r["state"] != "running"]
                    if not_running:
                        problems.append(f"repeat {rep}: drills {not_running} ended during tiles")
                window["health"] = _wrk(
                    f"{server.url}/health", args.seconds, args.connections, None
                )
                if running:
                    after = drills.records(ids)
                    window["states_after"] = [r["state"] for r in after]
                    window["progress_after"] = [r["progress"] for r in after]
                    not_running = [r["id"] for r in after if r["state"] != "running"]
                    if not_running:
                        problems.append(f"repeat {rep}: drills {not_running} ended in the window")
                    window["cancel_s"] = drills.cancel(ids)
                    time.sleep(1.0)  # the killed workers are gone before the next window
                for target in ("tiles", "health"):
                    w = window[target]
                    where = f"repeat {rep}, {running} drills, {target}"
                    if w["non_2xx"] or w["socket_errors"]:
                        problems.append(
                            f"{where}: {w['non_2xx']:.0f} non-2xx answers, "
                            f"{w['socket_errors']:.0f} socket errors"
                        )
                    if w["timeouts"]:
                        notes.append(
                            f"{where}: {w['timeouts']:.0f} requests timed out (> 2 s, left out "
                            "of wrk's latencies)"
                        )
                windows.append(window)
                t, h = window["tiles"], window["health"]
                print(
                    f"bench:   repeat {rep} drills {running}: tiles p99 {t['p99_ms']:.1f} ms "
                    f"{t['rps']:.0f}/s, health p99 {h['p99_ms']:.1f} ms {h['rps']:.0f}/s",
                    flush=True,
                )
        client.close()
    finally:
        server.stop()

    summary: dict[str, Any] = {}
    for target in ("tiles", "health"):
        idle = [w[target] for w in windows if w["drills"] == 0]
        busy = [w[target] for w in windows if w["drills"] > 0]
        summary[target] = {
            key: {
                "idle": _median(idle, key),
                "busy": _median(busy, key),
                "ratio": _median(busy, key) / _median(idle, key),
            }
            for key in ("p50_ms", "p99_ms", "rps")
        }
    busy_windows = [w for w in windows if w["drills"]]
    return {
        "files": len(files),
        "tileset_build_s": build_s,
        "drills": args.drills,
        "crowd_agents": LONG_CROWD_AGENTS,
        "drill_start_s_max": max(w["start_s"] for w in busy_windows),
        "cancel_s_max": max(w["cancel_s"] for w in busy_windows),
        "summary": summary,
        "windows": windows,
    }


# -- 2. throughput of traffic drills --------------------------------------------------------


def _traffic_body(seed: int, pairs: int) -> dict[str, Any]:
    return {"site": "helsinki", "osm": "helsinki_center", "demand": {"pairs": pairs, "seed": seed}}


def _strip(result: dict[str, Any]) -> dict[str, Any]:
    """What must be identical between executors: the summary without ``wall_s``, the rest
    without ``summary``, ``files`` and any wall time."""

    def drop_walls(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: drop_walls(v) for k, v in value.items() if not k.endswith("wall_s")}
        if isinstance(value, list):
            return [drop_walls(v) for v in value]
        return value

    rest = {k: v for k, v in result.items() if k not in ("summary", "files")}
    return {
        "summary": {k: v for k, v in result["summary"].items() if k != "wall_s"},
        "rest": drop_walls(rest),
    }


def _serial(store_url: str, bodies: list[dict[str, Any]], work: Path) -> list[dict[str, Any]]:
    """Prepare and run each drill in this process; results as the worker stores them."""
    from cim.store import open_store
    from scenarios.drills import DRILLS
    from scenarios.drills.base import PrepareContext, RunContext

    traffic = DRILLS["traffic"]
    store = open_store(store_url)
    out = []
    try:
        for i, body in enumerate(bodies):
            spec = traffic.prepare(
                traffic.spec.model_validate(body),
                PrepareContext(store, ASSETS, work / "cache", store_url),
            )
            folder = work / "serial" / str(i)
            folder.mkdir(parents=True, exist_ok=True)
            result = traffic.run(
                spec, RunContext(store, ASSETS, work / "cache", folder, lambda f, m: None, "")
            )
            stored = orjson.loads(
                orjson.dumps(
                    {"summary": result.summary, **result.detail},
                    option=orjson.OPT_SERIALIZE_NUMPY,
                )
            )
            objects = [
                {"code": o.code, "metric": o.metric, "value": float(o.value)}
                for o in sorted(result.objects, key=lambda o: (o.code, o.metric))
            ]
            out.append({"result": stored, "objects": objects, "wall_s": result.summary["wall_s"]})
    finally:
        store.close()
    return out


def _on_runner(
    store_url: str, bodies: list[dict[str, Any]], work: Path, executor: Any
) -> list[dict[str, Any]]:
    """Prepare each drill here, submit all to a ``Runner`` on ``executor``, wait for all."""
    from cim.store import open_store
    from scenarios.drills import DRILLS
    from scenarios.drills.base import PrepareContext
    from scenarios.runs.runner import Runner
    from scenarios.runs.store import RunState, RunStore
    from scenarios.runs.worker import WorkerPaths

    traffic = DRILLS["traffic"]
    files = work / "runs"
    runs = RunStore(store_url, files)
    paths = WorkerPaths(store_url, str(files), str(ASSETS), str(work / "cache"))
    runner = Runner(runs, executor, paths)
    runner.start()
    store = open_store(store_url)
    try:
        ids = []
        for body in bodies:
            spec = traffic.prepare(
                traffic.spec.model_validate(body),
                PrepareContext(store, ASSETS, work / "cache", store_url, runs=runs),
            )
            record = runs.create(
                "drill",
                "traffic",
                "bench",
                spec.model_dump(mode="json"),
                site=spec.site_name(),
                runner=runner.id,
            )
            runner.submit(record.id)
            ids.append(record.id)
        deadline = time.monotonic() + 60 + 30 * len(bodies)
        while True:
            records = [runs.get(run_id) for run_id in ids]
            if all(r.finished_state for r in records):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: traffic runs did not end: {[r.state for r in records]}")
            time.sleep(0.02)
        out = []
        for r in records:
            if r.state is not RunState.SUCCEEDED or r.result is None:
                raise SystemExit(f"bench: traffic run {r.id} {r.state}: {r.message} {r.error}")
            objects = [
                {"code": o["code"], "metric": o["metric"], "value": o["value"]}
                for o in runs.objects(r.id)
            ]
            assert r.started is not None and r.finished is not None
            out.append(
                {
                    "result": r.result,
                    "objects": objects,
                    "wall_s": r.result["summary"]["wall_s"],
                    "held_s": r.finished - r.started,
                }
            )
    finally:
        store.close()
        runner.close()
        runs.close()
    return out


class _KeptOpen:
    """An executor that a ``Runner.close`` leaves open (so warm workers serve the next
    ``Runner``)."""

    def __init__(self, executor: Any) -> None:
        self.executor = executor
        self.slots = executor.slots

    def submit(self, run_id: str, paths: Any) -> Any:
        return self.executor.submit(run_id, paths)

    def close(self) -> None:
        pass


def traffic_throughput(
    args: argparse.Namespace, work: Path, store: Path, problems: list[str]
) -> dict[str, Any]:
    """Part 2: ``--traffic`` Helsinki drills serially, on the local pool and on Ray."""
    bodies = [_traffic_body(i, args.pairs) for i in range(args.traffic)]
    warm = [_traffic_body(10_000 + i, args.pairs) for i in range(2)]
    url = str(store)
    modes: dict[str, dict[str, Any]] = {}

    def measure(
        name: str, label: str, execute: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
    ) -> None:
        began = time.perf_counter()
        execute(warm)
        warm_s = time.perf_counter() - began
        began = time.perf_counter()
        results = execute(bodies)
        wall = time.perf_counter() - began
        modes[name] = {"label": label, "warmup_s": warm_s, "wall_s": wall, "results": results}
        print(f"bench:   {label}: {wall:.1f} s (warm-up {warm_s:.1f} s)", flush=True)

    print(f"bench: {args.traffic} Helsinki traffic drills ({args.pairs} OD pairs each)", flush=True)
    measure("serial", "serial, in this process", lambda b: _serial(url, b, work / "serial"))
    from scenarios.runs.runner import LocalExecutor, RayExecutor

    pool = _KeptOpen(LocalExecutor(2))  # its workers stay warm from warm-up to timing
    label = "local pool, LocalExecutor(2)"
    measure("pool", label, lambda b: _on_runner(url, b, work / "pool", pool))
    pool.executor.close()
    import ray

    began = time.perf_counter()
    ray_executor = RayExecutor("local", 2, num_cpus=2)
    ray_start_s = time.perf_counter() - began
    print(f"bench:   Ray started in {ray_start_s:.1f} s", flush=True)
    try:
        measure(
            "ray",
            "Ray local, RayExecutor(2 slots, 2 CPUs)",
            lambda b: _on_runner(url, b, work / "ray", ray_executor),
        )
    finally:
        ray.shutdown()

    reference = [(_strip(r["result"]), r["objects"]) for r in modes["serial"]["results"]]
    identical = True
    for name in ("pool", "ray"):
        for i, r in enumerate(modes[name]["results"]):
            if (_strip(r["result"]), r["objects"]) != reference[i]:
                identical = False
                problems.append(f"traffic run {i} ({name}) differs from the serial run")
    serial_wall = modes["serial"]["wall_s"]
    out: dict[str, Any] = {
        "runs": args.traffic,
        "pairs": args.pairs,
        "ray_start_s": ray_start_s,
        "identical": identical,
        "modes": {},
    }
    for name, mode in modes.items():
        results = mode["results"]
        out["modes"][name] = {
            "label": mode["label"],
            "wall_s": mode["wall_s"],
            "runs_per_s": args.traffic / mode["wall_s"],
            "speedup": serial_wall / mode["wall_s"],
            "warmup_s": mode["warmup_s"],
            "run_wall_s_median": statistics.median(r["wall_s"] for r in results),
            "held_s_median": (
                statistics.median(r["held_s"] for r in results) if "held_s" in results[0] else None
            ),
            "vehicles": [r["result"]["summary"]["vehicles"] for r in results],
            "completed_trips": [r["result"]["summary"]["completed_trips"] for r in results],
        }
    return out


# -- the report -----------------------------------------------------------------------------


def _print_serving(part: dict[str, Any], args: argparse.Namespace) -> None:
    n = part["drills"]
    print(
        f"\n### Serving while drills run ({part['files']} tile files; {args.connections} "
        f"connections; {args.api_workers} uvicorn worker(s), TWIN_RUN_WORKERS={n}; "
        f"medians of {args.repeat} x {args.seconds} s per cell)\n"
    )
    print(f"| endpoint | metric | 0 drills | {n} drills | {n} / 0 |")
    print("|---|---|---:|---:|---:|")
    for target in ("tiles", "health"):
        for key, label, fmt in (
            ("p50_ms", "p50 ms", "{:.2f}"),
            ("p99_ms", "p99 ms", "{:.2f}"),
            ("rps", "req/s", "{:.0f}"),
        ):
            s = part["summary"][target][key]
            print(
                f"| {target} | {label} | {fmt.format(s['idle'])} | {fmt.format(s['busy'])} "
                f"| {s['ratio']:.2f} |"
            )
    print()
    for target in ("tiles", "health"):
        p99 = part["summary"][target]["p99_ms"]
        idle_ok = "met" if p99["idle"] < TARGET_IDLE_P99_MS else "MISSED"
        busy_ok = "met" if p99["busy"] < TARGET_BUSY_P99_MS else "MISSED"
        print(
            f"- target {target}: p99 < {TARGET_IDLE_P99_MS:g} ms idle: {p99['idle']:.1f} ms "
            f"({idle_ok}); p99 < {TARGET_BUSY_P99_MS:g} ms with {n} drills: "
            f"{p99['busy']:.1f} ms ({busy_ok})"
        )
    print(
        f"- drills: {n} crowd drills (waterfront, {part['crowd_agents']} people) running before "
        f"and after every window; slowest start (POST to all running) "
        f"{part['drill_start_s_max']:.1f} s, slowest cancel (DELETE to all cancelled) "
        f"{part['cancel_s_max']:.2f} s; tileset built in {part['tileset_build_s']:.1f} s"
    )


def _print_traffic(part: dict[str, Any]) -> None:
    print(
        f"\n### Throughput of {part['runs']} Helsinki traffic drills "
        f"({part['pairs']} OD pairs each; warm executors)\n"
    )
    print("| executor | wall s | runs/s | speed-up | median run s | warm-up s |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode in part["modes"].values():
        print(
            f"| {mode['label']} | {mode['wall_s']:.1f} | {mode['runs_per_s']:.2f} "
            f"| {mode['speedup']:.2f} | {mode['run_wall_s_median']:.2f} | {mode['warmup_s']:.1f} |"
        )
    print(
        f"\n- Ray start-up (not timed): {part['ray_start_s']:.1f} s; warm-up = 2 untimed drills "
        "on each executor first (imports, worker processes)"
    )
    print(f"- identical: {'yes' if part['identical'] else 'no'}")


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="bench-runs-"))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="alternations of 0 / N drills")
    parser.add_argument("--seconds", type=int, default=10, help="seconds per wrk window")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument(
        "--api-workers", type=int, default=1, help="uvicorn workers of the server (twin serve)"
    )
    parser.add_argument("--drills", type=int, default=4, help="crowd drills running at once")
    parser.add_argument("--traffic", type=int, default=20, help="traffic drills to time")
    parser.add_argument("--pairs", type=int, default=600, help="OD pairs per traffic drill")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is missing (make bench-runs installs it)")

    began = time.monotonic()
    load_start = os.getloadavg()[0]
    problems: list[str] = []
    notes: list[str] = []
    with _workdir() as work:
        store = work / "bench.db"
        _twin(store, "import", "--site", "denhaag", str(DENHAAG))
        _twin(store, "import", "--site", "helsinki", str(HELSINKI))
        serving = serving_under_drills(args, work, store, problems, notes)
        traffic = traffic_throughput(args, work, store, problems)

    total_s = time.monotonic() - began
    load_end = os.getloadavg()[0]
    print(
        f"\nmachine: {os.cpu_count()} cores; 1-min load average {load_start:.2f} at the start, "
        f"{load_end:.2f} at the end"
        + (" (other processes were busy: the numbers are noisy)" if load_start > 0.5 else "")
    )
    _print_serving(serving, args)
    _print_traffic(traffic)
    print(f"\ntotal {total_s / 60:.1f} min")
    for note in notes:
        print(f"note: {note}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    OUT.mkdir(parents=True, exist_ok=True)
    for mode in traffic["modes"].values():
        mode.pop("results", None)
    report = {
        "serving": serving,
        "traffic": traffic,
        "problems": problems,
        "notes": notes,
        "total_s": total_s,
        "cores": os.cpu_count(),
        "load_average_start": load_start,
        "load_average_end": load_end,
        "args": vars(args),
    }
    (OUT / "runs.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {OUT / 'runs.json'}")
    return 0 if traffic["identical"] and not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
