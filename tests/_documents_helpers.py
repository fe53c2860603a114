"""Document classes and signals shared by the document tests and their subprocesses."""
from __future__ import annotations

import os
import time

import numpy as np
import soundfile as sf
import zarr.storage

import zounds_xr as zx

HOP_WINDOW = zx.SampleRate(zx.Milliseconds(20), zx.Milliseconds(40))


def tone(seconds: float, samplerate: int = 8000, seed: int = 0) -> np.ndarray:
    """A deterministic test signal: two tones and a little noise, float32 in [-0.9, 0.9]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * samplerate)) / samplerate
    x = 0.4 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 1234 * t)
    return (x + 0.05 * rng.standard_normal(t.size)).astype("float32")


def write_wav(path, seconds: float, samplerate: int = 8000, seed: int = 0) -> str:
    sf.write(path, tone(seconds, samplerate, seed), samplerate, subtype="FLOAT")
    return str(path)


def gain(x, factor):
    """A user function: scales audio (frame-local)."""
    return x * factor


def block_after_first_chunk(x, flag):
    """Frame-local identity that, after its first chunk, signals ``flag`` and hangs."""
    if os.path.exists(flag):
        with open(flag, "a") as f:
            f.write("second chunk\n")
        time.sleep(600)
    with open(flag, "w") as f:
        f.write("first chunk\n")
    return x


def spectral_graph(store):
    """gain (stored) -> windowed -> fft (stored) -> magnitude (not stored)."""

    class Sound(zx.Document):
        louder = zx.Feature(gain, needs=zx.Document.audio, factor=2.0, store=True)
        windowed = zx.Feature(zx.sliding_window, needs=louder, wscheme=HOP_WINDOW,
                              wfunc=zx.OggVorbisWindowingFunc())
        fft = zx.Feature(zx.fft, needs=windowed, store=True)
        mag = zx.Feature(np.abs, needs=fft)

    return zx.zarr_settings(store)(Sound)


def blocking_graph(store, flag):
    """A graph whose stored feature hangs after its first chunk (to kill the writer)."""

    class Sound(zx.Document):
        blocked = zx.Feature(block_after_first_chunk, needs=zx.Document.audio, flag=flag)
        louder = zx.Feature(gain, needs=blocked, factor=2.0, store=True)

    return zx.zarr_settings(store)(Sound)


def healthy_blocking_graph(store):
    """Same stored feature names as :func:`blocking_graph`, without the hang."""

    class Sound(zx.Document):
        louder = zx.Feature(gain, needs=zx.Document.audio, factor=2.0, store=True)

    return zx.zarr_settings(store)(Sound)


def kill_when_flagged(proc, flag: str, timeout: float = 60.0) -> None:
    """SIGKILL ``proc`` once a ``blocking_graph`` writer has flagged its second chunk."""
    import signal

    try:
        deadline = time.monotonic() + timeout
        while not (os.path.exists(flag) and "second" in open(flag).read()):
            assert proc.poll() is None, "the writer ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()


class RecordingGets(zarr.storage.WrapperStore):
    """A zarr store that records every ``get`` (key, byte range) in ``gets``."""

    def __init__(self, store):
        super().__init__(store)
        self.gets: list = []

    def _with_store(self, store):  # zarr opens read-only copies: they share the record
        copy = type(self)(store)
        copy.gets = self.gets
        return copy

    async def get(self, key, prototype, byte_range=None):
        self.gets.append((key, byte_range))
        return await self._store.get(key, prototype, byte_range)
