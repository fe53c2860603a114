"""Frequency weightings: per-band gains applied along a labelled frequency axis.

``weight(x, AWeighting())`` multiplies every band of ``x``'s frequency axis by the
weighting's linear gain at the band's centre frequency. As in zounds, a weighting also
multiplies directly: ``AWeighting() * x``. (``x * AWeighting()`` cannot work: xarray
hands only the bare array, without its frequency labels, to the weighting; it raises
a ``ParameterError`` that says so.)

Departure from zounds: :class:`AWeighting` is the IEC 61672-1 A-weighting as a *linear
amplitude gain* (1.0 at 1 kHz, ``10 ** (A_dB / 20)``); zounds multiplied by an offset
dB curve (its docstring example gives 18.3 at 43 Hz).
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..core.validation import magnitude_dtype
from ..core.errors import ParameterError
from .filters import frequency_index

__all__ = ["FrequencyWeighting", "AWeighting", "weight"]


class FrequencyWeighting:
    """Base class: a gain per frequency, applied along a frequency axis.

    Subclasses implement :meth:`gains` (linear gains for an array of frequencies in Hz).
    Instances multiply DataArrays that have a ``FrequencyIndex`` on ``frequency``
    (``w * x``); numpy's ufuncs are disabled on them (``__array_ufunc__ = None``) so that
    ``x * w`` reaches the weighting and gets a clear error instead of a silent broadcast.
    """

    __array_ufunc__ = None

    def gains(self, frequencies) -> np.ndarray:
        """Linear gains (float64) at ``frequencies`` (Hz, any shape)."""
        raise NotImplementedError

    def weights(self, scale) -> np.ndarray:
        """Return the gain of every band of ``scale`` (at its centre frequency)."""
        return self.gains(np.asarray(scale.center_frequencies, dtype=np.float64))

    def __mul__(self, other):
        if isinstance(other, xr.DataArray):
            return weight(other, self)
        raise ParameterError(
            f"{type(self).__name__} multiplies DataArrays with a FrequencyIndex on "
            f"'frequency', got {type(other).__name__}: write `{type(self).__name__}() * x` "
            f"or zx.weight(x, {type(self).__name__}()) (in `x * weighting`, xarray passes "
            f"the bare array without its frequency labels)")

    def __rmul__(self, other):
        return self.__mul__(other)

    def __eq__(self, other) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class AWeighting(FrequencyWeighting):
    """IEC 61672-1 A-weighting, as a linear amplitude gain (1.0 at 1 kHz).

    ``R_A(f) = 12194² f⁴ / ((f² + 20.6²) √((f² + 107.7²)(f² + 737.9²)) (f² + 12194²))``,
    gain ``R_A(f) / R_A(1000)`` (the standard's +2.00 dB offset is that normalisation,
    made exact). In dB: 31.5 Hz −39.4, 63 −26.2, 125 −16.1, 250 −8.6, 500 −3.2, 1k 0.0,
    2k +1.2, 4k +1.0, 8k −1.1, 16k −6.6. Negative frequencies get the gain of their
    absolute value; 0 Hz gets 0.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> scale = zx.GeometricScale(20, 20000, 0.05, 10)
    >>> arr = zx.ArrayWithUnits(np.ones(len(scale)), [zx.FrequencyDimension(scale)])
    >>> [round(float(db), 1) for db in 20 * np.log10((zx.AWeighting() * arr).values)]
    [-50.4, -33.1, -20.2, -10.8, -4.2, -0.2, 1.2, 0.8, -2.0, -9.3]
    """

    def gains(self, frequencies) -> np.ndarray:
        """Linear gain at each of ``frequencies`` (Hz)."""
        f2 = np.square(np.asarray(frequencies, dtype=np.float64))
        return _ra(f2) / _ra(np.float64(1000.0 ** 2))


def _ra(f2):
    c1, c2, c3, c4 = 20.598997 ** 2, 107.65265 ** 2, 737.86223 ** 2, 12194.217 ** 2
    return c4 * f2 ** 2 / ((f2 + c1) * np.sqrt((f2 + c2) * (f2 + c3)) * (f2 + c4))


def weight(x: xr.DataArray, weighting: FrequencyWeighting, *,
           dim: str = "frequency") -> xr.DataArray:
    """Multiply ``x`` along its frequency axis by ``weighting``'s gain per band.

    Parameters
    ----------
    x : xarray.DataArray
        Any array with a ``FrequencyIndex`` on ``dim`` (one position per band, or the
        coefficients-by-band axis of a frequency-adaptive transform: every coefficient
        gets its band's gain). Numpy or dask (stays lazy).
    weighting : FrequencyWeighting
        E.g. ``AWeighting()``.
    dim : str
        The frequency dim.

    Returns
    -------
    xarray.DataArray
        Same dims, coordinates, indexes, name and attrs as ``x``. Gains are cast to
        ``x``'s float precision (float32 data stays float32).

    Raises
    ------
    ParameterError
        When ``weighting`` is not a ``FrequencyWeighting`` or ``x`` has no
        ``FrequencyIndex`` on ``dim``.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> band = zx.FrequencyBand.from_center(1000, 10)
    >>> arr = zx.ArrayWithUnits(np.ones(1), [zx.FrequencyDimension(zx.ExplicitScale([band]))])
    >>> float(zx.weight(arr, zx.AWeighting())[0])
    1.0
    """
    if not isinstance(weighting, FrequencyWeighting):
        raise ParameterError(f"weighting must be a FrequencyWeighting, got {weighting!r}")
    index = frequency_index(x, dim, one_per_band=False)
    gains = weighting.weights(index.scale)
    if index.slices is not None:
        sizes = [s.stop - s.start for s in index.slices]
        gains = np.repeat(gains, sizes)
    dtype = magnitude_dtype(x.dtype) if np.dtype(x.dtype).kind in "fc" else np.float64
    factor = xr.DataArray(gains.astype(dtype), dims=(dim,))
    out = x * factor
    out.name = x.name
    out.attrs = dict(x.attrs)
    return out
