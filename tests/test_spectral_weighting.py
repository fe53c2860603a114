"""A-weighting: the IEC 61672 linear gain, applied by weight() and by multiplication."""
import dask.array as da
import numpy as np
import pytest

import zounds_xr as zx
from zounds_xr.core.errors import ParameterError

IEC_DB = {31.5: -39.4, 63: -26.2, 125: -16.1, 250: -8.6, 500: -3.2, 1000: 0.0, 2000: 1.2,
          4000: 1.0, 8000: -1.1, 16000: -6.6}
NOMINAL = {31.5: -15, 63: -12, 125: -9, 250: -6, 500: -3, 1000: 0, 2000: 3, 4000: 6,
           8000: 9, 16000: 12}


def _arr(freqs, values=None):
    bands = [zx.FrequencyBand.from_center(f, 1.0) for f in freqs]
    data = np.ones(len(freqs)) if values is None else values
    return zx.ArrayWithUnits(data, [zx.FrequencyDimension(zx.ExplicitScale(bands))])


def test_iec_table():
    exact = [1000 * 10 ** (NOMINAL[f] / 10) for f in IEC_DB]
    gains = zx.AWeighting().gains(exact)
    np.testing.assert_allclose(20 * np.log10(gains), list(IEC_DB.values()), atol=0.1)
    assert zx.AWeighting().gains(1000.0) == pytest.approx(1.0, abs=1e-12)
    assert zx.AWeighting().gains(0.0) == 0.0


def test_weight_keeps_labels_and_is_lazy(backend):
    freqs = [100.0, 1000.0, 5000.0]
    arr = _arr(freqs)
    spec = zx.ArrayWithUnits(np.ones((4, 3)), [zx.TimeDimension(zx.Seconds(1)),
                                               arr.zx.dimensions[0]])
    out = zx.weight(backend(spec), zx.AWeighting())
    assert isinstance(out.data, da.Array) == (backend.__name__ == "chunk")
    assert out.zx.dimensions == spec.zx.dimensions
    np.testing.assert_allclose(out.values[0], zx.AWeighting().gains(freqs))


def test_weighting_times_array(backend):
    arr = backend(_arr([63.0, 1000.0, 8000.0]))
    out = zx.AWeighting() * arr
    assert out.zx.dimensions == arr.zx.dimensions
    np.testing.assert_allclose(out.values, zx.AWeighting().gains([63.0, 1000.0, 8000.0]))


def test_array_times_weighting_explains_the_order(backend):
    # xarray hands only the bare array to the weighting: its labels are lost
    arr = backend(_arr([63.0, 1000.0, 8000.0]))
    with pytest.raises(zx.ParameterError, match="AWeighting\\(\\) \\* x"):
        arr * zx.AWeighting()


def test_float32_stays_float32():
    out = zx.weight(_arr([500.0], np.ones(1, dtype=np.float32)), zx.AWeighting())
    assert out.dtype == np.float32


def test_frequency_adaptive_axis_gets_one_gain_per_band():
    scale = zx.ExplicitScale([zx.FrequencyBand(900, 1100), zx.FrequencyBand(7900, 8100)])
    dim = zx.ExplicitFrequencyDimension(scale, [slice(0, 2), slice(2, 5)])
    out = zx.weight(zx.ArrayWithUnits(np.ones(5), [dim]), zx.AWeighting())
    g = zx.AWeighting().weights(scale)
    np.testing.assert_allclose(out.values, [g[0], g[0], g[1], g[1], g[1]])


def test_errors():
    with pytest.raises(ParameterError, match="FrequencyWeighting"):
        zx.weight(_arr([100.0]), 2.0)
    with pytest.raises(ParameterError):
        np.ones(3) * zx.AWeighting()
    with pytest.raises(ParameterError, match="frequency"):
        zx.weight(zx.ArrayWithUnits(np.ones(3), [zx.IdentityDimension()]), zx.AWeighting())
    with pytest.raises(NotImplementedError):
        zx.FrequencyWeighting().gains([1.0])
