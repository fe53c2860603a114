"""STFT magnitude side by side with torch.stft (CPU): zounds_xr, librosa, torch, rfft floor.

Same signal and parameters as ``bench_stft.py`` (10 minutes of 44.1 kHz mono float32,
seeded noise plus a 440 Hz tone; n_fft 2048, hop 512, periodic Hann, no centring,
magnitude). ``torch.stft(..., center=False, return_complex=True).abs()`` runs with
torch's intra-op threads set to the machine's cores and to 1; the input tensor is made
once (``torch.from_numpy``, no copy) and the magnitude is left as a tensor (converting
it back is free: ``.numpy()`` shares memory). Rounds are interleaved; ratios per round
against ``abs(librosa.stft(center=False))``, medians quoted, with the issue's targets for
zounds_xr (3x on numpy input, 4x on dask input with 2 threads).

    .venv/bin/python benchmarks/bench_torch_stft.py [--quick] [--minutes 10] [--rounds 5]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

import dask
import numpy as np
import scipy.fft

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import zounds_xr as zx  # noqa: E402

TARGETS = {"zx.stft(magnitude=True), numpy": 3.0,
           "zx.stft(magnitude=True), dask, 2 threads": 4.0}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 minute, 2 rounds")
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--n-fft", type=int, default=2048)
    parser.add_argument("--hop", type=int, default=512)
    parser.add_argument("--chunk", type=int, default=2**20, help="dask chunk (samples)")
    args = parser.parse_args(argv)
    minutes = args.minutes or (1.0 if args.quick else 10.0)
    rounds = args.rounds or (2 if args.quick else 5)

    import librosa
    import torch

    import _signals

    cores = os.cpu_count() or 1
    sr = zx.SR44100()
    y = _signals.tone_and_noise(minutes, int(sr))
    audio = zx.AudioSamples(y, sr)
    lazy = audio.chunk({"time": args.chunk})
    scheme = sr * (args.hop, args.n_fft)
    hann = zx.HanningWindowingFunc(periodic=True)
    window = hann(args.n_fft).astype(np.float32)
    frames = np.ascontiguousarray(
        np.lib.stride_tricks.sliding_window_view(y, args.n_fft)[::args.hop] * window)
    ty = torch.from_numpy(y)
    twin = torch.hann_window(args.n_fft, periodic=True, dtype=torch.float32)

    def run_torch(threads):
        def f():
            torch.set_num_threads(threads)
            return torch.stft(ty, n_fft=args.n_fft, hop_length=args.hop, window=twin,
                              center=False, return_complex=True).abs()
        return f

    contenders = {
        "librosa.stft(center=False) + abs": lambda: np.abs(librosa.stft(
            y, n_fft=args.n_fft, hop_length=args.hop, window="hann", center=False)),
        "zx.stft(magnitude=True), numpy": lambda: zx.stft(audio, scheme, hann,
                                                          magnitude=True).data,
        "zx.stft(magnitude=True), dask, 2 threads": lambda: zx.stft(
            lazy, scheme, hann, magnitude=True).data.compute(scheduler="threads",
                                                            num_workers=2),
        f"torch.stft(center=False).abs(), {cores} threads": run_torch(cores),
        "torch.stft(center=False).abs(), 1 thread": run_torch(1),
        "rfft floor (scipy, 1 worker, frames pre-windowed)": lambda: scipy.fft.rfft(
            frames, axis=-1, workers=1),
    }
    # correctness: every contender agrees with librosa on librosa's frames
    ref = contenders["librosa.stft(center=False) + abs"]()
    for name, fn in contenders.items():
        out = fn()
        if name.startswith("rfft"):
            out = np.abs(out)
        out = out.numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
        if name.startswith("librosa") or name.startswith("torch"):
            out = out.T
        np.testing.assert_allclose(out[:ref.shape[1]], ref.T, rtol=1e-3,
                                   atol=1e-4 * ref.max(), err_msg=name)
    del ref

    times = {k: [] for k in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            out = fn()
            times[name].append(time.perf_counter() - t0)
            del out
    torch.set_num_threads(cores)
    base = times["librosa.stft(center=False) + abs"]
    floor = times["rfft floor (scipy, 1 worker, frames pre-windowed)"]
    print(f"## |STFT| side by side with torch.stft on CPU (bench_torch_stft)\n")
    print(f"{minutes:g} min of 44.1 kHz mono float32 (bench_stft.py's signal), n_fft "
          f"{args.n_fft}, hop {args.hop}, periodic Hann, no centring, magnitude; {rounds} "
          f"interleaved rounds; {cores} CPUs shared with other work (load "
          f"{os.getloadavg()[0]:.1f}); dask chunk {args.chunk} samples; torch "
          f"{torch.__version__}, librosa {librosa.__version__}, numpy {np.__version__}, "
          f"scipy {scipy.__version__}, dask {dask.__version__}.\n")
    print("| contender | median s | speed-up vs librosa (median; min–max) | vs rfft floor "
          "| target |")
    print("|---|---:|---:|---:|---|")
    for name, ts in times.items():
        ratios = [b / t for b, t in zip(base, ts)]
        r = statistics.median(ratios)
        to_floor = statistics.median(t / f for t, f in zip(ts, floor))
        target = ""
        if name in TARGETS:
            target = f"≥{TARGETS[name]:g}x: {'met' if r >= TARGETS[name] else 'MISSED'}"
        print(f"| {name} | {statistics.median(ts):.3f} | {r:.2f}x ({min(ratios):.2f}–"
              f"{max(ratios):.2f}) | {to_floor:.2f}x | {target} |")
    zx_t = times["zx.stft(magnitude=True), numpy"]
    tt = times[f"torch.stft(center=False).abs(), {cores} threads"]
    print(f"\nzounds_xr (numpy) vs torch.stft ({cores} threads): "
          f"{statistics.median(t / z for t, z in zip(tt, zx_t)):.2f}x (> 1: zounds_xr "
          f"faster). 'vs rfft floor' = time / the floor's time in the same round.")


if __name__ == "__main__":
    main()
