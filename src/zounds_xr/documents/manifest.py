"""What the log records about each file of a part, and the checks a read makes with it.

Like ZFS, which keeps a block's checksum in the pointer *to* the block, the log keeps
each file's record, so a file that is whole but in the wrong place (a swapped shard, a
replaced ``zarr.json``) is caught. A record is::

    {"size": bytes, "crc32c": of the whole file,
     "index": crc32c of a shard's index,          (sharded arrays' chunk files)
     "chunks": "<8 hex digits per inner chunk>"}  (each inner chunk's own CRC32C, in
                                                   index order; "" for an empty one)

A read of a whole file checks its size and CRC32C. A read of a shard's index (zarr
fetches it first, as a suffix) checks the index's CRC32C; a read of one inner chunk (a
byte range the verified index points to) checks the chunk's trailing CRC32C, which
zarr's ``crc32c`` codec then checks against the chunk's bytes: so each chunk is bound to
its position at the cost of a four-byte comparison.

:class:`RecordingStore` makes the records as a part writer writes its files.
"""
from __future__ import annotations

import json
import math

import google_crc32c
import numpy as np
import zarr.storage

__all__ = ["RecordingStore", "check_file", "crc32c", "file_record", "index_offsets",
           "shard_index_size"]

_EMPTY = 2**64 - 1


def crc32c(data: bytes) -> int:
    return int(google_crc32c.value(data))


def shard_index_size(chunks_per_shard: int) -> int:
    """Bytes of a shard index at the end of a shard (offset and length per inner chunk,
    then the index's CRC32C)."""
    return 16 * chunks_per_shard + 4


def index_offsets(index: bytes) -> np.ndarray:
    """``(n, 2)`` uint64: each inner chunk's offset and length (all-ones when empty)."""
    return np.frombuffer(index[:-4], dtype="<u8").reshape(-1, 2)


def file_record(data: bytes, chunks_per_shard: int | None = None) -> dict:
    """The log's record of a file (see the module docs)."""
    record: dict = {"size": len(data), "crc32c": crc32c(data)}
    if chunks_per_shard:
        size = shard_index_size(chunks_per_shard)
        index = data[-size:]
        record["index"] = crc32c(index)
        tails = []
        for offset, nbytes in index_offsets(index):
            if offset == _EMPTY:
                tails.append("")
            else:
                end = int(offset) + int(nbytes)
                tails.append(data[end - 4:end].hex())
        record["chunks"] = ",".join(tails)
    return record


def check_file(data: bytes | None, record: dict) -> str | None:
    """What is wrong with a whole file's bytes (``None``: missing) against its record,
    in words; ``None`` when it matches."""
    if data is None:
        return "missing"
    if len(data) != record["size"]:
        return f"{len(data)} bytes, {record['size']} committed (truncated or replaced)"
    if crc32c(data) != record["crc32c"]:
        return "damaged or replaced (its CRC32C is not the committed one)"
    return None


def sharding_of(metadata: bytes) -> int | None:
    """Inner chunks per shard of an array whose ``zarr.json`` is ``metadata`` (``None``
    when it is not a sharded array)."""
    try:
        meta = json.loads(metadata)
    except ValueError:
        return None
    if meta.get("node_type") != "array":
        return None
    codecs = meta.get("codecs") or []
    if not codecs or codecs[0].get("name") != "sharding_indexed":
        return None
    config = codecs[0]["configuration"]
    if config.get("index_location", "end") != "end":
        return None
    shard = meta["chunk_grid"]["configuration"]["chunk_shape"]
    inner = config["chunk_shape"]
    return math.prod(s // i for s, i in zip(shard, inner, strict=True))


class RecordingStore(zarr.storage.WrapperStore):
    """A writer's view of the store: every file written is recorded (size, CRC32C and,
    for a shard, its index and inner chunks' checksums) at no extra I/O."""

    def __init__(self, store):
        super().__init__(store)
        self.records: dict[str, dict] = {}
        self._sharding: dict[str, int | None] = {}  # array path -> chunks per shard
        self._arrays: dict[str, dict] = {}  # array path -> shape, dtype, dims

    def _with_store(self, store):
        return type(self)(store)

    async def set(self, key, value, byte_range=None):
        await self._store.set(key, value)
        data = value.to_bytes()
        if key.endswith("zarr.json"):
            path = key.rsplit("/", 1)[0] if "/" in key else ""
            self._sharding[path] = sharding_of(data)
            meta = json.loads(data)
            if meta.get("node_type") == "array":
                self._arrays[path] = {"shape": meta["shape"], "data_type": meta["data_type"],
                                      "dims": meta.get("dimension_names")}
            self.records[key] = file_record(data)
            return
        array = key.split("/c/", 1)[0] if "/c/" in key else None
        self.records[key] = file_record(data, self._sharding.get(array) if array else None)

    def arrays(self) -> dict[str, dict]:
        """Each array written: its shape, data type and dims (the log shows them)."""
        return {p: a for p, a in self._arrays.items() if f"{p}/zarr.json" in self.records}

    async def delete(self, key):
        await self._store.delete(key)
        self.records.pop(key, None)
