"""Corpus scale: short clips through ingest vs a naive loop, and a 10^6-row catalog.

The issue's table (issue 13), measured side by side in one run:

- 1 s 16 kHz clips to a stored 64-band mel (n_fft 2048, hop 512) vs the naive loop
  (``soundfile.read``, ``librosa.feature.melspectrogram``, ``np.save``), both warm, one
  process (``ingest(..., scheduler="synchronous")``) and 2 workers
  (``scheduler="processes", num_workers=2``, the session's pool already started);
- 5 s 44.1 kHz clips resampled to 22.05 kHz to a 128-band mel vs the naive
  ``librosa.load(sr=22050, res_type="soxr_vhq")`` loop, one process and 2 workers;
- files in the store per 100 documents;
- a catalog of 10^6 documents whose fragments are made by the real writer
  (``PartWriter``: 100 parts of 10^4 documents, one stored feature of one frame each,
  then ``compact()``): ``Sound.catalog()`` and ingest's resume check of every id, each
  from a fresh store object;
- a random 1 s window of a stored mel from a 100,000-document store (made by the real
  writer), local: through the catalog row and ``store.array`` (the loaders' path) and
  through ``Sound(doc_id).mel.sel(...)``.

Contenders are interleaved round by round; ratios are medians of per-round ratios.

    .venv/bin/python benchmarks/bench_corpus.py [--quick] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

import _signals  # noqa: E402

GOALS = {"a1": 1.5, "a2": 2.5, "b1": 1.2, "b2": 2.0}


# ---------------------------------------------------------------------- corpora
def clips(n: int, seconds: float, rate: int) -> pathlib.Path:
    """``n`` distinct clips (tones, chirps and noise from seeds), cached in _data."""
    d = _signals.DATA / f"clips_{n}x{seconds:g}s_{rate}"
    done = d / ".done"
    if done.exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    for i in range(n):
        rng = np.random.default_rng(i)
        f0 = 80 + 900 * rng.random()
        x = 0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.2 * rng.random() * t))
        x += 0.05 * rng.standard_normal(t.size)
        sf.write(d / f"clip{i:06d}.wav", x.astype(np.float32), rate, subtype="PCM_16")
    done.write_text("ok")
    return d


def paths_of(d: pathlib.Path) -> list[str]:
    return sorted(str(p) for p in d.glob("*.wav"))


# ---------------------------------------------------------------------- graphs
def graph_a(store):
    import zounds_xr as zx

    @zx.zarr_settings(store)
    class Clip(zx.Document):
        mel = zx.Feature(zx.mel_spectrogram, needs=zx.Document.audio, n_mels=64,
                         wscheme=zx.SR16000() * (512, 2048), store=True)
    return Clip


def graph_b(store):
    import zounds_xr as zx

    @zx.zarr_settings(store)
    class Clip(zx.Document):
        resampled = zx.Feature(zx.resample, needs=zx.Document.audio,
                               samplerate=zx.SR22050())
        mel = zx.Feature(zx.mel_spectrogram, needs=resampled, n_mels=128,
                         wscheme=zx.SR22050() * (512, 2048), store=True)
    return Clip


def naive_a(paths, out):
    import librosa

    for i, p in enumerate(paths):
        y, sr = sf.read(p, dtype="float32")
        m = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, hop_length=512,
                                           n_mels=64)
        np.save(os.path.join(out, f"{i}.npy"), m)


def naive_b(paths, out):
    import librosa

    for i, p in enumerate(paths):
        y, sr = librosa.load(p, sr=22050, res_type="soxr_vhq")
        m = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, hop_length=512,
                                           n_mels=128)
        np.save(os.path.join(out, f"{i}.npy"), m)


def files_in(path) -> int:
    return sum(len(f) for _, _, f in os.walk(path))


def compare(name, paths, graph, naive, rounds, work):
    """Clips per second of the naive loop and of ingest with 1 process and 2 workers."""
    import zounds_xr as zx
    from zounds_xr.batch import process_pool

    process_pool(2)
    times = {"naive": [], "ingest 1 process": [], "ingest 2 workers": []}
    cpu = {"naive": [], "ingest 1 process": []}  # CPU seconds: robust to other users' load
    files = None
    # warm-up: the naive loop's first pass (librosa's caches) and a small ingest of each
    # kind in this session (imports, the pool's workers)
    warm = tempfile.mkdtemp(dir=work)
    naive(paths[:20], warm)
    zx.ingest(paths[:20], graph(os.path.join(warm, "s.zarr")), scheduler="synchronous",
              progress=False)
    zx.ingest(paths[:40], graph(os.path.join(warm, "p.zarr")), scheduler="processes",
              num_workers=2, progress=False)
    shutil.rmtree(warm)
    for r in range(rounds):
        out = tempfile.mkdtemp(dir=work)
        t0, c0 = time.perf_counter(), time.process_time()
        naive(paths, out)
        times["naive"].append(time.perf_counter() - t0)
        cpu["naive"].append(time.process_time() - c0)
        shutil.rmtree(out)
        for label, kwargs in (("ingest 1 process", {"scheduler": "synchronous"}),
                              ("ingest 2 workers", {"scheduler": "processes",
                                                    "num_workers": 2})):
            store = os.path.join(work, f"{name}-{r}-{label[-9:].strip()}.zarr")
            Clip = graph(store)
            t0, c0 = time.perf_counter(), time.process_time()
            report = zx.ingest(paths, Clip, progress=False, **kwargs)
            times[label].append(time.perf_counter() - t0)
            if label in cpu:
                cpu[label].append(time.process_time() - c0)
            assert len(report.processed) == len(paths) and not report.failed, report
            files = files_in(store)
            shutil.rmtree(store)
    n = len(paths)
    rates = {k: n / statistics.median(v) for k, v in times.items()}
    ratios = {k: statistics.median(t / s for t, s in zip(times["naive"], v, strict=True))
              for k, v in times.items() if k != "naive"}
    ratios["cpu"] = statistics.median(
        t / s for t, s in zip(cpu["naive"], cpu["ingest 1 process"], strict=True))
    return rates, ratios, files


# ---------------------------------------------------------------------- catalog scale
def write_catalog(path, n_docs: int, per_part: int, frames: int = 1, n_mels: int = 64):
    """A store of ``n_docs`` documents written by the real writer (``PartWriter``), each
    with a stored ``mel`` of ``frames`` frames; compacted at the end."""
    import xarray as xr

    import zounds_xr as zx
    from zounds_xr.documents.catalog import meta_columns

    store = zx.FeatureStore(path)
    Clip = graph_a(store)
    info = Clip._feature_info("mel")
    scale = zx.MelScale(zx.FrequencyBand(0, 8000), n_mels)
    coords = zx.frequency_coords(scale)
    rng = np.random.default_rng(0)
    hop = zx.SR16000() * (512, 2048)
    data = rng.random((frames, n_mels), dtype=np.float32)
    index = zx.TimeIndex.from_params(frames, hop)
    chunk = xr.DataArray(data, dims=("time", "frequency")).assign_coords(
        xr.Coordinates.from_xindex(index)).assign_coords(coords)
    for start in range(0, n_docs, per_part):
        part = store.part()
        for i in range(start, min(n_docs, start + per_part)):
            sinks = part.sinks({"mel": info})
            sinks["mel"](chunk)
            meta = {"uri": f"/corpus/clip{i:07d}.wav", "samplerate": 16000, "channels": 1,
                    "licensing": None, "description": None, "tags": None,
                    "frames": 16000 * frames // 32, "duration_seconds": frames * 0.032}
            part.finish_document(f"{i:032x}", meta_columns(meta))
        part.commit()
    store.compact()
    return Clip


def catalog_scale(work, n_docs, per_part, rounds):
    import zounds_xr as zx

    path = os.path.join(work, "catalog.zarr")
    t0 = time.perf_counter()
    write_catalog(path, n_docs, per_part)
    built = time.perf_counter() - t0
    cat_t, resume_t = [], []
    ids = [f"{i:032x}" for i in range(n_docs)]
    for _ in range(rounds):
        Clip = graph_a(zx.FeatureStore(path))
        t0 = time.perf_counter()
        cat = Clip.catalog()
        cat_t.append(time.perf_counter() - t0)
        assert len(cat) == n_docs
        fresh = zx.FeatureStore(path)
        t0 = time.perf_counter()
        present = fresh.has(ids)  # what ingest's resume does, once
        todo = [i for i, found in zip(ids, present, strict=True) if not found]
        resume_t.append(time.perf_counter() - t0)
        assert not todo
    t0 = time.perf_counter()
    text = zx.FeatureStore(path).describe()
    info_s = time.perf_counter() - t0
    assert f"{n_docs} documents" in text
    shutil.rmtree(path)
    return {"built": built, "catalog": statistics.median(cat_t),
            "resume": statistics.median(resume_t), "info": info_s}


def window_reads(work, n_docs, per_part, reads):
    """Median ms of a random 1 s window (32 frames of a 2 s document's mel)."""
    import zounds_xr as zx

    path = os.path.join(work, "windows.zarr")
    write_catalog(path, n_docs, per_part, frames=63)
    Clip = graph_a(zx.FeatureStore(path))
    store = zx.open_store(path)
    cat = store.catalog()
    rng = np.random.default_rng(1)
    picks = rng.integers(0, n_docs, reads)
    starts = rng.integers(0, 63 - 32, reads)
    via_array, via_doc = [], []
    _ = Clip(cat.index[0]).mel.values  # opening costs (imports, first metadata)
    arrays = cat["mel.array"].to_numpy()
    offsets = cat["mel.offset"].to_numpy()
    for k, s in zip(picks, starts, strict=True):
        t0 = time.perf_counter()
        o = int(offsets[k]) + int(s)
        x = store.array(arrays[k])[o:o + 32]
        via_array.append(time.perf_counter() - t0)
        assert x.shape == (32, 64)
        t0 = time.perf_counter()
        y = Clip(cat.index[k]).mel.isel(time=slice(int(s), int(s) + 32)).values
        via_doc.append(time.perf_counter() - t0)
        np.testing.assert_array_equal(x, y)
    shutil.rmtree(path)
    return 1e3 * statistics.median(via_array), 1e3 * statistics.median(via_doc)


def _clip_lines(n_a, n_b, rounds, work) -> list[str]:
    a = paths_of(clips(n_a, 1.0, 16000))
    b = paths_of(clips(n_b, 5.0, 44100))
    ra, xa, fa = compare("a", a, graph_a, naive_a, rounds, work)
    rb, xb, fb = compare("b", b, graph_b, naive_b, rounds, work)
    lines = [f"{rounds} interleaved rounds. Ratios: naive seconds / ingest seconds "
             f"(median of rounds); CPU-time ratio: the same with this process's CPU "
             f"seconds (robust to other users' load)."]
    lines += ["", "| corpus | naive clips/s | ingest 1 process | ratio (goal) | "
              "same, CPU-time ratio | ingest 2 workers | ratio (goal) | "
              "files per 100 documents |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, r, x, f, g1, g2, n in (
            (f"{n_a} x 1 s 16 kHz -> 64-band mel", ra, xa, fa, "a1", "a2", n_a),
            (f"{n_b} x 5 s 44.1 kHz -> 22.05 kHz -> 128-band mel", rb, xb, fb, "b1",
             "b2", n_b)):
        lines.append(
            f"| {label} | {r['naive']:.0f} | {r['ingest 1 process']:.0f} | "
            f"{x['ingest 1 process']:.2f}x ({GOALS[g1]}x) | {x['cpu']:.2f}x | "
            f"{r['ingest 2 workers']:.0f}"
            f" | {x['ingest 2 workers']:.2f}x ({GOALS[g2]}x) | {100 * f / n:.1f} |")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small corpora (smoke run)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--catalog-docs", type=int, default=None)
    parser.add_argument("--window-docs", type=int, default=None)
    parser.add_argument("--only-catalog", action="store_true",
                        help="only the catalog and window measures")
    args = parser.parse_args(argv)
    quick = args.quick
    rounds = args.rounds or (1 if quick else 3)
    n_a, n_b = (300, 60) if quick else (2000, 300)
    n_cat = args.catalog_docs or (20_000 if quick else 1_000_000)
    n_win = args.window_docs or (5_000 if quick else 100_000)
    os.environ.setdefault("ZX_BENCH_QUICK", "1" if quick else "0")
    work = tempfile.mkdtemp(prefix="bench_corpus_", dir=_signals.DATA)
    lines = ["## Corpus scale: short clips, parts and the catalog (bench_corpus)", ""]
    try:
        lines.append(f"2 shared CPUs (load {os.getloadavg()[0]:.1f} at the start).")
        if not args.only_catalog:
            lines += _clip_lines(n_a, n_b, rounds, work)
        c = catalog_scale(work, n_cat, max(1, n_cat // 100), rounds)
        wa, wd = window_reads(work, n_win, max(1, n_win // 20), 200 if quick else 1000)
        lines += ["", "| measure | value | goal |", "|---|---:|---|",
                  f"| write {n_cat} documents with the real writer (100 parts) + compact "
                  f"| {c['built']:.1f} s | |",
                  f"| `Sound.catalog()` of {n_cat} documents | {c['catalog']:.2f} s | "
                  f"<= 2 s |",
                  f"| resume check of every id ({n_cat}) | {c['resume']:.2f} s | <= 2 s |",
                  f"| `zounds-xr info` (describe) of {n_cat} documents | {c['info']:.2f} s "
                  f"| |",
                  f"| random 1 s window of a stored mel, {n_win}-document store: catalog "
                  f"row + `store.array` | {wa:.2f} ms | median <= 2 ms |",
                  f"| same through `Sound(doc_id).mel.isel(...)` (lazy DataArray) | "
                  f"{wd:.2f} ms | |"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
