"""``twin run replay``: play a recorded observation file into MQTT (the demo feed)."""

from __future__ import annotations

import argparse
import uuid
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from tqdm import tqdm

from cim.errors import StoreError
from twin.replay import load_recording, replay
from twin.times import now_us, parse_time

HELP = "replay a recorded observation CSV into MQTT at a chosen speed"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The replay's options."""
    parser.add_argument("recording", help="CSV with offset_s, a value column [, datastream]")
    parser.add_argument("--column", required=True, help="the value column")
    parser.add_argument("--datastream", type=int, help="datastream id of every row")
    parser.add_argument("--mqtt", default="mqtt://127.0.0.1:1883", help="broker URL")
    parser.add_argument("--prefix", default="", help="topic prefix")
    parser.add_argument("--speed", type=float, default=1.0, help="times faster than recorded")
    parser.add_argument("--start", help="phenomenon time of offset 0 (ISO 8601; default now)")
    parser.add_argument(
        "--loop", action="store_true", help="play again from the start, for ever (demo walls)"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Publish the recording; returns how many observations went out.

    Raises
    ------
    SourceError
        If the recording is malformed.
    StoreError
        If the broker cannot be reached.
    ValueError
        If the speed or start time is invalid.
    """
    recording = load_recording(args.recording, args.column, args.datastream)
    start = parse_time(args.start) if args.start else now_us()
    parsed = urlparse(args.mqtt)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"replay-{uuid.uuid4().hex[:8]}")
    try:
        client.connect(parsed.hostname or "127.0.0.1", parsed.port or 1883)
    except OSError as exc:
        raise StoreError(f"cannot reach the MQTT broker at {args.mqtt} ({exc})") from None
    client.loop_start()
    bar = None if args.json else tqdm(total=len(recording.offsets_s), unit="obs")

    def publish(topic: str, payload: bytes) -> None:
        client.publish(topic, payload, qos=1).wait_for_publish(10)
        if bar is not None:
            bar.update(1)

    try:
        sent = replay(recording, publish, start, args.speed, args.prefix)
        while getattr(args, "loop", False):
            sent += replay(recording, publish, now_us(), args.speed, args.prefix)
    finally:
        if bar is not None:
            bar.close()
        client.disconnect()
        client.loop_stop()
    return {"published": sent, "recording": str(args.recording), "speed": args.speed}
