"""zounds_xr.audio.resampling: soxr VHQ, exact lengths, numpy == dask == streamed."""
from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import zounds_xr as zx
from zounds_xr.audio.resampling import Resampler


@pytest.fixture(params=["numpy", "dask"])
def backend(request):
    return request.param


def _noise(rate, n, channels=0, dtype=np.float64, backend="numpy", chunk=None, seed=0):
    shape = (n,) if channels == 0 else (n, channels)
    data = np.random.default_rng(seed).uniform(-1, 1, shape).astype(dtype)
    if backend == "dask":
        data = da.from_array(data, chunks=(chunk or max(1, n // 3),) + shape[1:])
    return zx.AudioSamples(data, zx.audio_sample_rate(rate))


@pytest.mark.parametrize("old, new, n", [(44100, 11025, 220500), (11025, 22050, 110250),
                                         (44100, 11025, 220501), (44100, 48000, 44101),
                                         (48000, 44100, 48007), (1234, 44100, 999),
                                         (96000, 8000, 96011), (8000, 96000, 8001)])
def test_length_rate_start_and_backend(backend, old, new, n):
    samples = _noise(old, n, backend=backend)
    out = zx.resample(samples, zx.audio_sample_rate(new))
    assert out.sizes["time"] == -(-n * new // old)
    assert out.zx.samplerate == zx.audio_sample_rate(new)
    assert out.xindexes["time"].start == 0
    assert hasattr(out.data, "dask") == (backend == "dask")


def test_zounds_examples():
    sines = zx.SineSynthesizer(zx.SR44100()).synthesize(zx.Seconds(5), [220.0, 440.0, 880.0])
    assert zx.resample(sines, zx.SR11025()).sizes["time"] == 55125
    noise = zx.NoiseSynthesizer(zx.SR11025(), seed=0).synthesize(zx.Seconds(10))
    up = zx.resample(noise, zx.SR22050())
    assert up.zx.samplerate == zx.SR22050() and up.sizes["time"] == 220500


@pytest.mark.parametrize("old, new, tol", [(44100, 11025, 1e-9), (11025, 22050, 1e-9),
                                           (48000, 44100, 1e-9), (1234, 44100, 1e-5)])
@pytest.mark.parametrize("channels", [0, 2, 6])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dask_equals_one_piece(old, new, tol, channels, dtype):
    n = old * 3 + 17
    whole = _noise(old, n, channels, dtype)
    lazy = zx.resample(_noise(old, n, channels, dtype, "dask", chunk=old // 2 + 3), new)
    one = zx.resample(whole, new)
    assert lazy.dims == one.dims and lazy.dtype == one.dtype == dtype
    assert lazy.data.chunks[0][0] == -(-(old // 2 + 3) * new // old)
    np.testing.assert_allclose(lazy.values, one.values, atol=tol if dtype == np.float64
                               else max(tol, 2e-6))


def test_dask_is_lazy():
    computed = []

    def spy(x):
        if len(x):  # (dask calls it once on an empty array to learn the output type)
            computed.append(len(x))
        return x

    samples = _noise(44100, 44100 * 2, backend="dask", chunk=20000)
    samples = samples.copy(data=samples.data.map_blocks(spy, dtype=samples.dtype))
    out = zx.resample(samples, zx.SR22050())
    assert computed == []
    first = out.isel(time=slice(0, 100)).values  # only the first blocks are read
    assert 0 < len(computed) < samples.data.numblocks[0]
    np.testing.assert_allclose(first, zx.resample(samples.compute(), 22050).values[:100],
                               atol=1e-9)


@pytest.mark.parametrize("sizes", [[1, 2, 3, 4096], [7, 1, 4096], [10000], [3, 50000, 2],
                                   [0, 9999, 0]])
@pytest.mark.parametrize("channels", [0, 2])
@pytest.mark.parametrize("old, new", [(44100, 11025), (22050, 44100), (44100, 48000)])
def test_streamed_equals_one_piece_exactly(sizes, channels, old, new):
    n = old + 123
    whole = _noise(old, n, channels, np.float32)
    one = zx.resample(whole, new)
    r = Resampler(zx.audio_sample_rate(new))
    parts, pos, k = [], 0, 0
    while pos < n:
        size = sizes[k % len(sizes)]
        parts.append(r.process(whole.isel(time=slice(pos, pos + size))))
        pos, k = pos + size, k + 1
    parts.append(r.flush())
    assert r.frames_in == n and r.frames_out == one.sizes["time"]
    joined = np.concatenate([p.values for p in parts])
    np.testing.assert_array_equal(joined, one.values)
    # each chunk's time index continues where the previous one ended
    position = 0
    for p in parts:
        assert p.xindexes["time"].start == zx.timeseries.durations.to_fraction(
            zx.Seconds(0)) + position * zx.audio_sample_rate(new).exact_frequency
        assert p.zx.samplerate == zx.audio_sample_rate(new)
        position += p.sizes["time"]


def test_resampler_with_decoded_stream(tmp_path):
    samples = zx.SineSynthesizer(zx.SR44100()).synthesize(zx.Seconds(2.5), [440.0])
    path = zx.save(samples, tmp_path / "a.flac")
    r = Resampler(zx.SR16000())
    chunks = [r.process(c) for c in zx.stream(path, chunksize=zx.Seconds(1))] + [r.flush()]
    whole = zx.resample(zx.load(path), zx.SR16000())
    np.testing.assert_array_equal(np.concatenate([c.values for c in chunks]), whole.values)


def test_resampler_keeps_offsets_and_validates():
    start = zx.Seconds(3)
    chunk = zx.AudioSamples(np.zeros(4410), zx.SR44100(), start=start)
    r = Resampler(11025)
    first = r.process(chunk)
    assert first.xindexes["time"].start == 3
    r.process(np.zeros(4410))  # later chunks may be plain arrays
    with pytest.raises(zx.ParameterError):
        r.process(zx.AudioSamples(np.zeros(10), zx.SR22050()))
    with pytest.raises(zx.ParameterError):
        r.process(np.zeros((10, 2)))
    r.process(np.zeros(10), last=True)
    with pytest.raises(zx.ParameterError, match="finished"):
        r.process(np.zeros(10))
    with pytest.raises(zx.ParameterError):
        Resampler(11025).process(np.zeros(10))  # the first chunk must carry its rate
    with pytest.raises(zx.ParameterError):
        Resampler(11025).flush()
    with pytest.raises(zx.ParameterError):
        Resampler(11025, quality="best")


def test_same_rate_passes_through():
    samples = _noise(22050, 1000, 2)
    xr.testing.assert_identical(zx.resample(samples, zx.SR22050()), samples)
    r = Resampler(zx.SR22050())
    out = [r.process(samples[:600]), r.process(samples[600:], last=True)]
    np.testing.assert_array_equal(np.concatenate([o.values for o in out]), samples.values)


def _tones(freqs, rate, n):
    i = np.arange(n)
    return sum(np.sin(2 * np.pi * np.mod(f * i, rate) / rate + k) for k, f in
               enumerate(freqs)) / len(freqs)


def test_quality_in_band_snr_and_alias_rejection():
    old, new, n = 44100, 11025, 44100 * 2
    in_band, out_band = [261.6, 1013.0, 3001.0, 4400.0], [6000.0, 9000.0, 15000.0]
    x = _tones(in_band + out_band, old, n) * len(in_band + out_band)
    out = zx.resample(zx.AudioSamples(x, zx.SR44100()), zx.SR11025()).values
    ref = _tones(in_band, new, len(out)) * len(in_band)
    trim = new // 4
    err = out[trim:-trim] - ref[trim:-trim]
    snr = 10 * np.log10(np.sum(ref[trim:-trim] ** 2) / np.sum(err ** 2))
    assert snr > 130


def test_multichannel_and_channel_order():
    stereo = _noise(44100, 4410, 2)
    out = zx.resample(stereo.transpose("channel", "time"), 22050)
    assert out.dims == ("time", "channel")
    for c in range(2):
        mono = zx.resample(stereo.isel(channel=c), 22050)
        np.testing.assert_allclose(out.values[:, c], mono.values, atol=1e-12)


def test_errors():
    samples = _noise(44100, 100)
    with pytest.raises(zx.SampleRateError):
        zx.resample(samples, zx.SampleRate(zx.Seconds(1), zx.Seconds(2)))
    with pytest.raises(zx.ParameterError):
        zx.resample(np.zeros(100), 22050)
    with pytest.raises(zx.ParameterError):
        zx.resample(samples, 22050, quality="ultra")
    with pytest.raises(zx.ParameterError):
        zx.resample(zx.ArrayWithUnits(np.zeros(10), [zx.IdentityDimension()]), 22050)
