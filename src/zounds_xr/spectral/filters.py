"""Filter banks, and the helpers the spectral features share to read a frequency axis.

:func:`filter_bank` builds the matrix that rebins a spectrum onto a frequency scale
(mel and Bark triangles, chroma profiles, windows over overlapping bins) and
:func:`apply_scale` applies it to a labelled spectrum; the scales themselves
(:mod:`zounds_xr.frequency.scales`) only describe bands. :func:`morlet_filter_bank`
builds zounds' bank of Morlet wavelets centred on the bands of a scale. The private
helpers find the frequency axis of a labelled spectrum and its scale, so that every
feature function validates its input the same way (from labels only: no data is
computed to validate anything).
"""
from __future__ import annotations

import functools
import numbers
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..core.validation import axis_index, frozen, magnitude_dtype, positive_int
from ..core.validation import magnitude_dtype as real_dtype  # noqa: F401  (spectral.weighting)
from ..dimensions.arrays import ArrayWithUnits
from ..core.errors import ParameterError
from ..frequency.dimension import FrequencyDimension
from ..frequency.index import FrequencyIndex
from ..frequency.scales import BarkScale, ChromaScale, FrequencyScale, LinearScale, MelScale
from ..timeseries.dimension import TimeDimension
from ..timeseries.samplerate import AudioSampleRate, as_audio_rate
from .windowing import window_values
from .kernels import SparseRebin, apply_along

__all__ = ["apply_scale", "filter_bank", "morlet", "morlet_filter_bank"]


# ------------------------------------------------------------------------------------
# shared helpers (private)
# ------------------------------------------------------------------------------------
def frequency_index(x: xr.DataArray, dim: Hashable = "frequency", *,
                    one_per_band: bool = True) -> FrequencyIndex:
    """Return the ``FrequencyIndex`` on ``x``'s ``dim`` (``ParameterError`` when there is none).

    Parameters
    ----------
    x : xarray.DataArray
        A labelled spectrum.
    dim : hashable
        Its frequency dim.
    one_per_band : bool
        Require one position per band (not the coefficients-by-band axis of a
        frequency-adaptive transform).

    Returns
    -------
    FrequencyIndex
    """
    index = axis_index(x, dim, FrequencyIndex,
                       hint="label it with zx.frequency_coords(scale) (stft/fft outputs have one)")
    if one_per_band and index.slices is not None:
        raise ParameterError(
            f"the input's {dim!r} axis groups coefficients by band "
            "(ExplicitFrequencyDimension); this function needs one position per band")
    return index


def linear_scale_of(x: xr.DataArray, dim: Hashable = "frequency") -> LinearScale:
    """Return the ``LinearScale`` of a linear-frequency spectrum (``ParameterError`` otherwise).

    Parameters
    ----------
    x : xarray.DataArray
        The output of ``stft``/``fft`` (or anything labelled by a ``LinearScale``).
    dim : hashable
        Its frequency dim.

    Returns
    -------
    LinearScale
    """
    scale = frequency_index(x, dim).scale
    if not isinstance(scale, LinearScale):
        raise ParameterError(
            f"the input's {dim!r} axis must be a LinearScale (the output of stft/fft), "
            f"got {scale!r}")
    return scale


def nyquist_of(scale: LinearScale) -> float:
    """Return the Nyquist frequency a linear spectrum describes.

    For an ``rfft`` axis (``LinearScale.from_rfft``: bins centred on ``k * sr / n``, the
    first band starting half a bin below 0 Hz) this is ``sr / 2`` for even and odd ``n``;
    for any other linear scale it is the scale's top edge.

    Parameters
    ----------
    scale : LinearScale

    Returns
    -------
    float
        Hz.
    """
    if np.isclose(scale.start_hz, -scale.bandwidth / 2):
        return float(scale.stop_hz - scale.bandwidth / 2)
    return float(scale.stop_hz)


def check_positive(value: float, name: str, *, integer: bool = False) -> float:
    """Return ``value`` as a float > 0, else a ``ParameterError``.

    ``value`` as a float > 0 (an int with ``integer``: see ``_validation.positive_int``),
    else a :class:`ParameterError` naming ``name``.

    Parameters
    ----------
    value : float
        The value to check.
    name : str
        How the message names it.
    integer : bool
        Require a positive integer.

    Returns
    -------
    float or int
    """
    if integer:
        return positive_int(value, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ParameterError(f"{name} must be a positive number, got {value!r}")
    return float(value)


# ------------------------------------------------------------------------------------
# filter banks over a frequency scale
# ------------------------------------------------------------------------------------
#: the options each kind of scale's filter bank takes, with their defaults
_OPTIONS: dict[type, dict[str, Any]] = {
    MelScale: {"norm": "slaney"},
    BarkScale: {"norm": None},
    ChromaScale: {"norm": 2, "octwidth": 2.0, "ctroct": 5.0},
}


def filter_bank(scale: FrequencyScale, source: FrequencyScale, window=None,
                **options) -> np.ndarray:
    """Return the ``(len(scale), len(source))`` matrix that rebins a spectrum onto ``scale``.

    ``weights @ spectrum`` (over the frequency axis) turns a spectrum whose bins are
    the bands of ``source`` (usually ``LinearScale.from_rfft(n_fft, sr)``) into one
    value per band of ``scale``.

    - Linear, geometric and explicit scales (and any scale given a ``window``): row
      ``i`` holds ``window(k)`` over the ``k`` source bins that overlap band ``i``
      (half-open overlap, as ``scale.overlapping``), zero elsewhere; ``window=None`` is
      rectangular (a plain sum).
    - :class:`~zounds_xr.MelScale` (``norm="slaney"`` or ``None``): librosa's
      triangles at the source bins' centre frequencies, unit area by default; with
      ``LinearScale.from_rfft(n_fft, sr)`` this equals ``librosa.filters.mel(sr=sr,
      n_fft=n_fft, n_mels=n_bands, fmin=start_hz, fmax=stop_hz, htk=htk, norm=norm)``.
    - :class:`~zounds_xr.BarkScale` (``norm=None`` or ``"slaney"``): the same
      triangles, unit peak by default (each band sums its critical band's energy).
    - :class:`~zounds_xr.ChromaScale` (``norm=2``, ``octwidth=2.0``, ``ctroct=5.0``):
      ``librosa.filters.chroma``'s construction with ``tuning=0`` and ``base_c=True``:
      each bin spreads its energy over the pitch classes with a Gaussian bump around
      its own pitch, columns normalised (``norm`` 1, 2, ``np.inf`` or ``None``) and
      weighted by a Gaussian over octaves (``octwidth=None`` for flat); bins centred
      outside ``scale.frequency_band`` get zero weight. Its profile is fixed:
      ``window`` must be ``None``.

    Parameters
    ----------
    scale : FrequencyScale
        The scale to rebin onto.
    source : FrequencyScale
        The scale of the spectrum's frequency axis.
    window : callable, optional
        Called with a size, returns that many weights (``np.hanning``,
        ``zx.HanningWindowingFunc()``); ``None`` for rectangular.
    **options
        The options of ``scale``'s kind (above).

    Returns
    -------
    numpy.ndarray [shape=(len(scale), len(source))]
        Float64 weights, cached (per scale, source, window and options) and read-only:
        copy them before changing them.

    Raises
    ------
    ParameterError
        When ``scale`` or ``source`` is not a scale, an option is unknown for the kind
        of scale or out of range, or a window is given for a chroma scale.

    Examples
    --------
    >>> from zounds_xr import FrequencyBand, LinearScale
    >>> from zounds_xr.spectral.filters import filter_bank
    >>> coarse = LinearScale(FrequencyBand(0, 400), 2)
    >>> filter_bank(coarse, LinearScale(FrequencyBand(0, 400), 4))
    array([[1., 1., 0., 0.],
           [0., 0., 1., 1.]])
    """
    for value, name in ((scale, "scale"), (source, "linear_scale (the spectrum's scale)")):
        if not isinstance(value, FrequencyScale):
            raise ParameterError(f"{name} must be a FrequencyScale, got {value!r}")
    defaults = next((d for kind, d in _OPTIONS.items() if isinstance(scale, kind)), {})
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ParameterError(f"the filter bank of a {type(scale).__name__} takes no option "
                             f"{', '.join(unknown)} (it takes: {sorted(defaults) or 'none'})")
    key = (scale, source, window, tuple(sorted({**defaults, **options}.items())))
    try:
        hash(key)
    except TypeError:  # an unhashable window or option: compute, don't cache
        return frozen(_compute_bank(*key))
    return _cached_bank(*key)


@functools.lru_cache(maxsize=64)
def _cached_bank(scale, source, window, options):
    return frozen(_compute_bank(scale, source, window, options))


def _compute_bank(scale, source, window, options) -> np.ndarray:
    options = dict(options)
    if isinstance(scale, ChromaScale):
        if window is not None:
            raise ParameterError("a ChromaScale's filter bank has a fixed profile; window "
                                 "must be None")
        return _chroma_bank(scale, source, **options)
    if isinstance(scale, (MelScale, BarkScale)) and window is None:
        return _triangle_bank(scale, source, **options)
    return _overlap_bank(scale, source, window)


def _overlap_bank(scale: FrequencyScale, source: FrequencyScale, window) -> np.ndarray:
    # each band: the window over the source bins that overlap it
    out = np.zeros((scale.n_bands, source.n_bands))
    for i, band in enumerate(scale.bands):
        positions = source.overlapping(band)
        if len(positions):
            w = window_values(window, len(positions), name="window")
            out[i, positions] = 1.0 if w is None else w
    return out


def _triangle_bank(scale: MelScale | BarkScale, source: FrequencyScale,
                   norm) -> np.ndarray:
    if norm not in (None, "slaney"):
        raise ParameterError(f"norm must be 'slaney' or None, got {norm!r}")
    # librosa.filters.mel's construction, on the source bins' centre frequencies
    freqs = np.asarray(source.center_frequencies, dtype=np.float64)
    p = scale.points
    fdiff = np.diff(p)
    ramps = p[:, None] - freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    w = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":  # unit area per triangle (in Hz)
        w *= (2.0 / (p[2:] - p[:-2]))[:, None]
    return w


def _chroma_bank(scale: ChromaScale, source: FrequencyScale, norm, octwidth,
                 ctroct) -> np.ndarray:
    if norm not in (None, 1, 2, np.inf):
        raise ParameterError(f"norm must be 1, 2, np.inf or None, got {norm!r}")
    freqs = np.asarray(source.center_frequencies, dtype=np.float64)
    m = len(freqs)
    out = np.zeros((12, m))
    if not m:
        return out
    # one bin beyond the last, so that the last bin gets a width (librosa keeps the
    # bins above Nyquist for that)
    all_f = np.append(freqs, freqs[-1] + float(source.bandwidths[-1]))
    positive = all_f > 0
    if not positive.any():
        return out
    frqbins = np.empty_like(all_f)
    frqbins[positive] = 12.0 * np.log2(all_f[positive] / (440.0 / 16.0))
    first = frqbins[np.flatnonzero(positive)[0]]
    frqbins[~positive] = first - 1.5 * 12
    binwidth = np.maximum(np.diff(frqbins), 1.0)
    frqbins = frqbins[:m]
    d = frqbins[None, :] - np.arange(12, dtype=np.float64)[:, None]
    d = np.remainder(d + 6.0 + 120.0, 12.0) - 6.0
    w = np.exp(-0.5 * (2.0 * d / binwidth[None, :]) ** 2)
    if norm is not None:
        if norm == np.inf:
            length = np.max(np.abs(w), axis=0)
        else:
            length = np.sum(np.abs(w) ** norm, axis=0) ** (1.0 / norm)
        length[length < np.finfo(np.float64).tiny] = 1.0
        w = w / length[None, :]
    if octwidth is not None:
        w = w * np.exp(-0.5 * ((frqbins / 12.0 - ctroct) / octwidth) ** 2)[None, :]
    w = np.roll(w, -3, axis=0)  # librosa builds A-based rows; C first
    band = scale.frequency_band
    w[:, ~((freqs >= band.start_hz) & (freqs <= band.stop_hz))] = 0.0
    return w


def apply_scale(x: xr.DataArray, scale: FrequencyScale, window=None, *,
                dim: str = "frequency", **options) -> xr.DataArray:
    """Rebin ``x``'s frequency axis onto ``scale`` (:func:`filter_bank` over ``dim``).

    The result keeps every other dim, coordinate and index of ``x`` (its name and attrs
    too), has ``dim`` in the same position, labelled by ``scale``, and is lazy when
    ``x`` is dask-backed. Float32/complex64 input gives float32/complex64 output.

    Parameters
    ----------
    x : xarray.DataArray
        A spectrum (magnitudes, power, or complex values) with a ``FrequencyIndex`` on
        ``dim`` (one position per band; usually the linear axis of an FFT or STFT).
    scale : FrequencyScale
        The scale to rebin onto.
    window : callable, optional
        See :func:`filter_bank`.
    dim : str
        The frequency dim of ``x``.
    **options
        Passed to :func:`filter_bank`.

    Returns
    -------
    xarray.DataArray [dims: ``x``'s, ``dim`` of ``len(scale)`` positions]
        The rebinned spectrum (a linear rebinning: complex input stays complex).

    Raises
    ------
    ParameterError
        When ``x`` has no one-position-per-band ``FrequencyIndex`` on ``dim``, or
        :func:`filter_bank` refuses the scale, window or options.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from zounds_xr import FrequencyBand, GeometricScale, LinearScale
    >>> from zounds_xr.frequency import frequency_coords
    >>> from zounds_xr.spectral.filters import apply_scale
    >>> linear = LinearScale.from_rfft(1024, 11025)
    >>> spec = xr.DataArray(np.ones((3, 513)), dims=("time", "frequency"),
    ...                     coords=frequency_coords(linear))
    >>> apply_scale(spec, GeometricScale(50, 4000, 0.05, 60)).sizes["frequency"]
    60
    """
    index = frequency_index(x, dim)
    w = filter_bank(scale, index.scale, window, **options)
    # the package's one rebinning kernel, linear (power=None): complex stays complex
    kernel = SparseRebin(w, None, magnitude_dtype(x.dtype))
    out = apply_along(x, kernel, dim, kernel.n_out, kernel.out_dtype(x.dtype))
    return out.assign_coords(xr.Coordinates.from_xindex(index.with_scale(scale)))


# ------------------------------------------------------------------------------------
# Morlet wavelets
# ------------------------------------------------------------------------------------
def morlet(kernel_size: int, w: float = 5.0, s: float = 1.0,
           complete: bool = True) -> np.ndarray:
    """Return a complex Morlet wavelet: the definition of the former ``scipy.signal.morlet``.

    ``x = linspace(-2πs, 2πs, kernel_size)``;
    ``ψ(x) = π^(-1/4) · (exp(i w x) - exp(-w²/2)) · exp(-x²/2)`` (without the
    ``exp(-w²/2)`` correction term when ``complete=False``).

    Parameters
    ----------
    kernel_size : int > 0
        Length of the wavelet in samples.
    w : float
        Angular frequency of the oscillation per unit of ``x``.
    s : float > 0
        Scaling: the wavelet spans ``[-2πs, 2πs]``.
    complete : bool
        Subtract the correction term that makes the wavelet zero-mean.

    Returns
    -------
    numpy.ndarray [shape=(kernel_size,), complex128]

    See Also
    --------
    morlet_filter_bank : One wavelet per band of a frequency scale.

    Examples
    --------
    >>> import numpy as np
    >>> psi = morlet(64, w=5.0, s=1.0)
    >>> psi.shape, psi.dtype
    ((64,), dtype('complex128'))
    """
    x = np.linspace(-2 * np.pi * s, 2 * np.pi * s, positive_int(kernel_size, "kernel_size"))
    wave = np.exp(1j * w * x)
    if complete:
        wave -= np.exp(-0.5 * w * w)
    return wave * np.exp(-0.5 * x * x) * np.pi ** -0.25


def morlet_filter_bank(samplerate: AudioSampleRate | int, kernel_size: int,
                       scale: FrequencyScale, scaling_factor: float | Sequence[float],
                       normalize: bool = True, *, complex_valued: bool = False
                       ) -> xr.DataArray:
    """Return a bank of Morlet wavelets, one centred on each band of ``scale`` (zounds).

    Filter ``i`` is the complete Morlet wavelet (a complex sinusoid under a Gaussian,
    minus the small correction term that makes it zero-mean; ``scipy.signal.morlet``'s
    definition) of ``kernel_size`` samples whose Gaussian spans
    ``[-2π s, 2π s]`` for ``s = scaling_factor[i]``: smaller factors give longer
    envelopes (better frequency resolution), larger ones shorter envelopes (better time
    resolution).

    Conventions
    -----------
    - Real by default, as zounds (which kept the real part, a cosine-phase wavelet);
      ``complex_valued=True`` keeps the analytic (complex) wavelet, whose magnitude
      response is one-sided.
    - The oscillation is at the band's centre frequency exactly (zounds' parameters
      put it at ``centre * M / (M - 1)``; the difference is below one part in
      ``kernel_size``).
    - ``normalize=True`` scales each filter to unit L2 norm (an all-zero filter, which
      only a centre frequency far above Nyquist can give, is left at zero).

    Parameters
    ----------
    samplerate : AudioSampleRate or int > 0
        The rate of the signals the bank will be applied to.
    kernel_size : int > 0
        Length of each filter in samples.
    scale : FrequencyScale
        One filter per band, centred on its centre frequency.
    scaling_factor : float or sequence of float
        One factor for every band, or one per band (``0 < s``, usually ``<= 1``).
    normalize : bool
        Unit-norm filters.
    complex_valued : bool
        Keep the complex wavelet instead of its real part.

    Returns
    -------
    xarray.DataArray [dims=("frequency", "time")]
        float64 (complex128 with ``complex_valued``); ``frequency`` labelled by
        ``scale``, ``time`` by the audio rate (``da.zx.dimensions`` gives a
        ``FrequencyDimension`` and a ``TimeDimension``).

    Raises
    ------
    ParameterError
        For a non-positive ``kernel_size`` or scaling factor, or a number of factors
        that is neither one nor ``len(scale)``.

    See Also
    --------
    morlet : One wavelet.
    zounds_xr.learn.FilterBank : A torch module convolving signals with this bank.

    Examples
    --------
    >>> import zounds_xr as zx
    >>> scale = zx.GeometricScale(100, 4000, 0.1, 16)
    >>> bank = zx.morlet_filter_bank(zx.SR11025(), 512, scale, 0.1)
    >>> bank.dims, bank.shape
    (('frequency', 'time'), (16, 512))
    """
    samplerate = as_audio_rate(samplerate)
    kernel_size = positive_int(kernel_size, "kernel_size")
    if not isinstance(scale, FrequencyScale):
        raise ParameterError(f"scale must be a FrequencyScale, got {scale!r}")
    n = len(scale)
    factors = np.atleast_1d(np.asarray(scaling_factor, dtype=np.float64))
    if factors.ndim != 1 or len(factors) not in (1, n):
        raise ParameterError(
            f"scaling_factor must be a number or {n} numbers (one per band), got "
            f"{scaling_factor!r}")
    if not np.all(np.isfinite(factors) & (factors > 0)):
        raise ParameterError(f"scaling factors must be positive, got {scaling_factor!r}")
    factors = np.broadcast_to(factors, (n,))
    sr = float(samplerate.samples_per_second)
    basis = np.zeros((n, kernel_size), dtype=np.complex128)
    span = max(kernel_size - 1, 1)
    for i, centre in enumerate(scale.center_frequencies):
        s = float(factors[i])
        # x advances 4πs / (M - 1) per sample: w * that = 2π * centre / sr
        w = float(centre) * span / (2.0 * s * sr)
        basis[i] = morlet(kernel_size, w, s)
    out: np.ndarray = basis if complex_valued else basis.real.copy()
    if normalize:
        norms = np.linalg.norm(out, axis=-1, keepdims=True)
        out = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
    return ArrayWithUnits(out, [FrequencyDimension(scale), TimeDimension(samplerate)])
