"""A headless ingest process: MQTT -> store, latest state and rules, until SIGTERM/SIGINT.

``python -m twin.ingest_service --store twin.db --mqtt mqtt://127.0.0.1:1883`` runs the
live twin without the HTTP API (one per partition of datastreams at scale; the API process
runs its own subscriber when ``TWIN_MQTT_URL`` is set). It prints ``ready`` once subscribed.
Processes with the same client id take turns through a lease in the store (ADR 0019): a
second one waits as a standby, and takes over when the first stops or dies.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from twin.live import LiveTwin
from twin.mqtt import MqttSettings


def main(argv: list[str] | None = None) -> int:
    """Run until a termination signal; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m twin.ingest_service", description=__doc__)
    parser.add_argument("--store", required=True, help="SQLite path or postgresql:// URL")
    parser.add_argument("--mqtt", default="mqtt://127.0.0.1:1883", help="broker URL")
    parser.add_argument("--prefix", default="", help="topic prefix (ending in /)")
    parser.add_argument("--client-id", default="citytwin-ingest", help="fixed MQTT client id")
    parser.add_argument(
        "--share-group", help="join this MQTT shared subscription (several ingest processes)"
    )
    args = parser.parse_args(argv)
    live = LiveTwin(
        args.store,
        mqtt=MqttSettings(
            args.mqtt, prefix=args.prefix, client_id=args.client_id, share_group=args.share_group
        ),
    )
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    live.start()
    assert live.mqtt is not None
    # a predecessor killed without releasing the subscription lease holds it until it expires
    ttl_s = live.mqtt.settings.lease_ttl_s or 0.0
    if live.mqtt.connected.wait(10 + 2 * ttl_s):
        print("ready", flush=True)
    else:
        print(f"waiting for the broker at {args.mqtt}", file=sys.stderr, flush=True)
    done.wait()
    live.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
