"""The replay feed into the real broker, recording errors, and the bus's slow-client buffer."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from live_helpers import T0, Clock, datastream_of, mqtt_publisher, thing_body, wait_for

from cim.errors import SourceError
from twin.bus import EventBus, Subscription
from twin.live import LiveTwin
from twin.mqtt import MqttSettings
from twin.replay import load_recording, replay
from twin.rules import Rule

RECORDING = Path(__file__).parents[2] / "assets" / "live" / "bottleneck_density.csv"


def test_replay_into_mosquitto_moves_the_twin(tmp_path: Path, clock: Clock) -> None:
    prefix = f"test-{uuid.uuid4().hex[:10]}/"
    settings = MqttSettings(prefix=prefix, client_id=f"twin-{uuid.uuid4().hex[:10]}")
    live = LiveTwin(tmp_path / "t.db", mqtt=settings, clock=clock)
    live.start()
    publisher = mqtt_publisher()
    try:
        assert live.mqtt is not None
        wait_for(live.mqtt.connected.is_set, 5, "the subscription")
        ds = datastream_of(live, live.sta.create("Things", thing_body("gate", "SQ1", "density")))
        live.alerts.add_rule(Rule(0, "crowd", "high", ((2.0, "yellow"), (6.0, "purple"))))
        recording = load_recording(RECORDING, "density_p_per_m2", ds)
        seen: list[float] = []
        sent = replay(
            recording,
            lambda t, p: publisher.publish(t, p, qos=1).wait_for_publish(5),
            T0,
            speed=1000.0,
            prefix=prefix,
            progress=lambda f, _m: seen.append(f),
        )
        assert sent == 67 and seen[-1] == 1.0
        wait_for(lambda: live.ingestor.counters["stored"] == 67, 10, "67 observations")
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        live.close()
    live = LiveTwin(tmp_path / "t.db", clock=clock)
    try:
        assert live.state.latest("SQ1")[0]["result"] == 0.0
        day = live.state.aggregates(ds, T0, T0 + 86_400_000_000, 86_400)[0]
        assert (day["n"], day["max"]) == (67, 7.5)
        alert = live.alerts.get(live.alerts.find("SQ1")[0]["code"])
        # purple reached (6.0 at 3 s), normal again below 2; a burst stored in one batch is
        # judged by its peak and its newest reading, so yellow steps between may be skipped
        levels = [e["level"] for e in alert["history"]]
        assert max(levels) == 2 and levels[-1] == 0
    finally:
        live.close()


def test_bad_recordings_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("offset_s,value\n0,1\n1,nan\n")
    with pytest.raises(SourceError, match="line 3: a value is not finite"):
        load_recording(bad, "value", 1)
    with pytest.raises(SourceError, match="no column 'depth'"):
        load_recording(bad, "depth", 1)
    bad.write_text("offset_s,value\n0,1\n")
    with pytest.raises(SourceError, match="give the datastream"):
        load_recording(bad, "value")


def test_slow_subscriber_keeps_latest_per_datastream() -> None:
    bus = EventBus()
    woken: list[int] = []
    mine = bus.subscribe(Subscription(["B1"], None, notify=lambda: woken.append(1)))
    alerts_only = bus.subscribe(Subscription(None, ["alert"]))
    for k in range(1000):  # a burst the client does not read
        bus.publish({"type": "observation", "code": "B1-7", "datastream": k % 3, "result": k})
    bus.publish({"type": "observation", "code": "C9", "datastream": 9, "result": 0})
    bus.publish({"type": "alert", "code": "B1-7", "alert": {"code": "AL1"}})
    events = mine.drain()
    assert [e["type"] for e in events] == ["alert", "observation", "observation", "observation"]
    assert sorted(e["result"] for e in events[1:]) == [997, 998, 999]
    assert mine.overwritten == 997 and len(woken) == 1
    assert [e["type"] for e in alerts_only.drain()] == ["alert"]
    assert mine.drain() == []


def test_replay_drill_publishes_the_recording() -> None:
    import argparse

    from api.drills import drill_modules

    drill = drill_modules()["replay"]
    parser = argparse.ArgumentParser()
    drill.add_arguments(parser)
    args = parser.parse_args(
        [
            str(RECORDING),
            "--column",
            "density_p_per_m2",
            "--datastream",
            "5",
            "--speed",
            "1000",
            "--prefix",
            f"test-{uuid.uuid4().hex[:10]}/",
            "--start",
            "2026-11-26T10:00:00Z",
        ]
    )
    args.json = True
    assert drill.run(args) == {"published": 67, "recording": str(RECORDING), "speed": 1000.0}
    args.column = "colour"
    with pytest.raises(SourceError, match="no column 'colour'"):
        drill.run(args)
