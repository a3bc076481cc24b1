"""``/docs``, ``/redoc`` and ``/fonts``: pages and files served from the installed npm
packages, never from a CDN (the browser test in ``tests/viewer`` renders them offline)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.routes.viewer import FONTS
from api.settings import Settings

ASSET = re.compile(r"""(?:src|href|url)\s*[=:(]\s*['"]([^'"]+)['"]""")


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    # the lifespan (store, workers) is not started: these routes need none of it
    return TestClient(create_app(Settings(store_url=tmp_path / "t.db")))


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_load_everything_from_the_app(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assets = ASSET.findall(response.text)
    assert any(a.endswith(".js") for a in assets), assets
    for asset in assets:
        assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
        assert client.get(asset).status_code == 200, asset
    assert "googleapis" not in response.text and "jsdelivr" not in response.text
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_the_docs_need_no_key_like_the_schema(client: TestClient) -> None:
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


def test_the_fonts_served_are_the_named_subset_only(client: TestClient) -> None:
    for name in FONTS:
        response = client.get(f"/fonts/{name}")
        assert response.status_code == 200, name
        assert "max-age" in response.headers["cache-control"]
    woff2 = client.get("/fonts/noto-sans-sc-400.woff2").content
    assert woff2[:4] == b"wOF2" and len(woff2) > 500_000  # the whole simplified set
    assert client.get("/fonts/noto-sans-sc-latin-400-normal.woff2").status_code == 404
    assert client.get("/fonts/..%2Fpackage.json").status_code == 404


def test_the_viewer_modules_are_revalidated(client: TestClient) -> None:
    # one stale module among new ones breaks the page: each load asks again
    for name in ("viewer.js", "wall.js", "i18n.js", "viewer.css"):
        response = client.get(f"/viewer/{name}")
        assert response.status_code == 200 and response.headers["cache-control"] == "no-cache"
