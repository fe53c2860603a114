"""The object layer under a feature store: whole objects by key, nothing more.

Everything above it (the log, the catalog, maintenance) sees a store as keys relative
to its root, with the few operations an object store offers (compare delta-rs's
``LogStore``): whole-object get, put, **put-if-absent**, listing and delete. (Ranged
reads of chunks go through the zarr store underneath, which the checked reader wraps:
``reader.CheckedStore``.) Put-if-absent is what makes commits safe among concurrent writers:

- a local directory: the object is written to a temporary file, then hard-linked to
  its key (``link`` fails when the key exists; readers never see half an object);
- S3: a real conditional put (``If-None-Match: *``, s3fs ``mode="create"``); the
  moto server honours it too;
- other fsspec file systems: their own ``mode="create"`` where they have one, else a
  check and a put under a process lock (atomic for ``memory://``, which lives in one
  process);
- zarr's ``MemoryStore``: a check and a put under a process lock.

Failures to reach the storage become :class:`StoreError` (:meth:`ObjectStore.reaching`).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import zarr
import zarr.storage
from zarr.abc.store import Store as ZarrStore
from zarr.core.buffer import default_buffer_prototype

from ..core.errors import StoreError, ZoundsError

__all__ = ["ObjectStore", "is_url", "open_zarr_store", "sync"]

#: fsspec protocols whose first path component is a bucket (container)
BUCKET_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "oss"})
#: defaults for S3 (s3fs), overridden by the caller's storage_options:
#: - ``max_concurrency=1``: s3fs otherwise sends a HEAD before every whole-object GET to
#:   decide whether to split it (our objects are <= one ~4 MiB shard; reads of shards
#:   are ranged GETs anyway), which doubles the requests of every metadata read;
#: - ``use_listings_cache=False``: a listing must show objects written by other
#:   processes since the last one (the cache never expires by default).
_S3_DEFAULTS = {"max_concurrency": 1, "use_listings_cache": False}
#: modules of the remote clients whose errors mean "the store cannot be reached"
_CLIENT_MODULES = ("botocore", "aiobotocore", "aiohttp", "s3fs", "gcsfs", "adlfs",
                   "google", "azure", "fsspec")
# put-if-absent where the storage itself cannot do it (in-process stores)
_CREATE_LOCK = threading.Lock()


def is_url(text: str) -> bool:
    """Tell whether ``text`` is a URL (has a ``scheme://``) rather than a local path."""
    return "://" in text


def protocol(url: str) -> str:
    return url.split("://", 1)[0].lower() if is_url(url) else "file"


def is_client_error(exc: BaseException) -> bool:
    """Tell whether ``exc`` failed to reach or authenticate with the storage (not a missing key)."""
    if isinstance(exc, (FileNotFoundError, NotADirectoryError, IsADirectoryError)):
        return False
    if isinstance(exc, (OSError, asyncio.TimeoutError)):
        return True
    return type(exc).__module__.split(".")[0] in _CLIENT_MODULES


def sync(coro):
    """Run a coroutine of a zarr store on zarr's event loop."""
    from zarr.core.sync import sync as zarr_sync

    return zarr_sync(coro)


def open_zarr_store(url: str, storage_options: dict) -> ZarrStore:
    """Open the zarr store of a local path or fsspec URL."""
    if is_url(url) and not url.startswith("file://"):
        options = dict(storage_options)
        if protocol(url) in ("s3", "s3a"):
            options = {**_S3_DEFAULTS, **options}
        try:
            return zarr.storage.FsspecStore.from_url(url, storage_options=options or None)
        except ImportError as exc:
            raise StoreError(f"cannot open {url!r}: {exc} (for s3:// install "
                             f"zounds_xr[s3], which brings s3fs)") from exc
        except (TypeError, ValueError) as exc:
            raise StoreError(f"cannot open the feature store {url!r}: {exc}") from exc
    return zarr.storage.LocalStore(url.removeprefix("file://"))


class ObjectStore:
    """Keys under a store's root (see the module docs).

    Parameters
    ----------
    zstore : zarr Store
        A ``LocalStore``, ``FsspecStore`` or ``MemoryStore``.
    url : str
        What messages call the store.
    """

    def __init__(self, zstore: ZarrStore, url: str):
        self.zarr, self.url = zstore, url
        self.local = str(zstore.root) if isinstance(zstore, zarr.storage.LocalStore) \
            else None
        self.fs: Any = zstore.fs if isinstance(zstore, zarr.storage.FsspecStore) else None

    def path(self, key: str) -> str:
        """Return the local path (or fsspec path) of ``key``."""
        if self.local is not None:
            return os.path.join(self.local, key)
        assert isinstance(self.zarr, zarr.storage.FsspecStore)
        return f"{self.zarr.path.rstrip('/')}/{key}"

    @contextlib.contextmanager
    def reaching(self, action: str) -> Iterator[None]:
        """Turn a refused or failed connection to the storage into a :class:`StoreError`."""
        try:
            yield
        except ZoundsError:
            raise
        except Exception as exc:
            if not is_client_error(exc):
                raise
            if isinstance(exc, PermissionError):
                hint = ("access denied: check the credentials (storage_options, or the "
                        "AWS_* / provider environment variables) and their permissions")
            else:
                hint = "the storage could not be reached"
            raise StoreError(f"cannot {action} the feature store {self.url!r}: {hint} "
                             f"({type(exc).__name__}: {exc})") from exc

    # ------------------------------------------------------------------ reads
    def get(self, key: str) -> bytes | None:
        """Read the whole object, or ``None`` when there is none."""
        with self.reaching("read"):
            if self.local is not None:
                try:
                    with open(self.path(key), "rb") as f:
                        return f.read()
                except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                    return None
            buf = sync(self.zarr.get(key, default_buffer_prototype()))
            return None if buf is None else buf.to_bytes()

    def exists(self, key: str) -> bool:
        """Tell whether the object ``key`` exists."""
        with self.reaching("read"):
            if self.local is not None:
                return os.path.isfile(self.path(key))
            return bool(sync(self.zarr.exists(key)))

    def size(self, key: str) -> int | None:
        """Return the object's size in bytes (one metadata request), ``None`` when absent."""
        with self.reaching("read"):
            if self.local is not None:
                try:
                    found = os.stat(self.path(key))
                except (FileNotFoundError, NotADirectoryError):
                    return None
                return found.st_size if stat.S_ISREG(found.st_mode) else None
            try:
                if self.fs is not None:
                    return int(sync(self.fs._info(self.path(key)))["size"])
                return int(sync(self.zarr.getsize(key)))
            except FileNotFoundError:
                return None

    def list_dir(self, prefix: str) -> list[str]:
        """Names directly under ``prefix`` (a folder), sorted; empty when there is none."""
        if self.fs is not None:
            self.fs.invalidate_cache(self.path(prefix))

        async def names():
            return [n.strip("/") async for n in self.zarr.list_dir(prefix)]

        with self.reaching("list"):
            try:
                return sorted(n for n in sync(names()) if n)
            except (FileNotFoundError, NotADirectoryError):
                return []

    def list_files(self, prefix: str) -> dict[str, int]:
        """Every object under ``prefix`` (recursively) with its size in bytes."""
        out: dict[str, int] = {}
        with self.reaching("list"):
            if self.local is not None:
                top = self.path(prefix)
                for folder, _, files in os.walk(top):
                    for name in files:
                        path = os.path.join(folder, name)
                        with contextlib.suppress(FileNotFoundError):
                            key = os.path.relpath(path, self.local).replace(os.sep, "/")
                            out[key] = os.stat(path).st_size
                return out
            if self.fs is not None:
                base = self.path("").rstrip("/")
                self.fs.invalidate_cache(self.path(prefix))
                try:
                    found = sync(self.fs._find(self.path(prefix), detail=True))
                except FileNotFoundError:
                    return out
                for path, info in found.items():
                    out[path[len(base) + 1:]] = int(info.get("size") or 0)
                return out

            async def each():
                async for key in self.zarr.list_prefix(prefix):
                    buf = await self.zarr.get(key, default_buffer_prototype())
                    if buf is not None:
                        out[key] = len(buf)

            sync(each())
        return out

    # ------------------------------------------------------------------ writes
    def put(self, key: str, data: bytes) -> None:
        """Write the whole object (replacing any); readers never see half of it."""
        with self.reaching("write to"):
            if self.local is not None:
                path = self.path(key)
                tmp = self._temporary(path, data)
                os.replace(tmp, path)
            else:
                sync(self.zarr.set(key, default_buffer_prototype().buffer.from_bytes(data)))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Write the object unless ``key`` exists; whether this call wrote it."""
        with self.reaching("write to"):
            if self.local is not None:
                path = self.path(key)
                tmp = self._temporary(path, data)
                try:
                    os.link(tmp, path)  # atomic, and fails when the key exists
                    return True
                except FileExistsError:
                    return False
                finally:
                    os.unlink(tmp)
            if self.fs is not None and protocol(self.url) in BUCKET_PROTOCOLS:
                try:
                    sync(self.fs._pipe_file(self.path(key), data, mode="create"))
                    return True
                except FileExistsError:
                    return False
            with _CREATE_LOCK:  # in-process stores (memory)
                if sync(self.zarr.exists(key)):
                    return False
                sync(self.zarr.set(key, default_buffer_prototype().buffer.from_bytes(data)))
                return True

    def _temporary(self, path: str, data: bytes) -> str:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        return tmp

    def delete(self, key: str) -> None:
        """Delete the object ``key`` (nothing when it is already gone)."""
        with self.reaching("delete from"):
            if self.local is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path(key))
                return
            sync(self.zarr.delete(key))

    def delete_dir(self, prefix: str) -> None:
        """Delete every object under ``prefix``."""
        with self.reaching("delete from"):
            sync(self.zarr.delete_dir(prefix))
