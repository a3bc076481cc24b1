"""The hostile-input suite: schemathesis against every operation of the API, once per role.

Requests are generated from the application's own OpenAPI schema (valid and invalid
parameters and bodies: huge integers, odd unicode, empty and malformed bodies) and sent in
process (ASGI) over a copy of the Den Haag store with keys of every role (the pilot scoped
to one building) and none; crafted malformed bodies and odd path values follow. Every
answer must be below 500, have a status the operation documents, the media type it
documents and a body matching the documented schema. Half of the requests with path
parameters name the real site, building, and a case, layer and rule made first, so they
get past the 404 and into the queries and workflows. Bounds and exclusions: ADR 0020,
"The hostile-input suite". The figures (requests, operations, statuses per role) land in
``build/test-output/hostile_api.json``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
import schemathesis
from denhaag_twin import SITE
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation.modes import GenerationMode
from schemathesis.python import asgi

from api.app import create_app
from api.keys import KeyStore
from api.settings import Settings
from cim.store import open_store

ROLES = ("admin", "planner", "display", "pilot", "device", "none")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: Examples per operation and role (``TWIN_HOSTILE_EXAMPLES`` for a longer hunt).
EXAMPLES = int(os.environ.get("TWIN_HOSTILE_EXAMPLES", "40"))
OUTPUT = Path(__file__).parents[2] / "build" / "test-output" / "hostile_api.json"

#: Operations that never get the real site: its tileset build (a job of about a minute of
#: CPU, started by ``GET tileset.json`` too) and snapshots (seconds of VTK each).
RANDOM_SITE_ONLY = frozenset(
    {
        "GET /sites/{site}/tiles/tileset.json",
        "POST /sites/{site}/tiles",
        "GET /sites/{site}/image.png",
    }
)

#: ``(part, role) ->`` figures, for :func:`_report`.
FIGURES: dict[tuple[str, str], dict[str, Any]] = {}


@pytest.fixture(scope="module")
def hostile(denhaag_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The application over a copy of the Den Haag store (what the suite writes stays
    there), its keys and building, and the loaded schema."""
    folder = tmp_path_factory.mktemp("hostile")
    copy = folder / "twin.db"
    source, target = sqlite3.connect(denhaag_store), sqlite3.connect(copy)
    with closing(source), closing(target):
        source.backup(target)
    store = open_store(copy)
    try:
        buildings = sorted(
            (o for o in store.all_objects(SITE) if o.kind == "Building"), key=lambda o: o.code
        )
    finally:
        store.close()
    building = buildings[0].code
    keystore = KeyStore(copy)
    keys = {
        role: keystore.create_key(role, name=f"hostile {role}")
        for role in ("admin", "planner", "display", "device")
    }
    keys["pilot"] = keystore.create_key("pilot", [f"{SITE}:{building}"], name="hostile pilot")
    keystore.close()
    config = Settings(
        store_url=copy,
        cache_dir=folder / "cache",
        run_workers=1,
        job_workers=1,
        max_runs_per_key=2,
    )
    app = create_app(config)
    schema = schemathesis.openapi.from_dict(_homogeneous_tuples_as_items(app.openapi()))
    schema.app = app  # requests go to the application in process (ASGI)
    try:
        yield schema, keys, _seed(app, keys, building)
    finally:
        asgi.shutdown_lifespans()
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        OUTPUT.write_text(json.dumps(_report(), indent=2) + "\n")


@dataclass(frozen=True)
class Seeded:
    """Things of the store the requests can name: the pilot's building and, made before the
    suite runs, a case on it, a layer and a rule."""

    building: str
    case: str
    layer: str
    rule: str

    def values(self, template: str) -> dict[str, str]:
        """The real value of each path parameter of ``template`` that has one."""
        real = {"site": SITE}
        if template.startswith("/cases/"):
            real["code"] = self.case
        elif not template.startswith("/alerts/"):  # no alerts: nothing has been read
            real["code"] = self.building
        if "/layers/" in template:
            real["name"] = self.layer
        if template.startswith("/rules/"):
            real["ident"] = self.rule
        names = [part[1:-1] for part in template.split("/") if part.startswith("{")]
        return {name: real[name] for name in names if name in real}


def _seed(app: Any, keys: dict[str, str], building: str) -> Seeded:
    """A case on ``building``, a layer and a rule, made through the API."""
    with asgi.get_client(app) as client:

        def post(method: str, path: str, role: str, body: dict[str, Any]) -> Any:
            answer = client.request(method, path, json=body, headers={"X-API-Key": keys[role]})
            assert answer.status_code in (200, 201), answer.text
            return answer.json()

        case = post("POST", "/cases", "planner", {"title": "seed", "object_code": building})
        post("PUT", f"/sites/{SITE}/layers/seed", "admin", {"values": {building: 1.0}})
        rule = post(
            "POST", "/rules", "admin", {"name": "seed", "kind": "high", "levels": [[30, "warn"]]}
        )
    return Seeded(building, case["code"], "seed", str(rule["id"]))


def _homogeneous_tuples_as_items(node: Any) -> Any:
    """The schema with each tuple of one item type (``prefixItems: [X, X, X]``, a box) as
    ``items: X`` with its length: the same arrays. schemathesis 4.32 turns ``prefixItems``
    of a response schema into a Draft 4 ``items`` list and then refuses that list as an
    invalid OpenAPI 3.1 schema ("Invalid Schema Object in response definition")."""
    if isinstance(node, list):
        return [_homogeneous_tuples_as_items(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _homogeneous_tuples_as_items(value) for key, value in node.items()}
    items = out.get("prefixItems")
    if isinstance(items, list) and items and all(i == items[0] for i in items):
        del out["prefixItems"]
        out.update(items=items[0], minItems=len(items), maxItems=len(items))
    return out


def _report() -> dict[str, Any]:
    """The figures: per role, then per part of the suite (``generated`` by schemathesis,
    ``crafted`` bodies and path values) within it."""

    def brief(figures: dict[str, Any]) -> dict[str, Any]:
        return {
            "requests": figures["requests"],
            "operations": len(figures["operations"]),
            "server_errors": figures["server_errors"],
            "conformance_failures": figures["conformance_failures"],
            "statuses": dict(sorted(figures["statuses"].items())),
            "seconds": round(figures["seconds"], 1),
        }

    roles: dict[str, Any] = {}
    for (part, role), figures in sorted(FIGURES.items(), key=lambda item: item[0][1]):
        entry = roles.setdefault(role, {"requests": 0, "operations": set()})
        entry["requests"] += figures["requests"]
        entry["operations"] |= figures["operations"]
        entry[part] = brief(figures)
    for entry in roles.values():
        entry["operations"] = len(entry["operations"])
    every = list(FIGURES.values())
    return {
        "examples_per_operation": EXAMPLES,
        "operations": len(set().union(*(f["operations"] for f in every))) if every else 0,
        "requests": sum(f["requests"] for f in every),
        "server_errors": sum(f["server_errors"] for f in every),
        "conformance_failures": sum(f["conformance_failures"] for f in every),
        "roles": roles,
    }


def _strategy(operation: Any) -> Any:
    """Valid and invalid requests of ``operation``."""
    return st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )


@pytest.mark.parametrize("role", ROLES)
def test_no_operation_answers_5xx_or_off_its_schema(role: str, hostile: Any) -> None:
    schema, keys, seeded = hostile
    figures = _figures("generated", role)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"

        hostile_requests = _property(operation, label, role, keys, seeded, figures)
        try:
            hostile_requests()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis groups its failures
            failures.append(f"{label}: {_describe(exc)[:3000]}")
    assert not failures, "\n\n".join(failures)


#: Bodies no schema describes: empty, cut, of the wrong JSON type, not JSON, too deep, a
#: 5,000-digit number, NaN, in another media type or none: ``(Content-Type, body)``.
MALFORMED_BODIES: tuple[tuple[str | None, bytes], ...] = (
    ("application/json", b""),
    ("application/json", b'{"title": '),
    ("application/json", b"null"),
    ("application/json", b"[]"),
    ("application/json", b'"text"'),
    ("application/json", b'{"a": NaN, "b": Infinity}'),
    ("application/json", b"9" * 5000),
    ("application/json", b"[" * 5000 + b"]" * 5000),
    ("application/json; charset=latin-1", b'{"\xff": 1}'),
    ("text/plain", b"hello"),
    ("application/x-www-form-urlencoded", b"a=1&b=2"),
    ("multipart/form-data; boundary=x", b"--x--"),
    (None, b"{}"),
)
#: Path parameter values no client should send: huge and negative integers, 3,000
#: characters, NUL, a lone ``%``, accents, emoji, bytes that are not UTF-8 and an encoded
#: surrogate, quotes and markup (percent-encoded on the wire). Not ``..`` or ``a/b``: the
#: client folds dot segments and the server decodes ``%2F``, so those reach another route.
ODD_PATH_VALUES: tuple[str | bytes, ...] = (
    "9" * 30,
    "-1",
    "9" * 3000,
    "\x00",
    "%",
    "é",
    "\U0001f600",
    b"\xff",
    b"\xed\xa0\x80",
    " ",
    "'; DROP TABLE live_cases; --",
    "<script>",
)


@pytest.mark.parametrize("role", ROLES)
def test_malformed_bodies_and_odd_path_values_get_documented_answers(
    role: str, hostile: Any
) -> None:
    schema, keys, seeded = hostile
    figures = _figures("crafted", role)
    failures: list[str] = []
    with asgi.get_client(schema.app) as client:
        for result in schema.get_all_operations():
            operation = result.ok()
            label = f"{operation.method.upper()} {operation.path}"
            real = label not in RANDOM_SITE_ONLY
            values = _real_path_values(operation.path, seeded if real else None)
            trials: list[tuple[str, Mapping[str, str | bytes], str | None, bytes]] = [
                (f"{name}={odd!r:.40}", {**values, name: odd}, None, b"")
                for name in values
                for odd in ODD_PATH_VALUES
            ]
            if operation.body:
                trials += [
                    (f"body {kind}: {body[:30]!r}", values, kind, body)
                    for kind, body in MALFORMED_BODIES
                ]
            for what, chosen, media_type, body in trials:
                headers = {} if role == "none" else {"X-API-Key": keys[role]}
                if media_type is not None:
                    headers["Content-Type"] = media_type
                started = time.perf_counter()
                response = client.request(
                    operation.method.upper(),
                    _path(operation.path, chosen),
                    data=body or None,
                    headers=headers,
                )
                _count(figures, label, response.status_code, time.perf_counter() - started)
                try:
                    sent = {k: _text(v) for k, v in chosen.items()}
                    case = operation.Case(path_parameters=sent, headers=headers)
                    case.validate_response(response, checks=CHECKS)
                except (Exception, BaseExceptionGroup) as exc:
                    figures["conformance_failures"] += response.status_code < 500
                    failures.append(f"{label} {what}: {_describe(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)


def _real_path_values(template: str, seeded: Seeded | None) -> dict[str, str]:
    """Path parameters that name things of the store where they can (the site, the
    building, the seeded case, layer and rule), plain words elsewhere; ``seeded`` ``None``:
    nothing real."""
    real = seeded.values(template) if seeded is not None else {}
    names = [part[1:-1] for part in template.split("/") if part.startswith("{")]
    fallback = {"level": "grid", "action": "close", "ident": "1", "path": "Things"}
    return {name: real.get(name) or fallback.get(name, "nothing") for name in names}


def _path(template: str, values: Mapping[str, str | bytes]) -> str:
    """``template`` with each ``{name}`` replaced by its value, percent-encoded."""
    for name, value in values.items():
        raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
        template = template.replace("{" + name + "}", quote_from_bytes(raw, safe=""))
    return template


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _figures(part: str, role: str) -> dict[str, Any]:
    """The running figures of ``role`` in ``part`` of the suite."""
    return FIGURES.setdefault(
        (part, role),
        {
            "requests": 0,
            "operations": set(),
            "server_errors": 0,
            "conformance_failures": 0,
            "statuses": Counter(),
            "seconds": 0.0,
        },
    )


def _count(figures: dict[str, Any], label: str, status: int, seconds: float) -> None:
    figures["seconds"] += seconds
    figures["requests"] += 1
    figures["operations"].add(label)
    figures["statuses"][str(status)] += 1
    figures["server_errors"] += status >= 500


def _property(
    operation: Any,
    label: str,
    role: str,
    keys: dict[str, str],
    seeded: Seeded,
    figures: dict[str, Any],
) -> Any:
    """The hypothesis test sending :data:`EXAMPLES` requests of ``operation``: the same ones
    every run under the suite's ``repeatable`` profile, fresh ones with
    ``HYPOTHESIS_PROFILE=explore``."""

    @given(case=_strategy(operation))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def hostile_requests(case: Any) -> None:
        _send(case, label, role, keys, seeded, figures)

    return hostile_requests


def _send(
    case: Any,
    label: str,
    role: str,
    keys: dict[str, str],
    seeded: Seeded,
    figures: dict[str, Any],
) -> None:
    """Send one generated request with the key of ``role`` and check the answer."""
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in _AUTH}
    if role != "none":
        headers["X-API-Key"] = keys[role]
    case.headers = headers
    if case.path_parameters and label not in RANDOM_SITE_ONLY and _heads(case.path_parameters):
        case.path_parameters.update(seeded.values(case.path))
    started = time.perf_counter()
    response = case.call()
    _count(figures, label, response.status_code, time.perf_counter() - started)
    try:
        case.validate_response(response, checks=CHECKS)
    except Exception:
        figures["conformance_failures"] += response.status_code < 500
        raise


_AUTH = frozenset({"x-api-key", "authorization"})


def _heads(parameters: dict[str, Any]) -> bool:
    """A coin toss decided by the generated parameters alone (so hypothesis, sending the
    same case again, sends the same request)."""
    return zlib.crc32(repr(sorted(parameters.items())).encode()) % 2 == 0


def _describe(error: BaseException) -> str:
    """The message of ``error`` and of every exception it groups or wraps."""
    text = str(error)
    if isinstance(error, BaseExceptionGroup):
        text += "".join("\n  " + _describe(e).replace("\n", "\n  ") for e in error.exceptions)
    return text
