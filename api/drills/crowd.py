"""``twin run crowd``: evacuate a venue and report densities, flows and evacuation times.

::

    twin run crowd --venue assets/crowd/waterfront.wkt --agents 40000 --seed 1 --json
    twin run crowd --venue V.wkt --agents 5000 --close-exit 1@0 --meter-exit 2:3.5@60
    twin run crowd --venue V.wkt --agents 5000 --one-way "POLYGON ((150 0, 160 0, ...)):270@30"
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import shapely
import shapely.errors

from api.progress import progress_bar
from scenarios import crowd as crowd_drill
from scenarios.crowd import Arrival, CrowdSpec, ExitMeasure, FundamentalDiagram, OneWay, Release

HELP = "crowd drill: N people leave a venue (WKT/GeoJSON) by walking distance"


def _exit_at(text: str) -> ExitMeasure:
    """``I@T``: close exit I at T seconds."""
    index, _, at = text.partition("@")
    return ExitMeasure(exit=_int(index, "exit index"), at_s=_seconds(at or "0"), rate_pps=0.0)


def _reopen_at(text: str) -> ExitMeasure:
    """``I@T``: reopen exit I at T seconds to its geometric capacity."""
    index, _, at = text.partition("@")
    return ExitMeasure(exit=_int(index, "exit index"), at_s=_seconds(at or "0"), rate_pps=None)


def _meter(text: str) -> ExitMeasure:
    """``I:RATE[@T]``: meter exit I to RATE persons/s from T seconds."""
    head, _, at = text.partition("@")
    index, sep, rate = head.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected I:RATE[@T], got {text!r}")
    value = _seconds(rate)
    return ExitMeasure(exit=_int(index, "exit index"), at_s=_seconds(at or "0"), rate_pps=value)


def _release(text: str) -> Release:
    """``T`` (everyone) or ``T:SPAWN`` (one spawn area) starts walking at T seconds."""
    at, _, spawn = text.partition(":")
    return Release(at_s=_seconds(at), spawn=_int(spawn, "spawn index") if spawn else None)


def _arrival(text: str) -> Arrival:
    """``SPAWN:PEOPLE:START:END``."""
    parts = text.split(":")
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"expected SPAWN:PEOPLE:START:END, got {text!r}")
    return Arrival(
        spawn=_int(parts[0], "spawn index"),
        people=_int(parts[1], "people"),
        start_s=_seconds(parts[2]),
        end_s=_seconds(parts[3]),
    )


def _one_way(text: str) -> OneWay:
    """``POLYGON_WKT_OR_FILE:BEARING_DEG[@T]``: from T seconds people in the polygon (WKT,
    or a file holding WKT or a GeoJSON Polygon / Feature, venue coordinates) may only walk
    with a positive component along the bearing (degrees clockwise from +y, north)."""
    head, at_sep, at = text.rpartition("@")
    if not at_sep:
        head, at = text, "0"
    where, sep, bearing = head.rpartition(":")
    if not sep or not where:
        raise argparse.ArgumentTypeError(
            f"expected POLYGON_WKT_OR_FILE:BEARING_DEG[@T], got {text!r}"
        )
    try:
        degrees = float(bearing)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"one-way bearing must be a number of degrees, got {bearing!r}"
        ) from None
    try:
        ring = _polygon_ring(where)
        return OneWay(polygon=ring, bearing_deg=degrees, at_s=_seconds(at))
    except (OSError, ValueError, shapely.errors.ShapelyError) as exc:
        raise argparse.ArgumentTypeError(f"one-way polygon: {exc}") from None


def _polygon_ring(where: str) -> tuple[tuple[float, float], ...]:
    """The exterior ring of a WKT polygon, or of the WKT / GeoJSON polygon in a file."""
    text = where
    path = Path(where)
    if path.is_file():
        text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        data = json.loads(text)
        geometry = data.get("geometry", data) if isinstance(data, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") != "Polygon":
            raise ValueError(f"{where}: GeoJSON must be a Polygon or a Feature with one")
        return tuple((float(x), float(y)) for x, y, *_ in geometry["coordinates"][0])
    try:
        shape = shapely.from_wkt(text.strip())
    except shapely.errors.ShapelyError as exc:
        raise ValueError(f"{where[:60]!r} is neither a file nor WKT ({exc})") from None
    if not isinstance(shape, shapely.Polygon):
        raise ValueError(f"{where[:60]}: must be a POLYGON, got {shape.geom_type}")
    return tuple((float(x), float(y)) for x, y in shape.exterior.coords)


def _int(text: str, name: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{name} must be >= 0, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--venue", help=".wkt or .geojson venue (required without --spec)")
    parser.add_argument(
        "--agents", type=lambda t: _int(t, "--agents"), help="people (required without --spec)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cell", type=float, help="cell size, m (default: auto, 0.4–1)")
    parser.add_argument("--dt", type=float, help="time step, s (default: auto)")
    parser.add_argument("--placement", choices=("uniform", "spawn"), default="uniform")
    parser.add_argument("--close-exit", type=_exit_at, action="append", default=[], metavar="I@T")
    parser.add_argument(
        "--reopen-exit", type=_reopen_at, action="append", default=[], metavar="I@T"
    )
    parser.add_argument(
        "--meter-exit", type=_meter, action="append", default=[], metavar="I:RATE[@T]"
    )
    parser.add_argument(
        "--one-way",
        type=_one_way,
        action="append",
        default=[],
        metavar="POLYGON_WKT:BEARING_DEG[@T]",
        help="one-way corridor from T: inside the polygon (WKT or a WKT/GeoJSON file) people "
        "walk only along the bearing (degrees clockwise from north, +y)",
    )
    parser.add_argument(
        "--release",
        type=_release,
        action="append",
        default=[],
        metavar="T[:SPAWN]",
        help="evacuation order at T (everyone) or staged release of one spawn area",
    )
    parser.add_argument(
        "--arrivals", type=_arrival, action="append", default=[], metavar="SPAWN:N:START:END"
    )
    parser.add_argument("--reroute", type=float, metavar="S", help="congestion re-routing every S")
    parser.add_argument("--speed-sd", type=float, help="spread of free speeds, m/s (0.26)")
    parser.add_argument("--max-time", type=float, default=7200.0)
    parser.add_argument("--png", help="write a PNG map of peak densities here")
    parser.add_argument(
        "--grid-cache",
        default=os.environ.get("TWIN_CROWD_CACHE"),
        metavar="DIR",
        help="keep discretised venues here (default: $TWIN_CROWD_CACHE, else none)",
    )
    parser.add_argument(
        "--details", action="store_true", help="print zones, alerts and curves as well"
    )
    parser.add_argument(
        "--frames", metavar="FILE", help="write per-zone density frames (JSON lines, every 10 s)"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the drill; the CLI contract's keys, or everything with ``--details``.

    Raises
    ------
    ValueError
        If ``--venue`` or ``--agents`` is missing, or a value is out of range.
    """
    if args.venue is None or args.agents is None:
        raise ValueError(
            "the following arguments are required: --venue, --agents (or --spec FILE.json)"
        )
    fd = FundamentalDiagram()
    if args.speed_sd is not None:
        fd = FundamentalDiagram(free_speed_sd_mps=args.speed_sd)
    spec = CrowdSpec(
        venue=args.venue,
        agents=args.agents,
        seed=args.seed,
        cell_m=args.cell,
        dt_s=args.dt,
        placement=args.placement,
        max_time_s=args.max_time,
        measures=tuple(args.close_exit + args.reopen_exit + args.meter_exit),
        releases=tuple(args.release),
        arrivals=tuple(args.arrivals),
        one_ways=tuple(args.one_way),
        reroute_every_s=args.reroute,
        fd=fd,
        density_png=args.png,
        grid_cache=args.grid_cache,
    )
    with progress_bar(args.json) as progress:
        result = crowd_drill.run(spec, None if args.json else progress)
    if args.frames:
        with open(args.frames, "w", encoding="utf-8") as out:
            for frame in result.zone_frames(10.0):
                out.write(json.dumps(frame) + "\n")
    return result.to_dict() if args.details else result.summary()
