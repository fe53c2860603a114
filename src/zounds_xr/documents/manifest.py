"""What the log records about each file of a part, and the checks a read makes with it.

Like ZFS, which keeps a block's checksum in the pointer *to* the block, the log keeps
each file's record, so a file that is whole but in the wrong place (a swapped shard, a
replaced ``zarr.json``) is caught. A record is::

    {"size": bytes, "crc32c": of the whole file,
     "index": CRC32C of a shard's index (without its own checksum),  (shards)
     "chunks": "<8 hex digits>,..." each inner chunk's own CRC32C,   (shards)
               in index order ("" for an empty one)
     "tail": "<8 hex digits>"}  a single chunk's own CRC32C          (checksummed chunks)

Why not only the whole file's CRC32C: a chunk that ends with its own CRC32C (zarr's
``crc32c`` codec) is a block whose CRC32C is the same constant whatever its content
(CRC's residue), so the CRC32C of a shard made of such chunks depends on their lengths
only, and two shards of one layout have the same. The chunks' own checksums do depend
on their content: the record keeps them, and a check recomputes them.

A read of a whole file checks its size and content (:func:`check`). A read of a shard's
index (zarr fetches it first, as a suffix) checks the index against its record; a read
of one inner chunk (a byte range the verified index points to) checks the chunk's
trailing CRC32C against the record, which zarr's ``crc32c`` codec then checks against
the chunk's bytes: so each chunk is bound to its position at the cost of a four-byte
comparison.

:class:`RecordingStore` makes the records as a part writer writes its files.
"""
from __future__ import annotations

import io
import json
import math

import crc32c as _crc32c
import numpy as np
import zarr.storage

__all__ = ["EMPTY", "RecordingStore", "check", "check_file", "check_stream", "chunk_tail",
           "crc32c", "self_checked",
           "file_record", "index_offsets", "layout_of", "shard_index_size"]

#: the offset and length a shard index gives an inner chunk that was never written
EMPTY = 2**64 - 1


def crc32c(data) -> int:
    """Return the CRC32C checksum of ``data`` (any bytes-like object, not copied).

    Hardware CRC32C that releases the GIL on large buffers: threads checking files
    run in parallel.
    """
    return _crc32c.crc32c(data)


def shard_index_size(chunks_per_shard: int) -> int:
    """Return the bytes of a shard index at the end of a shard.

    That is an offset and length per inner chunk, then the index's CRC32C.
    """
    return 16 * chunks_per_shard + 4


def index_offsets(index: bytes | memoryview) -> np.ndarray:
    """``(n, 2)`` uint64: each inner chunk's offset and length (all-ones when empty)."""
    return np.frombuffer(index[:-4], dtype="<u8").reshape(-1, 2)


def _ends_with_crc(codecs: list) -> bool:
    return bool(codecs) and codecs[-1].get("name") == "crc32c"


def layout_of(metadata: bytes) -> tuple[int, bool] | bool | None:
    """Tell how the chunk files of the array whose ``zarr.json`` is ``metadata`` are made.

    ``(inner chunks per shard, inner chunks end with a CRC32C)`` for a sharded array,
    ``True`` for chunks that end with their CRC32C, ``None`` otherwise.
    """
    try:
        meta = json.loads(metadata)
    except ValueError:
        return None
    if not isinstance(meta, dict) or meta.get("node_type") != "array":
        return None
    codecs = meta.get("codecs") or []
    if codecs and codecs[0].get("name") == "sharding_indexed":
        config = codecs[0]["configuration"]
        if config.get("index_location", "end") != "end":
            return None
        shard = meta["chunk_grid"]["configuration"]["chunk_shape"]
        inner = config["chunk_shape"]
        return (math.prod(s // i for s, i in zip(shard, inner, strict=True)),
                _ends_with_crc(config.get("codecs") or []))
    return True if _ends_with_crc(codecs) else None


def chunk_tail(block) -> str:
    """Return the log's name of a checksummed block: its own CRC32C (last 4 bytes), in hex."""
    return bytes(block[-4:]).hex()


def file_record(data: bytes | memoryview, layout: tuple[int, bool] | bool | None = None) -> dict:
    """Return the log's record of a file (see the module docs)."""
    record: dict = {"size": len(data), "crc32c": crc32c(data)}
    if isinstance(layout, tuple):
        n, checked = layout
        index = data[-shard_index_size(n):]
        record["index"] = crc32c(index[:-4])
        if checked:
            record["chunks"] = ",".join(
                # the chunk's last 4 bytes only: slicing up to its end copied the
                # shard once per chunk (quadratic in the shard's size)
                "" if offset == EMPTY else data[max(0, offset + nbytes - 4):
                                                 offset + nbytes].hex()
                for offset, nbytes in index_offsets(index).tolist())
    elif layout is True and len(data) >= 4:
        record["tail"] = chunk_tail(data)
    return record


def self_checked(block) -> bool:
    """Whether ``block`` (bytes-like) ends with the CRC32C of the bytes before it."""
    return len(block) >= 4 and crc32c(block[:-4]) == int.from_bytes(block[-4:], "little")


#: bytes a check reads at once from a file that is not a shard
_PIECE = 1 << 20


def _check(read, size: int, record: dict) -> str | None:
    """Say what is wrong with a file of ``size`` bytes, given its record.

    ``read(offset, n)`` returns up to ``n`` bytes of it from ``offset`` (a buffer that
    the next call may overwrite); ``None``: it is the committed file. Every byte the
    record covers is checked: a shard's index and each inner chunk against their
    recorded checksums, any other file's content against its CRC32C.
    """
    if size != record["size"]:
        return f"{size} bytes, {record['size']} committed (truncated or replaced)"
    if "chunks" in record:
        tails = record["chunks"].split(",")
        n = shard_index_size(len(tails))
        index = bytes(read(size - n, n))
        if not self_checked(index) or crc32c(index[:-4]) != record["index"]:
            return "its shard index is damaged or not the committed one"
        for i, (offset, nbytes) in enumerate(index_offsets(index).tolist()):
            if offset == EMPTY:
                if tails[i]:
                    return f"inner chunk {i} is missing"
                continue
            block = read(offset, nbytes)
            if len(block) != nbytes or not self_checked(block) or \
                    chunk_tail(block) != tails[i]:
                return f"inner chunk {i} fails its checksum or is not the committed one"
        return None
    if "tail" in record:
        data = read(0, size)
        ok = self_checked(data) and chunk_tail(data) == record["tail"]
        return None if ok else "damaged or not the committed chunk"
    crc, offset = 0, 0
    while offset < size and (piece := read(offset, min(_PIECE, size - offset))):
        crc = _crc32c.crc32c(piece, crc)
        offset += len(piece)
    return None if crc == record["crc32c"] else \
        "damaged or replaced (its CRC32C is not the committed one)"


def check_stream(f: io.RawIOBase | io.BufferedIOBase, size: int, record: dict
                 ) -> str | None:
    """Say what is wrong with a file of ``size`` bytes read from ``f``, given its record.

    ``f`` is a file opened for reading (unbuffered is best). A shard is read chunk by
    chunk into one buffer that is reused, and checked without a copy (what
    ``verify()`` does on a local file: the buffer stays in the CPU's cache, and the
    CRC releases the GIL, so files check in parallel); ``None``: it is the committed
    file.
    """
    buf = memoryview(bytearray(_PIECE))

    def read(offset: int, n: int) -> memoryview:
        nonlocal buf
        if n > len(buf):
            buf = memoryview(bytearray(n))
        f.seek(offset)
        got = 0
        while got < n and (k := f.readinto(buf[got:n])):
            got += k
        return buf[:got]

    return _check(read, size, record)


def check_file(data: bytes | None, record: dict) -> str | None:
    """Say what is wrong with a whole file's bytes (``None``: missing) against its record.

    In words; ``None`` when it matches (:func:`check`).
    """
    return "missing" if data is None else check(data, record)


def check(data: bytes, record: dict) -> str | None:
    """Say what is wrong with a whole file, given its record.

    ``None``: it is the committed file. The same checks as :func:`check_stream`, on
    bytes already read (without copying them).
    """
    view = memoryview(data)
    return _check(lambda offset, n: view[offset:offset + n], len(data), record)


class RecordingStore(zarr.storage.WrapperStore):
    """Record every file a writer writes to the store, at no extra I/O.

    The record holds its size, CRC32C and, for a shard, its index and inner chunks'
    checksums.
    """

    def __init__(self, store):
        super().__init__(store)
        self.records: dict[str, dict] = {}
        self._layouts: dict[str, tuple[int, bool] | bool | None] = {}  # array path ->
        self._arrays: dict[str, dict] = {}  # array path -> shape, dtype, dims

    def _with_store(self, store):
        return type(self)(store)

    async def set(self, key, value, byte_range=None):
        """Write ``value`` at ``key`` and record the file."""
        await self._store.set(key, value)
        data = value.as_buffer_like()  # a view: a shard is recorded without a copy
        if key.endswith("zarr.json"):
            data = value.to_bytes()
            path = key.rsplit("/", 1)[0] if "/" in key else ""
            self._layouts[path] = layout_of(data)
            meta = json.loads(data)
            if meta.get("node_type") == "array":
                self._arrays[path] = {"shape": meta["shape"], "data_type": meta["data_type"],
                                      "dims": meta.get("dimension_names")}
            self.records[key] = file_record(data)
            return
        array = key.split("/c/", 1)[0] if "/c/" in key else None
        self.records[key] = file_record(data, self._layouts.get(array) if array else None)

    def adopt_array(self, path: str, metadata: bytes) -> None:
        """Record the chunks written to an array that another writer created.

        ``metadata``: its ``zarr.json`` (the layout of its shards). A split long
        recording's ranges write disjoint shards of arrays its planner created.
        """
        self._layouts[path] = layout_of(metadata)

    def arrays(self) -> dict[str, dict]:
        """Each array written: its shape, data type and dims (the log shows them)."""
        return {p: a for p, a in self._arrays.items() if f"{p}/zarr.json" in self.records}

    async def delete(self, key):
        """Delete ``key`` and forget its record."""
        await self._store.delete(key)
        self.records.pop(key, None)
