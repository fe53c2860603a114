"""The page at corpus scale in headless Chromium: an hour-long document zoomed from the
hour to one second (pictures from the pyramid, then the frames; sizes and axis labels
checked at every step), the WebGL map of 10^5 documents (drawn, hovered, clicked), and
labels set on three ticked documents of a real store, committed as a new version of its
catalog (read back with ``Sound.catalog()``, the previous version still readable)."""
import re
import urllib.parse

import numpy as np
import pytest
import soundfile as sf

import zounds_xr as zx
from zounds_xr.documents.pyramid import build_pyramids
from zounds_xr.explorer import BackgroundServer, Explorer
from zounds_xr.explorer.maplayout import build_map
from zounds_xr.explorer.server import open_explorer

from _explorer_store import EmbeddingStore
from test_explorer_browser import browser, wait  # noqa: F401 (the browser fixture)

pytest.importorskip("tornado")
webdriver = pytest.importorskip("selenium.webdriver")

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

RATE = 1000


def gain(x, factor):
    return x * factor


@pytest.fixture(scope="module")
def hour(tmp_path_factory):
    """A real store holding one hour of sound (1 kHz) and its |STFT| (33 bands), with
    pyramids."""
    base = tmp_path_factory.mktemp("hour")
    t = np.arange(3600 * RATE) / RATE
    x = (0.5 * np.sin(2 * np.pi * (30 + 400 * t / 3600) * t)).astype(np.float32)
    sf.write(base / "hour.wav", x, RATE, subtype="FLOAT")

    @zx.zarr_settings(str(base / "store"))
    class Hour(zx.Document):
        wave = zx.Feature(gain, needs=zx.Document.audio, factor=1.0, store=True)
        spectrum = zx.Feature(zx.stft, needs=wave,
                              wscheme=zx.SampleRate(zx.Milliseconds(32), zx.Milliseconds(64)))
        magnitude = zx.Feature(np.abs, needs=spectrum, store=True)

    doc_id = Hour.process(meta=str(base / "hour.wav"))
    store = zx.open_store(str(base / "store"))
    build_pyramids(store, min_bytes=1 << 20)  # 14 MB each: long for a test
    srv = BackgroundServer(Explorer(store)).start()
    yield srv, doc_id
    srv.stop()


def picture(d):
    return d.execute_script(
        "const i = document.querySelector('#spec');"
        "return i.complete && i.naturalWidth > 0 ? [i.naturalWidth, i.naturalHeight,"
        " Number(i.dataset.t0), Number(i.dataset.t1), Number(i.dataset.level)] : null")


def axis_labels(d):
    return d.execute_script(
        "return [...document.querySelectorAll('#xaxis span')].map(s => [Number(s.dataset.t),"
        " s.textContent, parseFloat(s.style.left)])")


def clock_seconds(text):
    parts = [int(p) for p in text.split(":")]
    return sum(p * 60 ** k for k, p in enumerate(reversed(parts)))


def test_zoom_from_the_hour_to_one_second(browser, hour, tmp_path):  # noqa: F811
    d = browser
    srv, doc_id = hour
    d.get(f"{srv.url}#/doc/{doc_id}")
    wait(d, lambda d: picture(d) is not None and d.execute_script(
        "return state.doc && state.doc.id") == doc_id, message="whole-hour picture")
    width = d.execute_script("return plotWidth()")
    height = d.execute_script("return document.querySelector('#spec-plot').clientHeight")
    spans = []
    while True:
        view = d.execute_script("return state.view")
        span = view[1] - view[0]
        cols, rows, t0, t1, level = wait(
            d, lambda d, v=view: p if (p := picture(d)) is not None and p[2] <= v[0] + 1e-6
            and p[3] >= v[1] - 0.07 else None, message=f"picture of {view}")
        frames = (t1 - t0) / 0.032
        # the picture is as wide as the plot, or one column per frame when fewer
        assert cols == min(width, round(frames)), (view, cols, frames)
        assert rows == min(height, 33)
        # the pyramid below about 4 frames per pixel, the frames themselves above
        assert (level > 0) == (frames / width > 4), (view, level)
        labels = axis_labels(d)
        assert len(labels) >= 3
        values = [v for v, _, _ in labels]
        assert values == sorted(values)
        assert view[0] - 1e-9 <= values[0] and values[-1] <= view[1] + 1e-9
        # whole minutes as h:mm:ss (always for 10 minutes or more), else seconds
        clock = d.find_element(By.ID, "xaxis-unit").text == "time (h:mm:ss)"
        assert clock or span < 600
        assert not clock or span > 100
        for value, text, left in labels:
            if clock:
                assert re.fullmatch(r"\d+(:\d\d){1,2}", text) and clock_seconds(text) == value
            else:
                assert text.endswith(" s") and float(text[:-2]) == pytest.approx(value, abs=1e-3)
            assert left == pytest.approx((value - view[0]) / span * width, abs=1.5)
        spans.append((span, level))
        if span <= 1:
            break
        d.find_element(By.ID, "zoom-in").click()
        wait(d, lambda d, s=span: d.execute_script(
            "return state.view[1] - state.view[0]") < s * 0.6, message="zoomed")
    assert spans[0][0] == pytest.approx(3600) and spans[0][1] >= 5
    assert spans[-1][0] <= 1 and spans[-1][1] == 0
    # the URL keeps the view: reloading shows the same second
    assert "v0=" in d.current_url and "v1=" in d.current_url
    view = d.execute_script("return state.view")
    d.refresh()
    wait(d, lambda d: d.execute_script("return state.doc && state.view") == pytest.approx(
        view, abs=1e-3), message="view from the URL")
    d.save_screenshot(str(tmp_path / "hour-one-second.png"))
    assert [e for e in d.get_log("browser") if e["level"] == "SEVERE"] == []


@pytest.fixture(scope="module")
def big_map(tmp_path_factory):
    root = tmp_path_factory.mktemp("big-map")
    store = EmbeddingStore(root, 100_000, dims=16, clusters=8)
    build_map(store, "embedding", "pca")
    srv = BackgroundServer(Explorer(store)).start()
    yield srv, store
    srv.stop()


def test_map_of_a_hundred_thousand_documents(browser, big_map, tmp_path):  # noqa: F811
    d = browser
    srv, store = big_map
    d.get(f"{srv.url}#/map?feature=embedding&colour=tags")
    wait(d, lambda d: d.execute_script("return mapState.paintedAt !== null && "
                                       "mapState.legend !== null"), timeout=60,
         message="map painted")
    assert d.execute_script("return mapState.renderer") == "webgl"
    assert d.execute_script("return mapState.n") == 100_000
    assert "100000 documents" in d.find_element(By.ID, "map-status").text
    assert "dog" in d.find_element(By.ID, "map-legend").text
    # the WebGL canvas shows the points: coloured pixels where the page puts a point
    i = 12345
    x, y = d.execute_script("return toScreen(mapState.xy[2 * arguments[0]], "
                            "mapState.xy[2 * arguments[0] + 1])", i)
    pixel = d.execute_script(
        "const c = document.querySelector('#map'), gl = c.getContext('webgl');"
        "const p = new Uint8Array(4);"
        "gl.readPixels(Math.round(arguments[0]), c.height - 1 - Math.round(arguments[1]),"
        " 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, p); return Array.from(p);", x, y)
    assert pixel[:3] != [255, 255, 255]
    # hover names the document, a click opens it
    overlay = d.find_element(By.ID, "map-overlay")
    dx, dy = int(round(x - overlay.size["width"] / 2)), int(round(y - overlay.size["height"] / 2))
    ActionChains(d).move_to_element_with_offset(overlay, dx, dy).perform()
    wait(d, lambda d: "(e" in d.find_element(By.ID, "map-label").text, message="hover")
    hovered = d.execute_script("return mapState.hover")
    near = d.execute_script(
        "const [x, y] = arguments, out = [];"
        "for (let j = 0; j < mapState.n; j++) { const [a, b] = toScreen(mapState.xy[2 * j],"
        " mapState.xy[2 * j + 1]); if ((a - x) ** 2 + (b - y) ** 2 < 64) out.push(j); }"
        "return out;", x, y)
    assert hovered in near
    ActionChains(d).move_to_element_with_offset(overlay, dx, dy).click().perform()
    wait(d, lambda d: "#/doc/" in d.current_url, message="click opens")
    opened = urllib.parse.unquote(d.current_url.split("#/doc/")[1].split("?")[0])
    assert opened == store.catalog().index[hovered]
    wait(d, lambda d: d.find_element(By.ID, "doc-title").text, message="document view")
    d.back()
    wait(d, lambda d: d.execute_script("return !document.querySelector('#map-view').hidden"),
         message="back to the map")
    assert "colour=tags" in d.current_url
    d.save_screenshot(str(tmp_path / "map-1e5.png"))
    assert [e for e in d.get_log("browser") if e["level"] == "SEVERE"] == []


def test_label_three_ticked_documents(browser, tmp_path):  # noqa: F811
    d = browser

    @zx.zarr_settings(str(tmp_path / "store"))
    class Sound(zx.Document):
        wave = zx.Feature(gain, needs=zx.Document.audio, factor=1.0, store=True)

    for i in range(5):
        sf.write(tmp_path / f"s{i}.wav", np.full(800, 0.1 * i, np.float32), 8000)
        Sound.process(meta=str(tmp_path / f"s{i}.wav"))
    before = zx.open_store(str(tmp_path / "store")).version
    srv = BackgroundServer(open_explorer(str(tmp_path / "store"), writable=True)).start()
    try:
        d.get(srv.url + "#/?sort=source")
        wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#catalog tbody tr")) == 5,
             message="rows")
        assert d.find_element(By.ID, "label-bar").is_displayed()
        assert not d.find_element(By.ID, "read-only").is_displayed()
        boxes = d.find_elements(By.CSS_SELECTOR, "#catalog .row-check")
        ids = [b.find_element(By.XPATH, "../..").get_attribute("data-id") for b in boxes[:3]]
        for box in boxes[:3]:
            box.click()
        assert d.find_element(By.ID, "label-target").text == "3 ticked"
        column = d.find_element(By.ID, "label-column")
        column.clear()
        column.send_keys("kind")
        d.find_element(By.TAG_NAME, "body").send_keys("l")  # the shortcut focuses the value
        assert d.switch_to.active_element.get_attribute("id") == "label-value"
        d.switch_to.active_element.send_keys("engine\n")
        wait(d, lambda d: "kind set on 3 documents (version " in
             d.find_element(By.ID, "label-status").text, message="label committed")
        # read back in Python: the newest catalog has it, the one before does not
        cat = Sound.catalog()
        assert list(cat.loc[ids, "kind"]) == ["engine"] * 3
        assert cat.drop(index=ids)["kind"].isna().all()
        assert "kind" not in Sound.catalog(version=before).columns
        assert Sound.catalog(version=before).index.sort_values().equals(
            cat.index.sort_values())
        # the table shows the new column
        wait(d, lambda d: sorted(e.text for e in d.find_elements(By.CSS_SELECTOR, "td.extra")
                                 if e.text) == ["engine"] * 3, message="column shown")
        assert [e for e in d.get_log("browser") if e["level"] == "SEVERE"] == []
    finally:
        srv.stop()
