"""Lazy dask arrays over the rows of stored arrays.

A document's frames are rows ``[offset, offset + frames)`` of its part's array.
:func:`lazy_rows` makes them a dask array that reads through
``dask.array.core.getter``, so dask's optimizer pushes a selection into the read: a 2 s
slice of a 1-hour feature reads the rows it needs (the inner chunks they lie in and
their shards' indexes), not the dask block around them, and the blocks can be whole
shards (a few hundred tasks at most, whatever the length). :func:`stacked_rows` puts
the rows of many documents one after the other, reading each array span by span in
order (each shard once) whatever order the documents come in.
:class:`CheckedRows` turns any failure to read into a :class:`StoreError` naming
what was read; it reads a local array in the layout parts are written in directly
(:class:`.chunks.ShardChunks`: ``os.pread`` and the checks, in the calling thread), any
other through zarr.
"""
from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable

import dask.array as da
import numpy as np
import pandas as pd
import zarr
from dask._task_spec import DataNode, Task
from dask.array.core import getter
from dask.highlevelgraph import HighLevelGraph

from ..core.errors import StoreError, ZoundsError
from .chunks import ShardChunks

__all__ = ["MAX_TASKS", "CheckedRows", "block_rows", "lazy_rows", "read_error", "stacked_rows"]

#: at most about this many dask chunks in the lazy array of one document
MAX_TASKS = 512


def read_error(where: str, what: str, exc: BaseException) -> StoreError:
    """Build the error for a failure to read.

    Parameters
    ----------
    where : str
        The store, document, feature and array.
    what : str
        What of it was read (rows, a block).
    exc : BaseException
        The failure.

    Returns
    -------
    StoreError
        Saying so (a failed checksum: damaged data); raise it ``from exc``.
    """
    detail = str(exc) if isinstance(exc, ZoundsError) else f"{type(exc).__name__}: {exc}"
    if "checksum" in detail.lower() or "crc" in detail.lower():
        detail = f"a chunk fails its checksum (damaged data): {detail}"
    return StoreError(f"cannot read {where}, {what}: {detail}")


class CheckedRows:
    """Read rows ``[start, stop)`` of a stored array, checked, as dask reads them.

    Indexed like a numpy array of those rows (slices with any step, integers, one
    array of integers); picklable.

    Parameters
    ----------
    array : zarr.Array
        The stored array.
    where : str
        The store, document, feature and array, for errors.
    start : int, default 0
        First row.
    stop : int, optional
        End row (default: the array's end).
    direct : ShardChunks, optional
        Reads ``array``'s rows directly (a local array in the layout parts are written
        in): slices of rows, every trailing dimension whole, are read with it.

    Raises
    ------
    StoreError
        On indexing: any failure to read, naming ``where``; an array with fewer rows
        than the catalog says (never fewer rows).
    """

    def __init__(self, array: zarr.Array, where: str, start: int = 0,
                 stop: int | None = None, direct: ShardChunks | None = None):
        self.array, self.where, self.direct = array, where, direct
        self.start = int(start)
        stop = array.shape[0] if stop is None else int(stop)
        self.shape = (stop - self.start, *array.shape[1:])
        self.dtype, self.ndim = array.dtype, array.ndim

    def _rows(self, rows):
        """``rows`` of the document as rows of the array (``None``: a reversed slice)."""
        n = self.shape[0]
        if isinstance(rows, slice):
            lo, hi, step = rows.indices(n)
            if step < 0:
                return None
            return slice(self.start + lo, self.start + max(lo, hi), step)
        if isinstance(rows, (int, np.integer)):
            i = int(rows) + n if rows < 0 else int(rows)
            if not 0 <= i < n:
                raise IndexError(f"row {rows} is out of range for {n} rows")
            return self.start + i
        rows = np.asarray(rows)
        if rows.dtype.kind not in "iu":
            raise IndexError(f"cannot select rows with {rows.dtype} values")
        rows = np.where(rows < 0, rows + n, rows)
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            raise IndexError(f"rows out of range for {n} rows")
        return rows + self.start

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        rows = self._rows(key[0])
        if rows is None:  # zarr reads forwards: read so, then reverse
            picked = range(*key[0].indices(self.shape[0]))
            forward = slice(picked[-1], picked[0] + 1, -picked.step) if picked else \
                slice(0, 0)
            return self[(forward, *key[1:])][::-1]
        key = (rows, *key[1:])
        what = (f"rows {rows.start}:{rows.stop} of the array" if isinstance(rows, slice)
                else "some rows of the array") + f" (the document's from row {self.start})"
        try:
            # one array of rows: numpy's meaning, which is zarr's orthogonal one
            fancy = any(isinstance(k, (np.ndarray, list)) for k in key)
            if self.direct is not None and isinstance(rows, slice) and rows.step == 1 \
                    and all(isinstance(k, slice) and k.indices(n) == (0, n, 1)
                            for k, n in zip(key[1:], self.shape[1:], strict=False)):
                # the rows zarr would return (none past the array's end: checked below)
                end = self.array.shape[0]
                out = self.direct.rows(min(rows.start, end), min(rows.stop, end))
            else:
                out = np.asarray(self.array.oindex[key] if fancy else self.array[key])
        except Exception as exc:
            raise read_error(self.where, what, exc) from exc
        if isinstance(rows, slice) and out.shape[0] != len(range(rows.start, rows.stop,
                                                                 rows.step)):
            raise StoreError(f"cannot read {self.where}, {what}: the array has "
                             f"{self.array.shape[0]} rows, fewer than its catalog says "
                             f"(damaged metadata)")
        return out


def block_rows(array: zarr.Array, rows: int = 0) -> int:
    """Rows per dask chunk of ``rows`` rows of ``array``.

    Parameters
    ----------
    array : zarr.Array
        A stored array (sharded, or one chunk).
    rows : int, default 0
        How many rows the dask array covers.

    Returns
    -------
    int
        One shard (the unit a write puts), or a few where that would make more than
        :data:`MAX_TASKS` chunks.
    """
    shard = int((array.shards or array.chunks)[0])
    return shard * max(1, -(-rows // (MAX_TASKS * shard)))


def _token(*parts) -> str:
    digest = hashlib.sha1()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else repr(part).encode())
    return digest.hexdigest()[:16]


def lazy_rows(array: zarr.Array, where: str, start: int, stop: int, name: str,
              direct: ShardChunks | None = None) -> da.Array:
    """Return rows ``[start, stop)`` of ``array`` as a lazy dask array.

    The dask array is chunked at the array's shard edges; a selection of it reads
    only the rows it selects.

    Parameters
    ----------
    array : zarr.Array
        The stored array.
    where : str
        What is read, for errors (:class:`CheckedRows`).
    start, stop : int
        The document's rows.
    name : str
        Names the array in dask's graph, with the rows: the stored array's path (its
        rows never change).
    direct : ShardChunks, optional
        Reads the rows directly (:class:`CheckedRows`).

    Returns
    -------
    dask.array.Array
        ``stop - start`` rows, blocks ending at shard edges.
    """
    checked = CheckedRows(array, where, start, stop, direct)
    step = block_rows(checked.array, stop - start)
    edges = [start, *range((start // step + 1) * step, stop, step), stop]
    rest = tuple(slice(0, n) for n in checked.shape[1:])
    key = f"zx-{name}-{start}-{stop}-{_token(checked.where)}"
    # the graph ``da.from_array(checked, fancy=True, inline_array=True, asarray=False,
    # lock=False)`` makes, built directly (a tenth of the time): dask's ``getter`` is the
    # one its optimizer fuses a later selection into
    source = DataNode(None, checked)
    dsk: dict = {}
    for i, (a, b) in enumerate(itertools.pairwise(edges)):
        k = (key, i, *(0,) * len(rest))
        dsk[k] = Task(k, getter, source, DataNode(None, (slice(a - start, b - start), *rest)),
                      asarray=False, lock=False, _data_producer=True)
    return da.Array(HighLevelGraph.from_collections(key, dsk, dependencies=()), key,
                    (tuple(b - a for a, b in itertools.pairwise(edges)),
                     *((n,) for n in checked.shape[1:])),
                    meta=np.empty((0,) * checked.ndim, checked.dtype))


# ---------------------------------------------------------------------- many documents
def stacked_rows(rows_of: Callable[[str], CheckedRows], paths, offsets, counts,
                 name: str) -> da.Array:
    """Return the rows of many documents one after the other, as one dask array.

    Each array is read span by span in order, one span per shard holding requested
    rows (from its first requested row to its last), whatever the order of the
    documents; the output's chunks, about one shard each, are put together from those
    spans.

    Parameters
    ----------
    rows_of : callable
        ``rows_of(path) -> CheckedRows`` of the whole stored array.
    paths, offsets, counts : sequences
        Document ``k`` is ``counts[k]`` rows of the array at ``paths[k]`` from row
        ``offsets[k]`` (not empty).
    name : str
        Names the arrays in dask's graph.

    Returns
    -------
    dask.array.Array
        ``sum(counts)`` rows.
    """
    paths = [str(p) for p in paths]
    offsets = np.asarray(offsets, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    sources = {p: rows_of(p) for p in dict.fromkeys(paths)}
    first = sources[paths[0]]
    rest = tuple(first.shape[1:])
    spans, chunks = _plan(paths, offsets, counts,
                          lambda p: block_rows(sources[p].array))
    if not chunks:
        return da.empty((0, *rest), dtype=first.dtype, chunks=(0, *rest))
    token = _token(name, "\0".join(paths).encode(), offsets.tobytes(), counts.tobytes())
    read, out = f"zx-rows-{name}-{token}", f"zx-stacked-{name}-{token}"
    dsk: dict = {(read, i): (_read_span, sources[p], lo, hi)
                 for i, (p, lo, hi) in enumerate(spans)}
    for j, pieces in enumerate(chunks):
        dsk[(out, j, *(0,) * len(rest))] = (
            _assemble, [(read, i) for i, _, _ in pieces], [(a, b) for _, a, b in pieces])
    sizes = tuple(sum(b - a for _, a, b in pieces) for pieces in chunks)
    graph = HighLevelGraph.from_collections(out, dsk, dependencies=())
    return da.Array(graph, out, chunks=(sizes, *((n,) for n in rest)),
                    meta=np.empty((0,) * first.ndim, first.dtype))


def _read_span(rows: CheckedRows, lo: int, hi: int) -> np.ndarray:
    return rows[lo:hi]


def _assemble(blocks: list[np.ndarray], ranges: list[tuple[int, int]]) -> np.ndarray:
    if len(blocks) == 1 and ranges[0] == (0, blocks[0].shape[0]):
        return blocks[0]
    return np.concatenate([b[lo:hi] for b, (lo, hi) in zip(blocks, ranges, strict=True)])


def _plan(paths, offsets, counts, block_of: Callable[[str], int]):
    """Plan how to read many documents' rows: ``(spans, chunks)``.

    Computed with numpy (a million documents take a fraction of a second).

    ``spans`` are ``(path, lo, hi)`` row ranges to read, in array order, each inside one
    dask block of its array (``block_of(path)`` rows, whole shards): the documents'
    rows sorted by position, from the first requested row of a block to the last, so
    that each shard is read once. ``chunks`` are the output's dask chunks, in the
    documents' order: lists of ``(span, lo, hi)`` pieces, about one block of rows
    each.
    """
    codes, names = pd.factorize(np.asarray(paths, dtype=object), sort=True)
    lo = np.asarray(offsets, dtype=np.int64)
    hi = lo + np.asarray(counts, dtype=np.int64)
    blocks = np.array([block_of(str(name)) for name in names], dtype=np.int64)[codes]
    docs = np.flatnonzero(hi > lo)  # the order asked for; empty documents read nothing
    if not len(docs):
        return [], []
    big = int(hi.max()) + 1  # codes * big + row: a position across all arrays
    # 1. documents by position; a span goes on while they start in the block where it
    #    ends (its end: the running maximum of their ends, array by array)
    order = docs[np.lexsort((lo[docs], codes[docs]))]
    c, s, e, b = codes[order], lo[order], hi[order], blocks[order]
    end = np.maximum.accumulate(c * big + e) - c * big
    new = np.ones(len(order), dtype=bool)
    new[1:] = (c[1:] != c[:-1]) | (s[1:] // b[1:] > (end[:-1] - 1) // b[1:])
    firsts = np.flatnonzero(new)
    span_lo, span_hi = s[firsts], np.maximum.reduceat(e, firsts)
    span_code, span_block = c[firsts], b[firsts]
    # 2. spans cut at block edges
    first_block = span_lo // span_block
    pieces = (span_hi - 1) // span_block - first_block + 1
    rep = np.repeat(np.arange(len(firsts)), pieces)
    k = np.arange(len(rep)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    cut_lo = np.maximum(span_lo[rep], (first_block[rep] + k) * span_block[rep])
    cut_hi = np.minimum(span_hi[rep], (first_block[rep] + k + 1) * span_block[rep])
    cut_code = span_code[rep]
    cut_key = cut_code * big + cut_lo  # ascending
    # 3. each document's pieces of spans, in the order asked for
    first = np.searchsorted(cut_key, codes[docs] * big + lo[docs], "right") - 1
    last = np.searchsorted(cut_key, codes[docs] * big + hi[docs] - 1, "right") - 1
    n = last - first + 1
    rep = np.repeat(np.arange(len(docs)), n)
    piece = first[rep] + np.arange(len(rep)) - np.repeat(np.cumsum(n) - n, n)
    a = np.maximum(lo[docs][rep], cut_lo[piece]) - cut_lo[piece]
    z = np.minimum(hi[docs][rep], cut_hi[piece]) - cut_lo[piece]
    # 4. output chunks of about one block; pieces that continue each other are one
    chunk = (np.cumsum(z - a) - (z - a)) // int(blocks[docs].max())
    joined = (piece[1:] == piece[:-1]) & (a[1:] == z[:-1]) & (chunk[1:] == chunk[:-1])
    starts = np.flatnonzero(np.concatenate([[True], ~joined]))
    stops = np.concatenate([starts[1:], [len(piece)]]) - 1
    runs = zip(piece[starts].tolist(), a[starts].tolist(), z[stops].tolist(), strict=True)
    chunks: list[list[tuple[int, int, int]]] = []
    for (i, j, m), new_chunk in zip(runs, np.diff(chunk[starts], prepend=-1) != 0,
                                    strict=True):
        if new_chunk:
            chunks.append([])
        chunks[-1].append((i, j, m))
    spans = list(zip(np.asarray(names, dtype=object)[cut_code].tolist(), cut_lo.tolist(),
                     cut_hi.tolist(), strict=True))
    return spans, chunks
