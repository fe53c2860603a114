"""Reading the rows of many windows at once, inner chunk by inner chunk.

A shuffled epoch reads windows scattered over the whole corpus: each needs one inner
chunk (rarely two) of a sharded array. Through zarr's codec pipeline every chunk costs
about 70 us of Python (measured: 75 us per window for a read of 4,096 random windows
with ``get_orthogonal_selection``), more than a naive ``np.load(mmap_mode="r")``.
:class:`ChunkReader` reads the chunks that a batch of windows (the read-ahead) needs
together, coalesced per shard: the shard's index once (cached: parts never change),
then each inner chunk's byte range, checked against its CRC32C and viewed as numpy
without a copy. On a local disk the bytes come by ``os.pread``; on any other store
with one ``get_partial_values`` call for all of them, which fsspec stores serve
concurrently.

This fast path is taken for the layout parts are written in (``sharding_indexed``
with the inner codecs ``bytes`` + ``crc32c``, index at the end, chunks spanning
every dimension but the first); any other array is read through zarr, a run of
consecutive chunks per call. Decoded chunks stay in a per-process LRU cache of
``cache_bytes``, so a corpus that fits in it is read once.
"""
from __future__ import annotations

import mmap
import os
from collections import OrderedDict
from typing import Any

import numpy as np
import zarr
from zarr.abc.store import RangeByteRequest, SuffixByteRequest
from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec
from zarr.codecs.sharding import ShardingCodecIndexLocation
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import LocalStore, WrapperStore

from ..core.errors import ParameterError, StoreError
from ..documents.manifest import crc32c as _crc32c  # the checksum of zarr's crc32c codec


__all__ = ["CACHE_BYTES", "ChunkReader"]

#: decoded chunks a reader keeps per process (bytes)
CACHE_BYTES = 256 << 20
_EMPTY = np.uint64(2**64 - 1)
#: chunks a zarr read spans to join two runs (the slow path)
_GAP = 8
#: shard files kept mapped per array
_OPEN_MAPS = 64


class _Raw:
    """How to read one array's inner chunks as bytes (the fast path)."""

    def __init__(self, array: zarr.Array, sharding: ShardingCodec, shard_rows: int):
        self.rows = int(sharding.chunk_shape[0])       # rows per inner chunk
        self.per_shard = shard_rows // self.rows
        self.chunk_shape = tuple(int(s) for s in sharding.chunk_shape)
        self.dtype = np.dtype(array.dtype).newbyteorder("<")
        self.nbytes = int(np.prod(self.chunk_shape)) * self.dtype.itemsize
        self.ndim = array.ndim
        self.store, self.prefix = array.store_path.store, array.store_path.path
        self.metadata = array.metadata
        base = self.store
        while isinstance(base, WrapperStore):
            base = base._store
        self.root = str(base.root) if isinstance(base, LocalStore) else None
        self.items = int(np.prod(self.chunk_shape))
        # the log's record of every file (a checked store's): a shard's index and each
        # inner chunk's checksum are bound to their position, as the store's reads are
        self.records: dict | None = getattr(self.store, "records", None)
        self._tails: dict[str, list[str]] = {}
        self.indexes: dict[int, list] = {}  # shard -> [[offset, nbytes], ...] per chunk
        self._keys: dict[int, str] = {}
        self.verified: set[int] = set()  # chunks whose CRC32C this process has checked
        self._maps: OrderedDict[str, mmap.mmap] = OrderedDict()

    def mapped(self, key: str) -> mmap.mmap:
        """Map the shard file ``key`` read-only (a few kept open, LRU)."""
        found = self._maps.get(key)
        if found is None:
            assert self.root is not None
            with open(os.path.join(self.root, key), "rb") as f:
                found = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            self._maps[key] = found
            if len(self._maps) > _OPEN_MAPS:
                self._maps.popitem(last=False)  # unmapped once no window views it
        else:
            self._maps.move_to_end(key)
        return found

    def record(self, key: str) -> dict | None:
        """Return the log's record of the shard ``key`` (``None``: a store without a log)."""
        if self.records is None:
            return None
        found = self.records.get(key)
        if found is None:
            raise StoreError(f"the file {key!r} is not committed by the store's log")
        return found

    def check_tail(self, key: str, inner: int, chunk: np.ndarray) -> None:
        """Check that the inner chunk's checksum is the one the log committed there."""
        record = self.record(key)
        if record is None:
            return
        tails = self._tails.get(key)
        if tails is None:
            tails = self._tails[key] = str(record.get("chunks", "")).split(",")
        if inner >= len(tails) or chunk[-4:].tobytes().hex() != tails[inner]:
            raise StoreError(f"the file {key!r} has an inner chunk {inner} that is not the "
                             f"one committed there (a swapped or replaced shard)")

    @classmethod
    def of(cls, array: zarr.Array) -> _Raw | None:
        """Return the fast reader of ``array``.

        ``None`` when the array is not in the layout parts are written in.
        """
        codecs: tuple[Any, ...] = tuple(getattr(array.metadata, "codecs", ()))
        shard = getattr(array.metadata.chunk_grid, "chunk_shape", None)
        if len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec) \
                or shard is None:
            return None
        sharding = codecs[0]

        def plain(chain) -> bool:
            return (len(chain) == 2 and isinstance(chain[0], BytesCodec)
                    and isinstance(chain[1], Crc32cCodec))

        ok = (plain(sharding.codecs) and plain(sharding.index_codecs)
              and sharding.index_location == ShardingCodecIndexLocation.end
              and tuple(sharding.chunk_shape[1:]) == tuple(array.shape[1:])
              and tuple(shard[1:]) == tuple(array.shape[1:])
              and shard[0] % sharding.chunk_shape[0] == 0)
        return cls(array, sharding, int(shard[0])) if ok else None

    def key(self, shard: int) -> str:
        found = self._keys.get(shard)
        if found is None:
            key = self.metadata.encode_chunk_key((shard,) + (0,) * (self.ndim - 1))
            self._keys[shard] = found = f"{self.prefix}/{key}" if self.prefix else key
        return found


def _checked(data, what: str, raw: _Raw | None = None, c: int = 0) -> np.ndarray:
    """Return the payload of ``data``, whose last 4 bytes are the CRC32C of the rest.

    ``what`` (with ``raw``: chunk ``c`` of the array ``what``) is named in the error.
    """
    view = np.frombuffer(data, dtype=np.uint8)
    if len(view) < 4 or _crc32c(view[:-4]) != int.from_bytes(view[-4:].tobytes(), "little"):
        if raw is not None:
            shard, inner = divmod(c, raw.per_shard)
            what = f"chunk {inner} of the shard {raw.key(shard)!r} of the array {what!r}"
        raise StoreError(f"{what} fails its CRC32C checksum: the stored bytes are damaged")
    return view[:-4]


class ChunkReader:
    """Rows of a store's arrays, fetched a read-ahead at a time, inner chunk by chunk.

    One per process (it is dropped when its dataset is pickled for a DataLoader worker).

    Parameters
    ----------
    store
        An object with ``array(path) -> zarr.Array`` (a feature store).
    paths : list of str
        The arrays (``codes`` index into it).
    cache_bytes : int
        Decoded chunks kept (LRU).
    """

    def __init__(self, store, paths: list[str], cache_bytes: int = CACHE_BYTES):
        self.store, self.paths, self.cache_bytes = store, paths, int(cache_bytes)
        self._arrays: dict[int, tuple[zarr.Array, _Raw | None, int]] = {}
        self._chunks: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._held = 0
        self._trailing: tuple[int, ...] | None = None

    def array(self, code: int) -> tuple[zarr.Array, _Raw | None, int]:
        """(array, fast reader or None, rows per chunk) of array ``code``."""
        found = self._arrays.get(code)
        if found is None:
            a = self.store.array(self.paths[code])
            if self._trailing is None:
                self._trailing = tuple(a.shape[1:])
            elif tuple(a.shape[1:]) != self._trailing:
                raise ParameterError(
                    f"the feature's arrays differ in shape: {self.paths[code]!r} has frames "
                    f"of shape {tuple(a.shape[1:])}, others {self._trailing}; select "
                    f"documents of one shape with ids=")
            raw = _Raw.of(a)
            rows = raw.rows if raw is not None else int(a.chunks[0]) if a.chunks else 1
            self._arrays[code] = found = (a, raw, max(1, rows))
        return found

    def row_bytes(self) -> int:
        """Bytes of one stored frame (row)."""
        a = self.array(0)[0]
        return max(1, int(np.prod(a.shape[1:], dtype=np.int64)) * a.dtype.itemsize)

    # ------------------------------------------------------------------- gathering
    def gather(self, codes, starts, stops) -> list[np.ndarray]:
        """Read rows ``starts[j]:stops[j]`` of array ``codes[j]`` for every ``j``.

        Parameters
        ----------
        codes, starts, stops : array of int
            Array number, first row and end row of each window.

        Returns
        -------
        list of numpy.ndarray
            Read-only views into the decoded chunks when a window lies in one chunk.
        """
        codes = np.asarray(codes, dtype=np.int64)
        starts = np.asarray(starts, dtype=np.int64)
        stops = np.asarray(stops, dtype=np.int64)
        rows = np.empty(len(codes), dtype=np.int64)
        for code in np.unique(codes):
            rows[codes == code] = self.array(int(code))[2]
        first, last = starts // rows, (stops - 1) // rows
        span = last - first + 1
        runs = np.repeat(np.arange(len(codes)), span)
        step = np.arange(len(runs)) - np.repeat(np.cumsum(span) - span, span)
        wanted = np.unique((codes[runs] << 40) | (first[runs] + step))  # (code, chunk)
        chunks = self._load(np.stack([wanted >> 40, wanted & ((1 << 40) - 1)], axis=1))
        out: list[np.ndarray] = []
        for j in range(len(codes)):
            code, c0, c1, r = int(codes[j]), int(first[j]), int(last[j]), int(rows[j])
            lo, hi = int(starts[j]), int(stops[j])
            if c0 == c1:
                out.append(chunks[(code, c0)][lo - c0 * r: hi - c0 * r])
            else:
                out.append(np.concatenate(
                    [chunks[(code, c)][max(lo - c * r, 0): min(hi - c * r, r)]
                     for c in range(c0, c1 + 1)]))
        return out

    def _load(self, wanted: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
        """Get the chunks ``wanted`` (rows of (code, chunk)), cached or from the store."""
        found: dict[tuple[int, int], np.ndarray] = {}
        missing: dict[int, list[int]] = {}
        for code, chunk in wanted.tolist():
            data = self._chunks.get((code, chunk))
            if data is None:
                missing.setdefault(code, []).append(chunk)
            else:
                self._chunks.move_to_end((code, chunk))
                found[(code, chunk)] = data
        for code, chunks in missing.items():
            a, raw, rows = self.array(code)
            read = self._read_raw(code, raw, chunks) if raw is not None else \
                self._read_zarr(a, rows, chunks)
            mapped = raw is not None and raw.root is not None
            for chunk, data in zip(chunks, read, strict=True):
                found[(code, chunk)] = data
                if not mapped:  # a mapped chunk is in the page cache already
                    self._chunks[(code, chunk)] = data
                    self._held += data.nbytes
        while self._held > self.cache_bytes and len(self._chunks) > 1:
            _, old = self._chunks.popitem(last=False)
            self._held -= old.nbytes
        return found

    def _read_zarr(self, a: zarr.Array, rows: int, chunks: list[int]) -> list[np.ndarray]:
        ids = np.asarray(chunks, dtype=np.int64)
        out = []
        # one zarr call per run of chunks, gaps of a few chunks read through: each call
        # costs milliseconds of event-loop round trips, a skipped chunk far less
        for run in np.split(ids, np.flatnonzero(np.diff(ids) > _GAP) + 1):
            lo, hi = int(run[0]) * rows, min((int(run[-1]) + 1) * rows, a.shape[0])
            try:
                data = np.asarray(a[lo:hi])
            except StoreError:
                raise
            except Exception as exc:  # a damaged or missing chunk, as zarr reports it
                raise StoreError(f"rows {lo}:{hi} of the array {a.path!r} cannot be read: "
                                 f"{type(exc).__name__}: {exc}") from exc
            out += [data[c * rows - lo: (c + 1) * rows - lo] for c in run.tolist()]
        return out

    # ------------------------------------------------------------------ fast path
    def _read_raw(self, code: int, raw: _Raw, chunks: list[int]) -> list[np.ndarray]:
        shards = sorted({c // raw.per_shard for c in chunks})
        self._shard_indexes(code, raw, [s for s in shards if s not in raw.indexes])
        ranges = []
        for c in chunks:
            shard, inner = divmod(c, raw.per_shard)
            offset, nbytes = raw.indexes[shard][inner]
            if nbytes != raw.nbytes + 4:
                state = "is missing" if offset == nbytes == int(_EMPTY) else \
                    f"has {nbytes} bytes, expected {raw.nbytes + 4}"
                raise StoreError(f"chunk {inner} of shard {raw.key(shard)!r} of the array "
                                 f"{self.paths[code]!r} {state}")
            ranges.append((shard, offset, offset + nbytes))
        if raw.root is not None:
            return [self._mapped_chunk(code, raw, c, *r) for c, r in zip(chunks, ranges,
                                                                         strict=True)]
        # neighbouring chunks of a shard in one request (gaps of up to a chunk read
        # through): a dense read-ahead costs a few large requests, a sparse one one each
        spans: list[list[int]] = []  # [shard, lo, hi]
        span_of = [0] * len(ranges)
        for i in sorted(range(len(ranges)), key=lambda i: ranges[i][:2]):
            shard, lo, hi = ranges[i]
            if spans and spans[-1][0] == shard and lo - spans[-1][2] <= raw.nbytes + 4:
                spans[-1][2] = max(spans[-1][2], hi)
            else:
                spans.append([shard, lo, hi])
            span_of[i] = len(spans) - 1
        blobs = self._remote(code, raw, [(raw.key(shard), RangeByteRequest(lo, hi))
                                         for shard, lo, hi in spans])
        out = []
        for i, (c, (shard, lo, hi)) in enumerate(zip(chunks, ranges, strict=True)):
            begin = spans[span_of[i]][1]
            data = np.frombuffer(blobs[span_of[i]], dtype=np.uint8)[lo - begin: hi - begin]
            if len(data) != hi - lo:
                raise StoreError(f"the shard {raw.key(shard)!r} of the array "
                                 f"{self.paths[code]!r} is truncated")
            payload = _checked(data, self.paths[code], raw, c)
            raw.check_tail(raw.key(shard), c % raw.per_shard, data)
            out.append(self._decoded(code, raw, c, payload))
        return out

    def _mapped_chunk(self, code: int, raw: _Raw, c: int, shard: int, lo: int, hi: int):
        # a mapped chunk is checked the first time this process reads it; the page cache
        # then serves the few pages a window needs, shared by all workers
        mapped = raw.mapped(raw.key(shard))
        if hi > len(mapped):
            raise StoreError(f"the shard {raw.key(shard)!r} of the array "
                             f"{self.paths[code]!r} is truncated")
        if c not in raw.verified:
            data = np.frombuffer(mapped, dtype=np.uint8, count=hi - lo, offset=lo)
            _checked(data, self.paths[code], raw, c)
            raw.check_tail(raw.key(shard), c % raw.per_shard, data)
            raw.verified.add(c)
        return self._decoded(code, raw, c, np.frombuffer(
            mapped, dtype=raw.dtype, count=raw.items, offset=lo))

    @staticmethod
    def _decoded(code, raw: _Raw, c: int, payload: np.ndarray) -> np.ndarray:
        array = payload.view(raw.dtype).reshape(raw.chunk_shape)
        array.flags.writeable = False
        return array

    def _shard_indexes(self, code: int, raw: _Raw, shards: list[int]) -> None:
        if not shards:
            return
        size = raw.per_shard * 16 + 4
        keys = [raw.key(s) for s in shards]
        if raw.root is not None:
            blobs = []
            for key in keys:
                path = os.path.join(raw.root, key)
                try:
                    with open(path, "rb") as f:
                        f.seek(-size, os.SEEK_END)
                        blobs.append(f.read(size))
                except OSError as exc:
                    raise StoreError(f"the shard {key!r} of the array {self.paths[code]!r} "
                                     f"cannot be read: {exc}") from exc
        else:
            blobs = self._remote(code, raw, [(k, SuffixByteRequest(size)) for k in keys])
        for shard, key, blob in zip(shards, keys, blobs, strict=True):
            if len(blob) != size:
                raise StoreError(f"the index of shard {key!r} of the array "
                                 f"{self.paths[code]!r} is truncated")
            payload = _checked(blob, f"the index of the shard {key!r} of the array "
                                     f"{self.paths[code]!r}")
            record = raw.record(key)
            # the log records the CRC32C of the index without its own checksum
            # (documents/manifest.py: a block ending with its CRC32C has a constant one)
            if record is not None and _crc32c(np.frombuffer(blob, np.uint8)[:-4]) != \
                    record.get("index"):
                raise StoreError(f"the shard {key!r} of the array {self.paths[code]!r} has "
                                 f"an index that is not the one committed (a truncated, "
                                 f"zeroed or swapped shard)")
            raw.indexes[shard] = payload.view("<u8").reshape(-1, 2).tolist()

    def _remote(self, code: int, raw: _Raw, requests: list) -> list:
        store = raw.store
        try:
            bufs = sync(store.get_partial_values(default_buffer_prototype(), requests))
        except Exception as exc:  # any transport failure names the array
            raise StoreError(f"reading {len(requests)} ranges of the array "
                             f"{self.paths[code]!r} failed: {type(exc).__name__}: "
                             f"{exc}") from exc
        out = []
        for (key, _), buf in zip(requests, bufs, strict=True):
            if buf is None:
                raise StoreError(f"the shard {key!r} of the array {self.paths[code]!r} "
                                 f"is missing")
            out.append(buf.to_bytes())
        return out
