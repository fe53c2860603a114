"""Frequencies and frequency bands: :class:`Hertz` and :class:`FrequencyBand`.

A :class:`FrequencyBand` is the frequency-axis counterpart of ``TimeSlice``: it is the
selector of ``da.sel(frequency=FrequencyBand(a, b))`` (every band overlapping
``[a, b)``) and the building block of every :class:`~zounds_xr.frequency.scales.FrequencyScale`.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from ..core.errors import ParameterError

__all__ = ["Hertz", "Hz", "FrequencyBand"]


def _hz(value, name: str) -> float:
    """``value`` as a finite float number of hertz, or :class:`ParameterError` naming ``name``.

    Accepts real numbers (Python, numpy, :class:`fractions.Fraction`, :class:`Hertz`) and
    zounds-style objects with an ``hz`` attribute. Strings and booleans are refused even
    though ``float("440")`` and ``float(True)`` would work: they are almost always bugs.
    """
    value = getattr(value, "hz", value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(f"{name} must be a real number of hertz, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ParameterError(f"{name} must be finite, got {value!r}")
    return out


class Hertz(float):
    """A frequency in hertz: a ``float`` that says what it is.

    ``Hertz`` is a plain ``float`` subclass, so it works wherever a number of hertz is
    expected (band edges, ``sel`` labels, numpy). Arithmetic returns plain floats
    (zounds returned ``Hertz``; a float is what numpy and xarray produce anyway). The
    ``hz`` attribute is kept for zounds compatibility; ``Hz`` is an alias.

    Parameters
    ----------
    value : float or Hertz
        The frequency (any real number, or an object with an ``hz`` attribute).

    Examples
    --------
    >>> from zounds_xr import Hertz
    >>> Hertz(440)
    Hertz(440.0)
    >>> Hertz(440).hz, Hertz(440) * 2
    (440.0, 880.0)
    """

    __slots__ = ()

    def __new__(cls, value):
        """Build the value."""
        return super().__new__(cls, _hz(value, "value"))

    @property
    def hz(self) -> float:
        """The frequency as a plain float of hertz."""
        return float(self)

    def __repr__(self) -> str:
        return f"Hertz({float(self)!r})"


#: zounds alias of :class:`Hertz`
Hz = Hertz


@dataclass(frozen=True, init=False)
class FrequencyBand:
    """An interval of frequencies ``[start_hz, stop_hz)`` in hertz.

    Frozen and hashable (a dataclass, not a tuple: xarray splits tuple selectors into
    point labels). ``start_hz`` may be negative: the band of FFT bin 0, centred on
    0 Hz, starts half a bin below zero.

    Parameters
    ----------
    start_hz, stop_hz : float
        Lower and upper edge in hertz; finite, ``stop_hz > start_hz``.

    Raises
    ------
    ParameterError
        (a ``ValueError``) when an edge is not a finite number or ``stop_hz <= start_hz``.

    Examples
    --------
    >>> from zounds_xr import FrequencyBand
    >>> band = FrequencyBand(500, 1000)
    >>> band.center_frequency, band.bandwidth
    (750.0, 500.0)
    >>> band.intersect(FrequencyBand(900, 2000))
    FrequencyBand(start_hz=900.0, stop_hz=1000.0, center=950.0, bandwidth=100.0)
    """

    start_hz: float
    stop_hz: float

    def __init__(self, start_hz, stop_hz):
        start = _hz(start_hz, "start_hz")
        stop = _hz(stop_hz, "stop_hz")
        if not stop > start:
            raise ParameterError(
                f"stop_hz must be greater than start_hz, got start_hz={start!r}, "
                f"stop_hz={stop!r}")
        object.__setattr__(self, "start_hz", start)
        object.__setattr__(self, "stop_hz", stop)

    # constructors ---------------------------------------------------------------------
    @classmethod
    def from_start(cls, start_hz, bandwidth_hz) -> FrequencyBand:
        """Return the band of ``bandwidth_hz`` starting at ``start_hz``.

        >>> FrequencyBand.from_start(100, 50).stop_hz
        150.0
        """
        start = _hz(start_hz, "start_hz")
        return cls(start, start + _hz(bandwidth_hz, "bandwidth_hz"))

    @classmethod
    def from_center(cls, center_hz, bandwidth_hz) -> FrequencyBand:
        """Return the band of ``bandwidth_hz`` centred on ``center_hz``.

        >>> FrequencyBand.from_center(1000, 100)
        FrequencyBand(start_hz=950.0, stop_hz=1050.0, center=1000.0, bandwidth=100.0)
        """
        center = _hz(center_hz, "center_hz")
        half = _hz(bandwidth_hz, "bandwidth_hz") / 2
        return cls(center - half, center + half)

    # properties -------------------------------------------------------------------------
    @property
    def bandwidth(self) -> float:
        """The width of the band, in hertz."""
        return self.stop_hz - self.start_hz

    @property
    def center_frequency(self) -> float:
        """The midpoint of the band, in hertz."""
        return self.start_hz + self.bandwidth / 2

    # set operations -------------------------------------------------------------------
    def overlaps(self, other: FrequencyBand) -> bool:
        """Whether the two half-open bands share any frequency (touching is not overlap).

        >>> FrequencyBand(0, 100).overlaps(FrequencyBand(100, 200))
        False
        """
        return self.start_hz < other.stop_hz and other.start_hz < self.stop_hz

    def intersect(self, other: FrequencyBand) -> FrequencyBand:
        """Return the band both bands cover.

        Raises
        ------
        ParameterError
            When the bands do not overlap (bands that only touch share no frequency).
        """
        if not isinstance(other, FrequencyBand):
            raise ParameterError(f"other must be a FrequencyBand, got {other!r}")
        if not self.overlaps(other):
            raise ParameterError(f"{self!r} and {other!r} do not overlap")
        return FrequencyBand(max(self.start_hz, other.start_hz),
                             min(self.stop_hz, other.stop_hz))

    __and__ = intersect

    def bandwidth_ratio(self, other: FrequencyBand) -> float:
        """``other.bandwidth / self.bandwidth`` (zounds)."""
        return other.bandwidth / self.bandwidth

    def intersection_ratio(self, other: FrequencyBand) -> float:
        """Return the fraction of this band covered by ``other`` (0 when they do not overlap)."""
        if not self.overlaps(other):
            return 0.0
        return self.bandwidth_ratio(self.intersect(other))

    def __contains__(self, hz) -> bool:
        """``440 in band``: whether a frequency lies in ``[start_hz, stop_hz)``."""
        if isinstance(hz, FrequencyBand):
            return self.start_hz <= hz.start_hz and hz.stop_hz <= self.stop_hz
        value = _hz(hz, "hz")
        return self.start_hz <= value < self.stop_hz

    def __repr__(self) -> str:
        return (f"FrequencyBand(start_hz={self.start_hz!r}, stop_hz={self.stop_hz!r}, "
                f"center={self.center_frequency!r}, bandwidth={self.bandwidth!r})")
