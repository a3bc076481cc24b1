"""Built scenes kept on disk are bounded: exploded gaps rounded to a few values, the files'
total under ``TWIN_SCENE_CACHE_BYTES`` (least recently used go first; ADR 0020)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from denhaag_twin import SITE, TestClient

from api.app import create_app
from api.keys import KeyStore
from api.scene_cache import SceneCache
from api.settings import Settings
from cim.store import open_store

BOUND = 100_000


@pytest.fixture
def scenes(denhaag_store: Path, tmp_path: Path) -> Iterator[tuple[TestClient, str, Path, str]]:
    """(client, display key, the GLB cache folder, a building code) with a 100 kB cache
    (a building's GLB is about 6.6 kB)."""
    store = open_store(denhaag_store)
    try:
        building = min(o.code for o in store.all_objects(SITE) if o.kind == "Building")
    finally:
        store.close()
    settings = Settings(
        store_url=denhaag_store,
        keys_file=tmp_path / "keys.json",
        cache_dir=tmp_path / "cache",
        scene_cache_bytes=BOUND,
    )
    key = KeyStore(settings.keys_path).create_key("display", name="wall")
    with TestClient(create_app(settings)) as client:
        yield client, key, tmp_path / "cache" / "glb", building


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.glb")]


def test_fifty_explode_values_make_a_few_files(
    scenes: tuple[TestClient, str, Path, str],
) -> None:
    client, key, root, building = scenes
    path = f"/sites/{SITE}/objects/{building}/scene.glb"
    tags = set()
    for i in range(50):
        answer = client.get(f"{path}?explode={4 + i / 100:.2f}", headers={"X-API-Key": key})
        assert answer.status_code == 200, answer.text
        tags.add(answer.headers["ETag"])
    # 4.00..4.49 round to 4 and 4.5: the plain GLB and two exploded views
    assert len(tags) == 2
    assert sorted(p.name for p in _files(root)) == sorted(
        [f"{building}.glb", f"{building}-exploded-4.glb", f"{building}-exploded-4.5.glb"]
    )
    too_wide = client.get(f"{path}?explode=21", headers={"X-API-Key": key})
    assert too_wide.status_code == 422 and "explode" in too_wide.text


def test_the_files_total_stays_under_the_bound_least_recently_used_going_first(
    tmp_path: Path,
) -> None:
    cache = SceneCache(tmp_path / "glb", max_bytes=10_000)
    built: list[str] = []

    def build(name: str) -> bytes:
        built.append(name)
        return name.encode() * (3_000 // len(name))

    paths = [tmp_path / "glb" / "s" / "v1" / f"b{i}.glb" for i in range(50)]
    for i, path in enumerate(paths):
        cache.get(path, lambda i=i: build(f"b{i:02d}"))
        time.sleep(0.002)
        cache.get(paths[0], lambda: build("b00"))  # b0 stays in use
        time.sleep(0.002)
        assert cache.total_bytes() <= 10_000
    kept = sorted(p.name for p in _files(tmp_path / "glb"))
    assert len(kept) == 3  # 3 × 3,000 bytes fit in 10,000
    assert kept == ["b0.glb", "b48.glb", "b49.glb"]
    assert built.count("b00") == 1  # used all along: never evicted, never rebuilt
    # a file larger than the bound is served, never kept
    big = cache.get(tmp_path / "glb" / "big.glb", lambda: b"x" * 20_000)
    assert len(big) == 20_000 and not (tmp_path / "glb" / "big.glb").exists()
    with pytest.raises(ValueError, match="not under the scene cache"):
        cache.get(tmp_path / "elsewhere.glb", lambda: b"")


def test_every_gap_of_the_range_keeps_the_cache_under_its_bound(
    scenes: tuple[TestClient, str, Path, str],
) -> None:
    client, key, root, building = scenes
    path = f"/sites/{SITE}/objects/{building}/scene.glb"
    sizes = set()
    for k in range(1, 41):
        answer = client.get(f"{path}?explode={k / 2:g}", headers={"X-API-Key": key})
        assert answer.status_code == 200
        sizes.add(len(answer.content))
        assert sum(p.stat().st_size for p in _files(root)) <= BOUND
    assert len(_files(root)) <= BOUND // min(sizes) < 40
