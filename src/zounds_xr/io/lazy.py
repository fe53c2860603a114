"""``open_audio``: a file as dask-backed AudioSamples, one task per block.

Each block opens the file, seeks and reads; seeks are trusted only where the format's
seeking is exact, and Ogg seeks are checked against the block checksums of one
straight decode (see :func:`open_audio`'s Notes). Values and lengths are
:func:`~zounds_xr.io.decode.load`'s (the rules of :mod:`zounds_xr.io.reader`).
"""
from __future__ import annotations

import math
import numbers
import os
import zlib
from collections.abc import Iterator

import numpy as np

from ..audio.samples import AudioSamples
from ..core.errors import AudioDecodeError, ParameterError, ZoundsError
from ..timeseries.durations import to_fraction
from ..timeseries.samplerate import AudioSampleRate
from .nonfinite import nonfinite_policy
from .reader import open_reader
from .sources import URL, describe

__all__ = ["MAX_BLOCKS", "PREROLL", "audio_info", "open_audio"]

#: the most blocks ``open_audio`` builds a graph of (beyond it, ask for larger chunks)
MAX_BLOCKS = 10_000
#: formats whose seeking is sample-exact (uncompressed PCM, and FLAC's seek table)
_EXACT_SEEK = {"WAV", "WAVEX", "RF64", "AIFF", "AU", "CAF", "W64", "FLAC", "RAW", "NIST",
               "IRCAM"}
#: default block of ``open_audio``
_OPEN_CHUNK = np.timedelta64(60, "s")


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
        with open_reader(path, "keep") as reader:
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
    with open_reader(path, "keep") as reader:
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
    with open_reader(path, "keep") as reader:
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
    with open_reader(path, on_nonfinite) as reader:
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
        reader.nonfinite.screen(out, start)
        reader.nonfinite.warn(f" (frames {start}..{stop})")
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

    if not isinstance(path, (str, os.PathLike)) or (isinstance(path, str) and URL.match(path)):
        raise ParameterError(
            f"open_audio needs a local file path, got {describe(path)!r}; use zx.load or "
            f"zx.stream for URLs, bytes and file-like objects")
    policy = nonfinite_policy(on_nonfinite)
    path = os.fspath(path)
    with open_reader(path, "keep") as reader:  # the header alone gives the block size
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
