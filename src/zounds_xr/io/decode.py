"""Decoding audio with libsndfile: ``load``, ``stream`` and ``open_audio``.

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

Headers are not trusted
    Every buffer is bounded by what can exist: a read never asks for more than the
    frames the header leaves (when its count is trusted) nor more than
    :data:`READ_BYTES`, whatever the chunk size asked for. A header whose sample rate
    is above :data:`MAX_SAMPLERATE`, whose channel count is above libsndfile's 1024,
    or whose frame count the file's size cannot hold is refused with
    :class:`~zounds_xr.errors.AudioDecodeError` naming the field.

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

import contextlib
import io
import math
import numbers
import os
import pathlib
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
import zlib
from collections.abc import Iterator
from fractions import Fraction

import numpy as np
import soundfile as sf

from ..audio import AudioSamples
from ..errors import (
    AudioDecodeError,
    AudioFileNotFoundError,
    NonFiniteSamplesWarning,
    ParameterError,
    ZoundsError,
)
from ..resampling import resample
from ..timeseries.durations import to_fraction
from ..timeseries.samplerate import MAX_SAMPLERATE, AudioSampleRate, audio_sample_rate
from .metadata import AudioMetaData, ChunkSizeBytes

__all__ = ["MAX_CHANNELS", "MAX_SAMPLERATE", "MIN_CHUNK_FRAMES", "NONFINITE_POLICIES",
           "audio_info", "load", "open_audio", "stream", "stream_arrays"]

#: frames decoded per libsndfile call. libsndfile's MP3 decoder output depends slightly
#: on the read size below 65536 frames (NOTES.md); at and above it, it matches a whole read.
READ_BLOCK = 1 << 16
#: the most bytes one libsndfile read fills (fewer frames per read for many channels)
READ_BYTES = 1 << 24
#: libsndfile's own limit on channels (SF_MAX_CHANNELS)
MAX_CHANNELS = 1024
#: the most frames one byte of a compressed stream can hold: a FLAC frame of constant
#: subframes holds 65536 frames in ~10 bytes, a 1-byte Vorbis packet 4096 frames
_FRAMES_PER_BYTE = 1 << 14
#: bytes per frame and channel of the uncompressed subtypes (their count is exact)
_PCM_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "ULAW": 1, "ALAW": 1, "PCM_16": 2, "PCM_24": 3,
              "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
#: subtypes whose samples are integers (libsndfile scales them to finite floats)
_INTEGER_SUBTYPES = frozenset({"PCM_S8", "PCM_U8", "ULAW", "ALAW", "PCM_16", "PCM_24",
                               "PCM_32"})
#: the most blocks ``open_audio`` builds a graph of (beyond it, ask for larger chunks)
MAX_BLOCKS = 10_000
#: what decoding does with NaN and infinity (see the module docstring)
NONFINITE_POLICIES = ("warn", "raise", "zero", "keep")
#: spooled downloads and unseekable streams stay in memory up to this size
SPOOL_BYTES = 32 << 20
#: seconds before an HTTP fetch gives up
HTTP_TIMEOUT = 60
#: formats whose seeking is sample-exact (uncompressed PCM, and FLAC's seek table)
_EXACT_SEEK = {"WAV", "WAVEX", "RF64", "AIFF", "AU", "CAF", "W64", "FLAC", "RAW", "NIST",
               "IRCAM"}
#: a header frame count at or above this is a placeholder, not a length
_ABSURD_FRAMES = 1 << 62
_URL = re.compile(r"^https?://", re.IGNORECASE)
#: the fewest frames a ``stream`` chunk may hold: each chunk is a labelled AudioSamples
#: (~0.1 ms to build, measured), so 1-frame chunks ran 4x slower than real time (19.6 s
#: for 5 s at 44.1 kHz) where 256-frame chunks run ~50x faster than real time (and
#: 30 s chunks ~2500x)
MIN_CHUNK_FRAMES = 256
#: default chunk of ``stream`` and block of ``open_audio``
_STREAM_CHUNK = np.timedelta64(30, "s")
_OPEN_CHUNK = np.timedelta64(60, "s")
#: lines of libsndfile's log that report an error or damage
_LOG_ERROR = re.compile(r"error|unexpected|junk|failed|hole|corrupt", re.IGNORECASE)
#: lines of libsndfile's log that say an Ogg stream is damaged (its length is then wrong)
_OGG_DAMAGE = re.compile(r"hole|corrupt|ended unexpectedly", re.IGNORECASE)


# --------------------------------------------------------------------------- sources
def _describe(source) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes in memory>"
    if isinstance(source, urllib.request.Request):
        return source.full_url
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    name = getattr(source, "name", None)
    return f"<{type(source).__name__} {name!r}>" if isinstance(name, str) else (
        f"<{type(source).__name__}>")


def _spool(fileobj, name: str):
    """Copy an unseekable binary stream into a seekable spooled temporary file."""
    spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    try:
        shutil.copyfileobj(fileobj, spooled, length=1 << 20)
    except OSError as exc:
        spooled.close()
        raise AudioDecodeError(f"cannot read audio from {name}: {exc}") from exc
    spooled.seek(0)
    return spooled


def _fetch(url, name: str):
    """Download ``url`` (str or Request) into a spooled temporary file."""
    try:
        response = urllib.request.urlopen(url, timeout=HTTP_TIMEOUT)  # noqa: S310 (http(s) only)
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410):
            raise AudioFileNotFoundError(f"no audio at {name}: HTTP {exc.code} {exc.reason}") \
                from exc
        raise AudioDecodeError(f"cannot fetch audio from {name}: HTTP {exc.code} {exc.reason}") \
            from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AudioDecodeError(f"cannot fetch audio from {name}: {reason}") from exc
    with response:
        return _spool(response, name)


@contextlib.contextmanager
def _binary_source(source):
    """What soundfile can open for ``source`` (a path or a seekable file-like), and a name.

    Temporary objects (downloads, spooled copies) are closed on exit; a caller's file
    object is left open.
    """
    if isinstance(source, AudioMetaData):
        source = source.uri
    name = _describe(source)
    if isinstance(source, urllib.request.Request) or (
            isinstance(source, str) and _URL.match(source)):
        with _fetch(source, name) as tmp:
            yield tmp, name
        return
    if isinstance(source, (str, os.PathLike)):
        path = pathlib.Path(source)
        if not path.exists():
            raise AudioFileNotFoundError(f"audio file not found: {name}")
        if path.is_dir():
            raise AudioDecodeError(f"cannot decode {name}: it is a directory")
        yield os.fspath(path), name
        return
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield io.BytesIO(bytes(source)), name
        return
    if hasattr(source, "read"):
        seekable = getattr(source, "seekable", None)
        if callable(seekable) and seekable() and hasattr(source, "seek") and hasattr(source,
                                                                                    "tell"):
            yield source, name
            return
        with _spool(source, name) as tmp:
            yield tmp, name
        return
    raise ParameterError(
        f"cannot decode audio from a {type(source).__name__}: give a path, an http(s) URL, "
        f"bytes or a binary file-like object")


def _reason(exc: Exception) -> str:
    text = getattr(exc, "error_string", None) or str(exc)
    return text.strip() or type(exc).__name__


def _size_of(target) -> int | None:
    """Bytes in the opened source (``None`` when it cannot be told)."""
    try:
        if isinstance(target, str):
            return os.path.getsize(target)
        here = target.tell()
        size = target.seek(0, os.SEEK_END)
        target.seek(here)
        return int(size)
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def _log_errors(handle: sf.SoundFile) -> str:
    """The error lines of libsndfile's log for this file ('' when there are none)."""
    try:
        log = handle.extra_info
    except (sf.SoundFileError, RuntimeError, ValueError):  # pragma: no cover
        return ""
    lines = []
    for line in log.splitlines():
        text = line.strip()
        if text and _LOG_ERROR.search(text) \
                and text not in lines:
            lines.append(text)
    return "; ".join(lines[-3:])


def _nonfinite_policy(value) -> str:
    if value not in NONFINITE_POLICIES:
        raise ParameterError(f"on_nonfinite must be one of {NONFINITE_POLICIES}, got {value!r}")
    return value


class _Reader:
    """An open libsndfile handle whose header was checked, read in bounded blocks.

    Tracks the decoding position, applies the non-finite policy to what it decodes and
    enforces the length rule of the module docstring.
    """

    def __init__(self, handle: sf.SoundFile, name: str, size: int | None,
                 on_nonfinite: str = "warn"):
        self.handle, self.name, self.size = handle, name, size
        self.on_nonfinite = on_nonfinite
        self.format, self.subtype = handle.format, handle.subtype
        self.channels = int(handle.channels)
        self.rate = self._check_rate()
        if not 1 <= self.channels <= MAX_CHANNELS:
            raise AudioDecodeError(
                f"cannot decode {name}: its header's channel count is {self.channels}, "
                f"outside 1..{MAX_CHANNELS} (libsndfile's limit)")
        if self.format == "OGG":
            self._check_ogg()
        frames = int(handle.frames)
        self.trusted = not (self.format == "MP3" or frames <= 0 or frames >= _ABSURD_FRAMES)
        #: the header's frame count when libsndfile trusts it, else None
        self.expected = frames if self.trusted else None
        if self.trusted:
            self._check_frames(frames)
        #: frames per read: READ_BLOCK (MP3 needs reads this large), fewer for many channels
        self.cap = max(1, min(READ_BLOCK, READ_BYTES // (4 * self.channels)))
        self.position = 0
        self.nonfinite = 0
        self.first_nonfinite: int | None = None
        #: integer PCM decodes to finite floats: only float data is screened (it costs
        #: a third of decoding a PCM_16 WAV)
        self.screened = self.subtype not in _INTEGER_SUBTYPES

    def _check_ogg(self) -> None:
        # libsndfile takes an Ogg stream's length from the granule of the last page it
        # finds: when a page is damaged (a bad checksum, a hole) that length is wrong,
        # and decoding would stop early or late without an error
        try:
            log = self.handle.extra_info
        except (sf.SoundFileError, RuntimeError, ValueError):  # pragma: no cover
            return
        damage = [line.strip() for line in log.splitlines() if _OGG_DAMAGE.search(line)]
        if damage:
            raise AudioDecodeError(
                f"cannot decode {self.name}: libsndfile reports a damaged Ogg stream ("
                f"{'; '.join(damage[:3])}); its length and samples cannot be trusted")

    def _check_rate(self) -> AudioSampleRate:
        rate = self.handle.samplerate
        if rate > MAX_SAMPLERATE:
            raise AudioDecodeError(
                f"cannot decode {self.name}: its header's sample rate is {rate} Hz, above "
                f"the {MAX_SAMPLERATE} Hz that any audio format carries (a damaged header)")
        try:
            return audio_sample_rate(int(rate))
        except ZoundsError as exc:
            raise AudioDecodeError(
                f"cannot decode {self.name}: invalid sample rate {rate!r} in its header") \
                from exc

    def _check_frames(self, frames: int) -> None:
        if self.size is None:
            return
        per_frame = _PCM_BYTES.get(self.subtype)
        if per_frame is not None and self.format not in ("FLAC", "OGG", "MP3"):
            limit = self.size // (per_frame * self.channels)
        else:
            limit = self.size * _FRAMES_PER_BYTE
        if frames > limit:
            raise AudioDecodeError(
                f"cannot decode {self.name}: its header's frame count is {frames}, more than "
                f"its {self.size} bytes can hold (at most {limit} frames of "
                f"{self.format}/{self.subtype}): a damaged header")

    # ------------------------------------------------------------------ reading
    def remaining(self) -> int | None:
        return None if self.expected is None else max(0, self.expected - self.position)

    def _readf(self, out: np.ndarray, screen: bool = True) -> int:
        """Decode up to ``len(out)`` frames into ``out`` (float32, C-contiguous, 2-D).

        Calls libsndfile's ``sf_readf_float`` directly: soundfile's ``read`` sizes its
        buffer by the header's frame count, which is wrong for files whose header lies.
        Falls back to soundfile's public ``read`` if its internals ever change.
        """
        where = f"frames {self.position}..{self.position + len(out)}"
        handle = self.handle
        try:
            snd, ffi, raw = getattr(sf, "_snd", None), getattr(sf, "_ffi", None), getattr(
                handle, "_file", None)
            if snd is None or ffi is None or raw is None:  # pragma: no cover (internals)
                got = handle.read(len(out), dtype="float32", always_2d=True, out=out)
                n = len(got)
            else:
                n = int(snd.sf_readf_float(raw, ffi.cast("float *", out.ctypes.data),
                                           len(out)))
                error = snd.sf_error(raw)
                if error:
                    message = ffi.string(snd.sf_error_number(error)).decode("utf-8",
                                                                            "replace")
                    log = _log_errors(handle)
                    raise AudioDecodeError(
                        f"cannot decode {self.name}: libsndfile failed while decoding {where}:"
                        f" {message}" + (f" ({log})" if log else ""))
        except ZoundsError:
            raise
        except (sf.SoundFileError, RuntimeError, ValueError, OSError) as exc:
            raise AudioDecodeError(
                f"cannot decode {self.name}: libsndfile failed while decoding {where}: "
                f"{_reason(exc)}") from exc
        n = max(0, n)
        if n and screen:
            self._screen(out[:n])
        self.position += n
        return n

    def _screen(self, block: np.ndarray, first_frame: int | None = None) -> None:
        """Apply the non-finite policy to decoded frames (in place) and count them."""
        if self.on_nonfinite == "keep" or not self.screened:
            return
        bad = ~np.isfinite(block)
        if not bad.any():
            return
        first = self.position if first_frame is None else first_frame
        rows = np.flatnonzero(bad.any(axis=1))
        if self.first_nonfinite is None:
            self.first_nonfinite = first + int(rows[0])
        self.nonfinite += int(bad.sum())
        if self.on_nonfinite == "raise":
            raise AudioDecodeError(
                f"cannot decode {self.name}: non-finite samples (NaN or infinity), the first "
                f"at frame {self.first_nonfinite}; pass on_nonfinite='zero' to replace them "
                f"or 'keep' to accept them")
        if self.on_nonfinite == "zero":
            block[bad] = 0.0

    def warn_nonfinite(self, what: str = "") -> None:
        """The ``"warn"`` policy's one warning for what was read (nothing when clean)."""
        if self.on_nonfinite == "warn" and self.nonfinite:
            warnings.warn(
                f"{self.name}{what}: {self.nonfinite} non-finite samples (NaN or infinity) "
                f"decoded and kept, the first at frame {self.first_nonfinite} (pass "
                f"on_nonfinite='zero' to replace them, 'raise' to refuse the file)",
                NonFiniteSamplesWarning, stacklevel=4)

    def ended(self) -> None:
        """Decoding returned nothing more: refuse a partial decode (module docstring)."""
        expected = self.expected
        if expected is not None and self.position < expected:
            log = _log_errors(self.handle)
            raise AudioDecodeError(
                f"cannot decode {self.name}: decoding stopped at frame {self.position} of "
                f"the {expected} its header announces ("
                + (f"libsndfile: {log}" if log else "the file is truncated or damaged")
                + "); a partial decode is not returned")
        if self.position == 0 and self.format == "OGG" and _log_errors(self.handle):
            # libsndfile reports 0 frames when it cannot find the stream's last page
            raise AudioDecodeError(
                f"cannot decode {self.name}: libsndfile finds no length for this Ogg stream "
                f"({_log_errors(self.handle)}); the file is truncated or damaged")

    def blocks(self) -> Iterator[np.ndarray]:
        """Decoded ``(frames, channels)`` float32 blocks until the end, checked by ``ended``.

        Each read asks for at most ``cap`` frames and, when the header's count is trusted
        and the format is not MP3, no more than the frames it leaves.
        """
        while True:
            want = self.cap
            left = self.remaining()
            if left is not None:
                if left == 0:
                    break
                want = min(want, left)
            out = np.empty((want, self.channels), dtype=np.float32)
            n = self._readf(out)
            if n <= 0:  # a short read is not the end (some decoders return them mid-stream)
                break
            yield out[:n] if n < want else out
        self.ended()

    def seek(self, frame: int) -> None:
        if not frame:
            return
        try:
            self.handle.seek(frame)
        except (sf.SoundFileError, RuntimeError, ValueError) as exc:
            raise AudioDecodeError(
                f"cannot decode {self.name}: seeking to frame {frame} failed: "
                f"{_reason(exc)}") from exc
        self.position = frame


@contextlib.contextmanager
def _open(source, on_nonfinite: str = "warn") -> Iterator[_Reader]:
    """A checked :class:`_Reader` for any source, with libsndfile's errors as ZoundsErrors."""
    with _binary_source(source) as (target, name):
        size = _size_of(target)
        try:
            handle = sf.SoundFile(target)
        except ZoundsError:
            raise
        except (sf.SoundFileError, RuntimeError, TypeError, ValueError, OSError) as exc:
            raise AudioDecodeError(f"cannot decode {name}: {_reason(exc)}") from exc
        with handle:
            yield _Reader(handle, name, size, on_nonfinite)


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
    policy = _nonfinite_policy(on_nonfinite)
    with _open(source, policy) as reader:
        blocks = list(reader.blocks())
        reader.warn_nonfinite()
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
    policy = _nonfinite_policy(on_nonfinite)
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
                  on_nonfinite: str = "warn"):
    """:func:`stream`'s chunks as plain arrays: ``(data, samplerate, first frame)``.

    The same decode, reads, checks and errors as :func:`stream` (which wraps these
    arrays in AudioSamples), for callers that handle many short clips and would pay
    more for labelling each one than for decoding it. Arguments as :func:`stream`
    (``on_nonfinite`` as :func:`stream` resolves it); ``data`` is ``float32``, shaped
    ``(frames,)`` or ``(frames, channels)``.
    """
    policy = _nonfinite_policy(on_nonfinite)
    with _open(source, policy) as reader:
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
                yield _shape(chunk, mono), rate, position
                position += frames
        reader.warn_nonfinite()
        if held or position == 0:
            joined = (np.concatenate(pending) if pending
                      else np.zeros((0, reader.channels), dtype=np.float32))
            yield _shape(joined, mono), rate, position


# --------------------------------------------------------------------------- lazy
class _Info:
    """What ``open_audio`` needs to know about a file before reading it."""

    __slots__ = ("path", "samplerate", "channels", "frames", "format", "subtype", "counted",
                 "safe_seek", "checksums")

    def __init__(self, path, samplerate, channels, frames, fmt, subtype, counted,
                 safe_seek=None, checksums=None):
        self.path, self.samplerate, self.channels, self.frames = path, samplerate, channels, \
            frames
        self.format, self.subtype, self.counted = fmt, subtype, counted
        #: frames past which a seek is not trusted (None: seeking is exact everywhere)
        self.safe_seek = safe_seek
        #: CRC-32 of each block of the straight-through decode (Ogg: seeks are verified)
        self.checksums = checksums


#: frames decoded and dropped before a block of a compressed stream: mpg123 needs about
#: one MP3 frame (1152) plus the bit reservoir to settle after a seek
PREROLL = 8192
#: bytes at the end of an Ogg file holding at least its last two pages (max page 65307)
_OGG_TAIL = 2 * 65307 + 64


def _ogg_last_page_start(path: str, rate: int, subtype: str) -> int | None:
    """Frame at which the last Ogg page starts: the granule of the page before it.

    libsndfile's Ogg seeking lands some samples off (58 in a measured Vorbis file)
    when the target lies in the last page, whose granule trims the stream's end; seeks
    are aimed before that page instead. ``None`` when the pages cannot be parsed.
    """
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _OGG_TAIL))
            tail = f.read()
    except OSError:
        return None
    granules = []
    at = tail.find(b"OggS")
    while at >= 0:
        header = tail[at:at + 27]
        if len(header) == 27 and header[4] == 0:
            granule = int.from_bytes(header[6:14], "little", signed=True)
            if granule >= 0:
                granules.append(granule)
        at = tail.find(b"OggS", at + 4)
    if len(granules) < 2:
        return 0 if granules else None
    before_last = granules[-2]
    if subtype == "OPUS":
        # Opus granules count 48 kHz samples including the pre-skip (<= 80 ms)
        return max(0, before_last * rate // 48000 - rate * 80 // 1000)
    return before_last


def _end_is_readable(path: str, frames: int) -> bool:
    """Whether the header's last frame decodes (a fresh handle, one seek, one read)."""
    try:
        with _open(path, "keep") as reader:
            reader.seek(frames - 1)
            return reader._readf(np.empty((1, reader.channels), dtype=np.float32)) == 1
    except ZoundsError:
        return False


def _block_checksums(blocks: Iterator[np.ndarray], block: int) -> tuple[int, list[int]]:
    """Frames in ``blocks`` and the CRC-32 of each ``block``-frame piece of them."""
    crcs, crc, filled, frames = [], 0, 0, 0
    for piece in blocks:
        frames += len(piece)
        while len(piece):
            take = min(len(piece), block - filled)
            crc = zlib.crc32(np.ascontiguousarray(piece[:take]).data, crc)
            piece, filled = piece[take:], filled + take
            if filled == block:
                crcs.append(crc)
                crc, filled = 0, 0
    if filled:
        crcs.append(crc)
    return frames, crcs


def audio_info(path, block: int | None = None) -> _Info:
    """Rate, channels, format and the verified frame count of an audio file.

    The header's frame count is used when libsndfile trusts it, the format seeks
    exactly and the header's last frame decodes. Otherwise (MP3, Ogg, an unknown or
    placeholder count, an end that does not decode) the file is decoded once, which
    counts its frames and applies :func:`load`'s length rule: a partial decode raises
    the same ``AudioDecodeError`` as :func:`load`. For Ogg, given ``block`` (frames),
    that decode also records the CRC-32 of each block, against which ``open_audio``
    checks what its seeks read.
    """
    path = os.fspath(path)
    with _open(path, "keep") as reader:
        rate, channels = reader.rate, reader.channels
        fmt, subtype = reader.format, reader.subtype
        counted = not (reader.trusted and fmt in _EXACT_SEEK)
        if not counted and reader.expected and not _end_is_readable(path, reader.expected):
            counted = True
        checksums = None
        if counted and fmt == "OGG" and block is not None:
            frames, checksums = _block_checksums(reader.blocks(), block)
        elif counted:
            frames = sum(len(b) for b in reader.blocks())
        else:
            frames = reader.expected or 0
        safe = None
        if fmt == "OGG":
            safe = _ogg_last_page_start(path, int(rate), subtype)
            safe = 0 if safe is None else min(safe, frames)
        return _Info(path, rate, channels, frames, fmt, subtype, counted, safe, checksums)


def _read_straight(path: str, start: int, stop: int, channels: int) -> np.ndarray:
    """Frames ``[start, stop)`` decoded from the file's start, without seeking."""
    out, at = [], 0
    with _open(path, "keep") as reader:
        for piece in reader.blocks():
            lo, hi = max(start - at, 0), min(stop - at, len(piece))
            if lo < hi:
                out.append(piece[lo:hi])
            at += len(piece)
            if at >= stop:
                break
    data = np.concatenate(out) if out else np.zeros((0, channels), dtype=np.float32)
    if len(data) != stop - start:
        raise AudioDecodeError(f"cannot decode {path}: frames {start + len(data)}..{stop} are "
                               f"missing (the file changed since it was opened)")
    return data


def _read_block(path: str, start: int, stop: int, channels: int, squeeze: bool,
                seek_limit: int | None = None, preroll: int = 0,
                on_nonfinite: str = "warn", checksum: int | None = None) -> np.ndarray:
    """Frames ``[start, stop)`` of ``path``: open a fresh handle, seek, read (one dask task).

    A fresh handle per block because libsndfile's Vorbis seeking is unreliable on a
    handle that has already been read or seeked (NOTES.md). Compressed streams seek
    ``preroll`` frames early (and no later than ``seek_limit``) and drop what precedes
    ``start``. With a ``checksum`` (CRC-32 of the block in a straight-through decode),
    a seek that read anything else (a damaged or duplicated Ogg page misleads
    libsndfile's bisection) is replaced by a straight read from the file's start.
    """
    target = start - preroll
    if seek_limit is not None:
        target = min(target, seek_limit - preroll)
    target = max(0, target)
    want = stop - target
    out = np.empty((want, channels), dtype=np.float32)
    with _open(path, on_nonfinite) as reader:
        if reader.channels != channels:
            raise AudioDecodeError(f"cannot decode {reader.name}: it changed since it was "
                                   f"opened ({reader.channels} channels, not {channels})")
        reader.seek(target)
        got = 0
        while got < want:
            # screened below, once the frames before ``start`` are dropped
            if want - got >= reader.cap:
                n = reader._readf(out[got:got + reader.cap], screen=False)
            else:
                # reads of >= 65536 frames keep MP3 output independent of the block layout
                tmp = np.empty((reader.cap, channels), dtype=np.float32)
                n = min(reader._readf(tmp, screen=False), want - got)
                out[got:got + n] = tmp[:n]
            if n <= 0:
                raise AudioDecodeError(
                    f"cannot decode {reader.name}: frames {target + got}..{stop} are missing "
                    f"(the file is shorter than its header says, or changed since it was "
                    f"opened)")
            got += n
        out = out[start - target:]
        if checksum is not None and zlib.crc32(np.ascontiguousarray(out).data) != checksum:
            out = _read_straight(path, start, stop, channels)
        reader._screen(out, first_frame=start)
        reader.warn_nonfinite(f" (frames {start}..{stop})")
    return out[:, 0] if squeeze else out


def _block_frames(chunks, rate: AudioSampleRate) -> int:
    if isinstance(chunks, numbers.Integral) and not isinstance(chunks, (bool, np.timedelta64)):
        frames = int(chunks)
    else:
        frames = math.floor(to_fraction(chunks, name="chunks") / rate.exact_frequency)
    if frames <= 0:
        raise ParameterError(f"chunks={chunks!r} holds no whole frame at {rate!r}")
    return frames


def open_audio(path, chunks=_OPEN_CHUNK, *, on_nonfinite: str = "warn"):
    """Open an audio file lazily: dask-backed AudioSamples that decode on demand.

    Parameters
    ----------
    path : str or os.PathLike
        A local audio file (use :func:`load` or :func:`stream` for bytes, file-likes
        and URLs).
    chunks : np.timedelta64 or int, optional
        Block size, as a duration (whole frames, rounded down) or a number of frames.
        Default 60 s. At most :data:`MAX_BLOCKS` blocks are made.
    on_nonfinite : {"warn", "raise", "zero", "keep"}, optional
        As :func:`load`, applied by each block when it is computed.

    Returns
    -------
    xarray.DataArray [dims=("time",) or ("time", "channel")]
        ``float32`` AudioSamples backed by a dask array with one task per block: open
        the file, seek to the block, read it. A computation reads only the blocks it
        touches.

    Raises
    ------
    AudioFileNotFoundError, AudioDecodeError
        When the file is missing, cannot be opened, has an impossible header or (for
        the formats decoded at opening, see Notes) decodes only partly: checked now,
        eagerly. A block that fails to decode raises ``AudioDecodeError`` when computed.
    ParameterError
        When ``chunks`` holds no whole frame or would make more than
        :data:`MAX_BLOCKS` blocks.

    Notes
    -----
    The length comes from the header when it can be verified: the format seeks exactly
    (WAV, AIFF, FLAC...) and the header's last frame decodes. MP3 and Ogg files, and
    unknown or unverifiable counts, are decoded once now (MP3 headers disagree with
    what decodes; a damaged Ogg page silently drops frames), which gives
    :func:`load`'s length or its error. Values equal :func:`load`'s; for MP3 they
    agree to about 1e-3, libsndfile's MP3 decoding depending slightly on where reading
    starts.

    Examples
    --------
    >>> import tempfile, os, numpy as np, zounds_xr as zx
    >>> path = os.path.join(tempfile.mkdtemp(), "a.wav")
    >>> _ = zx.AudioSamples(np.zeros(44100 * 3), zx.SR44100()).zx.save(path)
    >>> lazy = zx.open_audio(path, chunks=zx.Seconds(1))
    >>> lazy.data.numblocks, lazy.sizes["time"]
    ((3,), 132300)
    """
    import dask.array as da
    from dask.base import tokenize

    if not isinstance(path, (str, os.PathLike)) or (isinstance(path, str) and _URL.match(path)):
        raise ParameterError(
            f"open_audio needs a local file path, got {_describe(path)!r}; use zx.load or "
            f"zx.stream for URLs, bytes and file-like objects")
    policy = _nonfinite_policy(on_nonfinite)
    path = os.fspath(path)
    with _open(path, "keep") as reader:  # the header alone gives the block size
        block = _block_frames(chunks, reader.rate)
    info = audio_info(path, block)
    n_blocks = -(-info.frames // block)
    if n_blocks > MAX_BLOCKS:
        seconds = info.frames / int(info.samplerate)
        raise ParameterError(
            f"open_audio({path!r}, chunks={chunks!r}) would make {n_blocks} blocks of "
            f"{block} frames for {info.frames} frames ({seconds:.6g} s at "
            f"{int(info.samplerate)} Hz), more than {MAX_BLOCKS}; give chunks of at least "
            f"{-(-info.frames // MAX_BLOCKS)} frames")
    squeeze = info.channels == 1
    stat = os.stat(path)
    name = "open_audio-" + tokenize(os.path.abspath(path), stat.st_mtime_ns, stat.st_size,
                                    info.frames, block, policy)
    bounds = [(s, min(s + block, info.frames)) for s in range(0, info.frames, block)]
    sizes = tuple(b - a for a, b in bounds) or (0,)
    graph: dict = {}
    for i, (a, b) in enumerate(bounds):
        key = (name, i) if squeeze else (name, i, 0)
        graph[key] = (_read_block, path, a, b, info.channels, squeeze, info.safe_seek,
                      0 if info.format in _EXACT_SEEK else PREROLL, policy,
                      None if info.checksums is None else info.checksums[i])
    if not bounds:
        empty = np.zeros((0,) if squeeze else (0, info.channels), dtype=np.float32)
        graph[(name, 0) if squeeze else (name, 0, 0)] = empty
    chunk_spec = (sizes,) if squeeze else (sizes, (info.channels,))
    array = da.Array(graph, name, chunks=chunk_spec, dtype=np.float32,
                     meta=np.empty((0,) * len(chunk_spec), dtype=np.float32))
    return AudioSamples(array, info.samplerate)
