"""A long recording ingested by 1 and 2 workers (time ranges), with the control and memory.

Issue 30's row: a 2-hour 44.1 kHz PCM_16 WAV (``_signals``) to a stored 128-band mel
(n_fft 2048, hop 512, periodic Hann, float32), ``zx.ingest([path], Sound,
scheduler="processes", num_workers=n)`` for n = 1 (one stream) and n = 2 (the file split
in two time ranges, ``documents/longfile.py``); target >= 5,000x realtime with 2 workers
and < 400 MiB peak RSS per worker. Each run writes a fresh store and includes what
ingest does after the documents are in: compaction, and the explorer's pyramid of the
2-hour mel (built by the time ranges from the frames they write, or, in one stream,
read back and built in ingest's process); a second pair of rows times the same without
the pyramid, to show where the time goes.

The control, in the same interleaved rounds: 2 units of the same pure-CPU work (``rfft``
of windowed frames) on 1 and on 2 already-started processes: what a second process can
get from this shared machine right now. Peak RSS per worker: ``VmHWM`` of each worker
process over the run.

``--profile`` adds one worker's stages over the file's first time range (one shard of
the mel, 12.7 minutes), one thread: the CPU time (``time.process_time``: every thread of
the process, and less sensitive to the machine's load than wall time) spent in each
stage of the range task, in ms per minute of audio, measured by wrapping the stages'
functions (decode, FFT, |X|^2, mel product, the shard writes, the pyramid; "other" is
the rest: the document pipeline's Python and xarray).

    .venv/bin/python benchmarks/bench_long_ingest.py [--minutes 120] [--rounds 3]
    .venv/bin/python benchmarks/bench_long_ingest.py --quick   # 30 minutes, 1 round, < 3 min
"""
from __future__ import annotations

import argparse
import contextlib
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

from bench_ingest import _control_work  # noqa: E402  (the same control as bench_ingest)

TARGET_X = 5000
TARGET_MIB = 400
N_FFT, HOP, N_MELS = 2048, 512, 128


def graph(store):
    import zounds_xr as zx

    @zx.zarr_settings(store)
    class Sound(zx.Document):
        mel = zx.Feature(zx.mel_spectrogram, needs=zx.Document.audio, n_mels=N_MELS,
                         wscheme=zx.SR44100() * (HOP, N_FFT),
                         wfunc=zx.HanningWindowingFunc(periodic=True), store=True)

    return Sound


def _peak_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _reset_peak(pid: int) -> None:
    with contextlib.suppress(OSError):  # clear_refs "5" resets VmHWM (Linux >= 4.0)
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")


def ingest_once(path, workers: int, pyramids: bool) -> float:
    import zounds_xr as zx
    from zounds_xr.documents import batch, pyramid

    folder = tempfile.mkdtemp(prefix="zx-bench-long-")
    try:
        sound = graph(os.path.join(folder, "store.zarr"))
        build, least = batch.build_pyramids, pyramid.MIN_BYTES
        if not pyramids:  # neither after the commit nor by the ranges (planned here)
            batch.build_pyramids = lambda store: []
            pyramid.MIN_BYTES = 1 << 62
        try:
            t0 = time.perf_counter()
            report = zx.ingest([str(path)], sound, scheduler="processes",
                               num_workers=workers, progress=False)
            seconds = time.perf_counter() - t0
        finally:
            batch.build_pyramids, pyramid.MIN_BYTES = build, least
        if report.failed or len(report.processed) != 1:
            raise RuntimeError(f"ingest failed: {report.failed}")
        return seconds
    finally:
        shutil.rmtree(folder, ignore_errors=True)


#: the stages of a range task: (owner module, attribute, label); each one's CPU time
#: excludes that of the stages it calls
_STAGES = [
    ("zounds_xr.io.reader:Reader", "_readf", "decode (libsndfile, 16-bit PCM to float)"),
    ("zounds_xr.spectral.kernels:FrameKernel", "_signal", "framing + window"),
    ("zounds_xr.spectral.kernels", "rfft", "FFT"),
    ("zounds_xr.spectral.kernels", "magnitudes_to", "\\|X\\|^2"),
    ("zounds_xr.spectral.kernels", "transpose_into", "transpose for the mel product"),
    ("zounds_xr.spectral.kernels:SparseRebin", "into_transposed", "mel product (sparse)"),
    ("zounds_xr.documents.longfile:_RangeSink", "_write", "shard writes (+ log records)"),
    ("zounds_xr.documents.pyramid:RangePyramid", "add", "explorer pyramid (summaries, writes)"),
    ("zounds_xr.documents.pyramid:RangePyramid", "close", "explorer pyramid (summaries, writes)"),
]


def profile_range(path) -> list[str]:
    """One worker's stages over the file's first time range (of whole shards), one thread."""
    import collections
    import functools
    import importlib

    import numpy as np

    import zounds_xr as zx
    from zounds_xr.documents import longfile
    from zounds_xr.spectral.kernels import set_default_threads

    set_default_threads(1)
    spent: collections.Counter = collections.Counter()
    inner: list[float] = []
    undo = []

    def wrap(owner, attr, label):
        f = getattr(owner, attr)

        @functools.wraps(f)
        def timed(*args, **kwargs):
            t0 = time.process_time()
            inner.append(0.0)
            try:
                return f(*args, **kwargs)
            finally:
                took, nested = time.process_time() - t0, inner.pop()
                spent[label] += took - nested
                if inner:
                    inner[-1] += took
        setattr(owner, attr, timed)
        undo.append((owner, attr, f))

    folder = tempfile.mkdtemp(prefix="zx-bench-long-")
    try:
        sound = graph(os.path.join(folder, "store.zarr"))
        split = longfile.plan(sound, zx.AudioMetaData(uri=str(path)), "doc", 64,
                              np.timedelta64(30, "s"))
        if split is None:
            return ["(the file is too short for a range of whole shards: no profile)"]
        job = split.jobs[0]
        for where, attr, label in _STAGES:
            module, _, cls = where.partition(":")
            owner = importlib.import_module(module)
            owner = getattr(owner, cls, None) if cls else owner
            if hasattr(owner, attr):  # (an older version may lack a stage: a baseline)
                wrap(owner, attr, label)
        try:
            t0, w0 = time.process_time(), time.perf_counter()
            longfile.write_range(sound, job)
            total, wall = time.process_time() - t0, time.perf_counter() - w0
        finally:
            for owner, attr, f in reversed(undo):
                setattr(owner, attr, f)
        split.discard()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    minutes = job.stop / 44100 / 60
    spent["other (the document pipeline: Python, xarray)"] = total - sum(spent.values())
    lines = [f"One worker's range task over the first range ({minutes:.1f} min of audio, one "
             f"thread; 1-min load average {os.getloadavg()[0]:.1f}): {total:.2f} CPU s, "
             f"{wall:.2f} s wall, **{minutes * 60 / total:,.0f}x realtime per core**.", "",
             "| stage | CPU ms per minute of audio | share |", "|---|---:|---:|"]
    lines += [f"| {name} | {1000 * t / minutes:.1f} | {100 * t / total:.0f} % |"
              for name, t in sorted(spent.items(), key=lambda kv: -kv[1])]
    lines.append(f"| **the range task** | **{1000 * total / minutes:.1f}** | 100 % |")
    return lines


def main(argv=None) -> dict:
    import concurrent.futures
    import multiprocessing

    from _signals import signal_path

    from zounds_xr.documents.batch import process_pool

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=120.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="one worker's stages")
    parser.add_argument("--quick", action="store_true", help="30 minutes, 1 round (< 3 min)")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes, args.rounds = 30.0, 1
    path = signal_path(args.minutes * 60, "wav")
    audio = args.minutes * 60
    load0 = os.getloadavg()[0]
    pools = {n: process_pool(n) for n in (1, 2)}
    context = multiprocessing.get_context("spawn")
    controls = {n: concurrent.futures.ProcessPoolExecutor(n, mp_context=context)
                for n in (1, 2)}
    for n, pool in controls.items():
        list(pool.map(_control_work, [0.1] * n))
    control_audio = min(audio / 8, 600.0)
    contenders = {
        "ingest, 1 worker (one stream)": lambda: ingest_once(path, 1, True),
        "ingest, 2 workers (2 time ranges)": lambda: ingest_once(path, 2, True),
        "without the pyramid, 1 worker": lambda: ingest_once(path, 1, False),
        "without the pyramid, 2 workers": lambda: ingest_once(path, 2, False),
        "control: 2 units of CPU work, 1 process":
            lambda: _timed(controls[1], control_audio),
        "control: 2 units of CPU work, 2 processes":
            lambda: _timed(controls[2], control_audio),
    }
    ingest_once(path, 2, False)  # warm-up: the pools' first tasks, the file cached
    times: dict[str, list[float]] = {k: [] for k in contenders}
    peaks: dict[str, float] = {}
    cpu: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(args.rounds):
        for name, f in contenders.items():
            workers = list(pools[2 if "2 workers" in name else 1]._processes) \
                if not name.startswith("control") else []
            for pid in workers:
                _reset_peak(pid)
            c0 = time.process_time() + sum(_cpu_seconds(p) for p in workers)
            times[name].append(f())
            cpu[name].append(time.process_time() + sum(_cpu_seconds(p) for p in workers)
                             - c0)
            if workers:
                peaks[name] = max(peaks.get(name, 0.0), *(_peak_mib(p) for p in workers))

    def speedup(slow, fast):
        return statistics.median(s / f for s, f in zip(times[slow], times[fast], strict=True))

    rows = []
    pairs = {"ingest, 2 workers (2 time ranges)": "ingest, 1 worker (one stream)",
             "without the pyramid, 2 workers": "without the pyramid, 1 worker",
             "control: 2 units of CPU work, 2 processes":
                 "control: 2 units of CPU work, 1 process"}
    control = speedup("control: 2 units of CPU work, 1 process",
                      "control: 2 units of CPU work, 2 processes")
    for name, ts in times.items():
        med = statistics.median(ts)
        x = "" if name.startswith("control") else f"{audio / med:,.0f}x"
        gain = ""
        if name in pairs:
            s = speedup(pairs[name], name)
            gain = f"{s:.2f}x" + ("" if name.startswith("control") else
                                  f" ({s / control:.2f} of the control's)")
        peak = f"{peaks[name]:.0f}" if name in peaks else ""
        used = f"{statistics.median(cpu[name]):.2f}" if name in peaks else ""
        rows.append(f"| {name} | {med:.2f} | {x} | {gain} | {used} | {peak} |")
    two = audio / statistics.median(times["ingest, 2 workers (2 time ranges)"])
    peak2 = peaks.get("ingest, 2 workers (2 time ranges)", float("nan"))
    lines = ["## A long recording split across workers (bench_long_ingest)", "",
             f"{args.minutes:g}-minute 44.1 kHz PCM_16 WAV -> stored {N_MELS}-band mel "
             f"(n_fft {N_FFT}, hop {HOP}), `scheduler=\"processes\"`; {args.rounds} "
             f"interleaved round(s), medians; {os.cpu_count()} CPUs shared with other work "
             f"(1-min load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at "
             f"the end). CPU s: ingest's process and its workers together (what the "
             f"split adds, whatever the load). Peak RSS: the largest `VmHWM` of the "
             f"pool's workers in that row.",
             "", "| run | s | x realtime | 2 vs 1 | CPU s | peak RSS per worker MiB |",
             "|---|---:|---:|---:|---:|---:|", *rows, "",
             f"2 workers: **{two:,.0f}x realtime** (target {TARGET_X:,}x: "
             f"{'met' if two >= TARGET_X else 'MISSED'}), peak RSS per worker "
             f"{peak2:.0f} MiB (target < {TARGET_MIB}: "
             f"{'met' if peak2 < TARGET_MIB else 'MISSED'})."]
    if args.profile:
        lines += [""] + profile_range(path)
    for pool in controls.values():
        pool.shutdown()
    print("\n".join(lines))
    return {}


def _timed(pool, seconds: float) -> float:
    t0 = time.perf_counter()
    list(pool.map(_control_work, [seconds] * 2))
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
