"""What the hostile-input suite (``test_hostile_api.py``) found, each pinned by its exact
answer (ADR 0020, "The hostile-input suite")."""

from __future__ import annotations

from denhaag_twin import Twin


def _documented(twin: Twin, method: str, path: str) -> set[str]:
    spec = twin.client.get("/openapi.json").json()
    return set(spec["paths"][path][method]["responses"])


def test_a_rule_id_beyond_the_stores_integers_is_422_not_500(twin: Twin) -> None:
    # was 500: "Python int too large to convert to SQLite INTEGER"
    answer = twin.client.delete("/rules/56070047625972520321024", headers=twin.headers("planner"))
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["type"] == "ValidationError"
    assert error["message"] == (
        "path.ident: Input should be less than or equal to 9223372036854775807"
    )
    below = twin.client.delete("/rules/9223372036854775807", headers=twin.headers("planner"))
    assert below.status_code == 404
    assert below.json()["error"]["message"] == "no rule 9223372036854775807"


def test_a_case_on_an_object_of_no_site_is_a_documented_404(twin: Twin) -> None:
    body = {"title": "water on the road", "site": "nowhere", "object_code": "9901"}
    answer = twin.client.post("/cases", json=body, headers=twin.headers("planner"))
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"] == {
        "type": "NotFoundError",
        "message": "no site named 'nowhere'",
    }
    assert "404" in _documented(twin, "post", "/cases")


def test_thresholds_at_the_ends_of_the_floats_are_judged_without_overflow(twin: Twin) -> None:
    # was 500: numpy's "overflow encountered in subtract" between 1.7e308 and -1.7e308
    extremes = [[1.7e308, "mild"], [-1.7e308, "severe"]]
    rising = {"name": "extreme", "kind": "high", "levels": extremes}
    answer = twin.client.post("/rules", json=rising, headers=twin.headers("planner"))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == {
        "type": "RequestError",
        "message": "rule: thresholds must rise from the mildest level",
    }
    falling = {"name": "extreme", "kind": "low", "levels": extremes}
    kept = twin.client.post("/rules", json=falling, headers=twin.headers("planner"))
    assert kept.status_code == 201, kept.text
    assert kept.json()["levels"] == extremes
    twin.client.delete(f"/rules/{kept.json()['id']}", headers=twin.headers("planner"))
