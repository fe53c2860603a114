"""``AudioSamples``: audio as a DataArray with an exact, lazy ``time`` axis."""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..core.errors import ParameterError, SampleRateError
from ..timeseries.index import time_coords
from ..timeseries.samplerate import AudioSampleRate

__all__ = ["AudioSamples"]


def AudioSamples(array, samplerate: AudioSampleRate, start=0,  # noqa: N802  (zounds' name)
                 name=None) -> xr.DataArray:
    """Constant-rate audio samples as a DataArray.

    Parameters
    ----------
    array : array_like or dask.array.Array, shape (time,) or (time, channel)
        The samples; any number of channels. Kept lazy when it is a dask array.
    samplerate : AudioSampleRate
        The audio rate, e.g. ``zx.SR44100()``.
    start : np.timedelta64 or Fraction, optional
        Time of the first sample (streamed chunks start where they start).
    name : hashable, optional
        The DataArray's name.

    Returns
    -------
    xarray.DataArray [dims=("time",) or ("time", "channel")]
        ``array`` with a ``TimeIndex`` at ``samplerate`` on ``time``.

    Raises
    ------
    SampleRateError
        When ``samplerate`` is not an ``AudioSampleRate`` (a ``TypeError``).
    ParameterError
        When ``array`` has more than two axes, or is not of a real float or integer
        dtype (strings, objects, booleans and complex numbers are refused).

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> samples = zx.AudioSamples(np.zeros(44100 * 10), zx.SR44100())
    >>> samples.zx.samples_per_second, samples.zx.channels
    (44100, 1)
    >>> samples.sel(time=zx.TimeSlice(zx.Seconds(2))).shape
    (88200,)
    """
    if not isinstance(samplerate, AudioSampleRate):
        raise SampleRateError(
            f"samplerate must be an AudioSampleRate such as zx.SR44100(), got {samplerate!r}")
    if isinstance(array, xr.DataArray):
        array = array.data
    if not hasattr(array, "ndim"):
        array = np.asarray(array)
    if array.ndim not in (1, 2):
        raise ParameterError(
            f"audio samples must have shape (time,) or (time, channel), got {array.shape}")
    dtype = np.dtype(array.dtype)
    if dtype.kind not in "fiu":
        # strings, objects, booleans and complex numbers are not samples of a signal
        raise ParameterError(
            f"audio samples must be real numbers (a float or integer dtype), got {dtype}")
    dims = ("time",) if array.ndim == 1 else ("time", "channel")
    coords = time_coords(array.shape[0], samplerate, start=start)
    return xr.DataArray(array, coords=coords, dims=dims, name=name)
