"""Rules and alerts: levels with hysteresis, the real crowd recording, rate, low, stale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from live_helpers import T0, Clock, datastream_of, obs, thing_body

from twin.errors import TransitionError
from twin.live import LiveTwin
from twin.rules import CasePolicy, Rule, stale_mask

CROWD = (2.0, "yellow"), (4.0, "orange"), (5.0, "red"), (6.0, "purple")


def _recording() -> np.ndarray:
    """Crowd density (persons/m²) each second before the Jülich bottleneck (measured)."""
    path = Path(__file__).parents[2] / "assets" / "live" / "bottleneck_density.csv"
    return np.loadtxt(path, delimiter=",", skiprows=1)[:, 2]


def test_levels_and_hysteresis() -> None:
    rule = Rule(0, "crowd", "high", CROWD, hysteresis=0.5)
    assert [rule.level(v) for v in (1.9, 2.0, 4.5, 5.0, 6.0, 9.0)] == [0, 1, 2, 3, 4, 4]
    assert rule.level(5.6, current=4) == 4  # within 0.5 of 6: held
    assert rule.level(5.5, current=4) == 3
    assert rule.level(1.6, current=1) == 1 and rule.level(1.5, current=1) == 0
    assert rule.level(7.0, current=1) == 4  # rising is never held back
    low = Rule(0, "low battery", "low", ((3.5, "yellow"), (3.2, "red")), hysteresis=0.1)
    assert [low.level(v) for v in (3.6, 3.5, 3.3, 3.1)] == [0, 1, 1, 2]
    assert low.level(3.55, current=1) == 1 and low.level(3.6, current=1) == 0
    with pytest.raises(ValueError, match="rise"):
        Rule(0, "bad", "high", ((4.0, "a"), (2.0, "b")))
    with pytest.raises(ValueError, match="kind"):
        Rule(0, "bad", "sideways", ((1.0, "a"),))  # type: ignore[arg-type]


def test_stale_mask_is_vectorised_over_datastreams() -> None:
    now = 1_000_000_000
    latest = np.array([now - 31_000_000, now - 29_000_000, now - 10**9, now])
    interval = np.array([10.0, 10.0, np.nan, 1.0])
    assert stale_mask(latest, interval, 3, now).tolist() == [True, False, False, False]


def test_real_crowd_recording_raises_one_alert_and_one_case(live: LiveTwin, clock: Clock) -> None:
    density = _recording()
    assert density.max() == 7.5 and len(density) == 67
    ds = datastream_of(live, live.sta.create("Things", thing_body("gate", "SQ01", "crowd density")))
    live.alerts.add_rule(
        Rule(
            0,
            "crowd density",
            "high",
            CROWD,
            observed_property="crowd density",
            hysteresis=0.5,
            open_case=CasePolicy(min_level=3, class_code="0501", unit="venue police"),
        )
    )
    clock.now = T0 + 100_000_000
    for second, value in enumerate(density):
        live.ingestor.ingest([obs(ds, second, float(value))], "test")
    alerts = live.alerts.find()
    assert len(alerts) == 1
    alert = live.alerts.get(alerts[0]["code"])
    assert alert["code"] == "AL00000001" and alert["state"] == "cleared"
    steps = [(e["level"], e["time"][17:19]) for e in alert["history"]]
    # worked by hand from the recording with thresholds 2/4/5/6 and hysteresis 0.5
    assert steps == [(1, "00"), (2, "02"), (4, "03"), (3, "32"), (2, "43"), (1, "50"), (0, "59")]
    # without hysteresis the same recording moves the level 11 times
    bare = Rule(0, "bare", "high", CROWD)
    level, moves = 0, 0
    for value in density:
        new = bare.level(float(value), level)
        moves += new != level
        level = new
    assert moves == 11
    cases = live.cases.find()
    assert len(cases) == 1 and cases[0]["source"] == "alert"
    assert cases[0]["firstReading"] == "2026-11-26T10:00:00Z"
    assert cases[0]["unit"] == "venue police" and cases[0]["alert"] == alert["id"]


def test_water_depth_rate_and_stale(live: LiveTwin, clock: Clock) -> None:
    ds = datastream_of(
        live, live.sta.create("Things", thing_body("road", "RD01", "water depth", interval_s=60))
    )
    live.alerts.add_rule(Rule(0, "road water", "high", ((0.15, "red"),), "water depth"))
    live.alerts.add_rule(Rule(0, "rising", "rate", ((0.001, "orange"),), "water depth"))
    live.alerts.add_rule(Rule(0, "offline", "stale", ((0.0, "grey"),), missed=3))
    live.ingestor.ingest([obs(ds, 0, 0.05)], "test")
    live.ingestor.ingest([obs(ds, 60, 0.10)], "test")  # 0.05 m/min: below 0.001 m/s
    assert live.alerts.find() == []
    live.ingestor.ingest([obs(ds, 120, 0.16)], "test")  # 0.001 m/s and over 0.15 m
    kinds = sorted(a["kind"] for a in live.alerts.find(state="active"))
    assert kinds == ["high", "rate"]
    # silent for 3 intervals and a bit: offline
    clock.now = T0 + 120_000_000 + 181_000_000
    assert live.alerts.sweep_stale(clock.now, live.ingestor.latest) == 1
    assert live.alerts.sweep_stale(clock.now, live.ingestor.latest) == 0  # already open
    live.ingestor.ingest([obs(ds, 301, 0.12)], "test")
    active = {a["kind"]: a for a in live.alerts.find(state="active")}
    assert sorted(active) == []  # the reading ends offline; 0.12 m clears the high alert;
    # and (0.12 - 0.16) / 181 s is a slow fall


def test_operator_actions_and_illegal_ones(live: LiveTwin, clock: Clock) -> None:
    ds = datastream_of(live, live.sta.create("Things", thing_body("road", "RD01", "water depth")))
    live.alerts.add_rule(Rule(0, "road water", "high", ((0.15, "red"),), "water depth"))
    live.ingestor.ingest([obs(ds, 0, 0.2)], "test")
    code = live.alerts.find()[0]["code"]
    acked = live.alerts.act(code, "acknowledge", "operator 7", "crew on the way", clock.now)
    assert acked["state"] == "acknowledged"
    with pytest.raises(TransitionError, match="allowed: close"):
        live.alerts.act(code, "acknowledge", "operator 7", "", clock.now)
    closed = live.alerts.act(code, "close", "operator 7", "", clock.now)
    assert [e["state"] for e in closed["history"]] == ["open", "acknowledged", "closed"]
    # a closed alert is not active: the next excursion opens a new one
    live.ingestor.ingest([obs(ds, 60, 0.1), obs(ds, 120, 0.3)], "test")
    live.ingestor.ingest([obs(ds, 180, 0.31)], "test")
    assert len(live.alerts.find()) == 2


def test_a_peak_inside_one_batch_raises_its_level(live: LiveTwin) -> None:
    """A burst stored in one batch (MQTT delivers hundreds at once) is judged by its peak,
    then by its last reading: the purple 7.5 between two calm readings is not skipped."""
    ds = datastream_of(live, live.sta.create("Things", thing_body("gate", "SQ9", "density")))
    live.alerts.add_rule(Rule(0, "crowd", "high", ((2.0, "yellow"), (6.0, "purple"))))
    live.alerts.add_rule(Rule(0, "empty", "low", ((0.5, "blue"),), "density"))
    batch = [obs(ds, 0, 1.0), obs(ds, 1, 7.5), obs(ds, 2, 0.2), obs(ds, 3, 1.0)]
    live.ingestor.ingest(batch, "test")
    by_kind = {a["kind"]: live.alerts.get(a["code"]) for a in live.alerts.find("SQ9")}
    high = [(e["level"], e["value"]) for e in by_kind["high"]["history"]]
    assert high == [(2, 7.5), (0, 1.0)]
    low = [(e["level"], e["value"]) for e in by_kind["low"]["history"]]
    assert low == [(1, 0.2), (0, 1.0)]
    assert live.alerts.find("SQ9", "active") == []
