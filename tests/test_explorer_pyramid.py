"""Pyramids of long features (``zounds_xr.documents.pyramid``) and the explorer reading
them: every level equals the summary computed from the frames, a stale or half-written
pyramid is never used, a damaged one is a StoreError, and a picture of any span reads
the level that matches its pixels (pooled as ``reduceat`` would)."""
import json
import pathlib

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

import zounds_xr as zx
from zounds_xr.app.cli import main
import zounds_xr.documents.pyramid as pyramid_module
from zounds_xr.documents.pyramid import (
    PYRAMID,
    build_pyramid,
    build_pyramids,
    long_documents,
    open_pyramid,
    pyramid_path,
)
from zounds_xr.core.errors import StoreError
from zounds_xr.explorer import Explorer
from zounds_xr.explorer.render import _pool, image_of

RATE = 1000
SCHEME = zx.SampleRate(zx.Milliseconds(32), zx.Milliseconds(64))  # 32 / 64 samples


def gain(x, factor):
    return x * factor


def _graph(root, factor=1.0):
    @zx.zarr_settings(str(root))
    class Long(zx.Document):
        wave = zx.Feature(gain, needs=zx.Document.audio, factor=factor, store=True)
        spectrum = zx.Feature(zx.stft, needs=wave, wscheme=SCHEME)
        magnitude = zx.Feature(np.abs, needs=spectrum, store=True)

    return Long


def _signal(seconds, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    sweep = np.sin(2 * np.pi * (20 + 200 * t / t[-1]) * t) * (1 + np.sin(2 * np.pi * t / 30))
    return (0.4 * sweep + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def long_store(tmp_path_factory):
    """Documents of 10 s (too short for a pyramid of 64 KiB), 400.3 s and 1 h."""
    base = tmp_path_factory.mktemp("pyramid")
    doc = _graph(base / "store")
    ids = {}
    for name, seconds in (("short", 10.0), ("mid", 400.3), ("hour", 3600.0)):
        path = base / f"{name}.wav"
        sf.write(path, _signal(seconds, len(name)), RATE, subtype="FLOAT")
        ids[name] = doc.process(meta=str(path))
    return base / "store", ids


def _expected(frames: np.ndarray, k: int, stat: str) -> np.ndarray:
    n = frames.shape[0]
    groups = [frames[i:i + (1 << k)] for i in range(0, n, 1 << k)]
    reduce = {"max": np.max, "min": np.min, "mean": np.mean}[stat]
    return np.stack([reduce(g.astype(np.float64), axis=0) for g in groups])


def test_every_level_is_the_summary_of_its_frames(long_store):
    root, ids = long_store
    store = zx.open_store(str(root))
    # bytes of float32 frames: wave 4 a frame, magnitude 33 x 4
    assert {(d, f) for d, f, _ in long_documents(store, min_bytes=2 ** 16)} == {
        (ids["mid"], "wave"), (ids["hour"], "wave"), (ids["mid"], "magnitude"),
        (ids["hour"], "magnitude")}
    assert {(d, f) for d, f, _ in long_documents(store, min_bytes=2 ** 22)} == {
        (ids["hour"], "wave"), (ids["hour"], "magnitude")}
    seen = []
    built = build_pyramids(store, min_bytes=2 ** 16, progress=lambda d, t: seen.append((d, t)))
    assert len(built) == 4 and seen[-1][0] == seen[-1][1]
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False))  # monotone
    assert open_pyramid(store, ids["short"], "wave") is None
    for doc_id, feature in [(ids["mid"], "wave"), (ids["hour"], "magnitude")]:
        pyramid = open_pyramid(store, doc_id, feature)
        assert pyramid is not None
        frames = np.asarray(store[doc_id][feature].transpose("time", ...).values,
                            dtype=np.float64)
        assert pyramid.frames == frames.shape[0]
        # the top level is small, levels are consecutive
        assert -(-frames.shape[0] // (1 << pyramid.levels[-1])) <= 256
        assert list(pyramid.levels) == list(range(pyramid.levels[0], pyramid.levels[-1] + 1))
        for level in pyramid.levels:
            for stat in pyramid.stats:
                rows, f0, f1 = pyramid.read(stat, level, 0, frames.shape[0])
                assert (f0, f1) == (0, frames.shape[0])
                np.testing.assert_allclose(rows, _expected(frames, level, stat), rtol=1e-5,
                                           atol=1e-6, err_msg=f"{feature} {stat} {level}")
        # a part of a level covers whole groups around the frames asked for
        level = pyramid.levels[1]
        rows, f0, f1 = pyramid.read("max", level, 1000, 5001)
        assert f0 == 1000 >> level << level and f1 >= 5001 and f1 - f0 == rows.shape[0] << level


def test_rebuilding_a_current_pyramid_writes_nothing(long_store):
    root, ids = long_store
    store = zx.open_store(str(root))
    path = root / pyramid_path("wave", ids["mid"])
    build_pyramid(store, ids["mid"], "wave")
    before = {p: p.stat().st_mtime_ns for p in path.rglob("*") if p.is_file()}
    build_pyramid(store, ids["mid"], "wave")
    assert {p: p.stat().st_mtime_ns for p in path.rglob("*") if p.is_file()} == before


def test_whole_hour_picture_reads_the_matching_level(long_store, monkeypatch):
    root, ids = long_store
    store = zx.open_store(str(root))
    build_pyramid(store, ids["hour"], "magnitude")
    explorer = Explorer(store)
    doc = ids["hour"]
    monkeypatch.setattr("zounds_xr.explorer.model.MIN_BYTES", 1 << 20)
    flags = {f["name"]: f.get("pyramid") for f in explorer.document(doc)["features"]}
    assert flags["magnitude"] is True  # the page says when a long feature has none
    assert all("pyramid" not in f for f in explorer.document(ids["short"])["features"])
    frames = np.asarray(store[doc]["magnitude"].values)
    n = frames.shape[0]
    for width, (start, end) in [(1024, (None, None)), (300, (100, 2000)), (700, (0, 3600))]:
        png, meta = explorer.image(doc, "magnitude", start, end, width=width, height=33)
        f0, f1 = meta["frames"]
        level = meta["level"]
        assert level == int(np.floor(np.log2((f1 - f0) / width))) or level == 0
        assert level > 0
        # the same picture as drawn from the frames reduced to that level
        reference = _expected(frames[f0:f1], level, "max").astype(np.float32)
        ref_png, ref_meta = image_of(reference, db=True, width=width, height=33)
        assert png == ref_png
        assert meta["columns"] == ref_meta["columns"] == width
        assert meta["rows"] == 33 and meta["t0"] <= (start or 0)
        assert meta["t1"] >= min(end or 3600, 3600) - 0.1
    # one second is drawn from the frames themselves
    png, meta = explorer.image(doc, "magnitude", 1800, 1801, width=1024, height=33)
    assert meta["level"] == 0 and meta["columns"] == meta["frames"][1] - meta["frames"][0]
    assert 0 < meta["frames"][0] < n
    # mean pooling reads the mean level
    png, meta = explorer.image(doc, "magnitude", width=512, height=33, pool="mean")
    f0, f1 = meta["frames"]
    reference = _expected(frames[f0:f1], meta["level"], "mean").astype(np.float32)
    assert png == image_of(reference, db=True, width=512, height=33, pool="mean")[0]


def test_waveform_envelope_from_the_pyramid(long_store):
    root, ids = long_store
    store = zx.open_store(str(root))
    build_pyramid(store, ids["hour"], "wave")
    samples = np.asarray(store[ids["hour"]]["wave"].values)
    env = Explorer(store).values(ids["hour"], "wave", width=800)
    assert env["t0"] == 0 and env["t1"] == pytest.approx(3600)
    assert len(env["min"]) == len(env["max"]) == 800
    # the envelope bounds the samples: its extremes are the signal's
    assert min(env["min"]) == pytest.approx(float(samples.min()), rel=1e-6)
    assert max(env["max"]) == pytest.approx(float(samples.max()), rel=1e-6)
    first = samples[: len(samples) // 800]
    assert env["max"][0] >= float(first.max()) - 1e-6


def test_stale_unfinished_and_damaged_pyramids(long_store, tmp_path):
    root, ids = long_store
    store = zx.open_store(str(root))
    pyramid = build_pyramid(store, ids["hour"], "magnitude")
    path = root / pyramid_path("magnitude", ids["hour"])
    attrs = json.loads((path / "zarr.json").read_text())
    # a pyramid of another source (the document was re-ingested) is stale: not used
    row = store.row(ids["hour"])
    stale = {**row, "magnitude.version": "other"}
    assert open_pyramid(store, ids["hour"], "magnitude", stale) is None
    # unfinished (no attributes yet): not used
    broken = dict(attrs)
    broken["attributes"] = {}
    (path / "zarr.json").write_text(json.dumps(broken))
    assert open_pyramid(store, ids["hour"], "magnitude") is None
    (path / "zarr.json").write_text(json.dumps(attrs))
    assert attrs["attributes"][PYRAMID]["levels"] == list(pyramid.levels)
    # a damaged chunk: the picture is a StoreError naming the document and the level
    level = pyramid.levels[-1]
    chunk = next((path / f"max_{level}" / "c").rglob("*"))
    while chunk.is_dir():
        chunk = next(chunk.iterdir())
    data = bytearray(chunk.read_bytes())
    data[10] ^= 0xFF
    chunk.write_bytes(bytes(data))
    try:
        with pytest.raises(StoreError, match=rf"{ids['hour']}.*level {level}.*checksum"):
            Explorer(store).image(ids["hour"], "magnitude", width=64, height=8)
    finally:
        data[10] ^= 0xFF
        chunk.write_bytes(bytes(data))


def test_pyramid_command(long_store, capsys):
    root, ids = long_store
    assert main(["pyramid", str(root), "--feature", "wave", "--min-mb", "2", "--quiet"]) == 0
    assert "1 pyramids current" in capsys.readouterr().out
    assert pathlib.Path(root / pyramid_path("wave", ids["hour"]) / "zarr.json").exists()


def test_ingest_summarises_long_documents(tmp_path, monkeypatch):
    monkeypatch.setattr(pyramid_module, "MIN_BYTES", 162_000)  # as if 40 s were long
    path = tmp_path / "long.wav"
    sf.write(path, _signal(40.0, 1), RATE, subtype="FLOAT")  # 40,000 samples, 1,250 frames
    doc = _graph(tmp_path / "store")
    report = zx.ingest([str(path)], doc, scheduler="synchronous", progress=False)
    store = zx.open_store(str(tmp_path / "store"))
    (doc_id,) = report.processed
    assert open_pyramid(store, doc_id, "magnitude") is not None  # 1,250 x 33 x 4 bytes
    assert open_pyramid(store, doc_id, "wave") is None  # 40,000 x 4: drawn from the samples


@given(st.integers(1, 300), st.integers(1, 5), st.integers(1, 64), st.integers(0, 1),
       st.sampled_from(["max", "mean"]))
@settings(max_examples=60, deadline=None)
def test_pooling_equals_reduceat(n, bands, size, axis, pool):
    values = np.random.default_rng(n * 7 + bands).normal(size=(n, bands)).astype(np.float32)
    values[n // 2, 0] = np.nan if n > 3 else values[n // 2, 0]  # NaN stays visible
    got = _pool(values, size, axis, pool)
    length = values.shape[axis]
    if length <= size:
        assert got is values
        return
    starts = np.linspace(0, length, size + 1).astype(np.intp)
    shape = [1, 1]
    shape[axis] = size
    expected = np.maximum.reduceat(values, starts[:-1], axis=axis) if pool == "max" else \
        np.add.reduceat(values, starts[:-1], axis=axis) / np.diff(starts).reshape(shape)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
