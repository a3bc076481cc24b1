"""GET /sites and /sites/{site}."""

from __future__ import annotations

import pytest
from denhaag_twin import SITE, Twin


def test_admin_lists_the_site(twin: Twin) -> None:
    sites = twin.client.get("/sites", headers=twin.headers("admin")).json()
    assert len(sites) == 1
    site = sites[0]
    assert site["name"] == SITE
    assert site["crs"] == "EPSG:7415"
    assert site["version"] == 1
    assert site["objects"] == {"Building": 844, "BuildingPart": 1653, "TINRelief": 1}
    minx, miny, _, maxx, maxy, _ = site["bbox"]
    assert minx < twin.building.bbox[0] < maxx  # type: ignore[index]
    assert miny < twin.building.bbox[1] < maxy  # type: ignore[index]


def test_admin_reads_the_site(twin: Twin) -> None:
    site = twin.client.get(f"/sites/{SITE}", headers=twin.headers("admin")).json()
    cells = sum(1 for o in twin.objects if o.kind == "GridCell")
    assert site["grid"] == {"Community": 1, "District": 1, "GridCell": cells, "Street": 1}
    assert [s["key"] for s in site["sources"]] == ["denhaag_01_lod2.city.json"]
    assert site["sources"][0]["objects"] == 844 + 1653 + 1
    assert site["division"] == "990100001001"
    assert site["cell_m"] == 100.0
    assert len(site["enu_origin"]) == 3


def test_pilot_sees_only_its_unit_in_the_site(twin: Twin) -> None:
    headers = twin.headers("pilot")
    sites = twin.client.get("/sites", headers=headers).json()
    assert [s["name"] for s in sites] == [SITE]
    assert sites[0]["objects"] == {"Building": 1, "BuildingPart": len(twin.parts)}
    assert sites[0]["bbox"] == pytest.approx(list(twin.building.bbox))  # type: ignore[arg-type]
    site = twin.client.get(f"/sites/{SITE}", headers=headers).json()
    assert site["grid"] == {}


def test_unknown_site_is_404_with_the_envelope(twin: Twin) -> None:
    for role in ("admin", "pilot"):
        response = twin.client.get("/sites/atlantis", headers=twin.headers(role))
        assert response.status_code == 404
        assert response.json() == {
            "error": {"type": "NotFoundError", "message": "no site named 'atlantis'"}
        }
