import dask.array as da
import numpy as np
import pytest
import xarray as xr

import zounds_xr as zx
from zounds_xr.dimensions.arrays import with_labels


def test_array_with_units_names_dims_by_dimension():
    arr = zx.ArrayWithUnits(np.zeros((4, 3, 2)), [
        zx.TimeDimension(zx.Seconds(1)), zx.TimeDimension(zx.Milliseconds(1)),
        zx.IdentityDimension()])
    assert arr.dims == ("time", "window", "dim_2")
    outer, inner, ident = arr.zx.dimensions
    assert outer.frequency == np.timedelta64(1, "s") and inner.size == 3
    assert ident == zx.IdentityDimension()


@pytest.mark.parametrize("dimensions", [[], [zx.IdentityDimension()] * 2, ["time"]])
def test_array_with_units_validates(dimensions):
    with pytest.raises(zx.ParameterError):
        zx.ArrayWithUnits(np.zeros((3, 2)) if len(dimensions) != 2 else np.zeros(3), dimensions)


def test_array_with_units_keeps_dask_lazy():
    lazy = da.ones(10**9, chunks=10**7)
    arr = zx.ArrayWithUnits(lazy, [zx.TimeDimension(zx.Microseconds(1))])
    assert arr.data is lazy


def test_with_labels_keeps_custom_indexes():
    samples = zx.AudioSamples(np.ones((10, 2)), zx.SR8000())
    out = with_labels(np.zeros(10), samples, ("time",))
    assert isinstance(out.xindexes["time"], zx.TimeIndex)
    assert out.xindexes["time"].equals(samples.xindexes["time"])


@pytest.mark.parametrize("collide", [False, True])
def test_with_labels_equals_assigning_the_coordinates_one_by_one(collide):
    # distinct names are labelled in one step, a name given twice (the later wins) by
    # assign_coords in turn: either way the result is the step-by-step one
    samples = zx.AudioSamples(np.ones((800, 2)), zx.SR8000()).assign_coords(
        channel=["l", "r"], gain=("channel", [1.0, 0.5]), take=7)
    like = samples.isel(time=slice(0, 0)).drop_vars("time")
    frames = zx.TimeIndex.coords(9, np.timedelta64(10, "ms"), np.timedelta64(20, "ms"))
    bands = zx.frequency_coords(zx.LinearScale(zx.FrequencyBand(0, 4000), 5))
    extra = xr.Coordinates({"take": 8}) if collide else xr.Coordinates({"note": "x"})
    data = np.arange(90.0).reshape(9, 5, 2)
    dims = ("time", "frequency", "channel")
    out = with_labels(data, like, dims, coords=[frames, bands, extra], attrs={"a": 1})
    expected = xr.DataArray(data, dims=dims, attrs={"a": 1}).assign_coords(like.coords)
    for c in (frames, bands, extra):
        expected = expected.assign_coords(c)
    xr.testing.assert_identical(out, expected)
    assert [type(out.xindexes[k]) for k in ("time", "frequency")] == \
        [zx.TimeIndex, type(bands.xindexes["frequency"])]
    assert int(out["take"]) == (8 if collide else 7)


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_audio_samples_any_channel_count(channels, backend):
    raw = np.random.default_rng(0).normal(size=(1000, channels)).squeeze()
    samples = backend(zx.AudioSamples(raw, zx.SR16000()))
    assert samples.zx.channels == channels
    assert samples.zx.samples_per_second == 16000
    assert samples.zx.duration == np.timedelta64(62500, "us")
    mono = samples.zx.mono
    assert mono.dims == ("time",) and mono.zx.samplerate == zx.SR16000()
    np.testing.assert_allclose(mono.values, raw.reshape(1000, -1).mean(axis=1))


@pytest.mark.parametrize("rate", [44100, zx.SampleRate(zx.Seconds(1), zx.Seconds(1)), None])
def test_audio_samples_requires_an_audio_rate(rate):
    with pytest.raises(zx.SampleRateError):
        zx.AudioSamples(np.zeros(10), rate)


def test_audio_samples_refuse_three_axes():
    with pytest.raises(zx.ParameterError, match="shape"):
        zx.AudioSamples(np.zeros((2, 2, 2)), zx.SR8000())


def test_audio_samples_start_offset():
    samples = zx.AudioSamples(np.zeros(100), zx.SR8000(), start=zx.Seconds(3))
    assert samples.time.values[0] == np.timedelta64(3, "s")
    assert samples.sel(time=zx.TimeSlice(zx.Seconds(1))).sizes["time"] == 0


def test_accessor_positional_and_labelled_selection():
    tf = zx.ArrayWithUnits(np.arange(20.0).reshape(10, 2), [
        zx.TimeDimension(zx.Seconds(1)), zx.IdentityDimension()])
    np.testing.assert_array_equal(tf.zx[zx.TimeSlice(zx.Seconds(2)), 1].values, [1, 3])
    with pytest.raises(zx.ParameterError):
        zx.AudioSamples(np.zeros(3), zx.SR8000()).zx[:, zx.TimeSlice(zx.Seconds(1)), 1]


def test_dataset_accessor():
    samples = zx.AudioSamples(np.zeros(100), zx.SR8000())
    ds = xr.Dataset({"a": samples, "b": samples * 2})
    assert ds.zx.samplerate == zx.SR8000()
    assert ds.zx.dimensions["time"].size == 100
    assert ds.zx[zx.TimeSlice(zx.Milliseconds(2))].sizes["time"] == 16


def test_samplerate_of_an_unlabelled_array():
    with pytest.raises(zx.ParameterError, match="TimeIndex"):
        xr.DataArray(np.zeros(3)).zx.samplerate
