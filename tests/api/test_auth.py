"""Authentication and roles on every read route."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from denhaag_twin import SITE, TestClient, Twin

from api.app import create_app
from api.auth import create_key
from api.keys import KeyStore, Role, UnknownKeyError, hash_key
from api.settings import BootstrapKey, Settings
from cim.store import open_store
from twin.db import LiveDb


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


@pytest.mark.inprocess
def test_store_holds_hashes_only(twin: Twin) -> None:
    # the module's key file was imported into the store at the first request, then retired
    assert not twin.settings.keys_path.exists()
    retired = twin.settings.keys_path.with_name(twin.settings.keys_path.name + ".imported")
    assert retired.exists()
    db = LiveDb(twin.settings.store_url)
    try:
        rows = db.query("SELECT hash, id, role, scopes FROM api_keys")
    finally:
        db.close()
    text = repr(rows)
    for key in twin.keys.values():
        assert key not in text
        assert hash_key(key) in text
    assert all(len(digest) == 64 and digest.startswith(ident) for digest, ident, _, _ in rows)
    pilot = {hash_key(twin.keys["pilot"])}
    assert [json.loads(s) for h, _, r, s in rows if h in pilot] == [[twin.building.code]]


def test_key_created_while_serving_works_at_once(twin: Twin) -> None:
    key = create_key(twin.settings, "display", name="wall screen")
    response = twin.client.get("/sites", headers={"X-API-Key": key})
    assert response.status_code == 200


@pytest.mark.inprocess
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


# -- keys in the store, seen alike by every process (ADR 0019), on both engines ---------------
def _old_key_file(path: Path, key: str, role: str, scopes: list[str]) -> None:
    """A key file as versions before the store table wrote it."""
    digest = hash_key(key)
    entry = {"id": digest[:12], "sha256": digest, "role": role, "scopes": scopes}
    path.write_text(json.dumps({"version": 1, "keys": [{**entry, "name": "old"}]}))


def _key_rows(store_url: str) -> int:
    db = LiveDb(store_url)
    try:
        return int(db.query("SELECT COUNT(*) FROM api_keys")[0][0])
    finally:
        db.close()


def test_old_key_file_is_imported_once_and_retired(store_url: str, tmp_path: Path) -> None:
    open_store(store_url).close()  # a store of the old kind: no api_keys table yet
    legacy = tmp_path / "old.keys.json"
    _old_key_file(legacy, "twk_old-pilot", "pilot", ["9901"])
    first = KeyStore(store_url, legacy_file=legacy)
    second = KeyStore(store_url, legacy_file=legacy)  # another process, same store
    try:
        principal = first.authenticate("twk_old-pilot")
        assert (principal.role, principal.scopes) == (Role.PILOT, ("9901",))
        assert not legacy.exists()
        retired = legacy.with_name("old.keys.json.imported")
        assert retired.exists()
        assert second.authenticate("twk_old-pilot") == principal  # from the table
        # the file back again (a second process importing the same file): nothing doubles
        shutil.copy(retired, legacy)
        assert second.authenticate("twk_old-pilot") == principal
        assert not legacy.exists()
        assert _key_rows(store_url) == 1
        assert [k["name"] for k in first.list_keys()] == ["old"]
    finally:
        first.close()
        second.close()


def test_key_made_in_one_process_works_in_another_and_dies_in_both(store_url: str) -> None:
    maker, server = KeyStore(store_url), KeyStore(store_url)
    try:
        with pytest.raises(UnknownKeyError):
            server.authenticate("twk_nothing")
        key = maker.create_key("planner", name="ops")
        principal = server.authenticate(key)
        assert principal.role is Role.PLANNER and principal.name == "ops"
        assert [k["id"] for k in server.list_keys()] == [principal.key_id]
        assert server.revoke_key(principal.key_id)  # revoked through the other instance
        for keys in (maker, server):
            with pytest.raises(UnknownKeyError):
                keys.authenticate(key)
        assert not maker.revoke_key(principal.key_id)
        assert maker.list_keys() == []
    finally:
        maker.close()
        server.close()


def test_bootstrap_keys_stay_in_memory(store_url: str) -> None:
    keys = KeyStore(store_url, [BootstrapKey("boot-display", "display")])
    other = KeyStore(store_url)
    try:
        assert keys.authenticate("boot-display").role is Role.DISPLAY
        assert keys.list_keys() == []
        assert _key_rows(store_url) == 0
        with pytest.raises(UnknownKeyError):
            other.authenticate("boot-display")
    finally:
        keys.close()
        other.close()
