import pickle
from fractions import Fraction

import numpy as np
import pytest

import zounds_xr as zx


@pytest.mark.parametrize("n", [8000, 11025, 16000, 22050, 44100, 48000, 96000])
def test_named_rates_are_exact(n):
    sr = zx.audio_sample_rate(n)
    assert type(sr).__name__ == f"SR{n}"
    assert int(sr) == n and sr.samples_per_second == n
    assert sr.exact_frequency == sr.exact_duration == Fraction(1, n)
    assert sr.nyquist == n // 2
    assert sr == zx.AudioSampleRate(n)
    assert pickle.loads(pickle.dumps(sr)) == sr


def test_any_positive_integer_is_an_audio_rate():
    sr = zx.audio_sample_rate(1234)
    assert isinstance(sr, zx.AudioSampleRate) and int(sr) == 1234
    assert repr(sr) == "AudioSampleRate(1234)"


@pytest.mark.parametrize("bad", [0, -1, 44100.5, "44100", True])
def test_bad_audio_rates(bad):
    with pytest.raises(zx.ParameterError):
        zx.audio_sample_rate(bad)


def test_non_audio_rate_is_not_an_audio_rate():
    with pytest.raises(zx.SampleRateError):
        zx.audio_sample_rate(zx.SampleRate(zx.Seconds(1), zx.Seconds(2)))


def test_windowing_scheme_from_a_rate():
    scheme = zx.SR44100() * (1024, 2048)
    assert scheme.exact_frequency == Fraction(1024, 44100)
    assert scheme.exact_duration == Fraction(2048, 44100)
    assert scheme == zx.HalfLapped()
    assert scheme.overlap_ratio == 0.5
    with pytest.raises(zx.ParameterError):
        zx.SR44100() * (0, 2048)


@pytest.mark.parametrize("sr, hop", [(zx.SR11025(), 256), (zx.SR22050(), 512),
                                     (zx.SR44100(), 1024), (zx.SR48000(), 1024)])
def test_half_lapped_per_rate(sr, hop):
    scheme = sr.half_lapped()
    assert scheme.exact_frequency == Fraction(hop, int(sr))
    assert scheme.exact_duration == Fraction(2 * hop, int(sr))


def test_timedelta_views_round_to_ns():
    sr = zx.SR44100()
    assert sr.frequency == np.timedelta64(22676, "ns")
    assert zx.SampleRate(zx.Seconds(1), zx.Seconds(1)).overlap == np.timedelta64(0, "ns")


def test_samples_rounds_up():
    assert zx.SR11025().samples(zx.Milliseconds(250)) == 2757
    assert zx.SR44100().samples(zx.Seconds(2)) == 88200


@pytest.mark.parametrize("frequency, duration", [(zx.Seconds(0), zx.Seconds(1)),
                                                 (zx.Seconds(1), zx.Seconds(-1)),
                                                 (1, zx.Seconds(1))])
def test_invalid_sample_rates(frequency, duration):
    with pytest.raises(ValueError):
        zx.SampleRate(frequency, duration)


def test_round_trip_through_dict():
    for sr in (zx.SR48000(), zx.HalfLapped()):
        again = zx.SampleRate.from_dict(sr.to_dict())
        assert again == sr and type(again) is type(sr)
