"""``twin run traffic``: a traffic drill on a UXsim-form CSV network, with road closures.

    twin run traffic --network PREFIX --json [--tmax S] [--close LINK@T[+DURATION][/LANES]]
                     [--closures FILE.json] [--deltan N] [--seed N] [--output FILE.json]

prints ``{"vehicles", "completed_trips", "total_travel_time_s", "average_travel_time_s",
"average_delay_s", "wall_s"}``; ``--output`` writes the whole result (per-link series,
congestion grades, stranded vehicles, per-road values for the viewer).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import orjson

from api.progress import progress_bar
from cim.errors import TwinError
from scenarios.traffic import Closure, Metering, TrafficSpec, load_closures, load_uxsim_csv
from scenarios.traffic import run as run_traffic

HELP = "traffic drill on a road network (UXsim CSV form) with closures"


def parse_close(text: str) -> Closure:
    """``LINK@T[+DURATION][/LANES]`` -> :class:`Closure` (seconds; lanes closed)."""
    link, at, when = text.rpartition("@")
    if not at or not link:
        raise argparse.ArgumentTypeError(f"--close {text!r}: expected LINK@T[+DURATION][/LANES]")
    lanes: int | None = None
    duration: float | None = None
    try:
        if "/" in when:
            when, _, lanes_text = when.partition("/")
            lanes = int(lanes_text)
        if "+" in when:
            when, _, duration_text = when.partition("+")
            duration = float(duration_text)
        start = float(when)
        if not math.isfinite(start) or (duration is not None and not math.isfinite(duration)):
            raise ValueError("not finite")
        return Closure(link=link, t_start_s=start, duration_s=duration, lanes=lanes, reason="cli")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"--close {text!r}: expected LINK@T[+DURATION][/LANES] ({exc})"
        ) from None


def parse_meter(text: str) -> Metering:
    """``LINK@T:RATE[+DURATION]`` -> :class:`Metering` (seconds, vehicles/s)."""
    link, at, when = text.rpartition("@")
    try:
        if not at or not link or ":" not in when:
            raise ValueError("missing part")
        start, _, rest = when.partition(":")
        rate, _, duration = rest.partition("+")
        return Metering(
            link=link,
            t_start_s=float(start),
            rate_vps=float(rate),
            duration_s=float(duration) if duration else None,
            reason="cli",
        )
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"--meter {text!r}: expected LINK@T:RATE[+DURATION] ({exc})"
        ) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--network",
        help="PREFIX of PREFIX_nodes.csv, PREFIX_links.csv and PREFIX_demand.csv (required "
        "without --spec)",
    )
    parser.add_argument("--tmax", type=float, help="simulated seconds (default: demand end + ~1 h)")
    parser.add_argument(
        "--close",
        type=parse_close,
        action="append",
        default=[],
        metavar="LINK@T[+DURATION][/LANES]",
        help="close a link (name or road code) at T s, for DURATION s, LANES lanes (repeatable)",
    )
    parser.add_argument(
        "--meter",
        type=parse_meter,
        action="append",
        default=[],
        metavar="LINK@T:RATE[+DURATION]",
        help="hold a link's outflow to RATE veh/s from T s for DURATION s (repeatable)",
    )
    parser.add_argument(
        "--closures", type=Path, help="JSON list of closure events (e.g. from the flood model)"
    )
    parser.add_argument("--deltan", type=int, default=5, help="vehicles per platoon (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--reroute", type=float, default=600.0, help="re-route interval, s (default 600)"
    )
    parser.add_argument("--output", type=Path, help="write the full result as JSON here")


def run_drill(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """Build the spec from the arguments and run it; returns (summary, result).

    Raises
    ------
    ValueError
        If ``--network`` is missing.
    TwinError
        If a closure names no link of the network.
    """
    if args.network is None:
        raise ValueError("the following arguments are required: --network (or --spec FILE.json)")
    network, demand = load_uxsim_csv(args.network)
    closures = list(args.close)
    if args.closures is not None:
        closures.extend(load_closures(args.closures, network))
    for closure in closures:
        try:
            network.link_index(closure.link)
        except KeyError:
            raise TwinError(f"--close: no link named or coded {closure.link!r}") from None
    spec = TrafficSpec(
        network=network,
        demand=demand,
        closures=closures,
        meterings=list(args.meter),
        tmax_s=args.tmax,
        deltan=args.deltan,
        seed=args.seed,
        reroute_interval_s=args.reroute,
    )
    with progress_bar(getattr(args, "json", False)) as progress:
        result = run_traffic(spec, progress=progress)
    if args.output is not None:
        args.output.write_bytes(orjson.dumps(result.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY))
    return result.summary(), result


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The contract's six figures; without ``--json`` also where queues formed and cleared."""
    summary, result = run_drill(args)
    if getattr(args, "json", False):
        return summary
    roads = result.link_summary()
    worst = sorted(roads.items(), key=lambda item: -item[1]["peak_queue_veh"])[:5]
    return {
        **summary,
        "stranded_vehicles": result.trips.stranded_vehicles,
        "unfinished_vehicles": result.trips.unfinished_vehicles,
        "clear_time_s": result.clear_time_s,
        "longest_queues": {code: _describe(code, v) for code, v in worst if v["peak_queue_veh"]},
    }


def _describe(code: str, road: dict[str, Any]) -> str:
    text = "" if road["name"] == code else f"{road['name']}: "
    text += f"peak queue {road['peak_queue_veh']:.0f} veh, worst grade {road['worst_grade_name']}"
    if road["recovered_at_s"] is not None:
        text += f", recovered at {road['recovered_at_s']:.0f} s"
    return text
