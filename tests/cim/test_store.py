"""The store on both engines (SQLite file and the real PostgreSQL server): imports are
complete or absent, codes are stable, and a re-opened store needs no source files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cim import importer as importer_module
from cim.errors import CRSError, SourceError, StoreError
from cim.importer import import_source
from cim.loaders import LoadOptions
from cim.store import Store, open_store
from cim.store.base import ImportPlan


def _snapshot(store: Store) -> dict[str, Any]:
    """Everything a user can read from the store."""
    out: dict[str, Any] = {}
    for site in store.sites():
        objects = sorted(store.all_objects(site.name), key=lambda o: o.code)
        out[site.name] = {
            "site": site,
            "sources": [(s["key"], s["sha256"], s["objects"]) for s in store.sources(site.name)],
            "objects": [
                (
                    o.code,
                    o.kind,
                    o.parent,
                    o.source_id,
                    o.bbox,
                    json.dumps(o.attributes),
                    None if o.footprint is None else o.footprint.wkb,
                    o.chunk,
                    o.index,
                )
                for o in objects
            ],
            "rasters": store.raster_codes(site.name),
        }
    return out


def test_import_counts_and_reopen_without_sources(
    store_url: str, denhaag_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / denhaag_path.name
    shutil.copy(denhaag_path, source)
    store = open_store(store_url)
    report = import_source(store, source, site="denhaag")
    assert report.kinds == {"Building": 844, "BuildingPart": 1653, "TINRelief": 1}
    before = _snapshot(store)
    part = next(o for o in store.all_objects("denhaag") if o.kind == "BuildingPart")
    mesh_before = store.mesh_columns("denhaag", part.chunk).to_trimesh(part.index)
    store.close()

    source.unlink()  # the store must not need the file again
    monkeypatch.setattr(importer_module, "load_source", _forbidden)
    reopened = open_store(store_url)
    try:
        assert _snapshot(reopened) == before
        assert reopened.kind_counts("denhaag") == report.kinds
        mesh = reopened.mesh_columns("denhaag", part.chunk).to_trimesh(part.index)
        np.testing.assert_array_equal(mesh.vertices, mesh_before.vertices)
        np.testing.assert_array_equal(mesh.faces, mesh_before.faces)
        assert mesh.is_watertight == mesh_before.is_watertight
        lo, hi = mesh.bounds
        np.testing.assert_allclose([*lo, *hi], part.bbox)
    finally:
        reopened.close()


def _forbidden(*args: object, **kwargs: object) -> None:
    raise AssertionError("re-opening the store parsed a source file")


def test_same_file_twice_gives_the_same_codes(store: Store, denhaag_path: Path) -> None:
    import_source(store, denhaag_path, site="a")
    first = store.codes_of_source("a", denhaag_path.name)
    import_source(store, denhaag_path, site="a")
    assert store.codes_of_source("a", denhaag_path.name) == first
    assert store.kind_counts("a") == {"Building": 844, "BuildingPart": 1653, "TINRelief": 1}
    # into another site of the same store: the same numbers under a street of its own (codes
    # are unique in the store), and the terrain numbered after the first site's
    import_source(store, denhaag_path, site="b")
    second = store.codes_of_source("b", denhaag_path.name)
    assert second.keys() == first.keys()
    terrain = {k for k, v in first.items() if "T" in v}
    assert len(terrain) == 1
    for key in first.keys() - terrain:
        a, b = first[key], second[key]
        assert (a[6:9], b[6:9]) == ("001", "002") and a[:6] + a[9:] == b[:6] + b[9:]
    (t,) = terrain
    assert (first[t], second[t]) == ("990100T0001", "990100T0002")


def test_missing_crs_is_refused_then_accepted_when_given(store: Store, assets: Path) -> None:
    path = assets / "cityjson/rotterdam_subset.city.json"
    with pytest.raises(CRSError, match=r"declares no coordinate reference system.*--crs"):
        import_source(store, path, site="rotterdam")
    assert store.sites() == []
    report = import_source(store, path, site="rotterdam", options=LoadOptions(crs="EPSG:28992"))
    assert report.crs == "EPSG:28992"
    assert store.kind_counts("rotterdam") == {"Building": 16}


def _bad_copies(tmp_path: Path, assets: Path) -> list[tuple[Path, str]]:
    source = assets / "cityjson/rotterdam_subset.city.json"
    raw = source.read_bytes()
    truncated = tmp_path / "truncated.city.json"
    truncated.write_bytes(raw[: len(raw) * 2 // 3])
    doc = json.loads(raw)
    victim = "{C9D4A5CF-094A-47DA-97E4-4A3BFD75D3AE}"
    doc["metadata"] = {"referenceSystem": "https://www.opengis.net/def/crs/EPSG/0/7415"}
    out_of_range = json.loads(json.dumps(doc))
    out_of_range["CityObjects"][victim]["geometry"][0]["boundaries"][3][0][0] = 10**7
    (tmp_path / "range.city.json").write_text(json.dumps(out_of_range))
    invalid = json.loads(json.dumps(doc))
    invalid["CityObjects"][victim]["geometry"][0]["boundaries"][2] = [[4, 5]]
    (tmp_path / "polygon.city.json").write_text(json.dumps(invalid))
    return [
        (truncated, "not valid JSON"),
        (tmp_path / "range.city.json", "out of range"),
        (tmp_path / "polygon.city.json", "invalid polygon"),
    ]


def test_bad_files_leave_the_store_exactly_as_it_was(
    store: Store, denhaag_path: Path, assets: Path, tmp_path: Path
) -> None:
    import_source(store, denhaag_path, site="nl")
    before = _snapshot(store)
    for path, reason in _bad_copies(tmp_path, assets):
        with pytest.raises(SourceError, match=reason) as info:
            import_source(store, path, site="nl", options=LoadOptions(crs="EPSG:7415"))
        assert path.name in str(info.value)
        if reason != "not valid JSON":
            assert info.value.object_id == "{C9D4A5CF-094A-47DA-97E4-4A3BFD75D3AE}"
        assert _snapshot(store) == before


def test_a_failure_while_writing_rolls_everything_back(
    store: Store, denhaag_path: Path, assets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_source(store, denhaag_path, site="nl")
    before = _snapshot(store)
    original = type(store)._object_rows

    def failing_rows(site: str, objects: list, chunk: int | None) -> list:
        rows = original(site, objects, chunk)
        if objects and objects[0].source:  # fail after the deletes and the geometry
            raise RuntimeError("disk full")
        return rows

    monkeypatch.setattr(type(store), "_object_rows", staticmethod(failing_rows))
    with pytest.raises(StoreError, match="disk full"):
        import_source(store, denhaag_path, site="nl")  # a re-import: deletes come first
    with pytest.raises(StoreError):
        import_source(store, assets / "cityjson/zurich_subset_lod2.city.json", site="new")
    monkeypatch.undo()
    assert _snapshot(store) == before


def test_plan_with_duplicate_codes_is_rejected_whole(store: Store, denhaag_path: Path) -> None:
    import_source(store, denhaag_path, site="nl")
    before = _snapshot(store)
    plan = importer_module._plan  # build a plan, then corrupt it
    captured: list[ImportPlan] = []

    def capture(*args: Any) -> ImportPlan:
        result = plan(*args)
        result.objects[1].code = result.objects[0].code
        captured.append(result)
        return result

    importer_module._plan = capture  # type: ignore[assignment]
    try:
        with pytest.raises(StoreError):
            import_source(store, denhaag_path, site="nl")
    finally:
        importer_module._plan = plan  # type: ignore[assignment]
    assert captured
    assert _snapshot(store) == before


def test_schema_version_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = open_store(path)
    with store.transaction() as cur:
        cur.execute("UPDATE meta SET value = '0' WHERE key = 'schema'")
    store.close()
    with pytest.raises(StoreError, match="schema version 0"):
        open_store(path)


def test_unreachable_postgres_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot connect"):
        open_store("postgresql://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
