"""GET /health."""

from __future__ import annotations

from pathlib import Path

from denhaag_twin import TestClient, Twin

from api.app import create_app
from api.settings import Settings


def test_health_needs_no_key(twin: Twin) -> None:
    response = twin.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "store": "sqlite", "sites": 1}


def test_health_is_503_when_the_store_fails(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(store_url=tmp_path / "t.db"))) as client:
        assert client.get("/health").json()["sites"] == 0
        client.app.state.twin.store.close()  # type: ignore[attr-defined]
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "StoreError"
    assert "Traceback" not in response.text
