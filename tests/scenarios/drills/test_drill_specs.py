"""The drills' request models: today's bodies validate; unknown fields, out-of-bound values
and hostile sizes are refused, naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from cim.errors import NotFoundError
from scenarios.drills import DRILLS, drill
from scenarios.drills.crowd import CrowdDrill
from scenarios.drills.evacuation import EvacuationDrill
from scenarios.drills.flood import FloodDrill
from scenarios.drills.traffic import TrafficDrill

STORM = {"formula": "shanghai-2017", "return_period_a": 50, "duration_min": 60}
STRIP = [[150, 0], [160, 0], [160, 11.5], [150, 11.5]]
BUILDING = "990100001001002010001"

#: Bodies the API tests and the viewer post today.
TODAYS_BODIES: list[tuple[str, dict[str, Any]]] = [
    ("traffic", {"network": "tokyo_arterial"}),
    ("traffic", {"network": "tokyo_arterial", "closures": [{"link": "r", "t_start_s": 0}]}),
    ("traffic", {"network": "t", "meterings": [{"link": "r", "t_start_s": 0, "rate_vps": 0.02}]}),
    ("traffic", {"site": "oakland", "osm": "west_oakland", "demand": {"pairs": 60, "seed": 1}}),
    ("traffic", {"site": "oakland", "demand": {"pairs": 60, "seed": 1}}),
    (
        "traffic",
        {
            "site": "oakland",
            "osm": "west_oakland",
            "demand": {"pairs": 20, "seed": 1},
            "closures_from": "j_1a2b",
            "tmax_s": 1200,
        },
    ),
    ("flood", {"network": "bellinge_small", "storm": STORM, "duration_s": 10800}),
    ("flood", {"network": "bellinge_small", "site": "bellinge", "storm": STORM}),
    (
        "flood",
        {
            "network": "bellinge_small",
            "site": "bellinge",
            "rain": {"live": {"lookback_s": 1800, "forecast_s": 1800}},
            "pump_failures": [{"name": "P1", "t_s": 600}],
            "settings": [{"name": "W1", "t_s": 60, "value": 0.5}],
        },
    ),
    ("flood", {"site": "merewether", "storm": STORM, "duration_s": 1800, "cell_m": 4}),
    (
        "flood",
        {
            "site": "merewether",
            "rain": {"live": {"lookback_s": 1200, "forecast_s": 600}},
            "duration_s": 1800,
            "cell_m": 4,
            "manning": 0.04,
            "record_step_s": 30,
            "alerts": False,
            "inflows": [{"x": 1, "y": 2, "q_m3s": 1}],
        },
    ),
    ("crowd", {"venue": "waterfront", "agents": 2000, "seed": 3}),
    ("crowd", {"venue": "waterfront", "agents": 2000, "site": "denhaag", "code": "0" * 21}),
    (
        "crowd",
        {
            "venue": "waterfront",
            "agents": 1500,
            "measures": [
                {"exit": 1, "at_s": 0, "rate_pps": 0},
                {"exit": 2, "rate_pps": None},
                {"one_way": {"polygon": STRIP, "bearing_deg": 270, "at_s": 0}},
            ],
            "releases": [{"at_s": 30}],
            "arrivals": [{"spawn": 0, "people": 10}],
            "fd": {"free_speed_mps": 1.2},
        },
    ),
    ("evacuation", {"site": "campus", "building": BUILDING, "load_pm2": 0.5}),
    ("evacuation", {"site": "campus", "building": BUILDING, "live": True}),  # the viewer
    (
        "evacuation",
        {
            "site": "campus",
            "building": BUILDING,
            "per_space": 3,
            "measures": [{"stage": BUILDING + "002", "at_s": 20}, {"close": "42"}],
        },
    ),
]


@pytest.mark.parametrize(("name", "body"), TODAYS_BODIES)
def test_todays_bodies_still_validate(name: str, body: dict[str, Any]) -> None:
    spec = drill(name).spec.model_validate(body)
    again = drill(name).spec.model_validate(spec.model_dump())
    assert again == spec  # a stored spec (every field) validates as the body did


def test_the_registry_names_its_drills() -> None:
    assert set(DRILLS) == {"traffic", "flood", "crowd", "evacuation"}
    assert all(d.name == name for name, d in DRILLS.items())
    with pytest.raises(NotFoundError, match="known: crowd, evacuation, flood, traffic"):
        drill("tsunami")


def test_nested_models_are_named_schemas() -> None:
    assert {"RoadClosure", "LinkMetering", "RandomDemand"} <= set(
        TrafficDrill.model_json_schema()["$defs"]
    )
    assert {"DesignStorm", "LiveRain", "PumpFailure", "LinkSetting", "SiteInflow"} <= set(
        FloodDrill.model_json_schema()["$defs"]
    )
    assert {"ExitMeasure", "OneWayMeasure", "Release", "Arrival", "FundamentalDiagram"} <= set(
        CrowdDrill.model_json_schema()["$defs"]
    )
    assert {"CloseMeasure", "StageMeasure"} <= set(EvacuationDrill.model_json_schema()["$defs"])


def _locs(name: str, body: dict[str, Any]) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as exc:
        drill(name).spec.model_validate(body)
    return [tuple(e["loc"]) for e in exc.value.errors()]


BASE = {
    "traffic": {"network": "tokyo_arterial"},
    "flood": {"network": "bellinge_small"},
    "site-flood": {"site": "merewether", "storm": STORM, "duration_s": 1800},
    "crowd": {"venue": "waterfront", "agents": 10},
    "evacuation": {"site": "campus", "building": BUILDING},
}


@pytest.mark.parametrize("base", sorted(BASE))
def test_an_unknown_field_is_refused_by_name(base: str) -> None:
    name = "flood" if base == "site-flood" else base
    assert _locs(name, {**BASE[base], "speed": 3}) == [("speed",)]
    assert _locs(name, {**BASE[base], "density_png": "/etc/x.png"}) == [("density_png",)]


@pytest.mark.parametrize(
    ("base", "change", "loc"),
    [
        ("traffic", {"tmax_s": -5}, ("tmax_s",)),
        ("traffic", {"tmax_s": 1e9}, ("tmax_s",)),
        ("traffic", {"deltan": 0}, ("deltan",)),
        ("traffic", {"network": "../traffic/tokyo_arterial"}, ("network",)),
        ("traffic", {"closures": [{"link": "a", "t_start_s": -1}]}, ("closures", 0, "t_start_s")),
        (
            "traffic",
            {"closures": [{"link": "a", "t_start_s": 0, "lanes": 0}]},
            ("closures", 0, "lanes"),
        ),
        ("traffic", {"meterings": [{"link": "zz", "t_start_s": 0}]}, ("meterings", 0, "rate_vps")),
        ("flood", {"duration_s": 0}, ("duration_s",)),
        ("flood", {"storm": {**STORM, "peak_ratio": 2}}, ("storm", "peak_ratio")),
        ("flood", {"storm": {**STORM, "return_period_a": 1e9}}, ("storm", "return_period_a")),
        ("flood", {"pump_failures": [{"name": "P", "t_s": -1}]}, ("pump_failures", 0, "t_s")),
        ("site-flood", {"cell_m": 0.001}, ("cell_m",)),
        ("site-flood", {"cell_m": 1e-300}, ("cell_m",)),
        ("site-flood", {"cell_m": 1e300}, ("cell_m",)),
        ("site-flood", {"record_step_s": 1e-9}, ("record_step_s",)),
        ("site-flood", {"duration_s": 1e9}, ("duration_s",)),
        ("site-flood", {"site": "../merewether"}, ("site",)),
        ("site-flood", {"cells": 2_000_000}, ("cells",)),
        ("site-flood", {"inflows": [{"x": 0, "y": 0, "q_m3s": 1e6}]}, ("inflows", 0, "q_m3s")),
        ("site-flood", {"inflows": [{"x": float("nan"), "y": 0, "q_m3s": 1}]}, ("inflows", 0, "x")),
        ("crowd", {"dt_s": 1e-9}, ("dt_s",)),
        ("crowd", {"cell_m": 0.001}, ("cell_m",)),
        ("crowd", {"agents": 0}, ("agents",)),
        ("crowd", {"agents": 200_001}, ("agents",)),
        ("crowd", {"record_every_s": 1e-6}, ("record_every_s",)),
        ("crowd", {"venue": "../crowd/waterfront"}, ("venue",)),
        ("crowd", {"arrivals": [{"spawn": 0, "people": 0}]}, ("arrivals", 0, "people")),
        ("crowd", {"fd": {"rho_max_pm2": 1e9}}, ("fd", "rho_max_pm2")),
        ("evacuation", {"dt_s": 1e-9}, ("dt_s",)),
        ("evacuation", {"load_pm2": 6}, ("load_pm2",)),
        ("evacuation", {"max_time_s": 1e9}, ("max_time_s",)),
        ("evacuation", {"loads": {"123": -1}}, ("loads", "123")),
    ],
)
def test_an_out_of_bound_field_is_refused_by_name(
    base: str, change: dict[str, Any], loc: tuple[str | int, ...]
) -> None:
    name = "flood" if base == "site-flood" else base
    assert loc in _locs(name, {**BASE[base], **change})


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("traffic", {"network": "t", "closures": [{"link": "a", "t_start_s": 0}] * 1001}),
        (
            "traffic",
            {"network": "t", "meterings": [{"link": "a", "t_start_s": 0, "rate_vps": 1}] * 1001},
        ),
        ("flood", {"network": "b", "settings": [{"name": "W", "t_s": 0, "value": 1}] * 10_001}),
        ("flood", {**BASE["site-flood"], "inflows": [{"x": 0, "y": 0, "q_m3s": 1}] * 101}),
        ("crowd", {**BASE["crowd"], "measures": [{"exit": 0}] * 101}),
        ("crowd", {**BASE["crowd"], "alert_levels_pm2": [1.0] * 11}),
        ("evacuation", {**BASE["evacuation"], "measures": [{"close": "1"}] * 1001}),
    ],
)
def test_huge_lists_are_refused(name: str, body: dict[str, Any]) -> None:
    errors = _locs(name, body)
    assert errors and all(len(loc) == 1 for loc in errors), errors


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("traffic", {"network": "t", "site": "s", "osm": "o"}, "not both"),
        ("traffic", {"osm": "west_oakland"}, "give site too"),
        ("traffic", {"network": "t", "closures_from": "j_1"}, "for site drills"),
        (
            "traffic",
            {"site": "o", "osm": "w", "demand": {"pairs": 100_000, "flow_vps": 1}},
            "vehicles",
        ),
        ("flood", {}, "give network"),
        ("flood", {"network": "b", "cell_m": 4}, "cell_m are not for a drainage drill"),
        (
            "flood",
            {
                "site": "m",
                "storm": STORM,
                "duration_s": 60,
                "pump_failures": [{"name": "P", "t_s": 0}],
            },
            "pump_failures are not for a site flood",
        ),
        ("flood", {"network": "b", "rain": {"live": {}}}, "needs the site"),
        ("flood", {"network": "b", "site": "s", "storm": STORM, "rain": {"live": {}}}, "not both"),
        ("flood", {"site": "m", "storm": STORM}, "duration_s is required"),
        ("flood", {"site": "m", "duration_s": 60}, "or at least one inflow"),
        ("flood", {"site": "m", "storm": STORM, "duration_s": 100_000}, "must be <= 86400"),
        # a million cells for a day is 8.6e10 cell-seconds: more than a day's wall time
        (
            "flood",
            {"site": "m", "storm": STORM, "duration_s": 86_400, "cells": 1_000_000},
            "cell-seconds",
        ),
        ("crowd", {"venue": "w", "agents": 10, "site": "s"}, "site and code"),
        (
            "crowd",
            {"venue": "w", "agents": 150_000, "arrivals": [{"spawn": 0, "people": 60_000}]},
            "more than 200000",
        ),
        (
            "crowd",
            {
                "venue": "w",
                "agents": 200_000,
                "dt_s": 0.1,
                "max_time_s": 86_400,
                "record_every_s": 10,
            },
            "person-steps",
        ),
        (
            "crowd",
            {"venue": "w", "agents": 10, "record_every_s": 0.1, "max_time_s": 86_400},
            "samples",
        ),
        (
            "evacuation",
            {**BASE["evacuation"], "per_space": 3, "load_pm2": 1},
            "give live or one of",
        ),
        (
            "evacuation",
            {**BASE["evacuation"], "live": True, "loads": {"1": 2}},
            "give live or one of",
        ),
    ],
)
def test_contradicting_or_hostile_bodies_are_refused(
    name: str, body: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        drill(name).spec.model_validate(body)


def test_specs_are_frozen() -> None:
    spec = TrafficDrill.model_validate({"network": "tokyo_arterial"})
    with pytest.raises(ValidationError):
        spec.deltan = 1  # type: ignore[misc]
    assert EvacuationDrill.model_validate(BASE["evacuation"]).unit_code() == BUILDING
    assert FloodDrill.model_validate(BASE["site-flood"]).site_name() == "merewether"


def test_a_venue_whose_bounds_raster_too_many_cells_is_refused_before_the_grid() -> None:
    from types import SimpleNamespace

    import shapely

    from scenarios.drills.base import DrillLimitError
    from scenarios.drills.crowd import MAX_RASTER_CELLS, check_grid

    # a thin L: little walkable area, a wide bounding box the grid is cut from
    walkable = shapely.union(shapely.box(0, 0, 2_000, 1), shapely.box(0, 0, 1, 2_000))
    venue: Any = SimpleNamespace(walkable=walkable, area_m2=walkable.area)
    spec = CrowdDrill.model_validate({"venue": "l", "agents": 10, "cell_m": 0.5})
    assert walkable.area / 0.25 < 2_000_000 < (2_000 / 0.5) ** 2
    with pytest.raises(
        DrillLimitError, match=rf"into 16000000 cells, more than {MAX_RASTER_CELLS}"
    ):
        check_grid(spec, venue, 0.5)
    check_grid(spec, venue, 1.0)  # 4,000,000 raster cells fit
