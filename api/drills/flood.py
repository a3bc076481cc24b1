"""``twin run flood``: a drainage network from a SWMM file, or water on a DEM surface.

Network::

    twin run flood --inp FILE.inp [--duration S] [--pump-fail NAME@T ...]
                   [--storm FORMULA:P:MINUTES[:R]] [--probe X,Y ...] --json

Surface::

    twin run flood --dem FILE.tif [--buildings FILE.geojson] [--manning N]
                   [--manning-zone POLYGON_FILE:N ...] --inflow X,Y,Q[,RADIUS] --duration S
                   [--probe X,Y ...] [--max-depth-tif OUT.tif] --json

Site (terrain, buildings and roads from the CIM store, rain from a design storm)::

    twin --store STORE run flood --site SITE --storm FORMULA:P:MINUTES[:R] --duration S
                   [--cell-m M] [--inflow X,Y,Q[,RADIUS] ...] [--out-dir DIR] --json
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from api.progress import progress_bar

HELP = (
    "flood drill: route a SWMM network (--inp), flood a DEM surface (--dem) "
    "or a site of the store (--site)"
)


def _numbers(text: str, low: int, high: int, name: str) -> tuple[float, ...]:
    try:
        values = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} must be numbers, got {text!r}") from None
    if not low <= len(values) <= high or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(
            f"{name} must be {low}..{high} finite numbers, got {text!r}"
        )
    return values


def _point(text: str) -> tuple[float, float]:
    x, y = _numbers(text, 2, 2, "--probe")
    return x, y


def _inflow(text: str) -> tuple[float, ...]:
    return _numbers(text, 3, 4, "--inflow")


def _pump_fail(text: str) -> tuple[str, float]:
    name, sep, when = text.rpartition("@")
    try:
        t_s = float(when)
    except ValueError:
        t_s = float("nan")
    if not sep or not name or not math.isfinite(t_s) or t_s < 0:
        raise argparse.ArgumentTypeError(f"--pump-fail must be NAME@SECONDS, got {text!r}")
    return name, t_s


def _setting(text: str) -> tuple[str, float, float]:
    name, sep, rest = text.rpartition("@")
    when, eq, value = rest.partition("=")
    try:
        t_s, v = float(when), float(value)
    except ValueError:
        t_s = v = float("nan")
    if not sep or not eq or not name or not (math.isfinite(t_s) and t_s >= 0 and v >= 0):
        raise argparse.ArgumentTypeError(f"--set must be NAME@SECONDS=VALUE, got {text!r}")
    return name, t_s, v


def _storm(text: str) -> dict[str, Any]:
    parts = text.split(":")
    try:
        numbers = [float(p) for p in parts[1:]]
    except ValueError:
        numbers = []
    if len(parts) not in (3, 4) or len(numbers) != len(parts) - 1:
        raise argparse.ArgumentTypeError(f"--storm must be FORMULA:P:MINUTES[:R], got {text!r}")
    storm: dict[str, Any] = {
        "formula": parts[0],
        "return_period_a": numbers[0],
        "duration_min": numbers[1],
    }
    if len(numbers) == 3:
        storm["peak_ratio"] = numbers[2]
    return storm


def _zone(text: str) -> tuple[Path, float]:
    path, sep, value = text.rpartition(":")
    try:
        n = float(value)
    except ValueError:
        n = float("nan")
    if not sep or not math.isfinite(n) or n <= 0:
        raise argparse.ArgumentTypeError(f"--manning-zone must be POLYGON_FILE:N, got {text!r}")
    return Path(path), n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``twin run flood``."""
    parser.add_argument("--inp", type=Path, help="SWMM 5 input file (network run)")
    parser.add_argument("--dem", type=Path, help="DEM GeoTIFF (surface run)")
    parser.add_argument(
        "--site", help="site of the store: its DEM, buildings and roads (site run, with --storm)"
    )
    parser.add_argument(
        "--cell-m", type=float, help="site run: coarsen the DEM to this cell size, m (e.g. 2, 4)"
    )
    parser.add_argument("--duration", type=float, help="simulated seconds (default: the file's)")
    parser.add_argument(
        "--pump-fail",
        type=_pump_fail,
        action="append",
        default=[],
        metavar="NAME@T",
        help="pump NAME stops at T seconds (repeatable)",
    )
    parser.add_argument(
        "--set",
        type=_setting,
        action="append",
        default=[],
        metavar="NAME@T=VALUE",
        help="operator action at T s: pump 0/1, gate opening 0..1, conduit 0 closed (repeatable)",
    )
    parser.add_argument(
        "--storm",
        type=_storm,
        metavar="FORMULA:P:MINUTES[:R]",
        help="Chicago design storm on every gauge, e.g. shanghai-2017:5:120:0.4",
    )
    parser.add_argument(
        "--probe",
        type=_point,
        action="append",
        default=[],
        metavar="X,Y",
        help="report depth here (network: nearest node; repeatable)",
    )
    parser.add_argument("--series", action="store_true", help="include node depth series")
    parser.add_argument("--buildings", type=Path, help="building footprints (GeoJSON) as obstacles")
    parser.add_argument(
        "--manning", type=float, default=0.03, help="surface Manning n (default 0.03)"
    )
    parser.add_argument(
        "--manning-zone",
        type=_zone,
        action="append",
        default=[],
        metavar="POLYGON_FILE:N",
        help="Manning n inside a polygon file of x,y lines (repeatable)",
    )
    parser.add_argument(
        "--inflow",
        type=_inflow,
        action="append",
        default=[],
        metavar="X,Y,Q[,RADIUS]",
        help="point inflow in m3/s (repeatable)",
    )
    parser.add_argument("--max-depth-tif", type=Path, help="write the max-depth GeoTIFF here")
    parser.add_argument("--depth-classes", type=Path, help="write depth-class polygons (GeoJSON)")
    parser.add_argument("--roads", type=Path, help="road polygons/lines (GeoJSON) for closures")
    parser.add_argument("--rain", type=float, help="uniform rain on the surface, mm/h")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the drill the arguments describe.

    Raises
    ------
    ValueError
        If neither or both of ``--inp`` and ``--dem`` are given, or an option is out of range.
    cim.errors.TwinError
        For unreadable files and unknown objects.
    """
    given = [a for a in ("inp", "dem", "site") if getattr(args, a) is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of --inp (network), --dem (surface) or --site (site)")
    if args.inp is not None:
        return _run_network(args)
    if args.site is not None:
        return _run_site(args)
    return _run_surface(args)


def _run_site(args: argparse.Namespace) -> dict[str, Any]:
    import shutil
    import tempfile

    from pydantic import ValidationError

    from cim.store import open_store
    from scenarios.drills.flood import FloodDrill
    from scenarios.drills.flood_site import site_flood_spec
    from scenarios.drills.inputs import validation_message
    from scenarios.flood.site import run_site_flood

    if args.duration is None:
        raise ValueError("--site runs need --duration S")
    body: dict[str, Any] = {"site": args.site, "duration_s": args.duration}
    if args.storm:
        body["storm"] = args.storm
    if args.cell_m is not None:
        body["cell_m"] = args.cell_m
    if args.manning != 0.03:
        body["manning"] = args.manning
    body["inflows"] = [
        dict(zip(("x", "y", "q_m3s", "radius_m"), values, strict=False)) for values in args.inflow
    ]
    try:
        drill = FloodDrill.model_validate(body)
    except ValidationError as exc:
        raise ValueError(validation_message(exc)) from None
    store = open_store(args.store)
    try:
        spec = site_flood_spec(drill, store)
    finally:
        store.close()
    with tempfile.TemporaryDirectory() as tmp, progress_bar(args.json) as progress:
        result = run_site_flood(spec, tmp, progress)
        out = result.to_dict()
        if args.out_dir is not None:
            args.out_dir.mkdir(parents=True, exist_ok=True)
            written = []
            for path in (*result.rasters, result.depth_png):
                assert path is not None
                written.append(str(shutil.copy(path, args.out_dir / Path(path).name)))
            out["files"] = written
    out["site"] = args.site
    out["crs"] = spec.terrain.crs
    return out


def _run_network(args: argparse.Namespace) -> dict[str, Any]:
    from scenarios.flood import FloodSpec, PumpFailure
    from scenarios.flood import run as run_flood
    from scenarios.flood.spec import DesignStorm, LinkSetting

    spec = FloodSpec(
        inp=str(args.inp),
        duration_s=args.duration,
        pump_failures=tuple(PumpFailure(name, t) for name, t in args.pump_fail),
        settings=tuple(LinkSetting(name, t, v) for name, t, v in args.set),
        storm=DesignStorm(**args.storm) if args.storm else None,
    )
    with progress_bar(args.json) as progress:
        result = run_flood(spec, progress)
    out: dict[str, Any] = {
        "total_flood_volume_m3": result.total_flood_volume_m3,
        "outfall_peak_flow_m3s": result.outfall_peak_flow_m3s,
        "node_flood_volume_m3": result.node_flood_volume_m3,
        "wall_s": result.wall_s,
        "flooded_nodes": result.flooded_nodes,
        "outfall_volume_m3": result.outfall_volume_m3,
        "node_max_depth_m": result.node_max_depth_m,
        "node_surcharge_s": result.node_surcharge_s,
        "continuity_error_pct": result.continuity_error_pct,
        "steps": result.steps,
        "duration_s": result.duration_s,
        "events": result.events,
        "ignored_sections": result.ignored_sections,
    }
    if args.probe:
        out["probes"] = _network_probes(spec.inp, args.probe, result.node_max_depth_m)
    if args.series:
        out["report_times_s"] = result.report_times_s
        out["node_depth_series_m"] = result.node_depth_series_m
    return out


def _network_probes(
    inp: str, points: list[tuple[float, float]], max_depth: dict[str, float]
) -> list[dict[str, Any]]:
    from scenarios.flood.swmm_inp import load_swmm_inp

    net = load_swmm_inp(inp)
    placed = [n for n in net.nodes.values() if n.x is not None and n.y is not None]
    if not placed:
        raise ValueError(f"{inp}: no node has [COORDINATES], so --probe cannot be placed")
    out = []
    for x, y in points:
        node = min(placed, key=lambda n: (n.x - x) ** 2 + (n.y - y) ** 2)  # type: ignore[operator]
        depth = max_depth[node.name]
        out.append(
            {
                "x": x,
                "y": y,
                "node": node.name,
                "distance_m": math.hypot(node.x - x, node.y - y),  # type: ignore[operator]
                "peak_depth_m": depth,
                "peak_stage_m": node.invert_m + depth,
            }
        )
    return out


def _run_surface(args: argparse.Namespace) -> dict[str, Any]:
    from scenarios.flood.surface_model import PointInflow, SurfaceModel, SurfaceSpec

    if args.duration is None:
        raise ValueError("--dem runs need --duration S")
    if not args.inflow and not args.rain:
        raise ValueError("--dem runs need at least one --inflow X,Y,Q[,RADIUS] or --rain")
    spec = SurfaceSpec(
        dem=str(args.dem),
        duration_s=args.duration,
        inflows=tuple(PointInflow(*values) for values in args.inflow),
        buildings=None if args.buildings is None else str(args.buildings),
        roads=None if args.roads is None else str(args.roads),
        manning=args.manning,
        manning_zones=tuple((str(path), n) for path, n in args.manning_zone),
        probes=tuple(args.probe),
        rain_mm_h=args.rain or 0.0,
    )
    with progress_bar(args.json) as progress:
        model = SurfaceModel(spec, progress)
        result = model.run()
    out = {"probes": result.probes, "wall_s": result.wall_s}
    out.update({k: v for k, v in result.to_dict().items() if k not in out})
    if args.max_depth_tif is not None:
        out["rasters"] = model.write_rasters(result, args.max_depth_tif)
    if args.depth_classes is not None and result.max_depth is not None:
        import orjson

        from scenarios.flood.surface_model import depth_class_polygons

        polygons = depth_class_polygons(
            result.max_depth, model.raster.transform, model.raster.inside
        )
        args.depth_classes.write_bytes(orjson.dumps(polygons))
        out["depth_classes"] = str(args.depth_classes)
    return out
