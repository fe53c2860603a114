import numpy as np
import pytest
import scipy.signal
import xarray as xr

import zounds_xr as zx


def test_windows_multiply_the_last_axis():
    wf = zx.HanningWindowingFunc()
    out = np.ones((3, 8)) * wf
    np.testing.assert_allclose(out, np.tile(np.hanning(8), (3, 1)))
    np.testing.assert_allclose(wf * np.ones(8), np.hanning(8))


def test_periodic_hann_matches_scipy():
    np.testing.assert_allclose(zx.HanningWindowingFunc(periodic=True)(512),
                               scipy.signal.get_window("hann", 512))


@pytest.mark.parametrize("n", [4, 256, 2048])
def test_vorbis_window_is_power_complementary(n):
    w = zx.OggVorbisWindowingFunc()(n)
    np.testing.assert_allclose(w[: n // 2] ** 2 + w[n // 2:] ** 2, 1.0, atol=1e-12)


def test_identity_window_is_a_no_op():
    x = np.arange(5.0)
    assert (x * zx.IdentityWindowingFunc()) is x
    assert zx.IdentityWindowingFunc()(5) is None


def test_windows_apply_to_dataarrays_along_the_last_dim():
    arr = xr.DataArray(np.ones((2, 4)), dims=("time", "window"))
    out = arr * zx.HanningWindowingFunc()
    assert out.dims == ("time", "window")
    np.testing.assert_allclose(out.values[0], np.hanning(4))


def test_bad_windowing_functions():
    with pytest.raises(zx.ParameterError):
        zx.WindowingFunc(3)
    with pytest.raises(zx.ParameterError):
        zx.WindowingFunc(lambda n: np.ones(n + 1))(4)
