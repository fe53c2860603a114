"""ShuffledSamples: seeded random frames across documents, reading only what is drawn."""
import dask.array as dsa
import numpy as np
import pytest

pytest.importorskip("torch")

import zounds_xr as zx  # noqa: E402
from zounds_xr.learn import ShuffledSamples  # noqa: E402


def doc(i, n):
    data = np.stack([np.full(n, i), np.arange(n)], axis=1).astype(float)
    return zx.ArrayWithUnits(data, [zx.TimeDimension(zx.Milliseconds(10)), zx.IdentityDimension()])


def test_samples_come_from_the_right_documents_and_frames():
    corpus = {f"d{i}": doc(i, 10 + 5 * i) for i in range(4)}
    s = ShuffledSamples(nsamples=40, seed=1)(corpus)
    assert s.dims == ("sample", "dim_1") and s.shape == (40, 2)
    for value, key, frame in zip(s.values, s.document.values, s.frame.values, strict=True):
        assert value[0] == int(key[1]) and value[1] == frame
    pairs = set(zip(s.document.values, s.frame.values, strict=True))
    assert len(pairs) == 40  # without replacement


def test_seeded_and_uniform_over_frames():
    corpus = [doc(0, 10), doc(1, 90)]
    a = ShuffledSamples(nsamples=50, seed=3)(corpus)
    b = ShuffledSamples(nsamples=50, seed=3)(corpus)
    np.testing.assert_array_equal(a.values, b.values)
    counts = np.bincount(ShuffledSamples(nsamples=100, seed=0)(corpus).document.values)
    np.testing.assert_array_equal(counts, [10, 90])  # all 100 frames drawn once


def test_runs_of_frames():
    corpus = [doc(0, 12), doc(1, 3)]
    s = ShuffledSamples(nsamples=20, length=4, replace=True, seed=0)(corpus)
    assert s.dims == ("sample", "offset", "dim_1") and s.shape == (20, 4, 2)
    assert set(s.document.values) == {0}  # doc 1 is shorter than a run
    np.testing.assert_array_equal(s.values[:, :, 1] - s.values[:, :1, 1],
                                  np.tile(np.arange(4), (20, 1)))


def test_reads_only_the_chunks_needed():
    data = dsa.from_array(np.arange(1000 * 3, dtype=float).reshape(1000, 3), chunks=(100, 3))
    x = zx.ArrayWithUnits(data, [zx.TimeDimension(zx.Milliseconds(10)), zx.IdentityDimension()])
    sampler = ShuffledSamples(nsamples=2, seed=0)
    loaded = []
    import xarray as xr

    original = xr.DataArray.isel

    def isel(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        loaded.append(out.data.npartitions if hasattr(out.data, "npartitions") else None)
        return out

    xr.DataArray.isel = isel
    try:
        s = sampler([x])
    finally:
        xr.DataArray.isel = original
    assert loaded and max(loaded) <= 2
    np.testing.assert_array_equal(s.values[:, 0] % 3, 0)
    np.testing.assert_array_equal(s.values[:, 0] // 3, s.frame.values)


def test_errors():
    with pytest.raises(zx.ParameterError):
        ShuffledSamples(0)
    with pytest.raises(zx.ParameterError):
        ShuffledSamples(3)([])
    with pytest.raises(zx.ParameterError):
        ShuffledSamples(3)([doc(0, 5), zx.ArrayWithUnits(np.zeros((5, 3)), [
            zx.TimeDimension(zx.Milliseconds(10)), zx.IdentityDimension()])])
