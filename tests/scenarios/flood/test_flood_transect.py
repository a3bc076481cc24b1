"""IRREGULAR cross-sections from [TRANSECTS]: SWMM's tables, composite roughness, errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from cim.errors import SourceError
from scenarios.flood import DesignStorm, FloodSpec, run
from scenarios.flood.swmm_inp import load_swmm_inp
from scenarios.flood.transect import (
    N_TRANSECT_TBL,
    TransectProfile,
    resample,
    swmm_lookup,
    transect_tables,
)
from scenarios.flood.xsect import N_TABLE, build_tables

# transect.c backs the radius out of Manning's flow with 1.49 where the flow used 1.486
HRAD_FACTOR = (1.486 / 1.49) ** 1.5


def _profile(stations: list[float], elevations: list[float], **kw: float) -> TransectProfile:
    args: dict[str, float] = {
        "n_left": 0.03,
        "n_right": 0.03,
        "n_channel": 0.03,
        "x_left_bank": stations[0],
        "x_right_bank": stations[-1],
    }
    args.update(kw)
    return TransectProfile(
        "T",
        np.asarray(stations, dtype=np.float64),
        np.asarray(elevations, dtype=np.float64),
        **args,  # type: ignore[arg-type]
    )


def test_trapezoid_transect_matches_the_analytic_trapezoid() -> None:
    # bottom 2 m wide, side slopes 1:1.5 (run/rise), 3 m deep; stations in metres
    profile = _profile([0.0, 4.5, 6.5, 11.0], [3.0, 0.0, 0.0, 3.0])
    tables = transect_tables(profile)
    assert tables.y_full == pytest.approx(3.0)
    xs = build_tables(["TRAPEZOIDAL"], [(3.0, 2.0, 1.5, 1.5)])
    area, radius, width = resample(tables, N_TABLE)
    # SWMM's 51 depths are every other one of our 101: exact there; between them SWMM
    # interpolates linearly, which a trapezoid's quadratic area feels by < 0.5 %
    np.testing.assert_allclose(area[::2], xs.area[0, ::2], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(area[1:], xs.area[0, 1:], rtol=5e-3)
    # (SWMM's width at depth 0 is its width at the first step, hence [2:])
    np.testing.assert_allclose(width[2:], xs.width[0, 2:], rtol=1e-12)
    # one roughness: R is A/P but for transect.c's constant mismatch
    np.testing.assert_allclose(radius[::2], xs.radius[0, ::2] * HRAD_FACTOR, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(radius[1:], xs.radius[0, 1:] * HRAD_FACTOR, rtol=5e-3)
    # and the transect goes through the same solver tables
    irregular = build_tables(["IRREGULAR"], [(3.0, 11.0, 0.0, 0.0)], [tables])
    np.testing.assert_allclose(irregular.area[0], area, atol=1e-12)
    assert irregular.y_full[0] == pytest.approx(3.0)


def test_rectangle_transect_matches_the_rectangle() -> None:
    profile = _profile([0.0, 0.0, 4.0, 4.0], [2.0, 0.0, 0.0, 2.0])
    tables = transect_tables(profile)
    xs = build_tables(["RECT_OPEN"], [(2.0, 4.0, 0.0, 0.0)])
    area, radius, width = resample(tables, N_TABLE)
    np.testing.assert_allclose(area, xs.area[0], atol=1e-12)
    np.testing.assert_allclose(width, 4.0)
    np.testing.assert_allclose(radius[::2], xs.radius[0, ::2] * HRAD_FACTOR, atol=1e-12)
    np.testing.assert_allclose(radius[1:], xs.radius[0, 1:] * HRAD_FACTOR, rtol=5e-3)


def test_composite_roughness_follows_transect_c() -> None:
    # a 4 m main channel (n 0.03), 1 m deep, with 10 m flat overbanks (n 0.1) 1 m higher
    profile = _profile(
        [0.0, 10.0, 10.0, 14.0, 14.0, 24.0],
        [2.0, 1.0, 0.0, 0.0, 1.0, 2.0],
        n_left=0.1,
        n_right=0.1,
        x_left_bank=10.0,
        x_right_bank=14.0,
    )
    tables = transect_tables(profile)
    y = 2.0  # full: stage 2 m, 1 m over the banks
    i = N_TRANSECT_TBL - 1
    # by hand: each overbank is a triangle 10 m wide rising 1 m (area 5, wetted perimeter
    # sqrt(101)); the channel holds 4 x 2 m with its bed and 1 m of each wall wetted
    a_bank, p_bank = 5.0, np.sqrt(101.0)
    a_channel, p_channel = 8.0, 4.0 + 2.0
    q = 2 * 1.486 / 0.1 * a_bank * (a_bank / p_bank) ** (2 / 3)
    q += 1.486 / 0.03 * a_channel * (a_channel / p_channel) ** (2 / 3)
    area = 2 * a_bank + a_channel
    radius = (q * 0.03 / 1.49 / area) ** 1.5
    assert tables.a_full == pytest.approx(area)
    assert tables.r_full == pytest.approx(radius, rel=1e-12)
    assert tables.w_max == pytest.approx(24.0)
    assert tables.area[i] == 1.0 and tables.radius[i] == 1.0
    # the composite radius is well below the single-n A/P of the whole section
    assert radius < area / (2 * p_bank + p_channel) * 0.8
    # half full (in the channel only) it is the channel's own A/P (x the constant)
    half = N_TRANSECT_TBL // 2
    assert tables.radius[half] * tables.r_full == pytest.approx(
        4.0 * 1.0 / (4.0 + 2.0) * HRAD_FACTOR, rel=1e-12
    )
    assert y == tables.y_full


def test_swmm_lookup_is_quadratic_near_the_bottom() -> None:
    table = np.linspace(0.0, 1.0, N_TRANSECT_TBL) ** 2
    frac = np.array([0.005, 0.03, 0.5, 1.0])
    # exact for a parabola in the first two intervals, linear beyond, last entry at full
    got = swmm_lookup(table, frac)
    assert got[0] == pytest.approx(0.005**2) and got[1] == pytest.approx(0.03**2)
    assert got[2] == pytest.approx(0.25) and got[3] == 1.0


def _shayler_with_rain(src: Path, dst: Path) -> Path:
    """The file with its gauge reading a one-hour 25 mm/h (~1 in/h) series: the external
    rain file it names is not published with it."""
    text = src.read_text()
    text = re.sub(r"^SHC\s+INTENSITY.*$", "SHC INTENSITY 0:06 1.0 TIMESERIES R", text, flags=re.M)
    text = text.replace("[REPORT]", "[TIMESERIES]\nR 0 1.0\nR 1 0\n\n[REPORT]")
    dst.write_text(text)
    return dst


def test_shayler_crossing_reads(swmm_dir: Path, tmp_path: Path) -> None:
    net = load_swmm_inp(
        _shayler_with_rain(
            swmm_dir / "shayler_crossing_SHC_NEW_event_noflood.inp", tmp_path / "s.inp"
        )
    )
    assert len(net.subcatchments) == 191 and len(net.links) == 269 + 4 + 3
    stream = net.links["C296"]
    assert stream.xsect is not None and stream.xsect.shape == "IRREGULAR"
    assert stream.xsect.transect is not None
    # the Stream transect: highest 811.786 ft, lowest 805.850 ft; channel n from NC (0.004)
    assert stream.xsect.geom[0] == pytest.approx((811.786 - 805.85) * 0.3048)
    assert stream.xsect.transect.w_max == pytest.approx(39 * 0.3048)
    assert stream.roughness == 0.004
    # DUMMY conduits pass their upstream node's inflow through, as SWMM's ideal links do
    assert net.links["W415"].kind == "pump" and net.links["W415"].curve is None
    assert net.links["W415"].subtype == "DUMMY"
    # what we do not model is listed, not silently dropped
    assert "INFILTRATION GREEN_AMPT" in net.ignored_sections
    assert {"LID_USAGE", "GROUNDWATER"} <= set(net.ignored_sections)


def test_shayler_crossing_without_its_rain_file_is_refused(swmm_dir: Path) -> None:
    with pytest.raises(SourceError, match=r"line 52: rain file .* not found"):
        load_swmm_inp(swmm_dir / "shayler_crossing_SHC_NEW_event_noflood.inp")


_GOOD = "NC 0.1 0.1 0.03\nX1 T1 4 10 14 0 0 0 0 0\nGR 2 0 1 10 0 10 0 14\nGR 1 14 2 24\n"


def _inp(tmp_path: Path, transects: str, shape: str = "IRREGULAR T1") -> Path:
    path = tmp_path / "t.inp"
    path.write_text(
        "[OPTIONS]\nFLOW_UNITS CMS\nFLOW_ROUTING DYNWAVE\nSTART_DATE 01/01/2020\n"
        "END_DATE 01/01/2020\nEND_TIME 01:00:00\n"
        "[JUNCTIONS]\nJ1 10 3\n[OUTFALLS]\nO1 9 FREE\n"
        "[CONDUITS]\nC1 J1 O1 100 0.02\n"
        f"[XSECTIONS]\nC1 {shape} 0 0 0 1\n"
        f"[TRANSECTS]\n{transects}"
    )
    return path


def test_good_transect_reads_and_takes_the_channel_n(tmp_path: Path) -> None:
    net = load_swmm_inp(_inp(tmp_path, _GOOD))
    link = net.links["C1"]
    assert link.roughness == 0.03 and link.xsect is not None
    assert link.xsect.geom[0] == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("transects", "shape", "message"),
    [
        (_GOOD.replace("GR 1 14 2 24", "GR 1 14 2"), "IRREGULAR T1", r"line 19: GR records hold"),
        (_GOOD.replace("GR 1 14 2 24", "GR 1 9 2 24"), "IRREGULAR T1", r"line 19: GR stations"),
        (_GOOD.replace("GR 1 14 2 24", "GR 1 x 2 24"), "IRREGULAR T1", r"line 19: GR station"),
        (_GOOD.replace("X1 T1 4 10 14 0 0 0 0 0", "X1 T1 4 10"), "IRREGULAR T1", r"line 17: X1"),
        (_GOOD.replace("NC 0.1 0.1 0.03", "NC 0.1 0.1"), "IRREGULAR T1", r"line 16: NC record"),
        (_GOOD.replace("NC 0.1 0.1 0.03", "NC 0.1 0.1 0"), "IRREGULAR T1", r"line 17: .*n must"),
        (_GOOD.replace("10 14 0 0", "14 10 0 0"), "IRREGULAR T1", r"line 17: .*left bank"),
        (_GOOD + "XX 1 2\n", "IRREGULAR T1", r"line 20: transect record must be NC, X1 or GR"),
        ("GR 1 2 3 4\n", "IRREGULAR T1", r"line 16: GR record before any X1"),
        ("NC 0 0 0.03\nX1 T1 2 0 0 0 0 0 0 0\nGR 1 0 1 5\n", "IRREGULAR T1", r"line 17: .*flat"),
        (_GOOD, "IRREGULAR T2", r"line 14: transect 'T2' is not defined"),
    ],
)
def test_malformed_transects_are_refused_naming_the_line(
    tmp_path: Path, transects: str, shape: str, message: str
) -> None:
    with pytest.raises(SourceError, match=message):
        load_swmm_inp(_inp(tmp_path, transects, shape))


def test_shayler_crossing_runs_a_design_storm_without_its_rain_file(swmm_dir: Path) -> None:
    # the storm replaces every gauge, so the unpublished rain file is not needed
    storm = DesignStorm("shanghai-2017", return_period_a=5.0, duration_min=120.0)
    spec = FloodSpec(
        str(swmm_dir / "shayler_crossing_SHC_NEW_event_noflood.inp"),
        storm=storm,
        duration_s=4 * 3600.0,
    )
    result = run(spec)
    assert result.outfall_peak_flow_m3s["Outfall"] > 1.0
    assert result.total_flood_volume_m3 > 1000.0
    assert "INFILTRATION GREEN_AMPT" in result.ignored_sections
