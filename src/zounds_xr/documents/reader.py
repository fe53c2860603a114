"""The checked reader: from a catalog row to a lazy DataArray, trusting only the log.

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

import importlib
import io
import itertools
import json
from collections.abc import Callable
from fractions import Fraction
from typing import ClassVar, cast

import dask.array as da
import numpy as np
import soundfile as sf
import xarray as xr
import zarr
import zarr.errors
import zarr.storage
from zarr.abc.store import RangeByteRequest, SuffixByteRequest
from zarr.core.metadata import ArrayV3Metadata

from ..dimensions import INDEX_TYPES
from ..errors import StoreError, ZoundsError
from ..timeseries.index import TimeIndex
from .manifest import check, crc32c, index_offsets
from .parts import FEATURE, INDEX

__all__ = ["CheckedArray", "MissingChunkError", "Reader", "decode_labels", "part_of"]

#: at most about this many dask chunks per lazy read of a document (graph overhead)
_MAX_TASKS = 512


def part_of(path: str) -> str | None:
    """The part name in a path ``parts/<part>/...``."""
    bits = str(path).split("/")
    return bits[1] if len(bits) > 2 and bits[0] == "parts" else None


def decode_labels(defs: dict, sizes: dict) -> list[xr.Coordinates]:
    """Coordinates with the indexes rebuilt from their stored definitions."""
    out = []
    for dim, d in defs.items():
        kind = d.get("type")
        module = d.get("module")  # recorded only for index types not in INDEX_TYPES
        cls = getattr(importlib.import_module(module), kind) if module else \
            INDEX_TYPES.get(str(kind))
        if cls is None:
            raise StoreError(f"unknown index type {kind!r} in the store")
        kwargs = {"dim": dim, "coord_name": d.get("coord", dim)}
        if cls is TimeIndex:
            kwargs["size"] = sizes[dim]
        attrs = {k: v for k, v in d.items() if k not in ("coord", "module")}
        out.append(xr.Coordinates.from_xindex(cls.from_attrs(attrs, **kwargs)))
    return out


class MissingChunkError(StoreError):
    """A committed chunk or shard is missing from the store."""


class CheckedStore(zarr.storage.WrapperStore):
    """How readers see one feature group: only the files its records commit, each
    checked on every read (see the module docs). Shard indexes are cached (parts
    never change): a slice reads each shard's index once, then its inner chunks."""

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
        data = buf.to_bytes()
        if byte_range is None:
            problem = check(data, record)
            if problem is not None:
                raise self._fail(key, f"does not match the log's record: {problem}")
        elif suffix:
            if "index" not in record or len(data) != byte_range.suffix or \
                    crc32c(data[:-4]) != record["index"]:
                raise self._fail(key, "has a shard index that is damaged or not the one "
                                      "committed (a truncated, zeroed or swapped shard)")
            starts = {int(o): i for i, (o, _) in enumerate(index_offsets(data))}
            if len(self._indexes) >= self._INDEX_CACHE:
                self._indexes.pop(next(iter(self._indexes)))
            self._indexes[key] = (buf, starts)
        elif isinstance(byte_range, RangeByteRequest):
            tails = record.get("chunks", "").split(",")
            found = self._indexes.get(key)
            i = found[1].get(byte_range.start) if found is not None else None
            if i is None or i >= len(tails) or len(data) != byte_range.end - \
                    byte_range.start or data[-4:].hex() != tails[i]:
                raise self._fail(key, f"has bytes {byte_range.start}:{byte_range.end} that "
                                      f"are not the inner chunk committed there")
        else:
            raise self._fail(key, f"was read with an unexpected byte range {byte_range}")
        return buf


    async def _unchecked(self, key, prototype, byte_range):
        if isinstance(byte_range, SuffixByteRequest):
            found = self._indexes.get(key)
            if found is not None and len(found[0]) == byte_range.suffix:
                return found[0]
        buf = await self._store.get(key, prototype, byte_range)
        if isinstance(byte_range, SuffixByteRequest) and buf is not None:
            self._indexes[key] = (buf, {})
        return buf


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
            raise _failure(self.where, f"block {b}", exc) from exc
        n = min(self.block_frames, self.frames - i * self.block_frames)
        if data.shape[0] < n:
            data = np.concatenate([data, np.zeros((n - data.shape[0], data.shape[1]),
                                                  np.float32)])
        data = data[:n]
        return data[:, 0] if self.channels == 1 else data


def _failure(where: str, what: str, exc: BaseException) -> StoreError:
    detail = str(exc) if isinstance(exc, ZoundsError) else f"{type(exc).__name__}: {exc}"
    if "checksum" in detail.lower() or "crc" in detail.lower():
        detail = f"a chunk fails its checksum (damaged data): {detail}"
    return StoreError(f"cannot read {where}, {what}: {detail}")


class CheckedArray:
    """A committed Zarr array whose every read failure is a :class:`StoreError` naming
    the store, the part, the array and the key, with the cause chained (what
    ``FeatureStore.array`` gives; other attributes are the Zarr array's)."""

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
            raise _failure(f"the array {path!r} (part {part_of(path)!r}) of the feature "
                           f"store {self._url!r}", f"key {key!r}", exc) from exc

    def __len__(self) -> int:
        return int(self._array.shape[0])

    def __repr__(self) -> str:
        return f"<checked {self._array!r}>"


class _Checked:
    """A stored array as dask reads it: any failure to read becomes a
    :class:`StoreError` naming the store, part, document, feature and array
    (picklable)."""

    def __init__(self, array, where: str, start: int = 0, stop: int | None = None):
        self.array, self.where = array, where
        self.start = start
        stop = array.shape[0] if stop is None else stop
        self.shape = (stop - start, *array.shape[1:])
        self.dtype, self.ndim = array.dtype, array.ndim

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        rows = key[0]
        if isinstance(rows, slice) and rows.step in (None, 1):
            lo = 0 if rows.start is None else rows.start
            hi = self.shape[0] if rows.stop is None else rows.stop
            key = (slice(self.start + lo, self.start + hi), *key[1:])
        try:
            return self.array[key]
        except Exception as exc:
            raise _failure(self.where, f"rows {_rows_of(key, self.start)}", exc) from exc


def _rows_of(key, start: int) -> str:
    rows = key[0] if isinstance(key, tuple) and key else key
    if isinstance(rows, slice):
        return f"{rows.start}:{rows.stop} of the array (document rows from {start})"
    return str(rows)


def _lazy_rows(checked: _Checked, start: int, stop: int, inner: int, name: str) -> da.Array:
    """Rows ``[start, stop)`` as a dask array.

    A task reads its whole block (dask no longer fuses a later slice into the read), so
    blocks are small: one inner chunk (the unit of a read), or a few where that would
    make more than ``_MAX_TASKS`` tasks. A slice of 2 s of a 1-hour STFT then reads
    a few MiB, and a 1 s window of a short document one or two inner chunks; a
    shard's index is read once (:class:`CheckedStore` caches it)."""
    k = max(1, -(-(stop - start) // (_MAX_TASKS * inner)))
    step = inner * k
    edges = [start]
    edge = (start // step + 1) * step
    while edge < stop:
        edges.append(edge)
        edge += step
    edges.append(stop)
    sizes = tuple(b - a for a, b in itertools.pairwise(edges))
    return da.from_array(checked, chunks=(sizes, *((n,) for n in checked.shape[1:])),
                         name=f"zx-{name}-{start}-{stop}", asarray=False, fancy=False,
                         inline_array=True)


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
    """

    def __init__(self, zstore, url: str, files_of: Callable[[str], dict]):
        self.zstore, self.url, self.files_of = zstore, url, files_of
        self._stores: dict[str, CheckedStore] = {}  # group path -> its checked store
        self._arrays: dict[str, CheckedArray] = {}
        self._groups: dict[str, dict] = {}

    def _store_of(self, group_path: str) -> CheckedStore:
        found = self._stores.get(group_path)
        if found is None:
            part = part_of(group_path)
            if part is None:
                raise StoreError(f"{group_path!r} is not in a part of the feature store "
                                 f"{self.url!r}")
            files = self.files_of(part)
            prefix = f"{group_path}/"
            records = {k: r for k, r in files.items() if k.startswith(prefix)}
            found = self._stores[group_path] = CheckedStore(self.zstore, self.url, records)
        return found

    def array(self, path: str) -> CheckedArray:
        """The read-only, checked Zarr array at ``path`` (cached: parts never change)."""
        found = self._arrays.get(path)
        if found is None:
            store = self._store_of(str(path).rsplit("/", 1)[0])
            try:
                opened = zarr.open_array(store, path=str(path), mode="r", zarr_format=3)
            except StoreError:
                raise
            except Exception as exc:
                raise StoreError(f"cannot open the array {path!r} of the feature store "
                                 f"{self.url!r}: {type(exc).__name__}: {exc}") from exc
            found = self._arrays[path] = CheckedArray(opened, self.url)
        return found

    def group_info(self, group_path: str) -> dict:
        """A feature group's attrs and its coordinate variables (cached)."""
        found = self._groups.get(group_path)
        if found is not None:
            return found
        store = self._store_of(group_path)
        try:
            group = zarr.open_group(store, path=group_path, mode="r", zarr_format=3)
            attrs = group.attrs.asdict()
            info = cast(dict, attrs.get(FEATURE) or {})
            name = group_path.rsplit("/", 1)[-1].split(".")[0]
            coords = {}
            if "codec" not in info:
                data = self.array(f"{group_path}/{name}")
                for cname in str(data.attrs.get("coordinates") or "").split():
                    arr = cast(zarr.Array, group[cname])
                    attrs_c = {k: v for k, v in arr.attrs.items() if k != "zounds_xr:role"}
                    meta = cast(ArrayV3Metadata, arr.metadata)  # opened as zarr_format=3
                    coords[cname] = xr.Variable(tuple(meta.dimension_names or ()),
                                                arr[...], attrs=attrs_c)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"cannot open the feature group {group_path!r} of the feature "
                             f"store {self.url!r}: {type(exc).__name__}: {exc}") from exc
        found = {"info": info, "defs": attrs.get(INDEX, {}), "coords": coords, "name": name}
        self._groups[group_path] = found
        return found

    def read(self, row: dict, name: str, where: str | None = None) -> xr.DataArray:
        """A stored feature of a document (its catalog ``row``) as a lazy DataArray."""
        path = str(row[f"{name}.array"])
        what = where or f"document {row.get('id')!r}, feature {name!r}"
        where = f"{what} (part {part_of(path)!r}, array {path!r}) of the feature store " \
                f"{self.url!r}"
        try:
            return self._read(row, name, path, where)
        except StoreError as exc:
            if where in str(exc):
                raise
            raise StoreError(f"cannot read {where}: {exc}") from exc

    def _read(self, row: dict, name: str, path: str, where: str) -> xr.DataArray:
        offset, frames = int(row[f"{name}.offset"]), int(row[f"{name}.frames"])
        group_path = path.rsplit("/", 1)[0]
        ginfo = self.group_info(group_path)
        info = ginfo["info"]
        dims = tuple(info.get("dims") or ())
        time_def = _time_def(row, name, frames, ginfo)
        if "codec" in info:
            data = self._encoded(group_path, name, info, offset, frames, where)
            dims = dims or (("time",) if info["codec"]["channels"] == 1 else
                            ("time", "channel"))
        else:
            array = self.array(path)
            meta = cast(ArrayV3Metadata, array.metadata)  # the store is zarr format 3
            dims = tuple(meta.dimension_names or dims)
            if offset < 0 or frames < 0 or offset + frames > array.shape[0]:
                raise StoreError(f"cannot read {where}: its catalog row says rows "
                                 f"{offset}:{offset + frames}, outside the array's "
                                 f"{array.shape[0]} rows")
            checked = _Checked(array, where, offset, offset + frames)
            data = _lazy_rows(checked, offset, offset + frames, array.chunks[0], path)
        defs = {**{k: v for k, v in ginfo["defs"].items() if k != "time"},
                "time": {**time_def, "coord": "time"}}
        sizes = dict(zip(dims, data.shape, strict=True))
        out = xr.DataArray(data, dims=dims, name=name)
        for coords in decode_labels(defs, sizes):
            out = out.assign_coords(coords)
        for cname, var in ginfo["coords"].items():
            if cname not in out.coords:
                out = out.assign_coords({cname: var})
        return out

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
        """Drop what is cached of deleted parts."""
        gone = set(parts)
        for cache in (self._stores, self._arrays, self._groups):
            for key in [k for k in cache if part_of(k) in gone]:
                del cache[key]


def _time_def(row: dict, name: str, frames: int, ginfo: dict) -> dict:
    """The row's time-index definition, checked: its size is the row's frame count and
    its rate is the one the group stores."""
    text = row.get(f"{name}.index")
    try:
        d = json.loads(text) if isinstance(text, str) and text else None
        if d is not None and int(d.get("size", frames)) != frames:
            raise ValueError(f"its time index has {d.get('size')} frames, the row "
                             f"{frames}")
        group_time = ginfo["defs"].get("time")
        if d is not None and group_time is not None and (
                Fraction(d["frequency"]) != Fraction(group_time["frequency"])
                or Fraction(d["duration"]) != Fraction(group_time["duration"])):
            raise ValueError("its time index's rate is not the stored array's")
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreError(f"the catalog row of feature {name!r} is inconsistent: "
                         f"{exc}") from exc
    if d is None:
        raise StoreError(f"the catalog row of feature {name!r} has no time index")
    return d
