"""Morlet filter bank: shapes, labels, centre frequencies, norms."""
import numpy as np
import pytest

import zounds_xr as zx
from zounds_xr.core.errors import ParameterError

SR = zx.SR11025()


def test_shape_labels_and_unit_norm():
    scale = zx.GeometricScale(100, 4000, 0.1, 12)
    bank = zx.morlet_filter_bank(SR, 1024, scale, 0.1)
    assert bank.dims == ("frequency", "time") and bank.shape == (12, 1024)
    assert bank.dtype == np.float64
    dims = bank.zx.dimensions
    assert dims[0].scale == scale
    assert dims[1] == zx.TimeDimension(SR, size=1024)
    np.testing.assert_allclose(np.linalg.norm(bank.values, axis=1), 1.0)


@pytest.mark.parametrize("complex_valued", [False, True])
def test_peaks_at_the_band_centres(complex_valued):
    scale = zx.GeometricScale(200, 3000, 0.1, 6)
    bank = zx.morlet_filter_bank(SR, 2048, scale, [0.05] * 6, complex_valued=complex_valued)
    n = 1 << 16
    spectrum = np.abs(np.fft.fft(bank.values, n=n, axis=1))
    freqs = np.fft.fftfreq(n, 1 / int(SR))
    peaks = np.abs(freqs[spectrum.argmax(axis=1)])
    np.testing.assert_allclose(peaks, scale.center_frequencies, rtol=2e-3)
    if complex_valued:  # analytic: almost nothing at negative frequencies
        neg = spectrum[:, freqs < 0].max(axis=1)
        assert np.all(neg < 2e-2 * spectrum.max(axis=1))


def test_scaling_factor_trades_time_for_frequency():
    scale = zx.GeometricScale(1000, 1000, 0.1, 1)
    narrow = zx.morlet_filter_bank(SR, 2048, scale, 0.5).values[0]
    wide = zx.morlet_filter_bank(SR, 2048, scale, 0.05).values[0]

    def spread(h):
        e = h ** 2 / np.sum(h ** 2)
        t = np.arange(len(h))
        mu = np.sum(t * e)
        return np.sqrt(np.sum((t - mu) ** 2 * e))

    assert spread(narrow) < spread(wide) / 2


def test_unnormalised_and_errors():
    scale = zx.GeometricScale(100, 400, 0.1, 3)
    raw = zx.morlet_filter_bank(SR, 256, scale, 0.2, normalize=False)
    assert not np.allclose(np.linalg.norm(raw.values, axis=1), 1.0)
    with pytest.raises(ParameterError):
        zx.morlet_filter_bank(SR, 256, scale, [0.1, 0.2])
    with pytest.raises(ParameterError):
        zx.morlet_filter_bank(SR, 0, scale, 0.1)
    with pytest.raises(ParameterError):
        zx.morlet_filter_bank(SR, 256, scale, -1.0)
