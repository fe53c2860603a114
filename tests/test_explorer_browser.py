"""The explorer's page on the demo's store in a real headless browser (Debian's chromium +
chromium-driver, driven by selenium): catalog, document view, spectrogram, selection,
playback, neighbour search and the map. Skips only where no browser is installed."""
import json
import os
import pathlib
import shutil
import tempfile
import urllib.parse
import urllib.request

import pytest

import zounds_xr as zx
from zounds_xr.explorer import BackgroundServer, Explorer

from _explorer_store import demo_store

pytest.importorskip("tornado")
pytest.importorskip("torch")  # neighbour search hashes with zounds_xr.learn.SimHash
webdriver = pytest.importorskip("selenium.webdriver")

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

# WebGL (the map) in software: SwiftShader through ANGLE
CHROME_FLAGS = ["--headless", "--no-sandbox", "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--autoplay-policy=no-user-gesture-required", "--window-size=1300,1000"]


def _browser_paths():
    binary = next((p for p in map(shutil.which, ("chromium", "chromium-browser",
                                                 "google-chrome")) if p), None)
    driver = shutil.which("chromedriver")
    return binary, driver


@pytest.fixture(scope="module")
def browser():
    binary, driver_path = _browser_paths()
    if binary is None or driver_path is None:
        pytest.skip("no chromium and chromedriver (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="zx-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = binary
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=driver_path))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = zx.open_store(str(demo_store(tmp_path_factory)))
    srv = BackgroundServer(Explorer(store)).start()
    yield srv
    srv.stop()


def wait(driver, condition, timeout=30, message=""):
    # the page replaces table rows as data arrives: a row found a moment ago may be gone
    return WebDriverWait(driver, timeout, ignored_exceptions=(
        StaleElementReferenceException,)).until(lambda d: condition(d), message)


def rows_text(d):
    return [r.find_element(By.CSS_SELECTOR, "td.source").text
            for r in d.find_elements(By.CSS_SELECTOR, "#catalog tbody tr")]


def test_browse_select_play_search_and_follow(browser, server, tmp_path):
    d = browser
    d.get(server.url)
    wait(d, lambda d: len(rows_text(d)) == 8, message="catalog rows")
    assert "rows 1–8 of 8" in d.find_element(By.ID, "catalog-count").text

    # filtering and sorting happen on the server
    d.find_element(By.ID, "filter").send_keys("chirp")
    wait(d, lambda d: sorted(rows_text(d)) == ["chirp_down.ogg", "chirp_up.flac"],
         message="filtered rows")
    d.find_element(By.CSS_SELECTOR, "th[data-sort=source]").click()
    wait(d, lambda d: rows_text(d) == ["chirp_down.ogg", "chirp_up.flac"], message="sorted")
    d.find_element(By.CSS_SELECTOR, "th[data-sort=source]").click()
    wait(d, lambda d: rows_text(d) == ["chirp_up.flac", "chirp_down.ogg"], message="desc")
    d.find_element(By.CSS_SELECTOR, "#catalog tbody tr").click()

    # the document view: the spectrogram of the whole document, axes in s and Hz
    wait(d, lambda d: d.execute_script(
        "const i = document.querySelector('#spec'); return i.complete && i.naturalWidth > 0"),
        message="spectrogram image")
    assert d.find_element(By.ID, "doc-title").text == "chirp_up.flac"
    assert "Hz" in d.find_element(By.ID, "spec-axis").text
    assert " s" in d.find_element(By.ID, "xaxis").text
    assert "dB" in d.find_element(By.ID, "cbar").text

    # select a quarter of the 3 s document by dragging over the pictures
    overlay = d.find_element(By.ID, "overlay")
    width = d.execute_script("return document.querySelector('#spec-plot').clientWidth")
    left = -overlay.size["width"] / 2  # offsets are from the element's centre
    (ActionChains(d).move_to_element_with_offset(overlay, int(left + width * 0.25), 0)
     .click_and_hold().move_by_offset(int(width * 0.25), 0).release().perform())
    sel = d.execute_script("return state.sel")
    assert sel[0] == pytest.approx(0.75, abs=0.02) and sel[1] == pytest.approx(1.5, abs=0.02)
    assert d.find_element(By.ID, "selection").is_displayed()
    assert d.find_element(By.ID, "selection-range").text.startswith("selection 0.7")

    # play it: the audio element loads the WAV of the selection and plays
    d.find_element(By.ID, "play").click()
    wait(d, lambda d: d.execute_script(
        "const p = document.querySelector('#player');"
        "return p.error === null && p.readyState >= 2 && (!p.paused || p.currentTime > 0)"),
        message="audio playing")
    src = d.execute_script("return document.querySelector('#player').src")
    assert "/audio.wav?start=0.7" in src
    duration = d.execute_script("return document.querySelector('#player').duration")
    assert duration == pytest.approx(sel[1] - sel[0], abs=0.01)

    # neighbours of the selection over the mel spectrogram
    d.find_element(By.CSS_SELECTOR, "#nn-feature option[value=mel]").click()
    d.find_element(By.ID, "nn-search").click()
    hits = wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#neighbours tbody tr"),
                message="neighbours")
    assert len(hits) == 10
    first = hits[0].find_element(By.CSS_SELECTOR, "a.nn-open")
    target = first.text
    hits[1].find_element(By.CSS_SELECTOR, "button.nn-play").click()
    wait(d, lambda d: "start=" in d.execute_script(
        "return document.querySelector('#player').src") and d.execute_script(
        "return document.querySelector('#player').readyState") >= 2, message="neighbour plays")
    shot = tmp_path / "explorer-document.png"
    d.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    target_png = os.environ.get("ZX_EXPLORER_SCREENSHOT")
    if target_png:  # how docs/explorer.png is refreshed (see docs/EXPLORER.md)
        pathlib.Path(target_png).write_bytes(shot.read_bytes())

    # follow the nearest: its document opens with the window selected
    first.click()
    wait(d, lambda d: d.find_element(By.ID, "doc-title").text == target,
         message="followed neighbour")
    wait(d, lambda d: d.find_element(By.ID, "selection").is_displayed(), message="selection")
    assert "?start=" in d.current_url
    # the results stay listed while following them
    assert len(d.find_elements(By.CSS_SELECTOR, "#neighbours tbody tr")) == 10
    d.save_screenshot(str(tmp_path / "explorer-followed.png"))
    errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def click_point(d, i):
    """Click point ``i`` of the map where the page draws it; returns the ids of the
    points drawn within 3 pixels of it (twins can coincide)."""
    x, y = d.execute_script("return toScreen(mapState.xy[2 * arguments[0]], "
                            "mapState.xy[2 * arguments[0] + 1])", i)
    overlay = d.find_element(By.ID, "map-overlay")
    near = d.execute_script(
        "const [x, y] = arguments, out = [];"
        "for (let j = 0; j < mapState.n; j++) { const [a, b] = toScreen(mapState.xy[2 * j],"
        " mapState.xy[2 * j + 1]); if ((a - x) ** 2 + (b - y) ** 2 < 9) out.push(j); }"
        "return out;", x, y)
    (ActionChains(d).move_to_element_with_offset(
        overlay, int(round(x - overlay.size["width"] / 2)),
        int(round(y - overlay.size["height"] / 2))).click().perform())
    return near


def test_map_opens_a_document(browser, server, tmp_path):
    d = browser
    d.get(server.url + "#/map")
    wait(d, lambda d: "8 documents" in d.find_element(By.ID, "map-status").text,
         message="map drawn")
    assert d.execute_script("return mapState.renderer") == "webgl"
    near = click_point(d, 3)
    ids = [json.loads(urllib.request.urlopen(
        f"{server.url}api/map/point?feature={d.execute_script('return mapState.key[0]')}"
        f"&i={j}").read())["id"] for j in near]
    wait(d, lambda d: "#/doc/" in d.current_url, message="map click")
    assert urllib.parse.unquote(d.current_url.split("#/doc/")[1].split("?")[0]) in ids
    wait(d, lambda d: d.find_element(By.ID, "doc-title").text, message="document opened")
    d.save_screenshot(str(tmp_path / "explorer-map.png"))
    errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
