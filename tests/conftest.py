"""Fixtures shared by all tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from cim.store import Store, open_store

# Property tests draw the same examples on every run (`make test`, CI): a failure found once
# is found again and fixed, never a coin toss on the next run. HYPOTHESIS_PROFILE=explore
# draws fresh examples for hunting.
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture
def assets() -> Path:
    """The repository's test and demo data (``assets/``)."""
    return Path(__file__).parent.parent / "assets"


PG_URL = os.environ.get("TWIN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    """``assets/`` for session-scoped fixtures."""
    return Path(__file__).parent.parent / "assets"


@pytest.fixture(scope="session")
def denhaag_path(assets_dir: Path) -> Path:
    """The Den Haag LoD2 CityJSON tile (844 buildings, 1,653 parts, one TIN)."""
    return assets_dir / "denhaag_01" / "denhaag_01_lod2.city.json"


def _postgres_database() -> Iterator[str]:
    """A fresh database on the real PostgreSQL server, dropped afterwards."""
    import psycopg

    name = f"twin_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_URL, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_URL} ({exc}); `make test` starts it "
            "(.ci/services) — run the suite through make"
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty store, once per engine: SQLite file and real PostgreSQL."""
    if request.param == "sqlite":
        yield str(tmp_path / "twin.db")
    else:
        yield from _postgres_database()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An empty store, once per engine."""
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the real PostgreSQL server, dropped afterwards."""
    yield from _postgres_database()
