"""Feature store on S3 (a local moto server) vs the local-disk store.

Processes a synthetic sound into a document with a stored FFT (HalfLapped window at
11025 Hz, as in bench_documents.py), then reads it back: a 2 s TimeSlice and the whole
feature. Reports HTTP requests (from the server's own request log) and throughput, for
the same work on a local directory and on ``s3://`` through s3fs.

The S3 server is moto's ThreadedMotoServer on 127.0.0.1, in a thread of this process:
no network latency, but it shares the GIL with the client, so S3 timings are a pessimistic
bound on CPU and an optimistic one on latency (a real S3 GET costs ~10-30 ms of first
byte). Request counts are exact and are what a real S3 bucket would bill.

    .venv/bin/python benchmarks/bench_s3.py [--seconds 120] [--rounds 3]
"""
from __future__ import annotations

import argparse
import collections
import os
import pathlib
import shutil
import sys
import tempfile
import time
import uuid

import numpy as np
import soundfile as sf

from _harness import median, table
from bench_documents import graph

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def write_source(path, seconds, rate=11025):
    rng = np.random.default_rng(0)
    t = np.arange(seconds * rate) / rate
    x = 0.4 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)
    sf.write(path, x.astype("float32"), rate, subtype="FLOAT")
    return str(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print("## Feature store on S3 (local moto server) vs local disk\n")
    try:
        import moto.server  # noqa: F401
        import s3fs  # noqa: F401
    except ImportError as exc:
        print(f"_skipped: {exc} (install the [s3] extra and moto[server])_")
        return 0
    import zounds_xr as zx
    from _s3_server import DUMMY_CREDENTIALS, S3Server
    from zounds_xr.documents import FeatureStore

    os.environ.update(DUMMY_CREDENTIALS)
    tmp = tempfile.mkdtemp(prefix="bench_s3_")
    try:
        wav = write_source(os.path.join(tmp, "a.wav"), args.seconds)
        with S3Server() as server:
            server.create_bucket("bench")
            stores = {"local disk": lambda i: FeatureStore(os.path.join(tmp, f"s{i}.zarr")),
                      "S3 (moto)": lambda i: FeatureStore(
                          f"s3://bench/s{i}.zarr", storage_options=server.storage_options)}
            rows, counts = [], {}
            for label, make in stores.items():
                process_t, slice_t, full_t = [], [], []
                for i in range(args.rounds):
                    Sound = graph(make(f"{i}-{uuid.uuid4().hex[:6]}"))
                    mark = server.mark()
                    t0 = time.perf_counter()
                    doc_id = Sound.process(meta=wav, chunksize=zx.Seconds(30))
                    process_t.append(time.perf_counter() - t0)
                    wrote = server.since(mark)
                    mark = server.mark()
                    t0 = time.perf_counter()
                    part = Sound(doc_id).fft.sel(
                        time=zx.TimeSlice(zx.Seconds(2), start=zx.Seconds(args.seconds // 2)))
                    part.values
                    slice_t.append(time.perf_counter() - t0)
                    sliced = server.since(mark)
                    mark = server.mark()
                    t0 = time.perf_counter()
                    full = Sound(doc_id).fft.values
                    full_t.append(time.perf_counter() - t0)
                    whole = server.since(mark)
                    mark = server.mark()
                    Sound.ids()
                    listed = server.since(mark)
                if label.startswith("S3"):
                    counts = {"process (write)": wrote, "open + 2 s slice": sliced,
                              "open + whole feature": whole, "ids() of 1 document": listed}
                mib = full.nbytes / 2**20
                rows.append([label, median(process_t), args.seconds / median(process_t),
                             1000 * median(slice_t), median(full_t), mib / median(full_t)])
            print(f"{args.seconds} s of 11025 Hz audio -> stored FFT of {full.shape[0]} x "
                  f"{full.shape[1]} complex64 ({mib:.1f} MiB); median of {args.rounds} "
                  f"rounds.\n")
            print(table(["store", "process s", "audio s / s", "2 s slice ms", "full read s",
                         "full read MiB/s"], rows))
            print("\nHTTP requests to S3 (the server's log):\n")
            crow = []
            for what, reqs in counts.items():
                methods = collections.Counter(r.method for r in reqs)
                crow.append([what, len(reqs), ", ".join(f"{m} {n}" for m, n in
                                                         sorted(methods.items())),
                             sum(r.is_list for r in reqs)])
            print(table(["operation", "requests", "by method", "of which listings"], crow))
            print("\nThe 2 s slice costs the same requests whatever the document's length "
                  "(document, feature group and array metadata, one shard index, the inner "
                  "chunks it overlaps); reading the whole feature costs a few GETs per "
                  "~4 MiB shard. Writes pay zarr's overwrite checks (HEAD/list) for "
                  "each group and array created, then one PUT per shard.")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
