"""The demo: build a small corpus, ingest it into a local Zarr store with dask, report.

``zounds-xr demo`` (and ``make demo``) runs :func:`run_demo`. Without ``--audio`` it
generates a default corpus of varied sounds (chords, chirps, noise bursts, clicks, FM
tones, a stereo pan; 8–48 kHz; WAV, FLAC and Ogg Vorbis) plus one corrupt file, so the
report also shows how a failure is recorded without stopping the batch.
"""
from __future__ import annotations

import pathlib
import time

import numpy as np
import soundfile as sf

from ..documents.batch import ingest
from ..datasets import Directory
from ..documents.document import Document, Feature
from ..documents.settings import zarr_settings
from ..audio.resampling import resample
from ..spectral.features import mel_spectrogram, spectral_centroid
from ..spectral.transforms import stft
from ..timeseries.samplerate import SR22050
from ..viz import specshow
from ..spectral.windowing import HanningWindowingFunc

__all__ = ["DemoSound", "make_corpus", "run_demo"]

_RATE = SR22050()


class DemoSound(Document):
    """The demo's feature graph: 22.05 kHz audio, its STFT, a mel spectrogram, centroid."""

    resampled = Feature(resample, needs=Document.audio, samplerate=_RATE, store=True)
    spectrum = Feature(stft, needs=resampled, wscheme=_RATE.half_lapped(),
                       wfunc=HanningWindowingFunc(periodic=True), store=False)
    magnitude = Feature(np.abs, needs=spectrum, store=True)
    mel = Feature(mel_spectrogram, needs=spectrum, n_mels=64, store=True)
    centroid = Feature(spectral_centroid, needs=magnitude, store=True)


def _chirp(t, f0, f1):
    k = (f1 - f0) / t[-1]
    return np.sin(2 * np.pi * (f0 * t + k * t * t / 2))


def make_corpus(directory, seed: int = 7) -> list[pathlib.Path]:
    """Write a small corpus of varied generated sounds into ``directory``."""
    rng = np.random.default_rng(seed)
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    def t(rate, seconds):
        return np.arange(int(rate * seconds)) / rate

    sounds = {
        "chord_a_minor.wav": (44100, lambda x: sum(np.sin(2 * np.pi * f * x)
                                                   for f in (220, 261.63, 329.63)) / 3, 4),
        "chirp_up.flac": (48000, lambda x: 0.8 * _chirp(x, 100, 8000), 3),
        "chirp_down.ogg": (22050, lambda x: 0.8 * _chirp(x, 6000, 200), 3),
        "noise_bursts.wav": (16000, lambda x: rng.uniform(-1, 1, x.size)
                             * (np.sin(2 * np.pi * 2 * x) > 0.5), 4),
        "clicks.wav": (8000, lambda x: (np.arange(x.size) % 800 < 8).astype(float), 2),
        "fm_tone.flac": (44100, lambda x: 0.7 * np.sin(2 * np.pi * 440 * x
                                                       + 5 * np.sin(2 * np.pi * 3 * x)), 5),
        "tremolo.ogg": (48000, lambda x: np.sin(2 * np.pi * 660 * x)
                        * (0.5 + 0.5 * np.sin(2 * np.pi * 6 * x)), 3),
    }
    paths = []
    for name, (rate, make, seconds) in sounds.items():
        data = np.clip(make(t(rate, seconds)), -1, 1).astype(np.float32)
        paths.append(directory / name)
        sf.write(paths[-1], data, rate)
    # a stereo sound panning from left to right
    x = t(44100, 3)
    tone = np.sin(2 * np.pi * 330 * x)
    pan = x / x[-1]
    paths.append(directory / "pan_stereo.wav")
    sf.write(paths[-1], np.stack([tone * (1 - pan), tone * pan], axis=1) * 0.8, 44100)
    broken = directory / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEthis is not audio")
    paths.append(broken)
    return paths


def run_demo(audio=None, output="demo-output", scheduler: str = "processes",
             workers: int = 2, progress: bool = True, echo=print) -> dict:
    """Ingest ``audio`` (or a generated corpus) and report what was computed.

    Returns a dict with the report, the store path and the PNG written.
    """
    output = pathlib.Path(output)
    output.mkdir(parents=True, exist_ok=True)
    if audio is None:
        audio = output / "corpus"
        make_corpus(audio)
        echo(f"generated a corpus of {len(list(audio.iterdir()))} files in {audio}")
    store_path = output / "features.zarr"
    # a subclass bound to this store; module-level parent so workers can import it
    Sound = zarr_settings(str(store_path))(type("Sound", (DemoSound,), {"__module__": __name__}))
    t0 = time.perf_counter()
    report = ingest(Directory(audio), Sound, scheduler=scheduler, num_workers=workers,
                    progress=progress)
    elapsed = time.perf_counter() - t0
    echo("")
    echo(f"ingest: {report} with dask scheduler={scheduler!r}, {workers} workers "
         f"({elapsed:.1f} s)")
    rows = []
    for doc_id in sorted(Sound.ids()):
        snd = Sound(doc_id)
        meta = snd.meta
        mel = snd.mel
        rows.append((pathlib.Path(meta.uri_string or doc_id).name, meta.samplerate,
                     meta.channels, float(snd.resampled.zx.duration / np.timedelta64(1, "s")),
                     "x".join(map(str, mel.shape)),
                     float(snd.centroid.compute().median())))
    rows.sort()
    header = ("source", "rate", "ch", "seconds", "mel (time x bands)", "median centroid Hz")
    widths = [max(len(str(r[i])) if not isinstance(r[i], float) else 8 for r in
                  rows + [header]) for i in range(len(header))]
    echo("")
    echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        cells = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in r]
        echo("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    for source, reason in report.failed.items():
        echo(f"failed: {pathlib.Path(source).name}: {reason}")
    png = None
    if rows:
        png = output / "spectrogram.png"
        _plot(Sound, sorted(Sound.ids()), png)
        echo(f"\nspectrogram of every document: {png}")
    echo(f"feature store: {store_path} (inspect with `zounds-xr info {store_path}`)")
    echo(f"explore it: zounds-xr serve {store_path}   (or: make explore)")
    return {"report": report, "store": store_path, "png": png}


def _plot(Sound, ids, png):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(ids)
    cols = 2
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.6 * rows), squeeze=False)
    # the grid may have one spare axis (hidden below)
    for ax, doc_id in zip(axes.ravel(), ids, strict=False):
        snd = Sound(doc_id)
        mel = snd.mel.compute()
        if "channel" in mel.dims:
            mel = mel.mean("channel")
        mel.name = pathlib.Path(snd.meta.uri_string or doc_id).name
        specshow(mel, ax=ax, db=True, power=2.0, colorbar=False)
        ax.title.set_fontsize(9)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
