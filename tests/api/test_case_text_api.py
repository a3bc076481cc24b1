"""Case, alert and rule texts are bounded: a longer one is refused, 422 naming the field,
and nothing is stored (ADR 0020)."""

from __future__ import annotations

from typing import Any

import pytest
from denhaag_twin import Twin

from api.settings import CODE_CHARS, NOTE_CHARS, RULE_LEVELS, TITLE_CHARS


def _cases(twin: Twin) -> int:
    return len(twin.client.get("/cases", headers=twin.headers("admin")).json())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "x" * (TITLE_CHARS + 1)),
        ("class_code", "c" * (CODE_CHARS + 1)),
        ("unit", "u" * (CODE_CHARS + 1)),
        ("object_code", "9" * (CODE_CHARS + 1)),
        ("site", "s" * 65),
    ],
)
def test_a_case_text_past_its_bound_is_refused_naming_the_field(
    twin: Twin, field: str, value: str
) -> None:
    before = _cases(twin)
    body: dict[str, Any] = {"title": "water on the road", field: value}
    answer = twin.client.post("/cases", json=body, headers=twin.headers("planner"))
    assert answer.status_code == 422, answer.text
    message = answer.json()["error"]["message"]
    assert f"body.{field}: String should have at most" in message
    assert value not in answer.text  # the long input is never echoed
    assert _cases(twin) == before


def test_a_ten_megabyte_title_is_refused_before_it_is_read(twin: Twin) -> None:
    before = _cases(twin)
    body = {"title": "x" * 10_000_000}
    answer = twin.client.post("/cases", json=body, headers=twin.headers("planner"))
    assert answer.status_code == 413
    assert _cases(twin) == before


def test_a_case_at_its_bounds_is_kept_and_a_long_note_is_refused(twin: Twin) -> None:
    body = {"title": "t" * TITLE_CHARS, "class_code": "c" * CODE_CHARS}
    opened = twin.client.post("/cases", json=body, headers=twin.headers("planner"))
    assert opened.status_code == 201, opened.text
    code = opened.json()["code"]
    long_note = {"note": "n" * (NOTE_CHARS + 1)}
    answer = twin.client.post(
        f"/cases/{code}/file", json=long_note, headers=twin.headers("planner")
    )
    assert answer.status_code == 422 and "body.note" in answer.json()["error"]["message"]
    assert twin.client.get(f"/cases/{code}", headers=twin.headers("admin")).json()["state"] == (
        "reported"
    )
    fine = twin.client.post(
        f"/cases/{code}/file", json={"note": "n" * NOTE_CHARS}, headers=twin.headers("planner")
    )
    assert fine.status_code == 200, fine.text


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"name": "r" * (TITLE_CHARS + 1)}, "body.name"),
        ({"levels": [[float(i), "warning"] for i in range(RULE_LEVELS + 1)]}, "body.levels"),
        ({"levels": [[1.0, "w" * 33]]}, "body.levels.0.1"),
        ({"observed_property": "p" * (CODE_CHARS + 1)}, "body.observed_property"),
        ({"code_prefix": "9" * (CODE_CHARS + 1)}, "body.code_prefix"),
        ({"open_case": {"class_code": "c" * (CODE_CHARS + 1)}}, "body.open_case.class_code"),
    ],
)
def test_a_rule_text_past_its_bound_is_refused_naming_the_field(
    twin: Twin, change: dict[str, Any], named: str
) -> None:
    rules = twin.client.get("/rules", headers=twin.headers("admin")).json()
    body = {"name": "flood", "kind": "high", "levels": [[0.1, "warning"]], **change}
    answer = twin.client.post("/rules", json=body, headers=twin.headers("planner"))
    assert answer.status_code == 422, answer.text
    assert named in answer.json()["error"]["message"]
    assert twin.client.get("/rules", headers=twin.headers("admin")).json() == rules


def test_an_alert_note_past_its_bound_is_refused(twin: Twin) -> None:
    answer = twin.client.post(
        "/alerts/A1/acknowledge",
        json={"note": "n" * (NOTE_CHARS + 1)},
        headers=twin.headers("planner"),
    )
    assert answer.status_code == 422 and "body.note" in answer.json()["error"]["message"]
