"""A long recording split across workers in time ranges (documents/longfile.py).

The property users rely on: the stored document is the one-process stream's, exactly
(whole DataArrays and catalog rows compared), whatever the file's length, format,
channels, framing and decoding chunks; a failed range commits nothing. Shards and the
long-file threshold are made small so that short files split into several ranges.
"""
import json

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import zounds_xr as zx
from zounds_xr.documents import batch, longfile, parts
from zounds_xr.io.decode import stream_arrays
from zounds_xr.testing import assert_identical


@pytest.fixture
def small_shards(monkeypatch):
    """Shards of 2 KiB (inner chunks of 512 B), and every file a long recording.

    The FFT is scipy's here as in the worker processes: "auto" picks torch's in a
    process that has imported torch (as this one may have, after other tests), and
    the two differ in the last bits, split or not.
    """
    previous = zx.set_fft_backend("scipy")
    monkeypatch.setattr(parts, "SHARD_BYTES", 1 << 11)
    monkeypatch.setattr(parts, "INNER_CHUNK_BYTES", 1 << 9)
    monkeypatch.setattr(batch, "_LONG_FILE_BYTES", 1)
    planned: list = []
    plan = longfile.plan

    def spy(*args, **kwargs):
        split = plan(*args, **kwargs)
        planned.append(None if split is None else [(j.start, j.stop) for j in split.jobs])
        return split

    monkeypatch.setattr(batch, "plan_split", spy)
    yield planned
    zx.set_fft_backend(previous)


def _document(root, hop=64, n_fft=256, n_mels=8, store_as=None, resampled=False,
              rate=8000):
    wscheme = zx.audio_sample_rate(rate // 2 if resampled else rate) * (hop, n_fft)

    source = zx.Document.audio
    if resampled:
        source = zx.Feature(zx.resample, needs=zx.Document.audio,
                            samplerate=zx.audio_sample_rate(rate // 2))

    @zx.zarr_settings(root)
    class Sound(zx.Document):
        # a stored feature at the audio rate: its shards and the mel's both bound ranges
        inverted = zx.Feature(np.negative, needs=zx.Document.audio, store=True)
        if resampled:
            down = source
        mel = zx.Feature(zx.mel_spectrogram, needs=source, n_mels=n_mels, wscheme=wscheme,
                         store=True, store_as=store_as)
        louder = zx.Feature(np.negative, needs=mel, store=True)

    return Sound


def _write(path, frames, channels, fmt, seed=0, rate=8000):
    x = np.random.default_rng(seed).uniform(-0.5, 0.5, (frames, channels)).astype("f4")
    sf.write(path, x if channels > 1 else x[:, 0], rate,
             subtype="PCM_16" if fmt == "wav" else "PCM_24")
    return str(path)


def _assert_same_document(one, split, doc_id):
    for name in ("inverted", "mel", "louder"):
        assert_identical(getattr(one(doc_id), name), getattr(split(doc_id), name))
    a, b = one.catalog().loc[doc_id], split.catalog().loc[doc_id]
    keep = [c for c in a.index if not c.endswith(".array")]
    assert a[keep].equals(b[keep])


@settings(max_examples=8, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.integers(26_000, 60_000), channels=st.sampled_from([1, 2]),
       fmt=st.sampled_from(["wav", "flac"]), hop=st.sampled_from([32, 64, 100]),
       chunk=st.integers(300, 9_000), workers=st.integers(2, 4),
       store_as=st.sampled_from([None, "float16"]))
def test_a_split_recording_is_the_one_process_stream_exactly(
        tmp_path_factory, small_shards, monkeypatch, frames, channels, fmt, hop, chunk,
        workers, store_as):
    folder = tmp_path_factory.mktemp("split")
    path = _write(folder / f"long.{fmt}", frames, channels, fmt, seed=frames)
    # decoding chunks of odd sizes: range starts fall anywhere inside them
    monkeypatch.setattr(batch, "_CHUNK", chunk)
    one = _document(folder / "one.zarr", hop=hop, store_as=store_as)
    split = _document(folder / "split.zarr", hop=hop, store_as=store_as)
    one.process(path, chunksize=chunk)
    report = zx.ingest([path], split, scheduler="threads", num_workers=workers,
                       progress=False)
    assert not report.failed and report.processed == [split.id_for(path)]
    assert small_shards[-1] is not None and len(small_shards[-1]) >= 2  # it was split
    _assert_same_document(one, split, split.id_for(path))


@pytest.mark.parametrize("scheduler", ["processes", "synchronous"])
def test_every_scheduler_splits_and_matches(tmp_path, small_shards, scheduler):
    path = _write(tmp_path / "long.flac", 48_001, 2, "flac")
    one, split = _document(tmp_path / "one.zarr"), _document(tmp_path / "split.zarr")
    one.process(path)
    report = zx.ingest([path], split, scheduler=scheduler, num_workers=2, progress=False)
    assert not report.failed
    assert report.audio_seconds == pytest.approx(48_001 / 8000)
    if scheduler == "synchronous":  # one worker: one stream
        assert small_shards == [] or small_shards[-1] is None
    else:
        assert len(small_shards[-1]) == 2
    _assert_same_document(one, split, split.id_for(path))
    assert split._store_for(None).verify() == {}


@pytest.mark.slow
def test_a_distributed_cluster_splits_and_matches(tmp_path, small_shards):
    distributed = pytest.importorskip("distributed")
    path = _write(tmp_path / "long.wav", 50_123, 1, "wav")
    one, split = _document(tmp_path / "one.zarr"), _document(tmp_path / "split.zarr")
    one.process(path)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        report = zx.ingest([path], split, client=client, progress=False)
    assert not report.failed and len(small_shards[-1]) == 2
    _assert_same_document(one, split, split.id_for(path))


def test_a_resampling_graph_streams_in_one_task(tmp_path, small_shards):
    """soxr's filter state spans the whole signal: a resampled graph is not split."""
    path = _write(tmp_path / "long.wav", 40_000, 1, "wav")
    one = _document(tmp_path / "one.zarr", resampled=True)
    split = _document(tmp_path / "split.zarr", resampled=True)
    assert not longfile.splittable(split)
    one.process(path)
    report = zx.ingest([path], split, num_workers=2, progress=False)
    assert not report.failed and small_shards == [None]
    _assert_same_document(one, split, split.id_for(path))


def test_a_failed_range_commits_nothing(tmp_path, small_shards, small_pyramids, monkeypatch):
    path = _write(tmp_path / "long.wav", 40_000, 1, "wav")
    split = _document(tmp_path / "split.zarr")
    write_range = batch.write_range
    calls = []

    def second_fails(document, job):
        calls.append(job.start)
        if job.start:
            out = write_range(document, job)  # its shards are written, then it fails
            raise zx.AudioDecodeError(f"injected after {sum(out['rows'].values())} rows")
        return write_range(document, job)

    monkeypatch.setattr(batch, "write_range", second_fails)
    report = zx.ingest([path], split, num_workers=3, progress=False)
    assert len(calls) >= 2 and list(report.failed) == [path]
    assert "injected" in report.failed[path] and report.processed == []
    store = split._store_for(None)
    assert split.catalog().empty and store.invisible_parts() == []
    assert "injected" in store.failures().set_index("uri").loc[path, "error"]
    assert not [p for p in (tmp_path / "split.zarr").rglob("pyramids/*/*/*") if p.is_file()]
    monkeypatch.setattr(batch, "write_range", write_range)
    again = zx.ingest([path], split, num_workers=3, progress=False)
    assert again.processed == [split.id_for(path)] and not again.failed
    one = _document(tmp_path / "one.zarr")
    one.process(path)
    _assert_same_document(one, split, split.id_for(path))


def _range_then_die(shipped, job):
    """A range task whose worker process dies (a segfault, as the pool sees it) after the
    range wrote its shards, for every range but the first."""
    import os

    import dask

    with dask.config.set(scheduler="synchronous"):
        out = batch.write_range(batch._document_of(shipped), job)
    if job.start:
        os._exit(3)
    return out, batch.TaskTiming("test", 0.0, 0.0, 0)


def test_a_killed_range_worker_leaves_the_store_exact(tmp_path, small_shards, small_pyramids,
                                                       monkeypatch):
    path = _write(tmp_path / "long.wav", 40_000, 1, "wav")
    split = _document(tmp_path / "split.zarr")
    task = batch._process_range
    monkeypatch.setattr(batch, "_process_range", _range_then_die)
    report = zx.ingest([path], split, scheduler="processes", num_workers=2, progress=False)
    assert len(small_shards[-1]) == 2 and report.processed == []
    assert "worker process died" in report.failed[path]
    store = split._store_for(None)
    assert split.catalog().empty and store.invisible_parts() == [] and store.verify() == {}
    assert not [p for p in (tmp_path / "split.zarr").rglob("pyramids/*/*/*") if p.is_file()]
    monkeypatch.setattr(batch, "_process_range", task)  # a fresh pool replaced the broken one
    again = zx.ingest([path], split, scheduler="processes", num_workers=2, progress=False)
    assert again.processed == [split.id_for(path)] and not again.failed
    one = _document(tmp_path / "one.zarr")
    one.process(path)
    _assert_same_document(one, split, split.id_for(path))


def test_a_short_file_is_not_split(tmp_path, small_shards):
    path = _write(tmp_path / "short.wav", 3_000, 1, "wav")
    split = _document(tmp_path / "split.zarr")
    report = zx.ingest([path], split, num_workers=2, progress=False)
    assert not report.failed and small_shards == [None]


def test_stream_arrays_starts_at_a_frame(tmp_path):
    path = _write(tmp_path / "a.flac", 10_000, 2, "flac")
    whole = np.concatenate([d for d, _, _ in stream_arrays(path, 1000)])
    chunks = list(stream_arrays(path, 1000, start=4321))
    assert [p for _, _, p in chunks][:2] == [4321, 5321]
    np.testing.assert_array_equal(np.concatenate([d for d, _, _ in chunks]), whole[4321:])
    with pytest.raises(zx.ParameterError, match="start"):
        next(stream_arrays(path, 1000, start=-1))


def _pyramid_files(root, doc_id):
    """Every file of a document's pyramids, bytes; the group's attrs without the timing
    and the stored array's path (a part's name: each store has its own)."""
    from zounds_xr.documents.pyramid import PYRAMID

    files = {}
    for path in sorted((root / "pyramids").rglob("*")):
        if not path.is_file() or doc_id not in path.parts:
            continue
        key = str(path.relative_to(root))
        if path.parent.name == doc_id and path.name == "zarr.json":
            meta = json.loads(path.read_bytes())
            meta["attributes"][PYRAMID].pop("built_seconds")
            meta["attributes"][PYRAMID]["source"].pop("array")
            files[key] = meta
        else:
            files[key] = path.read_bytes()
    return files


@pytest.fixture
def small_pyramids(monkeypatch):
    """Pyramids for every document, of chunks of 64 B and levels up to 4 rows."""
    from zounds_xr.documents import pyramid

    monkeypatch.setattr(pyramid, "MIN_BYTES", 1)
    monkeypatch.setattr(pyramid, "CHUNK_BYTES", 1 << 6)
    monkeypatch.setattr(pyramid, "TOP_ROWS", 4)
    built = []
    reader = pyramid._frames_reader

    def spy(store, doc_id, feature):
        built.append(feature)
        return reader(store, doc_id, feature)

    monkeypatch.setattr(pyramid, "_frames_reader", spy)
    return built


@settings(max_examples=5, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.integers(26_000, 70_000), channels=st.sampled_from([1, 2]),
       hop=st.sampled_from([32, 64, 100]), workers=st.integers(2, 4),
       store_as=st.sampled_from([None, "float16"]))
def test_the_ranges_build_the_pyramid_of_the_stored_frames_bytes_and_all(
        tmp_path_factory, small_shards, small_pyramids, frames, channels, hop, workers,
        store_as):
    from zounds_xr.documents.pyramid import build_pyramid, open_pyramid

    folder = tmp_path_factory.mktemp("pyramid")
    path = _write(folder / "long.wav", frames, channels, "wav", seed=frames)
    split = _document(folder / "split.zarr", hop=hop, store_as=store_as)
    small_pyramids.clear()  # (the fixture lives across hypothesis' examples)
    report = zx.ingest([path], split, scheduler="threads", num_workers=workers,
                       progress=False)
    (doc_id,) = report.processed
    assert len(small_shards[-1]) >= 2 and small_pyramids == []  # none read back
    one = _document(folder / "one.zarr", hop=hop, store_as=store_as)
    one.process(path)
    store = zx.open_store(str(folder / "one.zarr"))
    for name in ("inverted", "mel", "louder"):
        build_pyramid(store, doc_id, name)
    serial = _pyramid_files(folder / "one.zarr", doc_id)
    assert {k.split("/")[1] for k in serial} == {"inverted", "mel", "louder"}
    assert _pyramid_files(folder / "split.zarr", doc_id) == serial
    split_store = zx.open_store(str(folder / "split.zarr"))
    for name in ("inverted", "mel", "louder"):
        assert open_pyramid(split_store, doc_id, name) is not None  # current


def test_silence_splits_and_reads_back(tmp_path, small_shards):
    # chunks of zeros are written like any other (the direct reads refuse a missing one)
    path = str(tmp_path / "silent.wav")
    x = np.random.default_rng(3).uniform(-0.5, 0.5, 48_000).astype("f4")
    x[6_000:44_000] = 0
    sf.write(path, x, 8000, subtype="PCM_16")
    one, split = _document(tmp_path / "one.zarr"), _document(tmp_path / "split.zarr")
    one.process(path)
    report = zx.ingest([path], split, scheduler="threads", num_workers=3, progress=False)
    assert not report.failed and len(small_shards[-1]) >= 2
    _assert_same_document(one, split, split.id_for(path))
    assert split._store_for(None).verify() == {}
