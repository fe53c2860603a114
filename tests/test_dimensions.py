"""dimensions: the one map from index type to dimension, and zounds-style selection."""
import numpy as np
import pytest
import xarray as xr

import zounds_xr as zx
from zounds_xr.dimensions import dimension_of, dimensions_by_dim, dimensions_of, select
from zounds_xr.testing import assert_identical

SCALE = zx.LinearScale(zx.FrequencyBand(0, 1000), 10)


def _tf():
    return zx.ArrayWithUnits(np.arange(50.0).reshape(5, 10),
                             [zx.TimeDimension(zx.Seconds(1)), zx.FrequencyDimension(SCALE)])


def test_dimension_of_each_index_type():
    da = _tf()
    assert dimension_of(da.xindexes["time"]) == zx.TimeDimension(zx.Seconds(1), size=5)
    assert dimension_of(da.xindexes["frequency"]) == zx.FrequencyDimension(SCALE)
    assert dimension_of(None) == zx.IdentityDimension()
    assert dimension_of(da.drop_indexes("time").set_xindex("time").xindexes["time"]) \
        == zx.IdentityDimension()
    assert dimensions_of(da) == tuple(dimensions_by_dim(da).values())
    ds = xr.Dataset({"a": da, "b": da.isel(frequency=0)})
    assert ds.zx.dimensions == {"time": dimensions_of(da)[0], "frequency": dimensions_of(da)[1]}
    with pytest.raises(zx.ParameterError, match="DataArrays"):
        dimensions_of(ds)


def test_time_dimension_holds_a_rate():
    dim = zx.TimeDimension(zx.SR44100())
    assert dim.samplerate == zx.SR44100() and isinstance(dim.samplerate, zx.AudioSampleRate)
    assert dim.frequency == zx.SR44100().frequency
    lapped = zx.TimeDimension(zx.Seconds(1), zx.Seconds(2))
    assert lapped.samplerate == zx.SampleRate(zx.Seconds(1), zx.Seconds(2))
    assert lapped.samplerate.overlap_ratio == 0.5
    with pytest.raises(zx.ParameterError, match="positive"):
        zx.TimeDimension(zx.Seconds(0))
    with pytest.raises(zx.ParameterError, match="size"):
        zx.TimeDimension(zx.Seconds(1), size=-1)


def test_select_by_selector_type_then_position():
    da = _tf()
    got = select(da, (zx.TimeSlice(zx.Seconds(2), start=zx.Seconds(1)),
                      zx.FrequencyBand(250, 450)))
    assert_identical(got, da.isel(time=slice(1, 3), frequency=slice(2, 5)))
    assert_identical(da.zx[..., zx.FrequencyBand(250, 450)], da.isel(frequency=slice(2, 5)))
    # a band given first still finds the frequency axis
    assert_identical(select(da, zx.FrequencyBand(250, 450)), da.isel(frequency=slice(2, 5)))
    assert_identical(select(da, (1, slice(0, 3))), da.isel(time=1, frequency=slice(0, 3)))
    with pytest.raises(zx.ParameterError, match="too many indices"):
        select(da, (0, 0, 0))
    with pytest.raises(zx.ParameterError, match="no TimeIndex"):
        select(da.isel(time=0), zx.TimeSlice(zx.Seconds(1)))


def test_index_definitions_round_trip_by_type():
    from zounds_xr.dimensions import INDEX_TYPES, index_from_attrs

    da = _tf()
    for dim in ("time", "frequency"):
        index = da.xindexes[dim]
        assert INDEX_TYPES[index.to_attrs()["type"]] is type(index)
        assert index_from_attrs(index.to_attrs(), dim=dim).equals(index)
    longer = index_from_attrs(da.xindexes["time"].to_attrs(), dim="time", size=50)
    assert longer.size == 50
    with pytest.raises(zx.ParameterError, match="unknown index type"):
        index_from_attrs({"type": "PandasIndex"}, dim="time")
