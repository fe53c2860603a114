"""The store's catalog: Parquet fragments, one per part, resolved into one table.

A fragment (``<root>/catalog/<part>.parquet``) holds one row per document the part
wrote (or deleted, or failed to write). Columns:

- ``id``; the source's metadata: ``uri``, ``samplerate``, ``channels``, ``duration``
  (seconds of decoded audio), ``licensing``, ``description``, ``tags`` and any other
  metadata key;
- per stored feature ``f``: ``f.frames`` (int64), ``f.version``, ``f.array`` (path of the
  Zarr array, relative to the root), ``f.offset`` (int64: the document's first row in
  it) and ``f.index`` (JSON of the exact ``TimeIndex`` definition);
- hidden columns (dropped by :func:`public`): ``_seq`` (int64: the order of rows;
  in a part's own fragment nanoseconds at writing, replaced on reading by the number
  of the log entry that committed it; a compacted fragment keeps each row's commit
  number), ``_part`` (the part's name: ties), ``_status`` (``"ok"``, ``"deleted"`` for
  a tombstone, ``"failed"`` for a source that could not be processed, with
  ``_error``).

Resolution (:func:`resolve`): rows are ordered by ``(_seq, _part)``; a tombstone hides
every older row of its id; the newest row of an id gives its metadata, and for each
feature the newest row that holds it gives that feature's columns. So ``update()``
adds a feature through a fragment that holds only that feature, and the newest of two
writers of one document wins, deterministically. Label edits (:func:`apply_labels`)
apply on top, in commit order.
"""
from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..core.errors import ParameterError, StoreError

__all__ = [
    "FEATURE_FIELDS",
    "HIDDEN",
    "META_COLUMNS",
    "apply_labels",
    "check_rows",
    "combine",
    "compaction_rows",
    "feature_columns",
    "fragment_bytes",
    "frame_bytes",
    "label_value",
    "meta_of_row",
    "present",
    "public",
    "read_fragment",
    "resolve",
    "with_commit",
]

#: per stored feature ``f``: the columns ``f.<field>``
FEATURE_FIELDS = ("frames", "version", "array", "offset", "index")
#: the metadata columns every catalog has, in this order
META_COLUMNS = ("uri", "samplerate", "channels", "duration", "licensing", "description",
                "tags")
HIDDEN = ("_seq", "_part", "_status", "_error")
OK, DELETED, FAILED = "ok", "deleted", "failed"


def _cell(value):
    """Convert ``value`` to what Parquet holds in a column of one type.

    That is lists of text, scalars, or JSON text.
    """
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return json.dumps(value, default=str, sort_keys=True)


def meta_columns(meta: dict) -> dict:
    """Catalog columns of an ``AudioMetaData.to_dict()``."""
    out = {k: _cell(meta.get(k)) for k in META_COLUMNS if k != "duration"}
    out["duration"] = _cell(meta.get("duration_seconds"))
    for key, value in meta.items():
        if key in META_COLUMNS or key == "duration_seconds" or key.startswith("_") \
                or key == "id" or "." in key:
            continue
        out[key] = _cell(value)
    return out


def meta_of_row(row: dict) -> dict:
    """Invert :func:`meta_columns` for a resolved row (for ``AudioMetaData.from_dict``)."""
    out = {}
    for key, value in row.items():
        if key.startswith("_") or "." in key or key == "id":
            continue
        if isinstance(value, float) and math.isnan(value) or value is pd.NA or value is pd.NaT:
            value = None
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, np.generic):
            value = value.item()
        if key == "duration":
            key = "duration_seconds"
        if value is None and key not in META_COLUMNS and key != "duration_seconds":
            continue  # a key of other documents' metadata
        out[key] = value
    return out


def feature_columns(columns) -> list[str]:
    """Names of the features that have columns in ``columns``."""
    return sorted({c[:-len(".array")] for c in columns if c.endswith(".array")})


def fragment_bytes(rows: list[dict], seq: int, part: str) -> bytes:
    """Write a Parquet fragment of ``rows`` (dicts of column -> value), committed at ``seq``."""
    columns: dict[str, list] = {"id": [r["id"] for r in rows]}
    for row in rows:
        for key in row:
            columns.setdefault(key, [])
    data = {}
    for key in columns:
        values = [r.get(key) for r in rows] if key != "id" else columns["id"]
        if key.endswith((".frames", ".offset")):
            data[key] = pa.array(values, type=pa.int64())
        elif key.endswith((".version", ".array", ".index")) or key in ("id", "_status",
                                                                        "_error", "uri"):
            data[key] = pa.array(values, type=pa.string())
        else:
            try:
                data[key] = pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                data[key] = pa.array([None if v is None else json.dumps(v, default=str)
                                      for v in values], type=pa.string())
    n = len(rows)
    data["_seq"] = pa.array(np.full(n, seq, np.int64))
    data["_part"] = pa.array([part] * n, type=pa.string())
    # a row without a status (a document, among failures) is a document
    data["_status"] = pa.array([r.get("_status") or OK for r in rows], type=pa.string())
    buf = io.BytesIO()
    pq.write_table(pa.table(data), buf, compression="zstd")
    return buf.getvalue()


def frame_bytes(df: pd.DataFrame) -> bytes:
    """Write a fragment of resolved rows that keep their own ``_seq`` and ``_part``.

    This is what compaction writes.
    """
    try:
        table = pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        df = df.copy()
        for col in df.columns:
            if df[col].dtype == object:
                df[col] = [None if v is None or (isinstance(v, float) and math.isnan(v))
                           else v if isinstance(v, str) else json.dumps(_cell(v))
                           for v in df[col]]
        table = pa.Table.from_pandas(df, preserve_index=False)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


#: columns of few distinct values (a part's arrays, features' versions and time
#: indexes): read through their Parquet dictionary, then decoded in Arrow, which is
#: faster than Parquet's own decoding of a million repeated strings
_REPEATED = (".array", ".version", ".index")


def read_fragment(data: bytes | str, where: str, columns=None) -> pa.Table:
    """Read a fragment's table; :class:`StoreError` if it is not a readable fragment.

    ``data`` is its bytes or a local path; ``columns``: only those.
    """
    def source():
        return io.BytesIO(data) if isinstance(data, bytes) else data

    try:
        repeated = [n for n in pq.read_schema(source()).names if n.endswith(_REPEATED)
                    and (columns is None or n in columns)]
        table = pq.ParquetFile(source(), read_dictionary=repeated or None).read(
            columns=columns)
        for name in repeated:
            column = table.column(name)
            if pa.types.is_dictionary(column.type):
                table = table.set_column(table.column_names.index(name), name,
                                         column.cast(column.type.value_type))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise StoreError(f"the catalog fragment {where} is unreadable ({exc}); move it "
                         f"away to read the rest of the store, or restore it") from exc
    if "id" not in table.column_names or "_seq" not in table.column_names:
        raise StoreError(f"the catalog fragment {where} is not a zounds_xr catalog "
                         f"fragment (no 'id' or '_seq' column)")
    return table


def combine(tables: list[pa.Table]) -> pa.Table:
    """All fragments' rows in one table (columns unified: a missing column is null)."""
    if not tables:
        return pa.table({"id": pa.array([], pa.string()), "_seq": pa.array([], pa.int64()),
                         "_part": pa.array([], pa.string()),
                         "_status": pa.array([], pa.string())})
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # a metadata key with different types in different fragments: text for all
        names = {n for t in tables for n in t.column_names}
        fixed = []
        for t in tables:
            for name in names:
                if name in t.column_names and name not in ("_seq",) and not name.endswith(
                        (".frames", ".offset")) and not pa.types.is_string(
                        t.schema.field(name).type):
                    i = t.column_names.index(name)
                    t = t.set_column(i, name, pa.array(
                        [None if v is None else json.dumps(v, default=str)
                         for v in t.column(name).to_pylist()], pa.string()))
            fixed.append(t)
        return pa.concat_tables(fixed, promote_options="permissive")


def visible_ids(table: pa.Table, unique: bool = False) -> pa.Array:
    """Return the ids :func:`resolve` would make visible, from the id and order columns.

    A pyarrow string array: resume checks stay in Arrow, vectorised. ``unique``: the
    log says the documents' ids are unique in ``table`` (see :func:`resolve`).
    """
    status = pc.fill_null(table.column("_status"), OK)  # no status: a document
    deleted = pc.equal(status, DELETED)
    if not pc.any(deleted).as_py():
        ids = table.filter(pc.not_equal(status, FAILED)).column("id").combine_chunks()
        return ids if unique else pc.unique(ids)
    df = table.select(["id", "_seq", "_part", "_status"]).to_pandas()
    df["_status"] = df["_status"].fillna(OK)
    df = df.loc[df["_status"] != FAILED].sort_values(["_seq", "_part"], kind="stable")
    last = df.drop_duplicates("id", keep="last")
    return pa.array(last.loc[last["_status"] != DELETED, "id"].to_numpy(dtype=object),
                    pa.string())


def resolve(table: pa.Table, unique: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Resolve the visible documents (indexed by ``id``, in commit order) and the failures.

    ``unique``: the log says that the ids of the documents (the rows that are not
    failures) are unique in ``table``, as in a compacted fragment, whose writer
    resolved them: the check, a hash of every id, is skipped.

    Returns
    -------
    (catalog, failures)
        ``catalog`` keeps the hidden columns (see :func:`public`); ``failures`` has
        columns ``uri``, ``_error``, ``_seq`` for sources whose newest outcome is a
        failure.
    """
    df = table.to_pandas()
    if len(df) and not df["_seq"].is_monotonic_increasing:
        df = df.sort_values(["_seq", "_part"], kind="stable")
    status = df["_status"]
    failed = status == FAILED
    failures = df.loc[failed, [c for c in ("id", "uri", "_error", "_seq", "_part")
                               if c in df]]
    if failed.any():
        df = df.loc[~failed]
        status = df["_status"]
    deleted = status == DELETED
    if deleted.any():
        # a tombstone hides every row of its id that is not newer than it
        order = np.arange(len(df))
        last_tomb = pd.Series(order[deleted.to_numpy()],
                              index=df["id"].to_numpy()[deleted.to_numpy()])
        last_tomb = last_tomb.groupby(level=0).max()
        cut = df["id"].map(last_tomb).fillna(-1).to_numpy()
        df = df.loc[order > cut]
    if unique or df["id"].is_unique:
        out = df.set_index("id")
    else:
        # newest non-null value per column: the newest row for the metadata, and for
        # each feature the newest row that holds it (its columns are set together)
        out = df.groupby("id", sort=False).last()
        first = df.drop_duplicates("id")["id"]
        out = out.loc[first.to_numpy()]
    out.index.name = "id"
    if len(failures):
        done = set(out["uri"].dropna()) if "uri" in out else set()
        failures = failures.drop_duplicates("uri", keep="last")
        failures = failures.loc[~failures["uri"].isin(done)]
    return out, failures.reset_index(drop=True)


def public(resolved: pd.DataFrame) -> pd.DataFrame:
    """Return the catalog as users see it.

    Metadata columns come first, then features; hidden columns and all-null columns
    of other documents' metadata are dropped.
    """
    features = feature_columns(resolved.columns)
    meta = [c for c in META_COLUMNS if c in resolved.columns]
    other = [c for c in resolved.columns if not c.startswith("_") and "." not in c
             and c not in META_COLUMNS]
    cols = meta + other + [f"{f}.{field}" for f in features for field in FEATURE_FIELDS
                           if f"{f}.{field}" in resolved.columns]
    out = resolved[cols]
    for f in features:
        for field in ("frames", "offset"):
            col = f"{f}.{field}"
            if col in out and out[col].notna().all() and out[col].dtype != np.int64:
                out = out.astype({col: np.int64})
    return out


def present(value) -> bool:
    """Whether a catalog cell holds a value (not null, NaN or NA)."""
    return value is not None and not (isinstance(value, float) and np.isnan(value)) \
        and value is not pd.NA


def with_commit(table: pa.Table, n: int) -> pa.Table:
    """Order a part's fragment rows by ``n``, the log entry committing it."""
    i = table.column_names.index("_seq")
    return table.set_column(i, "_seq", pa.array(np.full(table.num_rows, n, np.int64)))


def compaction_rows(resolved: pd.DataFrame, failures: pd.DataFrame) -> pd.DataFrame:
    """Return the rows of a compacted fragment: visible documents and current failures.

    Each keeps its ``_seq`` (:func:`frame_bytes` writes them).
    """
    rows = resolved.reset_index()
    if len(failures):
        rows = pd.concat([rows, failures.assign(_status=FAILED)], ignore_index=True)
    return rows


def check_rows(rows: list[dict], where: str) -> None:
    """Refuse a part's rows that overlap in one array or lie before its start.

    A reader could not tell such rows apart.
    """
    spans: dict[str, list[tuple[int, int, str]]] = {}
    for row in rows:
        for f in feature_columns(row):
            path = row.get(f"{f}.array")
            if not present(path) or str(path).endswith(".bytes"):
                continue  # compressed audio: offsets are blocks, one document each
            offset, frames = int(row[f"{f}.offset"]), int(row[f"{f}.frames"])
            if offset < 0 or frames < 0:
                raise StoreError(f"{where}: document {row['id']!r}, feature {f!r} has rows "
                                 f"{offset}:{offset + frames}")
            spans.setdefault(str(path), []).append((offset, offset + frames, row["id"]))
    for path, found in spans.items():
        found.sort()
        for (_, end, a), (start, _, b) in zip(found, found[1:], strict=False):
            if start < end:
                raise StoreError(f"{where}: documents {a!r} and {b!r} overlap in {path!r}")


def label_value(value, column: str):
    """Convert a label to what the log and the catalog hold.

    That is JSON: text, numbers, booleans, ``None`` or a list of text.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ParameterError(f"label {column!r}: {value} is not a value the store "
                                 f"can hold (use None for no value)")
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ParameterError(f"label {column!r}: {value!r} is not text, a number, a boolean, "
                         f"None or a list of text")


def apply_labels(resolved: pd.DataFrame, labels: dict) -> pd.DataFrame:
    """Apply the log's label edits (``{column: {id: [value, n]}}``) to the catalog.

    An edit wins over the document's row when it is newer (its commit ``n`` is after
    the row's).
    """
    if not labels or not len(resolved):
        return resolved
    out = resolved.copy()
    seq = out["_seq"]
    for column, edits in labels.items():
        ids = pd.Index(list(edits))
        ids = ids[ids.isin(out.index)]
        if not len(ids):
            continue
        ns = np.array([edits[i][1] for i in ids], np.int64)
        newer = ns > seq.loc[ids].to_numpy()
        ids = ids[newer]
        if not len(ids):
            continue
        values = [edits[i][0] for i in ids]
        if column not in out.columns:
            out[column] = pd.Series([None] * len(out), index=out.index, dtype=object)
        try:
            out.loc[ids, column] = pd.Series(values, index=ids, dtype=object)
        except (TypeError, ValueError):
            out[column] = out[column].astype(object)
            out.loc[ids, column] = pd.Series(values, index=ids, dtype=object)
    return out
