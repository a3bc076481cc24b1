"""Cases: the workflow, refusals, deadlines and statistics."""

from __future__ import annotations

import pytest
from live_helpers import Clock

from twin.cases import allowed_actions, deadline_hours
from twin.errors import TransitionError
from twin.live import LiveTwin

HOUR = 3_600_000_000


def test_full_workflow_with_rework_and_timeline(live: LiveTwin, clock: Clock) -> None:
    case = live.cases.open("manhole cover missing", "operator", "inspector 3", clock.now)
    code = case["code"]
    assert case["state"] == "reported" and case["allowed"] == ["file", "cancel"]
    steps = ["file", "dispatch", "handle", "verify", "rework", "handle", "verify", "close"]
    for step in steps:
        clock.now += HOUR
        case = live.cases.act(code, step, "centre", clock.now)
    assert case["state"] == "closed" and case["reworks"] == 1
    timeline = [(e["from"], e["to"]) for e in case["timeline"]]
    assert timeline == [
        (None, "reported"),
        ("reported", "filed"),
        ("filed", "dispatched"),
        ("dispatched", "handled"),
        ("handled", "verified"),
        ("verified", "dispatched"),
        ("dispatched", "handled"),
        ("handled", "verified"),
        ("verified", "closed"),
    ]
    # dispatched at +2 h, normal urgency: 24 h to dispose
    assert case["deadline"] == "2026-11-27T13:00:00Z"
    assert case["allowed"] == []


def test_illegal_transitions_are_refused(live: LiveTwin, clock: Clock) -> None:
    code = live.cases.open("water on road", "api", "system", clock.now)["code"]
    with pytest.raises(TransitionError, match=r"is reported: cannot close; allowed: file, cancel"):
        live.cases.act(code, "close", "centre", clock.now)
    live.cases.act(code, "cancel", "centre", clock.now)
    with pytest.raises(TransitionError, match=r"final state"):
        live.cases.act(code, "file", "centre", clock.now)
    with pytest.raises(TransitionError):
        live.cases.act(code, "teleport", "centre", clock.now)
    assert allowed_actions("handled") == ("verify", "rework")


def test_deadlines_by_class_and_urgency() -> None:
    table = {"": {"urgent": 2.0, "normal": 24.0}, "0501": {"urgent": 0.5}}
    assert deadline_hours("050101", "urgent", table) == 0.5
    assert deadline_hours("050101", "normal", table) == 24.0
    assert deadline_hours("0601", "urgent", table) == 2.0
    with pytest.raises(ValueError, match="urgency"):
        deadline_hours("0601", "whenever", table)


def test_statistics_per_unit(live: LiveTwin, clock: Clock) -> None:
    start = clock.now

    def run(unit: str, steps: list[str], hours_each: float, urgency: str = "urgent") -> None:
        code = live.cases.open(
            f"case of {unit}", "api", "s", clock.now, unit=unit, urgency=urgency
        )["code"]
        for step in steps:
            clock.now += round(hours_each * HOUR)
            live.cases.act(code, step, "centre", clock.now)

    done = ["file", "dispatch", "handle", "verify", "close"]
    run("drainage", done, 0.5)  # handled 0.5 h after dispatch: on time (2 h)
    run("drainage", done, 3.0)  # 3 h: late
    run("drainage", ["file", "dispatch", "handle", "verify", "rework"], 0.5)
    run("sanitation", ["file"], 1.0)
    stats = {s["unit"]: s for s in live.cases.statistics("unit")}
    drainage = stats["drainage"]
    assert drainage["cases"] == 3 and drainage["closed"] == 2 and drainage["open"] == 1
    assert drainage["closureRate"] == pytest.approx(2 / 3)
    assert drainage["onTimeRate"] == pytest.approx(1 / 2)  # the reworked one is not handled now
    assert drainage["reworkRate"] == pytest.approx(1 / 3)
    assert stats["sanitation"]["onTimeRate"] is None
    assert clock.now > start
    with pytest.raises(ValueError, match="by"):
        live.cases.statistics("colour")
