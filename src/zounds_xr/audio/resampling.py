"""High-quality sample-rate conversion: :func:`resample` and the stateful :class:`Resampler`.

Engine: libsoxr (python-soxr) at ``VHQ`` quality
    ``benchmarks/bench_resample.py`` compares soxr (HQ, VHQ) with scipy's polyphase
    ``resample_poly`` (its default Kaiser filter, and a long Kaiser filter designed
    for 140 dB) on in-band tones plus out-of-band tones that must vanish. Measured on
    the project's 2-core machine (one thread, 30 s of mono audio):

    ==================  ====================  ===================  ===================
    44.1 -> 11.025 kHz  in-band SNR float64   float32              speed (x realtime)
    ==================  ====================  ===================  ===================
    soxr VHQ            188 dB                151 dB               9 600 - 10 200
    soxr HQ             131 dB                131 dB               12 300 - 13 500
    resample_poly       51 dB                 51 dB                2 700 - 3 000
    resample_poly long  144 dB                144 dB               520
    zx.resample         188 dB                151 dB               8 000 - 8 900
    ==================  ====================  ===================  ===================

    Upsampling 11.025 -> 22.05 kHz: VHQ 191 dB at ~20 000x realtime. soxr VHQ is the
    only candidate that meets both targets (>= 130 dB in band, >= 5000x realtime);
    ``resample_poly`` needs a 369-tap filter for 144 dB and then runs 18x slower,
    because it convolves directly where soxr uses FFTs and multi-stage half-band
    filters. HQ is a little faster but only 131 dB. (float32 output caps SNR at
    ~150 dB.) One caveat, measured: for ratios soxr handles with interpolated
    polyphase coefficients (44.1 <-> 48 kHz) VHQ keeps 183 dB up to 0.45 x Nyquist
    but falls to ~88 dB over 0.45-0.8 x Nyquist (a slight high-frequency roll-off);
    a 14 719-tap ``resample_poly`` keeps 144 dB there at 1/6 of the speed.

Length
    ``n`` input samples give ``ceil(n * new / old)`` output samples (as zounds): 5 s at
    44.1 kHz -> 55125 samples at 11.025 kHz. soxr itself rounds to nearest; the last
    sample, when missing, is produced by flushing a few more zeros through the filter
    (what soxr does at the end anyway) and the output is trimmed to the exact length.

Streaming (:class:`Resampler`)
    soxr's ``ResampleStream`` keeps the filter state across chunks, and its output does
    not depend on how the input is cut: streaming chunk by chunk gives bit for bit the
    result of resampling in one piece. :func:`resample` on numpy input *is* a one-chunk
    stream.

Dask (lazy)
    Each output block is computed independently from its input block plus a halo of
    input samples on each side (longer than soxr's impulse response: ~150 input
    samples at VHQ, times the decimation factor), starting at a multiple of
    ``old / gcd(old, new)`` samples so that the block's output grid coincides with the
    global one. Blocks run in parallel; they match the one-piece result to within
    float rounding of soxr's internal FFT blocking (~1e-10 or better for ratios such as
    44.1 -> 11.025 or 48 -> 44.1 kHz), or to ~3e-6 for the ratios soxr handles with
    interpolated filter coefficients (1234 -> 44100 Hz), not bit for bit.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import xarray as xr

from ..core.validation import axis_index, check_output_size
from .samples import AudioSamples
from ..core.errors import ParameterError
from ..timeseries.index import TimeIndex
from ..timeseries.samplerate import MAX_SAMPLERATE, AudioSampleRate, as_audio_rate

__all__ = ["resample", "Resampler"]

_QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")
#: halo per side, in input samples per unit of max(1, old/new). soxr's impulse response
#: spans up to ~150 of those at VHQ and ~1200 at HQ (measured from 8 to 96 kHz, both
#: ways): these leave a margin of 6x at VHQ and 3x below it
HALO = {"VHQ": 1024}
HALO_DEFAULT = 4096


def _soxr():
    try:
        import soxr
    except ImportError as exc:  # pragma: no cover (soxr is a core dependency)
        raise ImportError("resampling needs python-soxr: python -m pip install soxr") from exc
    return soxr


def _target_rate(samplerate) -> AudioSampleRate:
    """Return the rate to convert to, refused above :data:`MAX_SAMPLERATE`.

    Return the rate to convert to, refused above :data:`MAX_SAMPLERATE` before soxr sizes
    its filters and output by it.
    """
    rate = as_audio_rate(samplerate)
    if int(rate) > MAX_SAMPLERATE:
        raise ParameterError(
            f"cannot resample to {int(rate)} Hz: above the {MAX_SAMPLERATE} Hz of any audio "
            f"format (zounds_xr.timeseries.samplerate.MAX_SAMPLERATE)")
    return rate


def _quality(quality) -> str:
    q = str(quality).upper()
    if q not in _QUALITIES:
        raise ParameterError(f"quality must be one of {_QUALITIES}, got {quality!r}")
    return q


def _float_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    # soxr computes in float32 or float64; other inputs are resampled as float64
    return dtype if dtype in (np.dtype(np.float32), np.dtype(np.float64)) else np.dtype(
        np.float64)


def _audio_rate_of(samples: xr.DataArray) -> AudioSampleRate:
    rate = samples.zx.samplerate  # ParameterError when there is no TimeIndex
    return as_audio_rate(rate, name="the samples' rate")


def _out_length(n: int, old: int, new: int) -> int:
    return -(-n * new // old)


def _check_size(frames: int, rest: tuple, dtype, old: int, new: int) -> None:
    """Refuse, before soxr allocates it, an output that cannot fit in memory."""
    check_output_size((frames, *rest), dtype, f"resampling {old} Hz to {new} Hz")


class Resampler:
    """Resample a stream of AudioSamples chunks, carrying the filter state across them.

    Parameters
    ----------
    samplerate : AudioSampleRate or int
        The rate to convert to.
    quality : {"VHQ", "HQ", "MQ", "LQ", "QQ"}, optional
        soxr's quality preset; ``"VHQ"`` (default) keeps > 130 dB in band.

    Notes
    -----
    The input rate, channel count and dtype are taken from the first chunk; later
    chunks must agree. Output chunks have variable lengths (the filter's latency is
    paid on the first chunk and recovered by the last); over the whole stream their
    lengths add up to ``ceil(n * new / old)`` and their values equal
    ``resample(whole)`` exactly. Each output chunk's ``time`` index starts where the
    previous one ended (the first at the first input chunk's start).

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> from zounds_xr import Resampler
    >>> samples = zx.NoiseSynthesizer(zx.SR44100(), seed=0).synthesize(zx.Seconds(1))
    >>> r = Resampler(zx.SR11025())
    >>> parts = [r.process(samples[i:i + 10000]) for i in range(0, 44100, 10000)]
    >>> parts.append(r.flush())
    >>> sum(p.sizes["time"] for p in parts)
    11025
    >>> bool(np.array_equal(np.concatenate([p.values for p in parts]),
    ...                     zx.resample(samples, zx.SR11025()).values))
    True
    """

    def __init__(self, samplerate, *, quality: str = "VHQ"):
        self.samplerate = _target_rate(samplerate)
        self.quality = _quality(quality)
        self._from: AudioSampleRate | None = None
        self._channels: int | None = None  # 0 means 1-D (no channel axis)
        self._dtype: np.dtype | None = None
        self._stream = None
        self._start: Fraction | None = None
        self._n_in = 0
        self._n_out = 0
        self._done = False

    # ------------------------------------------------------------------ state
    @property
    def frames_in(self) -> int:
        """Input frames consumed so far."""
        return self._n_in

    @property
    def frames_out(self) -> int:
        """Output frames produced so far."""
        return self._n_out

    def _setup(self, rate: AudioSampleRate, channels: int, dtype: np.dtype, start: Fraction):
        self._from, self._channels, self._dtype, self._start = rate, channels, dtype, start
        if int(rate) != int(self.samplerate):
            self._stream = _soxr().ResampleStream(int(rate), int(self.samplerate),
                                                  max(channels, 1), dtype=dtype.name,
                                                  quality=self.quality)

    def _coerce(self, chunk):
        if isinstance(chunk, xr.DataArray):
            rate = _audio_rate_of(chunk)
            start = axis_index(chunk, "time", TimeIndex, what="an audio chunk").start
            if chunk.ndim == 2:
                chunk = chunk.transpose("time", "channel")
            elif chunk.dims != ("time",):
                raise ParameterError(
                    f"audio chunks must have dims ('time',) or ('time', 'channel'), got "
                    f"{chunk.dims}")
            data = np.asarray(chunk.data)
        else:
            if self._from is None:
                raise ParameterError(
                    "the first chunk must be AudioSamples (a DataArray) to know its rate")
            rate, start, data = self._from, None, np.asarray(chunk)
        if data.ndim not in (1, 2):
            raise ParameterError(f"audio chunks must be 1-D or 2-D, got shape {data.shape}")
        channels = 0 if data.ndim == 1 else data.shape[1]
        if self._from is None:
            self._setup(rate, channels, _float_dtype(data.dtype),
                        Fraction(0) if start is None else start)
        elif rate != self._from or channels != self._channels:
            raise ParameterError(
                f"chunk at {rate!r} with {max(channels, 1)} channel(s) does not continue a "
                f"stream at {self._from!r} with {max(self._channels or 0, 1)} channel(s)")
        return np.ascontiguousarray(data, dtype=self._dtype)

    def _wrap(self, out: np.ndarray) -> xr.DataArray:
        start = (self._start or Fraction(0)) + Fraction(self._n_out, int(self.samplerate))
        self._n_out += len(out)
        return AudioSamples(out, self.samplerate, start=start)

    # ------------------------------------------------------------------ processing
    def process(self, chunk, last: bool = False) -> xr.DataArray:
        """Resample the next chunk.

        Parameters
        ----------
        chunk : xarray.DataArray [dims=("time",) or ("time", "channel")] or numpy.ndarray
            The next input chunk (the first must be AudioSamples; later ones may be
            arrays of the same layout).
        last : bool, optional
            This is the final chunk: flush the filter and complete the exact length.

        Returns
        -------
        xarray.DataArray [dims=("time",) or ("time", "channel")]
            AudioSamples at the new rate (possibly empty), continuing the output stream.

        Raises
        ------
        ParameterError
            After the stream was finished, or when the chunk's rate or channel count
            changes.
        """
        if self._done:
            raise ParameterError("this Resampler has finished (last=True was given); make "
                                 "a new one for another stream")
        data = self._coerce(chunk)
        n = len(data)
        if self._stream is not None:
            _check_size(_out_length(n, int(self._from), int(self.samplerate)) + 1,
                        data.shape[1:], self._dtype, int(self._from), int(self.samplerate))
        self._n_in += n
        if self._stream is None:  # same rate: pass through
            self._done = bool(last)
            return self._wrap(data.copy())
        if last:
            self._done = True
            old, new = int(self._from), int(self.samplerate)
            target = _out_length(self._n_in, old, new)
            # soxr rounds the total to nearest; flushing a few zeros more through the
            # filter yields the sample needed for ceil(n * new / old)
            pad = np.zeros((math.ceil(old / new) + 2,) + data.shape[1:], dtype=self._dtype)
            out = self._stream.resample_chunk(np.concatenate([data, pad]), last=True)
            out = out[:max(target - self._n_out, 0)]
        elif n == 0:
            out = np.zeros((0,) + data.shape[1:], dtype=self._dtype)
        else:
            out = self._stream.resample_chunk(data, last=False)
        return self._wrap(np.ascontiguousarray(out, dtype=self._dtype))

    def flush(self) -> xr.DataArray:
        """End the stream: the remaining output (``process`` of an empty last chunk)."""
        if self._from is None:
            raise ParameterError("nothing to flush: no chunk was processed")
        shape = (0,) if not self._channels else (0, int(self._channels))
        empty = np.zeros(shape, dtype=self._dtype or np.float64)
        return self.process(empty, last=True)


def _resample_numpy(data: np.ndarray, old: int, new: int, quality: str) -> np.ndarray:
    """One-piece resampling of a ``(time,)`` or ``(time, channel)`` numpy array.

    soxr's one-shot call, which gives bit for bit what its stream gives (tested), at
    less cost; only when its rounded length falls one short of ``ceil(n * new / old)``
    are a few zeros flushed through the filter, as :meth:`Resampler.process` does.
    """
    dtype = _float_dtype(data.dtype)
    target = _out_length(len(data), old, new)
    _check_size(target, data.shape[1:], dtype, old, new)
    if data.ndim == 2 and data.shape[1] > 1 and len(data):
        # channel by channel, each a contiguous column in and out (Fortran order): the
        # same values as soxr's multi-channel call, which costs ~1.4x more per channel
        # (bench_corpus.py --profile: 19 clips stacked as channels)
        out = np.empty((target, data.shape[1]), dtype=dtype, order="F")
        for c in range(data.shape[1]):
            out[:, c] = _resample_numpy(data[:, c], old, new, quality)
        return out
    data = np.ascontiguousarray(data, dtype=dtype)
    if len(data) == 0:
        return np.zeros((0,) + data.shape[1:], dtype=dtype)
    out = _soxr().resample(data, old, new, quality=quality)
    if len(out) < target:
        pad = np.zeros((math.ceil(old / new) + 2,) + data.shape[1:], dtype=dtype)
        out = _soxr().resample(np.concatenate([data, pad]), old, new, quality=quality)
    return np.ascontiguousarray(out[:target], dtype=dtype)


def _resample_segment(segment: np.ndarray, old: int, new: int, quality: str, skip: int,
                      size: int) -> np.ndarray:
    """Output samples ``[skip, skip + size)`` of one halo-padded input segment."""
    out = _resample_numpy(np.asarray(segment), old, new, quality)
    return out[skip:skip + size]


def _resample_dask(data, old: int, new: int, quality: str):
    """Lazy resampling: one task per input block, each with an aligned halo."""
    import dask.array as da
    from dask import delayed

    n = data.shape[0]
    if data.ndim == 2:
        data = data.rechunk({1: -1})
    dtype = _float_dtype(data.dtype)
    period = old // math.gcd(old, new)  # input samples per whole cycle of output phase
    halo = HALO.get(quality, HALO_DEFAULT) * max(1, math.ceil(old / new))
    edges = np.concatenate([[0], np.cumsum(data.chunks[0])]).tolist()
    out_edges = [_out_length(e, old, new) for e in edges]
    parts = []
    for j in range(len(edges) - 1):
        o0, o1 = out_edges[j], out_edges[j + 1]
        if o1 == o0:
            continue
        # input span of the output block, widened by the halo; the start snapped down
        # to a multiple of ``period`` so that the segment's output grid is the global one
        first = max(0, (math.floor(Fraction(o0 * old, new)) - halo) // period * period)
        stop = min(n, math.ceil(Fraction(o1 * old, new)) + halo + 1)
        skip = first * new // old
        shape = (o1 - o0,) + data.shape[1:]
        # the task resamples its halo'd segment whole before trimming it
        _check_size(_out_length(stop - first, old, new), data.shape[1:], dtype, old, new)
        task = delayed(_resample_segment, pure=True)(data[first:stop], old, new, quality,
                                                     o0 - skip, o1 - o0)
        parts.append(da.from_delayed(task, shape=shape, dtype=dtype))
    if not parts:
        return da.zeros((_out_length(n, old, new),) + data.shape[1:], dtype=dtype)
    return da.concatenate(parts) if len(parts) > 1 else parts[0]


def resample(samples, samplerate, *, quality: str = "VHQ") -> xr.DataArray:
    """Convert AudioSamples to another sample rate (soxr, very high quality).

    Parameters
    ----------
    samples : xarray.DataArray [dims=("time",) or ("time", "channel")]
        AudioSamples, numpy- or dask-backed.
    samplerate : AudioSampleRate or int
        The new rate.
    quality : {"VHQ", "HQ", "MQ", "LQ", "QQ"}, optional
        soxr's quality preset.

    Returns
    -------
    xarray.DataArray [dims=("time",) or ("time", "channel")]
        AudioSamples at ``samplerate`` with ``ceil(n * new / old)`` samples, the same
        start time, the same channels and dtype (float32/float64; other dtypes give
        float64). Lazy when ``samples`` is dask-backed (see the module docstring).

    Raises
    ------
    ParameterError
        When ``samples`` has no audio time axis or other dims, or the output (of a
        dask block, for lazy input) would not fit in memory (more than
        ``_validation.MAX_OUTPUT_BYTES``; the message gives its size).
    SampleRateError
        When ``samplerate`` is not an audio rate.

    Examples
    --------
    >>> import zounds_xr as zx
    >>> samples = zx.SineSynthesizer(zx.SR44100()).synthesize(zx.Seconds(5), [220.0, 440.0])
    >>> out = zx.resample(samples, zx.SR11025())
    >>> out.sizes["time"], out.zx.samplerate
    (55125, SR11025())
    """
    if not isinstance(samples, xr.DataArray):
        raise ParameterError(f"resample needs AudioSamples (a DataArray), got "
                             f"{type(samples).__name__}")
    new_rate = _target_rate(samplerate)
    quality = _quality(quality)
    old_rate = _audio_rate_of(samples)
    if samples.ndim == 2 and "channel" in samples.dims and "time" in samples.dims:
        samples = samples.transpose("time", "channel")
    elif samples.dims != ("time",):
        raise ParameterError(
            f"resample needs dims ('time',) or ('time', 'channel'), got {samples.dims}")
    start = samples.xindexes["time"].start
    if new_rate == old_rate:
        return samples
    old, new = int(old_rate), int(new_rate)
    data = samples.data
    if hasattr(data, "dask"):
        out = _resample_dask(data, old, new, quality)
    else:
        out = _resample_numpy(np.asarray(data), old, new, quality)
    return AudioSamples(out, new_rate, start=start, name=samples.name)
