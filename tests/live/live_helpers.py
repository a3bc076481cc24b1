"""What the live-twin tests share besides fixtures: entity bodies and observations."""

from __future__ import annotations

from typing import Any

from twin.live import LiveTwin
from twin.times import format_time, parse_time

MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
T0 = parse_time("2026-11-26T10:00:00Z")


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
