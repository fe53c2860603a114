"""Reading a document's feature vs the raw Zarr read of the same rows (issue 23).

Every row of the issue's table, side by side with the raw read of exactly the same
rows, in one run: contenders interleaved read by read, medians over all reads, ratios
the median of per-read ratios.

Stores (written once by the real writer, :class:`PartWriter`, from seeded random
frames, and cached in ``benchmarks/_data/read/``; float spectra are stored
uncompressed, so random frames read like real ones):

- ``short``: 200 documents of 5 s, a 128-band mel at 22.05 kHz / hop 512 (216 frames),
  in 4 parts, compacted (what ``ingest`` leaves);
- ``long``: one 60-minute document with a mel (same rate) and a 44.1 kHz |STFT|
  (n_fft 2048, hop 512: 310,076 x 1025 float32, 1.2 GiB);
- ``large``: 100,000 documents of 2 s, a 64-band mel at 16 kHz / hop 512 (63 frames), as
  ``bench_corpus`` writes them (``--large 0`` skips it).

Reads (a 2 s ``TimeSlice`` at a seeded random position, the raw rows computed from the
catalog's exact time index with the overlap rule):

- ``Sound(id).<f>.sel(time=TimeSlice(...)).values`` through a Document class bound to
  the store's path (the class keeps its store between reads, as in a notebook);
- ``zx.open_store(root)[id]["mel"].sel(...).values``, the store opened afresh each read;
- ``Sound.frames("mel", ids).values`` for 50 random ids of the short store;
- raw: ``zarr.open_array(LocalStore(root), path=<f>.array)[offset + i:offset + j]``,
  the array opened afresh each read ("raw, fresh open", the reference of every
  ratio), and the same from an array opened once ("raw, array held").
  For ``frames``: one such read per document, concatenated.

Passes from module to module: during one ``Sound(id).mel.sel(time=TimeSlice(...)).values``
(warm: the second of two identical reads), ``sys.setprofile`` follows *the zounds_xr
module in control*: the module of the innermost frame on the stack that belongs to a
``zounds_xr`` module (frames of numpy, xarray, dask or zarr in between are looked
through). A *pass* is each change of it: a call into a function of another zounds_xr
module, or a return to one (also a zounds_xr function called back by xarray or dask,
e.g. an index's ``isel``). Also printed: the number of calls of zounds_xr functions.

Timings are warm-cache (OS page cache). 2 shared CPUs: load printed.

    .venv/bin/python benchmarks/bench_read.py [--quick] [--reads 40] [--large 100000]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import sys
import time
from fractions import Fraction

import dask
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _signals  # noqa: E402
import xarray as xr  # noqa: E402
import zarr  # noqa: E402
from zarr.storage import LocalStore  # noqa: E402

import zounds_xr as zx  # noqa: E402
from zounds_xr.documents.catalog import meta_columns  # noqa: E402

DATA = _signals.DATA / "read"
VERSION = 2  # bump when the stores below change (2: stores with a commit log)
GOALS = {"short": 1.5, "open_store": 1.5, "long": 1.5, "frames": 1.25, "passes": 15}


# ---------------------------------------------------------------------- graphs
def graph(store, kind: str):
    if kind == "large":
        @zx.zarr_settings(store)
        class Clip(zx.Document):
            mel = zx.Feature(zx.mel_spectrogram, needs=zx.Document.audio, n_mels=64,
                             wscheme=zx.SR16000() * (512, 2048), store=True)
        return Clip

    @zx.zarr_settings(store)
    class Sound(zx.Document):
        mel = zx.Feature(zx.mel_spectrogram, needs=zx.Document.audio, n_mels=128,
                         wscheme=zx.SR22050() * (512, 2048), store=True)
        spec = zx.Feature(zx.stft, needs=zx.Document.audio,
                          wscheme=zx.SR44100() * (512, 2048),
                          wfunc=zx.HanningWindowingFunc(periodic=True), magnitude=True,
                          store=True)
    return Sound


def _scheme(kind: str, name: str):
    if kind == "large":
        return (zx.SR16000() * (512, 2048), zx.MelScale(zx.FrequencyBand(0, 8000), 64), 64)
    if name == "mel":
        return (zx.SR22050() * (512, 2048), zx.MelScale(zx.FrequencyBand(0, 11025), 128),
                128)
    return (zx.SR44100() * (512, 2048), zx.LinearScale.from_sample_rate(zx.SR44100(), 1025),
            1025)


def _exact_start(rate, k: int) -> Fraction:
    return k * zx.TimeIndex.from_params(1, rate).frequency


def write(path: pathlib.Path, kind: str, n_docs: int, frames: dict, per_part: int):
    """``n_docs`` documents, each with ``frames[name]`` frames of every feature."""
    store = zx.FeatureStore(str(path))
    Doc = graph(store, kind)
    rng = np.random.default_rng(0)
    block = 8192
    for first in range(0, n_docs, per_part):
        part = store.part()
        for i in range(first, min(n_docs, first + per_part)):
            sinks = part.sinks({n: Doc._feature_info(n) for n in frames})
            for name, n in frames.items():
                rate, scale, bins = _scheme(kind, name)
                for a in range(0, n, block):
                    m = min(block, n - a)
                    index = zx.TimeIndex.from_params(m, rate, start=_exact_start(rate, a))
                    data = rng.random((m, bins), dtype=np.float32)
                    sinks[name](xr.DataArray(data, dims=("time", "frequency"))
                                .assign_coords(xr.Coordinates.from_xindex(index))
                                .assign_coords(zx.frequency_coords(scale)))
            seconds = 5.0 if kind == "short" else 3600.0 if kind == "long" else 2.0
            meta = {"uri": f"/corpus/{kind}{i:07d}.wav", "samplerate": 44100, "channels": 1,
                    "licensing": None, "description": None, "tags": None,
                    "frames": int(44100 * seconds), "duration_seconds": seconds}
            part.finish_document(f"{kind}{i:07d}", meta_columns(meta))
        part.commit()
    store.compact()


def ensure(kind: str, n_docs: int) -> pathlib.Path:
    path = DATA / f"{kind}-{n_docs}-v{VERSION}.zarr"
    if (path / ".done").exists():
        return path
    shutil.rmtree(path, ignore_errors=True)
    t0 = time.perf_counter()
    if kind == "short":
        write(path, kind, n_docs, {"mel": 216}, per_part=n_docs // 4 or 1)
    elif kind == "long":
        write(path, kind, 1, {"mel": 155_039, "spec": 310_076}, per_part=1)
    else:
        write(path, kind, n_docs, {"mel": 63}, per_part=max(1, n_docs // 20))
    (path / ".done").write_text("ok")
    print(f"<!-- wrote {path.name} in {time.perf_counter() - t0:.1f} s -->", flush=True)
    return path


# ---------------------------------------------------------------------- reads
def overlap_rows(definition: str, frames: int, start: Fraction, seconds: Fraction):
    """Rows ``[i, j)`` of the frames overlapping ``[start, start + seconds)``."""
    index = zx.TimeIndex.from_attrs(json.loads(definition), size=frames)
    f, d, s0 = index.frequency, index.duration, index.start
    lo, hi = start - s0, start + seconds - s0
    i = max(0, int((lo - d) // f) + 1)
    j = min(frames, -int(-hi // f))
    return i, j


class Raw:
    """The raw reads of a catalog's rows."""

    def __init__(self, root: pathlib.Path, catalog):
        self.root, self.cat = str(root), catalog
        self.held: dict = {}

    def where(self, doc_id, name):
        row = self.cat.loc[doc_id]
        return (str(row[f"{name}.array"]), int(row[f"{name}.offset"]),
                int(row[f"{name}.frames"]), str(row[f"{name}.index"]))

    def fresh(self, path, a, b):
        arr = zarr.open_array(LocalStore(self.root, read_only=True), path=path, mode="r")
        return arr[a:b]

    def held_open(self, path, a, b):
        arr = self.held.get(path)
        if arr is None:
            arr = self.held[path] = zarr.open_array(LocalStore(self.root, read_only=True),
                                                    path=path, mode="r")
        return arr[a:b]


def timed(f):
    """``((wall seconds, CPU seconds of this process), f())``."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = f()
    return (time.perf_counter() - t0, time.process_time() - c0), out


def interleaved(out: dict, contenders: list, k: int) -> None:
    """Time each contender once (order alternating with ``k``), append to ``out``, and
    check that every contender returned exactly the raw read's rows."""
    results = {}
    for label, f in (contenders if k % 2 == 0 else contenders[::-1]):
        dt, results[label] = timed(f)
        out.setdefault(label, []).append(dt)
    for label in results:
        np.testing.assert_array_equal(results[label], results["raw"], err_msg=label)


def window_contenders(Doc, root, raw, doc_id, name, rows, ts, by_index, open_store):
    path, offset, _, _ = raw.where(doc_id, name)
    i, j = rows

    def doc():
        lazy = getattr(Doc(doc_id), name)
        return (lazy.isel(time=slice(i, j)) if by_index else lazy.sel(time=ts)).values

    out = [("doc", doc), ("raw", lambda: raw.fresh(path, offset + i, offset + j)),
           ("held", lambda: raw.held_open(path, offset + i, offset + j))]
    if open_store:
        out.append(("open_store",
                    lambda: zx.open_store(str(root))[doc_id][name].sel(time=ts).values))
    return out


def window_reads(root, kind, name, reads, seconds=Fraction(2), seed=0, open_store=False,
                 isel=None):
    """``{contender: [seconds]}`` of windows at random documents and positions: a
    ``TimeSlice`` of ``seconds``, or ``isel`` frames by position."""
    Doc = graph(str(root), kind)
    cat = Doc.catalog()
    raw = Raw(root, cat)
    rng = np.random.default_rng(seed)
    out: dict[str, list[float]] = {}
    for k, doc_id in enumerate(cat.index[rng.integers(0, len(cat), reads)]):
        _, _, frames, definition = raw.where(doc_id, name)
        index = zx.TimeIndex.from_attrs(json.loads(definition), size=frames)
        span = index.start + frames * index.frequency - seconds
        start = Fraction(round(float(span) * rng.random() * 1000), 1000)
        if isel is not None:
            first = int(rng.integers(0, frames - isel))
            rows = (first, first + isel)
        else:
            rows = overlap_rows(definition, frames, start, seconds)
        ts = zx.TimeSlice(zx.Milliseconds(int(seconds * 1000)),
                          start=zx.Milliseconds(int(start * 1000)))
        interleaved(out, window_contenders(Doc, root, raw, doc_id, name, rows, ts,
                                           isel is not None, open_store), k)
    return out


def frames_contenders(Doc, raw, ids):
    where = [raw.where(i, "mel") for i in ids]

    def by_doc(read):
        return np.concatenate([read(p, o, o + n) for p, o, n, _ in where])

    def fresh_arrays():
        arrays: dict = {}

        def read(p, a, b):
            arr = arrays.get(p)
            if arr is None:
                arr = arrays[p] = zarr.open_array(LocalStore(raw.root, read_only=True),
                                                  path=p, mode="r")
            return arr[a:b]
        return by_doc(read)

    return [("doc", lambda: Doc.frames("mel", ids).values), ("raw", fresh_arrays),
            ("held", lambda: by_doc(raw.held_open))]


def frames_reads(root, rounds, n_ids=50, seed=1):
    Doc = graph(str(root), "short")
    cat = Doc.catalog()
    raw = Raw(root, cat)
    rng = np.random.default_rng(seed)
    out: dict[str, list[float]] = {}
    for k in range(rounds):
        ids = list(cat.index[rng.choice(len(cat), n_ids, replace=False)])
        interleaved(out, frames_contenders(Doc, raw, ids), k)
    return out


def _zx_module(frame) -> str | None:
    """The ``zounds_xr`` module of the innermost zounds_xr frame at or below ``frame``."""
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("zounds_xr"):
            return module
        frame = frame.f_back
    return None


def module_passes(root) -> tuple[int, int]:
    """``(passes, zounds_xr calls)`` of one warm ``Sound(id).mel.sel(...).values``."""
    Doc = graph(str(root), "short")
    doc_id = Doc.catalog().index[3]
    ts = zx.TimeSlice(zx.Seconds(2), start=zx.Seconds(1))
    state = {"current": None, "passes": 0, "calls": 0}

    def profile(frame, event, arg):
        if event not in ("call", "return"):
            return
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("zounds_xr"):
            return
        if event == "call":
            state["calls"] += 1
            now = module
        else:  # back in the zounds_xr function below, if any
            now = _zx_module(frame.f_back)
        if now is not None and state["current"] is not None and now != state["current"]:
            state["passes"] += 1
        state["current"] = now

    Doc(doc_id).mel.sel(time=ts).values  # warm: imports, first opens
    sys.setprofile(profile)
    try:
        Doc(doc_id).mel.sel(time=ts).values
    finally:
        sys.setprofile(None)
    return state["passes"], state["calls"]


# ---------------------------------------------------------------------- report
def ms(values, cpu=False) -> float:
    return 1e3 * statistics.median(v[cpu] for v in values)


def per_read_ratio(out, slow, fast="raw", cpu=False) -> float:
    return statistics.median(s[cpu] / max(f[cpu], 1e-6)
                             for s, f in zip(out[slow], out[fast], strict=True))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer reads, 5,000-doc large store")
    parser.add_argument("--reads", type=int, default=None, help="reads per measure")
    parser.add_argument("--large", type=int, default=None,
                        help="documents in the large store (0: skip)")
    args = parser.parse_args(argv)
    reads = args.reads or (10 if args.quick else 60)
    n_large = args.large if args.large is not None else (5_000 if args.quick else 100_000)
    DATA.mkdir(parents=True, exist_ok=True)
    short = ensure("short", 200)
    long_ = ensure("long", 1)
    large = ensure("large", n_large) if n_large else None
    load0 = os.getloadavg()[0]

    rows = []
    r = window_reads(short, "short", "mel", reads, open_store=True)
    rows.append(("2 s window of a 5 s document, `Sound(id).mel.sel(...)`, 200-document "
                 "store", r, "doc", GOALS["short"]))
    rows.append(("same through a freshly opened `zx.open_store(root)[id][\"mel\"]`", r,
                 "open_store", GOALS["open_store"]))
    if large is not None:
        r = window_reads(large, "large", "mel", reads, seconds=Fraction(1), isel=32, seed=2)
        rows.append((f"random 1 s window (32 frames), {n_large}-document store, "
                     f"`Sound(id).mel.isel(...)`", r, "doc", GOALS["short"]))
    r = window_reads(long_, "long", "mel", reads, seed=3)
    rows.append(("2 s window at a random position of a 60-minute document's mel", r, "doc",
                 GOALS["long"]))
    r = window_reads(long_, "long", "spec", reads, seed=4)
    rows.append(("open + 2 s at a random position of a 60-minute 44.1 kHz \\|STFT\\| "
                 "(2048/512)", r, "doc", GOALS["long"]))
    r = frames_reads(short, max(5, reads // 4))
    rows.append(("`Sound.frames(\"mel\", ids).values`, 50 random ids of 200", r, "doc",
                 GOALS["frames"]))
    passes, calls = module_passes(short)

    print("## One direct read path (bench_read, issue 23)\n")
    print(f"{reads} reads per window measure, contenders interleaved read by read (order "
          f"alternating); ratios are medians of per-read ratios to the raw read with a "
          f"fresh `zarr.open_array` (wall clock; and CPU seconds of this process, all its "
          f"threads: robust to other users' load). 2 shared CPUs, load {load0:.1f} at the "
          f"start, {os.getloadavg()[0]:.1f} at the end. zarr {zarr.__version__}, dask "
          f"{dask.__version__}.\n")
    print("| read | this path, ms | raw, fresh open, ms | raw, array held, ms | ratio to raw "
          "(goal) | CPU-time ratio to raw | ratio to raw held |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, out, key, goal in rows:
        print(f"| {label} | {ms(out[key]):.2f} | {ms(out['raw']):.2f} | {ms(out['held']):.2f} "
              f"| {per_read_ratio(out, key):.2f}x ({goal}x) | "
              f"{per_read_ratio(out, key, cpu=True):.2f}x | "
              f"{per_read_ratio(out, key, 'held'):.2f}x |")
    print(f"| passes from module to module, `Sound(id).mel.sel(...).values` | {passes} "
          f"({calls} zounds_xr calls) | | | goal <= {GOALS['passes']} | | |")


if __name__ == "__main__":
    main()
