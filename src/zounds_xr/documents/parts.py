"""Writing a part: many documents' frames, concatenated per feature, in sharded arrays.

A :class:`PartWriter` is one writer's private, immutable piece of the store
(``<root>/parts/<part>/``, ``docs/STORE_LAYOUT.md``). Documents are written one after
another: every stored feature's chunks go to the part's array for that feature and
label set (dims, non-time shape, dtype, time rate, non-time index definitions); a
document whose labels differ from those before it opens another array (``<feature>.1``,
...). Arrays buffer one shard and write whole shards, so memory stays bounded however
long a document is, and a part of thousands of short clips costs a few large writes.
:meth:`PartWriter.commit` writes the catalog fragment, then the part's log entry:
until then the part is invisible.

A writer talks to its store through :class:`PartStorage`, four public methods of
:class:`~zounds_xr.documents.store.FeatureStore`: the store records every file the part
writes (:mod:`.manifest`), and commits them with the part.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import time
import uuid
from collections.abc import Hashable
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Protocol

import numpy as np
import soundfile as sf
import xarray as xr
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from ..dimensions.lookup import INDEX_TYPES
from ..core.errors import StoreError
from ..timeseries.index import TimeIndex
from .catalog import DELETED, FAILED
from .chunks import write_rows
from .streaming import time_index_of

__all__ = [
    "SHARD_BYTES",
    "ENCODED_BLOCK_SECONDS",
    "FEATURE",
    "INDEX",
    "INNER_CHUNK_BYTES",
    "PartStorage",
    "PartWriter",
    "encode_labels",
    "new_part_name",
]

FEATURE = "zounds_xr:feature"
INDEX = "zounds_xr:index"
#: uncompressed bytes of one inner chunk (the unit a read fetches)
INNER_CHUNK_BYTES = 1 << 17
#: uncompressed bytes of one shard (the unit a write puts; one object per shard), so
#: that a part holds as many documents in as few files whatever their length: 2,000
#: clips of 5 s of 128-band mel (221 MB) are 7 shards, as 2,000 of 1 s are 2
SHARD_BYTES = 1 << 25
#: seconds of audio in one independently decodable block of compressed audio
ENCODED_BLOCK_SECONDS = 5
#: bytes per chunk of the compressed-audio byte array
ENCODED_BYTES_CHUNK = 1 << 18


def new_part_name() -> str:
    """Make a unique part name that sorts by creation time."""
    return f"{time.time_ns():019d}-{uuid.uuid4().hex[:12]}"


def encode_labels(chunk: xr.DataArray) -> tuple[dict, dict]:
    """Index definitions by dim, and the other small coordinates (name -> Variable).

    Coordinates along ``time`` that are not its index are dropped (they cannot be
    appended lazily); custom indexes are stored as their ``to_attrs()`` definition.
    """
    defs, extra = {}, {}
    indexed: set[Hashable] = set()
    for index, variables in chunk.xindexes.group_by_index():
        to_attrs = getattr(index, "to_attrs", None)
        if to_attrs is None:
            continue
        dims = {d for v in variables.values() for d in v.dims}
        if len(dims) != 1:
            continue
        (dim,) = dims
        d = dict(to_attrs())
        if INDEX_TYPES.get(type(index).__name__) is not type(index):
            d["module"] = type(index).__module__
        d.setdefault("type", type(index).__name__)
        d["coord"] = str(next(iter(variables)))
        defs[dim] = d
        indexed.update(variables)
    for name, var in chunk.coords.items():
        if name in indexed or "time" in var.dims:
            continue
        extra[str(name)] = var.variable
    return defs, extra


def _chunk_rows(row_bytes: int) -> int:
    rows = max(1, INNER_CHUNK_BYTES // max(row_bytes, 1))
    return 1 << int(math.floor(math.log2(rows)))


def _compressors(dtype: np.dtype):
    # every chunk carries a CRC32C: a damaged chunk fails its read instead of returning
    # garbage. Float spectra barely compress (ratio 1.2-1.3, NOTES.md) while zstd makes
    # writes dominate; integers and booleans compress well and cheaply
    if dtype.kind in "fc":
        return [Crc32cCodec()]
    return [ZstdCodec(level=3), Crc32cCodec()]


def _json_attrs(attrs: dict) -> dict:
    return {str(k): v for k, v in attrs.items()
            if isinstance(v, (str, int, float, bool)) or v is None}


def _label_values(chunk: xr.DataArray, defs: dict) -> dict:
    """Return the values of the non-time index coordinates, for readers without zounds_xr.

    That is band centres in Hz, a window axis in seconds.
    """
    out = {}
    for dim, d in defs.items():
        coord = d.get("coord", dim)
        if dim == "time" or coord not in chunk.coords:
            continue
        values = np.asarray(chunk[coord].values)
        if values.dtype.kind == "m":
            out[coord] = (dim, values.astype("timedelta64[ns]").astype(np.int64) / 1e9, "s")
        elif values.dtype.kind in "iuf":
            out[coord] = (dim, values.astype(np.float64),
                          "Hz" if d.get("type") == "FrequencyIndex" else "")
    return out


class _Labels:
    """Hold what the documents of one array share (see the module docs).

    ``key`` is cheap (index definitions and small coordinates); the label values
    for readers without zounds_xr are taken only when an array is created.
    """

    def __init__(self, name: str, chunk: xr.DataArray, index: TimeIndex, dtype: np.dtype):
        self.chunk: xr.DataArray | None = chunk  # dropped once the array is created
        self.dims = tuple(str(d) for d in chunk.dims)
        self.rest = tuple(chunk.shape[1:])
        self.dtype = np.dtype(dtype)
        defs, extra = encode_labels(chunk)
        defs.pop("time", None)
        for cname, var in extra.items():
            if np.asarray(var.values).dtype.kind not in "biufcmM":
                raise StoreError(f"feature {name!r}: coordinate {cname!r} has dtype "
                                 f"{var.dtype}, which the store cannot hold")
        self.defs, self.extra = defs, extra
        self.frequency, self.duration = index.frequency, index.duration
        key = json.dumps([self.dims, self.rest, str(self.dtype), str(self.frequency),
                          str(self.duration), defs], sort_keys=True, default=str)
        if extra:
            digest = hashlib.sha256(key.encode())
            for cname in sorted(extra):
                var = extra[cname]
                digest.update(cname.encode() + repr(var.dims).encode())
                digest.update(np.ascontiguousarray(var.values).tobytes())
            key = digest.hexdigest()
        self.key = key

    @property
    def values(self) -> dict:
        assert self.chunk is not None, "label values are read before the chunk is dropped"
        return _label_values(self.chunk, self.defs)


class PartArray:
    """One array of a part: the frames of every document with the same labels."""

    def __init__(self, part: zarr.Group, group_name: str, feature: str, info: dict,
                 labels: _Labels):
        self.feature, self.labels = feature, labels
        self.path = f"{part.path}/{group_name}/{feature}"
        self.dtype = labels.dtype
        time_def = {"frequency": str(labels.frequency), "duration": str(labels.duration),
                    "type": "TimeIndex", "version": 1}
        attrs = {FEATURE: info, INDEX: {**labels.defs, "time": time_def},
                 "time_step": float(labels.frequency), "time_step_units": "s"}
        self.group = part.create_group(group_name, attributes=attrs)
        names = []
        label_values = labels.values
        labels.chunk = None  # the array outlives the chunk it was created from
        for cname, (dim, values, units) in label_values.items():
            arr = self.group.create_array(cname, shape=values.shape, dtype=values.dtype,
                                          dimension_names=(dim,), compressors=None)
            arr[...] = values
            arr.attrs.update({"zounds_xr:role": "label", **({"units": units} if units else {})})
            names.append(cname)
        for cname, var in labels.extra.items():
            values = np.asarray(var.values)
            arr = self.group.create_array(cname, shape=values.shape, dtype=values.dtype,
                                          dimension_names=var.dims, compressors=None)
            arr[...] = values
            arr.attrs.update({"zounds_xr:role": "coordinate", **_json_attrs(var.attrs)})
            names.append(cname)
        self.coord_names = names
        row_bytes = int(np.prod(labels.rest, dtype=np.int64)) * self.dtype.itemsize
        self.inner = _chunk_rows(row_bytes)
        self.shard_rows = self.inner * max(1, SHARD_BYTES // (self.inner * max(row_bytes, 1)))
        self.array: zarr.Array | None = None
        self.rows = 0  # rows appended
        self.flushed = 0  # rows written to the store
        self.capacity = 0
        self.pending: list[np.ndarray] = []
        self.pending_rows = 0

    def _create(self, rows: int, chunk_rows: int, shard_rows: int | None) -> zarr.Array:
        attrs: dict[str, Any] = {"coordinates": " ".join(n for n in self.coord_names
                                         if n not in self.labels.dims)}
        self.array = self.group.create_array(
            self.feature, shape=(rows, *self.labels.rest), dtype=self.dtype,
            chunks=(chunk_rows, *self.labels.rest),
            shards=None if shard_rows is None else (shard_rows, *self.labels.rest),
            compressors=_compressors(self.dtype), dimension_names=self.labels.dims,
            fill_value=0, config={"write_empty_chunks": True},
            attributes=attrs if attrs["coordinates"] else None)
        self.capacity = rows
        return self.array

    def begin_document(self) -> int:
        return self.rows

    def reserve(self, rows: int) -> zarr.Array:
        """Create the array at ``rows`` rows for writers elsewhere; drop what was appended.

        Each range of a split long recording writes its own whole shards into it
        (:meth:`PartWriter.reserve`).
        """
        self.pending, self.pending_rows = [], 0
        self.rows = self.flushed = 0
        if self.array is None:
            return self._create(rows, self.inner, self.shard_rows)
        # the first chunks filled a shard already: the first range writes it again
        self.array.resize((rows, *self.labels.rest))
        self.capacity = rows
        return self.array

    def adopt(self, rows: int) -> None:
        """Take the ``rows`` that writers elsewhere wrote: :meth:`close` trims to them."""
        self.rows = self.flushed = rows

    def append(self, data: np.ndarray) -> None:
        n = data.shape[0]
        if not n:
            return
        self.pending.append(data)
        self.pending_rows += n
        self.rows += n
        while self.pending_rows >= self.shard_rows:
            self._flush(self._take(self.shard_rows))

    def end_document(self) -> None:
        pass

    def rewind(self, rows: int) -> None:
        """Forget what was appended after ``rows`` (an aborted document), if unwritten.

        Written rows stay, unreferenced.
        """
        if rows >= self.flushed and self.pending:
            data = np.concatenate(self.pending)[:rows - self.flushed]
            self.pending = [data] if data.shape[0] else []
            self.pending_rows = data.shape[0]
            self.rows = self.flushed + self.pending_rows

    def _take(self, rows: int) -> np.ndarray:
        data = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
        head, tail = data[:rows], data[rows:]
        self.pending = [tail] if tail.shape[0] else []
        self.pending_rows = tail.shape[0]
        return head

    def _flush(self, block: np.ndarray) -> None:
        n = block.shape[0]
        array = self.array
        if array is None:
            array = self._create(self.shard_rows, self.inner, self.shard_rows)
        if self.flushed + n > self.capacity:
            # grow by doubling: a few metadata writes however many shards follow (the
            # part is invisible until its fragment exists, so the shape may run ahead)
            self.capacity = max(self.flushed + n, 2 * self.capacity)
            array.resize((self.capacity, *self.labels.rest))
        write_rows(array, self.flushed, block)
        self.flushed += n

    def close(self) -> None:
        if self.array is None:
            rows = self.pending_rows
            if rows > self.inner:
                # shorter than one shard but longer than an inner chunk: one shard of
                # whole inner chunks, so that a small read (a window, one document)
                # still reads only the inner chunks it touches, not the whole array
                shard = -(-rows // self.inner) * self.inner
                array = self._create(rows, self.inner, shard)
            else:
                # at most one inner chunk: one chunk of its exact size (no padding)
                array = self._create(rows, max(1, rows), None)
            if rows:
                array[...] = self._take(rows)
                self.flushed = rows
            return
        if self.pending_rows:
            self._flush(self._take(self.pending_rows))
        if self.capacity != self.flushed:
            self.array.resize((self.flushed, *self.labels.rest))


class EncodedPartArray(PartArray):
    """Store audio as Ogg Vorbis or FLAC in independently decodable blocks of 5 s.

    Each document starts a new block. ``offset`` in the catalog is its first block.
    """

    FORMATS: ClassVar[dict] = {"ogg": ("OGG", "VORBIS"), "flac": ("FLAC", "PCM_16")}

    def __init__(self, part, group_name, feature, info, labels: _Labels):
        store_as = info["store_as"]
        rate = 1 / labels.frequency
        if labels.duration != labels.frequency or rate.denominator != 1:
            raise StoreError(f"feature {feature!r}: store_as={store_as!r} needs audio "
                             f"samples, got a time axis of {labels.frequency}s frames")
        if labels.dims not in (("time",), ("time", "channel")):
            raise StoreError(f"feature {feature!r}: store_as={store_as!r} needs audio with "
                             f"dims (time[, channel]), got {labels.dims}")
        self.format, self.subtype = self.FORMATS[store_as]
        self.samplerate = int(rate)
        self.channels = labels.rest[0] if labels.rest else 1
        self.block_frames = self.samplerate * ENCODED_BLOCK_SECONDS
        codec = {"format": self.format, "subtype": self.subtype,
                 "block_frames": self.block_frames, "samplerate": self.samplerate,
                 "channels": self.channels}
        super().__init__(part, group_name, feature, {**info, "codec": codec}, labels)
        self.path = f"{self.group.path}/{feature}.bytes"
        self.offsets = [0]
        self.samples: list[np.ndarray] = []
        self.sample_rows = 0
        self.bytes_pending: list[bytes] = []
        self.bytes_rows = 0
        self.bytes_written = 0
        self.capacity = 0
        self.array = None

    def begin_document(self) -> int:
        return len(self.offsets) - 1  # the document's first block

    def append(self, data: np.ndarray) -> None:
        if not data.shape[0]:
            return
        self.samples.append(data)
        self.sample_rows += data.shape[0]
        while self.sample_rows >= self.block_frames:
            data = np.concatenate(self.samples)
            self._encode(data[:self.block_frames])
            rest = data[self.block_frames:]
            self.samples = [rest] if rest.shape[0] else []
            self.sample_rows = rest.shape[0]

    def end_document(self) -> None:
        if self.sample_rows:
            self._encode(np.concatenate(self.samples))
        self.samples, self.sample_rows = [], 0

    def rewind(self, rows: int) -> None:
        self.samples, self.sample_rows = [], 0  # encoded blocks stay, unreferenced

    def _encode(self, block: np.ndarray) -> None:
        buf = io.BytesIO()
        sf.write(buf, np.clip(block, -1.0, 1.0) if self.format == "FLAC" else block,
                 self.samplerate, format=self.format, subtype=self.subtype)
        encoded = buf.getvalue()
        self.offsets.append(self.offsets[-1] + len(encoded))
        self.bytes_pending.append(encoded)
        self.bytes_rows += len(encoded)
        if self.bytes_rows >= ENCODED_BYTES_CHUNK:
            data = b"".join(self.bytes_pending)
            whole = len(data) // ENCODED_BYTES_CHUNK * ENCODED_BYTES_CHUNK
            self._put(data[:whole])
            self.bytes_pending = [data[whole:]] if whole < len(data) else []
            self.bytes_rows = len(data) - whole

    def _put(self, data: bytes) -> None:
        if self.array is None:
            self.array = self.group.create_array(
                f"{self.feature}.bytes", shape=(0,), dtype="uint8",
                chunks=(ENCODED_BYTES_CHUNK,), compressors=[Crc32cCodec()],
                dimension_names=("byte",), config={"write_empty_chunks": True})
        n = len(data)
        if self.bytes_written + n > self.capacity:
            self.capacity = max(self.bytes_written + n, 2 * self.capacity)
            self.array.resize((self.capacity,))
        self.array[self.bytes_written:self.bytes_written + n] = np.frombuffer(data, np.uint8)
        self.bytes_written += n

    def close(self) -> None:
        self.end_document()
        self._put(b"".join(self.bytes_pending))
        self.bytes_pending = []
        assert self.array is not None  # _put has created it
        if self.capacity != self.bytes_written:
            self.array.resize((self.bytes_written,))
        offsets = np.asarray(self.offsets, dtype=np.int64)
        arr = self.group.create_array(f"{self.feature}.offsets", shape=offsets.shape,
                                      dtype="int64", dimension_names=("block_edge",),
                                      compressors=[Crc32cCodec()])
        arr[...] = offsets


class _FeatureSink:
    """Receives one document's chunks of one stored feature (a pipeline sink)."""

    def __init__(self, part: PartWriter, name: str, info: dict):
        self.part, self.name, self.info = part, name, info
        store_as = info.get("store_as")
        self.cast = np.dtype(store_as) if store_as in ("float16", "float32", "float64") \
            else None
        self.target: PartArray | None = None
        self.first: TimeIndex | None = None
        self.offset = 0
        self.received = 0
        self.dims: tuple[Hashable, ...] | None = None
        self.rest: tuple[int, ...] | None = None

    def __call__(self, chunk: xr.DataArray) -> None:
        index = time_index_of(chunk, self.name)
        if chunk.dims[0] != "time":
            chunk = chunk.transpose("time", ...)
        data = np.asarray(chunk.data)
        if self.cast is not None:
            if data.dtype.kind == "c":
                raise StoreError(f"feature {self.name!r}: store_as={self.info['store_as']!r} "
                                 f"cannot hold complex values")
            data = data.astype(self.cast)
        if self.first is None:
            if data.dtype.kind not in "biufc":
                raise StoreError(f"feature {self.name!r}: cannot store dtype {data.dtype}")
            self.first = index
            self.dims, self.rest = chunk.dims, data.shape[1:]
            self.target = self.part._target(self.name, self.info, chunk, index, data.dtype)
            self.offset = self.target.begin_document()
        else:
            self._check(chunk, index, data)
        assert self.target is not None  # set with the first chunk
        self.received += data.shape[0]
        self.target.append(data)

    def _check(self, chunk, index, data):
        if chunk.dims != self.dims or data.shape[1:] != self.rest:
            raise StoreError(f"feature {self.name!r}: chunk of dims {chunk.dims} and shape "
                             f"{data.shape} does not continue {self.dims} {self.rest}")
        f = self.first
        assert f is not None  # set with the first chunk
        if index.frequency != f.frequency or index.duration != f.duration:
            raise StoreError(f"feature {self.name!r}: its time rate changed between chunks")
        expected = f.start + self.received * f.frequency
        if data.shape[0] and index.start != expected:
            raise StoreError(f"feature {self.name!r}: chunk starts at {index.start}s, "
                             f"{expected}s expected (a gap or overlap between chunks)")

    def finish(self) -> dict:
        """Finish the feature for this document and return its catalog columns."""
        if self.first is None:
            raise StoreError(f"feature {self.name!r}: its function produced no chunk")
        assert self.target is not None  # set with the first chunk
        self.target.end_document()
        index = TimeIndex.from_params(self.received, self.first.frequency,
                                      self.first.duration, self.first.start)
        return {f"{self.name}.frames": self.received,
                f"{self.name}.version": self.info["version"],
                f"{self.name}.array": self.target.path,
                f"{self.name}.offset": self.offset,
                f"{self.name}.index": json.dumps(index.to_attrs(), sort_keys=True)}

    def abort(self) -> None:
        if self.target is not None:
            self.target.rewind(self.offset)

    def adopt(self, rows: int) -> None:
        """Take the ``rows`` of this feature that writers elsewhere wrote."""
        assert self.target is not None  # reserved from the first chunk
        self.received = rows
        self.target.adopt(rows)


class PartStorage(Protocol):
    """What a part writer needs of its store (``FeatureStore`` implements it)."""

    def part_group(self, name: str) -> tuple[zarr.Group, Any]:
        """Create the part's group on a store that records what is written through it.

        Returns the group and that record.
        """

    def commit_part(self, name: str, rows: list[dict], recording: Any) -> int:
        """Write the part's catalog fragment and commit it with the files recorded."""

    def discard_part(self, name: str) -> None:
        """Remove an uncommitted part's files."""

    def reaching(self, action: str) -> AbstractContextManager:
        """Turn a failure to reach the storage into a ``StoreError``."""


class PartWriter:
    """One writer's part: documents written one after another, then :meth:`commit`.

    Parameters
    ----------
    fstore : PartStorage
        The (writable) store.
    """

    def __init__(self, fstore: PartStorage, name: str | None = None):
        self.fstore = fstore
        self.name = name or new_part_name()
        self._group: zarr.Group | None = None
        self._recording: Any = None  # what the store records of the files written
        self._arrays: dict[tuple[str, str], PartArray] = {}
        self._count: dict[str, int] = {}
        self._sinks: dict[str, _FeatureSink] = {}
        self._last: dict[str, tuple] = {}
        self.rows: list[dict] = []

    @property
    def path(self) -> str:
        """The part's path under the store's root."""
        return f"parts/{self.name}"

    def _part_group(self) -> zarr.Group:
        if self._group is None:
            self._group, self._recording = self.fstore.part_group(self.name)
        return self._group

    def _target(self, feature: str, info: dict, chunk: xr.DataArray, index: TimeIndex,
                dtype) -> PartArray:
        """Return the array for a document's feature.

        The previous document's when the labels are the same (compared by index
        parameters: cheap), else found or created by label key.
        """
        last = self._last.get(feature)
        indexes = {k: v for k, v in chunk.xindexes.items() if k != "time"}
        coords = chunk.coords.variables
        if last is not None:
            array, dims, rest, ldtype, rate, lindexes, lcoords = last
            if (chunk.dims == dims and chunk.shape[1:] == rest and np.dtype(dtype) == ldtype
                    and (index.frequency, index.duration) == rate
                    and indexes.keys() == lindexes.keys() and set(coords) == lcoords
                    and all(v is lindexes[k] or v.equals(lindexes[k])
                            for k, v in indexes.items())
                    and all(c in indexes or "time" in coords[c].dims for c in coords)):
                return array
        array = self._array_for(feature, info, _Labels(feature, chunk, index, dtype))
        self._last[feature] = (array, chunk.dims, chunk.shape[1:], np.dtype(dtype),
                               (index.frequency, index.duration), indexes, set(coords))
        return array

    def _array_for(self, feature: str, info: dict, labels: _Labels) -> PartArray:
        found = self._arrays.get((feature, labels.key))
        if found is not None:
            return found
        k = self._count.get(feature, 0)
        self._count[feature] = k + 1
        group_name = feature if k == 0 else f"{feature}.{k}"
        with self.fstore.reaching("write to"):
            cls = EncodedPartArray if info.get("store_as") in EncodedPartArray.FORMATS \
                else PartArray
            array = cls(self._part_group(), group_name, feature, info, labels)
        self._arrays[(feature, labels.key)] = array
        return array

    # ------------------------------------------------------------------ documents
    def sinks(self, infos: dict[str, dict]) -> dict[str, _FeatureSink]:
        """Sinks for one document's stored features (``{name: feature info}``)."""
        self._sinks = {name: _FeatureSink(self, name, info) for name, info in infos.items()}
        return dict(self._sinks)

    def finish_document(self, doc_id: str, columns: dict) -> dict:
        """Record the document (``columns``: its metadata columns); returns its row."""
        row = {"id": doc_id, **columns}
        with self.fstore.reaching("write to"):
            for sink in self._sinks.values():
                row.update(sink.finish())
        self._sinks = {}
        self.rows.append(row)
        return row

    def reserve(self, rows: dict[str, int]) -> dict[str, dict] | None:
        """Preallocate the current document's arrays for writers elsewhere.

        A split long recording (``documents/longfile.py``): the document's sinks have
        taken its first chunks (which fix labels and dtypes); each feature's array is
        created at ``rows[name]`` rows, and the ranges write disjoint whole shards of
        it. ``None`` when that cannot be (the document is not the part's first, or a
        feature is stored encoded).

        Returns
        -------
        dict or None
            Per feature: ``path`` (the array's under the store's root), ``shard_rows``,
            ``shape`` (one row's), ``dtype`` and ``metadata`` (its ``zarr.json``).
        """
        out = {}
        for name, sink in self._sinks.items():
            target = sink.target
            if type(target) is not PartArray or sink.offset:
                return None
            with self.fstore.reaching("write to"):
                array = target.reserve(rows[name])
            out[name] = {"path": array.path, "shard_rows": target.shard_rows,
                         "shape": target.labels.rest, "dtype": target.dtype.str,
                         "metadata": json.dumps(array.metadata.to_dict()).encode()}
        return out

    def adopt(self, rows: dict[str, int], records: dict[str, dict]) -> None:
        """Take what writers elsewhere wrote of the current document.

        ``rows``: per feature, the rows written; ``records``: the log's records of
        the files they wrote (committed with the part).
        """
        for name, n in rows.items():
            self._sinks[name].adopt(n)
        self._part_group()
        self._recording.records.update(records)

    def finish_stacked(self, infos: dict[str, dict], chunks: dict[str, xr.DataArray],
                       docs: list[tuple[str, dict]]) -> list[dict] | None:
        """Record ``docs`` computed together: document ``k`` is channel ``k`` of ``chunks``.

        The same rows and arrays as writing each document's slice of every chunk with
        :meth:`sinks` and :meth:`finish_document`, in order, at the cost of one append
        per feature instead of one per document (short clips: the per-document slicing,
        checks and row building cost more than computing them). ``chunks`` maps each
        stored feature of ``infos`` to its one chunk, ``channel`` last. Returns the
        rows, or ``None`` (nothing recorded) when the documents must be written one by
        one: compressed audio (blocks per document), or a chunk the first document's
        sink refuses (each document then gets its own error).
        """
        k = len(docs)
        if not k or any(info.get("store_as") in EncodedPartArray.FORMATS
                        for info in infos.values()):
            return None
        for chunk in chunks.values():
            if not isinstance(chunk, xr.DataArray) or chunk.dims[-1] != "channel" \
                    or chunk.sizes["channel"] != k or chunk.dims[0] != "time":
                return None
        columns: dict[str, _FeatureSink] = {}
        try:
            with self.fstore.reaching("write to"):
                for name, info in infos.items():
                    sink = _FeatureSink(self, name, info)
                    columns[name] = sink
                    # the first document's slice through the one-document sink: its
                    # checks, cast and array; the others' rows follow it in one append
                    sink(chunks[name].isel(channel=0))
                    rest = np.moveaxis(np.asarray(chunks[name].data), -1, 0)[1:]
                    if sink.cast is not None:
                        rest = rest.astype(sink.cast)
                    assert sink.target is not None  # set by the first chunk
                    sink.target.append(rest.reshape(-1, *rest.shape[2:]))
                finished = {name: sink.finish() for name, sink in columns.items()}
        except Exception:  # noqa: BLE001  (redone document by document, errors and all)
            for sink in columns.values():
                sink.abort()
            return None
        rows = []
        for j, (doc_id, meta) in enumerate(docs):
            row = {"id": doc_id, **meta}
            for name, sink in columns.items():
                cols = dict(finished[name])  # the first document's: the same frames
                cols[f"{name}.offset"] = sink.offset + j * sink.received
                row.update(cols)
            rows.append(row)
        self.rows.extend(rows)
        return rows

    def abort_document(self) -> None:
        """Forget the document being written (a failure)."""
        for sink in self._sinks.values():
            sink.abort()
        self._sinks = {}

    def record_failure(self, doc_id: str | None, uri: str, reason: str) -> None:
        """Record that ingesting ``uri`` failed, with ``reason``."""
        self.rows.append({"id": doc_id or "", "uri": uri, "_status": FAILED,
                          "_error": reason})

    def record_deletion(self, doc_id: str) -> None:
        """Record that the document ``doc_id`` is deleted."""
        self.rows.append({"id": doc_id, "_status": DELETED})

    @property
    def documents(self) -> int:
        """The number of documents written to this part."""
        return sum(1 for r in self.rows if r.get("_status") is None)

    def discard(self) -> None:
        """Remove what was written, best effort.

        :meth:`FeatureStore.vacuum` removes what a killed writer leaves.
        """
        if self._group is None:
            return
        with contextlib.suppress(Exception):  # the part is uncommitted either way
            self.fstore.discard_part(self.name)
        self._group = self._recording = None

    def commit(self) -> str | None:
        """Close the arrays, then commit the part.

        The catalog fragment is written first, then the log entry (the part becomes
        visible).

        Returns the part name, or ``None`` when there was nothing to record.
        """
        with self.fstore.reaching("write to"):
            for array in self._arrays.values():
                array.close()
        if not self.rows:
            return None
        self.fstore.commit_part(self.name, self.rows, self._recording)
        return self.name

