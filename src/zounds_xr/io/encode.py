"""Encoding AudioSamples with libsndfile: ``encode`` (to a file-like) and ``save``.

Samples are written block by block (:data:`WRITE_BLOCK` frames per libsndfile call):
dask-backed samples are computed one dask block at a time, so a long signal is never
held in memory whole, and OGG Vorbis never gets the single big write that overflows
libvorbis' stack (python-soundfile#426, NOTES.md). Values outside ``[-1, 1]`` are
clipped before integer PCM encodings, which would otherwise wrap around; NaN and
infinity, which no integer can stand for, are refused there (float subtypes keep them).
"""
from __future__ import annotations

import io
import os
import pathlib
import uuid
from collections.abc import Iterator

import numpy as np
import soundfile as sf
import xarray as xr

from ..core.errors import ParameterError, SampleRateError
from ..timeseries.samplerate import AudioSampleRate

__all__ = ["encode", "save"]

#: frames per libsndfile write; small enough for libvorbis, big enough to be fast
WRITE_BLOCK = 1 << 15
#: file extensions whose format (and subtype) soundfile would not guess
_EXTENSIONS = {
    "oga": ("OGG", None),
    "ogg": ("OGG", None),
    "opus": ("OGG", "OPUS"),
    "aif": ("AIFF", None),
    "aifc": ("AIFF", None),
    "wave": ("WAV", None),
}
#: subtypes whose values are floats (no clipping needed)
_FLOAT_SUBTYPES = {"FLOAT", "DOUBLE", "VORBIS", "OPUS", "MPEG_LAYER_III", "MPEG_LAYER_II",
                   "MPEG_LAYER_I"}


def _check(samples) -> tuple[xr.DataArray, AudioSampleRate]:
    if not isinstance(samples, xr.DataArray):
        raise ParameterError(
            f"encode/save need AudioSamples (a DataArray), got {type(samples).__name__}")
    rate = samples.zx.samplerate  # ParameterError when there is no TimeIndex
    if not isinstance(rate, AudioSampleRate):
        raise SampleRateError(f"cannot encode audio at a non-audio rate {rate!r}")
    extra = set(samples.dims) - {"time", "channel"}
    if "time" not in samples.dims or extra:
        raise ParameterError(
            f"audio to encode must have dims ('time',) or ('time', 'channel'), got "
            f"{samples.dims}")
    if samples.ndim == 2:
        samples = samples.transpose("time", "channel")
    if samples.ndim == 2 and samples.sizes["channel"] == 0:
        raise ParameterError("cannot encode audio with zero channels")
    if not (np.issubdtype(samples.dtype, np.floating) or np.issubdtype(samples.dtype,
                                                                        np.integer)):
        raise ParameterError(f"cannot encode samples of dtype {samples.dtype}")
    return samples, rate


def _format(fmt, subtype, *, where: str) -> tuple[str, str]:
    fmt = str(fmt).upper()
    if fmt not in sf.available_formats():
        raise ParameterError(
            f"unknown audio format {fmt!r} for {where}; libsndfile writes "
            f"{sorted(sf.available_formats())}")
    subtype = sf.default_subtype(fmt) if subtype is None else str(subtype).upper()
    if subtype is None or not sf.check_format(fmt, subtype):
        valid = sorted(sf.available_subtypes(fmt))
        raise ParameterError(
            f"format {fmt!r} cannot hold subtype {subtype!r} ({where}); valid subtypes: "
            f"{valid}")
    return fmt, subtype


def _blocks(samples: xr.DataArray):
    """``(frames, channels)`` numpy blocks of at most WRITE_BLOCK frames, in order."""
    data = samples.data
    pieces: Iterator[np.ndarray]
    if samples.ndim == 1:
        data = data[:, None]
    if hasattr(data, "dask"):
        # one dask block (all channels) computed at a time: bounded memory
        data = data.rechunk({1: -1})
        pieces = (np.asarray(data.blocks[i].compute()) for i in range(data.numblocks[0]))
    else:
        pieces = iter((np.asarray(data),))
    for piece in pieces:
        for start in range(0, len(piece), WRITE_BLOCK):
            yield piece[start:start + WRITE_BLOCK]


def _write(samples: xr.DataArray, rate: AudioSampleRate, target, fmt: str, subtype: str,
           where: str) -> None:
    channels = 1 if samples.ndim == 1 else samples.sizes["channel"]
    try:
        handle = sf.SoundFile(target, mode="w", samplerate=int(rate), channels=channels,
                              format=fmt, subtype=subtype)
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError) as exc:
        reason = getattr(exc, "error_string", None) or str(exc)
        raise ParameterError(
            f"libsndfile cannot write {fmt}/{subtype} at {int(rate)} Hz with {channels} "
            f"channel(s) to {where}: {reason.strip()}") from exc
    clip = subtype not in _FLOAT_SUBTYPES
    with handle:
        written = 0
        for block in _blocks(samples):
            if np.issubdtype(block.dtype, np.floating):
                if clip:
                    bad = ~np.isfinite(block)
                    if bad.any():
                        # libsndfile would turn NaN and infinity into arbitrary integers
                        frame = written + int(np.flatnonzero(bad.any(axis=1))[0])
                        raise ParameterError(
                            f"cannot encode non-finite samples (NaN or infinity, the first "
                            f"at frame {frame}) as {fmt}/{subtype} to {where}: replace them "
                            f"first (e.g. np.nan_to_num) or use a float subtype")
                    block = np.clip(block, -1.0, 1.0)
                if block.dtype not in (np.float32, np.float64):
                    block = block.astype(np.float32)
            elif block.dtype not in (np.int16, np.int32):
                # other integer types have no libsndfile counterpart: scale to [-1, 1)
                info = np.iinfo(block.dtype)
                block = ((block.astype(np.float64) - (info.max + 1 + info.min) / 2)
                         / ((info.max - info.min + 1) / 2))
            handle.write(np.ascontiguousarray(block))
            written += len(block)


def encode(samples, flo=None, fmt: str = "WAV", subtype: str | None = "PCM_16"):
    """Encode AudioSamples with libsndfile into a binary file-like object.

    Parameters
    ----------
    samples : xarray.DataArray [dims=("time",) or ("time", "channel")]
        AudioSamples (numpy- or dask-backed; dask blocks are computed one at a time).
    flo : file-like, optional
        A writable, seekable binary file object; a new ``io.BytesIO`` by default.
    fmt : str, optional
        A libsndfile major format: ``"WAV"``, ``"FLAC"``, ``"OGG"``, ``"MP3"``...
    subtype : str, optional
        A libsndfile subtype valid for ``fmt`` (``"PCM_16"``, ``"FLOAT"``, ``"VORBIS"``,
        ``"OPUS"``...); ``None`` picks the format's default.

    Returns
    -------
    file-like
        ``flo`` holding the encoded audio, rewound to position 0.

    Raises
    ------
    ParameterError
        When ``fmt``/``subtype`` is not a combination libsndfile writes, libsndfile
        refuses the rate or channel count (Opus takes 8/12/16/24/48 kHz only), or
        non-finite samples would be written as integer PCM.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> samples = zx.AudioSamples(np.zeros(11025 * 10), zx.SR11025())
    >>> zx.encode(samples).read(4)
    b'RIFF'
    """
    fmt, subtype = _format(fmt, subtype, where="encode")
    samples, rate = _check(samples)
    flo = io.BytesIO() if flo is None else flo
    if not (hasattr(flo, "write") and hasattr(flo, "seek")):
        raise ParameterError(
            f"flo must be a writable, seekable binary file object, got {type(flo).__name__}")
    _write(samples, rate, flo, fmt, subtype, where=f"<{type(flo).__name__}>")
    flo.seek(0)
    return flo


def _format_from_path(path: pathlib.Path, fmt, subtype) -> tuple[str, str | None]:
    if fmt is not None:
        return fmt, subtype
    ext = path.suffix.lower().lstrip(".")
    if ext in _EXTENSIONS:
        guessed, default_subtype = _EXTENSIONS[ext]
        return guessed, subtype if subtype is not None else default_subtype
    if ext.upper() in sf.available_formats():
        return ext.upper(), subtype
    raise ParameterError(
        f"cannot tell the audio format from the extension of {os.fspath(path)!r}; pass "
        f"fmt= (one of {sorted(sf.available_formats())})")


def save(samples, path, fmt: str | None = None, subtype: str | None = None) -> pathlib.Path:
    """Write AudioSamples to an audio file.

    Parameters
    ----------
    samples : xarray.DataArray [dims=("time",) or ("time", "channel")]
        AudioSamples (numpy- or dask-backed; dask blocks are computed one at a time).
    path : str or os.PathLike
        Destination. Written to a temporary file in the same directory and renamed
        into place, so a failed write never leaves a half-written file at ``path``.
    fmt : str, optional
        libsndfile major format; by default from the extension (``.wav``, ``.flac``,
        ``.ogg``/``.oga`` (Vorbis), ``.opus``, ``.mp3``, ``.aiff``/``.aif``, ``.rf64``...).
    subtype : str, optional
        libsndfile subtype; by default the format's default (PCM_16 for WAV/AIFF/FLAC).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ParameterError
        When the format cannot be told from the extension, or ``fmt``/``subtype`` is
        not a combination libsndfile writes.

    Examples
    --------
    >>> import os, tempfile, numpy as np, zounds_xr as zx
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.flac")
    >>> samples = zx.SineSynthesizer(zx.SR22050()).synthesize(zx.Seconds(1), [440.0])
    >>> zx.save(samples, path).name
    'tone.flac'
    >>> zx.load(path).sizes["time"]
    22050
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ParameterError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = pathlib.Path(path)
    fmt, subtype = _format(*_format_from_path(path, fmt, subtype), where=os.fspath(path))
    samples, rate = _check(samples)
    directory = path.parent if str(path.parent) else pathlib.Path(".")
    if not directory.is_dir():
        raise ParameterError(f"cannot save {os.fspath(path)!r}: {os.fspath(directory)!r} is "
                             f"not a directory")
    # a unique sibling (not mkstemp: that makes the file private, 0600) renamed into place
    tmp = directory / f".{path.name}.{uuid.uuid4().hex}.part"
    try:
        with open(tmp, "xb") as handle:
            _write(samples, rate, handle, fmt, subtype, where=os.fspath(path))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
