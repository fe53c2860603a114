"""Training windows (FeatureWindows, RandomWindows): exact contents, epochs, resumption."""
import pickle
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
zarr = pytest.importorskip("zarr")

import zounds_xr as zx
from zounds_xr.learn import (
    BucketBatchSampler,
    FeatureWindows,
    RandomWindows,
    collate,
)
from zounds_xr.learn.windows import _consumed_per_worker, window_counts

from _windows_helpers import ContractStore, frames_of  # noqa: E402
from zounds_xr.timeseries.index import TimeIndex


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    rng = np.random.default_rng(0)
    sizes = rng.integers(3, 120, size=40)
    docs = [frames_of(i, n) for i, n in enumerate(sizes)]
    return ContractStore(tmp_path_factory.mktemp("fake"), docs), docs


def key(item):
    return item["document"], round(float(item["start"]), 9)


# ------------------------------------------------------------------ window arithmetic
@pytest.mark.parametrize("f,d,w,h", [
    (Fraction(1, 100), Fraction(1, 100), Fraction(1, 4), None),
    (Fraction(128, 11025), Fraction(256, 11025), Fraction(1, 4), None),
    (Fraction(128, 11025), Fraction(256, 11025), Fraction(1, 2), Fraction(1, 10)),
    (Fraction(1, 3), Fraction(1, 3), Fraction(7, 5), Fraction(2, 7)),
    (Fraction(160, 16000), Fraction(400, 16000), Fraction(1, 2), Fraction(1, 2)),
    (Fraction(1, 100), Fraction(1, 100), Fraction(1, 4), Fraction(1, 8)),
])
def test_windows_follow_the_exact_time_index(f, d, w, h):
    n_frames = np.arange(0, 160)
    counts, length, first = window_counts(n_frames, Fraction(0), f, d, w, h)
    step = w if h is None else h
    assert length == max(1, int(np.floor((w - d) / f + Fraction(1, 2))) + 1)
    for n, count in zip(n_frames, counts, strict=True):
        index = TimeIndex.from_params(int(n), f, d)
        expected = 0
        for k in range(400):
            s = k * step
            i = int(first(np.array([k]))[0])
            inside = s + w <= index.end and i + length <= n
            if inside:
                assert k == expected  # windows are the first ones, with none skipped
                expected += 1
                frames = index.overlapping(s, s + w)  # what sel(time=TimeSlice(w, s)) gives
                assert frames.start <= i and i + length <= frames.stop
                assert abs(i * f - s) <= f / 2
        assert count == expected, (n, count, expected)


def test_a_two_second_clip_has_four_half_second_windows():
    # 16 kHz, hop 160, window 400 samples: sliding_window gives 199 frames for 2 s
    counts, length, first = window_counts([199], 0, Fraction(1, 100), Fraction(1, 40),
                                          Fraction(1, 2))
    assert list(counts) == [4] and length == 49
    assert list(first(np.arange(4))) == [0, 50, 100, 150]


def test_windows_in_frames_and_whole_documents():
    counts, length, first = window_counts([3, 10, 11], 0, Fraction(1, 10), Fraction(1, 10), 4, 2)
    assert length == 4 and list(counts) == [0, 4, 4]
    assert list(first(np.arange(4))) == [0, 2, 4, 6]
    counts, length, _ = window_counts([0, 7], 0, Fraction(1, 10), Fraction(1, 10), None)
    assert length is None and list(counts) == [0, 1]


# ------------------------------------------------------------------ FeatureWindows
def test_items_are_the_documents_frames(fake):
    store, docs = fake
    windows = FeatureWindows(store, "mel", window=zx.Milliseconds(250), hop=zx.Milliseconds(100))
    table = windows.windows()
    assert len(windows) == len(table) > 50
    rng = np.random.default_rng(1)
    for i in rng.choice(len(windows), size=40, replace=False):
        item = windows[int(i)]
        doc = int(item["document"][3:])
        x = item["x"].numpy()
        assert x.shape == (25, 3)
        k0 = int(x[0, 1])
        np.testing.assert_array_equal(x, docs[doc][k0:k0 + 25])
        assert abs(k0 * 0.01 - item["start"]) <= 0.005 + 1e-12
    # documents in catalog order, windows in order of time
    assert list(table["document"]) == sorted(table["document"])
    assert (table.groupby("document")["start"].diff().dropna().round(9) == 0.1).all()
    assert windows[-1]["document"] == table["document"].iloc[-1]


def test_batched_fetch_equals_single_items(fake):
    store, _ = fake
    windows = FeatureWindows(store, "mel", window=zx.Milliseconds(200))
    picks = [7, 0, 31, 7, len(windows) - 1]
    for a, b in zip(windows.__getitems__(picks), [windows[i] for i in picks], strict=True):
        assert key(a) == key(b) and torch.equal(a["x"], b["x"])


def test_labels_ids_and_series_labels(fake):
    store, docs = fake
    cat = store.catalog()
    ids = list(cat.index[cat["klass"] == 1])[::-1]
    windows = FeatureWindows(store, "mel", window=zx.Milliseconds(100), ids=ids, label="klass")
    assert set(windows.windows()["document"]) <= set(ids)
    assert windows.windows()["document"].iloc[0] == next(i for i in ids if len(
        docs[int(i[3:])]) >= 10)
    assert {windows[i]["label"] for i in range(len(windows))} == {1}
    named = pd.Series({i: f"class-{int(i[3:]) % 4}" for i in cat.index})
    windows = FeatureWindows(store, "mel", window=zx.Milliseconds(100), label=named)
    item = windows[11]
    assert item["label"] == named[item["document"]]
    batch = collate([windows[i] for i in range(5)])
    assert batch["x"].shape == (5, 10, 3) and isinstance(batch["label"], list)


def test_clear_errors(fake):
    store, _ = fake
    with pytest.raises(zx.ParameterError, match="longer than every"):
        FeatureWindows(store, "mel", window=zx.Seconds(5))
    with pytest.raises(zx.ParameterError, match="not stored"):
        FeatureWindows(store, "mfcc", window=zx.Seconds(1))
    with pytest.raises(zx.ParameterError, match="not a column"):
        FeatureWindows(store, "mel", window=zx.Seconds(1), label="genre")
    with pytest.raises(zx.DocumentNotFoundError):
        FeatureWindows(store, "mel", window=zx.Seconds(1), ids=["nope"])
    with pytest.raises(zx.ParameterError):
        FeatureWindows(store, "mel", window=zx.Seconds(-1))
    with pytest.raises(zx.ParameterError):
        FeatureWindows(store, "mel", window=5, hop=zx.Seconds(1))
    with pytest.raises(zx.ParameterError):
        FeatureWindows(object(), "mel", window=zx.Seconds(1))
    windows = FeatureWindows(store, "mel", window=zx.Milliseconds(500))
    with pytest.raises(IndexError):
        windows[len(windows)]
    with pytest.raises(zx.ParameterError):
        RandomWindows(store, "mel", window=zx.Milliseconds(500), seed=-1)


def test_whole_documents_padded_and_bucketed(fake):
    store, docs = fake
    whole = FeatureWindows(store, "mel", window=None)
    assert len(whole) == len(docs)
    lengths = whole.lengths()
    sampler = BucketBatchSampler(whole, max_frames=400, num_buckets=4, seed=0)
    seen = []
    loader = torch.utils.data.DataLoader(whole, batch_sampler=sampler, collate_fn=collate)
    for batch in loader:
        assert batch["x"].shape[0] * batch["x"].shape[1] <= max(400, int(batch["lengths"].max()))
        for x, n, doc in zip(batch["x"], batch["lengths"], batch["document"], strict=True):
            np.testing.assert_array_equal(x[:n].numpy(), docs[int(doc[3:])])
            assert not x[n:].any()
        seen += batch["document"]
    assert sorted(seen) == sorted(whole.ids)
    assert lengths.sum() == sum(len(d) for d in docs)


# ------------------------------------------------------------------- RandomWindows
def test_an_epoch_is_every_window_once_shuffled(fake):
    store, docs = fake
    windows = FeatureWindows(store, "mel", window=zx.Milliseconds(150), hop=zx.Milliseconds(50))
    random = RandomWindows(store, "mel", window=zx.Milliseconds(150), hop=zx.Milliseconds(50),
                           seed=5, buffer_size=40)
    items = list(random)
    expected = {key(windows[i]) for i in range(len(windows))}
    assert len(items) == len(windows) and {key(i) for i in items} == expected
    assert [key(i) for i in items] != sorted(key(i) for i in items)
    for item in items[:20]:
        x = item["x"].numpy()
        np.testing.assert_array_equal(x, docs[int(x[0, 0])][int(x[0, 1]):int(x[0, 1]) + 15])
    again = [key(i) for i in RandomWindows(store, "mel", window=zx.Milliseconds(150),
                                           hop=zx.Milliseconds(50), seed=5, buffer_size=40)]
    assert again == [key(i) for i in items]
    other = RandomWindows(store, "mel", window=zx.Milliseconds(150), hop=zx.Milliseconds(50),
                          seed=6, buffer_size=40)
    assert [key(i) for i in other] != again
    random.set_epoch(1)
    assert [key(i) for i in random] != again


def test_two_workers_split_an_epoch(fake):
    store, _ = fake
    random = RandomWindows(store, "mel", window=zx.Milliseconds(100), seed=2, buffer_size=30,
                           label="klass")
    loader = torch.utils.data.DataLoader(random, batch_size=16, num_workers=2)
    seen = [(d, round(float(s), 9)) for b in loader
            for d, s in zip(b["document"], b["start"], strict=True)]
    assert len(seen) == len(set(seen)) == len(random)
    assert set(seen) == {key(i) for i in FeatureWindows(store, "mel", zx.Milliseconds(100))}


def test_ranks_share_an_epoch(fake):
    store, _ = fake
    parts = [[key(i) for i in RandomWindows(store, "mel", window=zx.Milliseconds(100), seed=1,
                                            rank=r, world_size=3, drop_uneven=False)]
             for r in range(3)]
    everything = [k for p in parts for k in p]
    assert len(everything) == len(set(everything)) == len(
        FeatureWindows(store, "mel", zx.Milliseconds(100)))
    even = [list(RandomWindows(store, "mel", window=zx.Milliseconds(100), seed=1, rank=r,
                               world_size=3)) for r in range(3)]
    assert len({len(p) for p in even}) == 1


def test_resume_continues_exactly(fake):
    store, _ = fake

    def make(**kw):
        return RandomWindows(store, "mel", window=zx.Milliseconds(100), seed=9, **kw)

    full = [key(i) for i in make()]
    first = make()
    it = iter(first)
    head = [key(next(it)) for _ in range(37)]
    state = first.state_dict()
    assert state == {"seed": 9, "epoch": 0, "position": 37, "shuffle": "global",
                     "windows": len(full), "version": None}
    resumed = make()
    resumed.load_state_dict(pickle.loads(pickle.dumps(state)))
    assert head + [key(i) for i in resumed] == full
    # the catalog changed: the windows are numbered otherwise, a resume would be wrong
    with pytest.raises(zx.ParameterError, match="another catalog"):
        make().load_state_dict({**state, "windows": len(full) + 1})
    with pytest.raises(zx.ParameterError, match="another catalog"):
        make().load_state_dict({**state, "version": 3})
    with pytest.raises(zx.ParameterError, match="shuffle"):
        make(shuffle="block").load_state_dict(state)
    with pytest.raises(zx.ParameterError):
        make().load_state_dict({"seed": 9})


@pytest.mark.parametrize("shuffle", ["global", "block"])
def test_resume_with_workers(fake, shuffle):
    store, _ = fake

    def loader(ds):
        return torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)

    def make():
        return RandomWindows(store, "mel", window=zx.Milliseconds(100), seed=4, batch_size=8,
                             shuffle=shuffle, buffer_size=20, read_ahead=24)

    def keys(batches):
        return [(d, round(float(s), 9)) for b in batches
                for d, s in zip(b["document"], b["start"], strict=True)]

    full = keys(loader(make()))
    seen = []
    for b in loader(make()):
        seen.append(b)
        if len(seen) == 5:
            break
    resumed = make()
    resumed.load_state_dict(make().state_dict(steps=5))
    assert keys(seen) + keys(loader(resumed)) == full


def test_consumed_per_worker():
    with pytest.raises(zx.ParameterError):
        _consumed_per_worker(13, [40, 40], 8)
    assert _consumed_per_worker(4, [10, 40], 8) == ([10, 16], 0)
    assert _consumed_per_worker(2, [40, 40], 8) == ([8, 8], 0)
    assert _consumed_per_worker(3, [40, 40], 8) == ([16, 8], 1)


def test_pickles_for_spawn(fake):
    store, _ = fake
    windows = FeatureWindows(store, "mel", window=zx.Milliseconds(100), label="klass")
    windows[0]  # opens arrays and caches blocks, which must not travel
    copy = pickle.loads(pickle.dumps(windows))
    assert copy._reader is None and torch.equal(copy[3]["x"], windows[3]["x"])
    ctx = "spawn"
    loader = torch.utils.data.DataLoader(windows, batch_size=32, num_workers=1,
                                         multiprocessing_context=ctx)
    assert sum(len(b["document"]) for b in loader) == len(windows)


def test_shuffled_samples_from_a_store(fake):
    from zounds_xr.learn import ShuffledSamples

    store, docs = fake
    total = sum(len(d) for d in docs)
    s = ShuffledSamples(nsamples=total, seed=0, feature="mel")(store)
    assert s.dims == ("sample", "dim_1") and s.shape == (total, 3)
    pairs = {(int(v[0]), int(v[1])) for v in s.values}
    assert len(pairs) == total  # every frame once: without replacement
    for value, doc, frame in zip(s.values, s.document.values, s.frame.values, strict=True):
        assert int(value[0]) == int(doc[3:]) and int(value[1]) == frame
    runs = ShuffledSamples(nsamples=30, length=4, seed=1, feature="mel")(store)
    assert runs.dims == ("sample", "offset", "dim_1") and runs.shape == (30, 4, 3)
    np.testing.assert_array_equal(np.diff(runs.values[:, :, 1], axis=1), 1)
    again = ShuffledSamples(nsamples=30, length=4, seed=1, feature="mel")(store)
    np.testing.assert_array_equal(runs.values, again.values)
    with pytest.raises(zx.ParameterError):
        ShuffledSamples(nsamples=3)(store)


def test_random_whole_documents_and_subsets(fake):
    store, docs = fake
    ids = list(store.catalog().index[::3])
    random = RandomWindows(store, "mel", window=None, ids=ids, seed=0, label="klass")
    loader = torch.utils.data.DataLoader(random, batch_size=4, collate_fn=collate)
    seen = []
    for batch in loader:
        assert batch["label"].dtype == torch.int64
        for x, n, doc in zip(batch["x"], batch["lengths"], batch["document"], strict=True):
            np.testing.assert_array_equal(x[:n].numpy(), docs[int(doc[3:])])
        seen += batch["document"]
    assert sorted(seen) == sorted(ids)


# ------------------------------------------------------------- the real store (layout 2)
def clip_graph(url, storage_options=None):
    @zx.zarr_settings(url, storage_options=storage_options)
    class Clip(zx.Document):
        spectrum = zx.Feature(zx.stft, needs=zx.Document.audio,
                              wscheme=zx.SR11025() * (128, 256),
                              wfunc=zx.HanningWindowingFunc(), store=False)
        mel = zx.Feature(zx.mel_spectrogram, needs=spectrum, n_mels=16, store=True)
    return Clip


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    import soundfile as sf

    d = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(3)
    for i in range(12):
        n = int(11025 * (0.4 + 0.08 * i))
        t = np.arange(n) / 11025
        x = 0.3 * np.sin(2 * np.pi * (300 + 50 * i) * t) + 0.05 * rng.standard_normal(n)
        sf.write(d / f"clip{i:02d}.wav", x.astype("f4"), 11025, subtype="PCM_16")
    return d


@pytest.fixture(scope="module")
def real(clips, tmp_path_factory):
    from zounds_xr.documents import parts

    path = tmp_path_factory.mktemp("store") / "features.zarr"
    Clip = clip_graph(str(path))
    with pytest.MonkeyPatch.context() as mp:
        # small inner chunks: these clips' parts are sharded, as a large corpus's are
        mp.setattr(parts, "INNER_CHUNK_BYTES", 256)
        mp.setattr(parts, "SHARD_BYTES", 64 * 256)
        report = zx.ingest(zx.Directory(clips), Clip, scheduler="threads", progress=False)
    assert len(report.processed) == 12 and not report.failed
    return Clip, path


def test_windows_of_a_real_store_are_sel_of_the_documents(real):
    Clip, path = real
    window, hop = zx.Milliseconds(200), zx.Milliseconds(70)
    windows = FeatureWindows(Clip, "mel", window=window, hop=hop, label="duration")
    table = windows.windows()
    cat = Clip.catalog()
    assert set(table["document"]) == set(cat.index)
    rng = np.random.default_rng(0)
    for i in rng.choice(len(windows), size=12, replace=False):
        item = windows[int(i)]
        doc = Clip(item["document"]).mel
        assert item["label"] == cat.loc[item["document"], "duration"]
        assert item["x"].shape == (windows.window_frames, 16)
        frame = int(table["frame"].iloc[int(i)])
        np.testing.assert_array_equal(item["x"].numpy(), np.asarray(doc.values)[
            frame:frame + windows.window_frames])
        span = doc.sel(time=zx.TimeSlice(window, start=zx.Seconds(item["start"])))
        x, values = item["x"].numpy(), np.asarray(span.values)
        j = frame - int(round((span.time.values[0] / np.timedelta64(1, "ns")) * 1e-9
                              * 11025 / 128))
        assert 0 <= j and j + len(x) <= len(values)  # a run of the sel, cut to one shape
        np.testing.assert_array_equal(values[j:j + len(x)], x)
    # the same windows from the store's URL, without the document class
    by_url = FeatureWindows(str(path), "mel", window=window, hop=hop)
    assert len(by_url) == len(windows)
    assert torch.equal(by_url[len(by_url) // 2]["x"], windows[len(windows) // 2]["x"])


def test_a_real_store_through_workers(real):
    Clip, _ = real
    random = RandomWindows(Clip, "mel", window=zx.Milliseconds(100), seed=0)
    loader = torch.utils.data.DataLoader(random, batch_size=8, num_workers=2)
    seen = [(d, round(float(s), 9)) for b in loader
            for d, s in zip(b["document"], b["start"], strict=True)]
    assert len(seen) == len(set(seen)) == len(random)
    assert set(seen) == {key(i) for i in FeatureWindows(Clip, "mel", zx.Milliseconds(100))}


@pytest.mark.slow
def test_items_from_an_s3_store(real, clips):
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    import os

    from _s3_server import DUMMY_CREDENTIALS, S3Server

    Clip, _ = real
    saved = {k: os.environ.get(k) for k in DUMMY_CREDENTIALS}
    os.environ.update(DUMMY_CREDENTIALS)
    try:
        with S3Server() as server:
            server.create_bucket("windows")
            Remote = clip_graph("s3://windows/features.zarr",
                                storage_options=server.storage_options)
            with pytest.MonkeyPatch.context() as mp:
                from zounds_xr.documents import parts

                mp.setattr(parts, "INNER_CHUNK_BYTES", 256)  # sharded, as `real`
                mp.setattr(parts, "SHARD_BYTES", 64 * 256)
                report = zx.ingest(zx.Directory(clips), Remote, scheduler="threads",
                                   progress=False)
            assert len(report.processed) == 12 and not report.failed
            local = FeatureWindows(Clip, "mel", window=zx.Milliseconds(150))
            remote = FeatureWindows(Remote, "mel", window=zx.Milliseconds(150))
            assert len(remote) == len(local)
            by_url = FeatureWindows("s3://windows/features.zarr", "mel",
                                    window=zx.Milliseconds(150),
                                    storage_options=server.storage_options)
            assert torch.equal(by_url[3]["x"], remote[3]["x"])
            expected = {key(local[i]): local[i]["x"] for i in range(len(local))}
            for i in range(0, len(remote), 5):
                item = remote[i]
                assert torch.equal(item["x"], expected[key(item)])
            random = RandomWindows(Remote, "mel", window=zx.Milliseconds(150), seed=1,
                                   cache_bytes=4096)  # not all in the cache: more reads
            assert random.reader.array(0)[1] is not None  # the fast path reads it
            loader = torch.utils.data.DataLoader(random, batch_size=16, num_workers=2)
            got = {}
            for batch in loader:
                for d, s, x in zip(batch["document"], batch["start"], batch["x"], strict=True):
                    got[(d, round(float(s), 9))] = x
            assert got.keys() == expected.keys()
            assert all(torch.equal(got[k], expected[k]) for k in got)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_shuffled_samples_of_a_real_store_keep_the_labels(real):
    from zounds_xr.learn import ShuffledSamples

    Clip, _ = real
    s = ShuffledSamples(nsamples=20, length=3, seed=0, feature="mel")(Clip)
    assert s.dims == ("sample", "offset", "frequency") and s.shape == (20, 3, 16)
    assert s.sizes["frequency"] == 16 and "frequency" in s.coords
    for value, doc, frame in zip(s.values, s.document.values, s.frame.values, strict=True):
        np.testing.assert_array_equal(value, np.asarray(Clip(doc).mel.values)[frame:frame + 3])


def test_weighted_sampling_and_labels_from_any_column(fake):
    store, docs = fake
    cat = store.catalog()
    weights = pd.Series((cat["klass"] == 2) * 5.0 + (cat["klass"] == 1) * 1.0, index=cat.index)
    random = RandomWindows(store, "mel", window=zx.Milliseconds(100), seed=3, label="name",
                           weights=weights, num_samples=100, batch_size=10)
    batches = list(random)
    assert len(batches) == len(random) == 10
    seen = [(d, round(float(s), 9)) for b in batches
            for d, s in zip(b["document"], b["start"], strict=True)]
    assert len(seen) == len(set(seen)) == 100  # without replacement
    klass = cat.loc[[d for d, _ in seen], "klass"].to_numpy()
    assert set(klass) <= {1, 2}  # weight 0: never
    assert (klass[:50] == 2).mean() > 0.6  # heavier first
    names = [n for b in batches for n in b["label"]]
    assert names == cat.loc[[d for d, _ in seen], "name"].tolist()
    again = [(d, round(float(s), 9)) for b in RandomWindows(
        store, "mel", window=zx.Milliseconds(100), seed=3, weights=weights, num_samples=100,
        batch_size=10) for d, s in zip(b["document"], b["start"], strict=True)]
    assert again == seen
    with pytest.raises(zx.ParameterError, match="finite"):
        RandomWindows(store, "mel", window=zx.Milliseconds(100), weights=-weights)
    with pytest.raises(zx.ParameterError, match="not a column"):
        RandomWindows(store, "mel", window=zx.Milliseconds(100), weights="nope")
    with pytest.raises(zx.ParameterError, match="global"):
        RandomWindows(store, "mel", window=zx.Milliseconds(100), weights="klass",
                      shuffle="block")
    with pytest.raises(zx.ParameterError, match="shuffle"):
        RandomWindows(store, "mel", window=zx.Milliseconds(100), shuffle="buffer")


def test_damaged_chunks_raise_a_store_error(real, tmp_path):
    import shutil

    from zounds_xr.documents.chunks import ShardChunks

    _, path = real
    copy = tmp_path / "copy.zarr"
    shutil.copytree(path, copy)
    shards = sorted(p for p in copy.rglob("*") if p.is_file() and "/mel/mel/c/" in str(p))
    assert shards
    data = bytearray(shards[0].read_bytes())
    data[10] ^= 0xFF  # a bit flip inside the first inner chunk
    shards[0].write_bytes(bytes(data))
    windows = FeatureWindows(str(copy), "mel", window=zx.Milliseconds(100))
    assert ShardChunks.of(windows.reader.array(0)[0]) is not None  # the fast path reads it
    with pytest.raises(zx.StoreError, match="CRC32C"):
        list(RandomWindows(str(copy), "mel", window=zx.Milliseconds(100), batch_size=8))
    with pytest.raises(zx.StoreError, match="CRC32C"):
        [windows[i] for i in range(len(windows))]
    shards[0].write_bytes(bytes(data[: len(data) // 2]))  # truncated: its index is gone
    with pytest.raises(zx.StoreError):
        list(RandomWindows(str(copy), "mel", window=zx.Milliseconds(100), batch_size=8))
    # another shard's bytes, every checksum intact: not what the log committed there
    shutil.copytree(path, tmp_path / "swapped.zarr")
    shards = sorted(p for p in (tmp_path / "swapped.zarr").rglob("*")
                    if p.is_file() and "/mel/mel/c/" in str(p))
    shards[0].write_bytes(shards[1].read_bytes())
    with pytest.raises(zx.StoreError, match="committed"):
        list(RandomWindows(str(tmp_path / "swapped.zarr"), "mel", window=zx.Milliseconds(100),
                           batch_size=8))


def test_labels_written_after_ingest_and_the_catalog_version(real):
    Clip, path = real
    store = zx.open_store(str(path))
    ids = list(store.catalog().index)
    before = RandomWindows(store, "mel", window=zx.Milliseconds(100), seed=2, batch_size=4)
    version = store.set_labels("genre", {d: f"g{i % 3}" for i, d in enumerate(ids)})
    assert before.catalog_version == version - 1
    labelled = RandomWindows(str(path), "mel", window=zx.Milliseconds(100), seed=2,
                             batch_size=4, label="genre")
    assert labelled.catalog_version == version
    genre = dict(zip(ids, [f"g{i % 3}" for i in range(len(ids))], strict=True))
    for batch in labelled:
        assert batch["label"] == [genre[d] for d in batch["document"]]
    # a state records the version it read; resuming over a newer catalog needs version=
    it = iter(before)
    next(it)
    state = before.state_dict()
    assert state["version"] == version - 1
    with pytest.raises(zx.ParameterError, match="version="):
        RandomWindows(str(path), "mel", window=zx.Milliseconds(100), seed=2,
                      batch_size=4).load_state_dict(state)
    old = RandomWindows(str(path), "mel", window=zx.Milliseconds(100), seed=2, batch_size=4,
                        version=state["version"])
    old.load_state_dict(state)
    assert len(list(old)) == len(before) - 1
    with pytest.raises(zx.ParameterError, match="not a column"):
        FeatureWindows(str(path), "mel", window=zx.Milliseconds(100), label="genre",
                       version=version - 1)
