"""Scenes over HTTP: GLB of a site, subtree and object, scoped for pilots, valid glTF."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from denhaag_twin import SITE, Twin

from tests.render.gltf_validator import assert_valid


def _gltf_json(glb: bytes) -> dict[str, object]:
    magic, version, _length = struct.unpack_from("<4sII", glb)
    assert (magic, version) == (b"glTF", 2)
    chunk_length, chunk_type = struct.unpack_from("<I4s", glb, 12)
    assert chunk_type == b"JSON"
    document: dict[str, object] = json.loads(glb[20 : 20 + chunk_length])
    return document


def _codes(document: dict[str, object]) -> set[str]:
    nodes = document.get("nodes", [])
    assert isinstance(nodes, list)
    return {n["extras"]["code"] for n in nodes if "extras" in n and "code" in n["extras"]}


def test_site_and_object_glb_are_valid_and_cached(twin: Twin, tmp_path: Path) -> None:
    site = twin.client.get(f"/sites/{SITE}/scene.glb", headers=twin.headers("display"))
    assert site.status_code == 200
    assert site.headers["content-type"] == "model/gltf-binary"
    building = twin.client.get(
        f"/sites/{SITE}/objects/{twin.building.code}/scene.glb", headers=twin.headers("planner")
    )
    assert building.status_code == 200
    site_codes, building_codes = (
        _codes(_gltf_json(site.content)),
        _codes(_gltf_json(building.content)),
    )
    assert {twin.building.code, twin.other_building.code} <= site_codes
    assert building_codes == {twin.building.code} | {p.code for p in twin.parts}
    again = twin.client.get(
        f"/sites/{SITE}/scene.glb",
        headers={**twin.headers("admin"), "If-None-Match": site.headers["ETag"]},
    )
    assert again.status_code == 304
    files = []
    for name, body in (("site.glb", site.content), ("building.glb", building.content)):
        (tmp_path / name).write_bytes(body)
        files.append(tmp_path / name)
    assert_valid(files)


def test_pilot_exports_its_unit_and_nothing_else(twin: Twin) -> None:
    own = twin.client.get(f"/sites/{SITE}/scene.glb", headers=twin.headers("pilot"))
    assert own.status_code == 200
    assert _codes(_gltf_json(own.content)) == {twin.building.code} | {p.code for p in twin.parts}
    for path in (
        f"/sites/{SITE}/objects/{twin.other_building.code}/scene.glb",
        f"/sites/{SITE}/scene.glb?root={twin.other_building.code}",
        f"/sites/{SITE}/scene.glb?root={twin.building.code[:12]}",
    ):
        assert twin.client.get(path, headers=twin.headers("pilot")).status_code == 404, path


def test_bad_roots_are_refused(twin: Twin) -> None:
    bad = twin.client.get(f"/sites/{SITE}/scene.glb?root=../../etc", headers=twin.headers("admin"))
    assert bad.status_code == 422
    missing = twin.client.get(f"/sites/{SITE}/scene.glb?root=12345", headers=twin.headers("admin"))
    assert missing.status_code == 404
    assert twin.client.get(f"/sites/{SITE}/scene.glb").status_code == 401
    assert (
        twin.client.get(f"/sites/{SITE}/scene.glb", headers=twin.headers("device")).status_code
        == 403
    )
