"""The traffic drill: a road network from the catalogue, closures, meterings, demand.

Two kinds of network:

- ``{"network": NAME, ...}``: ``traffic/NAME_{nodes,links,demand}.csv`` (UXsim's form);
- ``{"site": SITE, "osm": NAME, "demand": {...}, ...}``: the site's ``Road`` objects
  imported from ``traffic/NAME.osm[.pbf]`` (without ``osm``, every road of the site), with a
  seeded random OD demand. The network is built from the CIM objects
  (:mod:`cim.networks.roads`), not by reading the file again, by the same builder as a
  file's network (:func:`scenarios.traffic.osm.network_from_ways`): the site is the one
  source of the streets.
  Closures may name CIM road codes (every link of the road closes); ``closures_from``
  names a finished site flood run whose road closures are added (``prepare`` reads them
  into ``closures``); the worst congestion grade per road is the layer ``traffic-grade``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cim.errors import NotFoundError
from cim.model import CimObject
from cim.networks.roads import codes_by_way, ways_from_roads
from cim.store import Store
from scenarios.drills.base import (
    Drill,
    DrillLimitError,
    DrillRequestError,
    DrillSpec,
    LayerValues,
    ObjectValue,
    PrepareContext,
    RunContext,
    RunResult,
    Series,
)
from scenarios.drills.inputs import Count, Name, RunId, Seed, named_input, revalidate
from scenarios.traffic import Closure, DemandWindow, Metering, RoadNetwork, TrafficSpec
from scenarios.traffic import run as run_traffic

#: The layer a site traffic drill leaves for the viewer: worst congestion grade per road.
TRAFFIC_LAYER = "traffic-grade"
#: Most vehicles a generated demand may ask for (pairs × flow × duration).
MAX_VEHICLES = 2_000_000
#: Longest simulated time, s.
MAX_TIME_S = 86_400.0
#: The catalogue's OSM files, ``traffic/NAME`` + one of these (the first that exists).
OSM_SUFFIXES = (".osm.pbf", ".osm")

_LINK = Field(min_length=1, max_length=128, description="link name, link code or CIM road code")


class RoadClosure(BaseModel):
    """A link (or some of its lanes) closed from ``t_start_s`` for ``duration_s``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    link: str = _LINK
    t_start_s: float = Field(ge=0, le=MAX_TIME_S, description="start, simulated s")
    duration_s: float | None = Field(None, gt=0, le=MAX_TIME_S, description="None: to the end")
    lanes: Count | None = Field(None, ge=1, le=16, description="lanes closed; None: all")
    reason: str = Field("", max_length=64)


class LinkMetering(BaseModel):
    """A link's outflow held to ``rate_vps`` vehicles/s from ``t_start_s``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    link: str = _LINK
    t_start_s: float = Field(ge=0, le=MAX_TIME_S, description="start, simulated s")
    rate_vps: float = Field(gt=0, le=100, description="vehicles per second let through")
    duration_s: float | None = Field(None, gt=0, le=MAX_TIME_S, description="None: to the end")
    reason: str = Field("", max_length=64)


class RandomDemand(BaseModel):
    """A seeded random OD demand on an OSM network: ``pairs`` origin-destination pairs,
    each sending ``flow_vps`` from 0 to ``t_end_s``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pairs: Count = Field(200, ge=1, le=100_000)
    flow_vps: float = Field(0.005, gt=0, le=1, description="vehicles per second per pair")
    t_end_s: float = Field(3600.0, gt=0, le=MAX_TIME_S, description="end of departures, s")
    seed: Seed = 0

    @model_validator(mode="after")
    def _bounded(self) -> RandomDemand:
        vehicles = self.pairs * self.flow_vps * self.t_end_s
        if vehicles > MAX_VEHICLES:
            raise ValueError(
                f"pairs × flow_vps × t_end_s = {vehicles:.0f} vehicles is more than {MAX_VEHICLES}"
            )
        return self


class TrafficDrill(DrillSpec):
    """The body of ``POST /drills/traffic``: a catalogue network (``network``), or the
    streets of a site (``site``; with ``osm``, only those imported from that file)."""

    network: Name | None = Field(None, description="traffic/NAME_nodes.csv of the catalogue")
    site: Name | None = Field(None, description="the site holding the OSM streets")
    osm: Name | None = Field(
        None,
        description="site drills: only the roads imported from traffic/NAME.osm[.pbf]; "
        "None: every road of the site",
    )
    demand: RandomDemand | None = Field(None, description="site drills: the random demand")
    closures: list[RoadClosure] = Field(default_factory=list, max_length=1_000)
    closures_from: RunId | None = Field(
        None,
        description="site drills: a succeeded site flood run whose road closures are added "
        "(prepare moves them into closures)",
    )
    meterings: list[LinkMetering] = Field(default_factory=list, max_length=1_000)
    tmax_s: float | None = Field(None, gt=0, le=MAX_TIME_S, description="simulated s")
    deltan: Count = Field(5, ge=1, le=100, description="vehicles per platoon")
    seed: Seed = 0
    reroute_interval_s: float = Field(600.0, ge=10, le=MAX_TIME_S, description="s")

    @model_validator(mode="after")
    def _one_network(self) -> TrafficDrill:
        on_site = self.site is not None or self.osm is not None
        if on_site and self.network is not None:
            raise ValueError("give network, or site (and osm), not both")
        if on_site and self.site is None:
            raise ValueError("osm names the streets of a site: give site too")
        if not on_site and self.network is None:
            raise ValueError("give network (a catalogue network) or site (and osm)")
        if not on_site and (self.demand is not None or self.closures_from is not None):
            raise ValueError("demand and closures_from are for site drills (site)")
        return self


def _osm_path(spec: TrafficDrill, data_dir: Path) -> Path:
    assert spec.osm is not None
    return named_input(data_dir, "traffic", OSM_SUFFIXES, spec.osm, "osm")


def site_roads(spec: TrafficDrill, data_dir: Path, store: Store) -> list[CimObject]:
    """The ``Road`` objects a site drill runs on: those imported from ``traffic/NAME.osm[.pbf]``
    (``osm``), or every road of the site.

    Raises
    ------
    NotFoundError
        If the site is unknown, or it holds no roads of ``osm`` and the catalogue no such file.
    DrillRequestError
        If the site holds no roads (of that file).
    """
    assert spec.site is not None
    store.site(spec.site)
    roads = store.by_kind(spec.site, "Road")
    if spec.osm is None:
        if not roads:
            raise DrillRequestError(
                f"site: site {spec.site!r} holds no streets: import an OSM file first "
                f"(twin import NAME.osm --site {spec.site})"
            )
        return roads
    for source in (f"{spec.osm}{suffix}" for suffix in OSM_SUFFIXES):
        chosen = [r for r in roads if r.source == source]
        if chosen:
            return chosen
    path = _osm_path(spec, data_dir)  # an unknown name is 404, naming the known ones
    raise DrillRequestError(
        f"osm: site {spec.site!r} holds no streets from {path.name}: import it first "
        f"(twin import {path.name} --site {spec.site})"
    )


def road_network(
    roads: list[CimObject], source: str, deltan: int
) -> tuple[RoadNetwork, dict[str, str]]:
    """The traffic network of a site's ``Road`` objects and ``way id -> CIM road code``.

    Built by the builder an OSM file's network is built by
    (:func:`scenarios.traffic.osm.network_from_ways`), so it is the same link by link.

    Raises
    ------
    DrillRequestError
        If none of the roads is drivable.
    """
    from scenarios.traffic.osm import DRIVABLE_CLASSES, network_from_ways

    ways = ways_from_roads(roads, DRIVABLE_CLASSES, skip_access=True)
    if not ways:
        raise DrillRequestError(
            f"{source} holds no drivable streets (highway={', '.join(sorted(DRIVABLE_CLASSES))})"
        )
    network, _ = network_from_ways(ways, source, deltan=deltan)
    return network, codes_by_way(roads)


def _network(
    spec: TrafficDrill, data_dir: Path, store: Store
) -> tuple[RoadNetwork, list[DemandWindow], dict[str, str]]:
    """The network, its demand and ``way id -> CIM road code`` (site drills)."""
    from scenarios.traffic import load_uxsim_csv

    if spec.network is not None:
        nodes = named_input(data_dir, "traffic", ("_nodes.csv",), spec.network, "network")
        network, demand = load_uxsim_csv(str(nodes)[: -len("_nodes.csv")])
        return network, demand, {}
    roads = site_roads(spec, data_dir, store)
    source = f"site {spec.site}" + (f", {roads[0].source}" if spec.osm is not None else "")
    network, road_of_way = road_network(roads, source, spec.deltan)
    return (
        network,
        random_demand(network, spec.demand or RandomDemand.model_validate({})),
        road_of_way,
    )


def random_demand(network: RoadNetwork, demand: RandomDemand) -> list[DemandWindow]:
    """``demand.pairs`` seeded random OD pairs of distinct nodes, each at ``flow_vps``."""
    rng = np.random.default_rng(demand.seed)
    windows = []
    for _ in range(demand.pairs):
        o, d = rng.choice(network.n_nodes, size=2, replace=False)
        windows.append(
            DemandWindow(
                network.node_names[o], network.node_names[d], 0.0, demand.t_end_s, demand.flow_vps
            )
        )
    return windows


def link_closures(
    closures: list[RoadClosure], network: RoadNetwork, road_of_way: dict[str, str]
) -> list[Closure]:
    """The closures on the network's links: a CIM road code closes each link of the road.

    Raises
    ------
    DrillRequestError
        If a closure names no link or road of the network.
    """
    way_of_road = {code: way for way, code in road_of_way.items()}
    out = []
    for i, given in enumerate(closures):
        closure = Closure(given.link, given.t_start_s, given.duration_s, given.lanes, given.reason)
        way = way_of_road.get(closure.link)
        if way is not None:  # a CIM road: close each of its links
            links = [c for c in network.link_codes if c.startswith(f"osm:{way}/")]
            if not links:
                raise DrillRequestError(
                    f"closures[{i}].link: road {closure.link} carries no traffic link"
                )
            out += [dataclasses.replace(closure, link=link) for link in links]
            continue
        try:
            network.link_index(closure.link)
        except KeyError:
            raise DrillRequestError(
                f"closures[{i}].link: no link named or coded {closure.link!r}"
            ) from None
        out.append(closure)
    return out


def link_meterings(meterings: list[LinkMetering], network: RoadNetwork) -> list[Metering]:
    """The meterings on the network's links.

    Raises
    ------
    DrillRequestError
        If a metering names no link of the network.
    """
    out = []
    for i, m in enumerate(meterings):
        try:
            network.link_index(m.link)
        except KeyError:
            raise DrillRequestError(f"meterings[{i}].link: no link named {m.link!r}") from None
        out.append(Metering(m.link, m.t_start_s, m.rate_vps, m.duration_s, m.reason))
    return out


def _flood_closures(run_id: str, ctx: PrepareContext, site: str) -> list[dict[str, Any]]:
    """The road closures, by CIM road code, of a succeeded site flood run on ``site``."""
    if ctx.runs is None:
        raise DrillRequestError("closures_from: no run store to read earlier runs from")
    record = ctx.runs.get(run_id)
    if record is None:
        raise NotFoundError(f"closures_from: no run {run_id!r}")
    if record.kind != "drill" or record.drill != "flood":
        raise DrillRequestError(f"closures_from: run {run_id} is not a site flood drill")
    if record.state != "succeeded":
        raise DrillRequestError(f"closures_from: run {run_id} is {record.state}, not succeeded")
    result = record.result or {}
    if "closures" not in result:
        raise DrillRequestError(f"closures_from: run {run_id} is not a site flood drill")
    if record.site != site:
        raise DrillRequestError(
            f"closures_from: run {run_id} flooded site {record.site!r}, not {site!r}"
        )
    return [
        {"link": c["code"], "t_start_s": c["t_start_s"], "duration_s": c["duration_s"]}
        for c in result["closures"]
    ]


def prepare(spec: TrafficDrill, ctx: PrepareContext) -> TrafficDrill:
    """Check the network, closures and meterings; read ``closures_from`` into ``closures``.

    Raises
    ------
    NotFoundError
        If the network, OSM file, site or run is unknown.
    DrillRequestError
        If the site holds no streets of the file, a closure or metering names no link, or
        ``closures_from`` is not a succeeded site flood run of the same site.
    DrillLimitError
        If a link cannot hold one platoon of ``deltan`` (:func:`check_platoons`).
    """
    if spec.site is not None:
        ctx.store.site(spec.site)  # an unknown site is 404 before anything else
    if spec.closures_from is not None:
        assert spec.site is not None
        found = _flood_closures(spec.closures_from, ctx, spec.site)
        spec = revalidate(
            spec,
            closures=[*(c.model_dump() for c in spec.closures), *found],
            closures_from=None,
        )
    network, demand, road_of_way = _network(spec, ctx.data_dir, ctx.store)
    check_platoons(_engine_spec(spec, network, demand, road_of_way))
    return spec


def check_platoons(engine: TrafficSpec) -> None:
    """Refuse a platoon size (``deltan``) some link cannot hold at jam density.

    Raises
    ------
    DrillLimitError
        If a link holds less than one platoon (naming ``deltan``, the link and what it holds).
    """
    from scenarios.traffic.model import spec_links

    try:
        spec_links(engine)
    except ValueError as exc:
        raise DrillLimitError(f"deltan(={engine.deltan}): {exc}") from None


def _engine_spec(
    spec: TrafficDrill,
    network: RoadNetwork,
    demand: list[DemandWindow],
    road_of_way: dict[str, str],
) -> TrafficSpec:
    try:
        return TrafficSpec(
            network=network,
            demand=demand,
            closures=link_closures(spec.closures, network, road_of_way),
            meterings=link_meterings(spec.meterings, network),
            tmax_s=spec.tmax_s,
            deltan=spec.deltan,
            seed=spec.seed,
            reroute_interval_s=spec.reroute_interval_s,
        )
    except ValueError as exc:
        raise DrillRequestError(str(exc)) from None


def road_grades(
    link_summary: dict[str, dict[str, Any]], road_of_way: dict[str, str]
) -> dict[str, float]:
    """Worst congestion grade per CIM road, from the per-link summary keyed by link code."""
    grades: dict[str, float] = {}
    for link, summary in link_summary.items():
        road = road_of_way.get(link.removeprefix("osm:").split("/", 1)[0])
        if road is not None:
            grades[road] = max(grades.get(road, 0.0), float(summary["worst_grade"]))
    return grades


def run(spec: TrafficDrill, ctx: RunContext) -> RunResult:
    """Run the drill: trip KPIs, per-link series and, on a site, the grade per road.

    Raises
    ------
    DrillRequestError
        If the inputs changed since ``prepare`` so that the spec no longer fits them.
    scenarios.traffic.StabilityError
        If the kernel's stability bound is broken.
    """
    network, demand, road_of_way = _network(spec, ctx.data_dir, ctx.store)
    result = run_traffic(_engine_spec(spec, network, demand, road_of_way), progress=ctx.progress)
    detail = result.to_dict()
    summary = detail.pop("summary")
    s = result.series
    ids = result.link_codes if len(set(result.link_codes)) == s.grade.shape[1] else None
    ids = ids or result.link_names
    series = [
        Series("speed_mps", s.times_s, tuple(ids), s.speed_mps, "m/s"),
        Series("queue_veh", s.times_s, tuple(ids), s.queue_veh, "veh"),
        Series("grade", s.times_s, tuple(ids), s.grade.astype(np.float64), "0..4"),
    ]
    out = RunResult(summary=summary, detail=detail, series=series)
    if spec.site is None:
        return out
    grades = road_grades(detail["link_summary"], road_of_way)
    out.objects = [ObjectValue(code, "worst_grade", g) for code, g in sorted(grades.items())]
    out.series.append(_road_series(result.link_codes, s.times_s, s.grade, road_of_way))
    out.layers = [
        LayerValues(spec.site, TRAFFIC_LAYER, grades, "congestion grade 0 smooth .. 4 severe")
    ]
    return out


def _road_series(
    link_codes: list[str], times_s: Any, grade: Any, road_of_way: dict[str, str]
) -> Series:
    """Worst grade per CIM road at each sample: (n_times, n_roads)."""
    roads = [road_of_way.get(c.removeprefix("osm:").split("/", 1)[0]) for c in link_codes]
    codes = sorted({r for r in roads if r is not None})
    column = {code: i for i, code in enumerate(codes)}
    values = np.zeros((times_s.size, len(codes)))
    for i, road in enumerate(roads):
        if road is not None:
            j = column[road]
            values[:, j] = np.maximum(values[:, j], grade[:, i])
    return Series("road_grade", times_s, tuple(codes), values, "0..4")


DRILL = Drill(
    name="traffic",
    spec=TrafficDrill,
    help="traffic drill on a road network with closures",
    inputs=("traffic/NAME_nodes.csv", "traffic/NAME.osm", "traffic/NAME.osm.pbf"),
    prepare=prepare,
    run=run,
)
