"""The last fuzz campaign's findings, each a ZoundsError naming what is wrong.

Each was a foreign error (``KeyError``, ``AttributeError``, soxr's ``MemoryError``) or
a slow path; each is now refused up front, before anything is allocated or decoded.
"""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import zounds_xr as zx
from zounds_xr.core.validation import check_output_size, output_limit
from zounds_xr.testing import assert_identical
from zounds_xr.io.decode import MIN_CHUNK_FRAMES
from zounds_xr.timeseries.samplerate import MAX_SAMPLERATE


@pytest.fixture
def audio():
    return zx.SineSynthesizer(zx.SR8000()).synthesize(zx.Seconds(1), [440.0])


# --------------------------------------------------------------------------- selection
def test_selecting_a_missing_axis_names_it(audio):
    with pytest.raises(zx.SelectionError, match="no 'frequency' axis.*dims: \\('time',\\)"):
        audio.zx.sel(frequency=zx.FrequencyBand(100, 200))
    # still a KeyError, as xarray's own answer to a missing name
    with pytest.raises(KeyError):
        audio.zx.sel({"frequency": 100})
    with pytest.raises(zx.ParameterError, match="no FrequencyIndex"):
        audio.zx[zx.FrequencyBand(100, 200)]


def test_selection_that_exists_is_xarray_s(audio):
    half = zx.TimeSlice(zx.Seconds(0.5))
    assert_identical(audio.zx.sel(time=half), audio.sel(time=half))
    spec = zx.stft(audio, wscheme=zx.SR8000().half_lapped())
    band = zx.FrequencyBand(400, 480)
    assert_identical(spec.zx.sel(frequency=band), spec.sel(frequency=band))


# --------------------------------------------------------------------------- unlabelled
@pytest.mark.parametrize("func", [zx.mel_spectrogram, zx.mfcc])
def test_unlabelled_arrays_are_refused_with_a_hint(func):
    with pytest.raises(zx.ParameterError, match="must be an xarray.DataArray, got ndarray.*"
                                                "AudioSamples"):
        func(np.zeros((10, 257)))


# --------------------------------------------------------------------------- resampling
@pytest.mark.parametrize("rate", [10 ** 9, MAX_SAMPLERATE + 1])
def test_resampling_above_any_audio_rate_is_refused_before_soxr(audio, rate, monkeypatch):
    import zounds_xr.audio.resampling as resampling

    def no_soxr():  # the check comes first: soxr is never reached
        raise AssertionError("soxr was called")

    monkeypatch.setattr(resampling, "_soxr", no_soxr)
    with pytest.raises(zx.ParameterError, match=f"cannot resample to {rate} Hz"):
        zx.resample(audio, rate)
    with pytest.raises(zx.ParameterError, match=f"cannot resample to {rate} Hz"):
        zx.Resampler(rate)


def test_outputs_larger_than_memory_are_refused():
    limit = output_limit()
    assert 0 < limit <= 1 << 36
    check_output_size((limit // 8,), np.float64, "fits")
    with pytest.raises(zx.ParameterError, match="too big would need"):
        check_output_size((limit // 8 + 1,), np.float64, "too big")


# --------------------------------------------------------------------------- streaming
@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, np.linspace(-1, 1, 5000, dtype=np.float32), 8000, subtype="FLOAT")
    return path


@pytest.mark.parametrize("chunksize", [1, MIN_CHUNK_FRAMES - 1])
def test_tiny_stream_chunks_are_refused_at_the_call(wav, chunksize):
    with pytest.raises(zx.ParameterError, match=f"fewer than the {MIN_CHUNK_FRAMES}"):
        zx.stream(wav, chunksize=chunksize)  # no next(): checked before any I/O


def test_tiny_stream_durations_are_raised_to_the_floor(wav):
    # a duration cannot know the source's rate (files come at 1 Hz too): 1 ms at 8 kHz
    # is 8 frames, streamed as chunks of the floor, and the whole file still comes back
    chunks = list(zx.stream(wav, chunksize=zx.Milliseconds(1)))
    assert chunks[0].sizes["time"] == MIN_CHUNK_FRAMES
    np.testing.assert_array_equal(np.concatenate([c.values for c in chunks]),
                                  zx.load(wav).values)


def test_the_floor_itself_streams_the_whole_file(wav):
    chunks = list(zx.stream(wav, chunksize=MIN_CHUNK_FRAMES))
    assert [c.sizes["time"] for c in chunks][:-1] == [MIN_CHUNK_FRAMES] * (len(chunks) - 1)
    np.testing.assert_array_equal(np.concatenate([c.values for c in chunks]),
                                  zx.load(wav).values)
