"""The site tileset over HTTP: built as a job on first request, then served from the cache."""

from __future__ import annotations

import time
from typing import Any

from denhaag_twin import SITE, Twin


def _content_uris(tile: dict[str, Any]) -> list[str]:
    uris = [c["uri"] for c in ([tile["content"]] if "content" in tile else [])]
    uris += [c["uri"] for c in tile.get("contents", [])]
    for child in tile.get("children", []):
        uris += _content_uris(child)
    return uris


def _built_tileset(twin: Twin, role: str = "display") -> dict[str, Any]:
    path = f"/sites/{SITE}/tiles/tileset.json"
    first = twin.client.get(path, headers=twin.headers(role))
    if first.status_code == 202:
        job = first.json()
        assert first.headers["Location"] == f"/jobs/{job['id']}"
        assert job["kind"] == "tiles"
        deadline = time.monotonic() + 120
        while job["state"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline, "the tileset job did not finish"
            time.sleep(0.2)
            job = twin.client.get(f"/jobs/{job['id']}", headers=twin.headers(role)).json()
        assert job["state"] == "succeeded", job
        assert job["progress"] == 1.0
        first = twin.client.get(path, headers=twin.headers(role))
    assert first.status_code == 200
    tileset: dict[str, Any] = first.json()
    return tileset


def test_tileset_is_built_once_then_served(twin: Twin) -> None:
    tileset = _built_tileset(twin)
    assert tileset["asset"]["version"] == "1.1"
    uris = _content_uris(tileset["root"])
    assert uris and all(u.endswith(".glb") for u in uris)
    for uri in uris[:5]:
        tile = twin.client.get(f"/sites/{SITE}/tiles/{uri}", headers=twin.headers("display"))
        assert tile.status_code == 200, uri
        assert tile.headers["content-type"] == "model/gltf-binary"
        assert tile.content[:4] == b"glTF"
        again = twin.client.get(
            f"/sites/{SITE}/tiles/{uri}",
            headers={**twin.headers("display"), "If-None-Match": tile.headers["ETag"]},
        )
        assert again.status_code == 304
    # a second request does not start another job
    jobs_before = len(twin.client.get("/jobs", headers=twin.headers("admin")).json())
    assert (
        twin.client.get(
            f"/sites/{SITE}/tiles/tileset.json", headers=twin.headers("planner")
        ).status_code
        == 200
    )
    assert len(twin.client.get("/jobs", headers=twin.headers("admin")).json()) == jobs_before


def test_tile_paths_cannot_leave_the_tileset(twin: Twin) -> None:
    _built_tileset(twin)
    for path in (
        "../../t.db",
        "..%2F..%2Ft.db",
        "%2Fetc%2Fpasswd",
        "nope.glb",
        "buildings/../../x",
    ):
        response = twin.client.get(f"/sites/{SITE}/tiles/{path}", headers=twin.headers("admin"))
        assert response.status_code == 404, path


def test_pilot_may_not_read_the_site_tileset_and_display_may_not_build(twin: Twin) -> None:
    assert (
        twin.client.get(
            f"/sites/{SITE}/tiles/tileset.json", headers=twin.headers("pilot")
        ).status_code
        == 403
    )
    assert (
        twin.client.post(f"/sites/{SITE}/tiles", headers=twin.headers("display")).status_code == 403
    )
    started = twin.client.post(f"/sites/{SITE}/tiles", headers=twin.headers("planner"))
    assert started.status_code == 202
    assert (
        twin.client.get(
            "/sites/nowhere/tiles/tileset.json", headers=twin.headers("admin")
        ).status_code
        == 404
    )


def test_tiles_come_gzipped_when_asked_with_one_etag(twin: Twin) -> None:
    uri = _content_uris(_built_tileset(twin)["root"])[0]
    path = f"/sites/{SITE}/tiles/{uri}"
    plain = twin.client.get(path, headers={**twin.headers("admin"), "Accept-Encoding": "identity"})
    zipped = twin.client.get(path, headers={**twin.headers("admin"), "Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in plain.headers
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert int(zipped.headers["Content-Length"]) < len(plain.content)
    assert zipped.content == plain.content  # httpx decodes
    assert zipped.headers["ETag"] == plain.headers["ETag"]
    # the bearer form of the key reaches the same bytes
    bearer = twin.client.get(path, headers={"Authorization": f"Bearer {twin.keys['display']}"})
    assert bearer.content == plain.content
