"""Ingest throughput and latency: observations/s from Mosquitto into the store (stored +
latest + rules + stream) with 10,000 datastreams, side by side with a bare paho subscriber
counting the same messages, in the same run.

Two shapes of traffic:

- ``--mode bulk`` (default): a publisher sends ``--observations`` readings in bulk messages
  of ``--batch`` readings (``twin/v1/bulk``, QoS 1) as fast as the broker takes them (or at
  ``--rate`` readings/s);
- ``--mode single``: ``--datastreams`` devices each send one reading per message on their
  own SensorThings topic (``v1.1/Datastreams(ID)/Observations``, QoS 1), ``--rate``
  messages/s in all for ``--seconds`` (0: as fast as the broker takes them), from
  ``--publishers`` processes — the issue's keep-up target is 10,000 devices at 20,000
  messages/s for 30 s.

Each run reports messages published (acknowledged by the broker), stored, duplicates
(redeliveries the ingest saw again), dropped (published but never stored: the broker drops
what overflows a session's queue), the ingest rate and the bare subscriber's rate over the
same messages and their ratio. The phenomenon time of each reading is its publish time, so
the stream subscriber (the bus the WebSocket route drains, in the ingest process) measures
publish -> stream latency. The bare subscriber (its own process, QoS 1, auto-ack) is the
broker's own delivery rate; it speaks the ingest's protocol (``--broker
mqtt://...?protocol=3.1.1`` for both). Results go to ``bench/out/``; medians of ``--repeat`` runs.

Run: ``make bench-ingest`` (or ``.venv/bin/python bench/ingest.py --mode single --rate 20000
--seconds 30 --publishers 2 [--broker mqtt://127.0.0.1:1884] [--store postgresql://...]``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
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

HOST, PORT = "127.0.0.1", 1883  # set from --broker in main() (and in each child process)


def _use_broker(url: str) -> None:
    from urllib.parse import urlparse

    global HOST, PORT
    parsed = urlparse(url)
    HOST, PORT = parsed.hostname or "127.0.0.1", parsed.port or 1883


def _client(name: str, **kwargs: Any) -> Any:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=name, **kwargs)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    return client


def _publisher(
    broker: str, prefix: str, n: int, streams: int, batch: int, rate: float, go: Any, done: Any
) -> None:
    import orjson

    _use_broker(broker)
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


def _single_publisher(
    broker: str,
    prefix: str,
    part: int,
    parts: int,
    streams: int,
    n: int,
    rate: float,
    go: Any,
    out: Any,
) -> None:
    """Publish ``n`` one-reading messages, for datastreams ``part`` mod ``parts``, at ``rate``
    messages/s (0: as fast as the broker takes them); put how many the broker acknowledged."""
    _use_broker(broker)
    client = _client(f"bench-pub-{uuid.uuid4().hex[:6]}")
    acked = [0]
    client.on_publish = lambda *_: acked.__setitem__(0, acked[0] + 1)
    client.connect(HOST, PORT)
    client.loop_start()
    mine = list(range(1 + part, streams + 1, parts))
    topics = [f"{prefix}v1.1/Datastreams({ds})/Observations" for ds in mine]
    go.wait()
    began = time.perf_counter()
    for k in range(n):
        if rate > 0 and k % 200 == 0:  # paced: hold the send time to k / rate
            ahead = k / rate - (time.perf_counter() - began)
            if ahead > 0:
                time.sleep(ahead)
        # a datastream sends again only after all of this part's others: its times are unique
        payload = b'{"phenomenonTime":%.6f,"result":0.1}' % time.time()
        client.publish(topics[k % len(topics)], payload, qos=1)
        while k - acked[0] > 5000:  # keep the local queue bounded
            time.sleep(0.001)
    end = time.perf_counter() + 120
    while acked[0] < n and time.perf_counter() < end:
        time.sleep(0.01)
    out.put({"published": acked[0], "publish_s": time.perf_counter() - began})
    client.disconnect()
    client.loop_stop()


def _receive_maximum() -> Any:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from twin.mqtt import MqttSettings

    properties = Properties(PacketTypes.CONNECT)
    # (20,000 for an older twin without the setting: the bench measures before and after)
    properties.ReceiveMaximum = getattr(MqttSettings(), "inflight_max", 20_000)
    properties.SessionExpiryInterval = 3600  # for --preload; a clean start drops it anyway
    return properties


def _bare(
    prefix: str,
    n_messages: int,
    batch: int,
    ready: Any,
    out: Any,
    broker: str,
    topic: str,
    drain: Any = None,
) -> None:
    """Count the messages; with ``drain`` (an event), subscribe on a persistent session,
    leave, and come back to drain what was queued when ``drain`` is set."""
    import paho.mqtt.client as paho

    _use_broker(broker)
    name = f"bench-bare-{uuid.uuid4().hex[:6]}"
    v5 = "protocol=3.1.1" not in broker  # as the ingest (twin.mqtt.MqttSettings.protocol)

    def connect(persistent: bool) -> Any:
        # as the ingest: MQTT 5 with the same Receive Maximum, or 3.1.1 (which gets the
        # broker's max_inflight_messages)
        if v5:
            client = _client(name, protocol=paho.MQTTv5)
            client.connect(HOST, PORT, properties=_receive_maximum(), clean_start=not persistent)
        else:
            client = _client(name, protocol=paho.MQTTv311, clean_session=not persistent)
            client.connect(HOST, PORT)
        return client

    if drain is not None:
        client = connect(True)
        subscribed = threading.Event()
        client.on_subscribe = lambda *_: subscribed.set()
        client.loop_start()
        client.subscribe(f"{prefix}{topic}", 1)
        subscribed.wait(10)
        client.disconnect()
        client.loop_stop()
        ready.set()
        drain.wait()
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

    client = connect(drain is not None)
    client.on_message = on_message
    if drain is None:
        client.subscribe(f"{prefix}{topic}", 1)
        client.on_subscribe = lambda *_: ready.set()
    client.loop_start()
    # done when all came, or when nothing came for 10 s (the broker dropped the rest)
    began = time.perf_counter()
    while not finished.wait(1.0):
        if state["count"] and time.perf_counter() - state["last"] > 10:
            break
        if time.perf_counter() - began > 900:
            break
    client.disconnect()
    client.loop_stop()
    span = max(state["last"] - state["first"], 1e-9)
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

    single = args.mode == "single"
    prefix = f"bench-{uuid.uuid4().hex[:8]}/"
    workdir = tempfile.mkdtemp(prefix="bench-ingest-")
    store = args.store or str(Path(workdir) / "bench.db")
    settings = MqttSettings(
        args.broker,
        prefix=prefix,
        client_id=f"bench-twin-{uuid.uuid4().hex[:6]}",
        batch_max=args.batch_max,
    )
    live = LiveTwin(store, mqtt=settings, sweep_s=3600)
    _seed(live, args.datastreams)
    stored_before = int(live.db.query("SELECT COUNT(*) FROM sta_observations")[0][0])
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
    if args.preload:  # subscribed on the persistent session; away while all is queued
        time.sleep(0.5)
        live.mqtt.stop()
    ctx = mp.get_context("spawn")
    go, done, ready, drain = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Event()
    out: Any = ctx.Queue()
    published_q: Any = ctx.Queue()
    if single:
        per_message = 1
        n_messages = int(args.rate * args.seconds) if args.rate else args.observations
        topic = "v1.1/+/Observations"
    else:
        per_message = args.batch
        n_messages = args.observations // args.batch
        topic = "twin/v1/bulk"
    bare = ctx.Process(
        target=_bare,
        args=(
            prefix,
            n_messages,
            per_message,
            ready,
            out,
            args.broker,
            topic,
            drain if args.preload else None,
        ),
    )
    bare.start()
    ready.wait(10)
    time.sleep(0.5)
    if single:
        parts = args.publishers
        shares = [n_messages // parts + (1 if i < n_messages % parts else 0) for i in range(parts)]
        publishers = [
            ctx.Process(
                target=_single_publisher,
                args=(
                    args.broker,
                    prefix,
                    i,
                    parts,
                    args.datastreams,
                    shares[i],
                    args.rate / parts,
                    go,
                    published_q,
                ),
            )
            for i in range(parts)
        ]
    else:
        publishers = [
            ctx.Process(
                target=_publisher,
                args=(
                    args.broker,
                    prefix,
                    args.observations,
                    args.datastreams,
                    args.batch,
                    args.rate,
                    go,
                    done,
                ),
            )
        ]
    for process in publishers:
        process.start()
    time.sleep(1.0)
    stored_at: list[tuple[float, int]] = []
    go.set()
    t0 = time.perf_counter()
    published: list[dict[str, Any]] = []
    if args.preload:  # all queued first; then both subscribers drain at once
        for process in publishers:
            process.join(900)
        while single and len(published) < len(publishers):
            published.append(published_q.get(timeout=60))
        done.set()
        drain.set()
        live.mqtt.start()
        t0 = time.perf_counter()
    target = n_messages * per_message
    idle_since = time.perf_counter()
    while live.ingestor.counters["stored"] < target and time.perf_counter() - t0 < 900:
        now, count = time.perf_counter(), live.ingestor.counters["stored"]
        if stored_at and count > stored_at[-1][1]:
            idle_since = now
        while single and not published_q.empty():
            published.append(published_q.get())
        finished = done.is_set() or (single and len(published) == len(publishers))
        # the broker drops what overflows a session's queue (Mosquitto: 1000 messages)
        if finished and now - idle_since > 15.0:
            break
        stored_at.append((now, count))
        time.sleep(0.05)
    stored_at.append((time.perf_counter(), live.ingestor.counters["stored"]))
    # from the publisher's go to the last commit: the first batch counts in full
    last = next(t for t, c in stored_at if c == stored_at[-1][1])
    wall = last - t0
    for process in publishers:
        process.join(180)
    while single and len(published) < len(publishers):
        published.append(published_q.get(timeout=60))
    bare_result = out.get(timeout=120)
    bare.join(10)
    time.sleep(0.5)  # a redelivery would show now
    stop.set()
    reader.join(5)
    stored_rows = int(live.db.query("SELECT COUNT(*) FROM sta_observations")[0][0])
    stored_rows -= stored_before
    duplicates = live.ingestor.counters["duplicates"]
    dead = sum(v for k, v in live.ingestor.counters.items() if k.startswith("dead:"))
    live.close()
    latencies.sort()
    n_published = (
        sum(p["published"] for p in published) * per_message if single else target
    )  # bulk: the publisher waits for every acknowledgement
    publish_s = max((p["publish_s"] for p in published), default=0.0)
    ours = stored_rows / wall
    if args.preload:  # a queued reading's age is not the ingest's latency
        latencies = []
    return {
        "preload": args.preload,
        "published": n_published,
        "publish_rate": n_published / publish_s if publish_s else None,
        "stored": stored_rows,
        "duplicates": duplicates,
        "dead_letters": dead,
        "dropped": n_published - stored_rows,
        "bare_received": bare_result["messages"] * per_message,
        "ours_obs_per_s": ours,
        "bare_obs_per_s": bare_result["obs_per_s"],
        "ratio": ours / bare_result["obs_per_s"],
        "latency_p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
        "latency_p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else None,
        "stream_events": len(latencies),
        # peak RSS of this (ingest) process so far, MB
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "engine": "postgresql" if store.startswith("postgres") else "sqlite",
    }


def main() -> None:
    """Run ``--repeat`` times and report medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("bulk", "single"), default="bulk")
    parser.add_argument("--observations", type=int, default=200_000)
    parser.add_argument("--datastreams", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500, help="readings per bulk message")
    parser.add_argument("--batch-max", type=int, default=2000, help="messages per transaction")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="bulk: publish obs/s; single: messages/s (0: as fast as the broker takes)",
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="single: publish for this long")
    parser.add_argument("--publishers", type=int, default=2, help="single: publisher processes")
    parser.add_argument(
        "--broker",
        default=os.environ.get("TWIN_MQTT_URL", "mqtt://127.0.0.1:1883"),
        help="the broker (default: $TWIN_MQTT_URL or mqtt://127.0.0.1:1883)",
    )
    parser.add_argument("--store", help="store URL (default: a fresh SQLite file per run)")
    parser.add_argument(
        "--preload",
        action="store_true",
        help="queue everything on both subscribers' sessions first, then drain both at once",
    )
    parser.add_argument("--label", default="", help="added to the output file's name")
    args = parser.parse_args()
    _use_broker(args.broker)
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
    keys = (
        "published",
        "stored",
        "duplicates",
        "dropped",
        "ours_obs_per_s",
        "bare_obs_per_s",
        "ratio",
        "latency_p50_ms",
        "latency_p99_ms",
    )
    summary: dict[str, Any] = {
        k: statistics.median(v) if (v := [r[k] for r in runs if r[k] is not None]) else None
        for k in keys
    }
    summary.update(
        mode=args.mode,
        preload=args.preload,
        observations=args.observations,
        datastreams=args.datastreams,
        batch=args.batch,
        repeat=args.repeat,
        rate=args.rate,
        seconds=args.seconds if args.mode == "single" else None,
        publishers=args.publishers if args.mode == "single" else 1,
        broker=args.broker,
        engine=runs[0]["engine"],
    )
    print(
        "median: "
        + json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in summary.items()})
    )
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    name = "ingest-single" if args.mode == "single" else "ingest"
    name += f"-rate{int(args.rate)}" if args.rate else ""
    name += "-preload" if args.preload else ""
    name += f"-{args.label}" if args.label else ""
    (out_dir / f"{name}.json").write_text(json.dumps({"runs": runs, "median": summary}, indent=2))


if __name__ == "__main__":
    main()
