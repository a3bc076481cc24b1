"""Drills as API jobs: a request body becomes a validated spec and the work that runs it.

A client never names a file: networks and venues come from the server's data catalogue
(``Settings.data_dir``, the project's ``assets/`` by default) by name, and everything else
arrives in the JSON body. Each adapter checks its body at once — a bad body is answered 400
or 422 before any job exists — and returns the work the job manager runs, whose result is
the drill's full JSON result (``summary`` first).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.jobs import Progress, Work
from api.layers import Layer
from cim.errors import NotFoundError, TwinError

if TYPE_CHECKING:
    from api.state import TwinState

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class DrillRequestError(TwinError):
    """A drill request's body is malformed or contradicts itself."""


def catalogue(data_dir: Path, folder: str, suffix: str) -> dict[str, Path]:
    """Named inputs under ``data_dir/folder``: ``name -> path`` of files ending in ``suffix``."""
    root = data_dir / folder
    if not root.is_dir():
        return {}
    return {
        p.name[: -len(suffix)]: p
        for p in sorted(root.iterdir())
        if p.name.endswith(suffix) and _NAME.match(p.name[: -len(suffix)])
    }


def _named(data_dir: Path, folder: str, suffix: str, body: dict[str, Any], field: str) -> Path:
    name = body.get(field)
    if not isinstance(name, str) or not _NAME.match(name):
        raise DrillRequestError(f"{field} must name one of the server's {folder} inputs")
    found = catalogue(data_dir, folder, suffix)
    if name not in found:
        raise NotFoundError(f"no {folder} input {name!r}; known: {', '.join(sorted(found))}")
    return found[name]


def _unknown(body: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        raise DrillRequestError(f"unknown fields {', '.join(extra)}; allowed: {sorted(allowed)}")


_TRAFFIC_SETTINGS = ("tmax_s", "deltan", "seed", "reroute_interval_s")

#: The layer a site traffic drill leaves for the viewer: worst congestion grade per road.
TRAFFIC_LAYER = "traffic-grade"


def traffic_work(body: dict[str, Any], state: TwinState) -> Work:
    """A traffic drill, on one of two kinds of network:

    - ``{"network": NAME, ...}``: ``traffic/NAME_{nodes,links,demand}.csv`` (UXsim's form);
    - ``{"site": SITE, "osm": NAME, "demand": {"pairs", "flow_vps", "t_end_s", "seed"}, ...}``:
      the streets of ``traffic/NAME.osm[.pbf]``, which the site must hold (imported with
      ``twin import``), with a seeded random OD demand; closures may name CIM road codes
      (every link of that road closes) and the worst congestion grade per road is put on
      the site as the layer ``traffic-grade``, for the viewer.

    Both take ``closures`` (closure events: ``link``, ``t_start_s``, ``duration_s``,
    ``lanes``; a site drill also ``closures_from``, the id of a finished site flood job whose
    road closures it adds) and ``tmax_s``, ``deltan``, ``seed``, ``reroute_interval_s``.
    """
    from scenarios.traffic import TrafficSpec, load_uxsim_csv
    from scenarios.traffic import run as run_traffic

    data_dir = Path(state.settings.data_dir)
    site: str | None = None
    road_of_way: dict[str, str] = {}
    if "site" in body or "osm" in body:
        _unknown(
            body,
            {"site", "osm", "demand", "closures", "closures_from", "meterings", *_TRAFFIC_SETTINGS},
        )
        site, network, demand, road_of_way = _site_network(body, state, data_dir)
    else:
        _unknown(body, {"network", "closures", "meterings", *_TRAFFIC_SETTINGS})
        nodes = _named(data_dir, "traffic", "_nodes.csv", body, "network")
        network, demand = load_uxsim_csv(str(nodes)[: -len("_nodes.csv")])
    raw = body.get("closures", [])
    if site is not None and "closures_from" in body:
        raw = (
            [*raw, *_flood_closures(body["closures_from"], state, site)]
            if isinstance(raw, list)
            else raw
        )
    closures = _closures(raw, network, road_of_way)
    meterings = _meterings(body.get("meterings", []), network)
    settings = {k: body[k] for k in _TRAFFIC_SETTINGS if k in body}
    try:
        spec = TrafficSpec(
            network=network, demand=demand, closures=closures, meterings=meterings, **settings
        )
    except (TypeError, ValueError) as exc:
        raise DrillRequestError(str(exc)) from None

    def work(progress: Progress) -> dict[str, Any]:
        result = run_traffic(spec, progress=progress)
        out = {"summary": result.summary(), **result.to_dict()}
        if site is not None:
            grades = _road_grades(out["link_summary"], road_of_way)
            state.layers.put(
                Layer(site, TRAFFIC_LAYER, grades, "congestion grade 0 smooth .. 4 severe")
            )
            out["layer"] = {"site": site, "name": TRAFFIC_LAYER, "roads": len(grades)}
        return out

    return work


def _site_network(
    body: dict[str, Any], state: TwinState, data_dir: Path
) -> tuple[str, Any, list[Any], dict[str, str]]:
    import numpy as np

    from scenarios.traffic import DemandWindow
    from scenarios.traffic.osm import load_osm_roads

    site = body.get("site")
    if not isinstance(site, str):
        raise DrillRequestError("site must name a site holding the OSM streets")
    state.store.site(site)
    name = body.get("osm")
    found = {**catalogue(data_dir, "traffic", ".osm"), **catalogue(data_dir, "traffic", ".osm.pbf")}
    if not isinstance(name, str) or name not in found:
        raise DrillRequestError(f"osm must name one of the server's OSM files: {sorted(found)}")
    path = found[name]
    road_of_way = state.store.codes_of_source(site, path.name)
    if not road_of_way:
        raise DrillRequestError(
            f"site {site!r} holds no streets from {path.name}: import it first "
            f"(twin import {path.name} --site {site})"
        )
    deltan = body.get("deltan", 5)
    if not isinstance(deltan, int) or deltan < 1:
        raise DrillRequestError("deltan must be a whole number >= 1")
    network, _ = load_osm_roads(path, deltan=deltan)
    spec = body.get("demand", {})
    if not isinstance(spec, dict) or set(spec) - {"pairs", "flow_vps", "t_end_s", "seed"}:
        raise DrillRequestError("demand takes pairs, flow_vps, t_end_s and seed")
    pairs, flow, t_end = (
        spec.get("pairs", 200),
        spec.get("flow_vps", 0.005),
        spec.get("t_end_s", 3600.0),
    )
    if not (isinstance(pairs, int) and 1 <= pairs <= 100_000):
        raise DrillRequestError("demand.pairs must be a whole number 1..100000")
    if not (
        isinstance(flow, int | float)
        and 0 < flow <= 1
        and isinstance(t_end, int | float)
        and 0 < t_end <= 86_400
    ):
        raise DrillRequestError(
            "demand.flow_vps must be in (0, 1] and demand.t_end_s in (0, 86400]"
        )
    rng = np.random.default_rng(int(spec.get("seed", 0)))
    demand = []
    for _ in range(pairs):
        o, d = rng.choice(network.n_nodes, size=2, replace=False)
        demand.append(
            DemandWindow(
                network.node_names[o], network.node_names[d], 0.0, float(t_end), float(flow)
            )
        )
    return site, network, demand, road_of_way


def _closures(raw: Any, network: Any, road_of_way: dict[str, str]) -> list[Any]:
    from scenarios.traffic import Closure

    if not isinstance(raw, list):
        raise DrillRequestError("closures must be a list of closure events")
    try:
        given = [Closure.from_dict(c) for c in raw]
    except (KeyError, TypeError, ValueError) as exc:
        raise DrillRequestError(f"closures: {exc}") from None
    way_of_road = {code: way for way, code in road_of_way.items()}
    closures = []
    for closure in given:
        way = way_of_road.get(closure.link)
        if way is not None:  # a CIM road: close each of its links
            links = [c for c in network.link_codes if c.startswith(f"osm:{way}/")]
            if not links:
                raise DrillRequestError(f"closures: road {closure.link} carries no traffic link")
            closures += [dataclasses.replace(closure, link=link) for link in links]
            continue
        try:
            network.link_index(closure.link)
        except KeyError:
            raise DrillRequestError(f"closures: no link named or coded {closure.link!r}") from None
        closures.append(closure)
    return closures


def _flood_closures(job_id: Any, state: TwinState, site: str) -> list[dict[str, Any]]:
    """The road closures, by CIM road code, of a finished site flood drill on ``site``."""
    if not isinstance(job_id, str):
        raise DrillRequestError("closures_from must be the id of a finished site flood job")
    job = state.jobs.get(job_id)
    result = job.result or {}
    if job.kind != "flood" or "closures" not in result:
        raise DrillRequestError(f"closures_from: job {job_id} is not a site flood drill")
    if job.state != "succeeded":
        raise DrillRequestError(f"closures_from: job {job_id} is {job.state}, not succeeded")
    flooded = result.get("layer", {}).get("site")
    if flooded != site:
        raise DrillRequestError(
            f"closures_from: job {job_id} flooded site {flooded!r}, not {site!r}"
        )
    return [
        {"link": c["code"], "t_start_s": c["t_start_s"], "duration_s": c["duration_s"]}
        for c in result["closures"]
    ]


def _meterings(raw: Any, network: Any) -> list[Any]:
    from scenarios.traffic import Metering

    if not isinstance(raw, list):
        raise DrillRequestError("meterings must be a list of {link, t_start_s, rate_vps, ...}")
    try:
        meterings = [Metering.from_dict(m) for m in raw]
    except (KeyError, TypeError, ValueError) as exc:
        raise DrillRequestError(f"meterings: {exc}") from None
    for metering in meterings:
        try:
            network.link_index(metering.link)
        except KeyError:
            raise DrillRequestError(f"meterings: no link named {metering.link!r}") from None
    return meterings


def _road_grades(
    link_summary: dict[str, dict[str, Any]], road_of_way: dict[str, str]
) -> dict[str, float]:
    """Worst congestion grade per CIM road, from the per-link summary keyed by link code."""
    grades: dict[str, float] = {}
    for link, summary in link_summary.items():
        way = link.removeprefix("osm:").split("/", 1)[0]
        road = road_of_way.get(way)
        if road is not None:
            grades[road] = max(grades.get(road, 0.0), float(summary["worst_grade"]))
    return grades


def flood_work(body: dict[str, Any], state: TwinState) -> Work:
    """A flood drill, in one of two modes:

    - ``{"network": NAME, ...}``: a drainage drill on ``swmm/NAME.inp`` (below), with
      ``"site"`` the drill of that network as imported into the site's CIM (results by code,
      live rain from its gauges);
    - ``{"site": SITE, ...}``: rain on the site's CIM terrain, around its buildings and over
      its roads (:func:`site_flood_work`).
    """
    if "site" in body and "network" not in body:
        return site_flood_work(body, state)
    return network_flood_work(body, state)


#: The layer a drainage drill on a CIM site leaves: maximum depth at each node, by code.
NETWORK_LAYER = "flood-network-depth"


def network_flood_work(body: dict[str, Any], state: TwinState) -> Work:
    """A drainage drill on ``swmm/NAME.inp``: ``{"network": NAME, "duration_s", "storm":
    {"formula", "return_period_a", "duration_min", "peak_ratio"}, "pump_failures":
    [{"name", "t_s"}], "settings": [{"name", "t_s", "value"}]}``.

    With ``"site": SITE`` (the site the file was imported into with ``twin import``) the
    result also keys nodes by their CIM codes, the layer ``flood-network-depth`` (maximum
    depth per node) goes on the site, flooding nodes raise drill alerts, and ``"rain":
    {"live": {"lookback_s", "forecast_s"}}`` runs on the readings of the live rain gauges
    linked to the network's gauge objects (see :mod:`twin.rainfall`)."""
    from scenarios.flood import FloodSpec
    from scenarios.flood import run as run_flood
    from scenarios.flood.rain import intensity_formulas

    allowed = {
        "network",
        "duration_s",
        "storm",
        "pump_failures",
        "settings",
        "report_step_s",
        "site",
        "rain",
    }
    _unknown(body, allowed)
    inp = _named(Path(state.settings.data_dir), "swmm", ".inp", body, "network")
    given = {k: v for k, v in body.items() if k not in ("network", "site", "rain")}
    codes: dict[str, str] = {}
    rain_sources: dict[str, Any] | None = None
    site = body.get("site")
    if site is not None:
        codes, given, rain_sources = _network_on_site(body, state, inp, given)
    elif "rain" in body:
        raise DrillRequestError("rain from live gauges needs the site the network is in")
    try:
        spec = FloodSpec.from_dict({**given, "inp": str(inp)})
    except (KeyError, TypeError, ValueError) as exc:
        raise DrillRequestError(f"flood: {exc}") from None
    formulas = intensity_formulas()
    if spec.storm is not None and spec.storm.formula not in formulas:
        known = ", ".join(sorted(formulas))
        raise DrillRequestError(f"storm.formula {spec.storm.formula!r} is unknown; known: {known}")

    def work(progress: Progress) -> dict[str, Any]:
        result = run_flood(spec, progress)
        out = result.to_dict()
        summary = {
            k: out[k]
            for k in (
                "total_flood_volume_m3",
                "flooded_nodes",
                "outfall_peak_flow_m3s",
                "continuity_error_pct",
                "wall_s",
            )
            if k in out
        }
        if site is None:
            return {"summary": summary, **out}
        return {
            "summary": summary,
            **out,
            **_network_by_code(state, site, out, codes, rain_sources),
        }

    return work


def _live_gauge_rows(
    body: dict[str, Any], state: TwinState, gauges: dict[str, str]
) -> tuple[dict[str, tuple[tuple[float, float], ...]], dict[str, Any]]:
    """Rows per gauge from ``"rain": {"live": {"lookback_s", "forecast_s"}}`` and where they
    came from (:func:`twin.rainfall.live_gauge_rain`).

    Raises
    ------
    DrillRequestError
        If ``rain`` is malformed, comes with a storm, the live twin is off, there are no
        gauges, or a gauge cannot be read.
    """
    from twin.rainfall import live_gauge_rain

    rain = body.get("rain")
    live_rain = rain.get("live") if isinstance(rain, dict) and set(rain) == {"live"} else None
    if not isinstance(live_rain, dict) or set(live_rain) - {"lookback_s", "forecast_s"}:
        raise DrillRequestError('rain must be {"live": {"lookback_s", "forecast_s"}}')
    if body.get("storm") is not None:
        raise DrillRequestError("give a design storm or live rain, not both")
    if state.live is None:
        raise DrillRequestError("live rain needs the live twin, which is not running")
    if not gauges:
        raise DrillRequestError(f"no live rain gauge for site {body.get('site')!r}")
    try:
        lookback = float(live_rain.get("lookback_s", 3600.0))
        forecast = float(live_rain.get("forecast_s", 3600.0))
        rows, sources = live_gauge_rain(state.live, gauges, state.live.clock(), lookback, forecast)
    except (TypeError, ValueError) as exc:
        raise DrillRequestError(f"rain: {exc}") from None
    except TwinError as exc:
        raise DrillRequestError(str(exc)) from None
    return rows, {"live": True, "lookback_s": lookback, "forecast_s": forecast, "gauges": sources}


def _network_on_site(
    body: dict[str, Any], state: TwinState, inp: Path, given: dict[str, Any]
) -> tuple[dict[str, str], dict[str, Any], dict[str, Any] | None]:
    """SWMM name -> code of the network as imported into ``body["site"]``, the spec body
    with live gauge rain when asked, and where that rain came from."""
    from cim.networks.drainage import codes_by_swmm_name

    site = body["site"]
    if not isinstance(site, str) or not _NAME.match(site):
        raise DrillRequestError("site must name a site of the CIM")
    state.store.site(site)
    objects = [o for o in state.store.all_objects(site) if o.source == inp.name]
    if not objects:
        raise DrillRequestError(
            f"site {site!r} holds no import of {inp.name}: import it with twin import --crs"
        )
    codes = codes_by_swmm_name(objects)
    if body.get("rain") is None:
        return codes, given, None
    gauges = {
        str(o.attributes["swmm_name"]): o.code
        for o in objects
        if o.kind == "RainGage" and isinstance(o.attributes.get("swmm_name"), str)
    }
    rows, sources = _live_gauge_rows(body, state, gauges)
    window = float(sources["lookback_s"]) + float(sources["forecast_s"])
    given = {
        **given,
        "gauge_rain_mm_h": {k: [list(r) for r in v] for k, v in rows.items()},
        "duration_s": given.get("duration_s", window),
    }
    return codes, given, sources


def _network_by_code(
    state: TwinState,
    site: str,
    out: dict[str, Any],
    codes: dict[str, str],
    rain_sources: dict[str, Any] | None,
) -> dict[str, Any]:
    """The drill's nodes by CIM code, its layer on the site and its drill alerts."""
    from api.jobs import CURRENT_JOB

    depth = out.get("node_max_depth_m", {})
    volume = out.get("node_flood_volume_m3", {})
    nodes = {
        codes[name]: {
            "swmm": name,
            "max_depth_m": depth.get(name),
            "flood_volume_m3": volume.get(name, 0.0),
        }
        for name in depth
        if name in codes
    }
    values = {
        code: float(v["max_depth_m"]) for code, v in nodes.items() if v["max_depth_m"] is not None
    }
    state.layers.put(Layer(site, NETWORK_LAYER, values, "peak depth at the node", "m"))
    found = [
        graded_alert(
            site,
            code,
            "node-flooding",
            float(info["flood_volume_m3"]),
            10.0,
            f"node {info['swmm']} overflows: {info['flood_volume_m3']:.1f} m3 onto the street",
        )
        for code, info in sorted(nodes.items())
        if info["flood_volume_m3"] > 0
    ]
    alerts = raise_drill_alerts(state, CURRENT_JOB.get() or f"flood-{site}", found)
    return {
        "nodes_by_code": nodes,
        "layer": {"site": site, "name": NETWORK_LAYER, "objects": len(values)},
        "rain": rain_sources or {"live": False},
        "drill_alerts": alerts,
    }


#: The layer a site flood drill leaves for the viewer: maximum depth against each building.
FLOOD_LAYER = "flood-depth"

_SITE_FLOOD_FIELDS = {
    "site",
    "rain",
    "terrain",
    "storm",
    "duration_s",
    "cell_m",
    "inflows",
    "manning",
    "record_step_s",
    "alerts",
}


def site_live_rain(body: dict[str, Any], state: TwinState) -> dict[str, Any] | None:
    """``"rain": {"live": {"lookback_s", "forecast_s"}}`` of a site flood body: the mean of
    the live rain gauges linked to the site's objects (measured, then persisted), as
    ``{"rain_mm_h": rows, "rain": where it came from}``; ``None`` without ``rain``."""
    from twin.rainfall import RAIN_PROPERTIES, areal_rain

    if body.get("rain") is None:
        return None
    site = str(body.get("site"))
    sensors = state.live.sensors("", site=site) if state.live is not None else []
    gauges = {
        f"{s['code']}#{s['datastream']}": s["code"]
        for s in sensors
        if any(p in s["observedProperty"].lower() for p in RAIN_PROPERTIES)
    }
    rows, sources = _live_gauge_rows(body, state, gauges)
    return {"rain_mm_h": areal_rain(rows), "rain": sources}


def site_flood_spec(
    body: dict[str, Any], store: Any, rain_mm_h: tuple[tuple[float, float], ...] | None = None
) -> Any:
    """The :class:`~scenarios.flood.site.SiteFloodSpec` of a site flood body, read from the
    site's CIM: its terrain (the one DEM, or ``terrain`` naming its code), its buildings and
    its roads by code.

    Raises
    ------
    NotFoundError
        If the site or terrain is unknown.
    DrillRequestError
        If the body is malformed, the site has no terrain, or the run would be too large.
    """
    from scenarios.flood.site import SiteFloodSpec
    from scenarios.flood.spec import DesignStorm
    from scenarios.flood.surface_model import PointInflow

    _unknown(body, _SITE_FLOOD_FIELDS)
    site = body.get("site")
    if not isinstance(site, str) or not _NAME.match(site):
        raise DrillRequestError("site must name a site of the CIM")
    store.site(site)
    rasters = sorted(store.raster_codes(site))
    terrain = body.get("terrain")
    if terrain is None:
        if not rasters:
            raise DrillRequestError(
                f"site {site!r} holds no terrain: import a DEM into it first (twin import DEM.tif)"
            )
        terrain = rasters[0]
    if not isinstance(terrain, str) or terrain not in rasters:
        raise DrillRequestError(f"terrain must be the code of one of the site's DEMs: {rasters}")
    storm = body.get("storm")
    if storm is not None and not isinstance(storm, dict):
        raise DrillRequestError("storm must be {formula, return_period_a, duration_min, ...}")
    inflows = body.get("inflows", [])
    if not isinstance(inflows, list) or len(inflows) > 100:
        raise DrillRequestError("inflows must be a list of at most 100 {x, y, q_m3s, radius_m}")
    numbers = {
        k: body[k] for k in ("duration_s", "cell_m", "manning", "record_step_s") if k in body
    }
    for name, value in numbers.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise DrillRequestError(f"{name} must be a number > 0")
    if "duration_s" not in numbers:
        raise DrillRequestError("duration_s is required: the simulated seconds")
    try:
        design = DesignStorm(**storm) if storm is not None else None
        points = tuple(PointInflow(**i) for i in inflows)
        if design is not None and not all(
            isinstance(getattr(design, k), int | float) for k in ("return_period_a", "duration_min")
        ):
            raise ValueError("storm return_period_a and duration_min must be numbers")
    except (TypeError, ValueError) as exc:
        raise DrillRequestError(f"flood: {exc}") from None
    grid = store.raster(site, terrain)
    buildings = tuple(
        (o.code, o.footprint) for o in store.by_kind(site, "Building") if o.footprint is not None
    )
    roads = tuple(
        (o.code, o.footprint) for o in store.by_kind(site, "Road") if o.footprint is not None
    )
    try:
        return SiteFloodSpec(
            terrain=grid,
            buildings=buildings,
            roads=roads,
            duration_s=float(numbers["duration_s"]),
            storm=design,
            inflows=points,
            cell_m=numbers.get("cell_m"),
            manning=float(numbers.get("manning", 0.03)),
            record_step_s=float(numbers.get("record_step_s", 60.0)),
            rain_mm_h=rain_mm_h,
        )
    except (TypeError, ValueError) as exc:
        raise DrillRequestError(f"flood: {exc}") from None


def graded_alert(
    site: str, code: str, kind: str, value: float, alarm_above: float, message: str
) -> Any:
    """A drill alert that is a warning (level 1), or an alarm (level 2) above ``alarm_above``."""
    from twin.alerts import DrillAlert

    alarm = value > alarm_above
    return DrillAlert(
        site, code, kind, "alarm" if alarm else "warning", message, value, 2 if alarm else 1
    )


def flood_alerts(site: str, result: dict[str, Any]) -> list[Any]:
    """Drill alerts of a site flood result: one per closed road and affected building, an
    alarm above 0.3 m."""
    out = []
    for closure in result["closures"]:
        depth = float(closure["max_depth_m"])
        message = (
            f"road {closure['code']} closed by water from t={closure['t_start_s']:g} s "
            f"(max depth {depth:.2f} m)"
        )
        out.append(graded_alert(site, closure["code"], "road-closure", depth, 0.3, message))
    for building in result["affected_buildings"]:
        depth = float(building["max_depth_m"])
        message = (
            f"water against building {building['code']} from t={building['first_t_s']:g} s "
            f"(max depth {depth:.2f} m)"
        )
        out.append(graded_alert(site, building["code"], "building-flooded", depth, 0.3, message))
    return out


def raise_drill_alerts(state: TwinState, drill: str, alerts: list[Any]) -> dict[str, Any] | None:
    """Put a drill's alerts into the live twin (if it runs); what was raised, for the result."""
    if state.live is None or not alerts:
        return None
    raised = state.live.alerts.raise_drill_alerts(drill, alerts, state.live.clock())
    return {
        "source": "drill",
        "drill": drill,
        "count": len(raised),
        "codes": [a["code"] for a in raised],
    }


def site_flood_work(body: dict[str, Any], state: TwinState) -> Work:
    """A site flood drill: ``{"site": SITE, "storm": {"formula", "return_period_a",
    "duration_min", "peak_ratio"}, "duration_s", "cell_m", "inflows": [{"x", "y", "q_m3s",
    "radius_m"}], "terrain", "manning", "record_step_s", "alerts": true}``.

    The result names the max-depth and time-of-max GeoTIFFs and a depth PNG under
    ``/drills/files/…``, lists affected buildings and closed roads by CIM code, puts the layer
    ``flood-depth`` (max depth against each building) on the site and, unless ``alerts`` is
    false, raises a drill alert per closure and affected building in the live twin.
    """
    import shutil
    import tempfile
    import uuid

    from api.jobs import CURRENT_JOB
    from scenarios.flood.site import run_site_flood

    live_rain = site_live_rain(body, state)
    spec = site_flood_spec(body, state.store, live_rain["rain_mm_h"] if live_rain else None)
    site = str(body["site"])
    alerts = body.get("alerts", True)
    if not isinstance(alerts, bool):
        raise DrillRequestError("alerts must be true or false")
    files = drill_files(state)

    def work(progress: Progress) -> dict[str, Any]:
        files.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=files) as tmp:
            result = run_site_flood(spec, tmp, progress)
            names = {}
            for key, path in (
                ("max_depth_tif", result.rasters[0]),
                ("time_of_max_tif", result.rasters[1]),
                ("depth_png", result.depth_png),
            ):
                assert path is not None
                target = files / f"{uuid.uuid4().hex}{Path(path).suffix}"
                shutil.move(path, target)
                names[key] = f"/drills/files/{target.name}"
        out = result.to_dict()
        values = {c: round(v, 4) for c, v in result.building_max_depth_m.items()}
        state.layers.put(
            Layer(site, FLOOD_LAYER, values, "maximum water depth against the building", "m")
        )
        out["layer"] = {"site": site, "name": FLOOD_LAYER, "buildings": len(values)}
        out["files"] = names
        out["crs"] = spec.terrain.crs
        out["rain"] = live_rain["rain"] if live_rain else {"live": False}
        drill = CURRENT_JOB.get() or f"flood-{site}"
        out["drill"] = drill
        out["alerts"] = (
            raise_drill_alerts(state, drill, flood_alerts(site, out)) if alerts else None
        )
        return out

    return work


#: Crowd spec fields a client may set (file paths are the server's to choose).
_CROWD_FIELDS = {
    "agents",
    "seed",
    "cell_m",
    "dt_s",
    "window_m",
    "zone_m",
    "record_every_s",
    "max_time_s",
    "placement",
    "measures",
    "releases",
    "arrivals",
    "reroute_every_s",
    "alert_levels_pm2",
    "fd",
}


def drill_files(state: TwinState) -> Path:
    """Where drills leave files for clients (density maps), named by random ids."""
    return Path(state.settings.cache_path) / "drill-files"


def crowd_work(body: dict[str, Any], state: TwinState) -> Work:
    """A crowd drill on ``crowd/NAME.wkt`` (or ``.geojson``): ``{"venue": NAME, "agents": N,
    "seed", "measures": [{"exit", "at_s", "rate_pps"} | {"one_way": {"polygon": [[x, y],
    ...], "bearing_deg", "at_s"}}], "releases", "arrivals", "reroute_every_s", ...}``; the
    result names a PNG density map at ``/drills/files/…``. Measures are checked against the
    venue (exit indices, one-way polygons on its walkable area) before the job starts.

    With ``"site"`` and ``"code"`` (the CIM object the venue stands for: a square, a
    building), each zone's highest density level crossed becomes a drill alert on that object
    in the live twin (the zone named in the message)."""
    import uuid

    from api.jobs import CURRENT_JOB
    from cim.errors import SourceError
    from scenarios.crowd import CrowdSpec, load_venue
    from scenarios.crowd import run as run_crowd
    from scenarios.crowd.model import check_spec

    _unknown(body, {"venue", "site", "code"} | _CROWD_FIELDS)
    anchor = _crowd_anchor(body, state)
    data_dir = Path(state.settings.data_dir)
    venues = {**catalogue(data_dir, "crowd", ".geojson"), **catalogue(data_dir, "crowd", ".wkt")}
    name = body.get("venue")
    if not isinstance(name, str) or name not in venues:
        raise DrillRequestError(f"venue must name one of the server's venues: {sorted(venues)}")
    files = drill_files(state)
    png = files / f"{uuid.uuid4().hex}.png"
    cache = Path(state.settings.cache_path) / "crowd" / f"{name}.npz"
    given = {k: v for k, v in body.items() if k not in ("venue", "site", "code")}
    try:
        spec = CrowdSpec.from_dict(
            {**given, "venue": str(venues[name]), "density_png": str(png), "grid_cache": str(cache)}
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DrillRequestError(f"crowd: {exc}") from None
    if not 0 < spec.agents <= 200_000:
        raise DrillRequestError("agents must be 1..200000")
    try:
        check_spec(load_venue(spec.venue), spec)
    except (SourceError, ValueError) as exc:
        raise DrillRequestError(f"crowd: {exc}") from None

    def work(progress: Progress) -> dict[str, Any]:
        files.mkdir(parents=True, exist_ok=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        result = run_crowd(spec, progress)
        out = result.to_dict()
        out.pop("density_png", None)
        drill_alerts = None
        if anchor is not None:
            drill = CURRENT_JOB.get() or f"crowd-{name}"
            found = crowd_alerts(anchor[0], anchor[1], name, out["alerts"])
            drill_alerts = raise_drill_alerts(state, drill, found)
        return {
            "summary": result.summary(),
            **out,
            "density_png": f"/drills/files/{png.name}" if png.is_file() else None,
            "drill_alerts": drill_alerts,
        }

    return work


#: The layer a building evacuation leaves for the viewer: peak density per space and stair.
EVACUATION_LAYER = "evacuation-density"


def evacuation_work(body: dict[str, Any], state: TwinState) -> Work:
    """An evacuation of one imported building: ``{"site", "building": CODE, "load_pm2" |
    "per_space" | "loads": {SPACE: N} | "live": true, "measures": [{"close": DOOR_OR_STAIR,
    "at_s"} | {"stage": STOREY, "at_s"}], "dt_s", "max_time_s", "seed"}``. The walk graph is built
    (and the codes checked) before the job starts; the peak density per space and stair is
    put on the site as the layer ``evacuation-density``, for the viewer."""
    from scenarios.crowd.building import EvacuationSpec, live_loads, load_building, simulate
    from scenarios.crowd.building.model import resolve_measures

    live = body.get("live", False)
    if not isinstance(live, bool):
        raise DrillRequestError("evacuation: live must be true or false")
    given = {k: v for k, v in body.items() if k != "live"}
    try:
        spec = EvacuationSpec.from_dict(given)
    except (KeyError, TypeError, ValueError) as exc:
        raise DrillRequestError(f"evacuation: {exc}") from None
    state.store.site(spec.site)
    try:
        graph = load_building(state.store, spec.site, spec.building)
        if live:
            if any(k in given for k in ("load_pm2", "per_space", "loads")):
                raise ValueError("give live or one of load_pm2, per_space and loads")
            spec = dataclasses.replace(spec, loads=live_loads(state.settings.store_url, graph))
        resolve_measures(graph, spec)
    except ValueError as exc:
        raise DrillRequestError(f"evacuation: {exc}") from None

    def work(progress: Progress) -> dict[str, Any]:
        out = simulate(graph, spec, progress)
        densities = {code: float(v) for code, v in out["max_density_pm2"].items()}
        state.layers.put(
            Layer(spec.site, EVACUATION_LAYER, densities, "peak evacuation density", "P/m²")
        )
        out["layer"] = {"site": spec.site, "name": EVACUATION_LAYER, "objects": len(densities)}
        return out

    return work


def _crowd_anchor(body: dict[str, Any], state: TwinState) -> tuple[str, str] | None:
    """The CIM object a crowd drill's venue stands for (``site`` and ``code``), if given."""
    if "site" not in body and "code" not in body:
        return None
    site, code = body.get("site"), body.get("code")
    if not isinstance(site, str) or not _NAME.match(site) or not isinstance(code, str):
        raise DrillRequestError("site and code must name the CIM object the venue stands for")
    state.store.get(site, code)
    return site, code


#: Severity of crowd drill alerts by the alert level crossed, persons/m² (the sensor ladder).
_CROWD_SEVERITY = ((6.0, "purple"), (5.0, "red"), (4.0, "orange"), (2.0, "yellow"))


def crowd_alerts(site: str, code: str, venue: str, crossings: list[dict[str, Any]]) -> list[Any]:
    """Drill alerts of a crowd drill: one per zone, at the highest density level it crossed
    (first time of that crossing), on the venue's CIM object with the zone in the message."""
    from twin.alerts import DrillAlert

    worst: dict[str, dict[str, Any]] = {}
    for crossing in crossings:
        seen = worst.get(crossing["zone"])
        if seen is None or crossing["level"] > seen["level"]:
            worst[crossing["zone"]] = crossing
    out = []
    for zone, crossing in sorted(worst.items()):
        level = float(crossing["level"])
        rank = sum(1 for threshold, _ in _CROWD_SEVERITY if level >= threshold)
        severity = next((s for t, s in _CROWD_SEVERITY if level >= t), "yellow")
        out.append(
            DrillAlert(
                site,
                code,
                "crowd-density",
                severity,
                f"venue {venue} zone {zone}: density {crossing['density']:g} p/m2 passed "
                f"{level:g} p/m2 at t={crossing['t']:g} s",
                float(crossing["density"]),
                max(rank, 1),
            )
        )
    return out


#: drill name -> (adapter, the named inputs it lists)
ADAPTERS: dict[str, tuple[Callable[[dict[str, Any], TwinState], Work], tuple[str, ...]]] = {
    "traffic": (
        traffic_work,
        ("traffic/NAME_nodes.csv", "traffic/NAME.osm", "traffic/NAME.osm.pbf"),
    ),
    "flood": (flood_work, ("swmm/NAME.inp",)),
    "crowd": (crowd_work, ("crowd/NAME.wkt", "crowd/NAME.geojson")),
    "evacuation": (evacuation_work, ()),
}
