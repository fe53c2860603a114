"""Frequency-adaptive transforms: layout, square views, and the inverse synthesizers."""
import dask.array as da
import numpy as np
import pytest
import scipy.fft
import scipy.signal

import zounds_xr as zx
from zounds_xr.core.errors import ParameterError
from zounds_xr.spectral.adaptive import bands, overlap_add
from zounds_xr.synthesize.adaptive import (
    FrequencyAdaptiveDCTSynthesizer,
    FrequencyAdaptiveFFTSynthesizer,
)

SR = zx.SR11025()
SCALE = zx.GeometricScale(100, 5000, bandwidth_ratio=0.089, n_bands=100)


@pytest.fixture(scope="module")
def samples():
    sines = zx.SineSynthesizer(SR).synthesize(zx.Seconds(4), [220.0, 400.0, 880.0])
    return sines


@pytest.fixture(scope="module")
def long_windowed(samples):
    return zx.sliding_window(samples, wscheme=zx.SampleRate(zx.Milliseconds(500),
                                                            zx.Seconds(1)),
                             wfunc=zx.OggVorbisWindowingFunc())


def _interior_error(recon, original, margin=int(SR)):
    n = original.sizes["time"]
    r, o = recon.values[margin:n - margin], original.values[margin:n - margin]
    return np.max(np.abs(r - o)) / np.max(np.abs(o))


def test_layout(long_windowed, backend):
    spec = zx.fft(long_windowed)
    fa = zx.frequency_adaptive(backend(spec), transform=np.fft.irfft, scale=SCALE,
                               window_func=np.hanning, check_scale_overlap_ratio=True)
    assert isinstance(fa.data, da.Array) == (backend.__name__ == "chunk")
    assert fa.dims == ("time", "frequency")
    tdim, fdim = fa.zx.dimensions
    assert tdim == spec.zx.dimensions[0]
    assert isinstance(fdim, zx.ExplicitFrequencyDimension) and fdim.scale == SCALE
    lin = spec.zx.dimensions[1].scale
    expected = np.fft.irfft(spec.values[:, lin.get_slice(SCALE[40])]
                            * np.hanning(len(range(*lin.get_slice(SCALE[40]).indices(
                                len(lin))))), norm="ortho")
    got = dict(bands(fa))[SCALE[40]]
    np.testing.assert_allclose(got.values, expected, atol=1e-12)
    # low bands get few coefficients, high bands many; each band = 2 * (bins - 1)
    widths = [s.stop - s.start for s in fdim.slices]
    assert widths[0] < widths[-1]
    assert widths[0] == 2 * (len(range(*lin.get_slice(SCALE[0]).indices(len(lin)))) - 1)


@pytest.mark.parametrize("synth", ["fft", "dct"])
def test_round_trip(samples, long_windowed, backend, synth):
    if synth == "fft":
        spec, transform, cls = zx.fft(long_windowed), np.fft.irfft, FrequencyAdaptiveFFTSynthesizer
    else:
        spec, transform, cls = zx.dct(long_windowed), scipy.fft.idct, \
            FrequencyAdaptiveDCTSynthesizer
    fa = zx.frequency_adaptive(backend(spec), transform=transform, scale=SCALE,
                               window_func=np.hanning)
    recon = cls(SCALE, SR).synthesize(fa)
    assert isinstance(recon.data, da.Array) == (backend.__name__ == "chunk")
    assert recon.zx.samplerate == SR
    assert recon.sizes["time"] >= samples.sizes["time"]
    assert _interior_error(recon, samples) < 1e-6


def test_synthesizer_checks_its_input(long_windowed):
    fa = zx.frequency_adaptive(zx.fft(long_windowed), np.fft.irfft, SCALE, np.hanning)
    other = zx.GeometricScale(100, 4000, bandwidth_ratio=0.089, n_bands=100)
    with pytest.raises(ParameterError, match="scale"):
        FrequencyAdaptiveFFTSynthesizer(other, SR).synthesize(fa)
    with pytest.raises(ParameterError, match="whole samples"):
        FrequencyAdaptiveFFTSynthesizer(SCALE, zx.SR8000()).synthesize(fa)
    with pytest.raises(ParameterError, match="coefficients"):
        FrequencyAdaptiveDCTSynthesizer(SCALE, SR).synthesize(fa)


def test_square(long_windowed, backend):
    fa = zx.frequency_adaptive(backend(zx.fft(long_windowed)), np.fft.irfft, SCALE, np.hanning)
    sq = zx.square(fa, 50)
    assert sq.dims == ("time", "window", "frequency") and sq.shape == (fa.sizes["time"], 50, 100)
    assert sq.zx.dimensions[2].scale == SCALE
    assert sq.zx.dimensions[0] == fa.zx.dimensions[0]
    assert sq.xindexes["window"].frequency == sq.xindexes["time"].duration / 50
    band = dict(bands(fa.compute() if hasattr(fa, "compute") else fa))[SCALE[99]]
    np.testing.assert_allclose(sq.values[:, :, 99],
                               scipy.signal.resample(band.values, 50, axis=-1), atol=1e-12)
    ola = zx.square(fa, 50, do_overlap_add=True)
    assert ola.dims == ("time", "frequency")
    assert ola.sizes["time"] == (fa.sizes["time"] - 1) * 25 + 50
    np.testing.assert_allclose(ola.values[:25], sq.values[0, :25])
    np.testing.assert_allclose(ola.values[25:50], sq.values[0, 25:] + sq.values[1, :25])


def test_frequency_adaptive_errors(long_windowed):
    spec = zx.fft(long_windowed)
    tight = zx.GeometricScale(100, 5000, bandwidth_ratio=0.01, n_bands=100)
    with pytest.raises(ParameterError):
        zx.frequency_adaptive(spec, np.fft.irfft, tight, check_scale_overlap_ratio=True)
    beyond = zx.GeometricScale(7000, 9000, 0.1, 3)
    with pytest.raises(ParameterError, match="covers no bins"):
        zx.frequency_adaptive(spec, np.fft.irfft, beyond)
    with pytest.raises(ParameterError):
        zx.square(spec, 10)


def test_frequency_adaptive_constructor():
    arrs = [np.ones((3, 2)), np.zeros((3, 5))]
    scale = zx.ExplicitScale([zx.FrequencyBand(0, 100), zx.FrequencyBand(100, 300)])
    fa = zx.FrequencyAdaptive(arrs, zx.TimeDimension(zx.Seconds(1)), scale=scale)
    assert fa.shape == (3, 7)
    assert fa.zx.dimensions[1].slices == (slice(0, 2), slice(2, 7))
    with pytest.raises(ParameterError):
        zx.FrequencyAdaptive(arrs, zx.TimeDimension(zx.Seconds(1)))


@pytest.mark.parametrize("t, n, hop", [(5, 8, 4), (4, 10, 3), (3, 4, 4), (6, 3, 5), (1, 7, 2)])
def test_overlap_add_numpy_and_dask(t, n, hop):
    frames = np.random.default_rng(0).standard_normal((t, n, 2))
    expected = np.zeros(((t - 1) * hop + n, 2))
    for j in range(t):
        expected[j * hop:j * hop + n] += frames[j]
    np.testing.assert_allclose(overlap_add(frames, hop), expected)
    lazy = overlap_add(da.from_array(frames, chunks=(2, n, 2)), hop)
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), expected)
