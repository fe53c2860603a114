"""sliding_window: frame counts, values, labels, multi-channel and feature input, laziness."""
import math
from fractions import Fraction

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

import zounds_xr as zx
from zounds_xr.spectral.sliding import (
    frame_apply,
    frame_layout,
    map_frame_blocks,
    n_frames_for,
)

SR = zx.SR11025()


@pytest.fixture(params=["numpy", "dask"])
def backend(request):
    return request.param


def _as(backend, x, chunk=1000):
    return x.chunk({"time": chunk}) if backend == "dask" else x


def _audio(n, channels=None, start=0, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n,) if channels is None else (n, channels)
    return zx.AudioSamples(rng.normal(size=shape).astype(dtype), SR, start=start)


def _naive_frames(signal, hop, win, padwith=0.0):
    n = len(signal)
    nf = 0 if n == 0 else 1 + math.ceil(max(n - win, 0) / hop)
    padded = np.concatenate([signal, np.full(max(0, (nf - 1) * hop + win - n), padwith)])
    return np.stack([padded[i * hop:i * hop + win] for i in range(nf)]) if nf else \
        np.empty((0, win))


def test_seed_example_shape_and_labels(backend):
    audio = _as(backend, zx.AudioSamples(np.zeros(55125), SR), chunk=8192)
    scheme = zx.SampleRate(zx.Milliseconds(250), zx.Milliseconds(500))
    windowed = zx.sliding_window(audio, scheme, zx.OggVorbisWindowingFunc())
    assert windowed.dims == ("time", "window")
    assert windowed.shape == (19, 5513)
    outer = windowed.xindexes["time"]
    inner = windowed.xindexes["window"]
    assert outer.frequency == Fraction(2757, 11025)
    assert outer.duration == Fraction(5513, 11025)
    assert outer.start == 0
    assert inner.frequency == inner.duration == Fraction(1, 11025)
    assert inner.size == 5513
    dims = windowed.zx.dimensions
    assert dims[1].samplerate == SR


@pytest.mark.parametrize("n, hop, win", [
    (1000, 256, 512), (1001, 256, 512), (512, 256, 512), (300, 256, 512), (1, 3, 7),
    (100, 10, 10), (100, 7, 3), (2000, 1, 4)])
def test_every_sample_is_in_a_frame_and_values_match(backend, n, hop, win):
    audio = _as(backend, _audio(n), chunk=97)
    scheme = SR * (hop, win)
    windowed = zx.sliding_window(audio, scheme, padwith=0.5)
    expected = _naive_frames(audio.values, hop, win, padwith=0.5)
    assert windowed.sizes["time"] == n_frames_for(n, hop, win) == len(expected)
    assert windowed.sizes["time"] == 1 + math.ceil(max(n - win, 0) / hop)
    np.testing.assert_array_equal(windowed.values, expected)
    last_start = (windowed.sizes["time"] - 1) * hop
    assert last_start + win >= n  # the last sample is inside the last frame


def test_window_function_multiplies_every_frame(backend):
    audio = _as(backend, _audio(3000))
    wf = zx.HanningWindowingFunc(periodic=True)
    windowed = zx.sliding_window(audio, SR * (128, 256), wf)
    expected = _naive_frames(audio.values, 128, 256) * wf(256)
    np.testing.assert_allclose(windowed.values, expected, rtol=0, atol=1e-15)


def test_scheme_rounds_up_to_whole_samples():
    audio = _audio(4000)
    # 10 ms at 11025 Hz is 110.25 samples -> 111; 25 ms is 275.625 -> 276
    windowed = zx.sliding_window(audio, zx.SampleRate(zx.Milliseconds(10), zx.Milliseconds(25)))
    index = windowed.xindexes["time"]
    assert index.frequency == Fraction(111, 11025)
    assert windowed.sizes["window"] == 276
    # HalfLapped (1024/2048 at 44.1 kHz) is exactly 256/512 samples at 11025 Hz
    windowed = zx.sliding_window(audio, zx.HalfLapped())
    assert windowed.sizes["window"] == 512
    assert windowed.xindexes["time"].frequency == Fraction(256, 11025)


def test_start_is_kept(backend):
    start = Fraction(3, 2)
    audio = _as(backend, _audio(2000, start=start))
    windowed = zx.sliding_window(audio, SR * (100, 200))
    assert windowed.xindexes["time"].start == start
    assert windowed.xindexes["window"].start == 0
    np.testing.assert_array_equal(windowed.time.values[:2],
                                  np.array([1_500_000_000, 1_509_070_295], "timedelta64[ns]"))


def test_dtypes(backend):
    f32 = zx.sliding_window(_as(backend, _audio(1000, dtype=np.float32)), SR * (64, 128),
                            zx.OggVorbisWindowingFunc())
    assert f32.dtype == np.float32
    ints = zx.AudioSamples(np.arange(1000, dtype=np.int16), SR)
    out = zx.sliding_window(_as(backend, ints), SR * (64, 128))
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out.values[1], np.arange(64, 192))


def test_multichannel_keeps_channel(backend):
    audio = _as(backend, _audio(2500, channels=3))
    windowed = zx.sliding_window(audio, SR * (256, 512), zx.OggVorbisWindowingFunc())
    assert windowed.dims == ("time", "window", "channel")
    assert windowed.shape == (9, 512, 3)
    w = zx.OggVorbisWindowingFunc()(512)
    for c in range(3):
        expected = _naive_frames(audio.values[:, c], 256, 512) * w
        np.testing.assert_allclose(windowed.values[:, :, c], expected, atol=1e-15)


def test_windows_over_feature_frames(backend):
    spec = zx.stft(_audio(11025), magnitude=True)  # (time, frequency) at a 256-sample hop
    spec = _as(backend, spec, chunk=7)
    frame = spec.xindexes["time"]
    scheme = zx.SampleRate(frame.frequency * 4, frame.frequency * 8)
    windowed = zx.sliding_window(spec, scheme)
    assert windowed.dims == ("time", "window", "frequency")
    assert windowed.shape == (1 + math.ceil((spec.sizes["time"] - 8) / 4), 8, 257)
    inner = windowed.xindexes["window"]
    assert inner.frequency == frame.frequency and inner.duration == frame.duration
    outer = windowed.xindexes["time"]
    assert outer.frequency == 4 * frame.frequency
    assert outer.duration == 7 * frame.frequency + frame.duration
    assert windowed.xindexes["frequency"].equals(spec.xindexes["frequency"])
    np.testing.assert_array_equal(windowed.values[1], spec.values[4:12])


def test_empty_input_gives_no_frames(backend):
    audio = _as(backend, zx.AudioSamples(np.zeros(0), SR))
    windowed = zx.sliding_window(audio, SR * (4, 8))
    assert windowed.shape == (0, 8)


def test_dask_output_is_lazy_and_chunked_along_time_only():
    calls = []

    def record(block):
        calls.append(block.shape)
        return block

    base = da.random.default_rng(0).normal(size=20000, chunks=1000)
    audio = zx.AudioSamples(base.map_blocks(record, meta=np.array((), base.dtype)), SR)
    windowed = zx.sliding_window(audio, SR * (256, 512), zx.OggVorbisWindowingFunc())
    assert isinstance(windowed.data, da.Array)
    assert not calls  # building the graph computed nothing
    assert len(windowed.chunks[0]) > 1
    assert windowed.chunks[1] == (512,)
    eager = zx.sliding_window(audio.compute(), SR * (256, 512), zx.OggVorbisWindowingFunc())
    np.testing.assert_array_equal(windowed.values, eager.values)


def test_each_output_block_reads_only_its_input_span():
    n, chunk, hop, win = 50_000, 2_000, 300, 1_000
    x = da.arange(n, chunks=chunk, dtype=np.float64)
    audio = zx.AudioSamples(x, SR)
    layout = frame_layout(audio, SR * (hop, win))
    def block_fn(segment, out):
        # one row per frame: its first and last sample
        frames = (len(segment) - win) // hop + 1
        assert out.shape == (frames, 2)
        out[:, 0] = segment[:len(segment) - win + 1:hop]
        out[:, 1] = segment[win - 1::hop]

    out = map_frame_blocks(x, layout, block_fn, (2,), np.float64, frames_per_block=10,
                           padwith=-1)
    graph = dict(out.__dask_graph__())
    starts = np.cumsum((0,) + out.chunks[0])
    for b in range(len(out.chunks[0])):
        task = graph[(out.name, b, 0)]
        deps = {dep[1] for dep in _keys_in(task, x.name)}
        s0 = int(starts[b]) * hop
        s1 = min(n, int(starts[b + 1] - 1) * hop + win)
        expected = set(range(s0 // chunk, -(-s1 // chunk)))
        assert deps == expected
    values = out.compute()
    first = np.arange(layout.n_frames) * hop
    last = first + win - 1
    np.testing.assert_array_equal(values[:, 0], first)
    np.testing.assert_array_equal(values[:, 1], np.where(last < n, last, -1))


def _keys_in(task, name):
    """Input-chunk keys referenced by a (legacy tuple or Task) graph node."""
    found = []

    def walk(node):
        if isinstance(node, tuple) and node and node[0] == name:
            found.append(node)
        elif isinstance(node, (tuple, list)):
            for item in node:
                walk(item)
        elif hasattr(node, "dependencies"):
            found.extend(k for k in node.dependencies if isinstance(k, tuple) and k[0] == name)

    walk(task)
    return found


def test_dask_threaded_matches_numpy():
    audio = _audio(30000, dtype=np.float32)
    lazy = zx.sliding_window(audio.chunk({"time": 4096}), zx.HalfLapped(),
                             zx.HanningWindowingFunc())
    with dask.config.set(scheduler="threads"):
        values = lazy.values
    np.testing.assert_array_equal(values, zx.sliding_window(audio, zx.HalfLapped(),
                                                            zx.HanningWindowingFunc()).values)


@pytest.mark.parametrize("bad", [
    lambda: zx.sliding_window(xr.DataArray(np.zeros(10), dims="time"), SR * (2, 4)),
    lambda: zx.sliding_window(np.zeros(10), SR * (2, 4)),
    lambda: zx.sliding_window(_audio(100), (2, 4)),
    lambda: zx.sliding_window(zx.sliding_window(_audio(100), SR * (2, 4))
                              .isel(window=0).expand_dims(window=1, axis=1), SR * (2, 4)),
    lambda: zx.sliding_window(_audio(100), SR * (2, 4), wfunc="hann"),
])
def test_errors(bad):
    with pytest.raises(zx.ParameterError):
        bad()


@pytest.mark.parametrize("sizes, offset, hop, win", [
    ([10, 0, 7, 30, 1, 1, 50], 0, 3, 8),
    ([5, 5, 5, 5], 2, 4, 4),
    ([100], 13, 7, 20),
    ([3, 4, 0, 2], 1, 1, 9),
    ([40, 40], 0, 9, 5),
])
def test_frame_apply_stitches_pieces(sizes, offset, hop, win):
    signal = np.arange(sum(sizes), dtype=np.float64)
    pieces = np.split(signal, np.cumsum(sizes)[:-1])
    n_frames = n_frames_for(len(signal) - offset, hop, win)
    framer = zx.spectral.sliding._Framer(hop, win, None, np.float64)
    out = np.full((n_frames, win), np.nan)
    frame_apply(pieces, offset, n_frames, hop, win, -1.0, framer, out)
    np.testing.assert_array_equal(out, _naive_frames(signal[offset:], hop, win, padwith=-1.0))


def test_output_blocks_respect_dask_chunk_size():
    audio = zx.AudioSamples(da.zeros(200_000, chunks=100_000), SR)
    with dask.config.set({"array.chunk-size": "1MiB"}):
        windowed = zx.sliding_window(audio, SR * (1, 1024))
    assert max(windowed.chunks[0]) * 1024 * 8 <= 2**20
    assert windowed.chunks[1] == (1024,)
