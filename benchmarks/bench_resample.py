"""Resampler candidates side by side: in-band SNR and speed (times real time).

Run:  .venv/bin/python benchmarks/bench_resample.py [--seconds 60] [--repeat 3]

Candidates: soxr HQ and VHQ (python-soxr, float32 and float64), scipy's polyphase
``resample_poly`` with its default Kaiser filter and with a long Kaiser filter designed
for ~140 dB, and ``zounds_xr.resample`` itself (numpy and dask-backed input).

Quality: a tone set at the input rate (in-band tones up to 0.45 or 0.8 x the lower
Nyquist, at unrelated frequencies, plus out-of-band tones when downsampling, which must
vanish) is resampled and compared with the in-band tones synthesized analytically at the
output rate; SNR = in-band reference power / error power, 0.5 s trimmed at each end.
Speed: seconds of audio per second of wall time for a mono signal (``--seconds`` long),
best of ``--repeat`` runs, one thread.
"""
from __future__ import annotations

import argparse
import math
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.signal as sps  # noqa: E402
import soxr  # noqa: E402

import zounds_xr as zx  # noqa: E402

CASES = [(44100, 11025), (11025, 22050), (44100, 48000)]


def tones(freqs, rate: int, n: int, *, amplitude: float, dtype=np.float64) -> np.ndarray:
    """Sum of sines at ``freqs`` (the k-th with phase 0.7 k rad), each of ``amplitude``."""
    i = np.arange(n, dtype=np.float64)
    out = np.zeros(n)
    for k, f in enumerate(freqs):
        out += amplitude * np.sin(2 * np.pi * np.mod(f * i, rate) / rate + 0.7 * k)
    return out.astype(dtype)


def tone_set(old: int, new: int, width: float):
    """In-band tones up to ``width`` x the lower Nyquist, out-of-band ones to remove."""
    nyq = min(old, new) / 2
    in_band = [f for f in (55.0, 261.6, 440.0, 1013.0, 2017.3, 3001.0, 7019.0, 12007.0)
               if f < width * nyq] + [width * nyq]
    out_band = [f for f in (1.15 * nyq, 1.6 * nyq, 0.95 * old / 2) if new < old and f < old / 2]
    return in_band, out_band


def snr_db(y: np.ndarray, ref: np.ndarray, trim: int) -> float:
    n = min(len(y), len(ref))
    err = y[trim:n - trim].astype(np.float64) - ref[trim:n - trim]
    return 10 * math.log10(np.sum(ref[trim:n - trim] ** 2) / max(np.sum(err ** 2), 1e-300))


def long_kaiser(up: int, down: int, attenuation: float = 140.0):
    """A Kaiser lowpass for resample_poly: passband to 0.8 x the lower Nyquist."""
    g = math.gcd(up, down)
    up, down = up // g, down // g
    m = max(up, down)
    # normalized to the Nyquist of the upsampled signal
    edge_pass, edge_stop = 0.8 / m, 1.0 / m
    width = edge_stop - edge_pass
    numtaps, beta = sps.kaiserord(attenuation, width)
    numtaps |= 1
    # unit DC gain: resample_poly multiplies the coefficients by ``up`` itself
    return sps.firwin(numtaps, (edge_pass + edge_stop) / 2, window=("kaiser", beta))


def candidates(old: int, new: int):
    g = math.gcd(old, new)
    up, down = new // g, old // g
    h = long_kaiser(up, down)

    def zx_numpy(x):
        return zx.resample(zx.AudioSamples(x, zx.audio_sample_rate(old)), new).values

    def zx_dask(x):
        s = zx.AudioSamples(x, zx.audio_sample_rate(old)).chunk({"time": old * 10})
        return zx.resample(s, new).data.compute(scheduler="sync")

    return {
        "soxr HQ": lambda x: soxr.resample(x, old, new, quality="HQ"),
        "soxr VHQ": lambda x: soxr.resample(x, old, new, quality="VHQ"),
        "resample_poly default": lambda x: sps.resample_poly(x, up, down),
        f"resample_poly kaiser {len(h)} taps": lambda x: sps.resample_poly(x, up, down,
                                                                           window=h),
        "zx.resample (numpy)": zx_numpy,
        "zx.resample (dask, 10 s blocks)": zx_dask,
    }


def best_time(fn, x, repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'case':>14} {'candidate':<34} {'dtype':>7} {'SNR<.45':>8} {'SNR<.8':>7} "
          f"{'x realtime':>11} {'vs soxr VHQ':>11}")
    for old, new in CASES:
        n_q = old * 4
        trim = new // 2
        x_speed64 = np.random.default_rng(0).uniform(-1, 1, int(old * args.seconds))
        rows = []
        for dtype in (np.float64, np.float32):
            xs = x_speed64.astype(dtype)
            for name, fn in candidates(old, new).items():
                snrs = []
                for width in (0.45, 0.8):
                    in_band, out_band = tone_set(old, new, width)
                    amplitude = 1.0 / (len(in_band) + len(out_band))
                    x = tones(in_band + out_band, old, n_q, amplitude=amplitude, dtype=dtype)
                    # the reference: the in-band tones alone, synthesized at the output rate
                    ref = tones(in_band, new, math.ceil(n_q * new / old), amplitude=amplitude)
                    snrs.append(snr_db(np.asarray(fn(x)), ref, trim))
                t = best_time(fn, xs, args.repeat)
                rows.append((name, np.dtype(dtype).name, *snrs, args.seconds / t))
        base = {r[1]: r[4] for r in rows if r[0] == "soxr VHQ"}
        for name, dtype, snr_half, snr_full, speed in rows:
            print(f"{old:>6}->{new:<6} {name:<34} {dtype:>7} {snr_half:8.1f} {snr_full:7.1f} "
                  f"{speed:11.0f} {speed / base[dtype]:10.2f}x", flush=True)


if __name__ == "__main__":
    main()
