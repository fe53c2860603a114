"""Sample rates: how often frames are taken (``frequency``) and how long each lasts.

A :class:`SampleRate` describes any constant-rate sampling scheme: audio samples
(frequency = duration = 1/44100 s) or the overlapping windows of an STFT
(frequency = hop, duration = window). Values are kept as exact ``Fraction`` seconds
(:attr:`SampleRate.exact_frequency`); the zounds-compatible ``frequency`` /
``duration`` / ``overlap`` properties give ``np.timedelta64[ns]`` rounded to the
nearest nanosecond.
"""
from __future__ import annotations

import math
import numbers
from fractions import Fraction
from typing import Any

import numpy as np

from ..core.errors import ParameterError, SampleRateError
from .durations import to_fraction, to_timedelta

__all__ = [
    "MAX_SAMPLERATE",
    "SampleRate",
    "AudioSampleRate",
    "SR8000",
    "SR11025",
    "SR16000",
    "SR22050",
    "SR44100",
    "SR48000",
    "SR96000",
    "audio_sample_rate",
    "HalfLapped",
    "MAX_AUDIO_RATE",
]


class SampleRate:
    """A constant sampling scheme: one frame every ``frequency``, each ``duration`` long.

    Parameters
    ----------
    frequency : np.timedelta64 or Fraction
        Time between the starts of consecutive frames (Fraction = exact seconds).
    duration : np.timedelta64 or Fraction
        Extent of one frame; may exceed ``frequency`` for overlapping windows.

    Raises
    ------
    ParameterError
        When ``frequency`` or ``duration`` is not a positive duration.

    Examples
    --------
    >>> import zounds_xr as zx
    >>> sr = zx.SampleRate(zx.Seconds(1), zx.Seconds(2))
    >>> sr.overlap, sr.overlap_ratio
    (np.timedelta64(1000000000,'ns'), 0.5)
    """

    def __init__(self, frequency, duration):
        self._frequency = to_fraction(frequency, name="frequency")
        self._duration = to_fraction(duration, name="duration")
        if self._frequency <= 0:
            raise ParameterError(f"frequency must be positive, got {frequency!r}")
        if self._duration <= 0:
            raise ParameterError(f"duration must be positive, got {duration!r}")

    # exact values -----------------------------------------------------------------
    @property
    def exact_frequency(self) -> Fraction:
        """Time between frame starts, exact seconds."""
        return self._frequency

    @property
    def exact_duration(self) -> Fraction:
        """Extent of one frame, exact seconds."""
        return self._duration

    # zounds-compatible views ---------------------------------------------------------
    @property
    def frequency(self) -> np.timedelta64:
        """Time between frame starts, ``timedelta64[ns]`` (nearest ns)."""
        return to_timedelta(self._frequency)

    @property
    def duration(self) -> np.timedelta64:
        """Extent of one frame, ``timedelta64[ns]`` (nearest ns)."""
        return to_timedelta(self._duration)

    @property
    def overlap(self) -> np.timedelta64:
        """How much consecutive frames overlap (zero when they don't)."""
        return to_timedelta(max(self._duration - self._frequency, Fraction(0)))

    @property
    def overlap_ratio(self) -> float:
        """Overlap as a fraction of the frame duration."""
        return float(max(self._duration - self._frequency, Fraction(0)) / self._duration)

    @property
    def samples_per_second(self) -> float:
        """Frames per second (a float for non-audio rates)."""
        return float(1 / self._frequency)

    @property
    def nyquist(self) -> float:
        """Half the frame rate, in Hz."""
        return self.samples_per_second / 2

    def samples(self, duration) -> int:
        """Return the whole frames of this rate that cover ``duration`` (rounded up)."""
        return math.ceil(to_fraction(duration, name="duration") / self._frequency)

    def __mul__(self, other) -> SampleRate:
        """``rate * (hop, window)``: a windowing scheme in frames of this rate."""
        if isinstance(other, tuple) and len(other) == 2:
            hop, window = other
            for name, n in (("hop", hop), ("window", window)):
                if not isinstance(n, numbers.Integral) or int(n) <= 0:
                    raise ParameterError(f"{name} must be a positive number of frames, got {n!r}")
            return SampleRate(self._frequency * int(hop), self._frequency * int(window))
        if isinstance(other, numbers.Integral) and not isinstance(other, bool) \
                and int(other) > 0:
            return SampleRate(self._frequency * int(other), self._duration * int(other))
        return NotImplemented

    __rmul__ = __mul__

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, SampleRate)
            and self._frequency == other._frequency
            and self._duration == other._duration
        )

    def __hash__(self) -> int:
        return hash((self._frequency, self._duration))

    def __repr__(self) -> str:
        return (f"SampleRate(f={float(self._frequency):.8g}s, d={float(self._duration):.8g}s)")

    # persistence -------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-safe description with exact fractions as strings."""
        return {"frequency": str(self._frequency), "duration": str(self._duration)}

    @staticmethod
    def from_dict(d: dict) -> SampleRate:
        """Inverse of :meth:`to_dict` (returns an audio rate when it is one)."""
        return rate_from_fractions(Fraction(d["frequency"]), Fraction(d["duration"]))


#: the highest audio rate: libsndfile keeps rates in a C ``int`` (WAV's field is 32 bits)
MAX_AUDIO_RATE = 2**31 - 1
#: the highest rate accepted where a rate sizes a buffer (a decoded header, a resampling
#: target): :data:`MAX_AUDIO_RATE` is what a rate can be, this is what audio is. No audio
#: format in use carries more (DSD256 is 11.3 MHz of 1-bit samples, which libsndfile
#: does not read)
MAX_SAMPLERATE = 10_000_000


class AudioSampleRate(SampleRate):
    """The rate of audio samples: ``n`` samples per second, each ``1/n`` s long.

    Any integer rate from 1 to :data:`MAX_AUDIO_RATE` is valid (files come at 1234 Hz
    too); the common ones have named classes (:class:`SR44100` ...). ``int(sr)`` is the
    rate in Hz.

    Parameters
    ----------
    samples_per_second : int
        The rate in Hz.

    Raises
    ------
    ParameterError
        When the rate is not a positive integer or is above :data:`MAX_AUDIO_RATE`.
    """

    def __init__(self, samples_per_second: int):
        if (
            isinstance(samples_per_second, bool)
            or not isinstance(samples_per_second, numbers.Integral)
            or samples_per_second <= 0
        ):
            raise ParameterError(
                f"an audio sample rate must be a positive integer number of samples per "
                f"second, got {samples_per_second!r}"
            )
        if samples_per_second > MAX_AUDIO_RATE:
            raise ParameterError(
                f"an audio sample rate must be at most {MAX_AUDIO_RATE} Hz (what libsndfile "
                f"and every audio format can hold), got {samples_per_second!r}")
        self._n: int = int(samples_per_second)
        period = Fraction(1, self._n)
        super().__init__(period, period)

    @property
    def samples_per_second(self) -> int:
        """Samples per second, an ``int``."""
        return self._n

    @property
    def nyquist(self) -> int:
        """Half the sample rate, floored to whole Hz (as zounds)."""
        return self._n // 2

    def __int__(self) -> int:
        return self._n

    def __index__(self) -> int:
        return self._n

    def half_lapped(self) -> SampleRate:
        """Return a half-overlapping window scheme with a power-of-two hop for this rate.

        The hop is the power of two nearest to 1024/44100 s at this rate (256 at
        11025 Hz, 1024 at 44100 and 48000 Hz); the window is twice the hop.
        """
        target = self._n * 1024 / 44100
        hop = 2 ** max(0, round(math.log2(target)))
        return self * (hop, 2 * hop)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()" if type(self) is not AudioSampleRate else (
            f"AudioSampleRate({self._n})")


def _named_rate(n: int) -> Any:
    class _Rate(AudioSampleRate):
        __doc__ = f"""The common audio sample rate {n} Hz.

        Examples
        --------
        >>> import zounds_xr as zx
        >>> sr = zx.SR{n}()
        >>> int(sr), sr.nyquist
        ({n}, {n // 2})
        """

        def __init__(self):
            super().__init__(n)

        def __reduce__(self):
            return (type(self), ())

    _Rate.__name__ = _Rate.__qualname__ = f"SR{n}"
    _Rate.__module__ = __name__
    return _Rate


SR8000 = _named_rate(8000)
SR11025 = _named_rate(11025)
SR16000 = _named_rate(16000)
SR22050 = _named_rate(22050)
SR44100 = _named_rate(44100)
SR48000 = _named_rate(48000)
SR96000 = _named_rate(96000)

_NAMED = {int(cls()): cls for cls in (SR8000, SR11025, SR16000, SR22050, SR44100, SR48000,
                                      SR96000)}


def audio_sample_rate(samples_per_second) -> AudioSampleRate:
    """Return the audio rate for ``samples_per_second``: a named class for common rates.

    Parameters
    ----------
    samples_per_second : int, float with an integer value, or AudioSampleRate
        The rate in Hz (an ``AudioSampleRate`` is returned as it is).

    Returns
    -------
    AudioSampleRate
        ``SR44100()`` ... for the named rates, ``AudioSampleRate(n)`` otherwise.

    Raises
    ------
    ParameterError
        When the rate is not a positive integer (or above :data:`MAX_AUDIO_RATE`).
    SampleRateError
        When given a ``SampleRate`` that is not an audio rate.

    Examples
    --------
    >>> import zounds_xr as zx
    >>> zx.audio_sample_rate(44100)
    SR44100()
    >>> zx.audio_sample_rate(1234)
    AudioSampleRate(1234)
    """
    if isinstance(samples_per_second, AudioSampleRate):
        return samples_per_second
    if isinstance(samples_per_second, SampleRate):
        raise SampleRateError(f"{samples_per_second!r} is not an audio sample rate")
    if isinstance(samples_per_second, float) and samples_per_second.is_integer():
        samples_per_second = int(samples_per_second)
    if isinstance(samples_per_second, numbers.Integral) and not isinstance(samples_per_second,
                                                                          bool):
        named = _NAMED.get(int(samples_per_second))
        return named() if named is not None else AudioSampleRate(int(samples_per_second))
    raise ParameterError(
        f"an audio sample rate must be a positive integer, got {samples_per_second!r}")


def rate_from_fractions(frequency: Fraction, duration: Fraction) -> SampleRate:
    """Return the most specific rate for exact ``frequency`` and ``duration`` (seconds)."""
    if frequency == duration and frequency > 0 and (1 / frequency).denominator == 1 \
            and 1 / frequency <= MAX_AUDIO_RATE:
        return audio_sample_rate(int(1 / frequency))
    return SampleRate(frequency, duration)


def as_audio_rate(samplerate, *, name: str = "samplerate") -> AudioSampleRate:
    """Validate that ``samplerate`` is an audio rate (an int is accepted too)."""
    if isinstance(samplerate, AudioSampleRate):
        return samplerate
    if isinstance(samplerate, numbers.Integral) and not isinstance(samplerate, bool):
        return audio_sample_rate(samplerate)
    raise SampleRateError(
        f"{name} must be an AudioSampleRate such as zx.SR44100(), got {samplerate!r}")


def HalfLapped() -> SampleRate:  # noqa: N802  (zounds' name)
    """Return zounds' default STFT scheme: 2048-sample windows every 1024 at 44.1 kHz.

    Exactly ``SampleRate(1024/44100 s, 2048/44100 s)``; at other rates
    ``sliding_window`` rounds the hop and window up to whole samples.

    Returns
    -------
    SampleRate
        Hop 1024/44100 s, window 2048/44100 s.
    """
    return SR44100() * (1024, 2048)
