"""Roles across every route the application has: read-only keys never write."""

from __future__ import annotations

import re

import pytest
from denhaag_twin import SITE, Twin

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _concrete(path: str, twin: Twin) -> str:
    fill = {"site": SITE, "code": twin.building.code}
    return re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: fill.get(m.group(1), "x1"), path)


def _operations(twin: Twin) -> list[tuple[str, str]]:
    """Every (method, concrete path) the OpenAPI document lists."""
    paths = twin.client.get("/openapi.json").json()["paths"]
    return [
        (method.upper(), _concrete(path, twin))
        for path, operations in paths.items()
        for method in operations
    ]


def _write_routes(twin: Twin) -> list[tuple[str, str]]:
    routes = [(m, p) for m, p in _operations(twin) if m in WRITES]
    assert len(routes) >= 3, "the application has write routes"
    return routes


#: What a unit pilot may change: its unit's alerts and cases (it works them), and start (and
#: stop) its own building's evacuation drill; nothing else.
PILOT_WRITES = ("/alerts", "/cases", "/drills/evacuation", "/runs/")


@pytest.mark.parametrize("role", ["display", "pilot"])
def test_read_only_keys_cannot_write_anything(twin: Twin, role: str) -> None:
    for method, path in _write_routes(twin):
        if role == "pilot" and path.startswith(PILOT_WRITES):
            continue
        response = twin.client.request(method, path, headers=twin.headers(role), json={})
        assert response.status_code in (403, 404), (method, path, response.status_code)
        if response.status_code == 404:  # only a pilot, and only outside its scope
            assert role == "pilot", (method, path)


def test_no_route_but_health_and_the_viewer_is_open(twin: Twin) -> None:
    operations = [(m, p) for m, p in _operations(twin) if p != "/health"]
    assert len(operations) >= 10
    for method, path in operations:
        response = twin.client.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.status_code)
