"""The application factory: OpenAPI schema, middleware, isolation."""

from __future__ import annotations

from pathlib import Path

from denhaag_twin import SITE, TestClient, Twin

from api.app import create_app
from api.settings import Settings


def test_operation_ids_are_unique_and_clean(twin: Twin) -> None:
    schema = twin.client.get("/openapi.json").json()
    ids = [op["operationId"] for path in schema["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    assert set(ids) >= {
        "health",
        "list_sites",
        "read_site",
        "read_object",
        "read_tree",
        "query_objects",
    }


def test_every_path_but_health_declares_security(twin: Twin) -> None:
    schema = twin.client.get("/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"ApiKey", "Bearer"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if path == "/health":
                assert "security" not in operation
            else:
                assert operation.get("security"), f"{method.upper()} {path}"


def test_large_responses_are_gzipped(twin: Twin) -> None:
    response = twin.client.get(
        f"/sites/{SITE}/objects",
        headers={**twin.headers("admin"), "Accept-Encoding": "gzip"},
        params={"prefix": "990100"},
    )
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.json()["count"] == 1000


def test_apps_do_not_share_state(twin: Twin, tmp_path: Path) -> None:
    with TestClient(create_app(Settings(store_url=tmp_path / "other.db"))) as other:
        assert other.get("/health").json()["sites"] == 0
    assert twin.client.get("/health").json()["sites"] == 1
