"""One-way corridors: routes around them, nobody walks against them, trapped people counted,
bad polygons refused (model, CLI and API forms)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely

from api.cli import main
from scenarios.crowd import CrowdSpec, FundamentalDiagram, OneWay, run
from scenarios.crowd.model import CrowdState

STEADY = FundamentalDiagram(free_speed_sd_mps=0.0)
# the hall's western 14 m, walkable only eastward (bearing 90: +x)
WEST_EAST = OneWay(polygon=((1, 0), (15, 0), (15, 10), (1, 10)), bearing_deg=90)
# on the waterfront, a 10 m stretch of the southern strip walkable only westward, between
# the people at x 136..148 and exit 4 at its east end
STRIP_WEST = OneWay(polygon=((150, 0), (160, 0), (160, 11.5), (150, 11.5)), bearing_deg=270)
STRIP_PEOPLE = tuple((float(x), float(y)) for x in range(136, 149, 3) for y in (3, 6, 9))
EAST_PEOPLE = tuple((float(x), float(y)) for x in range(165, 196, 6) for y in (3, 6))


class Trace:
    """Every step's (person, cell, position) before and after, recorded around
    ``CrowdState.advance`` (the model's own state, not its own checks)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.steps: list[tuple[float, Any, Any]] = []
        original = CrowdState.advance

        def advance(state: CrowdState, t: float, dt_s: float) -> None:
            before = (state.person.copy(), state.cell.copy(), state.positions())
            original(state, t, dt_s)
            after = (state.person.copy(), state.cell.copy(), state.positions())
            self.steps.append((t, before, after))

        monkeypatch.setattr(CrowdState, "advance", advance)

    def moves(self, since_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(m, 2, 2) position pairs and (m, 2, 2) cell-centre pairs of people who stayed in."""
        pos, cells = [], []
        for t, (p0, c0, x0), (p1, c1, x1) in self.steps:
            if t < since_s:
                continue
            stay = np.isin(p0, p1)
            index = np.searchsorted(p1, p0[stay])
            pos.append(np.stack([x0[stay], x1[index]], axis=1))
            cells.append(np.stack([c0[stay], c1[index]], axis=1))
        return np.concatenate(pos), np.concatenate(cells)


def assert_never_against(
    trace: Trace, corridor: OneWay, centroid: np.ndarray, since_s: float = 0.0
) -> int:
    """No position step and no cell transition inside the corridor goes against it;
    returns how many steps were checked inside."""
    area = corridor.area
    direction = np.asarray(corridor.direction)
    pos, cells = trace.moves(since_s)
    lines = shapely.linestrings(pos)
    inside = shapely.intersects(area, lines) & (np.hypot(*(pos[:, 1] - pos[:, 0]).T) > 1e-9)
    along = (pos[inside, 1] - pos[inside, 0]) @ direction
    assert along.min(initial=0.0) > -1e-6, f"a step against the corridor: {along.min()} m"
    hop = cells[:, 0] != cells[:, 1]
    a, b = centroid[cells[hop, 0]], centroid[cells[hop, 1]]
    crossing = shapely.intersects(area, shapely.linestrings(np.stack([a, b], axis=1)))
    assert ((b - a)[crossing] @ direction > 0).all(), "a cell transition against the corridor"
    return int(inside.sum())


def test_one_way_against_the_nearest_exit_sends_everyone_to_the_other(
    two_exit_hall: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = CrowdSpec(venue=str(two_exit_hall), agents=200, seed=1, fd=STEADY)
    free = run(base)
    assert free.exit_flows[0] > 80  # the western half leaves west while it may
    trace = Trace(monkeypatch)
    spec = CrowdSpec(venue=str(two_exit_hall), agents=200, seed=1, fd=STEADY, one_ways=(WEST_EAST,))
    one_way = run(spec)
    assert one_way.exit_flows == {0: 0, 1: 200}
    assert one_way.evacuated == 200 and one_way.trapped == 0
    assert one_way.evacuation_time_s is not None and free.evacuation_time_s is not None
    # the westernmost walk now crosses the hall: at least 38 m at 1.34 m/s
    assert one_way.evacuation_time_s >= 37.0 / 1.34 > free.evacuation_time_s
    from scenarios.crowd.grid import build_grid
    from scenarios.crowd.venue import load_venue

    grid = build_grid(load_venue(two_exit_hall), one_way.cell_m)
    assert assert_never_against(trace, WEST_EAST, grid.centroid) > 1000


def test_one_way_on_a_real_venue_reroutes_through_the_gap(
    crowd_assets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venue = str(crowd_assets / "waterfront.wkt")
    people = STRIP_PEOPLE + EAST_PEOPLE
    free = run(CrowdSpec(venue=venue, agents=0, positions=people, seed=1, fd=STEADY))
    assert free.exit_flows[4] == len(people)  # all nearest to the strip's own exit
    trace = Trace(monkeypatch)
    # switched on at 5 s, when the front of the western group has walked into it (and turns)
    corridor = OneWay(STRIP_WEST.polygon, STRIP_WEST.bearing_deg, at_s=5.0)
    spec = CrowdSpec(
        venue=venue, agents=0, positions=people, seed=1, fd=STEADY, one_ways=(corridor,)
    )
    result = run(spec)
    assert result.evacuated == len(people) and result.trapped == 0
    assert result.exit_flows[4] == len(EAST_PEOPLE)
    assert sum(result.exit_flows[e] for e in range(4)) == len(STRIP_PEOPLE)
    assert result.evacuation_time_s is not None and free.evacuation_time_s is not None
    assert result.evacuation_time_s > free.evacuation_time_s
    from scenarios.crowd.grid import build_grid
    from scenarios.crowd.venue import load_venue

    grid = build_grid(load_venue(venue), result.cell_m)
    assert assert_never_against(trace, corridor, grid.centroid, since_s=5.0) > 0


def test_congestion_rerouting_respects_the_one_way(
    two_exit_hall: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = Trace(monkeypatch)
    spec = CrowdSpec(
        venue=str(two_exit_hall),
        agents=200,
        seed=2,
        one_ways=(WEST_EAST,),
        reroute_every_s=3.0,
    )
    result = run(spec)
    assert result.exit_flows == {0: 0, 1: 200}
    from scenarios.crowd.grid import build_grid
    from scenarios.crowd.venue import load_venue

    grid = build_grid(load_venue(two_exit_hall), result.cell_m)
    assert_never_against(trace, WEST_EAST, grid.centroid)


@pytest.mark.parametrize("at_s", [0.0, 3.0])
def test_a_one_way_that_traps_people_counts_them(
    write_venue: Any, tmp_path: Path, at_s: float
) -> None:
    # a 30 x 2 m corridor leaving east; 2 m of it walkable only westward cut the west end off
    venue = write_venue(
        tmp_path / "dead_end.wkt",
        "POLYGON ((0 0, 30 0, 30 2, 0 2, 0 0))",
        "POLYGON ((29 0, 30 0, 30 2, 29 2, 29 0))",
    )
    west = tuple((x + 0.5, 1.0) for x in range(2, 8))
    east = tuple((x + 0.5, 1.0) for x in range(14, 26, 2))
    corridor = OneWay(((10, 0), (12, 0), (12, 2), (10, 2)), bearing_deg=270, at_s=at_s)
    result = run(CrowdSpec(venue=str(venue), agents=0, positions=west + east, one_ways=(corridor,)))
    assert result.trapped == len(west)
    assert result.evacuated == len(east) and result.exit_flows == {0: len(east)}
    assert result.evacuation_time_s is None
    assert result.summary()["trapped"] == len(west)
    # the run ends once only trapped people are left, not at max_time_s
    assert result.curve_t_s[-1] < 60.0
    # a way back (the exit at the west end as well) frees them: nobody trapped
    both = write_venue(
        tmp_path / "both.wkt",
        "POLYGON ((0 0, 30 0, 30 2, 0 2, 0 0))",
        "MULTIPOLYGON (((29 0, 30 0, 30 2, 29 2, 29 0)), ((0 0, 1 0, 1 2, 0 2, 0 0)))",
    )
    free = run(CrowdSpec(venue=str(both), agents=0, positions=west + east, one_ways=(corridor,)))
    assert free.trapped == 0 and free.evacuated == len(west + east)


@pytest.mark.parametrize(
    ("polygon", "bearing", "message"),
    [
        (((0, 0), (1, 1)), 90, "3 or more distinct finite points"),
        (((0, 0), (2, 2), (2, 0), (0, 2)), 90, "not a valid area (Self-intersection"),
        (((0, 0), (1, 0), (float("nan"), 1)), 90, "finite"),
        (((0, 0), (1, 0), (1, 1)), float("inf"), "bearing_deg(=inf) must be in -360..360"),
        (((0, 0), (1, 0), (1, 1)), "east", "bearing_deg(='east') must be a number"),
        ("POLYGON", 90, "list of [x, y] pairs"),
    ],
)
def test_bad_one_ways_are_refused(polygon: Any, bearing: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        OneWay(polygon=polygon, bearing_deg=bearing)
    assert message in str(info.value)


def test_one_way_off_the_venue_is_refused(two_exit_hall: Path) -> None:
    far = OneWay(((100, 100), (110, 100), (110, 110)), bearing_deg=0)
    with pytest.raises(ValueError, match=r"one_way 0: polygon .* does not overlap the walkable"):
        run(CrowdSpec(venue=str(two_exit_hall), agents=5, one_ways=(far,)))


def test_one_way_as_a_measure_in_the_dict_form(two_exit_hall: Path) -> None:
    spec = CrowdSpec.from_dict(
        {
            "venue": str(two_exit_hall),
            "agents": 50,
            "measures": [
                {"exit": 0, "at_s": 100.0, "rate_pps": 0.5},
                {"one_way": {"polygon": [[1, 0], [15, 0], [15, 10], [1, 10]], "bearing_deg": 90}},
            ],
        }
    )
    assert spec.one_ways == (WEST_EAST,) and len(spec.measures) == 1
    assert CrowdSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="one_way needs bearing_deg"):
        CrowdSpec.from_dict({"venue": "v", "agents": 1, "measures": [{"one_way": {"polygon": []}}]})


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_one_way_from_the_command_line(
    capsys: pytest.CaptureFixture[str], two_exit_hall: Path, tmp_path: Path
) -> None:
    wkt = "POLYGON ((1 0, 15 0, 15 10, 1 10, 1 0))"
    code, out, _ = _cli(
        capsys, "run", "crowd", "--venue", str(two_exit_hall), "--agents", "100",
        "--one-way", f"{wkt}:90@0", "--json",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out)["exit_flows"] == {"0": 0, "1": 100}
    # the polygon from a GeoJSON file
    geojson = tmp_path / "corridor.geojson"
    geojson.write_text(
        json.dumps({"type": "Polygon", "coordinates": [[[1, 0], [15, 0], [15, 10], [1, 10]]]})
    )
    code, out, _ = _cli(
        capsys, "run", "crowd", "--venue", str(two_exit_hall), "--agents", "100",
        "--one-way", f"{geojson}:90", "--json",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out)["exit_flows"] == {"0": 0, "1": 100}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("POLYGON ((1 0, 15 0, 15 10, 1 10, 1 0))", "expected POLYGON_WKT_OR_FILE:BEARING_DEG"),
        ("POLYGON ((1 0, 15 0, 15 10, 1 10, 1 0)):north", "bearing must be a number"),
        ("POLYGON ((1 0, 15 0, 15 10)):90", "one-way polygon: "),
        ("LINESTRING (1 0, 15 0):90", "must be a POLYGON"),
        ("POLYGON ((0 0, 2 2, 2 0, 0 2, 0 0)):90", "not a valid area"),
        ("POLYGON ((1 0, 15 0, 15 10, 1 10, 1 0)):90@-3", "expected a finite number >= 0"),
        ("/nonexistent/corridor.geojson:90", "one-way polygon: "),
    ],
)
def test_bad_one_way_options_are_exit_2(
    capsys: pytest.CaptureFixture[str], two_exit_hall: Path, value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "crowd", "--venue", str(two_exit_hall), "--agents", "10", "--one-way", value])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_one_way_off_the_venue_is_exit_2(
    capsys: pytest.CaptureFixture[str], two_exit_hall: Path
) -> None:
    code, _, err = _cli(
        capsys, "run", "crowd", "--venue", str(two_exit_hall), "--agents", "10",
        "--one-way", "POLYGON ((100 100, 110 100, 110 110, 100 100)):0", "--json",
    )  # fmt: skip
    assert code == 2
    assert "one_way 0: polygon" in err and "does not overlap the walkable area" in err


def test_people_in_a_one_way_strip_leave_it_forward_then_go_round(
    two_exit_hall: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a 10 x 4 m strip along the hall's south wall, eastward only; people in it whose nearest
    # exit is west must step out of it forward (north-east) before turning west
    strip = OneWay(((15, 0), (25, 0), (25, 4), (15, 4)), bearing_deg=90)
    people = tuple((x + 0.5, y + 0.5) for x in range(15, 25) for y in range(4))
    trace = Trace(monkeypatch)
    spec = CrowdSpec(
        venue=str(two_exit_hall), agents=0, positions=people, fd=STEADY, one_ways=(strip,)
    )
    result = run(spec)
    assert result.evacuated == len(people) and result.trapped == 0
    assert result.exit_flows[0] >= 10  # most of the western half still leave west, round it
    from scenarios.crowd.grid import build_grid
    from scenarios.crowd.venue import load_venue

    grid = build_grid(load_venue(two_exit_hall), result.cell_m)
    assert assert_never_against(trace, strip, grid.centroid) > 100


def test_people_trapped_until_an_exit_reopens_get_out(write_venue: Any, tmp_path: Path) -> None:
    # a 30 x 2 m corridor with exits at both ends (0 west); 2 m of it walkable only westward;
    # the west exit is closed from 0 to 20 s, so the people west of the one-way have no way
    # out then
    from scenarios.crowd import ExitMeasure

    venue = write_venue(
        tmp_path / "both.wkt",
        "POLYGON ((0 0, 30 0, 30 2, 0 2, 0 0))",
        "MULTIPOLYGON (((0 0, 1 0, 1 2, 0 2, 0 0)), ((29 0, 30 0, 30 2, 29 2, 29 0)))",
    )
    west = tuple((x + 0.5, 1.0) for x in range(2, 8))
    corridor = OneWay(((10, 0), (12, 0), (12, 2), (10, 2)), bearing_deg=270)
    spec = CrowdSpec(
        venue=str(venue),
        agents=0,
        positions=west,
        fd=STEADY,
        one_ways=(corridor,),
        measures=(ExitMeasure(exit=0, at_s=0.0), ExitMeasure(exit=0, at_s=20.0, rate_pps=None)),
    )
    result = run(spec)
    assert result.trapped == 0 and result.evacuated == len(west)
    # (their exit stays the west one throughout: freed, they must still re-aim)
    assert result.exit_flows == {0: len(west), 1: 0}
    # they stood still until the reopening, then walked at most 7.5 m (in file, slowed by
    # the person ahead: measured 21.3 .. 28.4 s)
    assert np.nanmin(result.exit_time_s) >= 20.0
    assert result.evacuation_time_s is not None and result.evacuation_time_s < 20.0 + 15.0
