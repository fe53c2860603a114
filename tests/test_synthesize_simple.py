"""zounds_xr.synthesize.simple: sines, noise, ticks and silence."""
from __future__ import annotations

import numpy as np
import pytest

import zounds_xr as zx


def test_sine_matches_zounds_example():
    samples = zx.SineSynthesizer(zx.SR22050()).synthesize(zx.Seconds(1), freqs_in_hz=[220.0,
                                                                                      440.0])
    assert samples.dims == ("time",) and samples.zx.samplerate == zx.SR22050()
    np.testing.assert_allclose(samples.values[:3], [0, 0.09384942, 0.18659419], atol=1e-8)
    np.testing.assert_allclose(samples.values[-3:], [-0.27714552, -0.18659419, -0.09384942],
                               atol=1e-8)


@pytest.mark.parametrize("freq", [55.0, 440.0, 1000.5, 10000.0])
def test_sine_frequency_and_amplitude(freq):
    samples = zx.SineSynthesizer(44100).synthesize(zx.Seconds(2), [freq])
    t = np.arange(88200) / 44100
    np.testing.assert_allclose(samples.values, np.sin(2 * np.pi * freq * t), atol=1e-9)
    mixed = zx.SineSynthesizer(44100).synthesize(zx.Seconds(1), [freq, 3 * freq, 7 * freq])
    assert np.abs(mixed.values).max() <= 1.0


def test_sine_phase_stays_exact_over_hours():
    synth = zx.SineSynthesizer(zx.SR8000())
    # 440 Hz at 8 kHz repeats every 200 samples: an hour in, the phase is the same
    late = synth.synthesize(zx.Hours(1) + zx.Milliseconds(25), [440.0]).values[-200:]
    early = synth.synthesize(zx.Milliseconds(25), [440.0]).values[-200:]
    np.testing.assert_allclose(late, early, atol=1e-12)


@pytest.mark.parametrize("cls", [zx.SineSynthesizer, zx.NoiseSynthesizer,
                                 zx.SilenceSynthesizer])
@pytest.mark.parametrize("duration, rate, n", [
    (zx.Seconds(1), 22050, 22050), (zx.Milliseconds(1), 44100, 45), (zx.Seconds(5), 11025, 55125),
    (zx.Microseconds(10), 8000, 1), (zx.Seconds(0), 8000, 0)])
def test_lengths_come_from_exact_durations(cls, duration, rate, n):
    samples = cls(zx.audio_sample_rate(rate)).synthesize(duration)
    assert samples.shape == (n,)
    assert samples.zx.samplerate == zx.audio_sample_rate(rate)


def test_noise_is_uniform_and_reproducible():
    noise = zx.NoiseSynthesizer(zx.SR44100(), seed=3).synthesize(zx.Seconds(2))
    values = noise.values
    assert values.shape == (88200,) and np.abs(values).max() <= 1.0
    assert abs(values.std() - 1 / np.sqrt(3)) < 0.01 and abs(values.mean()) < 0.01
    again = zx.NoiseSynthesizer(zx.SR44100(), seed=3).synthesize(zx.Seconds(2))
    np.testing.assert_array_equal(values, again.values)
    other = zx.NoiseSynthesizer(zx.SR44100(), seed=np.random.default_rng(4))
    assert not np.array_equal(other.synthesize(zx.Seconds(2)).values, values)
    with pytest.raises(zx.ParameterError):
        zx.NoiseSynthesizer(zx.SR44100(), seed="abc")


@pytest.mark.parametrize("period_ms, rate", [(100, 22050), (250, 44100), (33, 8000)])
def test_ticks(period_ms, rate):
    synth = zx.TickSynthesizer(zx.audio_sample_rate(rate), seed=1)
    ticks = synth.synthesize(duration=zx.Seconds(3), tick_frequency=zx.Milliseconds(period_ms))
    values = ticks.values
    assert values.shape == (3 * rate,)
    tick_len = -(-rate // 10)
    onsets = [-(-k * period_ms * rate // 1000) for k in range(3000 // period_ms + 1)
              if -(-k * period_ms * rate // 1000) < 3 * rate]
    for onset in onsets[:3] if period_ms >= 100 else []:  # (overlapping ticks add up)
        head = np.abs(values[onset:onset + tick_len // 10]).mean()
        tail = np.abs(values[onset + tick_len - tick_len // 10:onset + tick_len]).mean()
        assert head > 5 * tail  # a decaying envelope
    if period_ms >= 100:  # ticks don't overlap: silence between them
        assert not values[onsets[0] + tick_len:onsets[1]].any()
    np.testing.assert_array_equal(
        values, zx.TickSynthesizer(zx.audio_sample_rate(rate), seed=1).synthesize(
            zx.Seconds(3), zx.Milliseconds(period_ms)).values)


def test_silence():
    silence = zx.SilenceSynthesizer(zx.SR11025()).synthesize(zx.Seconds(5))
    assert silence.shape == (55125,) and not silence.values.any()


def test_parameters_are_validated():
    with pytest.raises(zx.SampleRateError):
        zx.SineSynthesizer(zx.SampleRate(zx.Seconds(1), zx.Seconds(2)))
    with pytest.raises(zx.ParameterError):
        zx.SilenceSynthesizer(zx.SR8000()).synthesize(5)
    with pytest.raises(zx.ParameterError):
        zx.SilenceSynthesizer(zx.SR8000()).synthesize(zx.Seconds(-1))
    with pytest.raises(zx.ParameterError):
        zx.SineSynthesizer(zx.SR8000()).synthesize(zx.Seconds(1), [])
    with pytest.raises(zx.ParameterError):
        zx.SineSynthesizer(zx.SR8000()).synthesize(zx.Seconds(1), [np.nan])
    with pytest.raises(zx.ParameterError):
        zx.TickSynthesizer(zx.SR8000()).synthesize(zx.Seconds(1), zx.Seconds(0))
