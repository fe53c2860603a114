"""The explorer's JSON API over real HTTP (tornado in a background thread) on a store
with the reading interface of ``zx.open_store``."""
import io
import json
import urllib.error
import urllib.request

import numpy as np
import pytest
import soundfile as sf
from _explorer_store import make_store

import zounds_xr as zx
from zounds_xr.explorer import BackgroundServer, Explorer
from zounds_xr.explorer.playback import wav_header
from zounds_xr.explorer.render import encode_png
from zounds_xr.search import open_index

pytest.importorskip("tornado")


def fetch(url, headers=None, method="GET"):
    """``(status, headers, body)``; 4xx/5xx are returned, not raised."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def get_json(url):
    status, _, body = fetch(url)
    assert status == 200, body
    return json.loads(body)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("store"), n_docs=12)


@pytest.fixture(scope="module")
def server(store):
    srv = BackgroundServer(Explorer(store)).start()
    yield srv
    srv.stop()


# ---- catalog ------------------------------------------------------------------------------
def test_catalog_pages_cover_the_catalog_in_order(server, store):
    cat = store.catalog()
    ids = []
    for offset in range(0, len(cat), 5):
        page = get_json(f"{server.url}api/catalog?offset={offset}&limit=5")
        assert page["total"] == len(cat)
        ids += [row["id"] for row in page["rows"]]
    assert ids == list(cat.index)
    row = get_json(f"{server.url}api/catalog?limit=1")["rows"][0]
    first = cat.iloc[0]
    assert row["source"] == first["uri"].rsplit("/", 1)[-1]
    assert row["duration"] == pytest.approx(first["duration"])
    assert row["samplerate"] == first["samplerate"] and row["channels"] == first["channels"]
    assert row["tags"] == ", ".join(first["tags"])
    assert row["features"] == ["resampled", "magnitude", "mel", "centroid"]


def test_catalog_sorts_and_filters_like_pandas(server, store):
    cat = store.catalog()
    page = get_json(f"{server.url}api/catalog?sort=source&order=desc&limit=100")
    sources = [row["source"] for row in page["rows"]]
    assert sources == sorted(sources, key=str.lower, reverse=True)
    page = get_json(f"{server.url}api/catalog?q=CHIRP%20down&limit=100")
    expected = [i for i, uri in cat["uri"].items() if "chirp_down" in uri]
    assert page["total"] == len(expected) == 2
    assert [row["id"] for row in page["rows"]] == expected
    page = get_json(f"{server.url}api/catalog?q=generated&sort=duration&offset=10&limit=5")
    assert page["total"] == 12 and len(page["rows"]) == 2
    assert get_json(f"{server.url}api/catalog?q=no-such-word")["total"] == 0


@pytest.mark.parametrize("query", ["limit=0", "limit=5000", "offset=-1", "sort=bogus",
                                   "order=sideways", "limit=ten"])
def test_catalog_rejects_bad_parameters(server, query):
    status, headers, body = fetch(f"{server.url}api/catalog?{query}")
    assert status == 400
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"]


# ---- documents and pictures ---------------------------------------------------------------
def test_document_describes_its_features(server):
    doc = get_json(f"{server.url}api/documents/doc001")
    kinds = {f["name"]: f["kind"] for f in doc["features"]}
    assert kinds == {"resampled": "audio", "magnitude": "spectrogram", "mel": "spectrogram",
                     "centroid": "series"}
    mel = next(f for f in doc["features"] if f["name"] == "mel")
    assert mel["scale"] == "MelScale" and len(mel["bands"]["centers"]) == 32
    assert doc["duration"] == pytest.approx(2.0)
    assert doc["playback"] == "stored:resampled"


def test_unknown_document_and_feature_are_404(server):
    for path in ["api/documents/nope", "api/documents/nope/features/mel/image.png",
                 "api/documents/doc001/features/nope/image.png",
                 "api/documents/nope/audio.wav?start=0&end=1"]:
        status, _headers, body = fetch(server.url + path)
        assert status == 404, path
        assert "nope" in json.loads(body)["error"]


def _png_size(body):
    assert body[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(body[16:20], "big"), int.from_bytes(body[20:24], "big")


def test_spectrogram_image_of_the_visible_range(server, store):
    url = f"{server.url}api/documents/doc001/features/mel/image.png?start=0.5&end=1.0"
    status, headers, body = fetch(url + "&width=400&height=300")
    assert status == 200 and headers["Content-Type"] == "image/png"
    meta = json.loads(headers["X-Zx-Image"])
    mel = store["doc001"]["mel"]
    index = mel.xindexes["time"]
    frames = index.overlapping(zx.TimeSlice(start=zx.Seconds(0.5)).start_fraction,
                               zx.TimeSlice(start=zx.Seconds(1)).start_fraction)
    assert meta["frames"] == [frames.start, frames.stop]
    assert meta["t0"] <= 0.5 and meta["t1"] >= 1.0
    assert _png_size(body) == (frames.stop - frames.start, 32)  # one pixel per frame/band
    assert meta["units"] == "dB" and meta["vmax"] - meta["vmin"] == pytest.approx(80)
    # the dB range is that of the selected frames
    values = np.asarray(mel.isel(time=frames).values)
    assert meta["vmax"] == pytest.approx(20 * np.log10(values.max()), rel=1e-4)
    # wide features are pooled down to the requested size
    status, _, body = fetch(f"{server.url}api/documents/doc001/features/magnitude/image.png"
                            f"?width=50&height=100")
    assert _png_size(body) == (50, 100)


@pytest.mark.parametrize("query", ["start=1&end=0.5", "start=-1&end=1", "start=5&end=6",
                                   "start=nan&end=1", "start=a&end=1", "width=0",
                                   "height=99999", "db=maybe", "power=0"])
def test_bad_image_requests_are_400(server, query):
    status, _, body = fetch(f"{server.url}api/documents/doc001/features/mel/image.png?{query}")
    assert status == 400, body
    assert json.loads(body)["error"]


def test_values_of_audio_and_series(server, store):
    v = get_json(f"{server.url}api/documents/doc001/features/resampled/values?width=1000")
    audio = np.asarray(store["doc001"]["resampled"].values)
    assert len(v["min"]) == 1000 and v["kind"] == "audio"
    assert min(v["min"]) == pytest.approx(audio.min()) and max(v["max"]) == pytest.approx(
        audio.max())
    # a range much longer than the picture is read with a step (bounded work)
    v = get_json(f"{server.url}api/documents/doc001/features/resampled/values?width=10")
    assert len(v["min"]) == 10
    assert audio.min() <= min(v["min"]) and max(v["max"]) <= audio.max()
    v = get_json(f"{server.url}api/documents/doc001/features/centroid/values?start=1&end=2")
    assert v["kind"] == "series" and v["t0"] <= 1.0
    status, _, _ = fetch(f"{server.url}api/documents/doc001/features/mel/values")
    assert status == 400


def test_encode_png_matches_a_reference_decoder():
    rgb = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    png = encode_png(rgb)
    pil = pytest.importorskip("PIL.Image")
    assert np.array_equal(np.asarray(pil.open(io.BytesIO(png)).convert("RGB")), rgb)


# ---- audio --------------------------------------------------------------------------------
def test_audio_is_the_stored_audio_of_the_selection(server, store):
    status, headers, body = fetch(f"{server.url}api/documents/doc003/audio.wav?start=0.25&end=1")
    assert status == 200 and headers["Content-Type"] == "audio/wav"
    assert headers["Accept-Ranges"] == "bytes"
    assert int(headers["Content-Length"]) == len(body)
    samples, rate = sf.read(io.BytesIO(body), dtype="float32")
    assert rate == 22050
    stored = np.asarray(store["doc003"]["resampled"].values)
    first, last = round(0.25 * 22050), round(1.0 * 22050)
    assert samples.shape == (last - first,)
    np.testing.assert_allclose(samples, np.clip(stored[first:last], -1, 1), atol=2 / 32768)


def test_audio_byte_ranges(server):
    url = f"{server.url}api/documents/doc001/audio.wav?start=0&end=1"
    status, headers, whole = fetch(url)
    assert status == 200 and len(whole) == 44 + 22050 * 2
    assert whole[:44] == wav_header(22050, 1, 22050)
    status, headers, body = fetch(url, {"Range": "bytes=40-1039"})
    assert status == 206
    assert headers["Content-Range"] == f"bytes 40-1039/{len(whole)}"
    assert body == whole[40:1040]
    status, headers, body = fetch(url, {"Range": "bytes=-101"})  # suffix
    assert status == 206 and body == whole[-101:]
    status, headers, body = fetch(url, {"Range": "bytes=1001-"})  # odd start, to the end
    assert status == 206 and body == whole[1001:]
    status, headers, body = fetch(url, {"Range": "bytes=0-"})
    assert status == 200 and body == whole  # Chrome needs 200 for the whole file
    status, headers, _ = fetch(url, {"Range": f"bytes={len(whole)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(whole)}"
    status, headers, body = fetch(url, method="HEAD")
    assert status == 200 and int(headers["Content-Length"]) == len(whole) and body == b""
    etag = headers["Etag"]
    status, _, _ = fetch(url, {"If-None-Match": etag})
    assert status == 304


@pytest.mark.parametrize("query", ["start=1&end=1", "start=3&end=4", "start=-0.5&end=1",
                                   "start=0&end=inf", "start=x"])
def test_bad_audio_ranges_are_400(server, query):
    status, _, body = fetch(f"{server.url}api/documents/doc001/audio.wav?{query}")
    assert status == 400, body
    assert json.loads(body)["error"]


def test_audio_resynthesized_from_a_stored_stft(tmp_path):
    store = make_store(tmp_path / "store", stored=("spectrum", "mel"), n_docs=2)
    explorer = Explorer(store)
    assert explorer.document("doc000")["playback"] == "resynthesized:spectrum"
    clip = explorer.clip("doc000", 0.5, 1.5)
    samples, rate = sf.read(io.BytesIO(clip.wav()), dtype="float32")
    assert rate == 22050 and samples.shape == (22050,)
    # Hann analysis, Vorbis synthesis: not exact, but the same sound (a chord)
    t = np.arange(2 * 22050) / 22050
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220, 261.63, 329.63)) / 3
    original = chord[11025:33075]
    corr = np.corrcoef(samples, original)[0, 1]
    assert corr > 0.95


def test_audio_decoded_from_the_source(tmp_path):
    store = make_store(tmp_path / "store", stored=("mel",), n_docs=2,
                       sources=tmp_path / "audio")
    explorer = Explorer(store)
    uri = store.catalog().loc["doc001", "uri"]
    assert explorer.document("doc001")["playback"] == f"decoded:{uri}"
    samples, _rate = sf.read(io.BytesIO(explorer.clip("doc001", 0.1, 0.3).wav()),
                            dtype="float32")
    source, _ = sf.read(uri, dtype="float32")
    np.testing.assert_allclose(samples, source[2205:6615], atol=2 / 32768)


def test_nothing_to_play_is_a_clear_error(tmp_path):
    store = make_store(tmp_path / "store", stored=("mel",), n_docs=1)  # uri does not exist
    with pytest.raises(zx.ParameterError, match="nothing to play"):
        Explorer(store).clip("doc000", 0, 1)


# ---- neighbours and the map ---------------------------------------------------------------
def test_neighbours_find_the_same_kind_of_sound(server, store):
    r = get_json(f"{server.url}api/neighbours?feature=mel&id=doc001&start=0.5&end=1&k=5")
    assert len(r["results"]) == 5
    # doc007 is doc001's chirp at 0.95 of the level: the nearest, at the same place
    best = r["results"][0]
    assert best["id"] == "doc007" and best["source"] == "007_chirp_up.flac"
    assert abs(best["start"] - 0.5) < 0.3
    distances = [hit["distance"] for hit in r["results"]]
    assert distances == sorted(distances)
    for hit in r["results"]:  # the selection itself is left out
        assert not (hit["id"] == "doc001" and hit["start"] < 1 and hit["end"] > 0.5)


@pytest.mark.parametrize("query,status", [
    ("feature=mel&id=nope", 404), ("feature=nope&id=doc001", 404),
    ("feature=mel&id=doc001&k=0", 400), ("feature=mel&id=doc001&start=2&end=1", 400),
    ("id=doc001", 400)])
def test_bad_neighbour_queries(server, query, status):
    got, _, body = fetch(f"{server.url}api/neighbours?{query}")
    assert got == status, body


def test_info_lists_persisted_indexes(store, tmp_path):
    open_index(store, "centroid")
    info = get_json_from(Explorer(store), "api/info")
    assert "centroid" in info["indexes"] and info["documents"] == 12
    assert info["kinds"] == {"resampled": "audio", "magnitude": "spectrogram",
                             "mel": "spectrogram", "centroid": "series"}


def get_json_from(explorer, path):
    srv = BackgroundServer(explorer).start()
    try:
        return get_json(srv.url + path)
    finally:
        srv.stop()


# ---- the page and the notebook ------------------------------------------------------------
def test_page_and_static_files_are_served(server):
    status, headers, body = fetch(server.url)
    assert status == 200 and b"zounds-xr explorer" in body
    assert headers["Content-Type"].startswith("text/html")
    for name, kind in [("app.js", "javascript"), ("style.css", "text/css")]:
        status, headers, _ = fetch(f"{server.url}static/{name}")
        assert status == 200 and kind in headers["Content-Type"]
    assert fetch(f"{server.url}static/../server.py")[0] in (403, 404)


def test_explore_shows_an_iframe_to_a_running_server(store):
    view = zx.explore(store)
    try:
        assert view.url.startswith("http://127.0.0.1:")
        assert f'src="{view.url}"' in view._repr_html_()
        assert get_json(view.url + "api/info")["documents"] == 12
    finally:
        view.stop()


def test_server_binds_localhost_by_default(store):
    srv = BackgroundServer(Explorer(store))
    assert srv.host == "127.0.0.1"


class _NoArrays:
    """A store that offers only ``catalog()``, ``features`` and ``store[doc_id]``."""

    def __init__(self, store):
        self._store = store
        self.features = store.features
        self.url = store.url

    def catalog(self):
        return self._store.catalog()

    def __getitem__(self, doc_id):
        return self._store[doc_id]


def test_straight_reads_and_dataarray_reads_agree(store):
    direct, lazy = Explorer(store), Explorer(_NoArrays(store))
    # the duration, or the end of the last (end-padded) STFT frame
    assert direct.document_end("doc002") == lazy.document_end("doc002") > 2.0
    a = direct.image("doc002", "mel", 0.2, 1.3, width=20, height=16)
    b = lazy.image("doc002", "mel", 0.2, 1.3, width=20, height=16)
    assert a == b
    assert direct.values("doc002", "resampled", 0, 2, width=50) == lazy.values(
        "doc002", "resampled", 0, 2, width=50)
    assert direct.clip("doc002", 0.1, 0.4).wav() == lazy.clip("doc002", 0.1, 0.4).wav()
    with pytest.raises(zx.ParameterError, match="1-D"):
        lazy.image("doc002", "centroid")


@pytest.mark.slow
def test_catalog_view_over_a_million_rows():
    import pandas as pd

    from zounds_xr.explorer.catalog import CatalogView

    n = 1_000_000
    rng = np.random.default_rng(3)
    words = np.array(["dog", "rain", "bird", "door"])
    cat = pd.DataFrame({"uri": [f"/c/{i:07d}.wav" for i in range(n)],
                        "duration": rng.uniform(0.5, 10, n), "samplerate": 16000,
                        "channels": 1, "tags": words[rng.integers(0, 4, n)],
                        "mel.frames": 10},
                       index=pd.Index([f"id{i:07d}" for i in range(n)], name="id"))
    view = CatalogView(cat, ["mel"])
    page = view.page(offset=n - 3, limit=10)
    assert page["total"] == n and [r["id"] for r in page["rows"]] == list(cat.index[-3:])
    page = view.page(limit=5, sort="duration", descending=True)
    assert [r["id"] for r in page["rows"]] == list(cat["duration"].nlargest(5).index)
    page = view.page(offset=20, limit=5, query="rain 00001")
    expected = cat.index[(cat["tags"] == "rain") & cat["uri"].str.contains("00001")]
    assert page["total"] == len(expected)
    assert [r["id"] for r in page["rows"]] == list(expected[20:25])
