"""Maintenance of a store against its log: verify, repair, compact, vacuum, upgrade.

The log is the truth (:mod:`.log`); these functions compare the files with it and never
delete what it commits. They take the :class:`~.store.FeatureStore` and use its layers
(``objects``, ``log``, the catalog resolution).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import zarr

from ..core.errors import StoreError
from . import catalog as _catalog
from .log import CATALOG, LOG_FORMAT, MODELS, STORE, group_json
from .manifest import check_file, check_stream, crc32c, file_record, layout_of
from .parts import new_part_name
from .reader import part_of

if TYPE_CHECKING:
    from .store import FeatureStore

__all__ = ["INDEXES", "VACUUM_GRACE", "compact", "describe", "invisible_parts", "rebuild_fragment",
           "repair", "upgrade", "vacuum", "verify"]

#: default age (seconds) below which vacuum() leaves an uncommitted part alone: it may
#: belong to a writer that is still running
VACUUM_GRACE = 3600.0
#: files verify() reads at once
_VERIFY_THREADS = 4
#: where derived search indexes live under the root (:mod:`zounds_xr.search.persist`):
#: ``indexes/<feature>/<key>/parts/<part>.bin`` is derived from part ``<part>``
INDEXES = "indexes"


def _name_of(key: str) -> str:
    return key.rsplit("/", 1)[-1].removesuffix(".parquet")


def rebuild_fragment(fs: FeatureStore, key: str, record: dict) -> pa.Table:
    """Rebuild a committed fragment's table from the log alone.

    A part's fragment is rebuilt from the rows its entry records, a compacted one
    from the fragments it replaced.
    """
    n = record["version"]
    entry = fs.log.entry(n)
    where = f"{key!r} of {fs.url!r} (from log entry {n})"
    if entry is None:
        raise StoreError(f"cannot rebuild the catalog fragment {where}: the entry is "
                         f"missing")
    if entry["kind"] == "part":
        data = _catalog.fragment_bytes(entry.get("rows") or [], n, _name_of(key))
        return _catalog.with_commit(_catalog.read_fragment(data, where), n)
    tables = [rebuild_fragment(fs, k, r) for k, r in
              sorted(entry["replaces"].items(), key=lambda kv: kv[1]["version"])]
    resolved, failures = _catalog.resolve(_catalog.combine(tables))
    data = _catalog.frame_bytes(_catalog.compaction_rows(resolved, failures))
    return _catalog.read_fragment(data, where)


# ---------------------------------------------------------------------- compaction
def compact(fs: FeatureStore) -> int:
    """Merge ``fs``'s catalog fragments into one (see :meth:`FeatureStore.compact`)."""
    fs._writable()
    if fs.root() is None:
        return 0
    state = fs._state()
    if len(state.fragments) <= 1:
        return len(state.fragments)
    _, resolved, failures, _, _ = fs._resolve_rows(state.version)
    key = f"catalog/{new_part_name()}.parquet"
    data = _catalog.frame_bytes(_catalog.compaction_rows(resolved, failures))
    fs.objects.put(key, data)
    replaces = dict(state.fragments)

    def entry(now):
        if any(k not in now.fragments for k in replaces):
            return None  # another compaction won: ours is not needed
        # its documents' ids are unique (resolved): readers need not hash them all
        return {"kind": "compact", "replaces": replaces,
                "fragment": {"key": key, "size": len(data), "crc32c": crc32c(data),
                             "unique_ids": True}}

    version = fs.log.commit(entry)
    if not version:
        fs.objects.delete(key)
        return 0
    for old in replaces:  # readers that listed them re-read the log and move on
        fs.objects.delete(old)
    fs._resolution = None
    now = fs._state()
    if now.version == version and set(now.fragments) == {key}:
        # the new fragment holds exactly the rows just resolved: ingest's maintenance
        # after it (vacuum, indexes, pyramids) need not read and resolve it again
        fs._resolution = (version, resolved, failures, now.labels, None)
    return len(replaces)


# ---------------------------------------------------------------------- vacuum
def _used_parts(fs: FeatureStore) -> set[str | None]:
    resolved = fs._resolve()[0]
    used: set[str | None] = set()
    for f in _catalog.feature_columns(resolved.columns):
        used.update(part_of(p) for p in resolved[f"{f}.array"].dropna().unique())
    return used


def _part_dirs(fs: FeatureStore) -> list[str]:
    return [p for p in fs.objects.list_dir("parts") if p != "zarr.json"]


def invisible_parts(fs: FeatureStore) -> list[str]:
    """List the parts no visible document refers to (see :meth:`FeatureStore.invisible_parts`)."""
    if fs.root() is None:
        return []
    used = _used_parts(fs)
    found = set(_part_dirs(fs)) | set(fs._state().parts)
    return sorted(p for p in found if p not in used)


def _age(name: str, now: int) -> float | None:
    try:
        return (now - int(name.split("-", 1)[0])) / 1e9
    except ValueError:
        return None  # not a name of ours


def _stale_fragment(key: str, live, parts, now: int, grace: float) -> bool:
    """Whether vacuum deletes the catalog fragment ``key`` (``live``: the log's)."""
    if key in live or not key.endswith(".parquet"):
        return False
    name = _name_of(key)
    age = _age(name, now)
    # a fragment the log replaced, or one a killed writer left before its commit
    return name in parts or (age is not None and age >= grace)


def _may_delete(fs: FeatureStore, state, fragments: dict, now: int, grace: float) -> bool:
    """Whether :func:`vacuum` has a part or a catalog fragment it might delete.

    A part (on disk, or committed and perhaps superseded) older than ``grace``, or a
    stale fragment. Cheap: one listing of the parts' directories, no catalog read.
    """
    for part in set(_part_dirs(fs)) | set(state.parts):
        age = _age(part, now)
        if age is None and part in state.parts:
            age = 0.0  # as vacuum takes a committed part's age
        if age is not None and age >= grace:
            return True
    return any(_stale_fragment(k, state.fragments, state.parts, now, grace)
               for k in fragments)


def vacuum(fs: FeatureStore, grace: float) -> list[str]:
    """Delete what no commit vouches for, older than ``grace`` (see :meth:`FeatureStore.vacuum`)."""
    fs._writable()
    if fs.root() is None:
        return []
    state = fs._state()
    fragments = fs.objects.list_files(f"{CATALOG}/")
    now = time.time_ns()
    if not _may_delete(fs, state, fragments, now, grace):
        # nothing old enough (every ingest ends with a vacuum, and its parts are new):
        # the catalog's resolution and the listing of every part's files are not needed
        _vacuum_indexes(fs, now, grace)
        return _vacuum_models(fs, grace, now)
    used = _used_parts(fs)  # a damaged or lost fragment raises here: nothing deleted
    listed = fs.objects.list_files("parts/")
    # the files of the parts visible documents refer to (a superseded part may be
    # damaged: nothing reads it, and it goes below)
    disagree = [k for p in used if p in state.parts
                for k, r in state.parts[p]["files"].items() if listed.get(k) != r["size"]]
    disagree += [k for k, r in state.fragments.items() if fragments.get(k) != r["size"]]
    if disagree:
        raise StoreError(
            f"vacuum refuses to delete anything from {fs.url!r}: the log and the files "
            f"disagree ({len(disagree)} committed files missing or of another size, e.g. "
            f"{disagree[:3]}); run `zounds-xr verify {fs.url}` (and `zounds-xr repair`)")
    on_disk = {k.split("/")[1] for k in listed if k.count("/") >= 2}
    gone = []
    for part in sorted(on_disk - set(state.parts)):  # uncommitted
        age = _age(part, now)
        if age is not None and age >= grace:
            gone.append(part)
    superseded = [p for p in sorted(state.parts) if p not in used
                  and (_age(p, now) or 0) >= grace]
    if superseded:
        def entry(now_state):
            return {"kind": "vacuum", "parts": [p for p in superseded
                                                if p in now_state.parts]}
        fs.log.commit(entry)
    for part in gone + superseded:
        fs.objects.delete_dir(f"parts/{part}")
    live = set(fs._state().fragments)
    for key in fragments:
        if _stale_fragment(key, live, state.parts, now, grace):
            fs.objects.delete(key)
    _vacuum_indexes(fs, now, grace)
    fs.reader.forget(gone + superseded)
    return sorted(gone + superseded + _vacuum_models(fs, grace, now))


def _vacuum_models(fs: FeatureStore, grace: float, now: int) -> list[str]:
    """Delete the model copies the log does not vouch for, once older than ``grace``.

    Those are a killed writer's, or a writer's that lost the race; never a committed
    one. Returns their key prefixes.
    """
    committed = {m["copy"] for m in fs._state().models.values()}
    copies = {"/".join(k.split("/")[:3]) for k in fs.objects.list_files(f"{MODELS}/")
              if k.count("/") >= 3}
    gone = []
    for copy in sorted(copies - committed):
        age = _age(copy.rsplit("/", 1)[-1], now)
        if age is not None and age >= grace:
            fs.objects.delete_dir(copy)
            gone.append(copy)
    return gone


def _vacuum_indexes(fs: FeatureStore, now: int, grace: float) -> None:
    """Delete the search index files of parts that are not committed.

    The grace rule of parts: a file of a part younger than ``grace`` may be of a
    writer still running, and a file of a committed part is never deleted.
    """
    committed = set(fs._state().parts)
    for key in fs.objects.list_files(f"{INDEXES}/"):
        pieces = key.split("/")
        if len(pieces) != 5 or pieces[3] != "parts" or not pieces[4].endswith(".bin"):
            continue  # config, hasher, combined files: not of one part
        part = pieces[4][:-len(".bin")]
        age = _age(part, now)
        if part not in committed and age is not None and age >= grace:
            fs.objects.delete(key)


# ---------------------------------------------------------------------- verify
_POOL: tuple[int, ThreadPoolExecutor] | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """Return the threads verify() checks files with.

    Kept: starting threads costs more than checking a small store. Made again in a
    forked process, where they are gone.
    """
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid():
            _POOL = (os.getpid(), ThreadPoolExecutor(_VERIFY_THREADS,
                                                     thread_name_prefix="zx-verify"))
        return _POOL[1]


class _Progress:
    def __init__(self, total: int, show: bool):
        self.total, self.done, self.show = total, 0, show
        self.last = 0.0

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.show and (now - self.last > 0.5 or self.done >= self.total):
            self.last = now
            print(f"\rverify: {self.done / 2**20:,.1f} of {self.total / 2**20:,.1f} MiB "
                  f"checked", end="" if self.done < self.total else "\n", file=sys.stderr,
                  flush=True)


def verify(fs: FeatureStore, progress: bool = False) -> dict[str, list[str]]:
    """Check every committed file of ``fs`` (see :meth:`FeatureStore.verify`)."""
    problems: dict[str, list[str]] = {}
    if fs.root() is None:
        return problems

    def store_problem(text: str) -> None:
        problems.setdefault("", []).append(text)

    numbers = fs.log.entry_numbers()
    missing = sorted(set(range(1, (numbers[-1] if numbers else 0) + 1)) - set(numbers))
    if missing:
        store_problem(f"log entries {missing[:10]} are missing")
    try:
        fs.log.forget()
        state = fs._state()
    except StoreError as exc:
        store_problem(str(exc))
        return problems
    # the catalog, from the fragments where they match the log, else from the log
    damaged = {}
    for key, record in state.fragments.items():
        found = check_file(fs.objects.get(key), record)
        if found is not None:
            damaged[key] = found
    if damaged:
        tables = []
        for key, record in sorted(state.fragments.items(),
                                  key=lambda kv: kv[1]["version"]):
            table = fs._table(key, record) if key not in damaged else None
            if table is None:  # damaged or lost: the rows the log keeps
                table = rebuild_fragment(fs, key, record)
                for doc_id in table.column("id").to_pylist():
                    problems.setdefault(str(doc_id), []).append(
                        f"catalog fragment {key!r}: {damaged.get(key, 'missing')}; "
                        f"`zounds-xr repair` rewrites it from the log")
            tables.append(table)
        resolved, _ = _catalog.resolve(_catalog.combine(tables))
    else:  # every fragment is the committed one: the catalog as any read resolves it
        resolved = fs._resolve_rows(state.version)[1]
    spans = _spans(resolved)
    # the parts visible documents refer to (superseded ones are read by nobody)
    used = sorted({p for p in map(part_of, set(spans.arrays.tolist())) if p is not None}
                  & set(state.parts))
    total = sum(r["size"] for p in used for r in state.parts[p]["files"].values())
    shown = _Progress(total, progress)
    checks = [(key, record) for part in used
              for key, record in sorted(state.parts[part]["files"].items())]

    def check_one(item):
        key, record = item
        if fs.objects.local is None:
            return key, record["size"], check_file(fs.objects.get(key), record)
        try:
            with open(fs.objects.path(key), "rb", buffering=0) as f:
                return key, record["size"], check_stream(f, os.fstat(f.fileno()).st_size,
                                                         record)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return key, record["size"], "missing"

    # files check in parallel: reads and the CRC release the GIL; in file order
    for key, size, found in _pool().map(check_one, checks):
        shown.add(size)
        if found is None:
            continue
        message = f"file {key!r}: {found}"
        for doc_id, feature in _documents_of(fs, key, spans):
            problems.setdefault(doc_id, []).append(f"feature {feature!r} ({message})")
    shown.add(0)
    for digest, model in sorted(state.models.items()):
        found = fs._read_model(model)[1]
        if found is not None:
            store_problem(f"model {digest!r} (committed by log entry {model['version']}): "
                          f"{found}; ingest with the Document class that declares it "
                          f"saves it again")
    # rows inside their arrays, no overlap in an array
    for doc_id, feature, path in _misplaced(spans, state):
        problems.setdefault(doc_id, []).append(
            f"feature {feature!r}: its rows in {path!r} overlap another document's or "
            f"lie outside the array")
    return problems


class _Spans(NamedTuple):
    """Each stored feature's rows of each document, sorted by array and first row."""

    ids: np.ndarray  # object: document ids
    features: np.ndarray  # object: feature names
    arrays: np.ndarray  # object: array paths
    start: np.ndarray  # int64: first row
    stop: np.ndarray  # int64: end row

    def where(self, mask: np.ndarray) -> list[tuple[str, str]]:
        """Return the (document, feature) pairs of the spans in ``mask``."""
        return list(zip(self.ids[mask].tolist(), self.features[mask].tolist(), strict=True))


def _spans(resolved) -> _Spans:
    """Each stored feature's rows of each document in the catalog (vectorised)."""
    ids, features, arrays, start, stop = [], [], [], [], []
    index = resolved.index.to_numpy(dtype=object)
    for f in _catalog.feature_columns(resolved.columns):
        held = resolved[f"{f}.array"].notna().to_numpy()
        first = resolved[f"{f}.offset"].to_numpy()[held].astype(np.int64)
        ids.append(index[held])
        features.append(np.full(len(first), f, dtype=object))
        arrays.append(resolved[f"{f}.array"].to_numpy(dtype=object)[held])
        start.append(first)
        stop.append(first + resolved[f"{f}.frames"].to_numpy()[held].astype(np.int64))
    if not ids:
        none = np.array([], dtype=object)
        return _Spans(none, none, none, np.array([], np.int64), np.array([], np.int64))
    out = _Spans(*(np.concatenate(x) for x in (ids, features, arrays, start, stop)))
    order = np.lexsort((out.start, pd.factorize(out.arrays, sort=True)[0]))
    return _Spans(*(x[order] for x in out))


def _misplaced(spans: _Spans, state) -> list[tuple[str, str, str]]:
    """Find the rows that overlap another document's in one array, or lie outside it.

    Returns ``(document, feature, array)`` triples; vectorised. An array's length is
    its committed shape.
    """
    code, names = pd.factorize(spans.arrays)  # increasing: spans are sorted by array
    limit = np.array([np.iinfo(np.int64).min if str(a).endswith(".bytes")
                      else _committed_rows(state, a) for a in names], np.int64)[code]
    rows = limit != np.iinfo(np.int64).min  # audio (.bytes): blocks, not rows
    if not rows.any():
        return []
    code, start, stop = code[rows], spans.start[rows], spans.stop[rows]
    # the furthest any earlier document of the same array reaches (a running maximum,
    # array by array: code * big + stop grows across arrays)
    big = int(max(stop.max(), 0)) + 1
    reach = np.maximum.accumulate(code * big + stop) - code * big
    overlap = np.zeros(len(code), bool)
    overlap[1:] = (code[1:] == code[:-1]) & (start[1:] < reach[:-1])
    bad = np.flatnonzero(rows)[overlap | (start < 0) | (stop > limit[rows])]
    return list(zip(spans.ids[bad].tolist(), spans.features[bad].tolist(),
                    spans.arrays[bad].tolist(), strict=True))


def _committed_rows(state, path: str) -> int:
    shape = state.parts.get(part_of(path) or "", {}).get("arrays", {}).get(path, {}).get(
        "shape")
    return int(shape[0]) if shape else np.iinfo(np.int64).max


def _documents_of(fs, key: str, spans: _Spans) -> list[tuple[str, str]]:
    """Return the (document, feature) pairs a damaged file touches."""
    base = key.rsplit("/", 1)[0]
    if "/c/" in key:
        path, chunk = key.split("/c/", 1)
        held = spans.arrays == path
        if held.any():  # a chunk of a feature's array: the documents in it
            meta = fs.objects.get(f"{path}/zarr.json")
            try:
                grid = int(json.loads(meta)["chunk_grid"]["configuration"]["chunk_shape"][0])
                lo = int(chunk.split("/")[0]) * grid
            except (ValueError, KeyError, TypeError, IndexError):
                return spans.where(held)
            if not path.endswith(".bytes"):
                held &= (spans.start < lo + grid) & (spans.stop > lo)
            return spans.where(held)
        base = path.rsplit("/", 1)[0]  # a label array: its group's documents
    # metadata or labels: every document of the arrays under that group or array
    under = [a for a in set(spans.arrays.tolist()) if a == base or a.startswith(f"{base}/")]
    return spans.where(np.isin(spans.arrays, under))


# ---------------------------------------------------------------------- repair
def repair(fs: FeatureStore) -> list[str]:
    """Rewrite missing or damaged catalog fragments (see :meth:`FeatureStore.repair`)."""
    fs._writable()
    if fs.root() is None:
        return []
    fs.log.forget()
    state = fs._state()
    bad = {k: r for k, r in state.fragments.items()
           if check_file(fs.objects.get(k), r) is not None}
    if not bad:
        return []
    tables = [rebuild_fragment(fs, k, r) for k, r in bad.items()]
    rows = _catalog.combine(tables).to_pandas()
    key = f"catalog/{new_part_name()}.parquet"
    data = _catalog.frame_bytes(rows)
    fs.objects.put(key, data)

    def entry(now):
        if any(k not in now.fragments for k in bad):
            return None
        return {"kind": "compact", "replaces": bad, "repair": True,
                "fragment": {"key": key, "size": len(data), "crc32c": crc32c(data)}}

    if not fs.log.commit(entry):
        fs.objects.delete(key)
        return []
    for old in bad:
        fs.objects.delete(old)
    fs._resolution = None
    return sorted(bad)


# ---------------------------------------------------------------------- upgrade
def upgrade(fs: FeatureStore, progress: bool = False) -> int:
    """See :meth:`FeatureStore.upgrade`."""
    fs._writable()
    attributes = fs._attributes()
    if attributes is None:
        raise StoreError(f"no feature store at {fs.url!r}")
    fs._check_root(attributes, upgrading=True)
    if attributes[STORE].get("log") == LOG_FORMAT and fs.log.state().version:
        return 0  # (an empty log over fragments is a lost log: written again below)
    fragments = {}
    for name in fs.objects.list_dir("catalog"):
        if name.endswith(".parquet"):
            key = f"catalog/{name}"
            fragments[key] = _catalog.read_fragment(fs.objects.get(key) or b"", repr(key))
    parts = set(_part_dirs(fs))
    referenced: set[str] = set()
    for table in fragments.values():
        for col in table.column_names:
            if col.endswith(".array"):
                referenced.update(p for p in (part_of(v) for v in
                                              table.column(col).drop_null().to_pylist()) if p)
    referenced |= {_name_of(k) for k in fragments} & parts
    lost = referenced - parts
    if lost:
        raise StoreError(f"cannot upgrade {fs.url!r}: its catalog refers to parts "
                         f"{sorted(lost)[:5]} that are missing")
    records = {p: _check_part(fs, p) for p in sorted(referenced)}
    ordered = sorted(fragments, key=lambda k: (
        int(pc.max(fragments[k].column("_seq")).as_py() or 0), k))
    n = 0
    done: set[str] = set()
    for part in sorted(referenced - {_name_of(k) for k in fragments}):
        n = fs.log.append({"kind": "part", "part": part, "fragment": None,
                           "files": records[part], "arrays": {}, "rows": []})
        done.add(part)
    for key in ordered:
        data = fs.objects.get(key) or b""
        name = _name_of(key)
        rows = [{k: v for k, v in r.items() if k not in ("_seq", "_part")
                 and v is not None} for r in fragments[key].to_pylist()]
        own = name if name in records and name not in done else None
        n = fs.log.append({"kind": "part", "part": own,
                           "files": records[own] if own else {}, "arrays": {},
                           "rows": rows,
                           "fragment": {"key": key, "size": len(data),
                                        "crc32c": crc32c(data)}})
    attributes[STORE] = {**attributes[STORE], "log": LOG_FORMAT}
    fs.objects.put("zarr.json", group_json(attributes))
    fs.objects.put_if_absent("parts/zarr.json", group_json({}))
    fs._reset()
    return n


def _check_part(fs: FeatureStore, part: str) -> dict[str, dict]:
    """Return the records a commit of an existing part gets: every file of it.

    Each array is read whole, so every chunk's CRC32C is checked.
    """
    files = fs.objects.list_files(f"parts/{part}/")
    records: dict[str, dict] = {}
    layouts: dict[str, tuple[int, bool] | bool | None] = {}
    for key in sorted(files):
        if key.endswith("zarr.json"):
            data = fs.objects.get(key) or b""
            path = key.rsplit("/", 1)[0]
            layouts[path] = layout_of(data)
            records[key] = file_record(data)
            meta = json.loads(data)
            if meta.get("node_type") == "array":
                try:
                    zarr.open_array(fs.zarr_store, path=path, mode="r", zarr_format=3)[...]
                except Exception as exc:
                    raise StoreError(f"cannot upgrade {fs.url!r}: the array {path!r} fails "
                                     f"its check ({type(exc).__name__}: {exc}); remove the "
                                     f"damaged documents' part or restore it first") from exc
    for key in sorted(files):
        if key.endswith("zarr.json") or ".tmp" in key.rsplit("/", 1)[-1]:
            continue
        array = key.split("/c/", 1)[0] if "/c/" in key else None
        records[key] = file_record(fs.objects.get(key) or b"",
                                   layouts.get(array) if array else None)
    return records


# ---------------------------------------------------------------------- describe
def describe(fs: FeatureStore) -> str:
    """Summarise ``fs`` from its catalog (see :meth:`FeatureStore.describe`)."""
    attributes = fs.root()
    if attributes is None:
        return f"feature store {fs.url}\nno store here (nothing written yet)"
    state = fs._state()
    resolved, failures = fs._resolve()
    lines = [f"feature store {fs.url}  (layout 2, log version {state.version})"]
    hours = float(resolved["duration"].sum()) / 3600 if "duration" in resolved else 0.0
    lines.append(f"{len(resolved)} documents, {hours:.2f} hours of audio")
    features = _catalog.feature_columns(resolved.columns)
    parts: set[str | None] = set()
    for f in features:
        held = resolved[f"{f}.array"].notna()
        arrays = resolved.loc[held, f"{f}.array"].unique()
        parts.update(part_of(p) for p in arrays)
        versions = resolved.loc[held, f"{f}.version"].value_counts()
        version = ", ".join(f"{v} ({n})" if len(versions) > 1 else str(v)
                            for v, n in versions.items())
        frames = int(resolved.loc[held, f"{f}.frames"].sum())
        lines.append(f"  {f:<16} {int(held.sum()):>9} documents {frames:>12} frames "
                     f"in {len(arrays)} arrays  version {version}")
    lines.append(f"{len(parts)} parts, {len(state.fragments)} catalog fragments")
    lines.append(f"{len(failures)} failures")
    for _, fail in failures.head(20).iterrows():
        lines.append(f"  failed: {fail.get('uri')}: {fail.get('_error')}")
    if len(failures) > 20:
        lines.append(f"  ... and {len(failures) - 20} more")
    return "\n".join(lines)
