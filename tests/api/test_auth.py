"""Authentication and roles on every read route."""

from __future__ import annotations

import json

import pytest
from denhaag_twin import SITE, TestClient, Twin

from api.app import create_app
from api.auth import create_key
from api.settings import Settings


def _routes(twin: Twin) -> list[str]:
    code = twin.building.code
    return [
        "/sites",
        f"/sites/{SITE}",
        f"/sites/{SITE}/objects/{code}",
        f"/sites/{SITE}/tree",
        f"/sites/{SITE}/objects?prefix={code}",
    ]


def test_every_route_but_health_needs_a_key(twin: Twin) -> None:
    for path in _routes(twin):
        response = twin.client.get(path)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["error"]["type"] == "AuthenticationError"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": "twk_not-a-key"},
        {"Authorization": "Bearer twk_not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
)
def test_unknown_key_is_401(twin: Twin, headers: dict[str, str]) -> None:
    for path in _routes(twin):
        response = twin.client.get(path, headers=headers)
        assert response.status_code == 401, path


def test_key_is_accepted_as_bearer_token(twin: Twin) -> None:
    response = twin.client.get("/sites", headers={"Authorization": f"Bearer {twin.keys['admin']}"})
    assert response.status_code == 200
    assert [s["name"] for s in response.json()] == [SITE]


@pytest.mark.parametrize("role", ["admin", "planner", "display", "pilot"])
def test_reading_roles_read(twin: Twin, role: str) -> None:
    for path in _routes(twin):
        assert twin.client.get(path, headers=twin.headers(role)).status_code == 200, path


def test_device_may_not_read(twin: Twin) -> None:
    for path in _routes(twin):
        response = twin.client.get(path, headers=twin.headers("device"))
        assert response.status_code == 403, path
        assert response.json()["error"]["type"] == "PermissionDeniedError"


def test_keys_file_holds_hashes_only(twin: Twin) -> None:
    text = twin.settings.keys_path.read_text()
    for key in twin.keys.values():
        assert key not in text
    stored = json.loads(text)["keys"]
    assert sorted(k["role"] for k in stored) == ["admin", "device", "display", "pilot", "planner"]
    assert all(len(k["sha256"]) == 64 for k in stored)
    assert [k["scopes"] for k in stored if k["role"] == "pilot"] == [[twin.building.code]]


def test_key_created_while_serving_works_at_once(twin: Twin) -> None:
    key = create_key(twin.settings, "display", name="wall screen")
    response = twin.client.get("/sites", headers={"X-API-Key": key})
    assert response.status_code == 200


def test_bootstrap_keys_from_the_environment(twin: Twin) -> None:
    code = twin.building.code
    settings = Settings.from_env(
        {
            "TWIN_STORE": str(twin.settings.store_url),
            "TWIN_KEYS_FILE": str(twin.settings.keys_path.with_name("bootstrap.keys.json")),
            "TWIN_API_KEYS": f"boot-admin:admin; boot-pilot:pilot:{code}",
            "TWIN_ADMIN_KEY": "automation-admin",
        }
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/sites", headers={"X-API-Key": "boot-admin"}).status_code == 200
        automation = client.get("/jobs", headers={"X-API-Key": "automation-admin"})
        assert automation.status_code == 200
        tree = client.get(f"/sites/{SITE}/tree", headers={"X-API-Key": "boot-pilot"}).json()
        assert [r["code"] for r in tree["roots"]] == [code]
    assert not settings.keys_path.exists()  # bootstrap keys are never written


@pytest.mark.parametrize(
    ("role", "scopes"),
    [("root", ()), ("pilot", ()), ("admin", ("990100",)), ("pilot", ("99 01",))],
)
def test_create_key_rejects_bad_grants(twin: Twin, role: str, scopes: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match=r"role|scope"):
        create_key(twin.settings, role, scopes)


def test_malformed_bootstrap_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="entry 2"):
        Settings.from_env({"TWIN_API_KEYS": "k:admin;onlykey"})
    with pytest.raises(ValueError, match="TWIN_JOB_WORKERS"):
        Settings.from_env({"TWIN_JOB_WORKERS": "-1"})
