"""Closures and incidents: whole links, lanes, for a while; stranded vehicles; re-routing."""

from __future__ import annotations

import pytest
from traffic_networks import build_network

from scenarios.traffic import Closure, DemandWindow, Metering, TrafficSpec, run

# two routes from O to D: the short one via A (100 s), the long one via B (200 s)
ROUTES = [
    ("oa", "O", "A", 1000.0, 20.0),
    ("ad", "A", "D", 1000.0, 20.0),
    ("ob", "O", "B", 2000.0, 20.0),
    ("bd", "B", "D", 2000.0, 20.0),
]
LIGHT = [DemandWindow("O", "D", 0.0, 600.0, flow_vps=0.1)]


def test_everyone_takes_the_short_route_when_it_is_open() -> None:
    result = run(TrafficSpec(build_network(ROUTES), LIGHT, tmax_s=1800.0))
    assert result.trips.completed_trips == 60
    assert result.trips.average_travel_time_s == pytest.approx(100.0)
    assert result.series.flow_vps[:, 2].sum() == 0
    # the last platoon leaves at 595 s and needs 100 s
    assert result.clear_time_s == pytest.approx(695.0)


def test_closing_the_short_route_sends_traffic_the_long_way() -> None:
    closure = Closure(link="ad", t_start_s=0.0, reason="flood")
    result = run(TrafficSpec(build_network(ROUTES), LIGHT, closures=[closure], tmax_s=1800.0))
    assert result.trips.completed_trips == 60
    assert result.trips.average_travel_time_s == pytest.approx(200.0)
    assert result.trips.average_delay_s == pytest.approx(100.0)
    assert result.closures == [closure.to_dict()]


def test_a_closure_with_a_duration_ends_and_routes_come_back() -> None:
    closure = Closure(link="oa", t_start_s=0.0, duration_s=300.0)
    spec = TrafficSpec(
        build_network(ROUTES),
        [DemandWindow("O", "D", 0.0, 1200.0, flow_vps=0.1)],
        closures=[closure],
        tmax_s=2400.0,
    )
    result = run(spec)
    assert result.trips.completed_trips == 120
    # 30 vehicles left in the first 300 s the long way, the other 90 the short way
    expected = (30 * 200.0 + 90 * 100.0) / 120
    assert result.trips.average_travel_time_s == pytest.approx(expected, abs=3.0)


def test_no_route_left_strands_vehicles_where_they_are() -> None:
    links = [("a", "O", "X", 1000.0, 20.0), ("b", "X", "D", 1000.0, 20.0)]
    closure = Closure(link="b", t_start_s=300.0, reason="flood")
    spec = TrafficSpec(
        build_network(links),
        [DemandWindow("O", "D", 0.0, 600.0, flow_vps=0.1)],
        closures=[closure],
        tmax_s=1800.0,
    )
    result = run(spec)
    trips = result.trips
    assert trips.completed_trips + trips.stranded_vehicles + trips.unfinished_vehicles == 60
    # those already past X before 300 s arrive, the rest are stranded at O or X
    assert trips.completed_trips == 25
    assert trips.stranded_vehicles == 35
    assert set(result.stranded_at) <= {"O", "X"}
    assert sum(result.stranded_at.values()) == 35
    assert result.clear_time_s is not None


def test_closing_one_of_two_lanes_halves_the_capacity() -> None:
    two_lanes = {
        "name": "road",
        "start_node": "O",
        "end_node": "D",
        "length": 2000.0,
        "free_flow_speed": 20.0,
        "number_of_lanes": 2,
        "jam_density": 0.4,
    }
    feeder = {"name": "feed", "start_node": "S", "end_node": "O", "length": 3000.0,
              "free_flow_speed": 20.0, "number_of_lanes": 2, "jam_density": 0.4}  # fmt: skip
    demand = [DemandWindow("S", "D", 0.0, 3600.0, flow_vps=1.5)]
    net = build_network([feeder, two_lanes])
    open_run = run(TrafficSpec(net, demand, tmax_s=3600.0, record_interval_s=60.0))
    incident = Closure(link="road", t_start_s=0.0, lanes=1, reason="accident")
    closed_run = run(
        TrafficSpec(net, demand, closures=[incident], tmax_s=3600.0, record_interval_s=60.0)
    )
    late = open_run.series.times_s > 1500
    w = 2 / (1.0 * 0.4)  # lanes / (reaction time * jam density)
    capacity = 20 * w * 0.4 / (20 + w)  # both lanes: 1.6 veh/s
    assert open_run.series.flow_vps[late, 1].mean() == pytest.approx(1.5, rel=0.03)
    assert closed_run.series.flow_vps[late, 1].mean() == pytest.approx(capacity / 2, rel=0.05)
    assert closed_run.series.queue_veh[late, 0].max() > 100
    assert closed_run.link_summary()["feed"]["worst_grade"] >= 3


def test_closures_must_name_known_links() -> None:
    from cim.errors import NotFoundError

    spec = TrafficSpec(build_network(ROUTES), LIGHT, closures=[Closure("nope", 10.0)])
    with pytest.raises(NotFoundError, match="nope"):
        run(spec)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"t_start_s": -1.0}, "t_start_s"),
        ({"t_start_s": 0.0, "duration_s": 0.0}, "duration_s"),
        ({"t_start_s": 0.0, "lanes": 0}, "lanes"),
    ],
)
def test_closure_arguments_are_checked(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Closure(link="a", **kwargs)  # type: ignore[arg-type]


def test_progress_is_reported_up_to_one() -> None:
    seen: list[float] = []
    run(
        TrafficSpec(build_network(ROUTES), LIGHT, tmax_s=1800.0),
        progress=lambda f, m: seen.append(f),
    )
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert seen == sorted(seen)


def test_a_link_shorter_than_a_platoon_is_refused() -> None:
    from scenarios.traffic import StabilityError

    spec = TrafficSpec(build_network([("tiny", "O", "D", 10.0, 10.0)]), LIGHT)
    with pytest.raises(StabilityError, match=r"'tiny' holds 2.0 vehicles .* one platoon of 5"):
        run(spec)
    assert run(TrafficSpec(spec.network, LIGHT, deltan=2)).trips.completed_trips == 60


def test_a_closed_link_still_empties() -> None:
    links = [("a", "O", "X", 500.0, 20.0), ("b", "X", "Y", 5000.0, 20.0), ("c", "Y", "D", 500, 20)]
    closure = Closure(link="b", t_start_s=400.0, reason="flood")
    spec = TrafficSpec(
        build_network(links),
        [DemandWindow("O", "D", 0.0, 600.0, flow_vps=0.5)],
        closures=[closure],
        tmax_s=3600.0,
    )
    result = run(spec)
    # platoons that entered b before 400 s (departed before 375 s) all arrive
    assert result.trips.completed_trips == 185
    assert result.trips.unfinished_vehicles == 0
    assert result.trips.stranded_vehicles == 300 - 185


def test_metering_holds_a_link_to_its_rate_then_lets_go() -> None:
    links = [("a", "O", "X", 1000.0, 20.0), ("b", "X", "D", 1000.0, 20.0)]
    demand = [DemandWindow("O", "D", 0.0, 1200.0, flow_vps=0.4)]
    free = run(TrafficSpec(build_network(links), demand, tmax_s=3600.0))
    metered = run(
        TrafficSpec(
            build_network(links),
            demand,
            meterings=[Metering(link="a", t_start_s=0.0, rate_vps=0.1, duration_s=1200.0)],
            tmax_s=3600.0,
        )
    )
    assert free.trips.completed_trips == metered.trips.completed_trips == 480
    # while metered, link a lets out 0.1 veh/s, a quarter of the demand; queues build upstream
    rows = metered.series.times_s <= 1200.0
    held = metered.series.flow_vps[rows & (metered.series.times_s >= 300.0), 0]
    assert held.mean() == pytest.approx(0.1, rel=0.15)
    assert metered.series.queue_veh[rows, 0].max() > 50
    assert metered.trips.average_travel_time_s > free.trips.average_travel_time_s + 300
    # after the measure the queue discharges at capacity and everyone arrives
    assert metered.clear_time_s is not None and metered.clear_time_s < 3600.0


def test_metering_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="rate_vps"):
        Metering(link="a", t_start_s=0.0, rate_vps=0.0)
    links = [("a", "O", "D", 1000.0, 20.0)]
    spec = TrafficSpec(
        build_network(links),
        [DemandWindow("O", "D", 0.0, 60.0, flow_vps=0.1)],
        meterings=[Metering(link="zz", t_start_s=0.0, rate_vps=0.1)],
    )
    with pytest.raises(Exception, match="zz"):
        run(spec)
