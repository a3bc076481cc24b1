"""The ``twin`` command: import sources, inspect sites, query, serve the API.

Usage errors and domain errors print one clear line to stderr and exit 2 / 1; never a
traceback for bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import shapely

from api.drills import drill_modules, run_spec
from api.progress import progress_bar
from cim.errors import TwinError
from cim.importer import DEFAULT_DIVISION, file_sha256, import_source
from cim.loaders import LoadOptions
from cim.model import CimObject
from cim.spatial import SiteIndex
from cim.store import Store, open_store
from scenarios.drills import DRILLS

DEFAULT_STORE = "twin.db"


def _floats(text: str, count: int, name: str) -> tuple[float, ...]:
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} must be {count} numbers, got {text!r}") from None
    if len(values) != count or not all(v == v and abs(v) != float("inf") for v in values):
        raise argparse.ArgumentTypeError(f"{name} must be {count} finite numbers, got {text!r}")
    return values


_STORE_HELP = "SQLite file or postgresql:// URL (default: $TWIN_STORE or ./twin.db)"


def _store_option() -> argparse.ArgumentParser:
    """``--store`` for every subcommand, so that it may follow the command as well as
    precede it; its default is suppressed there so that a ``--store`` given before the
    command is not overwritten."""
    common = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    common.add_argument("--store", default=argparse.SUPPRESS, help=_STORE_HELP)
    return common


class _Commands:
    """``add_parser`` of a subparsers group, giving every subcommand ``--store`` and no
    abbreviated options (``--store`` must never be read as ``--storey-height``)."""

    def __init__(self, group: Any, common: argparse.ArgumentParser) -> None:
        self.group = group
        self.common = common

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self.group.add_parser(
            name, parents=[self.common], allow_abbrev=False, **kwargs
        )
        return parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twin", description="City twin: CIM, drills, scenes.", allow_abbrev=False
    )
    parser.add_argument(
        "--store", default=os.environ.get("TWIN_STORE", DEFAULT_STORE), help=_STORE_HELP
    )
    common = _store_option()
    sub = _Commands(parser.add_subparsers(dest="command", required=True), common)

    imp = sub.add_parser("import", help="import source files into a site")
    imp.add_argument("paths", nargs="+", type=Path)
    imp.add_argument("--site", default="default")
    imp.add_argument(
        "--crs",
        help="CRS of files that declare none, e.g. EPSG:28992 (an IFC file without "
        "IfcMapConversion or --at is then placed at its IfcSite's RefLatitude/RefLongitude)",
    )
    imp.add_argument("--lod", help="CityJSON LoD to take (default: highest)")
    imp.add_argument(
        "--offset",
        type=lambda t: _floats(t, 3, "--offset"),
        default=(0.0, 0.0, 0.0),
        help="X,Y,Z added to mesh vertices",
    )
    imp.add_argument("--scale", type=float, default=1.0, help="factor on mesh vertices")
    imp.add_argument(
        "--at",
        type=lambda t: _floats(t, 3, "--at"),
        default=None,
        metavar="X,Y,ROTATION",
        help="place an IFC model's origin at X,Y (site CRS), rotated ROTATION degrees "
        "counter-clockwise (wins over IfcMapConversion and the IfcSite's reference point)",
    )
    imp.add_argument("--up-axis", choices=("z", "y"), default="z")
    imp.add_argument("--height-attribute", help="GeoJSON property holding heights")
    imp.add_argument(
        "--default-height", type=float, help="height (m) of GeoJSON footprints without one"
    )
    imp.add_argument("--storey-height", type=float, default=3.0)
    imp.add_argument("--mesh-step", type=int, default=4, help="DEM cells per mesh vertex")
    imp.add_argument(
        "--division",
        default=None,
        help=f"12-digit county+street+community code of a new site (default: the first "
        f"street of county {DEFAULT_DIVISION[:6]} no site of the store uses)",
    )
    imp.add_argument("--cell", type=float, default=100.0, help="grid cell edge (m) of a new site")
    imp.add_argument(
        "--skip-imported",
        action="store_true",
        help="skip files whose identical content the site already holds",
    )
    imp.add_argument("--json", action="store_true")

    info = sub.add_parser("info", help="sites, CRS, extent and object counts")
    info.add_argument("--site")
    info.add_argument("--json", action="store_true")

    tree = sub.add_parser("tree", help="the containment tree below an object")
    tree.add_argument("code")
    tree.add_argument("--site")
    tree.add_argument("--depth", type=int, default=2)
    tree.add_argument("--json", action="store_true")

    export = sub.add_parser("export", help="write a GLB of one object and its subtree")
    export.add_argument("code", help="object code (a building, a grid cell, a community, ...)")
    export.add_argument("--site")
    export.add_argument("--out", type=Path, required=True, help="the .glb file to write")
    export.add_argument("--json", action="store_true")

    demo = sub.add_parser(
        "live-demo", help="a demo crowd-density sensor on a building, with its alert rule"
    )
    demo.add_argument("--site", required=True)
    demo.add_argument(
        "--state", type=Path, default=Path(".twin/demo.json"), help="where its ids are kept"
    )
    demo.add_argument(
        "--unit",
        action="store_true",
        help="instead: people counters in every room of the site's IFC building; prints the "
        "recording CSV to replay into them",
    )

    tiles = sub.add_parser("tiles", help="write the 3D Tiles 1.1 tileset of a site")
    tiles.add_argument("--site", help="the site (default: the only one in the store)")
    tiles.add_argument("--out", type=Path, required=True, help="directory for tileset.json")
    tiles.add_argument("--json", action="store_true")

    query = sub.add_parser("query", help="objects by box, point, nearness, polygon or code")
    query.add_argument("--site")
    selector = query.add_mutually_exclusive_group(required=True)
    selector.add_argument(
        "--bbox",
        type=lambda t: _floats(t, 4, "--bbox"),
        help="minx,miny,maxx,maxy (site CRS, metres)",
    )
    selector.add_argument("--point", type=lambda t: _floats(t, 2, "--point"), help="x,y")
    selector.add_argument("--nearest", type=lambda t: _floats(t, 2, "--nearest"), help="x,y")
    selector.add_argument("--within", help="WKT polygon")
    selector.add_argument("--prefix", help="code prefix (a grid cell, a community)")
    query.add_argument("--count", type=int, default=5, help="with --nearest")
    query.add_argument("--kind", action="append", help="only these kinds (repeatable)")
    query.add_argument("--json", action="store_true")

    serve = sub.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers", type=int, default=1, help="server processes (each with its own jobs)"
    )

    run = sub.add_parser("run", help="run a drill (traffic, crowd, flood, ...)")
    drills = _Commands(run.add_subparsers(dest="drill", required=True), common)
    for name, module in drill_modules().items():
        drill = drills.add_parser(name, help=module.HELP, description=module.HELP)
        drill.add_argument("--json", action="store_true", help="print the result as JSON")
        if name in DRILLS:
            drill.add_argument(
                "--spec",
                type=Path,
                metavar="FILE.json",
                help=f"the body of POST /drills/{name}: run it as the API would (the drill's "
                "other options are then ignored; the result is printed as JSON)",
            )
            drill.add_argument(
                "--out-dir",
                type=Path,
                help="where the run writes its files (default with --spec: a new temporary "
                "folder, named in the output)",
            )
        module.add_arguments(drill)

    keys = sub.add_parser("keys", help="API keys")
    keys_sub = _Commands(keys.add_subparsers(dest="keys_command", required=True), common)
    create = keys_sub.add_parser("create", help="create a key and print it once")
    create.add_argument(
        "--role", required=True, choices=("admin", "planner", "display", "pilot", "device")
    )
    create.add_argument(
        "--scope", action="append", default=[], help="unit code a pilot may see (repeatable)"
    )
    create.add_argument("--name", default="")
    create.add_argument("--output", type=Path, help="also write the key to this file (0600)")
    create.add_argument(
        "--if-missing",
        action="store_true",
        help="with --output: do nothing when the file holds a key of this store and role",
    )
    return parser


def _emit(data: Any, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(
            orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"
        )
        return
    sys.stdout.write(_plain(data) + "\n")


def _plain(data: Any, indent: int = 0) -> str:
    pad = "  " * indent
    if isinstance(data, dict):
        lines = []
        for key, value in data.items():
            if isinstance(value, dict | list) and value:
                lines.append(f"{pad}{key}:")
                lines.append(_plain(value, indent + 1))
            else:
                lines.append(f"{pad}{key}: {value}")
        return "\n".join(lines)
    if isinstance(data, list):
        return "\n".join(
            _plain(v, indent) if isinstance(v, dict | list) else f"{pad}- {v}" for v in data
        )
    return f"{pad}{data}"


def _cmd_import(store: Store, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    paths = list(args.paths)
    if args.skip_imported and store.find_site(args.site) is not None:
        held = {(s["key"], s["sha256"]) for s in store.sources(args.site)}
        todo = [p for p in paths if (p.name, file_sha256(p)) not in held]
        for path in sorted(set(paths) - set(todo)):
            sys.stderr.write(f"{path}: already in site {args.site!r}, skipped\n")
        paths = todo
    options = LoadOptions(
        crs=args.crs,
        lod=args.lod,
        offset=args.offset,
        scale=args.scale,
        up_axis=args.up_axis,
        height_attribute=args.height_attribute,
        storey_height_m=args.storey_height,
        default_height_m=args.default_height,
        mesh_step=args.mesh_step,
        at=args.at,
    )
    reports = []
    with tqdm(
        total=len(paths) * 100,
        unit="%",
        disable=args.json or None,
        bar_format="{l_bar}{bar}| {elapsed}",
    ) as bar:
        for path in paths:
            base = bar.n

            def progress(
                step: str, fraction: float, base: float = base, name: str = path.name
            ) -> None:
                bar.set_description(f"{name}: {step}")
                bar.update(base + int(fraction * 100) - bar.n)

            report = import_source(
                store,
                path,
                site=args.site,
                options=options,
                division=args.division,
                cell_m=args.cell,
                progress=progress,
            )
            reports.append(report)
            for warning in report.warnings:
                tqdm.write(f"{path}: warning: {warning}", file=sys.stderr)
    out = [
        {
            "site": r.site,
            "source": r.source,
            "objects": r.objects,
            "kinds": r.kinds,
            "crs": r.crs,
            "seconds": round(r.seconds, 3),
            "site_version": r.site_version,
            **({"warnings": list(r.warnings)} if r.warnings else {}),
        }
        for r in reports
    ]
    _emit(out if args.json else {r["source"]: r for r in out}, args.json)
    return 0


def site_summary(store: Store, name: str) -> dict[str, Any]:
    """The ``twin info`` shape of one site."""
    site = store.site(name)
    return {
        "crs": site.crs,
        "bbox": list(site.bbox) if site.bbox is not None else None,
        "objects": store.kind_counts(name),
        "grid": {
            "cell_m": site.cell_m,
            "division": site.division,
            **{k: v for k, v in sorted(store.admin_counts(name).items())},
        },
        "enu_origin": list(site.enu_origin),
        "version": site.version,
        "sources": [s["key"] for s in store.sources(name)],
    }


def _cmd_info(store: Store, args: argparse.Namespace) -> int:
    names = [args.site] if args.site else [s.name for s in store.sites()]
    _emit({"sites": {n: site_summary(store, n) for n in names}}, args.json)
    return 0


def _locate(store: Store, code: str, site: str | None) -> tuple[str, CimObject]:
    names = [site] if site else [s.name for s in store.sites()]
    found = []
    for name in names:
        try:
            found.append((name, store.get(name, code)))
        except TwinError:
            continue
    if not found:
        raise TwinError(f"no object {code!r}" + (f" in site {site!r}" if site else ""))
    if len(found) > 1:
        raise TwinError(f"code {code!r} exists in sites {[f[0] for f in found]}; pass --site")
    return found[0]


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    os.replace(part, path)


def _cmd_export(store: Store, args: argparse.Namespace) -> int:
    from render.gltf import export_glb

    site, obj = _locate(store, args.code, args.site)
    with progress_bar(args.json) as progress:
        data = export_glb(store, site, obj.code, progress=progress)
        progress(1.0, "written")
    _write_atomically(args.out, data)
    _emit({"site": site, "code": obj.code, "file": str(args.out), "bytes": len(data)}, args.json)
    return 0


#: The demo sensor's alert ladder: crowd density, persons/m² (the live issue's levels).
DEMO_LEVELS = ((2.0, "yellow"), (4.0, "orange"), (5.0, "red"), (6.0, "purple"))


def _cmd_live_demo(store: Store, args: argparse.Namespace) -> int:
    """Set up (once) a crowd-density sensor on the building nearest the site's centre, with
    an alert rule that opens a case from level red; prints its datastream id."""
    import pyproj

    from twin.live import LiveTwin
    from twin.rules import CasePolicy, Rule

    if args.unit:
        return _live_demo_unit(store, args)
    info = store.site(args.site)
    buildings = [b for b in store.by_kind(args.site, "Building") if b.footprint is not None]
    if not buildings or info.bbox is None:
        raise TwinError(f"site {args.site!r} has no buildings to put a demo sensor on")
    cx, cy = (info.bbox[0] + info.bbox[3]) / 2, (info.bbox[1] + info.bbox[4]) / 2
    building = min(buildings, key=lambda b: b.footprint.centroid.distance(shapely.Point(cx, cy)))
    live = LiveTwin(args.store)
    try:
        if args.state.is_file():
            known = orjson.loads(args.state.read_bytes())
            try:
                live.sta.read(f"Datastreams({int(known['datastream'])})", {}, "")
                sys.stdout.write(f"{known['datastream']}\n")
                return 0
            except TwinError:
                pass  # the store was reset: make it again
        point = building.footprint.representative_point()
        lon, lat = pyproj.Transformer.from_crs(info.crs, "EPSG:4326", always_xy=True).transform(
            point.x, point.y
        )
        prop = "crowd density"
        thing = live.sta.create(
            "Things",
            {
                "name": f"Crowd counter at {building.name}",
                "description": "demo people counter (replays a measured Jülich recording)",
                "properties": {"cimSite": args.site, "cimCode": building.code, "demo": True},
                "Locations": [
                    {
                        "name": f"entrance of {building.name}",
                        "description": "where the counter looks",
                        "encodingType": "application/geo+json",
                        "location": {"type": "Point", "coordinates": [lon, lat]},
                    }
                ],
                "Datastreams": [
                    {
                        "name": f"{prop} at {building.name}",
                        "description": "persons per square metre before the entrance",
                        "unitOfMeasurement": {
                            "name": "persons per square metre",
                            "symbol": "1/m2",
                            "definition": "urn:persons-per-m2",
                        },
                        "observationType": "http://www.opengis.net/def/observationType/"
                        "OGC-OM/2.0/OM_Measurement",
                        "Sensor": {
                            "name": "people counter",
                            "description": "camera-based people counter",
                            "encodingType": "text/plain",
                            "metadata": "demo",
                        },
                        "ObservedProperty": {
                            "name": prop,
                            "definition": "urn:crowd-density",
                            "description": "persons per square metre",
                        },
                    }
                ],
            },
        )
        streams = live.sta.read(f"Things({thing})/Datastreams", {}, "")
        datastream = int(streams["value"][0]["@iot.id"])
        live.alerts.add_rule(
            Rule(
                0,
                f"crowd density at {building.name} (demo)",
                "high",
                DEMO_LEVELS,
                observed_property=prop,
                code_prefix=building.code,
                hysteresis=0.5,
                open_case=CasePolicy(min_level=3, unit="public security", urgency="urgent"),
            )
        )
    finally:
        live.close()
    args.state.parent.mkdir(parents=True, exist_ok=True)
    args.state.write_bytes(orjson.dumps({"site": args.site, "datastream": datastream}))
    sys.stdout.write(f"{datastream}\n")
    return 0


def _live_demo_unit(store: Store, args: argparse.Namespace) -> int:
    """People counters in the rooms of the site's IFC building; prints the recording CSV."""
    from api.settings import Settings
    from twin.demo import unit_demo
    from twin.live import LiveTwin

    store.site(args.site)
    state = args.state.with_name("demo-unit.json")
    recording = Path(Settings.from_env().data_dir) / "live" / "bottleneck_density.csv"
    live = LiveTwin(args.store)
    try:
        made = unit_demo(
            store, live, args.site, recording, state.with_name("unit_occupancy.csv"), state
        )
    finally:
        live.close()
    sys.stdout.write(f"{made['recording']}\n")
    return 0


def _cmd_tiles(store: Store, args: argparse.Namespace) -> int:
    from render.tiles import write_tileset

    site = args.site
    if site is None:
        names = [s.name for s in store.sites()]
        if len(names) != 1:
            raise ValueError(f"the store holds sites {names}: pass --site")
        site = names[0]
    store.site(site)
    occupied = args.out.exists() and any(args.out.iterdir())
    if occupied and not (args.out / "tileset.json").is_file():
        raise ValueError(f"{args.out} is not empty and holds no tileset: pick another --out")
    with progress_bar(args.json) as progress:
        summary = write_tileset(store, site, args.out, progress=progress)
        progress(1.0, "written")
    _emit({"site": site, "tileset": str(args.out / "tileset.json"), **summary}, args.json)
    return 0


def _subtree(store: Store, site: str, obj: CimObject, depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"code": obj.code, "kind": obj.kind, "name": obj.name}
    if depth > 0:
        node["children"] = [
            _subtree(store, site, c, depth - 1) for c in store.children(site, obj.code)
        ]
    return node


def _cmd_tree(store: Store, args: argparse.Namespace) -> int:
    if args.depth < 0:
        raise TwinError(f"--depth(={args.depth}) must be >= 0")
    site, obj = _locate(store, args.code, args.site)
    tree = _subtree(store, site, obj, args.depth)
    if args.json:
        _emit({"site": site, "tree": tree}, True)
    else:
        sys.stdout.write("\n".join(_tree_lines(tree)) + "\n")
    return 0


def _tree_lines(node: dict[str, Any], indent: int = 0) -> list[str]:
    lines = [f"{'  ' * indent}{node['code']}  {node['kind']}  {node['name']}"]
    for child in node.get("children", []):
        lines.extend(_tree_lines(child, indent + 1))
    return lines


def _cmd_query(store: Store, args: argparse.Namespace) -> int:
    names = [args.site] if args.site else [s.name for s in store.sites()]
    kinds = set(args.kind) if args.kind else None
    results: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        index = SiteIndex.build(store.all_objects(name))
        hits: list[tuple[CimObject, float | None]]
        if args.bbox is not None:
            hits = [(o, None) for o in index.in_bbox(*args.bbox, kinds=kinds)]
        elif args.point is not None:
            hits = [(o, None) for o in index.at_point(*args.point, kinds=kinds)]
        elif args.nearest is not None:
            x, y = args.nearest
            hits = [(o, d) for o, d in index.nearest(x, y, args.count, kinds=kinds)]
        elif args.within is not None:
            try:
                polygon = shapely.from_wkt(args.within)
            except shapely.errors.GEOSException as exc:
                raise TwinError(f"--within is not valid WKT: {exc}") from None
            hits = [(o, None) for o in index.within(polygon, kinds=kinds)]
        else:
            hits = [
                (o, None)
                for o in index.with_prefix(args.prefix)
                if kinds is None or o.kind in kinds
            ]
        rows = []
        for obj, distance in hits:
            row = obj.summary()
            if distance is not None:
                row["distance_m"] = round(distance, 3)
            rows.append(row)
        results[name] = rows
    if args.json:
        _emit({"sites": results}, True)
    else:
        for name, rows in results.items():
            sys.stdout.write(f"{name}: {len(rows)} objects\n")
            for row in rows:
                sys.stdout.write(f"  {row['code']}  {row['kind']}  {row['name']}\n")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from api.settings import Settings

    if args.workers < 1:
        raise ValueError("--workers must be at least 1")
    if args.workers > 1:
        # each worker process builds its own application from the environment
        os.environ["TWIN_STORE"] = str(args.store)
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level="warning",
        )
        return 0
    app = create_app(dataclasses.replace(Settings.from_env(), store_url=args.store))
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def _key_still_valid(settings: Any, args: argparse.Namespace) -> bool:
    """Whether ``--output`` holds a key this store still knows, with the asked role: a
    store made anew (its keys gone) gets a new key rather than a dead one."""
    from api.keys import KeyStore, UnknownKeyError

    keys = KeyStore(settings.store_url, legacy_file=settings.keys_path)
    try:
        key = args.output.read_text(encoding="utf-8").strip()
        principal = keys.authenticate(key)
    except (OSError, UnknownKeyError):
        return False
    finally:
        keys.close()
    return bool(principal.role.value == args.role)


def _cmd_keys(args: argparse.Namespace) -> int:
    from api.keys import KeyStore
    from api.settings import Settings

    settings = Settings(store_url=args.store)
    if args.output is not None and args.if_missing and _key_still_valid(settings, args):
        return 0
    keys = KeyStore(settings.store_url, legacy_file=settings.keys_path)
    try:
        key = keys.create_key(args.role, tuple(args.scope), args.name)
    finally:
        keys.close()
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
    sys.stdout.write(key + "\n")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    if getattr(args, "spec", None) is not None:
        found = run_spec(args.drill, args.spec, args.store, args.out_dir, args.json)
        _emit(found, True)
        return 0
    result = drill_modules()[args.drill].run(args)
    _emit(result, args.json)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``twin`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _cmd_serve(args)
        if args.command == "keys":
            return _cmd_keys(args)
        if args.command == "run":
            return _cmd_run(args)
        store = open_store(args.store)
        try:
            command = {
                "import": _cmd_import,
                "info": _cmd_info,
                "tree": _cmd_tree,
                "query": _cmd_query,
                "export": _cmd_export,
                "tiles": _cmd_tiles,
                "live-demo": _cmd_live_demo,
            }[args.command]
            return command(store, args)
        finally:
            store.close()
    except TwinError as exc:
        sys.stderr.write(f"twin: error: {exc}\n")
        return 1
    except ValueError as exc:
        sys.stderr.write(f"twin: error: {exc}\n")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
