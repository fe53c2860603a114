"""Short-time transforms over the ``window`` dim: ``fft``, ``stft``, ``dct``, ``dctiv``, ``mdct``.

Conventions (shared by every function here)
-------------------------------------------
- Input: a DataArray with a ``window`` dim carrying a ``TimeIndex`` (the output of
  :func:`~zounds_xr.spectral.sliding.sliding_window`); the transform runs along
  ``window`` and a ``frequency`` dim (a ``FrequencyIndex``) takes its place. Every
  other dim and label is kept: ``spec.zx.dimensions[0] == windowed.zx.dimensions[0]``.
- Numpy in -> numpy out; dask in -> lazy dask out, chunked along ``time`` only (the
  transformed axis is one chunk). No data is computed to validate anything.
- Precision: float32 in -> complex64 (``fft``) or float32 (``dct``/``dctiv``/``mdct``)
  out, computed in single precision by ``scipy.fft`` (relative error ~1e-7 of the
  frame's energy); float64 (and integer) in -> complex128/float64.
- ``fft`` is unnormalised, as ``numpy.fft.rfft``; ``dct`` (type II), ``dctiv`` and
  ``mdct`` are orthonormal (``norm="ortho"``), so their synthesizers invert them with
  the same transform.
- Frames start at ``t = 0``: no centre padding (librosa's ``center=False``).

Frequency axes
--------------
- ``fft``/``stft``: ``LinearScale.from_rfft(n, sr)``: ``n // 2 + 1`` one-bin-wide bands
  centred on ``np.fft.rfftfreq(n, 1 / sr)``.
- ``dct``, ``dctiv``: ``LinearScale.from_sample_rate(rate, n)``: ``n`` bands from 0 Hz
  to the Nyquist frequency (zounds; DCT-IV basis ``k`` sits at the centre of band ``k``).
- ``mdct``: ``n / 2`` bands from 0 Hz to Nyquist (basis ``k`` at ``(k + ½) sr / n``).
"""
from __future__ import annotations

import numbers
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import dask.array as da
from dask.base import tokenize
import numpy as np
import scipy.fft
import xarray as xr

from ..arrays import with_labels
from ..dimensions import axis_index
from ..errors import ParameterError
from ..timeseries.index import TimeIndex
from ..timeseries.samplerate import SampleRate
from ..windowing import HanningWindowingFunc
from .sliding import (
    float_dtype,
    frame_apply,
    frame_layout,
    frame_view,
    map_frame_blocks,
    window_array,
)

__all__ = ["fft", "stft", "dct", "dctiv", "mdct", "mdct_array", "imdct_array"]

#: bytes of windowed frames transformed at once by stft (fits in L2 with its spectrum)
_STFT_BLOCK_BYTES = 2**20


# --------------------------------------------------------------------------- helpers
def _window_index(x: xr.DataArray) -> TimeIndex:
    index = axis_index(x, "window", TimeIndex, what="windowed data",
                       hint="the output of zx.sliding_window")
    if "frequency" in x.dims:
        raise ParameterError("x already has a 'frequency' dim; transform along 'window' would "
                             "give a second one")
    return index


def _complex_dtype(dtype) -> np.dtype:
    return np.result_type(float_dtype(dtype), np.complex64)


def _real_dtype(dtype) -> np.dtype:
    dtype = float_dtype(dtype)
    if dtype.kind == "c":
        raise ParameterError(f"this transform needs real input, got {dtype}")
    return dtype


def _frequency_coords(scale) -> xr.Coordinates:
    from ..frequency.index import frequency_coords

    return frequency_coords(scale, dim="frequency")


class _AlongAxis:
    """Apply ``kind`` of transform along ``axis`` (a picklable, tokenizable callable)."""

    def __init__(self, kind: str, axis: int, n: int | None = None):
        self.kind, self.axis, self.n = kind, axis, n

    def __call__(self, block: np.ndarray) -> np.ndarray:
        if self.kind == "rfft":
            return scipy.fft.rfft(block, n=self.n, axis=self.axis, workers=1)
        if self.kind == "dct":
            return scipy.fft.dct(block, type=2, norm="ortho", axis=self.axis, workers=1)
        if self.kind == "dctiv":
            return scipy.fft.dct(block, type=4, norm="ortho", axis=self.axis, workers=1)
        if self.kind == "mdct":
            return mdct_array(block, axis=self.axis)
        raise ParameterError(f"unknown transform {self.kind!r}")

    def __dask_tokenize__(self):
        return (type(self).__name__, self.kind, self.axis, self.n)


def _over_window(x: xr.DataArray, func: _AlongAxis, out_len: int, dtype, scale,
                 name: str) -> xr.DataArray:
    """Run ``func`` along ``window`` and label the result's ``frequency`` axis."""
    axis = x.dims.index("window")
    data = x.data
    if isinstance(data, da.Array):
        if len(data.chunks[axis]) > 1:
            data = data.rechunk({axis: -1})
        chunks = list(data.chunks)
        chunks[axis] = (out_len,)
        out = data.map_blocks(func, chunks=tuple(chunks), dtype=dtype,
                              name=f"{name}-{tokenize(data, func)}",
                              meta=np.empty((0,) * data.ndim, dtype=dtype))
    else:
        out = np.asarray(func(np.asarray(data)), dtype=dtype)
    dims = list(x.dims)
    dims[axis] = "frequency"
    like = x.drop_vars([k for k, v in x.coords.items() if "window" in v.dims])
    return with_labels(out, like, dims, coords=_frequency_coords(scale))


def _audio_rate(index: TimeIndex) -> SampleRate:
    """The rate of the window positions (an AudioSampleRate for audio)."""
    return index.samplerate


def _samples_per_second(index: TimeIndex):
    rate = index.samplerate
    return int(rate) if hasattr(rate, "__int__") else rate.samples_per_second


# --------------------------------------------------------------------------- fft
def fft(x: xr.DataArray, padding_samples: int = 0) -> xr.DataArray:
    """Real FFT of every window: ``scipy.fft.rfft`` along ``window`` (unnormalised).

    Parameters
    ----------
    x : xarray.DataArray [dims=(..., "window", ...)]
        Windowed data, e.g. from :func:`~zounds_xr.sliding_window`.
    padding_samples : int, default 0
        Zeros appended to each window before the transform (``n = window + padding``),
        as zounds' ``FFT(padding_samples=...)``.

    Returns
    -------
    xarray.DataArray [dims: ``window`` replaced by ``frequency``]
        Complex coefficients (complex64 for float32 input, complex128 otherwise) on a
        ``LinearScale.from_rfft(n, sr)`` axis, ``sr`` being the rate of the ``window``
        positions: bins labelled by ``np.fft.rfftfreq(n, 1 / sr)``, each one bin wide.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> t = np.arange(11025) / 11025
    >>> audio = zx.AudioSamples(np.sin(2 * np.pi * 1000 * t), zx.SR11025())
    >>> spec = zx.fft(zx.sliding_window(audio, zx.SR11025().half_lapped()))
    >>> spec.dims, spec.sizes["frequency"]
    (('time', 'frequency'), 257)
    >>> float(abs(spec).mean("time").idxmax("frequency"))  # the bin nearest 1 kHz
    990.52734375
    """
    index = _window_index(x)
    if isinstance(padding_samples, bool) or not isinstance(padding_samples, numbers.Integral) \
            or padding_samples < 0:
        raise ParameterError(f"padding_samples must be a non-negative integer, "
                             f"got {padding_samples!r}")
    n = x.sizes["window"] + int(padding_samples)
    from ..frequency.scales import LinearScale

    scale = LinearScale.from_rfft(n, _samples_per_second(index))
    func = _AlongAxis("rfft", x.dims.index("window"), n)
    return _over_window(x, func, n // 2 + 1, _complex_dtype(x.dtype), scale, "fft")


# --------------------------------------------------------------------------- dct family
def _linear_scale(index: TimeIndex, n_bands: int):
    from ..frequency.scales import LinearScale

    return LinearScale.from_sample_rate(_audio_rate(index), n_bands)


def dct(x: xr.DataArray) -> xr.DataArray:
    """Orthonormal DCT-II of every window (``scipy.fft.dct(type=2, norm="ortho")``).

    Returns
    -------
    xarray.DataArray [dims: ``window`` replaced by ``frequency``]
        Real coefficients (same float precision as the input) on a ``LinearScale`` of
        ``n`` bands from 0 Hz to the Nyquist frequency of the window rate (zounds).
        Inverted by :class:`~zounds_xr.DCTSynthesizer`.
    """
    index = _window_index(x)
    n = x.sizes["window"]
    func = _AlongAxis("dct", x.dims.index("window"))
    return _over_window(x, func, n, _real_dtype(x.dtype), _linear_scale(index, n), "dct")


def dctiv(x: xr.DataArray) -> xr.DataArray:
    """Orthonormal DCT-IV of every window: exactly ``scipy.fft.dct(type=4, norm="ortho")``.

    The orthonormal DCT-IV is its own inverse. zounds scaled its DCT-IV differently; the
    orthonormal one is a deliberate departure (see DESIGN.md).

    Returns
    -------
    xarray.DataArray [dims: ``window`` replaced by ``frequency``]
        Real coefficients on a ``LinearScale`` of ``n`` bands from 0 Hz to Nyquist
        (basis function ``k`` oscillates at ``(k + ½) sr / 2n``, the centre of band ``k``).
    """
    index = _window_index(x)
    n = x.sizes["window"]
    func = _AlongAxis("dctiv", x.dims.index("window"))
    return _over_window(x, func, n, _real_dtype(x.dtype), _linear_scale(index, n), "dctiv")


def mdct_array(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """MDCT of frames of even length ``N = 2M`` along ``axis``: ``M`` coefficients.

    ``X[k] = sqrt(2/M) · Σₙ x[n] cos(π/M (n + ½ + M/2)(k + ½))``: the standard MDCT with
    the orthonormal DCT-IV scaling, so that :func:`imdct_array` followed by a window
    satisfying Princen-Bradley (``w[n]² + w[n+M]² = 1``, e.g. Vorbis) and overlap-add at
    hop ``M`` reconstructs the input exactly. Computed as the DCT-IV of the folded frame
    ``(-c_r - d, a - b_r)`` when ``N % 4 == 0``, else through a length-``N`` complex FFT.
    """
    x = np.moveaxis(np.asarray(x), axis, -1)
    n = x.shape[-1]
    if n % 2 or n == 0:
        raise ParameterError(f"the MDCT needs an even, non-zero window, got {n} samples")
    m = n // 2
    if n % 4 == 0:
        h = m // 2
        a, b, c, d = x[..., :h], x[..., h:m], x[..., m:m + h], x[..., m + h:]
        folded = np.concatenate([-c[..., ::-1] - d, a - b[..., ::-1]], axis=-1)
        out = scipy.fft.dct(folded, type=4, norm="ortho", axis=-1, workers=1)
    else:
        ctype = np.result_type(x.dtype, np.complex64)
        k = np.arange(n)
        pre = np.exp(-1j * np.pi * k / n).astype(ctype)
        spec = scipy.fft.fft(x * pre, axis=-1, workers=1)[..., :m]
        n0 = 0.5 + m / 2
        post = (np.exp(-1j * np.pi * n0 * (np.arange(m) + 0.5) / m)
                * np.sqrt(2 / m)).astype(ctype)
        out = (spec * post).real.astype(float_dtype(x.dtype), copy=False)
    return np.moveaxis(out, -1, axis)


def imdct_array(coeffs: np.ndarray, axis: int = -1) -> np.ndarray:
    """Inverse of :func:`mdct_array` up to time-domain aliasing: ``M`` -> ``2M`` samples.

    ``y[n] = sqrt(2/M) · Σₖ X[k] cos(π/M (n + ½ + M/2)(k + ½))``. Windowed with a
    Princen-Bradley window and overlap-added at hop ``M``, the aliasing cancels.
    """
    X = np.moveaxis(np.asarray(coeffs), axis, -1)
    m = X.shape[-1]
    if m == 0:
        raise ParameterError("the inverse MDCT needs at least one coefficient")
    if m % 2 == 0:
        h = m // 2
        y = scipy.fft.dct(X, type=4, norm="ortho", axis=-1, workers=1)
        p, q = y[..., :h], y[..., h:]
        out = np.concatenate([q, -q[..., ::-1], -p[..., ::-1], -p], axis=-1)
    else:
        n = 2 * m
        ctype = np.result_type(X.dtype, np.complex64)
        n0 = 0.5 + m / 2
        pre = np.exp(1j * np.pi * n0 * np.arange(m) / m).astype(ctype)
        padded = np.zeros((*X.shape[:-1], n), dtype=ctype)
        padded[..., :m] = X * pre
        z = scipy.fft.ifft(padded, axis=-1, workers=1) * n
        post = (np.exp(1j * np.pi * (np.arange(n) + n0) / n) * np.sqrt(2 / m)).astype(ctype)
        out = (z * post).real.astype(float_dtype(X.dtype), copy=False)
    return np.moveaxis(out, -1, axis)


def mdct(x: xr.DataArray) -> xr.DataArray:
    """Modified discrete cosine transform of every window: ``N`` samples -> ``N/2``.

    The standard MDCT (a lapped DCT-IV, see :func:`mdct_array`), orthonormally scaled;
    apply a Princen-Bradley window at analysis (``sliding_window(...,
    wfunc=zx.OggVorbisWindowingFunc())`` with half overlap) and
    :class:`~zounds_xr.MDCTSynthesizer` reconstructs the signal exactly.

    Returns
    -------
    xarray.DataArray [dims: ``window`` replaced by ``frequency``]
        Real coefficients on a ``LinearScale`` of ``N/2`` bands from 0 Hz to Nyquist.

    Raises
    ------
    ParameterError
        When the window has an odd number of samples.
    """
    index = _window_index(x)
    n = x.sizes["window"]
    if n % 2:
        raise ParameterError(f"the MDCT needs an even window, got {n} samples")
    func = _AlongAxis("mdct", x.dims.index("window"))
    return _over_window(x, func, n // 2, _real_dtype(x.dtype), _linear_scale(index, n // 2),
                        "mdct")


# --------------------------------------------------------------------------- stft
class _STFTBlock:
    """Frames -> window -> rfft (-> |.|), a block of frames at a time.

    ``segment`` holds time on axis 0 (and maybe channels on axis 1), already padded so
    that ``(len - win) // hop + 1`` frames fit. Frames are read through a strided view,
    multiplied by the window into a small reusable buffer, transformed by
    ``scipy.fft.rfft`` with one worker and written straight into the output.
    """

    def __init__(self, hop: int, win: int, window, magnitude: bool, dtype):
        self.hop, self.win, self.window = hop, win, window
        self.magnitude = bool(magnitude)
        self.dtype = np.dtype(dtype)  # real compute dtype
        self.nbins = win // 2 + 1
        self.block_frames = max(1, _STFT_BLOCK_BYTES // (win * self.dtype.itemsize))

    @property
    def out_dtype(self) -> np.dtype:
        return self.dtype if self.magnitude else _complex_dtype(self.dtype)

    def n_frames(self, length: int) -> int:
        return 0 if length < self.win else (length - self.win) // self.hop + 1

    def __call__(self, segment: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        nf = self.n_frames(segment.shape[0])
        rest = segment.shape[1:]
        if out is None:
            out = np.empty((nf, self.nbins, *rest), dtype=self.out_dtype)
        if segment.ndim == 1:
            self._mono(segment, out)
        elif segment.ndim == 2:  # (time, channel): one channel at a time
            for c in range(segment.shape[1]):
                self._mono(segment[:, c], out[:, :, c])
        else:
            raise ParameterError(f"stft takes (time,) or (time, channel) audio, got "
                                 f"{segment.ndim} axes")
        return out

    def _mono(self, signal: np.ndarray, out: np.ndarray) -> None:
        hop, win, bf = self.hop, self.win, self.block_frames
        nf = out.shape[0]
        buf = np.empty((min(bf, nf), win), dtype=self.dtype)
        for f0 in range(0, nf, bf):
            f1 = min(nf, f0 + bf)
            frames = frame_view(signal[f0 * hop:(f1 - 1) * hop + win], hop, win)
            tmp = buf[:f1 - f0]
            if self.window is None:
                tmp[...] = frames
            else:
                np.multiply(frames, self.window, out=tmp)
            spec = scipy.fft.rfft(tmp, axis=-1, workers=1, overwrite_x=True)
            if self.magnitude:
                np.abs(spec, out=out[f0:f1])
            else:
                out[f0:f1] = spec

    def __dask_tokenize__(self):
        return (type(self).__name__, self.hop, self.win, self.magnitude, str(self.dtype),
                None if self.window is None else self.window.tobytes())


def _n_workers(workers: int | None) -> int:
    """Threads for numpy input: ``None`` = every core from the main thread, else 1."""
    if workers is None:
        if threading.current_thread() is not threading.main_thread():
            return 1  # inside a dask task or a thread pool: don't oversubscribe
        return max(1, os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers == 0:
        raise ParameterError(f"workers must be a positive integer, -1 or None, got {workers!r}")
    return max(1, os.cpu_count() or 1) if workers < 0 else int(workers)


def _run_parallel(block: _STFTBlock, data: np.ndarray, out: np.ndarray, layout,
                  workers: int) -> None:
    """Fill ``out`` with the frames of ``data``, contiguous frame ranges on ``workers``
    threads.

    scipy.fft and the numpy ufuncs release the GIL, so the threads run in parallel; each
    range reads its own span of ``data`` in place (only the padded tail is copied) and
    writes its own rows.
    """
    nf, hop, win = layout.n_frames, layout.hop, layout.win
    # split only work worth a thread: >= 2**18 window samples a part
    parts = max(1, min(4 * workers, nf * win // 2**18)) if workers > 1 else 1
    edges = np.linspace(0, nf, parts + 1).astype(int)

    def run(i):
        f0, f1 = int(edges[i]), int(edges[i + 1])
        if f1 > f0:
            frame_apply([data], f0 * hop, f1 - f0, hop, win, 0, block, out[f0:f1])

    if parts == 1:
        run(0)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(run, range(parts)))


def stft(samples: xr.DataArray, wscheme: SampleRate | None = None, wfunc=None, *,
         magnitude: bool = False, workers: int | None = None,
         frames_per_block: int | None = None) -> xr.DataArray:
    """Short-time Fourier transform: ``fft(sliding_window(samples, wscheme, wfunc))``, fast.

    Frames start at ``t = 0`` and the end is zero-padded so every sample is in a frame
    (see :func:`~zounds_xr.sliding_window`); no centring. With ``wfunc =
    HanningWindowingFunc(periodic=True)`` and a scheme of ``hop``/``n_fft`` samples,
    ``abs(stft(...))`` equals ``abs(librosa.stft(y, n_fft=n_fft, hop_length=hop,
    window="hann", center=False)).T`` on the frames librosa computes (it drops the
    padded tail frames).

    Parameters
    ----------
    samples : xarray.DataArray [dims=("time",) or ("time", "channel")]
        Audio with a ``TimeIndex`` (numpy or dask backed).
    wscheme : SampleRate, optional
        Hop and window; default ``samplerate.half_lapped()`` (256/512 samples at
        11025 Hz, 1024/2048 at 44.1 kHz).
    wfunc : WindowingFunc, optional
        Default ``HanningWindowingFunc()`` (the symmetric ``np.hanning``, as zounds);
        use ``HanningWindowingFunc(periodic=True)`` for librosa's window. Pass
        ``IdentityWindowingFunc()`` for no window.
    magnitude : bool, default False
        Return ``|STFT|`` (real, float32 for float32 input), computed block by block
        without ever holding the complex spectrogram: half the memory and faster than
        ``abs(stft(...))``.
    workers : int, optional
        Numpy input only: threads computing frame ranges in parallel. ``None`` (default)
        uses every core when called from the main thread and one thread when called
        from any other thread (e.g. inside a dask task), so nested parallelism never
        oversubscribes; ``-1`` = every core. Dask input: one thread per task, the
        scheduler provides the parallelism.
    frames_per_block : int, optional
        Dask input only: frames per output chunk (default: about one input chunk).

    Returns
    -------
    xarray.DataArray [dims=("time", "frequency"[, "channel"])]
        Complex64 (float32 input) or complex128 coefficients, or their magnitudes;
        ``time`` carries the frames' ``TimeIndex``, ``frequency`` a
        ``LinearScale.from_rfft(window, sr)``. Numpy in -> numpy out; dask in -> lazy,
        chunked along ``time``, each task reading only its input span.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> audio = zx.AudioSamples(np.random.default_rng(0).normal(size=11025), zx.SR11025())
    >>> spec = zx.stft(audio, magnitude=True)
    >>> spec.dims, spec.shape, str(spec.dtype)
    (('time', 'frequency'), (43, 257), 'float64')
    """
    index = axis_index(samples, "time", TimeIndex, what="stft's audio")
    if "window" in samples.dims or "frequency" in samples.dims:
        raise ParameterError(f"stft takes audio samples, got dims {samples.dims}; use "
                             f"zx.fft on windowed data")
    if wscheme is None:
        rate = index.samplerate
        if not hasattr(rate, "half_lapped"):
            raise ParameterError(f"no default wscheme for a time axis at {rate!r}; give "
                                 f"wscheme=")
        wscheme = rate.half_lapped()
    if wfunc is None:
        wfunc = HanningWindowingFunc()
    layout = frame_layout(samples, wscheme)
    samples = samples.transpose("time", ...)
    dtype = _real_dtype(samples.dtype)
    block = _STFTBlock(layout.hop, layout.win, window_array(wfunc, layout.win, dtype),
                       magnitude, dtype)
    data = samples.data
    rest_shape = tuple(data.shape[1:])
    if isinstance(data, da.Array):
        if data.dtype != dtype:
            data = data.astype(dtype)
        out = map_frame_blocks(data, layout, block, (block.nbins, *rest_shape),
                               block.out_dtype, frames_per_block=frames_per_block,
                               name="stft")
    else:
        data = np.asarray(data, dtype=dtype)
        out = np.empty((layout.n_frames, block.nbins, *rest_shape), dtype=block.out_dtype)
        _run_parallel(block, data, out, layout, _n_workers(workers))
    from ..frequency.scales import LinearScale

    scale = LinearScale.from_rfft(layout.win, _samples_per_second(index))
    like = samples.drop_vars([k for k, v in samples.coords.items() if "time" in v.dims])
    dims = ["time", "frequency", *samples.dims[1:]]
    return with_labels(out, like, dims, coords=[layout.time_coords(),
                                                _frequency_coords(scale)])
