"""IFC placement from the IfcSite's RefLatitude / RefLongitude / RefElevation and TrueNorth,
when the user names the site's CRS (ADR 0013, addendum of issue 18)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyproj
import pytest

from cim.errors import SourceError
from cim.importer import import_source
from cim.loaders import LoadOptions, load_source
from cim.loaders.base import ParsedSource
from cim.loaders.ifc_placement import compound_degrees
from cim.store import open_store

#: NAD83 / UTM zone 16N: the Duplex's IfcSite says Chicago (41°52'27.84"N, 87°38'21.84"W)
UTM16 = "EPSG:26916"
LAT = 41 + 52 / 60 + 27.84 / 3600
LON = -(87 + 38 / 60 + 21.839999 / 3600)


@pytest.fixture(scope="module")
def duplex_path() -> Path:
    return Path(__file__).parent.parent.parent / "assets" / "ifc" / "Duplex_A_20110907.ifc"


@pytest.fixture(scope="module")
def placed(duplex_path: Path) -> ParsedSource:
    return load_source(duplex_path, LoadOptions(crs=UTM16))


def _site(parsed: ParsedSource) -> int:
    (index,) = [i for i, o in enumerate(parsed.objects) if o.kind == "IfcSite"]
    return index


def _north_of_grid_deg(lon: float, lat: float) -> float:
    """The angle of true north in the UTM grid, counter-clockwise from grid east."""
    forward = pyproj.Transformer.from_crs(4326, UTM16, always_xy=True)
    x0, y0 = forward.transform(lon, lat)
    x1, y1 = forward.transform(lon, lat + 1e-4)
    return math.degrees(math.atan2(y1 - y0, x1 - x0))


@pytest.mark.parametrize(
    ("angle", "degrees"),
    [
        ((41, 52, 27, 840000), 41.874400),
        ((-87, -38, -21, -839999), -87.639400),
        ((51, 30, 0), 51.5),
        ((0, 0, 36, 0), 0.01),
    ],
)
def test_compound_plane_angles(angle: tuple[int, ...], degrees: float) -> None:
    assert compound_degrees(angle) == pytest.approx(degrees, abs=1e-6)


@pytest.mark.parametrize("angle", [(1, 2), (1, 60, 0), (1, 2, 3, 4, 5), (1, 2, 3, 1_000_000)])
def test_malformed_compound_angles(angle: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"minutes|degrees"):
        compound_degrees(angle)


def test_the_site_origin_goes_to_its_latitude_and_longitude(placed: ParsedSource) -> None:
    assert placed.crs == UTM16
    site = _site(placed)
    attributes = placed.objects[site].attributes
    assert attributes["georeferencing"] == "IfcSite"
    assert (attributes["ref_latitude_deg"], attributes["ref_longitude_deg"]) == (
        pytest.approx(LAT, abs=1e-9),
        pytest.approx(LON, abs=1e-9),
    )
    expected = pyproj.Transformer.from_crs(4326, UTM16, always_xy=True).transform(LON, LAT)
    assert placed.points is not None
    x, y, z = placed.points[site]
    assert math.hypot(x - expected[0], y - expected[1]) < 1.0
    assert z == pytest.approx(0.0)  # RefElevation -0.
    # without TrueNorth, model +y is true north: turned by the grid convergence only
    assert attributes["map_rotation_deg"] == pytest.approx(_north_of_grid_deg(LON, LAT) - 90)


def test_the_building_stands_around_its_reference_point(
    placed: ParsedSource, tmp_path: Path, duplex_path: Path
) -> None:
    wall = next(i for i, o in enumerate(placed.objects) if o.kind == "IfcWallStandardCase")
    box = placed.geometry.bounds()[wall]
    x, y = pyproj.Transformer.from_crs(4326, UTM16, always_xy=True).transform(LON, LAT)
    assert abs(box[0] - x) < 40 and abs(box[1] - y) < 40
    store = open_store(tmp_path / "t.db")
    report = import_source(store, duplex_path, site="chicago", options=LoadOptions(crs=UTM16))
    assert report.crs == UTM16 and report.kinds["IfcSpace"] == 21


def test_true_north_turns_the_model(tmp_path: Path, duplex_path: Path) -> None:
    # model -x is north: the model turns 90° clockwise (and by the grid convergence)
    text = duplex_path.read_text()
    context = "#27=IFCGEOMETRICREPRESENTATIONCONTEXT($,'Model',3,1.E-009,#26,$);"
    assert context in text
    turned = text.replace(
        context,
        "#27=IFCGEOMETRICREPRESENTATIONCONTEXT($,'Model',3,1.E-009,#26,#9999001);\n"
        "#9999001=IFCDIRECTION((-1.,0.));",
    )
    path = tmp_path / "duplex_north_west.ifc"
    path.write_text(turned)
    parsed = load_source(path, LoadOptions(crs=UTM16))
    rotation = parsed.objects[_site(parsed)].attributes["map_rotation_deg"]
    assert rotation == pytest.approx(_north_of_grid_deg(LON, LAT) - 180)
    # the same as placing it by hand at the site's point with that rotation
    x, y = pyproj.Transformer.from_crs(4326, UTM16, always_xy=True).transform(LON, LAT)
    by_hand = load_source(duplex_path, LoadOptions(crs=UTM16, at=(x, y, rotation)))
    np.testing.assert_allclose(parsed.geometry.vertices, by_hand.geometry.vertices, atol=1e-6)


def test_at_still_wins(duplex_path: Path) -> None:
    parsed = load_source(duplex_path, LoadOptions(crs=UTM16, at=(500000.0, 4600000.0, 0.0)))
    site = _site(parsed)
    assert parsed.objects[site].attributes["georeferencing"] == "at"
    assert parsed.points is not None
    np.testing.assert_allclose(parsed.points[site], [500000.0, 4600000.0, 0.0])


def test_a_crs_that_does_not_cover_the_site_is_refused(duplex_path: Path) -> None:
    with pytest.raises(SourceError, match=r"lies outside the area of use of EPSG:28992") as info:
        load_source(duplex_path, LoadOptions(crs="EPSG:28992"))
    assert info.value.object_id == "1xS3BCk291UvhgP2a6eflN"  # the IfcSite
    with pytest.raises(SourceError, match="must be a projected CRS"):
        load_source(duplex_path, LoadOptions(crs="EPSG:4326"))


def test_without_a_reference_point_crs_alone_is_refused(tmp_path: Path, duplex_path: Path) -> None:
    text = duplex_path.read_text()
    path = tmp_path / "duplex_no_latitude.ifc"
    path.write_text(text.replace("(41,52,27,840000),(-87,-38,-21,-839999)", "$,$"))
    with pytest.raises(SourceError, match="no IfcMapConversion: pass --at X,Y,ROTATION"):
        load_source(path, LoadOptions(crs=UTM16))
    with pytest.raises(SourceError, match="or --crs alone to place it at its IfcSite"):
        load_source(duplex_path)


def test_cli_places_the_duplex_from_its_site_with_crs_alone(
    duplex_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from api.cli import main

    db = str(tmp_path / "cli.db")
    assert main(["import", str(duplex_path), "--crs", UTM16, "--site", "c", "--store", db]) == 0
    capsys.readouterr()
    assert main(["info", "--store", db, "--json"]) == 0
    site = json.loads(capsys.readouterr().out)["sites"]["c"]
    x, y = pyproj.Transformer.from_crs(4326, UTM16, always_xy=True).transform(LON, LAT)
    minx, miny, _, maxx, maxy, _ = site["bbox"]
    assert minx - 1 <= x <= maxx + 1 and miny - 1 <= y <= maxy + 1
    assert maxx - minx < 60 and maxy - miny < 60
