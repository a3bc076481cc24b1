"""``twin run flood`` as a user runs it: the JSON contract and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_network_run_prints_the_contract(
    capsys: pytest.CaptureFixture[str], swmm_dir: Path
) -> None:
    code, out, _ = _run(
        capsys,
        "run",
        "flood",
        "--inp",
        str(swmm_dir / "bellinge_small.inp"),
        "--duration",
        "3600",
        "--probe",
        "583337.4,6132947.8",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["total_flood_volume_m3"] == 0.0
    assert data["node_flood_volume_m3"] == {}
    assert data["outfall_peak_flow_m3s"]["G72F050_outfall"] == pytest.approx(0.2978, rel=0.05)
    assert data["wall_s"] > 0
    probe = data["probes"][0]
    assert probe["node"] == "G72F820" and probe["distance_m"] < 0.1
    assert probe["peak_stage_m"] == pytest.approx(23.369 + probe["peak_depth_m"])


def test_storm_floods_and_names_nodes(capsys: pytest.CaptureFixture[str], swmm_dir: Path) -> None:
    code, out, _ = _run(
        capsys,
        "run",
        "flood",
        "--inp",
        str(swmm_dir / "bellinge_small.inp"),
        "--storm",
        "shanghai-2017:5:120",
        "--duration",
        "10800",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["total_flood_volume_m3"] == pytest.approx(944.0, rel=0.10)  # SWMM: 943.98 m3
    assert max(data["node_flood_volume_m3"], key=data["node_flood_volume_m3"].get) == "G72F821"


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--pump-fail", "P9@10"], 1, "no pump 'P9'"),
        (["--pump-fail", "P9"], 2, "NAME@SECONDS"),
        (["--storm", "atlantis:5:120"], 2, "formula(=atlantis)"),
    ],
)
def test_bad_input_is_one_line(
    capsys: pytest.CaptureFixture[str], swmm_dir: Path, argv: list[str], code: int, message: str
) -> None:
    if code == 2 and "@" not in argv[-1] and ":" not in argv[-1]:
        with pytest.raises(SystemExit) as exc:
            main(["run", "flood", "--inp", str(swmm_dir / "bellinge_small.inp"), *argv])
        assert exc.value.code == 2
        assert message in capsys.readouterr().err
        return
    got, _, err = _run(capsys, "run", "flood", "--inp", str(swmm_dir / "bellinge_small.inp"), *argv)
    assert got == code
    assert message in err and "Traceback" not in err


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(capsys, "run", "flood", "--inp", str(tmp_path / "none.inp"), "--json")
    assert code == 1
    assert "none.inp: cannot read" in err
