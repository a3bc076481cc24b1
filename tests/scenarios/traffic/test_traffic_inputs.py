"""Readers (UXsim CSV form, closure lists), the CLI contract, and the shipped Tokyo network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from api.cli import main
from cim.errors import SourceError
from scenarios.traffic import (
    Result,
    TrafficSpec,
    load_closures,
    load_uxsim_csv,
    run,
)

CONTRACT = {
    "vehicles",
    "completed_trips",
    "total_travel_time_s",
    "average_travel_time_s",
    "average_delay_s",
    "wall_s",
}


@pytest.fixture
def tokyo(assets: Path) -> str:
    return str(assets / "traffic" / "tokyo_arterial")


def _write(tmp_path: Path, nodes: str, links: str, demand: str) -> str:
    prefix = tmp_path / "net"
    Path(f"{prefix}_nodes.csv").write_text(nodes)
    Path(f"{prefix}_links.csv").write_text(links)
    Path(f"{prefix}_demand.csv").write_text(demand)
    return str(prefix)


NODES = "name,x,y\nA,0,0\nB,1,0\nC,2,0\n"
LINKS = "name,start_node,end_node,length,free_flow_speed\nab,A,B,1000,20\nbc,B,C,500,10\n"
DEMAND = "orig,dest,t_start,t_end,flow,volume\nA,C,0,100,-1,50\n"


def test_tokyo_network_reads_into_arrays_and_a_graph(tokyo: str) -> None:
    network, demand = load_uxsim_csv(tokyo)
    assert (network.n_nodes, network.n_links, len(demand)) == (220, 522, 40)
    assert network.link_names[0] == "0新大橋通り"
    assert network.road_class[0] == "arterial"
    assert network.length_m.sum() == pytest.approx(612460.936, abs=0.01)
    graph = network.graph()
    assert graph.number_of_nodes() == 220 and graph.number_of_edges() == 522
    assert graph.edges["10276762426", "31254272", "0新大橋通り"]["length_m"] == pytest.approx(
        522.7896733
    )


def test_tokyo_drill_gives_sane_totals(tokyo: str) -> None:
    network, demand = load_uxsim_csv(tokyo)
    result = run(TrafficSpec(network, demand, seed=1))
    trips = result.trips
    assert trips.vehicles == 10800  # 40 OD pairs x 0.15 veh/s x 1800 s
    assert 0.9 * trips.vehicles <= trips.completed_trips <= trips.vehicles
    assert trips.completed_trips + trips.unfinished_vehicles + trips.stranded_vehicles == 10800
    assert trips.stranded_vehicles == 0
    assert 300 < trips.average_travel_time_s < 3000
    assert 0 < trips.average_delay_s < trips.average_travel_time_s
    summary = result.link_summary()
    assert len(summary) == 522
    assert {v["worst_grade"] for v in summary.values()} <= {0, 1, 2, 3, 4}
    assert result.series.grade.max() == 4  # some arterials jam
    assert result.series.vehicles[-1].sum() == trips.unfinished_vehicles


def test_same_seed_same_result_other_seed_other_result(tokyo: str) -> None:
    network, demand = load_uxsim_csv(tokyo)
    first = run(TrafficSpec(network, demand, seed=5, tmax_s=2400.0)).to_dict()
    second = run(TrafficSpec(network, demand, seed=5, tmax_s=2400.0)).to_dict()
    other = run(TrafficSpec(network, demand, seed=6, tmax_s=2400.0)).to_dict()
    for data in (first, second, other):
        data.pop("wall_s")
        data["summary"].pop("wall_s")
    assert first == second
    assert first["series"] != other["series"]


def test_result_round_trips_through_json(tokyo: str) -> None:
    network, demand = load_uxsim_csv(tokyo)
    result = run(TrafficSpec(network, demand, tmax_s=1200.0))
    data = json.loads(json.dumps(result.to_dict()))
    back = Result.from_dict(data)
    assert back.summary() == result.summary()
    assert np.array_equal(back.series.grade, result.series.grade)
    features = result.features()
    assert set(features["features"]) == set(network.link_codes)
    assert len(features["features"][network.link_codes[0]]["grade"]) == len(features["times_s"])


def test_spec_round_trips_through_json(tokyo: str) -> None:
    network, demand = load_uxsim_csv(tokyo)
    spec = TrafficSpec(network, demand[:3], tmax_s=900.0, seed=2)
    back = TrafficSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert back.to_dict() == spec.to_dict()
    assert run(back).summary()["completed_trips"] == run(spec).summary()["completed_trips"]


@pytest.mark.parametrize(
    ("which", "text", "message"),
    [
        ("links", LINKS.replace("1000", "ten"), r"net_links.csv.*line 2: length='ten'"),
        ("links", LINKS.replace("bc,B,C", "bc,B,Z"), r"line 3: end_node 'Z' is not a known node"),
        ("links", LINKS.replace(",10\n", ",-10\n"), r"free_flow_speed='-10' must be > 0"),
        ("links", LINKS.replace(",10\n", ",nan\n"), r"not finite"),
        ("links", "name,start_node,end_node\nab,A,B\n", r"missing columns"),
        ("nodes", NODES + "A,3,0\n", r"net_nodes.csv.*line 5: duplicate node name"),
        ("demand", DEMAND.replace("A,C", "A,Q"), r"net_demand.csv.*dest 'Q'"),
        ("demand", DEMAND.replace("0,100", "100,0"), r"t_start < t_end"),
    ],
)
def test_malformed_csv_names_file_and_line(
    tmp_path: Path, which: str, text: str, message: str
) -> None:
    files = {"nodes": NODES, "links": LINKS, "demand": DEMAND, which: text}
    prefix = _write(tmp_path, files["nodes"], files["links"], files["demand"])
    with pytest.raises(SourceError, match=message):
        load_uxsim_csv(prefix)


def test_closure_files_are_checked(tmp_path: Path) -> None:
    prefix = _write(tmp_path, NODES, LINKS, DEMAND)
    network, _ = load_uxsim_csv(prefix)
    good = tmp_path / "closures.json"
    good.write_text(
        json.dumps(
            [{"link": "bc", "t_start_s": 10, "duration_s": None, "lanes": None, "reason": "flood"}]
        )
    )
    assert load_closures(good, network)[0].reason == "flood"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"link": "zz", "t_start_s": 10}]))
    with pytest.raises(SourceError, match=r"bad.json.*event 0: no link named or coded 'zz'"):
        load_closures(bad, network)
    bad.write_text("[{")
    with pytest.raises(SourceError, match="not JSON"):
        load_closures(bad)
    bad.write_text(json.dumps([{"link": "ab", "t_start_s": -5}]))
    with pytest.raises(SourceError, match="t_start_s"):
        load_closures(bad)


def test_cli_prints_the_contract(tokyo: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "traffic", "--network", tokyo, "--json", "--tmax", "1800"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == CONTRACT
    assert out["vehicles"] == 10800
    assert out["average_travel_time_s"] * out["completed_trips"] == pytest.approx(
        out["total_travel_time_s"], rel=1e-6
    )


def test_cli_closes_roads_and_writes_the_full_result(
    tokyo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "flood.json"
    events.write_text(json.dumps([{"link": "1海岸通り", "t_start_s": 0, "duration_s": 600}]))
    output = tmp_path / "result.json"
    argv = ["run", "traffic", "--network", tokyo, "--json", "--tmax", "1800"]
    argv += ["--close", "0新大橋通り@300+900/1", "--closures", str(events), "--output", str(output)]
    assert main(argv) == 0
    assert set(json.loads(capsys.readouterr().out)) == CONTRACT
    full = json.loads(output.read_text())
    assert [c["link"] for c in full["closures"]] == ["0新大橋通り", "1海岸通り"]
    assert full["closures"][0] == {
        "link": "0新大橋通り",
        "t_start_s": 300.0,
        "duration_s": 900.0,
        "lanes": 1,
        "reason": "cli",
    }
    assert len(full["link_summary"]) == 522


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prefix = _write(tmp_path, NODES, LINKS.replace("1000", "ten"), DEMAND)
    assert main(["run", "traffic", "--network", prefix, "--json"]) == 1
    assert "line 2: length='ten'" in capsys.readouterr().err
    good = _write(tmp_path, NODES, LINKS, DEMAND)
    assert main(["run", "traffic", "--network", good, "--json", "--close", "xx@10"]) == 1
    assert "no link named or coded 'xx'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["run", "traffic", "--network", good, "--close", "ab@soon"])
    assert exc.value.code == 2


def test_cli_plain_output_says_where_queues_formed(
    tokyo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "traffic", "--network", tokyo, "--tmax", "3600"]) == 0
    captured = capsys.readouterr()
    assert "completed_trips: " in captured.out
    assert "longest_queues:" in captured.out
    assert "peak queue" in captured.out
    assert "100%" in captured.err  # the progress bar
