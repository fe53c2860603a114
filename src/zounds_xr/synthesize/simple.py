"""Simple signals: sines, white noise, ticks and silence, as AudioSamples.

Lengths come from exact durations: ``samplerate.samples(duration)`` whole samples,
rounded up (1 s at 22.05 kHz is 22050 samples; 100 ms at 44.1 kHz is 4410). Random
signals take ``seed=`` (an int, a ``numpy.random.Generator`` or ``None``) for
reproducibility.
"""
from __future__ import annotations

import numbers
from fractions import Fraction

import numpy as np
import xarray as xr

from ..audio.samples import AudioSamples
from ..core.validation import check_output_size
from ..core.errors import ParameterError
from ..timeseries.durations import to_fraction
from ..timeseries.samplerate import AudioSampleRate, as_audio_rate

__all__ = ["SineSynthesizer", "NoiseSynthesizer", "TickSynthesizer", "SilenceSynthesizer"]


#: zounds' default tick length
_TICK = np.timedelta64(100, "ms")


def _n_samples(rate: AudioSampleRate, duration, name: str = "duration") -> int:
    """Count the samples of ``duration``, refused when float64 output could not fit."""
    seconds = to_fraction(duration, name=name)
    if seconds < 0:
        raise ParameterError(f"{name} must not be negative, got {duration!r}")
    n = rate.samples(seconds)
    check_output_size((n,), np.float64, f"synthesizing {float(seconds):.6g} s at {rate!r}")
    return n


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool)):
        return np.random.default_rng(None if seed is None else int(seed))
    raise ParameterError(f"seed must be an int, a numpy Generator or None, got {seed!r}")


class _Synthesizer:
    def __init__(self, samplerate):
        self.samplerate = as_audio_rate(samplerate)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.samplerate!r})"


class SineSynthesizer(_Synthesizer):
    """Synthesize the mean of sine waves (so that the result stays within [-1, 1]).

    Parameters
    ----------
    samplerate : AudioSampleRate or int

    Examples
    --------
    >>> import zounds_xr as zx
    >>> synth = zx.SineSynthesizer(zx.SR22050())
    >>> samples = synth.synthesize(zx.Seconds(1), freqs_in_hz=[220.0, 440.0])
    >>> len(samples), samples.values[:3].round(8).tolist()
    (22050, [0.0, 0.09384942, 0.18659419])
    """

    def synthesize(self, duration, freqs_in_hz=(440.0,)) -> xr.DataArray:
        """Sines of ``freqs_in_hz`` starting at phase 0, averaged.

        Parameters
        ----------
        duration : np.timedelta64
            Length of the signal.
        freqs_in_hz : sequence of float, optional
            Frequencies of the sines; at least one.

        Returns
        -------
        xarray.DataArray [dims=("time",)]
            float64 AudioSamples.

        Raises
        ------
        ParameterError
            When a frequency is not finite, or the output would not fit in memory
            (more than ``_validation.MAX_OUTPUT_BYTES``; the message gives its size).
        """
        try:
            freqs = np.asarray(freqs_in_hz, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            freqs = np.array([np.nan])
        if freqs.size == 0 or not np.all(np.isfinite(freqs)):
            raise ParameterError(f"freqs_in_hz must be finite frequencies, got {freqs_in_hz!r}")
        n = _n_samples(self.samplerate, duration)
        sr = int(self.samplerate)
        index = np.arange(n, dtype=np.float64)
        out = np.zeros(n)
        for f in freqs:
            # phase in cycles, reduced modulo 1 before scaling so long signals keep their
            # precision (f * i is exact in float64 for the usual integer frequencies)
            cycles = np.mod(f * index, sr) / sr
            out += np.sin(2 * np.pi * cycles)
        return AudioSamples(out / freqs.size, self.samplerate)


class NoiseSynthesizer(_Synthesizer):
    """Synthesize white noise, uniform in [-1, 1).

    Parameters
    ----------
    samplerate : AudioSampleRate or int
    seed : int, numpy.random.Generator or None, optional
        Source of randomness (a fresh unpredictable one by default).

    Examples
    --------
    >>> import zounds_xr as zx
    >>> noise = zx.NoiseSynthesizer(zx.SR44100(), seed=1).synthesize(zx.Seconds(2))
    >>> noise.shape, bool(abs(noise).max() <= 1)
    ((88200,), True)
    """

    def __init__(self, samplerate, *, seed=None):
        super().__init__(samplerate)
        self._rng = _rng(seed)

    def synthesize(self, duration) -> xr.DataArray:
        """White noise lasting ``duration``.

        Returns
        -------
        xarray.DataArray [dims=("time",)]
            float64 AudioSamples.
        """
        n = _n_samples(self.samplerate, duration)
        return AudioSamples(self._rng.uniform(-1.0, 1.0, n), self.samplerate)


class TickSynthesizer(_Synthesizer):
    """Synthesize short, percussive, periodic ticks: noise under a decaying envelope.

    Parameters
    ----------
    samplerate : AudioSampleRate or int
    seed : int, numpy.random.Generator or None, optional
        Source of the tick's noise.

    Examples
    --------
    >>> import zounds_xr as zx
    >>> ticks = zx.TickSynthesizer(zx.SR22050(), seed=0).synthesize(
    ...     duration=zx.Seconds(3), tick_frequency=zx.Milliseconds(100))
    >>> ticks.shape
    (66150,)
    """

    def __init__(self, samplerate, *, seed=None):
        super().__init__(samplerate)
        self._rng = _rng(seed)

    def synthesize(self, duration, tick_frequency, *,
                   tick_duration=_TICK) -> xr.DataArray:
        """Ticks every ``tick_frequency`` for ``duration``.

        Parameters
        ----------
        duration : np.timedelta64
            Length of the signal.
        tick_frequency : np.timedelta64
            Time between tick onsets (onsets at exact multiples, rounded up to samples).
        tick_duration : np.timedelta64, optional
            Length of one tick: uniform noise times a linear decay from 1 to 0 (as
            zounds). Overlapping ticks add up.

        Returns
        -------
        xarray.DataArray [dims=("time",)]
            float64 AudioSamples.
        """
        n = _n_samples(self.samplerate, duration)
        period = to_fraction(tick_frequency, name="tick_frequency")
        if period <= 0:
            raise ParameterError(f"tick_frequency must be positive, got {tick_frequency!r}")
        length = _n_samples(self.samplerate, tick_duration, "tick_duration")
        tick = self._rng.uniform(-1.0, 1.0, length) * np.linspace(1.0, 0.0, length)
        out = np.zeros(n)
        per_sample = period / self.samplerate.exact_frequency
        k = 0
        while True:
            onset = -(-Fraction(k) * per_sample // 1)  # ceil, exact
            if onset >= n:
                break
            onset = int(onset)
            stop = min(n, onset + length)
            out[onset:stop] += tick[:stop - onset]
            k += 1
        return AudioSamples(out, self.samplerate)


class SilenceSynthesizer(_Synthesizer):
    """Synthesize silence (zeros).

    Parameters
    ----------
    samplerate : AudioSampleRate
        The rate of the samples made.

    Examples
    --------
    >>> import zounds_xr as zx
    >>> silence = zx.SilenceSynthesizer(zx.SR11025()).synthesize(zx.Seconds(5))
    >>> silence.shape, bool(silence.any())
    ((55125,), False)
    """

    def synthesize(self, duration) -> xr.DataArray:
        """Zeros lasting ``duration``.

        Returns
        -------
        xarray.DataArray [dims=("time",)]
            float64 AudioSamples.
        """
        return AudioSamples(np.zeros(_n_samples(self.samplerate, duration)), self.samplerate)
