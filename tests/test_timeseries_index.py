import pickle
from fractions import Fraction

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import zounds_xr as zx
from zounds_xr.timeseries.durations import to_fraction
from zounds_xr.testing import assert_identical
from zounds_xr.timeseries.index import time_coords

RATES = [8000, 11025, 16000, 22050, 44100, 48000, 96000]


def _frames(n, hop=Fraction(1), window=None, start=0, backend=lambda x: x):
    coords = time_coords(n, hop, window, start)
    return backend(xr.DataArray(np.arange(n, dtype=float), coords=coords, dims="time"))


def _overlaps(index, i, start, end):
    s = index.start + i * index.frequency
    return s + index.duration > start and (end is None or s < end)


@settings(max_examples=200, deadline=None)
@given(rate=st.sampled_from(RATES), hours=st.integers(0, 3),
       start_ns=st.integers(0, 4 * 3600 * 10**9), dur_ns=st.one_of(st.none(),
                                                                   st.integers(0, 10**10)),
       hop=st.integers(1, 4096), lap=st.integers(1, 4))
def test_timeslice_selects_exactly_the_overlapping_frames(rate, hours, start_ns, dur_ns, hop,
                                                          lap):
    # frames of hop samples and lap*hop samples' extent over a multi-hour axis, never materialized
    size = (hours * 3600 * rate) // hop + 7
    index = zx.TimeIndex.from_params(size, Fraction(hop, rate), Fraction(hop * lap, rate))
    ts = zx.TimeSlice(None if dur_ns is None else np.timedelta64(dur_ns, "ns"),
                      start=np.timedelta64(start_ns, "ns"))
    sel = index.overlapping(ts.start_fraction, ts.end_fraction)
    a, b = ts.start_fraction, ts.end_fraction
    if sel.stop > sel.start:
        assert _overlaps(index, sel.start, a, b) and _overlaps(index, sel.stop - 1, a, b)
    assert sel.start == 0 or not _overlaps(index, sel.start - 1, a, b)
    assert sel.stop == size or not _overlaps(index, sel.stop, a, b)
    if sel.stop == sel.start and 0 < sel.start < size:
        assert not _overlaps(index, sel.start, a, b)


@pytest.mark.parametrize("rate", RATES)
def test_labels_are_exact_at_every_rate(rate):
    samples = zx.AudioSamples(da.zeros(rate * 7200, chunks=rate * 600), zx.audio_sample_rate(rate))
    last = samples.time[-1].values
    exact = Fraction(rate * 7200 - 1, rate) * 10**9
    assert abs(int(last.astype(np.int64)) - exact) <= Fraction(1, 2)


def test_sel_by_label_slice_and_scalar(backend):
    arr = _frames(10, backend=backend)
    np.testing.assert_array_equal(arr.sel(time=slice("2s", "4s")).values, [2, 3, 4])
    np.testing.assert_array_equal(arr.sel(time=slice(None, "1s")).values, [0, 1])
    assert float(arr.sel(time="3.5s")) == 3
    assert float(arr.sel(time=np.timedelta64(3700, "ms"), method="nearest")) == 4
    picked = arr.sel(time=np.array([1, 5], dtype="timedelta64[s]"))
    np.testing.assert_array_equal(picked.values, [1, 5])
    with pytest.raises(KeyError):
        arr.sel(time="11s")
    with pytest.raises(zx.ParameterError):
        arr.sel(time=slice("1s", "4s", 2))
    with pytest.raises(zx.ParameterError):
        arr.sel(time=3.0)


def test_isel_steps_and_arrays():
    arr = _frames(10, hop=Fraction(1, 10), window=Fraction(1, 5))
    stepped = arr.isel(time=slice(1, None, 3))
    index = stepped.xindexes["time"]
    assert isinstance(index, zx.TimeIndex)
    assert (index.start, index.frequency, index.duration) == (
        Fraction(1, 10), Fraction(3, 10), Fraction(1, 5))
    picked = arr.isel(time=[0, 5, 2])
    assert not isinstance(picked.xindexes["time"], zx.TimeIndex)
    assert picked.time.values[1] == np.timedelta64(500, "ms")
    assert "time" not in arr.isel(time=3).xindexes


def test_concat_contiguous_pieces_and_refuse_gaps():
    arr = _frames(10)
    joined = xr.concat([arr.isel(time=slice(0, 3)), arr.isel(time=slice(3, None))], dim="time")
    assert_identical(joined, arr)
    with pytest.raises(zx.ParameterError, match="contiguous"):
        xr.concat([arr.isel(time=slice(0, 3)), arr.isel(time=slice(4, None))], dim="time")


def test_alignment_joins_by_parameters():
    arr = _frames(10)
    a, b = arr.isel(time=slice(0, 6)), arr.isel(time=slice(4, None))
    inner_a, inner_b = xr.align(a, b, join="inner")
    np.testing.assert_array_equal(inner_a.values, [4, 5])
    assert isinstance(inner_a.xindexes["time"], zx.TimeIndex)
    outer, _ = xr.align(a, b, join="outer")
    assert outer.sizes["time"] == 10 and np.isnan(outer.values[-1])
    assert (a.isel(time=slice(4, 6)) + b.isel(time=slice(0, 2))).sizes["time"] == 2


def test_different_rates_refuse_to_align():
    a = _frames(10, hop=Fraction(1))
    b = _frames(10, hop=Fraction(1, 2))
    with pytest.raises(zx.ParameterError, match="different rates"):
        a + b


def test_equals_compares_parameters_not_values():
    n = 44100 * 3600 * 2
    a = zx.TimeIndex.from_params(n, Fraction(1, 44100))
    b = zx.TimeIndex.from_params(n, zx.SR44100())
    assert a.equals(b)
    assert not a.equals(zx.TimeIndex.from_params(n, zx.SR44100(), start=Fraction(1, 44100)))


def test_survives_pickle_chunking_and_reductions(backend):
    coords = time_coords(20, zx.HalfLapped())
    tf = backend(xr.DataArray(np.ones((20, 3)), coords=coords, dims=("time", "x")))
    for out in (pickle.loads(pickle.dumps(tf)), tf.chunk({"time": 5}), tf.sum("x"), tf * 2,
                np.abs(tf), tf.where(tf > 0), tf.shift(time=1), tf.rolling(time=3).mean()):
        assert isinstance(out.xindexes["time"], zx.TimeIndex)
        assert out.xindexes["time"].equals(tf.xindexes["time"])


def test_rebuild_from_attrs_and_from_an_explicit_coordinate():
    index = zx.TimeIndex.from_params(100, zx.HalfLapped(), start=zx.Seconds(3))
    again = zx.TimeIndex.from_attrs(index.to_attrs())
    assert again.equals(index)
    values = index.to_pandas_index()
    explicit = xr.DataArray(np.zeros(100), coords={"time": values}, dims="time")
    rebuilt = explicit.drop_indexes("time").set_xindex(
        "time", zx.TimeIndex, frequency=Fraction(1024, 44100), duration=Fraction(2048, 44100))
    assert rebuilt.xindexes["time"].frequency == Fraction(1024, 44100)
    assert rebuilt.xindexes["time"].start == 3


def test_rename_and_window_dims():
    arr = _frames(5).rename(time="window")
    assert arr.xindexes["window"].dim == "window"
    assert arr.sel(window=zx.TimeSlice(zx.Seconds(2))).sizes["window"] == 2


def test_repr_inline_is_informative():
    samples = zx.AudioSamples(np.zeros(10), zx.SR44100())
    text = samples.xindexes["time"]._repr_inline_(80)
    assert "44100 Hz" in text and len(text) <= 80
    frames = zx.TimeIndex.from_params(10, zx.HalfLapped())._repr_inline_(120)
    assert "hop=23.22" in frames and "window=46.43" in frames
    assert "TimeIndex" in repr(samples)


def test_to_pandas_index_materializes_on_request():
    index = zx.TimeIndex.from_params(4, Fraction(1, 4))
    assert list(index.to_pandas_index()) == list(pd.to_timedelta([0, 250, 500, 750], unit="ms"))


def test_dimension_round_trip():
    samples = zx.AudioSamples(np.zeros(100), zx.SR11025(), start=zx.Seconds(2))
    dim = samples.zx.dimensions[0]
    assert dim.samplerate == zx.SR11025() and dim.size == 100
    assert to_fraction(dim.start) == 2
    again = zx.ArrayWithUnits(np.zeros(100), [dim])
    assert again.xindexes["time"].equals(samples.xindexes["time"])


# whole-object results per selection case (as xarray's test_range_index) ---------------------
def _expected(values, hop, window, start, backend=lambda x: x):
    coords = time_coords(len(values), hop, window, start)
    return backend(xr.DataArray(np.asarray(values, dtype=float), coords=coords, dims="time"))


@pytest.mark.parametrize("case", [
    # (selection, positions kept, start of the result); frame i starts at -1/2 + i/2 s
    # and lasts 1 s
    ({"time": zx.TimeSlice(zx.Seconds(2), start=zx.Seconds(1))}, range(2, 7), Fraction(1, 2)),
    ({"time": slice("1s", "3s")}, range(3, 8), Fraction(1)),
    ({"time": slice(None, "2.5s")}, range(0, 7), Fraction(-1, 2)),
    ({"time": slice("10s", None)}, range(0), Fraction(7, 2)),
])
def test_sel_cases_give_whole_identical_objects(backend, case):
    labels, kept, start = case
    arr = _frames(8, hop=Fraction(1, 2), window=Fraction(1), start=Fraction(-1, 2),
                  backend=backend)
    expected = _expected([float(i) for i in kept], Fraction(1, 2), Fraction(1), start,
                         backend=backend)
    assert_identical(arr.sel(labels), expected)


@pytest.mark.parametrize("indexer, kept, start, hop", [
    (slice(2, 6), range(2, 6), Fraction(1), Fraction(1, 2)),
    (slice(1, None, 3), range(1, 8, 3), Fraction(1, 2), Fraction(3, 2)),
    (slice(5, 5), range(0), Fraction(5, 2), Fraction(1, 2)),
])
def test_isel_slices_give_whole_identical_objects(backend, indexer, kept, start, hop):
    arr = _frames(8, hop=Fraction(1, 2), window=Fraction(1), backend=backend)
    expected = _expected([float(i) for i in kept], hop, Fraction(1), start, backend=backend)
    assert_identical(arr.isel(time=indexer), expected)
