"""STFT magnitude: zounds_xr vs librosa, numpy and dask input.

The issue's target: |STFT| of 10 minutes of 44.1 kHz mono (n_fft 2048, hop 512) at
least 3x faster than ``np.abs(librosa.stft(...))`` on numpy input and 4x faster on dask
input (threaded scheduler), measured in the same run.

Usage::

    python benchmarks/bench_stft.py [--minutes 10] [--rounds 5] [--chunk 1048576]

Generates its own signal (seeded noise plus tones, float32), warms every contender
up once (librosa's first call builds caches), then times ``--rounds`` rounds, each
timing every contender once in turn; ratios are taken per round and their medians
reported, with an ``rfft``-only floor (``scipy.fft.rfft`` of the already windowed frames):
the cost of the transforms alone. CPU time (all threads of the process) is reported
too: on a shared machine wall-clock ratios are noisy, CPU time shows the work done.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import dask
import dask.array
import numpy as np
import scipy.fft

import zounds_xr as zx


def _signal(minutes: float, sr: int) -> np.ndarray:
    n = int(minutes * 60 * sr)
    rng = np.random.default_rng(0)
    t = np.arange(n, dtype=np.float64) / sr
    y = 0.1 * rng.standard_normal(n) + 0.5 * np.sin(2 * np.pi * 440 * t)
    return y.astype(np.float32)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n-fft", type=int, default=2048)
    parser.add_argument("--hop", type=int, default=512)
    parser.add_argument("--chunk", type=int, default=2**20,
                        help="dask chunk (samples) of the input")
    args = parser.parse_args(argv)

    import librosa

    sr = zx.SR44100()
    y = _signal(args.minutes, int(sr))
    audio = zx.AudioSamples(y, sr)
    lazy = audio.chunk({"time": args.chunk})
    scheme = sr * (args.hop, args.n_fft)
    hann = zx.HanningWindowingFunc(periodic=True)
    window = hann(args.n_fft).astype(np.float32)
    frames = np.ascontiguousarray(
        np.lib.stride_tricks.sliding_window_view(y, args.n_fft)[::args.hop] * window)

    def run_librosa():
        return np.abs(librosa.stft(y, n_fft=args.n_fft, hop_length=args.hop, window="hann",
                                   center=False))

    def run_librosa_centered():
        return np.abs(librosa.stft(y, n_fft=args.n_fft, hop_length=args.hop, window="hann"))

    def run_numpy():
        return zx.stft(audio, scheme, hann, magnitude=True).data

    def run_numpy_one_thread():
        return zx.stft(audio, scheme, hann, magnitude=True, workers=1).data

    def run_numpy_complex_abs():
        return np.abs(zx.stft(audio, scheme, hann).data)

    def run_dask():
        spec = zx.stft(lazy, scheme, hann, magnitude=True)
        return spec.data.compute(scheduler="threads")

    def run_dask_store():
        spec = zx.stft(lazy, scheme, hann, magnitude=True).data
        out = np.empty(spec.shape, spec.dtype)
        dask.array.store(spec, out, scheduler="threads", lock=False)
        return out

    def run_floor():
        return scipy.fft.rfft(frames, axis=-1, workers=1)

    def run_floor_all():
        return scipy.fft.rfft(frames, axis=-1, workers=-1)

    torch_contenders = {}
    try:
        import torch
    except ImportError:  # the [learn] extra is not installed: no torch rows
        torch = None
    if torch is not None:
        ty, twin = torch.from_numpy(y), torch.hann_window(args.n_fft, periodic=True)

        def run_torch():
            return torch.stft(ty, args.n_fft, hop_length=args.hop, window=twin, center=False,
                              return_complex=True).abs().numpy()

        torch_contenders[f"torch.stft(center=False).abs(), CPU, "
                         f"{torch.get_num_threads()} threads"] = run_torch

    contenders = {
        "librosa.stft(center=False) + abs": run_librosa,
        "librosa.stft(center=True) + abs": run_librosa_centered,
        "zx.stft(magnitude=True), numpy (all cores)": run_numpy,
        "zx.stft(magnitude=True, workers=1), numpy": run_numpy_one_thread,
        "abs(zx.stft()), numpy": run_numpy_complex_abs,
        "zx.stft(magnitude=True), dask threads, .compute()": run_dask,
        "zx.stft(magnitude=True), dask threads, da.store into numpy": run_dask_store,
        "rfft floor (scipy, 1 worker)": run_floor,
        "rfft floor (scipy, all cores)": run_floor_all,
        **torch_contenders,
    }
    # correctness check and warm-up
    ref = run_librosa()
    ours = run_numpy()
    assert ours.shape[0] >= ref.shape[1]
    np.testing.assert_allclose(ours[:ref.shape[1]], ref.T, rtol=1e-3, atol=1e-4 * ref.max())
    np.testing.assert_allclose(run_dask()[:ref.shape[1]], ref.T, rtol=1e-3,
                               atol=1e-4 * ref.max())
    del ref, ours
    for fn in contenders.values():
        fn()

    load_before = os.getloadavg()[0]
    times: dict[str, list[float]] = {k: [] for k in contenders}
    cpu: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(args.rounds):
        for name, fn in contenders.items():
            c0, t0 = time.process_time(), time.perf_counter()
            out = fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            del out
    base = times["librosa.stft(center=False) + abs"]
    cpu_base = cpu["librosa.stft(center=False) + abs"]
    rows = []
    for name, ts in times.items():
        ratios = [b / t for b, t in zip(base, ts)]
        cpu_ratios = [b / t for b, t in zip(cpu_base, cpu[name])]
        rows.append((name, statistics.median(ts), statistics.median(ratios), min(ratios),
                     max(ratios), statistics.median(cpu[name]), statistics.median(cpu_ratios)))

    print(f"\n|STFT| of {args.minutes:g} min at 44.1 kHz mono float32, n_fft {args.n_fft}, "
          f"hop {args.hop}; {args.rounds} rounds; dask chunk {args.chunk} samples; "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
          f"dask {dask.__version__}, numpy {np.__version__}, scipy {scipy.__version__}, "
          f"librosa {librosa.__version__}; 1-min load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after\n")
    targets = {"zx.stft(magnitude=True), numpy (all cores)": 3.0,
               "zx.stft(magnitude=True), dask threads, .compute()": 4.0}
    print("| contender | wall s (median) | wall speed-up vs librosa (median of rounds) "
          "| min | max | CPU s (median) | CPU-time ratio vs librosa | target |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, t, r, lo, hi, c, cr in rows:
        goal = targets.get(name)
        verdict = "" if goal is None else f"≥{goal:g}x: {'met' if r >= goal else 'MISSED'}"
        print(f"| {name} | {t:.3f} | {r:.2f}x | {lo:.2f}x | {hi:.2f}x | {c:.3f} | {cr:.2f}x "
              f"| {verdict} |")
    return {name: (t, r) for name, t, r, *_ in rows}


if __name__ == "__main__":
    main()
