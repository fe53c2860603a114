"""The checked reader: from a catalog row to a lazy DataArray, trusting only the log.

The one read path of a store: ``Sound(doc_id).<feature>``, ``open_store(url)[doc_id]``,
``Sound.frames`` and the loaders and explorer built on them all come here::

    catalog row -> the checked array (opened once) -> a dask array over exactly the
    document's rows (:mod:`.rows`) -> indexes from cached definitions (:mod:`.labels`)

Parts never change, so what is opened of them (checked stores, arrays, group labels)
is kept in bounded LRU caches, never one object per document, shared by the readers of
one store in the process (``open_store`` again opens nothing again).

Every file a read touches is checked against its record in the log
(:mod:`.manifest`): a group's or an array's ``zarr.json`` (dtype, shape, chunk grid,
codecs, labels) byte for byte when it is opened, a shard's index when zarr fetches it,
each inner chunk by its checksum at its position. A catalog row is checked against the
array and its group before a read (offset and frames inside the array, frames equal to
the size of its time index, whose rate is the group's). Any failure is a
:class:`StoreError` naming the store, the part, the document, the feature and the key,
with the original exception chained; never fill values or another document's rows.
"""
from __future__ import annotations

import io
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import ClassVar, cast

import dask.array as da
import numpy as np
import pandas as pd
import soundfile as sf
import xarray as xr
import zarr
import zarr.errors
import zarr.storage
from zarr.abc.store import RangeByteRequest, SuffixByteRequest
from zarr.core.array import AsyncArray
from zarr.core.metadata import ArrayV3Metadata
from zarr.storage import StorePath

from ..core.errors import StoreError
from .chunks import ShardChunks
from .labels import Labels
from .manifest import check, crc32c, index_offsets
from .parts import FEATURE, INDEX
from .rows import CheckedRows, lazy_rows, read_error, stacked_rows

__all__ = ["CheckedArray", "MissingChunkError", "Reader", "forget_opened", "part_of"]

#: parts' checked stores, arrays and groups kept open in the process (each an LRU)
CACHED = 256


class _Opened:
    """A bounded LRU of what is opened of parts, by ``(store key, path)``."""

    def __init__(self, size: int = CACHED):
        self.size, self._lock = size, threading.Lock()
        self._items: OrderedDict[tuple, object] = OrderedDict()

    def get(self, key: tuple, make: Callable[[], object]):
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        value = make()  # (outside the lock: opening reads the storage)
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def forget(self, store: Hashable | None = None) -> None:
        with self._lock:
            for key in [k for k in self._items if store is None or k[0] == store]:
                del self._items[key]


_STORES, _ARRAYS, _GROUPS, _DIRECT = _Opened(), _Opened(), _Opened(), _Opened()


def forget_opened() -> None:
    """Forget what is opened of every store's parts (opened again when read)."""
    for cache in (_STORES, _ARRAYS, _GROUPS, _DIRECT):
        cache.forget()


def _frames_said(definition) -> int:
    """Return the frames a catalog row's time-index definition says (-1: unreadable)."""
    try:
        return int(json.loads(definition)["size"])
    except (TypeError, ValueError, KeyError):
        return -1


def part_of(path: str) -> str | None:
    """Return the part name in a path ``parts/<part>/...``."""
    bits = str(path).split("/")
    return bits[1] if len(bits) > 2 and bits[0] == "parts" else None


class MissingChunkError(StoreError):
    """A committed chunk or shard is missing from the store."""


class CheckedStore(zarr.storage.WrapperStore):
    """Show readers one feature group: only the files its records commit, checked.

    Each file is checked on every read (see the module docs). Shard indexes are
    cached (parts never change): a slice reads each shard's index once, then its
    inner chunks.
    """

    _INDEX_CACHE = 4096
    #: turned off only to measure what the checks cost (benchmarks/bench_store_log.py)
    checks: ClassVar[bool] = True

    def __init__(self, store, url: str, records: dict[str, dict]):
        super().__init__(store)
        self.url, self.records = url, records
        self._indexes: dict = {}

    def _with_store(self, store):
        return type(self)(store, self.url, self.records)

    def __getstate__(self):
        return {"_store": self._store, "url": self.url, "records": self.records}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._indexes = {}

    def _fail(self, key: str, problem: str, cls=StoreError) -> StoreError:
        return cls(f"the file {key!r} (part {part_of(key)!r}) of the feature store "
                   f"{self.url!r} {problem}")

    async def get(self, key, prototype, byte_range=None):
        if not self.checks:
            return await self._unchecked(key, prototype, byte_range)
        record = self.records.get(key)
        if record is None:
            if key.endswith("zarr.json") or "/c/" in key:
                raise self._fail(key, "is not committed by the store's log")
            return None  # zarr asking for something optional
        suffix = isinstance(byte_range, SuffixByteRequest)
        if suffix:
            found = self._indexes.get(key)
            if found is not None and len(found[0]) == byte_range.suffix:
                return found[0]
        buf = await self._store.get(key, prototype, byte_range)
        if buf is None:
            raise self._fail(key, "is missing", MissingChunkError)
        if isinstance(byte_range, RangeByteRequest):  # an inner chunk: most reads
            found = self._indexes.get(key)
            tail = found[1].get(byte_range.start) if found is not None else None
            data = buf.as_numpy_array()  # (a view: no copy)
            if tail is None or len(data) != byte_range.end - byte_range.start or \
                    data[-4:].tobytes().hex() != tail:
                raise self._fail(key, f"has bytes {byte_range.start}:{byte_range.end} that "
                                      f"are not the inner chunk committed there")
        elif byte_range is None:
            problem = check(buf.to_bytes(), record)
            if problem is not None:
                raise self._fail(key, f"does not match the log's record: {problem}")
        elif suffix:
            data = buf.to_bytes()
            if "index" not in record or len(data) != byte_range.suffix or \
                    crc32c(data[:-4]) != record["index"]:
                raise self._fail(key, "has a shard index that is damaged or not the one "
                                      "committed (a truncated, zeroed or swapped shard)")
            # each inner chunk's offset -> the CRC32C the log commits for it (its tail)
            tails = record.get("chunks", "").split(",")
            starts = {int(o): tails[i] for i, (o, _) in enumerate(index_offsets(data))
                      if i < len(tails)}
            if len(self._indexes) >= self._INDEX_CACHE:
                self._indexes.pop(next(iter(self._indexes), None), None)  # (threads)
            self._indexes[key] = (buf, starts)
        else:
            raise self._fail(key, f"was read with an unexpected byte range {byte_range}")
        return buf

    def metadata(self, path: str, read: Callable[[str], bytes | None]) -> dict:
        """Read the ``zarr.json`` of the node at ``path`` with ``read``, checked; parsed.

        ``read(key)`` reads a whole file (in this thread: no hand-off to zarr's).
        """
        key = f"{path}/zarr.json"
        record = self.records.get(key)
        if record is None and self.checks:
            raise self._fail(key, "is not committed by the store's log")
        data = read(key)
        if data is None:
            raise self._fail(key, "is missing", MissingChunkError)
        problem = check(data, record) if self.checks and record is not None else None
        if problem is not None:
            raise self._fail(key, f"does not match the log's record: {problem}")
        return json.loads(data)

    async def _unchecked(self, key, prototype, byte_range):
        if isinstance(byte_range, SuffixByteRequest):
            found = self._indexes.get(key)
            if found is not None and len(found[0]) == byte_range.suffix:
                return found[0]
        buf = await self._store.get(key, prototype, byte_range)
        if isinstance(byte_range, SuffixByteRequest) and buf is not None:
            self._indexes[key] = (buf, {})
        return buf


class CheckedArray:
    """Wrap a committed Zarr array so that every read failure is a :class:`StoreError`.

    The error names the store, the part, the array and the key, with the cause
    chained. This is what ``FeatureStore.array`` gives; other attributes are the
    Zarr array's.
    """

    def __init__(self, array: zarr.Array, url: str):
        self._array, self._url = array, url

    def __getattr__(self, name):
        return getattr(self._array, name)

    def __getitem__(self, key):
        try:
            return self._array[key]
        except StoreError:
            raise
        except Exception as exc:
            path = self._array.path
            raise read_error(f"the array {path!r} (part {part_of(path)!r}) of the feature "
                             f"store {self._url!r}", f"key {key!r}", exc) from exc

    def __len__(self) -> int:
        return int(self._array.shape[0])

    def __repr__(self) -> str:
        return f"<checked {self._array!r}>"


class _BlockDecoder:
    """Decodes one block of compressed audio (a dask ``map_blocks`` function)."""

    def __init__(self, array, offsets, block_frames, frames, channels, first_block, where):
        self.array, self.offsets, self.first_block = array, offsets, first_block
        self.block_frames, self.frames, self.channels = block_frames, frames, channels
        self.where = where

    def __call__(self, block_ids: np.ndarray) -> np.ndarray:
        i = int(block_ids[0])
        b = self.first_block + i
        try:
            raw = self.array[int(self.offsets[b]):int(self.offsets[b + 1])]
            data, _ = sf.read(io.BytesIO(raw.tobytes()), dtype="float32", always_2d=True)
        except Exception as exc:
            raise read_error(self.where, f"block {b}", exc) from exc
        n = min(self.block_frames, self.frames - i * self.block_frames)
        if data.shape[0] < n:
            data = np.concatenate([data, np.zeros((n - data.shape[0], data.shape[1]),
                                                  np.float32)])
        data = data[:n]
        return data[:, 0] if self.channels == 1 else data


class Reader:
    """Reads a store's committed arrays and documents.

    Parameters
    ----------
    zstore : zarr Store
    url : str
        What messages call the store.
    files_of : callable
        ``files_of(part) -> {key: record}``, the log's records of a committed part
        (:class:`StoreError` when the part is not committed).
    read : callable
        ``read(key) -> bytes`` (``None``: no such file): how a node's ``zarr.json`` is
        read (:meth:`.objects.ObjectStore.get`: a local file in this thread).
    key : hashable, optional
        Names the store for the process: readers of the same key share what they
        opened (part names are unique). Default: this reader only.
    """

    def __init__(self, zstore, url: str, files_of: Callable[[str], dict],
                 read: Callable[[str], bytes | None], key: Hashable | None = None):
        self.zstore, self.url, self.files_of = zstore, url, files_of
        self._read_file = read
        self.key = object() if key is None else key
        try:  # what readers see is read-only
            self._readonly = zstore if zstore.read_only else zstore.with_read_only(True)
        except NotImplementedError:
            self._readonly = zstore

    # parts never change: what is opened of them stays valid
    def _stores(self, group_path: str) -> CheckedStore:
        return _STORES.get((self.key, group_path), lambda: self._open_store(group_path))

    def _arrays(self, path: str) -> zarr.Array:
        return _ARRAYS.get((self.key, path), lambda: self._open_array(path))

    def _direct(self, path: str) -> ShardChunks | None:
        # a local array in the parts' layout is read without zarr (False: through zarr,
        # as with the checks turned off, which bench_store_log measures through zarr)
        found = _DIRECT.get((self.key, path), lambda: self._open_direct(path))
        return found or None

    def _open_direct(self, path: str) -> ShardChunks | bool:
        chunks = ShardChunks.of(self._arrays(path)) if CheckedStore.checks else None
        return chunks if chunks is not None and chunks.local else False

    def _groups(self, group_path: str) -> dict:
        return _GROUPS.get((self.key, group_path), lambda: self._open_group(group_path))

    def _open_store(self, group_path: str) -> CheckedStore:
        part = part_of(group_path)
        if part is None:
            raise StoreError(f"{group_path!r} is not in a part of the feature store "
                             f"{self.url!r}")
        files = self.files_of(part)
        prefix = f"{group_path}/"
        records = {k: r for k, r in files.items() if k.startswith(prefix)}
        return CheckedStore(self._readonly, self.url, records)

    def array(self, path: str) -> zarr.Array:
        """Open the read-only, checked Zarr array at ``path`` (kept: parts never change)."""
        return self._arrays(str(path))

    def _open_array(self, path: str) -> zarr.Array:
        store = self._stores(path.rsplit("/", 1)[0])
        try:
            # (what zarr.open_array does, its metadata read in this thread)
            metadata = ArrayV3Metadata.from_dict(store.metadata(path, self._read_file))
            return zarr.Array(AsyncArray(metadata, StorePath(store, path)))
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"cannot open the array {path!r} of the feature store "
                             f"{self.url!r}: {type(exc).__name__}: {exc}") from exc

    def group_info(self, group_path: str) -> dict:
        """Read a feature group's attrs, coordinate variables and labels, once.

        That is its attrs (``info``: ``zounds_xr:feature``, ``defs``:
        ``zounds_xr:index``), its coordinate variables (``coords``) and its
        :class:`~.labels.Labels` (kept: parts never change).
        """
        return self._groups(group_path)

    def _open_group(self, group_path: str) -> dict:
        store = self._stores(group_path)
        try:
            node = store.metadata(group_path, self._read_file)
            if node.get("node_type") != "group":
                raise ValueError(f"it is a {node.get('node_type')!r}, not a Zarr group")
            attrs = dict(node.get("attributes") or {})
            info = cast(dict, attrs.get(FEATURE) or {})
            name = group_path.rsplit("/", 1)[-1].split(".")[0]
            coords = {}
            dims = tuple(info.get("dims") or ())
            defs = cast(dict, attrs.get(INDEX) or {})
            if "codec" in info:
                dims = dims or (("time",) if info["codec"]["channels"] == 1 else
                                ("time", "channel"))
            else:
                data = self.array(f"{group_path}/{name}")
                dims = tuple(cast(ArrayV3Metadata, data.metadata).dimension_names or dims)
                for cname in str(data.attrs.get("coordinates") or "").split():
                    arr = self.array(f"{group_path}/{cname}")
                    attrs_c = {k: v for k, v in arr.attrs.items() if k != "zounds_xr:role"}
                    meta = cast(ArrayV3Metadata, arr.metadata)
                    coords[cname] = xr.Variable(tuple(meta.dimension_names or ()),
                                                arr[...], attrs=attrs_c)
            labels = Labels(dims, defs, coords)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"cannot open the feature group {group_path!r} of the feature "
                             f"store {self.url!r}: {type(exc).__name__}: {exc}") from exc
        return {"info": info, "defs": defs, "coords": coords, "name": name,
                "labels": labels}

    def read(self, row: Mapping, name: str, where: str | None = None) -> xr.DataArray:
        """Read a stored feature of a document (its catalog ``row``) as a lazy DataArray.

        Raises
        ------
        StoreError
            When the row is not consistent with the stored array (its rows lie outside
            it, its time index says another size or rate) or a file it needs is not
            the one the log commits; reading the data raises it for damaged chunks.
        """
        path = str(row[f"{name}.array"])
        what = where or f"document {row.get('id')!r}, feature {name!r}"
        where = f"{what} (part {part_of(path)!r}, array {path!r}) of the feature store " \
                f"{self.url!r}"
        try:
            offset, frames = int(row[f"{name}.offset"]), int(row[f"{name}.frames"])
            group_path = path.rsplit("/", 1)[0]
            group = self._groups(group_path)
            if "codec" in group["info"]:
                data = self._encoded(group_path, name, group["info"], offset, frames, where)
            else:
                array = self._arrays(path)
                if offset < 0 or frames < 0 or offset + frames > array.shape[0]:
                    raise StoreError(f"its catalog row says rows {offset}:{offset + frames}, "
                                     f"outside the array's {array.shape[0]} rows")
                data = lazy_rows(array, where, offset, offset + frames, path,
                                 self._direct(path))
            text = row.get(f"{name}.index")
            if not (isinstance(text, str) and text):
                raise StoreError(f"the catalog row of feature {name!r} has no time index")
            return group["labels"].label(data, name, text)
        except StoreError as exc:
            if where in str(exc):
                raise
            raise StoreError(f"cannot read {where}: {exc}") from exc

    def frames(self, feature: str, rows: pd.DataFrame, where: str) -> xr.DataArray:
        """Read the stored rows of many documents as one lazy DataArray.

        The documents (their catalog ``rows``) come one after the other, with dims
        ``("frame", ...)``; each array is read span by span in order
        (:func:`.rows.stacked_rows`).

        Raises
        ------
        StoreError
            When the documents' labels (shape, scale, dtype) differ, a feature is
            stored as encoded audio, or a row is inconsistent with its array.
        """
        paths = rows[f"{feature}.array"].to_numpy(dtype=object)
        offsets = rows[f"{feature}.offset"].to_numpy().astype(np.int64)
        counts = rows[f"{feature}.frames"].to_numpy().astype(np.int64)
        texts = rows[f"{feature}.index"].to_numpy(dtype=object)
        # each row's time index says its frames, as a read of the document checks (each
        # distinct definition parsed once: many documents share one)
        said = {t: _frames_said(t) for t in pd.unique(texts)}
        bad = np.flatnonzero(np.fromiter((said[t] for t in texts), np.int64,
                                         len(texts)) != counts)
        if len(bad):
            k = int(bad[0])
            raise StoreError(f"cannot read {where}: the catalog row of document "
                             f"{rows.index[k]!r} is inconsistent: {counts[k]} frames but the "
                             f"time index {texts[k]!r}")
        labels, first = None, None
        for path in dict.fromkeys(paths.tolist()):
            group = self._groups(str(path).rsplit("/", 1)[0])
            if "codec" in group["info"]:
                raise StoreError(f"feature {feature!r} is stored as encoded audio: read it "
                                 f"document by document")
            array = self._arrays(str(path))
            held = rows.index[paths == path]
            end = int((offsets + counts)[paths == path].max())
            if end > array.shape[0]:
                raise StoreError(f"cannot read {where}: the catalog rows of documents "
                                 f"{list(held[:3])} lie outside the array {path!r} of "
                                 f"{array.shape[0]} rows")
            key = (group["labels"].dims, tuple(array.shape[1:]), str(array.dtype),
                   group["labels"].key)
            if labels is None:
                labels, first = group["labels"], key
            elif key != first:
                raise StoreError(f"feature {feature!r}: these documents have different "
                                 f"labels (shape, scale or dtype) and cannot be stacked; "
                                 f"select documents of one kind with ids=")
        if labels is None:
            raise StoreError(f"no documents store {feature!r}")
        data = stacked_rows(lambda p: CheckedRows(self._arrays(p), f"{where}, array {p!r} "
                                                  f"of the feature store {self.url!r}",
                                                  direct=self._direct(p)),
                            paths, offsets, counts, feature)
        return labels.label(data, feature, dims=("frame", *labels.dims[1:]))

    def _encoded(self, group_path, name, info, first_block, frames, where) -> da.Array:
        codec = info["codec"]
        block = int(codec["block_frames"])
        offsets = np.asarray(self.array(f"{group_path}/{name}.offsets")[...])
        nblocks = -(-frames // block)
        if first_block < 0 or first_block + nblocks > len(offsets) - 1:
            raise StoreError(f"cannot read {where}: its catalog row says blocks "
                             f"{first_block}:{first_block + nblocks}, outside the "
                             f"{len(offsets) - 1} stored")
        sizes = tuple(min(block, frames - i * block) for i in range(nblocks))
        decoder = _BlockDecoder(self.array(f"{group_path}/{name}.bytes"), offsets, block,
                                frames, codec["channels"], first_block, where)
        ids = da.arange(nblocks, chunks=1)
        if codec["channels"] == 1:
            return ids.map_blocks(decoder, chunks=(sizes,), dtype=np.float32,
                                  meta=np.empty((0,), np.float32))
        return ids.map_blocks(decoder, chunks=(sizes, (codec["channels"],)), new_axis=1,
                              dtype=np.float32, meta=np.empty((0, 0), np.float32))

    def forget(self, parts) -> None:
        """Drop what is kept of this store's parts after ``parts`` were deleted.

        What is kept of all its parts goes: parts are rarely deleted, and opening
        again is cheap.
        """
        if parts:
            for cache in (_STORES, _ARRAYS, _GROUPS, _DIRECT):
                cache.forget(self.key)
