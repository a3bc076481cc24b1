"""Venue input: WKT and GeoJSON, discretisation, and clear errors for bad geometry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cim.errors import SourceError
from scenarios.crowd import load_venue
from scenarios.crowd.grid import auto_cell_m, build_grid


def test_juelich_venue_reads_walkable_exit_and_spawn(crowd_assets: Path) -> None:
    venue = load_venue(crowd_assets / "bottleneck_040_venue.wkt")
    assert venue.area_m2 == pytest.approx(64.2725)
    assert len(venue.walkable.interiors) == 2  # the two walls of the funnel
    assert len(venue.exits) == 1 and len(venue.spawns) == 1
    assert venue.exit_widths_m()[0] == pytest.approx(0.6, abs=1e-6)


def test_waterfront_venue_has_five_exits(crowd_assets: Path) -> None:
    venue = load_venue(crowd_assets / "waterfront.wkt")
    assert len(venue.exits) == 5
    assert venue.exit_widths_m() == pytest.approx([8.0, 6.0, 6.0, 8.0, 6.0])
    assert venue.area_m2 == pytest.approx(13516.0)


def test_grid_cells_cover_the_walkable_area(corridor: Path) -> None:
    venue = load_venue(corridor)
    grid = build_grid(venue, 0.5)
    assert grid.n_cells == 400
    assert grid.area_m2.sum() == pytest.approx(100.0)
    # distances along the corridor are straight-line distances to the exit's first cells
    far = grid.cell_of(np.array([[0.25, 0.75]]))[0]
    assert grid.distance_m[0, far] == pytest.approx(49.0, abs=1e-9)


def test_walls_thinner_than_a_cell_still_separate(tmp_path: Path, write_venue: Any) -> None:
    # a 0.2 m wall splits the room except for a gap at the top: the way round is 2 x 9 m longer
    path = write_venue(
        tmp_path / "wall.wkt",
        "POLYGON ((0 0, 9.9 0, 9.9 9, 10.1 9, 10.1 0, 20 0, 20 10, 0 10, 0 0))",
        "POLYGON ((19 0, 20 0, 20 1, 19 1, 19 0))",
    )
    grid = build_grid(load_venue(path), 0.5)
    start = grid.cell_of(np.array([[9.25, 0.75]]))[0]
    assert grid.distance_m[0, start] > 2 * 8.0


def test_auto_cell_size_stays_in_range(crowd_assets: Path) -> None:
    assert auto_cell_m(load_venue(crowd_assets / "bottleneck_040_venue.wkt")) == 0.4
    assert 0.4 <= auto_cell_m(load_venue(crowd_assets / "waterfront.wkt")) <= 1.0


def test_geojson_roles(tmp_path: Path) -> None:
    def feature(role: str, ring: list[list[float]], **props: Any) -> dict[str, Any]:
        return {
            "type": "Feature",
            "properties": {"role": role, **props},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }

    doc = {
        "type": "FeatureCollection",
        "features": [
            feature("walkable", [[0, 0], [30, 0], [30, 10], [0, 10], [0, 0]]),
            feature("obstacle", [[10, 2], [12, 2], [12, 8], [10, 8], [10, 2]]),
            feature("exit", [[29, 0], [30, 0], [30, 10], [29, 10], [29, 0]]),
            feature("spawn", [[1, 1], [9, 1], [9, 9], [1, 9], [1, 1]]),
            feature("zone", [[0, 0], [15, 0], [15, 10], [0, 10], [0, 0]], name="west"),
        ],
    }
    path = tmp_path / "venue.geojson"
    path.write_text(json.dumps(doc))
    venue = load_venue(path)
    assert venue.area_m2 == pytest.approx(300.0 - 12.0)
    assert len(venue.exits) == 1 and len(venue.spawns) == 1
    grid = build_grid(venue, 0.5)
    assert grid.zone_names == ["west", "rest"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("GEOMETRYCOLLECTION (POLYGON ((0 0, 1 0, 1 1, 0 0))", "not valid WKT"),
        ("POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))", "a bare polygon has no exits"),
        ("GEOMETRYCOLLECTION (POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0)))", "needs walkable"),
        (
            "GEOMETRYCOLLECTION (POLYGON ((0 0, 10 10, 10 0, 0 10, 0 0)), "
            "POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0)))",
            "invalid walkable area: Self-intersection",
        ),
        (
            "GEOMETRYCOLLECTION (POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0)), "
            "POLYGON ((20 20, 21 20, 21 21, 20 21, 20 20)))",
            "exit 0",
        ),
        (
            "GEOMETRYCOLLECTION (POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0)), POINT (1 1))",
            "exits: expected polygons, got Point",
        ),
    ],
)
def test_bad_wkt_names_the_file_and_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.wkt"
    path.write_text(text)
    with pytest.raises(SourceError, match=message) as info:
        load_venue(path)
    assert str(path) in str(info.value)


def test_geojson_feature_without_role_is_named(tmp_path: Path) -> None:
    path = tmp_path / "v.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "id": "gate-3", "properties": {}, "geometry": None}
                ],
            }
        )
    )
    with pytest.raises(SourceError, match=r"'gate-3'.*role None"):
        load_venue(path)


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="unknown venue format"):
        load_venue(tmp_path / "venue.shp")
    with pytest.raises(SourceError, match="cannot read"):
        load_venue(tmp_path / "missing.wkt")


@pytest.mark.parametrize("name", ["waterfront.wkt", "bottleneck_040_venue.wkt"])
def test_cell_classes_equal_polygon_per_cell_predicates(crowd_assets: Path, name: str) -> None:
    """The corner-and-boundary classification agrees with a polygon per cell: a full cell
    lies inside the walkable area; every other cell sharing area with it is partial (then
    clipped exactly) — including inside cells whose edge runs along a wall."""
    import math

    import shapely

    from scenarios.crowd.grid import _classify

    venue = load_venue(crowd_assets / name)
    cell = auto_cell_m(venue) * 0.7  # off the default, so cell edges fall anywhere
    minx, miny, maxx, maxy = venue.walkable.bounds
    rows, cols = math.ceil((maxy - miny) / cell), math.ceil((maxx - minx) / cell)
    full, partial = _classify(venue.walkable, (minx, miny), cell, rows, cols)
    jj, ii = np.meshgrid(np.arange(cols), np.arange(rows))
    x0, y0 = minx + jj.ravel() * cell, miny + ii.ravel() * cell
    boxes = shapely.box(x0, y0, x0 + cell, y0 + cell)
    inside = shapely.contains(venue.walkable, boxes)
    shared = shapely.area(shapely.intersection(boxes, venue.walkable))
    assert not (full & ~inside).any() and not (full & partial).any()
    assert partial[(shared > 1e-12) & ~full].all()
    on_wall = inside & ~full
    assert np.allclose(shared[on_wall], cell * cell)
