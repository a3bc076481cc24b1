"""The `twin` command as a user runs it."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from api.cli import main
from tests.render.gltf_validator import assert_valid


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def walk_tiles(tile: dict[str, Any]) -> list[dict[str, Any]]:
    """A tile and all tiles under it."""
    return [tile, *(t for child in tile.get("children", []) for t in walk_tiles(child))]


def _file_counts(path: Path) -> dict[str, int]:
    lines = path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]
    docs = [json.loads(line) for line in lines if line.strip()]
    return dict(collections.Counter(o["type"] for d in docs for o in d["CityObjects"].values()))


@pytest.mark.parametrize(
    "name",
    [
        "denhaag_01/denhaag_01_lod2.city.json",
        "cityjson/delft_bgt_lod1.city.json",
        "cityjson/zurich_subset_lod2.city.json",
        "cityjson/3dbag_v210908_tile901_trimmed.city.jsonl",
    ],
)
def test_info_reports_exactly_the_file_counts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, assets: Path, name: str
) -> None:
    store = str(tmp_path / "t.db")
    path = assets / name
    code, _, err = _run(capsys, "--store", store, "import", str(path), "--site", "s", "--json")
    assert code == 0, err
    code, out, _ = _run(capsys, "--store", store, "info", "--json")
    assert code == 0
    info = json.loads(out)["sites"]["s"]
    assert info["objects"] == _file_counts(path)
    assert info["crs"].startswith("EPSG:")
    minx, miny, minz, maxx, maxy, maxz = info["bbox"]
    assert minx < maxx and miny < maxy and minz <= maxz


def test_info_bbox_is_in_the_projected_crs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, denhaag_path: Path
) -> None:
    store = str(tmp_path / "t.db")
    assert _run(capsys, "--store", store, "import", str(denhaag_path), "--site", "dh")[0] == 0
    info = json.loads(_run(capsys, "--store", store, "info", "--site", "dh", "--json")[1])
    doc = json.loads(denhaag_path.read_text())
    scale, translate = doc["transform"]["scale"], doc["transform"]["translate"]
    verts = doc["vertices"]
    expect_min = [min(v[a] for v in verts) * scale[a] + translate[a] for a in range(3)]
    expect_max = [max(v[a] for v in verts) * scale[a] + translate[a] for a in range(3)]
    assert info["sites"]["dh"]["crs"] == "EPSG:7415"
    assert info["sites"]["dh"]["bbox"] == pytest.approx(expect_min + expect_max, abs=1e-6)


def test_missing_crs_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, assets: Path
) -> None:
    store = str(tmp_path / "t.db")
    path = assets / "cityjson/rotterdam_subset.city.json"
    code, _, err = _run(capsys, "--store", store, "import", str(path), "--site", "r")
    assert code == 1
    assert "rotterdam_subset.city.json" in err and "--crs" in err
    assert "Traceback" not in err
    code, out, _ = _run(
        capsys,
        "--store",
        store,
        "import",
        str(path),
        "--site",
        "r",
        "--crs",
        "EPSG:28992",
        "--json",
    )
    assert code == 0 and json.loads(out)[0]["objects"] == 16


def test_tree_and_query(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, denhaag_path: Path
) -> None:
    store = str(tmp_path / "t.db")
    _run(capsys, "--store", store, "import", str(denhaag_path), "--site", "dh")
    code, out, _ = _run(capsys, "--store", store, "tree", "990100", "--depth", "3", "--json")
    assert code == 0
    tree = json.loads(out)["tree"]
    assert tree["kind"] == "District"
    street = next(c for c in tree["children"] if c["kind"] == "Street")
    community = street["children"][0]
    assert community["kind"] == "Community"
    assert {c["kind"] for c in community["children"]} == {"GridCell"}

    code, out, _ = _run(
        capsys,
        "--store",
        store,
        "query",
        "--bbox",
        "78500,457800,78700,457950",
        "--kind",
        "Building",
        "--json",
    )
    buildings = json.loads(out)["sites"]["dh"]
    assert code == 0 and len(buildings) > 10
    assert {b["kind"] for b in buildings} == {"Building"}
    first = buildings[0]
    cell = first["parent"]
    code, out, _ = _run(capsys, "--store", store, "query", "--prefix", cell, "--json")
    assert first["code"] in {o["code"] for o in json.loads(out)["sites"]["dh"]}

    code, _, err = _run(capsys, "--store", store, "tree", "nope")
    assert code == 1 and "no object 'nope'" in err

    glb = tmp_path / "out" / "building.glb"
    code, out, _ = _run(
        capsys, "--store", store, "export", first["code"], "--out", str(glb), "--json"
    )
    assert code == 0
    assert json.loads(out)["bytes"] == glb.stat().st_size > 1000
    assert glb.read_bytes()[:4] == b"glTF"
    assert_valid([glb])
    code, _, err = _run(capsys, "--store", store, "export", "nope", "--out", str(glb))
    assert code == 1 and "no object 'nope'" in err

    out_dir = tmp_path / "tiles"
    code, out, _ = _run(capsys, "--store", store, "tiles", "--out", str(out_dir), "--json")
    assert code == 0
    summary = json.loads(out)
    tileset = json.loads((out_dir / "tileset.json").read_text())
    assert tileset["asset"]["version"] == "1.1"
    written = sorted(out_dir.rglob("*.glb"))
    assert len(written) == summary["tiles"] > 1
    uris = [n["content"]["uri"] for n in walk_tiles(tileset["root"]) if "content" in n]
    assert sorted(out_dir / u for u in uris) == written
    code, _, err = _run(capsys, "--store", store, "tiles", "--site", "nope", "--out", str(out_dir))
    assert code == 1 and "nope" in err


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--store", str(tmp_path / "t.db"), "query", "--bbox", "1,2,nan,4"])
    assert info.value.code == 2
    assert "--bbox must be 4 finite numbers" in capsys.readouterr().err


def test_skip_imported(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, denhaag_path: Path
) -> None:
    store = str(tmp_path / "t.db")
    argv = ["--store", store, "import", str(denhaag_path), "--site", "dh", "--skip-imported"]
    assert _run(capsys, *argv)[0] == 0
    code, _, err = _run(capsys, *argv)
    assert code == 0 and "skipped" in err


def test_installed_entry_point(tmp_path: Path, denhaag_path: Path) -> None:
    twin = Path(sys.executable).parent / "twin"
    store = str(tmp_path / "t.db")
    done = subprocess.run(
        [twin, "--store", store, "import", str(denhaag_path), "--site", "dh"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [twin, "--store", store, "info", "--json"], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout)["sites"]["dh"]["objects"]["Building"] == 844


def test_bad_division_is_refused_before_parsing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, denhaag_path: Path
) -> None:
    store = str(tmp_path / "t.db")
    code, _, err = _run(capsys, "--store", store, "import", str(denhaag_path), "--division", "123")
    assert code == 2 and "division(='123') must be 12 digits" in err
    code, out, _ = _run(capsys, "--store", store, "info", "--json")
    assert json.loads(out) == {"sites": {}}


def test_live_demo_sensor_is_made_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, denhaag_path: Path
) -> None:
    from twin.live import LiveTwin

    store = str(tmp_path / "t.db")
    _run(capsys, "--store", store, "import", str(denhaag_path), "--site", "dh", "--json")
    state = tmp_path / "demo.json"
    code, out, _ = _run(
        capsys, "--store", store, "live-demo", "--site", "dh", "--state", str(state)
    )
    assert code == 0
    again = _run(capsys, "--store", store, "live-demo", "--site", "dh", "--state", str(state))
    assert again[1] == out
    live = LiveTwin(store)
    try:
        stream = live.sta.read(f"Datastreams({int(out)})", {"$expand": "Thing"}, "")
        assert live.alerts.rules and len(live.alerts.rules) == 1
    finally:
        live.close()
    thing_code = stream["Thing"]["properties"]["cimCode"]
    code, out, _ = _run(capsys, "--store", store, "query", "--prefix", thing_code, "--json")
    assert json.loads(out)["sites"]["dh"][0]["kind"] == "Building"
    code, _, err = _run(capsys, "--store", store, "live-demo", "--site", "nope")
    assert code == 1 and "nope" in err


def test_live_demo_unit_puts_a_people_counter_in_every_room(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, denhaag_path: Path
) -> None:
    from twin.live import LiveTwin
    from twin.replay import load_recording

    store = str(tmp_path / "t.db")
    _run(capsys, "--store", store, "import", str(denhaag_path), "--site", "dh", "--json")
    state = tmp_path / "demo.json"
    args = ("--store", store, "live-demo", "--site", "dh", "--unit", "--state", str(state))
    code, _, err = _run(capsys, *args)
    assert code == 1 and "no IFC building" in err
    duplex = Path(__file__).parent.parent / "assets" / "ifc" / "Duplex_A_20110907.ifc"
    imported = _run(
        capsys, "--store", store, "import", "--site", "dh", "--at=78600,457900,30", str(duplex)
    )
    assert imported[0] == 0
    code, out, _ = _run(capsys, *args)
    assert code == 0
    recording = Path(out.strip())
    made = json.loads((tmp_path / "demo-unit.json").read_text())
    assert len(made["datastreams"]) == 21  # every IfcSpace of the Duplex
    assert _run(capsys, *args)[1] == out  # made once
    assert json.loads((tmp_path / "demo-unit.json").read_text()) == made
    played = load_recording(recording, "people")
    assert set(played.datastreams.tolist()) == set(made["datastreams"].values())
    assert len(played.offsets_s) == 21 * 67 and played.values.min() >= 0
    live = LiveTwin(store)
    try:
        for code_, ident in made["datastreams"].items():
            stream = live.sta.read(f"Datastreams({ident})", {"$expand": "Thing"}, "")
            assert stream["Thing"]["properties"]["cimCode"] == code_
        assert [r.observed_property for r in live.alerts.rules.values()] == ["people count"]
    finally:
        live.close()


def test_keys_if_missing_replaces_a_key_of_a_store_made_anew(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store, out = str(tmp_path / "t.db"), tmp_path / "admin.key"
    args = ("--store", store, "keys", "create", "--role", "admin", "--output", str(out))
    code, first, _ = _run(capsys, *args, "--if-missing")
    assert code == 0 and out.read_text().strip() == first.strip()
    assert _run(capsys, *args, "--if-missing")[1] == ""  # kept: the store knows it
    for made in tmp_path.glob("t.db*"):  # the store (which holds the keys) is made anew
        made.unlink()
    code, second, _ = _run(capsys, *args, "--if-missing")
    assert code == 0 and second.strip() and second != first
    assert out.read_text().strip() == second.strip()


def test_store_after_the_command_is_the_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, assets: Path
) -> None:
    # argparse once read `--store` as an abbreviation of `--storey-height`
    store = str(tmp_path / "after.db")
    houses = assets / "merewether" / "merewether_houses_epsg32756.geojson"
    argv = ["import", str(houses), "--store", store, "--site", "m", "--default-height", "6"]
    code, _, err = _run(capsys, *argv)
    assert code == 0, err
    for argv in (["--store", store, "info", "--json"], ["info", "--store", store, "--json"]):
        code, out, err = _run(capsys, *argv)
        assert code == 0, err
        assert json.loads(out)["sites"]["m"]["objects"]["Building"] == len(
            json.loads(houses.read_text())["features"]
        )
    # given on both sides, the one after the command wins (it is the nearer)
    other = str(tmp_path / "other.db")
    code, out, _ = _run(capsys, "--store", other, "info", "--store", store, "--json")
    assert code == 0 and "m" in json.loads(out)["sites"]


def test_no_option_is_taken_for_an_abbreviation(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = str(tmp_path / "t.db")
    for argv in (
        ["--sto", store, "info"],
        ["--store", store, "import", "x.geojson", "--storey", "3"],
        ["--store", store, "query", "--bb", "1,2,3,4"],
        ["--store", store, "keys", "create", "--ro", "admin"],
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert ": error:" in err and "invalid float value" not in err, err
