"""Fixtures of the live-twin tests: a live twin per engine with a settable clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from live_helpers import Clock

from twin.live import LiveTwin


@pytest.fixture
def clock() -> Clock:
    """A fixed clock an hour after ``T0``."""
    return Clock()


@pytest.fixture
def live(store_url: str, clock: Clock) -> Iterator[LiveTwin]:
    """A live twin over an empty store, once per engine (not started: no threads)."""
    twin = LiveTwin(store_url, clock=clock)
    try:
        yield twin
    finally:
        twin.close()
