"""The numpy kernels: Weidmann speeds, Fruin levels, gate admission."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scenarios.crowd import kernel
from scenarios.crowd.spec import FundamentalDiagram

FD = FundamentalDiagram()


def test_weidmann_free_jam_and_capacity() -> None:
    rho = np.array([0.0, 1.0, FD.rho_max_pm2, 8.0])
    v = kernel.weidmann_speed(rho, FD.free_speed_mps, FD.gamma_pm2, FD.rho_max_pm2)
    assert v[0] == pytest.approx(1.34)
    # v(1) = 1.34 (1 - exp(-1.913 (1 - 1/5.4)))
    assert v[1] == pytest.approx(1.34 * (1 - np.exp(-1.913 * (1 - 1 / 5.4))))
    assert v[2] == 0.0 and v[3] == 0.0
    grid = np.linspace(0.01, 5.4, 5000)
    flow = grid * kernel.weidmann_speed(grid, 1.34, 1.913, 5.4)
    # the specific flow peaks near 1.2 /(m·s) around 1.75 persons/m² (standards note 5.2)
    assert flow.max() == pytest.approx(1.22, abs=0.02)
    assert grid[np.argmax(flow)] == pytest.approx(1.75, abs=0.1)


def test_fruin_levels() -> None:
    levels = kernel.fruin_level(np.array([0.0, 0.31, 0.4, 0.7, 1.0, 2.0, 2.2, 6.0]))
    assert "".join(kernel.FRUIN_LEVELS[i] for i in levels) == "AABCDEFF"


@given(
    st.lists(st.integers(0, 5), min_size=0, max_size=60),
    st.lists(st.integers(0, 8), min_size=6, max_size=6),
    st.integers(0, 2**32 - 1),
)
def test_admit_passes_exactly_the_allowance(
    groups: list[int], allowance: list[int], seed: int
) -> None:
    g = np.array(groups, dtype=np.int32)
    a = np.array(allowance, dtype=np.int64)
    passed = kernel.admit(g, a, np.random.default_rng(seed).random(g.size))
    got = np.bincount(g[passed], minlength=6)
    want = np.minimum(np.bincount(g, minlength=6), a)
    assert np.array_equal(got, want)


def test_check_step_refuses_a_step_longer_than_a_cell() -> None:
    kernel.check_step(0.5, 0.3, 1.6)
    with pytest.raises(ValueError, match=r"dt_s\(=0.4\) too long"):
        kernel.check_step(0.5, 0.4, 1.6)


@given(st.lists(st.tuples(st.integers(0, 4), st.floats(-1e6, 1e6)), max_size=50))
def test_group_reduce_matches_ufunc_at(pairs: list[tuple[int, float]]) -> None:
    groups = np.array([g for g, _ in pairs], dtype=np.int64)
    values = np.array([v for _, v in pairs], dtype=np.float64)
    want = np.full(5, -np.inf)
    np.maximum.at(want, groups, values)
    got = kernel.group_reduce(np.maximum, groups, values, 5, -np.inf)
    assert np.array_equal(got, want)
