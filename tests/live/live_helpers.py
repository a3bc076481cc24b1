"""What the live-twin tests share besides fixtures: entity bodies and observations."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from twin.live import LiveTwin
from twin.times import format_time, parse_time

MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
T0 = parse_time("2026-11-26T10:00:00Z")
#: The twin's own broker (config/mosquitto.conf) the ingest tests use; most other live
#: tests use the system broker on 1883.
INGEST_BROKER = os.environ.get("TWIN_TEST_MQTT_URL", "mqtt://127.0.0.1:1884")


def thing_body(
    name: str, code: str, prop: str, unit: str = "m", interval_s: float | None = None
) -> dict[str, Any]:
    """A Thing with one Location and one Datastream, linked to CIM object ``code``."""
    ds_props: dict[str, Any] = {} if interval_s is None else {"intervalS": interval_s}
    return {
        "name": name,
        "description": f"{name} sensor box",
        "properties": {"cimCode": code},
        "Locations": [
            {
                "name": f"{name} location",
                "description": "where it stands",
                "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [4.31, 52.07]},
            }
        ],
        "Datastreams": [
            {
                "name": f"{name} {prop}",
                "description": f"{prop} at {name}",
                "unitOfMeasurement": {"name": unit, "symbol": unit, "definition": "urn:" + unit},
                "observationType": MEASUREMENT,
                "properties": ds_props,
                "Sensor": {
                    "name": f"{prop} sensor",
                    "description": "a sensor",
                    "encodingType": "text/plain",
                    "metadata": "none",
                },
                "ObservedProperty": {
                    "name": prop,
                    "definition": "urn:" + prop.replace(" ", "-"),
                    "description": prop,
                },
            }
        ],
    }


def datastream_of(twin: LiveTwin, thing: int) -> int:
    """The id of the first Datastream of a Thing."""
    found = twin.sta.read(f"Things({thing})/Datastreams", {}, "http://t")["value"]
    return int(found[0]["@iot.id"])


def obs(ds: int, seconds: float, value: Any) -> dict[str, Any]:
    """An Observation body ``seconds`` after ``T0``."""
    return {
        "Datastream": {"@iot.id": ds},
        "phenomenonTime": format_time(T0 + round(seconds * 1e6)),
        "result": value,
    }


def wait_for(condition: Any, timeout_s: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition()`` until true.

    Raises
    ------
    AssertionError
        If it stays false for ``timeout_s``.
    """
    import time

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def mqtt_publisher(url: str = "mqtt://127.0.0.1:1883", client_id: str = "") -> Any:
    """A connected paho client (QoS 1 publishes wait for the broker's ack)."""
    import uuid
    from urllib.parse import urlparse

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    parsed = urlparse(url)
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id or f"pub-{uuid.uuid4().hex[:10]}"
    )
    try:
        client.connect(parsed.hostname or "127.0.0.1", parsed.port or 1883)
    except OSError as exc:
        raise AssertionError(
            f"Mosquitto is not reachable at {url} ({exc}); `make test` needs the broker "
            "(Debian package mosquitto)"
        ) from None
    client.loop_start()
    return client


@dataclass
class Clock:
    """A clock the test moves by hand, µs."""

    now: int = T0 + 3_600_000_000

    def __call__(self) -> int:
        return self.now
