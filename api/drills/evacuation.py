"""``twin run evacuation``: evacuate one imported building (IFC) over its spaces and doors.

::

    twin run evacuation --site campus --building 990100001001002010001 --load 0.5 --json
    twin run evacuation --site S --building B --per-space 4 --close-stair CODE --stage STOREY@60
    twin run evacuation --site S --building B --live   # the rooms' latest people counts

The building's walk graph comes from its CIM subtree (``twin import`` of an IFC file);
the store is the global ``--store`` (``$TWIN_STORE``, else ``./twin.db``).
"""

from __future__ import annotations

import argparse
from typing import Any

from api.progress import progress_bar
from cim.store import open_store
from scenarios.crowd.building import (
    Closure,
    EvacuationSpec,
    StoreyRelease,
    live_loads,
    load_building,
    simulate,
)

HELP = "evacuation drill of one building: its IFC spaces, doors and stairs as a zone network"


def _at(text: str) -> tuple[str, float]:
    code, sep, at = text.partition("@")
    if not code:
        raise argparse.ArgumentTypeError(f"expected CODE[@T], got {text!r}")
    try:
        seconds = float(at) if sep else 0.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"T must be seconds, got {at!r}") from None
    if not (seconds >= 0 and seconds != float("inf")):
        raise argparse.ArgumentTypeError(f"T must be a finite number >= 0, got {at!r}")
    return code, seconds


def _closure(text: str) -> Closure:
    """``CODE[@T]``: close a stair or door (CIM code) at T seconds (default 0)."""
    return Closure(*_at(text))


def _stage(text: str) -> StoreyRelease:
    """``STOREY@T``: the occupants of a storey start at T seconds."""
    if "@" not in text:
        raise argparse.ArgumentTypeError(f"expected STOREY_CODE@T, got {text!r}")
    return StoreyRelease(*_at(text))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", help="site holding the imported building (without --spec)")
    parser.add_argument("--building", help="CIM code of the IfcBuilding (without --spec)")
    load = parser.add_mutually_exclusive_group()
    load.add_argument("--load", type=float, metavar="P_PER_M2", help="persons per m² (0.2)")
    load.add_argument("--per-space", type=int, metavar="N", help="persons in every space")
    load.add_argument(
        "--live",
        action="store_true",
        help="the latest people counts of the rooms' sensors (live twin in the same store)",
    )
    parser.add_argument(
        "--close-stair", type=_closure, action="append", default=[], metavar="CODE[@T]"
    )
    parser.add_argument(
        "--close-door", type=_closure, action="append", default=[], metavar="CODE[@T]"
    )
    parser.add_argument(
        "--stage",
        type=_stage,
        action="append",
        default=[],
        metavar="STOREY_CODE@T",
        help="staged release: that storey starts at T s (others at 0)",
    )
    parser.add_argument("--dt", type=float, default=0.2, help="time step, s")
    parser.add_argument("--max-time", type=float, default=3600.0)
    parser.add_argument("--seed", type=int, default=0, help="start positions in the rooms")
    parser.add_argument(
        "--details", action="store_true", help="print storeys, every door and densities too"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the drill; the summary, or everything with ``--details``.

    Raises
    ------
    ValueError
        If ``--site`` or ``--building`` is missing, or a value is out of range.
    NotFoundError
        If the site or building is unknown.
    """
    if args.site is None or args.building is None:
        raise ValueError(
            "the following arguments are required: --site, --building (or --spec FILE.json)"
        )
    store = open_store(args.store)
    try:
        graph = load_building(store, args.site, args.building)
    finally:
        store.close()
    spec = EvacuationSpec(
        site=args.site,
        building=args.building,
        load_pm2=args.load,
        per_space=args.per_space,
        loads=live_loads(args.store, graph) if args.live else {},
        closures=tuple(args.close_stair + args.close_door),
        stages=tuple(args.stage),
        dt_s=args.dt,
        max_time_s=args.max_time,
        seed=args.seed,
    )
    with progress_bar(args.json) as progress:
        result = simulate(graph, spec, None if args.json else progress)
    if args.details:
        return result
    return {**result["summary"], "storeys": result["storeys"]}
