"""Corpus ingest: seconds of audio per second, 1 and 2 workers, local processes vs
distributed.

The issue's target: at least 1.6x from 1 to 2 workers on a corpus of at least 50
generated files (50 x 20 s at 44.1 kHz, WAV and FLAC alternating, every file its own
content: ``_signals.corpus_dir``), and the distributed overhead against the local
process scheduler. The document is the streaming benchmark's: resample to 11025 Hz ->
|STFT| (512/256) stored.

Contenders, interleaved round by round, each into a fresh store:

- ``zx.ingest(..., scheduler="synchronous")``: one process, in-process (no worker start)
- ``zx.ingest(zx.Directory(...), Sound, scheduler="processes", num_workers=n,
  progress=False)`` for n = 1, 2: as the first ingest of a session (the worker pool is
  started in the call, while the dataset is scanned: included) and as a later ingest
  (the session's pool, ``zounds_xr.documents.batch.process_pool``, is warm)
- ``zx.ingest(..., client=Client(LocalCluster(n_workers=n, threads_per_worker=1)))``
  (clusters started once, before timing; their start-up time is reported apart)

BLAS/OpenMP threads are set to 1 for the workers (environment inherited). A control
measures what 2 processes can get from this shared machine right now: the same fixed
CPU-bound numpy work (``rfft`` of windowed frames) on 1 and 2 already-started processes.

    .venv/bin/python benchmarks/bench_ingest.py [--quick] [--rounds 3]
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

TARGET_SPEEDUP = 1.6


def graph(store):
    import zounds_xr as zx

    @zx.zarr_settings(store)
    class Sound(zx.Document):
        resampled = zx.Feature(zx.resample, needs=zx.Document.audio,
                               samplerate=zx.SR11025())
        spec = zx.Feature(zx.stft, needs=resampled, wscheme=zx.SR11025() * (256, 512),
                          wfunc=zx.HanningWindowingFunc(periodic=True), magnitude=True,
                          store=True)
    return Sound


def _control_work(seconds_of_audio: float) -> float:
    """Fixed CPU work: |rfft| of 2048-sample frames of noise, hop 512."""
    import numpy as np

    t0 = time.perf_counter()
    y = np.random.default_rng(0).standard_normal(int(44100 * seconds_of_audio)).astype("f4")
    frames = np.lib.stride_tricks.sliding_window_view(y, 2048)[::512]
    for i in range(0, len(frames), 4096):
        np.abs(np.fft.rfft(frames[i:i + 4096] * np.hanning(2048).astype("f4"), axis=-1))
    return time.perf_counter() - t0


def _imports(_=None) -> int:
    """What a worker imports before its first file (the library and its stack)."""
    import zounds_xr

    zounds_xr.stft, zounds_xr.resample, zounds_xr.Document  # noqa: B018  (lazy names)
    import zarr  # noqa: F401

    return os.getpid()


def startup(n: int) -> float:
    """A fresh ``scheduler="processes"`` pool doing nothing but the imports."""
    import dask

    t0 = time.perf_counter()
    dask.compute(*[dask.delayed(_imports, pure=False)(i) for i in range(n)],
                 scheduler="processes", num_workers=n)
    return time.perf_counter() - t0


def control(pool, units: int, seconds: float) -> float:
    t0 = time.perf_counter()
    list(pool.map(_control_work, [seconds] * units))
    return time.perf_counter() - t0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 files of 5 s, 1 round")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)

    import concurrent.futures
    import multiprocessing

    import dask
    import distributed
    from distributed import Client, LocalCluster

    import _signals
    import zounds_xr as zx
    from zounds_xr.documents import batch

    n_files, secs = (8, 5) if args.quick else (50, 20)
    rounds = args.rounds or (1 if args.quick else 3)
    corpus = _signals.corpus_dir(n_files, secs)
    audio_total = n_files * secs
    work = pathlib.Path(tempfile.mkdtemp(prefix="zx_ingest_", dir=_signals.DATA))

    t0 = time.perf_counter()
    clusters = {}
    cluster_startup = {}
    for n in (1, 2):
        t0 = time.perf_counter()
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=50)
        client = Client(cluster)
        client.run(lambda: __import__("zounds_xr").stft)  # workers import the library
        cluster_startup[n] = time.perf_counter() - t0
        clusters[n] = (cluster, client)

    def run(name, **kw):
        store = work / f"{name}_{time.perf_counter_ns()}.zarr"
        Sound = graph(str(store))
        t = time.perf_counter()
        report = zx.ingest(zx.Directory(corpus), Sound, progress=False, **kw)
        elapsed = time.perf_counter() - t
        if report.failed or len(report.processed) != n_files:
            raise RuntimeError(f"{name}: {report}: {report.failed}")
        shutil.rmtree(store, ignore_errors=True)
        return elapsed

    ctx = multiprocessing.get_context("spawn")
    pools = {n: concurrent.futures.ProcessPoolExecutor(n, mp_context=ctx) for n in (1, 2)}
    for n in (1, 2):  # start the control's processes
        list(pools[n].map(_control_work, [0.1] * n))

    def run_cold(n):
        # the first ingest of a session: zx.ingest starts its worker pool in the call
        for pool in batch._POOLS.values():
            pool.shutdown(wait=True)
        batch._POOLS.clear()
        return run(f"p{n}", scheduler="processes", num_workers=n)

    def run_warm(n):
        # later ingests of a session reuse the pool (zounds_xr.documents.batch.process_pool)
        batch.process_pool(n)
        return run(f"w{n}", scheduler="processes", num_workers=n)

    contenders = {
        "in-process (synchronous)": lambda: run("sync", scheduler="synchronous"),
        "processes, 1 worker, first ingest (pool started in the call)": lambda: run_cold(1),
        "processes, 2 workers, first ingest (pool started in the call)": lambda: run_cold(2),
        "processes, 1 worker, later ingests (warm pool)": lambda: run_warm(1),
        "processes, 2 workers, later ingests (warm pool)": lambda: run_warm(2),
        "LocalCluster, 1 worker": lambda: run("d1", client=clusters[1][1]),
        "LocalCluster, 2 workers": lambda: run("d2", client=clusters[2][1]),
        "fresh process pool start-up only (imports), 1 worker": lambda: startup(1),
        "fresh process pool start-up only (imports), 2 workers": lambda: startup(2),
    }
    control_secs = 600.0 if not args.quick else 60.0
    try:
        contenders["control: 2 units of CPU work, 1 process"] = \
            lambda: control(pools[1], 2, control_secs)
        contenders["control: 2 units of CPU work, 2 processes"] = \
            lambda: control(pools[2], 2, control_secs)
        run("warmup", scheduler="synchronous")  # file cache, first-call imports
        times = {k: [] for k in contenders}
        loads = []
        for _ in range(rounds):
            for name, fn in contenders.items():
                times[name].append(fn())
            loads.append(os.getloadavg()[0])
    finally:
        for pool in pools.values():
            pool.shutdown()
        for cluster, client in clusters.values():
            client.close()
            cluster.close()
        shutil.rmtree(work, ignore_errors=True)

    def per_round(a, b):
        return statistics.median(x / y for x, y in zip(times[a], times[b], strict=False))

    print("## Corpus ingest (bench_ingest)\n")
    print(f"{n_files} generated files x {secs} s at 44.1 kHz mono (WAV/FLAC alternating, "
          f"{audio_total} s of audio) -> resample 11025 -> |STFT| 512/256 stored; "
          f"{rounds} round(s), interleaved; {os.cpu_count()} CPUs shared with other "
          f"engineers' work (1-min load average during the rounds: "
          f"{', '.join(f'{x:.1f}' for x in loads)}); OMP/MKL/OpenBLAS threads = 1; "
          f"dask {dask.__version__}, distributed {distributed.__version__}. LocalCluster "
          f"start-up (not in the timings): {cluster_startup[1]:.1f} s (1 worker), "
          f"{cluster_startup[2]:.1f} s (2 workers).\n")
    print("| contender | median s | audio s per s | vs 1 worker of its kind | target |")
    print("|---|---:|---:|---:|---|")
    first1, first2 = (f"processes, {n}, first ingest (pool started in the call)"
                      for n in ("1 worker", "2 workers"))
    warm1, warm2 = (f"processes, {n}, later ingests (warm pool)" for n in ("1 worker", "2 workers"))
    pairs = {first2: first1, warm2: warm1,
             "LocalCluster, 2 workers": "LocalCluster, 1 worker",
             "control: 2 units of CPU work, 2 processes":
                 "control: 2 units of CPU work, 1 process"}
    for name, ts in times.items():
        med = statistics.median(ts)
        speed = "" if name.startswith(("control", "fresh")) else f"{audio_total / med:.0f}"
        vs, target = "", ""
        if name in pairs:
            s = per_round(pairs[name], name)
            vs = f"{s:.2f}x"
            if not name.startswith("control"):
                c = per_round("control: 2 units of CPU work, 1 process",
                              "control: 2 units of CPU work, 2 processes")
                target = (f"≥{TARGET_SPEEDUP}x: {'met' if s >= TARGET_SPEEDUP else 'MISSED'}"
                          f" ({s / c:.2f}x of the control's)")
        print(f"| {name} | {med:.2f} | {speed} | {vs} | {target} |")
    print(f"\nDistributed overhead (median of per-round ratios LocalCluster / local "
          f"process scheduler with a warm pool): 1 worker "
          f"{per_round('LocalCluster, 1 worker', warm1):.2f}x, 2 workers "
          f"{per_round('LocalCluster, 2 workers', warm2):.2f}x; against the first "
          f"ingest of a session (pool start-up included): 1 worker "
          f"{per_round('LocalCluster, 1 worker', first1):.2f}x, 2 workers "
          f"{per_round('LocalCluster, 2 workers', first2):.2f}x. "
          f"Processes (warm) vs in-process, 1 worker: "
          f"{per_round(warm1, 'in-process (synchronous)'):.2f}x. "
          f"Per file in-process: "
          f"{1e3 * statistics.median(times['in-process (synchronous)']) / n_files:.0f} ms. "
          f"The control is the best 1 -> 2 process speed-up the shared machine allowed "
          f"during the run.")


if __name__ == "__main__":
    main()
