"""Online datasets against a local HTTP server (no test reaches the internet)."""
from __future__ import annotations

import importlib.util
import io
import socket
import urllib.parse
import urllib.request

import numpy as np
import pytest
import soundfile

import zounds_xr as zx
from _http_fixtures import (
    FREESOUND_KEY,
    FREESOUND_PATH,
    IA_ID,
    LocalServer,
    Reply,
    freesound_search,
    freesound_sounds,
    ia_metadata,
    json_reply,
    phat_beats_html,
    text_reply,
    wav_bytes,
    wav_reply,
)
from zounds_xr.datasets import DatasetError, HttpClient
from zounds_xr.datasets.http import redact_url
from zounds_xr.datasets.phatdrumloops import wav_links

FAST = {"retries": 2, "backoff": 0.001, "timeout": 2.0}


@pytest.fixture
def server():
    with LocalServer(max_requests=60) as srv:
        yield srv


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.read()


def check_load(uri: str, expected: np.ndarray, samplerate: int) -> None:
    """``zx.load(uri)`` decodes the URL, once the decoder exists (another module)."""
    if importlib.util.find_spec("zounds_xr.io.decode") is None:
        pytest.skip("zounds_xr.io.decode is not written yet")
    arr = np.asarray(zx.load(uri), dtype=np.float64)
    exp = expected if expected.ndim == 2 else expected[:, None]
    arr = arr[:, None] if arr.ndim == 1 else arr
    if arr.shape != exp.shape and arr.T.shape == exp.shape:
        arr = arr.T  # (channel, time) layout
    np.testing.assert_allclose(arr, exp, atol=1e-4)


# -- HttpClient -----------------------------------------------------------------------------
def test_client_url_joining_and_params():
    c = HttpClient("https://freesound.org/apiv2")
    assert c.url("search/text/") == "https://freesound.org/apiv2/search/text/"
    assert c.url("/search/text/", {"query": "a b", "page": 2, "skip": None}) == (
        "https://freesound.org/apiv2/search/text/?query=a+b&page=2")
    assert c.url("https://x.org/next?&page=2", {"a": 1}) == "https://x.org/next?&page=2&a=1"
    assert HttpClient("https://archive.org").url("metadata/x") == "https://archive.org/metadata/x"


@pytest.mark.parametrize("base", ["ftp://example.org", "example.org", "", None])
def test_client_rejects_non_http_base(base):
    with pytest.raises(zx.ParameterError):
        HttpClient(base)


@pytest.mark.parametrize("kwargs", [{"retries": -1}, {"timeout": 0}, {"delay": -0.1},
                                    {"backoff": "1"}, {"max_bytes": 0}])
def test_client_rejects_bad_options(kwargs):
    with pytest.raises(zx.ParameterError):
        HttpClient("http://127.0.0.1", **kwargs)


def test_redact_url_hides_credentials_only():
    assert redact_url("https://h/a?query=x&token=SECRET&page=2") == (
        "https://h/a?query=x&token=***&page=2")
    assert redact_url("https://h/a?query=token") == "https://h/a?query=token"


def test_client_get_json_and_text(server):
    server.route("/j", json_reply({"a": [1, 2]}))
    server.route("/t", text_reply("héllo", content_type="text/plain; charset=utf-8"))
    c = HttpClient(server.origin, **FAST)
    assert c.get_json("j") == {"a": [1, 2]}
    assert c.get_text("/t") == "héllo"
    assert server.log[0].headers["user-agent"].startswith("zounds_xr/")


def test_client_retries_429_then_succeeds(server):
    server.route("/r", Reply(429, b"slow down", {"Retry-After": "0"}), json_reply({"ok": 1}))
    assert HttpClient(server.origin, **FAST).get_json("r") == {"ok": 1}
    assert len(server.requests_to("/r")) == 2


def test_client_retries_connection_reset_then_succeeds(server):
    sick = [True]

    def flaky(srv, req):
        if sick.pop() if sick else False:
            return Reply(503, b"", {"Retry-After": "not-a-number"})
        return json_reply([1])
    server.route("/f", flaky)
    assert HttpClient(server.origin, **FAST).get_json("f") == [1]
    assert len(server.log) == 2


def test_client_500_exhausts_retries(server):
    server.route("/boom", text_reply("<h1>Internal   Server\nError</h1>", 500))
    with pytest.raises(DatasetError) as info:
        HttpClient(server.origin, **FAST).get_json("boom", {"token": "SECRET"})
    err = info.value
    assert err.status == 500
    assert len(server.requests_to("/boom")) == FAST["retries"] + 1
    msg = str(err)
    assert "3 attempts" in msg and "HTTP 500" in msg and "/boom" in msg
    assert "Internal Server Error" in msg  # the body excerpt, on one line
    assert "SECRET" not in msg and "token=***" in msg


def test_client_404_fails_without_retry(server):
    with pytest.raises(DatasetError, match=r"HTTP 404") as info:
        HttpClient(server.origin, **FAST).get_json("nowhere")
    assert info.value.status == 404
    assert len(server.log) == 1


def test_client_malformed_json(server):
    server.route("/bad", Reply(200, b'{"results": [1, 2', {"Content-Type": "application/json"}))
    with pytest.raises(DatasetError, match="valid JSON") as info:
        HttpClient(server.origin, **FAST).get_json("bad")
    assert "/bad" in str(info.value)


def test_client_connection_refused_is_dataset_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DatasetError, match="connection error") as info:
        HttpClient(f"http://127.0.0.1:{port}", retries=1, backoff=0.001, timeout=1).get("x")
    assert info.value.status is None and "2 attempts" in str(info.value)


def test_client_timeout_is_retried_then_fails(server):
    server.route("/slow", Reply(200, b"{}", {}, sleep=0.4))
    with pytest.raises(DatasetError, match="connection error|timed out"):
        HttpClient(server.origin, retries=1, backoff=0.001, timeout=0.1).get_json("slow")
    assert len(server.requests_to("/slow")) == 2


def test_client_response_size_limit(server):
    server.route("/big", Reply(200, b"x" * 2000))
    with pytest.raises(DatasetError, match="larger than 1000 bytes"):
        HttpClient(server.origin, max_bytes=1000).get("big")


def test_client_delay_spaces_requests(server):
    server.route("/p", json_reply({}))
    c = HttpClient(server.origin, delay=0.05)
    for _ in range(3):
        c.get_json("p")
    times = [r.time for r in server.log]
    assert all(b - a >= 0.04 for a, b in zip(times, times[1:], strict=False))


def test_client_auth_headers_stay_on_origin(server):
    server.route("/a", json_reply({}))
    c = HttpClient(server.origin, auth_headers={"Authorization": "Token K"})
    c.get_json("a")
    other = server.origin.replace("127.0.0.1", "localhost")  # same server, other origin
    c.get_json(f"{other}/a")
    assert server.log[0].headers.get("authorization") == "Token K"
    assert "authorization" not in server.log[1].headers


# -- FreeSoundSearch ---------------------------------------------------------------------------
def freesound(server, **kwargs):
    server.route(FREESOUND_PATH, freesound_search(freesound_sounds(server.origin)))
    kwargs.setdefault("delay", 0)
    return zx.FreeSoundSearch(FREESOUND_KEY, "guitar", base_url=f"{server.origin}/apiv2",
                              **FAST, **kwargs)


def test_freesound_pages_until_n_results(server):
    ds = freesound(server, n_results=5, page_size=2)
    assert server.log == []  # lazy: nothing requested before iterating
    metas = list(ds)
    sounds = freesound_sounds(server.origin)
    assert [m.freesound_id for m in metas] == [s["id"] for s in sounds[:5]]
    assert len(server.log) == 3  # pages of 2, 2 and 1 (of 2)
    first = metas[0]
    assert first.uri == sounds[0]["previews"]["preview-hq-ogg"]
    assert first.samplerate == 44100 and isinstance(first.samplerate, int)
    assert first.channels == 1 and metas[1].channels == 2
    assert first.licensing == "http://creativecommons.org/licenses/by/3.0/"
    assert first.description.startswith("Etude of Electric Guitar")
    assert first.tags == ["guitar", "Electric", "Chorus", "take-0"]
    assert first.name == "Etude of Electric Guitar in Dm.wav" and first.username == "user0"
    assert first.to_dict()["freesound_id"] == 100001
    req = server.log[0]
    assert req.query["query"] == ["guitar"] and req.query["page_size"] == ["2"]
    assert set(req.query["fields"][0].split(",")) >= {
        "id", "name", "previews", "license", "description", "tags", "samplerate", "channels"}
    # the key travels in the header, never in a URL
    assert all(r.headers["authorization"] == f"Token {FREESOUND_KEY}" for r in server.log)
    assert all("token" not in r.query for r in server.log)
    assert [r.query.get("page", ["1"])[0] for r in server.log] == ["1", "2", "3"]


def test_freesound_stops_when_results_run_out(server):
    metas = list(freesound(server, n_results=20, page_size=3))
    assert len(metas) == 7 and len(server.log) == 3


def test_freesound_default_page_size_is_n_results(server):
    assert len(list(freesound(server, n_results=4))) == 4
    assert len(server.log) == 1 and server.log[0].query["page_size"] == ["4"]


def test_freesound_is_reiterable_and_requests_no_audio(server):
    ds = freesound(server, n_results=3)
    a, b = list(ds), list(ds)
    assert a == b and len(a) == 3
    assert {r.path for r in server.log} == {FREESOUND_PATH}  # no preview was downloaded
    assert len(server.log) == 2


def test_freesound_delay_is_honoured(server):
    delay = 0.05
    list(freesound(server, n_results=6, page_size=2, delay=delay))
    times = [r.time for r in server.log]
    assert len(times) == 3
    assert all(b - a >= delay * 0.8 for a, b in zip(times, times[1:], strict=False))


def test_freesound_preview_choice_and_fallback(server):
    ds = freesound(server, n_results=1, preview="preview-lq-mp3")
    assert next(iter(ds)).uri.endswith("-lq.mp3")
    sounds = freesound_sounds(server.origin, 1)
    del sounds[0]["previews"]["preview-hq-ogg"]
    server.route(FREESOUND_PATH, freesound_search(sounds))
    ds = zx.FreeSoundSearch(FREESOUND_KEY, "guitar", base_url=f"{server.origin}/apiv2",
                            delay=0, **FAST)
    assert next(iter(ds)).uri.endswith("-hq.mp3")


def test_freesound_refused_key(server):
    server.route(FREESOUND_PATH, freesound_search(freesound_sounds(server.origin)))
    ds = zx.FreeSoundSearch("wrong-key", "guitar", base_url=f"{server.origin}/apiv2",
                            delay=0, **FAST)
    with pytest.raises(DatasetError, match="refused the API key") as info:
        list(ds)
    assert info.value.status == 401
    assert "wrong-key" not in str(info.value) and "Invalid token" in str(info.value)
    assert len(server.log) == 1  # a 401 is not retried
    assert "wrong-key" not in repr(ds)


def test_freesound_retries_429(server):
    page = freesound_search(freesound_sounds(server.origin))
    calls = []

    def limited(srv, req):
        calls.append(req)
        if len(calls) == 1:
            return json_reply({"detail": "Request was throttled."}, 429, **{"Retry-After": "0"})
        return page(srv, req)
    server.route(FREESOUND_PATH, limited)
    ds = zx.FreeSoundSearch(FREESOUND_KEY, "guitar", n_results=2,
                            base_url=f"{server.origin}/apiv2", delay=0, **FAST)
    assert len(list(ds)) == 2 and len(calls) == 2


def test_freesound_malformed_response(server):
    server.route(FREESOUND_PATH, json_reply({"count": 3, "next": None}))
    ds = zx.FreeSoundSearch(FREESOUND_KEY, "guitar", base_url=f"{server.origin}/apiv2",
                            delay=0, **FAST)
    with pytest.raises(DatasetError, match="no 'results' list"):
        list(ds)
    server.route(FREESOUND_PATH, Reply(200, b"<html>maintenance</html>"))
    with pytest.raises(DatasetError, match="valid JSON"):
        list(ds)


@pytest.mark.parametrize("args", [("", "guitar"), (None, "guitar"), ("key", ""),
                                  ("key", None)])
def test_freesound_requires_key_and_query(args):
    with pytest.raises(ValueError):
        zx.FreeSoundSearch(*args)
    with pytest.raises(zx.ParameterError):
        zx.FreeSoundSearch(*args)


@pytest.mark.parametrize("kwargs", [{"n_results": 0}, {"page_size": 151}, {"preview": "x"},
                                    {"delay": -1}, {"base_url": "file:///etc"}])
def test_freesound_rejects_bad_parameters(kwargs):
    with pytest.raises(zx.ParameterError):
        zx.FreeSoundSearch("key", "guitar", **kwargs)


# -- InternetArchive ---------------------------------------------------------------------------
def archive(server, **kwargs):
    server.route(f"/metadata/{IA_ID}", json_reply(ia_metadata()))
    return zx.InternetArchive(IA_ID, base_url=server.origin, **FAST, **kwargs)


def names(metas):
    return [m.name for m in metas]


def test_internet_archive_default_one_rendition_per_recording(server):
    ds = archive(server)
    assert server.log == []
    metas = list(ds)
    # the Flac original (not its MP3/Ogg copies), the Ogg copy of the undecodable Apple
    # Lossless original, and the WAVE original; no PNG, XML, text or thumbnail
    assert names(metas) == ["01 The Cuban Missile Crisis.flac", "02 Ich bin ein Berliner.ogg",
                            "extras/03 Inaugural Address.wav"]
    assert [r.path for r in server.log] == [f"/metadata/{IA_ID}"]
    first = metas[0]
    assert first.uri == (f"{server.origin}/download/{IA_ID}/"
                         "01%20The%20Cuban%20Missile%20Crisis.flac")
    assert metas[2].uri.endswith("/extras/03%20Inaugural%20Address.wav")
    assert first.samplerate is None and first.channels is None
    assert first.title == "The Cuban Missile Crisis" and first.creator == "John F. Kennedy"
    assert first.format == "Flac" and first.length == "454.03" and first.size == "31264435"
    assert first.archive_id == IA_ID
    assert first.extra["external-identifier"][0].startswith("urn:acoustid:")
    assert first.licensing == "http://creativecommons.org/publicdomain/mark/1.0/"
    assert first.tags == ["speeches", "history", "20th century"]


@pytest.mark.parametrize("format_filter, expected", [
    ("VBR MP3", ["01 The Cuban Missile Crisis.mp3", "02 Ich bin ein Berliner.mp3"]),
    ("ogg vorbis", ["01 The Cuban Missile Crisis.ogg", "02 Ich bin ein Berliner.ogg"]),
    (["Flac", "WAVE"], ["01 The Cuban Missile Crisis.flac", "extras/03 Inaugural Address.wav"]),
    (lambda f: f.get("track") == "16", ["02 Ich bin ein Berliner.m4a"]),
    ("Opus", []),
])
def test_internet_archive_format_filter(server, format_filter, expected):
    assert names(archive(server, format_filter=format_filter)) == expected


def test_internet_archive_attrs_and_reiteration(server):
    ds = archive(server, genre="Speech", collection="kennedy")
    a, b = list(ds), list(ds)
    assert a == b
    assert all(m.genre == "Speech" and m.collection == "kennedy" for m in a)
    assert len(server.log) == 2 and all(r.path.startswith("/metadata/") for r in server.log)


@pytest.mark.parametrize("reply, match", [
    (json_reply({}), "has no item"),
    (json_reply({"is_dark": True, "metadata": {}}), "dark"),
    (json_reply({"metadata": {"identifier": IA_ID}, "files": []}), "has no files"),
    (json_reply({"metadata": {"identifier": IA_ID}}), "no 'files' list"),
    (Reply(200, b"<!doctype html>", {"Content-Type": "text/html"}), "valid JSON"),
])
def test_internet_archive_unknown_or_broken_item(server, reply, match):
    server.route(f"/metadata/{IA_ID}", reply)
    with pytest.raises(DatasetError, match=match):
        list(zx.InternetArchive(IA_ID, base_url=server.origin, **FAST))


def test_internet_archive_parameters():
    with pytest.raises(zx.ParameterError):
        zx.InternetArchive("")
    with pytest.raises(zx.ParameterError):
        zx.InternetArchive("x", format_filter=[])
    with pytest.raises(zx.ParameterError):
        zx.InternetArchive("x", format_filter=3)
    with pytest.raises(zx.ParameterError):
        zx.InternetArchive("x", uri="y")


def test_internet_archive_url_is_fetchable(server):
    data = wav_bytes(samplerate=8000, channels=2)
    server.route(f"/download/{IA_ID}/extras/03 Inaugural Address.wav", wav_reply(data))
    meta = list(archive(server, format_filter="WAVE"))[0]
    assert all(not r.path.startswith("/download/") for r in server.log)
    got, sr = soundfile.read(io.BytesIO(fetch(meta.uri)))
    expected, _ = soundfile.read(io.BytesIO(data))
    assert sr == 8000 and got.shape == (400, 2)
    np.testing.assert_array_equal(got, expected)
    check_load(meta.uri, expected, sr)


# -- PhatDrumLoops ------------------------------------------------------------------------------
def test_wav_links_resolves_relative_and_base():
    page = ('<html><head><base href="http://cdn.example/beats/"></head><body>'
            '<a href="a.wav">a</a><a HREF="../b.Wav?x=1">b</a><a href="c.mp3">c</a>'
            '<a href="ftp://x/d.wav">d</a><a>no href</a></body></html>')
    assert wav_links(page, "http://site.example/beats.php") == [
        "http://cdn.example/beats/a.wav", "http://cdn.example/b.Wav?x=1"]


def test_phatdrumloops_lists_wav_links(server):
    server.route("/beats.php", text_reply(phat_beats_html(server.origin)))
    ds = zx.PhatDrumLoops(base_url=server.origin, **FAST)
    assert server.log == []
    metas = list(ds)
    o = server.origin
    assert [m.uri for m in metas] == [f"{o}/audio/wav/space_funk1.wav",
                                      f"{o}/audio/wav/amen_brother.WAV",
                                      f"{o}/audio/wav/funky_drummer.wav"]
    assert all(m.samplerate is None and m.licensing is None for m in metas)
    assert [r.path for r in server.log] == ["/beats.php"]  # no break downloaded
    assert list(ds) == metas


def test_phatdrumloops_attrs_and_fetchable(server):
    data = wav_bytes(samplerate=11025, channels=1, freq=220.0)
    server.route("/beats.php", text_reply(phat_beats_html(server.origin)))
    server.route("/audio/wav/space_funk1.wav", wav_reply(data))
    meta = next(iter(zx.PhatDrumLoops(base_url=server.origin, genre="breaks", **FAST)))
    assert meta.genre == "breaks" and meta.to_dict()["genre"] == "breaks"
    got, sr = soundfile.read(io.BytesIO(fetch(meta.uri)), always_2d=True)
    assert sr == 11025
    expected, _ = soundfile.read(io.BytesIO(data), always_2d=True)
    np.testing.assert_array_equal(got, expected)
    check_load(meta.uri, expected, sr)


def test_phatdrumloops_server_error(server):
    server.route("/beats.php", text_reply("oops", 502))
    with pytest.raises(DatasetError, match=r"HTTP 502"):
        list(zx.PhatDrumLoops(base_url=server.origin, **FAST))
    assert len(server.log) == FAST["retries"] + 1


# -- composition -------------------------------------------------------------------------------
def test_composite_of_online_and_local(server, tmp_path):
    soundfile.write(tmp_path / "local.wav", np.zeros((80, 1)), 8000)
    server.route("/beats.php", text_reply(phat_beats_html(server.origin)))
    both = zx.CompositeDataset(zx.PhatDrumLoops(base_url=server.origin, **FAST),
                               zx.Directory(tmp_path))
    uris = [m.uri for m in both]
    assert len(uris) == 4 and uris[-1] == str(tmp_path / "local.wav")
    assert urllib.parse.urlsplit(uris[0]).hostname == "127.0.0.1"


def test_online_datasets_pickle_without_requests(server):
    """Datasets hold configuration only (clients are made per iteration), so they can
    travel to dask workers."""
    import pickle

    server.route("/beats.php", text_reply(phat_beats_html(server.origin)))
    for ds in (zx.FreeSoundSearch(FREESOUND_KEY, "guitar", base_url=f"{server.origin}/apiv2"),
               zx.InternetArchive(IA_ID, base_url=server.origin, genre="x"),
               zx.PhatDrumLoops(base_url=server.origin, **FAST)):
        clone = pickle.loads(pickle.dumps(ds))
        assert type(clone) is type(ds) and repr(clone) == repr(ds)
    assert server.log == []
    assert [m.uri for m in clone] == [m.uri for m in ds]
