"""Drill alerts: what a drill found, in the live twin beside sensor alerts but never counted
with them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from live_helpers import T0, Clock, datastream_of, obs, thing_body

from twin.alerts import DrillAlert
from twin.db import LiveDb
from twin.live import LiveTwin
from twin.rules import Rule


def test_drill_alerts_are_marked_and_kept_apart_from_sensor_alerts(
    live: LiveTwin, clock: Clock
) -> None:
    ds = datastream_of(live, live.sta.create("Things", thing_body("gauge", "SQ01", "water depth")))
    live.alerts.add_rule(
        Rule(0, "water", "high", ((0.15, "red"),), observed_property="water depth")
    )
    clock.now = T0 + 10_000_000
    live.ingestor.ingest([obs(ds, 1, 0.3)], "test")
    found = [
        DrillAlert("site", "SQ01R", "road-closure", "alarm", "road SQ01R closed", 0.4, 2),
        DrillAlert("site", "SQ01B", "building-flooded", "warning", "water at SQ01B", 0.2),
    ]
    raised = live.alerts.raise_drill_alerts("j_test", found, clock.now)
    assert [a["code"][:2] for a in raised] == ["DR", "DR"]
    assert {a["source"] for a in raised} == {"drill"} and {a["drill"] for a in raised} == {"j_test"}
    assert raised[0]["objectCode"] == "SQ01R" and raised[0]["severity"] == "alarm"
    assert raised[0]["message"].startswith("drill j_test: ") and raised[0]["state"] == "open"
    # sensor views: only the sensor alert, as before drills existed
    sensor = live.alerts.find("SQ01", "active")
    assert [a["source"] for a in sensor] == ["sensor"] and sensor[0]["code"].startswith("AL")
    assert live.vital_signs("SQ01")["activeAlerts"] == {"red": 1}
    drills = live.alerts.find("SQ01", "active", source="drill")
    assert {a["objectCode"] for a in drills} == {"SQ01R", "SQ01B"}
    assert len(live.alerts.find("SQ01", source="all")) == 3
    with pytest.raises(ValueError, match="source"):
        live.alerts.find(source="rumour")
    # operators rehearse on them like on real ones
    closed = live.alerts.act(raised[1]["code"], "close", "op", "drill over", clock.now)
    assert closed["state"] == "closed" and closed["source"] == "drill"
    # and the rules keep working on sensor readings
    live.ingestor.ingest([obs(ds, 2, 0.0)], "test")
    assert live.alerts.find("SQ01")[0]["state"] == "cleared"
    with pytest.raises(ValueError, match="drill"):
        live.alerts.raise_drill_alerts("", found, clock.now)


def test_a_store_made_before_drill_alerts_gains_their_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE live_alerts (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, "
            "rule_id BIGINT NOT NULL, datastream_id BIGINT NOT NULL, site TEXT, object_code TEXT, "
            "kind TEXT NOT NULL, level BIGINT NOT NULL, severity TEXT NOT NULL, "
            "state TEXT NOT NULL, value DOUBLE PRECISION, opened BIGINT NOT NULL, "
            "updated BIGINT NOT NULL, closed BIGINT, first_reading BIGINT NOT NULL, "
            "message TEXT NOT NULL)"
        )
        db.execute(
            "INSERT INTO live_alerts VALUES (1, 'AL00000001', 1, 1, 's', 'X', 'high', 1, 'red', "
            "'open', 1.0, 0, 0, NULL, 0, 'old')"
        )
    live = LiveDb(path)
    try:
        assert live.query("SELECT source, drill FROM live_alerts") == [("sensor", None)]
    finally:
        live.close()
    LiveDb(path).close()  # a second opening finds the columns there
