"""Venues for the crowd tests: the repository's assets and small closed-form geometries."""

from __future__ import annotations

from pathlib import Path

import pytest

ASSETS = Path(__file__).resolve().parents[3] / "assets" / "crowd"


@pytest.fixture(scope="session")
def crowd_assets() -> Path:
    """``assets/crowd``."""
    return ASSETS


def _write_venue(path: Path, walkable: str, exits: str, spawns: str = "") -> Path:
    """Write a ``GEOMETRYCOLLECTION(walkable, exits[, spawns])`` WKT file."""
    members = [walkable, exits] + ([spawns] if spawns else [])
    path.write_text(f"GEOMETRYCOLLECTION ({', '.join(members)})\n")
    return path


@pytest.fixture
def corridor(tmp_path: Path) -> Path:
    """A 50 x 2 m corridor whose last metre is the exit."""
    return _write_venue(
        tmp_path / "corridor.wkt",
        "POLYGON ((0 0, 50 0, 50 2, 0 2, 0 0))",
        "POLYGON ((49 0, 50 0, 50 2, 49 2, 49 0))",
    )


@pytest.fixture
def room_with_door(tmp_path: Path) -> Path:
    """A 12 x 12 m room, a 0.4 m wall with a 1.2 m door, a 12 x 4 m lobby leaving north."""
    return _write_venue(
        tmp_path / "room.wkt",
        "POLYGON ((0 0, 12 0, 12 12, 6.6 12, 6.6 12.4, 12 12.4, 12 16.4, 0 16.4, 0 12.4, "
        "5.4 12.4, 5.4 12, 0 12, 0 0))",
        "POLYGON ((0 16, 12 16, 12 16.4, 0 16.4, 0 16))",
        "POLYGON ((1 1, 11 1, 11 11, 1 11, 1 1))",
    )


@pytest.fixture
def two_exit_hall(tmp_path: Path) -> Path:
    """A 40 x 10 m hall with an exit at each end, a spawn area in each half."""
    return _write_venue(
        tmp_path / "hall.wkt",
        "POLYGON ((0 0, 40 0, 40 10, 0 10, 0 0))",
        "MULTIPOLYGON (((0 0, 1 0, 1 10, 0 10, 0 0)), ((39 0, 40 0, 40 10, 39 10, 39 0)))",
        "MULTIPOLYGON (((2 1, 18 1, 18 9, 2 9, 2 1)), ((22 1, 38 1, 38 9, 22 9, 22 1)))",
    )


@pytest.fixture
def write_venue() -> object:
    """``write_venue(path, walkable_wkt, exits_wkt, spawns_wkt="")`` writes a venue file."""
    return _write_venue
