"""``FeatureStore``: the Zarr root that holds feature documents (layout 2).

Layout (``docs/STORE_LAYOUT.md`` is the reference for other tools)::

    <root>/zarr.json                  attrs {"zounds_xr:store": {"layout": 2, "log": 1}}
    <root>/parts/<part>/<feature>/    per part and stored feature (and label set:
                                      ``<feature>.1``...): the frames of all the part's
                                      documents concatenated along time in one sharded,
                                      checksummed array, plus the labels they share
    <root>/catalog/<part>.parquet     the part's catalog fragment
    <root>/_log/<n>.json              the commit log (:mod:`.log`)

The store is built in layers along the data flow: objects (:mod:`.objects`), the
commit log (:mod:`.log`, with the files' records of :mod:`.manifest`), the catalog
(:mod:`.catalog`: fragments resolved into one table), the checked reader
(:mod:`.reader`) and maintenance (:mod:`.maintenance`). This module ties them into
:class:`FeatureStore`, and offers part writers (:class:`.parts.PartWriter`) their
small interface: :meth:`~FeatureStore.part_group`, :meth:`~FeatureStore.commit_part`,
:meth:`~FeatureStore.discard_part` and :meth:`~FeatureStore.reaching`.

A part is committed exactly when its log entry exists; the catalog is resolved from
the fragments the log names, each checked against the log's record of it.
"""
from __future__ import annotations

import functools
import json
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import xarray as xr
import zarr
import zarr.storage
from zarr.abc.store import Store as ZarrStore
from zarr.core.buffer import default_buffer_prototype

from ..core.errors import DocumentNotFoundError, ParameterError, StoreError
from ..timeseries.index import TimeIndex
from . import catalog as _catalog
from . import maintenance as _maintenance
from .log import (
    CATALOG,
    LAYOUT,
    LOG,
    LOG_FORMAT,
    STORE,
    CommitLog,
    LogState,
    forget_shared,
    group_json,
    model_path,
)
from .manifest import RecordingStore, check_file, crc32c
from .objects import BUCKET_PROTOCOLS, ObjectStore, is_url, open_zarr_store, protocol, sync
from .parts import PartWriter, encode_labels, new_part_name
from .reader import CheckedArray, Reader, forget_opened

__all__ = [
    "LAYOUT",
    "STORE",
    "FeatureStore",
    "encode_labels",
    "forget_process_state",
    "open_store",
    "validate_id",
]

#: default age (seconds) below which vacuum() leaves an uncommitted part alone: it may
#: belong to a writer that is still running
VACUUM_GRACE = _maintenance.VACUUM_GRACE

# in-memory stores by token: a pickled FeatureStore finds its store again in-process
_MEMORY: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


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


#: catalogs this process resolved, by store (``FeatureStore._key``) and the fragments
#: they come from (keys and the log's checksums): a store opened again parses and
#: resolves nothing twice; bounded, a catalog of 10^6 documents being large
_RESOLVED: dict[tuple, tuple[pd.DataFrame, pd.DataFrame]] = {}
_RESOLVED_KEPT = 2
_RESOLVED_LOCK = threading.Lock()


def forget_process_state() -> None:
    """Forget what this process read and opened of every store, as a new process would.

    Objects made afterwards read the log from its checkpoint, the catalog fragments
    (each checked against the log) and the parts' metadata afresh: after a store was
    changed behind the log's back (damage, a restore from a backup) in a long-lived
    process.
    """
    with _RESOLVED_LOCK:
        _RESOLVED.clear()
    forget_shared()
    forget_opened()


def _native(value):
    """Return a catalog cell as pandas gives it in a row's ``to_dict()`` (Python scalars)."""
    return value.item() if isinstance(value, np.generic) else value


def _fragments_content(state: LogState) -> tuple:
    return tuple(sorted((k, r["size"], r["crc32c"], r["version"], r.get("kind"))
                        for k, r in state.fragments.items()))


def _unique_ids(state: LogState) -> bool:
    """Whether the log says the documents' ids are unique across the live fragments.

    It does for one compacted fragment (its writer resolved its rows).
    """
    return len(state.fragments) == 1 and bool(
        next(iter(state.fragments.values())).get("unique_ids"))


def _arrow_ids(index: pd.Index) -> pa.Array:
    """Return the catalog's ids as a pyarrow string array (no copy when Arrow holds them)."""
    try:
        return pa.array(index.array, pa.large_string()).cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(index.to_numpy(dtype=object), pa.string())


class FeatureStore:
    """A Zarr root holding feature documents in immutable parts.

    Its commit log and Parquet catalog say which parts are visible.

    Parameters
    ----------
    url : str, os.PathLike or zarr Store
        A local directory (created on first write), any fsspec URL (``memory://...``,
        ``s3://bucket/features.zarr``...) or a zarr store object.
    storage_options : dict, optional
        Passed to fsspec for URLs.
    read_only : bool, default False
        Refuse writes (what :func:`open_store` gives).

    Raises
    ------
    ParameterError
        When ``url`` is not a non-empty path, URL or zarr store.
    StoreError
        When ``url`` is a local regular file rather than a directory.

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
            local = self.url.removeprefix("file://") if not is_url(self.url) or \
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
        self._objects: ObjectStore | None = None
        self._log: CommitLog | None = None
        self.__dict__.pop("reader", None)
        self._root_checked = False
        self._tables: dict[str, pa.Table] = {}  # fragment key -> checked table
        self._resolution: tuple | None = None  # see _resolve_rows, + the labelled catalog
        self._columns: tuple | None = None  # (that catalog, its columns' arrays): row()

    @classmethod
    def in_memory(cls) -> FeatureStore:
        """Make a store in zarr's ``MemoryStore`` (this process only)."""
        return cls(zarr.storage.MemoryStore())

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items()
                if k in ("_token", "url", "storage_options", "read_only")}

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

    # ------------------------------------------------------------------ layers
    @property
    def zarr_store(self):
        """The zarr store at the root (opened on first use)."""
        if self._zstore is None:
            if self._token is not None:
                self._zstore = self._memory
            elif not isinstance(self.url, str):
                self._zstore = self.url
            else:
                self._zstore = open_zarr_store(self.url, self.storage_options)
        return self._zstore

    @property
    def objects(self) -> ObjectStore:
        """The object layer (:class:`.objects.ObjectStore`)."""
        if self._objects is None:
            self._objects = ObjectStore(self.zarr_store, str(self.url))
        return self._objects

    @property
    def log(self) -> CommitLog:
        """The commit log (:class:`.log.CommitLog`)."""
        if self._log is None:
            self._log = CommitLog(self.objects, self._key())
        return self._log

    def _key(self) -> tuple | None:
        """Name the store for the process: what its objects share.

        That is the log's state and what is opened of its parts; ``None`` for a zarr
        store object (this object only).
        """
        if not isinstance(self.url, str):
            return None
        options = json.dumps(self.storage_options, sort_keys=True, default=repr)
        return (self._token or self.url, options, os.getpid())  # (not a forked parent's)

    @functools.cached_property
    def reader(self) -> Reader:
        """The checked reader (:class:`.reader.Reader`): the read path of every document.

        An attribute once made: reading it costs no call.
        """
        return Reader(self.zarr_store, str(self.url), self._files_of, self.objects.get,
                      self._key())

    def reaching(self, action: str):
        """Return a context turning a failure to reach the storage into :class:`StoreError`."""
        return self.objects.reaching(action)

    def _committed(self, what: str, key: str) -> dict | None:
        """Return the log's record of a committed part or model.

        ``what``: ``"parts"`` or ``"models"``; ``None`` when the log commits none.
        """
        found = getattr(self._state(), what).get(key)
        if found is None:
            self.log.forget()  # committed since: read the log again, once
            found = getattr(self._state(), what).get(key)
        return found

    def _files_of(self, part: str) -> dict:
        found = self._committed("parts", part)
        if found is None:
            raise StoreError(f"the part {part!r} is not committed in the log of the feature "
                             f"store {self.url!r}")
        return found["files"]

    # ------------------------------------------------------------------ the root
    def _bucket(self) -> tuple[Any, str] | None:  # fsspec filesystems are untyped
        """Return the fsspec filesystem and bucket of an object-storage URL, else ``None``."""
        zstore = self.zarr_store
        if not (isinstance(self.url, str) and protocol(self.url) in BUCKET_PROTOCOLS
                and isinstance(zstore, zarr.storage.FsspecStore)):
            return None
        return zstore.fs, zstore.path.strip("/").split("/", 1)[0]

    def _check_container(self) -> None:
        """Raise :class:`StoreError` when the store's bucket does not exist.

        So a misspelled bucket is an error instead of an empty store.
        """
        found = self._bucket()
        if found is None:
            return
        fs, bucket = found
        with self.reaching("open"):
            try:
                exists = sync(fs._exists(bucket))
            except FileNotFoundError:
                exists = False
        if not exists:
            raise StoreError(f"cannot open the feature store {self.url!r}: the bucket "
                             f"{bucket!r} does not exist (or these credentials cannot see "
                             f"it); create it first")

    def _check_local_path(self) -> None:
        if self.objects.local is not None:
            root = self.objects.local
            if os.path.exists(root) and not os.path.isdir(root):
                raise StoreError(f"cannot open the feature store {self.url!r}: the path is "
                                 f"a file, not a directory")

    def _layout_error(self, found) -> StoreError:
        return StoreError(
            f"the feature store {self.url!r} has layout {found!r}; this zounds_xr reads "
            f"layout {LAYOUT} only (parts and a Parquet catalog). Rebuild it: bind your "
            f"Document class to a new path (@zarr_settings('new.zarr')) and run "
            f"zx.ingest(dataset, Sound) again; then delete the old store")

    def _attributes(self) -> dict | None:
        """Read the root's attributes, parsed (``None`` when there is no root)."""
        self._check_local_path()
        try:
            data = self.objects.get("zarr.json")
        except IsADirectoryError as exc:  # pragma: no cover - depends on the platform
            raise StoreError(f"the feature store {self.url!r} has damaged root metadata "
                             f"(zarr.json is a directory)") from exc
        if data is None:
            return None
        try:
            meta = json.loads(data)
            if not isinstance(meta, dict) or meta.get("node_type") != "group":
                raise ValueError("not the metadata of a Zarr group")
            return dict(meta.get("attributes") or {})
        except (ValueError, UnicodeDecodeError) as exc:
            raise StoreError(f"the feature store {self.url!r} has damaged root metadata "
                             f"(zarr.json): {type(exc).__name__}: {exc}") from exc

    def _check_root(self, attributes: dict, upgrading: bool = False) -> None:
        info = attributes.get(STORE)
        if not isinstance(info, dict) or "layout" not in info:
            raise StoreError(f"{self.url!r} is a Zarr group but not a zounds_xr feature "
                             f"store (its root has no {STORE!r} attribute)")
        if info["layout"] != LAYOUT:
            raise self._layout_error(info["layout"])
        if info.get("log") != LOG_FORMAT and not upgrading:
            raise StoreError(
                f"the feature store {self.url!r} was written before stores had a commit "
                f"log: run `zounds-xr upgrade {self.url}` once (it checks every chunk and "
                f"writes the log), then open it again")

    def root(self, create: bool = False) -> dict | None:
        """Read the root's attributes, checked; create the root when ``create``.

        ``None`` when there is no store here and ``create`` is false.

        Creating a store is one put-if-absent of its root metadata: any number of
        threads or processes creating the same store get one store.

        Raises
        ------
        StoreError
            When the root is damaged, is a file, is of another layout or without a log,
            or its bucket does not exist.
        """
        attributes = self._attributes()
        if attributes is None:
            self._check_container()
            if not create:
                if not (self._fragment_names() or self.objects.list_dir("parts")):
                    return None
                # a creator puts zarr.json before any part: parts listed after a missing
                # root may be a concurrent creator's (read the root again), or damage
                attributes = self._attributes()
                if attributes is None:
                    raise StoreError(f"the feature store {self.url!r} has parts or catalog "
                                     f"fragments but its root metadata (zarr.json) is "
                                     f"missing")
            else:
                self._writable()
                mine = {STORE: {"layout": LAYOUT, "log": LOG_FORMAT}}
                self.objects.put_if_absent("zarr.json", group_json(mine))
                attributes = self._attributes() or {}
        self._check_root(attributes)
        if create:
            # plain Zarr readers (xr.open_datatree) see the parts as one group, and the
            # log as an empty one (its files are not Zarr nodes). Not the catalog: a
            # zarr.json among its fragments would break plain Parquet readers of the
            # directory (DESIGN: any Parquet reader reads <root>/catalog/), at the price
            # of zarr's warning that it does not recognise catalog/
            self.objects.put_if_absent("parts/zarr.json", group_json({}))
            self.objects.put_if_absent(f"{LOG}/zarr.json", group_json({}, empty=True))
        self._root_checked = True
        return attributes

    def _fragment_names(self) -> list[str]:
        """List the files in ``catalog/`` that are catalog fragments (a listing)."""
        return [n for n in self.objects.list_dir(CATALOG) if n.endswith(".parquet")]

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(f"the feature store {self.url!r} was opened read-only "
                             f"(open_store); bind a Document class to write")

    def _ensure_root(self) -> None:
        if not self._root_checked:
            self.root(create=True)

    def _state(self, version: int | None = None) -> LogState:
        if not self._root_checked and self.root() is None:
            if version:
                raise StoreError(f"no commit {version} in {self.url!r}: there is no store")
            return LogState()
        state = self.log.state(version)
        if state.version == 0 and version is None:
            state = self._check_empty_log()
        return state

    def _check_empty_log(self) -> LogState:
        """Handle an empty log over a store with catalog fragments.

        Either a first commit is between its fragment and its entry (wait for it), or
        the log is lost (an error, never an empty catalog).
        """
        for attempt in range(5):
            if not self._fragment_names():
                return self.log.state()
            time.sleep(0.05 * (attempt + 1))
            self.log.forget()
            if self.log.state().version:
                return self.log.state()
        raise StoreError(f"the feature store {self.url!r} has catalog fragments but its "
                         f"commit log is empty: the log was lost; restore {LOG}/ from a "
                         f"backup, or run `zounds-xr upgrade {self.url}` to write it again "
                         f"from the files (after checking every chunk)")

    @property
    def version(self) -> int:
        """The number of the newest commit (0 for an empty store).

        What caches of anything read from the store are keyed on.
        """
        return self._state().version

    # ------------------------------------------------------------------ writing
    def part(self) -> PartWriter:
        """Start a new, uncommitted part to write documents into (see :class:`PartWriter`)."""
        self._writable()
        self._ensure_root()
        return PartWriter(self)

    def part_group(self, name: str) -> tuple[zarr.Group, RecordingStore]:
        """Create part ``name``'s group on a store that records every file written.

        What it records is what :meth:`commit_part` commits.
        """
        self._writable()
        recording = RecordingStore(self.zarr_store)
        with self.reaching("write to"):
            group = zarr.create_group(recording, path=f"parts/{name}", zarr_format=3,
                                      attributes={"zounds_xr:part": {"created": time.time()}})
        return group, recording

    def commit_part(self, name: str, rows: list[dict], recording: RecordingStore | None,
                    ) -> int:
        """Write part ``name``'s catalog fragment, then commit the part with one log entry.

        The entry holds its fragment, rows, and the records of every file
        ``recording`` saw. Returns the entry's number.
        """
        self._writable()
        _catalog.check_rows(rows, f"part {name!r}")
        key = f"catalog/{name}.parquet"
        data = _catalog.fragment_bytes(rows, time.time_ns(), name)
        self.objects.put(key, data)
        files = dict(recording.records) if recording is not None else {}
        entry = {"kind": "part", "part": name if files else None, "files": files,
                 "arrays": recording.arrays() if recording is not None else {},
                 "fragment": {"key": key, "size": len(data), "crc32c": crc32c(data)},
                 "rows": rows}
        n = self.log.append(entry)
        self._resolution = None
        return n

    def discard_part(self, name: str) -> None:
        """Remove what an uncommitted part wrote, best effort.

        :meth:`vacuum` removes what a killed writer leaves.
        """
        self.objects.delete_dir(f"parts/{name}")

    # ------------------------------------------------------------------ models
    def save_model(self, digest: str, write: Callable[[Any, str], None]) -> int:
        """Save a learned feature's model under ``_models/<digest>/`` and commit it.

        Nothing is written when the log vouches for a copy already.

        ``write(store, path)`` writes the model as a Zarr group at ``path`` of
        ``store`` (a store recording every file written: what the commit lists). Each
        writer writes a copy of its own, ``_models/<digest>/<copy>/``, then commits
        it put-if-absent; a writer that loses the race to another commit of the same
        digest deletes its copy (:meth:`vacuum` removes what a killed writer leaves).
        A committed copy whose files no longer match the log is replaced: the new
        copy's commit says so, and the old copy is vacuumed.

        Parameters
        ----------
        digest : str
            The model's content digest (hex).
        write : callable
            ``write(store, path) -> None``.

        Returns
        -------
        int
            The commit's number (0: an intact copy was committed already).

        Raises
        ------
        StoreError
            When the store is read-only or cannot be reached.
        ParameterError
            When ``digest`` is not a hex string.
        """
        base = model_path(digest)
        self._writable()
        self._ensure_root()
        known = self._state().models.get(digest)
        if known is not None and self._read_model(known)[1] is None:
            return 0
        copy = f"{base}/{new_part_name()}"  # sorts and ages like a part (see vacuum)
        recording = RecordingStore(self.zarr_store)
        with self.reaching("write to"):
            write(recording, copy)
        files = {k: r for k, r in recording.records.items() if k.startswith(f"{copy}/")}

        def entry(state: LogState) -> dict | None:
            now = state.models.get(digest)
            if now is not None and (known is None or now["copy"] != known["copy"]):
                return None  # another writer committed (or replaced) it meanwhile
            made = {"kind": "model", "digest": digest, "copy": copy, "files": files}
            return made if now is None else {**made, "replaces": now["copy"]}

        n = self.log.commit(entry)
        if not n:
            self.objects.delete_dir(copy)
        return n

    def model_copy(self, digest: str) -> zarr.storage.MemoryStore:
        """Open the committed copy of the model ``digest``, checked against the log.

        Its files, each checked, are in a memory store whose root is the copy's group
        (so nothing is read from the storage after the check).

        Raises
        ------
        StoreError
            When the log commits no model of that digest, or a file of its copy is
            missing, truncated, damaged or replaced.
        ParameterError
            When ``digest`` is not a hex string.
        """
        base = model_path(digest)
        found = self._committed("models", digest)
        if found is None:
            raise StoreError(f"the feature store {self.url!r} holds no committed model "
                             f"{base!r} (its commit log vouches for none)")
        files, problem = self._read_model(found)
        if problem is not None:
            raise StoreError(f"the model {base!r} of the feature store {self.url!r} is "
                             f"damaged: {problem}; save it again (ingest with the "
                             f"Document class that declares it)")
        prefix = f"{found['copy']}/"
        prototype = default_buffer_prototype()
        return zarr.storage.MemoryStore(
            {k.removeprefix(prefix): prototype.buffer.from_bytes(d) for k, d in files.items()},
            read_only=True)

    def _read_model(self, found: dict) -> tuple[dict[str, bytes], str | None]:
        """Read a committed model copy's files, each checked against its record.

        Also returns what is wrong with the first that fails (``None``: the copy is
        intact).
        """
        files: dict[str, bytes] = {}
        for key, record in sorted(found["files"].items()):
            data = self.objects.get(key)
            problem = check_file(data, record)
            if data is None or problem is not None:
                return files, f"file {key!r} is {problem}"
            files[key] = data
        return files, None

    # ------------------------------------------------------------------ the catalog
    def _fragment_bytes(self, key: str, record: dict) -> bytes | None:
        """Read a live fragment's bytes, checked against its log record.

        ``None`` when it is gone: a compaction may have replaced it since the state
        was read.
        """
        data = self.objects.get(key)
        if data is not None and (len(data) != record["size"]
                                 or crc32c(data) != record["crc32c"]):
            raise self._damaged_fragment(key, record)
        return data

    def _damaged_fragment(self, key: str, record: dict) -> StoreError:
        return StoreError(f"the catalog fragment {key!r} of {self.url!r} (committed by "
                          f"log entry {record['version']}) is damaged or replaced: it does "
                          f"not match the log's record; run `zounds-xr repair {self.url}` "
                          f"to rewrite it from the log")

    def _table(self, key: str, record: dict, columns=None) -> pa.Table | None:
        """Read a live fragment's table, checked against its log record.

        ``None`` when it is gone: a compaction may have replaced it since the state
        was read.
        """
        table = self._tables.get(key)
        if table is None:
            data = self._fragment_bytes(key, record)
            if data is None:
                return None
            where = f"{key!r} of {self.url!r} (committed by log entry {record['version']})"
            table = _catalog.read_fragment(data, where, columns)
            if record.get("kind") == "part":
                # a part's own fragment: its rows are ordered by its commit (a compacted
                # fragment keeps each row's own commit number in _seq)
                table = _catalog.with_commit(table, record["version"])
            if columns is None:
                self._tables[key] = table
        return table

    def _resolved_before(self, state: LogState):
        """Return ``(catalog, failures)`` if this process resolved the same fragments before.

        That is, another object of this store (``open_store`` again). Their rows were
        checked against the log when they were read; here each fragment is checked to
        be still there, of its committed size (one metadata request each).
        """
        found = _RESOLVED.get((self._key(), _fragments_content(state)))
        if found is None:
            return None
        for key, record in state.fragments.items():
            if key not in self._tables:
                size = self.objects.size(key)
                if size is None:
                    return None  # gone: the slow path says why
                if size != record["size"]:
                    raise self._damaged_fragment(key, record)
        return found

    def _fragment_tables(self, state: LogState, columns=None) -> list[pa.Table] | None:
        tables = []
        for key, record in sorted(state.fragments.items(), key=lambda kv: kv[1]["version"]):
            table = self._table(key, record, columns)
            if table is None:
                return None
            tables.append(table)
        return tables

    def _resolve_rows(self, version: int | None = None):
        """Resolve the catalog as of commit ``version`` (default the newest; cached).

        Returns ``(version, catalog with hidden columns, failures, labels)``, before
        the label edits (``labels``) apply.
        """
        if version is not None and version < 0:
            raise ParameterError(f"version must be >= 0, got {version}")
        for _attempt in range(3):
            state = self._state(version)
            cached = self._resolution
            if cached is not None and cached[0] == state.version:
                return cached
            before = self._resolved_before(state)
            if before is not None:
                found = (state.version, *before, state.labels, None)
                if version is None or version == self.log.state().version:
                    self._resolution = found
                return found
            tables = self._fragment_tables(state)
            if tables is None:
                if version is None or version == self.log.state().version:
                    self._missing_fragment(state)
                    continue
                # an old version: fragments compacted since are made again from the log
                tables = [_maintenance.rebuild_fragment(self, key, record)
                          for key, record in sorted(state.fragments.items(),
                                                    key=lambda kv: kv[1]["version"])]
            for stale in set(self._tables) - set(state.fragments):
                del self._tables[stale]
            resolved, failures = _catalog.resolve(_catalog.combine(tables),
                                                  _unique_ids(state))
            with _RESOLVED_LOCK:
                if self._key() is not None:
                    _RESOLVED[(self._key(), _fragments_content(state))] = (resolved, failures)
                while len(_RESOLVED) > _RESOLVED_KEPT:
                    del _RESOLVED[next(iter(_RESOLVED))]
            found = (state.version, resolved, failures, state.labels, None)
            if version is None or version == self.log.state().version:
                self._resolution = found
            return found
        raise StoreError(f"the catalog of {self.url!r} kept changing while it was read")

    def _resolve(self, version: int | None = None):
        """``(catalog with hidden columns and label edits applied, failures)``."""
        found = self._resolve_rows(version)
        labelled = found[4]
        if labelled is None:
            labelled = _catalog.apply_labels(found[1], found[3])
            if self._resolution is not None and self._resolution[0] == found[0]:
                self._resolution = (*found[:4], labelled)
        return labelled, found[2]

    def _missing_fragment(self, state: LogState) -> None:
        """Handle a live fragment that is gone.

        Fine when the log moved on (a compaction replaced it), else the store is
        damaged.
        """
        self.log.forget()
        newer = self.log.state()
        if newer.version != state.version:
            return
        gone = [k for k in state.fragments if not self.objects.exists(k)]
        raise StoreError(f"the catalog fragments {gone} of the feature store {self.url!r} "
                         f"are committed in its log but missing; run `zounds-xr repair "
                         f"{self.url}` to rewrite them from the log")

    def catalog(self, version: int | None = None) -> pd.DataFrame:
        """Return the catalog: one row per visible document (index ``id``).

        Metadata, then per stored feature ``f``: ``f.frames``, ``f.version``,
        ``f.array``, ``f.offset``, ``f.index``.

        Parameters
        ----------
        version : int, optional
            The catalog as of that commit (default: the newest; see :attr:`version`).
        """
        return _catalog.public(self._resolve(version)[0])

    def failures(self) -> pd.DataFrame:
        """Return the sources whose last ingest failed (columns ``uri``, ``error``)."""
        failures = self._resolve()[1].rename(columns={"_error": "error"})
        return failures[[c for c in ("uri", "error") if c in failures]]

    @property
    def features(self) -> list[str]:
        """Names of the stored features (of any visible document)."""
        return _catalog.feature_columns(self._resolve()[0].columns)

    def ids(self) -> list[str]:
        """Ids of the visible documents (sorted)."""
        return self._resolve()[0].index.sort_values().tolist()

    def id_index(self) -> pd.Index:
        """Ids of the visible documents as a ``pandas.Index``."""
        return pd.Index(self._visible_ids().to_pandas(), name="id")

    def has(self, ids) -> np.ndarray:
        """Tell which of ``ids`` are visible documents (a boolean array).

        What ingest's resume checks, vectorised in Arrow; reads only the catalog's id
        and order columns unless the whole catalog is already at hand.
        """
        ids = ids if isinstance(ids, (list, pd.Index, pd.Series)) else list(ids)
        try:  # text: converted at once, not one by one
            ids = pa.array(ids, pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            ids = pa.array([str(i) for i in ids], pa.string())
        return pc.is_in(ids, value_set=self._visible_ids()).to_numpy(zero_copy_only=False)

    def _visible_ids(self) -> pa.Array:
        state = self._state()
        cached = self._resolution
        if cached is None or cached[0] != state.version:
            before = self._resolved_before(state)
            if before is not None:
                return _arrow_ids(before[0].index)
            tables = self._fragment_tables(state, ["id", "_seq", "_part", "_status"])
            if tables is not None:
                return _catalog.visible_ids(_catalog.combine(tables), _unique_ids(state))
        return _arrow_ids(self._resolve()[0].index)

    def exists(self, doc_id: str) -> bool:
        """Whether a visible document ``doc_id`` is in the store."""
        return validate_id(doc_id) in self._resolve()[0].index

    def row(self, doc_id: str) -> dict:
        """Return the document's resolved catalog row (with hidden columns).

        Raises :class:`DocumentNotFoundError` when there is no such document.
        """
        resolved = self._resolve()[0]
        validate_id(doc_id)
        try:
            i = resolved.index.get_loc(doc_id)
        except KeyError:
            raise DocumentNotFoundError(
                f"no document {doc_id!r} in the feature store {self.url!r}") from None
        if self._columns is None or self._columns[0] is not resolved:
            self._columns = (resolved, [(c, resolved[c].array) for c in resolved.columns])
        # (what ``resolved.loc[doc_id].to_dict()`` gives, a third of the time)
        out = {c: _native(values[i]) for c, values in self._columns[1]}
        out["id"] = doc_id
        return out

    def delete(self, doc_id: str) -> None:
        """Hide a document: a tombstone fragment (its data goes with :meth:`vacuum`)."""
        if not self.exists(doc_id):
            raise DocumentNotFoundError(f"no document {doc_id!r} in {self.url!r}")
        part = self.part()
        part.record_deletion(doc_id)
        part.commit()

    def set_labels(self, column: str, values: dict, author: str | None = None) -> int:
        """Commit a label edit: ``column`` of each document in ``values`` becomes its value.

        Edits apply on top of the documents' rows, in commit order.

        Parameters
        ----------
        column : str
            A metadata column (existing or new); not ``id``, a feature's column or a
            hidden one.
        values : dict
            ``{doc_id: value}``; values are JSON scalars (text, numbers, booleans,
            ``None``) or lists of text.
        author : str, optional
            Recorded in the log entry with the time.

        Returns
        -------
        int
            The commit's number (the store's new :attr:`version`).

        Notes
        -----
        Label edits are the one write a read-only store (:func:`open_store`) accepts:
        they change no data, and every edit is in the log with its time and author.

        Raises
        ------
        ParameterError
            For an invalid column or value.
        DocumentNotFoundError
            When an id is not a visible document.
        """
        if not isinstance(column, str) or not column or column == "id" or "." in column \
                or column.startswith("_") or column == "duration":
            raise ParameterError(f"cannot set labels in column {column!r}: give a metadata "
                                 f"column name without '.', not starting with '_', not "
                                 f"'id' or 'duration'")
        if not isinstance(values, dict):
            raise ParameterError(f"values must be a dict {{doc_id: value}}, got "
                                 f"{type(values).__name__}")
        clean = {}
        for doc_id, value in values.items():
            validate_id(doc_id)
            clean[doc_id] = _catalog.label_value(value, column)
        known = self._resolve()[0].index
        missing = [i for i in clean if i not in known]
        if missing:
            raise DocumentNotFoundError(f"no documents {missing[:5]} in {self.url!r}")
        n = self.log.append({"kind": "labels", "column": column, "values": clean},
                            author=author)
        self._resolution = None
        return n

    # ------------------------------------------------------------------ reading
    def array(self, path: str) -> CheckedArray:
        """Open the read-only Zarr array at ``path`` (relative to the root).

        Every file of it is checked against the log on read, every failure is a
        :class:`StoreError`; kept, as parts never change.
        """
        return CheckedArray(self.reader.array(path), str(self.url))

    def read(self, row: dict, name: str, where: str | None = None) -> xr.DataArray:
        """Read a stored feature of a document (its catalog ``row``) as a lazy DataArray."""
        return self.reader.read(row, name, where)

    def __getitem__(self, doc_id: str) -> Mapping[str, xr.DataArray]:
        """Return each stored feature of the document as a lazy DataArray, by name.

        A mapping that opens a feature when it is asked for.
        """
        return _Features(self, self.row(doc_id))

    def __contains__(self, doc_id) -> bool:
        return isinstance(doc_id, str) and self.exists(doc_id)

    def frames(self, feature: str, ids=None) -> xr.DataArray:
        """Read the stored frames of many documents as one lazy DataArray.

        Dims ``("frame", ...)``: document ``ids[k]`` is the block of its ``f.frames``
        rows after those before it (default: every document holding it, catalog order).
        Each array is read span by span in order, each shard once.
        """
        resolved = self._resolve()[0]
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
        if not len(rows):
            raise StoreError(f"no documents store {feature!r}")
        return self.reader.frames(feature, rows, f"feature {feature!r} of documents "
                                                 f"{list(rows.index[:3])}"
                                                 f"{'...' if len(rows) > 3 else ''}")

    def iter_chunks(self, row: dict, name: str, seconds: Fraction):
        """Read a stored feature in consecutive chunks of about ``seconds`` (a stream source)."""
        lazy = self.read(row, name)
        index = cast(TimeIndex, lazy.xindexes["time"])
        rows = max(1, int(seconds / index.frequency))
        for start in range(0, lazy.sizes["time"], rows):
            yield lazy.isel(time=slice(start, start + rows)).compute()

    # ------------------------------------------------------------------ maintenance
    def verify(self, progress: bool = False) -> dict[str, list[str]]:
        """Check every committed file, the catalog fragments and the log itself.

        Each file is checked against the log: present, size, CRC32C.

        Parameters
        ----------
        progress : bool, default False
            Show the bytes checked so far on stderr.

        Returns
        -------
        dict
            ``{doc_id: [problems]}`` for the damaged documents, each problem naming the
            feature and the file (empty when the store is healthy); problems that belong
            to no document (the log's own, and the committed models' files) under the
            key ``""``.
            ``ingest(..., repair=True)`` recomputes damaged documents; :meth:`repair`
            rewrites lost fragments from the log.
        """
        return _maintenance.verify(self, progress=progress)

    def repair(self) -> list[str]:
        """Rewrite every missing or damaged committed catalog fragment from the log.

        The log's copy of its rows is used (one commit); returns the fragments
        rewritten.
        """
        return _maintenance.repair(self)

    def compact(self) -> int:
        """Merge every catalog fragment into one; return the number merged.

        The merged fragment holds the resolved, visible rows and the current failures.
        Readers keep working meanwhile: the merged fragment is committed before the
        others go.
        """
        return _maintenance.compact(self)

    def invisible_parts(self) -> list[str]:
        """List the parts no visible document refers to.

        Uncommitted (being written, or left by a killed writer) or superseded
        (:meth:`vacuum` removes them).
        """
        return _maintenance.invisible_parts(self)

    def vacuum(self, grace: float = VACUUM_GRACE) -> list[str]:
        """Delete what the log says is not needed.

        That is uncommitted parts older than ``grace`` seconds (younger ones may
        belong to a writer still running), committed parts that no visible document
        refers to any more, catalog fragments a compaction replaced, the search index
        files (:mod:`zounds_xr.search`) of parts no longer committed, and model copies
        the log does not vouch for (a committed model is never deleted), each with the
        same grace. Returns the parts deleted and the key prefixes
        (``_models/<digest>/<copy>``) of the model copies.

        Raises
        ------
        StoreError
            When the log and the files disagree (a committed file missing or of another
            size, a damaged fragment): nothing is deleted then.
        """
        return _maintenance.vacuum(self, grace)

    def upgrade(self) -> int:
        """Write the commit log of a store made before stores had one.

        Every chunk's CRC32C is checked first; returns the number of commits written.
        """
        return _maintenance.upgrade(self)

    def describe(self) -> str:
        """Summarise the store from the catalog.

        Documents, hours of audio, features, failures, parts and the log's version.
        """
        return _maintenance.describe(self)


class _Features(Mapping):
    """Map the stored features of one document (``store[doc_id]``) to lazy DataArrays.

    Names come from its catalog row; a feature's lazy DataArray is built when it is
    asked for, once.
    """

    def __init__(self, store: FeatureStore, row: dict):
        self._store, self._row = store, row
        self._names = [f for f in _catalog.feature_columns(row)
                       if _catalog.present(row.get(f"{f}.array"))]
        self._read: dict[str, xr.DataArray] = {}

    def __getitem__(self, name: str) -> xr.DataArray:
        found = self._read.get(name)
        if found is None:
            if name not in self._names:
                raise KeyError(name)
            found = self._read[name] = self._store.read(self._row, name)
        return found

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"<features {self._names} of document {self._row.get('id')!r}>"


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
        ``.catalog()``, ``.features``, ``.version``, ``store[doc_id]`` (``{feature:
        DataArray}``, lazy, dims ``time``, ...), ``.frames(feature, ids=None)`` (dims
        ``("frame", ...)``), ``.array(path)`` and ``.set_labels(...)``.

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
