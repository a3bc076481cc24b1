"""Fixtures of the API tests: a Den Haag store, keys of every role, a client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from denhaag_twin import DENHAAG, SITE, TestClient, Twin

from api.app import create_app
from api.keys import KeyStore
from api.settings import Settings
from cim.importer import import_source
from cim.store import open_store


@pytest.fixture(scope="session")
def denhaag_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store holding the Den Haag sample as site ``denhaag``."""
    path = tmp_path_factory.mktemp("store") / "t.db"
    store = open_store(path)
    try:
        import_source(store, DENHAAG, site=SITE)
    finally:
        store.close()
    return path


@pytest.fixture(scope="module")
def twin(denhaag_store: Path, request: pytest.FixtureRequest) -> Iterator[Twin]:
    """The API over the Den Haag store, with a key per role (the pilot scoped to one
    building)."""
    store = open_store(denhaag_store)
    try:
        objects = store.all_objects(SITE)
        buildings = sorted((o for o in objects if o.kind == "Building"), key=lambda o: o.code)
        building, other = buildings[0], buildings[1]
        parts = store.children(SITE, building.code)
    finally:
        store.close()
    # a key file per test module, so tests that add keys cannot disturb each other
    keys_file = denhaag_store.parent / f"{request.module.__name__}.keys.json"
    settings = Settings(store_url=denhaag_store, keys_file=keys_file)
    keystore = KeyStore(settings.keys_path)
    keys = {
        role: keystore.create_key(role, name=f"{role} test key")
        for role in ("admin", "planner", "display", "device")
    }
    keys["pilot"] = keystore.create_key("pilot", [building.code], name="pilot test key")
    with TestClient(create_app(settings)) as client:
        yield Twin(client, settings, keys, building, other, parts, objects)
