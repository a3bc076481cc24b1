"""Fixtures of the render tests: one store holding the Den Haag and Merewether samples."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cim.importer import import_source
from cim.loaders import LoadOptions
from cim.store import Store, open_store


@pytest.fixture(scope="session")
def scene_store_path(tmp_path_factory: pytest.TempPathFactory, assets_dir: Path) -> Path:
    """A SQLite store with sites ``denhaag`` (LoD2 CityJSON with a TIN) and ``merewether``
    (a 1 m DEM and 60 extruded houses), imported as ``make sample`` does."""
    path = tmp_path_factory.mktemp("scene") / "scene.db"
    store = open_store(path)
    try:
        import_source(
            store, assets_dir / "denhaag_01" / "denhaag_01_lod2.city.json", site="denhaag"
        )
        import_source(
            store, assets_dir / "merewether" / "merewether_dtm_1m_epsg32756.tif", site="merewether"
        )
        import_source(
            store,
            assets_dir / "merewether" / "merewether_houses_epsg32756.geojson",
            site="merewether",
            options=LoadOptions(default_height_m=6.0),
        )
    finally:
        store.close()
    return path


@pytest.fixture(scope="session")
def scene_store(scene_store_path: Path) -> Iterator[Store]:
    """The sample store, opened once for the session (read only by the tests)."""
    store = open_store(scene_store_path)
    try:
        yield store
    finally:
        store.close()
