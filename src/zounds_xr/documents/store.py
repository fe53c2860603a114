"""``FeatureStore``: the Zarr root that holds feature documents.

Layout (``docs/STORE_LAYOUT.md`` is the reference for other tools)::

    <root>/                      attrs {"zounds_xr:store": {"layout": 1}}
    <root>/<doc_id>/             one group per document
        attrs  zounds_xr:status    "writing" | "complete" | "deleting" (written last)
               zounds_xr:meta      AudioMetaData.to_dict()
               zounds_xr:document  {"class", "layout", "features": {name: version}}
    <root>/<doc_id>/<feature>/   one group per stored feature
        attrs  zounds_xr:feature   {"version", "function", "needs", "params", "store_as",
                                    "dims", "dtype", "size", "status"}  (status last)
               zounds_xr:index     {dim: index definition}  (TimeIndex / FrequencyIndex)
        <feature>                the data, time first, dimension_names = dims
        <coordinate>             any other small coordinate (e.g. band edges)
        # store_as="ogg"/"flac": <feature>.bytes (uint8) and <feature>.offsets (int64)

The root is never consolidated (``consolidated=False`` everywhere): concurrent writers
of different documents touch disjoint keys. On object storage (``s3://...``, see
``docs/OBJECT_STORAGE.md``) the same promises hold without atomic renames: every key is
written whole, and a document's status is the last key written.
"""
from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
import os
import time
import uuid
import weakref
from fractions import Fraction

import dask.array as da
import numpy as np
import soundfile as sf
import xarray as xr
import zarr
import zarr.errors
import zarr.storage

from ..errors import DocumentNotFoundError, ParameterError, StoreError, ZoundsError
from ..timeseries.index import TimeIndex
from .streaming import time_index_of

__all__ = ["FeatureStore", "STATUS", "INDEX", "FEATURE", "META", "DOCUMENT", "COMPLETE",
           "WRITING", "encode_labels", "decode_labels"]

LAYOUT = 1
STATUS = "zounds_xr:status"
INDEX = "zounds_xr:index"
FEATURE = "zounds_xr:feature"
META = "zounds_xr:meta"
DOCUMENT = "zounds_xr:document"
STORE = "zounds_xr:store"
COMPLETE, WRITING, DELETING = "complete", "writing", "deleting"

#: uncompressed bytes of one inner chunk (the unit a read fetches)
INNER_CHUNK_BYTES = 1 << 17
#: inner chunks per shard (the unit a write puts; one object per shard)
CHUNKS_PER_SHARD = 32
#: seconds of audio in one independently decodable block of compressed audio
ENCODED_BLOCK_SECONDS = 5
#: bytes per chunk of the compressed-audio byte array
ENCODED_BYTES_CHUNK = 1 << 18

_INDEX_TYPES = {"TimeIndex": "zounds_xr.timeseries.index",
                "FrequencyIndex": "zounds_xr.frequency.index"}

# in-memory stores by token: a pickled FeatureStore finds its store again in-process
_MEMORY: weakref.WeakValueDictionary = weakref.WeakValueDictionary()

#: fsspec protocols whose first path component is a bucket (container)
_BUCKET_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "oss"})
#: defaults for S3 (s3fs), overridden by the caller's storage_options:
#: - ``max_concurrency=1``: s3fs otherwise sends a HEAD before every whole-object GET to
#:   decide whether to split it (our objects are <= one ~4 MiB shard; reads of shards
#:   are ranged GETs anyway), which doubles the requests of every metadata read;
#: - ``use_listings_cache=False``: a listing must show documents written by other
#:   processes since the last one (the cache never expires by default).
_S3_DEFAULTS = {"max_concurrency": 1, "use_listings_cache": False}
#: concurrent status reads when listing documents
_LIST_CONCURRENCY = 32
#: modules of the remote clients whose errors mean "the store cannot be reached"
_CLIENT_MODULES = ("botocore", "aiobotocore", "aiohttp", "s3fs", "gcsfs", "adlfs",
                   "google", "azure", "fsspec")


def _is_url(text: str) -> bool:
    return "://" in text


def _protocol(url: str) -> str:
    return url.split("://", 1)[0].lower() if _is_url(url) else "file"


def _is_client_error(exc: BaseException) -> bool:
    """A failure to reach or authenticate with the storage (not a missing key)."""
    if isinstance(exc, (FileNotFoundError, NotADirectoryError, IsADirectoryError)):
        return False
    if isinstance(exc, (OSError, asyncio.TimeoutError)):
        return True
    return type(exc).__module__.split(".")[0] in _CLIENT_MODULES


def _sync(coro):
    from zarr.core.sync import sync

    return sync(coro)


def validate_id(doc_id) -> str:
    """Check that ``doc_id`` can name a Zarr group (no ``/``, no leading ``.``)."""
    if not isinstance(doc_id, str) or not doc_id:
        raise ParameterError(f"a document id must be a non-empty string, got {doc_id!r}")
    if ("/" in doc_id or "\\" in doc_id or doc_id.startswith(".") or doc_id == "zarr.json"
            or any(ord(c) < 32 for c in doc_id) or len(doc_id) > 200):
        raise ParameterError(
            f"invalid document id {doc_id!r}: no '/', '\\', control characters or leading "
            f"'.', at most 200 characters")
    return doc_id


# ---------------------------------------------------------------------- labels
def encode_labels(chunk: xr.DataArray) -> tuple[dict, dict]:
    """Index definitions by dim, and the other small coordinates (name -> Variable).

    Coordinates along ``time`` that are not its index are dropped (they cannot be
    appended lazily); custom indexes are stored as their ``to_attrs()`` definition.
    """
    defs, extra = {}, {}
    indexed = set()
    for index, variables in chunk.xindexes.group_by_index():
        to_attrs = getattr(index, "to_attrs", None)
        if to_attrs is None:
            continue
        dims = {d for v in variables.values() for d in v.dims}
        if len(dims) != 1:
            continue
        (dim,) = dims
        d = dict(to_attrs())
        if type(index).__name__ not in _INDEX_TYPES:
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


def decode_labels(defs: dict, sizes: dict) -> list[xr.Coordinates]:
    """Coordinates with the indexes rebuilt from their stored definitions."""
    import importlib

    out = []
    for dim, d in defs.items():
        kind = d.get("type")
        module = d.get("module") or _INDEX_TYPES.get(kind)
        if module is None:
            raise StoreError(f"unknown index type {kind!r} in the store")
        cls = getattr(importlib.import_module(module), kind)
        kwargs = {"dim": dim, "coord_name": d.get("coord", dim)}
        if cls is TimeIndex:
            kwargs["size"] = sizes[dim]
        attrs = {k: v for k, v in d.items() if k not in ("coord", "module")}
        out.append(xr.Coordinates.from_xindex(cls.from_attrs(attrs, **kwargs)))
    return out


def _chunk_rows(row_bytes: int) -> int:
    rows = max(1, INNER_CHUNK_BYTES // max(row_bytes, 1))
    return 1 << int(math.floor(math.log2(rows)))


def _compressors(dtype: np.dtype):
    # measured (NOTES.md): float spectra barely compress (ratio 1.2-1.3) while zstd makes
    # writes dominate; integers and booleans compress well and cheaply
    if dtype.kind in "fc":
        return None
    return "auto"


# ---------------------------------------------------------------------- writers
class ArrayWriter:
    """Appends a feature's chunks to a sharded Zarr array, one whole shard per write."""

    def __init__(self, group: zarr.Group, name: str, info: dict):
        self.group, self.name, self.info = group, name, info
        store_as = info.get("store_as")
        self.cast = np.dtype(store_as) if store_as in ("float16", "float32", "float64") \
            else None
        self.array = None
        self.first: TimeIndex | None = None
        self.received = 0
        self.written = 0
        self.pending: list[np.ndarray] = []
        self.pending_rows = 0

    def __call__(self, chunk: xr.DataArray) -> None:
        index = time_index_of(chunk, self.name)
        chunk = chunk.transpose("time", ...)
        data = np.asarray(chunk.data)
        if self.cast is not None:
            if data.dtype.kind == "c":
                raise StoreError(f"feature {self.name!r}: store_as={self.info['store_as']!r} "
                                 f"cannot hold complex values")
            data = data.astype(self.cast)
        if self.first is None:
            self._create(chunk, index, data.dtype)
        else:
            self._check(chunk, index, data)
        self.received += data.shape[0]
        if data.shape[0]:
            self.pending.append(data)
            self.pending_rows += data.shape[0]
        while self.pending_rows >= self.shard_rows:
            self._write(self._take(self.shard_rows))

    def _create(self, chunk, index, dtype):
        if dtype.kind not in "biufc":
            raise StoreError(f"feature {self.name!r}: cannot store dtype {dtype}")
        self.first = index
        self.dims = chunk.dims
        self.rest = chunk.shape[1:]
        self.defs, extra = encode_labels(chunk)
        row_bytes = int(np.prod(self.rest, dtype=np.int64)) * dtype.itemsize
        inner = _chunk_rows(row_bytes)
        self.shard_rows = inner * CHUNKS_PER_SHARD
        for cname, var in extra.items():
            values = np.asarray(var.values)
            if values.dtype.kind not in "biufcmM":
                raise StoreError(f"feature {self.name!r}: coordinate {cname!r} has dtype "
                                 f"{var.dtype}, which the store cannot hold")
            arr = self.group.create_array(cname, shape=values.shape, dtype=values.dtype,
                                          dimension_names=var.dims, overwrite=True)
            arr[...] = values
            arr.attrs.update({"zounds_xr:role": "coordinate", **_json_attrs(var.attrs)})
        self.coord_names = list(extra)
        self.inner, self.dtype = inner, dtype

    def _create_array(self, chunk_rows: int, shard_rows: int | None):
        # created at the first write: a feature that ends before filling one shard gets a
        # single chunk of its exact size (a short clip's features would otherwise occupy
        # whole padded shards: uncompressed, 128 KiB or more per feature)
        self.array = self.group.create_array(
            self.name, shape=(0, *self.rest), dtype=self.dtype,
            chunks=(chunk_rows, *self.rest),
            shards=None if shard_rows is None else (shard_rows, *self.rest),
            compressors=_compressors(self.dtype), dimension_names=self.dims,
            fill_value=0, overwrite=True,
            attributes={"coordinates": " ".join(self.coord_names)} if self.coord_names
            else None)

    def _check(self, chunk, index, data):
        if chunk.dims != self.dims or data.shape[1:] != self.rest:
            raise StoreError(f"feature {self.name!r}: chunk of dims {chunk.dims} and shape "
                             f"{data.shape} does not continue {self.dims} {self.rest}")
        f = self.first
        if index.frequency != f.frequency or index.duration != f.duration:
            raise StoreError(f"feature {self.name!r}: its time rate changed between chunks")
        expected = f.start + self.received * f.frequency
        if data.shape[0] and index.start != expected:
            raise StoreError(f"feature {self.name!r}: chunk starts at {index.start}s, "
                             f"{expected}s expected (a gap or overlap between chunks)")

    def _take(self, rows: int) -> np.ndarray:
        data = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
        head, tail = data[:rows], data[rows:]
        self.pending = [tail] if tail.shape[0] else []
        self.pending_rows = tail.shape[0]
        return head

    def _write(self, block: np.ndarray) -> None:
        n = block.shape[0]
        if self.array is None:
            self._create_array(self.inner, self.shard_rows)
        self.array.resize((self.written + n, *self.rest))
        self.array[self.written:self.written + n] = block
        self.written += n

    def close(self) -> dict:
        """Write what is left and the definitions; the status attribute goes last."""
        if self.array is None and self.first is not None:
            self._create_array(max(1, self.pending_rows), None)
        if self.pending_rows:
            self._write(self._take(self.pending_rows))
        info = dict(self.info)
        if self.first is not None:
            self.defs["time"] = {**TimeIndex.from_params(
                self.written, self.first.frequency, self.first.duration,
                self.first.start).to_attrs(), "coord": self.defs.get("time", {}).get(
                    "coord", "time")}
            info.update(dims=list(self.dims), dtype=str(self.array.dtype), size=self.written)
        else:
            info.update(dims=None, size=0)
        self.group.attrs.update({INDEX: self.defs if self.first is not None else {}})
        info["status"] = COMPLETE
        self.group.attrs.update({FEATURE: info})
        return info


class EncodedAudioWriter(ArrayWriter):
    """Audio stored as Ogg Vorbis or FLAC in independently decodable blocks."""

    FORMATS = {"ogg": ("OGG", "VORBIS"), "flac": ("FLAC", "PCM_16")}

    def __init__(self, group, name, info):
        super().__init__(group, name, info)
        self.format, self.subtype = self.FORMATS[info["store_as"]]
        self.offsets = [0]
        self.byte_pending: list[bytes] = []
        self.byte_rows = 0
        self.bytes_written = 0

    def _create(self, chunk, index, dtype):
        rate = 1 / index.frequency
        if index.duration != index.frequency or rate.denominator != 1:
            raise StoreError(f"feature {self.name!r}: store_as={self.info['store_as']!r} "
                             f"needs audio samples, got a time axis of "
                             f"{index.frequency}s frames")
        if chunk.dims not in (("time",), ("time", "channel")):
            raise StoreError(f"feature {self.name!r}: store_as={self.info['store_as']!r} "
                             f"needs audio with dims (time[, channel]), got {chunk.dims}")
        self.first, self.dims, self.rest = index, chunk.dims, chunk.shape[1:]
        self.samplerate = int(rate)
        self.channels = chunk.shape[1] if chunk.ndim == 2 else 1
        self.defs, _ = encode_labels(chunk)
        self.shard_rows = self.samplerate * ENCODED_BLOCK_SECONDS  # one block
        self.array = self.group.create_array(
            f"{self.name}.bytes", shape=(0,), dtype="uint8", chunks=(ENCODED_BYTES_CHUNK,),
            compressors=None, dimension_names=("byte",), overwrite=True)

    def _write(self, block: np.ndarray) -> None:
        buf = io.BytesIO()
        sf.write(buf, np.clip(block, -1.0, 1.0) if self.format == "FLAC" else block,
                 self.samplerate, format=self.format, subtype=self.subtype)
        encoded = buf.getvalue()
        self.offsets.append(self.offsets[-1] + len(encoded))
        self.written += block.shape[0]
        self.byte_pending.append(encoded)
        self.byte_rows += len(encoded)
        if self.byte_rows >= ENCODED_BYTES_CHUNK:
            data = b"".join(self.byte_pending)
            whole = len(data) // ENCODED_BYTES_CHUNK * ENCODED_BYTES_CHUNK
            self._put_bytes(data[:whole])
            self.byte_pending = [data[whole:]] if whole < len(data) else []
            self.byte_rows = len(data) - whole

    def _put_bytes(self, data: bytes) -> None:
        n = len(data)
        self.array.resize((self.bytes_written + n,))
        self.array[self.bytes_written:self.bytes_written + n] = np.frombuffer(data, np.uint8)
        self.bytes_written += n

    def close(self) -> dict:
        if self.pending_rows:
            self._write(self._take(self.pending_rows))
        if self.byte_pending:
            self._put_bytes(b"".join(self.byte_pending))
            self.byte_pending = []
        if self.first is not None:
            offsets = np.asarray(self.offsets, dtype=np.int64)
            arr = self.group.create_array(f"{self.name}.offsets", shape=offsets.shape,
                                          dtype="int64", dimension_names=("block_edge",),
                                          overwrite=True)
            arr[...] = offsets
            self.info = {**self.info, "codec": {
                "format": self.format, "subtype": self.subtype,
                "block_frames": self.samplerate * ENCODED_BLOCK_SECONDS,
                "samplerate": self.samplerate, "channels": self.channels}}
        info = super().close()
        if self.first is not None:
            info["dtype"] = "float32"
            self.group.attrs.update({FEATURE: info})
        return info


def _json_attrs(attrs: dict) -> dict:
    out = {}
    for k, v in attrs.items():
        if isinstance(v, (str, int, float, bool)) or v is None:
            out[str(k)] = v
    return out


# ---------------------------------------------------------------------- readers
class _BlockDecoder:
    """Decodes one block of compressed audio (a dask ``map_blocks`` function)."""

    def __init__(self, array, offsets, block_frames, frames, channels):
        self.array, self.offsets = array, offsets
        self.block_frames, self.frames, self.channels = block_frames, frames, channels

    def __call__(self, block_ids: np.ndarray) -> np.ndarray:
        i = int(block_ids[0])
        raw = self.array[int(self.offsets[i]):int(self.offsets[i + 1])]
        data, _ = sf.read(io.BytesIO(raw.tobytes()), dtype="float32", always_2d=True)
        n = min(self.block_frames, self.frames - i * self.block_frames)
        if data.shape[0] < n:
            data = np.concatenate([data, np.zeros((n - data.shape[0], data.shape[1]),
                                                  np.float32)])
        data = data[:n]
        return data[:, 0] if self.channels == 1 else data


async def _has_keys(zstore, prefix: str) -> bool:
    async for _ in zstore.list_prefix(f"{prefix}/"):
        return True
    return False


# ---------------------------------------------------------------------- the store
class FeatureStore:
    """A Zarr root holding feature documents, one group per document.

    Parameters
    ----------
    url : str, os.PathLike or zarr Store
        A local directory (created on first write), any fsspec URL (``memory://...``,
        ``s3://bucket/features.zarr``...) or a zarr store object.
    storage_options : dict, optional
        Passed to fsspec for URLs.

    Notes
    -----
    Picklable (it reconnects lazily), so document classes bound to it can be shipped to
    dask workers. An in-memory store (:meth:`in_memory`) is found again when unpickled
    in the same process; in another process it is a new, empty store.
    """

    def __init__(self, url, storage_options=None):
        self._token = None
        if isinstance(url, zarr.storage.MemoryStore):
            self._token = uuid.uuid4().hex
            _MEMORY[self._token] = url
            self._memory = url
            self.url = f"<zarr MemoryStore {self._token[:8]}>"
        elif isinstance(url, zarr.abc.store.Store):
            self.url = url
        elif isinstance(url, (str, os.PathLike)):
            self.url = os.fspath(url)
        else:
            raise ParameterError(f"a FeatureStore needs a path, URL or zarr store, got {url!r}")
        self.storage_options = dict(storage_options or {})
        self._zstore = None
        self._root_group = None
        self._opened = None  # (weakref to a document group, name, its feature group)

    @classmethod
    def in_memory(cls) -> FeatureStore:
        """A store in zarr's ``MemoryStore`` (this process only)."""
        return cls(zarr.storage.MemoryStore())

    def __getstate__(self):
        state = dict(self.__dict__)
        state.update(_zstore=None, _root_group=None, _opened=None)
        state.pop("_memory", None)
        return state

    def __setstate__(self, state):
        state.setdefault("_root_group", None)
        state.setdefault("_opened", None)
        self.__dict__.update(state)
        if self._token is not None:
            memory = _MEMORY.get(self._token)
            if memory is None:
                memory = zarr.storage.MemoryStore()
                _MEMORY[self._token] = memory
            self._memory = memory

    def __repr__(self) -> str:
        return f"FeatureStore({self.url!r})"

    # ------------------------------------------------------------------ plumbing
    @property
    def zarr_store(self):
        if self._zstore is None:
            if self._token is not None:
                self._zstore = self._memory
            elif not isinstance(self.url, str):
                self._zstore = self.url
            elif _is_url(self.url) and not self.url.startswith("file://"):
                options = dict(self.storage_options)
                if _protocol(self.url) in ("s3", "s3a"):
                    options = {**_S3_DEFAULTS, **options}
                try:
                    self._zstore = zarr.storage.FsspecStore.from_url(
                        self.url, storage_options=options or None)
                except ImportError as exc:
                    raise StoreError(
                        f"cannot open {self.url!r}: {exc} (for s3:// install "
                        f"zounds_xr[s3], which brings s3fs)") from exc
                except (TypeError, ValueError) as exc:
                    raise StoreError(f"cannot open the feature store {self.url!r}: "
                                     f"{exc}") from exc
            else:
                path = self.url[len("file://"):] if self.url.startswith("file://") else self.url
                self._zstore = zarr.storage.LocalStore(path)
        return self._zstore

    @contextlib.contextmanager
    def _reaching(self, action: str):
        """Turn a refused or failed connection to the storage into a :class:`StoreError`."""
        try:
            yield
        except ZoundsError:
            raise
        except Exception as exc:
            if not _is_client_error(exc):
                raise
            if isinstance(exc, PermissionError):
                hint = ("access denied: check the credentials (storage_options, or the "
                        "AWS_* / provider environment variables) and their permissions")
            else:
                hint = "the storage could not be reached"
            raise StoreError(f"cannot {action} the feature store {self.url!r}: {hint} "
                             f"({type(exc).__name__}: {exc})") from exc

    def _bucket(self) -> tuple[object, str] | None:
        """The fsspec filesystem and bucket of an object-storage URL, else ``None``."""
        zstore = self.zarr_store
        if not (isinstance(self.url, str) and _protocol(self.url) in _BUCKET_PROTOCOLS
                and isinstance(zstore, zarr.storage.FsspecStore)):
            return None
        return zstore.fs, zstore.path.strip("/").split("/", 1)[0]

    def _check_container(self) -> None:
        """Raise :class:`StoreError` when the store's bucket does not exist.

        Called only when the root group is missing (a new or empty store), so that a
        misspelled bucket is an error instead of an empty store.
        """
        found = self._bucket()
        if found is None:
            return
        fs, bucket = found
        with self._reaching("open"):
            try:
                exists = _sync(fs._exists(bucket))
            except FileNotFoundError:
                exists = False
        if not exists:
            raise StoreError(f"cannot open the feature store {self.url!r}: the bucket "
                             f"{bucket!r} does not exist (or these credentials cannot see "
                             f"it); create it first")

    def root(self, create: bool = False) -> zarr.Group | None:
        """The root group (``None`` when it does not exist and ``create`` is false)."""
        if create and self._root_group is not None:
            return self._root_group
        with self._reaching("open"):
            try:
                if create:
                    try:
                        root = zarr.open_group(self.zarr_store, mode="r+", zarr_format=3)
                    except (FileNotFoundError, KeyError):
                        self._check_container()
                        root = self._create_root()
                    if STORE not in root.attrs:
                        root.attrs.update({STORE: {"layout": LAYOUT}})
                    self._root_group = root
                    return root
                return zarr.open_group(self.zarr_store, mode="r", zarr_format=3)
            except (FileNotFoundError, KeyError):
                if create:
                    raise StoreError(f"cannot create the feature store {self.url!r}") from None
                self._check_container()
                return None
            except (OSError, ValueError) as exc:
                if _is_client_error(exc):
                    raise  # _reaching explains it
                if create:
                    raise StoreError(
                        f"cannot open the feature store {self.url!r}: {exc}") from exc
                return None

    def _create_root(self) -> zarr.Group:
        # several first writers may create the root at once (threads, processes,
        # workers): whoever loses the race opens the group the winner made
        for attempt in range(5):
            try:
                return zarr.open_group(self.zarr_store, mode="a", zarr_format=3)
            except zarr.errors.ContainsGroupError:
                time.sleep(0.01 * (attempt + 1))
        return zarr.open_group(self.zarr_store, mode="r+", zarr_format=3)

    def _group(self, doc_id: str, mode: str = "r") -> zarr.Group | None:
        with self._reaching("read"):
            try:
                return zarr.open_group(self.zarr_store, path=doc_id, mode=mode, zarr_format=3)
            except (FileNotFoundError, KeyError, NotADirectoryError):
                return None
            except (OSError, ValueError) as exc:
                if _is_client_error(exc):
                    raise
                return None

    def _missing(self, doc_id: str) -> DocumentNotFoundError:
        """The error for a missing document (after checking the store's bucket)."""
        self.root()  # raises StoreError when the bucket is missing or access is refused
        return DocumentNotFoundError(f"no complete document {doc_id!r} in {self.url!r}")

    # ------------------------------------------------------------------ documents
    def status(self, doc_id: str) -> str | None:
        """The document's status attribute (``None`` when there is no such group)."""
        group = self._group(validate_id(doc_id))
        return None if group is None else group.attrs.get(STATUS)

    def exists(self, doc_id: str) -> bool:
        """Whether a *complete* document ``doc_id`` is in the store."""
        return self.status(doc_id) == COMPLETE

    def _statuses(self) -> list[tuple[str, str | None]]:
        """``(name, status)`` of every child of the root: one listing (never the whole
        tree) plus one small read per document, issued concurrently. A name whose
        group metadata is missing (a deletion or a write that died before its first
        key) has status ``None``."""
        if self.root() is None:
            return []
        zstore = self.zarr_store
        if isinstance(zstore, zarr.storage.FsspecStore):
            zstore.fs.invalidate_cache(zstore.path)  # see other processes' documents
        from zarr.core.buffer import default_buffer_prototype

        prototype = default_buffer_prototype()

        async def names():
            return [n async for n in zstore.list_dir("")]

        async def status(name, limit):
            async with limit:
                buf = await zstore.get(f"{name}/zarr.json", prototype)
            if buf is None:
                return name, None
            try:
                meta = json.loads(buf.to_bytes())
            except ValueError:
                return name, None
            if meta.get("node_type") != "group":
                return name, None
            return name, (meta.get("attributes") or {}).get(STATUS)

        async def everything():
            listed = sorted({n.strip("/") for n in await names()})
            listed = [n for n in listed if n and "/" not in n and n != "zarr.json"
                      and not n.startswith(".")]
            limit = asyncio.Semaphore(_LIST_CONCURRENCY)
            return await asyncio.gather(*(status(n, limit) for n in listed))

        with self._reaching("list"):
            return list(_sync(everything()))

    def ids(self) -> list[str]:
        """Ids of the complete documents (sorted)."""
        return [name for name, status in self._statuses() if status == COMPLETE]

    def incomplete_ids(self) -> list[str]:
        """Ids of groups left by writers that did not finish (invisible to readers)."""
        return [name for name, status in self._statuses() if status != COMPLETE]

    def document(self, doc_id: str, writable: bool = False) -> zarr.Group:
        """The group of a complete document, else :class:`DocumentNotFoundError`."""
        group = self._group(validate_id(doc_id), mode="r+" if writable else "r")
        if group is None or group.attrs.get(STATUS) != COMPLETE:
            raise self._missing(doc_id)
        return group

    def begin(self, doc_id: str, attrs: dict) -> zarr.Group:
        """Create (or wipe and recreate) a document group with status ``writing``."""
        root = self.root(create=True)
        with self._reaching("write to"):
            return root.create_group(validate_id(doc_id), overwrite=True,
                                     attributes={**attrs, STATUS: WRITING})

    def commit(self, group: zarr.Group, attrs: dict | None = None) -> None:
        """Update the document's attrs and mark it complete (the last write)."""
        with self._reaching("write to"):
            if attrs:
                group.attrs.update(attrs)
            group.attrs.update({STATUS: COMPLETE})

    def delete(self, doc_id: str) -> None:
        """Remove a document, complete or not (invisible first, then its keys).

        Also removes what a killed writer or deleter left (any id of
        :meth:`incomplete_ids`, even one whose group metadata is already gone).
        """
        group = self._group(validate_id(doc_id), mode="r+")
        zstore = self.zarr_store
        with self._reaching("delete from"):
            if group is None:
                if not _sync(_has_keys(zstore, doc_id)):
                    raise DocumentNotFoundError(f"no document {doc_id!r} in {self.url!r}")
            else:
                group.attrs.update({STATUS: DELETING})
            _sync(zstore.delete_dir(doc_id))
        self._opened = None

    def describe(self) -> str:
        """A human-readable table of the documents, features, sizes and versions."""
        lines = [f"feature store {self.url}"]
        ids, incomplete = self.ids(), self.incomplete_ids()
        lines.append(f"{len(ids)} complete documents"
                     + (f", {len(incomplete)} incomplete (invisible)" if incomplete else ""))
        total = 0
        for doc_id in ids:
            doc = self.document(doc_id)
            meta = doc.attrs.get("zounds_xr:meta", {})
            cls = doc.attrs.get("zounds_xr:document", {}).get("class", "?")
            lines.append(f"\n{doc_id}  {cls}  uri={meta.get('uri')}  "
                         f"rate={meta.get('samplerate')}  channels={meta.get('channels')}")
            for name in sorted(doc.group_keys()):
                info = self.feature_info(doc, name)
                if info is None:
                    continue
                stored = sum(a.nbytes_stored() for _, a in doc[name].arrays())
                total += stored
                shape = "x".join(str(a) for a in (
                    doc[name][name].shape if name in doc[name] else [info.get("size")]))
                lines.append(f"  {name:<16} {'(' + ','.join(info.get('dims', [])) + ')':<26}"
                             f" {shape:<14} {info.get('store_as') or info.get('dtype'):<10}"
                             f" {stored / 2**20:9.2f} MiB  version {info.get('version')}")
        lines.append(f"\ntotal stored: {total / 2**20:.2f} MiB")
        return "\n".join(lines)

    # ------------------------------------------------------------------ features
    def begin_feature(self, doc: zarr.Group, name: str, info: dict) -> ArrayWriter:
        """A writer for a stored feature (its group is wiped, status ``writing``)."""
        self._opened = None
        with self._reaching("write to"):
            group = doc.create_group(name, overwrite=True,
                                     attributes={FEATURE: {**info, "status": WRITING}})
        if info.get("store_as") in EncodedAudioWriter.FORMATS:
            return EncodedAudioWriter(group, name, info)
        return ArrayWriter(group, name, info)

    def _feature_group(self, doc: zarr.Group, name: str):
        """``doc[name]``, remembering the last one opened (a read follows its info)."""
        opened = self._opened
        if opened is not None and opened[0]() is doc and opened[1] == name:
            return opened[2]
        with self._reaching("read"):
            group = doc[name]
        try:
            self._opened = (weakref.ref(doc), name, group)
        except TypeError:  # pragma: no cover - a group type without weakrefs
            pass
        return group

    def feature_info(self, doc: zarr.Group, name: str) -> dict | None:
        """The stored feature's info when it is complete, else ``None``."""
        try:
            group = self._feature_group(doc, name)
        except KeyError:
            return None
        if not isinstance(group, zarr.Group):
            return None
        info = group.attrs.get(FEATURE)
        if not info or info.get("status") != COMPLETE:
            return None
        return dict(info)

    def read(self, doc: zarr.Group, name: str) -> xr.DataArray | None:
        """A stored feature as a lazy dask-backed DataArray (``None`` if it is empty).

        Opens the feature group and its data array's metadata only (plus the small
        coordinate arrays named in the array's ``coordinates`` attribute): no listing,
        whatever the length of the document.
        """
        group = self._feature_group(doc, name)
        info = group.attrs[FEATURE]
        if not info.get("dims"):
            return None
        dims = tuple(info["dims"])
        coord_names: list[str] = []
        with self._reaching("read"):
            if "codec" in info:
                data = self._encoded(group, name, info)
            else:
                array = group[name]
                coord_names = str(array.attrs.get("coordinates") or "").split()
                # one dask chunk per shard: a task reads the shard index once, then only
                # the inner chunks its selection needs (a remote read of 2 s is a few
                # ranged GETs, not an index GET per inner chunk)
                data = da.from_zarr(array, chunks=array.shards or array.chunks)
            sizes = dict(zip(dims, data.shape))
            out = xr.DataArray(data, dims=dims, name=name)
            for coords in decode_labels(group.attrs.get(INDEX, {}), sizes):
                out = out.assign_coords(coords)
            for cname in coord_names:
                arr = group[cname]
                if arr.attrs.get("zounds_xr:role") == "coordinate":
                    attrs = {k: v for k, v in arr.attrs.items() if k != "zounds_xr:role"}
                    out = out.assign_coords({cname: xr.Variable(
                        tuple(arr.metadata.dimension_names), arr[...], attrs=attrs)})
        return out

    @staticmethod
    def _encoded(group, name, info) -> da.Array:
        codec = info["codec"]
        frames, block = int(info["size"]), int(codec["block_frames"])
        offsets = group[f"{name}.offsets"][...]
        nblocks = len(offsets) - 1
        sizes = tuple(min(block, frames - i * block) for i in range(nblocks))
        decoder = _BlockDecoder(group[f"{name}.bytes"], offsets, block, frames,
                                codec["channels"])
        ids = da.arange(nblocks, chunks=1)
        if codec["channels"] == 1:
            return ids.map_blocks(decoder, chunks=(sizes,), dtype=np.float32,
                                  meta=np.empty((0,), np.float32))
        return ids.map_blocks(decoder, chunks=(sizes, (codec["channels"],)), new_axis=1,
                              dtype=np.float32, meta=np.empty((0, 0), np.float32))

    def iter_chunks(self, doc: zarr.Group, name: str, seconds: Fraction):
        """A stored feature in consecutive chunks of about ``seconds`` (a stream source)."""
        lazy = self.read(doc, name)
        if lazy is None:
            return
        index = lazy.xindexes["time"]
        rows = max(1, int(seconds / index.frequency))
        step = lazy.data.chunks[0][0] if lazy.data.chunks[0] else rows
        rows = max(step, rows // step * step)
        for start in range(0, lazy.sizes["time"], rows):
            yield lazy.isel(time=slice(start, start + rows)).compute()
