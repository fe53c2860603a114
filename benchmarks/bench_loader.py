"""Training windows at scale (issue 24): a global shuffle vs a naive ``.npy`` Dataset.

A corpus of ``--docs`` documents of 1,000 frames of a 16-band mel (float32, 64 B per
frame), written by the store's real writer (``PartWriter``, as ``bench_corpus`` does)
and cached under ``benchmarks/_data/``: windows of 8 frames, so 125 per document
(9,600 documents: 1.2x10^6 windows, 614 MB, more than two workers' 256 MiB caches).
Side by side, rounds interleaved, ``DataLoader(num_workers=2)``, the first
``--batches`` batches of 64 of an epoch:

- naive: one ``.npy`` per document (the mel exported once), ``np.load(mmap_mode="r")``
  and a slice per item, in a global ``torch.randperm`` order (``shuffle=True``);
- :class:`~zounds_xr.learn.FeatureWindows` with ``shuffle=True`` (the same sampler);
- :class:`~zounds_xr.learn.RandomWindows`, global shuffle, ``batch_size=64``
  (``DataLoader(batch_size=None)``); and ``shuffle="block"``.

"warm": the second pass of persistent workers (their caches filled, files in the page
cache); "cold": fresh workers after every file of the corpus (store and ``.npy``) was
evicted from the OS page cache with ``posix_fadvise(DONTNEED)``. Then the same over a
moto S3 store (``--s3-docs`` documents, caches cut to 16 MiB per worker so that the
corpus does not fit), with the server's GETs per window; and the first batch and the
index state per worker over a ``--catalog-docs`` catalog (10^6 documents, 10 windows
each: 10^7 windows).

    .venv/bin/python benchmarks/bench_loader.py [--rounds 3] [--quick]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import numpy as np
import torch

import zounds_xr as zx
from _harness import median, table
from bench_corpus import write_catalog
from zounds_xr.learn import FeatureWindows, RandomWindows

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
DATA = HERE / "_data" / "loader-v2"  # v2: stores with a commit log
FRAMES, MELS, WINDOW, BATCH = 1000, 16, 8, 64
PARTS = ["local", "chunks", "s3", "catalog"]


def corpus(name: str, docs: int, frames: int, mels: int, url: str | None = None) -> str:
    """The store (cached under ``_data`` unless ``url``), written by the real writer."""
    path = url or str(DATA / f"{name}-{docs}x{frames}x{mels}.zarr")
    if url is None and os.path.exists(os.path.join(path, "catalog")):
        return path
    t0 = time.perf_counter()
    write_catalog(path, docs, per_part=min(docs, 500 if frames > 100 else 50_000),
                  frames=frames, n_mels=mels)
    print(f"(wrote {path}: {docs} documents in {time.perf_counter() - t0:.0f} s)",
          file=sys.stderr)
    return path


def export_npy(store_url: str) -> pathlib.Path:
    """Each document's mel as one ``.npy`` (the naive side's files)."""
    out = pathlib.Path(store_url + ".npy")
    if (out / "done").exists():
        return out
    out.mkdir(exist_ok=True)
    store = zx.open_store(store_url)
    cat = store.catalog()
    for doc_id, path, offset, n in zip(cat.index, cat["mel.array"], cat["mel.offset"],
                                       cat["mel.frames"], strict=True):
        np.save(out / f"{doc_id}.npy", np.asarray(store.array(path)[offset:offset + n]))
    (out / "done").touch()
    return out


class NaiveWindows(torch.utils.data.Dataset):
    """What users write by hand: one ``.npy`` per document, opened and sliced per item."""

    def __init__(self, directory, ids, counts):
        self.paths = [os.path.join(directory, f"{d}.npy") for d in ids]
        self.cumulative = np.concatenate([[0], np.cumsum(counts)])

    def __len__(self):
        return int(self.cumulative[-1])

    def __getitem__(self, i):
        doc = int(np.searchsorted(self.cumulative, i, side="right") - 1)
        k = i - int(self.cumulative[doc])
        x = np.load(self.paths[doc], mmap_mode="r")[k * WINDOW:(k + 1) * WINDOW]
        return {"x": torch.from_numpy(np.array(x)), "document": doc, "start": k}


def evict(*roots) -> None:
    """Drop the files under ``roots`` from the OS page cache (cold reads)."""
    for root in roots:
        for directory, _, files in os.walk(root):
            for name in files:
                fd = os.open(os.path.join(directory, name), os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)


def make_loader(name, dataset, workers=2):
    if name.startswith("naive") or name.startswith("FeatureWindows"):
        return torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True,
                                           num_workers=workers, persistent_workers=True)
    return torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers,
                                       persistent_workers=True)


def take(loader, batches: int) -> float:
    """Windows/s over the first ``batches`` batches of an epoch."""
    n, t0 = 0, time.perf_counter()
    for i, batch in enumerate(loader):
        n += batch["x"].shape[0]
        if i + 1 == batches:
            break
    return n / (time.perf_counter() - t0)


def local_rates(datasets: dict, batches: int, rounds: int, evict_roots) -> tuple[dict, dict]:
    warm = {name: [] for name in datasets}
    cold = {name: [] for name in datasets}
    for _ in range(rounds):
        for name, ds in datasets.items():
            evict(*evict_roots)
            loader = make_loader(name, ds)
            cold[name].append(take(loader, batches))   # fresh workers, cold files
            warm[name].append(take(loader, batches))   # same workers, same order again
            del loader
    return warm, cold


def ratio(rates, name, base):
    return median([a / b for a, b in zip(rates[name], rates[base], strict=True)])


def s3_rates(docs: int, batches: int, naive_rate: float) -> list[list]:
    from _s3_server import S3Server  # noqa: PLC0415

    rows = []
    with S3Server() as server:
        os.environ.update(server.environ)
        server.create_bucket("loader")
        url = "s3://loader/store.zarr"
        corpus("s3", docs, FRAMES, MELS, url=url)  # the server's endpoint from environ
        opts = server.storage_options
        for name, kw in [("RandomWindows global", {}),
                         ("RandomWindows block", {"shuffle": "block"})]:
            ds = RandomWindows(url, "mel", window=WINDOW, batch_size=BATCH, seed=0,
                               cache_bytes=16 << 20, storage_options=opts, **kw)
            loader = make_loader(name, ds)
            mark = server.mark()
            rate = take(loader, batches)
            gets = sum(1 for r in server.since(mark) if r.method == "GET")
            rows.append([name, f"{rate:,.0f}", f"{rate / naive_rate:.2f}x",
                         f"{gets / (batches * BATCH):.3f}", f"{ds.num_windows:,}"])
            del loader
    return rows


def inner_chunks(docs: int, batches: int, rounds: int) -> list[list]:
    """RandomWindows (global, no workers) over stores written with smaller inner chunks
    (``parts.INNER_CHUNK_BYTES``, set here for the writer only): cold and warm."""
    from zounds_xr.documents import parts  # noqa: PLC0415

    default = parts.INNER_CHUNK_BYTES
    urls = {}
    for size in (default, 16 << 10, 4 << 10):
        parts.INNER_CHUNK_BYTES = size
        try:
            urls[size] = corpus(f"inner{size}", docs, FRAMES, MELS)
        finally:
            parts.INNER_CHUNK_BYTES = default
    cold = {size: [] for size in urls}
    warm = {size: [] for size in urls}
    for _ in range(rounds):
        for size, url in urls.items():
            evict(url)
            ds = RandomWindows(url, "mel", window=WINDOW, batch_size=BATCH, seed=0)
            cold[size].append(take(ds, batches))
            warm[size].append(take(ds, batches))
    return [[f"{size >> 10} KiB" + (" (default)" if size == default else ""),
             f"{median(cold[size]):,.0f}", f"{ratio(cold, size, default):.2f}x",
             f"{median(warm[size]):,.0f}", f"{ratio(warm, size, default):.2f}x"]
            for size in urls]


def first_batch(docs: int) -> dict:
    url = corpus("catalog", docs, 10, 4)
    out = {}
    for workers in (0, 2):
        t0 = time.perf_counter()
        ds = RandomWindows(zx.open_store(url), "mel", window=1, batch_size=BATCH, seed=0)
        built = time.perf_counter() - t0
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers)
        batch = next(iter(loader))
        out[workers] = (time.perf_counter() - t0, built)
        assert batch["x"].shape[0] == BATCH
        out["windows"], out["bytes"] = ds.num_windows, ds._plan.nbytes()
        del loader
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=9600)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--s3-docs", type=int, default=800)
    parser.add_argument("--catalog-docs", type=int, default=1_000_000)
    parser.add_argument("--only", nargs="+", choices=PARTS, default=PARTS,
                        help="measure only these parts")
    parser.add_argument("--quick", action="store_true", help="smoke run")
    args = parser.parse_args()
    if args.quick:
        args.docs, args.batches, args.rounds = 400, 40, 1
        args.s3_docs, args.catalog_docs = 100, 20_000
    DATA.mkdir(parents=True, exist_ok=True)
    url = corpus("windows", args.docs, FRAMES, MELS)
    npy = export_npy(url)
    store = zx.open_store(url)
    windows = FeatureWindows(store, "mel", window=WINDOW)
    counts = windows._plan.counts()
    datasets = {
        "naive .npy + mmap, randperm": NaiveWindows(npy, windows.ids, counts),
        "FeatureWindows, randperm": windows,
        "RandomWindows global": RandomWindows(store, "mel", window=WINDOW,
                                              batch_size=BATCH, seed=0),
        "RandomWindows block": RandomWindows(store, "mel", window=WINDOW, batch_size=BATCH,
                                             seed=0, shuffle="block"),
    }
    base = "naive .npy + mmap, randperm"
    if "local" in args.only:
        warm, cold = local_rates(datasets, args.batches, args.rounds, [url, npy])
        size = sum(f.stat().st_size for f in pathlib.Path(url).rglob("*") if f.is_file())
        print(f"## Training windows at scale (bench_loader.py, issue 24)\n\n{args.docs:,} "
              f"documents x {FRAMES} frames of a {MELS}-band mel (float32), windows of "
              f"{WINDOW} frames: {windows.num_windows:,} windows, store "
              f"{size / 2**20:.0f} MiB; `DataLoader(num_workers=2)`, batches of {BATCH}, the "
              f"first {args.batches} batches of an epoch; medians of {args.rounds} "
              f"interleaved rounds, ratios per round. Cold: fresh workers, the corpus's "
              f"files evicted from the page cache; warm: the same workers again.\n")
        print(table(["loader (local store)", "warm windows/s", "warm vs naive",
                     "cold windows/s", "cold vs naive"],
                    [[name, f"{median(warm[name]):,.0f}", f"{ratio(warm, name, base):.2f}x",
                      f"{median(cold[name]):,.0f}", f"{ratio(cold, name, base):.2f}x"]
                     for name in datasets]))
        print(f"\n1-min load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.\n")
        sys.stdout.flush()
    if "chunks" in args.only:
        rows = inner_chunks(args.docs // 4, args.batches, args.rounds)
        print(f"Inner chunk size of the written parts, RandomWindows global without "
              f"workers, {args.docs // 4:,} documents ({args.docs // 4 * FRAMES // WINDOW:,} "
              f"windows):\n")
        print(table(["inner chunk", "cold windows/s", "cold vs default", "warm windows/s",
                     "warm vs default"], rows))
        print()
        sys.stdout.flush()
    if "s3" in args.only:
        naive = {base: []}
        for _ in range(2):  # the naive side's local rate, next to the S3 figures
            naive[base].append(take(make_loader(base, datasets[base]), args.batches))
        rows = s3_rates(args.s3_docs, min(args.batches, 100), median(naive[base]))
        print(table(["loader (moto S3 store, cache 16 MiB/worker)", "windows/s",
                     "vs naive (local, warm)", "GETs per window", "windows"], rows))
        print(f"\n(naive local: {median(naive[base]):,.0f} windows/s; 1-min load average "
              f"{os.getloadavg()[0]:.1f})")
        sys.stdout.flush()
    if "catalog" in args.only:
        fb = first_batch(args.catalog_docs)
        print(f"\nA {args.catalog_docs:,}-document catalog ({fb['windows']:,} windows): "
              f"first batch {fb[0][0]:.2f} s without workers, {fb[2][0]:.2f} s with 2 "
              f"workers (goal < 5 s; building the dataset, catalog read included: "
              f"{fb[0][1]:.2f} s); index state per worker {fb['bytes'] / 2**20:.0f} MB "
              f"(goal < 100 MB).")


if __name__ == "__main__":
    main()
