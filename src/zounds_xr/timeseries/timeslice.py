"""``TimeSlice``: zounds' selection of a span of time (overlap semantics)."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

import numpy as np

from ..core.errors import ParameterError
from .durations import to_fraction

__all__ = ["TimeSlice"]


@dataclass(frozen=True, init=False)
class TimeSlice:
    """The span ``[start, start + duration)``; ``duration=None`` runs to the end.

    Selecting ``da.sel(time=TimeSlice(...))`` returns every frame whose extent overlaps
    the span (zounds semantics), so overlapping windows at both edges are included.
    A frozen dataclass (not a tuple) so that xarray passes it to the index unchanged.

    Parameters
    ----------
    duration : np.timedelta64, optional
        Length of the span; ``None`` means to the end of the axis.
    start : np.timedelta64, optional
        Start of the span, relative to time zero; defaults to zero.

    Raises
    ------
    ParameterError
        When ``duration`` or ``start`` is not a duration, or is negative.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> ts = zx.ArrayWithUnits(np.arange(100), [zx.TimeDimension(zx.Seconds(1))])
    >>> ts.sel(time=zx.TimeSlice(duration=zx.Seconds(5), start=zx.Seconds(50))).values
    array([50, 51, 52, 53, 54])
    """

    duration: object = None
    start: object = None
    # exact values, set in __init__ (ClassVar: not dataclass fields, only declared);
    # plain attributes, not properties: a selection reads them without a call
    _start: ClassVar[Fraction]
    _duration: ClassVar[Fraction | None]
    #: start, exact seconds
    start_fraction: ClassVar[Fraction]
    #: duration, exact seconds (``None``: open-ended)
    duration_fraction: ClassVar[Fraction | None]
    #: end (exclusive), exact seconds (``None``: open-ended)
    end_fraction: ClassVar[Fraction | None]

    def __init__(self, duration=None, start=None):
        # validate eagerly and keep exact values
        d = None if duration is None else to_fraction(duration, name="TimeSlice duration")
        s = Fraction(0) if start is None else to_fraction(start, name="TimeSlice start")
        if d is not None and d < 0:
            raise ParameterError(f"TimeSlice duration must not be negative, got {duration!r}")
        if s < 0:
            raise ParameterError(f"TimeSlice start must not be negative, got {start!r}")
        object.__setattr__(self, "duration", duration)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "_start", s)
        object.__setattr__(self, "_duration", d)
        object.__setattr__(self, "start_fraction", s)
        object.__setattr__(self, "duration_fraction", d)
        object.__setattr__(self, "end_fraction", None if d is None else s + d)

    def __and__(self, other: TimeSlice) -> TimeSlice:
        """Intersection of two spans (an empty span at the later start when disjoint).

        The result's ``start`` and ``duration`` are ``np.timedelta64`` exactly equal to
        the intersection (in the coarsest unit that holds it: ``None`` for a zero start
        or an open end, as when constructing), like those of any other TimeSlice;
        only spans given as ``Fraction`` seconds that no timedelta unit holds keep a
        ``Fraction``.

        >>> import zounds_xr as zx
        >>> both = zx.TimeSlice(zx.Seconds(3), start=zx.Seconds(1)) & zx.TimeSlice(
        ...     zx.Milliseconds(2500))
        >>> both.start, both.duration
        (np.timedelta64(1,'s'), np.timedelta64(1500,'ms'))
        """
        if not isinstance(other, TimeSlice):
            return NotImplemented
        start = max(self._start, other._start)
        ends = [e for e in (self.end_fraction, other.end_fraction) if e is not None]
        begin = _exact(start) if start else None
        if not ends:
            return TimeSlice(start=begin)
        end = max(min(ends), start)
        return TimeSlice(_exact(end - start), start=begin)

    def __contains__(self, other) -> bool:
        """Return a TimeSlice contains another span, or a time point, that lies inside it."""
        if isinstance(other, TimeSlice):
            if other._start < self._start:
                return False
            if self.end_fraction is None:
                return True
            return other.end_fraction is not None and other.end_fraction <= self.end_fraction
        t = to_fraction(other, name="time")
        return t >= self._start and (self.end_fraction is None or t < self.end_fraction)

    def __eq__(self, other) -> bool:
        return (isinstance(other, TimeSlice) and self._start == other._start
                and self._duration == other._duration)

    def __hash__(self) -> int:
        return hash((self._start, self._duration))

    def __repr__(self) -> str:
        d = "None" if self._duration is None else f"{float(self._duration):g}s"
        return f"TimeSlice(duration={d}, start={float(self._start):g}s)"


#: units tried, coarsest first, to hold an exact number of seconds
_UNITS = (("s", 1), ("ms", 10**3), ("us", 10**6), ("ns", 10**9), ("ps", 10**12),
          ("fs", 10**15), ("as", 10**18))


def _exact(seconds: Fraction):
    """``np.timedelta64`` exactly equal to ``seconds``, else the ``Fraction`` itself."""
    seconds = Fraction(seconds)
    for unit, per_second in _UNITS:
        count = seconds * per_second
        if count.denominator == 1 and abs(count.numerator) < 2**63 - 1:
            return np.timedelta64(count.numerator, unit)  # type: ignore[call-overload]
    return seconds
