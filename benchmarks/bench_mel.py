"""Mel spectrogram: zounds_xr vs librosa 0.11, on 10 minutes of 44.1 kHz mono.

Target: ``mel_spectrogram`` at least 2.5x faster than librosa's. Two comparisons, each
timed in interleaved rounds (ratios per round, medians reported):

- **end to end** (audio -> mel): ``librosa.feature.melspectrogram(y=y, sr=44100,
  n_fft=2048, hop_length=512, n_mels=128)`` vs ``zx.mel_spectrogram(zx.stft(samples,
  wscheme=512/2048 samples, wfunc=periodic Hann), n_mels=128)``. librosa centres its
  frames (``center=True`` adds ``n_fft // 2`` zeros at each end: 4 frames more);
  the work is otherwise the same.
- **from the complex STFT** (``D``, computed once outside the timing): librosa needs
  the power first, ``melspectrogram(S=np.abs(D) ** 2, sr=44100, n_fft=2048)``;
  zounds_xr takes ``D`` itself (``mel_spectrogram(D)``, power 2). A third row gives
  librosa's matrix product alone (``S`` precomputed) as the floor of its method.

Both sides run on float32 audio (complex64 spectra, float32 mels). Usage::

    python benchmarks/bench_mel.py [--minutes 10] [--rounds 5]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _harness import median, ratio, rounds, table  # noqa: E402

import zounds_xr as zx  # noqa: E402

SR = 44100
N_FFT, HOP, N_MELS = 2048, 512, 128


def _signal(minutes: float) -> np.ndarray:
    n = int(minutes * 60 * SR)
    rng = np.random.default_rng(0)
    t = np.arange(n, dtype=np.float64) / SR
    chirp = np.sin(2 * np.pi * (100 + 40 * t) * t)  # sweeps up through the mel bands
    y = 0.1 * rng.standard_normal(n) + 0.3 * np.sin(2 * np.pi * 440 * t) + 0.3 * chirp
    return y.astype(np.float32)


def main(argv=None) -> dict:
    import librosa

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    y = _signal(args.minutes)
    samples = zx.AudioSamples(y, zx.SR44100())
    wscheme = zx.SR44100() * (HOP, N_FFT)  # hop and window in samples
    wfunc = zx.HanningWindowingFunc(periodic=True)

    def ours_e2e():
        return zx.mel_spectrogram(zx.stft(samples, wscheme=wscheme, wfunc=wfunc),
                                  n_mels=N_MELS)

    def librosa_e2e():
        return librosa.feature.melspectrogram(y=y, sr=SR, n_fft=N_FFT, hop_length=HOP,
                                              n_mels=N_MELS)

    spec = zx.stft(samples, wscheme=wscheme, wfunc=wfunc)
    d = np.ascontiguousarray(spec.values.T)  # librosa's (frequency, time) layout
    s_power = np.abs(d) ** 2

    def ours_s():
        return zx.mel_spectrogram(spec, n_mels=N_MELS)

    def librosa_s():
        return librosa.feature.melspectrogram(S=np.abs(d) ** 2, sr=SR, n_fft=N_FFT,
                                              n_mels=N_MELS)

    def librosa_s_power():
        return librosa.feature.melspectrogram(S=s_power, sr=SR, n_fft=N_FFT, n_mels=N_MELS)

    # agreement (same frames): float32 relative error against librosa on D
    ref = librosa_s()
    err = float(np.max(np.abs(ours_s().values.T - ref)) / np.max(ref))

    times = rounds({"ours_e2e": ours_e2e, "librosa_e2e": librosa_e2e, "ours_s": ours_s,
                    "librosa_s": librosa_s, "librosa_s_power": librosa_s_power},
                   n=args.rounds)
    rows = [
        ["end to end (audio -> mel)", median(times["librosa_e2e"]), median(times["ours_e2e"]),
         ratio(times, "librosa_e2e", "ours_e2e")],
        ["from complex STFT D", median(times["librosa_s"]), median(times["ours_s"]),
         ratio(times, "librosa_s", "ours_s")],
        ["librosa from S=|D|^2 (precomputed) vs ours from D", median(times["librosa_s_power"]),
         median(times["ours_s"]), ratio(times, "librosa_s_power", "ours_s")],
    ]
    print(f"mel spectrogram, {args.minutes:g} min of {SR} Hz float32 mono, n_fft={N_FFT}, "
          f"hop={HOP}, n_mels={N_MELS}; {args.rounds} rounds; {platform.processor() or ''} "
          f"{os.cpu_count()} cpus; max rel. error vs librosa {err:.2e}\n")
    print(table(["comparison", "librosa s (median)", "zounds_xr s (median)",
                 "speed-up (median of per-round ratios)"], rows))
    print("\nper-round ratios:")
    for slow, fast in [("librosa_e2e", "ours_e2e"), ("librosa_s", "ours_s"),
                       ("librosa_s_power", "ours_s")]:
        print(f"  {slow}/{fast}: " + ", ".join(
            f"{a / b:.2f}" for a, b in zip(times[slow], times[fast])))
    return {"times": times, "error": err}


if __name__ == "__main__":
    main()
