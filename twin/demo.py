"""The demo feed of a building unit: a people counter in every room, fed from a measurement.

``make run`` shows a pilot's building with rooms that fill and empty. Each IFC space of the
building gets (once) a Thing with one ``people count`` datastream linked to the space's CIM
code, and the building a rule (yellow from 1 person per 4 m² of its largest room's share,
see :data:`UNIT_LEVELS`). The counts come from the measured Jülich bottleneck densities
(``assets/live/bottleneck_density.csv``): room ``i`` sees the density series shifted by
``i`` seconds, times its net floor area and :data:`ROOM_SHARE` (a room is far emptier than a
bottleneck), rounded to whole people. The result is a recording CSV with a ``datastream``
column that ``twin run replay`` plays into MQTT.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson

from cim.errors import TwinError
from cim.model import CimObject
from cim.store import Store
from twin.errors import RequestError
from twin.live import LiveTwin
from twin.rules import Rule

#: Fraction of the bottleneck's density a room holds in the demo.
ROOM_SHARE = 0.08

#: People-count levels of the demo unit's rule (persons in one room).
UNIT_LEVELS = ((8.0, "yellow"), (15.0, "red"))

PROPERTY = "people count"


def unit_demo(
    store: Store, live: LiveTwin, site: str, recording: Path, out: Path, state: Path
) -> dict[str, Any]:
    """Set up (once) people counters in the rooms of the site's first IFC building and write
    their demo recording to ``out``.

    Returns
    -------
    dict
        ``building`` (its code), ``datastreams`` (space code → datastream id), ``recording``
        (the written CSV).

    Raises
    ------
    TwinError
        If the site has no IFC building with spaces.
    """
    buildings = sorted(store.by_kind(site, "IfcBuilding"), key=lambda b: b.code)
    if not buildings:
        raise TwinError(f"site {site!r} has no IFC building to put people counters in")
    building = buildings[0]
    spaces = [
        s
        for s in store.by_prefix(site, building.code)
        if s.kind == "IfcSpace" and s.footprint is not None and not s.footprint.is_empty
    ]
    if not spaces:
        raise TwinError(f"building {building.code} of site {site!r} has no spaces")
    streams = _known(live, state, building.code)
    if streams is None:
        streams = {s.code: _counter(live, site, s) for s in spaces}
        live.alerts.add_rule(
            Rule(
                0,
                f"people in a room of {building.name} (demo)",
                "high",
                UNIT_LEVELS,
                observed_property=PROPERTY,
                code_prefix=building.code,
                hysteresis=1.0,
            )
        )
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_bytes(orjson.dumps({"building": building.code, "datastreams": streams}))
    _write_recording(recording, out, spaces, streams)
    return {"building": building.code, "datastreams": streams, "recording": str(out)}


def _known(live: LiveTwin, state: Path, building: str) -> dict[str, int] | None:
    if not state.is_file():
        return None
    known = orjson.loads(state.read_bytes())
    if known.get("building") != building:
        return None
    streams = {str(k): int(v) for k, v in known.get("datastreams", {}).items()}
    try:
        for ident in streams.values():
            live.sta.read(f"Datastreams({ident})", {}, "")
    except (TwinError, RequestError):
        return None  # the store was reset: make them again
    return streams


def _counter(live: LiveTwin, site: str, space: CimObject) -> int:
    room = space.attributes.get("LongName") or space.name
    thing = live.sta.create(
        "Things",
        {
            "name": f"People counter in {room}",
            "description": "demo people counter (replays a scaled Jülich measurement)",
            "properties": {"cimSite": site, "cimCode": space.code, "demo": True},
            "Datastreams": [
                {
                    "name": f"{PROPERTY} in {room}",
                    "description": "persons in the room",
                    "unitOfMeasurement": {
                        "name": "persons",
                        "symbol": "persons",
                        "definition": "urn:persons",
                    },
                    "observationType": "http://www.opengis.net/def/observationType/"
                    "OGC-OM/2.0/OM_Measurement",
                    "Sensor": {
                        "name": "people counter",
                        "description": "ceiling people counter",
                        "encodingType": "text/plain",
                        "metadata": "demo",
                    },
                    "ObservedProperty": {
                        "name": PROPERTY,
                        "definition": "urn:people-count",
                        "description": "persons present",
                    },
                }
            ],
        },
    )
    streams = live.sta.read(f"Things({thing})/Datastreams", {}, "")
    return int(streams["value"][0]["@iot.id"])


def _write_recording(
    recording: Path, out: Path, spaces: list[CimObject], streams: dict[str, int]
) -> None:
    table = np.loadtxt(recording, delimiter=",", skiprows=1, ndmin=2)
    header = [h.strip() for h in recording.read_text(encoding="utf-8").splitlines()[0].split(",")]
    if "offset_s" not in header or "density_p_per_m2" not in header:
        raise TwinError(f"{recording}: needs the columns offset_s and density_p_per_m2")
    offsets = table[:, header.index("offset_s")]
    density = table[:, header.index("density_p_per_m2")]
    rows: list[str] = []
    for i, space in enumerate(sorted(spaces, key=lambda s: s.code)):
        ident = streams.get(space.code)
        if ident is None:
            continue
        people = np.round(np.roll(density, i) * float(space.footprint.area) * ROOM_SHARE)
        rows.extend(f"{t:g},{ident},{int(p)}" for t, p in zip(offsets, people, strict=True))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("offset_s,datastream,people\n" + "\n".join(rows) + "\n", encoding="utf-8")
