"""Ingest throughput and latency: observations/s from Mosquitto into the store (stored +
latest + rules + stream) with 10,000 datastreams, side by side with a bare paho subscriber
counting the same messages, in the same run.

Run: ``make bench-ingest`` (or ``.venv/bin/python bench/ingest.py [--observations 200000]
[--batch 100] [--repeat 3] [--store PATH|postgresql://...]``). A publisher process sends
``--observations`` readings over ``--datastreams`` datastreams in bulk messages of
``--batch`` readings (``twin/v1/bulk``, QoS 1) as fast as the broker takes them; the
phenomenon time of each reading is its publish time, so the stream subscriber (the bus the
WebSocket route drains, in the ingest process) measures publish -> stream latency. The bare
subscriber (its own process, QoS 1, auto-ack) is the broker's own delivery rate. Results go
to ``bench/out/ingest.json``; medians of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HOST, PORT = "127.0.0.1", 1883


def _client(name: str, **kwargs: Any) -> Any:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=name, **kwargs)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    return client


def _publisher(
    prefix: str, n: int, streams: int, batch: int, rate: float, go: Any, done: Any
) -> None:
    import orjson

    client = _client(f"bench-pub-{uuid.uuid4().hex[:6]}")
    client.connect(HOST, PORT)
    client.loop_start()
    go.wait()
    topic = f"{prefix}twin/v1/bulk"
    infos = []
    sent = 0
    began = time.perf_counter()
    while sent < n:
        if rate > 0:  # paced: hold the send time to sent / rate
            ahead = sent / rate - (time.perf_counter() - began)
            if ahead > 0:
                time.sleep(ahead)
        t = time.time()
        # times unique per datastream, and within 0.1 ms of the publish time
        rows = [[1 + (sent + i) % streams, t + i * 1e-6, 0.1] for i in range(batch)]
        infos.append(client.publish(topic, orjson.dumps({"obs": rows}), qos=1))
        sent += batch
        if len(infos) >= 500:  # keep the local queue bounded
            infos.pop(0).wait_for_publish(60)
    for info in infos:
        info.wait_for_publish(60)
    done.set()
    client.disconnect()
    client.loop_stop()


def _bare(prefix: str, n_messages: int, batch: int, ready: Any, out: Any) -> None:
    client = _client(f"bench-bare-{uuid.uuid4().hex[:6]}")
    state = {"count": 0, "first": 0.0, "last": 0.0}
    finished = threading.Event()

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        now = time.perf_counter()
        if state["count"] == 0:
            state["first"] = now
        state["count"] += 1
        state["last"] = now
        if state["count"] >= n_messages:
            finished.set()

    client.on_message = on_message
    client.on_connect = lambda c, *_: (c.subscribe(f"{prefix}twin/v1/bulk", 1), ready.set())
    client.connect(HOST, PORT)
    client.loop_start()
    finished.wait(600)
    client.disconnect()
    client.loop_stop()
    span = state["last"] - state["first"]
    out.put({"messages": state["count"], "obs_per_s": state["count"] * batch / span})


def _seed(live: Any, streams: int) -> None:
    """``streams`` datastreams under 100 Things (bulk SQL: entity creation is not measured)."""
    db = live.db
    if db.query("SELECT COUNT(*) FROM sta_datastreams")[0][0] >= streams:
        return  # a --store given for several runs is seeded once
    with db.transaction() as cur:
        cur.execute(
            db.sql(
                "INSERT INTO sta_sensors (id, name, description, encoding_type, "
                "metadata, properties) VALUES (1, 's', 's', 'text/plain', '', '{}')"
            )
        )
        cur.execute(
            db.sql(
                "INSERT INTO sta_observed_properties (id, name, definition, "
                "description, properties) VALUES (1, 'water depth', 'urn:d', 'd', '{}')"
            )
        )
        cur.executemany(
            db.sql(
                "INSERT INTO sta_things (id, name, description, properties, site, code) "
                "VALUES (?, ?, 'bench', '{}', NULL, ?)"
            ),
            [(t, f"thing {t}", f"B{t:04d}") for t in range(1, 101)],
        )
        cur.executemany(
            db.sql(
                "INSERT INTO sta_datastreams (id, name, description, unit, observation_type, "
                "properties, thing_id, sensor_id, observed_property_id, site, code) VALUES "
                "(?, ?, 'd', '{}', ?, '{}', ?, 1, 1, NULL, ?)"
            ),
            [
                (
                    d,
                    f"ds {d}",
                    "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                    1 + (d - 1) % 100,
                    f"B{1 + (d - 1) % 100:04d}-{d:05d}",
                )
                for d in range(1, streams + 1)
            ],
        )


def run_once(args: argparse.Namespace) -> dict[str, Any]:
    """One measured run: our ingest and the bare subscriber on the same messages."""
    from twin.bus import Subscription
    from twin.live import LiveTwin
    from twin.mqtt import MqttSettings
    from twin.rules import Rule

    prefix = f"bench-{uuid.uuid4().hex[:8]}/"
    workdir = tempfile.mkdtemp(prefix="bench-ingest-")
    store = args.store or str(Path(workdir) / "bench.db")
    settings = MqttSettings(
        prefix=prefix, client_id=f"bench-twin-{uuid.uuid4().hex[:6]}", batch_max=args.batch_max
    )
    live = LiveTwin(store, mqtt=settings, sweep_s=3600)
    _seed(live, args.datastreams)
    live.alerts.add_rule(Rule(0, "depth", "high", ((0.15, "red"),), "water depth"))
    latencies: list[float] = []
    woke = threading.Event()
    subscription = live.bus.subscribe(Subscription(None, ["observation"], woke.set))
    stop = threading.Event()

    def stream_client() -> None:
        while not stop.is_set():
            woke.wait(0.1)
            woke.clear()
            now = time.time()
            for event in subscription.drain():
                latencies.append(now - event["timeUs"] / 1e6)

    reader = threading.Thread(target=stream_client, daemon=True)
    reader.start()
    live.start()
    assert live.mqtt is not None
    live.mqtt.connected.wait(10)
    ctx = mp.get_context("spawn")
    go, done, ready = ctx.Event(), ctx.Event(), ctx.Event()
    out: Any = ctx.Queue()
    n_messages = args.observations // args.batch
    bare = ctx.Process(target=_bare, args=(prefix, n_messages, args.batch, ready, out))
    bare.start()
    ready.wait(10)
    time.sleep(0.5)
    publisher = ctx.Process(
        target=_publisher,
        args=(prefix, args.observations, args.datastreams, args.batch, args.rate, go, done),
    )
    publisher.start()
    time.sleep(1.0)
    stored_at: list[tuple[float, int]] = []
    go.set()
    t0 = time.perf_counter()
    target = n_messages * args.batch
    idle_since = time.perf_counter()
    while live.ingestor.counters["stored"] < target and time.perf_counter() - t0 < 600:
        now, count = time.perf_counter(), live.ingestor.counters["stored"]
        if stored_at and count > stored_at[-1][1]:
            idle_since = now
        # the broker drops what overflows a session's queue (Mosquitto: 1000 messages)
        if done.is_set() and now - idle_since > 15.0:
            break
        stored_at.append((now, count))
        time.sleep(0.05)
    stored_at.append((time.perf_counter(), live.ingestor.counters["stored"]))
    # from the publisher's go to the last commit: the first batch counts in full
    last = next(t for t, c in stored_at if c == stored_at[-1][1])
    wall = last - t0
    publisher.join(60)
    bare_result = out.get(timeout=120)
    bare.join(10)
    stop.set()
    reader.join(5)
    live.close()
    latencies.sort()
    ours = stored_at[-1][1] / wall
    return {
        "observations": stored_at[-1][1],
        "ours_obs_per_s": ours,
        "bare_obs_per_s": bare_result["obs_per_s"],
        "ratio": ours / bare_result["obs_per_s"],
        "latency_p50_ms": 1000 * latencies[len(latencies) // 2],
        "latency_p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "stream_events": len(latencies),
        "not_stored": target - stored_at[-1][1],
        # peak RSS of this (ingest) process so far, MB
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "engine": "postgresql" if store.startswith("postgres") else "sqlite",
    }


def main() -> None:
    """Run ``--repeat`` times and report medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--observations", type=int, default=200_000)
    parser.add_argument("--datastreams", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500, help="readings per bulk message")
    parser.add_argument("--batch-max", type=int, default=2000, help="messages per transaction")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="publish obs/s (0: as fast as the broker takes)"
    )
    parser.add_argument("--store", help="store URL (default: a fresh SQLite file per run)")
    args = parser.parse_args()
    runs = []
    for i in range(args.repeat):
        result = run_once(args)
        print(
            f"run {i + 1}: "
            + json.dumps(
                {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}
            ),
            flush=True,
        )
        runs.append(result)
    keys = ("ours_obs_per_s", "bare_obs_per_s", "ratio", "latency_p50_ms", "latency_p99_ms")
    summary = {k: statistics.median(r[k] for r in runs) for k in keys}
    summary.update(
        observations=args.observations,
        datastreams=args.datastreams,
        batch=args.batch,
        repeat=args.repeat,
        rate=args.rate,
        engine=runs[0]["engine"],
    )
    print(
        "median: "
        + json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in summary.items()})
    )
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"ingest-rate{int(args.rate)}.json" if args.rate else "ingest.json"
    (out_dir / name).write_text(json.dumps({"runs": runs, "median": summary}, indent=2))


if __name__ == "__main__":
    main()
