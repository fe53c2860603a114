"""The sound of a selected time range, as a WAV stream that can be read by byte ranges.

Where the sound comes from, in order of preference:

1. a stored feature at an audio rate (dims ``time`` [, ``channel``], frames one sample
   long): only the samples of the requested bytes are read;
2. a stored invertible feature (a complex STFT; an MDCT, DCT or DCT-IV when the store
   records the function that made it), resynthesized with the matching synthesizer of
   ``zounds_xr.synthesize`` from the frames around the selection;
3. the document's source (``uri``), decoded with libsndfile: a local file is opened
   lazily and only the selection is decoded.
"""
from __future__ import annotations

import os
import struct
from fractions import Fraction

import numpy as np
import xarray as xr

from ..core.errors import ParameterError, ZoundsError
from ..frequency.scales import LinearScale
from ..io.decode import load, open_audio
from ..synthesize.inverse import (
    DCTIVSynthesizer,
    DCTSynthesizer,
    FFTSynthesizer,
    MDCTSynthesizer,
)
from ..timeseries.index import TimeIndex
from ..spectral.windowing import OggVorbisWindowingFunc

__all__ = ["WAV_HEADER_BYTES", "AudioClip", "clip_for", "source_of", "wav_header"]

WAV_HEADER_BYTES = 44
#: frames converted per chunk of the HTTP body
CHUNK_FRAMES = 1 << 15


def wav_header(frames: int, channels: int, rate: int) -> bytes:
    """Build the 44-byte header of a 16-bit PCM WAV file.

    Parameters
    ----------
    frames : int >= 0
        Sample frames in the file.
    channels : int > 0
        Interleaved channels.
    rate : int > 0
        Sample rate, Hz.

    Returns
    -------
    bytes
        ``RIFF``/``fmt``/``data`` header of a file of ``frames * channels * 2`` data
        bytes.
    """
    data = frames * channels * 2
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2,
                          channels * 2, 16)
            + b"data" + struct.pack("<I", data))


def _pcm16(samples: np.ndarray) -> bytes:
    scaled = np.clip(np.nan_to_num(samples, nan=0.0), -1.0, 1.0) * 32767.0
    return np.round(scaled).astype("<i2").tobytes()


class AudioClip:
    """``frames`` samples of sound at ``samplerate``, readable in pieces.

    Parameters
    ----------
    read : callable
        ``read(f0, f1)`` -> float array ``(f1 - f0, channels)`` of frames ``f0..f1``.
    source : str
        Where the sound comes from (``"stored:<feature>"``, ``"resynthesized:<feature>"``
        or ``"decoded:<uri>"``), for the page and the ETag.
    """

    def __init__(self, read, frames: int, channels: int, samplerate: int, source: str):
        self._read = read
        self.frames = int(frames)
        self.channels = int(channels)
        self.samplerate = int(samplerate)
        self.source = source

    @property
    def size(self) -> int:
        """Bytes of the whole WAV file."""
        return WAV_HEADER_BYTES + self.frames * self.channels * 2

    def read(self, f0: int, f1: int) -> np.ndarray:
        """Read frames ``f0..f1`` as float32 ``(f1 - f0, channels)``, full scale 1."""
        return np.asarray(self._read(f0, f1), dtype=np.float32).reshape(f1 - f0, self.channels)

    def chunks(self, start: int | None = None, end: int | None = None):
        """Generate the WAV bytes ``[start, end)`` piece by piece.

        Only the samples those bytes hold are read (an HTTP range request).

        Parameters
        ----------
        start, end : int, optional
            Byte offsets in the WAV file; ``None``: from the beginning / to the end.
            ``end`` past :attr:`size` is clipped.

        Yields
        ------
        bytes
            Consecutive pieces, the header's first, then at most ``CHUNK_FRAMES``
            frames of 16-bit PCM each.
        """
        start = 0 if start is None else start
        end = self.size if end is None else min(end, self.size)
        if start < WAV_HEADER_BYTES:
            header = wav_header(self.frames, self.channels, self.samplerate)
            yield header[start:min(end, WAV_HEADER_BYTES)]
            start = WAV_HEADER_BYTES
        width = self.channels * 2
        pos = start
        while pos < end:
            f0 = (pos - WAV_HEADER_BYTES) // width
            f1 = min(self.frames, f0 + CHUNK_FRAMES, -(-(end - WAV_HEADER_BYTES) // width))
            data = _pcm16(self.read(f0, f1))
            skip = pos - (WAV_HEADER_BYTES + f0 * width)
            piece = data[skip:skip + (end - pos)]
            yield piece
            pos += len(piece)

    def wav(self) -> bytes:
        """Return the whole WAV file (header and 16-bit PCM samples)."""
        return b"".join(self.chunks())


def _index(da: xr.DataArray) -> TimeIndex | None:
    index = da.xindexes.get("time")
    return index if isinstance(index, TimeIndex) else None


def _time_index(da: xr.DataArray) -> TimeIndex:
    index = _index(da)
    if index is None:
        raise ParameterError(f"{da.name or 'the feature'} has no TimeIndex on 'time'")
    return index


def sample_rate(index: TimeIndex) -> int | None:
    """Return the whole samples per second of an index of audio samples.

    Audio samples are frames as long as their step; ``None`` for any other index.
    """
    if index.frequency != index.duration or index.frequency <= 0:
        return None
    rate = 1 / index.frequency
    return int(rate) if rate.denominator == 1 else None


def _audio_rate(da: xr.DataArray) -> int | None:
    index = _index(da)
    if index is None or set(da.dims) - {"time", "channel"}:
        return None
    return sample_rate(index)


def _values(da: xr.DataArray) -> np.ndarray:
    data = da.data
    if hasattr(data, "dask"):
        data = data.compute(scheduler="synchronous")
    return np.asarray(data)


def _as_frames(values: np.ndarray, channels: int) -> np.ndarray:
    return values.reshape(values.shape[0], channels)


def _stored(name: str, da: xr.DataArray, rate: int, t0: float, t1: float) -> AudioClip:
    index = _time_index(da)
    da = da.transpose("time", ...)
    sl = index.overlapping(Fraction(t0), Fraction(t1))
    channels = da.sizes.get("channel", 1)

    def read(f0, f1):
        return _as_frames(_values(da.isel(time=slice(sl.start + f0, sl.start + f1))), channels)

    return AudioClip(read, sl.stop - sl.start, channels, rate, f"stored:{name}")


def _synthesizer(da: xr.DataArray):
    """Return the synthesizer that inverts ``da``, or ``None``."""
    if "frequency" not in da.dims or set(da.dims) - {"time", "frequency", "channel"}:
        return None
    scale = getattr(da.xindexes.get("frequency"), "scale", None)
    function = str(da.attrs.get("function", "") or "")
    feature = da.attrs.get("zounds_xr:feature")
    if isinstance(feature, dict):
        function = str(feature.get("function", function))
    function = function.rsplit(".", 1)[-1].lower()
    if np.iscomplexobj(np.empty(0, da.dtype)) and isinstance(scale, LinearScale):
        return FFTSynthesizer()
    if function == "mdct":
        return MDCTSynthesizer()
    if function == "dctiv":
        return DCTIVSynthesizer(OggVorbisWindowingFunc())
    if function == "dct":
        return DCTSynthesizer(OggVorbisWindowingFunc())
    return None


def _resynthesized(name: str, da: xr.DataArray, synth, t0: float, t1: float) -> AudioClip:
    index = _time_index(da)
    # frames that overlap the selection, plus one on each side for the overlap-add
    sl = index.overlapping(Fraction(t0) - index.duration, Fraction(t1) + index.duration)
    audio = synth.synthesize(da.isel(time=sl))
    a_index = _time_index(audio)
    rate = int(1 / a_index.frequency)
    first = max(0, round((Fraction(t0) - a_index.start) * rate))
    last = min(audio.sizes["time"], round((Fraction(t1) - a_index.start) * rate))
    audio = audio.transpose("time", ...)
    samples = np.asarray(audio.values)[first:max(first, last)]
    channels = audio.sizes.get("channel", 1)
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak > 1.0:  # synthesizers do not normalise; keep the clip from clipping
        samples = samples / peak
    samples = _as_frames(samples, channels)
    return AudioClip(lambda f0, f1: samples[f0:f1], samples.shape[0], channels, rate,
                     f"resynthesized:{name}")


def _decoded(uri: str, t0: float, t1: float) -> AudioClip:
    path = os.fspath(uri)
    path = path.removeprefix("file://")
    if os.path.exists(path):
        audio = open_audio(path)
    else:
        audio = load(uri)
    index = _time_index(audio)
    rate = int(1 / index.frequency)
    sl = index.overlapping(Fraction(t0), Fraction(t1))
    channels = audio.sizes.get("channel", 1)
    audio = audio.transpose("time", ...)

    def read(f0, f1):
        return _as_frames(_values(audio.isel(time=slice(sl.start + f0, sl.start + f1))),
                          channels)

    return AudioClip(read, sl.stop - sl.start, channels, rate, f"decoded:{uri}")


def source_of(arrays: dict, uri) -> str:
    """Say where the sound of a document comes from, without reading any of it.

    Parameters
    ----------
    arrays : dict of str to xarray.DataArray
        The document's stored features.
    uri : str or None
        The document's source.

    Returns
    -------
    str
        ``"stored:<feature>"``, ``"resynthesized:<feature>"``, ``"decoded:<uri>"`` or
        ``"none"``, in that order of preference (as :func:`clip_for`).
    """
    audio = [(rate, name) for name, da in arrays.items()
             if (rate := _audio_rate(da)) is not None]
    if audio:
        return f"stored:{max(audio)[1]}"
    for name, da in arrays.items():
        if _index(da) is not None and _synthesizer(da) is not None:
            return f"resynthesized:{name}"
    return f"decoded:{uri}" if uri else "none"


def clip_for(arrays: dict, uri, t0: float, t1: float) -> AudioClip:
    """Return the sound of ``[t0, t1)`` seconds of a document.

    See the module docstring for the order of preference.

    Parameters
    ----------
    arrays : dict of str to xarray.DataArray
        The document's stored features.
    uri : str or None
        The document's source, decoded when nothing stored can be played.
    t0, t1 : float
        Seconds, ``0 <= t0 < t1`` (checked by the caller).

    Returns
    -------
    AudioClip
        The frames of the span, read lazily; ``source`` says where they come from.

    Raises
    ------
    ParameterError
        When nothing stored can be played and the source is missing or undecodable.
    """
    audio = [(rate, name) for name, da in arrays.items()
             if (rate := _audio_rate(da)) is not None]
    if audio:
        rate, name = max(audio)
        return _stored(name, arrays[name], rate, t0, t1)
    for name, da in arrays.items():
        synth = _synthesizer(da) if _index(da) is not None else None
        if synth is None:
            continue
        try:
            return _resynthesized(name, da, synth, t0, t1)
        except ParameterError:
            continue  # labels that do not describe a whole transform: try the next
    if uri:
        try:
            return _decoded(str(uri), t0, t1)
        except ZoundsError as exc:
            raise ParameterError(f"nothing to play: no stored audio or invertible feature, "
                                 f"and the source cannot be decoded ({exc})") from exc
    raise ParameterError("nothing to play: no stored audio, no invertible feature and no "
                         "source uri")
