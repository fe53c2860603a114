"""Exact time: durations, sample rates, time slices, the lazy TimeIndex."""
from .dimension import TimeDimension
from .durations import (Hours, Microseconds, Milliseconds, Minutes, Nanoseconds, Picoseconds,
                        Seconds, to_fraction, to_timedelta)
from .index import TimeIndex, time_coords
from .samplerate import (SR8000, SR11025, SR16000, SR22050, SR44100, SR48000, SR96000,
                         AudioSampleRate, HalfLapped, SampleRate, audio_sample_rate)
from .timeslice import TimeSlice

__all__ = ["Hours", "Minutes", "Seconds", "Milliseconds", "Microseconds", "Nanoseconds",
           "Picoseconds", "to_fraction", "to_timedelta", "SampleRate", "AudioSampleRate",
           "SR8000", "SR11025", "SR16000", "SR22050", "SR44100", "SR48000", "SR96000",
           "audio_sample_rate", "HalfLapped", "TimeSlice", "TimeIndex", "time_coords",
           "TimeDimension"]
