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

    from zounds_xr.documents import parts as parts_mod

    if kind == "zstd":
        codecs = [zarr.codecs.ZstdCodec(), zarr.codecs.Crc32cCodec()]
    elif kind == "blosc":
        codecs = [zarr.codecs.BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle"),
                  zarr.codecs.Crc32cCodec()]
    else:
        raise ValueError(kind)
    original = parts_mod._compressors
    parts_mod._compressors = lambda dtype: codecs if dtype.kind in "fc" else original(dtype)


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so that it tracks one stage."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _du(path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def child(stage: str, path: str, chunk: float, store: str | None,
          warmup: str | None = None) -> dict:

    if warmup:  # first-call costs (lazy imports, librosa's caches) on a 2 s file
        with tempfile.TemporaryDirectory(dir=os.path.dirname(store) if store else None) as w:
            _stage(stage, warmup, chunk, os.path.join(w, "warm.zarr"))
    process_peak = _status_mib("VmHWM")  # interpreter, imports and warm-up
    reset = _reset_peak()
    out = _stage(stage, path, chunk, store)
    # the target's figure: the whole process's peak (imports included)
    out["peak_rss_mib"] = max(process_peak, out["stage_peak_rss_mib"])
    if not reset:
        out["stage_peak_rss_mib"] = float("nan")
    return out


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
        out["doc_bytes"] = _du(store)  # the store holds this one document
        spec = Stream(doc_id).spec
        out["shape"] = list(spec.shape)
        out["dtype"] = str(spec.dtype)
        out["seconds_inner"] = elapsed
        # the stage's peak, before the precision check below allocates its own arrays
        out["stage_peak_rss_mib"] = _status_mib("VmHWM")
        if stage == "full":  # what store_as="float16" would do to these values (a cast)
            x = spec.isel(time=slice(0, 60000)).values.astype(np.float32)  # ~23 min
            x16 = x.astype(np.float16).astype(np.float32)
            tiny = np.finfo(np.float16).tiny  # smallest normal float16, 6.1e-5
            normal = x >= tiny
            out["f16_max_rel_err"] = float(np.max(np.abs(x16[normal] - x[normal])
                                                  / x[normal]))
            out["f16_frac_subnormal"] = float(np.mean(x < tiny))
            out["f16_frac_zero"] = float(np.mean((x16 == 0) & (x > 0)))
            out["f16_max_over_peak_db"] = float(20 * np.log10(tiny / x.max()))
            out["max_value"] = float(x.max())
    elif stage in ("librosa", "librosa44k"):
        import librosa

        rss0 = _status_mib("VmRSS")  # after importing librosa too
        t0 = time.perf_counter()
        if stage == "librosa":  # the same pipeline as ours: 11025 Hz, 512/256
            y, _ = librosa.load(path, sr=SR_OUT)
            mag = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, window="hann",
                                      center=False))
        else:  # no resampling: native rate, n_fft 2048, hop 512
            y, _ = librosa.load(path, sr=None)
            mag = np.abs(librosa.stft(y, n_fft=2048, hop_length=512, window="hann",
                                      center=False))
        out["shape"] = list(mag.shape)
    else:
        raise SystemExit(f"unknown stage {stage}")
    out.setdefault("seconds_inner", time.perf_counter() - t0)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_seconds"] = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    out["rss_after_imports_mib"] = rss0
    out.setdefault("stage_peak_rss_mib", _status_mib("VmHWM"))
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
    rounds = args.rounds or (1 if args.quick else 3)
    long_files = {fmt: _signals.signal_path(long_s, fmt) for fmt in ("wav", "flac")}
    short_wav = _signals.signal_path(short_s, "wav")
    plan = [("wav", "decode"), ("wav", "compute"), ("wav", "full"), ("wav", "zstd"),
            ("wav", "blosc"), ("wav", "float16"),
            ("flac", "decode"), ("flac", "compute"), ("flac", "full")]
    results: dict[tuple, list[dict]] = {k: [] for k in plan}
    short: dict[str, list[dict]] = {"full": [], "librosa": [], "librosa44k": []}
    t_start = time.perf_counter()
    for _ in range(rounds):
        for fmt, stage in plan:
            results[(fmt, stage)].append(run_child(stage, long_files[fmt], args.chunk))
        for stage in short:
            short[stage].append(run_child(stage, short_wav, args.chunk))
    total = time.perf_counter() - t_start

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
                                  for r, c in zip(rs, comp, strict=False))
        size = _med(rs, "doc_bytes")
        print(f"| {labels[stage]} | {_med(rs, 'seconds_inner'):.2f} | {write:.2f} | "
              f"{size / 2**20:.0f} | {size / raw:.2f} | "
              f"{max(r['peak_rss_mib'] for r in rs):.0f} |")

    f0 = results[("wav", "full")][0]
    print(f"\nfloat16 precision on these magnitudes (the stored float32 values of the first "
          f"~23 min cast to float16): max relative error {f0['f16_max_rel_err']:.1e} for "
          f"values ≥ 6.1e-5 (float16's smallest normal, {f0['f16_max_over_peak_db']:.0f} dB "
          f"below this signal's peak {f0['max_value']:.1f}); {100 * f0['f16_frac_subnormal']:.2f}% "
          f"of the bins lie below it (subnormal: coarser steps), "
          f"{100 * f0['f16_frac_zero']:.3f}% flush to 0.")

    # naive librosa path on the short file, extrapolated
    ours = short["full"]
    scale = long_s / short_s
    our_peak = max(r["peak_rss_mib"] for r in ours)
    stage_growth = (max(r["stage_peak_rss_mib"] for r in ours)
                    - statistics.median(r["rss_after_imports_mib"] for r in ours))
    print(f"\n**Naive path** (`librosa.load` of the whole file + `abs(librosa.stft)`, "
          f"nothing stored) vs `Sound.process` on the {short_s / 60:g}-minute WAV; "
          f"librosa's peak at {long_s / 60:g} minutes is *extrapolated* (RSS after "
          f"imports and warm-up + {scale:g} x the stage's own peak growth, VmHWM reset "
          f"before it), not run, to keep the shared machine "
          f"from swapping. `librosa.load(sr={SR_OUT})` resamples with soxr HQ (ours: "
          f"VHQ):\n")
    print("| path | median s | x realtime | speed-up of zx (median per round) | peak RSS MiB "
          f"| RSS growth MiB | peak at {long_s / 60:g} min MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for stage, label in (("librosa", f"librosa load(sr={SR_OUT}) + stft {N_FFT}/{HOP}"),
                         ("librosa44k", "librosa load(sr=None) + stft 2048/512 at 44.1 kHz")):
        lib = short[stage]
        lib_peak = max(r["peak_rss_mib"] for r in lib)
        lib_base = statistics.median(r["rss_after_imports_mib"] for r in lib)
        growth = max(r["stage_peak_rss_mib"] for r in lib) - lib_base
        extrap = lib_base + growth * scale
        speed = statistics.median(a["seconds_inner"] / b["seconds_inner"] for a, b in
                                  zip(lib, ours, strict=False))
        print(f"| {label} | {_med(lib, 'seconds_inner'):.2f} | "
              f"{short_s / _med(lib, 'seconds_inner'):.0f}x | {speed:.2f}x | {lib_peak:.0f} | "
              f"{growth:.0f} | {extrap:.0f} (extrapolated) |")
    long_full_peak = max(r["peak_rss_mib"] for r in results[("wav", "full")])
    print(f"| zx Sound.process, resample {SR_OUT} + stft {N_FFT}/{HOP}, stored | "
          f"{_med(ours, 'seconds_inner'):.2f} | "
          f"{short_s / _med(ours, 'seconds_inner'):.0f}x | 1 | {our_peak:.0f} | "
          f"{stage_growth:.0f} | "
          f"{long_full_peak:.0f} (measured) |")
    print(f"\nBench wall time {total:.0f} s.")


if __name__ == "__main__":
    main()
