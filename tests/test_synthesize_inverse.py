"""Inverse synthesizers: labels learnt from the coefficients, near-perfect reconstruction."""
from fractions import Fraction

import numpy as np
import pytest

import zounds_xr as zx
from zounds_xr.synthesize.inverse import overlap_add

SR = zx.SR11025()


@pytest.fixture(params=["numpy", "dask"])
def backend(request):
    return request.param


def _signal(n=3 * 11025, channels=None, start=0, dtype=np.float64, sr=SR):
    t = np.arange(n) / int(sr)
    y = np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 880 * t + 1) \
        + 0.05 * np.random.default_rng(3).normal(size=n)
    if channels:
        y = np.stack([y, -0.5 * y][:channels], axis=1)
    return zx.AudioSamples(y.astype(dtype), sr, start=start)


def _interior_error(recon, original, margin):
    n = original.sizes["time"]
    r, o = recon.values[margin:n - margin], original.values[margin:n - margin]
    return np.max(np.abs(r - o)) / np.max(np.abs(o))


CASES = [
    (zx.fft, zx.FFTSynthesizer),
    (zx.mdct, zx.MDCTSynthesizer),
    (zx.dct, lambda: zx.DCTSynthesizer(windowing_func=zx.OggVorbisWindowingFunc())),
    (zx.dctiv, lambda: zx.DCTIVSynthesizer(windowing_func=zx.OggVorbisWindowingFunc())),
]


@pytest.mark.parametrize("transform, synth", CASES)
def test_round_trip(backend, transform, synth):
    audio = _signal()
    source = audio.chunk({"time": 5000}) if backend == "dask" else audio
    windowed = zx.sliding_window(source, zx.HalfLapped(), zx.OggVorbisWindowingFunc())
    recon = synth().synthesize(transform(windowed))
    assert recon.dims == ("time",)
    assert recon.zx.samplerate == SR
    assert recon.sizes["time"] == (windowed.sizes["time"] - 1) * 256 + 512
    assert recon.sizes["time"] >= audio.sizes["time"]
    assert _interior_error(recon, audio, 512) < 1e-10


@pytest.mark.parametrize("transform, synth", CASES)
def test_round_trip_single_precision_multichannel_offset(transform, synth):
    start = Fraction(7, 5)
    audio = _signal(channels=2, start=start, dtype=np.float32, sr=zx.SR22050())
    windowed = zx.sliding_window(audio, zx.SR22050().half_lapped(),
                                 zx.OggVorbisWindowingFunc())
    recon = synth().synthesize(transform(windowed))
    assert recon.dims == ("time", "channel")
    assert recon.dtype == np.float32
    assert recon.zx.samplerate == zx.SR22050()
    assert recon.xindexes["time"].start == start
    assert _interior_error(recon, audio, 1024) < 1e-5


def test_identity_window_default_is_not_exact_for_lapped_frames():
    audio = _signal()
    windowed = zx.sliding_window(audio, zx.HalfLapped(), zx.OggVorbisWindowingFunc())
    assert zx.DCTSynthesizer().windowing_func == zx.IdentityWindowingFunc()
    recon = zx.DCTSynthesizer().synthesize(zx.dct(windowed))
    assert _interior_error(recon, audio, 512) > 0.01  # the Vorbis window is applied once only


def test_non_overlapping_identity_dct_is_exact():
    audio = _signal(n=4096)
    windowed = zx.sliding_window(audio, SR * (512, 512))
    for transform, synth in ((zx.dct, zx.DCTSynthesizer()), (zx.dctiv, zx.DCTIVSynthesizer())):
        recon = synth.synthesize(transform(windowed))
        np.testing.assert_allclose(recon.values, audio.values, atol=1e-12)


def test_stft_default_scheme_with_vorbis_inverts():
    audio = _signal(sr=zx.SR44100(), n=44100)
    spec = zx.stft(audio, wfunc=zx.OggVorbisWindowingFunc())
    recon = zx.FFTSynthesizer().synthesize(spec)
    assert recon.zx.samplerate == zx.SR44100()
    assert _interior_error(recon, audio, 2048) < 1e-10


@pytest.mark.parametrize("padding", [0, 1, 100])
def test_fft_synthesizer_learns_padding_and_odd_sizes(padding):
    audio = _signal(n=5000)
    # an odd window (301 samples) with a hop of a half-ish: frames are still recovered
    windowed = zx.sliding_window(audio, SR * (150, 301))
    spec = zx.fft(windowed, padding_samples=padding)
    synth = zx.FFTSynthesizer()
    n_window, n_fft, sps = synth._sizes(spec.xindexes["time"], spec.zx.dimensions[1].scale,
                                        spec.sizes["frequency"])
    assert (n_window, n_fft, sps) == (301, 301 + padding, 11025)


def test_synthesizers_reject_sliced_or_unlabelled_coefficients():
    audio = _signal(n=5000)
    windowed = zx.sliding_window(audio, zx.HalfLapped(), zx.OggVorbisWindowingFunc())
    spec = zx.fft(windowed)
    with pytest.raises(zx.ParameterError):
        zx.FFTSynthesizer().synthesize(spec.isel(frequency=slice(10, None)))
    with pytest.raises(zx.ParameterError):
        zx.MDCTSynthesizer().synthesize(zx.mdct(windowed).isel(frequency=slice(0, 100)))
    with pytest.raises(zx.ParameterError):
        zx.FFTSynthesizer().synthesize(spec.drop_vars("frequency"))
    with pytest.raises(zx.ParameterError):
        zx.DCTSynthesizer().synthesize(audio)
    with pytest.raises(zx.ParameterError):
        zx.DCTSynthesizer(windowing_func="hann")


@pytest.mark.parametrize("hop, win", [(4, 8), (3, 8), (8, 8), (5, 3), (1, 4)])
def test_overlap_add_matches_a_loop(hop, win):
    frames = np.random.default_rng(0).normal(size=(7, win, 2))
    expected = np.zeros((6 * hop + win, 2))
    for i, frame in enumerate(frames):
        expected[i * hop:i * hop + win] += frame
    np.testing.assert_allclose(overlap_add(frames, hop), expected, atol=1e-12)
    assert overlap_add(frames[:0], hop).shape == (0, 2)
