"""The API serves a PostgreSQL store exactly as it serves the embedded one."""

from __future__ import annotations

from pathlib import Path

import pytest
from denhaag_twin import DENHAAG, SITE, TestClient

from api.app import create_app
from api.auth import create_key
from api.settings import Settings
from cim.importer import import_source
from cim.store import open_store


@pytest.mark.postgres
def test_api_over_postgres(postgres_url: str, tmp_path: Path) -> None:
    store = open_store(postgres_url)
    import_source(store, DENHAAG, site=SITE)
    building = sorted(store.by_kind(SITE, "Building"), key=lambda o: o.code)[0]
    store.close()
    settings = Settings(store_url=postgres_url, keys_file=tmp_path / "keys.json")
    key = create_key(settings, "display")
    with TestClient(create_app(settings)) as client:
        headers = {"X-API-Key": key}
        health = client.get("/health").json()
        assert health == {"status": "ok", "store": "postgresql", "sites": 1}
        site = client.get(f"/sites/{SITE}", headers=headers).json()
        assert site["objects"] == {"Building": 844, "BuildingPart": 1653, "TINRelief": 1}
        detail = client.get(f"/sites/{SITE}/objects/{building.code}", headers=headers).json()
        assert detail["bbox"] == pytest.approx(list(building.bbox or ()))
        point = building.footprint.representative_point()
        found = client.get(
            f"/sites/{SITE}/objects",
            params={"point": f"{point.x},{point.y}", "kind": "Building"},
            headers=headers,
        ).json()
        assert [o["code"] for o in found["objects"]] == [building.code]
        tree = client.get(f"/sites/{SITE}/tree", params={"depth": 3}, headers=headers).json()
        assert tree["roots"][0]["kind"] == "District"
