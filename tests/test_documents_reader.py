"""The read path (``documents/reader.py``): a selection returns exactly the stored rows,
small reads stay small, bulk reads read each shard once, caches stay bounded."""
from __future__ import annotations

import pickle
import shutil
from fractions import Fraction

import dask
import numpy as np
import pytest
import xarray as xr
import zarr
import zarr.storage
from _documents_helpers import RecordingGets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zounds_xr as zx
from zounds_xr.documents import FeatureStore, parts
from zounds_xr.documents.catalog import meta_columns
from zounds_xr.documents.log import entry_key
from zounds_xr.testing import assert_identical

#: documents of the test store: (frames of "spec", rate of its frames)
LENGTHS = [1, 7, 40, 130, 333, 64, 65, 1000]
#: the module-scoped store is shared by every example
FIXTURE = [HealthCheck.function_scoped_fixture]
HOP = zx.SampleRate(zx.Milliseconds(10), zx.Milliseconds(25))
BINS = 16


def graph(store):
    class Doc(zx.Document):
        spec = zx.Feature(zx.fft, needs=zx.Document.audio, store=True)
        env = zx.Feature(np.abs, needs=zx.Document.audio, store=True)
    return zx.zarr_settings(store)(Doc)


def _write(store, lengths, seed=0, per_part=3):
    """Documents written by the real writer (``PartWriter``) from seeded random frames:
    ``spec`` (time, frequency) at ``HOP`` and ``env`` (time) at 1 kHz."""
    Doc = graph(store)
    rng = np.random.default_rng(seed)
    scale = zx.LinearScale(zx.FrequencyBand(0, 8000), BINS)
    ids = []
    for first in range(0, len(lengths), per_part):
        part = store.part()
        for k in range(first, min(len(lengths), first + per_part)):
            n = lengths[k]
            sinks = part.sinks({f: Doc._feature_info(f) for f in ("spec", "env")})
            for a in range(0, n, 50):  # several chunks, as a streaming writer sends them
                m = min(50, n - a)
                spec = xr.DataArray(rng.random((m, BINS), dtype=np.float32),
                                    dims=("time", "frequency"))
                spec = spec.assign_coords(xr.Coordinates.from_xindex(zx.TimeIndex.from_params(
                    m, HOP, start=a * Fraction(1, 100)))).assign_coords(
                    zx.frequency_coords(scale))
                sinks["spec"](spec)
            env = xr.DataArray(rng.random(3 * n, dtype=np.float32), dims=("time",))
            sinks["env"](env.assign_coords(xr.Coordinates.from_xindex(
                zx.TimeIndex.from_params(3 * n, Fraction(1, 1000)))))
            doc_id = f"doc{k:03d}"
            meta = {"uri": f"/corpus/{doc_id}.wav", "samplerate": 8000, "channels": 1,
                    "licensing": None, "description": None, "tags": None,
                    "frames": 80 * n, "duration_seconds": n / 100}
            part.finish_document(doc_id, meta_columns(meta))
            ids.append(doc_id)
        part.commit()
    return Doc, ids


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A store whose arrays have small inner chunks (4 rows of spec) and shards (4
    chunks), so that documents span several shards."""
    path = tmp_path_factory.mktemp("reader") / "f.zarr"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(parts, "INNER_CHUNK_BYTES", 4 * BINS * 4)
        mp.setattr(parts, "SHARD_BYTES", 4 * parts.INNER_CHUNK_BYTES)
        Doc, ids = _write(FeatureStore(path), LENGTHS)
    return path, Doc, ids


def _raw(path, doc_id, feature):
    """The document's rows of ``feature`` read straight from Zarr."""
    cat = zx.open_store(path).catalog()
    array = zarr.open_array(zarr.storage.LocalStore(path, read_only=True),
                            path=cat.loc[doc_id, f"{feature}.array"], mode="r")
    offset, frames = int(cat.loc[doc_id, f"{feature}.offset"]), int(
        cat.loc[doc_id, f"{feature}.frames"])
    return array[offset:offset + frames]


def _overlapping(frames, start, seconds, hop=Fraction(1, 100), window=Fraction(1, 40)):
    """Frames whose extent ``[i * hop, i * hop + window)`` overlaps ``[start, start +
    seconds)``, by brute force."""
    return [i for i in range(frames) if i * hop < start + seconds and i * hop + window > start]


@settings(max_examples=30, deadline=None, suppress_health_check=FIXTURE)
@given(doc=st.integers(0, len(LENGTHS) - 1), start_ms=st.integers(0, 10_500),
       length_ms=st.integers(1, 3000), via=st.sampled_from(["document", "open_store"]))
def test_a_time_slice_returns_exactly_the_stored_rows_it_overlaps(stored, doc, start_ms,
                                                                  length_ms, via):
    path, Doc, ids = stored
    doc_id = ids[doc]
    lazy = Doc(doc_id).spec if via == "document" else zx.open_store(path)[doc_id]["spec"]
    start, seconds = Fraction(start_ms, 1000), Fraction(length_ms, 1000)
    out = lazy.sel(time=zx.TimeSlice(zx.Milliseconds(length_ms),
                                     start=zx.Milliseconds(start_ms)))
    rows = _overlapping(LENGTHS[doc], start, seconds)
    raw = _raw(path, doc_id, "spec")
    np.testing.assert_array_equal(out.values, raw[rows[0]:rows[-1] + 1] if rows else raw[:0])
    index = out.xindexes["time"]
    assert index.size == len(rows)
    if rows:
        assert index.start == rows[0] * Fraction(1, 100)


@settings(max_examples=25, deadline=None, suppress_health_check=FIXTURE)
@given(doc=st.integers(0, len(LENGTHS) - 1), data=st.data())
def test_positional_selections_equal_numpy_on_the_raw_rows(stored, doc, data):
    path, Doc, ids = stored
    n = LENGTHS[doc]
    lazy = Doc(ids[doc]).spec
    raw = _raw(path, ids[doc], "spec")
    step = data.draw(st.sampled_from([None, 1, 2, 5, -1, -3]))
    # (dask itself sizes a reversed slice that starts before the first row wrongly:
    # da.from_array(np.arange(1))[-3:-3:-1] has one element; numpy's has none)
    a = data.draw(st.integers(-n if step is not None and step < 0 else -n - 2, n + 2))
    b = data.draw(st.integers(-n - 2, n + 2))
    np.testing.assert_array_equal(lazy.isel(time=slice(a, b, step)).values, raw[a:b:step])
    picks = data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=6))
    np.testing.assert_array_equal(lazy.isel(time=picks).values, raw[picks])
    i = data.draw(st.integers(-n, n - 1))
    np.testing.assert_array_equal(lazy.isel(time=i).values, raw[i])
    bins = data.draw(st.lists(st.integers(0, BINS - 1), min_size=1, max_size=4, unique=True))
    np.testing.assert_array_equal(lazy.isel(time=slice(a, b), frequency=bins).values,
                                  raw[a:b][:, bins])


def test_the_lazy_array_keeps_labels_and_one_dimensional_features(stored):
    path, Doc, ids = stored
    doc = Doc(ids[4])
    spec, env = doc.spec, doc.env
    assert isinstance(spec.data, dask.array.Array) and spec.dims == ("time", "frequency")
    assert type(spec.xindexes["time"]).__name__ == "TimeIndex"
    assert type(spec.xindexes["frequency"]).__name__ == "FrequencyIndex"
    assert spec.xindexes["time"].frequency == Fraction(1, 100)
    assert spec.xindexes["time"].duration == Fraction(1, 40)
    np.testing.assert_array_equal(env.values, _raw(path, ids[4], "env"))
    assert env.xindexes["time"].frequency == Fraction(1, 1000) and env.dims == ("time",)
    # the lazy array is chunked at shard edges of the stored array (16 rows here)
    offset = int(Doc.catalog().loc[ids[4], "spec.offset"])
    edges = np.cumsum((offset, *spec.data.chunks[0]))[1:-1]
    assert all(e % 16 == 0 for e in edges) and max(spec.data.chunks[0]) <= 16
    # pickles (to dask workers) and reads the same rows after
    again = pickle.loads(pickle.dumps(spec))
    np.testing.assert_array_equal(again.values, spec.values)
    assert_identical(again, spec)


def test_a_store_opened_afresh_gives_the_same_arrays(stored):
    path, Doc, ids = stored
    for doc_id in ids[:4]:
        fresh = zx.open_store(path)[doc_id]
        assert sorted(fresh) == ["env", "spec"]
        assert_identical(fresh["spec"], Doc(doc_id).spec)


def test_a_small_selection_reads_only_the_inner_chunks_it_touches(tmp_path):
    # a long document in shards of 64 inner chunks of 4 rows: a slice of 10 rows touches
    # 3 or 4 inner chunks and one or two shards, whatever dask's chunks around it
    path = tmp_path / "f.zarr"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(parts, "INNER_CHUNK_BYTES", 4 * BINS * 4)
        mp.setattr(parts, "SHARD_BYTES", 64 * parts.INNER_CHUNK_BYTES)
        _, ids = _write(FeatureStore(path), [3000], per_part=1)
    counting = RecordingGets(zarr.storage.LocalStore(path, read_only=True))
    Doc = graph(FeatureStore(counting))
    Doc(ids[0]).spec.isel(time=slice(0, 3)).values  # metadata, first shard index
    for first in (5, 700, 1021, 2990):
        doc = Doc(ids[0])
        counting.gets.clear()
        values = doc.spec.isel(time=slice(first, first + 10)).values
        chunk_reads = [k for k, r in counting.gets if "/c/" in k and r is not None]
        assert values.shape == (10, BINS)
        touched = len(range(first // 4, (first + 9) // 4 + 1))
        shards = len(range(first // 256, (first + 9) // 256 + 1))
        # inner chunks are fetched by byte range, plus the index of each shard touched
        assert touched <= len(chunk_reads) <= touched + shards, counting.gets


def test_frames_reads_each_shard_once_in_order_whatever_the_order_of_ids(stored):
    path, Doc, ids = stored
    counting = RecordingGets(zarr.storage.LocalStore(path, read_only=True))
    Reader = graph(FeatureStore(counting))
    rng = np.random.default_rng(0)
    order = list(rng.permutation(ids))
    order = order + order[:2]  # an id twice is read twice, from the same read
    expected = np.concatenate([_raw(path, i, "spec") for i in order])
    Reader.frames("spec", order).values  # opens the arrays' metadata
    counting.gets.clear()
    out = Reader.frames("spec", order)
    assert out.dims == ("frame", "frequency") and "time" not in out.coords
    np.testing.assert_array_equal(out.values, expected)
    shard_reads = [(k, r) for k, r in counting.gets if "/c/" in k]
    # a shard is read at most once per inner chunk (no chunk twice)
    assert len(shard_reads) == len(set(shard_reads)), shard_reads
    assert out.xindexes["frequency"].equals(Doc(ids[0]).spec.xindexes["frequency"])


@settings(max_examples=15, deadline=None, suppress_health_check=FIXTURE)
@given(picks=st.lists(st.integers(0, len(LENGTHS) - 1), min_size=1, max_size=12))
def test_frames_of_any_ids_are_the_raw_rows_one_after_the_other(stored, picks):
    path, Doc, ids = stored
    chosen = [ids[k] for k in picks]
    out = Doc.frames("spec", chosen)
    assert out.data.chunks[0] and sum(out.data.chunks[0]) == sum(LENGTHS[k] for k in picks)
    np.testing.assert_array_equal(
        out.values, np.concatenate([_raw(path, i, "spec") for i in chosen]))


def test_a_document_opens_only_the_feature_asked_for(stored):
    path, Doc, ids = stored
    counting = RecordingGets(zarr.storage.LocalStore(path, read_only=True))
    features = FeatureStore(counting)[ids[3]]  # (a store object: nothing shared)

    def opened():
        return {k for k, _ in counting.gets if k.startswith("parts/")}

    assert sorted(features) == ["env", "spec"] and len(features) == 2
    assert not opened()  # nothing opened yet
    spec = features["spec"]
    assert features["spec"] is spec  # built once
    assert opened() and not any("/env" in k for k in opened())  # spec's files, not env's
    with pytest.raises(KeyError):
        features["missing"]


def _reads(monkeypatch) -> list[tuple[str, str]]:
    """Record every read of a local store: ``(how, key)``, how ``get`` (a whole file of
    the log or catalog), ``size`` or ``zarr`` (arrays)."""
    from zounds_xr.documents.objects import ObjectStore

    reads: list[tuple[str, str]] = []
    get, size, zget = ObjectStore.get, ObjectStore.size, zarr.storage.LocalStore.get
    monkeypatch.setattr(ObjectStore, "get",
                        lambda self, k: reads.append(("get", k)) or get(self, k))
    monkeypatch.setattr(ObjectStore, "size",
                        lambda self, k: reads.append(("size", k)) or size(self, k))

    async def zarr_get(self, key, prototype=None, byte_range=None):
        reads.append(("zarr", key))
        return await zget(self, key, prototype, byte_range)

    monkeypatch.setattr(zarr.storage.LocalStore, "get", zarr_get)
    return reads


def test_a_store_opened_again_in_the_process_opens_nothing_again(tmp_path, monkeypatch):
    path = tmp_path / "f.zarr"
    _, ids = _write(FeatureStore(path), [5, 6, 300])
    expected = {i: _raw(path, i, "spec") for i in ids}
    for i in ids:
        np.testing.assert_array_equal(zx.open_store(path)[i]["spec"].values, expected[i])
    state = FeatureStore(path).log.state()
    reads = _reads(monkeypatch)
    for i in ids:  # each a new object
        np.testing.assert_array_equal(zx.open_store(path)[i]["spec"].values, expected[i])
    # per open: the root, the newest log entry (checked to be the one read before) and
    # the next one (a new commit?), each catalog fragment's size; then only chunks
    assert {k for how, k in reads if how == "get"} == {
        "zarr.json", entry_key(state.version), entry_key(state.version + 1)}
    assert {k for how, k in reads if how == "size"} == set(state.fragments)
    assert all("/c/" in k for how, k in reads if how == "zarr"), reads


def test_a_store_opened_again_sees_other_writers_and_a_store_made_again(tmp_path):
    path = tmp_path / "f.zarr"
    _, ids = _write(FeatureStore(path), [5, 6])
    assert zx.open_store(path)["doc000"]["spec"].sizes["time"] == 5
    # another process commits (a writer sharing nothing with this process's objects)
    _write(FeatureStore(zarr.storage.LocalStore(path)), [7], seed=1)
    fresh = zx.open_store(path)
    assert fresh.catalog().loc["doc000", "spec.frames"] == 7
    np.testing.assert_array_equal(fresh["doc000"]["spec"].values, _raw(path, "doc000",
                                                                        "spec"))
    # the store deleted and written again at the same place, with fewer or as many
    # commits: never the rows of the old one
    for lengths in ([9], [3, 4, 8]):
        shutil.rmtree(path)
        _write(FeatureStore(zarr.storage.LocalStore(path)), lengths, seed=2)
        again = zx.open_store(path)
        assert list(again.catalog()["spec.frames"]) == lengths
        for i in range(len(lengths)):
            np.testing.assert_array_equal(again[f"doc{i:03d}"]["spec"].values,
                                          _raw(path, f"doc{i:03d}", "spec"))


def test_opening_a_store_again_parses_no_catalog_twice_and_sees_new_commits(tmp_path,
                                                                          monkeypatch):
    from zounds_xr.documents import catalog as _catalog

    path = tmp_path / "f.zarr"
    _, ids = _write(FeatureStore(path), [5, 6])
    calls = []
    resolve = _catalog.resolve
    monkeypatch.setattr(_catalog, "resolve",
                        lambda *a, **k: calls.append(1) or resolve(*a, **k))
    first = zx.open_store(path).catalog()
    again = zx.open_store(path).catalog()  # a new object: fragments checked, not parsed
    assert list(first.index) == list(again.index) == ids and len(calls) <= 1
    _write(FeatureStore(path), [7], seed=1)  # another writer commits doc000 again
    fresh = zx.open_store(path)
    assert fresh.catalog().loc["doc000", "spec.frames"] == 7
    assert fresh["doc000"]["spec"].sizes["time"] == 7 and len(calls) == 2
