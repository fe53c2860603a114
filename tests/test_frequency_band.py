"""Hertz and FrequencyBand."""
import math
import pickle
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zounds_xr.core.errors import ParameterError
from zounds_xr.frequency import FrequencyBand, Hertz, Hz

finite = st.floats(min_value=-1e5, max_value=1e5, allow_nan=False, allow_infinity=False)


# Hertz ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [440, 440.0, np.float32(440), np.int64(440), Fraction(880, 2)])
def test_hertz_is_a_float(value):
    hz = Hertz(value)
    assert isinstance(hz, float)
    assert hz == 440.0 and hz.hz == 440.0
    assert repr(hz) == "Hertz(440.0)"


def test_hertz_accepts_objects_with_hz_and_has_an_alias():
    assert Hertz(Hertz(100)) == 100.0
    assert Hz is Hertz


@pytest.mark.parametrize("bad", ["440", True, None, float("nan"), float("inf"), [1]])
def test_hertz_rejects_non_numbers(bad):
    with pytest.raises(ParameterError, match="value"):
        Hertz(bad)


def test_hertz_arithmetic_is_float_arithmetic():
    assert Hertz(440) * 2 == 880.0
    assert np.allclose(np.array([Hertz(1), Hertz(2)]), [1, 2])


# FrequencyBand --------------------------------------------------------------------------
def test_band_properties_as_in_zounds():
    band = FrequencyBand(500, 1000)
    assert band.center_frequency == 750.0
    assert band.bandwidth == 500
    assert (band.start_hz, band.stop_hz) == (500.0, 1000.0)
    assert isinstance(band.start_hz, float)


@pytest.mark.parametrize("start, stop", [(1000, 500), (500, 500), (0, -1)])
def test_band_requires_stop_above_start(start, stop):
    with pytest.raises(ParameterError, match="stop_hz must be greater than start_hz"):
        FrequencyBand(start, stop)


def test_band_error_is_a_value_error():
    with pytest.raises(ValueError):
        FrequencyBand(1000, 500)


@pytest.mark.parametrize("start, stop, name", [
    (float("nan"), 1, "start_hz"), (0, float("inf"), "stop_hz"), ("0", 1, "start_hz"),
    (0, None, "stop_hz"), (False, 1, "start_hz")])
def test_band_rejects_non_finite_or_non_numbers(start, stop, name):
    with pytest.raises(ParameterError, match=name):
        FrequencyBand(start, stop)


def test_band_may_start_below_zero():
    # the band of FFT bin 0 is centred on 0 Hz
    band = FrequencyBand.from_center(0, 10)
    assert band.start_hz == -5 and band.center_frequency == 0


def test_from_start_and_from_center():
    assert FrequencyBand.from_start(100, 50) == FrequencyBand(100, 150)
    assert FrequencyBand.from_center(1000, 100) == FrequencyBand(950, 1050)
    with pytest.raises(ParameterError, match="bandwidth_hz"):
        FrequencyBand.from_start(100, float("nan"))
    with pytest.raises(ParameterError):
        FrequencyBand.from_center(100, -10)


def test_intersect():
    inter = FrequencyBand(500, 1000).intersect(FrequencyBand(900, 2000))
    assert (inter.start_hz, inter.stop_hz) == (900, 1000)
    assert FrequencyBand(500, 1000) & FrequencyBand(0, 600) == FrequencyBand(500, 600)
    assert FrequencyBand(0, 10).intersect(FrequencyBand(2, 3)) == FrequencyBand(2, 3)


@pytest.mark.parametrize("other", [FrequencyBand(1000, 2000), FrequencyBand(2000, 3000)])
def test_intersect_disjoint_or_touching_raises(other):
    with pytest.raises(ParameterError, match="do not overlap"):
        FrequencyBand(500, 1000).intersect(other)


def test_intersection_ratio():
    assert FrequencyBand(0, 100).intersection_ratio(FrequencyBand(50, 200)) == 0.5
    assert FrequencyBand(0, 100).intersection_ratio(FrequencyBand(100, 200)) == 0.0


def test_contains_and_overlaps_are_half_open():
    band = FrequencyBand(100, 200)
    assert 100 in band and 199.999 in band and 200 not in band
    assert FrequencyBand(120, 150) in band
    assert band.overlaps(FrequencyBand(199, 300))
    assert not band.overlaps(FrequencyBand(200, 300))


def test_equality_hash_and_immutability():
    a, b = FrequencyBand(1, 2), FrequencyBand(1.0, 2.0)
    assert a == b and hash(a) == hash(b)
    assert a != FrequencyBand(1, 3)
    assert len({a, b}) == 1
    with pytest.raises(AttributeError):
        a.start_hz = 0
    assert not isinstance(a, tuple)  # xarray would split a tuple selector


def test_repr_is_like_zounds():
    assert repr(FrequencyBand(20, 20000)) == (
        "FrequencyBand(start_hz=20.0, stop_hz=20000.0, center=10010.0, bandwidth=19980.0)")


def test_pickle_round_trip():
    band = FrequencyBand(20, 20000)
    assert pickle.loads(pickle.dumps(band)) == band


@given(finite, st.floats(min_value=1e-3, max_value=1e4), finite,
       st.floats(min_value=1e-3, max_value=1e4))
def test_intersection_is_inside_both(a, wa, b, wb):
    x, y = FrequencyBand.from_start(a, wa), FrequencyBand.from_start(b, wb)
    if x.overlaps(y):
        inter = x.intersect(y)
        assert x.start_hz <= inter.start_hz and inter.stop_hz <= x.stop_hz
        assert y.start_hz <= inter.start_hz and inter.stop_hz <= y.stop_hz
        expected = min(x.stop_hz, y.stop_hz) - max(x.start_hz, y.start_hz)
        assert math.isclose(inter.bandwidth, expected)
    else:
        with pytest.raises(ParameterError):
            x.intersect(y)
