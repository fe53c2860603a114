"""One checked libsndfile handle, read in bounded blocks: the decoding every path shares.

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
    :class:`~zounds_xr.core.errors.AudioDecodeError` naming the field.

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

Errors
    A missing path raises :class:`~zounds_xr.core.errors.AudioFileNotFoundError` (also a
    ``FileNotFoundError``); anything libsndfile cannot decode raises
    :class:`~zounds_xr.core.errors.AudioDecodeError` naming the source and libsndfile's
    reason. A valid file with zero frames is not an error: it gives empty samples.
"""
from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from typing import cast

import numpy as np
import soundfile as sf

from ..core.errors import AudioDecodeError, ZoundsError
from ..timeseries.samplerate import MAX_SAMPLERATE, AudioSampleRate, audio_sample_rate
from .nonfinite import NonFiniteScreen
from .sources import binary_source

__all__ = ["MAX_CHANNELS", "MAX_SAMPLERATE", "READ_BLOCK", "READ_BYTES", "Reader",
           "open_reader", "read_pcm"]

#: subtypes whose samples are integers (libsndfile scales them to finite floats)
_INTEGER_SUBTYPES = frozenset({"PCM_S8", "PCM_U8", "ULAW", "ALAW", "PCM_16", "PCM_24",
                               "PCM_32"})
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
#: 16-bit PCM is read as the shorts it stores and scaled by ``2**-15`` here, as libsndfile
#: scales it (``float(x) * 2**-15``, exact): the same floats as libsndfile's float read,
#: which costs 5x as much (outside FLAC, whose decoder hands out the samples otherwise)
_SHORT_SCALE = np.float32(2.0 ** -15)
#: a header frame count at or above this is a placeholder, not a length
_ABSURD_FRAMES = 1 << 62
#: lines of libsndfile's log that report an error or damage
_LOG_ERROR = re.compile(r"error|unexpected|junk|failed|hole|corrupt", re.IGNORECASE)
#: lines of libsndfile's log that say an Ogg stream is damaged (its length is then wrong)
_OGG_DAMAGE = re.compile(r"hole|corrupt|ended unexpectedly", re.IGNORECASE)


def _reads_shorts(container: str | None, subtype: str | None) -> bool:
    """Whether samples of this format are read as shorts (see ``_SHORT_SCALE``)."""
    return subtype == "PCM_16" and container != "FLAC"


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
    """Return the error lines of libsndfile's log for this file ('' when there are none)."""
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


class Reader:
    """An open libsndfile handle whose header was checked, read in bounded blocks.

    Tracks the decoding position, applies the non-finite policy to what it decodes and
    enforces the length rule of the module docstring.
    """

    def __init__(self, handle: sf.SoundFile, name: str, size: int | None,
                 on_nonfinite: str = "warn"):
        self.handle, self.name, self.size = handle, name, size
        self.format, self.subtype = handle.format, handle.subtype
        #: the non-finite policy applied to what is decoded; integer PCM decodes to
        #: finite floats, so it is not screened (that cost a third of decoding PCM_16)
        self.nonfinite = NonFiniteScreen(
            "keep" if self.subtype in _INTEGER_SUBTYPES else on_nonfinite, name)
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
        #: the header's count is exact and the file's size holds it (uncompressed PCM)
        self.exact = self.trusted and self.size is not None and \
            self.subtype in _PCM_BYTES and self.format not in ("FLAC", "OGG", "MP3")
        #: frames per read: READ_BLOCK (MP3 needs reads this large), fewer for many channels
        self.cap = max(1, min(READ_BLOCK, READ_BYTES // (4 * self.channels)))
        self.position = 0
        #: the shorts of one read (see ``_SHORT_SCALE``); ``None``: read floats
        self._shorts = (np.empty((self.cap, self.channels), dtype=np.int16)
                        if _reads_shorts(self.format, self.subtype) else None)

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
        """Frames the trusted header count leaves to read (``None`` when untrusted)."""
        return None if self.expected is None else max(0, self.expected - self.position)

    def _readf(self, out: np.ndarray, screen: bool = True) -> int:
        """Decode up to ``len(out)`` frames into ``out`` (float32, C-contiguous, 2-D).

        Calls libsndfile's ``sf_readf_float`` (``sf_readf_short`` for 16-bit PCM, see
        ``_SHORT_SCALE``) directly: soundfile's ``read`` sizes its buffer by the header's
        frame count, which is wrong for files whose header lies.
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
                if self._shorts is None:
                    n = int(snd.sf_readf_float(raw, ffi.cast("float *", out.ctypes.data),
                                               len(out)))
                else:
                    n = self._read_shorts(snd, ffi, raw, out)
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
            self.nonfinite.screen(out[:n], self.position)
        self.position += n
        return n

    def _read_shorts(self, snd, ffi, raw, out: np.ndarray) -> int:
        """Fill ``out`` from 16-bit PCM read as shorts, a block of ``cap`` frames at a time.

        Returns the frames read (fewer at the end, or where a read falls short).
        """
        pcm = self._shorts
        assert pcm is not None
        done = 0
        while done < len(out):
            want = min(len(pcm), len(out) - done)
            n = max(0, int(snd.sf_readf_short(raw, ffi.cast("short *", pcm.ctypes.data),
                                              want)))
            np.multiply(pcm[:n], _SHORT_SCALE, out=out[done:done + n])
            done += n
            if n < want:
                break
        return done

    def fill(self, out: np.ndarray) -> int:
        """Decode into ``out`` (float32 ``(frames, channels)``, C-contiguous) until it is full.

        Reads of at most ``cap`` frames; returns the frames decoded (fewer only where
        decoding ended: then call :meth:`ended`).
        """
        done = 0
        while done < len(out):
            n = self._readf(out[done:done + self.cap])
            if n <= 0:
                break
            done += n
        return done

    def chunks(self, frames: int) -> Iterator[np.ndarray]:
        """Yield decoded chunks of ``frames`` frames (the last one shorter) to the end.

        Where the header's count is exact (:attr:`exact`) each chunk is decoded in
        place into its own array; otherwise it is assembled from :meth:`blocks`, so
        that no buffer is ever sized by a count the file may not hold. The end is
        checked by :meth:`ended` before the last chunk is yielded.
        """
        if not self.exact:
            pending: list[np.ndarray] = []
            held = 0
            for block in self.blocks():  # checks the end when exhausted
                pending.append(block)
                held += len(block)
                while held >= frames:
                    joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
                    chunk, rest = joined[:frames], joined[frames:]
                    pending, held = ([rest] if len(rest) else []), len(rest)
                    yield chunk
            if held:
                yield np.concatenate(pending) if len(pending) > 1 else pending[0]
            return
        while True:
            want = min(frames, cast(int, self.remaining()))
            if want == 0:
                break
            out = np.empty((want, self.channels), dtype=np.float32)
            if self.fill(out) < want:
                break  # decoding ended before the count: ended() raises
            yield out
        self.ended()

    def ended(self) -> None:
        """Refuse a partial decode once decoding returns nothing more (module docstring)."""
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
        """Yield decoded ``(frames, channels)`` float32 blocks until the end, checked by ``ended``.

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
        """Move to ``frame`` (``AudioDecodeError`` when libsndfile cannot)."""
        if not frame:
            return
        try:
            self.handle.seek(frame)
        except (sf.SoundFileError, RuntimeError, ValueError) as exc:
            raise AudioDecodeError(
                f"cannot decode {self.name}: seeking to frame {frame} failed: "
                f"{_reason(exc)}") from exc
        self.position = frame


#: container formats whose integer PCM :func:`read_pcm` decodes (exact frame counts,
#: nothing in libsndfile's log to check, unlike Ogg; MP3 counts are estimates)
_PCM_FORMATS = frozenset({"WAV", "WAVEX", "RF64", "W64", "AIFF", "CAF", "FLAC"})
#: libsndfile's format and subtype codes by name (soundfile's tables), inverted once
_NAMES: dict[str, dict[int, str]] = {}


def read_pcm(path: str, max_frames: Callable[[AudioSampleRate, int], int],
             ) -> tuple[np.ndarray, AudioSampleRate] | None:
    """Decode a local file of integer PCM in one libsndfile read, with few Python steps.

    The fast path of :func:`~zounds_xr.io.decode.stream_arrays` for short clips: the
    same samples as :class:`Reader`'s blocks (integer PCM decodes the same whatever the
    read size) after the same header checks, at a fraction of the cost of opening a
    ``soundfile.SoundFile`` (short clips spent more time there than decoding); 16-bit
    PCM outside FLAC is read as shorts and scaled by ``2**-15`` here, as libsndfile
    scales it.

    Parameters
    ----------
    path : str
        A local path.
    max_frames : callable
        ``max_frames(rate, channels)``: the most frames to decode (a stream chunk).

    Returns
    -------
    (numpy.ndarray, AudioSampleRate) or None
        ``float32`` samples ``(frames, channels)`` and the rate; ``None`` when the file
        does not qualify (not integer PCM in one of ``_PCM_FORMATS``, empty, longer
        than ``max_frames`` or :data:`READ_BYTES`) or anything is in doubt (it cannot
        be opened, a header check fails, a short read, an error): :func:`open_reader`
        then decodes it with its checks and its errors.
    """
    snd, ffi = getattr(sf, "_snd", None), getattr(sf, "_ffi", None)
    if snd is None or ffi is None or not isinstance(path, str):  # pragma: no cover
        return None
    if not _NAMES:
        _NAMES["format"] = {v: k for k, v in sf._formats.items()}
        _NAMES["subtype"] = {v: k for k, v in sf._subtypes.items()}
    info = ffi.new("SF_INFO*")
    handle = snd.sf_open(os.fsencode(path), snd.SFM_READ, info)
    if handle == ffi.NULL:  # the reader says why
        return None
    try:
        container = _NAMES["format"].get(info.format & 0x0FFF0000)
        subtype = _NAMES["subtype"].get(info.format & 0xFFFF)
        frames, channels, rate = int(info.frames), int(info.channels), int(info.samplerate)
        if container not in _PCM_FORMATS or subtype not in _INTEGER_SUBTYPES \
                or not 1 <= channels <= MAX_CHANNELS or not 0 < rate <= MAX_SAMPLERATE \
                or not 0 < frames < _ABSURD_FRAMES or frames * channels * 4 > READ_BYTES:
            return None
        size = os.path.getsize(path)
        limit = size * _FRAMES_PER_BYTE if container == "FLAC" else \
            size // (_PCM_BYTES[subtype] * channels)
        if frames > limit:
            return None
        samplerate = audio_sample_rate(rate)
        if frames > max_frames(samplerate, channels):
            return None
        if _reads_shorts(container, subtype):
            pcm = np.empty((frames, channels), dtype=np.int16)
            got = snd.sf_readf_short(handle, ffi.cast("short *", pcm.ctypes.data), frames)
            out = np.multiply(pcm, _SHORT_SCALE)
        else:
            out = np.empty((frames, channels), dtype=np.float32)
            got = snd.sf_readf_float(handle, ffi.cast("float *", out.ctypes.data), frames)
        if got != frames or snd.sf_error(handle):
            return None
        return out, samplerate
    except (ZoundsError, OSError):  # the reader raises it, or says why
        return None
    finally:
        snd.sf_close(handle)


@contextlib.contextmanager
def open_reader(source, on_nonfinite: str = "warn") -> Iterator[Reader]:
    """Return a checked :class:`Reader` for any source, with libsndfile's errors as ZoundsErrors."""
    with binary_source(source) as (target, name):
        size = _size_of(target)
        try:
            handle = sf.SoundFile(target)
        except ZoundsError:
            raise
        except (sf.SoundFileError, RuntimeError, TypeError, ValueError, OSError) as exc:
            raise AudioDecodeError(f"cannot decode {name}: {_reason(exc)}") from exc
        with handle:
            yield Reader(handle, name, size, on_nonfinite)
