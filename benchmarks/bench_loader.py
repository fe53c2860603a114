"""Training windows from the store vs a naive ``.npy``-per-clip Dataset (issue 14).

A corpus of short clips (default 300 x 2 s at 16 kHz, tones in noise) is ingested with
the real writer into a layout-2 store with a stored 40-band mel (hop 160, window 400
samples). Every 0.5 s window of every clip is then read through
``DataLoader(batch_size=64, num_workers=2)`` by

- a naive map-style Dataset over one ``.npy`` file per clip (the mel exported once),
  ``np.load(mmap_mode="r")`` and a slice per item (the baseline);
- :class:`~zounds_xr.learn.FeatureWindows` (map-style, ``shuffle=True``);
- :class:`~zounds_xr.learn.RandomWindows` (iterable, shuffled blocks);

side by side, epochs interleaved round by round (persistent workers, one warm-up
epoch), reporting windows/s and the per-round ratio to the baseline (median). Then the
same loaders over the store on S3 (a local moto server in this process: no network
latency, but it shares this process's GIL), and the time to build a FeatureWindows
index over a 100,000-document catalog.

    .venv/bin/python benchmarks/bench_loader.py [--clips 300] [--rounds 5] [--quick]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import pickle
import shutil
import sys
import tempfile
import time

import numpy as np
import soundfile as sf
import torch

import zounds_xr as zx
from _harness import median, table
from zounds_xr.documents.parts import new_part_name
from zounds_xr.learn import FeatureWindows, RandomWindows

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

RATE = 16000
WINDOW = zx.Milliseconds(500)


def graph(url, storage_options=None):
    @zx.zarr_settings(url, storage_options=storage_options)
    class Clip(zx.Document):
        spectrum = zx.Feature(zx.stft, needs=zx.Document.audio,
                              wscheme=zx.SR16000() * (160, 400),
                              wfunc=zx.HanningWindowingFunc(), store=False)
        mel = zx.Feature(zx.mel_spectrogram, needs=spectrum, n_mels=40, store=True)
    return Clip


def write_clips(directory: pathlib.Path, n: int, seconds: float) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * RATE)) / RATE
    for i in range(n):
        x = 0.3 * np.sin(2 * np.pi * (150 + 11 * i) * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(directory / f"clip{i:04d}.wav", x.astype("f4"), RATE, subtype="PCM_16")


class NaiveWindows(torch.utils.data.Dataset):
    """What users write by hand: one ``.npy`` per clip, opened and sliced per item."""

    def __init__(self, directory, table):
        self.items = [(os.path.join(directory, f"{d}.npy"), int(f), int(n), d, float(s))
                      for d, f, n, s in zip(table["document"], table["frame"], table["frames"],
                                            table["start"], strict=True)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, frame, n, doc, start = self.items[i]
        x = np.load(path, mmap_mode="r")[frame:frame + n]
        return {"x": torch.from_numpy(np.array(x)), "document": doc, "start": start}


def loader(dataset, shuffle, workers=2):
    return torch.utils.data.DataLoader(dataset, batch_size=64, num_workers=workers,
                                       shuffle=shuffle, persistent_workers=workers > 0)


def epoch(loader_):
    n = 0
    for batch in loader_:
        n += batch["x"].shape[0]
    return n


def measure(loaders: dict, rounds: int) -> dict[str, list[float]]:
    """Windows/s of each loader per round (epochs interleaved; one warm-up epoch)."""
    counts = {name: epoch(dl) for name, dl in loaders.items()}  # starts the workers
    rates = {name: [] for name in loaders}
    for _ in range(rounds):
        for name, dl in loaders.items():
            t0 = time.perf_counter()
            n = epoch(dl)
            rates[name].append(n / (time.perf_counter() - t0))
            assert n == counts[name], (name, n, counts[name])
    return rates


def cold_rates(datasets: dict, rounds: int) -> dict[str, list[float]]:
    """Windows/s of the first epoch of a fresh (unpickled) copy of each dataset."""
    rates = {name: [] for name in datasets}
    for _ in range(rounds):
        for name, (dataset, shuffle) in datasets.items():
            fresh = pickle.loads(pickle.dumps(dataset))
            t0 = time.perf_counter()
            n = epoch(loader(fresh, shuffle, 0))
            rates[name].append(n / (time.perf_counter() - t0))
    return rates


def catalog_of(n_docs: int, work: pathlib.Path, n_real: int) -> str:
    """A store whose catalog holds ``n_docs`` documents: ``n_real`` tiny clips ingested
    with the real writer, and one more catalog fragment, written by the store's own
    fragment writer, of copies of their rows under new ids (same arrays and offsets, so
    every row is a readable document)."""
    clips = work / "tiny"
    clips.mkdir()
    write_clips(clips, n_real, 0.1)
    url = str(work / "catalog.zarr")
    Clip = graph(url)
    report = zx.ingest(zx.Directory(clips), Clip, scheduler="threads", progress=False)
    assert len(report.processed) == n_real and not report.failed, report.failed
    store = Clip._store_for(None)
    real = store.catalog().reset_index().to_dict("records")
    rows = []
    for i in range(n_docs - n_real):
        row = dict(real[i % n_real])
        row["id"] = f"{row['id']}-{i:07d}"
        rows.append(row)
    store._write_fragment(new_part_name(), rows)
    return url


def index_build(url: str, rounds: int) -> tuple[float, float, int, int]:
    """Seconds to read the catalog of a freshly opened store, and to build a
    FeatureWindows index on another freshly opened one (catalog read included)."""
    reads, builds, n, docs = [], [], 0, 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        docs = len(zx.open_store(url).catalog())
        reads.append(time.perf_counter() - t0)
        store = zx.open_store(url)
        t0 = time.perf_counter()
        n = len(FeatureWindows(store, "mel", window=zx.Milliseconds(50)))
        builds.append(time.perf_counter() - t0)
    return median(reads), median(builds), n, docs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--index-docs", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="smoke run: 60 clips, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.clips, args.rounds, args.index_docs = 60, 1, 10_000
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench_loader_"))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, work: pathlib.Path):
    clips = work / "clips"
    clips.mkdir()
    write_clips(clips, args.clips, args.seconds)
    Clip = graph(str(work / "store.zarr"))
    t0 = time.perf_counter()
    report = zx.ingest(zx.Directory(clips), Clip, scheduler="threads", progress=False)
    ingest_s = time.perf_counter() - t0
    assert len(report.processed) == args.clips and not report.failed, report.failed
    # the baseline's files: each clip's mel exported once
    npy = work / "npy"
    npy.mkdir()
    for doc_id in Clip.ids():
        np.save(npy / f"{doc_id}.npy", np.asarray(Clip(doc_id).mel.values, dtype="f4"))

    windows = FeatureWindows(Clip, "mel", window=WINDOW)
    naive = NaiveWindows(npy, windows.windows())
    random = RandomWindows(Clip, "mel", window=WINDOW, seed=0)
    loaders = {"naive .npy + mmap": loader(naive, True),
               "FeatureWindows": loader(windows, True),
               "RandomWindows": loader(random, False)}
    rates = measure(loaders, args.rounds)
    base = rates["naive .npy + mmap"]

    print(f"## Training windows (bench_loader.py)\n\n{args.clips} clips of {args.seconds:g} s "
          f"at 16 kHz, stored 40-band mel (hop 10 ms), every 0.5 s window "
          f"({len(windows)} windows of {windows.window_frames} frames x 40); "
          f"DataLoader(batch_size=64, num_workers=2, persistent_workers=True); medians of "
          f"{args.rounds} epochs per loader, interleaved; ingest took {ingest_s:.1f} s.\n")
    goals = {"naive .npy + mmap": "baseline", "FeatureWindows": ">= 1x",
             "RandomWindows": ">= 2x"}
    rows = []
    for name, r in rates.items():
        ratio = median([a / b for a, b in zip(r, base, strict=True)])
        rows.append([name, f"{median(r):,.0f}", f"{ratio:.2f}x", goals[name]])
    print(table(["loader (local store)", "windows/s", "vs naive", "goal"], rows))
    # the same without workers: what one item costs, without the DataLoader's
    # inter-process hand-over of every batch (which dominates on a loaded machine)
    alone = measure({"naive .npy + mmap": loader(naive, True, 0),
                     "FeatureWindows": loader(windows, True, 0),
                     "RandomWindows": loader(random, False, 0)}, args.rounds)
    base0 = alone["naive .npy + mmap"]
    cold = cold_rates({"naive .npy + mmap": (naive, True), "FeatureWindows": (windows, True),
                       "RandomWindows": (random, False)}, args.rounds)
    cold0 = cold["naive .npy + mmap"]
    print("\nThe same in the main process (`num_workers=0`); \"cold\": the first epoch of a "
          "fresh copy of the dataset (nothing in its block cache; the OS page cache is "
          "warm for all):\n")
    print(table(["loader (local store)", "windows/s", "us per window", "vs naive",
                 "cold windows/s", "cold vs naive"],
                [[name, f"{median(r):,.0f}", f"{1e6 / median(r):.0f}",
                  f"{median([a / b for a, b in zip(r, base0, strict=True)]):.2f}x",
                  f"{median(cold[name]):,.0f}",
                  f"{median([a / b for a, b in zip(cold[name], cold0, strict=True)]):.2f}x"]
                 for name, r in alone.items()]))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n1-min load average at the end: {load:.1f} on {os.cpu_count()} CPUs.")
    sys.stdout.flush()

    s3_rows = s3_rates(clips, args, len(windows))
    print()
    print(table(["loader (moto S3 store)", "windows/s", "vs naive (local)",
                 "cold windows/s (num_workers=0)"],
                [[name, f"{r:,.0f}", f"{r / median(base):.2f}x", f"{c:,.0f}"]
                 for name, r, c in s3_rows]))
    print("\n(After the warm-up epoch each worker serves a corpus this small from its "
          "block cache; the cold column reads every block from S3.)")
    sys.stdout.flush()

    n_real = 60 if args.quick else 500
    url = catalog_of(args.index_docs, work, n_real)
    read_s, build_s, n, docs = index_build(url, max(1, args.rounds // 2))
    print(f"\nFeatureWindows index over a {docs:,}-document catalog ({n:,} windows of 50 ms): "
          f"{build_s:.2f} s to build on a freshly opened store, catalog read included "
          f"(goal < 2 s); reading the catalog alone takes {read_s:.2f} s. The catalog: "
          f"{n_real} clips of 0.1 s ingested with the real writer, plus one fragment "
          f"(written with the store's fragment writer) of copies of their rows under new ids.")


def s3_rates(clips, args, n_windows):
    from _s3_server import S3Server  # noqa: PLC0415

    rounds = max(1, args.rounds // 2)
    with S3Server() as server:
        for k, v in server.environ.items():
            os.environ[k] = v
        server.create_bucket("loader")
        Clip = graph("s3://loader/store.zarr", storage_options=server.storage_options)
        report = zx.ingest(zx.Directory(clips), Clip, scheduler="threads", progress=False)
        assert len(report.processed) == args.clips and not report.failed, report.failed
        windows = FeatureWindows(Clip, "mel", window=WINDOW)
        assert len(windows) == n_windows
        random = RandomWindows(Clip, "mel", window=WINDOW, seed=0)
        rates = measure({"FeatureWindows": loader(windows, True),
                         "RandomWindows": loader(random, False)}, rounds)
        cold = cold_rates({"FeatureWindows": (windows, True),
                           "RandomWindows": (random, False)}, rounds)
        return [(name, median(r), median(cold[name])) for name, r in rates.items()]


if __name__ == "__main__":
    main()
