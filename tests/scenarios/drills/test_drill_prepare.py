"""``prepare`` checks a spec against the catalogue and the CIM before anything runs, and
resolves what would change (closures of an earlier run, live rain) into the spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from drill_sites import ASSETS, FakeRuns, Sites, run_record

from cim.errors import NotFoundError, TwinError
from scenarios.drills import drill
from scenarios.drills.base import DrillRequestError, PrepareContext

STORM = {"formula": "shanghai-2017", "return_period_a": 50, "duration_min": 60}
OAKLAND = {"site": "oakland", "osm": "west_oakland", "demand": {"pairs": 20, "seed": 1}}


def _prepare(name: str, body: dict[str, Any], ctx: PrepareContext) -> Any:
    found = drill(name)
    return found.prepare(found.spec.model_validate(body), ctx)


@pytest.mark.parametrize(
    ("name", "body", "error", "message"),
    [
        ("traffic", {"network": "nowhere"}, NotFoundError, "network: no traffic input 'nowhere'"),
        ("traffic", {**OAKLAND, "osm": "atlantis"}, NotFoundError, "west_oakland"),
        ("traffic", {**OAKLAND, "site": "nowhere"}, NotFoundError, "nowhere"),
        ("traffic", {**OAKLAND, "osm": "helsinki_center"}, DrillRequestError, "import it first"),
        ("traffic", {"site": "bellinge"}, DrillRequestError, "holds no streets: import an OSM"),
        (
            "traffic",
            {"site": "merewether"},  # one road, from GeoJSON: no OSM way
            DrillRequestError,
            "site merewether holds no drivable streets",
        ),
        (
            "traffic",
            {"network": "tokyo_arterial", "closures": [{"link": "no-such-road", "t_start_s": 0}]},
            DrillRequestError,
            "closures[0].link: no link named or coded 'no-such-road'",
        ),
        (
            "traffic",
            {
                "network": "tokyo_arterial",
                "meterings": [{"link": "zz", "t_start_s": 0, "rate_vps": 1}],
            },
            DrillRequestError,
            "no link named 'zz'",
        ),
        ("traffic", {**OAKLAND, "closures_from": "j_1"}, DrillRequestError, "no run store"),
        ("flood", {"network": "nowhere"}, NotFoundError, "bellinge_small"),
        (
            "flood",
            {"network": "bellinge_small", "storm": {**STORM, "formula": "atlantis"}},
            DrillRequestError,
            "storm.formula 'atlantis' is unknown",
        ),
        (
            "flood",
            {"network": "bellinge_small", "site": "merewether"},
            DrillRequestError,
            "no import of",
        ),
        (
            "flood",
            {"network": "bellinge_small", "site": "bellinge", "rain": {"live": {}}},
            DrillRequestError,
            "needs the live twin",
        ),
        (
            "flood",
            {"site": "atlantis", "storm": STORM, "duration_s": 60},
            NotFoundError,
            "atlantis",
        ),
        (
            "flood",
            {"site": "merewether", "storm": STORM, "duration_s": 60, "terrain": "x"},
            DrillRequestError,
            "terrain must",
        ),
        (
            "flood",
            {"site": "oakland", "storm": STORM, "duration_s": 60},
            DrillRequestError,
            "no terrain",
        ),
        (
            "flood",
            {"site": "merewether", "storm": STORM, "duration_s": 60, "cell_m": 0.3},
            DrillRequestError,
            "cell_m(=0.3) must be a whole multiple",
        ),
        (
            "flood",
            {"site": "merewether", "duration_s": 60, "inflows": [{"x": 0, "y": 0, "q_m3s": 1}]},
            DrillRequestError,
            "outside the terrain",
        ),
        (
            "flood",
            {"site": "merewether", "rain": {"live": {}}, "duration_s": 60},
            DrillRequestError,
            "needs the live twin",
        ),
        # Merewether at 1 m is 133,536 cells: a whole day of it is 1.15e10 cell-seconds
        (
            "flood",
            {"site": "merewether", "storm": STORM, "duration_s": 86_400, "cell_m": 1},
            DrillRequestError,
            "cell-seconds",
        ),
        ("crowd", {"venue": "nowhere", "agents": 10}, NotFoundError, "waterfront"),
        (
            "crowd",
            {"venue": "waterfront", "agents": 10, "measures": [{"exit": 99}]},
            DrillRequestError,
            "exit(=99) must be in 0..",
        ),
        (
            "crowd",
            {
                "venue": "waterfront",
                "agents": 10,
                "measures": [
                    {"one_way": {"polygon": [[500, 500], [510, 500], [510, 510]], "bearing_deg": 0}}
                ],
            },
            DrillRequestError,
            "does not overlap",
        ),
        (
            "crowd",
            {"venue": "waterfront", "agents": 10, "site": "merewether", "code": "42"},
            NotFoundError,
            "42",
        ),
        ("evacuation", {"site": "nowhere", "building": "123"}, NotFoundError, "nowhere"),
        (
            "evacuation",
            {"site": "merewether", "building": "123"},
            NotFoundError,
            "no building '123'",
        ),
    ],
)
def test_prepare_refuses_what_the_twin_does_not_hold(
    name: str,
    body: dict[str, Any],
    error: type[TwinError],
    message: str,
    prepare_ctx: PrepareContext,
) -> None:
    with pytest.raises(error) as exc:
        _prepare(name, body, prepare_ctx)
    assert message in str(exc.value)


def test_closures_from_a_site_flood_run_become_closures(
    sites: Sites, prepare_ctx: PrepareContext
) -> None:
    links = _network_links(sites)
    way = links[0].removeprefix("osm:").split("/")[0]
    road = sites.oakland_roads[way]
    flooded = {
        "summary": {},
        "closures": [{"code": road, "t_start_s": 600.0, "duration_s": None, "max_depth_m": 0.4}],
    }
    prepare_ctx.runs = FakeRuns(  # type: ignore[assignment]
        {
            "r_flood": run_record("flood", "oakland", "succeeded", flooded),
            "r_elsewhere": run_record("flood", "merewether", "succeeded", flooded),
            "r_running": run_record("flood", "oakland", "running", None),
            "r_drain": run_record("flood", "oakland", "succeeded", {"summary": {}}),
            "r_crowd": run_record("crowd", "oakland", "succeeded", {"summary": {}}),
        }
    )
    given = {"link": "x", "t_start_s": 5, "duration_s": 60}
    body = {**OAKLAND, "closures": [given], "closures_from": "r_flood"}
    with pytest.raises(DrillRequestError, match="no link named or coded 'x'"):
        _prepare("traffic", body, prepare_ctx)  # the client's closures are checked as well
    given["link"] = links[-1]
    spec = _prepare("traffic", body, prepare_ctx)
    assert spec.closures_from is None
    assert [c.model_dump() for c in spec.closures] == [
        {**given, "lanes": None, "reason": ""},
        {"link": road, "t_start_s": 600.0, "duration_s": None, "lanes": None, "reason": ""},
    ]
    for run_id, message in (
        ("r_elsewhere", "flooded site 'merewether', not 'oakland'"),
        ("r_running", "is running, not succeeded"),
        ("r_drain", "not a site flood drill"),
        ("r_crowd", "not a site flood drill"),
    ):
        with pytest.raises(DrillRequestError, match=message):
            _prepare("traffic", {**OAKLAND, "closures_from": run_id}, prepare_ctx)
    with pytest.raises(NotFoundError, match="r_nope"):
        _prepare("traffic", {**OAKLAND, "closures_from": "r_nope"}, prepare_ctx)


def _network_links(sites: Sites) -> list[str]:
    from drill_sites import ASSETS

    from scenarios.traffic.osm import load_osm_roads

    network, _ = load_osm_roads(ASSETS / "traffic" / "west_oakland.osm", deltan=5)
    return list(network.link_codes)


def test_a_site_flood_names_its_terrain_and_counts_its_cells(
    prepare_ctx: PrepareContext,
) -> None:
    body = {"site": "merewether", "storm": STORM, "duration_s": 1800, "cell_m": 4}
    spec = _prepare("flood", body, prepare_ctx)
    assert spec.terrain is not None and spec.terrain in prepare_ctx.store.raster_codes("merewether")
    assert spec.cells == 104 * 81  # 416 x 321 one-metre cells, in 4 m blocks
    assert _prepare("flood", spec.model_dump(), prepare_ctx) == spec  # prepared once for all


def test_a_crowd_grid_over_the_cell_limit_is_refused(
    prepare_ctx: PrepareContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scenarios.drills.crowd

    monkeypatch.setattr(scenarios.drills.crowd, "MAX_CELLS", 10_000)
    with pytest.raises(DrillRequestError, match=r"cell_m.* cells of waterfront, more than 10000"):
        _prepare("crowd", {"venue": "waterfront", "agents": 10, "cell_m": 0.5}, prepare_ctx)
    _prepare("crowd", {"venue": "waterfront", "agents": 10, "cell_m": 5}, prepare_ctx)


def test_a_network_changed_after_its_import_is_refused(sites: Sites, tmp_path: Path) -> None:
    """The drill and the CIM must hold the same network: a catalogue file edited after its
    import into the site is refused, naming both checksums; the file as imported runs."""
    catalogue = tmp_path / "data"
    (catalogue / "swmm").mkdir(parents=True)
    original = (ASSETS / "swmm" / "bellinge_small.inp").read_bytes()
    copy = catalogue / "swmm" / "bellinge_small.inp"
    copy.write_bytes(original)
    ctx = PrepareContext(sites.store, catalogue, sites.tmp / "cache", str(sites.path))
    body = {"network": "bellinge_small", "site": "bellinge", "storm": STORM}
    assert _prepare("flood", body, ctx).network == "bellinge_small"
    copy.write_bytes(original.replace(b"[JUNCTIONS]", b"[JUNCTIONS]\n; edited", 1))
    with pytest.raises(DrillRequestError, match=r"bellinge_small.inp changed after its import"):
        _prepare("flood", body, ctx)


def test_a_broken_venue_is_named_by_its_file_not_the_servers_path(
    sites: Sites, tmp_path: Path
) -> None:
    """A catalogue venue that does not parse is refused naming the venue and its file; the
    message never carries the server's folders."""
    data = tmp_path / "catalogue"
    (data / "crowd").mkdir(parents=True)
    (data / "crowd" / "plaza.geojson").write_text('{"type": "FeatureCollection", "features": [')
    ctx = PrepareContext(sites.store, data, tmp_path / "cache", str(sites.path))
    with pytest.raises(DrillRequestError) as refused:
        _prepare("crowd", {"venue": "plaza", "agents": 10}, ctx)
    message = str(refused.value)
    assert message.startswith("crowd: venue plaza (plaza.geojson): not JSON"), message
    assert str(tmp_path) not in message and "/" not in message
