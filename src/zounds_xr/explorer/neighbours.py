"""Neighbour search over windows of a stored feature, and the 2-D map of documents.

**Windows.** Every document's frames of a feature are cut into windows of ``window``
frames at a step of ``hop`` frames (a document shorter than one window is one window).
A window is summarised, for each of its (at most ``MAX_BANDS``, pooled) bands, by the
means over the first and the second half of its frames and the standard deviation over
all of them, on a log scale for spectra (complex or
non-negative features), so that a selection of any length can be compared with any
window. Summaries are standardised per dimension over the corpus and hashed with
:class:`zounds_xr.learn.SimHash` (random hyperplanes through the corpus mean); a query
is the summary of the selected frames, hashed the same way, and the nearest windows are
those at the smallest Hamming distance (a popcount of the XOR of packed uint64 words,
as :func:`zounds_xr.learn.hamming_distance` computes it, here word by word over a
word-major copy of the codes: 10^5 codes of 256 bits in about 0.5 ms instead of 4).

**Map.** Each document is summarised by the mean of its window summaries; the first two
principal components of the standardised summaries place it on the map.

**Persistence** (no pickle): ``zounds-xr index STORE --feature NAME`` writes a Zarr group
``<root>/indexes/<feature>/`` of plain arrays (``codes``, ``window_doc``,
``window_start``, ``window_frames``, ``ids``, ``doc_start``, ``doc_step``,
``doc_extent``, ``map``, the hasher's ``mean`` and ``planes``, the standardisation
``center``/``scale``) with the parameters in its attributes. The store's reader never
looks under ``indexes/``.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr
import zarr

from .._optional import optional_import
from .._validation import smallest_k
from .._version import __version__
from ..errors import ParameterError, StoreError
from ..timeseries.index import TimeIndex
from .catalog import position_in

__all__ = [
    "FORMAT",
    "MAX_BANDS",
    "NeighbourIndex",
    "build_index",
    "index_url",
    "load_index",
]

#: bands a window summary keeps at most (wider features are pooled into this many)
MAX_BANDS = 64
FORMAT = "zounds_xr.explorer.NeighbourIndex"
#: 2: window summaries are (first-half mean, second-half mean, std) per band
FORMAT_VERSION = 2
#: frames read from a stored array at once while building
BLOCK_ROWS = 1 << 16


def index_url(root: str, feature: str) -> str:
    """Where the index of ``feature`` lives: ``<root>/indexes/<feature>``."""
    return f"{str(root).rstrip('/')}/indexes/{feature}"


def open_group(url: str, mode: Literal["r", "w"], storage_options: dict | None = None
               ) -> zarr.Group:
    """``zarr.open_group`` with fsspec options for URLs only (zarr refuses them for paths)."""
    if storage_options and "://" in str(url):
        return zarr.open_group(url, mode=mode, storage_options=storage_options)
    return zarr.open_group(url, mode=mode)


def _pool_edges(n: int) -> np.ndarray:
    return np.linspace(0, n, min(n, MAX_BANDS) + 1).astype(np.intp)


def prepare_rows(values: np.ndarray, log: bool, edges: np.ndarray) -> np.ndarray:
    """Frames ``(n, ...)`` -> ``(n, bands)`` float64: channels/axes flattened, |x| and log
    for spectra, contiguous bands averaged down to ``len(edges) - 1``."""
    rows = np.asarray(values).reshape(values.shape[0], -1)
    if np.iscomplexobj(rows):
        rows = np.abs(rows)
    rows = rows.astype(np.float64, copy=False)
    if log:
        rows = np.log(np.abs(rows) + 1e-6)
    if rows.shape[1] != len(edges) - 1:
        counts = np.diff(edges).astype(np.float64)
        rows = np.add.reduceat(rows, edges[:-1], axis=1) / counts
    return rows


def window_starts(frames: np.ndarray, window: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Per document of ``frames`` frames: ``(doc number, start frame)`` of every window."""
    counts = np.where(frames >= window, (frames - window) // hop + 1, (frames > 0).astype(int))
    doc = np.repeat(np.arange(frames.size), counts)
    first = np.cumsum(counts) - counts
    start = (np.arange(doc.size) - np.repeat(first, counts)) * hop
    return doc, start


def summaries(rows: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Summaries of ``rows[s:s+n]`` for each (s, n): ``(k, 3 * bands)``.

    Per band: the mean over the first half of the span, the mean over its second half
    (so that a rising and a falling sweep over the same bands differ) and the standard
    deviation over the whole span.
    """
    c1 = np.zeros((rows.shape[0] + 1, rows.shape[1]))
    c2 = np.zeros_like(c1)
    np.cumsum(rows, axis=0, out=c1[1:])
    np.cumsum(rows * rows, axis=0, out=c2[1:])
    ends = starts + lengths
    half = np.maximum(lengths // 2, 1)
    n, h = lengths[:, None].astype(np.float64), half[:, None].astype(np.float64)
    first = (c1[starts + half] - c1[starts]) / h
    second = (c1[ends] - c1[ends - half]) / h
    mean = (c1[ends] - c1[starts]) / n
    var = (c2[ends] - c2[starts]) / n - mean * mean
    return np.concatenate([first, second, np.sqrt(np.maximum(var, 0.0))], axis=1)


def _is_spectrum(sample: xr.DataArray) -> bool:
    if np.iscomplexobj(np.empty(0, sample.dtype)):
        return True
    return "frequency" in sample.dims


@dataclass
class NeighbourResult:
    id: str
    start: float
    end: float
    distance: int

    def to_json(self) -> dict:
        return {"id": self.id, "start": round(self.start, 6), "end": round(self.end, 6),
                "distance": self.distance}


class NeighbourIndex:
    """Hashed windows of one feature over a corpus (see the module docstring)."""

    def __init__(self, arrays: dict, attrs: dict):
        self.attrs = attrs
        self.feature = attrs["feature"]
        self.codes = np.ascontiguousarray(arrays["codes"], dtype=np.uint64)
        # word-major: each word's popcount is one contiguous pass (see distances)
        self._words = np.ascontiguousarray(self.codes.T)
        self.window_doc = np.asarray(arrays["window_doc"], dtype=np.int64)
        self.window_start = np.asarray(arrays["window_start"], dtype=np.int64)
        self.window_frames = np.asarray(arrays["window_frames"], dtype=np.int64)
        self.ids = np.asarray(arrays["ids"]).astype(object)
        self.doc_start = np.asarray(arrays["doc_start"], dtype=np.float64)
        self.doc_step = np.asarray(arrays["doc_step"], dtype=np.float64)
        self.doc_extent = np.asarray(arrays["doc_extent"], dtype=np.float64)
        self.map = np.asarray(arrays["map"], dtype=np.float32)
        self.center = np.asarray(arrays["center"], dtype=np.float64)
        self.scale = np.asarray(arrays["scale"], dtype=np.float64)
        self.edges = np.asarray(arrays["edges"], dtype=np.intp)
        self._hash_arrays = {"mean": np.asarray(arrays["mean"], dtype=np.float64),
                             "planes": np.asarray(arrays["planes"], dtype=np.float64)}
        self._hasher = None
        self._positions = pd.Index(self.ids)

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @property
    def hasher(self):
        """The fitted :class:`zounds_xr.learn.SimHash` (imported on first use)."""
        if self._hasher is None:
            learn = optional_import("zounds_xr.learn", extra="learn")
            self._hasher = learn.SimHash.from_state(
                {"bits": self.attrs["bits"], "packbits": True, "seed": self.attrs["seed"]},
                self._hash_arrays)
        return self._hasher

    def hash(self, summary: np.ndarray) -> np.ndarray:
        """Codes ``(k, words)`` of summaries ``(k, dims)`` (standardised here)."""
        z = (np.atleast_2d(summary) - self.center) / self.scale
        codes = self.hasher(xr.DataArray(z, dims=("example", "summary")))
        return np.asarray(codes.values, dtype=np.uint64)

    def summary_of(self, frames: np.ndarray) -> np.ndarray:
        """The summary of a selection's frames ``(n, ...)`` (``n >= 1``)."""
        rows = prepare_rows(frames, self.attrs["log"], self.edges)
        return summaries(rows, np.array([0]), np.array([rows.shape[0]]))

    def search(self, frames: np.ndarray, k: int = 10, exclude: tuple | None = None
               ) -> list[NeighbourResult]:
        """The ``k`` windows nearest to the selection whose frames are ``frames``.

        ``exclude = (doc_id, t0, t1)`` leaves out the windows of that document that
        overlap ``[t0, t1)`` seconds (the selection itself). Ties break by position.
        """
        d = self.distances(self.hash(self.summary_of(frames))[0])
        if exclude is not None:
            pos = self.position(exclude[0])
            if pos is not None:
                mine = self._windows_of(pos)
                t0 = self.doc_start[pos] + self.window_start[mine] * self.doc_step[pos]
                t1 = t0 + (self.window_frames[mine] - 1) * self.doc_step[pos] \
                    + self.doc_extent[pos]
                overlap = (t0 < exclude[2]) & (t1 > exclude[1])
                d = d.copy()
                d[mine[overlap]] = np.iinfo(d.dtype).max
        order = smallest_k(d, k)
        out = []
        limit = np.iinfo(d.dtype).max
        for w in order:
            if d[w] == limit:
                break
            doc = self.window_doc[w]
            t0 = self.doc_start[doc] + self.window_start[w] * self.doc_step[doc]
            t1 = t0 + (self.window_frames[w] - 1) * self.doc_step[doc] + self.doc_extent[doc]
            out.append(NeighbourResult(str(self.ids[doc]), float(t0), float(t1), int(d[w])))
        return out

    def distances(self, code: np.ndarray) -> np.ndarray:
        """Hamming distance (int32) from one packed ``code`` to every window's code."""
        d = np.zeros(self._words.shape[1], dtype=np.int32)
        for word, q in zip(self._words, np.asarray(code, dtype=np.uint64), strict=True):
            d += np.bitwise_count(np.bitwise_xor(word, q))
        return d

    def _windows_of(self, pos: int) -> np.ndarray:
        # windows are stored document by document, in document order
        lo = np.searchsorted(self.window_doc, pos, side="left")
        hi = np.searchsorted(self.window_doc, pos, side="right")
        return np.arange(lo, hi)

    def position(self, doc_id: str) -> int | None:
        return position_in(self._positions, doc_id)

    # persistence -------------------------------------------------------------------
    def save(self, url: str, storage_options: dict | None = None) -> None:
        """Write the index as a Zarr group of plain arrays at ``url`` (replacing it)."""
        group = open_group(url, "w", storage_options)
        arrays = {"codes": self.codes, "window_doc": self.window_doc.astype(np.int32),
                  "window_start": self.window_start.astype(np.int32),
                  "window_frames": self.window_frames.astype(np.int32),
                  "doc_start": self.doc_start, "doc_step": self.doc_step,
                  "doc_extent": self.doc_extent, "map": self.map, "center": self.center,
                  "scale": self.scale, "edges": self.edges.astype(np.int64),
                  **self._hash_arrays}
        for name, values in arrays.items():
            values = np.ascontiguousarray(values)
            chunks = tuple(max(1, int(n)) for n in values.shape)  # one chunk: small arrays
            arr = group.create_array(name, shape=values.shape, dtype=values.dtype,
                                     chunks=chunks)
            if values.size:
                arr[...] = values
        ids = np.asarray(self.ids, dtype=object)
        arr = group.create_array("ids", shape=ids.shape, dtype=str,
                                 chunks=(max(1, ids.size),))
        if ids.size:
            arr[...] = ids
        # written last: a reader that sees the attrs sees every array
        group.attrs.update({"zounds_xr:index": self.attrs})

    @classmethod
    def load(cls, url: str, storage_options: dict | None = None) -> NeighbourIndex:
        try:
            group = open_group(url, "r", storage_options)
        except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
            raise FileNotFoundError(f"no neighbour index at {url}") from exc
        attrs = group.attrs.get("zounds_xr:index")
        if not isinstance(attrs, dict) or attrs.get("format") != FORMAT:
            raise StoreError(f"{url} does not hold a complete neighbour index; rebuild it "
                             f"with `zounds-xr index STORE --feature NAME`")
        if attrs.get("format_version") != FORMAT_VERSION:
            raise StoreError(f"the neighbour index at {url} has format version "
                             f"{attrs.get('format_version')}, this zounds_xr reads "
                             f"{FORMAT_VERSION}; rebuild it with `zounds-xr index`")
        names = ["codes", "window_doc", "window_start", "window_frames", "doc_start",
                 "doc_step", "doc_extent", "map", "center", "scale", "edges", "mean",
                 "planes", "ids"]
        arrays = {}
        for name in names:
            arr = group[name]
            if not isinstance(arr, zarr.Array):
                raise StoreError(f"{url}/{name} is not an array; rebuild the index")
            arrays[name] = arr[...]
        return cls(arrays, dict(attrs))


def load_index(root: str, feature: str, storage_options: dict | None = None
               ) -> NeighbourIndex:
    """The persisted index of ``feature`` in the store at ``root``."""
    return NeighbourIndex.load(index_url(root, feature), storage_options)


def _frame_times(cat: pd.DataFrame, feature: str) -> tuple[np.ndarray, ...]:
    start = np.zeros(len(cat))
    step = np.zeros(len(cat))
    extent = np.zeros(len(cat))
    cache: dict[str, tuple] = {}
    for i, text in enumerate(cat[f"{feature}.index"].astype(str)):
        params = cache.get(text)
        if params is None:
            index = TimeIndex.from_attrs(json.loads(text))
            params = (float(index.start), float(index.frequency), float(index.duration))
            cache[text] = params
        start[i], step[i], extent[i] = params
    return start, step, extent


def _window_frames(step: float, window, hop) -> tuple[int, int]:
    if window is None:
        window = 0.5
    if hop is None:
        hop = window / 2
    for value, what in ((window, "window"), (hop, "hop")):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ParameterError(f"{what} must be a positive number of seconds, got {value!r}")
    return max(1, round(window / step)), max(1, round(hop / step))


def build_index(store, feature: str, *, window: float | None = None, hop: float | None = None,
                bits: int = 256, seed: int = 0, progress=None) -> NeighbourIndex:
    """Hash every window of ``feature`` in ``store`` (see the module docstring).

    Parameters
    ----------
    store : object
        ``zx.open_store(...)`` (``catalog()``, ``array(path)``, ``store[doc_id]``).
    feature : str
        A stored feature with a ``time`` axis.
    window, hop : float, optional
        Window length and step in seconds (rounded to whole frames of the feature):
        default 0.5 s and half the window.
    bits : int
        Bits per code (SimHash hyperplanes), a positive multiple of 64 is best.
    seed : int
        Seed of the hyperplanes.
    progress : callable, optional
        ``progress(done_frames, total_frames)`` while reading.

    Returns
    -------
    NeighbourIndex
        Not yet persisted: call ``.save(index_url(root, feature))``.

    Raises
    ------
    ParameterError
        For an unknown feature, a feature without frames, or bad window/hop/bits.
    """
    learn = optional_import("zounds_xr.learn", extra="learn")
    started = time.time()
    if feature not in list(store.features):
        raise ParameterError(f"the store has no feature {feature!r}; it has "
                             f"{', '.join(store.features) or 'none'}")
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or bits < 1:
        raise ParameterError(f"bits must be a positive integer, got {bits!r}")
    cat = store.catalog()
    cat = cat[cat[f"{feature}.frames"].fillna(0).astype(np.int64) > 0]
    if not len(cat):
        raise ParameterError(f"no document has frames of {feature!r}")
    ids = cat.index.astype(str).to_numpy()
    frames = cat[f"{feature}.frames"].astype(np.int64).to_numpy()
    doc_start, doc_step, doc_extent = _frame_times(cat, feature)
    sample = store[ids[0]][feature]
    if not set(sample.dims) - {"time", "channel"}:
        index = sample.xindexes.get("time")
        if isinstance(index, TimeIndex) and index.frequency == index.duration:
            raise ParameterError(f"{feature!r} is audio; index a time-frequency feature "
                                 f"(a spectrogram, mel bands, MFCCs...)")
    log = _is_spectrum(sample)
    w_frames, h_frames = _window_frames(float(doc_step[0]), window, hop)
    width = int(np.prod([s for d, s in sample.sizes.items() if d != "time"], dtype=np.int64))
    edges = _pool_edges(width)

    win_doc, win_start = window_starts(frames, w_frames, h_frames)
    win_len = np.minimum(frames[win_doc] - win_start, w_frames)
    n_win = win_doc.size
    dims = 3 * (len(edges) - 1)
    window_summary = np.empty((n_win, dims))
    doc_summary = np.zeros((len(ids), dims))
    # read each stored array in blocks of whole documents, in offset order
    arrays = cat[f"{feature}.array"].astype(str).to_numpy()
    offsets = cat[f"{feature}.offset"].astype(np.int64).to_numpy()
    win_first = np.searchsorted(win_doc, np.arange(len(ids)), side="left")
    win_last = np.searchsorted(win_doc, np.arange(len(ids)), side="right")
    total, done = int(frames.sum()), 0
    for path in pd.unique(arrays):
        docs = np.flatnonzero(arrays == path)
        docs = docs[np.argsort(offsets[docs], kind="stable")]
        arr = store.array(path)
        i = 0
        while i < docs.size:
            j = i
            lo = offsets[docs[i]]
            while j < docs.size and (offsets[docs[j]] + frames[docs[j]] - lo <= BLOCK_ROWS
                                     or j == i):
                j += 1
            block_docs = docs[i:j]
            hi = int((offsets[block_docs] + frames[block_docs]).max())
            rows = prepare_rows(np.asarray(arr[lo:hi]), log, edges)
            # every window of the block's documents at once (one cumulative sum)
            ws = np.concatenate([np.arange(win_first[d], win_last[d]) for d in block_docs])
            base = offsets[win_doc[ws]] - lo
            window_summary[ws] = summaries(rows, base + win_start[ws], win_len[ws])
            counts = win_last[block_docs] - win_first[block_docs]
            sums = np.add.reduceat(window_summary[ws], np.cumsum(counts) - counts, axis=0)
            doc_summary[block_docs] = sums / counts[:, None]
            done += int(frames[block_docs].sum())
            if progress is not None:
                progress(done, total)
            i = j

    center = window_summary.mean(axis=0)
    scale = window_summary.std(axis=0)
    scale[~(scale > 1e-12)] = 1.0
    hasher = learn.SimHash(bits=int(bits), packbits=True, seed=int(seed))
    z = (window_summary - center) / scale
    hasher.fit(xr.DataArray(z, dims=("example", "summary")))
    codes = np.asarray(hasher(xr.DataArray(z, dims=("example", "summary"))).values,
                       dtype=np.uint64)
    # the map: first two principal components of the standardised document summaries
    zd = (doc_summary - center) / scale
    zd = zd - zd.mean(axis=0)
    # eigenvectors of the (dims x dims) covariance: cheaper than an SVD of n x dims
    _, vectors = np.linalg.eigh(zd.T @ zd)
    xy = zd @ vectors[:, ::-1][:, :2]
    if xy.shape[1] < 2:
        xy = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))
    hash_arrays = hasher.get_arrays()
    attrs = {"format": FORMAT, "format_version": FORMAT_VERSION, "feature": feature,
             "bits": int(bits), "seed": int(seed), "log": bool(log), "window_frames": int(w_frames),
             "hop_frames": int(h_frames), "window_seconds": float(w_frames * doc_step[0]),
             "hop_seconds": float(h_frames * doc_step[0]), "documents": len(ids),
             "windows": int(n_win), "versions": sorted(set(
                 cat[f"{feature}.version"].astype(str))) if f"{feature}.version" in cat
             else [], "zounds_xr": __version__, "built_seconds": round(time.time() - started, 3)}
    return NeighbourIndex({"codes": codes, "window_doc": win_doc, "window_start": win_start,
                           "window_frames": win_len, "ids": ids, "doc_start": doc_start,
                           "doc_step": doc_step, "doc_extent": doc_extent,
                           "map": xy.astype(np.float32), "center": center, "scale": scale,
                           "edges": edges, "mean": hash_arrays["mean"],
                           "planes": hash_arrays["planes"]}, attrs)
