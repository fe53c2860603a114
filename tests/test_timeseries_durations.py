import datetime
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

import zounds_xr as zx
from zounds_xr.timeseries.durations import to_fraction, to_timedelta


@pytest.mark.parametrize("factory, unit", [
    (zx.Hours, "h"), (zx.Minutes, "m"), (zx.Seconds, "s"), (zx.Milliseconds, "ms"),
    (zx.Microseconds, "us"), (zx.Nanoseconds, "ns"), (zx.Picoseconds, "ps")])
def test_integer_durations_keep_their_unit(factory, unit):
    value = factory(7)
    assert value == np.timedelta64(7, unit)
    assert np.datetime_data(value.dtype)[0] == unit


@pytest.mark.parametrize("value, expected", [
    (zx.Seconds(2.5), np.timedelta64(2500, "ms")),
    (zx.Minutes(0.5), np.timedelta64(30, "s")),
    (zx.Milliseconds(0.25), np.timedelta64(250, "us")),
    (zx.Hours(1.5), np.timedelta64(90, "m")),
])
def test_float_durations_are_exact(value, expected):
    assert value == expected
    assert to_fraction(value) == to_fraction(expected)


@pytest.mark.parametrize("bad", ["3", None, np.timedelta64(1, "s"), float("nan"), True])
def test_durations_refuse_non_numbers(bad):
    with pytest.raises(zx.ParameterError):
        zx.Seconds(bad)


@pytest.mark.parametrize("value, seconds", [
    (np.timedelta64(3, "s"), Fraction(3)),
    (np.timedelta64(1, "ps"), Fraction(1, 10**12)),
    (pd.Timedelta("1.5s"), Fraction(3, 2)),
    (datetime.timedelta(milliseconds=20), Fraction(1, 50)),
    ("250ms", Fraction(1, 4)),
    (Fraction(1, 44100), Fraction(1, 44100)),
])
def test_to_fraction_is_exact(value, seconds):
    assert to_fraction(value) == seconds


@pytest.mark.parametrize("bad", [5, 2.0, "yesterday", np.timedelta64("NaT"), object()])
def test_to_fraction_refuses_ambiguous_values(bad):
    with pytest.raises(zx.ParameterError):
        to_fraction(bad)


def test_to_timedelta_rounds_to_the_nearest_ns():
    assert to_timedelta(Fraction(1, 44100)) == np.timedelta64(22676, "ns")  # 22675.7
    assert to_timedelta(Fraction(1, 3 * 10**9)) == np.timedelta64(0, "ns")
    assert to_timedelta(Fraction(1, 2 * 10**9)) == np.timedelta64(1, "ns")  # halves up
