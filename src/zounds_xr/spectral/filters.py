"""Filter banks, and the helpers the spectral features share to read a frequency axis.

:func:`morlet_filter_bank` builds zounds' bank of Morlet wavelets centred on the bands
of a scale. The private helpers find the frequency axis of a labelled spectrum and its
scale, so that every feature function validates its input the same way (from labels
only: no data is computed to validate anything).
"""
from __future__ import annotations

import numbers
from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from .._validation import axis_index, positive_int
from .._validation import magnitude_dtype as real_dtype  # noqa: F401  (spectral.weighting)
from ..arrays import ArrayWithUnits
from ..errors import ParameterError
from ..frequency.dimension import FrequencyDimension
from ..frequency.index import FrequencyIndex
from ..frequency.scales import FrequencyScale, LinearScale
from ..timeseries.dimension import TimeDimension
from ..timeseries.samplerate import AudioSampleRate, as_audio_rate

__all__ = ["morlet", "morlet_filter_bank"]


# ------------------------------------------------------------------------------------
# shared helpers (private)
# ------------------------------------------------------------------------------------
def frequency_index(x: xr.DataArray, dim: Hashable = "frequency", *,
                    one_per_band: bool = True) -> FrequencyIndex:
    """The ``FrequencyIndex`` on ``x``'s ``dim`` (``ParameterError`` when there is none).

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
    """The ``LinearScale`` of a linear-frequency spectrum (``ParameterError`` otherwise).

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
    """The Nyquist frequency a linear spectrum describes.

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
    """``value`` as a float > 0 (an int with ``integer``: see ``_validation.positive_int``),
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
# Morlet wavelets
# ------------------------------------------------------------------------------------
def morlet(kernel_size: int, w: float = 5.0, s: float = 1.0,
           complete: bool = True) -> np.ndarray:
    """A complex Morlet wavelet: the definition of the former ``scipy.signal.morlet``.

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
    """A bank of Morlet wavelets, one centred on each band of ``scale`` (zounds).

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
