"""The store's commit log and checked reads (issue 29), side by side with their baselines.

- open + 2 s read of a 1-hour stored feature, every check on vs off (the checks of
  ``documents/reader.py``: each file against its record in the log);
- ingest of 1 s clips, one process, this tree (log, records, checks) vs ``main`` (a
  checkout of the main branch's ``src/``, given with ``--main-src``), in subprocesses,
  alternated A B A B;
- ``FeatureStore.verify()`` vs ``cat`` of the same files (warm page cache for both).

The 10^6-document catalog is ``bench_corpus.py --only-catalog``.

    .venv/bin/python benchmarks/bench_store_log.py --main-src /tmp/zx-main/src [--quick]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction

import numpy as np
import soundfile as sf
import xarray as xr

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _signals  # noqa: E402

import zounds_xr as zx  # noqa: E402
from zounds_xr.documents.reader import CheckedStore  # noqa: E402

RATE, HOP, BANDS = 22050, 512, 128


def graph(store):
    @zx.zarr_settings(store)
    class Long(zx.Document):
        mel = zx.Feature(zx.mel_spectrogram, needs=zx.Document.audio, n_mels=BANDS,
                         wscheme=zx.SR22050() * (HOP, 2048), store=True)
    return Long


def write_long(path: str, seconds: int) -> str:
    """One document of ``seconds`` of stored mel frames, written by the real part writer
    (random frames: what is measured is the store, not the transform)."""
    Long = graph(path)
    store = Long._store
    info = Long._feature_info("mel")
    frames = int(seconds * RATE / HOP)
    scale = zx.MelScale(zx.FrequencyBand(0, RATE / 2), BANDS)
    coords = zx.frequency_coords(scale)
    rng = np.random.default_rng(0)
    part = store.part()
    sink = part.sinks({"mel": info})["mel"]
    step = 8192
    for start in range(0, frames, step):
        n = min(step, frames - start)
        index = zx.TimeIndex.from_params(n, Fraction(HOP, RATE), Fraction(2048, RATE),
                                         Fraction(start * HOP, RATE))
        chunk = xr.DataArray(rng.random((n, BANDS), dtype=np.float32),
                             dims=("time", "frequency")).assign_coords(
            xr.Coordinates.from_xindex(index)).assign_coords(coords)
        sink(chunk)
    part.finish_document("long", {"uri": "long.wav", "duration": seconds})
    part.commit()
    return "long"


def read_overhead(path: str, doc_id: str, reads: int, rounds: int) -> dict:
    rng = np.random.default_rng(1)
    n = int(2 * RATE / HOP) + 1
    total = zx.open_store(path).catalog().loc[doc_id, "mel.frames"]
    starts = rng.integers(0, total - n, reads)
    times: dict[str, list[float]] = {"on": [], "off": []}
    zx.open_store(path)[doc_id]["mel"].isel(time=slice(0, n)).values  # warm up
    for _ in range(rounds):
        for start in starts:
            for mode in ("on", "off"):
                CheckedStore.checks = mode == "on"
                t0 = time.perf_counter()
                store = zx.open_store(path)
                x = store[doc_id]["mel"].isel(time=slice(int(start), int(start) + n)).values
                times[mode].append(time.perf_counter() - t0)
                assert x.shape == (n, BANDS)
    CheckedStore.checks = True
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


INGEST = """
import sys, time, pathlib
import zounds_xr as zx

@zx.zarr_settings(sys.argv[2])
class Clip(zx.Document):
    mel = zx.Feature(zx.mel_spectrogram, needs=zx.Document.audio, n_mels=64,
                     wscheme=zx.SR16000() * (512, 2048), store=True)

files = sorted(str(p) for p in pathlib.Path(sys.argv[1]).glob("*.wav"))
zx.ingest(files[:5], Clip, scheduler="synchronous", progress=False)  # warm up (imports)
Clip._store = zx.FeatureStore(sys.argv[2] + ".timed")
t0 = time.perf_counter()
report = zx.ingest(files, Clip, scheduler="synchronous", progress=False)
print(time.perf_counter() - t0)
assert len(report.processed) == len(files), report.failed
"""


def clips(folder: pathlib.Path, n: int) -> None:
    rng = np.random.default_rng(2)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sf.write(folder / f"{i:05d}.wav", rng.standard_normal(16000).astype(np.float32) * .1,
                 16000, subtype="FLOAT")


def ingest_versus_main(work: pathlib.Path, main_src: str, n: int, rounds: int) -> dict:
    folder = work / "clips"
    clips(folder, n)
    env = {**os.environ}
    times: dict[str, list[float]] = {"log": [], "main": []}
    for r in range(rounds):
        for name, src in (("log", str(HERE.parent / "src")), ("main", main_src)):
            out = work / f"{name}-{r}.zarr"
            result = subprocess.run([sys.executable, "-c", INGEST, str(folder), str(out)],
                                    env={**env, "PYTHONPATH": src}, capture_output=True,
                                    text=True, check=True)
            times[name].append(float(result.stdout.strip().splitlines()[-1]))
            shutil.rmtree(out)
            shutil.rmtree(f"{out}.timed")
    ratio = statistics.median(m / w for m, w in zip(times["main"], times["log"],
                                                    strict=True))
    return {"log": statistics.median(times["log"]), "main": statistics.median(times["main"]),
            "speed": ratio}


CATALOG = """
import sys, time
import zounds_xr as zx
from zounds_xr.documents import FeatureStore
t0 = time.perf_counter()
cat = FeatureStore(sys.argv[1]).catalog()
ids = list(cat.index)  # what ingest has: a list of ids (pandas -> list is not timed)
t1 = time.perf_counter()
present = FeatureStore(sys.argv[1]).has(ids)
t2 = time.perf_counter()
assert present.all() and len(cat) == int(sys.argv[2])
print(t1 - t0, t2 - t1)
"""


def catalog_versus_main(work: pathlib.Path, main_src: str | None, n: int, rounds: int
                        ) -> dict:
    """``catalog()`` and the resume check of a fresh store of ``n`` documents (the real
    writer, 100 parts, compacted), this tree vs main on the same store (main reads it:
    its fragments are plain layout-2 fragments), in subprocesses, alternated."""
    from bench_corpus import write_catalog

    path = str(work / "catalog.zarr")
    write_catalog(path, n, max(1, n // 100))
    # the store's writes reach the disk first: a run while the kernel writes back the
    # ~0.5 GB just written measures the writeback (the first run took 3x longer)
    os.sync()
    trees = {"log": str(HERE.parent / "src")}
    if main_src:
        trees["main"] = main_src
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in trees}

    def run(src: str) -> tuple[float, float]:
        out = subprocess.run([sys.executable, "-c", CATALOG, path, str(n)],
                             env={**os.environ, "PYTHONPATH": src}, capture_output=True,
                             text=True, check=True).stdout.split()
        return float(out[0]), float(out[1])

    for src in trees.values():
        run(src)  # warm up: the page cache, and imports compiled once
    for r in range(rounds):
        # A B, then B A: neither tree always runs first
        for name, src in (trees.items() if r % 2 == 0 else reversed(trees.items())):
            times[name].append(run(src))
    shutil.rmtree(path)
    return {k: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v))
            for k, v in times.items()}


def verify_versus_cat(path: str, rounds: int) -> dict:
    store = zx.FeatureStore(path)
    state = store.log.state()
    keys = [k for p in state.parts.values() for k in p["files"]]
    files = [os.path.join(path, k) for k in keys]
    size = sum(os.path.getsize(f) for f in files)
    times: dict[str, list[float]] = {"verify": [], "cat": []}
    # warm: the page cache for both, and verify's threads (kept by the process)
    subprocess.run(["cat", *files], stdout=subprocess.DEVNULL, check=True)
    assert zx.FeatureStore(path).verify() == {}
    for _ in range(5 * rounds):  # a few tens of ms each
        t0 = time.perf_counter()
        subprocess.run(["cat", *files], stdout=subprocess.DEVNULL, check=True)
        times["cat"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        assert zx.FeatureStore(path).verify() == {}
        times["verify"].append(time.perf_counter() - t0)
    mib = size / 2**20
    return {"MiB": mib, "verify": mib / statistics.median(times["verify"]),
            "cat": mib / statistics.median(times["cat"]),
            "ratio": statistics.median(c / v for c, v in zip(times["cat"], times["verify"],
                                                            strict=True))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--main-src", help="src/ of a checkout of main (ingest baseline)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--catalog-docs", type=int, default=None,
                        help="documents of the catalog measure (default 10^6; 0: skip)")
    args = parser.parse_args(argv)
    seconds = 600 if args.quick else 3600
    _signals.DATA.mkdir(parents=True, exist_ok=True)  # a fresh clone has no _data/ yet
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench_store_log_", dir=_signals.DATA))
    lines = ["## The commit log and checked reads (bench_store_log, issue 29)", "",
             f"2 shared CPUs, load {os.getloadavg()[0]:.1f} at the start."]
    try:
        path = str(work / "long.zarr")
        t0 = time.perf_counter()
        doc_id = write_long(path, seconds)
        built = time.perf_counter() - t0
        r = read_overhead(path, doc_id, 10, args.rounds)
        v = verify_versus_cat(path, args.rounds)
        lines += ["", "| measure | value | goal |", "|---|---:|---|",
                  f"| write a {seconds} s document ({BANDS} mel bands, hop {HOP}/{RATE}) "
                  f"| {built:.1f} s | |",
                  f"| open + 2 s read, every check on (median of {10 * args.rounds}) | "
                  f"{r['on']:.1f} ms | |",
                  f"| the same, checks off | {r['off']:.1f} ms | |",
                  f"| checks on / off | {r['on'] / r['off']:.2f}x | <= 1.1x |",
                  f"| `verify()` of {v['MiB']:.0f} MiB (median of {5 * args.rounds}) | "
                  f"{v['verify']:.0f} MiB/s | |",
                  f"| `cat` of the same files | {v['cat']:.0f} MiB/s | |",
                  f"| verify / cat throughput | {v['ratio']:.2f}x | >= 0.5x |"]
        n_cat = args.catalog_docs if args.catalog_docs is not None else (
            20_000 if args.quick else 1_000_000)
        if n_cat:
            c = catalog_versus_main(work, args.main_src, n_cat, args.rounds)
            lines += [f"| `catalog()` of {n_cat} documents, fresh store, this tree | "
                      f"{c['log'][0]:.2f} s | <= 1 s |",
                      f"| resume check of every id (`has(ids)`), this tree | "
                      f"{c['log'][1]:.2f} s | |"]
            if "main" in c:
                lines += [f"| the same two with main (no log) | {c['main'][0]:.2f} s, "
                          f"{c['main'][1]:.2f} s | |",
                          f"| catalog() this tree / main | {c['log'][0] / c['main'][0]:.2f}x"
                          f" | |",
                          f"| resume check this tree / main | "
                          f"{c['log'][1] / c['main'][1]:.2f}x | |"]
        if args.main_src:
            n = 100 if args.quick else 300
            i = ingest_versus_main(work, args.main_src, n, args.rounds)
            lines += [f"| ingest {n} x 1 s clips, one process, this tree (log, records) | "
                      f"{i['log']:.2f} s | |",
                      f"| the same with main | {i['main']:.2f} s | |",
                      f"| speed with the log / main (median of per-round ratios) | "
                      f"{i['speed']:.2f}x | >= 0.95x |"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines.append(f"\nLoad {os.getloadavg()[0]:.1f} at the end.")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
