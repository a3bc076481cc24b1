"""Fixtures of the flood tests: the real SWMM networks in ``assets/swmm``."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def swmm_dir() -> Path:
    """``assets/swmm``: Bellinge, the EPA state-plane and pump-control examples."""
    return Path(__file__).parents[3] / "assets" / "swmm"
