"""The viewer in a real browser: Debian's Chromium, headless, driven through ChromeDriver.

The API runs on a loopback port over the Den Haag sample. The page builds the tileset (a
job it waits on), loads tiles, draws a city that is not blank, picks a known building when
clicked at the building's screen position, and colours by a layer pushed over the
WebSocket. A screenshot lands in ``build/test-output/``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from api.app import create_app
from api.keys import KeyStore
from api.settings import Settings
from cim.importer import import_source
from cim.loaders import LoadOptions
from cim.store import open_store
from tests.live.live_helpers import thing_body
from tests.viewer.browsers import serving

ROOT = Path(__file__).resolve().parents[2]
DENHAAG = ROOT / "assets" / "denhaag_01" / "denhaag_01_lod2.city.json"
DUPLEX = ROOT / "assets" / "ifc" / "Duplex_A_20110907.ifc"
OUTPUT = ROOT / "build" / "test-output"
SITE = "denhaag"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """(base URL, admin key, store path) of an API on a loopback port."""
    path = tmp_path_factory.mktemp("viewer") / "t.db"
    store = open_store(path)
    try:
        import_source(store, DENHAAG, site=SITE)
        import_source(
            store,
            DUPLEX,
            site="campus",
            options=LoadOptions(at=(85000.0, 446000.0, 30.0), crs="EPSG:28992"),
        )
    finally:
        store.close()
    settings = Settings(store_url=path)
    key = KeyStore(settings.keys_path).create_key("admin", name="browser test")
    with serving(create_app(settings)) as url:
        yield url, key, path


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    """Headless Chromium with WebGL on SwiftShader."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, (
        "Chromium and ChromeDriver are installed by `make test` (.ci/browser)"
    )
    options = Options()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader",
        "--window-size=1280,800",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    chrome.set_script_timeout(30)
    try:
        yield chrome
    finally:
        chrome.quit()


def _state(browser: webdriver.Chrome, expression: str) -> object:
    return browser.execute_script(f"return window.twinViewer && ({expression});")


def _wait(browser: webdriver.Chrome, expression: str, timeout: float = 90) -> None:
    try:
        WebDriverWait(browser, timeout, poll_frequency=0.25).until(lambda b: _state(b, expression))
    except Exception:
        logs = [entry["message"] for entry in browser.get_log("browser")][-20:]
        state = browser.execute_script("return JSON.stringify(window.twinViewer || null)")
        pytest.fail(f"viewer never reached {expression!r}; state {state}; console {logs}")


PIXEL_SPREAD = """
const source = document.getElementById('scene');
const copy = document.createElement('canvas');
copy.width = 256; copy.height = 160;
const ctx = copy.getContext('2d');
ctx.drawImage(source, 0, 0, copy.width, copy.height);
const data = ctx.getImageData(0, 0, copy.width, copy.height).data;
let sum = 0, sum2 = 0, n = 0;
for (let i = 0; i < data.length; i += 4) {
  const v = 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
  sum += v; sum2 += v * v; n++;
}
const mean = sum / n;
return Math.sqrt(Math.max(0, sum2 / n - mean * mean));
"""


def _target_building(store_path: Path) -> tuple[str, tuple[float, float, float]]:
    """A building near the site centre, and a point on its roof (site CRS)."""
    store = open_store(store_path)
    try:
        info = store.site(SITE)
        buildings = [b for b in store.by_kind(SITE, "Building") if b.footprint is not None]
    finally:
        store.close()
    assert info.bbox is not None
    minx, miny, _, maxx, maxy, _ = info.bbox
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    near = sorted(buildings, key=lambda b: b.footprint.centroid.distance(_point(cx, cy)))[:15]
    best = max(near, key=lambda b: b.footprint.area)
    inside = best.footprint.point_on_surface()
    assert best.bbox is not None
    return best.code, (inside.x, inside.y, best.bbox[5])


def _point(x: float, y: float) -> object:
    import shapely

    return shapely.Point(x, y)


def test_viewer_shows_the_city_and_picks_a_building(
    served: tuple[str, str, Path], browser: webdriver.Chrome
) -> None:
    base, key, store_path = served
    browser.get(f"{base}/?site={SITE}&view=top#key={key}")
    _wait(browser, "window.twinViewer.tilesLoaded > 0 && window.twinViewer.ready")
    assert "key=" not in browser.current_url  # the key leaves the address bar
    time.sleep(1.0)  # a few frames after the last tile
    spread = browser.execute_script(PIXEL_SPREAD)
    assert spread > 8, f"the canvas looks blank (grey-level spread {spread:.1f})"
    requested = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => n.includes('/tiles/') && n.endsWith('.glb')).length"
    )
    assert requested > 0

    code, (x, y, z) = _target_building(store_path)
    sx, sy = browser.execute_script("return window.twinViewer.project(...arguments)", x, y, z)
    assert 0 < sx < 1280 and 0 < sy < 800, (sx, sy)
    actions = ActionBuilder(browser)
    actions.pointer_action.move_to_location(int(sx), int(sy)).click()
    actions.perform()
    WebDriverWait(browser, 20).until(lambda b: b.find_element(By.ID, "selected-code").text == code)
    WebDriverWait(browser, 20).until(lambda b: b.find_element(By.ID, "selected-name").text != "…")

    OUTPUT.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(OUTPUT / "viewer-picked.png"))
    ActionChains(browser).reset_actions()


def test_viewer_colours_by_a_pushed_layer(
    served: tuple[str, str, Path], browser: webdriver.Chrome
) -> None:
    import httpx

    base, key, store_path = served
    if browser.current_url.split("#")[0] != f"{base}/?site={SITE}&view=top":
        browser.get(f"{base}/?site={SITE}&view=top#key={key}")
    _wait(browser, "window.twinViewer.tilesLoaded > 0 && window.twinViewer.ready")
    store = open_store(store_path)
    try:  # a test value per building: its height
        values = {
            b.code: round(b.bbox[5] - b.bbox[2], 2)
            for b in store.by_kind(SITE, "Building")
            if b.bbox is not None
        }
    finally:
        store.close()
    response = httpx.put(
        f"{base}/sites/{SITE}/layers/browser-test",
        headers={"X-API-Key": key},
        json={"values": values, "legend": "test value", "unit": "m"},
    )
    assert response.status_code == 200, response.text
    browser.execute_script(
        "const s = document.getElementById('layer'); s.value = 'browser-test';"
        "s.dispatchEvent(new Event('change'));"
    )
    _wait(browser, "window.twinViewer.layer && window.twinViewer.coloured > 0", 20)
    assert browser.find_element(By.ID, "legend-title").text.startswith("browser-test")
    shown = browser.find_element(By.ID, "legend-max").text
    assert shown == f"{max(values.values()):g} m", shown
    OUTPUT.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(OUTPUT / "viewer-layer.png"))


def test_a_pilot_sees_its_unit_only(
    served: tuple[str, str, Path], browser: webdriver.Chrome
) -> None:
    base, _, store_path = served
    code, (x, y, z) = _target_building(store_path)
    store = open_store(store_path)
    try:
        parts = {p.code for p in store.children(SITE, code)}
    finally:
        store.close()
    pilot = KeyStore(Settings(store_url=store_path).keys_path).create_key("pilot", [code])
    browser.get("about:blank")  # a new document, not a jump within the admin's page
    browser.get(f"{base}/?site={SITE}&view=top#key={pilot}")
    _wait(browser, "window.twinViewer.ready && window.twinViewer.unit && window.twinViewer.site")
    names = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert not [n for n in names if "/tiles/" in n and n.endswith(".glb")]
    assert any(n.endswith("/scene.glb") for n in names)
    time.sleep(0.5)
    assert browser.execute_script(PIXEL_SPREAD) > 8
    sx, sy = browser.execute_script("return window.twinViewer.project(...arguments)", x, y, z)
    actions = ActionBuilder(browser)
    actions.pointer_action.move_to_location(int(sx), int(sy)).click()
    actions.perform()
    WebDriverWait(browser, 20).until(
        lambda b: b.find_element(By.ID, "selected-code").text in parts | {code}
    )
    OUTPUT.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(OUTPUT / "viewer-pilot.png"))
    browser.execute_script("localStorage.clear()")


def test_a_crowd_drill_shows_density_by_zone(
    served: tuple[str, str, Path], browser: webdriver.Chrome
) -> None:
    import httpx

    base, key, _ = served
    headers = {"X-API-Key": key}
    body = {"venue": "waterfront", "agents": 3000, "seed": 1}
    job = httpx.post(f"{base}/drills/crowd", json=body, headers=headers).json()
    deadline = time.monotonic() + 120
    while job["state"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
        job = httpx.get(f"{base}/jobs/{job['id']}", headers=headers).json()
    assert job["state"] == "succeeded", job
    zones = job["result"]["zones"]
    browser.get("about:blank")
    browser.get(f"{base}/?crowd={job['id']}&view=top#key={key}")
    _wait(browser, "window.twinViewer.ready && window.twinViewer.zones > 0")
    assert _state(browser, "window.twinViewer.zones") == len(zones)
    time.sleep(0.5)
    assert browser.execute_script(PIXEL_SPREAD) > 8
    densest = max(zones, key=lambda z: z["max_density_pm2"])
    x0, y0, x1, y1 = densest["bbox"]
    top = 0.2 + 2 * min(densest["max_density_pm2"], 6)
    sx, sy = browser.execute_script(
        "return window.twinViewer.project(...arguments)", (x0 + x1) / 2, (y0 + y1) / 2, top
    )
    actions = ActionBuilder(browser)
    actions.pointer_action.move_to_location(int(sx), int(sy)).click()
    actions.perform()
    WebDriverWait(browser, 20).until(
        lambda b: b.find_element(By.ID, "selected-code").text == densest["zone"]
    )
    assert str(densest["max_density_pm2"]) in browser.find_element(By.ID, "selected-value").text
    assert browser.find_element(By.ID, "legend-title").text.startswith("峰值密度")  # peak density
    OUTPUT.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(OUTPUT / "viewer-crowd.png"))


def test_the_unit_page_of_a_building_pilot(
    served: tuple[str, str, Path], browser: webdriver.Chrome
) -> None:
    import httpx

    base, key, store_path = served
    store = open_store(store_path)
    try:
        (building,) = store.by_kind("campus", "IfcBuilding")
        space = sorted(store.by_kind("campus", "IfcSpace"), key=lambda o: o.code)[0]
    finally:
        store.close()
    keys = KeyStore(Settings(store_url=store_path).keys_path)
    pilot, device = keys.create_key("pilot", [building.code]), keys.create_key("device")
    thing = thing_body("people counter", space.code, "people count", unit="p")
    thing["properties"]["cimSite"] = "campus"
    rule = {
        "name": "crowded room",
        "kind": "high",
        "levels": [[5, "red"]],
        "observed_property": "people count",
        "code_prefix": space.code,
    }
    made = httpx.post(f"{base}/rules", json=rule, headers={"X-API-Key": key})
    assert made.status_code == 201, made.text
    made = httpx.post(f"{base}/sta/v1.1/Things", json=thing, headers={"X-API-Key": key})
    assert made.status_code == 201, made.text
    streams = httpx.get(
        f"{base}/sta/v1.1/Things({made.json()['@iot.id']})/Datastreams", headers={"X-API-Key": key}
    ).json()["value"]
    from twin.times import format_time, now_us

    posted = httpx.post(
        f"{base}/sta/v1.1/Datastreams({streams[0]['@iot.id']})/Observations",
        json={"phenomenonTime": format_time(now_us() - 1_000_000), "result": 7},
        headers={"X-API-Key": device},
    )
    assert posted.status_code == 201, posted.text

    browser.get("about:blank")
    browser.get(f"{base}/?site=campus#key={pilot}")
    _wait(browser, "window.twinViewer.ready && window.twinViewer.dashboard")
    assert browser.find_element(By.ID, "unit-occupancy").text == "7"
    assert browser.find_element(By.ID, "unit-sensors").text == "1 / 1"
    # the sensor is drawn in its room, red: 7 people passed the rule's level 5
    _wait(browser, "window.twinViewer.markers.length === 1")
    (marker,) = browser.execute_script("return window.twinViewer.markers")
    assert marker["code"] == space.code and marker["severity"] == "red"
    OUTPUT.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(OUTPUT / "viewer-unit-sensors.png"))
    # the pilot runs its building's evacuation: everyone out, storeys listed, rooms coloured
    browser.find_element(By.ID, "evacuate").click()
    _wait(browser, "window.twinViewer.evacuation !== null", 60)
    summary = browser.execute_script("return window.twinViewer.evacuation.summary")
    assert summary["everyone_out"] and summary["people"] == 7  # the room's live count
    total = browser.find_element(By.ID, "evacuation-total").text
    assert "T100" in total and "null" not in total, total
    assert browser.find_elements(By.CSS_SELECTOR, "#evacuation-storeys li")
    _wait(browser, "(window.twinViewer.layer || {}).name === 'evacuation-density'")
    _wait(browser, "window.twinViewer.coloured > 0")
    browser.save_screenshot(str(OUTPUT / "viewer-unit-evacuation.png"))
    storeys = browser.execute_script(
        "return [...document.getElementById('storey').options].map(o => o.value)"
    )
    assert len(storeys) == 5 and storeys[0] == ""
    # the room's live people count colours it
    browser.execute_script(
        "const s = document.getElementById('layer'); s.value = 'live-people-count';"
        "s.dispatchEvent(new Event('change'));"
    )
    _wait(browser, "window.twinViewer.layer && window.twinViewer.coloured > 0", 20)
    # one storey on its own, and its snapshot
    browser.execute_script(
        "const s = document.getElementById('storey'); s.value = arguments[0];"
        "s.dispatchEvent(new Event('change'));",
        storeys[1],
    )
    WebDriverWait(browser, 30).until(lambda b: storeys[1] in b.find_element(By.ID, "status").text)
    browser.find_element(By.ID, "snapshot").click()
    _wait(browser, "window.twinViewer.snapshotBytes > 1000", 60)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(OUTPUT / "viewer-unit.png"))
    browser.execute_script("localStorage.clear()")
