"""zounds_xr.io.encode: encode and save, block by block, every writable format."""
from __future__ import annotations

import io

import dask.array as da
import numpy as np
import pytest
import soundfile as sf

import zounds_xr as zx


def _samples(rate=22050, channels=1, seconds=0.5, backend="numpy", amplitude=0.5):
    t = np.arange(int(rate * seconds)) / rate
    data = np.stack([amplitude * np.sin(2 * np.pi * (300 + 50 * c) * t)
                     for c in range(channels)], axis=1)
    data = data[:, 0] if channels == 1 else data
    if backend == "dask":
        data = da.from_array(data, chunks=(rate // 7,) + data.shape[1:])
    return zx.AudioSamples(data, zx.audio_sample_rate(rate))


@pytest.fixture(params=["numpy", "dask"])
def backend(request):
    return request.param


def test_encode_header_matches_zounds():
    samples = zx.AudioSamples(np.zeros(11025 * 10), zx.SR11025())
    flo = zx.encode(samples)
    assert flo.tell() == 0
    assert flo.read(10) == b"RIFFx]\x03\x00WA"


@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("fmt, subtype, rate, atol", [
    ("WAV", "PCM_16", 22050, 2 ** -15), ("WAV", "PCM_24", 22050, 2 ** -23),
    ("WAV", "FLOAT", 22050, 1e-7), ("WAV", "PCM_U8", 8000, 2 ** -7),
    ("WAVEX", "PCM_32", 16000, 2 ** -31), ("RF64", "PCM_16", 22050, 2 ** -15),
    ("AIFF", "PCM_16", 22050, 2 ** -15), ("FLAC", "PCM_24", 44100, 2 ** -23),
    ("OGG", "VORBIS", 44100, None), ("OGG", "OPUS", 48000, None),
    ("MP3", "MPEG_LAYER_III", 44100, None)])
def test_round_trip(backend, fmt, subtype, rate, atol, channels):
    if fmt == "MP3" and channels > 2:
        pytest.skip("MPEG layer III holds at most two channels")
    samples = _samples(rate, channels, backend=backend)
    decoded = zx.load(zx.encode(samples, fmt=fmt, subtype=subtype))
    assert decoded.zx.samplerate == samples.zx.samplerate
    assert decoded.sizes == samples.sizes
    if atol is not None:
        np.testing.assert_allclose(decoded.values, samples.values, atol=atol)
    else:  # lossy: the tone survives
        corr = np.corrcoef(decoded.values.ravel(), samples.values.ravel())[0, 1]
        assert corr > 0.9


def test_dask_samples_are_written_block_by_block():
    computed = []

    def block(x, block_info=None):
        computed.append(tuple(block_info[None]["chunk-location"]))
        return x

    numpy_samples = _samples(44100, 2, seconds=3)
    lazy = numpy_samples.copy(data=da.from_array(numpy_samples.values, chunks=(30000, 1))
                              .map_blocks(block, dtype=np.float64))
    encoded = zx.encode(lazy, fmt="FLAC", subtype="PCM_16").read()
    # every block computed exactly once, in time order (never the whole array at once)
    assert len(computed) == len(set(computed)) == np.prod(lazy.data.numblocks)
    assert [c[0] for c in computed] == sorted(c[0] for c in computed)
    assert encoded == zx.encode(numpy_samples, fmt="FLAC", subtype="PCM_16").read()


def test_long_ogg_vorbis_is_written_in_blocks():
    # one sf.write of > ~45 s of 44.1 kHz stereo overflows libvorbis' stack (NOTES.md)
    samples = zx.AudioSamples(np.zeros((44100 * 50, 2), dtype=np.float32), zx.SR44100())
    decoded = zx.load(zx.encode(samples, fmt="OGG", subtype="VORBIS"))
    assert decoded.shape == (44100 * 50, 2)


def test_pcm_clips_instead_of_wrapping():
    samples = zx.AudioSamples(np.array([1.5, -1.7, 0.25, 1.0]), zx.SR8000())
    decoded = zx.load(zx.encode(samples)).values
    np.testing.assert_allclose(decoded, [32767 / 32768, -1.0, 0.25, 32767 / 32768])
    as_float = zx.load(zx.encode(samples, subtype="FLOAT")).values
    np.testing.assert_allclose(as_float, samples.values, rtol=1e-7)


def test_channel_first_and_integer_input():
    stereo = _samples(8000, 2)
    flipped = stereo.transpose("channel", "time")
    assert zx.encode(flipped).read() == zx.encode(stereo).read()
    ints = zx.AudioSamples((stereo.values * 32767).astype(np.int16), zx.SR8000())
    np.testing.assert_allclose(zx.load(zx.encode(ints)).values, stereo.values, atol=1e-4)


def test_encode_into_given_file_object():
    flo = io.BytesIO()
    out = zx.encode(_samples(), flo=flo, fmt="FLAC", subtype=None)
    assert out is flo and flo.tell() == 0
    assert sf.info(flo).format == "FLAC"


@pytest.mark.parametrize("fmt, subtype", [("WAV", "VORBIS"), ("OGG", "PCM_16"),
                                          ("NOPE", "PCM_16"), ("WAV", "PCM_99")])
def test_invalid_format_combinations(fmt, subtype):
    with pytest.raises(zx.ParameterError, match=fmt if fmt == "NOPE" else subtype):
        zx.encode(_samples(), fmt=fmt, subtype=subtype)


def test_libsndfile_refusals_are_parameter_errors():
    with pytest.raises(zx.ParameterError, match="OPUS"):
        zx.encode(_samples(44100), fmt="OGG", subtype="OPUS")  # Opus has no 44.1 kHz
    with pytest.raises(zx.ParameterError):
        zx.encode(np.zeros(10))
    with pytest.raises(zx.ParameterError):
        zx.encode(zx.ArrayWithUnits(np.zeros((4, 3)), [zx.TimeDimension(zx.Seconds(1)),
                                                       zx.IdentityDimension()]))


@pytest.mark.parametrize("ext, fmt, subtype", [
    ("wav", "WAV", "PCM_16"), ("flac", "FLAC", "PCM_16"), ("ogg", "OGG", "VORBIS"),
    ("oga", "OGG", "VORBIS"), ("opus", "OGG", "OPUS"), ("aiff", "AIFF", "PCM_16"),
    ("aif", "AIFF", "PCM_16"), ("mp3", "MP3", "MPEG_LAYER_III"), ("rf64", "RF64", "PCM_16")])
def test_save_infers_format_from_extension(tmp_path, backend, ext, fmt, subtype):
    rate = 48000 if ext == "opus" else 44100
    samples = _samples(rate, 2, backend=backend)
    path = zx.save(samples, tmp_path / f"out.{ext}")
    assert path == tmp_path / f"out.{ext}"
    info = sf.info(path)
    assert (info.format, info.subtype, info.samplerate, info.channels) == (fmt, subtype, rate, 2)
    assert [p.name for p in tmp_path.iterdir()] == [f"out.{ext}"]  # no temporary left


def test_save_options_and_errors(tmp_path):
    samples = _samples()
    path = samples.zx.save(tmp_path / "x.bin", fmt="WAV", subtype="FLOAT")
    assert sf.info(path).subtype == "FLOAT"
    with pytest.raises(zx.ParameterError, match="extension"):
        zx.save(samples, tmp_path / "x.unknown")
    with pytest.raises(zx.ParameterError):
        zx.save(samples, tmp_path / "missing-dir" / "x.wav")
    with pytest.raises(zx.ParameterError):
        zx.save(_samples(44100), tmp_path / "x.opus")  # refused rate: nothing left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.bin"]
