"""The commit log: the one source of truth of what a store holds (``<root>/_log/``).

Entry ``n`` is ``_log/<n, 20 digits>.json``, written put-if-absent: whoever writes it
first commits; a writer that loses the race reads the entries it missed and tries
``n + 1``. Numbers start at 1; a store's version is its newest entry's number (0 for
a store without commits). Kinds of entry (all with ``"time"`` and ``"author"``):

- ``"part"``: a part and its catalog fragment are committed: ``"part"`` (its name, or
  ``null`` for a fragment without data, such as tombstones), ``"fragment"`` (the
  fragment's key, size and CRC32C), ``"files"`` (every file of the part:
  :mod:`.manifest` records), ``"arrays"`` (each array's shape, dtype and dims, for
  people and other tools) and ``"rows"`` (the fragment's rows: a lost fragment is
  rewritten from them);
- ``"compact"``: ``"fragment"`` replaces the fragments in ``"replaces"`` (their
  records): compaction, and the repair of a lost fragment; a compaction's fragment
  record says ``"unique_ids": true`` (its rows are resolved: one per document, so a
  reader of that one fragment need not hash every id to find duplicates);
- ``"labels"``: ``"column"`` and ``"values"`` (``{id: value}``), applied on top of
  the rows in commit order;
- ``"vacuum"``: the ``"parts"`` whose files were deleted (superseded, unreferenced);
- ``"model"``: a learned feature's saved model is committed: ``"digest"`` (its content
  digest), ``"copy"`` (the key prefix of the copy the log vouches for,
  ``_models/<digest>/<copy>``) and ``"files"`` (every file of that copy: :mod:`.manifest`
  records), and ``"replaces"`` (the copy it replaces, when that was damaged). One copy
  per digest: a writer that finds an intact copy committed gives up.

Every :data:`CHECKPOINT_INTERVAL` commits the committer writes the replayed state
(:class:`LogState`) as ``_log/<n>.checkpoint.json`` and points ``_log/_last_checkpoint``
at it, so that opening a store reads a checkpoint and the few entries after it (Delta
Lake's ``_delta_log`` works the same way).

The newest state read of a store is kept for the process (:data:`SHARED_KEPT` stores):
opening the same store again starts from it once its newest entry is checked to be
still the one read (a store made again at the same place is not), then reads only the
entries after it.
"""
from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Callable, Hashable

import numpy as np

from ..core.errors import ParameterError, StoreError
from .objects import ObjectStore

__all__ = ["CATALOG", "CHECKPOINT_INTERVAL", "LAYOUT", "LOG", "LOG_FORMAT", "MODELS", "STORE",
           "CommitLog", "LogState", "entry_key", "forget_shared", "group_json", "model_path"]

#: the store layout, and the version of the commit log the root declares:
#: ``<root>/zarr.json`` attrs ``{"zounds_xr:store": {"layout": 2, "log": 1}}``
LAYOUT = 2
LOG_FORMAT = 1
STORE = "zounds_xr:store"
LOG = "_log"
#: the catalog's fragments (:mod:`.catalog`): ``<root>/catalog/<part>.parquet``
CATALOG = "catalog"
LAST_CHECKPOINT = f"{LOG}/_last_checkpoint"
#: the store prefix of content-addressed models (``"model"`` entries)
MODELS = "_models"
#: a checkpoint every this many commits
CHECKPOINT_INTERVAL = 10
#: how often a writer retries after losing the race for an entry number
_MAX_RACES = 1000
#: stores whose newest state read is kept for the process (see the module docs)
SHARED_KEPT = 16
#: store key -> (newest state read, (CRC32 and size of its newest entry))
_SHARED: dict[Hashable, tuple[LogState, tuple[int, int]]] = {}
_SHARED_LOCK = threading.Lock()


def forget_shared() -> None:
    """Forget the states read of every store (their next logs read a checkpoint)."""
    with _SHARED_LOCK:
        _SHARED.clear()


def _digest(data: bytes) -> tuple[int, int]:
    return zlib.crc32(data), len(data)


def entry_key(n: int) -> str:
    """Return the key of log entry ``n``."""
    return f"{LOG}/{n:020d}.json"


def checkpoint_key(n: int) -> str:
    return f"{LOG}/{n:020d}.checkpoint.json"


def model_path(digest: str) -> str:
    """``_models/<digest>``: where a feature store keeps the model of that digest.

    Raises
    ------
    ParameterError
        When ``digest`` is not a hex string (it becomes a key of the store).
    """
    if not isinstance(digest, str) or not digest or any(
            c not in "0123456789abcdef" for c in digest):
        raise ParameterError(f"a model digest is a lowercase hex string, got {digest!r}")
    return f"{MODELS}/{digest}"


def group_json(attributes: dict, empty: bool = False) -> bytes:
    """Return a Zarr v3 group's ``zarr.json``.

    The root's is written put-if-absent: creating a store is one atomic write.
    ``empty``: a group whose other files are not Zarr nodes (consolidated metadata
    saying it has no members, so Zarr lists nothing there).
    """
    meta: dict = {"zarr_format": 3, "node_type": "group", "attributes": attributes}
    if empty:
        meta["consolidated_metadata"] = {"kind": "inline", "must_understand": False,
                                         "metadata": {}}
    return json.dumps(meta).encode()


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def dumps(entry: dict) -> bytes:
    return json.dumps(entry, default=_jsonable, sort_keys=True,
                      separators=(",", ":")).encode()


class LogState:
    """What the log says after replaying entries ``1..version``.

    Attributes
    ----------
    version : int
    parts : dict
        committed part -> ``{"version": n, "files": {key: record}, "arrays": {...}}``
    fragments : dict
        live fragment key -> ``{"size", "crc32c", "version", "part"}`` (``part`` is
        ``None`` for a fragment that a compaction or a repair wrote)
    labels : dict
        column -> ``{id: [value, n]}``
    models : dict
        committed model digest -> ``{"copy": key prefix, "files": {key: record},
        "version": n}``
    """

    def __init__(self, version: int = 0, parts=None, fragments=None, labels=None,
                 models=None):
        self.version = version
        self.parts: dict[str, dict] = parts or {}
        self.fragments: dict[str, dict] = fragments or {}
        self.labels: dict[str, dict[str, list]] = labels or {}
        self.models: dict[str, dict] = models or {}

    def copy(self) -> LogState:
        """Return a copy that can change without changing this state."""
        return LogState(self.version, dict(self.parts), dict(self.fragments),
                        {c: dict(v) for c, v in self.labels.items()}, dict(self.models))

    def apply(self, n: int, entry: dict) -> None:
        """Replay entry ``n`` (the next one)."""
        kind = entry.get("kind")
        if kind == "part":
            part = entry.get("part")
            if part is not None:
                self.parts[part] = {"version": n, "files": entry.get("files") or {},
                                    "arrays": entry.get("arrays") or {}}
            fragment = entry.get("fragment")
            if fragment is not None:
                self.fragments[fragment["key"]] = {**fragment, "version": n, "part": part,
                                                   "kind": "part"}
        elif kind == "compact":
            for key in entry["replaces"]:
                self.fragments.pop(key, None)
            fragment = entry["fragment"]
            self.fragments[fragment["key"]] = {**fragment, "version": n, "part": None,
                                               "kind": "compact"}
        elif kind == "labels":
            column = self.labels.setdefault(entry["column"], {})
            for doc_id, value in entry["values"].items():
                column[doc_id] = [value, n]
        elif kind == "vacuum":
            for part in entry["parts"]:
                self.parts.pop(part, None)
        elif kind == "model":
            # the first copy committed is the one (writers give up on a committed
            # digest) until a commit replaces it (it was damaged)
            known = self.models.get(entry["digest"])
            if known is None or entry.get("replaces") == known["copy"]:
                self.models[entry["digest"]] = {"copy": entry["copy"],
                                                "files": entry["files"], "version": n}
        else:
            raise StoreError(f"log entry {n} has an unknown kind {kind!r}")
        self.version = n

    def to_bytes(self) -> bytes:
        """Serialise the state as JSON (a checkpoint's content)."""
        return dumps({"version": self.version, "parts": self.parts,
                      "fragments": self.fragments, "labels": self.labels,
                      "models": self.models})

    @classmethod
    def from_bytes(cls, data: bytes) -> LogState:
        """Parse a state that :meth:`to_bytes` wrote."""
        d = json.loads(data)
        # (checkpoints written before models were committed have no "models")
        return cls(int(d["version"]), d["parts"], d["fragments"], d["labels"],
                   d.get("models"))


class CommitLog:
    """The log of one store (see the module docs); caches the newest state it read.

    ``key`` names the store for the process (``None``: this object only): logs of the
    same key start from the newest state one of them read, checked.
    """

    def __init__(self, objects: ObjectStore, key: Hashable | None = None):
        self.objects, self.key = objects, key
        self._state: LogState | None = None
        self._newest: tuple[int, tuple[int, int]] | None = None  # (n, digest of entry n)

    @property
    def url(self) -> str:
        """The store's URL."""
        return self.objects.url

    def entry(self, n: int) -> dict | None:
        """Read entry ``n``, or ``None`` when there is none.

        Raises :class:`StoreError` when it is damaged.
        """
        data = self.objects.get(entry_key(n))
        if data is None:
            return None
        self._newest = (n, _digest(data))
        try:
            entry = json.loads(data)
            if not isinstance(entry, dict) or "kind" not in entry:
                raise ValueError("not a log entry")
        except ValueError as exc:
            raise StoreError(f"the log entry {entry_key(n)!r} of the feature store "
                             f"{self.url!r} is damaged ({exc}); the store cannot be "
                             f"trusted until it is restored") from exc
        return entry

    def _checkpoint(self, n: int) -> LogState | None:
        data = self.objects.get(checkpoint_key(n))
        if data is None:
            return None
        try:
            state = LogState.from_bytes(data)
        except (ValueError, KeyError, TypeError):
            return None  # a damaged checkpoint: replay the entries instead
        return state if state.version == n else None

    def _start(self, version: int | None) -> LogState:
        """Read the newest readable checkpoint at or before ``version``.

        ``version`` defaults to the newest; the empty state when there is none.
        """
        if version is None:
            data = self.objects.get(LAST_CHECKPOINT)
            try:
                version = int(json.loads(data)["version"]) if data else 0
            except (ValueError, KeyError, TypeError):
                version = 0
        c = version - version % CHECKPOINT_INTERVAL
        while c > 0:
            state = self._checkpoint(c)
            if state is not None:
                return state
            c -= CHECKPOINT_INTERVAL
        return LogState()

    def _replay(self, state: LogState, until: int | None, fresh: bool) -> LogState:
        n = state.version + 1
        while until is None or n <= until:
            entry = self.entry(n)
            if entry is None:
                if until is not None:
                    raise StoreError(f"the feature store {self.url!r} has no commit "
                                     f"{until} (its version is {n - 1})")
                if fresh and self.objects.get(entry_key(n + 1)) is not None:
                    raise StoreError(
                        f"the log entry {entry_key(n)!r} of the feature store {self.url!r} "
                        f"is missing while later entries exist: the log is damaged; "
                        f"restore the entry (zounds-xr verify shows what it covered)")
                break
            state.apply(n, entry)
            n += 1
        return state

    def state(self, version: int | None = None) -> LogState:
        """Return the state after commit ``version`` (default: the newest).

        Cached, and brought up to date with one request when nothing changed.
        """
        if version is not None:
            if version < 0:
                raise StoreError(f"no commit {version} in {self.url!r}")
            cached = self._state
            if cached is not None and cached.version == version:
                return cached
            if cached is not None and cached.version < version:
                return self._replay(cached.copy(), version, False)
            return self._replay(self._start(version), version, False)
        if self._state is None:
            self._state = self._shared()
        fresh = self._state is None
        state = self._start(None) if fresh else self._state.copy()  # type: ignore[union-attr]
        old = state.version
        state = self._replay(state, None, fresh)
        if fresh or state.version != old:
            self._state = state
            self._share(state)
        return self._state  # type: ignore[return-value]

    def _shared(self) -> LogState | None:
        """Return the newest state read of this store in the process, if still its log."""
        found = _SHARED.get(self.key) if self.key is not None else None
        if found is None:
            return None
        state, digest = found
        data = self.objects.get(entry_key(state.version))
        return state if data is not None and _digest(data) == digest else None

    def _share(self, state: LogState) -> None:
        if self.key is None or not state.version:
            return
        if self._newest is None or self._newest[0] != state.version:
            data = self.objects.get(entry_key(state.version))  # (a checkpoint's)
            if data is None:
                return
            self._newest = (state.version, _digest(data))
        with _SHARED_LOCK:
            known = _SHARED.pop(self.key, None)  # (put back last: the newest used)
            if known is not None and known[0].version > state.version:
                _SHARED[self.key] = known
            else:
                _SHARED[self.key] = (state, self._newest[1])
            while len(_SHARED) > SHARED_KEPT:
                del _SHARED[next(iter(_SHARED))]

    @property
    def version(self) -> int:
        """The newest commit's number (0: nothing committed)."""
        return self.state().version

    def forget(self) -> None:
        """Drop the cached state (read the checkpoint again next time)."""
        self._state = None

    def commit(self, make: Callable[[LogState], dict | None], author: str | None = None
               ) -> int:
        """Append the entry ``make(state)`` builds from the newest state.

        ``make`` is called again after a lost race (it may check for conflicts) and
        returns ``None`` to give up. Returns the entry's number (0 when given up).
        """
        for _ in range(_MAX_RACES):
            state = self.state()
            entry = make(state)
            if entry is None:
                return 0
            n = state.version + 1
            entry = {**entry, "time": time.time(), "author": author}
            data = dumps(entry)
            if self.objects.put_if_absent(entry_key(n), data):
                new = state.copy()
                new.apply(n, entry)
                self._state, self._newest = new, (n, _digest(data))
                self._share(new)
                if n % CHECKPOINT_INTERVAL == 0:
                    self._write_checkpoint(new)
                return n
        raise StoreError(f"could not commit to {self.url!r}: {_MAX_RACES} other commits "
                         f"won the race in a row")

    def append(self, entry: dict, author: str | None = None) -> int:
        """Commit ``entry`` as the next entry, whatever the others committed meanwhile.

        Returns its number.
        """
        return self.commit(lambda state: entry, author)

    def _write_checkpoint(self, state: LogState) -> None:
        self.objects.put(checkpoint_key(state.version), state.to_bytes())
        self.objects.put(LAST_CHECKPOINT, dumps({"version": state.version}))

    def entry_numbers(self) -> list[int]:
        """List the numbers of every entry present (a listing: for verify)."""
        out = []
        for name in self.objects.list_dir(LOG):
            stem = name.removesuffix(".json")
            if name.endswith(".json") and stem.isdigit():
                out.append(int(stem))
        return sorted(out)
