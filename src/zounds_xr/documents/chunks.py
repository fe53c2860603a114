"""Direct reads of the inner chunks of a part's sharded arrays, checked.

Through zarr's codec pipeline every inner chunk costs about 70 us of Python and a
hand-off to zarr's event-loop thread (measured: 75 us per window for a read of 4,096
random windows with ``get_orthogonal_selection``). Parts are written in one layout
(``sharding_indexed`` with the inner codecs ``bytes`` + ``crc32c``, the index at the
end, chunks spanning every dimension but the first), whose bytes are simple enough to
read without zarr: a shard's index once (cached: parts never change), then each inner
chunk's byte range, checked against its CRC32C and, on a store with a commit log,
against the checksum the log committed at that position (a swapped or replaced shard
is caught). :class:`ShardChunks` is the one home of these reads:

- :meth:`ShardChunks.rows`: rows ``[lo, hi)`` of a local array by ``os.pread``, every
  chunk checked on every read (a document's read task, :mod:`.rows`);
- :meth:`ShardChunks.chunks`: many chunks at once (a loader's read-ahead,
  :mod:`zounds_xr.learn.chunk_reader`), mapped from local files (each checked the first
  time this process reads it) or fetched with one ``get_partial_values`` call from any
  other store.

Any other layout is read through zarr by the callers.
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

from ..core.errors import StoreError
from .manifest import EMPTY, chunk_tail, crc32c, index_offsets, self_checked, shard_index_size

__all__ = ["ShardChunks", "write_rows"]

#: shard files kept mapped per array
_OPEN_MAPS = 64


class ShardChunks:
    """Read the inner chunks of one sharded array of a part, without zarr.

    Build it with :meth:`of` (``None`` for an array in another layout). The arrays of
    a store opened with its commit log (a checked store with ``records``) are checked
    against the log: each shard's index and each inner chunk's checksum.

    Attributes
    ----------
    rows_per_chunk : int
        Rows of one inner chunk.
    local : bool
        Whether the array's files are local (``os.pread`` and ``mmap`` reach them).
    """

    def __init__(self, array: zarr.Array, sharding: ShardingCodec, shard_rows: int):
        self.rows_per_chunk = int(sharding.chunk_shape[0])
        self.per_shard = shard_rows // self.rows_per_chunk
        self.chunk_shape = tuple(int(s) for s in sharding.chunk_shape)
        self.dtype = np.dtype(array.dtype).newbyteorder("<")
        self.out_dtype = np.dtype(array.dtype)
        self.items = int(np.prod(self.chunk_shape))
        self.nbytes = self.items * self.dtype.itemsize
        self.ndim = array.ndim
        self.name = array.path  # names the array in errors
        self.store, self.prefix = array.store_path.store, array.store_path.path
        self.metadata = array.metadata
        # the log's record of every file (a checked store's): a shard's index and each
        # inner chunk's checksum are bound to their position, as the store's reads are
        self.records: dict | None = getattr(self.store, "records", None)
        base = self.store
        if self.records is not None and isinstance(base, WrapperStore):
            base = base._store  # (the checks are made here) any other wrapper sees reads
        self.root = str(base.root) if isinstance(base, LocalStore) else None
        self.local = self.root is not None
        self._tails: dict[str, list[str]] = {}
        self.indexes: dict[int, list] = {}  # shard -> [[offset, nbytes], ...] per chunk
        self._keys: dict[int, str] = {}
        self.verified: set[int] = set()  # mapped chunks whose CRC32C was checked
        self._maps: OrderedDict[str, mmap.mmap] = OrderedDict()

    @classmethod
    def of(cls, array: zarr.Array) -> ShardChunks | None:
        """Return the direct reader of ``array``.

        ``None`` when the array is not in the layout parts are written in.
        """
        codecs: tuple[Any, ...] = tuple(getattr(array.metadata, "codecs", ()))
        shard = getattr(array.metadata.chunk_grid, "chunk_shape", None)
        if len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec) \
                or shard is None or array.ndim < 1:
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

    def write_shard(self, shard: int, rows: np.ndarray) -> None:
        """Write ``rows`` as the whole shard ``shard``: the bytes zarr writes, encoded here.

        Inner chunks in order, each followed by its CRC32C, then the index (offset and
        length of each, little-endian) and its CRC32C. zarr's codec pipeline costs
        about 0.4 ms per inner chunk (0.1-0.25 s for a 32 MiB shard of 256 chunks);
        this is a copy, the checksums and one write.
        """
        per, size = self.per_shard, self.nbytes + 4
        data = np.ascontiguousarray(rows, dtype=self.dtype).reshape(per, self.items)
        out = np.empty(per * size + shard_index_size(per), dtype=np.uint8)
        body = out[:per * size].reshape(per, size)
        body[:, :self.nbytes] = data.view(np.uint8)
        body[:, self.nbytes:] = np.array([crc32c(body[i, :self.nbytes]) for i in range(per)],
                                         dtype="<u4").view(np.uint8).reshape(per, 4)
        index = out[per * size:-4]
        entries = index.view("<u8").reshape(per, 2)
        entries[:, 0] = np.arange(per, dtype=np.uint64) * size
        entries[:, 1] = size
        out[-4:] = np.array([crc32c(index)], dtype="<u4").view(np.uint8)
        sync(self.store.set(self.key(shard),
                            default_buffer_prototype().buffer.from_array_like(out)))

    def key(self, shard: int) -> str:
        """Return the store key of shard ``shard``."""
        found = self._keys.get(shard)
        if found is None:
            key = self.metadata.encode_chunk_key((shard,) + (0,) * (self.ndim - 1))
            self._keys[shard] = found = f"{self.prefix}/{key}" if self.prefix else key
        return found

    # ----------------------------------------------------------------- the checks
    def _record(self, key: str) -> dict | None:
        if self.records is None:
            return None
        found = self.records.get(key)
        if found is None:
            raise StoreError(f"the file {key!r} is not committed by the store's log")
        return found

    def _check_chunk(self, c: int, data: np.ndarray) -> np.ndarray:
        """Check inner chunk ``c`` (its bytes with their CRC32C); return its payload."""
        shard, inner = divmod(c, self.per_shard)
        key = self.key(shard)
        view = np.frombuffer(data, dtype=np.uint8)
        if not self_checked(view):  # the message is built only then: this runs per chunk
            raise StoreError(f"chunk {inner} of the shard {key!r} of the array "
                             f"{self.name!r} fails its CRC32C checksum: the stored bytes "
                             f"are damaged")
        record = self._record(key)
        if record is not None:
            tails = self._tails.get(key)
            if tails is None:
                tails = self._tails[key] = str(record.get("chunks", "")).split(",")
            if inner >= len(tails) or chunk_tail(view) != tails[inner]:
                raise StoreError(f"the file {key!r} has an inner chunk {inner} that is not "
                                 f"the one committed there (a swapped or replaced shard)")
        return view[:-4]

    def _range(self, c: int) -> tuple[int, int, int]:
        """(shard, first byte, end byte) of inner chunk ``c`` (its shard index read)."""
        shard, inner = divmod(c, self.per_shard)
        offset, nbytes = self.indexes[shard][inner]
        if nbytes != self.nbytes + 4:
            state = "is missing" if offset == nbytes == EMPTY else \
                f"has {nbytes} bytes, expected {self.nbytes + 4}"
            raise StoreError(f"chunk {inner} of shard {self.key(shard)!r} of the array "
                             f"{self.name!r} {state}")
        return shard, offset, offset + nbytes

    def _index(self, shard: int, blob: bytes) -> None:
        """Check shard ``shard``'s index ``blob`` (read from its end) and keep it."""
        key = self.key(shard)
        if len(blob) != shard_index_size(self.per_shard):
            raise StoreError(f"the index of shard {key!r} of the array {self.name!r} is "
                             f"truncated")
        view = np.frombuffer(blob, np.uint8)
        crc = crc32c(view[:-4])  # once: against the index's own checksum and the log's
        if crc != int.from_bytes(view[-4:].tobytes(), "little"):
            raise StoreError(f"the index of the shard {key!r} of the array {self.name!r} "
                             f"fails its CRC32C checksum: the stored bytes are damaged")
        record = self._record(key)
        # the log records the CRC32C of the index without its own checksum
        # (documents/manifest.py: a block ending with its CRC32C has a constant one)
        if record is not None and crc != record.get("index"):
            raise StoreError(f"the shard {key!r} of the array {self.name!r} has an index "
                             f"that is not the one committed (a truncated, zeroed or "
                             f"swapped shard)")
        self.indexes[shard] = index_offsets(blob).tolist()

    def _decoded(self, payload: np.ndarray) -> np.ndarray:
        array = payload.view(self.dtype).reshape(self.chunk_shape)
        array.flags.writeable = False
        return array

    # ----------------------------------------------------------- a document's rows
    def rows(self, lo: int, hi: int) -> np.ndarray:
        """Read rows ``[lo, hi)`` of a local array, each chunk checked.

        Parameters
        ----------
        lo, hi : int
            Rows inside the array (``0 <= lo <= hi <=`` its rows).

        Returns
        -------
        numpy.ndarray
            A new array of ``hi - lo`` rows, in the array's dtype.

        Raises
        ------
        StoreError
            A missing, truncated or damaged file or chunk, or one that is not the one
            the log committed, naming the file.
        """
        assert self.root is not None, "rows() reads local arrays"
        out = np.empty((hi - lo, *self.chunk_shape[1:]), dtype=self.out_dtype)
        if hi <= lo:
            return out
        r = self.rows_per_chunk
        first, last = lo // r, (hi - 1) // r
        for shard in range(first // self.per_shard, last // self.per_shard + 1):
            key = self.key(shard)
            try:
                fd = os.open(os.path.join(self.root, key), os.O_RDONLY)
            except OSError as exc:
                raise StoreError(f"the shard {key!r} of the array {self.name!r} cannot be "
                                 f"read: {exc}") from exc
            try:
                if shard not in self.indexes:
                    size = shard_index_size(self.per_shard)
                    end = os.fstat(fd).st_size
                    self._index(shard, os.pread(fd, size, end - size) if end >= size
                                else b"")
                chunks = range(max(first, shard * self.per_shard),
                               min(last, (shard + 1) * self.per_shard - 1) + 1)
                for c in chunks:
                    _, begin, stop = self._range(c)
                    data = os.pread(fd, stop - begin, begin)
                    if len(data) != stop - begin:
                        raise StoreError(f"the shard {key!r} of the array {self.name!r} "
                                         f"is truncated")
                    chunk = self._decoded(self._check_chunk(c, np.frombuffer(data, np.uint8)))
                    a, b = max(lo, c * r), min(hi, (c + 1) * r)
                    out[a - lo:b - lo] = chunk[a - c * r:b - c * r]
            except OSError as exc:
                raise StoreError(f"the shard {key!r} of the array {self.name!r} cannot be "
                                 f"read: {exc}") from exc
            finally:
                os.close(fd)
        return out

    # ------------------------------------------------------- a loader's read-ahead
    def chunks(self, chunks: list[int]) -> list[np.ndarray]:
        """Read the inner chunks ``chunks`` (numbers in the array), checked.

        Local files are mapped (a few kept open), each chunk checked the first time this
        process reads it (the page cache then serves the few pages a window needs,
        shared by all workers); any other store is asked once for all the byte ranges,
        neighbouring chunks of a shard in one range.

        Returns
        -------
        list of numpy.ndarray
            Each chunk, read-only (a view of the mapped file where local).
        """
        shards = sorted({c // self.per_shard for c in chunks})
        self._read_indexes([s for s in shards if s not in self.indexes])
        ranges = [self._range(c) for c in chunks]
        if self.root is not None:
            return [self._mapped_chunk(c, *r) for c, r in zip(chunks, ranges, strict=True)]
        # neighbouring chunks of a shard in one request (gaps of up to a chunk read
        # through): a dense read-ahead costs a few large requests, a sparse one one each
        spans: list[list[int]] = []  # [shard, lo, hi]
        span_of = [0] * len(ranges)
        for i in sorted(range(len(ranges)), key=lambda i: ranges[i][:2]):
            shard, lo, hi = ranges[i]
            if spans and spans[-1][0] == shard and lo - spans[-1][2] <= self.nbytes + 4:
                spans[-1][2] = max(spans[-1][2], hi)
            else:
                spans.append([shard, lo, hi])
            span_of[i] = len(spans) - 1
        blobs = self._remote([(self.key(shard), RangeByteRequest(lo, hi))
                              for shard, lo, hi in spans])
        out = []
        for i, (c, (shard, lo, hi)) in enumerate(zip(chunks, ranges, strict=True)):
            begin = spans[span_of[i]][1]
            data = np.frombuffer(blobs[span_of[i]], dtype=np.uint8)[lo - begin: hi - begin]
            if len(data) != hi - lo:
                raise StoreError(f"the shard {self.key(shard)!r} of the array "
                                 f"{self.name!r} is truncated")
            out.append(self._decoded(self._check_chunk(c, data)))
        return out

    def _mapped(self, key: str) -> mmap.mmap:
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

    def _mapped_chunk(self, c: int, shard: int, lo: int, hi: int) -> np.ndarray:
        mapped = self._mapped(self.key(shard))
        if hi > len(mapped):
            raise StoreError(f"the shard {self.key(shard)!r} of the array {self.name!r} "
                             f"is truncated")
        if c not in self.verified:
            self._check_chunk(c, np.frombuffer(mapped, dtype=np.uint8, count=hi - lo,
                                               offset=lo))
            self.verified.add(c)
        return self._decoded(np.frombuffer(mapped, dtype=np.uint8,
                                           count=self.nbytes, offset=lo))

    def _read_indexes(self, shards: list[int]) -> None:
        if not shards:
            return
        size = shard_index_size(self.per_shard)
        keys = [self.key(s) for s in shards]
        if self.root is not None:
            blobs = []
            for key in keys:
                try:
                    with open(os.path.join(self.root, key), "rb") as f:
                        f.seek(-size, os.SEEK_END)
                        blobs.append(f.read(size))
                except OSError as exc:
                    raise StoreError(f"the shard {key!r} of the array {self.name!r} cannot "
                                     f"be read: {exc}") from exc
        else:
            blobs = self._remote([(k, SuffixByteRequest(size)) for k in keys])
        for shard, blob in zip(shards, blobs, strict=True):
            self._index(shard, blob)

    def _remote(self, requests: list) -> list:
        try:
            bufs = sync(self.store.get_partial_values(default_buffer_prototype(), requests))
        except Exception as exc:  # any transport failure names the array
            raise StoreError(f"reading {len(requests)} ranges of the array {self.name!r} "
                             f"failed: {type(exc).__name__}: {exc}") from exc
        out = []
        for (key, _), buf in zip(requests, bufs, strict=True):
            if buf is None:
                raise StoreError(f"the shard {key!r} of the array {self.name!r} is missing")
            out.append(buf.to_bytes())
        return out


def write_rows(array: zarr.Array, lo: int, block: np.ndarray) -> None:
    """``array[lo:lo + len(block)] = block``, whole shards of the parts' layout encoded here.

    The writers of long features (a part's arrays, a split recording's ranges, the
    explorer's pyramids) write whole shards: those inside the array's shape, in the
    layout :class:`ShardChunks` reads, go through :meth:`ShardChunks.write_shard`, every
    chunk written (as zarr's ``write_empty_chunks``: the direct reads refuse a missing
    chunk); anything else (a partial or edge shard, another layout) through zarr.
    """
    n = block.shape[0]
    layout = ShardChunks.of(array) if n else None
    if layout is None:
        array[lo:lo + n] = block
        return
    rows = layout.per_shard * layout.rows_per_chunk
    first = -(-lo // rows) * rows
    last = max(first, min(lo + n, array.shape[0]) // rows * rows)
    if first > lo:
        array[lo:min(first, lo + n)] = block[:first - lo]
        if first >= lo + n:
            return
    for at in range(first, last, rows):
        layout.write_shard(at // rows, block[at - lo:at - lo + rows])
    if lo + n > last:
        array[last:lo + n] = block[last - lo:]
