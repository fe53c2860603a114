"""zounds_xr.testing: whole-object assertions that check index types and parameters."""
import numpy as np
import pytest
import xarray as xr

import zounds_xr as zx
from zounds_xr.testing import assert_allclose, assert_identical, assert_indexes_equal


def _spec(scale=None, start=None):
    start = zx.Seconds(0) if start is None else start
    scale = scale or zx.LinearScale(zx.FrequencyBand(0, 400), 4)
    return zx.ArrayWithUnits(np.arange(12.0).reshape(3, 4),
                             [zx.TimeDimension(zx.Milliseconds(10), start=start),
                              zx.FrequencyDimension(scale)], name="spec")


def test_identical_objects_pass(backend):
    a = backend(_spec())
    assert_identical(a, backend(_spec()))
    assert_identical(xr.Dataset({"s": a}), xr.Dataset({"s": backend(_spec())}))
    assert_allclose(a, a + 1e-12)


def test_an_index_of_another_type_fails_although_the_values_agree():
    a = _spec()
    rebuilt = a.drop_indexes("time").set_xindex("time")
    with pytest.raises(AssertionError, match="TimeIndex on the left and a PandasIndex"):
        assert_identical(a, rebuilt)


def test_index_parameters_and_values_are_compared():
    with pytest.raises(AssertionError, match="indexes of 'time' differ"):
        assert_identical(_spec(), _spec(start=zx.Milliseconds(5)))
    other = zx.ExplicitScale(list(zx.LinearScale(zx.FrequencyBand(0, 400), 4).bands))
    with pytest.raises(AssertionError, match="indexes of 'frequency' differ"):
        assert_indexes_equal(_spec(), _spec(other))
    with pytest.raises(AssertionError):
        assert_identical(_spec(), _spec() * 2)
    with pytest.raises(AssertionError):
        assert_allclose(_spec(), _spec() + 1)
    with pytest.raises(AssertionError, match="indexed coordinates differ"):
        assert_identical(_spec(), _spec().drop_indexes("frequency"))


def test_types_are_checked():
    with pytest.raises(AssertionError, match="types differ"):
        assert_identical(_spec(), xr.Dataset({"spec": _spec()}))
    with pytest.raises(TypeError, match="DataArray or a Dataset"):
        assert_identical(np.zeros(3), np.zeros(3))
