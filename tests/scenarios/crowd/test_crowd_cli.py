"""``twin run crowd`` as a user runs it: the JSON contract, measures, clear errors."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from api.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_contract_keys_and_values(capsys: pytest.CaptureFixture[str], two_exit_hall: Path) -> None:
    code, out, _ = _run(
        capsys,
        "run",
        "crowd",
        "--venue",
        str(two_exit_hall),
        "--agents",
        "300",
        "--seed",
        "4",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert list(data) == [
        "agents",
        "evacuation_time_s",
        "t90_s",
        "max_density_pm2",
        "exit_flows",
        "wall_s",
    ]
    assert data["agents"] == 300
    assert sum(data["exit_flows"].values()) == 300
    assert set(data["exit_flows"]) == {"0", "1"}
    assert 0 < data["t90_s"] <= data["evacuation_time_s"]
    # the farthest corner of the hall is ~19 m from an exit: T100 is at least that walk
    assert data["evacuation_time_s"] > 19.0 / 1.86


def test_measures_from_the_command_line(
    capsys: pytest.CaptureFixture[str], two_exit_hall: Path, tmp_path: Path
) -> None:
    png = tmp_path / "map.png"
    code, out, _ = _run(
        capsys,
        "run",
        "crowd",
        "--venue",
        str(two_exit_hall),
        "--agents",
        "200",
        "--close-exit",
        "1@0",
        "--meter-exit",
        "0:5@0",
        "--png",
        str(png),
        "--details",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["exit_flows"] == {"0": 200, "1": 0}
    assert png.exists() and data["density_png"] == str(png)
    assert data["zones"] and "alerts" in data


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--close-exit", "x@3"], "exit index must be a whole number, got 'x'"),
        (["--meter-exit", "0"], "expected I:RATE"),
        (["--release", "-4"], "expected a finite number >= 0"),
    ],
)
def test_bad_options_are_usage_errors(
    capsys: pytest.CaptureFixture[str], two_exit_hall: Path, argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "crowd", "--venue", str(two_exit_hall), "--agents", "10", *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_unknown_exit_is_exit_2(capsys: pytest.CaptureFixture[str], two_exit_hall: Path) -> None:
    code, _, err = _run(
        capsys,
        "run",
        "crowd",
        "--venue",
        str(two_exit_hall),
        "--agents",
        "10",
        "--close-exit",
        "9@0",
        "--json",
    )
    assert code == 2
    assert err.strip() == "twin: error: exit(=9) must be in 0..1"


def test_bad_venue_file_is_exit_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "venue.wkt"
    bad.write_text("GEOMETRYCOLLECTION (POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0)))")
    code, _, err = _run(capsys, "run", "crowd", "--venue", str(bad), "--agents", "5", "--json")
    assert code == 1
    assert str(bad) in err and "needs walkable area and exits" in err


def test_zone_frames_for_the_viewer(
    capsys: pytest.CaptureFixture[str], two_exit_hall: Path, tmp_path: Path
) -> None:
    frames = tmp_path / "frames.jsonl"
    code, out, _ = _run(
        capsys,
        "run",
        "crowd",
        "--venue",
        str(two_exit_hall),
        "--agents",
        "300",
        "--frames",
        str(frames),
        "--json",
    )
    assert code == 0
    lines = [json.loads(line) for line in frames.read_text().splitlines()]
    times = [f["t"] for f in lines]
    assert times[0] == 0.0 and all(b - a >= 10.0 - 1e-6 for a, b in itertools.pairwise(times[:-1]))
    assert lines[0]["density"] and max(lines[0]["density"].values()) > 0
    assert lines[-1]["density"] == {}  # everyone is out at the last frame
    assert times[-1] == json.loads(out)["evacuation_time_s"]
