"""Generated test signals for the benchmarks, written once into ``benchmarks/_data/``.

Everything is synthesized from a seed (no downloads), written block by block (bounded
memory, and OGG Vorbis must be written in blocks: python-soundfile#426), to a temporary
name first and renamed when complete, so that an interrupted run or two engineers
running the suite at once never see a half-written file. ``benchmarks/_data/`` is
git-ignored; delete it to regenerate.

Content (44.1 kHz mono unless told): per 10 s segment a different mix of a few
harmonic tones with vibrato, a log chirp, pink-ish noise and short clicks, at varying
levels, so that compressors (FLAC, Vorbis) and spectra see realistic, varied material
rather than a stationary tone.

    python benchmarks/_signals.py            # make the files the full suite needs
    python benchmarks/_signals.py --quick    # the short ones only
"""
from __future__ import annotations

import argparse
import os
import pathlib

import numpy as np
import soundfile as sf

HERE = pathlib.Path(__file__).resolve().parent
DATA = pathlib.Path(os.environ.get("ZX_BENCH_DATA", HERE / "_data"))
#: bump when the generator changes, so cached files are regenerated
VERSION = 1
RATE = 44100
SEGMENT = 10  # seconds of one content segment
#: distinct segments; longer signals cycle through them at varying gains (generating
#: 2 hours of fresh content would take minutes and measure nothing more)
POOL = 64
FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}


def segment(index: int, rate: int = RATE, seconds: float = SEGMENT, seed: int = 0
            ) -> np.ndarray:
    """Segment ``index`` of the generated signal (float32 in [-1, 1])."""
    n = int(round(seconds * rate))
    rng = np.random.default_rng((seed, index))
    t = (np.arange(n) / rate).astype(np.float64)
    out = np.zeros(n)
    # harmonic tones with vibrato
    for _ in range(rng.integers(1, 4)):
        f0 = rng.uniform(80, 1000)
        vib = 1 + 0.01 * np.sin(2 * np.pi * rng.uniform(3, 7) * t)
        phase = 2 * np.pi * f0 * np.cumsum(vib) / rate
        for h in range(1, rng.integers(2, 9)):
            if f0 * h < rate / 2 * 0.9:
                out += rng.uniform(0.02, 0.2) / h * np.sin(h * phase)
    # log chirp across the band
    f_lo, f_hi = sorted(rng.uniform(50, rate / 2 * 0.8, size=2))
    k = np.log(f_hi / f_lo) / seconds
    out += 0.05 * np.sin(2 * np.pi * f_lo * (np.exp(k * t) - 1) / k)
    # pink-ish noise (first-order low-pass of white noise), level varies per segment
    white = rng.standard_normal(n)
    alpha = rng.uniform(0.5, 0.99)
    pink = np.empty(n)
    # vectorised first-order IIR via scipy would be faster; lfilter is fine here
    from scipy.signal import lfilter

    pink[:] = lfilter([1 - alpha], [1, -alpha], white)
    out += rng.uniform(0.005, 0.1) * pink / (np.std(pink) + 1e-12)
    # clicks
    for pos in rng.integers(0, n - 64, size=rng.integers(0, 20)):
        out[pos:pos + 64] += rng.uniform(-0.3, 0.3) * np.hanning(64)
    # slow amplitude envelope
    out *= 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 6))
    return np.clip(out, -0.99, 0.99).astype(np.float32)


def generate(path: pathlib.Path, seconds: float, fmt: str, rate: int = RATE, seed: int = 0
             ) -> pathlib.Path:
    """Write ``seconds`` of the generated signal to ``path`` (block by block)."""
    format_, subtype = FORMATS[fmt]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    total = int(round(seconds * rate))
    written, i = 0, 0
    pool: dict[int, np.ndarray] = {}
    gains = np.random.default_rng((seed, 1)).uniform(0.5, 1.0, size=POOL + 1)
    try:
        with sf.SoundFile(tmp, "w", rate, 1, format=format_, subtype=subtype) as f:
            while written < total:
                k = i % POOL
                if k not in pool:
                    pool[k] = segment(k, rate, SEGMENT, seed)
                gain = 1.0 if i < POOL else gains[(i * 7) % (POOL + 1)]
                block = (pool[k] * np.float32(gain))[:total - written]
                # one segment (10 s) a write: Vorbis crashes on writes of > ~45 s
                f.write(block)
                written += len(block)
                i += 1
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def signal_path(seconds: float, fmt: str = "wav", rate: int = RATE, seed: int = 0
                ) -> pathlib.Path:
    """Path of the cached generated file (created on first use)."""
    name = f"signal_v{VERSION}_s{seed}_{rate}hz_{seconds:g}s.{fmt}"
    path = DATA / name
    if not path.exists():
        generate(path, seconds, fmt, rate, seed)
    return path


def corpus_dir(n_files: int = 50, seconds: float = 20, rate: int = RATE) -> pathlib.Path:
    """A folder of ``n_files`` generated files of ``seconds`` each (varied content:
    every file has its own seed), WAV and FLAC alternating."""
    folder = DATA / f"corpus_v{VERSION}_{n_files}x{seconds:g}s_{rate}hz"
    done = folder / ".complete"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_files):
        fmt = "wav" if i % 2 == 0 else "flac"
        path = folder / f"item_{i:03d}.{fmt}"
        if not path.exists():
            generate(path, seconds, fmt, rate, seed=1000 + i)
    done.write_text("ok\n")
    return folder


def tone_and_noise(minutes: float, sr: int = RATE) -> np.ndarray:
    """The in-memory signal of ``bench_stft.py`` (seeded noise plus a 440 Hz tone)."""
    n = int(minutes * 60 * sr)
    rng = np.random.default_rng(0)
    t = np.arange(n, dtype=np.float64) / sr
    y = 0.1 * rng.standard_normal(n) + 0.5 * np.sin(2 * np.pi * 440 * t)
    return y.astype(np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(description="generate the benchmark signals")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    long = 120 if args.quick else 7200
    for secs, fmts in ((600 if not args.quick else 60, ("wav", "flac", "ogg")),
                       (long, ("wav", "flac"))):
        for fmt in fmts:
            print(signal_path(secs, fmt), flush=True)
    print(corpus_dir(*((8, 5) if args.quick else (50, 20))))


if __name__ == "__main__":
    main()
