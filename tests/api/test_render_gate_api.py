"""Snapshots are rationed: a few in progress per key, a short queue, 429 at once beyond it,
and ``/health`` answers while the renderer is busy (ADR 0020)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from denhaag_twin import SITE, Twin

from api.keys import KeyStore
from api.render_gate import RenderGate

RENDER_S = 1.5

#: a fake renderer is patched into the application: in process only
pytestmark = pytest.mark.inprocess


@pytest.fixture
def slow_renders(twin: Twin, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Each render takes RENDER_S; the list gets how many render at once, per render."""
    import api.routes.images as images

    inside: list[float] = []
    busy = [0]
    lock = threading.Lock()

    def render(*args: Any, **kwargs: Any) -> bytes:
        with lock:
            busy[0] += 1
            inside.append(busy[0])
        time.sleep(RENDER_S)
        with lock:
            busy[0] -= 1
        return b"\x89PNG fake"

    monkeypatch.setattr(images, "render_png", render)
    return inside


def _get(twin: Twin, key: str) -> tuple[int, float, dict[str, Any], str]:
    started = time.monotonic()
    answer = twin.client.get(
        f"/sites/{SITE}/image.png?code={twin.building.code}", headers={"X-API-Key": key}
    )
    body = answer.json() if answer.status_code != 200 else {}
    return (
        answer.status_code,
        time.monotonic() - started,
        body,
        answer.headers.get("Retry-After", ""),
    )


def test_one_key_gets_two_renders_in_progress_and_429_at_once_beyond(
    twin: Twin, slow_renders: list[float]
) -> None:
    key = twin.keys["display"]
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: _get(twin, key), range(20)))
    ok = [a for a in answers if a[0] == 200]
    refused = [a for a in answers if a[0] == 429]
    assert len(ok) + len(refused) == 20
    assert 2 <= len(ok) <= 6  # two at a time; a refused request frees nothing for long
    assert max(slow_renders) == 1  # one renders at a time
    _, seconds, body, retry = refused[0]
    # refused at once: before any render of that key finished, not after waiting for one
    assert seconds < min(a[1] for a in ok)
    assert retry == "2"
    assert body["error"]["type"] == "BusyError"
    assert body["error"]["limit"] == "TWIN_RENDERS_PER_KEY" and body["error"]["value"] == 2
    assert "this key has 2 snapshots in progress" in body["error"]["message"]


def test_many_keys_fill_a_short_queue_and_health_still_answers(
    twin: Twin, slow_renders: list[float]
) -> None:
    keystore = KeyStore(twin.settings.keys_path)
    keys = [keystore.create_key("display", name=f"wall {i}") for i in range(12)]
    health: list[float] = []

    def probe() -> None:
        time.sleep(0.2)
        for _ in range(5):
            started = time.monotonic()
            assert twin.client.get("/health").status_code == 200
            health.append(time.monotonic() - started)
            time.sleep(0.1)

    prober = threading.Thread(target=probe)
    prober.start()
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda key: _get(twin, key), keys))
    prober.join()
    ok = [a for a in answers if a[0] == 200]
    refused = [a for a in answers if a[0] == 429]
    # one rendering and four waiting are admitted; the rest are told the renderer is busy
    assert len(ok) == 5 and len(refused) == 7, [a[:2] for a in answers]
    assert all(a[1] < RENDER_S for a in refused)
    assert {a[2]["error"]["limit"] for a in refused} == {"TWIN_RENDER_QUEUE"}
    assert "the renderer is busy" in refused[0][2]["error"]["message"]
    assert max(health) < 1.0, health


def test_a_turn_that_does_not_come_is_refused_after_the_wait() -> None:
    from api.errors import BusyError

    gate = RenderGate(per_key=2, queue=2, wait_s=0.2)
    with gate.admit("a"):
        started = time.monotonic()
        with (
            pytest.raises(BusyError, match=r"no turn at the renderer within 0\.2 s"),
            gate.admit("b"),
        ):
            pass
        assert 0.15 < time.monotonic() - started < 1.0
    assert gate.inside == 0
    with gate.admit("b"):
        assert gate.inside == 1


def test_two_hundred_snapshots_against_the_real_server_leave_health_responsive(
    tmp_path: Path,
) -> None:
    from server_process import new_key, serving, twin_cli

    from cim.store import open_store
    from tests.api.denhaag_twin import DENHAAG

    store = tmp_path / "t.db"
    twin_cli(store, "import", "--site", SITE, str(DENHAAG))
    opened = open_store(store)
    try:
        building = min(o.code for o in opened.by_kind(SITE, "Building"))
    finally:
        opened.close()
    keys = [new_key(store, "display", tmp_path) for _ in range(4)]
    env = {"TWIN_RENDERS_PER_KEY": "2", "TWIN_RENDER_QUEUE": "4"}
    with serving(store, tmp_path / "cache", workers=1, env=env) as server:
        clients = [server.client(key) for key in keys]
        probe = server.client()
        url = f"/sites/{SITE}/image.png?code={building}&width=64&height=64"
        health: list[float] = []
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                started = time.monotonic()
                assert probe.get("/health").status_code == 200
                health.append(time.monotonic() - started)
                time.sleep(0.05)

        def snapshot(i: int) -> tuple[int, float]:
            started = time.monotonic()
            answer = clients[i % len(clients)].get(url)
            return answer.status_code, time.monotonic() - started

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            with ThreadPoolExecutor(50) as pool:
                answers = list(pool.map(snapshot, range(200)))
        finally:
            done.set()
            watcher.join()
        for client in [*clients, probe]:
            client.close()
    statuses = Counter(status for status, _ in answers)
    assert set(statuses) == {200, 429}, statuses
    assert statuses[200] >= 5
    refused = sorted(seconds for status, seconds in answers if status == 429)
    assert refused[int(0.99 * len(refused))] < 5.0, refused[-5:]
    assert health and max(health) < 2.0, sorted(health)[-5:]
