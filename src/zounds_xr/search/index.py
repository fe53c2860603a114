"""Exact Hamming search over the windows of many documents, with neighbour semantics.

A query is the codes of a selection's sub-windows (:meth:`WindowRule.selection`).
A *candidate* is a stretch of an indexed document aligned with the selection: its
sub-window ``j`` lines up with the indexed window that starts ``starts[j] - starts[0]``
frames after the stretch's first frame. A candidate's distance is the minimum, over its
aligned sub-windows, of the Hamming distance between the query sub-window and the
indexed window. Results are the ``k`` nearest candidates, nearest first, where a
candidate overlapping a nearer result of the same document is left out (so a long
document cannot fill the list with copies of one match shifted by a hop). Equal
distances rank the query's own stretch first (an exact self-match at distance 0 comes
before an identical copy), then by position in the index.

The search is exact: the nearest (sub-window, window) pairs are taken from every
query row by a counting threshold (numpy) or ``faiss.IndexBinaryFlat`` (when
installed), enough of them that ``k`` candidates survive, and doubled until they do.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..core.optional import optional_import
from ..core.errors import ParameterError
from .codes import WordMajor
from .windows import FrameTimes, Selection, WindowRule

__all__ = ["CodeIndex", "Neighbour", "Segments", "BACKENDS"]

BACKENDS = ("auto", "numpy", "faiss")
Exclude = Literal["selection", "document"] | None


@dataclass
class Segments:
    """The indexed documents: id and frame times of each (arrays of equal length).

    Parameters
    ----------
    ids : numpy.ndarray of str (object)
    start, step, extent : numpy.ndarray of float64
        Seconds: first frame's start, frame step, frame extent.
    frames : numpy.ndarray of int64
        Frames of each document.
    """

    ids: np.ndarray  # object (str)
    start: np.ndarray  # float64 seconds
    step: np.ndarray
    extent: np.ndarray
    frames: np.ndarray  # int64

    def __len__(self) -> int:
        return int(self.ids.size)

    def times(self, i: int) -> FrameTimes:
        """Return where document ``i``'s frames are."""
        return FrameTimes(float(self.start[i]), float(self.step[i]), float(self.extent[i]),
                          int(self.frames[i]))

    def take(self, keep: np.ndarray) -> Segments:
        """Return the documents ``keep`` (positions or a mask)."""
        return Segments(self.ids[keep], self.start[keep], self.step[keep],
                        self.extent[keep], self.frames[keep])

    @classmethod
    def concat(cls, parts: list[Segments]) -> Segments:
        """Put several tables of documents one after the other."""
        if not parts:
            return cls(np.zeros(0, object), np.zeros(0), np.zeros(0), np.zeros(0),
                       np.zeros(0, np.int64))
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("ids", "start", "step", "extent", "frames")))


@dataclass(frozen=True)
class Neighbour:
    """One result: a stretch ``[start, end)`` seconds of document ``id``.

    Parameters
    ----------
    id : str
    start, end : float
        Seconds.
    distance : int
        Bits that differ (the minimum over the aligned sub-windows).
    """

    id: str
    start: float
    end: float
    distance: int

    def to_json(self) -> dict:
        """Return the result as JSON (seconds rounded to the microsecond)."""
        return {"id": self.id, "start": round(self.start, 6), "end": round(self.end, 6),
                "distance": self.distance}


def _backend(name: str):
    """``None`` for numpy, else the faiss module."""
    if name not in BACKENDS:
        raise ParameterError(f"backend must be one of {BACKENDS}, got {name!r}")
    if name == "numpy":
        return None
    if name == "faiss":
        return optional_import("faiss", extra="search")
    try:
        import faiss  # noqa: PLC0415  (optional, faster: see benchmarks/bench_search.py)
    except ImportError:
        return None
    return faiss


def smallest_upto(d: np.ndarray, count: int) -> np.ndarray:
    """Return the positions of the ``count`` smallest entries of ``d``, ties included.

    Every entry of ``d`` (small non-negative ints) at most the smallest threshold that
    ``count`` entries reach, in position order. Faster than a partition of all of
    ``d``: a generous threshold estimated on a sample, one pass to gather the entries
    under it, and the exact cut among those few.
    """
    if count >= d.size:
        return np.arange(d.size)
    sample = d[::max(1, d.size // 4096)]
    q = min(sample.size - 1, int(4 * count / d.size * sample.size) + 1)
    t = int(np.partition(sample, q)[q])
    while True:
        candidates = np.flatnonzero(d <= t)
        if candidates.size >= count:
            break
        t += max(1, t // 4)
    near = d[candidates]
    cut = np.partition(near, count - 1)[count - 1]
    return candidates[near <= cut]


class CodeIndex:
    """Codes of windows of documents, searched exactly (see the module docstring).

    Parameters
    ----------
    codes : numpy.ndarray [shape=(n, words), uint64]
        One code per window.
    window_segment, window_start : numpy.ndarray [shape=(n,), int]
        The document (position in ``segments``) and first frame of each window;
        windows of a document are consecutive and in frame order.
    segments : Segments
        The documents.
    rule : WindowRule
        How windows were cut.
    backend : {"auto", "numpy", "faiss"}
        ``"auto"``: faiss when installed, else numpy (identical results).
    threads : int
        OpenMP threads of a faiss search (set for the call, in the calling thread, and
        restored after). One by default, the policy of the spectral kernels
        (:mod:`zounds_xr.spectral.fft_backend`): callers run searches side by side (the
        explorer's server threads), and on shared cores more threads are slower (a
        query over 10^6 windows: see benchmarks/RESULTS.md, issue 25). The numpy
        backend always uses one.

    Raises
    ------
    ParameterError
        For an unknown ``backend`` or ``threads`` that is not a positive integer.
    ImportError
        For ``backend="faiss"`` without faiss installed (with the install hint).
    """

    def __init__(self, codes, window_segment, window_start, segments: Segments,
                 rule: WindowRule, backend: str = "auto", threads: int = 1):
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) \
                or threads < 1:
            raise ParameterError(f"threads must be a positive integer, got {threads!r}")
        self.threads = int(threads)
        self.codes = np.ascontiguousarray(codes, dtype=np.uint64)
        self.window_segment = np.asarray(window_segment, dtype=np.int64)
        self.window_start = np.asarray(window_start, dtype=np.int64)
        self.segments = segments
        self.rule = rule
        self._faiss = _backend(backend)
        self._engine: Any = None  # faiss.IndexBinaryFlat or WordMajor, made on first use
        self._ids: dict[str, int] | None = None  # id -> position, made on first use

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @property
    def bits(self) -> int:
        """Bits per code."""
        return int(self.codes.shape[1] * 64)

    @property
    def backend(self) -> str:
        """The search's engine: ``"numpy"`` or ``"faiss"``."""
        return "numpy" if self._faiss is None else "faiss"

    def position(self, doc_id: str) -> int | None:
        """Return the document's position in ``segments``, or ``None``."""
        if self._ids is None:
            # a dict: 10^5 ids in ~10 ms, where an index of pandas strings took 150
            self._ids = {str(d): i for i, d in enumerate(self.segments.ids)}
        return self._ids.get(str(doc_id))

    # ------------------------------------------------------------------ raw search
    def _rows_nearest(self, queries: np.ndarray, count: int):
        """Find a superset of every query row's ``count`` nearest windows.

        Returns flat ``(row, window, distance)`` arrays, and whether any row was cut
        short.
        """
        rows, wins, dists = [], [], []
        if self._faiss is not None:
            if self._engine is None:
                self._engine = self._faiss.IndexBinaryFlat(self.bits)
                self._engine.add(self.codes.view(np.uint8))
            n = min(count, len(self))
            previous = self._faiss.omp_get_max_threads()
            self._faiss.omp_set_num_threads(self.threads)
            try:
                d, w = self._engine.search(np.ascontiguousarray(queries).view(np.uint8), n)
            finally:
                self._faiss.omp_set_num_threads(previous)
            keep = w >= 0
            r = np.broadcast_to(np.arange(len(queries))[:, None], w.shape)
            return r[keep], w[keep].astype(np.int64), d[keep].astype(np.int64), n < len(self)
        if self._engine is None:
            self._engine = WordMajor(self.codes)
        out = np.empty(len(self), dtype=np.uint16)
        for i, q in enumerate(queries):
            d = self._engine.distances(q, out)
            w = smallest_upto(d, count)
            rows.append(np.full(w.size, i))
            wins.append(w)
            dists.append(d[w].astype(np.int64))
        return (np.concatenate(rows), np.concatenate(wins), np.concatenate(dists),
                count < len(self))

    # ------------------------------------------------------------------ neighbours
    def search(self, queries: np.ndarray, starts: np.ndarray, k: int = 10, *,
               doc_id: str | None = None, span: tuple[int, int] | None = None,
               exclude: Exclude = "selection") -> list[Neighbour]:
        """Find the ``k`` nearest candidates to a query (see the module docstring).

        Parameters
        ----------
        queries : numpy.ndarray [shape=(m, words), uint64]
            Codes of the query's sub-windows.
        starts : numpy.ndarray [shape=(m,), int]
            Their first frames (in the query document), ascending.
        k : int > 0
            How many results at most.
        doc_id : str, optional
            The query's document, when it is indexed.
        span : (int, int), optional
            Frames ``[first, stop)`` of that document the query covers: what
            ``exclude="selection"`` leaves out, and what ranks first among equals.
        exclude : {"selection", "document", None}
            Leave out the candidates of the query's document overlapping ``span``, the
            query's whole document, or nothing (then the selection finds itself).

        Returns
        -------
        list of Neighbour
            Nearest first.
        """
        if exclude not in ("selection", "document", None):
            raise ParameterError(f"exclude must be 'selection', 'document' or None, got "
                                 f"{exclude!r}")
        queries = np.ascontiguousarray(queries, dtype=np.uint64).reshape(len(starts), -1)
        if queries.shape[1] != self.codes.shape[1]:
            raise ParameterError(f"query codes of {queries.shape[1] * 64} bits, the index "
                                 f"has {self.bits}")
        if len(self) == 0 or len(queries) == 0:
            return []
        starts = np.asarray(starts, dtype=np.int64)
        rel = starts - starts[0]
        length = int(rel[-1]) + self.rule.window  # frames a candidate stretch covers
        own = self.position(doc_id) if doc_id is not None else None
        first, stop = span if span is not None else (int(starts[0]), int(starts[0]) + length)
        count = max(4 * k, 32)
        while True:
            row, win, dist, cut = self._rows_nearest(queries, count)
            seg = self.window_segment[win]
            offset = self.window_start[win] - rel[row]
            # nearest first; at equal distances the query's own stretch, then index order
            own_stretch = (seg == own) & (offset < stop) & (offset + length > first)
            order = np.lexsort((win, row, ~own_stretch, dist))
            found = self._candidates(seg[order], offset[order], dist[order], length, own,
                                     first, stop, exclude, k)
            if len(found) >= k or not cut:
                break
            count *= 4
        return [self._neighbour(s, o, d, length) for s, o, d in found[:k]]

    def _candidates(self, seg, offset, dist, length, own, first, stop, exclude, k):
        """Walk (segment, offset) pairs nearest first, keeping candidates.

        Keep the first of each candidate that is not excluded and overlaps no kept
        candidate of its document.
        """
        kept: list[tuple[int, int, int]] = []
        taken: dict[int, list[int]] = {}
        for s, o, d in zip(seg.tolist(), offset.tolist(), dist.tolist(), strict=True):
            if s == own and (exclude == "document" or (
                    exclude == "selection" and o < stop and o + length > first)):
                continue
            others = taken.setdefault(s, [])
            if any(abs(o - p) < length for p in others):
                continue
            others.append(o)
            kept.append((s, o, d))
            if len(kept) >= k:
                break
        return kept

    def _neighbour(self, s: int, o: int, d: int, length: int) -> Neighbour:
        times = self.segments.times(s)
        lo = max(o, 0)
        hi = max(lo + 1, min(o + length, times.frames))
        t0, t1 = times.seconds(lo, hi)
        return Neighbour(str(self.segments.ids[s]), t0, t1, int(d))

    def query(self, read, times: FrameTimes, t0: float, t1: float, hasher, k: int = 10, *,
              doc_id: str | None = None, exclude: Exclude = "selection",
              max_windows: int | None = 64) -> tuple[list[Neighbour], Selection]:
        """Search with ``[t0, t1)`` seconds of a document.

        The selection is cut by :meth:`WindowRule.selection`, its frames read with
        ``read(first, stop)`` (the document's frames ``first .. stop - 1``, time
        first), hashed by ``hasher`` exactly as the index's windows were (all-zero
        codes of silence left out), and searched with :meth:`search`. Returns the
        results and the :class:`Selection` used.
        """
        sel = self.rule.selection(times, t0, t1, max_windows)
        rows = read(sel.first, sel.stop)
        codes = hasher.codes(rows, sel.starts - sel.first, self.rule.window)
        useful = hasher.informative(codes)
        found = self.search(codes[useful], sel.starts[useful], k, doc_id=doc_id,
                            span=(sel.first, sel.stop), exclude=exclude)
        return found, sel
