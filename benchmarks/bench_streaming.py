"""Streaming a long file into a feature document: speed, peak memory, where time goes.

The issue's targets: a 2-hour 44.1 kHz mono file (WAV, and FLAC) streamed through
decode -> resample to 11025 Hz -> |STFT| -> Zarr (``Sound.process(meta=path,
chunksize=...)``) with a peak RSS under 400 MiB and at least 500x realtime end to end.

Every measurement runs in a fresh subprocess (``--child STAGE``) so that peak RSS is that
stage's own ``VmHWM`` (interpreter and imports included; the RSS after the imports is
reported too). Stages, on the same file:

``decode``    ``for chunk in zx.stream(path, chunksize)``: decoding only
``compute``   decode + resample + |STFT| through the document's streaming pipeline
              (the library's own nodes), results discarded: no store
``full``      ``Sound.process(meta=path, chunksize=...)`` into a fresh local store,
              with the store's default codecs (float32, no compressor)
``zstd``      the same with zstd (zarr's default, level 0) on the float32 magnitudes
``blosc``     the same with Blosc(zstd, 5, bitshuffle) (NOTES.md's best ratio)
``float16``   the same with ``store_as="float16"`` (default codecs)
``librosa``   the naive path: ``librosa.load(path, sr=11025)`` (whole file, soxr_hq) +
              ``np.abs(librosa.stft(...))``, on the 10-minute file only; its peak RSS is
              extrapolated linearly to 2 hours (running it would need several GiB)

Write share = full - compute, compute share = compute - decode (medians over rounds; a
round runs every stage once, interleaved). Rounds are few (the 2-hour case takes a
while); ``--quick`` uses a 2-minute "long" file and a 1-minute short one.

    .venv/bin/python benchmarks/bench_streaming.py [--quick] [--rounds 2] [--chunk 30]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TARGET_RSS_MIB = 400
TARGET_REALTIME = 500
SR_OUT = 11025
N_FFT, HOP = 512, 256
WARMUP = None


# ---------------------------------------------------------------------- child side
def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _graph(store, store_as=None):
    import numpy as np  # noqa: F401

    import zounds_xr as zx

    @zx.zarr_settings(store)
    class Stream(zx.Document):
        resampled = zx.Feature(zx.resample, needs=zx.Document.audio,
                               samplerate=zx.audio_sample_rate(SR_OUT))
        spec = zx.Feature(zx.stft, needs=resampled,
                          wscheme=zx.audio_sample_rate(SR_OUT) * (HOP, N_FFT),
                          wfunc=zx.HanningWindowingFunc(periodic=True), magnitude=True,
                          store=True, store_as=store_as)
    return Stream


def _patch_codec(kind: str):
    """Make the store compress float arrays (to measure it; the default is no codec)."""
    import zarr

    from zounds_xr.documents import store as store_mod

    if kind == "zstd":
        codecs = [zarr.codecs.ZstdCodec()]
    elif kind == "blosc":
        codecs = [zarr.codecs.BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle")]
    else:
        raise ValueError(kind)
    original = store_mod._compressors
    store_mod._compressors = lambda dtype: codecs if dtype.kind in "fc" else original(dtype)


def _du(path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def child(stage: str, path: str, chunk: float, store: str | None,
          warmup: str | None = None) -> dict:
    import resource

    if warmup:  # first-call costs (lazy imports, librosa's caches) on a 2 s file
        with tempfile.TemporaryDirectory(dir=os.path.dirname(store) if store else None) as w:
            _stage(stage, warmup, chunk, os.path.join(w, "warm.zarr"))
    return _stage(stage, path, chunk, store)


def _stage(stage: str, path: str, chunk: float, store: str | None) -> dict:
    import resource

    import numpy as np

    import zounds_xr as zx
    from zounds_xr.documents.streaming import Pipeline, make_node

    rss0 = _status_mib("VmRSS")
    out = {"stage": stage}
    chunksize = zx.Seconds(chunk)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    if stage == "decode":
        n = 0
        for c in zx.stream(path, chunksize=chunksize):
            n += c.sizes["time"]
        out["frames"] = n
    elif stage == "compute":
        Stream = _graph(zx.FeatureStore.in_memory())
        feats = Stream._features
        nodes = {"resampled": make_node("resampled", feats["resampled"]),
                 "spec": make_node("spec", feats["spec"])}
        counted = {"rows": 0}

        def sink(c):
            np.asarray(c.data)
            counted["rows"] += c.sizes["time"]

        pipe = Pipeline(nodes, {"resampled": ("audio",), "spec": ("resampled",)},
                        {"spec": sink})
        pipe.run({"audio": zx.stream(path, chunksize=chunksize)})
        out["rows"] = counted["rows"]
    elif stage in ("full", "zstd", "blosc", "float16"):
        if stage in ("zstd", "blosc"):
            _patch_codec(stage)
        Stream = _graph(store, "float16" if stage == "float16" else None)
        doc_id = Stream.process(meta=path, chunksize=chunksize)
        elapsed = time.perf_counter() - t0
        out["doc_bytes"] = _du(os.path.join(store, doc_id))
        spec = Stream(doc_id).spec
        out["shape"] = list(spec.shape)
        out["dtype"] = str(spec.dtype)
        out["seconds_inner"] = elapsed
    elif stage == "librosa":
        import librosa

        rss0 = _status_mib("VmRSS")  # after importing librosa too
        t0 = time.perf_counter()
        y, _ = librosa.load(path, sr=SR_OUT)
        mag = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, window="hann",
                                  center=False))
        out["shape"] = list(mag.shape)
    else:
        raise SystemExit(f"unknown stage {stage}")
    out.setdefault("seconds_inner", time.perf_counter() - t0)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_seconds"] = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    out["rss_after_imports_mib"] = rss0
    out["peak_rss_mib"] = _status_mib("VmHWM")
    return out


# ---------------------------------------------------------------------- parent side
def run_child(stage: str, path, chunk: float, threads: int | None = None) -> dict:
    store = tempfile.mkdtemp(prefix=f"zx_stream_{stage}_", dir=HERE / "_data")
    env = dict(os.environ)
    if threads:
        env.update({k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                               "OPENBLAS_NUM_THREADS")})
    try:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--child", stage, "--path", str(path),
             "--chunk", str(chunk), "--store", os.path.join(store, "s.zarr"),
             "--warmup", str(WARMUP)],
            capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise RuntimeError(f"stage {stage} on {path} failed:\n{proc.stderr[-3000:]}")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        res["seconds_process"] = wall
        return res
    finally:
        shutil.rmtree(store, ignore_errors=True)


def _audio_seconds(path) -> float:
    import soundfile as sf

    info = sf.info(str(path))
    return info.frames / info.samplerate


def _med(results, key):
    return statistics.median(r[key] for r in results)


def _fmt_s(x):
    return f"{x:.2f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short signals (smoke run)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--chunk", type=float, default=30.0, help="chunksize, seconds")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--path", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--store", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.path, args.chunk, args.store, args.warmup)))
        return

    import _signals

    global WARMUP
    WARMUP = _signals.signal_path(2, "wav")
    long_s, short_s = (120, 60) if args.quick else (7200, 600)
    rounds = args.rounds or (1 if args.quick else 2)
    long_files = {fmt: _signals.signal_path(long_s, fmt) for fmt in ("wav", "flac")}
    short_wav = _signals.signal_path(short_s, "wav")
    plan = [("wav", "decode"), ("wav", "compute"), ("wav", "full"), ("wav", "zstd"),
            ("wav", "blosc"), ("wav", "float16"),
            ("flac", "decode"), ("flac", "compute"), ("flac", "full")]
    results: dict[tuple, list[dict]] = {k: [] for k in plan}
    short: dict[str, list[dict]] = {"full": [], "librosa": []}
    t_start = time.perf_counter()
    for _ in range(rounds):
        for fmt, stage in plan:
            results[(fmt, stage)].append(run_child(stage, long_files[fmt], args.chunk))
        for stage in short:
            short[stage].append(run_child(stage, short_wav, args.chunk))
    total = time.perf_counter() - t_start

    hours = long_s / 3600
    print(f"## Streaming a {long_s / 60:g}-minute file into a document (bench_streaming)\n")
    print(f"44.1 kHz mono PCM_16 WAV / FLAC (generated, `_signals.py`) -> resample to "
          f"{SR_OUT} Hz (soxr VHQ) -> |STFT| n_fft {N_FFT}, hop {HOP} (periodic Hann) -> "
          f"Zarr; chunksize {args.chunk:g} s; {rounds} round(s), every stage in a fresh "
          f"process; {os.cpu_count()} CPUs shared with other work (load average at the "
          f"end: {os.getloadavg()[0]:.1f}). Time = inside the process, from the first "
          f"decode to the document committed (imports excluded; the whole process, with "
          f"interpreter start and imports, in the last column).\n")
    print("| file | stage | median s | x realtime | target | peak RSS MiB (VmHWM) | "
          "RSS after imports MiB | CPU s | process s |")
    print("|---|---|---:|---:|---|---:|---:|---:|---:|")
    for fmt, stage in plan:
        rs = results[(fmt, stage)]
        t = _med(rs, "seconds_inner")
        audio = _audio_seconds(long_files[fmt])
        rt = statistics.median(audio / r["seconds_inner"] for r in rs)
        peak = max(r["peak_rss_mib"] for r in rs)
        target = ""
        if stage in ("full", "float16"):
            ok_rt = rt >= TARGET_REALTIME
            ok_mem = peak < TARGET_RSS_MIB
            target = (f"≥{TARGET_REALTIME}x: {'met' if ok_rt else 'MISSED'}; "
                      f"<{TARGET_RSS_MIB} MiB: {'met' if ok_mem else 'MISSED'}")
        print(f"| {fmt} | {stage} | {_fmt_s(t)} | {rt:.0f}x | {target} | {peak:.0f} | "
              f"{_med(rs, 'rss_after_imports_mib'):.0f} | {_med(rs, 'cpu_seconds'):.1f} | "
              f"{_med(rs, 'seconds_process'):.1f} |")

    print("\n**Where the time goes** (medians; compute = compute − decode, write = "
          "full − compute):\n")
    print("| file | decode s | resample+STFT s | Zarr write s | total s | decode % | "
          "compute % | write % |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for fmt in ("wav", "flac"):
        d = _med(results[(fmt, "decode")], "seconds_inner")
        c = _med(results[(fmt, "compute")], "seconds_inner")
        f = _med(results[(fmt, "full")], "seconds_inner")
        parts = (d, max(c - d, 0.0), max(f - c, 0.0))
        tot = sum(parts)
        print(f"| {fmt} | {parts[0]:.2f} | {parts[1]:.2f} | {parts[2]:.2f} | {f:.2f} | "
              + " | ".join(f"{100 * p / tot:.0f}" for p in parts) + " |")

    print("\n**Codecs and dtypes for the stored |STFT|** (WAV source; write = full − "
          "compute of the same round; size on disk of the document):\n")
    print("| variant | median full s | write s | document MiB | vs float32 raw size | "
          "peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    comp = results[("wav", "compute")]
    raw = _med(results[("wav", "full")], "doc_bytes")
    labels = {"full": "float32, no compressor (current default)",
              "zstd": "float32 + zstd (level 0)",
              "blosc": "float32 + Blosc(zstd 5, bitshuffle)",
              "float16": "store_as=\"float16\", no compressor"}
    for stage in ("full", "zstd", "blosc", "float16"):
        rs = results[("wav", stage)]
        write = statistics.median(r["seconds_inner"] - c["seconds_inner"]
                                  for r, c in zip(rs, comp))
        size = _med(rs, "doc_bytes")
        print(f"| {labels[stage]} | {_med(rs, 'seconds_inner'):.2f} | {write:.2f} | "
              f"{size / 2**20:.0f} | {size / raw:.2f} | "
              f"{max(r['peak_rss_mib'] for r in rs):.0f} |")

    # naive librosa path on the short file, extrapolated
    lib, ours = short["librosa"], short["full"]
    scale = long_s / short_s
    lib_peak = max(r["peak_rss_mib"] for r in lib)
    lib_base = statistics.median(r["rss_after_imports_mib"] for r in lib)
    extrap = lib_base + (lib_peak - lib_base) * scale
    our_peak = max(r["peak_rss_mib"] for r in ours)
    speed = statistics.median(a["seconds_inner"] / b["seconds_inner"] for a, b in
                              zip(lib, ours))
    print(f"\n**Naive path** (`librosa.load(path, sr={SR_OUT})` + `abs(librosa.stft)`, "
          f"nothing stored) vs `Sound.process` on the {short_s / 60:g}-minute WAV; "
          f"librosa's peak at {long_s / 60:g} minutes is *extrapolated* (RSS after "
          f"imports + {scale:g} x its growth), not run, to keep the shared machine "
          f"from swapping:\n")
    print("| path | median s | x realtime | peak RSS MiB | RSS growth MiB | "
          f"extrapolated peak at {long_s / 60:g} min MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| librosa load + stft | {_med(lib, 'seconds_inner'):.2f} | "
          f"{short_s / _med(lib, 'seconds_inner'):.0f}x | {lib_peak:.0f} | "
          f"{lib_peak - lib_base:.0f} | {extrap:.0f} |")
    long_full_peak = max(r["peak_rss_mib"] for r in results[("wav", "full")])
    print(f"| zx Sound.process (stores the result) | {_med(ours, 'seconds_inner'):.2f} | "
          f"{short_s / _med(ours, 'seconds_inner'):.0f}x | {our_peak:.0f} | "
          f"{our_peak - statistics.median(r['rss_after_imports_mib'] for r in ours):.0f} | "
          f"{long_full_peak:.0f} (measured) |")
    print(f"\nzounds_xr vs librosa on the short file: {speed:.2f}x faster (median of "
          f"per-round ratios), while also writing the store. Bench wall time "
          f"{total:.0f} s.")


if __name__ == "__main__":
    main()
