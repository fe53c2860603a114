"""Real-world copies of real audio, for near-duplicate recall (tests/test_search_recall.py
and benchmarks/bench_search.py): the corpus clips at 44.1 kHz, and per clip a copy
time-shifted by 10-50 ms, one with -12..+6 dB of gain, Ogg Vorbis and FLAC transcodes,
one resampled to 22.05 kHz, and one mixed with white noise at 20 dB SNR."""
from __future__ import annotations

import csv
import pathlib

import numpy as np
import soundfile as sf

import zounds_xr as zx

KINDS = ("shift", "gain", "ogg", "flac", "resample", "noise")
RATE = 44100


def originals(corpus: pathlib.Path, min_seconds: float = 1.0) -> list[tuple[str, np.ndarray]]:
    """``(name, mono samples at 44.1 kHz)`` of the corpus clips of at least 16 kHz and
    ``min_seconds``; ``derived/`` is left out (re-encodings of the other clips)."""
    out = []
    with open(corpus / "MANIFEST.tsv") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            try:
                rate, seconds = int(row["sr"]), float(row["duration_s"])
            except ValueError:
                continue
            if row["path"].startswith("derived/") or rate < 16000 or seconds < min_seconds:
                continue
            y = zx.load(str(corpus / row["path"]), mono=True)
            y = zx.resample(y, zx.SR44100()) if rate != RATE else y
            out.append((pathlib.Path(row["path"]).stem, np.asarray(y.values, np.float64)))
    return out


def write_copies(folder: pathlib.Path, name: str, y: np.ndarray, rng) -> dict[str, str]:
    """Write the original and its copies into ``folder``: ``{kind: file stem}`` with
    ``"original"`` among the kinds."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"original": f"{name}"}
    sf.write(folder / f"{name}.wav", y, RATE, subtype="FLOAT")
    shift = int(rng.uniform(0.010, 0.050) * RATE)
    shifted = np.concatenate([np.zeros(shift), y]) if rng.random() < 0.5 else y[shift:]
    gain = 10 ** (rng.uniform(-12, 6) / 20)
    half = np.asarray(zx.resample(zx.AudioSamples(y, zx.SR44100()), zx.SR22050()).values)
    power = float(np.mean(y ** 2))
    noisy = y + rng.normal(size=y.size) * np.sqrt(power / 100)  # 20 dB SNR
    for kind, samples, rate, ext, subtype in [
            ("shift", shifted, RATE, "wav", "FLOAT"), ("gain", y * gain, RATE, "wav", "FLOAT"),
            ("ogg", y, RATE, "ogg", "VORBIS"), ("flac", y, RATE, "flac", "PCM_16"),
            ("resample", half, 22050, "wav", "FLOAT"), ("noise", noisy, RATE, "wav", "FLOAT")]:
        stem = f"{name}~{kind}"
        sf.write(folder / f"{stem}.{ext}", np.clip(samples, -1, 1) if subtype == "PCM_16"
                 else samples, rate, subtype=subtype)
        files[kind] = stem
    return files


def recall_at(index, ids: dict[str, str], copies: dict[str, dict[str, str]], k: int = 10
              ) -> dict[str, float]:
    """Per kind of copy: the fraction of copies whose ``k`` nearest documents (their own
    left out) hold their original. ``ids``: file stem -> document id."""
    hits: dict[str, list[bool]] = {kind: [] for kind in KINDS}
    for files in copies.values():
        original = ids[files["original"]]
        for kind in KINDS:
            found = index.neighbours(ids[files[kind]], k=k, exclude="document")
            hits[kind].append(original in {r.id for r in found["results"]})
    return {kind: float(np.mean(v)) for kind, v in hits.items()}
