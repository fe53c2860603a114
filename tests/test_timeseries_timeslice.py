import numpy as np
import pytest

import zounds_xr as zx


def test_intersection():
    a = zx.TimeSlice(zx.Seconds(10), start=zx.Seconds(5))
    b = zx.TimeSlice(zx.Seconds(10), start=zx.Seconds(10))
    assert a & b == zx.TimeSlice(zx.Seconds(5), start=zx.Seconds(10))
    assert (a & zx.TimeSlice(start=zx.Seconds(12))) == zx.TimeSlice(zx.Seconds(3),
                                                                   start=zx.Seconds(12))
    disjoint = a & zx.TimeSlice(zx.Seconds(1), start=zx.Seconds(100))
    assert disjoint.duration_fraction == 0


def test_open_ended_intersection_stays_open():
    both = zx.TimeSlice(start=zx.Seconds(1)) & zx.TimeSlice(start=zx.Seconds(2))
    assert both.end_fraction is None and both.start_fraction == 2


def test_containment():
    outer = zx.TimeSlice(zx.Seconds(10), start=zx.Seconds(5))
    assert zx.TimeSlice(zx.Seconds(1), start=zx.Seconds(6)) in outer
    assert zx.TimeSlice(zx.Seconds(10), start=zx.Seconds(6)) not in outer
    assert zx.TimeSlice(start=zx.Seconds(6)) not in outer
    assert zx.Seconds(5) in outer and zx.Seconds(15) not in outer
    assert zx.TimeSlice(start=zx.Seconds(6)) in zx.TimeSlice()


def test_equality_is_exact():
    assert zx.TimeSlice(zx.Seconds(1)) == zx.TimeSlice(zx.Milliseconds(1000))
    assert len({zx.TimeSlice(zx.Seconds(1)), zx.TimeSlice(zx.Milliseconds(1000))}) == 1


@pytest.mark.parametrize("kwargs", [{"duration": 5}, {"start": "yesterday"},
                                    {"duration": zx.Seconds(-1)}, {"start": zx.Seconds(-1)}])
def test_validation(kwargs):
    with pytest.raises(zx.ParameterError):
        zx.TimeSlice(**kwargs)


def test_strings_are_durations():
    assert zx.TimeSlice("2s", start="1s") == zx.TimeSlice(zx.Seconds(2), start=zx.Seconds(1))
    assert zx.TimeSlice(np.timedelta64(2, "s")).end_fraction == 2
