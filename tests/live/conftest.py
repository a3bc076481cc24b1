"""Fixtures of the live-twin tests: a live twin per engine with a settable clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from live_helpers import T0

from twin.live import LiveTwin


@dataclass
class Clock:
    """A clock the test moves by hand, µs."""

    now: int = T0 + 3_600_000_000

    def __call__(self) -> int:
        return self.now


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
