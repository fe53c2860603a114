"""``TimeDimension``: zounds' description of a constant-rate time axis."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import xarray as xr

from ..dimensions import Dimension
from ..errors import ParameterError
from .durations import to_fraction, to_timedelta
from .samplerate import SampleRate, rate_from_fractions

__all__ = ["TimeDimension"]


class TimeDimension(Dimension):
    """A constant-rate time axis: one frame every ``frequency``, each ``duration`` long.

    Parameters
    ----------
    frequency : np.timedelta64, Fraction or SampleRate
        Step between frames (a SampleRate gives both frequency and duration).
    duration : np.timedelta64 or Fraction, optional
        Extent of one frame; defaults to ``frequency``.
    size : int, optional
        Number of frames (known once applied to an axis).
    start : np.timedelta64 or Fraction, optional
        Start of the first frame; defaults to zero.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> ts = zx.ArrayWithUnits(np.zeros(100), [zx.TimeDimension(zx.Seconds(1))])
    >>> ts.zx.dimensions[0].end_seconds
    100.0
    """

    default_dim = "time"

    def __init__(self, frequency=None, duration=None, size=None, start=None):
        if frequency is None:
            raise ParameterError("TimeDimension needs a frequency, e.g. zx.Seconds(1)")
        if isinstance(frequency, SampleRate):
            duration = frequency.exact_duration if duration is None else duration
            frequency = frequency.exact_frequency
        self._frequency = to_fraction(frequency, name="frequency")
        self._duration = (self._frequency if duration is None
                          else to_fraction(duration, name="duration"))
        if self._frequency <= 0 or self._duration <= 0:
            raise ParameterError("TimeDimension frequency and duration must be positive")
        self._start = Fraction(0) if start is None else to_fraction(start, name="start")
        if size is not None and (not isinstance(size, (int, np.integer)) or size < 0):
            raise ParameterError(f"size must be a non-negative integer, got {size!r}")
        self.size = None if size is None else int(size)

    @property
    def frequency(self) -> np.timedelta64:
        return to_timedelta(self._frequency)

    @property
    def duration(self) -> np.timedelta64:
        return to_timedelta(self._duration)

    @property
    def start(self) -> np.timedelta64:
        return to_timedelta(self._start)

    @property
    def exact_frequency(self) -> Fraction:
        return self._frequency

    @property
    def exact_duration(self) -> Fraction:
        return self._duration

    @property
    def exact_start(self) -> Fraction:
        return self._start

    @property
    def samplerate(self) -> SampleRate:
        return rate_from_fractions(self._frequency, self._duration)

    @property
    def end_seconds(self) -> float:
        """End of the last frame's extent, in seconds."""
        return float(self._exact_end())

    @property
    def end(self) -> np.timedelta64:
        return to_timedelta(self._exact_end())

    def _exact_end(self) -> Fraction:
        if self.size is None:
            raise ParameterError("the end of a TimeDimension without a size is unknown")
        if self.size == 0:
            return self._start
        return self._start + (self.size - 1) * self._frequency + self._duration

    def coords(self, size: int, dim: str = "time") -> xr.Coordinates:
        from .index import time_coords

        self.validate(size)
        return time_coords(size, self._frequency, self._duration, self._start, dim=dim)

    def validate(self, size: int) -> None:
        if self.size is not None and self.size != size:
            raise ParameterError(f"TimeDimension of size {self.size} given for an axis of {size}")

    def __eq__(self, other) -> bool:
        return (isinstance(other, TimeDimension) and self._frequency == other._frequency
                and self._duration == other._duration and self._start == other._start
                and self.size == other.size)

    def __hash__(self) -> int:
        return hash((self._frequency, self._duration, self._start, self.size))

    def __repr__(self) -> str:
        return f"TimeDimension(f={float(self._frequency):.8g}, d={float(self._duration):.8g})"
