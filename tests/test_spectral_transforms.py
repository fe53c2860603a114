"""fft, stft, dct, dctiv, mdct: values, labels, dtypes, numpy and dask backends."""
import csv
import pathlib
from fractions import Fraction

import dask.array as da
import numpy as np
import pytest
import scipy.fft

import zounds_xr as zx
from zounds_xr.spectral.transforms import imdct_array, mdct_array

SR = zx.SR11025()
CORPUS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture(params=["numpy", "dask"])
def backend(request):
    return request.param


def _as(backend, x, chunk=2000):
    return x.chunk({"time": chunk}) if backend == "dask" else x


def _tones(seconds=2.0, sr=SR, dtype=np.float64, channels=None):
    t = np.arange(int(seconds * int(sr))) / int(sr)
    y = (np.sin(2 * np.pi * 440 * t) + 0.5 * np.sin(2 * np.pi * 1234.5 * t)
         + 0.01 * np.random.default_rng(1).normal(size=t.size))
    if channels:
        y = np.stack([y * (c + 1) for c in range(channels)], axis=1)
    return zx.AudioSamples(y.astype(dtype), sr)


def _windowed(backend, dtype=np.float64, wfunc=None, scheme=None):
    audio = _as(backend, _tones(dtype=dtype))
    return zx.sliding_window(audio, scheme or zx.HalfLapped(),
                             wfunc or zx.OggVorbisWindowingFunc())


def _check_lazy(result, backend):
    if backend == "dask":
        assert isinstance(result.data, da.Array)
        assert all(len(c) == 1 for c in result.chunks[1:])  # chunked along time only
    else:
        assert isinstance(result.data, np.ndarray)


# ----------------------------------------------------------------------------- fft
def test_fft_values_and_labels(backend):
    windowed = _windowed(backend)
    spec = zx.fft(windowed)
    _check_lazy(spec, backend)
    assert spec.dims == ("time", "frequency")
    assert spec.dtype == np.complex128
    np.testing.assert_allclose(spec.values, np.fft.rfft(windowed.values, axis=-1),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(spec.frequency.values, np.fft.rfftfreq(512, 1 / 11025))
    scale = spec.zx.dimensions[1].scale
    assert isinstance(scale, zx.LinearScale)
    np.testing.assert_allclose(scale.bandwidths, 11025 / 512)
    assert spec.zx.dimensions[0] == windowed.zx.dimensions[0]
    assert spec.xindexes["time"].equals(windowed.xindexes["time"])


def test_fft_padding_samples(backend):
    windowed = _windowed(backend)
    spec = zx.fft(windowed, padding_samples=88)
    assert spec.sizes["frequency"] == 600 // 2 + 1
    np.testing.assert_allclose(spec.values, np.fft.rfft(windowed.values, n=600, axis=-1),
                               atol=1e-10)
    np.testing.assert_allclose(spec.frequency.values, np.fft.rfftfreq(600, 1 / 11025))


def test_fft_single_precision(backend):
    windowed = _windowed(backend, dtype=np.float32)
    spec = zx.fft(windowed)
    assert spec.dtype == np.complex64
    ref = np.fft.rfft(windowed.values.astype(np.float64), axis=-1)
    assert np.max(np.abs(spec.values - ref)) < 1e-5 * np.max(np.abs(ref))


def test_fft_peak_band():
    spec = np.abs(zx.fft(_windowed("numpy")))
    peak = spec.mean("time").idxmax("frequency")
    assert abs(float(peak) - 440) < 11025 / 512


def test_fft_multichannel_keeps_channel(backend):
    audio = _as(backend, _tones(channels=2))
    spec = zx.fft(zx.sliding_window(audio, zx.HalfLapped(), zx.OggVorbisWindowingFunc()))
    assert spec.dims == ("time", "frequency", "channel")
    np.testing.assert_allclose(np.abs(spec.values[..., 1]), 2 * np.abs(spec.values[..., 0]),
                               rtol=1e-9, atol=1e-9)


# ----------------------------------------------------------------------------- stft
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stft_equals_fft_of_sliding_window(backend, dtype):
    audio = _as(backend, _tones(dtype=dtype), chunk=3001)
    wf = zx.OggVorbisWindowingFunc()
    spec = zx.stft(audio, zx.HalfLapped(), wf)
    _check_lazy(spec, backend)
    expected = zx.fft(zx.sliding_window(audio, zx.HalfLapped(), wf))
    assert spec.dtype == expected.dtype == np.result_type(dtype, np.complex64)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(spec.values, expected.values, atol=tol)
    assert spec.zx.dimensions == expected.zx.dimensions


def test_stft_magnitude(backend):
    audio = _as(backend, _tones(dtype=np.float32))
    mag = zx.stft(audio, magnitude=True)
    _check_lazy(mag, backend)
    assert mag.dtype == np.float32
    full = zx.stft(audio)
    np.testing.assert_allclose(mag.values, np.abs(full.values), rtol=1e-6, atol=1e-6)
    assert mag.zx.dimensions == full.zx.dimensions


def test_stft_defaults_are_half_lapped_symmetric_hann():
    audio = _tones()
    spec = zx.stft(audio)
    assert spec.xindexes["time"].frequency == Fraction(256, 11025)
    assert spec.xindexes["time"].duration == Fraction(512, 11025)
    expected = zx.fft(zx.sliding_window(audio, SR.half_lapped(), zx.HanningWindowingFunc()))
    np.testing.assert_allclose(spec.values, expected.values, atol=1e-10)


def test_stft_multichannel(backend):
    audio = _as(backend, _tones(channels=2))
    spec = zx.stft(audio, magnitude=True)
    assert spec.dims == ("time", "frequency", "channel")
    mono = zx.stft(zx.AudioSamples(_tones().values, SR), magnitude=True)
    np.testing.assert_allclose(spec.values[..., 0], mono.values, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(spec.values[..., 1], 2 * mono.values, rtol=1e-9, atol=1e-9)


def test_stft_start_offset_and_short_input(backend):
    audio = zx.AudioSamples(np.ones(300), SR, start=Fraction(1, 4))
    spec = zx.stft(_as(backend, audio, chunk=100), magnitude=True)
    assert spec.sizes["time"] == 1
    assert spec.xindexes["time"].start == Fraction(1, 4)
    window = zx.HanningWindowingFunc()(512)
    np.testing.assert_allclose(spec.values[0], np.abs(np.fft.rfft(window * np.r_[np.ones(300),
                                                                                 np.zeros(212)])))


def test_stft_matches_librosa_with_periodic_hann():
    librosa = pytest.importorskip("librosa")
    y = _tones(seconds=3.0, sr=zx.SR22050(), dtype=np.float32)
    ours = zx.stft(y, zx.SR22050() * (512, 2048), zx.HanningWindowingFunc(periodic=True),
                   magnitude=True)
    ref = np.abs(librosa.stft(y.values, n_fft=2048, hop_length=512, window="hann",
                              center=False)).T
    assert ref.shape[0] <= ours.sizes["time"]
    np.testing.assert_allclose(ours.values[:ref.shape[0]], ref, rtol=1e-4,
                               atol=1e-5 * ref.max())


def _corpus_file():
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.exists():
        pytest.skip("shared/corpus is not present")
    with manifest.open() as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["path"].startswith(("speech/", "music/")) and row["format"].startswith(
                    ("WAV", "FLAC")) and float(row["duration_s"]) <= 30:
                return CORPUS / row["path"]
    pytest.skip("no short WAV/FLAC speech or music file in the corpus")


def test_stft_matches_librosa_on_real_audio(backend):
    librosa = pytest.importorskip("librosa")
    sf = pytest.importorskip("soundfile")
    data, rate = sf.read(str(_corpus_file()), dtype="float32", always_2d=True)
    y = data.mean(axis=1)
    audio = _as(backend, zx.AudioSamples(y, zx.audio_sample_rate(rate)), chunk=50_000)
    ours = zx.stft(audio, zx.audio_sample_rate(rate) * (256, 1024),
                   zx.HanningWindowingFunc(periodic=True), magnitude=True)
    ref = np.abs(librosa.stft(y, n_fft=1024, hop_length=256, window="hann", center=False)).T
    np.testing.assert_allclose(ours.values[:ref.shape[0]], ref, rtol=1e-3,
                               atol=1e-5 * ref.max())


# ----------------------------------------------------------------------------- dct family
def test_dct_is_orthonormal_type_ii(backend):
    windowed = _windowed(backend)
    coeffs = zx.dct(windowed)
    _check_lazy(coeffs, backend)
    assert coeffs.dims == ("time", "frequency") and coeffs.sizes["frequency"] == 512
    np.testing.assert_allclose(coeffs.values, scipy.fft.dct(windowed.values, type=2,
                                                            norm="ortho", axis=-1), atol=1e-12)
    scale = coeffs.zx.dimensions[1].scale
    assert isinstance(scale, zx.LinearScale)
    assert scale.start_hz == 0 and scale.stop_hz == SR.nyquist and len(scale) == 512
    assert coeffs.zx.dimensions[0] == windowed.zx.dimensions[0]


def test_dctiv_is_orthonormal_type_iv(backend):
    windowed = _windowed(backend, dtype=np.float32)
    coeffs = zx.dctiv(windowed)
    _check_lazy(coeffs, backend)
    assert coeffs.dtype == np.float32
    expected = scipy.fft.dct(windowed.values.astype(np.float64), type=4, norm="ortho", axis=-1)
    np.testing.assert_allclose(coeffs.values, expected, atol=1e-5)
    assert coeffs.zx.dimensions[0] == windowed.zx.dimensions[0]


def _mdct_matrix(n):
    m = n // 2
    k = np.arange(m)[None, :]
    t = np.arange(n)[:, None]
    return np.sqrt(2 / m) * np.cos(np.pi / m * (t + 0.5 + m / 2) * (k + 0.5))


@pytest.mark.parametrize("n", [4, 8, 10, 16, 18, 64])
def test_mdct_array_matches_definition(n):
    frames = np.random.default_rng(n).normal(size=(5, n))
    matrix = _mdct_matrix(n)
    np.testing.assert_allclose(mdct_array(frames), frames @ matrix, atol=1e-12)
    coeffs = frames[:, :n // 2]
    np.testing.assert_allclose(imdct_array(coeffs), coeffs @ matrix.T, atol=1e-12)
    # along another axis
    np.testing.assert_allclose(mdct_array(frames.T, axis=0), (frames @ matrix).T, atol=1e-12)


@pytest.mark.parametrize("window", [512, 514])
def test_mdct_halves_the_window(backend, window):
    windowed = _windowed(backend, scheme=SR * (window // 2, window))
    coeffs = zx.mdct(windowed)
    _check_lazy(coeffs, backend)
    assert coeffs.sizes["frequency"] == window // 2
    np.testing.assert_allclose(coeffs.values, windowed.values @ _mdct_matrix(window),
                               atol=1e-10)
    scale = coeffs.zx.dimensions[1].scale
    np.testing.assert_allclose(scale.center_frequencies,
                               (np.arange(window // 2) + 0.5) * SR.nyquist / (window // 2))
    assert coeffs.zx.dimensions[0] == windowed.zx.dimensions[0]


def test_mdct_needs_an_even_window():
    windowed = _windowed("numpy", scheme=SR * (200, 401))
    with pytest.raises(zx.ParameterError):
        zx.mdct(windowed)


@pytest.mark.parametrize("transform", [zx.fft, zx.dct, zx.dctiv, zx.mdct])
def test_transforms_need_a_window_dim(transform):
    with pytest.raises(zx.ParameterError):
        transform(_tones())


def test_window_dim_split_over_chunks_is_merged():
    windowed = _windowed("numpy")
    lazy = windowed.chunk({"time": 10, "window": 100})
    for transform in (zx.fft, zx.dct, zx.dctiv, zx.mdct):
        out = transform(lazy)
        assert len(out.chunks[1]) == 1
        np.testing.assert_allclose(out.values, transform(windowed).values, atol=1e-12)


def test_stft_rejects_windowed_input():
    with pytest.raises(zx.ParameterError):
        zx.stft(_windowed("numpy"))


def test_stft_workers_give_identical_results():
    import concurrent.futures

    audio = _tones(seconds=30.0, dtype=np.float32)
    one = zx.stft(audio, magnitude=True, workers=1)
    two = zx.stft(audio, magnitude=True, workers=2)
    np.testing.assert_array_equal(one.values, two.values)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # default inside a thread: 1
        threaded = pool.submit(zx.stft, audio, magnitude=True).result()
    np.testing.assert_array_equal(one.values, threaded.values)
    with pytest.raises(zx.ParameterError):
        zx.stft(audio, workers=0)
