"""Decoding audio with libsndfile: ``load``, ``stream`` and ``open_audio``.

The pieces: where the bytes come from (:mod:`zounds_xr.io.sources`), one checked
libsndfile handle read in bounded blocks with one length rule on every path
(:mod:`zounds_xr.io.reader`), the non-finite policy (:mod:`zounds_xr.io.nonfinite`)
and the lazy blocks of ``open_audio`` (:mod:`zounds_xr.io.lazy`). This module holds
the eager paths, whole (``load``) or chunk by chunk (``stream``), and gathers the
public names.

Sources
    A path (``str`` or ``os.PathLike``), an ``http(s)://`` URL (fetched with the
    standard library's ``urllib`` into a spooled temporary file: memory up to 32 MiB,
    disk beyond), encoded ``bytes``, a binary file-like object (one that cannot seek
    is spooled the same way), a ``urllib.request.Request`` or an ``AudioMetaData``
    (its ``uri`` is decoded).

Formats
    Whatever libsndfile 1.2 reads: WAV, WAVEX, RF64, AIFF, FLAC, OGG Vorbis and Opus,
    MP3, 8- to 32-bit integer, float, double, u-law/A-law, any number of channels.
    Samples come back as ``float32``. Integer PCM is scaled by libsndfile into
    ``[-1, 1)``; float and double files come back as stored, which may lie outside
    ``[-1, 1]`` and may hold NaN or infinity (see *Non-finite samples*).

Lengths: one rule on every path
    Decoding reads until libsndfile returns nothing more (calling ``sf_readf_float``
    directly: soundfile's ``read`` would allocate the header's whole count at once).
    When libsndfile trusts its header's count (every format but MP3, except for an
    unknown (0) or placeholder (INT64_MAX) count), decoding that ends before that
    count is a partial decode, and a partial decode is never returned as if it were
    whole: it raises ``AudioDecodeError`` naming the source, the frame where decoding
    stopped and libsndfile's reason (a truncated FLAC, an Ogg page dropped for a bad
    checksum, a FLAC whose first read fails). An error libsndfile reports while
    decoding raises the same way, naming the frames being read. The one documented
    exception: MP3 headers (Xing/Info frame counts) are estimates, so an MP3 whose
    decoder ends early without reporting an error gives the frames that decode, on
    every path. A WAV cut short is reported by libsndfile with the frames its size
    holds, and gives those. ``load``, ``stream`` and ``open_audio`` at any chunk size
    therefore give the same samples, or the same error, for the same file.

Non-finite samples
    Float files can hold NaN and infinity. ``on_nonfinite`` chooses what decoding does
    with them: ``"warn"`` (default) keeps them and warns with their count and the first
    frame (:class:`~zounds_xr.errors.NonFiniteSamplesWarning`); ``"raise"`` refuses
    the file (``AudioDecodeError``); ``"zero"`` replaces them with 0; ``"keep"``
    passes them silently.

Errors
    A missing path raises :class:`~zounds_xr.errors.AudioFileNotFoundError` (also a
    ``FileNotFoundError``); anything libsndfile cannot decode raises
    :class:`~zounds_xr.errors.AudioDecodeError` naming the source and libsndfile's
    reason. A valid file with zero frames is not an error: it gives empty samples.
"""
from __future__ import annotations

import math
import numbers
from fractions import Fraction

import numpy as np

from ..audio import AudioSamples
from ..errors import ParameterError
from ..resampling import resample
from ..timeseries.durations import to_fraction
from ..timeseries.samplerate import MAX_SAMPLERATE, AudioSampleRate
from .lazy import MAX_BLOCKS, audio_info, open_audio
from .metadata import ChunkSizeBytes
from .nonfinite import NONFINITE_POLICIES, nonfinite_policy
from .reader import MAX_CHANNELS, open_reader

__all__ = ["MAX_BLOCKS", "MAX_CHANNELS", "MAX_SAMPLERATE", "MIN_CHUNK_FRAMES",
           "NONFINITE_POLICIES", "audio_info", "load", "open_audio", "stream"]

#: the fewest frames a ``stream`` chunk may hold: each chunk is a labelled AudioSamples
#: (~0.1 ms to build, measured), so 1-frame chunks ran 4x slower than real time (19.6 s
#: for 5 s at 44.1 kHz) where 256-frame chunks run ~50x faster than real time (and
#: 30 s chunks ~2500x)
MIN_CHUNK_FRAMES = 256
#: default chunk of ``stream``
_STREAM_CHUNK = np.timedelta64(30, "s")


def _shape(data: np.ndarray, mono: bool) -> np.ndarray:
    """``(frames, channels)`` -> ``(frames,)`` for one channel or when ``mono``."""
    if data.shape[1] == 1:
        return data[:, 0]
    if mono:
        # the channel mean, as ``.zx.mono`` and librosa
        return data.mean(axis=1, dtype=np.float64).astype(np.float32)
    return data


def _as_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def load(source, mono: bool = False, samplerate=None, *, on_nonfinite: str = "warn"):
    """Decode a whole audio source into AudioSamples.

    Parameters
    ----------
    source : str, os.PathLike, bytes, file-like, http(s) URL or AudioMetaData
        Where the audio is (see the module docstring).
    mono : bool, optional
        Average the channels into one.
    samplerate : AudioSampleRate or int, optional
        Resample to this rate (with :func:`zounds_xr.resample`).
    on_nonfinite : {"warn", "raise", "zero", "keep"}, optional
        What to do with NaN and infinity in float files: keep them and warn with their
        count (default), raise ``AudioDecodeError``, replace them with 0, or keep them
        silently.

    Returns
    -------
    xarray.DataArray [dims=("time",) or ("time", "channel")]
        ``float32`` AudioSamples at the file's rate (or ``samplerate``); empty for a
        zero-frame file. Integer PCM lies in ``[-1, 1)``; float files come back as
        stored (values outside ``[-1, 1]`` are possible).

    Raises
    ------
    AudioFileNotFoundError
        When a path does not exist (or an URL answers 404/410).
    AudioDecodeError
        When libsndfile cannot decode the source, its header is impossible (rate,
        channels or frame count), or decoding stops before the frames its header
        announces (the message names the frame and libsndfile's reason; MP3 excepted,
        see the module docstring).

    Warns
    -----
    NonFiniteSamplesWarning
        When the file holds NaN or infinity and ``on_nonfinite="warn"``.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> encoded = zx.AudioSamples(np.zeros(441), zx.SR44100()).zx.encode().read()
    >>> samples = zx.load(encoded)
    >>> samples.sizes["time"], samples.zx.samplerate, str(samples.dtype)
    (441, SR44100(), 'float32')
    """
    mono = _as_bool(mono, "mono")
    policy = nonfinite_policy(on_nonfinite)
    with open_reader(source, policy) as reader:
        blocks = list(reader.blocks())
        reader.nonfinite.warn()
        rate, channels = reader.rate, reader.channels
    data = np.concatenate(blocks) if blocks else np.zeros((0, channels), dtype=np.float32)
    samples = AudioSamples(_shape(data, mono), rate)
    if samplerate is not None:
        samples = resample(samples, samplerate)
    return samples


def _chunk_frames(chunksize, rate: AudioSampleRate, channels: int) -> int:
    """Frames per chunk for a duration, a ``ChunkSizeBytes`` or a frame count."""
    if isinstance(chunksize, ChunkSizeBytes):
        # bytes of PCM at the chunk's bit depth, for this source's channel count
        frames = int(chunksize) // (channels * chunksize.bit_depth // 8 or 1)
    elif isinstance(chunksize, numbers.Integral) and not isinstance(chunksize, (bool,
                                                                                np.timedelta64)):
        frames = int(chunksize)
    else:
        seconds = to_fraction(chunksize, name="chunksize")
        frames = math.floor(seconds / rate.exact_frequency)
        if frames <= 0:
            raise ParameterError(f"chunksize={chunksize!r} holds no whole frame at {rate!r}")
        # a duration cannot know the source's rate: at a very low rate (files come at
        # 1 Hz too) it is raised to the floor instead of refusing a default chunk
        return max(frames, MIN_CHUNK_FRAMES)
    if frames <= 0:
        raise ParameterError(f"chunksize={chunksize!r} holds no whole frame at {rate!r}")
    _check_chunk_floor(chunksize, frames, rate)
    return frames


def _check_chunk_floor(chunksize, frames: int, rate: AudioSampleRate | None = None) -> None:
    if 0 < frames < MIN_CHUNK_FRAMES:
        at = f" at {rate!r}" if rate is not None else ""
        raise ParameterError(
            f"chunksize={chunksize!r} is {frames} frames{at}, fewer than the "
            f"{MIN_CHUNK_FRAMES} a stream chunk holds at least (each chunk is a labelled "
            f"array: smaller ones make streaming slower than real time); ask for "
            f"{MIN_CHUNK_FRAMES} frames or more and split them yourself if needed")


def stream(source, chunksize=_STREAM_CHUNK, *, mono: bool = False,
           on_nonfinite: str = "warn"):
    """Decode an audio source chunk by chunk, in bounded memory.

    Parameters
    ----------
    source : str, os.PathLike, bytes, file-like, http(s) URL or AudioMetaData
        Where the audio is (see the module docstring). A file-like is read from its
        current position, straight through.
    chunksize : np.timedelta64, ChunkSizeBytes or int, optional
        Size of each chunk: a duration (whole frames, rounded down), a
        ``ChunkSizeBytes`` (that many bytes of PCM at its bit depth for the source's
        channel count) or a number of frames. Default 30 s. At least
        :data:`MIN_CHUNK_FRAMES` (256) frames: smaller chunks would make the stream
        slower than real time (a duration that holds fewer frames at the source's rate
        is raised to that floor).
    mono : bool, optional
        Average the channels into one.
    on_nonfinite : {"warn", "raise", "zero", "keep"}, optional
        As :func:`load` (one warning at the end of the stream).

    Yields
    ------
    xarray.DataArray [dims=("time",) or ("time", "channel")]
        ``float32`` AudioSamples of ``chunksize`` frames (the last one shorter), whose
        ``time`` index starts where the chunk starts in the source. A source with zero
        frames yields one empty chunk, so that its rate is known.

    Raises
    ------
    AudioFileNotFoundError, AudioDecodeError
        As :func:`load`, when the iteration starts, or when decoding fails or stops
        early (raised before the last chunk is yielded: the chunks already yielded are
        the first frames of a decode that is then refused).
    ParameterError
        When ``chunksize`` is not a size, holds no whole frame, or is a number of
        frames or a byte size of fewer than :data:`MIN_CHUNK_FRAMES` frames (a number
        of frames is checked at the call, a byte size once the source is open).

    Notes
    -----
    The source is read straight through, never seeked (Vorbis seeking is unreliable,
    NOTES.md), in the same reads as :func:`load`, so that every chunk holds the same
    values as a whole :func:`load` (MP3 included). Memory is bounded by one chunk,
    itself bounded by the frames the source holds, plus one read.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> encoded = zx.AudioSamples(np.zeros(44100 * 5), zx.SR44100()).zx.encode()
    >>> chunks = list(zx.stream(encoded, chunksize=zx.Seconds(2)))
    >>> [c.sizes["time"] for c in chunks], chunks[1].time.values[0]
    ([88200, 88200, 44100], np.timedelta64(2000000000,'ns'))
    """
    mono = _as_bool(mono, "mono")
    policy = nonfinite_policy(on_nonfinite)
    if isinstance(chunksize, numbers.Integral) and not isinstance(chunksize, (bool,
                                                                              np.timedelta64)):
        _check_chunk_floor(chunksize, int(chunksize))  # eagerly, before any I/O
    elif not isinstance(chunksize, (ChunkSizeBytes, np.timedelta64)):
        to_fraction(chunksize, name="chunksize")  # validate eagerly, before any I/O
    return _stream(source, chunksize, mono, policy)


def _stream(source, chunksize, mono: bool, policy: str):
    with open_reader(source, policy) as reader:
        rate = reader.rate
        frames = _chunk_frames(chunksize, rate, reader.channels)
        pending: list[np.ndarray] = []
        held = 0
        position = 0
        # the chunk is assembled from bounded reads, never allocated at its requested size
        for block in reader.blocks():
            pending.append(block)
            held += len(block)
            while held >= frames:
                joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
                chunk, rest = joined[:frames], joined[frames:]
                pending, held = ([rest] if len(rest) else []), len(rest)
                yield AudioSamples(_shape(chunk, mono), rate,
                                   start=Fraction(position) * rate.exact_frequency)
                position += frames
        reader.nonfinite.warn()
        if held or position == 0:
            joined = (np.concatenate(pending) if pending
                      else np.zeros((0, reader.channels), dtype=np.float32))
            yield AudioSamples(_shape(joined, mono), rate,
                               start=Fraction(position) * rate.exact_frequency)
