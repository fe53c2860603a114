"""zounds_xr.io.decode: load, stream, open_audio over every libsndfile format."""
from __future__ import annotations

import functools
import http.server
import io
import pathlib
import threading
from fractions import Fraction

import numpy as np
import pytest
import soundfile as sf

import zounds_xr as zx
from zounds_xr.io import decode
from zounds_xr.io import lazy as lazy_module

CORPUS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "corpus"

# (format, subtype, extension, rate, lossy)
FORMATS = [
    ("WAV", "PCM_U8", "wav", 8000, False),
    ("WAV", "PCM_16", "wav", 22050, False),
    ("WAV", "PCM_24", "wav", 44100, False),
    ("WAV", "PCM_32", "wav", 16000, False),
    ("WAV", "FLOAT", "wav", 11025, False),
    ("WAV", "DOUBLE", "wav", 1234, False),
    ("WAV", "ULAW", "wav", 8000, False),
    ("WAVEX", "PCM_16", "wav", 48000, False),
    ("RF64", "PCM_16", "rf64", 44100, False),
    ("AIFF", "PCM_16", "aiff", 44100, False),
    ("FLAC", "PCM_16", "flac", 44100, False),
    ("FLAC", "PCM_24", "flac", 96000, False),
    ("OGG", "VORBIS", "ogg", 44100, True),
    ("OGG", "OPUS", "opus", 48000, True),
    ("MP3", "MPEG_LAYER_III", "mp3", 44100, True),
]


def _signal(rate: int, channels: int, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    cols = [0.4 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32)


def _write(path, fmt, subtype, rate, channels, seconds=0.5):
    data = _signal(rate, channels, seconds)
    with sf.SoundFile(path, "w", rate, channels, format=fmt, subtype=subtype) as f:
        for i in range(0, len(data), 1 << 15):
            f.write(data[i:i + (1 << 15)])
    return data


@pytest.fixture(params=["numpy", "dask"])
def backend(request):
    return request.param


@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("fmt, subtype, ext, rate, lossy", FORMATS,
                         ids=[f"{f[0]}-{f[1]}" for f in FORMATS])
def test_load_every_format(tmp_path, fmt, subtype, ext, rate, lossy, channels):
    if fmt == "MP3" and channels > 2:
        pytest.skip("MPEG layer III holds at most two channels")
    path = tmp_path / f"x.{ext}"
    original = _write(path, fmt, subtype, rate, channels)
    samples = zx.load(path)
    reference, _ = sf.read(path, dtype="float32", always_2d=True)
    assert samples.dtype == np.float32
    assert samples.zx.samplerate == zx.audio_sample_rate(rate)
    assert samples.zx.channels == channels
    assert samples.dims == (("time",) if channels == 1 else ("time", "channel"))
    assert samples.sizes["time"] == len(reference) == len(original)
    got = samples.values.reshape(len(reference), channels)
    np.testing.assert_allclose(got, reference, atol=2e-3 if fmt == "MP3" else 1e-6)
    if not lossy:
        quantum = {"PCM_U8": 2 ** -7, "ULAW": 0.03}.get(subtype, 2 ** -15)
        np.testing.assert_allclose(got, original, atol=quantum)


@pytest.mark.parametrize("kind", ["str", "path", "bytes", "bytesio", "unseekable", "meta"])
def test_load_sources(tmp_path, kind):
    path = tmp_path / "a.flac"
    original = _write(path, "FLAC", "PCM_16", 22050, 2)
    raw = path.read_bytes()

    class Unseekable(io.RawIOBase):
        def __init__(self, data):
            self._inner = io.BytesIO(data)

        def readable(self):
            return True

        def seekable(self):
            return False

        def readinto(self, b):
            return self._inner.readinto(b)

    source = {"str": str(path), "path": path, "bytes": raw, "bytesio": io.BytesIO(raw),
              "unseekable": Unseekable(raw), "meta": zx.AudioMetaData(uri=path)}[kind]
    samples = zx.load(source)
    assert samples.shape == original.shape
    np.testing.assert_allclose(samples.values, original, atol=2 ** -15)


@pytest.fixture
def http_root(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path (never the internet)."""
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_load_and_stream_from_http(http_root):
    root, url = http_root
    original = _write(root / "tone.ogg", "OGG", "VORBIS", 44100, 2)
    samples = zx.load(f"{url}/tone.ogg")
    assert samples.shape == original.shape
    np.testing.assert_allclose(samples.values, sf.read(root / "tone.ogg", dtype="float32")[0],
                               atol=1e-6)
    chunks = list(zx.stream(f"{url}/tone.ogg", chunksize=10000))
    np.testing.assert_array_equal(np.concatenate([c.values for c in chunks]), samples.values)


def test_http_errors(http_root):
    root, url = http_root
    (root / "junk.wav").write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(zx.AudioFileNotFoundError, match="404"):
        zx.load(f"{url}/missing.wav")
    with pytest.raises(zx.AudioDecodeError, match="junk.wav"):
        zx.load(f"{url}/junk.wav")
    with pytest.raises(zx.AudioDecodeError, match="127.0.0.1:1"):
        zx.load("http://127.0.0.1:1/nothing-listens-here.wav")


def test_missing_path_is_file_not_found(tmp_path):
    with pytest.raises(zx.AudioFileNotFoundError) as info:
        zx.load(tmp_path / "nope.wav")
    assert isinstance(info.value, FileNotFoundError)
    assert "nope.wav" in str(info.value)


@pytest.mark.parametrize("content", [b"", b"RIFF", b"\x00" * 1000,
                                     np.random.default_rng(0).bytes(5000)],
                         ids=["empty", "four-bytes", "zeros", "random"])
def test_undecodable_bytes_raise_decode_error(tmp_path, content):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(zx.AudioDecodeError, match="bad.wav"):
        zx.load(path)
    with pytest.raises(zx.AudioDecodeError, match="bytes in memory"):
        zx.load(content)
    with pytest.raises(zx.AudioDecodeError):
        list(zx.stream(path))


def test_truncated_wav_gives_the_frames_that_decode(tmp_path):
    path = tmp_path / "full.wav"
    original = _write(path, "WAV", "PCM_16", 8000, 1)
    data = path.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[:44 + 2 * 1000 + 1])  # header + 1000 frames + half a frame
    samples = zx.load(cut)
    assert samples.sizes["time"] == 1000
    np.testing.assert_allclose(samples.values, original[:1000, 0], atol=2 ** -15)
    (tmp_path / "head.wav").write_bytes(data[:30])
    with pytest.raises(zx.AudioDecodeError):
        zx.load(tmp_path / "head.wav")


@pytest.mark.parametrize("channels", [1, 2])
def test_zero_frames_give_empty_samples(tmp_path, channels):
    path = tmp_path / "empty.wav"
    sf.SoundFile(path, "w", 16000, channels, format="WAV", subtype="PCM_16").close()
    samples = zx.load(path)
    assert samples.sizes["time"] == 0 and samples.zx.channels == channels
    assert samples.zx.samplerate == zx.SR16000()
    chunks = list(zx.stream(path))
    assert len(chunks) == 1 and chunks[0].sizes["time"] == 0
    lazy = zx.open_audio(path)
    assert lazy.sizes["time"] == 0 and lazy.values.shape[0] == 0


def test_load_mono_and_resample(tmp_path):
    path = tmp_path / "s.wav"
    original = _write(path, "WAV", "FLOAT", 44100, 2)
    mono = zx.load(path, mono=True)
    assert mono.dims == ("time",)
    np.testing.assert_allclose(mono.values, original.mean(axis=1), atol=1e-7)
    down = zx.load(path, samplerate=zx.SR11025())
    assert down.zx.samplerate == zx.SR11025()
    assert down.sizes["time"] == -(-len(original) * 11025 // 44100)
    np.testing.assert_array_equal(down.values, zx.resample(zx.load(path), 11025).values)
    with pytest.raises(zx.ParameterError):
        zx.load(path, mono="yes")


def test_bad_source_type():
    with pytest.raises(zx.ParameterError, match="int"):
        zx.load(12)


# --------------------------------------------------------------------------- stream
@pytest.mark.parametrize(
    "chunksize, frames",
    [(np.timedelta64(1, "s"), 22050), (zx.Milliseconds(250), 5512), (7000, 7000),
     (zx.ChunkSizeBytes(zx.SR22050(), zx.Seconds(1), channels=2, bit_depth=16), 44100)])
def test_stream_offsets_and_contents(tmp_path, chunksize, frames):
    path = tmp_path / "s.flac"
    _write(path, "FLAC", "PCM_24", 22050, 1, seconds=3.3)
    whole = zx.load(path)
    chunks = list(zx.stream(path, chunksize=chunksize))
    sizes = [c.sizes["time"] for c in chunks]
    assert all(s == frames for s in sizes[:-1]) and 0 < sizes[-1] <= frames
    assert sum(sizes) == whole.sizes["time"]
    for i, chunk in enumerate(chunks):
        index = chunk.xindexes["time"]
        assert index.start == Fraction(i * frames, 22050)
        assert chunk.time.values[0] == zx.Nanoseconds(round(i * frames * 10**9 / 22050))
    np.testing.assert_array_equal(np.concatenate([c.values for c in chunks]), whole.values)
    # a chunk selects like the same span of the whole
    second = chunks[1]
    span = zx.TimeSlice(start=second.xindexes["time"].start, duration=zx.Milliseconds(10))
    np.testing.assert_array_equal(second.sel(time=span).values, whole.sel(time=span).values)


@pytest.mark.parametrize("fmt, subtype, ext, rate", [("OGG", "VORBIS", "ogg", 44100),
                                                     ("MP3", "MPEG_LAYER_III", "mp3", 44100)])
def test_stream_lossy_matches_load(tmp_path, fmt, subtype, ext, rate):
    path = tmp_path / f"s.{ext}"
    _write(path, fmt, subtype, rate, 2, seconds=2.2)
    whole = zx.load(path)
    chunks = list(zx.stream(path, chunksize=3000, mono=True))
    assert all(c.dims == ("time",) for c in chunks)
    joined = np.concatenate([c.values for c in chunks])
    # read sizes >= 65536 frames: the same decoding as load, even for MP3
    np.testing.assert_array_equal(joined, whole.zx.mono.values.astype(np.float32))


def test_stream_is_lazy_and_validates(tmp_path):
    it = zx.stream(tmp_path / "not-there.wav")  # nothing is opened yet
    with pytest.raises(zx.AudioFileNotFoundError):
        next(it)
    with pytest.raises(zx.ParameterError):
        zx.stream(tmp_path / "x.wav", chunksize="soon")
    path = tmp_path / "x.wav"
    _write(path, "WAV", "PCM_16", 8000, 1)
    with pytest.raises(zx.ParameterError):
        next(zx.stream(path, chunksize=0))
    with pytest.raises(zx.ParameterError):
        next(zx.stream(path, chunksize=zx.Microseconds(1)))


# --------------------------------------------------------------------------- open_audio
@pytest.mark.parametrize("fmt, subtype, ext, rate, channels", [
    ("WAV", "PCM_16", "wav", 8000, 1), ("FLAC", "PCM_16", "flac", 22050, 2),
    ("OGG", "VORBIS", "ogg", 44100, 2), ("WAVEX", "FLOAT", "wav", 16000, 6),
    ("MP3", "MPEG_LAYER_III", "mp3", 44100, 2)])
def test_open_audio_matches_load(tmp_path, fmt, subtype, ext, rate, channels):
    path = tmp_path / f"a.{ext}"
    _write(path, fmt, subtype, rate, channels, seconds=3.1)
    whole = zx.load(path)
    lazy = zx.open_audio(path, chunks=zx.Seconds(1))
    assert hasattr(lazy.data, "dask")
    assert lazy.dims == whole.dims and lazy.dtype == np.float32
    assert lazy.sizes == whole.sizes and lazy.zx.samplerate == whole.zx.samplerate
    assert lazy.data.chunks[0][0] == rate
    np.testing.assert_allclose(lazy.values, whole.values, atol=2e-3 if fmt == "MP3" else 0)


def test_open_audio_reads_only_touched_blocks(tmp_path, monkeypatch):
    path = tmp_path / "long.ogg"
    _write(path, "OGG", "VORBIS", 8000, 1, seconds=10)
    calls = []
    original = lazy_module._read_block

    def counting(path, start, stop, *args):
        calls.append((start, stop))
        return original(path, start, stop, *args)

    monkeypatch.setattr(lazy_module, "_read_block", counting)
    lazy = zx.open_audio(path, chunks=8000)
    assert lazy.data.numblocks == (10,) and calls == []
    part = lazy.sel(time=zx.TimeSlice(start=zx.Seconds(3.5), duration=zx.Seconds(1))).values
    assert sorted(calls) == [(24000, 32000), (32000, 40000)]
    np.testing.assert_array_equal(part, zx.load(path).values[28000:36000])


def test_open_audio_counts_frames_when_header_is_untrusted(tmp_path, monkeypatch):
    path = tmp_path / "a.mp3"
    _write(path, "MP3", "MPEG_LAYER_III", 22050, 1, seconds=1.5)
    info = decode.audio_info(path)
    assert info.counted and info.frames == zx.load(path).sizes["time"]
    wav = tmp_path / "a.wav"
    _write(wav, "WAV", "PCM_16", 22050, 1, seconds=1.5)
    assert not decode.audio_info(wav).counted


def test_open_audio_errors(tmp_path):
    with pytest.raises(zx.AudioFileNotFoundError):
        zx.open_audio(tmp_path / "none.wav")
    with pytest.raises(zx.ParameterError):
        zx.open_audio(b"RIFF....")
    with pytest.raises(zx.ParameterError):
        zx.open_audio("https://example.org/a.wav")
    path = tmp_path / "a.wav"
    _write(path, "WAV", "PCM_16", 8000, 1)
    with pytest.raises(zx.ParameterError):
        zx.open_audio(path, chunks=0)
    # a file that shrinks after opening fails loudly when computed, not with zeros
    lazy = zx.open_audio(path, chunks=1000)
    path.write_bytes(path.read_bytes()[:44 + 2 * 1500])
    with pytest.raises(zx.AudioDecodeError, match="a.wav"):
        _ = lazy.values


def test_decoded_samples_feed_transforms(tmp_path, backend):
    path = tmp_path / "a.wav"
    _write(path, "WAV", "PCM_16", 44100, 2, seconds=1)
    samples = zx.open_audio(path, chunks=10000) if backend == "dask" else zx.load(path)
    out = zx.resample(samples, zx.SR11025())
    assert hasattr(out.data, "dask") == (backend == "dask")
    np.testing.assert_allclose(out.values, zx.resample(zx.load(path), 11025).values, atol=1e-6)


# --------------------------------------------------------------------------- corpus
@pytest.mark.skipif(not (CORPUS / "MANIFEST.tsv").exists(), reason="shared/corpus is absent")
def test_corpus_mp3_stream_and_lazy_agree():
    path = CORPUS / "derived" / "lomiri_Koto_chords_44k.mp3"
    whole = zx.load(path)
    assert whole.sizes["time"] == 617400
    joined = np.concatenate([c.values for c in zx.stream(path, chunksize=zx.Seconds(4))])
    np.testing.assert_array_equal(joined, whole.values)
    lazy = zx.open_audio(path, chunks=zx.Seconds(5))
    np.testing.assert_allclose(lazy.values, whole.values, atol=2e-3)


# --------------------------------------------------------------------------- hostile headers
def _flac_streaminfo(data: bytes, frames=None, rate=None) -> bytes:
    # bytes 18..26 of a FLAC file pack STREAMINFO's 20-bit rate, 3-bit channels,
    # 5-bit sample size and 36-bit frame count
    b = bytearray(data)
    bits = int.from_bytes(b[18:26], "big")
    r, rest = bits >> 44, bits & ((1 << 44) - 1)
    r = r if rate is None else rate
    rest = rest if frames is None else (rest & ~((1 << 36) - 1)) | frames
    b[18:26] = ((r << 44) | rest).to_bytes(8, "big")
    return bytes(b)


def _every_path(path, chunk=1000):
    """What load, stream (two sizes) and open_audio (two block sizes) give for ``path``."""
    paths = {
        "load": lambda: zx.load(path).values,
        "stream": lambda: np.concatenate([c.values for c in zx.stream(path)]),
        "stream-small": lambda: np.concatenate([c.values for c in zx.stream(path, chunk)]),
        "open_audio": lambda: zx.open_audio(path).values,
        "open_audio-small": lambda: zx.open_audio(path, chunks=chunk).values,
    }
    out = {}
    for label, fn in paths.items():
        try:
            out[label] = fn()
        except zx.ZoundsError as exc:
            out[label] = exc
    return out


def test_rate_field_beyond_any_format_is_refused_and_named(tmp_path):
    path = tmp_path / "a.wav"
    _write(path, "WAV", "PCM_16", 8000, 1, seconds=0.01)
    data = bytearray(path.read_bytes())
    data[24:28] = (10 ** 9).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    for label, got in _every_path(path).items():
        assert isinstance(got, zx.AudioDecodeError) and "sample rate" in str(got), label


def test_high_rate_header_does_not_size_the_stream_buffer(tmp_path):
    import tracemalloc

    path = tmp_path / "a.wav"
    _write(path, "WAV", "PCM_16", 8000, 1, seconds=0.01)
    data = bytearray(path.read_bytes()[:64])
    data[24:28] = (10 ** 7).to_bytes(4, "little")  # 10 MHz: allowed, but 30 s of it is 1.2 GB
    path.write_bytes(bytes(data))
    tracemalloc.start()
    try:
        chunks = list(zx.stream(path))
        lazy = zx.open_audio(path).values
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20e6
    assert sum(c.sizes["time"] for c in chunks) == len(lazy) == 10


def test_flac_frame_count_its_size_cannot_hold_is_refused_eagerly(tmp_path):
    path = tmp_path / "a.flac"
    _write(path, "FLAC", "PCM_16", 16000, 1, seconds=1)
    path.write_bytes(_flac_streaminfo(path.read_bytes(), frames=2 ** 35))
    with pytest.raises(zx.AudioDecodeError, match="frame count is 34359738368"):
        zx.open_audio(path, chunks=zx.Seconds(1))  # no 34-billion-frame graph
    for label, got in _every_path(path).items():
        assert isinstance(got, zx.AudioDecodeError) and "frame count" in str(got), label


def test_flac_header_over_count_gives_one_error_on_every_path(tmp_path):
    path = tmp_path / "a.flac"
    _write(path, "FLAC", "PCM_16", 16000, 1, seconds=1)
    path.write_bytes(_flac_streaminfo(path.read_bytes(), frames=3 * 16000))
    results = _every_path(path)
    messages = {str(got) for got in results.values()}
    assert all(isinstance(got, zx.AudioDecodeError) for got in results.values()), results
    assert messages == {f"cannot decode {path}: decoding stopped at frame 16000 of the 48000 "
                        f"its header announces (the file is truncated or damaged); a partial "
                        f"decode is not returned"}


def test_flac_whose_first_read_fails_is_an_error_not_empty(tmp_path):
    path = tmp_path / "a.flac"
    _write(path, "FLAC", "PCM_16", 16000, 1, seconds=1)
    data = path.read_bytes()
    first = data.find(b"\xff\xf8", 42)  # the first frame's sync code
    path.write_bytes(data[:first + 20])
    for label, got in _every_path(path).items():
        assert isinstance(got, zx.AudioDecodeError), (label, got)
        assert "frame" in str(got) and "lost sync" in str(got), (label, got)


def test_tiny_rate_gives_a_clear_error_not_a_huge_graph(tmp_path):
    path = tmp_path / "a.flac"
    _write(path, "FLAC", "PCM_16", 16000, 1, seconds=1)
    path.write_bytes(_flac_streaminfo(path.read_bytes(), rate=1))
    with pytest.raises(zx.ParameterError, match="16000 blocks.*at least 2 frames"):
        zx.open_audio(path, chunks=zx.Seconds(1))
    lazy = zx.open_audio(path)  # 60-frame blocks at 1 Hz: 267 of them
    assert lazy.data.numblocks == (267,)
    np.testing.assert_array_equal(lazy.values, zx.load(path).values)


def test_damaged_ogg_page_gives_one_error_on_every_path(tmp_path):
    path = tmp_path / "a.ogg"
    _write(path, "OGG", "VORBIS", 22050, 2, seconds=3)
    data = bytearray(path.read_bytes())
    pages = [i for i in range(len(data)) if data[i:i + 4] == b"OggS"]
    middle = pages[len(pages) // 2]
    data[middle + 200:middle + 208] = data[middle + 192:middle + 200]  # 8 bytes duplicated
    path.write_bytes(bytes(data))
    results = _every_path(path)
    assert all(isinstance(got, zx.AudioDecodeError) for got in results.values()), results
    assert len({str(got) for got in results.values()}) == 1
    assert "damaged Ogg stream" in str(results["load"])


@pytest.mark.skipif(not (CORPUS / "MANIFEST.tsv").exists(), reason="shared/corpus is absent")
def test_corpus_ogg_with_a_damaged_page_fails_on_every_path(tmp_path):
    # the case: load and stream used to drop 5120 frames silently
    data = bytearray((CORPUS / "music" / "lomiri_Koto_chords_44k.ogg").read_bytes())
    at = data.find(b"OggS", len(data) // 2)
    data[at + 200:at + 208] = data[at + 192:at + 200]
    path = tmp_path / "koto.ogg"
    path.write_bytes(bytes(data))
    results = _every_path(path, chunk=44100)
    assert all(isinstance(got, zx.AudioDecodeError) for got in results.values()), results
    assert "612280 of the 617400" in str(results["load"])


@pytest.mark.slow
@pytest.mark.skipif(not (CORPUS / "MANIFEST.tsv").exists(), reason="shared/corpus is absent")
def test_corpus_every_file_gives_one_answer_on_every_path():
    import csv

    with open(CORPUS / "MANIFEST.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for row in rows:
        path = CORPUS / row["path"]
        results = _every_path(path, chunk=max(1000, int(row["sr"]) if row["sr"] != "-" else 0))
        if row["format"] == "UNREADABLE":
            assert all(isinstance(g, zx.AudioDecodeError) for g in results.values()), row["path"]
            continue
        whole = results["load"]
        assert isinstance(whole, np.ndarray), (row["path"], whole)
        assert len(whole) == int(row["frames_decoded"]), row["path"]
        for label, got in results.items():
            assert isinstance(got, np.ndarray), (row["path"], label, got)
            assert got.shape == whole.shape, (row["path"], label)
            atol = 2e-3 if row["format"].startswith("MP3") and "open" in label else 0
            np.testing.assert_allclose(got, whole, atol=atol, err_msg=f"{row['path']} {label}")


@pytest.mark.parametrize("fmt,subtype,ext,rate,lossy", FORMATS)
def test_read_pcm_is_the_checked_readers_decode_or_declines(tmp_path, fmt, subtype, ext, rate,
                                                          lossy):
    # the one-read fast path of short clips: the same samples as the checked reader's
    # blocks, or None (the reader then decodes it, with its checks and errors)
    from zounds_xr.io.reader import open_reader, read_pcm

    path = str(tmp_path / f"x.{ext}")
    channels = 1 if fmt == "MP3" else 2
    data = np.random.default_rng(0).uniform(-0.8, 0.8, (rate // 2, channels))
    sf.write(path, data, rate, format=fmt, subtype=subtype)
    got = read_pcm(path, lambda r, c: 1 << 30)
    pcm = subtype.startswith("PCM") or subtype in ("ULAW", "ALAW")
    assert (got is not None) == (pcm and not lossy)
    if got is None:
        return
    with open_reader(path) as reader:
        expected = np.concatenate(list(reader.blocks()))
        assert got[1] == reader.rate
    assert got[0].dtype == np.float32
    np.testing.assert_array_equal(got[0], expected)
    assert read_pcm(path, lambda r, c: rate // 2 - 1) is None  # longer than a chunk


def test_read_pcm_declines_what_the_reader_must_judge(tmp_path):
    from zounds_xr.io.reader import read_pcm

    path = tmp_path / "x.wav"
    sf.write(path, np.zeros(1000), 8000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(path.read_bytes()[:-500])  # the header announces more than is there
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), 8000, subtype="PCM_16")
    for target in (tmp_path / "missing.wav", tmp_path, empty):
        assert read_pcm(str(target), lambda r, c: 1 << 30) is None
    got = read_pcm(str(cut), lambda r, c: 1 << 30)
    # libsndfile reports a short WAV with the frames its size holds: those, as the reader
    assert got is None or np.array_equal(got[0], zx.load(str(cut)).values[:, None])
    samples = list(decode.stream(str(cut)))
    assert sum(s.sizes["time"] for s in samples) == zx.load(str(cut)).sizes["time"]


@pytest.mark.parametrize("channels", [1, 3])
def test_pcm16_read_as_shorts_is_libsndfiles_float_decode(tmp_path, channels):
    # 16-bit PCM is read as shorts and scaled in numpy: every value, on every path (whole,
    # chunks decoded in place at odd sizes, a seek, lazy blocks), is libsndfile's float
    from zounds_xr.io.decode import stream_arrays

    path = str(tmp_path / "all.wav")
    every = np.arange(-2 ** 15, 2 ** 15, dtype=np.int16)
    pcm = np.stack([np.roll(every, 7919 * c) for c in range(channels)], axis=1)
    pcm = np.concatenate([pcm, pcm, pcm[:4465]])  # 135,537 frames: over two read blocks
    sf.write(path, pcm, 8000, subtype="PCM_16")
    expected, _ = sf.read(path, dtype="float32", always_2d=True)  # libsndfile's floats
    np.testing.assert_array_equal(expected, pcm.astype(np.float32) / 2 ** 15)  # the scale
    np.testing.assert_array_equal(zx.load(path).values.reshape(expected.shape), expected)
    for chunk, start in ((1 << 30, 0), (65537, 0), (30000, 12345), (1000, 135000)):
        got = np.concatenate([d.reshape(len(d), -1) for d, _, _ in
                              stream_arrays(path, chunk, start=start)])
        np.testing.assert_array_equal(got, expected[start:], err_msg=f"{chunk} {start}")
    lazy = zx.open_audio(path, chunks=40000).values.reshape(expected.shape)
    np.testing.assert_array_equal(lazy, expected)
