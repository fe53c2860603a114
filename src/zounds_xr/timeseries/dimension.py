"""``TimeDimension``: zounds' description of a constant-rate time axis."""
from __future__ import annotations

from collections.abc import Hashable
from fractions import Fraction

import numpy as np
import xarray as xr

from ..core.dimension import Dimension
from ..core.types import DurationLike
from ..core.validation import nonnegative_int
from ..core.errors import ParameterError
from .durations import to_fraction, to_timedelta
from .index import time_coords
from .samplerate import SampleRate, rate_from_fractions

__all__ = ["TimeDimension"]


class TimeDimension(Dimension):
    """A constant-rate time axis: one frame every ``frequency``, each ``duration`` long.

    The rate is held as a :class:`~zounds_xr.SampleRate` (:attr:`samplerate`);
    ``frequency``, ``duration`` and their exact values are that rate's.

    Parameters
    ----------
    frequency : np.timedelta64, Fraction or SampleRate
        Step between frames, > 0 (a SampleRate gives both frequency and duration).
    duration : np.timedelta64 or Fraction, optional
        Extent of one frame, > 0; defaults to ``frequency`` (or the rate's duration).
    size : int >= 0, optional
        Number of frames (known once applied to an axis).
    start : np.timedelta64 or Fraction, optional
        Start of the first frame; defaults to zero.

    Raises
    ------
    ParameterError
        For a missing or non-positive frequency or duration, or a negative size.

    See Also
    --------
    zounds_xr.TimeIndex : The index this dimension builds on its axis.
    zounds_xr.SampleRate : The rate it holds.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> ts = zx.ArrayWithUnits(np.zeros(100), [zx.TimeDimension(zx.Seconds(1))])
    >>> ts.zx.dimensions[0].end_seconds
    100.0
    >>> zx.TimeDimension(zx.SR44100()).samplerate
    SR44100()
    """

    default_dim = "time"

    def __init__(self, frequency: DurationLike | SampleRate | None = None,
                 duration: DurationLike | None = None, size: int | None = None,
                 start: DurationLike | None = None):
        if frequency is None:
            raise ParameterError("TimeDimension needs a frequency, e.g. zx.Seconds(1)")
        if isinstance(frequency, SampleRate):
            rate = frequency
            if duration is not None:
                rate = SampleRate(rate.exact_frequency, duration)
        else:
            f = to_fraction(frequency, name="frequency")
            d = f if duration is None else to_fraction(duration, name="duration")
            rate = SampleRate(f, d)
        #: the rate of the axis (an ``AudioSampleRate`` for audio samples)
        self.samplerate: SampleRate = rate_from_fractions(rate.exact_frequency,
                                                          rate.exact_duration)
        self._start = Fraction(0) if start is None else to_fraction(start, name="start")
        self.size = None if size is None else nonnegative_int(size, "size")

    @property
    def frequency(self) -> np.timedelta64:
        """Step between frame starts, ``timedelta64[ns]`` (see :attr:`samplerate`)."""
        return self.samplerate.frequency

    @property
    def duration(self) -> np.timedelta64:
        """Extent of one frame, ``timedelta64[ns]`` (see :attr:`samplerate`)."""
        return self.samplerate.duration

    @property
    def exact_frequency(self) -> Fraction:
        """Step between frame starts, exact seconds."""
        return self.samplerate.exact_frequency

    @property
    def exact_duration(self) -> Fraction:
        """Extent of one frame, exact seconds."""
        return self.samplerate.exact_duration

    @property
    def start(self) -> np.timedelta64:
        """Start of the first frame, ``timedelta64[ns]``."""
        return to_timedelta(self._start)

    @property
    def end_seconds(self) -> float:
        """End of the last frame's extent, in seconds."""
        return float(self._exact_end())

    @property
    def end(self) -> np.timedelta64:
        """End of the last frame's extent, ``timedelta64[ns]``."""
        return to_timedelta(self._exact_end())

    def _exact_end(self) -> Fraction:
        if self.size is None:
            raise ParameterError("the end of a TimeDimension without a size is unknown")
        if self.size == 0:
            return self._start
        return self._start + (self.size - 1) * self.exact_frequency + self.exact_duration

    def coords(self, size: int, dim: Hashable = "time") -> xr.Coordinates:
        """Return the axis' coordinates with a lazy :class:`~zounds_xr.TimeIndex`.

        Parameters
        ----------
        size : int >= 0
            Number of frames; must equal :attr:`size` when that is set.
        dim : hashable
            The dim name (``"time"`` or ``"window"``).

        Returns
        -------
        xarray.Coordinates
        """
        self.validate(size)
        return time_coords(size, self.exact_frequency, self.exact_duration, self._start,
                           dim=dim)

    def validate(self, size: int) -> None:
        """Raise :class:`~zounds_xr.ParameterError` unless ``size`` matches :attr:`size`."""
        if self.size is not None and self.size != size:
            raise ParameterError(f"TimeDimension of size {self.size} given for an axis of {size}")

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, TimeDimension) and self.samplerate == other.samplerate
                and self._start == other._start and self.size == other.size)

    def __hash__(self) -> int:
        return hash((self.samplerate, self._start, self.size))

    def __repr__(self) -> str:
        return (f"TimeDimension(f={float(self.exact_frequency):.8g}, "
                f"d={float(self.exact_duration):.8g})")
