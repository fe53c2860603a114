"""The read path: a document's stored feature as a lazy DataArray, straight from its
catalog row.

One short path, used by ``Sound(doc_id).<feature>``, ``open_store(url)[doc_id]``,
``Sound.frames`` and everything built on them::

    catalog row -> the part's array (opened once) -> a dask array over exactly the
    document's rows -> indexes from cached definitions

What never changes is built once and kept: parts are immutable, so an opened array,
the labels a part's array shares (its frequency index, small coordinates) and a parsed
time-index definition are valid for as long as anything refers to them. They are kept
in bounded LRU caches (:class:`LRU`), never one object per document, so a reader of a
10^6-document store stays small.

Small reads stay small: the dask array of a document reads through
``dask.array.core.getter``, so dask's optimizer pushes a selection into the read (a 2 s
slice of a 1-hour feature reads the rows it needs and the inner chunks they lie in, not
the dask block around them). Bulk reads stay bulk: :meth:`FeatureReader.frames` reads
the rows of many documents span by span, each array in order, and puts them in the
order asked for afterwards.
"""
from __future__ import annotations

import bisect
import hashlib
import importlib
import io
import itertools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, cast

import dask.array as da
import numpy as np
import soundfile as sf
import xarray as xr
import zarr
from dask.highlevelgraph import HighLevelGraph
from zarr.core.metadata import ArrayV3Metadata

from ..dimensions import INDEX_TYPES
from ..errors import StoreError, ZoundsError
from ..timeseries.index import TimeIndex

__all__ = ["LRU", "CheckedRows", "FeatureReader", "Labels", "lazy_rows", "time_index"]

#: at most about this many dask chunks in the lazy array of one document
MAX_TASKS = 512


class LRU:
    """A bounded, thread-safe mapping that forgets the least recently used entries."""

    def __init__(self, size: int):
        self.size = size
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, default=None):
        with self._lock:
            try:
                self._data.move_to_end(key)
            except KeyError:
                return default
            return self._data[key]

    def put(self, key, value):
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def drop(self, keep: Callable[[Any], bool]) -> None:
        """Forget the entries whose key ``keep`` refuses."""
        with self._lock:
            for key in [k for k in self._data if not keep(k)]:
                del self._data[key]

    def __len__(self) -> int:
        return len(self._data)


# ---------------------------------------------------------------------- labels
#: parsed time-index definitions, by (catalog text, frames): a store's documents share
#: a few definitions (one per rate and start), so this stays small and hits
_TIME_INDEXES = LRU(4096)


def time_index(definition: str, size: int) -> TimeIndex:
    """The :class:`TimeIndex` of a catalog's ``"<feature>.index"`` text, parsed once."""
    key = (definition, size)
    found = _TIME_INDEXES.get(key)
    if found is None:
        try:
            found = TimeIndex.from_attrs(json.loads(definition), size=size)
        except (ValueError, TypeError, KeyError, ZoundsError) as exc:
            raise StoreError(f"damaged time-index definition {definition!r} in the "
                             f"catalog: {type(exc).__name__}: {exc}") from exc
        _TIME_INDEXES.put(key, found)
    return found


def decode_index(dim: Hashable, definition: Mapping, size: int | None = None) -> xr.Index:
    """An index rebuilt from its stored definition (``to_attrs()`` plus ``coord`` and,
    for index types defined outside zounds_xr, ``module``)."""
    kind = definition.get("type")
    module = definition.get("module")
    cls = getattr(importlib.import_module(module), kind) if module else \
        INDEX_TYPES.get(str(kind))
    if cls is None:
        raise StoreError(f"unknown index type {kind!r} in the store")
    kwargs: dict[str, Any] = {"dim": dim, "coord_name": definition.get("coord", dim)}
    if cls is TimeIndex:
        kwargs["size"] = size
    attrs = {k: v for k, v in definition.items() if k not in ("coord", "module")}
    return cls.from_attrs(attrs, **kwargs)


class Labels:
    """What the documents of one stored array share: dims, and the coordinates and
    indexes of every dim but ``time`` (built once per array)."""

    def __init__(self, dims: tuple[Hashable, ...], defs: Mapping, coords: Mapping):
        self.dims = dims
        self.variables: dict[Hashable, xr.Variable] = {}
        self.indexes: dict[Hashable, xr.Index] = {}
        for dim, definition in defs.items():
            if dim == "time":
                continue
            index = decode_index(dim, definition)
            self.indexes.update(dict.fromkeys(index.create_variables(), index))
            self.variables.update(index.create_variables())
        for name, var in coords.items():
            self.variables.setdefault(name, var)
        # what must agree for documents to be stacked (Sound.frames)
        self.key = json.dumps({str(k): v for k, v in defs.items() if k != "time"},
                              sort_keys=True, default=str)

    def coords(self, index: TimeIndex | None) -> xr.Coordinates:
        """These labels plus ``index`` along ``time`` (none: no time coordinate)."""
        if index is None:
            return xr.Coordinates(self.variables, indexes=self.indexes)
        variables = {**index.create_variables(), **self.variables}
        return xr.Coordinates(variables, indexes={index.dim: index, **self.indexes})


# ---------------------------------------------------------------------- reading rows
def _rows_of(key) -> str:
    rows = key[0] if isinstance(key, tuple) and key else key
    if isinstance(rows, slice):
        return f"{rows.start}:{rows.stop}"
    return str(rows)


class CheckedRows:
    """Rows ``[start, stop)`` of a stored array as dask reads them (picklable).

    Indexed like a numpy array of those rows (slices with any step, integers, one
    integer array); any failure to read becomes a :class:`StoreError` naming the
    store, document, feature and array, and an array with fewer rows than the catalog
    says is an error, never fewer rows."""

    def __init__(self, url, array: zarr.Array, where: str, start: int = 0,
                 stop: int | None = None):
        self.url, self.array, self.where = url, array, where
        self.start = int(start)
        stop = array.shape[0] if stop is None else int(stop)
        self.shape = (stop - self.start, *array.shape[1:])
        self.dtype, self.ndim = array.dtype, array.ndim

    def _shift(self, rows):
        n = self.shape[0]
        if isinstance(rows, slice):
            lo, hi, step = rows.indices(n)
            if step < 0:  # zarr reads forwards only
                return None
            return slice(self.start + lo, self.start + max(lo, hi), step)
        if isinstance(rows, (int, np.integer)):
            i = int(rows) + n if rows < 0 else int(rows)
            if not 0 <= i < n:
                raise IndexError(f"row {rows} out of range for {n} rows")
            return self.start + i
        rows = np.asarray(rows)
        if rows.dtype.kind not in "iu":
            raise IndexError(f"cannot select rows with {rows.dtype} values")
        rows = np.where(rows < 0, rows + n, rows)
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            raise IndexError(f"rows out of range for {n} rows")
        return rows + self.start

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        rows = self._shift(key[0])
        if rows is None:  # a reversed slice: read forwards, then reverse
            lo, hi, step = key[0].indices(self.shape[0])
            forward = slice(hi + 1, lo + 1, -step) if hi < lo else slice(0, 0)
            return self[(forward, *key[1:])][::-1]
        key = (rows, *key[1:])
        fancy = any(isinstance(k, (np.ndarray, list)) for k in key)
        try:
            out = self.array.oindex[key] if fancy else self.array[key]
        except Exception as exc:
            what = str(exc) if isinstance(exc, ZoundsError) else (
                f"{type(exc).__name__}: {exc}")
            if "checksum" in what.lower() or "crc" in what.lower():
                what = f"a chunk fails its checksum (damaged data): {what}"
            raise StoreError(f"cannot read {self.where}, rows {_rows_of(key)} of the array "
                             f"(document rows from {self.start}), from the feature store "
                             f"{self.url!r}: {what}") from exc
        if isinstance(rows, slice):
            expected = len(range(rows.start, rows.stop, rows.step))
            if out.shape[0] != expected:
                raise StoreError(f"cannot read {self.where}, rows {_rows_of(key)}, from the "
                                 f"feature store {self.url!r}: the array has "
                                 f"{self.array.shape[0]} rows, fewer than its catalog says "
                                 f"(damaged metadata)")
        return out


def _block_rows(array: zarr.Array, rows: int) -> int:
    """Rows per dask chunk: one shard (the unit a write puts), or a few where that would
    make more than :data:`MAX_TASKS` chunks."""
    shard = int((array.shards or array.chunks)[0])
    k = max(1, -(-rows // (MAX_TASKS * shard)))
    return shard * k


def _token(*parts) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]


def lazy_rows(checked: CheckedRows, name: str) -> da.Array:
    """The rows of ``checked`` as a dask array, chunked at the stored array's shard
    edges; a selection of it reads only the rows it selects (dask pushes the slice into
    the read)."""
    start, stop = checked.start, checked.start + checked.shape[0]
    step = _block_rows(checked.array, stop - start)
    edges = [start, *range((start // step + 1) * step, stop, step), stop]
    sizes = tuple(b - a for a, b in itertools.pairwise(edges)) or (0,)
    return da.from_array(checked, chunks=(sizes, *((n,) for n in checked.shape[1:])),
                         name=f"zx-{name}-{_token(checked.url, start, stop)}",
                         asarray=False, fancy=True, inline_array=True, lock=False,
                         meta=np.empty((0,) * checked.ndim, checked.dtype))


class _BlockDecoder:
    """Decodes one block of compressed audio (a dask ``map_blocks`` function)."""

    def __init__(self, array, offsets, block_frames, frames, channels, first_block=0):
        self.array, self.offsets, self.first_block = array, offsets, first_block
        self.block_frames, self.frames, self.channels = block_frames, frames, channels

    def __call__(self, block_ids: np.ndarray) -> np.ndarray:
        i = int(block_ids[0])
        b = self.first_block + i
        raw = self.array[int(self.offsets[b]):int(self.offsets[b + 1])]
        data, _ = sf.read(io.BytesIO(raw.tobytes()), dtype="float32", always_2d=True)
        n = min(self.block_frames, self.frames - i * self.block_frames)
        if data.shape[0] < n:
            data = np.concatenate([data, np.zeros((n - data.shape[0], data.shape[1]),
                                                  np.float32)])
        data = data[:n]
        return data[:, 0] if self.channels == 1 else data


# ---------------------------------------------------------------------- the reader
class FeatureReader:
    """The read path of one store: catalog rows to lazy DataArrays.

    Parameters
    ----------
    url : str or zarr Store
        The store, for messages.
    array : callable
        ``array(path) -> zarr.Array``: a stored array, opened (and checked) by the store.
    group : callable
        ``group(group_path) -> {"info", "defs", "coords"}``: a feature group's attrs
        (``zounds_xr:feature``, ``zounds_xr:index``) and its small coordinate variables.
    arrays : int, default 256
        Opened arrays kept (an LRU); labels are kept for as many feature groups.
    """

    def __init__(self, url, array: Callable[[str], zarr.Array],
                 group: Callable[[str], dict], arrays: int = 256):
        self.url = url
        self._open_array, self._open_group = array, group
        self._arrays = LRU(arrays)
        self._groups = LRU(arrays)

    def array(self, path: str) -> zarr.Array:
        """The stored array at ``path``, opened once (parts never change)."""
        found = self._arrays.get(path)
        if found is None:
            found = self._arrays.put(path, self._open_array(path))
        return found

    def group(self, group_path: str) -> tuple[dict, Labels | None]:
        """A feature group's attrs and, for arrays of frames, its :class:`Labels`."""
        found = self._groups.get(group_path)
        if found is None:
            ginfo = self._open_group(group_path)
            info = ginfo["info"]
            labels = None
            if "codec" not in info:
                name = group_path.rsplit("/", 1)[-1].split(".")[0]
                meta = cast(ArrayV3Metadata, self.array(f"{group_path}/{name}").metadata)
                dims = tuple(meta.dimension_names or info.get("dims") or ())
                labels = Labels(dims, ginfo["defs"], ginfo["coords"])
            found = self._groups.put(group_path, (info, labels))
        return found

    def forget(self, keep: Callable[[str], bool]) -> None:
        """Drop what is cached of the arrays and groups whose path ``keep`` refuses."""
        self._arrays.drop(keep)
        self._groups.drop(keep)

    def feature(self, row: Mapping, name: str, where: str | None = None) -> xr.DataArray:
        """A stored feature of a document (its catalog ``row``) as a lazy DataArray."""
        path = str(row[f"{name}.array"])
        offset, frames = int(row[f"{name}.offset"]), int(row[f"{name}.frames"])
        group_path = path.rsplit("/", 1)[0]
        info, labels = self.group(group_path)
        index = time_index(str(row[f"{name}.index"]), frames)
        where = where or f"document {row.get('id')!r}, feature {name!r}"
        if labels is None:
            data = self._encoded(group_path, name, info, offset, frames)
            codec_dims = ("time",) if info["codec"]["channels"] == 1 else ("time", "channel")
            dims = tuple(info.get("dims") or codec_dims)
            return xr.DataArray(data, coords=Labels(dims, {}, {}).coords(index), dims=dims,
                                name=name)
        checked = CheckedRows(self.url, self.array(path), f"{where}, array {path!r}",
                              offset, offset + frames)
        return xr.DataArray(lazy_rows(checked, path), coords=labels.coords(index),
                            dims=labels.dims, name=name)

    def _encoded(self, group_path, name, info, first_block, frames) -> da.Array:
        codec = info["codec"]
        block = int(codec["block_frames"])
        offsets = self.array(f"{group_path}/{name}.offsets")[...]
        nblocks = -(-frames // block)
        sizes = tuple(min(block, frames - i * block) for i in range(nblocks))
        decoder = _BlockDecoder(self.array(f"{group_path}/{name}.bytes"), offsets, block,
                                frames, codec["channels"], first_block)
        ids = da.arange(nblocks, chunks=1)
        if codec["channels"] == 1:
            return ids.map_blocks(decoder, chunks=(sizes,), dtype=np.float32,
                                  meta=np.empty((0,), np.float32))
        return ids.map_blocks(decoder, chunks=(sizes, (codec["channels"],)), new_axis=1,
                              dtype=np.float32, meta=np.empty((0, 0), np.float32))

    # ------------------------------------------------------------------ many documents
    def frames(self, feature: str, paths, offsets, counts) -> xr.DataArray:
        """The rows of many documents, one after the other, as one lazy DataArray with
        dims ``("frame", ...)``: document ``k`` is ``counts[k]`` rows of ``paths[k]``
        from ``offsets[k]``.

        Reads each stored array span by span in order (documents stored close together
        are read in one request), whatever order the documents come in."""
        paths = np.asarray(paths, dtype=object)
        offsets = np.asarray(offsets, dtype=np.int64)
        counts = np.asarray(counts, dtype=np.int64)
        labels = None
        for path in dict.fromkeys(paths.tolist()):
            info, found = self.group(str(path).rsplit("/", 1)[0])
            if found is None:
                raise StoreError(f"feature {feature!r} is stored as encoded audio; read it "
                                 f"document by document")
            array = self.array(str(path))
            key = (found.dims, tuple(array.shape[1:]), str(array.dtype), found.key)
            if labels is None:
                labels, first_key = found, key
            elif key != first_key:
                raise StoreError(f"feature {feature!r}: these documents have different "
                                 f"labels (shape, scale or dtype) and cannot be stacked; "
                                 f"select documents of one kind with ids=")
        if labels is None:
            raise StoreError(f"no documents store {feature!r}")
        data = self._frames_data(feature, paths, offsets, counts)
        dims = ("frame", *labels.dims[1:])
        return xr.DataArray(data, coords=labels.coords(None), dims=dims, name=feature)

    def _frames_data(self, feature, paths, offsets, counts) -> da.Array:
        first = self.array(str(paths[0]))
        rest, dtype = tuple(first.shape[1:]), first.dtype
        spans, pieces = _plan(paths, offsets, counts,
                              lambda p: _block_rows(self.array(p), 0))
        token = _token(self.url, feature, tuple(paths.tolist()), offsets.tobytes(),
                       counts.tobytes())
        read, out = f"zx-frames-read-{token}", f"zx-frames-{token}"
        where = f"feature {feature!r} of many documents"
        dsk: dict = {}
        for i, (path, lo, hi) in enumerate(spans):
            checked = CheckedRows(self.url, self.array(path), f"{where}, array {path!r}")
            dsk[(read, i)] = (_read_span, checked, lo, hi)
        sizes = []
        for j, chunk in enumerate(pieces):
            dsk[(out, j) + (0,) * len(rest)] = (
                _assemble, [(read, i) for i, _, _ in chunk], [(a, b) for _, a, b in chunk])
            sizes.append(sum(b - a for _, a, b in chunk))
        graph = HighLevelGraph.from_collections(out, dsk, dependencies=())
        return da.Array(graph, out, chunks=(tuple(sizes) or (0,), *((n,) for n in rest)),
                        meta=np.empty((0,) * (1 + len(rest)), dtype))


def _read_span(checked: CheckedRows, lo: int, hi: int) -> np.ndarray:
    return checked[lo:hi]


def _assemble(blocks: list[np.ndarray], ranges: list[tuple[int, int]]) -> np.ndarray:
    if len(blocks) == 1 and ranges[0] == (0, blocks[0].shape[0]):
        return blocks[0]
    return np.concatenate([b[lo:hi] for b, (lo, hi) in zip(blocks, ranges, strict=True)])


def _plan(paths, offsets, counts, layout: Callable[[str], int]):
    """How to read many documents' rows: ``(spans, chunks)``.

    ``spans`` are ``(path, lo, hi)`` row ranges to read, in array order, one per dask
    block of the array (``layout(path)``: rows per block, whole shards) that holds
    requested rows: the documents' rows sorted by position, from the first requested
    row of the block to the last, so that each shard is read once. ``chunks`` are the
    output's dask chunks, in the documents' order: lists of ``(span, lo, hi)`` pieces,
    about one block of rows each."""
    order = sorted(range(len(paths)), key=lambda k: (paths[k], offsets[k]))
    merged: list[list] = []  # [path, lo, hi, block rows]
    for k in order:
        path, lo, hi = str(paths[k]), int(offsets[k]), int(offsets[k] + counts[k])
        if hi <= lo:
            continue
        last = merged[-1] if merged else None
        if last is not None and last[0] == path and lo // last[3] <= (last[2] - 1) // last[3]:
            last[2] = max(last[2], hi)  # starts in the block where the last ends
        else:
            merged.append([path, lo, hi, layout(path)])
    spans: list[tuple[str, int, int]] = []
    for path, lo, hi, block in merged:
        edges = [lo, *range((lo // block + 1) * block, hi, block), hi]
        spans += [(path, a, b) for a, b in itertools.pairwise(edges)]
    starts = {}  # path -> (span starts, span indexes), to find a document's spans
    for i, (path, lo, _) in enumerate(spans):
        starts.setdefault(path, ([], []))
        starts[path][0].append(lo)
        starts[path][1].append(i)
    chunks: list[list[tuple[int, int, int]]] = []
    size = 0
    for k in range(len(paths)):
        path, lo, hi = str(paths[k]), int(offsets[k]), int(offsets[k] + counts[k])
        los, ids = starts.get(path, ((), ()))
        j = bisect.bisect_right(los, lo) - 1
        while lo < hi:
            i = ids[j]
            _, a, b = spans[i]
            piece = (i, lo - a, min(hi, b) - a)
            n = piece[2] - piece[1]
            if not chunks or (chunks[-1] and size + n > layout(path)):
                chunks.append([])
                size = 0
            last = chunks[-1][-1] if chunks[-1] else None
            if last is not None and last[0] == i and last[2] == piece[1]:
                chunks[-1][-1] = (i, last[1], piece[2])  # contiguous: one piece
            else:
                chunks[-1].append(piece)
            size += n
            lo = min(hi, b)
            j += 1
    return spans, chunks
