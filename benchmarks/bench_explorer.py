"""The explorer on a 100,000-document store: catalog pages, spectrogram tiles, first
audio bytes and neighbour queries, over real HTTP.

The issue's targets (local store): the first page of the catalog in at most 300 ms; a
spectrogram tile in at most 150 ms; the first audio bytes in at most 200 ms; a neighbour
query over 10^5 windows at p95 at most 50 ms.

The store (``benchmarks/_data/explorer-<n>/``, made once and reused) holds ``n``
documents of 0.25 s (Speech-Commands-like clips, 8 kHz): a stored audio feature
(``audio``: 2000 float32 samples a document) and a 64-band mel-like spectrogram (``mel``:
8 frames a document), each feature's frames back to back in one Zarr array, and a
Parquet catalog with the columns of the store contract. It is opened with
``zx.open_store`` when the store can open it, else with the small reader below that
implements the same contract over the same files. The neighbour index (one window per
document, so ``n`` windows) is built with ``zounds_xr.search.open_index`` and saved in
the store, as ``zounds-xr index`` does.

Every request goes through the explorer's HTTP server (tornado, in a thread of this
process) with ``urllib``; documents are drawn at random (seeded) so that tiles and clips
are not in the explorer's small per-document cache. "First audio bytes" is the time
until the WAV header and the first samples have arrived.

    .venv/bin/python benchmarks/bench_explorer.py [--quick] [--documents 100000]

``--scale`` measures the explorer at corpus scale instead (issue 26), each part on its
own store under ``benchmarks/_data/``, side by side with the explorer as it was (no
pyramid: a picture reads every visible frame, thinned to 4 per pixel column):

- ``hour``: a 1-hour 22.05 kHz document (stored audio, |STFT| 2048/512 = 1025 bands,
  a 128-band mel), processed by a ``Document`` into a real store, then its pyramids:
  the whole-hour |STFT| picture (1024 x 256) on a new explorer (first) and again
  (warm), and random zooms (span log-uniform from 1 s to the hour, random position),
  median and p95, with and without the pyramid, interleaved;
- ``map``: 10^6 documents with a 16-dimensional embedding (one frame each): the
  layout's time (PCA, and UMAP on a 10^5 sample with the others placed by their
  neighbours), and the first paint of the stored map in headless Chromium (WebGL);
- ``catalog``: the first catalog page of the 10^6-document store over HTTP;
- ``labels``: 1,000 documents labelled through ``POST /api/labels`` until the edit is
  in ``catalog()`` (needs a store with ``set_labels``: the store's commit log).

    .venv/bin/python benchmarks/bench_explorer.py --scale [--parts hour,map,catalog,labels]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import sys
import time
import urllib.request
from fractions import Fraction

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
import zarr

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _harness import table  # noqa: E402

import zounds_xr as zx  # noqa: E402
from zounds_xr.explorer import BackgroundServer, Explorer  # noqa: E402
from zounds_xr.frequency.index import frequency_coords  # noqa: E402
from zounds_xr.search import open_index  # noqa: E402

RATE = 8000
SAMPLES = 2000  # 0.25 s
HOP = 256
FRAMES = 8  # mel frames a document (ceil(2000 / 256))
BANDS = 64
VERSION = 1
TARGETS = {"catalog": 300, "tile": 150, "audio": 200, "neighbours": 50}


# ---- the store ----------------------------------------------------------------------------
def _write(root: pathlib.Path, n: int) -> None:
    """Write ``n`` documents: audio and mel arrays, and the catalog."""
    rng = np.random.default_rng(0)
    tmp = root.with_name(root.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    block = 2000
    audio = zarr.create_array(str(tmp / "parts" / "p0" / "audio"), shape=(n * SAMPLES,),
                              dtype="float32", chunks=(1 << 15,), shards=(1 << 21,))
    mel = zarr.create_array(str(tmp / "parts" / "p0" / "mel"), shape=(n * FRAMES, BANDS),
                            dtype="float32", chunks=(4096, BANDS), shards=(1 << 17, BANDS))
    freqs = rng.uniform(80, 3600, n)
    gains = rng.uniform(0.1, 0.9, n)
    t = np.arange(SAMPLES) / RATE
    centres = np.asarray(zx.MelScale(zx.FrequencyBand(0, RATE / 2), BANDS).center_frequencies)
    for a in range(0, n, block):
        b = min(n, a + block)
        f, g = freqs[a:b, None], gains[a:b, None]
        audio[a * SAMPLES:b * SAMPLES] = (g * np.sin(2 * np.pi * f * t)).astype(
            np.float32).ravel()
        bump = np.exp(-0.5 * ((centres[None, :] - f) / (0.1 * f + 30)) ** 2)  # (docs, bands)
        env = np.linspace(1, 0.3, FRAMES)[None, :, None]
        frames = (g[:, :, None] ** 2 * bump[:, None, :] * env * 100
                  + rng.exponential(1e-3, (b - a, FRAMES, BANDS)))
        mel[a * FRAMES:b * FRAMES] = frames.astype(np.float32).reshape(-1, BANDS)
    words = ["tone", "speech", "dog", "bird", "door", "rain", "engine", "music"]
    audio_index = json.dumps(zx.TimeIndex.from_params(SAMPLES, zx.SR8000()).to_attrs())
    mel_index = json.dumps(zx.TimeIndex.from_params(FRAMES, Fraction(HOP, RATE),
                                                    Fraction(2 * HOP, RATE)).to_attrs())
    ids = [f"{i:06x}-{rng.integers(1 << 30):08x}" for i in range(n)]
    cat = pd.DataFrame({
        "uri": [f"/corpus/{words[i % 8]}/{i:06d}_{words[(i // 8) % 8]}.wav" for i in range(n)],
        "samplerate": RATE, "channels": 1, "duration": SAMPLES / RATE, "licensing": "CC0",
        "description": [f"{words[i % 8]} at {freqs[i]:.0f} Hz" for i in range(n)],
        "tags": [f"{words[i % 8]},{words[(i // 8) % 8]}" for i in range(n)],
        "audio.frames": np.int64(SAMPLES), "audio.version": "v1",
        "audio.array": "parts/p0/audio", "audio.offset": np.arange(n, dtype=np.int64) * SAMPLES,
        "audio.index": audio_index,
        "mel.frames": np.int64(FRAMES), "mel.version": "v1", "mel.array": "parts/p0/mel",
        "mel.offset": np.arange(n, dtype=np.int64) * FRAMES, "mel.index": mel_index,
    }, index=pd.Index(ids, name="id"))
    (tmp / "catalog").mkdir(parents=True, exist_ok=True)
    cat.to_parquet(tmp / "catalog" / "p0.parquet")
    (tmp / "bench.json").write_text(json.dumps({"version": VERSION, "documents": n}))
    tmp.rename(root)


@dask.delayed(pure=True)
def _read_rows(arr, start, stop):
    return arr[start:stop]


class ContractReader:
    """The store contract's reading side over the files ``_write`` made."""

    def __init__(self, root: pathlib.Path):
        self.url = str(root)
        self.storage_options = None
        self.features = ["audio", "mel"]
        self._arrays = {}
        self._catalog = None
        self._scale = frequency_coords(zx.MelScale(zx.FrequencyBand(0, RATE / 2), BANDS))

    def catalog(self) -> pd.DataFrame:
        if self._catalog is None:
            self._catalog = pd.read_parquet(pathlib.Path(self.url) / "catalog")
        return self._catalog

    def array(self, path):
        if path not in self._arrays:
            self._arrays[path] = zarr.open_array(f"{self.url}/{path}", mode="r")
        return self._arrays[path]

    def __getitem__(self, doc_id):
        row = self.catalog().loc[doc_id]
        out = {}
        for f in self.features:
            n, offset = int(row[f"{f}.frames"]), int(row[f"{f}.offset"])
            arr = self.array(row[f"{f}.array"])
            # one lazy block of the document's rows, as the store reads a document
            data = da.from_delayed(_read_rows(arr, offset, offset + n),
                                   shape=(n, *arr.shape[1:]), dtype=arr.dtype)
            index = zx.TimeIndex.from_attrs(json.loads(row[f"{f}.index"]), size=n)
            if arr.ndim == 2:
                out[f] = xr.DataArray(data, dims=("time", "frequency"), name=f).assign_coords(
                    xr.Coordinates.from_xindex(index)).assign_coords(self._scale)
            else:
                out[f] = xr.DataArray(data, dims=("time",), name=f).assign_coords(
                    xr.Coordinates.from_xindex(index))
        return out


def open_bench_store(n: int):
    root = HERE / "_data" / f"explorer-{n}"
    meta = root / "bench.json"
    if not meta.exists() or json.loads(meta.read_text()).get("version") != VERSION:
        t0 = time.perf_counter()
        _write(root, n)
        print(f"<!-- wrote the {n}-document store in {time.perf_counter() - t0:.1f} s -->")
    return ContractReader(root)


# ---- measuring ----------------------------------------------------------------------------
def timed_get(url, first_bytes: int | None = None) -> tuple[float, bytes]:
    """Seconds until the response (or its first ``first_bytes`` bytes) arrived."""
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        body = response.read(first_bytes) if first_bytes else response.read()
        elapsed = time.perf_counter() - t0
        if first_bytes:
            response.read()
    return elapsed, body


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


# ---- corpus scale (issue 26) ---------------------------------------------------------------
HOUR_RATE = 22050
SCALE_TARGETS = {"hour_first": 300, "hour_warm": 100, "zoom_p95": 100, "paint": 2000,
                 "layout": 600_000, "labels": 1000, "catalog": 300}


def _gain(x, factor):
    return x * factor


def hour_store() -> tuple[str, str]:
    """A real store with one hour at 22.05 kHz: audio, |STFT| 2048/512 and a 128-band mel
    (made once), with its pyramids."""
    from zounds_xr.documents.pyramid import build_pyramids

    root = HERE / "_data" / "explorer-hour"
    done = root / "done.json"
    if not done.exists():
        import soundfile as sf

        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        t = np.arange(3600 * HOUR_RATE) / HOUR_RATE
        rng = np.random.default_rng(0)
        x = (0.3 * np.sin(2 * np.pi * (100 + 3000 * (t / 3600)) * t) * (1 + np.sin(t / 7))
             + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
        sf.write(root / "hour.wav", x, HOUR_RATE, subtype="FLOAT")
        del t, x
        scheme = zx.SampleRate(Fraction(512, HOUR_RATE), Fraction(2048, HOUR_RATE))

        @zx.zarr_settings(str(root / "store"))
        class Hour(zx.Document):
            wave = zx.Feature(_gain, needs=zx.Document.audio, factor=1.0, store=True)
            spectrum = zx.Feature(zx.stft, needs=wave, wscheme=scheme,
                                  wfunc=zx.HanningWindowingFunc(periodic=True))
            magnitude = zx.Feature(np.abs, needs=spectrum, store=True)
            mel = zx.Feature(zx.mel_spectrogram, needs=spectrum, n_mels=128, store=True)

        t0 = time.perf_counter()
        doc_id = Hour.process(meta=str(root / "hour.wav"))
        processed = time.perf_counter() - t0
        t0 = time.perf_counter()
        build_pyramids(zx.open_store(str(root / "store")))
        done.write_text(json.dumps({"id": doc_id, "process_s": processed,
                                    "pyramid_s": time.perf_counter() - t0}))
    meta = json.loads(done.read_text())
    print(f"<!-- hour store: processed in {meta['process_s']:.0f} s, pyramids built in "
          f"{meta['pyramid_s']:.0f} s -->")
    return str(root / "store"), meta["id"]


class _NoPyramid(Explorer):
    """The explorer as it was: every picture from the frames."""

    def pyramid(self, doc_id, feature):
        return None


def bench_hour(rows: list, requests: int) -> None:
    url, doc_id = hour_store()
    rng = np.random.default_rng(3)

    def whole(explorer, feature="magnitude"):
        t0 = time.perf_counter()
        explorer.image(doc_id, feature, width=1024, height=256)
        return (time.perf_counter() - t0) * 1000

    for label, cls in (("pyramid", Explorer), ("frames (before)", _NoPyramid)):
        for feature in ("magnitude", "mel"):
            first = [whole(cls(zx.open_store(url)), feature) for _ in range(3)]
            explorer = cls(zx.open_store(url))
            whole(explorer, feature)
            warm = [whole(explorer, feature) for _ in range(3)]
            rows.append([f"whole hour of {feature} (1024x256), {label}: first / warm",
                         f"{np.median(first):.0f} / {np.median(warm):.0f}",
                         f"{SCALE_TARGETS['hour_first']} / {SCALE_TARGETS['hour_warm']}"
                         if feature == "magnitude" else ""])
    views = []
    for _ in range(requests):
        span = float(np.exp(rng.uniform(0, np.log(3600))))
        start = float(rng.uniform(0, 3600 - span))
        views.append((start, start + span))
    explorers = {"pyramid": Explorer(zx.open_store(url)),
                 "frames (before)": _NoPyramid(zx.open_store(url))}
    times: dict = {name: [] for name in explorers}
    for start, end in views:  # interleaved: A B A B
        for name, explorer in explorers.items():
            t0 = time.perf_counter()
            explorer.image(doc_id, "magnitude", start, end, width=1024, height=256)
            times[name].append((time.perf_counter() - t0) * 1000)
    for name, values in times.items():
        rows.append([f"any zoom of the |STFT| (1 s .. 1 h, {requests} views), {name}: "
                     f"median / p95", f"{np.median(values):.0f} / "
                     f"{np.percentile(values, 95):.0f}",
                     SCALE_TARGETS["zoom_p95"] if name == "pyramid" else ""])
    env = Explorer(zx.open_store(url))
    t0 = time.perf_counter()
    env.values(doc_id, "wave", width=1024)
    rows.append(["whole-hour waveform envelope (79 M samples), pyramid",
                 f"{(time.perf_counter() - t0) * 1000:.0f}", ""])


def million_store(n: int):
    sys.path.insert(0, str(HERE.parent / "tests"))
    from _explorer_store import EmbeddingStore

    return EmbeddingStore(HERE / "_data" / f"explorer-embedding-{n}", n, dims=16, clusters=24)


def _chromium():
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    for flag in ("--headless", "--no-sandbox", "--use-angle=swiftshader",
                 "--enable-unsafe-swiftshader", "--window-size=1300,1000"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium") or "chromium"
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(
        executable_path=shutil.which("chromedriver")))


def bench_map(rows: list, store, layout_methods: tuple[str, ...]) -> None:
    from zounds_xr.explorer.maplayout import build_map, load_map

    n = len(store.catalog())
    for method in layout_methods:
        stages: dict = {}

        def progress(stage, done, total, stages=stages):
            stages.setdefault(stage, time.perf_counter())

        t0 = time.perf_counter()
        build_map(store, "embedding", method, progress=progress)
        took = time.perf_counter() - t0
        detail = ", ".join(f"{k} from {v - t0:.0f} s" for k, v in stages.items())
        rows.append([f"map layout of {n:,} documents, {method} ({detail})", f"{took * 1000:.0f}",
                     SCALE_TARGETS["layout"] if method == "umap" else ""])
    method = "umap" if load_map(store, "embedding", "umap") is not None else "pca"
    server = BackgroundServer(Explorer(store)).start()
    driver = _chromium()
    try:
        paints = []
        for _ in range(4):  # the first after the server started, then reloads
            driver.get("about:blank")
            driver.get(f"{server.url}#/map?feature=embedding&method={method}&colour=tags")
            t0 = time.perf_counter()
            while not driver.execute_script("return mapState.paintedAt !== null"):
                if time.perf_counter() - t0 > 120:
                    raise RuntimeError("the map was not painted in 120 s")
                time.sleep(0.02)
            paints.append(driver.execute_script(
                "return [mapState.paintedAt, mapState.renderer, mapState.n]"))
        assert all(p[1] == "webgl" and p[2] == n for p in paints), paints
        rows.append([f"map of {n:,} documents ({method}): first paint in Chromium after "
                     f"navigation, first load / reloads (median)",
                     f"{paints[0][0]:.0f} / {np.median([p[0] for p in paints[1:]]):.0f}",
                     SCALE_TARGETS["paint"]])
    finally:
        driver.quit()
        server.stop()


def bench_catalog(rows: list, store) -> None:
    n = len(store.catalog())
    t0 = time.perf_counter()
    explorer = Explorer(store)
    open_s = time.perf_counter() - t0
    server = BackgroundServer(explorer).start()
    try:
        first, _ = timed_get(f"{server.url}api/catalog?offset=0&limit=50")
        later = [timed_get(f"{server.url}api/catalog?offset={k * 9973}&limit=50")[0]
                 for k in range(20)]
    finally:
        server.stop()
    rows.append([f"catalog of {n:,} documents: first page (explorer opened in "
                 f"{open_s:.1f} s) / later pages median", f"{first * 1000:.0f} / "
                 f"{pct(later, 50):.0f}", SCALE_TARGETS["catalog"]])


def label_store(n: int = 2000) -> str:
    """A real store of ``n`` short clips (made once, by ingest)."""
    import soundfile as sf

    root = HERE / "_data" / f"explorer-labels-{n}"
    if not (root / "done").exists():
        shutil.rmtree(root, ignore_errors=True)
        (root / "audio").mkdir(parents=True)
        rng = np.random.default_rng(0)
        for i in range(n):
            sf.write(root / "audio" / f"{i:05d}.wav",
                     rng.uniform(-0.5, 0.5, 800).astype(np.float32), 8000)

        @zx.zarr_settings(str(root / "store"))
        class Clip(zx.Document):
            wave = zx.Feature(_gain, needs=zx.Document.audio, factor=1.0, store=True)

        zx.ingest(zx.Directory(str(root / "audio")), Clip, progress=False)
        (root / "done").touch()
    return str(root / "store")


def bench_labels(rows: list) -> None:
    from zounds_xr.explorer.server import open_explorer

    url = label_store()
    explorer = open_explorer(url, writable=True)
    server = BackgroundServer(explorer).start()
    try:
        info = json.loads(urllib.request.urlopen(server.url + "api/info").read())
        ids = list(explorer.store.catalog().index[:1000])
        times = []
        for k in range(5):
            body = json.dumps({"column": "bench_label", "value": f"v{k}", "ids": ids}).encode()
            req = urllib.request.Request(server.url + "api/labels", data=body, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "X-Zx-Token": info["token"]})
            t0 = time.perf_counter()
            urllib.request.urlopen(req).read()
            seen = zx.open_store(url).catalog().loc[ids, "bench_label"]
            times.append(time.perf_counter() - t0)
            assert (seen == f"v{k}").all()
    finally:
        server.stop()
    n = len(explorer.store.catalog())
    rows.append([f"label edit of 1,000 of {n:,} documents (HTTP), committed and in a fresh "
                 f"open_store(...).catalog(), median of 5", f"{np.median(times) * 1000:.0f}",
                 SCALE_TARGETS["labels"]])


def scale_main(args) -> None:
    parts = args.parts.split(",")
    rows: list = []
    load = [os.getloadavg()[0]]
    if "hour" in parts:
        bench_hour(rows, args.requests or 40)
        load.append(os.getloadavg()[0])
    big = None
    if "map" in parts or "catalog" in parts:
        n = args.documents or 1_000_000
        t0 = time.perf_counter()
        big = million_store(n)
        print(f"<!-- {n:,}-document embedding store made in {time.perf_counter() - t0:.0f} s -->")
    if "catalog" in parts:
        bench_catalog(rows, big)
    if "map" in parts:
        bench_map(rows, big, tuple(m for m in args.layouts.split(",") if m))
        load.append(os.getloadavg()[0])
    if "labels" in parts:
        bench_labels(rows)
    print("## Explorer at corpus scale (issue 26)\n")
    print(f"Load average {', '.join(f'{v:.1f}' for v in load)} (start, after parts) on "
          f"{os.cpu_count()} cores.\n")
    print(table(["measurement", "ms", "goal (ms)"], rows))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 documents, fewer requests")
    parser.add_argument("--scale", action="store_true",
                        help="the corpus-scale measurements of issue 26 instead")
    parser.add_argument("--parts", default="hour,catalog,map,labels",
                        help="with --scale: which (hour, catalog, map, labels)")
    parser.add_argument("--layouts", default="pca,umap",
                        help="with --scale: map layouts to time (comma separated; empty: "
                             "time none and draw the stored one)")
    parser.add_argument("--documents", type=int, default=None)
    parser.add_argument("--requests", type=int, default=None, help="requests per measurement")
    parser.add_argument("--store", default=None,
                        help="measure an existing store (zx.open_store) instead: e.g. the "
                             "demo's; its neighbour index is built in memory if none is saved")
    parser.add_argument("--feature", default="mel", help="the spectrogram and index feature")
    args = parser.parse_args(argv)
    if args.scale:
        scale_main(args)
        return
    requests = args.requests or (20 if args.quick else 60)
    rng = np.random.default_rng(1)
    feature = args.feature

    build_s = float("nan")
    if args.store:
        store = zx.open_store(args.store)
        n = len(store.catalog())
    else:
        n = args.documents or (10_000 if args.quick else 100_000)
        store = open_bench_store(n)
        t0 = time.perf_counter()
        index = open_index(store, feature, window=0.25)  # hashes what is not saved yet
        build_s = time.perf_counter() - t0 if index.hashed_parts else float("nan")

    t0 = time.perf_counter()
    explorer = Explorer(store)
    open_s = time.perf_counter() - t0
    server = BackgroundServer(explorer).start()
    base = server.url
    rows = []
    try:
        first_page, _ = timed_get(f"{base}api/catalog?offset=0&limit=50")
        pages = [timed_get(f"{base}api/catalog?offset={rng.integers(max(1, n - 50))}"
                           f"&limit=50")[0] for _ in range(requests)]
        sort_first, _ = timed_get(f"{base}api/catalog?sort=source&order=desc&limit=50")
        sorted_pages = [timed_get(f"{base}api/catalog?sort=source&order=desc&offset="
                                  f"{rng.integers(max(1, n - 50))}&limit=50")[0]
                        for _ in range(10)]
        filter_first, body = timed_get(f"{base}api/catalog?q=bird%20engine&limit=50")
        matches = json.loads(body)["total"]
        rows += [["catalog: first page (50 rows), first request", first_page * 1000,
                  TARGETS["catalog"]],
                 ["catalog: random page, median", pct(pages, 50), ""],
                 ["catalog: random page, p95", pct(pages, 95), ""],
                 ["catalog: first page sorted by source (sorts n rows)", sort_first * 1000, ""],
                 ["catalog: later sorted pages, median", pct(sorted_pages, 50), ""],
                 [f"catalog: filter 'bird engine' ({matches} rows), first", filter_first * 1000,
                  ""]]

        cat = store.catalog()
        ids = cat.index.to_numpy()
        durations = cat["duration"].to_numpy(dtype=float)
        # documents drawn at random (with replacement only for a small store), a random
        # range each: nothing is in the explorer's caches of clips and documents
        docs = rng.choice(len(ids), size=requests, replace=len(ids) < requests)
        tiles = []
        for k in docs:
            span = min(1.0, durations[k])
            t = rng.uniform(0, durations[k] - span)
            tiles.append(timed_get(f"{base}api/documents/{ids[k]}/features/{feature}/image.png"
                                   f"?start={t:.4f}&end={t + span:.4f}&width=1024&height=256")[0])
        rows += [["spectrogram tile (uncached document), median", pct(tiles, 50), ""],
                 ["spectrogram tile (uncached document), p95", pct(tiles, 95),
                  TARGETS["tile"]]]

        docs = rng.choice(len(ids), size=requests, replace=len(ids) < requests)
        audio = []
        for k in docs:
            t = rng.uniform(0, durations[k] - 0.15)
            audio.append(timed_get(f"{base}api/documents/{ids[k]}/audio.wav?start={t:.4f}"
                                   f"&end={t + 0.15:.4f}", first_bytes=1024)[0])
        rows += [["first audio bytes (uncached document), median", pct(audio, 50), ""],
                 ["first audio bytes (uncached document), p95", pct(audio, 95),
                  TARGETS["audio"]]]

        timed_get(f"{base}api/neighbours?feature={feature}&id={ids[0]}&k=10")  # loads it
        docs = rng.choice(len(ids), size=max(requests, 100), replace=len(ids) < 100)
        nn = []
        for k in docs:
            span = min(0.5, durations[k])
            t = rng.uniform(0, durations[k] - span)
            nn.append(timed_get(f"{base}api/neighbours?feature={feature}&id={ids[k]}"
                                f"&start={t:.4f}&end={t + span:.4f}&k=10")[0])
        # the search alone, without HTTP (the read of the query's frames included)
        idx = explorer.index(feature)
        search = []
        for _ in range(100):
            t0 = time.perf_counter()
            idx.neighbours(ids[1], 0, 0.25, k=10)
            search.append(time.perf_counter() - t0)
        rows += [[f"neighbours over {len(idx)} windows (HTTP), median", pct(nn, 50), ""],
                 [f"neighbours over {len(idx)} windows (HTTP), p95", pct(nn, 95),
                  TARGETS["neighbours"]],
                 ["neighbours: read + hash + Hamming search alone, p95", pct(search, 95),
                  ""]]
    finally:
        server.stop()

    what = f"the store {args.store}" if args.store else "the synthetic store"
    print(f"## Explorer ({n:,} documents, {what}{', quick' if args.quick else ''})\n")
    print(f"Opening the explorer (reading the catalog, building the table): {open_s:.2f} s; "
          f"neighbour index build ({n:,} documents, SimHash 256 bits): {build_s:.1f} s "
          f"(nan: read from the store, built by an earlier run). "
          f"Load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.\n")
    print(table(["measurement", "ms", "target (ms)"],
                [[name, float(ms), target] for name, ms, target in rows]))
    missed = [name for name, ms, target in rows if target != "" and ms > target]
    print(f"\nTargets missed: {', '.join(missed) if missed else 'none'}.")


if __name__ == "__main__":
    main()
