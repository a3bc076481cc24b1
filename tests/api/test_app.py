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


def test_every_operation_documents_its_error_answers_with_the_error_body(twin: Twin) -> None:
    schema = twin.client.get("/openapi.json").json()
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            answers = operation["responses"]
            errors = {s for s in answers if s.startswith(("4", "5"))}
            assert "503" in errors, f"{method.upper()} {path}"
            if path != "/health":
                assert "401" in errors, f"{method.upper()} {path}"
            if "{" in path:
                assert "404" in errors, f"{method.upper()} {path}"
            if "requestBody" in operation:
                assert {"400", "413", "422"} <= errors, f"{method.upper()} {path}"
            if method == "get":
                assert "304" in answers, f"{method.upper()} {path}"
            for status in errors:
                body = answers[status]["content"]["application/json"]["schema"]
                assert body == error_ref, f"{method.upper()} {path} {status}"
    drills = schema["paths"]["/drills/crowd"]["post"]["responses"]
    assert {"400", "401", "403", "404", "413", "422", "429", "503"} <= set(drills)
    assert "403" not in schema["paths"]["/jobs"]["get"]["responses"]  # any key lists its own
