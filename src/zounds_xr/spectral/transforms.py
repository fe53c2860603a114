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

from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from ..core.validation import check_output_size, drop_coords_along, nonnegative_int, \
    real_float_dtype
from ..dimensions.arrays import with_labels
from ..dimensions.lookup import axis_index
from ..core.errors import ParameterError
from ..frequency.index import frequency_coords
from ..frequency.scales import LinearScale
from ..timeseries.index import TimeIndex
from ..core.streamable import framing
from ..timeseries.samplerate import SampleRate
from .windowing import HanningWindowingFunc, window_values
from .kernels import FrameKernel, RowTransform, apply_along, imdct_array, mdct_array, \
    n_workers, run_frames
from .sliding import MAX_WINDOW_BYTES, frame_layout, map_frame_blocks

__all__ = ["fft", "stft", "dct", "dctiv", "mdct", "mdct_array", "imdct_array"]


# --------------------------------------------------------------------------- helpers
def _window_index(x: xr.DataArray) -> TimeIndex:
    index = axis_index(x, "window", TimeIndex, what="windowed data",
                       hint="the output of zx.sliding_window")
    if "frequency" in x.dims:
        raise ParameterError("x already has a 'frequency' dim; transform along 'window' would "
                             "give a second one")
    return index


def _over_window(x: xr.DataArray, kernel: RowTransform, scale) -> xr.DataArray:
    """Run ``kernel`` along ``window`` and label the result's ``frequency`` axis."""
    dtype = kernel.out_dtype(x.dtype)
    check_output_size((*(s for d, s in x.sizes.items() if d != "window"), kernel.n_out),
                      dtype, f"the {kernel.kind} of x")
    out = apply_along(x, kernel, "window", kernel.n_out, dtype, new_dim="frequency")
    return out.assign_coords(frequency_coords(scale, dim="frequency"))


def default_wscheme(index: TimeIndex) -> SampleRate:
    """Return the default window scheme of ``stft`` and of the mel spectrogram.

    Return the window scheme of ``stft`` and the mel spectrogram of audio when none is given:
    the audio rate's ``half_lapped()``.
    """
    rate = index.samplerate
    if not hasattr(rate, "half_lapped"):
        raise ParameterError(f"no default wscheme for a time axis at {rate!r}; give "
                             f"wscheme=")
    return rate.half_lapped()


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
    padding_samples = nonnegative_int(padding_samples, "padding_samples")
    n = x.sizes["window"] + padding_samples
    # the padded frames are the kernel's scratch, the coefficients its output
    check_output_size((n,), np.float64, f"one zero-padded window of {n} samples",
                      limit=MAX_WINDOW_BYTES)
    scale = LinearScale.from_rfft(n, _samples_per_second(index))
    return _over_window(x, RowTransform("rfft", x.sizes["window"], n), scale)


# --------------------------------------------------------------------------- dct family
def _linear_scale(index: TimeIndex, n_bands: int) -> LinearScale:
    return LinearScale.from_sample_rate(index.samplerate, n_bands)


def dct(x: xr.DataArray) -> xr.DataArray:
    """Orthonormal DCT-II of every window (``scipy.fft.dct(type=2, norm="ortho")``).

    Parameters
    ----------
    x : xarray.DataArray [dims=(..., "window", ...)]
        Real windowed data (e.g. from :func:`~zounds_xr.sliding_window`); integers are
        computed in float64.

    Returns
    -------
    xarray.DataArray [dims: ``window`` replaced by ``frequency``]
        Shape ``x``'s with ``frequency`` of ``n = x.sizes["window"]`` positions: real
        coefficients (same float precision as the input) on a ``LinearScale`` of ``n``
        bands from 0 Hz to the Nyquist frequency of the window rate (zounds). Inverted
        by :class:`~zounds_xr.DCTSynthesizer`.

    Raises
    ------
    ParameterError
        When ``x`` has no ``window`` dim with a ``TimeIndex``, or complex values.

    See Also
    --------
    dctiv, mdct, fft, sliding_window

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> audio = zx.AudioSamples(np.ones(11025), zx.SR11025())
    >>> zx.dct(zx.sliding_window(audio, zx.SR11025().half_lapped())).shape
    (43, 512)
    """
    index = _window_index(x)
    n = x.sizes["window"]
    return _over_window(x, RowTransform("dct", n), _linear_scale(index, n))


def dctiv(x: xr.DataArray) -> xr.DataArray:
    """Orthonormal DCT-IV of every window: exactly ``scipy.fft.dct(type=4, norm="ortho")``.

    The orthonormal DCT-IV is its own inverse. zounds scaled its DCT-IV differently; the
    orthonormal one is a deliberate departure (see DESIGN.md).

    Parameters
    ----------
    x : xarray.DataArray [dims=(..., "window", ...)]
        Real windowed data.

    Returns
    -------
    xarray.DataArray [dims: ``window`` replaced by ``frequency``]
        ``n = x.sizes["window"]`` real coefficients per window on a ``LinearScale`` of
        ``n`` bands from 0 Hz to Nyquist (basis function ``k`` oscillates at
        ``(k + ½) sr / 2n``, the centre of band ``k``).

    Raises
    ------
    ParameterError
        When ``x`` has no ``window`` dim with a ``TimeIndex``, or complex values.

    See Also
    --------
    dct, mdct
    """
    index = _window_index(x)
    n = x.sizes["window"]
    return _over_window(x, RowTransform("dctiv", n), _linear_scale(index, n))


def mdct(x: xr.DataArray) -> xr.DataArray:
    """Compute the modified discrete cosine transform of every window: ``N`` samples -> ``N/2``.

    The standard MDCT (a lapped DCT-IV, see :func:`~zounds_xr.spectral.kernels.mdct_array`),
    orthonormally scaled; apply a Princen-Bradley window at analysis
    (``sliding_window(..., wfunc=zx.OggVorbisWindowingFunc())`` with half overlap) and
    :class:`~zounds_xr.MDCTSynthesizer` reconstructs the signal exactly.

    Parameters
    ----------
    x : xarray.DataArray [dims=(..., "window", ...)]
        Real windowed data; the window has an even number ``N`` of samples.

    Returns
    -------
    xarray.DataArray [dims: ``window`` replaced by ``frequency``]
        ``N/2`` real coefficients per window on a ``LinearScale`` of ``N/2`` bands from
        0 Hz to Nyquist.

    Raises
    ------
    ParameterError
        When the window has an odd number of samples, or ``x`` is complex.

    See Also
    --------
    dctiv, MDCTSynthesizer
    """
    index = _window_index(x)
    n = x.sizes["window"]
    if n % 2:
        raise ParameterError(f"the MDCT needs an even window, got {n} samples")
    return _over_window(x, RowTransform("mdct", n), _linear_scale(index, n // 2))


# --------------------------------------------------------------------------- stft
def audio_kernel(samples: xr.DataArray, wscheme, wfunc, mode: str, *, make_rebin=None,
                 what: str = "stft"):
    """Validate audio for a framing kernel: ``(samples with time first, layout, kernel)``.

    Shared by :func:`stft` and the fused ``mel_spectrogram`` of audio; ``make_rebin``
    (mode ``"rebin"``) builds the kernel's filter bank from the FFT's ``LinearScale``
    and the compute dtype.
    """
    index = axis_index(samples, "time", TimeIndex, what=f"{what}'s audio")
    if "window" in samples.dims or "frequency" in samples.dims:
        raise ParameterError(f"{what} takes audio samples, got dims {samples.dims}; use "
                             f"zx.fft on windowed data")
    if wscheme is None:
        wscheme = default_wscheme(index)
    if wfunc is None:
        wfunc = HanningWindowingFunc()
    layout = frame_layout(samples, wscheme)
    samples = samples.transpose("time", ...)
    dtype = real_float_dtype(samples.dtype, what)
    window = window_values(wfunc, layout.win, dtype, name="wfunc")
    rebin = None
    if make_rebin is not None:
        rebin = make_rebin(LinearScale.from_rfft(layout.win, _samples_per_second(index)),
                           dtype)
    kernel = FrameKernel(layout.hop, layout.win, window, dtype, mode, rebin)
    return samples, layout, kernel


def run_audio_kernel(samples: xr.DataArray, layout, kernel: FrameKernel, coords, *,
                     workers=None, frames_per_block=None, name: str = "stft"):
    """Run ``kernel`` over ``samples`` and label the result.

    Run ``kernel`` over ``samples`` (time first) and label the ``(time, frequency,
    ...)`` result with the frames' time axis and ``coords`` on ``frequency``.
    """
    data = samples.data
    rest_shape = tuple(data.shape[1:])
    check_output_size((layout.n_frames, kernel.n_out, *rest_shape), kernel.out_dtype,
                      f"the {name} output")
    out: Any
    if isinstance(data, da.Array):
        if data.dtype != kernel.dtype:
            data = data.astype(kernel.dtype)
        out = map_frame_blocks(data, layout, kernel, (kernel.n_out, *rest_shape),
                               kernel.out_dtype, frames_per_block=frames_per_block,
                               name=name)
    else:
        data = np.asarray(data, dtype=kernel.dtype)
        # one contiguous (frames, n_out) plane per channel or clip: the kernel writes
        # whole rows; the (time, frequency, ...) result is a view of it
        planes = np.empty((*rest_shape, layout.n_frames, kernel.n_out), dtype=kernel.out_dtype)
        out = np.moveaxis(planes, (-2, -1), (0, 1))
        run_frames(kernel, data, out, layout, n_workers(workers))
    like = drop_coords_along(samples, "time")
    dims = ["time", "frequency", *map(str, samples.dims[1:])]
    return with_labels(out, like, dims, coords=[layout.time_coords(), coords])


@framing("wscheme", default=default_wscheme, channelwise=True)  # how it streams in documents
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

    Computed by a cache-blocked kernel (:class:`~zounds_xr.spectral.kernels.FrameKernel`):
    a block of frames is windowed into a small buffer, transformed by the fastest FFT
    available (:mod:`~zounds_xr.spectral.fft_backend`: torch's when installed, else
    scipy's) and written (or reduced to magnitudes) straight into the preallocated
    output.

    Parameters
    ----------
    samples : xarray.DataArray [dims=("time",) or ("time", ...)]
        Audio with a ``TimeIndex`` (numpy or dask backed); other dims (``channel``, a
        batch of clips of one length) are transformed in the same kernel call.
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
    xarray.DataArray [dims=("time", "frequency", ...)]
        Shape ``(n_frames, n_fft // 2 + 1, ...)``: complex64 (float32 input) or
        complex128 coefficients, or their magnitudes; ``time`` carries the frames'
        ``TimeIndex``, ``frequency`` a ``LinearScale.from_rfft(window, sr)``. Numpy in
        -> numpy out; dask in -> lazy, chunked along ``time``, each task reading only
        its input span.

    Raises
    ------
    ParameterError
        When ``samples`` has no ``TimeIndex`` on ``time``, has a ``window`` or
        ``frequency`` dim, is complex, or the output cannot fit in memory.

    See Also
    --------
    fft, sliding_window, mel_spectrogram, FFTSynthesizer

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> audio = zx.AudioSamples(np.random.default_rng(0).normal(size=11025), zx.SR11025())
    >>> spec = zx.stft(audio, magnitude=True)
    >>> spec.dims, spec.shape, str(spec.dtype)
    (('time', 'frequency'), (43, 257), 'float64')
    """
    samples, layout, kernel = audio_kernel(samples, wscheme, wfunc,
                                           "magnitude" if magnitude else "complex")
    index = axis_index(samples, "time", TimeIndex)
    scale = LinearScale.from_rfft(layout.win, _samples_per_second(index))
    return run_audio_kernel(samples, layout, kernel, frequency_coords(scale),
                            workers=workers, frames_per_block=frames_per_block)
