"""The explorer on real stores (``zx.open_store``): the demo's store, the ``zounds-xr
index`` and ``zounds-xr serve`` commands, and a store on S3 (moto server)."""
import io
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import soundfile as sf

import zounds_xr as zx
from zounds_xr.app.cli import main
from zounds_xr.explorer import BackgroundServer, Explorer
from zounds_xr.search import open_index

from _explorer_store import demo_store

pytest.importorskip("tornado")


def get(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.status, response.headers, response.read()


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    return demo_store(tmp_path_factory)


@pytest.fixture(scope="module")
def server(store_path):
    srv = BackgroundServer(Explorer(zx.open_store(str(store_path)))).start()
    yield srv
    srv.stop()


def test_demo_store_catalog_documents_pictures_and_sound(server, store_path):
    store = zx.open_store(str(store_path))
    cat = store.catalog()
    page = json.loads(get(f"{server.url}api/catalog?limit=100&sort=source")[2])
    assert page["total"] == len(cat) == 8
    sources = [row["source"] for row in page["rows"]]
    assert sources == sorted(sources)
    stereo = cat.index[cat["uri"].str.endswith("pan_stereo.wav")][0]
    doc = json.loads(get(f"{server.url}api/documents/{stereo}")[2])
    kinds = {f["name"]: f["kind"] for f in doc["features"]}
    assert kinds == {"resampled": "audio", "magnitude": "spectrogram", "mel": "spectrogram",
                     "centroid": "series"}
    assert doc["playback"] == "stored:resampled"
    status, headers, png = get(f"{server.url}api/documents/{stereo}/features/mel/image.png"
                               f"?start=1&end=2&width=300&height=64")
    assert png[:4] == b"\x89PNG"
    meta = json.loads(headers["X-Zx-Image"])
    assert meta["t0"] <= 1 and meta["t1"] >= 2 and meta["rows"] == 64
    status, headers, wav = get(f"{server.url}api/documents/{stereo}/audio.wav?start=1&end=1.5")
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    stored = store[stereo]["resampled"].transpose("time", ...).values
    assert rate == 22050 and samples.shape == (11025, 2)
    np.testing.assert_allclose(samples, np.clip(stored[22050:33075], -1, 1), atol=2 / 32768)


def test_index_command_persists_in_the_store_and_the_server_uses_it(store_path, capsys):
    assert main(["index", str(store_path), "--feature", "mel", "--quiet"]) == 0
    assert "indexed" in capsys.readouterr().out
    store = zx.open_store(str(store_path))
    index = open_index(store, "mel")
    assert index.hashed_parts == []  # read from the store, not rebuilt
    assert set(index.index.segments.ids) == set(store.catalog().index)
    assert list((store_path / "indexes" / "mel").glob("*/config.json"))
    # the store still opens and its catalog does not see the index
    assert len(store.catalog()) == 8 and "indexes" not in store.features
    explorer = Explorer(store)
    assert explorer.indexes() == ["mel"]
    cat = store.catalog()
    chirp = cat.index[cat["uri"].str.endswith("chirp_up.flac")][0]
    result = explorer.neighbours("mel", chirp, 0.5, 1.5, k=5)
    assert len(result["results"]) == 5
    for hit in result["results"]:
        assert not (hit["id"] == chirp and hit["start"] < 1.5 and hit["end"] > 0.5)
    m = explorer.map_view("mel")
    assert sorted(m.layout.ids) == sorted(cat.index) and np.isfinite(m.layout.xy).all()


def test_index_command_errors(store_path, capsys):
    assert main(["index", str(store_path), "--feature", "resampled"]) == 1
    assert "is audio" in capsys.readouterr().err
    assert main(["index", str(store_path), "--feature", "nope"]) == 1
    assert "no stored feature 'nope'" in capsys.readouterr().err


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_command(store_path):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "zounds_xr.app.cli", "serve", str(store_path),
                             "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _, body = get(f"http://127.0.0.1:{port}/api/info")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError(proc.stdout.read() if proc.poll() is not None
                                         else "the server did not start") from None
                time.sleep(0.3)
        info = json.loads(body)
        assert info["documents"] == 8 and info["store"] == str(store_path)
        status, headers, page = get(f"http://127.0.0.1:{port}/")
        assert b"zounds-xr explorer" in page
    finally:
        proc.terminate()
        proc.wait(30)
    assert f"http://localhost:{port}/" in proc.stdout.read()


def test_serve_command_on_a_missing_store(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nothing.zarr"), "--port", "0"]) == 1
    assert "StoreError" in capsys.readouterr().err


def test_explorer_on_an_s3_store(store_path):
    s3fs = pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    from _s3_server import S3Server

    with S3Server() as server:
        server.create_bucket("explore")
        options = server.storage_options
        fs = s3fs.S3FileSystem(**options)
        fs.put(str(store_path), "explore/demo.zarr", recursive=True)
        url = "s3://explore/demo.zarr"
        store = zx.open_store(url, storage_options=options)
        explorer = Explorer(store, url=url, storage_options=options)
        local = zx.open_store(str(store_path))
        assert explorer.view.page(limit=8)["total"] == 8
        doc_id = local.catalog().index[0]
        png, meta = explorer.image(doc_id, "mel", 0, 1, width=100, height=64)
        assert png == Explorer(local).image(doc_id, "mel", 0, 1, width=100, height=64)[0]
        assert explorer.clip(doc_id, 0, 0.5).wav() == Explorer(local).clip(doc_id, 0, 0.5).wav()
        open_index(store, "centroid")  # saved on S3, through the store's object layer
        assert fs.ls("explore/demo.zarr/indexes/centroid")
        assert "centroid" in explorer.indexes()
        assert len(explorer.neighbours("centroid", doc_id, 0, 1, k=3)["results"]) == 3
