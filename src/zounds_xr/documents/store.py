"""``FeatureStore``: the Zarr root that holds feature documents (layout 2).

Layout (``docs/STORE_LAYOUT.md`` is the reference for other tools)::

    <root>/zarr.json                  attrs {"zounds_xr:store": {"layout": 2}}
    <root>/parts/<part>/<feature>/    per part and stored feature (and label set:
                                      ``<feature>.1``...): the frames of all the part's
                                      documents concatenated along time in one sharded,
                                      checksummed array, plus the labels they share
    <root>/catalog/<part>.parquet     the part's catalog fragment, written last

Parts are immutable and private to their writer; a part becomes visible when its
catalog fragment exists (see :mod:`.catalog` for the resolution rules). Readers
resolve documents through the catalog only: never one request per document.
"""
from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import os
import time
import uuid
import weakref
from fractions import Fraction
from typing import Any, cast

import dask.array as da
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import soundfile as sf
import xarray as xr
import zarr
import zarr.errors
import zarr.storage
from zarr.abc.store import Store as ZarrStore
from zarr.abc.store import SuffixByteRequest
from zarr.core.metadata import ArrayV3Metadata

from ..dimensions import INDEX_TYPES
from ..errors import DocumentNotFoundError, ParameterError, StoreError, ZoundsError
from ..timeseries.index import TimeIndex
from . import catalog as _catalog
from .parts import FEATURE, INDEX, PartWriter, encode_labels, new_part_name

__all__ = [
    "LAYOUT",
    "STORE",
    "FeatureStore",
    "decode_labels",
    "encode_labels",
    "open_store",
    "validate_id",
]

LAYOUT = 2
STORE = "zounds_xr:store"

# in-memory stores by token: a pickled FeatureStore finds its store again in-process
_MEMORY: weakref.WeakValueDictionary = weakref.WeakValueDictionary()

#: fsspec protocols whose first path component is a bucket (container)
_BUCKET_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "oss"})
#: defaults for S3 (s3fs), overridden by the caller's storage_options:
#: - ``max_concurrency=1``: s3fs otherwise sends a HEAD before every whole-object GET to
#:   decide whether to split it (our objects are <= one ~4 MiB shard; reads of shards
#:   are ranged GETs anyway), which doubles the requests of every metadata read;
#: - ``use_listings_cache=False``: a listing must show fragments written by other
#:   processes since the last one (the cache never expires by default).
_S3_DEFAULTS = {"max_concurrency": 1, "use_listings_cache": False}
#: modules of the remote clients whose errors mean "the store cannot be reached"
_CLIENT_MODULES = ("botocore", "aiobotocore", "aiohttp", "s3fs", "gcsfs", "adlfs",
                   "google", "azure", "fsspec")
#: default age (seconds) below which vacuum() leaves an invisible part alone: it may
#: belong to a writer that is still running
VACUUM_GRACE = 3600.0


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
def decode_labels(defs: dict, sizes: dict) -> list[xr.Coordinates]:
    """Coordinates with the indexes rebuilt from their stored definitions."""
    import importlib

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



# ---------------------------------------------------------------------- readers
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



def _part_of(path: str) -> str | None:
    """The part name in an array path ``parts/<part>/...``."""
    bits = str(path).split("/")
    return bits[1] if len(bits) > 2 and bits[0] == "parts" else None


class MissingChunkError(StoreError):
    """A chunk or shard of a visible document is missing from the store."""


class _ReadStore(zarr.storage.WrapperStore):
    """How readers see the store: parts are immutable, so the shard indexes a read
    fetches are cached (a slice reads each shard's index once, then its inner chunks),
    and a chunk or shard that is missing is an error, never fill values."""

    _INDEX_CACHE = 4096

    def __init__(self, store):
        super().__init__(store)
        self._indexes: dict = {}

    def _with_store(self, store):
        return type(self)(store)

    def __getstate__(self):
        return {"_store": self._store}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._indexes = {}

    async def get(self, key, prototype, byte_range=None):
        suffix = isinstance(byte_range, SuffixByteRequest)
        if suffix:
            found = self._indexes.get((key, byte_range.suffix))
            if found is not None:
                return found
        buf = await self._store.get(key, prototype, byte_range)
        if buf is None:
            if not key.endswith("zarr.json") and "/c/" in key:
                raise MissingChunkError(f"the chunk or shard {key!r} is missing")
            return None
        if suffix:
            if len(self._indexes) >= self._INDEX_CACHE:
                self._indexes.pop(next(iter(self._indexes)))
            self._indexes[(key, byte_range.suffix)] = buf
        return buf


class _Checked:
    """A stored array as dask reads it: any failure to read becomes a
    :class:`StoreError` naming the store, document, feature and array (picklable)."""

    def __init__(self, url, array, where: str, start: int = 0, stop: int | None = None):
        self.url, self.array, self.where = url, array, where
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
            out = self.array[key]
        except Exception as exc:
            what = str(exc) if isinstance(exc, ZoundsError) else (
                f"{type(exc).__name__}: {exc}")
            if "checksum" in what.lower() or "crc" in what.lower():
                what = f"a chunk fails its checksum (damaged data): {what}"
            raise StoreError(f"cannot read {self.where}, rows {_rows_of(key, self.start)}, "
                             f"from the feature store {self.url!r}: {what}") from exc
        rows = key[0]
        if isinstance(rows, slice) and out.shape[0] != rows.stop - rows.start:
            raise StoreError(f"cannot read {self.where}, rows {_rows_of(key, self.start)}, "
                             f"from the feature store {self.url!r}: the array has "
                             f"{self.array.shape[0]} rows, fewer than its catalog says "
                             f"(damaged metadata)")
        return out


#: at most about this many dask chunks per lazy read of a document (graph overhead)
_MAX_TASKS = 512


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
    shard's index is read once (:class:`_ReadStore` caches it)."""
    k = max(1, -(-(stop - start) // (_MAX_TASKS * inner)))
    step = inner * k
    edges = [start]
    edge = (start // step + 1) * step
    while edge < stop:
        edges.append(edge)
        edge += step
    edges.append(stop)
    sizes = tuple(b - a for a, b in itertools.pairwise(edges))
    whole = da.from_array(checked, chunks=(sizes, *((n,) for n in checked.shape[1:])),
                          name=f"zx-{name}-{start}-{stop}", asarray=False, fancy=False,
                          inline_array=True)
    return whole


class FeatureStore:
    """A Zarr root holding feature documents in immutable parts, with a Parquet catalog.

    Parameters
    ----------
    url : str, os.PathLike or zarr Store
        A local directory (created on first write), any fsspec URL (``memory://...``,
        ``s3://bucket/features.zarr``...) or a zarr store object.
    storage_options : dict, optional
        Passed to fsspec for URLs.
    read_only : bool, default False
        Refuse writes (what :func:`open_store` gives).

    Notes
    -----
    Picklable (it reconnects lazily), so document classes bound to it can be shipped to
    dask workers. An in-memory store (:meth:`in_memory`) is found again when unpickled
    in the same process; in another process it is a new, empty store.
    """

    def __init__(self, url, storage_options=None, read_only: bool = False):
        self._token = None
        if isinstance(url, zarr.storage.MemoryStore):
            self._token = uuid.uuid4().hex
            _MEMORY[self._token] = url
            self._memory = url
            self.url: str | ZarrStore = f"<zarr MemoryStore {self._token[:8]}>"
        elif isinstance(url, ZarrStore):
            self.url = url
        elif isinstance(url, (str, os.PathLike)):
            self.url = os.fspath(url)
            if not isinstance(self.url, str) or not self.url.strip():
                raise ParameterError(f"a FeatureStore needs a path or URL, got {url!r}")
            local = self.url.removeprefix("file://") if not _is_url(self.url) or \
                self.url.startswith("file://") else None
            if local is not None and os.path.isfile(local):
                raise StoreError(f"cannot use {self.url!r} as a feature store: it is a "
                                 f"regular file, not a directory")
        else:
            raise ParameterError(f"a FeatureStore needs a path, URL or zarr store, got {url!r}")
        self.storage_options = dict(storage_options or {})
        self.read_only = bool(read_only)
        self._reset()

    def _reset(self):
        self._zstore = None
        self._rstore = None
        self._root_checked = False
        self._fragments: dict[str, pa.Table] = {}  # name -> table (immutable)
        self._resolution = None  # (names, catalog with hidden columns, failures)
        self._arrays: dict[str, zarr.Array] = {}
        self._groups: dict[str, dict] = {}

    @classmethod
    def in_memory(cls) -> FeatureStore:
        """A store in zarr's ``MemoryStore`` (this process only)."""
        return cls(zarr.storage.MemoryStore())

    def __getstate__(self):
        state = {k: v for k, v in self.__dict__.items()
                 if k in ("_token", "url", "storage_options", "read_only")}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.read_only = state.get("read_only", False)
        self._reset()
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

    def _bucket(self) -> tuple[Any, str] | None:  # fsspec filesystems are untyped
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

    @property
    def _read_store(self) -> _ReadStore:
        if self._rstore is None:
            self._rstore = _ReadStore(self.zarr_store)
        return self._rstore

    # ------------------------------------------------------------------ the root
    def _layout_error(self, found) -> StoreError:
        return StoreError(
            f"the feature store {self.url!r} has layout {found!r}; this zounds_xr reads "
            f"layout {LAYOUT} only (parts and a Parquet catalog). Rebuild it: bind your "
            f"Document class to a new path (@zarr_settings('new.zarr')) and run "
            f"zx.ingest(dataset, Sound) again; then delete the old store")

    def _check_root(self, group: zarr.Group) -> None:
        info = group.attrs.get(STORE)
        if not isinstance(info, dict) or "layout" not in info:
            raise StoreError(f"{self.url!r} is a Zarr group but not a zounds_xr feature "
                             f"store (its root has no {STORE!r} attribute)")
        if info["layout"] != LAYOUT:
            raise self._layout_error(info["layout"])

    def _open_root(self) -> zarr.Group | None:
        with self._reaching("open"):
            try:
                return zarr.open_group(self.zarr_store, mode="r", zarr_format=3)
            except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError):
                pass
            except (NotADirectoryError, FileExistsError) as exc:
                raise StoreError(f"cannot open the feature store {self.url!r}: the path is "
                                 f"a file, not a directory ({exc})") from exc
            except (ValueError, UnicodeDecodeError, TypeError) as exc:
                raise StoreError(f"the feature store {self.url!r} has damaged root "
                                 f"metadata (zarr.json): {type(exc).__name__}: {exc}") from exc
            except OSError as exc:
                if _is_client_error(exc) and not isinstance(exc, PermissionError):
                    raise
                raise
        self._check_local_path()
        self._check_container()
        if self._has_keys("catalog") or self._has_keys("parts"):
            raise StoreError(f"the feature store {self.url!r} has parts or catalog "
                             f"fragments but its root metadata (zarr.json) is missing")
        return None

    def _check_local_path(self) -> None:
        if isinstance(self.zarr_store, zarr.storage.LocalStore):
            root = str(self.zarr_store.root)
            if os.path.exists(root) and not os.path.isdir(root):
                raise StoreError(f"cannot open the feature store {self.url!r}: the path is "
                                 f"a file, not a directory")

    def _has_keys(self, prefix: str) -> bool:
        async def any_key():
            async for _ in self.zarr_store.list_prefix(f"{prefix}/"):
                return True
            return False

        with self._reaching("list"):
            try:
                return _sync(any_key())
            except (FileNotFoundError, NotADirectoryError):
                return False

    def root(self, create: bool = False) -> zarr.Group | None:
        """The root group, checked (``None`` when there is none and ``create`` is false).

        Raises
        ------
        StoreError
            When the root is damaged, is a file, is of another layout, or its bucket
            does not exist.
        """
        group = self._open_root()
        if group is not None:
            self._check_root(group)
            self._root_checked = True
            return group
        if not create:
            return None
        self._writable()
        self._check_local_path()
        with self._reaching("create"):
            # several first writers may create the root at once (threads, processes,
            # workers): whoever loses the race finds the group the winner made
            for attempt in range(5):
                try:
                    group = zarr.open_group(self.zarr_store, mode="a", zarr_format=3)
                    break
                except zarr.errors.ContainsGroupError:
                    time.sleep(0.01 * (attempt + 1))
            else:
                group = zarr.open_group(self.zarr_store, mode="r+", zarr_format=3)
            if STORE not in group.attrs:
                group.attrs.update({STORE: {"layout": LAYOUT}})
            with contextlib.suppress(zarr.errors.ContainsGroupError):
                zarr.open_group(self.zarr_store, path="parts", mode="a", zarr_format=3)
        self._check_root(group)
        self._root_checked = True
        return group

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(f"the feature store {self.url!r} was opened read-only "
                             f"(open_store); bind a Document class to write")

    def _ensure_root(self) -> None:
        if not self._root_checked:
            self.root(create=True)

    # ------------------------------------------------------------------ writing
    def part(self) -> PartWriter:
        """A new, invisible part to write documents into (see :class:`PartWriter`)."""
        self._writable()
        self._ensure_root()
        return PartWriter(self)

    def _create_part_group(self, name: str) -> zarr.Group:
        with self._reaching("write to"):
            return zarr.create_group(self.zarr_store, path=f"parts/{name}", zarr_format=3,
                                     attributes={"zounds_xr:part": {"created": time.time()}})

    def _put(self, key: str, data: bytes) -> None:
        zstore = self.zarr_store
        with self._reaching("write to"):
            if isinstance(zstore, zarr.storage.LocalStore):
                # a rename is atomic: a killed writer never leaves half a fragment
                path = os.path.join(str(zstore.root), key)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            else:  # object stores and memory put whole objects
                from zarr.core.buffer import default_buffer_prototype

                _sync(zstore.set(key, default_buffer_prototype().buffer.from_bytes(data)))

    def _write_fragment(self, name: str, rows: list[dict]) -> None:
        self._writable()
        data = _catalog.fragment_bytes(rows, time.time_ns(), name)
        self._put(f"catalog/{name}.parquet", data)
        self._resolution = None

    # ------------------------------------------------------------------ the catalog
    def _fragment_names(self) -> list[str]:
        zstore = self.zarr_store
        if isinstance(zstore, zarr.storage.FsspecStore):
            zstore.fs.invalidate_cache(f"{zstore.path}/catalog")

        async def names():
            return [n async for n in zstore.list_dir("catalog")]

        with self._reaching("list"):
            try:
                listed = _sync(names())
            except (FileNotFoundError, NotADirectoryError):
                listed = []
        return sorted(n[:-len(".parquet")] for n in (x.strip("/") for x in listed)
                      if n.endswith(".parquet") and "/" not in n)

    def _fragment(self, name: str) -> pa.Table | None:
        table = self._fragments.get(name)
        if table is not None:
            return table
        key = f"catalog/{name}.parquet"
        where = f"{key!r} of {self.url!r}"
        zstore = self.zarr_store
        with self._reaching("read"):
            if isinstance(zstore, zarr.storage.LocalStore):
                try:  # read whole: a concurrent compaction may delete it any time
                    with open(os.path.join(str(zstore.root), key), "rb") as f:
                        source = f.read()
                except FileNotFoundError:
                    return None  # compacted away since the listing
            else:
                from zarr.core.buffer import default_buffer_prototype

                buf = _sync(zstore.get(key, default_buffer_prototype()))
                if buf is None:
                    return None  # compacted away since the listing
                source = buf.to_bytes()
        table = _catalog.read_fragment(source, where)
        self._fragments[name] = table
        return table

    def _resolve(self):
        """``(names, catalog with hidden columns, failures)``, cached while the
        listing of fragments is unchanged."""
        if not self._root_checked and self.root() is None:
            empty = _catalog.resolve(_catalog.combine([]))
            return ((), *empty)
        for _attempt in range(3):
            names = tuple(self._fragment_names())
            cached = self._resolution
            if cached is not None and cached[0] == names:
                return cached
            tables = [self._fragment(n) for n in names]
            if any(t is None for t in tables):
                continue  # a compaction removed fragments meanwhile: list again
            for stale in set(self._fragments) - set(names):
                del self._fragments[stale]
            self._resolution = (names, *_catalog.resolve(_catalog.combine(tables)))
            return self._resolution
        raise StoreError(f"the catalog of {self.url!r} kept changing while it was read")

    def catalog(self) -> pd.DataFrame:
        """One row per visible document (index ``id``): metadata, then per stored feature
        ``f``: ``f.frames``, ``f.version``, ``f.array``, ``f.offset``, ``f.index``."""
        return _catalog.public(self._resolve()[1])

    def failures(self) -> pd.DataFrame:
        """Sources whose last ingest failed (columns ``uri``, ``error``)."""
        failures = self._resolve()[2]
        return failures.rename(columns={"_error": "error"})[
            [c for c in ("uri", "error") if c in failures.rename(columns={"_error": "error"})]]

    @property
    def features(self) -> list[str]:
        """Names of the stored features (of any visible document)."""
        return _catalog.feature_columns(self._resolve()[1].columns)

    def ids(self) -> list[str]:
        """Ids of the visible documents (sorted)."""
        return self._resolve()[1].index.sort_values().tolist()

    def id_index(self) -> pd.Index:
        """Ids of the visible documents as a ``pandas.Index``."""
        return pd.Index(self._visible_ids().to_pandas(), name="id")

    def has(self, ids) -> np.ndarray:
        """Which of ``ids`` are visible documents (a boolean array): what ingest's resume
        checks, vectorised in Arrow; reads only the catalog's id and order columns unless
        the whole catalog is already at hand."""
        ids = pa.array([str(i) for i in ids], pa.string())
        return pc.is_in(ids, value_set=self._visible_ids()).to_numpy(zero_copy_only=False)

    def _visible_ids(self) -> pa.Array:
        names = tuple(self._fragment_names())
        cached = self._resolution
        if cached is not None and cached[0] == names:
            return pa.array(cached[1].index.to_numpy(dtype=object), pa.string())
        if not self._root_checked and self.root() is None:
            return pa.array([], pa.string())
        zstore = self.zarr_store
        columns = ["id", "_seq", "_part", "_status"]
        tables = []
        for name in names:
            table = self._fragments.get(name)
            if table is None and isinstance(zstore, zarr.storage.LocalStore):
                path = os.path.join(str(zstore.root), f"catalog/{name}.parquet")
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except FileNotFoundError:  # compacted meanwhile: the slow, safe way
                    return pa.array(self._resolve()[1].index.to_numpy(dtype=object),
                                    pa.string())
                table = _catalog.read_fragment(data, f"{path!r}", columns=columns)
            elif table is None:
                table = self._fragment(name)
                if table is None:
                    return pa.array(self._resolve()[1].index.to_numpy(dtype=object),
                                    pa.string())
            tables.append(table.select([c for c in columns if c in table.column_names]))
        return _catalog.visible_ids(_catalog.combine(tables))

    def exists(self, doc_id: str) -> bool:
        """Whether a visible document ``doc_id`` is in the store."""
        return validate_id(doc_id) in self._resolve()[1].index

    def row(self, doc_id: str) -> dict:
        """The document's resolved catalog row (with hidden columns), else
        :class:`DocumentNotFoundError`."""
        resolved = self._resolve()[1]
        validate_id(doc_id)
        try:
            row = resolved.loc[doc_id]
        except KeyError:
            raise DocumentNotFoundError(
                f"no document {doc_id!r} in the feature store {self.url!r}") from None
        out = row.to_dict()
        out["id"] = doc_id
        return out

    def delete(self, doc_id: str) -> None:
        """Hide a document: a tombstone fragment (its data goes with :meth:`vacuum`)."""
        if not self.exists(doc_id):
            raise DocumentNotFoundError(f"no document {doc_id!r} in {self.url!r}")
        part = self.part()
        part.record_deletion(doc_id)
        part.commit()

    # ------------------------------------------------------------------ reading
    def array(self, path: str) -> zarr.Array:
        """The read-only Zarr array at ``path`` (relative to the root); cached, as
        parts never change."""
        found = self._arrays.get(path)
        if found is None:
            with self._reaching("read"):
                try:
                    found = zarr.open_array(self._read_store, path=str(path), mode="r",
                                            zarr_format=3)
                except (FileNotFoundError, KeyError, zarr.errors.ArrayNotFoundError,
                        zarr.errors.NodeTypeValidationError) as exc:
                    raise StoreError(f"the array {path!r} is missing from the feature store "
                                     f"{self.url!r} ({type(exc).__name__})") from exc
                except (ValueError, UnicodeDecodeError, TypeError) as exc:
                    raise StoreError(f"the array {path!r} of {self.url!r} has damaged "
                                     f"metadata: {type(exc).__name__}: {exc}") from exc
            self._arrays[path] = found
        return found

    def _group_info(self, group_path: str) -> dict:
        """A feature group's attrs and its coordinate variables (cached)."""
        found = self._groups.get(group_path)
        if found is not None:
            return found
        with self._reaching("read"):
            try:
                group = zarr.open_group(self.zarr_store, path=group_path, mode="r",
                                        zarr_format=3)
            except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError) as exc:
                raise StoreError(f"the feature group {group_path!r} is missing from "
                                 f"{self.url!r}") from exc
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
            found = {"info": info, "defs": attrs.get(INDEX, {}), "coords": coords,
                     "name": name}
        self._groups[group_path] = found
        return found

    def read(self, row: dict, name: str, where: str | None = None) -> xr.DataArray:
        """A stored feature of a document (its catalog ``row``) as a lazy DataArray."""
        path = row[f"{name}.array"]
        offset, frames = int(row[f"{name}.offset"]), int(row[f"{name}.frames"])
        group_path = path.rsplit("/", 1)[0]
        ginfo = self._group_info(group_path)
        info = ginfo["info"]
        dims = tuple(info.get("dims") or ())
        where = where or f"document {row.get('id')!r}, feature {name!r}"
        if "codec" in info:
            data = self._encoded(group_path, name, info, offset, frames, where)
            dims = dims or (("time",) if info["codec"]["channels"] == 1 else
                            ("time", "channel"))
        else:
            array = self.array(path)
            meta = cast(ArrayV3Metadata, array.metadata)  # the store is zarr format 3
            dims = tuple(meta.dimension_names or dims)
            checked = _Checked(self.url, array, f"{where}, array {path!r}", offset,
                               offset + frames)
            data = _lazy_rows(checked, offset, offset + frames, array.chunks[0], path)
        defs = {**{k: v for k, v in ginfo["defs"].items() if k != "time"},
                "time": {**json.loads(row[f"{name}.index"]), "coord": "time"}}
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

    def __getitem__(self, doc_id: str) -> dict[str, xr.DataArray]:
        """Each stored feature of the document as a lazy DataArray, by name."""
        row = self.row(doc_id)
        return {f: self.read(row, f) for f in _catalog.feature_columns(row)
                if _present(row.get(f"{f}.array"))}

    def __contains__(self, doc_id) -> bool:
        return isinstance(doc_id, str) and self.exists(doc_id)

    def frames(self, feature: str, ids=None) -> xr.DataArray:
        """The stored frames of many documents as one lazy DataArray, dims
        ``("frame", ...)``: document ``ids[k]`` is the block of its ``f.frames`` rows
        after those before it (default: every document holding it, catalog order)."""
        resolved = self._resolve()[1]
        col = f"{feature}.array"
        if col not in resolved.columns:
            raise ParameterError(f"no stored feature {feature!r} in {self.url!r}; stored: "
                                 f"{self.features}")
        if ids is None:
            rows = resolved.loc[resolved[col].notna()]
        else:
            ids = [ids] if isinstance(ids, str) else list(ids)
            missing = [i for i in ids if i not in resolved.index]
            if missing:
                raise DocumentNotFoundError(f"no documents {missing[:5]} in {self.url!r}")
            rows = resolved.loc[ids]
            if rows[col].isna().any():
                raise StoreError(f"documents {list(rows.index[rows[col].isna()][:5])} do not "
                                 f"store {feature!r}")
        paths = rows[col].to_numpy()
        offsets = rows[f"{feature}.offset"].to_numpy().astype(np.int64)
        counts = rows[f"{feature}.frames"].to_numpy().astype(np.int64)
        pieces, template, labels_key = [], None, None
        i, n = 0, len(rows)
        while i < n:
            # documents stored back to back in one array are read as one range
            j = i + 1
            while j < n and paths[j] == paths[i] and offsets[j] == offsets[j - 1] + counts[
                    j - 1]:
                j += 1
            row = {f"{feature}.array": paths[i], f"{feature}.offset": offsets[i],
                   f"{feature}.frames": int(counts[i:j].sum()), "id": rows.index[i],
                   f"{feature}.index": json.dumps(TimeIndex.from_params(
                       int(counts[i:j].sum()), Fraction(1)).to_attrs())}
            piece = self.read(row, feature, where=f"feature {feature!r}")
            ginfo = self._group_info(str(paths[i]).rsplit("/", 1)[0])
            key = (piece.dims, piece.shape[1:], str(piece.dtype),
                   json.dumps({k: v for k, v in ginfo["defs"].items() if k != "time"},
                              sort_keys=True))
            if template is None:
                template, labels_key = piece, key
            elif key != labels_key:
                raise StoreError(f"feature {feature!r}: these documents have different "
                                 f"labels (shape, scale or dtype) and cannot be stacked; "
                                 f"select documents of one kind with ids=")
            pieces.append(piece.data)
            i = j
        if template is None:
            raise StoreError(f"no documents store {feature!r}")
        data = da.concatenate(pieces, axis=0) if len(pieces) > 1 else pieces[0]
        dims = ("frame", *template.dims[1:])
        coords = {k: v for k, v in template.coords.items() if "time" not in v.dims}
        out = xr.DataArray(data, dims=dims, name=feature)
        return out.assign_coords(xr.Coordinates(
            coords, indexes={k: template.xindexes[k] for k in template.xindexes
                             if k in coords}))

    def iter_chunks(self, row: dict, name: str, seconds: Fraction):
        """A stored feature in consecutive chunks of about ``seconds`` (a stream source)."""
        lazy = self.read(row, name)
        index = cast(TimeIndex, lazy.xindexes["time"])
        rows = max(1, int(seconds / index.frequency))
        for start in range(0, lazy.sizes["time"], rows):
            yield lazy.isel(time=slice(start, start + rows)).compute()

    # ------------------------------------------------------------------ integrity
    def _bad_ranges(self, path: str) -> tuple[str | None, list[tuple[int, int, str]], int]:
        """Read an array block by block: ``(whole-array problem, [(start, stop,
        problem)], length)``."""
        try:
            array = self.array(path)
        except StoreError as exc:
            return str(exc), [], 0
        step = (array.shards or array.chunks)[0]
        bad = []
        for a in range(0, array.shape[0], step):
            b = min(a + step, array.shape[0])
            try:
                array[a:b]
            except Exception as exc:  # noqa: BLE001  (every failure is a finding)
                bad.append((a, b, f"{type(exc).__name__}: {exc}"))
        return None, bad, array.shape[0]

    def verify(self) -> dict[str, list[str]]:
        """Check every visible document: each stored feature's rows exist, lie inside
        their array and pass their checksums.

        Returns
        -------
        dict
            ``{doc_id: [problems]}`` for the damaged documents (empty when the store is
            healthy). ``ingest(..., repair=True)`` recomputes them.
        """
        resolved = self._resolve()[1]
        problems: dict[str, list[str]] = {}
        for f in _catalog.feature_columns(resolved.columns):
            held = resolved.loc[resolved[f"{f}.array"].notna(),
                                [f"{f}.array", f"{f}.offset", f"{f}.frames"]]
            for path, docs in held.groupby(f"{f}.array", sort=False):
                encoded = str(path).endswith(".bytes")
                whole, bad, length = self._bad_ranges(str(path))
                if encoded and whole is None:
                    group_path = str(path).rsplit("/", 1)[0]
                    whole, more, _ = self._bad_ranges(f"{group_path}/{f}.offsets")
                    bad = bad + more
                for doc_id, offset, frames in zip(docs.index, docs[f"{f}.offset"],
                                                  docs[f"{f}.frames"], strict=True):
                    offset, frames = int(offset), int(frames)
                    found = []
                    if whole is not None:
                        found.append(whole)
                    elif encoded:
                        found += [msg for _, _, msg in bad]  # bytes: any damage
                    else:
                        if offset + frames > length:
                            found.append(f"rows {offset}:{offset + frames} lie outside the "
                                         f"array {path!r} of {length} rows")
                        found += [msg for a, b, msg in bad
                                  if a < offset + frames and b > offset]
                    if found:
                        problems.setdefault(str(doc_id), []).extend(
                            f"feature {f!r} ({path}): {msg}" for msg in found)
        return problems

    # ------------------------------------------------------------------ maintenance
    def compact(self) -> int:
        """Merge every catalog fragment into one (the resolved, visible rows and the
        current failures); returns the number of fragments merged. Readers keep
        working meanwhile: the merged fragment is written before the others go."""
        self._writable()
        names, resolved, failures = self._resolve()
        if len(names) <= 1:
            return len(names)
        rows = resolved.reset_index()
        if len(failures):
            rows = pd.concat([rows, failures.assign(_status=_catalog.FAILED)],
                             ignore_index=True)
        name = new_part_name()
        self._put(f"catalog/{name}.parquet", _catalog.frame_bytes(rows))
        zstore = self.zarr_store
        with self._reaching("write to"):
            for old in names:
                _sync(zstore.delete(f"catalog/{old}.parquet"))
        self._resolution = None
        return len(names)

    def _parts(self) -> tuple[list[str], set[str | None]]:
        """Every part in the store, and those a visible document refers to."""
        resolved = self._resolve()[1]
        used: set[str | None] = set()
        for f in _catalog.feature_columns(resolved.columns):
            used.update(_part_of(p) for p in resolved[f"{f}.array"].dropna().unique())

        async def names():
            return [n.strip("/") async for n in self.zarr_store.list_dir("parts")]

        with self._reaching("list"):
            try:
                parts = _sync(names())
            except (FileNotFoundError, NotADirectoryError):
                parts = []
        return sorted(p for p in parts if p and p != "zarr.json"), used

    def invisible_parts(self) -> list[str]:
        """Parts no visible document refers to: being written, left by a killed writer,
        or superseded (:meth:`vacuum` removes them)."""
        if self.root() is None:
            return []
        parts, used = self._parts()
        return [p for p in parts if p not in used]

    def vacuum(self, grace: float = VACUUM_GRACE) -> list[str]:
        """Delete the parts that no visible document refers to and that are older than
        ``grace`` seconds (younger ones may belong to a writer still running): a killed
        writer's invisible part, the losing copy of a document written twice, the data
        of deleted or updated documents. Returns the parts deleted."""
        self._writable()
        if self.root() is None:
            return []
        parts, used = self._parts()
        now = time.time_ns()
        gone = []
        for part in parts:
            if part in used:
                continue
            try:
                born = int(part.split("-", 1)[0])
            except ValueError:
                continue  # not a part name of ours
            if (now - born) / 1e9 < grace:
                continue
            with self._reaching("delete from"):
                _sync(self.zarr_store.delete_dir(f"parts/{part}"))
            gone.append(part)
        self._arrays = {k: v for k, v in self._arrays.items() if _part_of(k) not in gone}
        self._groups = {k: v for k, v in self._groups.items() if _part_of(k) not in gone}
        return gone

    def describe(self) -> str:
        """A summary read from the catalog: documents, hours of audio, features,
        failures and parts."""
        root = self.root()
        if root is None:
            return f"feature store {self.url}\nno store here (nothing written yet)"
        names, resolved, failures = self._resolve()
        lines = [f"feature store {self.url}  (layout {LAYOUT})"]
        hours = float(resolved["duration"].sum()) / 3600 if "duration" in resolved else 0.0
        lines.append(f"{len(resolved)} documents, {hours:.2f} hours of audio")
        features = _catalog.feature_columns(resolved.columns)
        parts: set[str | None] = set()
        for f in features:
            held = resolved[f"{f}.array"].notna()
            arrays = resolved.loc[held, f"{f}.array"].unique()
            parts.update(_part_of(p) for p in arrays)
            versions = resolved.loc[held, f"{f}.version"].value_counts()
            version = ", ".join(f"{v} ({n})" if len(versions) > 1 else str(v)
                                for v, n in versions.items())
            frames = int(resolved.loc[held, f"{f}.frames"].sum())
            lines.append(f"  {f:<16} {int(held.sum()):>9} documents {frames:>12} frames "
                         f"in {len(arrays)} arrays  version {version}")
        lines.append(f"{len(parts)} parts, {len(names)} catalog fragments")
        lines.append(f"{len(failures)} failures")
        for _, fail in failures.head(20).iterrows():
            lines.append(f"  failed: {fail.get('uri')}: {fail.get('_error')}")
        if len(failures) > 20:
            lines.append(f"  ... and {len(failures) - 20} more")
        return "\n".join(lines)


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) \
        and value is not pd.NA


def open_store(url, storage_options=None) -> FeatureStore:
    """Open a feature store for reading, without the Document class that wrote it.

    Parameters
    ----------
    url : str or os.PathLike
        A local path or fsspec URL (``s3://bucket/features.zarr``).
    storage_options : dict, optional
        For fsspec (s3fs: ``key``, ``secret``, ``client_kwargs``...).

    Returns
    -------
    FeatureStore
        Read-only and picklable (it reconnects lazily in another process):
        ``.catalog()``, ``.features``, ``store[doc_id]`` (``{feature: DataArray}``,
        lazy, dims ``time``, ...), ``.frames(feature, ids=None)`` (dims
        ``("frame", ...)``) and ``.array(path)``.

    Raises
    ------
    StoreError
        When there is no store at ``url`` or it cannot be read.

    Examples
    --------
    >>> store = zx.open_store("features.zarr")  # doctest: +SKIP
    >>> cat = store.catalog()  # doctest: +SKIP
    >>> mel = store[cat.index[0]]["mel"]  # doctest: +SKIP
    """
    store = FeatureStore(url, storage_options=storage_options, read_only=True)
    if store.root() is None:
        raise StoreError(f"no feature store at {url!r}")
    return store
