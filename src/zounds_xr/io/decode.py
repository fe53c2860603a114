"""Decoding audio with libsndfile: ``load``, ``stream`` and ``open_audio``.

This module holds the eager paths, whole (``load``) or chunk by chunk (``stream``), and
gathers the public names. Every path decodes through one checked reader, so that
``load``, ``stream`` and ``open_audio`` at any chunk size give the same samples, or the
same error, for the same file. The rules live with the code that applies them:

Sources (:mod:`zounds_xr.io.sources`)
    A path, an ``http(s)://`` URL, encoded ``bytes``, a binary file-like object, a
    ``urllib.request.Request`` or an ``AudioMetaData``; downloads and unseekable
    streams are spooled (memory up to 32 MiB, disk beyond).
Formats, headers and lengths (:mod:`zounds_xr.io.reader`)
    Whatever libsndfile 1.2 reads, as ``float32``. Headers are not trusted: buffers
    are bounded by what the file can hold, impossible rates, channel counts and frame
    counts are refused, and a decode that stops before the frames its header announces
    raises (MP3, whose headers are estimates, excepted).
Non-finite samples (:mod:`zounds_xr.io.nonfinite`)
    ``on_nonfinite``: keep NaN and infinity and warn (default), raise, replace them
    with 0, or keep them silently.
Lazy blocks (:mod:`zounds_xr.io.lazy`)
    ``open_audio``: one dask task per block, seeks verified where they are not exact.

Errors
    A missing path raises :class:`~zounds_xr.core.errors.AudioFileNotFoundError` (also a
    ``FileNotFoundError``); anything libsndfile cannot decode raises
    :class:`~zounds_xr.core.errors.AudioDecodeError` naming the source and libsndfile's
    reason. A valid file with zero frames is not an error: it gives empty samples.
"""
from __future__ import annotations

import math
import numbers
from fractions import Fraction

import numpy as np

from ..audio.samples import AudioSamples
from ..core.errors import ParameterError
from ..core.validation import nonnegative_int
from ..audio.resampling import resample
from ..timeseries.durations import to_fraction
from ..timeseries.samplerate import MAX_SAMPLERATE, AudioSampleRate
from .lazy import MAX_BLOCKS, audio_info, open_audio
from .metadata import ChunkSizeBytes
from .nonfinite import NONFINITE_POLICIES, nonfinite_policy
from .reader import MAX_CHANNELS, open_reader, read_pcm
from .sources import URL

__all__ = ["MAX_BLOCKS", "MAX_CHANNELS", "MAX_SAMPLERATE", "MIN_CHUNK_FRAMES",
           "NONFINITE_POLICIES", "audio_info", "load", "open_audio", "stream",
           "stream_arrays"]

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
    for data, rate, position in stream_arrays(source, chunksize, mono=mono,
                                              on_nonfinite=policy):
        yield AudioSamples(data, rate, start=Fraction(position) * rate.exact_frequency)


def stream_arrays(source, chunksize=_STREAM_CHUNK, *, mono: bool = False,
                  on_nonfinite: str = "warn", start: int = 0):
    """Decode a source chunk by chunk into plain arrays, as :func:`stream` does.

    The same decode, reads, checks and errors as :func:`stream` (which wraps these
    arrays in AudioSamples), for callers that handle many short clips and would pay
    more for labelling each one than for decoding it.

    Parameters
    ----------
    source, chunksize, mono, on_nonfinite
        As :func:`stream` (checked when the iteration starts).
    start : int, optional
        The frame to start at (one libsndfile seek; the positions yielded count from
        the file's start). Sample-exact only where the format seeks exactly (PCM,
        FLAC: see :func:`zounds_xr.audio_info`); a split long recording decodes its
        time ranges so (``documents/longfile.py``).

    Yields
    ------
    (numpy.ndarray, AudioSampleRate, int)
        ``float32`` data shaped ``(frames,)`` or ``(frames, channels)``, the source's
        rate, and the frame of the source the chunk starts at.
    """
    policy = nonfinite_policy(on_nonfinite)
    start = nonnegative_int(start, "start")
    if not start and isinstance(source, str) and not URL.match(source):
        # a short local PCM clip: one read, one chunk (the common corpus case)
        whole = read_pcm(source, lambda rate, channels: _chunk_frames(chunksize, rate,
                                                                       channels))
        if whole is not None:
            yield _shape(whole[0], mono), whole[1], 0
            return
    with open_reader(source, policy) as reader:
        rate = reader.rate
        frames = _chunk_frames(chunksize, rate, reader.channels)
        reader.seek(start)
        position = start
        for chunk in reader.chunks(frames):
            yield _shape(chunk, mono), rate, position
            position += len(chunk)
        reader.nonfinite.warn()
        if position == start:
            yield _shape(np.zeros((0, reader.channels), dtype=np.float32), mono), rate, start
