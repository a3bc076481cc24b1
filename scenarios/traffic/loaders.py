"""Readers for the plain CSV network form UXsim uses, and for closure event lists.

``PREFIX_nodes.csv``: ``name,x,y``.
``PREFIX_links.csv``: ``name,start_node,end_node,length,free_flow_speed`` and optionally
``number_of_lanes,jam_density,merge_priority,capacity_out,capacity_in,road_class,code``.
``PREFIX_demand.csv``: ``orig,dest,t_start,t_end,flow,volume`` (``flow`` veh/s or -1,
``volume`` vehicles or -1).

Every malformed row raises :class:`cim.errors.SourceError` naming the file, the line and
the field.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from cim.errors import SourceError
from scenarios.traffic.spec import (
    DEFAULT_JAM_DENSITY_VPM,
    Closure,
    DemandWindow,
    RoadNetwork,
)


def _rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise SourceError(path, "no such file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise SourceError(path, f"missing columns {missing} (header: {header})")
            return list(reader)
    except UnicodeDecodeError as exc:
        raise SourceError(path, f"not UTF-8 text ({exc.reason})") from None


def _number(
    path: Path | str,
    line: int,
    row: Mapping[str, Any],
    key: str,
    default: float | None = None,
    positive: bool = False,
) -> float:
    raw = row.get(key)
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        if default is None:
            raise SourceError(path, f"line {line}: {key} is empty", str(row.get("name", "")))
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise SourceError(
            path, f"line {line}: {key}={raw!r} is not a number", str(row.get("name", ""))
        ) from None
    if not math.isfinite(value):
        raise SourceError(
            path, f"line {line}: {key}={raw!r} is not finite", str(row.get("name", ""))
        )
    if positive and value <= 0:
        raise SourceError(path, f"line {line}: {key}={raw!r} must be > 0", str(row.get("name", "")))
    return value


def network_from_rows(
    source: Path | str,
    node_rows: Iterable[Mapping[str, Any]],
    link_rows: Iterable[Mapping[str, Any]],
    first_line: int = 2,
    node_source: Path | str | None = None,
) -> RoadNetwork:
    """Build a :class:`RoadNetwork` from node and link records (CSV rows or dicts).

    Raises
    ------
    SourceError
        A duplicate or unknown name, a non-numeric or non-positive value.
    """
    names: list[str] = []
    xs: list[float] = []
    ys: list[float] = []
    index: dict[str, int] = {}
    node_file = source if node_source is None else node_source
    for line, row in enumerate(node_rows, start=first_line):
        name = str(row.get("name", "")).strip()
        if not name:
            raise SourceError(node_file, f"line {line}: node without a name")
        if name in index:
            raise SourceError(node_file, f"line {line}: duplicate node name", name)
        index[name] = len(names)
        names.append(name)
        xs.append(_number(node_file, line, row, "x", default=0.0))
        ys.append(_number(node_file, line, row, "y", default=0.0))
    links: dict[str, list[Any]] = {
        k: []
        for k in (
            "name",
            "code",
            "start",
            "end",
            "length",
            "speed",
            "lanes",
            "jam",
            "prio",
            "cout",
            "cin",
            "cls",
        )
    }
    seen: set[str] = set()
    for line, row in enumerate(link_rows, start=first_line):
        name = str(row.get("name", "")).strip()
        if not name or name in seen:
            raise SourceError(source, f"line {line}: link name empty or repeated", name or None)
        seen.add(name)
        ends = []
        for key in ("start_node", "end_node"):
            node = str(row.get(key, "")).strip()
            if node not in index:
                raise SourceError(source, f"line {line}: {key} {node!r} is not a known node", name)
            ends.append(index[node])
        if ends[0] == ends[1]:
            raise SourceError(source, f"line {line}: link starts and ends at the same node", name)
        lanes = _number(source, line, row, "number_of_lanes", default=1.0, positive=True)
        if lanes != int(lanes):
            raise SourceError(source, f"line {line}: number_of_lanes={lanes} is not whole", name)
        links["name"].append(name)
        links["code"].append(str(row.get("code") or name))
        links["start"].append(ends[0])
        links["end"].append(ends[1])
        links["length"].append(_number(source, line, row, "length", positive=True))
        links["speed"].append(_number(source, line, row, "free_flow_speed", positive=True))
        links["lanes"].append(int(lanes))
        links["jam"].append(
            _number(source, line, row, "jam_density", DEFAULT_JAM_DENSITY_VPM, positive=True)
        )
        links["prio"].append(_number(source, line, row, "merge_priority", default=1.0))
        links["cout"].append(_number(source, line, row, "capacity_out", default=math.nan))
        links["cin"].append(_number(source, line, row, "capacity_in", default=math.nan))
        links["cls"].append(str(row.get("road_class") or ""))
        if links["prio"][-1] < 0:
            raise SourceError(source, f"line {line}: merge_priority must be >= 0", name)
    if not names or not links["name"]:
        raise SourceError(source, "the network has no nodes or no links")
    return RoadNetwork(
        node_names=names,
        x=np.asarray(xs, dtype=np.float64),
        y=np.asarray(ys, dtype=np.float64),
        link_names=links["name"],
        link_codes=links["code"],
        start=np.asarray(links["start"], dtype=np.int64),
        end=np.asarray(links["end"], dtype=np.int64),
        length_m=np.asarray(links["length"], dtype=np.float64),
        speed_mps=np.asarray(links["speed"], dtype=np.float64),
        lanes=np.asarray(links["lanes"], dtype=np.int64),
        jam_density_vpm=np.asarray(links["jam"], dtype=np.float64),
        merge_priority=np.asarray(links["prio"], dtype=np.float64),
        capacity_out_vps=np.asarray(links["cout"], dtype=np.float64),
        capacity_in_vps=np.asarray(links["cin"], dtype=np.float64),
        road_class=links["cls"],
    )


def load_network_csv(nodes_path: Path, links_path: Path) -> RoadNetwork:
    """Read a UXsim-form node and link CSV pair.

    Raises
    ------
    SourceError
        Missing file or column, malformed row (names the file and line).
    """
    node_rows = _rows(nodes_path, ("name", "x", "y"))
    link_rows = _rows(links_path, ("name", "start_node", "end_node", "length", "free_flow_speed"))
    return network_from_rows(links_path, node_rows, link_rows, node_source=nodes_path)


def load_demand_csv(path: Path, network: RoadNetwork) -> list[DemandWindow]:
    """Read a UXsim-form demand CSV against ``network``.

    Raises
    ------
    SourceError
        Unknown node, ``t_end <= t_start``, neither a flow nor a volume, negative values.
    """
    known = set(network.node_names)
    windows = []
    for line, row in enumerate(_rows(path, ("orig", "dest", "t_start", "t_end")), start=2):
        orig, dest = row["orig"].strip(), row["dest"].strip()
        for key, node in (("orig", orig), ("dest", dest)):
            if node not in known:
                raise SourceError(path, f"line {line}: {key} {node!r} is not a node of the network")
        t_start = _number(path, line, row, "t_start")
        t_end = _number(path, line, row, "t_end")
        if t_start < 0 or t_end <= t_start:
            raise SourceError(
                path, f"line {line}: needs 0 <= t_start < t_end, got {t_start}, {t_end}"
            )
        flow = _number(path, line, row, "flow", default=-1.0)
        volume = _number(path, line, row, "volume", default=-1.0)
        if flow <= 0 and volume <= 0 and not (flow == 0 or volume == 0):
            raise SourceError(path, f"line {line}: give a flow (veh/s) or a volume (veh)")
        windows.append(DemandWindow(orig, dest, t_start, t_end, flow, volume))
    return windows


def load_uxsim_csv(prefix: str | Path) -> tuple[RoadNetwork, list[DemandWindow]]:
    """Read ``PREFIX_nodes.csv``, ``PREFIX_links.csv`` and ``PREFIX_demand.csv``.

    Raises
    ------
    SourceError
        A file is missing or malformed (names the file and line).
    """
    prefix = str(prefix)
    network = load_network_csv(Path(prefix + "_nodes.csv"), Path(prefix + "_links.csv"))
    return network, load_demand_csv(Path(prefix + "_demand.csv"), network)


def load_closures(path: Path, network: RoadNetwork | None = None) -> list[Closure]:
    """Read a JSON list of closure events (the shape the flood model emits).

    Each event: ``{"link", "t_start_s", "duration_s" (null: to the end), "lanes" (null: all),
    "reason"}``.

    Raises
    ------
    SourceError
        Not JSON, not a list of such objects, or (with ``network``) an unknown link.
    """
    try:
        data = orjson.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise SourceError(path, "no such file") from None
    except orjson.JSONDecodeError as exc:
        raise SourceError(path, f"not JSON: {exc}") from None
    if isinstance(data, dict) and "closures" in data:
        data = data["closures"]
    if not isinstance(data, list):
        raise SourceError(path, "expected a list of closure events")
    closures = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or "link" not in item or "t_start_s" not in item:
            raise SourceError(path, f"event {i}: needs at least 'link' and 't_start_s'")
        try:
            closure = Closure.from_dict(item)
        except (TypeError, ValueError) as exc:
            raise SourceError(path, f"event {i}: {exc}", str(item.get("link"))) from None
        if network is not None:
            try:
                network.link_index(closure.link)
            except KeyError:
                raise SourceError(
                    path, f"event {i}: no link named or coded {closure.link!r}", closure.link
                ) from None
        closures.append(closure)
    return closures


def write_uxsim_csv(network: RoadNetwork, demand: list[DemandWindow], prefix: str | Path) -> None:
    """Write ``PREFIX_{nodes,links,demand}.csv`` in the form :func:`load_uxsim_csv` reads."""
    prefix = str(prefix)
    with open(prefix + "_nodes.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "x", "y"])
        for name, x, y in zip(network.node_names, network.x, network.y, strict=True):
            writer.writerow([name, repr(float(x)), repr(float(y))])
    with open(prefix + "_links.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        columns = ["name", "start_node", "end_node", "length", "free_flow_speed"]
        columns += ["number_of_lanes", "jam_density", "merge_priority"]
        columns += ["capacity_out", "capacity_in", "road_class", "code"]
        writer.writerow(columns)
        for row in network.to_dict()["links"]:
            writer.writerow(["" if row[c] is None else row[c] for c in columns])
    with open(prefix + "_demand.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["orig", "dest", "t_start", "t_end", "flow", "volume"])
        for w in demand:
            writer.writerow([w.orig, w.dest, w.t_start_s, w.t_end_s, w.flow_vps, w.volume])
