"""Feature stores on object storage: a real S3-compatible server (moto) on 127.0.0.1.

Needs the ``[s3]`` extra (s3fs) and moto[server]; the module is skipped without them.
The server runs in a thread of the test process (``_s3_server.S3Server``) and logs every
request it answers, from this process, subprocesses or dask workers alike.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import time
import uuid

import numpy as np
import pytest

pytest.importorskip("s3fs", reason="the [s3] extra (s3fs) is not installed")
pytest.importorskip("moto.server", reason="moto[server] (test dependency) is not installed")

import dask.array as dask_array  # noqa: E402

import zounds_xr as zx  # noqa: E402
from zounds_xr.documents import FeatureStore  # noqa: E402
from zounds_xr.documents.store import forget_process_state  # noqa: E402

from _documents_helpers import (  # noqa: E402
    HOP_WINDOW,
    healthy_blocking_graph,
    kill_when_flagged,
    python_argv,
    spectral_graph,
    tone,
    write_wav,
)
from _s3_server import DUMMY_CREDENTIALS, S3Server  # noqa: E402
from test_store_log import check_no_lost_commit, two_committing_processes  # noqa: E402


@pytest.fixture(scope="session")
def s3():
    """The S3 server, with dummy credentials in the environment (restored afterwards)."""
    saved = {k: os.environ.get(k) for k in DUMMY_CREDENTIALS}
    os.environ.update(DUMMY_CREDENTIALS)
    server = S3Server().start()
    try:
        yield server
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def url(s3):
    """A store URL in a new, empty bucket."""
    bucket = f"zx-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(bucket)
    return f"s3://{bucket}/features.zarr"


def _store(s3, url, **extra):
    return FeatureStore(url, storage_options={**s3.storage_options, **extra})


def _env(s3) -> dict:
    return {**os.environ, **s3.environ}


def _bucket_keys(s3, url, prefix=""):
    bucket, _, root = url.removeprefix("s3://").partition("/")
    return [k.removeprefix(root + "/") for k in s3.keys(bucket, f"{root}/{prefix}")]


# ---------------------------------------------------------------------- the basics
def test_process_read_iterate_update_delete(s3, url, tmp_path):
    wavs = [write_wav(tmp_path / f"{i}.wav", 3, seed=i) for i in range(2)]
    First = healthy_blocking_graph(_store(s3, url))  # stores `louder` only
    ids = [First.process(meta=w, chunksize=zx.Seconds(1)) for w in wavs]
    assert First.ids() == sorted(ids)

    Sound = spectral_graph(_store(s3, url))  # same `louder`, adds a stored `fft`
    assert [d.id for d in Sound] == sorted(ids) and len(Sound) == 2
    snd = Sound(ids[0])
    assert isinstance(snd.louder.data, dask_array.Array)  # lazy
    np.testing.assert_allclose(snd.louder.values, tone(3, seed=0) * 2, atol=1e-6)
    assert Sound.stale_features(ids[0]) == ["fft"]
    assert snd.fft.sizes["time"] == 1 + -(-(24000 - 320) // 160)  # computed on access

    assert Sound.update() == {ids[0]: ["fft"], ids[1]: ["fft"]}
    assert Sound.update() == {ids[0]: [], ids[1]: []}
    again = Sound(ids[1])
    part = again.fft.sel(time=zx.TimeSlice(zx.Seconds(1), start=zx.Seconds(1)))
    assert isinstance(part.data, dask_array.Array) and 48 <= part.sizes["time"] <= 52
    expected = zx.fft(zx.sliding_window(again.louder.compute(), wscheme=HOP_WINDOW,
                                        wfunc=zx.OggVorbisWindowingFunc()))
    np.testing.assert_allclose(again.fft.values, expected.values, atol=1e-4)
    assert isinstance(again.fft.xindexes["frequency"], zx.FrequencyIndex)

    own_part = Sound.catalog().loc[ids[0], "louder.array"].split("/")[1]
    Sound.delete(ids[0])
    assert Sound.ids() == [ids[1]] and ids[0] not in Sound
    with pytest.raises(zx.DocumentNotFoundError):
        Sound(ids[0])
    assert _bucket_keys(s3, url, f"parts/{own_part}/")  # hidden by a tombstone ...
    assert Sound._store.vacuum(grace=0) == [own_part]  # ... its data goes with vacuum
    assert _bucket_keys(s3, url, f"parts/{own_part}/") == []
    np.testing.assert_allclose(Sound(ids[1]).louder.values, tone(3, seed=1) * 2, atol=1e-6)
    # a fresh store object (another process, say) sees the same thing
    assert FeatureStore(url, storage_options=s3.storage_options).ids() == [ids[1]]


def test_zarr_settings_with_endpoint_from_the_environment(s3, url, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint)
    wav = write_wav(tmp_path / "a.wav", 2)

    @zx.zarr_settings(url)  # no storage_options: credentials and endpoint from env
    class Sound(zx.Document):
        louder = zx.Feature(np.negative, needs=zx.Document.audio, store=True)

    doc_id = Sound.process(meta=wav)
    np.testing.assert_allclose(Sound(doc_id).louder.values, -tone(2), atol=1e-6)
    assert Sound._store.storage_options == {}
    # the same through zarr_settings' storage_options
    Other = zx.zarr_settings(url, storage_options=s3.storage_options)(Sound)
    assert Other._store.storage_options == s3.storage_options and Other.ids() == [doc_id]


def test_pickled_store_carries_its_options(s3, url, tmp_path):
    store = _store(s3, url)
    Sound = spectral_graph(store)
    doc_id = Sound.process(meta=write_wav(tmp_path / "a.wav", 1))
    clone = pickle.loads(pickle.dumps(store))
    assert clone.storage_options == store.storage_options and clone.ids() == [doc_id]
    # (worker processes without the endpoint in their environment: see the ingest test)


def test_missing_bucket_and_refused_credentials_are_store_errors(s3, url, tmp_path):
    wav = write_wav(tmp_path / "a.wav", 1)
    missing = spectral_graph(_store(s3, f"s3://zx-missing-{uuid.uuid4().hex[:8]}/f.zarr"))
    for call in (missing.ids, lambda: missing("abc"), lambda: missing.process(meta=wav)):
        with pytest.raises(zx.StoreError, match="bucket .* does not exist"):
            call()
    assert not isinstance(pytest.raises(zx.StoreError, missing.ids).value,
                          zx.DocumentNotFoundError)

    doc_id = spectral_graph(_store(s3, url)).process(meta=wav)
    refused = spectral_graph(_store(s3, url, key="unknown-key", secret="wrong"))
    s3.require_authentication(True)
    try:
        for call in (refused.ids, lambda: refused(doc_id), lambda: refused.exists(doc_id),
                     lambda: refused.process(meta=wav, overwrite=True),
                     lambda: refused.delete(doc_id)):
            with pytest.raises(zx.StoreError, match="credentials") as info:
                call()
            assert not isinstance(info.value, zx.DocumentNotFoundError)
    finally:
        s3.require_authentication(False)
    assert spectral_graph(_store(s3, url)).ids() == [doc_id]  # nothing was touched


# ---------------------------------------------------------------------- crash safety
def test_a_killed_writer_leaves_nothing_visible_and_is_redone(s3, url, tmp_path):
    flag = str(tmp_path / "flag")
    wav = write_wav(tmp_path / "a.wav", 4)
    proc = subprocess.Popen(python_argv(f"""
        import zounds_xr as zx
        from zounds_xr.documents import FeatureStore
        from _documents_helpers import blocking_graph
        store = FeatureStore({url!r}, storage_options={s3.storage_options!r})
        blocking_graph(store, {flag!r}).process(meta={wav!r}, chunksize=zx.Seconds(1))
    """), env=_env(s3))
    kill_when_flagged(proc, flag)
    store = _store(s3, url)
    Sound = healthy_blocking_graph(store)
    doc_id = Sound.id_for(wav)
    [left] = store.invisible_parts()
    assert _bucket_keys(s3, url, f"parts/{left}/")  # partial, invisible
    assert Sound.ids() == [] and not Sound.exists(doc_id) and list(Sound) == []
    with pytest.raises(zx.DocumentNotFoundError):
        Sound(doc_id)
    assert Sound.process(meta=wav) == doc_id  # the next run redoes it
    assert Sound.ids() == [doc_id] and store.vacuum(grace=0) == [left]
    assert store.invisible_parts() == [] and _bucket_keys(s3, url, f"parts/{left}/") == []
    np.testing.assert_allclose(Sound(doc_id).louder.values, tone(4) * 2, atol=1e-6)


def test_an_unreadable_fragment_is_a_store_error_not_a_smaller_store(s3, url, tmp_path):
    store = _store(s3, url)
    Sound = spectral_graph(store)
    ids = [Sound.process(meta=write_wav(tmp_path / f"{i}.wav", 1, seed=i)) for i in range(2)]
    assert Sound.ids() == sorted(ids)
    bucket, _, root = url.removeprefix("s3://").partition("/")
    [key, _] = [k for k in s3.keys(bucket, f"{root}/catalog/") if k.endswith(".parquet")]
    s3.client().put_object(Bucket=bucket, Key=key, Body=b"garbage, not parquet")
    fresh = spectral_graph(_store(s3, url))
    with pytest.raises(zx.StoreError, match="does not match the log"):
        fresh.ids()


def test_two_processes_write_different_documents_at_once(s3, url, tmp_path):
    store = _store(s3, url)
    Sound = spectral_graph(store)
    assert Sound.ids() == []  # listed (and not cached) before the writers start
    wavs = [write_wav(tmp_path / f"{i}.wav", 4, seed=i) for i in range(2)]
    procs = [subprocess.Popen(python_argv(f"""
        import zounds_xr as zx
        from _documents_helpers import spectral_graph
        spectral_graph({url!r}).process(meta={wav!r}, chunksize=zx.Seconds(0.5))
    """), env=_env(s3)) for wav in wavs]  # endpoint from AWS_ENDPOINT_URL
    assert [p.wait(120) for p in procs] == [0, 0]
    assert Sound.ids() == sorted(Sound.id_for(w) for w in wavs)
    for i, wav in enumerate(wavs):
        snd = Sound(Sound.id_for(wav))
        np.testing.assert_allclose(snd.louder.values, tone(4, seed=i) * 2, atol=1e-6)
        assert snd.fft.sizes["time"] == 1 + -(-(32000 - 320) // 160)
    assert store.invisible_parts() == []
    root_keys = [k for k in _bucket_keys(s3, url) if "/" not in k]
    assert root_keys == ["zarr.json"]  # never consolidated: no shared metadata written


@pytest.mark.slow
def test_two_committing_processes_lose_no_commit_on_s3(s3, url, tmp_path):
    # the log's entries are written with a conditional put (If-None-Match: *), which
    # the moto server honours: a lost race retries with the next number
    procs = two_committing_processes(url, str(tmp_path), 3, env=_env(s3))
    assert [p.wait(300) for p in procs] == [0, 0]
    check_no_lost_commit(_store(s3, url), 3)


def test_stores_created_at_once_on_s3_are_one_store(s3, url):
    import threading

    errors = []

    def create():
        try:
            _store(s3, url).root(create=True)
        except Exception as exc:  # noqa: BLE001  (collected and reported below)
            errors.append(repr(exc))

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and _store(s3, url).version == 0
    assert sorted(_bucket_keys(s3, url)) == ["_log/zarr.json",
                                             "parts/zarr.json", "zarr.json"]


# ---------------------------------------------------------------------- requests
def test_opening_and_reading_a_window_makes_a_bounded_number_of_requests(s3, url, tmp_path,
                                                                         monkeypatch):
    from zounds_xr.documents import parts

    monkeypatch.setattr(parts, "SHARD_BYTES", 1 << 20)
    Sound = spectral_graph(_store(s3, url))
    # both longer than one shard (features shorter than a shard are one small chunk)
    short = Sound.process(meta=write_wav(tmp_path / "s.wav", 60), chunksize=zx.Seconds(20))
    long = Sound.process(meta=write_wav(tmp_path / "l.wav", 150), chunksize=zx.Seconds(20))
    one_second = zx.TimeSlice(zx.Seconds(1), start=zx.Seconds(5))
    counts = {}
    for name, doc_id in (("short", short), ("long", long)):
        Sound(doc_id).fft.sel(time=one_second).values  # opens the array's metadata once
        mark = s3.mark()
        snd = Sound(doc_id)
        opening = s3.since(mark)
        # opening a document: one read of the next log entry (there is none: the
        # catalog already read is current)
        assert len(opening) == 1 and opening[0].path.endswith("_log/00000000000000000003.json")
        mark = s3.mark()
        values = snd.fft.sel(time=one_second).values
        counts[name] = s3.since(mark)
        assert values.shape[0] in (50, 51)
    assert len(counts["short"]) == len(counts["long"]), (counts["short"], counts["long"])
    requests = counts["long"]
    # the shard index and the inner chunk(s) of 64 frames that 50 frames overlap
    assert all(r.method == "GET" and not r.is_list for r in requests), requests
    assert len(requests) <= 3, requests

    # reading the whole long feature needs more: the counting does see chunk reads
    mark = s3.mark()
    Sound(long).fft.values
    assert len(s3.since(mark)) > len(requests) + 4

    # the store opened again in this process: the root metadata, the newest entry
    # (checked to be the one read before), the next one (none), the size of each
    # fragment (one HEAD); no listing
    fresh = spectral_graph(_store(s3, url))
    mark = s3.mark()
    assert fresh.ids() == sorted([short, long])
    listing = s3.since(mark)
    assert sum(r.is_list for r in listing) == 0 and len(listing) == 1 + 2 + 2, listing
    assert [r.method for r in listing].count("HEAD") == 2
    # as in a new process: the root metadata, the checkpoint pointer, the two entries,
    # the next two (none: the second checks that the log has no gap), one read per
    # fragment; no listing
    forget_process_state()
    fresh = spectral_graph(_store(s3, url))
    mark = s3.mark()
    assert fresh.ids() == sorted([short, long])
    listing = s3.since(mark)
    assert sum(r.is_list for r in listing) == 0 and len(listing) == 2 + 4 + 2, listing
    mark = s3.mark()
    assert fresh.ids() == sorted([short, long])
    assert len(s3.since(mark)) == 1  # fragments never change: only the next entry


# ---------------------------------------------------------------------- a cluster
def test_ingest_with_worker_processes_of_a_local_cluster(s3, url, tmp_path):
    distributed = pytest.importorskip("distributed")
    audio = tmp_path / "audio"
    audio.mkdir()
    for i in range(4):
        write_wav(audio / f"tone{i}.wav", 1 + i % 2, seed=i)
    (audio / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    # the workers get the endpoint from the pickled store's storage_options only
    assert "AWS_ENDPOINT_URL" not in os.environ and "AWS_ENDPOINT_URL_S3" not in os.environ
    Sound = spectral_graph(_store(s3, url))
    t0 = time.monotonic()
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None, silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        report = zx.ingest(zx.Directory(audio), Sound, client=client, progress=False)
        pids = set(client.run(os.getpid).values())
    assert time.monotonic() - t0 < 60
    assert os.getpid() not in pids and len(pids) == 2
    assert len(report.processed) == 4 and list(report.failed) == [str(audio / "broken.wav")]
    assert Sound.ids() == sorted(report.processed)
    for doc_id in report.processed:
        seconds = Sound(doc_id).louder.sizes["time"] / 8000
        assert seconds in (1, 2)
    again = zx.ingest(zx.Directory(audio), Sound, scheduler="threads", progress=False)
    assert again.processed == [] and len(again.skipped) == 4
