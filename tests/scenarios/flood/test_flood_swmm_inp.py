"""The SWMM .inp reader: real files, SI units, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cim.errors import SourceError
from scenarios.flood.swmm_inp import load_swmm_inp


def test_bellinge_objects_and_units(swmm_dir: Path) -> None:
    net = load_swmm_inp(swmm_dir / "bellinge_small.inp")
    kinds = [n.kind for n in net.nodes.values()]
    assert kinds.count("storage") == 15 and kinds.count("outfall") == 1
    assert len(net.links) == 15 and len(net.subcatchments) == 13
    assert net.options.flow_units == "LPS" and net.options.routing_step_s == 5.0
    assert net.options.duration_s == 23 * 3600 + 59 * 60
    pipe = net.links["G72F820_G72F810_l1"]
    assert pipe.xsect is not None and pipe.xsect.shape == "CIRCULAR"
    assert pipe.xsect.geom[0] == pytest.approx(0.35) and pipe.length_m == pytest.approx(47.449248)
    # LPS file: max flow 1e10 L/s is 1e7 m3/s
    assert pipe.max_flow_m3s == pytest.approx(1e7)
    sub = net.subcatchments["G72F810-sub"]
    assert sub.area_m2 == pytest.approx(0.45237485564090696e4)
    assert sub.slope == pytest.approx(0.0003)
    # storm.dat: 28, 32, 3 mm/h over 5-minute intervals
    rain = net.gages["1"].series
    assert rain.t_s.tolist() == [0.0, 300.0, 600.0, 900.0]
    np.testing.assert_allclose(rain.values * 3.6e6, [0.0, 28.0, 32.0, 3.0])
    assert net.nodes["G72F050_outfall"].x == pytest.approx(583368.3599990713)


def test_state_plane_us_units_to_si(swmm_dir: Path) -> None:
    net = load_swmm_inp(swmm_dir / "model_state_plane.inp")
    node = net.nodes["J1-025"]
    assert node.invert_m == pytest.approx(970.46 * 0.3048)
    assert node.max_depth_m == pytest.approx(12.938 * 0.3048)
    store = net.nodes["J1-035"]
    assert store.storage_curve is not None
    # FUNCTIONAL a=15 (ft2, exponent 0): a constant 15 ft2
    assert store.storage_curve[1] + store.storage_curve[3] == pytest.approx(15 * 0.3048**2)
    sub = net.subcatchments["S2-028"]
    assert sub.area_m2 == pytest.approx(5 * 4046.8564224)
    assert sub.horton is not None
    assert sub.horton[0] == pytest.approx(3.0 * 0.0254 / 3600)  # in/h -> m/s
    assert sub.horton[2] == pytest.approx(4 / 3600)  # 1/h -> 1/s
    assert sub.dstore_imperv_m == pytest.approx(0.05 * 0.0254)
    rain = net.gages["RG1"].series
    assert rain.values.sum() * 3600 == pytest.approx(1.0 * 0.0254)  # 1 inch in all
    assert net.options.min_surfarea_m2 == pytest.approx(12.557 * 0.3048**2)
    graph = net.topology()
    assert graph.number_of_nodes() == 45 and graph.number_of_edges() == 44


def test_pump_curve_patterns_and_rules(swmm_dir: Path) -> None:
    net = load_swmm_inp(swmm_dir / "Pump_Control_Model.inp")
    pump = net.links["PUMP1"]
    assert pump.kind == "pump" and pump.curve == "PUMP_CURVE1"
    curve = net.curves["PUMP_CURVE1"]
    assert curve.kind == "PUMP4"
    assert curve.y.max() == pytest.approx(0.9 * 0.3048**3)
    assert net.ignored_sections == []
    assert len(net.rules) == 2 and net.rules[0].startswith("RULE PUMP1A IF NODE SU1 DEPTH >= 4")
    dwf = [i for i in net.inflows if i.node == "SU1"]
    assert dwf[0].baseline_m3s == pytest.approx(0.3048**3)
    assert dwf[0].patterns[0].kind == "HOURLY" and dwf[0].patterns[0].factors[0] == 0.0151


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "bad.inp"
    path.write_text("[OPTIONS]\nFLOW_UNITS CMS\nEND_TIME 1:00\n" + body)
    return path


def test_bad_number_names_file_line_and_object(tmp_path: Path) -> None:
    path = _write(tmp_path, "[JUNCTIONS]\nJ1 10 2\nJ2 ten 2\n")
    with pytest.raises(
        SourceError, match=r"bad\.inp, object 'J2': line 6: elevation must be a number"
    ):
        load_swmm_inp(path)


def test_undefined_node_is_named(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "[JUNCTIONS]\nJ1 10 2\n[CONDUITS]\nC1 J1 J9 100 0.013\n[XSECTIONS]\nC1 CIRCULAR 1\n",
    )
    with pytest.raises(SourceError, match=r"object 'C1': line 7: node 'J9' is not defined"):
        load_swmm_inp(path)


def test_unsupported_shape_is_refused_with_its_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "[JUNCTIONS]\nJ1 10 2\nJ2 9 2\n[CONDUITS]\nC1 J1 J2 100 0.013\n[XSECTIONS]\nC1 STREET S1\n",
    )
    with pytest.raises(SourceError, match=r"line 10: cross-section STREET is not supported"):
        load_swmm_inp(path)


def test_unknown_flow_units(tmp_path: Path) -> None:
    path = tmp_path / "u.inp"
    path.write_text("[OPTIONS]\nFLOW_UNITS FURLONGS\n")
    with pytest.raises(SourceError, match="line 2: FLOW_UNITS"):
        load_swmm_inp(path)


def test_not_a_swmm_file(tmp_path: Path) -> None:
    path = tmp_path / "x.inp"
    path.write_text("hello\n")
    with pytest.raises(SourceError, match="line 1: data before the first"):
        load_swmm_inp(path)
