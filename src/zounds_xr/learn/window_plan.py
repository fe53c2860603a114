"""Window geometry: every window of a stored feature over a corpus, from the catalog alone.

The windows of :class:`~zounds_xr.learn.FeatureWindows` and
:class:`~zounds_xr.learn.RandomWindows` are numbered document by document from the
catalog's ``f.frames``, ``f.array``, ``f.offset`` and ``f.index`` columns
(:class:`WindowPlan`); window ``i`` is located by a binary search in the cumulative
window counts, never by a per-window table.

The window rule (exact, in rational seconds)
--------------------------------------------
A document's stored feature has ``n`` frames on an exact time axis: frame ``i`` covers
``[t0 + i*f, t0 + i*f + d)`` (``f`` the step, ``d`` the frame's extent, both from the
catalog's ``f.index``). Windows of duration ``W`` at step ``h`` start at
``s_k = t0 + k*h``, ``k = 0, 1, ...``. Window ``k`` holds ``N`` consecutive frames, the
number of frame extents that fit in ``W`` (rounded to the nearest):
``N = max(1, round((W - d) / f) + 1)`` (``round(W / f)`` when frames do not overlap,
``d = f``), starting with frame ``i_k = ceil(k*h/f - 1/2)``, the frame whose start is
nearest ``s_k`` (ties to the earlier one). These are the frames
``sel(time=TimeSlice(W, s_k))`` returns, less those that only reach into the window by a
part of their extent: the first starts within half a step of ``s_k`` and the last starts
before ``s_k + W`` (whenever ``d > f/2``, which holds for every sliding window). So
every window has the same ``N`` frames, whatever its alignment with the frame grid, and
they span about ``W``. A window is used when it lies inside the document
(``s_k + W <= t0 + (n-1)*f + d``) and its ``N`` frames are all stored
(``i_k + N <= n``): a 2 s clip has four 0.5 s windows of a 10 ms / 25 ms mel.

``window`` may also be an ``int``: a number of frames (``hop`` then too), windows
``[k*hop, k*hop + window)``. ``window=None`` makes one item of each whole document
(variable length: use :func:`collate`, which pads, and :class:`BucketBatchSampler`).
"""
from __future__ import annotations

import json
import math
import numbers
import os
from fractions import Fraction

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..documents import Document, open_store
from ..core.errors import DocumentNotFoundError, ParameterError, StoreError
from ..timeseries.durations import to_fraction

__all__ = ["WindowPlan", "catalog_version", "open_windows_store", "read_catalog", "window_counts"]

_INT64_SAFE = 2**62


def open_windows_store(document, storage_options=None):
    """Open a store object with ``catalog()`` and ``array(path)`` from what the user gave."""
    if isinstance(document, (str, os.PathLike)):
        return open_store(os.fspath(document), storage_options=storage_options)
    if isinstance(document, type) and issubclass(document, Document):
        return document._store_for(None)
    if hasattr(document, "catalog") and hasattr(document, "array"):
        return document
    raise ParameterError(
        f"document must be a Document subclass bound to a store, a store opened with "
        f"zx.open_store, or a store URL; got {document!r}")


def catalog_version(store) -> int | None:
    """Return the newest catalog version of ``store`` (a loader records it in its state).

    The one place that knows how: ``store.version``, the newest commit of the store's
    log, where the store has one (``None`` otherwise: then a resume checks the number
    of windows only).
    """
    version = getattr(store, "version", None)
    return None if version is None or callable(version) else int(version)


def read_catalog(store, version: int | None) -> tuple[pd.DataFrame, int | None]:
    """Read the catalog as of ``version`` (default the newest); return it and its version."""
    if version is None:
        version = catalog_version(store)
        if version is None:
            return store.catalog(), None
    elif catalog_version(store) is None:
        raise ParameterError(f"version={version!r}: this store has no commit log")
    return store.catalog(version=int(version)), int(version)


def _arrow_strings(values) -> pa.ChunkedArray:
    """Return a string column or index as Arrow (no copy when pandas holds it in Arrow)."""
    array = values.array if hasattr(values, "array") else values
    try:
        if hasattr(array, "__arrow_array__"):
            found = pa.array(array)  # the Arrow data pandas holds: no conversion
        else:
            found = pa.array(np.asarray(array, dtype=object), type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed objects: as strings
        found = pa.array(np.asarray(array, dtype=object).astype(str))
    if isinstance(found, pa.Array):
        found = pa.chunked_array([found])
    return found if found.type == pa.string() else found.cast(pa.string())


def _time_params(index_json: pd.Series) -> tuple[np.ndarray, list[dict]]:
    """Group documents by their time axis (all but its size): codes and parameters.

    Every document's ``f.index`` differs only by its size in a corpus of one rate, so the
    size is cut out with one vectorized string operation and only the distinct
    definitions are parsed (a handful, however many documents).
    """
    # the distinct definitions first (one hash pass, in C++), then the size cut out of
    # those few with a regex, and definitions that differed only by size merged
    whole = pc.dictionary_encode(_arrow_strings(index_json)).combine_chunks()
    cut = pc.replace_substring_regex(whole.dictionary.cast(pa.string()),
                                     r'"size"\s*:\s*-?\d+\s*,?\s*', "")
    merged = pc.dictionary_encode(cut)
    remap = merged.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    codes = remap[whole.indices.to_numpy(zero_copy_only=False).astype(np.int64)]
    uniques = merged.dictionary.to_pylist()
    params = []
    for definition in uniques:
        try:
            attrs = json.loads(definition.replace(", }", "}").replace(",}", "}"))
            params.append({k: Fraction(attrs[k]) for k in ("start", "frequency", "duration")})
        except (ValueError, KeyError, TypeError, ZeroDivisionError) as exc:
            raise StoreError(f"the catalog holds a time index that cannot be read: "
                             f"{definition!r} ({exc})") from exc
    return codes, params


def _int_array(values, big: int):
    # exact integer arithmetic: int64 when it cannot overflow, Python ints otherwise
    return np.asarray(values, dtype=np.int64 if big < _INT64_SAFE else object)


def window_counts(frames, start, frequency, duration, window, hop=None):
    """How many windows each document holds, and the window's length in frames.

    The vectorized core of :class:`FeatureWindows` (see the module's window rule).

    Parameters
    ----------
    frames : array of int, shape (n_docs,)
        Stored frames per document, all on one time axis (same ``start``, ``frequency``
        and ``duration``).
    start, frequency, duration : Fraction
        The time axis, exact seconds (``frequency`` and ``duration`` > 0).
    window : Fraction, int or None
        Window duration in seconds (> 0), a number of frames (``int``), or ``None`` for
        whole documents.
    hop : Fraction or int, optional
        Step between windows (same kind as ``window``); defaults to ``window``.

    Returns
    -------
    counts : ndarray of int64, shape (n_docs,)
    length : int or None
        Frames per window (``None`` for whole documents).
    first : callable
        ``first(k)`` maps window numbers (array) to their first frame (array).
    """
    frames = np.asarray(frames, dtype=np.int64)
    if window is None:
        return (frames > 0).astype(np.int64), None, _FirstFrame(0, 1, 1)
    if _is_frames(window):
        n_win, n_hop = int(window), int(window if hop is None else hop)
        counts = np.where(frames >= n_win, (frames - n_win) // n_hop + 1, 0)
        return counts.astype(np.int64), n_win, _FirstFrame(0, n_hop, 1)
    w = Fraction(window)
    h = w if hop is None else Fraction(hop)
    f, d = Fraction(frequency), Fraction(duration)
    length = max(1, math.floor((w - d) / f + Fraction(1, 2)) + 1)
    den = math.lcm(w.denominator, h.denominator, f.denominator, d.denominator)
    W, H, F, D = (int(v * den) for v in (w, h, f, d))
    big = 4 * (int(frames.max(initial=0)) + 2) * max(W, H, F, D)
    n = _int_array(frames, big)
    # k1: the window's frames are stored, i_k + length <= n; i_k = ceil((2kH - F) / 2F)
    k1 = (2 * F * (n - length) + F) // (2 * H)
    # k2: the window ends inside the document, kH + W <= (n - 1)F + D
    k2 = ((n - 1) * F + D - W) // H
    counts = np.maximum(np.minimum(k1, k2) + 1, 0)
    counts[n == 0] = 0
    # i_k = ceil((2kH - F) / 2F) = -floor((F - 2kH) / 2F)
    return counts.astype(np.int64), length, _FirstFrame(-F, 2 * H, 2 * F, big)


class _FirstFrame:
    """Window number ``k`` -> its first frame, ``ceil((a + k*b) / c)``, exactly.

    A picklable object, not a closure: datasets travel to spawned workers.
    """

    def __init__(self, a: int, b: int, c: int, big: int = 0):
        self.a, self.b, self.c, self.big = a, b, c, big

    def __call__(self, k) -> np.ndarray:
        k = _int_array(k, self.big + self.b * (int(np.max(k, initial=0)) + 1))
        return (-((-self.a - k * self.b) // self.c)).astype(np.int64)


def _is_frames(value) -> bool:
    # np.timedelta64 is a numpy integer: it is a duration here, not a number of frames
    return (isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.timedelta64)))


def _duration_or_frames(value, name: str):
    if value is None:
        return None
    if _is_frames(value):
        if value <= 0:
            raise ParameterError(f"{name} must be a positive number of frames, got {value!r}")
        return int(value)
    seconds = to_fraction(value, name=name)
    if seconds <= 0:
        raise ParameterError(f"{name} must be a positive duration, got {value!r}")
    return seconds



def _column(cat: pd.DataFrame, value, name: str) -> pd.Series:
    """Return a per-document Series from a catalog column name or a Series of ids."""
    if isinstance(value, pd.Series):
        if not len(cat.index.intersection(value.index)):
            raise ParameterError(f"the {name} Series shares no document id with the store")
        return value
    if not isinstance(value, str) or value not in cat.columns:
        public = [c for c in cat.columns if "." not in c]
        raise ParameterError(f"{name} {value!r} is not a column of the catalog; its "
                             f"columns: {public}")
    return cat[value]


def _compact(values: np.ndarray):
    """Keep per-document values as numbers (numpy) or else as an Arrow array.

    10^6 ids as Python strings in an object array would take ~80 MB in every worker, in
    Arrow ~35 MB.
    """
    if values.dtype.kind in "biuf":
        return values
    return pa.array(values.astype(object), from_pandas=True)


def _take(values, doc: np.ndarray) -> list:
    if isinstance(values, np.ndarray):
        return values[doc].tolist()
    return values.take(pa.array(doc, pa.int64())).to_pylist()


class WindowPlan:
    """Every window of the selected documents, numbered document by document.

    Built from the catalog alone (no array is opened), with numpy over the documents:
    no Python loop over windows, and one over the distinct time axes only. Windows are
    never materialized: window ``i`` is found from the cumulative window counts by a
    binary search. The state is a few arrays per document (about 30 bytes per document
    plus its id), whatever the number of windows: 10^6 documents hold about 60 MB.

    Attributes
    ----------
    total : int
        Windows in all.
    length : int or None
        Frames per window (``None``: whole documents of varying length).
    arrays : list of str
        The stored arrays that hold the windows (``array_codes`` index into it).
    version : int or None
        The catalog version read (``store.version`` when it was built, or the one
        asked for).
    """

    def __init__(self, store, feature: str, window, hop, ids, label, weights=None,
                 version: int | None = None):
        self.feature = feature
        self.window = _duration_or_frames(window, "window")
        self.hop = _duration_or_frames(hop, "hop")
        if self.window is None and self.hop is not None:
            raise ParameterError("hop needs a window: window=None gives whole documents")
        if self.hop is not None and isinstance(self.window, int) != isinstance(self.hop, int):
            raise ParameterError(
                f"window and hop must both be durations or both numbers of frames, got "
                f"window={window!r}, hop={hop!r}")
        cat, self.version = read_catalog(store, version)
        columns = [f"{feature}.{c}" for c in ("frames", "array", "offset", "index")]
        if columns[0] not in cat.columns:
            stored = sorted({c.rsplit(".", 1)[0] for c in cat.columns
                             if c.endswith(".frames")})
            raise ParameterError(
                f"feature {feature!r} is not stored in this store; stored features: "
                f"{stored}")
        labels = None if label is None else _column(cat, label, "label")
        weight = None if weights is None else _column(cat, weights, "weights")
        if ids is not None:
            ids = list(ids)
            missing = pd.Index(ids).difference(cat.index)
            if len(missing):
                raise DocumentNotFoundError(
                    f"{len(missing)} of the ids are not in the store, e.g. "
                    f"{list(missing[:5])}")
            cat = cat.loc[ids]
            absent = cat.index[cat[columns[0]].isna()]
            if len(absent):
                raise ParameterError(
                    f"feature {feature!r} is not stored for {len(absent)} of the documents, "
                    f"e.g. {list(absent[:5])}")
        else:
            cat = cat[cat[columns[0]].notna()]
        if not len(cat):
            raise ParameterError(f"no document has feature {feature!r} stored")
        self.ids = _arrow_strings(cat.index).combine_chunks()
        frames = cat[columns[0]].to_numpy(dtype=np.int64)
        codes, arrays = pd.factorize(cat[columns[1]].astype(str))
        self.array_codes = codes.astype(np.int32)
        self.arrays = [str(a) for a in arrays]
        self.offsets = cat[columns[2]].to_numpy(dtype=np.int64)
        groups, params = _time_params(cat[columns[3]])
        self.groups = groups.astype(np.int16 if len(params) < 2**15 else np.int32)
        counts = np.zeros(len(cat), dtype=np.int64)
        self.group_start = np.zeros(len(params), dtype=np.float64)  # t0 per time axis
        self.group_step = np.zeros(len(params), dtype=np.float64)   # window step, seconds
        self._first = []
        lengths = set()
        for g, p in enumerate(params):
            rows = groups == g
            n, length, first = window_counts(frames[rows], p["start"], p["frequency"],
                                             p["duration"], self.window, self.hop)
            counts[rows] = n
            self.group_start[g] = float(p["start"])
            step = self.hop if self.hop is not None else self.window
            if isinstance(step, int):
                step = step * p["frequency"]
            self.group_step[g] = float(step) if step is not None else 0.0
            self._first.append(first)
            if n.any():  # a rate without windows does not decide their shape
                lengths.add(length)
        if len(lengths) > 1:
            raise ParameterError(
                f"the documents' time axes differ ({len(params)} rates), so windows of "
                f"{window!r} would have {sorted(lengths)} frames: select documents of one "
                f"rate with ids=")
        self.length = lengths.pop() if lengths else None
        # whole documents (length None) need each one's frames; windows do not
        self.frames = frames if self.window is None else None
        self.cumulative = np.concatenate([[0], np.cumsum(counts)])
        self.total = int(self.cumulative[-1])
        if self.total == 0:
            raise ParameterError(
                f"no window fits: a window of {self._describe(window)} is longer than "
                f"every one of the {len(cat)} documents (the longest has {frames.max()} "
                f"frames of {feature!r})")
        self.labels = None
        if labels is not None:
            labels = labels.reindex(cat.index)
            unlabelled = cat.index[labels.isna().to_numpy() & (counts > 0)]
            if len(unlabelled):
                raise ParameterError(
                    f"{len(unlabelled)} documents have no label, e.g. "
                    f"{list(unlabelled[:5])}: give a label to every document, or leave "
                    f"them out with ids=")
            self.labels = _compact(labels.to_numpy())
        self.weights = None if weight is None else self._weights(
            weight.reindex(cat.index), counts)

    @staticmethod
    def _weights(weight: pd.Series, counts: np.ndarray) -> np.ndarray:
        try:
            values = weight.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"weights must be numbers, got {weight.dtype} "
                                 f"({exc})") from exc
        bad = ~np.isfinite(values) | (values < 0)
        if bad[counts > 0].any():
            first = weight.index[bad & (counts > 0)][:5]
            raise ParameterError(
                f"weights must be finite and >= 0 for every document; {int(bad.sum())} are "
                f"not, e.g. {list(first)}")
        if not (values[counts > 0] > 0).any():
            raise ParameterError("every document's weight is 0: nothing to sample")
        return values

    @staticmethod
    def _describe(window):
        if _is_frames(window):
            return f"{window} frames"
        return f"{float(to_fraction(window, name='window')):g} s"

    # per window -------------------------------------------------------------------
    def locate(self, index):
        """Locate windows ``index``.

        Returns
        -------
        doc, k, first : numpy.ndarray of int64
            Document position, window in the document, first frame in the document.
        """
        index = np.asarray(index, dtype=np.int64)
        doc = np.searchsorted(self.cumulative, index, side="right") - 1
        k = index - self.cumulative[doc]
        group = self.groups[doc]
        if len(self._first) == 1:
            return doc, k, self._first[0](k)
        first = np.empty_like(k)
        for g in np.unique(group):
            rows = group == g
            first[rows] = self._first[g](k[rows])
        return doc, k, first

    def window_start(self, doc, k) -> np.ndarray:
        """Seconds from the document's start to its window ``k``."""
        group = self.groups[doc]
        return self.group_start[group] + k * self.group_step[group]

    def lengths(self, doc) -> np.ndarray:
        """Frames of the windows of documents ``doc``."""
        if self.length is None:
            assert self.frames is not None  # kept for whole documents
            return self.frames[doc]
        return np.full(len(doc), self.length, dtype=np.int64)

    def counts(self) -> np.ndarray:
        """Windows per document."""
        return np.diff(self.cumulative)

    def ids_of(self, doc) -> list[str]:
        """Return the ids of documents ``doc`` (positions)."""
        return _take(self.ids, np.asarray(doc))

    def labels_of(self, doc) -> list | None:
        """Return the labels of documents ``doc`` (positions), if any."""
        return None if self.labels is None else _take(self.labels, np.asarray(doc))

    def nbytes(self) -> int:
        """Bytes of the index state (what every DataLoader worker holds)."""
        parts = [self.ids, self.cumulative, self.array_codes, self.offsets, self.groups,
                 self.frames, self.labels, self.weights]
        return sum(int(p.nbytes) for p in parts if p is not None)
