"""Lazy arrays over stored rows (``documents/rows.py``) and cached labels
(``documents/labels.py``): exactly numpy's rows, small reads stay small, many documents
read each stored chunk once."""
from __future__ import annotations

import json
import pickle
from fractions import Fraction

import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr
import zarr.storage
from zarr.codecs import Crc32cCodec
from _documents_helpers import RecordingGets
from hypothesis import given, settings
from hypothesis import strategies as st

import zounds_xr as zx
from zounds_xr.documents.chunks import ShardChunks
from zounds_xr.documents.labels import Labels, _time_labels, time_index
from zounds_xr.documents.rows import CheckedRows, block_rows, lazy_rows, stacked_rows
from zounds_xr.core.errors import StoreError
from zounds_xr.testing import assert_identical


def _sharded(rows=1000, width=3, inner=4, per_shard=8):
    """A sharded array of ``rows`` x ``width`` (values = their flat position)."""
    counting = RecordingGets(zarr.storage.MemoryStore())
    array = zarr.create_array(counting, name="a", shape=(rows, width), dtype="f4",
                              chunks=(inner, width), shards=(inner * per_shard, width))
    values = np.arange(rows * width, dtype="f4").reshape(rows, width)
    array[...] = values
    return zarr.open_array(counting, path="a", mode="r"), values, counting


ARRAY, VALUES, COUNTING = _sharded()
keys = st.one_of(
    st.builds(slice, st.none() | st.integers(-60, 60), st.none() | st.integers(-60, 60),
              st.none() | st.integers(-5, 5).filter(bool)),
    st.integers(-40, 39),
    st.lists(st.integers(-40, 39), min_size=1, max_size=5))


@settings(max_examples=100, deadline=None)
@given(start=st.integers(0, 900), key=keys, columns=st.sampled_from(
    [None, slice(None), slice(1, 3), [0, 2]]))
def test_checked_rows_index_like_numpy_on_the_documents_rows(start, key, columns):
    rows = CheckedRows(ARRAY, "document 'd'", start, start + 40)
    expected = VALUES[start:start + 40]
    full = key if columns is None else (key, columns)
    if isinstance(key, list) and isinstance(columns, list):
        expected = expected[key][:, columns]  # one list per axis: orthogonal, as zarr
    else:
        expected = expected[full]
    np.testing.assert_array_equal(rows[full], expected)


@settings(max_examples=40, deadline=None)
@given(start=st.integers(0, 999), length=st.integers(0, 400), data=st.data())
def test_a_selection_of_the_lazy_rows_reads_only_the_inner_chunks_it_needs(start, length,
                                                                           data):
    stop = min(1000, start + length)
    lazy = lazy_rows(ARRAY, "document 'd'", start, stop, "a")
    n = stop - start
    assert lazy.shape == (n, 3) and lazy.dtype == np.float32
    # dask chunks end at shard edges (32 rows) of the stored array
    assert all((start + e) % 32 == 0 for e in np.cumsum(lazy.chunks[0])[:-1])
    a = data.draw(st.integers(0, max(n - 1, 0)))
    b = data.draw(st.integers(a, n))
    COUNTING.gets.clear()
    np.testing.assert_array_equal(lazy[a:b].compute(), VALUES[start:stop][a:b])
    inner = {(start + i) // 4 for i in range(a, b)}
    shards = {i // 8 for i in inner}
    # no more requests than the inner chunks and the shard indexes touched
    assert len(COUNTING.gets) <= len(inner) + len(shards)
    assert {k for k, _ in COUNTING.gets} == {f"a/c/{s}/0" for s in shards}


# (not slices from below the start backwards: dask's answer is not numpy's there)
rows_keys = st.one_of(
    st.builds(slice, st.none() | st.integers(0, 60), st.none() | st.integers(-60, 60),
              st.none() | st.integers(-5, 5).filter(bool)),
    st.integers(-40, 39),
    st.lists(st.integers(-40, 39), min_size=1, max_size=5))
lazy_keys = st.one_of(
    rows_keys, st.tuples(rows_keys, st.sampled_from([slice(None), slice(1, 3), 2])),
    st.just(Ellipsis), st.tuples(st.just(Ellipsis), st.just(1)))


@settings(max_examples=100, deadline=None)
@given(start=st.integers(0, 900), length=st.integers(0, 100), key=lazy_keys,
       window=st.none() | st.tuples(st.integers(-120, 120), st.integers(-120, 120)))
def test_any_selection_of_the_lazy_rows_equals_numpy_on_the_rows(start, length, key,
                                                                 window):
    # dask's selections fused into the reads of the rows: numpy's answer, and so is a
    # selection of a window
    stop = min(1000, start + length)
    lazy, expected = lazy_rows(ARRAY, "document 'd'", start, stop, "a"), VALUES[start:stop]
    if window is not None:
        lazy, expected = lazy[slice(*window)], expected[slice(*window)]
    if isinstance(key, list) and len(key) and not (-len(expected) <= min(key) and
                                                   max(key) < len(expected)):
        return  # dask checks fancy indexes too: an IndexError either way
    try:
        want = expected[key]
    except IndexError:
        with pytest.raises(IndexError):
            lazy[key].compute()
        return
    got = lazy[key]
    assert isinstance(got, da.Array) and got.shape == want.shape
    np.testing.assert_array_equal(got.compute(), want)
    np.testing.assert_array_equal(np.asarray(got), want)


def test_the_lazy_rows_are_plain_dask_arrays_that_mix_with_others_in_xarray():
    # xarray refuses to compute or combine two types of chunked array: a dask array
    # subclass (one tried for small reads) breaks Dataset.load() and apply_ufunc
    lazy = lazy_rows(ARRAY, "document 'd'", 10, 300, "a")
    assert type(lazy) is da.Array and type(lazy[5:70]) is da.Array
    other = xr.DataArray(da.ones(290, chunks=100), dims="time")
    mixed = xr.Dataset({"rows": (("time", "c"), lazy), "other": other}).load()
    np.testing.assert_array_equal(mixed["rows"].values, VALUES[10:300])
    both = xr.apply_ufunc(np.add, xr.DataArray(lazy[:, 0], dims="time"), other,
                          dask="allowed")
    np.testing.assert_array_equal(both.values, VALUES[10:300, 0] + 1)


def test_lazy_rows_pickle_and_a_short_array_is_an_error():
    lazy = lazy_rows(ARRAY, "document 'd'", 10, 300, "a")
    again = pickle.loads(pickle.dumps(lazy))
    np.testing.assert_array_equal(again[5:70].compute(), VALUES[15:80])
    short = CheckedRows(ARRAY, "document 'x', feature 'f'", 990, 1010)
    np.testing.assert_array_equal(short[0:10], VALUES[990:1000])
    with pytest.raises(StoreError, match="fewer than its catalog says"):
        short[5:15]
    with pytest.raises(StoreError, match="document 'x', feature 'f'"):
        lazy_rows(ARRAY, "document 'x', feature 'f'", 990, 1010, "a").compute()


def test_a_failing_read_names_what_was_read():
    class Broken:
        shape, dtype, ndim = (10, 2), np.dtype("f4"), 2

        def __getitem__(self, key):
            raise OSError("the disk is gone")

    with pytest.raises(StoreError, match="cannot read document 'x'.*rows 3:5.*OSError"):
        CheckedRows(Broken(), "document 'x'", 0, 10)[3:5]


@settings(max_examples=40, deadline=None)
@given(docs=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 990), st.integers(0, 90)),
                     min_size=1, max_size=10))
def test_stacked_rows_are_each_documents_rows_one_after_the_other(docs):
    other, other_values, counting = _sharded(rows=1000, width=3, inner=8, per_shard=4)
    arrays = {"p0": (ARRAY, VALUES, COUNTING), "p1": (other, other_values, counting)}
    paths = [f"p{k}" for k, _, _ in docs]
    offsets = [o for _, o, _ in docs]
    counts = [min(n, 1000 - o) for _, o, n in docs]
    lazy = stacked_rows(lambda p: CheckedRows(arrays[p][0], f"array {p}"), paths, offsets,
                        counts, "f")
    expected = np.concatenate([arrays[p][1][o:o + n] for p, o, n in
                               zip(paths, offsets, counts, strict=True)])
    COUNTING.gets.clear()
    counting.gets.clear()
    np.testing.assert_array_equal(lazy.compute(), expected)
    for _, _, store in arrays.values():  # no inner chunk is read twice
        chunk_reads = [(k, repr(r)) for k, r in store.gets if r is not None]
        assert len(chunk_reads) == len(set(chunk_reads))
    # chunks of about one shard (32 rows here)
    assert sum(lazy.chunks[0]) == len(expected)


def test_stacked_rows_of_sorted_contiguous_documents_are_one_read_per_shard():
    offsets = list(range(0, 1000, 10))
    lazy = stacked_rows(lambda p: CheckedRows(ARRAY, "a"), ["a"] * 100, offsets, [10] * 100,
                        "f")
    assert lazy.numblocks[0] == 1000 // block_rows(ARRAY) + (1000 % 32 > 0)
    np.testing.assert_array_equal(lazy.compute(), VALUES)
    assert stacked_rows(lambda p: CheckedRows(ARRAY, "a"), ["a"], [5], [0], "f").shape == (
        0, 3)


# ---------------------------------------------------------------------- labels
def test_time_definitions_are_parsed_once_and_checked():
    hop = zx.SampleRate(zx.Milliseconds(10), zx.Milliseconds(25))
    text = json.dumps(zx.TimeIndex.from_params(5, hop).to_attrs())
    index = time_index(text, 5)
    assert time_index(text, 5) is index and index.size == 5
    assert index.frequency == Fraction(1, 100) and index.duration == Fraction(1, 40)
    with pytest.raises(StoreError, match="time-index definition"):
        time_index("{not json", 3)
    with pytest.raises(StoreError, match="it has 5 frames, the row 4"):
        time_index(text, 4)
    scale = zx.LinearScale(zx.FrequencyBand(0, 100), 4)
    defs = {"frequency": {**zx.frequency_coords(scale).xindexes["frequency"].to_attrs(),
                          "coord": "frequency"},
            "time": {"type": "TimeIndex", "frequency": "1/100", "duration": "1/50"}}
    data = np.zeros((5, 4), "f4")
    labels = Labels(("time", "frequency"), defs, {})
    with pytest.raises(StoreError, match="does not have the rate of its stored array"):
        labels.label(data, "x", text)
    defs["time"]["duration"] = "1/40"
    extra = xr.Variable("frequency", np.arange(4.0), attrs={"units": "bin"})
    labels = Labels(("time", "frequency"), defs, {"bin": extra})
    out = labels.label(data, "x", text)
    assert out.xindexes["time"] is index and out.name == "x"
    expected = xr.DataArray(data, dims=("time", "frequency"), name="x").assign_coords(
        xr.Coordinates.from_xindex(index)).assign_coords(
        zx.frequency_coords(scale)).assign_coords(bin=extra)
    assert_identical(out, expected)
    # each array has its own coordinate variables: editing one edits no other
    out["bin"].attrs["edited"] = True
    assert "edited" not in labels.label(data, "x", text)["bin"].attrs
    stacked = labels.label(data, "x", dims=("frame", "frequency"))
    assert stacked.dims == ("frame", "frequency") and "time" not in stacked.coords
    # a time definition is parsed once (a bounded cache)
    assert _time_labels.cache_info().maxsize == 4096


# ----------------------------------------------------------- direct reads (chunks.py)
def _local_sharded(root, rows=300, width=3, inner=4, per_shard=8):
    """A local sharded array in the parts' layout (bytes + CRC32C; values = position)."""
    array = zarr.create_array(zarr.storage.LocalStore(root), name="a", shape=(rows, width),
                              dtype="f4", chunks=(inner, width),
                              shards=(inner * per_shard, width), compressors=[Crc32cCodec()])
    values = np.arange(rows * width, dtype="f4").reshape(rows, width)
    array[...] = values
    return zarr.open_array(zarr.storage.LocalStore(root), path="a", mode="r"), values


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    return _local_sharded(tmp_path_factory.mktemp("direct"))


@settings(max_examples=60, deadline=None)
@given(start=st.integers(0, 299), length=st.integers(0, 120), key=st.builds(
    slice, st.none() | st.integers(-130, 130), st.none() | st.integers(-130, 130)),
    columns=st.sampled_from([None, slice(None), slice(0, 3), slice(1, 3)]))
def test_direct_reads_return_exactly_zarrs_rows(local, start, length, key, columns):
    array, values = local
    direct = ShardChunks.of(array)
    assert direct is not None and direct.local
    stop = min(start + length, 300)
    rows = CheckedRows(array, "document 'd'", start, stop, direct)
    full = key if columns is None else (key, columns)
    got = rows[full]
    np.testing.assert_array_equal(got, values[start:stop][full])
    assert got.dtype == values.dtype and got.flags.writeable


def test_direct_reads_of_damaged_shards_raise_store_errors(tmp_path):
    array, values = _local_sharded(tmp_path)
    shard = tmp_path / "a" / "c" / "1" / "0"
    good = shard.read_bytes()

    def read(lo, hi):
        return CheckedRows(array, "document 'd'", 0, 300, ShardChunks.of(array))[lo:hi]

    np.testing.assert_array_equal(read(30, 70), values[30:70])
    damaged = bytearray(good)
    damaged[5] ^= 0x01  # a bit flip inside the shard's first inner chunk
    shard.write_bytes(bytes(damaged))
    with pytest.raises(StoreError, match=r"document 'd'.*a/c/1/0.*CRC32C"):
        read(32, 36)
    np.testing.assert_array_equal(read(36, 40), values[36:40])  # other chunks are whole
    shard.write_bytes(good[:len(good) // 2])  # truncated: its index is gone
    with pytest.raises(StoreError, match=r"a/c/1/0"):
        read(32, 36)
    shard.unlink()
    with pytest.raises(StoreError, match=r"a/c/1/0.*cannot be read"):
        read(32, 36)


@settings(max_examples=40, deadline=None)
@given(position=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_a_flipped_bit_anywhere_in_a_shard_is_caught_by_a_direct_read(tmp_path_factory,
                                                                       position, bit):
    # a bit of a chunk's values, of its checksum, or of the shard's index: every one is
    # under a CRC32C, so reading the shard's rows must fail, never return other values
    root = tmp_path_factory.mktemp("flip")
    array, values = _local_sharded(root)
    shard = root / "a" / "c" / "1" / "0"  # rows 32..63
    data = bytearray(shard.read_bytes())
    data[int(position * len(data))] ^= 1 << bit
    shard.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"a/c/1/0"):
        CheckedRows(array, "document 'd'", 0, 300, ShardChunks.of(array))[32:64]
    # the other shards read as stored
    np.testing.assert_array_equal(
        CheckedRows(array, "document 'd'", 0, 300, ShardChunks.of(array))[0:32], values[:32])


@settings(max_examples=30, deadline=None)
@given(dtype=st.sampled_from(["<f4", "<f2", "<i2", "<f8"]),
       rest=st.sampled_from([(), (3,), (2, 5)]), inner=st.sampled_from([1, 4, 8]),
       per_shard=st.sampled_from([1, 2, 8]), rows=st.integers(1, 300),
       writes=st.lists(st.tuples(st.integers(0, 299), st.integers(0, 120)), min_size=1,
                       max_size=4))
def test_shards_written_directly_are_the_files_zarr_writes(dtype, rest, inner, per_shard,
                                                            rows, writes):
    # write_rows encodes whole shards itself: the same files and log records as zarr's
    from zounds_xr.documents.chunks import write_rows
    from zounds_xr.documents.manifest import RecordingStore

    stores = []
    for direct in (False, True):
        store = RecordingStore(zarr.storage.MemoryStore())
        array = zarr.create_array(store, name="a", shape=(rows, *rest), dtype=dtype,
                                  chunks=(inner, *rest), shards=(inner * per_shard, *rest),
                                  compressors=[Crc32cCodec()], fill_value=0,
                                  config={"write_empty_chunks": True})
        rng = np.random.default_rng(rows)
        for lo, n in writes:
            lo, n = min(lo, rows), min(n, rows - min(lo, rows))
            block = (rng.standard_normal((n, *rest)) * 100).astype(dtype)
            if direct:
                write_rows(array, lo, block)
            else:
                array[lo:lo + n] = block
        files = {k: v.to_bytes() for k, v in store._store._store_dict.items()}
        stores.append((files, store.records))
    assert stores[0] == stores[1]
