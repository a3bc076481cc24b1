"""Verification of the crowd model: closed-form cases, conservation, measures, determinism,
and the measured Jülich bottleneck flow."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest

from scenarios.crowd import (
    Arrival,
    CrowdResult,
    CrowdSpec,
    ExitMeasure,
    FundamentalDiagram,
    Release,
    run,
)

STEADY = FundamentalDiagram(free_speed_sd_mps=0.0)


def steady_flow(times: np.ndarray) -> float:
    """Persons/s between the 10th and the 90th percentile passage (no start/end transients)."""
    t = np.sort(times[np.isfinite(times)])
    lo, hi = int(0.1 * t.size), int(0.9 * t.size)
    return float((hi - lo) / (t[hi] - t[lo]))


def test_free_walking_time_is_distance_over_free_speed(corridor: Path) -> None:
    # one person at a cell centre 48 m before the exit's first cells, nobody in the way
    spec = CrowdSpec(
        venue=str(corridor), agents=0, positions=((1.25, 0.75),), cell_m=0.5, fd=STEADY
    )
    result = run(spec)
    assert result.evacuated == 1
    assert result.evacuation_time_s == pytest.approx(48.0 / 1.34, abs=result.dt_s)


def test_evacuation_is_never_faster_than_free_walking(corridor: Path) -> None:
    result = run(CrowdSpec(venue=str(corridor), agents=60, seed=3, cell_m=0.5, fd=STEADY))
    assert result.evacuated == 60
    assert result.evacuation_time_s is not None
    assert result.evacuation_time_s >= 47.5 / 1.34 - 1.0


def test_bottleneck_flow_matches_specific_flow_times_width(room_with_door: Path) -> None:
    result = run(CrowdSpec(venue=str(room_with_door), agents=300, seed=1, cell_m=0.4, fd=STEADY))
    assert result.evacuated == 300
    capacity = 1.9 * 1.2  # specific flow × door width, persons/s
    assert steady_flow(result.exit_time_s) == pytest.approx(capacity, rel=0.10)


def test_people_are_conserved(two_exit_hall: Path) -> None:
    spec = CrowdSpec(
        venue=str(two_exit_hall),
        agents=400,
        seed=5,
        arrivals=(Arrival(spawn=1, people=150, start_s=5.0, end_s=25.0),),
        max_time_s=20.0,
    )
    result = run(spec)
    # stopped early: everyone is out or still inside, each exit counted once
    assert result.agents == 400 + int(np.isfinite(result.exit_time_s).size - 400)
    assert sum(result.exit_flows.values()) == result.evacuated
    assert result.curve_evacuated == sorted(result.curve_evacuated)
    full = run(CrowdSpec(venue=str(two_exit_hall), agents=400, seed=5, arrivals=spec.arrivals))
    assert full.agents == 550 and full.evacuated == 550
    assert sum(full.exit_flows.values()) == 550
    assert full.curve_evacuated[-1] == 550


def test_same_seed_same_result_other_seed_other_result(two_exit_hall: Path) -> None:
    spec = CrowdSpec(venue=str(two_exit_hall), agents=500, seed=11)
    a, b = run(spec), run(spec)
    assert np.array_equal(a.exit_time_s, b.exit_time_s)
    assert a.summary() | {"wall_s": 0} == b.summary() | {"wall_s": 0}
    c = run(CrowdSpec(venue=str(two_exit_hall), agents=500, seed=12))
    assert not np.array_equal(a.exit_time_s, c.exit_time_s)


def test_nearest_exit_by_walking_distance(two_exit_hall: Path) -> None:
    spec = CrowdSpec(venue=str(two_exit_hall), agents=0, positions=((5, 5), (35, 5), (36, 2)))
    assert run(spec).exit_flows == {0: 1, 1: 2}


def test_closing_an_exit_reroutes_everyone_and_takes_longer(two_exit_hall: Path) -> None:
    base = CrowdSpec(venue=str(two_exit_hall), agents=400, seed=2, fd=STEADY)
    open_run = run(base)
    closed = run(
        CrowdSpec(
            venue=str(two_exit_hall),
            agents=400,
            seed=2,
            fd=STEADY,
            measures=(ExitMeasure(exit=1, at_s=0.0),),
        )
    )
    assert closed.exit_flows[1] == 0 and closed.exit_flows[0] == 400
    assert open_run.evacuation_time_s is not None and closed.evacuation_time_s is not None
    assert closed.evacuation_time_s > open_run.evacuation_time_s + 10


def test_metering_caps_an_exit(two_exit_hall: Path) -> None:
    result = run(
        CrowdSpec(
            venue=str(two_exit_hall),
            agents=300,
            seed=4,
            measures=(ExitMeasure(exit=0, at_s=0.0, rate_pps=1.0),),
            max_time_s=60.0,
        )
    )
    assert result.exit_flows[0] <= 60 + 1


def test_staged_release_holds_people_until_the_order(two_exit_hall: Path) -> None:
    result = run(
        CrowdSpec(
            venue=str(two_exit_hall),
            agents=200,
            seed=6,
            placement="spawn",
            releases=(Release(at_s=30.0, spawn=0), Release(at_s=60.0, spawn=1)),
        )
    )
    assert result.evacuated == 200
    # nobody leaves before the first order plus the walk from the spawn edge (1 m)
    assert np.nanmin(result.exit_time_s) >= 30.0 + 1.0 / 2.0
    assert result.evacuation_time_s is not None and result.evacuation_time_s > 60.0


def test_outputs_zones_alerts_png_and_json(tmp_path: Path, room_with_door: Path) -> None:
    png = tmp_path / "density.png"
    result = run(
        CrowdSpec(venue=str(room_with_door), agents=300, seed=1, cell_m=0.4, density_png=str(png))
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.max_density_pm2 > 2.0
    worst = max(result.zones, key=lambda z: z["max_density_pm2"])
    assert worst["max_density_pm2"] == pytest.approx(result.max_density_pm2)
    assert worst["fruin_level"] == "F"
    assert worst["seconds_above"]["2"] > 0
    assert {a["level"] for a in result.alerts} >= {2.0}
    first = result.alerts[0]
    assert set(first) == {"zone", "t", "density", "level"} and first["density"] >= first["level"]
    again = CrowdResult.from_dict(result.to_dict())
    assert again.summary() == result.summary()
    assert result.to_dict()["exit_flows"] == {"0": 300}


def test_bad_spec_values_raise(two_exit_hall: Path) -> None:
    with pytest.raises(ValueError, match="exit\\(=7\\)"):
        run(CrowdSpec(venue=str(two_exit_hall), agents=1, measures=(ExitMeasure(exit=7),)))
    with pytest.raises(ValueError, match="exceed what the area holds"):
        run(CrowdSpec(venue=str(two_exit_hall), agents=10_000))
    with pytest.raises(ValueError, match="agents"):
        CrowdSpec(venue="x", agents=-1)
    with pytest.raises(ValueError, match="unknown crowd spec keys: colour"):
        CrowdSpec.from_dict({"venue": "x", "agents": 1, "colour": "red"})


def test_flow_through_the_juelich_bottleneck_against_measured(crowd_assets: Path) -> None:
    """75 people start where they stood in experiment 040_c_56_h- and pass its 0.5 m entrance."""
    data = np.loadtxt(crowd_assets / "bottleneck_040_c_56_h-_5fps.txt", comments="#")
    # measured: first crossing of the line y = -0.5 m inside the bottleneck (25 fps frames)
    crossings = []
    for person in np.unique(data[:, 0]):
        track = data[data[:, 0] == person]
        track = track[np.argsort(track[:, 1])]
        below = np.flatnonzero((track[:-1, 3] >= -0.5) & (track[1:, 3] < -0.5))
        crossings.append(track[below[0] + 1, 1] / 25.0)
    measured = steady_flow(np.array(crossings))
    assert measured == pytest.approx(1.16, abs=0.01)
    start = data[data[:, 1] == 0][:, 2:4]
    flows = []
    for seed in range(3):
        spec = CrowdSpec(
            venue=str(crowd_assets / "bottleneck_040_venue.wkt"),
            agents=0,
            positions=tuple((float(x), float(y)) for x, y in start),
            cell_m=0.25,
            seed=seed,
        )
        result = run(spec)
        assert result.evacuated == 75
        flows.append(steady_flow(result.exit_time_s))
    assert np.mean(flows) == pytest.approx(measured, rel=0.15)


def test_people_placed_on_an_exit_leave(corridor: Path) -> None:
    result = run(CrowdSpec(venue=str(corridor), agents=0, positions=((49.5, 1.0), (10.0, 1.0))))
    assert result.evacuated == 2
    assert np.nanmin(result.exit_time_s) < 1.0


def test_congestion_rerouting_spreads_people_round_a_crowded_corner(tmp_path: Path) -> None:
    # a 30 x 20 m hall; a 10 m wall from the west edge leaves a 20 m opening to the exit
    # corridor in the north: the shortest way hugs the wall's end, the others are free
    venue = tmp_path / "corner.wkt"
    venue.write_text(
        "GEOMETRYCOLLECTION (POLYGON ((0 0, 30 0, 30 20, 0 20, 0 10.5, 10 10.5, 10 9.5, "
        "0 9.5, 0 0)), "
        "POLYGON ((0 19, 3 19, 3 20, 0 20, 0 19)))"
    )
    start = tuple((x + 0.5, y + 0.5) for x in range(0, 9) for y in range(0, 9))
    plain = run(CrowdSpec(venue=str(venue), agents=0, positions=start, seed=1, fd=STEADY))
    rerouted = run(
        CrowdSpec(
            venue=str(venue), agents=0, positions=start, seed=1, fd=STEADY, reroute_every_s=5.0
        )
    )
    assert plain.evacuated == rerouted.evacuated == 81
    assert rerouted.evacuation_time_s is not None and plain.evacuation_time_s is not None
    # measured: 106 s plain, 56 s rerouted (the corner cells pass about one file)
    assert rerouted.evacuation_time_s < 0.7 * plain.evacuation_time_s


def test_alerts_fire_once_per_crossing(room_with_door: Path) -> None:
    result = run(CrowdSpec(venue=str(room_with_door), agents=300, seed=1, cell_m=0.4))
    per_zone_level = collections.Counter((a["zone"], a["level"]) for a in result.alerts)
    # a density hovering at a level does not raise a stream of alerts
    assert max(per_zone_level.values()) == 1  # without hysteresis: up to 10 here
    times = [a["t"] for a in result.alerts]
    assert times == sorted(times)
