"""Reading a short TimeSlice of a stored spectrogram touches a bounded number of chunks.

Processes a long synthetic sound (default 1 hour at 11025 Hz) into a document with a
stored FFT (HalfLapped window: 512 samples, hop 256 -> 155k frames x 257 complex64 bins,
~320 MB), then reads 2 s of it through a zarr store wrapper that counts the bytes and
requests of every ``get``, and reports them against the document's size.

    .venv/bin/python benchmarks/bench_documents.py [--minutes 60] [--keep DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np
import soundfile as sf
from zarr.storage import LocalStore

from _harness import CountingStore

import zounds_xr as zx
from zounds_xr.documents import FeatureStore


def graph(store):
    @zx.zarr_settings(store)
    class Sound(zx.Document):
        windowed = zx.Feature(zx.sliding_window, needs=zx.Document.audio,
                              wscheme=zx.HalfLapped(), wfunc=zx.OggVorbisWindowingFunc())
        fft = zx.Feature(zx.fft, needs=windowed, store=True)
    return Sound


def write_source(path, minutes, rate=11025):
    block = rate * 60
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as f:
        for m in range(minutes):
            t = (np.arange(block) + m * block) / rate
            x = 0.3 * np.sin(2 * np.pi * (220 + m) * t) + 0.05 * rng.standard_normal(block)
            f.write(x.astype("float32"))


def du(path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--keep", default=None, help="directory to keep the store in")
    args = parser.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix="bench_documents_")
    os.makedirs(work, exist_ok=True)
    try:
        wav, store = os.path.join(work, "long.wav"), os.path.join(work, "features.zarr")
        if not os.path.exists(wav):
            write_source(wav, args.minutes)
        Sound = graph(store)
        doc_id = Sound.id_for(wav)
        if not Sound.exists(doc_id):
            t0 = time.perf_counter()
            Sound.process(meta=wav)
            print(f"process {args.minutes} min: {time.perf_counter() - t0:.1f} s")
        size = du(store)  # the store holds this one document
        counting = CountingStore(LocalStore(store, read_only=True))
        Reader = graph(FeatureStore(counting))
        results = []
        for start in (5, args.minutes * 30 + 7, args.minutes * 60 - 10):
            counting.requests = counting.nbytes = 0
            t0 = time.perf_counter()
            snd = Reader(doc_id)
            opened = (counting.requests, counting.nbytes)
            part = snd.fft.sel(time=zx.TimeSlice(zx.Seconds(2), start=zx.Seconds(start)))
            values = part.values
            elapsed = time.perf_counter() - t0
            results.append((start, part.shape, counting.requests, counting.nbytes, elapsed,
                             opened))
            assert values.shape[0] in (87, 88, 89), values.shape
        print(f"document: {size / 2**20:.1f} MiB on disk, fft {snd.fft.shape} "
              f"{snd.fft.dtype}, dask chunks {snd.fft.data.chunksize}")
        for start, shape, requests, nbytes, elapsed, opened in results:
            print(f"2 s at {start:5d} s -> {shape}: {requests} requests, "
                  f"{nbytes / 2**10:.0f} KiB read ({opened[1] / 2**10:.1f} KiB metadata), "
                  f"{100 * nbytes / size:.3f}% of the document, {elapsed * 1e3:.0f} ms")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
