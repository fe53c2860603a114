"""|STFT|: zounds_xr's blocked kernels vs librosa, torch.stft and the block-FFT floor.

The issue's targets (issue 15), on |STFT| of 10 minutes of 44.1 kHz mono float32,
n_fft 2048, hop 512, measured in the same process:

- numpy input at least 6x ``np.abs(librosa.stft(y, center=False))``;
- dask input (threaded scheduler, 2 threads) at least 9x librosa; 2 threads clearly
  faster than 1;
- within 2x of the block-FFT floor: window + rFFT + ``abs`` of 1 MiB blocks of frames
  into a preallocated output, in a bare loop on one thread, with the fastest FFT
  (torch's when installed), measured here in the same run.

Every contender is warmed up once, then timed in ``--rounds`` interleaved rounds; ratios
are taken per round and their medians reported (the machine is shared: say so when a
figure is marginal). CPU time of the process is reported too.

Usage::

    python benchmarks/bench_stft.py [--minutes 10] [--rounds 5] [--quick]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import dask
import numpy as np
import scipy
import scipy.fft

sys.path.insert(0, os.path.dirname(__file__))
import zounds_xr as zx  # noqa: E402
from zounds_xr.spectral import fft_backend  # noqa: E402

N_FFT, HOP = 2048, 512


def _signal(minutes: float, sr: int) -> np.ndarray:
    n = int(minutes * 60 * sr)
    rng = np.random.default_rng(0)
    t = np.arange(n, dtype=np.float64) / sr
    y = 0.1 * rng.standard_normal(n) + 0.5 * np.sin(2 * np.pi * 440 * t)
    return y.astype(np.float32)


def block_floor(y: np.ndarray, window: np.ndarray, backend: str, out: np.ndarray) -> None:
    """The floor: window + rFFT + abs, 1 MiB of frames a block, one thread, no framework."""
    bf = max(1, 2**20 // (N_FFT * 4))
    nf = out.shape[0]
    buf = np.empty((bf, N_FFT), np.float32)
    spec = np.empty((bf, N_FFT // 2 + 1), np.complex64)
    if backend == "torch":
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        tbuf, tspec = torch.from_numpy(buf), torch.from_numpy(spec)
    try:
        for f0 in range(0, nf, bf):
            n = min(bf, nf - f0)
            frames = np.lib.stride_tricks.sliding_window_view(
                y[f0 * HOP:(f0 + n - 1) * HOP + N_FFT], N_FFT)[::HOP]
            np.multiply(frames, window, out=buf[:n])
            if backend == "torch":
                torch.fft.rfft(tbuf[:n], dim=-1, out=tspec[:n])
                x = spec[:n]
            else:
                x = scipy.fft.rfft(buf[:n], axis=-1, workers=1, overwrite_x=True)
            np.abs(x, out=out[f0:f0 + n])
    finally:
        if backend == "torch":
            torch.set_num_threads(threads)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=2**20,
                        help="dask chunk (samples) of the input")
    parser.add_argument("--quick", action="store_true", help="1 minute, 2 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes, args.rounds = 1.0, 2

    import librosa

    sr = zx.SR44100()
    y = _signal(args.minutes, int(sr))
    audio = zx.AudioSamples(y, sr)
    lazy = audio.chunk({"time": args.chunk})
    scheme = sr * (HOP, N_FFT)
    hann = zx.HanningWindowingFunc(periodic=True)
    window = hann(N_FFT).astype(np.float32)
    nf_full = (len(y) - N_FFT) // HOP + 1
    floor_out = np.empty((nf_full, N_FFT // 2 + 1), np.float32)
    backends = ["scipy"] + (["torch"] if fft_backend._torch() is not None else [])
    default = zx.fft_backend()

    def with_backend(name, fn):
        def run():
            previous = zx.set_fft_backend(name)
            try:
                return fn()
            finally:
                zx.set_fft_backend(previous)
        return run

    def run_librosa():
        return np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, window="hann",
                                   center=False))

    def run_numpy(workers=None):
        return lambda: zx.stft(audio, scheme, hann, magnitude=True, workers=workers).data

    def run_dask_compute(threads):
        return lambda: zx.stft(lazy, scheme, hann, magnitude=True).data.compute(
            scheduler="threads", num_workers=threads)

    def run_dask_materialize(threads):
        return lambda: zx.materialize(zx.stft(lazy, scheme, hann, magnitude=True),
                                      scheduler="threads", num_workers=threads).data

    contenders = {
        "librosa.stft(center=False) + abs": run_librosa,
        f"zx.stft(magnitude=True), numpy, 2 threads [{default}]": run_numpy(),
        f"zx.stft(magnitude=True), numpy, 1 thread [{default}]": run_numpy(1),
        f"zx.stft(magnitude=True), dask, 2 threads, .compute() [{default}]":
            run_dask_compute(2),
        f"zx.stft(magnitude=True), dask, 2 threads, zx.materialize [{default}]":
            run_dask_materialize(2),
        f"zx.stft(magnitude=True), dask, 1 thread, zx.materialize [{default}]":
            run_dask_materialize(1),
    }
    for name in backends:
        if name != default:
            contenders[f"zx.stft(magnitude=True), numpy, 2 threads [{name}]"] = \
                with_backend(name, run_numpy())
            contenders[f"zx.stft(magnitude=True), numpy, 1 thread [{name}]"] = \
                with_backend(name, run_numpy(1))
    for name in backends:
        contenders[f"block-FFT floor (window + rFFT + abs), 1 thread [{name}]"] = \
            (lambda name=name: block_floor(y, window, name, floor_out))
    if "torch" in backends:
        import torch

        ty, twin = torch.from_numpy(y), torch.hann_window(N_FFT, periodic=True)

        def run_torch():
            return torch.stft(ty, N_FFT, hop_length=HOP, window=twin, center=False,
                              return_complex=True).abs().numpy()

        contenders[f"torch.stft(center=False).abs(), {torch.get_num_threads()} threads"] = \
            run_torch

    # correctness (and warm-up): every zounds_xr contender against librosa
    ref = run_librosa()
    for name, fn in contenders.items():
        out = fn()
        if name.startswith("zx."):
            out = np.asarray(out)[:ref.shape[1]]
            err = float(np.max(np.abs(out - ref.T)) / np.max(ref))
            assert err < 1e-5, (name, err)
    del ref

    load_before = os.getloadavg()[0]
    times = {k: [] for k in contenders}
    cpu = {k: [] for k in contenders}
    for _ in range(args.rounds):
        for name, fn in contenders.items():
            c0, t0 = time.process_time(), time.perf_counter()
            out = fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            del out
    base_name = "librosa.stft(center=False) + abs"
    floor_name = f"block-FFT floor (window + rFFT + abs), 1 thread [{backends[-1]}]"

    def ratio(a, b):
        return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))

    cpu_name = platform.processor() or platform.machine()
    print(f"## \\|STFT\\| (bench_stft)\n\n\\|STFT\\| of {args.minutes:g} min at 44.1 kHz "
          f"mono float32, n_fft {N_FFT}, hop {HOP}; {args.rounds} interleaved rounds; dask chunk "
          f"{args.chunk} samples; {os.cpu_count()} CPUs ({cpu_name}) shared with other "
          f"work (1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} "
          f"after); FFT backend **{default}** (\"auto\": torch's when the process has "
          f"imported torch, as this one has; scipy's otherwise: the [scipy] rows); "
          f"numpy {np.__version__}, scipy {scipy.__version__}, dask "
          f"{dask.__version__}, librosa {librosa.__version__}.\n")
    print("| contender | wall s (median) | speed-up vs librosa (median of rounds) | min | max "
          "| CPU s (median) | CPU-time speed-up vs librosa | time / floor |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, ts in times.items():
        rs = [b / t for b, t in zip(times[base_name], ts, strict=True)]
        cs = [b / t for b, t in zip(cpu[base_name], cpu[name], strict=True)]
        label = name.replace("|", "\\|")
        print(f"| {label} | {statistics.median(ts):.3f} | "
              f"{statistics.median(rs):.2f}x | {min(rs):.2f}x | {max(rs):.2f}x | "
              f"{statistics.median(cpu[name]):.3f} | {statistics.median(cs):.2f}x | "
              f"{ratio(name, floor_name):.2f}x |")

    numpy2 = f"zx.stft(magnitude=True), numpy, 2 threads [{default}]"
    numpy1 = f"zx.stft(magnitude=True), numpy, 1 thread [{default}]"
    dask2 = f"zx.stft(magnitude=True), dask, 2 threads, zx.materialize [{default}]"
    dask1 = f"zx.stft(magnitude=True), dask, 1 thread, zx.materialize [{default}]"
    goals = [
        ("\\|STFT\\| numpy input vs librosa", ratio(base_name, numpy2), "≥ 6x", 6.0),
        ("\\|STFT\\| dask, 2 threads vs librosa", ratio(base_name, dask2), "≥ 9x", 9.0),
        ("dask: 2 threads vs 1 thread", ratio(dask1, dask2), "clearly > 1x", 1.3),
        ("numpy, 1 thread: time / block-FFT floor", ratio(numpy1, floor_name), "≤ 2x",
         None),
    ]
    print("\n| goal | measured | target | verdict |\n|---|---:|---|---|")
    for label, value, target, need in goals:
        ok = value <= 2.0 if need is None else value >= need
        print(f"| {label} | {value:.2f}x | {target} | {'met' if ok else 'MISSED'} |")
    if len(backends) > 1 and default == "torch":
        scipy1 = "zx.stft(magnitude=True), numpy, 1 thread [scipy]"
        scipy_floor = floor_name.replace("[torch]", "[scipy]")
        print(f"\nFFT backends (time with scipy.fft / time with torch.fft, median of rounds): "
              f"zx.stft 1 thread {ratio(scipy1, numpy1):.2f}x, block floor "
              f"{ratio(scipy_floor, floor_name):.2f}x (above 1: torch faster).")
    return {name: statistics.median(ts) for name, ts in times.items()}


if __name__ == "__main__":
    main()
