"""Fixtures of the API tests: a Den Haag store, keys of every role, a client.

In process by default; with ``TWIN_TEST_SERVE_WORKERS=N`` the same tests run against the
real ``twin serve --workers N`` (``tests/api/served.py``, ``make test-served``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from denhaag_twin import DENHAAG, SITE, TestClient, Twin
from served import ServedClient, serve_workers
from server_process import Server, start_server

from api.app import create_app
from api.keys import KeyStore
from api.settings import Settings
from cim.importer import import_source
from cim.model import CimObject
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In served mode, keep the tests that talk to an application (the ``twin`` fixture, or
    their own through ``app_client``: marked ``served``) and do not look inside it (marked
    ``inprocess``); the others are the in-process suite's."""
    if not serve_workers():
        return
    served, other = [], []
    for item in items:
        uses_twin = "twin" in getattr(item, "fixturenames", ())
        uses_twin = uses_twin or item.get_closest_marker("served") is not None
        in_api = Path(str(item.fspath)).parent == Path(__file__).parent
        if in_api and uses_twin and item.get_closest_marker("inprocess") is None:
            served.append(item)
        else:
            other.append(item)
    if other:
        config.hook.pytest_deselected(items=other)
    items[:] = served


@pytest.fixture(scope="session")
def served_twin(denhaag_store: Path) -> Iterator[Server]:
    """``twin serve --workers N`` over the Den Haag store, for the whole served session."""
    server = start_server(denhaag_store, denhaag_store.parent / "cache", serve_workers())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def twin(denhaag_store: Path, request: pytest.FixtureRequest) -> Iterator[Twin]:
    """The API over the Den Haag store, with a key per role (the pilot scoped to one
    building): in process, or the real multi-process server in served mode."""
    store = open_store(denhaag_store)
    try:
        objects = store.all_objects(SITE)
        buildings = sorted((o for o in objects if o.kind == "Building"), key=lambda o: o.code)
        building, other = buildings[0], buildings[1]
        parts = store.children(SITE, building.code)
    finally:
        store.close()
    if serve_workers():
        yield from _served(request, denhaag_store, building, other, parts, objects)
        return
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


def _served(
    request: pytest.FixtureRequest,
    store: Path,
    building: CimObject,
    other: CimObject,
    parts: list[CimObject],
    objects: list[CimObject],
) -> Iterator[Twin]:
    """The ``Twin`` of served mode: keys made in the store (every worker reads them there)."""
    server: Server = request.getfixturevalue("served_twin")
    settings = Settings(store_url=store, cache_dir=store.parent / "cache")
    keystore = KeyStore(store)
    keys = {
        role: keystore.create_key(role, name=f"{role} {request.module.__name__}")
        for role in ("admin", "planner", "display", "device")
    }
    keys["pilot"] = keystore.create_key("pilot", [building.code], name="pilot")
    keystore.close()
    with ServedClient(server.url) as client:
        yield Twin(client, settings, keys, building, other, parts, objects)  # type: ignore[arg-type]
