"""The GLB writer and the placement maths, against closed forms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gltf_validator import validate_files

from cim.model import SiteInfo
from render.glb import GlbBuilder, accessor_array, read_glb
from render.placement import Z_UP_TO_Y_UP, ecef_of, enu_axes, site_frame


def test_ecef_of_closed_forms() -> None:
    assert np.allclose(ecef_of(0.0, 0.0, 0.0), [6378137.0, 0.0, 0.0])
    assert np.allclose(ecef_of(90.0, 0.0, 10.0), [0.0, 6378147.0, 0.0], atol=1e-6)
    # the pole: semi-minor axis b = a * sqrt(1 - e^2) = 6356752.314 m
    assert np.allclose(ecef_of(0.0, 90.0, 0.0), [0.0, 0.0, 6356752.314], atol=1e-3)


def test_enu_axes_are_orthonormal_and_up_is_radial_at_the_equator() -> None:
    axes = enu_axes(4.3, 52.1)
    assert np.allclose(axes.T @ axes, np.eye(3))
    assert np.allclose(enu_axes(0.0, 0.0)[:, 2], [1.0, 0.0, 0.0])
    assert np.allclose(enu_axes(0.0, 0.0)[:, 0], [0.0, 1.0, 0.0])


def test_y_up_swap_is_a_proper_rotation() -> None:
    assert np.linalg.det(Z_UP_TO_Y_UP) == pytest.approx(1.0)
    assert np.allclose(Z_UP_TO_Y_UP @ [1.0, 2.0, 3.0], [1.0, 3.0, -2.0])


def test_utm_site_frame_has_the_zone_convergence() -> None:
    # UTM 56S at Merewether: 151.75 E is 2.75 degrees west of the zone's central meridian
    # (153 E); grid convergence there is about -(153 - 151.75) * sin(-32.95) = -0.68 degrees
    site = SiteInfo(
        "m",
        "EPSG:32756",
        "990100001001",
        100.0,
        (0.0, 0.0),
        (382410.28, 6354473.42, 16.47),
        None,
        1,
    )
    frame = site_frame(site)
    east_in_enu = frame.local_to_enu[:, 0]
    angle = np.degrees(np.arctan2(east_in_enu[1], east_in_enu[0]))
    assert angle == pytest.approx(-0.68, abs=0.05)
    # point scale factor k = 0.9996 (1 + x^2 / 2R^2), x = 117.6 km from the central meridian;
    # a grid metre is 1 / k true metres
    k = 0.9996 * (1 + (500000 - 382410.28) ** 2 / (2 * 6371000.0**2))
    assert np.linalg.norm(east_in_enu) == pytest.approx(1 / k, abs=2e-5)


def test_empty_scene_and_accessor_round_trip(tmp_path: Path) -> None:
    builder = GlbBuilder()
    builder.add_node({"name": "empty"})
    (tmp_path / "empty.glb").write_bytes(builder.to_bytes())
    points = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32)
    builder = GlbBuilder()
    view = builder.add_vertex_view(points)
    position = builder.add_accessor(
        view, np.float32, 3, 3, minimum=[0.0, 0.0, 0.0], maximum=[1.0, 1.0, 0.0]
    )
    mesh = builder.add_mesh({"primitives": [{"attributes": {"POSITION": position}}]})
    builder.add_node({"mesh": mesh})
    data = builder.to_bytes()
    (tmp_path / "triangle.glb").write_bytes(data)
    assert len(data) % 4 == 0
    gltf, binary = read_glb(data)
    assert np.array_equal(accessor_array(gltf, binary, position), points)
    reports = validate_files([tmp_path / "empty.glb", tmp_path / "triangle.glb"])
    assert [r["errors"] for r in reports] == [0, 0]


def test_read_glb_refuses_other_bytes() -> None:
    with pytest.raises(ValueError, match="not a GLB"):
        read_glb(b"{}")
