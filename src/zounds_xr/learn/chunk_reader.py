"""Reading the rows of many windows at once, inner chunk by inner chunk.

A shuffled epoch reads windows scattered over the whole corpus: each needs one inner
chunk (rarely two) of a sharded array. :class:`ChunkReader` reads the chunks that a
batch of windows (the read-ahead) needs together, coalesced per shard, with
:class:`~zounds_xr.documents.chunks.ShardChunks` (the one home of direct chunk reads:
a shard's index once, then each inner chunk's byte range, checked against its CRC32C,
mapped from local files or fetched with one ``get_partial_values`` call).

This fast path is taken for the layout parts are written in; any other array is read
through zarr, a run of consecutive chunks per call. Decoded chunks stay in a
per-process LRU cache of ``cache_bytes``, so a corpus that fits in it is read once.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import zarr

from ..core.errors import ParameterError, StoreError
from ..documents.chunks import ShardChunks

__all__ = ["CACHE_BYTES", "ChunkReader"]

#: decoded chunks a reader keeps per process (bytes)
CACHE_BYTES = 256 << 20
#: chunks a zarr read spans to join two runs (the slow path)
_GAP = 8


class ChunkReader:
    """Rows of a store's arrays, fetched a read-ahead at a time, inner chunk by chunk.

    One per process (it is dropped when its dataset is pickled for a DataLoader worker).

    Parameters
    ----------
    store
        An object with ``array(path) -> zarr.Array`` (a feature store).
    paths : list of str
        The arrays (``codes`` index into it).
    cache_bytes : int
        Decoded chunks kept (LRU).
    """

    def __init__(self, store, paths: list[str], cache_bytes: int = CACHE_BYTES):
        self.store, self.paths, self.cache_bytes = store, paths, int(cache_bytes)
        self._arrays: dict[int, tuple[zarr.Array, ShardChunks | None, int]] = {}
        self._chunks: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._held = 0
        self._trailing: tuple[int, ...] | None = None

    def array(self, code: int) -> tuple[zarr.Array, ShardChunks | None, int]:
        """(array, fast reader or None, rows per chunk) of array ``code``."""
        found = self._arrays.get(code)
        if found is None:
            a = self.store.array(self.paths[code])
            if self._trailing is None:
                self._trailing = tuple(a.shape[1:])
            elif tuple(a.shape[1:]) != self._trailing:
                raise ParameterError(
                    f"the feature's arrays differ in shape: {self.paths[code]!r} has frames "
                    f"of shape {tuple(a.shape[1:])}, others {self._trailing}; select "
                    f"documents of one shape with ids=")
            raw = ShardChunks.of(a)
            rows = raw.rows_per_chunk if raw is not None else int(a.chunks[0]) if a.chunks else 1
            self._arrays[code] = found = (a, raw, max(1, rows))
        return found

    def row_bytes(self) -> int:
        """Bytes of one stored frame (row)."""
        a = self.array(0)[0]
        return max(1, int(np.prod(a.shape[1:], dtype=np.int64)) * a.dtype.itemsize)

    # ------------------------------------------------------------------- gathering
    def gather(self, codes, starts, stops) -> list[np.ndarray]:
        """Read rows ``starts[j]:stops[j]`` of array ``codes[j]`` for every ``j``.

        Parameters
        ----------
        codes, starts, stops : array of int
            Array number, first row and end row of each window.

        Returns
        -------
        list of numpy.ndarray
            Read-only views into the decoded chunks when a window lies in one chunk.
        """
        codes = np.asarray(codes, dtype=np.int64)
        starts = np.asarray(starts, dtype=np.int64)
        stops = np.asarray(stops, dtype=np.int64)
        rows = np.empty(len(codes), dtype=np.int64)
        for code in np.unique(codes):
            rows[codes == code] = self.array(int(code))[2]
        first, last = starts // rows, (stops - 1) // rows
        span = last - first + 1
        runs = np.repeat(np.arange(len(codes)), span)
        step = np.arange(len(runs)) - np.repeat(np.cumsum(span) - span, span)
        wanted = np.unique((codes[runs] << 40) | (first[runs] + step))  # (code, chunk)
        chunks = self._load(np.stack([wanted >> 40, wanted & ((1 << 40) - 1)], axis=1))
        out: list[np.ndarray] = []
        for j in range(len(codes)):
            code, c0, c1, r = int(codes[j]), int(first[j]), int(last[j]), int(rows[j])
            lo, hi = int(starts[j]), int(stops[j])
            if c0 == c1:
                out.append(chunks[(code, c0)][lo - c0 * r: hi - c0 * r])
            else:
                out.append(np.concatenate(
                    [chunks[(code, c)][max(lo - c * r, 0): min(hi - c * r, r)]
                     for c in range(c0, c1 + 1)]))
        return out

    def _load(self, wanted: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
        """Get the chunks ``wanted`` (rows of (code, chunk)), cached or from the store."""
        found: dict[tuple[int, int], np.ndarray] = {}
        missing: dict[int, list[int]] = {}
        for code, chunk in wanted.tolist():
            data = self._chunks.get((code, chunk))
            if data is None:
                missing.setdefault(code, []).append(chunk)
            else:
                self._chunks.move_to_end((code, chunk))
                found[(code, chunk)] = data
        for code, chunks in missing.items():
            a, raw, rows = self.array(code)
            read = raw.chunks(chunks) if raw is not None else self._read_zarr(a, rows, chunks)
            mapped = raw is not None and raw.local
            for chunk, data in zip(chunks, read, strict=True):
                found[(code, chunk)] = data
                if not mapped:  # a mapped chunk is in the page cache already
                    self._chunks[(code, chunk)] = data
                    self._held += data.nbytes
        while self._held > self.cache_bytes and len(self._chunks) > 1:
            _, old = self._chunks.popitem(last=False)
            self._held -= old.nbytes
        return found

    def _read_zarr(self, a: zarr.Array, rows: int, chunks: list[int]) -> list[np.ndarray]:
        ids = np.asarray(chunks, dtype=np.int64)
        out = []
        # one zarr call per run of chunks, gaps of a few chunks read through: each call
        # costs milliseconds of event-loop round trips, a skipped chunk far less
        for run in np.split(ids, np.flatnonzero(np.diff(ids) > _GAP) + 1):
            lo, hi = int(run[0]) * rows, min((int(run[-1]) + 1) * rows, a.shape[0])
            try:
                data = np.asarray(a[lo:hi])
            except StoreError:
                raise
            except Exception as exc:  # a damaged or missing chunk, as zarr reports it
                raise StoreError(f"rows {lo}:{hi} of the array {a.path!r} cannot be read: "
                                 f"{type(exc).__name__}: {exc}") from exc
            out += [data[c * rows - lo: (c + 1) * rows - lo] for c in run.tolist()]
        return out
