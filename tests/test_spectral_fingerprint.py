"""zx.fingerprint: Philips sub-fingerprints, checked against their definition, for the
invariances users rely on, lazily on dask, and as a stored feature of a Document."""
from fractions import Fraction

import dask.array as da
import numpy as np
import pytest
import soundfile as sf

import zounds_xr as zx
from zounds_xr.search import unpack_bits
from zounds_xr.spectral.fingerprint import RANGE, fingerprint_wscheme


def _audio(rng, seconds=2.0, rate=22050):
    t = np.arange(int(seconds * rate)) / rate
    y = 0.4 * np.sin(2 * np.pi * (300 + 400 * t) * t) + 0.1 * rng.normal(size=t.size)
    return zx.AudioSamples(y, zx.audio_sample_rate(rate))


def _reference(y: np.ndarray, rate: int, fmin=100.0, fmax=10000.0) -> np.ndarray:
    """The definition, frame by frame in plain numpy."""
    hop, win = int(np.ceil(rate / 32)), int(np.ceil(rate * 9 / 32))
    n_fft = win - hop
    n_frames = 1 + -(-max(y.size - win, 0) // hop)
    padded = np.zeros((n_frames - 1) * hop + win)
    padded[:y.size] = y
    window = np.hanning(n_fft + 1)[:-1]  # periodic Hann
    edges = np.geomspace(fmin, fmax, 34)
    freqs = np.fft.rfftfreq(n_fft, 1 / rate)
    out = np.zeros(n_frames, dtype=np.uint32)
    for i in range(n_frames):
        levels = []
        for offset in (0, hop):
            seg = padded[i * hop + offset:i * hop + offset + n_fft] * window
            power = np.abs(np.fft.rfft(seg)) ** 2
            e = np.array([power[(freqs >= lo) & (freqs < hi)].sum()
                          for lo, hi in zip(edges[:-1], edges[1:], strict=True)])
            lv = 10 * np.log10(e + 1e-30)
            levels.append(np.maximum(lv, lv.max() - RANGE))
        slope = [lv[:-1] - lv[1:] for lv in levels]
        bits = (slope[1] - slope[0]) > 0
        out[i] = sum(1 << m for m in range(32) if bits[m])
    return out


def test_matches_the_definition(rng):
    audio = _audio(rng, seconds=0.8)
    got = zx.fingerprint(audio)
    assert got.dims == ("time",) and got.dtype == np.uint32
    want = _reference(audio.values, 22050)
    bits = unpack_bits(got.values.astype(np.uint64)[:, None], 32)
    ref = unpack_bits(want.astype(np.uint64)[:, None], 32)
    # equal but for bits whose two slopes differ by rounding (float32 vs float64 sums)
    assert got.shape == want.shape and np.mean(bits != ref) < 0.002
    # a frame every 1/32 s and two 1/4 s spectra, rounded up to whole samples
    index = got.xindexes["time"]
    assert fingerprint_wscheme().exact_frequency == 1 / 32
    assert (index.frequency, index.duration) == (Fraction(690, 22050), Fraction(6202, 22050))


def test_gain_does_not_change_it_and_rate_barely(rng):
    audio = _audio(rng)
    codes = zx.fingerprint(audio).values
    np.testing.assert_array_equal(zx.fingerprint(audio * 0.25).values, codes)
    half = zx.fingerprint(zx.resample(audio, zx.SR11025())).values
    n = min(half.size, codes.size)
    a = unpack_bits(codes[:n].astype(np.uint64)[:, None], 32)
    b = unpack_bits(half[:n].astype(np.uint64)[:, None], 32)
    assert np.mean(a != b) < 0.1  # same bands in Hz, same frames in seconds


def test_silence_is_zero_and_channels_are_averaged(rng):
    silent = zx.AudioSamples(np.zeros(22050), zx.SR22050())
    assert not zx.fingerprint(silent).values.any()
    stereo = zx.AudioSamples(np.stack([_audio(rng).values] * 2, axis=1), zx.SR22050())
    np.testing.assert_array_equal(zx.fingerprint(stereo).values,
                                  zx.fingerprint(stereo.mean("channel")).values)


def test_dask_is_lazy_and_equal(rng):
    audio = _audio(rng, seconds=3)
    lazy = audio.copy(data=da.from_array(audio.values, chunks=5000))
    got = zx.fingerprint(lazy)
    assert isinstance(got.data, da.Array)
    np.testing.assert_array_equal(got.values, zx.fingerprint(audio).values)


def test_a_stored_versioned_feature_streams_like_one_piece(tmp_path, rng):
    audio = _audio(rng, seconds=4, rate=11025)
    path = tmp_path / "clip.wav"
    sf.write(path, audio.values, 11025)

    class Sound(zx.Document):
        fp = zx.Feature(zx.fingerprint, needs=zx.Document.audio, store=True)

    Sound = zx.zarr_settings(str(tmp_path / "store"))(Sound)  # noqa: N806
    doc_id = Sound.process(str(path))
    stored = Sound(doc_id).fp
    np.testing.assert_array_equal(stored.values, zx.fingerprint(zx.load(str(path))).values)
    assert Sound.catalog()["fp.version"].notna().all()


@pytest.mark.parametrize("kwargs,match", [
    ({"fmin": 0}, "fmin"), ({"fmin": 3000, "fmax": 2000}, "fmin"),
    ({"fmin": 20000}, "Nyquist|fmin"),
    ({"wscheme": zx.SampleRate(zx.Milliseconds(30), zx.Milliseconds(20))}, "longer"),
    ({"fmin": 100, "fmax": 110}, "no FFT bin")])
def test_bad_parameters_are_clear(rng, kwargs, match):
    with pytest.raises(zx.ParameterError, match=match):
        zx.fingerprint(_audio(rng, seconds=0.5), **kwargs)


def test_refuses_what_is_not_audio(rng):
    spec = zx.stft(_audio(rng, seconds=0.5), magnitude=True)
    with pytest.raises(zx.ParameterError, match="audio"):
        zx.fingerprint(spec)
