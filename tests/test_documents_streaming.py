"""The streaming model: chunked processing equals processing the whole signal."""
import numpy as np
import pytest
import xarray as xr

import zounds_xr as zx
from zounds_xr.documents.feature import Feature
from zounds_xr.documents.streaming import AlignNode, Pipeline, WindowNode, make_node

from _documents_helpers import tone


def _chunks(samples, sizes):
    out, start = [], 0
    for size in sizes:
        out.append(samples.isel(time=slice(start, start + size)))
        start += size
    if start < samples.sizes["time"]:
        out.append(samples.isel(time=slice(start, None)))
    return out


def _run_node(node, chunks):
    outs = []
    for c in chunks:
        outs.extend(node.push(0, c))
    outs.extend(node.flush())
    outs = [o for o in outs if o.sizes["time"]]
    return xr.concat(outs, dim="time", coords="minimal", compat="override") if outs else None


@pytest.mark.parametrize("n", [0, 1, 319, 320, 480, 640, 1000, 4321])
@pytest.mark.parametrize("sizes", [[7] * 1000, [160] * 50, [333, 1, 1, 500, 2], [10_000]])
def test_window_node_frames_equal_one_piece(n, sizes):
    # hop 160, window 320 at 8 kHz; covers n = window, n = window + hop, ragged chunks
    samples = zx.AudioSamples(tone(1, 8000)[:n], zx.SR8000())
    scheme = zx.SampleRate(zx.Milliseconds(20), zx.Milliseconds(40))
    node = WindowNode("w", zx.sliding_window, {"wscheme": scheme,
                                               "wfunc": zx.HanningWindowingFunc()})
    got = _run_node(node, _chunks(samples, sizes))
    expected = zx.sliding_window(samples, scheme, zx.HanningWindowingFunc())
    if expected.sizes["time"] == 0:
        assert got is None
        return
    assert got.sizes["time"] == expected.sizes["time"]
    np.testing.assert_array_equal(got.values, expected.values)
    assert got.xindexes["time"].equals(expected.xindexes["time"])


def test_stateful_resample_and_fft_stream_equal_one_piece():
    samples = zx.AudioSamples(tone(3, 44100), zx.SR44100())
    resampled = Feature(zx.resample, needs=zx.Document.audio, samplerate=zx.SR11025())
    windowed = Feature(zx.sliding_window, needs=resampled, wscheme=zx.HalfLapped(),
                       wfunc=zx.OggVorbisWindowingFunc())
    spec = Feature(zx.fft, needs=windowed)
    nodes = {"r": make_node("r", resampled), "w": make_node("w", windowed),
             "f": make_node("f", spec)}
    got = []
    pipeline = Pipeline(nodes, {"r": ("audio",), "w": ("r",), "f": ("w",)},
                        {"f": got.append})
    pipeline.run({"audio": _chunks(samples, [12345, 999, 30000, 4410])})
    got = xr.concat([g for g in got if g.sizes["time"]], dim="time", coords="minimal",
                    compat="override")
    expected = zx.fft(zx.sliding_window(zx.resample(samples, zx.SR11025()), zx.HalfLapped(),
                                        zx.OggVorbisWindowingFunc()))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.values, expected.values, rtol=0, atol=1e-4)


def test_align_node_calls_function_on_common_span():
    a = zx.AudioSamples(np.arange(100, dtype="f4"), zx.SR8000())
    b = zx.AudioSamples(np.ones(100, dtype="f4"), zx.SR8000())
    node = AlignNode("sum", lambda x, y: x + y, {}, 2)
    outs = node.push(0, a.isel(time=slice(0, 60)))
    outs += node.push(1, b.isel(time=slice(0, 30)))
    outs += node.push(1, b.isel(time=slice(30, 100)))
    outs += node.push(0, a.isel(time=slice(60, 100)))
    got = np.concatenate([o.values for o in outs])
    np.testing.assert_array_equal(got, np.arange(100) + 1)


def test_align_node_rejects_different_rates():
    a = zx.AudioSamples(np.zeros(10, "f4"), zx.SR8000())
    b = zx.AudioSamples(np.zeros(10, "f4"), zx.SR16000())
    node = AlignNode("sum", lambda x, y: x + y, {}, 2)
    node.push(0, a)
    with pytest.raises(zx.StoreError, match="different time rates"):
        node.push(1, b)


def test_stft_relying_on_its_default_wscheme_streams_like_one_piece(tmp_path):
    # the bug of issue 13: stft without wscheme= was taken for frame-local
    from _documents_helpers import write_wav

    @zx.zarr_settings(tmp_path / "f.zarr")
    class Sound(zx.Document):
        resampled = zx.Feature(zx.resample, needs=zx.Document.audio,
                               samplerate=zx.SR11025(), store=True)
        spec = zx.Feature(zx.stft, needs=resampled, magnitude=True, store=True)

    wav = write_wav(tmp_path / "a.wav", 3.3, samplerate=22050)
    doc_id = Sound.process(meta=wav, chunksize=zx.Seconds(1))
    expected = zx.stft(zx.resample(zx.load(wav), zx.SR11025()), magnitude=True)
    got = Sound(doc_id).spec
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.values, expected.values, rtol=1e-4, atol=1e-4)
    assert got.xindexes["time"].equals(expected.xindexes["time"])


def test_default_parameters_are_part_of_the_version():
    plain = Feature(zx.stft, needs=zx.Document.audio)
    explicit = Feature(zx.stft, needs=zx.Document.audio, wscheme=None, magnitude=False)
    assert plain.identity() == explicit.identity()
    params = plain.identity()["params"]
    assert {"wscheme", "wfunc", "magnitude"} <= set(params)
    assert Feature(zx.stft, needs=zx.Document.audio, magnitude=True).identity() != \
        plain.identity()


def test_undeclared_framing_function_is_refused_and_a_declared_one_streams():
    samples = zx.AudioSamples(tone(1, 8000), zx.SR8000())
    scheme = zx.SampleRate(zx.Milliseconds(20), zx.Milliseconds(40))

    def frames(x, wscheme=scheme):  # frames its input, but says nothing
        return zx.sliding_window(x, wscheme)

    node = make_node("f", Feature(frames, needs=zx.Document.audio))
    with pytest.raises(zx.StoreError, match="not frame-local"):
        node.push(0, samples.isel(time=slice(0, 1000)))

    declared = zx.framing("wscheme", default=lambda index: scheme)(
        lambda x, wscheme=None: zx.sliding_window(x, wscheme or scheme))
    assert zx.streaming_of(declared).kind == "framing"
    node = make_node("f", Feature(declared, needs=zx.Document.audio))
    assert isinstance(node, WindowNode)
    got = _run_node(node, _chunks(samples, [333, 1000, 7]))
    expected = zx.sliding_window(samples, scheme)
    np.testing.assert_array_equal(got.values, expected.values)


def test_mel_spectrogram_of_audio_frames_and_of_a_spectrum_is_frame_local():
    samples = zx.AudioSamples(tone(2, 8000), zx.SR8000())
    of_audio = make_node("m", Feature(zx.mel_spectrogram, needs=zx.Document.audio,
                                      n_mels=16))
    got = _run_node(of_audio, _chunks(samples, [3001, 77, 5000]))
    expected = zx.mel_spectrogram(samples, n_mels=16)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.values, expected.values, rtol=1e-4, atol=1e-6)
    spec = zx.stft(samples, magnitude=True)
    of_spec = make_node("m", Feature(zx.mel_spectrogram, needs=zx.Document.audio,
                                     n_mels=16))
    got = _run_node(of_spec, _chunks(spec, [10, 3, 50]))
    np.testing.assert_allclose(got.values, zx.mel_spectrogram(spec, n_mels=16).values,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("channels", [None, ["l", "r"]])
def test_a_windows_carry_joins_the_next_chunk_as_xarray_concat_does(channels):
    # the carry-over is joined to the next chunk without xr.concat's alignment: the
    # same values, labels and attrs; pieces that are not contiguous are refused alike
    from zounds_xr.documents.streaming import _concat

    raw = np.random.default_rng(0).standard_normal((1000, 2)).astype("f4")
    audio = zx.AudioSamples(raw, zx.SR8000())
    if channels:
        audio = audio.assign_coords(channel=channels, gain=("channel", [1.0, 0.5]))
    audio.attrs["note"] = "kept"
    pieces = [audio.isel(time=slice(0, 300)), audio.isel(time=slice(300, 310)),
              audio.isel(time=slice(310, None))]
    expected = xr.concat(pieces, dim="time", coords="minimal", compat="override",
                         join="override", combine_attrs="override")
    out = _concat(pieces)
    xr.testing.assert_identical(out, expected)
    xr.testing.assert_identical(out, audio)
    assert isinstance(out.xindexes["time"], zx.TimeIndex)
    with pytest.raises(zx.ParameterError, match="contiguous"):
        _concat([pieces[0], pieces[2]])
