"""The operations wall in a real browser at 1920×1080, with no network beyond the API.

Den Haag carries four water-depth sensors on buildings and a rule with yellow, orange and
red levels; readings over its thresholds raise alerts (the red one opens a case), and an
operator's case is filed and dispatched. The wall must list exactly the active alerts
``/alerts`` returns, newest first, follow a new one and a closed one over the WebSocket, count what
``/live/vitals`` counts, fly to an alert's object when it is clicked, and draw its Chinese
with the font the app ships. ``/docs`` and ``/redoc`` render offline. Screenshots land in
``build/test-output/`` (``wall.png``, ``wall-en.png``, ``docs.png``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from api.app import create_app
from api.keys import KeyStore
from api.settings import Settings
from cim.importer import import_source
from cim.loaders import LoadOptions
from cim.store import open_store
from tests.live.live_helpers import thing_body
from tests.viewer.browsers import offline_chromium, requests_out, serving
from twin.times import format_time, now_us

ROOT = Path(__file__).resolve().parents[2]
DENHAAG = ROOT / "assets" / "denhaag_01" / "denhaag_01_lod2.city.json"
DUPLEX = ROOT / "assets" / "ifc" / "Duplex_A_20110907.ifc"
OUTPUT = ROOT / "build" / "test-output"
SITE = "denhaag"
RULE = {
    "name": "积水深度",
    "kind": "high",
    "levels": [[0.1, "yellow"], [0.3, "orange"], [0.5, "red"]],
    "observed_property": "water depth",
    "open_case": {"min_level": 3, "urgency": "urgent"},
}


class City:
    """The served API and what the tests made in it."""

    def __init__(
        self, base: str, key: str, device: str, display: str, streams: list[int], codes: list[str]
    ):
        self.base, self.key, self.device, self.display = base, key, device, display
        self.streams, self.codes = streams, codes

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.base}{path}", headers={"X-API-Key": self.key})
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any], key: str | None = None) -> Any:
        response = httpx.post(
            f"{self.base}{path}", json=body, headers={"X-API-Key": key or self.key}
        )
        assert response.status_code in (200, 201), response.text
        return response.json()

    def read(self, sensor: int, value: float) -> None:
        """A reading of sensor ``sensor`` (0..3) a second ago."""
        self.post(
            f"/sta/v1.1/Datastreams({self.streams[sensor]})/Observations",
            {"phenomenonTime": format_time(now_us() - 1_000_000), "result": value},
            self.device,
        )


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    path = tmp_path_factory.mktemp("wall") / "t.db"
    store = open_store(path)
    try:
        import_source(store, DENHAAG, site=SITE)
        import_source(
            store,
            DUPLEX,
            site="campus",
            options=LoadOptions(at=(85000.0, 446000.0, 30.0), crs="EPSG:28992"),
        )
        buildings = sorted(store.by_kind(SITE, "Building"), key=lambda b: b.code)
    finally:
        store.close()
    codes = [b.code for b in buildings[100:500:100]]
    settings = Settings(store_url=path)
    keys = KeyStore(settings.keys_path)
    key, device = keys.create_key("admin", name="wall test"), keys.create_key("device")
    display = keys.create_key("display", name="the wall itself")
    with serving(create_app(settings)) as base:
        made = City(base, key, device, display, [], codes)
        made.post("/rules", RULE)
        for n, code in enumerate(codes):
            thing = thing_body(f"gauge {n}", code, "water depth", unit="m")
            thing["properties"]["cimSite"] = SITE
            ident = made.post("/sta/v1.1/Things", thing)["@iot.id"]
            (stream,) = made.get(f"/sta/v1.1/Things({ident})/Datastreams")["value"]
            made.streams.append(stream["@iot.id"])
        made.read(0, 0.62)  # red: opens a case
        made.read(1, 0.21)  # yellow
        made.read(2, 0.14)  # yellow
        case = made.post(
            "/cases",
            {"title": "井盖缺失", "site": SITE, "object_code": codes[1], "urgency": "high"},
        )
        made.post(f"/cases/{case['code']}/file", {})
        made.post(f"/cases/{case['code']}/dispatch", {})
        yield made


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with offline_chromium() as chrome:
        yield chrome


def _state(browser: webdriver.Chrome, expression: str) -> Any:
    return browser.execute_script(f"return window.twinViewer && ({expression});")


def _wait(browser: webdriver.Chrome, expression: str, timeout: float = 90) -> None:
    try:
        WebDriverWait(browser, timeout, poll_frequency=0.2).until(lambda b: _state(b, expression))
    except Exception:
        logs = [entry["message"] for entry in browser.get_log("browser")][-20:]
        pytest.fail(f"the wall never reached {expression!r}; console {logs}")


SHOWN_ALERTS = "[...document.querySelectorAll('#alert-list li.alert')].map(li => li.dataset.code)"


def _open_wall(
    browser: webdriver.Chrome, city: City, query: str = "", key: str | None = None
) -> None:
    browser.get("about:blank")
    browser.get(f"{city.base}/{query}#key={key or city.key}")
    _wait(
        browser,
        "window.twinViewer.wall && window.twinViewer.wall.refreshes > 0"
        " && window.twinViewer.wall.socket === 'open'",
    )


def test_the_wall_lists_exactly_the_active_alerts_and_follows_a_new_one(
    city: City, browser: webdriver.Chrome
) -> None:
    _open_wall(browser, city)
    assert _state(browser, "window.twinViewer.site") == SITE  # the most buildings
    active = city.get("/alerts?state=active")
    assert [a["severity"] for a in active] == ["yellow", "yellow", "red"]
    assert browser.execute_script(f"return {SHOWN_ALERTS}") == [a["code"] for a in active]
    vitals = city.get("/live/vitals")
    assert browser.find_element(By.ID, "kpi-sensors").text == str(vitals["sensorsOnline"])
    assert browser.find_element(By.ID, "kpi-sensors-total").text == f"/ {vitals['sensors']}"
    assert browser.find_element(By.ID, "kpi-alerts").text == "3"
    by_severity = browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#kpi-alerts-by .sev-cell')]"
        ".map(c => [c.dataset.severity, c.querySelector('b').textContent]))"
    )
    assert by_severity == {"red": "1", "orange": "0", "yellow": "2", "blue": "0"}
    assert browser.find_element(By.ID, "kpi-cases").text == str(vitals["openCases"]) == "2"
    by_step = browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#kpi-cases-by .step-cell')]"
        ".map(c => [c.querySelector('span').textContent, c.querySelector('b').textContent]))"
    )
    # the alert's case waits to be filed (立案), the dispatched one to be handled (处置)
    assert by_step == {"立案": "1", "派遣": "0", "处置": "1", "核查": "0", "结案": "0"}
    extremes = browser.execute_script(
        "return [...document.querySelectorAll('#kpi-extremes tr')].map(r => [r.dataset.property,"
        " r.querySelector('.value').textContent])"
    )
    depth = vitals["extremes"]["water depth"]
    assert extremes == [["water depth", f"{depth['max']:g}"]] and depth["max"] == 0.62
    cases = city.get("/cases")
    shown_cases = browser.execute_script(
        "return [...document.querySelectorAll('#case-list li.case')].map(li => li.dataset.code)"
    )
    assert shown_cases == [c["code"] for c in cases]
    dispatched = browser.find_element(By.CSS_SELECTOR, f"li[data-code='{cases[0]['code']}']")
    assert "时限" in dispatched.text and "剩余" in dispatched.text

    # a new reading over the orange level: on the wall within seconds, from the stream
    city.read(3, 0.41)
    started = time.monotonic()
    WebDriverWait(browser, 10, poll_frequency=0.1).until(
        lambda b: len(b.execute_script(f"return {SHOWN_ALERTS}")) == 4
    )
    assert time.monotonic() - started < 10
    active = city.get("/alerts?state=active")
    assert active[0]["severity"] == "orange" and active[0]["objectCode"] == city.codes[3]
    assert browser.execute_script(f"return {SHOWN_ALERTS}") == [a["code"] for a in active]
    _wait(browser, "window.twinViewer.alertPins === 4", 10)  # a pin over each alerted object
    # an operator closes a yellow one: it leaves the wall as it leaves /alerts
    yellow = next(a for a in active if a["severity"] == "yellow")
    city.post(f"/alerts/{yellow['code']}/close", {"note": "checked on site"})
    WebDriverWait(browser, 10, poll_frequency=0.1).until(
        lambda b: yellow["code"] not in b.execute_script(f"return {SHOWN_ALERTS}")
    )
    active = city.get("/alerts?state=active")
    assert len(active) == 3
    assert browser.execute_script(f"return {SHOWN_ALERTS}") == [a["code"] for a in active]
    _wait(browser, "window.twinViewer.alertPins === 3", 10)
    assert browser.find_element(By.ID, "kpi-alerts").text == "3"
    first = browser.find_element(By.CSS_SELECTOR, "#alert-list li.alert")
    assert "sev-orange" in first.get_attribute("class") and "橙色" in first.text
    _wait(browser, "window.twinViewer.tilesLoaded > 0 && window.twinViewer.ready")
    time.sleep(1.5)  # the object names and a few frames after the last tile
    assert requests_out(browser, city.base) == []  # nothing asked of the internet
    OUTPUT.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(OUTPUT / "wall.png"))


def test_clicking_an_alert_flies_to_its_object_and_picks_it(
    city: City, browser: webdriver.Chrome
) -> None:
    if not _state(browser, "window.twinViewer.wall"):
        _open_wall(browser, city)
    red = next(a for a in city.get("/alerts?state=active") if a["severity"] == "red")
    flights = _state(browser, "window.twinViewer.flights")
    before = browser.execute_script("return window.twinViewer.project(...arguments)", 0, 0, 0)
    browser.find_element(By.CSS_SELECTOR, f"#alert-list li[data-code='{red['code']}']").click()
    _wait(browser, f"window.twinViewer.flights > {flights}", 20)
    WebDriverWait(browser, 20).until(
        lambda b: b.find_element(By.ID, "selected-code").text == red["objectCode"]
    )
    after = browser.execute_script("return window.twinViewer.project(...arguments)", 0, 0, 0)
    assert after != before  # the camera moved
    store_bbox = city.get(f"/sites/{SITE}/objects/{red['objectCode']}")["bbox"]
    cx, cy = (store_bbox[0] + store_bbox[3]) / 2, (store_bbox[1] + store_bbox[4]) / 2
    sx, sy = browser.execute_script(
        "return window.twinViewer.project(...arguments)",
        cx,
        cy,
        (store_bbox[2] + store_bbox[5]) / 2,
    )
    assert abs(sx - 960) < 3 and abs(sy - 540) < 3, (sx, sy)  # the object at the centre
    _wait(browser, "window.twinViewer.highlighted > 0", 10)  # drawn in the accent colour
    time.sleep(1.0)
    r, g, b = browser.execute_script(CENTRE_PIXEL)
    assert b > r + 60 and g > r + 40, (r, g, b)  # cyan, not the buildings' grey
    assert "picked" in browser.find_element(
        By.CSS_SELECTOR, f"#alert-list li[data-code='{red['code']}']"
    ).get_attribute("class")
    time.sleep(1.0)
    browser.save_screenshot(str(OUTPUT / "wall-picked.png"))


CENTRE_PIXEL = """
const source = document.getElementById('scene');
const copy = document.createElement('canvas'); copy.width = 1; copy.height = 1;
const g = copy.getContext('2d');
g.drawImage(source, source.width / 2 - 2, source.height / 2 - 2, 4, 4, 0, 0, 1, 1);
return Array.from(g.getImageData(0, 0, 1, 1).data.slice(0, 3));
"""

GLYPHS = """
const draw = (font, text) => {
  const c = document.createElement('canvas'); c.width = 200; c.height = 100;
  const g = c.getContext('2d'); g.font = font; g.fillStyle = '#000'; g.textBaseline = 'top';
  g.fillText(text, 10, 10);
  return Array.from(g.getImageData(0, 0, 200, 100).data.filter((_, i) => i % 4 === 3)).join(',');
};
return {
  shipped: draw('72px "Noto Sans SC"', '告'), shippedOther: draw('72px "Noto Sans SC"', '警'),
  fallback: draw('72px sans-serif', '告'), fallbackOther: draw('72px sans-serif', '警'),
  box: draw('72px "Noto Sans SC"', '\\u{10FFFD}'),  // no font has it: the missing-glyph box
};
"""


def test_the_chinese_text_uses_the_shipped_font(city: City, browser: webdriver.Chrome) -> None:
    if not _state(browser, "window.twinViewer.wall"):
        _open_wall(browser, city)
    browser.execute_async_script(
        "const done = arguments[0]; document.fonts.load('700 22px \"Noto Sans SC\"', '告警')"
        ".then(() => document.fonts.ready).then(() => done(true));"
    )
    loaded = browser.execute_script(
        "return [...document.fonts].filter(f => f.family.includes('Noto Sans SC')"
        " && f.status === 'loaded').map(f => f.weight)"
    )
    assert {"400", "700"} <= set(loaded), loaded
    names = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert f"{city.base}/fonts/noto-sans-sc-400.woff2" in names
    heading = browser.find_element(By.CSS_SELECTOR, "#alerts-box h2 span")
    assert heading.text == "实时告警"
    assert "Noto Sans SC" in heading.value_of_css_property("font-family")
    assert browser.execute_script(
        "return document.fonts.check('22px \"Noto Sans SC\"', '实时告警')"
    )
    glyphs = browser.execute_script(GLYPHS)
    # two characters drawn in the shipped font differ from each other and from the box drawn
    # for a missing glyph; on a machine with no CJK font of its own (Debian with Chromium
    # only, as in CI) the fallback draws both as that same box, and the shipped font differs
    assert glyphs["shipped"] != glyphs["shippedOther"]
    assert glyphs["box"] not in (glyphs["shipped"], glyphs["shippedOther"])
    if glyphs["fallback"] == glyphs["fallbackOther"]:
        assert glyphs["shipped"] != glyphs["fallback"]


def test_the_wall_in_english_on_a_display_key(city: City, browser: webdriver.Chrome) -> None:
    _open_wall(browser, city, f"?lang=en&site={SITE}", key=city.display)
    shown = browser.execute_script(f"return {SHOWN_ALERTS}")
    assert shown == [a["code"] for a in city.get("/alerts?state=active")]
    assert browser.find_element(By.CSS_SELECTOR, "#alerts-box h2 span").text == "Alerts"
    assert browser.execute_script("return document.documentElement.lang") == "en"
    cells = browser.find_elements(By.CSS_SELECTOR, "#kpi-cases-by .step-cell span")
    assert [c.text for c in cells] == ["filing", "dispatch", "handling", "checking", "closing"]
    assert browser.find_element(By.ID, "lang").get_attribute("href").endswith(f"/?site={SITE}")
    _wait(browser, "window.twinViewer.tilesLoaded > 0 && window.twinViewer.ready")
    time.sleep(1.0)
    browser.save_screenshot(str(OUTPUT / "wall-en.png"))


def test_the_api_docs_render_with_the_network_off(city: City, browser: webdriver.Chrome) -> None:
    operations = sum(
        1
        for item in city.get("/openapi.json")["paths"].values()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    )
    requests_out(browser, city.base)  # drain the log
    browser.get(f"{city.base}/docs")
    WebDriverWait(browser, 30).until(
        lambda b: (
            b.execute_script("return document.querySelectorAll('.opblock').length") == operations
        )
    )
    assert requests_out(browser, city.base) == []
    OUTPUT.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(OUTPUT / "docs.png"))
    browser.get(f"{city.base}/redoc")
    WebDriverWait(browser, 60).until(
        lambda b: (
            b.execute_script(
                "return document.querySelectorAll('[data-section-id^=\"operation/\"]').length"
            )
            == operations
        )
    )
    # ReDoc asks a CDN for its logo whatever its options: the page's policy stops it
    assert all(reason == "csp" for _, reason in requests_out(browser, city.base))
