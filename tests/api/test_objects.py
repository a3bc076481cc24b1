"""GET /sites/{site}/objects/{code}, /sites/{site}/tree and the object queries."""

from __future__ import annotations

from typing import Any

import pytest
import shapely
from denhaag_twin import SITE, Twin

from api.routes import objects as objects_route
from cim.model import ADMIN_KINDS, CimObject


def _get(twin: Twin, path: str, role: str = "admin", **params: Any) -> Any:
    response = twin.client.get(path, headers=twin.headers(role), params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _codes(result: dict[str, Any]) -> list[str]:
    return [o["code"] for o in result["objects"]]


def _located(twin: Twin) -> list[CimObject]:
    """The objects spatial queries search: not grid or admin objects."""
    return [o for o in twin.objects if o.kind not in ADMIN_KINDS]


# -- one object --------------------------------------------------------------------------------
def test_object_detail_matches_the_store(twin: Twin) -> None:
    building = twin.building
    found = _get(twin, f"/sites/{SITE}/objects/{building.code}")
    assert found["code"] == building.code
    assert found["kind"] == "Building"
    assert found["parent"] == building.parent
    assert found["bbox"] == list(building.bbox)  # type: ignore[arg-type]
    assert found["crs"] == "EPSG:7415"
    assert found["children"] == len(twin.parts) > 0
    assert found["attributes"]["source_id"] == building.source_id
    assert shapely.geometry.shape(found["footprint"]).equals(building.footprint)


def test_unknown_object_is_404_with_the_envelope(twin: Twin) -> None:
    response = twin.client.get(f"/sites/{SITE}/objects/990100999", headers=twin.headers("admin"))
    assert response.status_code == 404
    assert response.json() == {
        "error": {"type": "NotFoundError", "message": f"no object '990100999' in site '{SITE}'"}
    }
    response = twin.client.get("/sites/atlantis/objects/990100", headers=twin.headers("admin"))
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "no site named 'atlantis'"


# -- tree --------------------------------------------------------------------------------------
def test_tree_runs_district_street_community_cells(twin: Twin) -> None:
    tree = _get(twin, f"/sites/{SITE}/tree", depth=3)
    assert not tree["truncated"]
    [district] = tree["roots"]
    assert district["kind"] == "District"
    street = next(n for n in district["children"] if n["kind"] == "Street")
    [community] = street["children"]
    assert community["kind"] == "Community"
    cells = community["children"]
    assert {c["kind"] for c in cells} == {"GridCell"}
    assert len(cells) == sum(1 for o in twin.objects if o.kind == "GridCell")
    assert all(c["children"] == [] for c in cells)  # depth 3 stops above the units
    assert tree["nodes"] == 1 + len(district["children"]) + 1 + len(cells)


def test_tree_from_a_root(twin: Twin) -> None:
    tree = _get(twin, f"/sites/{SITE}/tree", root=twin.building.parent, depth=2)
    [cell] = tree["roots"]
    assert cell["code"] == twin.building.parent
    building = next(n for n in cell["children"] if n["code"] == twin.building.code)
    assert [p["code"] for p in building["children"]] == sorted(p.code for p in twin.parts)


@pytest.mark.inprocess
def test_tree_is_capped(twin: Twin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(objects_route, "TREE_NODE_CAP", 10)
    tree = _get(twin, f"/sites/{SITE}/tree", depth=6)
    assert tree["truncated"]
    assert tree["nodes"] == 10


@pytest.mark.parametrize("depth", [0, 7, "two"])
def test_tree_depth_is_checked(twin: Twin, depth: object) -> None:
    response = twin.client.get(
        f"/sites/{SITE}/tree", headers=twin.headers("admin"), params={"depth": depth}
    )
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "ValidationError"
    assert "depth" in response.json()["error"]["message"]


# -- queries -----------------------------------------------------------------------------------
def test_point_inside_a_footprint_returns_that_building(twin: Twin) -> None:
    inside = twin.building.footprint.representative_point()
    found = _get(twin, f"/sites/{SITE}/objects", point=f"{inside.x},{inside.y}", kind="Building")
    assert _codes(found) == [twin.building.code]
    everything = _get(twin, f"/sites/{SITE}/objects", point=f"{inside.x},{inside.y}")
    assert twin.building.code in _codes(everything)
    assert not {o["kind"] for o in everything["objects"]} & ADMIN_KINDS


def test_nearest_is_ordered_by_distance(twin: Twin) -> None:
    x, y = twin.building.bbox[0] - 25.0, twin.building.bbox[1] - 25.0  # type: ignore[index]
    found = _get(
        twin,
        f"/sites/{SITE}/objects",
        nearest=f"{x},{y}",
        count=8,
        kind=["Building", "BuildingPart"],
    )
    located = [o for o in _located(twin) if o.kind != "TINRelief"]
    distances = sorted(o.footprint.distance(shapely.Point(x, y)) for o in located)
    got = [o["distance_m"] for o in found["objects"]]
    assert found["count"] == 8
    assert got == sorted(got)
    assert got == pytest.approx(distances[:8])


def test_prefix_of_a_grid_cell_returns_its_units(twin: Twin) -> None:
    cell = twin.building.parent
    assert cell is not None
    found = _get(twin, f"/sites/{SITE}/objects", prefix=cell)
    expected = sorted(o.code for o in twin.objects if o.code.startswith(cell))
    assert _codes(found) == expected
    assert twin.building.code in expected and cell in expected
    units = _get(twin, f"/sites/{SITE}/objects", prefix=cell, kind="Building")
    assert {o["parent"] for o in units["objects"]} == {cell}


def test_bbox_returns_the_overlapping_objects(twin: Twin) -> None:
    minx, miny, _, maxx, maxy, _ = twin.building.bbox  # type: ignore[misc]
    found = _get(twin, f"/sites/{SITE}/objects", bbox=f"{minx},{miny},{maxx},{maxy}")
    expected = sorted(
        o.code
        for o in _located(twin)
        if o.bbox is not None
        and o.bbox[0] <= maxx
        and o.bbox[3] >= minx
        and o.bbox[1] <= maxy
        and o.bbox[4] >= miny
    )
    assert _codes(found) == expected
    assert twin.building.code in expected


def test_within_returns_the_footprints_inside(twin: Twin) -> None:
    area = twin.building.footprint.buffer(1.0)
    found = _get(twin, f"/sites/{SITE}/objects", within=area.wkt)
    expected = sorted(
        o.code for o in _located(twin) if o.footprint is not None and area.contains(o.footprint)
    )
    assert _codes(found) == expected
    assert {twin.building.code, *(p.code for p in twin.parts)} <= set(expected)


def test_limit_truncates(twin: Twin) -> None:
    found = _get(twin, f"/sites/{SITE}/objects", prefix="990100", limit=5)
    assert found["count"] == 5
    assert found["truncated"]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "1,2,nan,4"}, "bbox"),
        ({"bbox": "1,2,inf,4"}, "bbox"),
        ({"bbox": "5,2,1,4"}, "bbox"),
        ({"point": "1;2"}, "point"),
        ({"nearest": "1,2,3"}, "nearest"),
        ({"bbox": "0,0,1,1", "point": "0,0"}, "point"),
        ({}, "selector"),
        ({"within": "POLYGON((0 0, 1 0"}, "within"),
        ({"within": "POINT (1 2)"}, "within"),
        ({"within": "POLYGON((0 0, 1 1, 1 0, 0 1, 0 0))"}, "within"),
        ({"prefix": "990100", "count": 3}, "count"),
    ],
)
def test_bad_queries_are_400_naming_the_parameter(
    twin: Twin, params: dict[str, Any], parameter: str
) -> None:
    response = twin.client.get(
        f"/sites/{SITE}/objects", headers=twin.headers("admin"), params=params
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "QueryError"
    assert error["parameter"] == parameter
    assert error["message"].startswith(f"{parameter}:")


def test_overlong_wkt_is_rejected(twin: Twin) -> None:
    wkt = "POLYGON((" + ", ".join(["0 0"] * 2600) + "))"
    response = twin.client.get(
        f"/sites/{SITE}/objects", headers=twin.headers("admin"), params={"within": wkt}
    )
    assert response.status_code == 400
    assert response.json()["error"]["parameter"] == "within"


# -- a pilot's scope -----------------------------------------------------------------------------
def test_pilot_sees_its_building_and_parts(twin: Twin) -> None:
    found = _get(twin, f"/sites/{SITE}/objects/{twin.building.code}", role="pilot")
    assert found["children"] == len(twin.parts)
    for part in twin.parts:
        assert _get(twin, f"/sites/{SITE}/objects/{part.code}", role="pilot")["code"] == part.code
    listed = _get(twin, f"/sites/{SITE}/objects", role="pilot", prefix="990100")
    assert _codes(listed) == sorted([twin.building.code, *(p.code for p in twin.parts)])


def test_pilot_gets_404_outside_its_scope(twin: Twin) -> None:
    for code in (twin.other_building.code, twin.building.parent, "990100"):
        response = twin.client.get(f"/sites/{SITE}/objects/{code}", headers=twin.headers("pilot"))
        assert response.status_code == 404
        assert response.json()["error"]["message"] == f"no object {code!r} in site '{SITE}'"
    response = twin.client.get(
        f"/sites/{SITE}/tree",
        headers=twin.headers("pilot"),
        params={"root": twin.other_building.code},
    )
    assert response.status_code == 404


def test_pilot_tree_is_its_building(twin: Twin) -> None:
    tree = _get(twin, f"/sites/{SITE}/tree", role="pilot", depth=6)
    [root] = tree["roots"]
    assert root["code"] == twin.building.code
    assert [p["code"] for p in root["children"]] == sorted(p.code for p in twin.parts)
    assert tree["nodes"] == 1 + len(twin.parts)


def test_pilot_queries_stay_in_scope(twin: Twin) -> None:
    inside = twin.other_building.footprint.representative_point()
    found = _get(twin, f"/sites/{SITE}/objects", role="pilot", point=f"{inside.x},{inside.y}")
    assert found["objects"] == []
    near = _get(
        twin, f"/sites/{SITE}/objects", role="pilot", nearest=f"{inside.x},{inside.y}", count=100
    )
    assert set(_codes(near)) == {twin.building.code, *(p.code for p in twin.parts)}
