"""Bad parameters to the public functions of io, resampling, audio, arrays, timeseries
(durations, TimeSlice, sample rates), FrequencyBand and the simple synthesizers: each
gives a ZoundsError naming what was wrong, never an error from deep inside numpy."""
from __future__ import annotations

import io
from fractions import Fraction

import numpy as np
import pytest
import soundfile as sf

import zounds_xr as zx


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("bad") / "a.wav"
    sf.write(path, np.zeros(16000, dtype=np.float32), 8000)
    return path


def _audio(seconds=1, rate=8000, channels=None):
    shape = (rate * seconds,) if channels is None else (rate * seconds, channels)
    return zx.AudioSamples(np.zeros(shape, dtype=np.float32), zx.audio_sample_rate(rate))


# (id, call, exception, words the message must hold)
CASES = [
    # durations
    ("Seconds-1e30", lambda p: zx.Seconds(1e30), zx.ParameterError, "292 years"),
    ("Seconds-10**30", lambda p: zx.Seconds(10 ** 30), zx.ParameterError, "292 years"),
    ("Hours-10**17", lambda p: zx.Hours(10 ** 17), zx.ParameterError, "292 years"),
    ("Seconds-NaT-int", lambda p: zx.Seconds(-2 ** 63), zx.ParameterError, "292 years"),
    ("Seconds-nan", lambda p: zx.Seconds(float("nan")), zx.ParameterError, "finite"),
    ("Seconds-str", lambda p: zx.Seconds("3"), zx.ParameterError, "number"),
    ("Seconds-bool", lambda p: zx.Seconds(True), zx.ParameterError, "number"),
    ("Milliseconds-inf", lambda p: zx.Milliseconds(float("inf")), zx.ParameterError, "finite"),
    # TimeSlice
    ("TimeSlice-int", lambda p: zx.TimeSlice(5), zx.ParameterError, "duration"),
    ("TimeSlice-negative", lambda p: zx.TimeSlice(zx.Seconds(-1)), zx.ParameterError,
     "negative"),
    ("TimeSlice-start-str", lambda p: zx.TimeSlice(start="soon"), zx.ParameterError,
     "start"),
    ("TimeSlice-NaT", lambda p: zx.TimeSlice(np.timedelta64("NaT", "s")), zx.ParameterError,
     "NaT"),
    # sample rates
    ("audio_sample_rate-2**63", lambda p: zx.audio_sample_rate(2 ** 63), zx.ParameterError,
     "at most"),
    ("audio_sample_rate-0", lambda p: zx.audio_sample_rate(0), zx.ParameterError, "positive"),
    ("audio_sample_rate-float", lambda p: zx.audio_sample_rate(44100.5), zx.ParameterError,
     "integer"),
    ("audio_sample_rate-str", lambda p: zx.audio_sample_rate("44100"), zx.ParameterError,
     "integer"),
    ("audio_sample_rate-SampleRate",
     lambda p: zx.audio_sample_rate(zx.SampleRate(zx.Seconds(1), zx.Seconds(2))),
     zx.SampleRateError, "not an audio"),
    ("SampleRate-zero", lambda p: zx.SampleRate(zx.Seconds(0), zx.Seconds(1)),
     zx.ParameterError, "positive"),
    ("SampleRate-number", lambda p: zx.SampleRate(1, 2), zx.ParameterError, "frequency"),
    ("SampleRate-mul", lambda p: zx.SR44100() * (0, 2), zx.ParameterError, "hop"),
    ("AudioSampleRate-neg", lambda p: zx.AudioSampleRate(-1), zx.ParameterError, "positive"),
    # AudioSamples and ArrayWithUnits
    ("AudioSamples-str", lambda p: zx.AudioSamples(np.array(["a", "b"]), zx.SR8000()),
     zx.ParameterError, "real numbers"),
    ("AudioSamples-object", lambda p: zx.AudioSamples(np.array([object()] * 3), zx.SR8000()),
     zx.ParameterError, "real numbers"),
    ("AudioSamples-complex", lambda p: zx.AudioSamples(np.zeros(4, complex), zx.SR8000()),
     zx.ParameterError, "complex"),
    ("AudioSamples-bool", lambda p: zx.AudioSamples(np.zeros(4, bool), zx.SR8000()),
     zx.ParameterError, "real numbers"),
    ("AudioSamples-3d", lambda p: zx.AudioSamples(np.zeros((2, 2, 2)), zx.SR8000()),
     zx.ParameterError, "shape"),
    ("AudioSamples-int-rate", lambda p: zx.AudioSamples(np.zeros(4), 8000), zx.SampleRateError,
     "AudioSampleRate"),
    ("ArrayWithUnits-ndim", lambda p: zx.ArrayWithUnits(np.zeros(4), []), zx.ParameterError,
     "dimensions"),
    ("ArrayWithUnits-not-dimension", lambda p: zx.ArrayWithUnits(np.zeros(4), ["time"]),
     zx.ParameterError, "Dimension"),
    # selection
    ("sel-past-end", lambda p: _audio().sel(time=zx.Seconds(2)), zx.SelectionError,
     "outside the time axis"),
    ("sel-array-past-end",
     lambda p: _audio().sel(time=np.array([0, 5], dtype="timedelta64[s]")), zx.SelectionError,
     "outside the time axis"),
    ("zx-frequency-on-audio", lambda p: _audio().zx[zx.FrequencyBand(10, 20)],
     zx.ParameterError, "FrequencyIndex"),
    # FrequencyBand and Hertz
    ("FrequencyBand-reversed", lambda p: zx.FrequencyBand(100, 10), zx.ParameterError,
     "greater"),
    ("FrequencyBand-nan", lambda p: zx.FrequencyBand(float("nan"), 10), zx.ParameterError,
     "finite"),
    ("FrequencyBand-str", lambda p: zx.FrequencyBand("a", 10), zx.ParameterError, "real"),
    ("Hertz-None", lambda p: zx.Hertz(None), zx.ParameterError, "real"),
    # resampling
    ("resample-1e9-Hz",
     lambda p: zx.resample(zx.AudioSamples(np.zeros((8000 * 60, 2), np.float32), zx.SR8000()),
                           10 ** 9), zx.ParameterError, "resample to 1000000000 Hz"),
    ("resample-1e9-Hz-dask",
     lambda p: zx.resample(_audio(60).chunk({"time": 8000 * 30}), 10 ** 9),
     zx.ParameterError, "resample to 1000000000 Hz"),
    ("Resampler-1e9-Hz",
     lambda p: zx.Resampler(10 ** 9).process(_audio(60, channels=2)), zx.ParameterError,
     "resample to 1000000000 Hz"),
    ("resample-10MHz-dask-block",  # a legal rate whose block cannot fit: its size is named
     lambda p: zx.resample(_audio(1800).chunk({"time": 8000 * 1800}), 10 ** 7),
     zx.ParameterError, "GiB"),
    ("resample-rate-str", lambda p: zx.resample(_audio(), "fast"), zx.SampleRateError,
     "samplerate"),
    ("resample-quality", lambda p: zx.resample(_audio(), 4000, quality="best"),
     zx.ParameterError, "quality"),
    ("resample-numpy", lambda p: zx.resample(np.zeros(10), 4000), zx.ParameterError,
     "DataArray"),
    ("resample-2**63", lambda p: zx.resample(_audio(), 2 ** 63), zx.ParameterError, "at most"),
    # synthesizers
    ("Sine-Hours-1000", lambda p: zx.SineSynthesizer(zx.SR44100()).synthesize(zx.Hours(1000)),
     zx.ParameterError, "TiB"),
    ("Noise-Hours-1000", lambda p: zx.NoiseSynthesizer(zx.SR44100()).synthesize(zx.Hours(1000)),
     zx.ParameterError, "TiB"),
    ("Silence-Hours-1000",
     lambda p: zx.SilenceSynthesizer(zx.SR44100()).synthesize(zx.Hours(1000)),
     zx.ParameterError, "TiB"),
    ("Tick-Hours-1000",
     lambda p: zx.TickSynthesizer(zx.SR44100()).synthesize(zx.Hours(1000), zx.Seconds(1)),
     zx.ParameterError, "TiB"),
    ("Tick-tick-duration",
     lambda p: zx.TickSynthesizer(zx.SR8000()).synthesize(zx.Seconds(1), zx.Seconds(1),
                                                          tick_duration=zx.Hours(10 ** 6)),
     zx.ParameterError, "TiB"),
    ("Tick-zero-period",
     lambda p: zx.TickSynthesizer(zx.SR8000()).synthesize(zx.Seconds(1), zx.Seconds(0)),
     zx.ParameterError, "tick_frequency"),
    ("Sine-freqs-str",
     lambda p: zx.SineSynthesizer(zx.SR8000()).synthesize(zx.Seconds(1), ["a"]),
     zx.ParameterError, "freqs_in_hz"),
    ("Sine-freqs-empty",
     lambda p: zx.SineSynthesizer(zx.SR8000()).synthesize(zx.Seconds(1), []),
     zx.ParameterError, "freqs_in_hz"),
    ("Sine-negative", lambda p: zx.SineSynthesizer(zx.SR8000()).synthesize(zx.Seconds(-1)),
     zx.ParameterError, "negative"),
    ("Noise-seed", lambda p: zx.NoiseSynthesizer(zx.SR8000(), seed="x"), zx.ParameterError,
     "seed"),
    # decoding parameters
    ("load-int", lambda p: zx.load(12), zx.ParameterError, "int"),
    ("load-mono", lambda p: zx.load(p, mono="yes"), zx.ParameterError, "mono"),
    ("load-on_nonfinite", lambda p: zx.load(p, on_nonfinite="ignore"), zx.ParameterError,
     "on_nonfinite"),
    ("load-samplerate", lambda p: zx.load(p, samplerate="fast"), zx.SampleRateError,
     "samplerate"),
    ("stream-chunksize-str", lambda p: zx.stream(p, chunksize="soon"), zx.ParameterError,
     "chunksize"),
    ("stream-chunksize-0", lambda p: next(zx.stream(p, chunksize=0)), zx.ParameterError,
     "chunksize"),
    ("stream-chunksize-negative", lambda p: next(zx.stream(p, chunksize=-5)),
     zx.ParameterError, "chunksize"),
    ("stream-on_nonfinite", lambda p: zx.stream(p, on_nonfinite=None), zx.ParameterError,
     "on_nonfinite"),
    ("open_audio-chunks-str", lambda p: zx.open_audio(p, chunks="abc"), zx.ParameterError,
     "chunks"),
    ("open_audio-too-many-blocks", lambda p: zx.open_audio(p, chunks=1), zx.ParameterError,
     "blocks"),
    ("open_audio-bytes", lambda p: zx.open_audio(b"RIFF"), zx.ParameterError, "local file"),
    ("open_audio-missing", lambda p: zx.open_audio(p.parent / "nope.wav"),
     zx.AudioFileNotFoundError, "nope.wav"),
    ("open_audio-on_nonfinite", lambda p: zx.open_audio(p, on_nonfinite=1), zx.ParameterError,
     "on_nonfinite"),
    ("load-directory", lambda p: zx.load(p.parent), zx.AudioDecodeError, "directory"),
    # encoding and metadata
    ("encode-format", lambda p: zx.encode(_audio(), fmt="NOPE"), zx.ParameterError, "format"),
    ("encode-subtype", lambda p: zx.encode(_audio(), fmt="WAV", subtype="VORBIS"),
     zx.ParameterError, "subtype"),
    ("encode-not-audio", lambda p: zx.encode(np.zeros(10)), zx.ParameterError, "DataArray"),
    ("encode-flo", lambda p: zx.encode(_audio(), flo=5), zx.ParameterError, "flo"),
    ("save-dir", lambda p: zx.save(_audio(), p.parent / "no" / "x.wav"), zx.ParameterError,
     "directory"),
    ("save-extension", lambda p: zx.save(_audio(), p.parent / "x.unknown"), zx.ParameterError,
     "extension"),
    ("save-path-type", lambda p: zx.save(_audio(), 5), zx.ParameterError, "path"),
    ("encode-nan-as-pcm",
     lambda p: zx.encode(zx.AudioSamples(np.array([0.0, np.nan]), zx.SR8000())),
     zx.ParameterError, "frame 1"),
    ("save-inf-as-flac",
     lambda p: zx.save(zx.AudioSamples(np.array([np.inf, 0.0]), zx.SR8000()),
                       p.parent / "x.flac"), zx.ParameterError, "non-finite"),
    ("AudioMetaData-no-uri", lambda p: zx.AudioMetaData(), zx.ParameterError, "uri"),
    ("ChunkSizeBytes-duration", lambda p: zx.ChunkSizeBytes(zx.SR8000(), zx.Seconds(0)),
     zx.ParameterError, "duration"),
    ("ChunkSizeBytes-channels",
     lambda p: zx.ChunkSizeBytes(zx.SR8000(), zx.Seconds(1), channels=0), zx.ParameterError,
     "channels"),
    ("ChunkSizeBytes-bool-channels",
     lambda p: zx.ChunkSizeBytes(zx.SR8000(), zx.Seconds(1), channels=True), zx.ParameterError,
     "channels"),
    ("ChunkSizeBytes-rate", lambda p: zx.ChunkSizeBytes(2 ** 63, zx.Seconds(1)),
     zx.ParameterError, "at most"),
]


@pytest.mark.parametrize("call, error, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_parameter_gives_a_clear_zounds_error(wav, call, error, words):
    with pytest.raises(error) as info:
        call(wav)
    assert isinstance(info.value, zx.ZoundsError)
    assert words.lower() in str(info.value).lower(), str(info.value)


def test_selection_error_is_also_a_key_error():
    with pytest.raises(KeyError):
        _audio().sel(time=zx.Seconds(5))
    assert issubclass(zx.SelectionError, zx.ZoundsError)


def test_bounds_still_accept_the_edges():
    assert zx.Seconds(9 * 10 ** 9) == np.timedelta64(9 * 10 ** 9, "s")
    assert int(zx.audio_sample_rate(2 ** 31 - 1)) == 2 ** 31 - 1
    assert zx.AudioSamples(np.zeros(3, np.int16), zx.SR8000()).dtype == np.int16
    assert zx.SineSynthesizer(zx.SR8000()).synthesize(zx.Seconds(1)).sizes["time"] == 8000


@pytest.mark.parametrize("a, b, start, duration", [
    (zx.TimeSlice(zx.Seconds(3), start=zx.Seconds(1)), zx.TimeSlice(zx.Milliseconds(2500)),
     np.timedelta64(1, "s"), np.timedelta64(1500, "ms")),
    (zx.TimeSlice(zx.Seconds(3)), zx.TimeSlice(zx.Seconds(5)), None, np.timedelta64(3, "s")),
    (zx.TimeSlice(start=zx.Nanoseconds(7)), zx.TimeSlice(), np.timedelta64(7, "ns"), None),
    (zx.TimeSlice(zx.Seconds(1)), zx.TimeSlice(zx.Seconds(1), start=zx.Seconds(5)),
     np.timedelta64(5, "s"), np.timedelta64(0, "s")),
    (zx.TimeSlice(zx.Picoseconds(10), start=zx.Picoseconds(3)),
     zx.TimeSlice(zx.Nanoseconds(1)), np.timedelta64(3, "ps"), np.timedelta64(10, "ps")),
])
def test_timeslice_intersection_gives_exact_timedeltas(a, b, start, duration):
    both = a & b
    assert type(both.start) is type(start) and type(both.duration) is type(duration)
    assert both.start == start and both.duration == duration
    if start is not None:
        assert both.start.dtype == start.dtype
    assert both == b & a


def test_timeslice_intersection_of_fractions_stays_exact():
    third = Fraction(1, 3)
    both = zx.TimeSlice(third) & zx.TimeSlice(zx.Seconds(1))
    assert both.duration == third and both.duration_fraction == third


def test_sel_frequency_on_audio_is_xarray_s_key_error():
    # xarray checks indexer keys (group_indexers_by_index) before asking any index, so
    # a dim the array does not have cannot be intercepted by TimeIndex; the .zx
    # selector gives a ZoundsError (above)
    with pytest.raises(KeyError, match="frequency"):
        _audio().sel(frequency=zx.FrequencyBand(10, 20))


def test_nonfinite_policy_in_memory():
    values = np.zeros(100, np.float32)
    values[[3, 50]] = [np.nan, np.inf]
    encoded = zx.encode(zx.AudioSamples(values, zx.SR8000()), fmt="WAV", subtype="FLOAT").read()
    with pytest.warns(zx.NonFiniteSamplesWarning, match="2 non-finite.*frame 3"):
        kept = zx.load(encoded)
    assert np.isnan(kept.values[3]) and np.isinf(kept.values[50])
    zeroed = zx.load(io.BytesIO(encoded), on_nonfinite="zero")
    assert not zeroed.values.any()
    with pytest.raises(zx.AudioDecodeError, match="frame 3"):
        zx.load(encoded, on_nonfinite="raise")
    assert np.isnan(zx.load(encoded, on_nonfinite="keep").values[3])
