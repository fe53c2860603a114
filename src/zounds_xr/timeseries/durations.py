"""Durations as ``np.timedelta64`` and exact conversions to ``Fraction`` seconds.

zounds spelled durations as ``Seconds(3)``; here they are plain ``np.timedelta64``
values. Floats are accepted (``Seconds(2.5)``) and kept exact whenever a coarser unit
can hold them. Internally every time is a :class:`fractions.Fraction` of a second, so
that 1/44100 s never drifts (see :func:`to_fraction`).
"""
from __future__ import annotations

import datetime
import numbers
from fractions import Fraction

import numpy as np
import pandas as pd

from ..core.errors import ParameterError

__all__ = [
    "Hours",
    "Minutes",
    "Seconds",
    "Milliseconds",
    "Microseconds",
    "Nanoseconds",
    "Picoseconds",
    "to_fraction",
    "to_timedelta",
]

#: length of one unit of each numpy timedelta unit, in seconds
_UNIT_SECONDS = {
    "h": Fraction(3600),
    "m": Fraction(60),
    "s": Fraction(1),
    "ms": Fraction(1, 10**3),
    "us": Fraction(1, 10**6),
    "ns": Fraction(1, 10**9),
    "ps": Fraction(1, 10**12),
    "fs": Fraction(1, 10**15),
    "as": Fraction(1, 10**18),
    "D": Fraction(86400),
    "W": Fraction(7 * 86400),
}
#: finer units tried, in order, to hold a fractional count exactly
_FINER = ["h", "m", "s", "ms", "us", "ns", "ps"]
#: the longest duration (seconds): what ``np.timedelta64[ns]``, the unit of every time
#: label, holds (about 292 years)
MAX_SECONDS = Fraction(2**63 - 1, 10**9)


def _check_range(seconds: Fraction, shown) -> None:
    if abs(seconds) > MAX_SECONDS:
        raise ParameterError(
            f"a duration must lie within +-{float(MAX_SECONDS):.6g} s (about 292 years, what "
            f"np.timedelta64[ns] holds), got {shown!r}")


def _duration(count, unit: str) -> np.timedelta64:
    if isinstance(count, np.timedelta64) or isinstance(count, bool):
        raise ParameterError(f"a duration count must be a number, got {count!r}")
    if isinstance(count, numbers.Integral):
        _check_range(int(count) * _UNIT_SECONDS[unit], count)
        return np.timedelta64(int(count), unit)  # type: ignore[call-overload]
    if isinstance(count, numbers.Real):
        if not np.isfinite(float(count)):
            raise ParameterError(f"a duration must be finite, got {count!r}")
        exact = Fraction(repr(count)) if isinstance(count, float) else Fraction(
            count)  # type: ignore[call-overload]
        seconds = exact * _UNIT_SECONDS[unit]
        _check_range(seconds, count)
        for finer in _FINER[_FINER.index(unit):]:
            n = seconds / _UNIT_SECONDS[finer]
            if n.denominator == 1:
                return np.timedelta64(int(n), finer)  # type: ignore[call-overload]
        return np.timedelta64(round(seconds / _UNIT_SECONDS["ps"]), "ps")
    raise ParameterError(f"a duration count must be a number, got {type(count).__name__} {count!r}")


def _factory(unit: str, name: str, word: str):
    def make(count=1) -> np.timedelta64:
        return _duration(count, unit)

    make.__name__ = make.__qualname__ = name
    make.__doc__ = f"""Return a duration of ``count`` {word} as ``np.timedelta64``.

    Floats are accepted and kept exact when a finer unit can hold them.

    Parameters
    ----------
    count : int or float, optional
        How many {word} (default 1).

    Returns
    -------
    numpy.timedelta64
        In {word}, or in the coarsest finer unit that holds a fractional count exactly
        (picoseconds, rounded, when none does).

    Raises
    ------
    ParameterError
        When ``count`` is not a finite number or the duration is out of range.

    Examples
    --------
    >>> import zounds_xr as zx
    >>> zx.{name}(3)
    np.timedelta64(3,'{unit}')
    """
    return make


Hours = _factory("h", "Hours", "hours")
Minutes = _factory("m", "Minutes", "minutes")
Seconds = _factory("s", "Seconds", "seconds")
Milliseconds = _factory("ms", "Milliseconds", "milliseconds")
Microseconds = _factory("us", "Microseconds", "microseconds")
Nanoseconds = _factory("ns", "Nanoseconds", "nanoseconds")
Picoseconds = _factory("ps", "Picoseconds", "picoseconds")


def to_fraction(value, *, name: str = "time") -> Fraction:
    """Return the exact seconds of a duration-like value.

    Plain numbers are refused: whether ``5`` means seconds or samples is ambiguous.

    Parameters
    ----------
    value : np.timedelta64, pandas.Timedelta, datetime.timedelta, str or Fraction
        ``np.timedelta64`` of any unit, a timedelta string (``"3s"``, ``"1.5 ms"``) or
        a ``Fraction`` (taken as seconds).
    name : str
        How error messages name ``value``.

    Returns
    -------
    fractions.Fraction
        Seconds, exactly.

    Raises
    ------
    ParameterError
        When ``value`` is not a duration; the message uses ``name``.
    """
    if isinstance(value, Fraction):
        return value
    # np.timedelta64 is a subclass of np.signedinteger: test it before numbers
    if isinstance(value, np.timedelta64):
        if np.isnat(value):
            raise ParameterError(f"{name} must not be NaT")
        unit, step = np.datetime_data(value.dtype)
        if unit == "generic":
            raise ParameterError(f"{name}={value!r} has no unit; use e.g. zx.Seconds(1)")
        return Fraction(int(value.astype(np.int64))) * step * _UNIT_SECONDS[unit]
    if isinstance(value, pd.Timedelta):
        if pd.isna(value):
            raise ParameterError(f"{name} must not be NaT")
        return Fraction(int(value.value), 10**9)
    if isinstance(value, datetime.timedelta):
        return Fraction(int(pd.Timedelta(value).value), 10**9)
    if isinstance(value, str):
        try:
            parsed = pd.Timedelta(value)
        except (ValueError, TypeError) as exc:
            raise ParameterError(f"{name}={value!r} is not a duration ({exc})") from None
        if pd.isna(parsed):
            raise ParameterError(f"{name}={value!r} is not a duration")
        return Fraction(int(parsed.value), 10**9)
    raise ParameterError(
        f"{name} must be a duration such as zx.Seconds(1) or np.timedelta64, "
        f"got {type(value).__name__} {value!r}"
    )


def to_timedelta(seconds: Fraction) -> np.timedelta64:
    """Return the ``np.timedelta64[ns]`` nearest to an exact number of seconds.

    Parameters
    ----------
    seconds : Fraction or number
        Seconds.

    Returns
    -------
    numpy.timedelta64
        Nanoseconds, halves rounded up.

    Raises
    ------
    ParameterError
        When the duration is beyond ``np.timedelta64[ns]`` (about 292 years).
    """
    ns = int((Fraction(seconds) * 10**9 + Fraction(1, 2)) // 1)
    if not -(2**63) < ns < 2**63:
        raise ParameterError(
            f"{float(seconds):.6g} s is outside what np.timedelta64[ns] holds (about 292 "
            f"years)")
    return np.timedelta64(ns, "ns")
