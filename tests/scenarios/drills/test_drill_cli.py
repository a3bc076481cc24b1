"""``twin run NAME --spec FILE.json``: the body of ``POST /drills/NAME`` from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from drill_sites import Sites

from api.cli import main


def _spec(tmp_path: Path, body: object) -> str:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(body))
    return str(path)


def test_twin_run_traffic_from_a_spec_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path, {"network": "tokyo_arterial", "tmax_s": 1800})
    store = str(tmp_path / "t.db")
    assert main(["--store", store, "run", "traffic", "--spec", spec, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["vehicles"] == 10800
    assert set(out) >= {"summary", "trips", "series", "link_summary", "closures", "out_dir"}
    assert Path(out["out_dir"]).is_dir()
    # the same drill by its shorthand flags
    prefix = str(Path(__file__).parents[3] / "assets" / "traffic" / "tokyo_arterial")
    assert main(["run", "traffic", "--network", prefix, "--tmax", "1800", "--json"]) == 0
    flags = json.loads(capsys.readouterr().out)
    assert {k: v for k, v in flags.items() if k != "wall_s"} == {
        k: v for k, v in out["summary"].items() if k != "wall_s"
    }


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"network": "tokyo_arterial", "tmax_s": -5}, 2, "tmax_s: Input should be greater than 0"),
        (
            {"network": "tokyo_arterial", "closures": [{"link": "a", "t_start_s": -1}]},
            2,
            "closures[0].t_start_s",
        ),
        ({"network": "tokyo_arterial", "speed": 3}, 2, "speed: Extra inputs are not permitted"),
        ([1, 2], 2, "body: Input should be"),
        ({"network": "nowhere"}, 1, "known: tokyo_arterial"),
        (
            {"network": "tokyo_arterial", "closures": [{"link": "zz", "t_start_s": 0}]},
            1,
            "no link named or coded 'zz'",
        ),
    ],
)
def test_a_bad_spec_file_is_one_line_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: object, code: int, message: str
) -> None:
    spec = _spec(tmp_path, body)
    store = str(tmp_path / "t.db")
    assert main(["--store", store, "run", "traffic", "--spec", spec, "--json"]) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_without_spec_the_shorthand_flags_are_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "traffic", "--json"]) == 2
    assert "--network" in capsys.readouterr().err
    assert main(["run", "crowd", "--venue", "x.wkt", "--json"]) == 2
    assert "--agents" in capsys.readouterr().err


def test_twin_run_flood_on_a_site_writes_its_files_to_out_dir(
    sites: Sites, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storm = {"formula": "shanghai-2017", "return_period_a": 50, "duration_min": 60}
    spec = _spec(tmp_path, {"site": "merewether", "storm": storm, "duration_s": 1800, "cell_m": 8})
    out_dir = tmp_path / "run"
    argv = ["--store", str(sites.path), "run", "flood", "--spec", spec, "--out-dir", str(out_dir)]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["out_dir"] == str(out_dir)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(out["files"].values())
    assert [c["code"] for c in out["closures"]] == [sites.road]
    assert out["summary"]["rain_mm"] == pytest.approx(88.83, abs=0.01)
