"""`twin import` of drainage and walkway networks, and `twin info` counting their kinds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_swmm_import_needs_crs_and_info_counts_the_network(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, assets: Path
) -> None:
    store = str(tmp_path / "t.db")
    path = str(assets / "swmm" / "bellinge_small.inp")
    code, _, err = _run(capsys, "--store", store, "import", path, "--site", "b")
    assert code == 1
    assert "bellinge_small.inp" in err and "--crs" in err and "Traceback" not in err
    code, _, err = _run(
        capsys, "--store", store, "import", path, "--site", "b", "--crs", "EPSG:32632"
    )
    assert code == 0, err
    osm = str(assets / "crowd" / "west_oakland.osm")
    code, _, err = _run(capsys, "--store", store, "import", osm, "--site", "o")
    assert code == 0, err
    code, out, _ = _run(capsys, "--store", store, "info", "--json")
    assert code == 0
    sites = json.loads(out)["sites"]
    assert sites["b"]["objects"] == {
        "DrainageNetwork": 1,
        "Manhole": 15,
        "Outfall": 1,
        "Conduit": 15,
        "Subcatchment": 13,
        "RainGage": 1,
    }
    assert sites["b"]["crs"] == "EPSG:32632"
    assert sites["o"]["objects"] == {"Road": 24, "Walkway": 7}
