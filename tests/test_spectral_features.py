"""Spectral features against librosa 0.11: mel, MFCC, chroma, centroid, flatness, Bark."""
import dask.array as da
import librosa
import numpy as np
import pytest
import xarray as xr

import zounds_xr as zx
from zounds_xr.core.errors import ParameterError

SR = zx.SR22050()


def _spec(y: np.ndarray, sr=SR, n_fft=1024, hop=256):
    samples = zx.AudioSamples(y, sr)
    return zx.stft(samples, wscheme=sr * (hop, n_fft),
                   wfunc=zx.HanningWindowingFunc(periodic=True))


@pytest.fixture(scope="module")
def signal():
    rng = np.random.default_rng(440)
    t = np.arange(int(SR) * 2) / int(SR)
    y = (np.sin(2 * np.pi * 440 * t) + 0.5 * np.sin(2 * np.pi * 1250 * t)
         + 0.05 * rng.standard_normal(t.size))
    return y


@pytest.fixture(scope="module")
def spec(signal):
    return _spec(signal)


def _check_time_labels(out, spec):
    assert out.zx.dimensions[0] == spec.zx.dimensions[0]


def test_mel_matches_librosa(spec, backend):
    d = spec.values.T
    ref = librosa.feature.melspectrogram(S=np.abs(d) ** 2, sr=int(SR), n_fft=1024)
    mel = zx.mel_spectrogram(backend(spec))
    assert isinstance(mel.data, da.Array) == (backend.__name__ == "chunk")
    assert mel.dims == ("time", "frequency")
    scale = mel.zx.dimensions[1].scale
    assert scale == zx.MelScale(zx.FrequencyBand(0, int(SR) / 2), 128)
    _check_time_labels(mel, spec)
    np.testing.assert_allclose(mel.values.T, ref, rtol=1e-5, atol=1e-6 * ref.max())


@pytest.mark.parametrize("power, htk, fmin, fmax, n_mels", [
    (1.0, False, 0.0, None, 40), (2.0, True, 100.0, 8000.0, 64), (1.5, False, 50, 4000, 20)])
def test_mel_options_match_librosa(spec, power, htk, fmin, fmax, n_mels):
    mag = np.abs(spec)  # a magnitude input is raised to power, like a complex one
    ref = librosa.feature.melspectrogram(S=np.abs(spec.values.T) ** power, sr=int(SR),
                                         n_fft=1024, n_mels=n_mels, fmin=fmin, fmax=fmax,
                                         htk=htk)
    for x in (spec, mag):
        mel = zx.mel_spectrogram(x, n_mels=n_mels, fmin=fmin, fmax=fmax, power=power, htk=htk)
        np.testing.assert_allclose(mel.values.T, ref, rtol=1e-5, atol=1e-6 * ref.max())


def test_mel_float32_stays_float32(signal):
    spec = _spec(signal.astype(np.float32))
    assert spec.dtype == np.complex64
    mel = zx.mel_spectrogram(spec)
    assert mel.dtype == np.float32
    ref = librosa.feature.melspectrogram(S=np.abs(spec.values.T) ** 2, sr=int(SR), n_fft=1024)
    np.testing.assert_allclose(mel.values.T, ref, rtol=1e-4, atol=1e-5 * ref.max())


def test_mel_needs_a_linear_axis(spec):
    mel = zx.mel_spectrogram(spec)
    with pytest.raises(ParameterError, match="LinearScale"):
        zx.mel_spectrogram(mel)
    with pytest.raises(ParameterError, match="FrequencyIndex"):
        zx.mel_spectrogram(xr.DataArray(np.ones((3, 4)), dims=("time", "frequency")))
    with pytest.raises(ParameterError, match="n_mels"):
        zx.mel_spectrogram(spec, n_mels=0)
    with pytest.raises(ParameterError, match="fmax"):
        zx.mel_spectrogram(spec, fmin=500, fmax=100)


def test_mfcc_matches_librosa(spec, backend):
    mel_ref = librosa.feature.melspectrogram(S=np.abs(spec.values.T) ** 2, sr=int(SR),
                                             n_fft=1024)
    ref = librosa.feature.mfcc(S=librosa.power_to_db(mel_ref), n_mfcc=13)
    out = zx.mfcc(backend(spec), n_mfcc=13)
    assert out.dims == ("time", "coefficient") and out.sizes["coefficient"] == 13
    _check_time_labels(out, spec)
    np.testing.assert_allclose(out.values.T, ref, rtol=1e-5, atol=1e-4)
    # from a mel spectrogram, with liftering
    mel = zx.mel_spectrogram(backend(spec))
    ref = librosa.feature.mfcc(S=librosa.power_to_db(mel_ref), n_mfcc=20, lifter=22)
    np.testing.assert_allclose(zx.mfcc(mel, lifter=22).values.T, ref, rtol=1e-5, atol=1e-4)
    with pytest.raises(ParameterError):
        zx.mfcc(mel, n_mels=40)


def test_chroma_matches_librosa_with_tuning_zero(spec, backend):
    mag = np.abs(spec)
    ref = librosa.feature.chroma_stft(S=mag.values.T, sr=int(SR), tuning=0.0)
    out = zx.chroma(backend(mag), frequency_band=zx.FrequencyBand(0, int(SR) / 2))
    assert out.dims == ("time", "frequency") and out.sizes["frequency"] == 12
    assert isinstance(out.zx.dimensions[1].scale, zx.ChromaScale)
    _check_time_labels(out, spec)
    np.testing.assert_allclose(out.values.T, ref, rtol=1e-6, atol=1e-9)
    # power=2 on the complex spectrum is librosa's default on audio
    ref2 = librosa.feature.chroma_stft(S=mag.values.T ** 2, sr=int(SR), tuning=0.0)
    out2 = zx.chroma(spec, frequency_band=zx.FrequencyBand(0, int(SR) / 2), power=2)
    np.testing.assert_allclose(out2.values.T, ref2, rtol=1e-6, atol=1e-9)


def test_chroma_peaks_on_the_played_pitch_class():
    sr = SR
    t = np.arange(int(sr)) / int(sr)
    spec = _spec(np.sin(2 * np.pi * 261.63 * t), n_fft=4096, hop=1024)  # C4
    for window in (None, zx.HanningWindowingFunc()):
        out = zx.chroma(spec, frequency_band=zx.FrequencyBand(20, 5000), window=window)
        assert int(out.mean("time").argmax("frequency")) == 0
        assert float(out.max()) == pytest.approx(1.0)
    raw = zx.chroma(spec, frequency_band=zx.FrequencyBand(20, 5000), norm=None)
    assert float(raw.max()) > 1.0


def test_centroid_and_flatness_match_librosa(spec, backend):
    mag = np.abs(spec.values.T)
    cen = zx.spectral_centroid(backend(spec))
    flat = zx.spectral_flatness(backend(spec))
    for out in (cen, flat):
        assert out.dims == ("time",)
        _check_time_labels(out, spec)
        assert isinstance(out.data, da.Array) == (backend.__name__ == "chunk")
    np.testing.assert_allclose(
        cen.values, librosa.feature.spectral_centroid(S=mag, sr=int(SR), n_fft=1024)[0],
        rtol=1e-9)
    np.testing.assert_allclose(
        flat.values, librosa.feature.spectral_flatness(S=mag)[0], rtol=1e-9)
    # magnitude input gives the same
    np.testing.assert_allclose(zx.spectral_centroid(np.abs(spec)).values, cen.values)


def test_centroid_of_silence_is_zero():
    spec = _spec(np.zeros(4096))
    assert np.all(zx.spectral_centroid(spec).values == 0)
    assert np.all(zx.spectral_flatness(spec).values == pytest.approx(1.0))


def test_bark_bands(spec, backend):
    band = zx.FrequencyBand(20, 5000)
    out = zx.bark_bands(backend(np.abs(spec)), frequency_band=band, n_bands=30)
    assert out.dims == ("time", "frequency") and out.sizes["frequency"] == 30
    scale = out.zx.dimensions[1].scale
    assert scale == zx.BarkScale(band, 30)
    _check_time_labels(out, spec)
    # the same as the scale's own (windowed) rebinning
    expected = scale.apply(np.abs(spec), zx.HanningWindowingFunc())
    np.testing.assert_allclose(out.values, expected.values, rtol=1e-10)
    # the loudest Bark band contains 440 Hz
    loudest = scale[int(out.mean("time").argmax("frequency"))]
    assert 440 in loudest


@pytest.mark.corpus
@pytest.mark.parametrize("name", ["speech/cmu_arctic_a0007_16k.wav",
                                  "music/sound-icons_piano-3_16k.wav"])
def test_features_match_librosa_on_real_audio(corpus, name):
    import soundfile as sf

    y, sr = sf.read(corpus / name, dtype="float64", always_2d=True)
    y = y.mean(axis=1)
    rate = zx.audio_sample_rate(sr)
    spec = _spec(y, sr=rate, n_fft=512, hop=128)
    d = np.abs(spec.values.T)
    mel_ref = librosa.feature.melspectrogram(S=d ** 2, sr=sr, n_fft=512, n_mels=64)
    mel = zx.mel_spectrogram(spec, n_mels=64)
    np.testing.assert_allclose(mel.values.T, mel_ref, rtol=1e-5, atol=1e-6 * mel_ref.max())
    np.testing.assert_allclose(
        zx.mfcc(mel).values.T, librosa.feature.mfcc(S=librosa.power_to_db(mel_ref)),
        rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(
        zx.chroma(np.abs(spec), zx.FrequencyBand(0, sr / 2)).values.T,
        librosa.feature.chroma_stft(S=d, sr=sr, tuning=0.0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(zx.spectral_centroid(spec).values,
                               librosa.feature.spectral_centroid(S=d, sr=sr, n_fft=512)[0],
                               rtol=1e-8, atol=1e-6)
    np.testing.assert_allclose(zx.spectral_flatness(spec).values,
                               librosa.feature.spectral_flatness(S=d)[0], rtol=1e-8)


def test_mel_of_audio_checks_and_warns_on_every_call_with_its_kernel_built_once():
    # the filter bank of a long recording's chunks is built once a process: the checks
    # and the warning still come with every call, and 1 / 1.0 / True stay apart
    audio = zx.AudioSamples(np.random.default_rng(0).standard_normal(4096).astype("f4"),
                            zx.SR11025())
    first = zx.mel_spectrogram(audio, n_mels=1)
    np.testing.assert_array_equal(zx.mel_spectrogram(audio, n_mels=1).values, first.values)
    for bad in (True, 1.0):
        with pytest.raises(zx.ParameterError, match="n_mels"):
            zx.mel_spectrogram(audio, n_mels=bad)
    for _ in range(2):
        with pytest.warns(UserWarning, match="mel bands are empty"):
            zx.mel_spectrogram(audio, n_mels=400)
