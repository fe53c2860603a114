"""Training windows over a corpus store, for torch: one map-style and one iterable dataset.

:class:`FeatureWindows` (a ``torch.utils.data.Dataset``) and :class:`RandomWindows` (a
``torch.utils.data.IterableDataset``) cut every document of a store into windows of one
duration, all of one shape, and read them straight from the store's arrays (the
``f.array`` / ``f.offset`` columns of the catalog and ``store.array(path)``), never
through one lazy DataArray per document.

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
import pickle
from collections import OrderedDict
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .._optional import optional_import
from ..documents import Document, open_store
from ..errors import DocumentNotFoundError, ParameterError, StoreError
from ..timeseries.durations import to_fraction

__all__ = ["BucketBatchSampler", "FeatureWindows", "RandomWindows", "collate", "window_counts"]

if TYPE_CHECKING:  # type checkers read torch; at run time it is imported with a hint
    import torch
else:
    torch = optional_import("torch")

_INT64_SAFE = 2**62
#: a block of rows read at once (bytes): large contiguous reads, bounded memory
_BLOCK_BYTES = 4 << 20
#: decoded blocks a FeatureWindows keeps per process (bytes)
_CACHE_BYTES = 256 << 20


# ---------------------------------------------------------------------------- the store
def _open_store(document, storage_options=None):
    """A store object with ``catalog()`` and ``array(path)`` from what the user gave."""
    if isinstance(document, (str, os.PathLike)):
        return open_store(os.fspath(document), storage_options=storage_options)
    if isinstance(document, type) and issubclass(document, Document):
        return document._store_for(None)
    if hasattr(document, "catalog") and hasattr(document, "array"):
        return document
    raise ParameterError(
        f"document must be a Document subclass bound to a store, a store opened with "
        f"zx.open_store, or a store URL; got {document!r}")


# ----------------------------------------------------------------- window arithmetic
def _time_params(index_json: pd.Series) -> tuple[np.ndarray, list[dict]]:
    """Group documents by their time axis (all but its size): codes and parameters.

    Every document's ``f.index`` differs only by its size in a corpus of one rate, so the
    size is cut out with one vectorized string operation and only the distinct
    definitions are parsed (a handful, however many documents).
    """
    text = pa.array(index_json.to_numpy(dtype=object), type=pa.string())
    text = pc.replace_substring_regex(text, r'"size"\s*:\s*-?\d+\s*,?\s*', "")  # in C++
    encoded = pc.dictionary_encode(text)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    uniques = encoded.dictionary.to_pylist()
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
    """Window number ``k`` -> its first frame, ``ceil((a + k*b) / c)``, exactly
    (a picklable object, not a closure: datasets travel to spawned workers)."""

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


class _Plan:
    """Every window of the selected documents: per document its count and location.

    Built from the catalog alone (no array is opened) with numpy over the documents:
    no Python loop over windows, and one over the distinct time axes only.
    """

    def __init__(self, store, feature: str, window, hop, ids, label):
        self.feature = feature
        self.window = _duration_or_frames(window, "window")
        self.hop = _duration_or_frames(hop, "hop")
        if self.window is None and self.hop is not None:
            raise ParameterError("hop needs a window: window=None gives whole documents")
        if self.hop is not None and isinstance(self.window, int) != isinstance(self.hop, int):
            raise ParameterError(
                f"window and hop must both be durations or both numbers of frames, got "
                f"window={window!r}, hop={hop!r}")
        cat = store.catalog()
        columns = [f"{feature}.{c}" for c in ("frames", "array", "offset", "index")]
        if columns[0] not in cat.columns:
            stored = sorted({c.rsplit(".", 1)[0] for c in cat.columns
                             if c.endswith(".frames")})
            raise ParameterError(
                f"feature {feature!r} is not stored in this store; stored features: "
                f"{stored}")
        labels = None
        if label is not None:
            labels = self._label_column(cat, label)
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
        self.ids = cat.index.to_numpy(dtype=object)
        frames = cat[columns[0]].to_numpy(dtype=np.int64)
        self.array_codes, self.arrays = pd.factorize(cat[columns[1]].astype(str))
        self.arrays = list(self.arrays)
        self.offsets = cat[columns[2]].to_numpy(dtype=np.int64)
        self.frames = frames
        groups, params = _time_params(cat[columns[3]])
        self.counts = np.zeros(len(cat), dtype=np.int64)
        self.starts = np.zeros(len(cat), dtype=np.float64)  # t0 per document
        self.steps = np.zeros(len(cat), dtype=np.float64)   # window step per document
        self._first = []
        lengths = set()
        for g, p in enumerate(params):
            rows = groups == g
            counts, length, first = window_counts(frames[rows], p["start"], p["frequency"],
                                                  p["duration"], self.window, self.hop)
            self.counts[rows] = counts
            self.starts[rows] = float(p["start"])
            step = self.hop if self.hop is not None else self.window
            if isinstance(step, int):
                step = step * p["frequency"]
            self.steps[rows] = float(step) if step is not None else 0.0
            self._first.append(first)
            if counts.any():  # a rate without windows does not decide their shape
                lengths.add(length)
        self.groups = groups
        if len(lengths) > 1:
            raise ParameterError(
                f"the documents' time axes differ ({len(params)} rates), so windows of "
                f"{window!r} would have {sorted(lengths)} frames: select documents of one "
                f"rate with ids=")
        self.length = lengths.pop() if lengths else None
        self.cumulative = np.concatenate([[0], np.cumsum(self.counts)])
        self.total = int(self.cumulative[-1])
        if self.total == 0:
            longest = cat[columns[0]].max()
            raise ParameterError(
                f"no window fits: a window of {self._describe(window)} is longer than "
                f"every one of the {len(cat)} documents (the longest has {longest} frames "
                f"of {feature!r})")
        self.labels = None
        if labels is not None:
            labels = labels.reindex(cat.index)
            unlabelled = cat.index[labels.isna().to_numpy() & (self.counts > 0)]
            if len(unlabelled):
                raise ParameterError(
                    f"{len(unlabelled)} documents have no label, e.g. "
                    f"{list(unlabelled[:5])}: give a label to every document, or leave "
                    f"them out with ids=")
            self.labels = labels.to_numpy()

    @staticmethod
    def _describe(window):
        if _is_frames(window):
            return f"{window} frames"
        return f"{float(to_fraction(window, name='window')):g} s"

    @staticmethod
    def _label_column(cat: pd.DataFrame, label) -> pd.Series:
        if isinstance(label, pd.Series):
            missing = cat.index.difference(label.index)
            if len(missing) == len(cat):
                raise ParameterError("the label Series shares no document id with the store")
            return label
        if not isinstance(label, str) or label not in cat.columns:
            public = [c for c in cat.columns if "." not in c]
            raise ParameterError(f"label {label!r} is not a column of the catalog; its "
                                 f"columns: {public}")
        return cat[label]

    # per window -------------------------------------------------------------------
    def locate(self, index: np.ndarray):
        """Windows ``index`` -> (document position, first frame in the document)."""
        index = np.asarray(index, dtype=np.int64)
        doc = np.searchsorted(self.cumulative, index, side="right") - 1
        k = index - self.cumulative[doc]
        first = np.empty_like(k)
        for g in np.unique(self.groups[doc]):
            rows = self.groups[doc] == g
            first[rows] = self._first[g](k[rows])
        return doc, k, first

    def window_start(self, doc, k):
        return self.starts[doc] + k * self.steps[doc]

    def lengths(self, doc) -> np.ndarray:
        return self.frames[doc] if self.length is None else np.full(len(doc), self.length)


# -------------------------------------------------------------------------- reading
class _Reader:
    """Reads rows of the store's arrays in chunk-aligned blocks, keeping recent blocks.

    A block is a run of whole chunks along the first axis, so reading it decodes
    nothing that a smaller read would not decode too; recently used blocks stay in an
    LRU cache of ``cache_bytes``. One per process: it is dropped when pickled.
    """

    def __init__(self, store, arrays: list[str], cache_bytes: int = _CACHE_BYTES):
        self.store, self.paths = store, arrays
        self.cache_bytes = cache_bytes
        self._arrays: dict[int, tuple[Any, int]] = {}
        self._blocks: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._held = 0
        self._trailing: tuple[int, ...] | None = None

    def array(self, code: int):
        a = self._arrays.get(code)
        if a is None:
            a = self.store.array(self.paths[code])
            if self._trailing is None:
                self._trailing = tuple(a.shape[1:])
            elif tuple(a.shape[1:]) != self._trailing:
                raise ParameterError(
                    f"the feature's arrays differ in shape: {self.paths[code]!r} has frames "
                    f"of shape {tuple(a.shape[1:])}, others {self._trailing}; select "
                    f"documents of one shape with ids=")
            chunk = int(a.chunks[0]) if a.chunks else 1
            row = int(np.prod(a.shape[1:], dtype=np.int64)) * a.dtype.itemsize
            a_block = chunk * max(1, -(-(256 << 10) // max(1, chunk * row)))
            self._arrays[code] = a = (a, a_block)
        return a

    def rows(self, code: int, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of array ``code`` (a view into a cached block when it can).

        The blocks missing from the cache are read with one call per run of consecutive
        blocks, so a long span is one large read.
        """
        a, block = self.array(code)
        b0, b1 = start // block, (stop - 1) // block
        pieces = self._fetch(code, a, block, b0, b1)
        if b0 == b1:
            return pieces[0][start - b0 * block: stop - b0 * block]
        return np.concatenate([p[max(start - b * block, 0): min(stop - b * block, block)]
                               for b, p in zip(range(b0, b1 + 1), pieces, strict=True)])

    def _fetch(self, code, a, block, b0, b1) -> list[np.ndarray]:
        found, missing = {}, []
        for b in range(b0, b1 + 1):
            data = self._blocks.get((code, b))
            if data is None:
                missing.append(b)
            else:
                self._blocks.move_to_end((code, b))
                found[b] = data
        runs = np.split(np.asarray(missing, dtype=np.int64),
                        np.flatnonzero(np.diff(missing) != 1) + 1) if missing else []
        for run in runs:
            lo, hi = int(run[0]) * block, min((int(run[-1]) + 1) * block, a.shape[0])
            data = np.asarray(a[lo:hi])
            for b in run:
                b = int(b)
                found[b] = piece = data[b * block - lo: (b + 1) * block - lo]
                self._blocks[(code, b)] = piece
                self._held += piece.nbytes
        while self._held > self.cache_bytes and len(self._blocks) > 1:
            _, old = self._blocks.popitem(last=False)
            self._held -= old.nbytes
        return [found[b] for b in range(b0, b1 + 1)]


def _item(x, doc_id, start, label, labels):
    item = {"x": torch.from_numpy(np.ascontiguousarray(x)), "document": doc_id,
            "start": float(start)}
    if labels is not None:
        value = label.item() if isinstance(label, np.generic) else label
        item["label"] = value
    return item


class _WindowsBase:
    def __init__(self, document, feature, window, hop, ids, label, storage_options=None):
        self.store = _open_store(document, storage_options)
        self.feature = feature
        self._plan = _Plan(self.store, feature, window, hop, ids, label)
        self._reader, self._pid = None, os.getpid()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_reader"] = None  # each process opens the arrays and keeps its own blocks
        state["_pid"] = None  # unpickled: the store is already a fresh copy
        return state

    def __setstate__(self, state):
        state["_pid"] = os.getpid()
        self.__dict__.update(state)

    @property
    def reader(self) -> _Reader:
        if self._pid != os.getpid():
            # a forked DataLoader worker: open the store afresh (a copy through pickle
            # reconnects), never through the parent's connections and open arrays
            self.store = pickle.loads(pickle.dumps(self.store))
            self._reader, self._pid = None, os.getpid()
        if self._reader is None:
            self._reader = _Reader(self.store, self._plan.arrays)
        return self._reader

    @property
    def window_frames(self) -> int | None:
        """Frames per window (``None`` for whole documents)."""
        return self._plan.length

    @property
    def ids(self) -> np.ndarray:
        """The documents, in order (object array of ids)."""
        return self._plan.ids

    @property
    def num_windows(self) -> int:
        return self._plan.total

    def windows(self) -> pd.DataFrame:
        """Every window: ``document``, ``start`` (seconds), ``frame`` (first frame) and
        ``frames``, in dataset order (materializes one row per window)."""
        plan = self._plan
        doc, k, first = plan.locate(np.arange(plan.total))
        return pd.DataFrame({"document": plan.ids[doc], "start": plan.window_start(doc, k),
                             "frame": first, "frames": plan.lengths(doc)})


# ---------------------------------------------------------------------- map-style
class FeatureWindows(_WindowsBase, torch.utils.data.Dataset):
    """Every window of a stored feature over a corpus, as a map-style torch Dataset.

    Parameters
    ----------
    document : Document subclass, store, or str
        A ``Document`` subclass bound to a store, a store opened with
        :func:`zounds_xr.open_store`, or a store URL (local path, ``s3://...``).
    feature : str
        A stored feature (a column ``"<feature>.frames"`` of the catalog).
    window : np.timedelta64, int or None
        Window duration (> 0); an ``int`` is a number of frames; ``None`` gives each
        whole document as one (variable-length) item.
    hop : np.timedelta64 or int, optional
        Step between windows of a document (> 0), default ``window``.
    ids : sequence of str, optional
        Only these documents, in this order (e.g. a train split from a catalog query).
    label : str or pandas.Series, optional
        A catalog column, or a Series indexed by document id (e.g. a class from a CSV),
        whose value becomes each item's ``"label"``.
    storage_options : dict, optional
        For a store URL: fsspec options (``s3://`` endpoint and credentials).

    Items
    -----
    ``dataset[i]`` is ``{"x": Tensor[frames, *feature_shape], "document": str, "start":
    float seconds, "label": value}`` (``"label"`` only with ``label=``); windows are
    numbered document by document, in order of time. ``x`` holds exactly the stored
    frames given by the module's window rule: ``sel(time=TimeSlice(window, start))`` cut
    to ``window_frames`` rows.

    Raises
    ------
    ParameterError
        An unknown feature or label column, or a window longer than every document.
    DocumentNotFoundError
        ``ids`` naming documents that are not in the store.

    Notes
    -----
    The index is built from the catalog alone, with numpy over the documents (100,000
    documents in well under a second). Reads go to the store's arrays in chunk-aligned
    blocks, cached per process, and a DataLoader fetches a whole batch at once
    (``__getitems__``). Each DataLoader worker opens the store itself: the dataset
    pickles without its open arrays.

    See Also
    --------
    RandomWindows : the shuffled, resumable iterable counterpart.
    collate : batches of items as dicts of stacked tensors.
    BucketBatchSampler : batches of whole documents of similar length.

    Examples
    --------
    >>> windows = FeatureWindows(Sound, "mel", window=zx.Milliseconds(500))  # doctest: +SKIP
    >>> loader = torch.utils.data.DataLoader(windows, batch_size=64, shuffle=True,
    ...                                      num_workers=2)  # doctest: +SKIP
    """

    def __init__(self, document, feature: str, window, hop=None, ids=None, label=None, *,
                 storage_options=None):
        super().__init__(document, feature, window, hop, ids, label, storage_options)

    def __len__(self) -> int:
        return self._plan.total

    def __getitem__(self, index):
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, numbers.Integral):
            raise ParameterError(f"index a FeatureWindows with an int, got {index!r}")
        i = int(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"window {index} is out of range for {len(self)} windows")
        return self.__getitems__([i])[0]

    def __getitems__(self, indices) -> list[dict]:
        """A batch of items at once (the DataLoader's batched fetch)."""
        plan, reader = self._plan, self.reader
        index = np.asarray(indices, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= plan.total):
            raise IndexError(f"window indices out of range for {plan.total} windows")
        doc, k, first = plan.locate(index)
        rows = plan.offsets[doc] + first
        stops = rows + plan.lengths(doc)
        starts = plan.window_start(doc, k)
        codes = plan.array_codes[doc]
        # in row order, so that a batch walks each block once
        order = np.lexsort((rows, codes))
        out: list[Any] = [None] * len(index)
        for j in order:
            x = reader.rows(int(codes[j]), int(rows[j]), int(stops[j]))
            label = None if plan.labels is None else plan.labels[doc[j]]
            out[j] = _item(x, plan.ids[doc[j]], starts[j], label, plan.labels)
        return out

    def lengths(self) -> np.ndarray:
        """Frames of every item (all ``window_frames`` unless ``window=None``)."""
        doc, _, _ = self._plan.locate(np.arange(self._plan.total))
        return self._plan.lengths(doc)

    def __repr__(self) -> str:
        return (f"FeatureWindows({self.feature!r}, {len(self)} windows of "
                f"{self.window_frames} frames over {len(self.ids)} documents)")


# ----------------------------------------------------------------------- iterable
def _split_info(rank, world_size):
    """(rank, world size, worker id, workers) of the calling process."""
    if world_size is None:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            world_size, rank = dist.get_world_size(), dist.get_rank()
        else:
            world_size, rank = 1, 0
    rank = 0 if rank is None else rank
    info = torch.utils.data.get_worker_info()
    worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
    return rank, world_size, worker, workers


def _consumed_per_worker(position: int, batch_size: int,
                         lengths: list[int]) -> tuple[list[int], int]:
    """Items each worker had delivered when a DataLoader had yielded ``position`` items,
    and the worker whose batch came next.

    A DataLoader takes batches from its workers in turn (worker 0, 1, ..., 0, ...),
    skipping a worker once it is exhausted; a worker's last batch may be short.
    """
    batches = [-(-n // batch_size) for n in lengths]
    done = [0] * len(lengths)
    left, turn = position, 0
    while left > 0:
        if not any(d < b for d, b in zip(done, batches, strict=True)):
            raise ParameterError(f"position {position} is past the end of the epoch")
        w = turn % len(lengths)
        turn += 1
        if done[w] >= batches[w]:
            continue
        size = min(batch_size, lengths[w] - done[w] * batch_size)
        if size > left:
            raise ParameterError(
                f"position {position} is not a whole number of batches of {batch_size}")
        done[w] += 1
        left -= size
    consumed = [min(d * batch_size, n) for d, n in zip(done, lengths, strict=True)]
    return consumed, turn % len(lengths)


class RandomWindows(_WindowsBase, torch.utils.data.IterableDataset):
    """The windows of :class:`FeatureWindows`, shuffled, as a resumable IterableDataset.

    Each epoch visits every window once. The windows are grouped into blocks of
    contiguous rows of one array (at most ``block_bytes``); the blocks are shuffled
    (seeded by ``seed`` and the epoch), dealt out to the distributed ranks and the
    DataLoader workers in turn, and read a few at a time, each with one read; the windows
    of the blocks read (at least ``buffer_size`` of them) are shuffled together and
    yielded. So reads are large and contiguous, memory is bounded by the buffer (and a
    per-process cache of recently read blocks, 256 MiB, which makes later epochs of a
    corpus that fits in it memory-speed), and no window is yielded twice in an epoch,
    whatever the number of workers and ranks.

    Parameters
    ----------
    document, feature, window, hop, ids, label, storage_options
        As for :class:`FeatureWindows`.
    seed : int
        The same seed (and epoch, ranks and workers) gives the same order.
    buffer_size : int
        Windows shuffled together (at least); larger mixes more, holds more memory.
    block_bytes : int
        Largest read, in bytes (blocks are also kept small enough that every worker
        gets several).
    rank, world_size : int, optional
        This process's place among distributed ranks; default from ``torch.distributed``
        when it is initialized, else a single rank.
    drop_uneven : bool
        With several ranks, cut every rank's epoch to the shortest rank's length (so
        that all ranks run the same number of steps); the windows cut differ by epoch.

    Resuming
    --------
    ``state_dict()`` gives ``{"seed", "epoch", "position"}``: ``position`` counts the
    items yielded in this epoch by the iterator of this process (exact without
    DataLoader workers). With workers, the items are yielded in the workers: save
    ``state_dict(position=batches_seen * batch_size, batch_size=batch_size)``.
    ``load_state_dict(state)`` makes the next iteration continue exactly where that
    state was taken (same seed, ranks, workers and batch size). Call
    :meth:`set_epoch` before each epoch (as with ``DistributedSampler``): it reshuffles
    and starts the epoch from its beginning.

    See Also
    --------
    FeatureWindows, collate
    """

    def __init__(self, document, feature: str, window, hop=None, ids=None, label=None,
                 seed: int = 0, *, buffer_size: int = 8192, block_bytes: int = _BLOCK_BYTES,
                 rank: int | None = None, world_size: int | None = None,
                 drop_uneven: bool = True, storage_options=None):
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
        for name, value in (("buffer_size", buffer_size), ("block_bytes", block_bytes)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ParameterError(f"{name} must be a positive integer, got {value!r}")
        if (rank is None) != (world_size is None) and world_size is not None:
            raise ParameterError("give rank= together with world_size=")
        if world_size is not None and not 0 <= int(rank) < int(world_size):
            raise ParameterError(f"rank must be in [0, world_size), got {rank}/{world_size}")
        super().__init__(document, feature, window, hop, ids, label, storage_options)
        self.seed: int = int(seed)
        self.epoch: int = 0
        self.position: int = 0
        self.buffer_size: int = int(buffer_size)
        self.block_bytes: int = int(block_bytes)
        self.rank: int | None = rank
        self.world_size: int | None = world_size
        self.drop_uneven: bool = bool(drop_uneven)
        self._batch_size: int | None = None
        self._row_bytes: int | None = None

    def __len__(self) -> int:
        """Windows this rank yields in an epoch (all of them with a single rank)."""
        rank, world_size, _, _ = _split_info(self.rank, self.world_size)
        if world_size == 1:
            return self._plan.total
        return int(self._epoch_plan(world_size, 1)[3][rank])

    # state ---------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` (a new order) from its beginning."""
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise ParameterError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch, self.position, self._batch_size = int(epoch), 0, None

    def state_dict(self, position: int | None = None, batch_size: int | None = None) -> dict:
        """Where the epoch stands: ``{"seed", "epoch", "position"[, "batch_size"]}``.

        ``position`` (items the training loop has taken this epoch) and ``batch_size``
        (the DataLoader's) are needed when a DataLoader's workers did the iterating.
        """
        state = {"seed": self.seed, "epoch": self.epoch,
                 "position": self.position if position is None else int(position)}
        size = batch_size if batch_size is not None else self._batch_size
        if size is not None:
            state["batch_size"] = int(size)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state`` (from :meth:`state_dict`) on the next iteration."""
        try:
            seed, epoch, position = (int(state[k]) for k in ("seed", "epoch", "position"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ParameterError(f"not a RandomWindows state: {state!r}") from exc
        if position < 0 or epoch < 0:
            raise ParameterError(f"not a RandomWindows state: {state!r}")
        self.seed, self.epoch, self.position = seed, epoch, position
        self._batch_size = state.get("batch_size")

    # the epoch's plan ----------------------------------------------------------------
    def _row_size(self) -> int:
        if self._row_bytes is None:
            a, _ = self.reader.array(int(self._plan.array_codes[0]))
            self._row_bytes = max(1, int(np.prod(a.shape[1:], dtype=np.int64))
                                  * a.dtype.itemsize)
        return self._row_bytes

    def _blocks(self, shards: int):
        """Windows grouped into blocks: (order of windows by block, block boundaries)."""
        plan = self._plan
        doc, _, first = plan.locate(np.arange(plan.total))
        rows = plan.offsets[doc] + first
        codes = plan.array_codes[doc]
        total_rows = int(plan.lengths(doc).sum()) if plan.length is None else \
            int(plan.frames[plan.counts > 0].sum())
        # large reads, but enough blocks that each shard gets several
        block_rows = max(1, min(self.block_bytes // self._row_size(),
                                -(-total_rows // (4 * shards))))
        key = codes.astype(np.int64) * (int(rows.max()) // block_rows + 2) + rows // block_rows
        order = np.argsort(key, kind="stable")
        bounds = np.flatnonzero(np.diff(key[order])) + 1
        return order, np.concatenate([[0], bounds, [len(order)]])

    def _epoch_plan(self, world_size: int, workers: int):
        """The epoch's blocks dealt out to every shard (rank, worker), and each shard's
        number of windows (after ``drop_uneven``)."""
        shards = world_size * workers
        order, bounds = self._blocks(shards)
        sizes = np.diff(bounds)
        perm = np.random.default_rng([self.seed, self.epoch]).permutation(len(sizes))
        blocks = [perm[s::shards] for s in range(shards)]
        lengths = np.array([int(sizes[b].sum()) for b in blocks], dtype=np.int64)
        if world_size > 1 and self.drop_uneven:
            per_rank = lengths.reshape(world_size, workers)
            limit = int(per_rank.sum(axis=1).min())
            for r in range(world_size):
                # a rank's cut falls on its workers in proportion to their windows
                row, total = per_rank[r], int(per_rank[r].sum())
                share = row * limit // max(total, 1)
                share[0] += limit - int(share.sum())
                lengths[r * workers:(r + 1) * workers] = np.minimum(share, row)
        return order, bounds, blocks, lengths

    def _buffers(self, blocks, sizes) -> list[list[int]]:
        buffers, current, held = [], [], 0
        for b in blocks:
            current.append(int(b))
            held += int(sizes[b])
            if held >= self.buffer_size:
                buffers.append(current)
                current, held = [], 0
        if current:
            buffers.append(current)
        return buffers

    # iteration -----------------------------------------------------------------------
    def __iter__(self):
        rank, world_size, worker, workers = _split_info(self.rank, self.world_size)
        order, bounds, blocks, lengths = self._epoch_plan(world_size, workers)
        role, skip = worker, self.position
        if skip and workers > 1:
            if self._batch_size is None:
                raise ParameterError(
                    "this state was saved without batch_size, so it cannot be shared out "
                    "among DataLoader workers: save state_dict(position=items_seen, "
                    "batch_size=the DataLoader's batch_size)")
            ours = [int(n) for n in lengths[rank * workers:(rank + 1) * workers]]
            consumed, turn = _consumed_per_worker(skip, int(self._batch_size), ours)
            # the DataLoader starts again with its worker 0: that worker takes the place of
            # the one whose batch came next, so that the batches continue in order
            role = (worker + turn) % workers
            skip = consumed[role]
        mine = rank * workers + role
        buffers = self._buffers(blocks[mine], np.diff(bounds))
        return self._generate(order, bounds, buffers, int(lengths[mine]), skip,
                              [self.seed, self.epoch, world_size * workers, mine])

    def _generate(self, order, bounds, buffers, limit, skip, key):
        plan, reader = self._plan, self.reader
        yielded = 0
        for number, blocks in enumerate(buffers):
            size = sum(int(bounds[b + 1] - bounds[b]) for b in blocks)
            if skip >= size:  # resuming: whole buffers are skipped without reading
                skip -= size
                yielded += size
                continue
            windows = np.concatenate([order[bounds[b]:bounds[b + 1]] for b in blocks])
            doc, k, first = plan.locate(windows)
            rows = plan.offsets[doc] + first
            stops = rows + plan.lengths(doc)
            codes = plan.array_codes[doc]
            starts = plan.window_start(doc, k)
            # one read per block: the rows of all its windows
            data, base = {}, np.empty(len(windows), dtype=np.int64)
            at = 0
            for b in blocks:
                n = int(bounds[b + 1] - bounds[b])
                sel = slice(at, at + n)
                code, lo, hi = int(codes[at]), int(rows[sel].min()), int(stops[sel].max())
                data[b] = reader.rows(code, lo, hi)  # cached: a corpus that fits is read once
                base[sel] = lo
                at += n
            owner = np.repeat(np.asarray(blocks), [int(bounds[b + 1] - bounds[b])
                                                    for b in blocks])
            rng = np.random.default_rng([*key, number])
            yielded += skip
            for j in rng.permutation(len(windows))[skip:]:
                if yielded >= limit:
                    break
                block = data[owner[j]]
                x = block[rows[j] - base[j]: stops[j] - base[j]]
                label = None if plan.labels is None else plan.labels[doc[j]]
                self.position = yielded = yielded + 1
                yield _item(x, plan.ids[doc[j]], starts[j], label, plan.labels)
            skip = 0
            del data
            if yielded >= limit:
                break
        # the epoch is over for this process: the next iteration starts it again
        self.position = 0
        self._batch_size = None

    def sample(self, n: int, replace: bool = False) -> dict:
        """``n`` windows drawn uniformly at random (seeded by ``seed`` and the epoch), read
        together in row order: a batch dict as :func:`collate` gives, plus ``"frame"``
        (Tensor[n] of int64: each window's first frame in its document).

        Without replacement when ``n`` does not exceed the windows (and ``replace`` is
        false). Only the blocks that hold drawn windows are read.
        """
        n = int(n)
        if n < 1:
            raise ParameterError(f"n must be a positive integer, got {n!r}")
        plan = self._plan
        rng = np.random.default_rng([self.seed, self.epoch, 1 << 20])
        index = rng.choice(plan.total, size=n, replace=bool(replace) or n > plan.total)
        doc, k, first = plan.locate(index)
        rows = plan.offsets[doc] + first
        stops = rows + plan.lengths(doc)
        codes = plan.array_codes[doc]
        starts = plan.window_start(doc, k)
        items: list[Any] = [None] * n
        for j in np.lexsort((rows, codes)):  # each block read once
            x = self.reader.rows(int(codes[j]), int(rows[j]), int(stops[j]))
            label = None if plan.labels is None else plan.labels[doc[j]]
            items[j] = _item(x, plan.ids[doc[j]], starts[j], label, plan.labels)
        batch = collate(items)
        batch["frame"] = torch.as_tensor(first, dtype=torch.int64)
        return batch

    def __repr__(self) -> str:
        return (f"RandomWindows({self.feature!r}, {len(self)} windows of "
                f"{self.window_frames} frames over {len(self.ids)} documents, "
                f"seed={self.seed}, epoch={self.epoch})")


# ------------------------------------------------------------------------- batching
def collate(items: list[dict]) -> dict:
    """A batch dict of stacked tensors from items of :class:`FeatureWindows` /
    :class:`RandomWindows`.

    Returns
    -------
    dict
        ``"x"``: Tensor[batch, frames, *feature_shape] (items of different lengths are
        zero-padded at the end); ``"lengths"``: Tensor[batch] of int64, each item's frames;
        ``"document"``: list of str; ``"start"``: Tensor[batch] of float64 seconds;
        ``"label"`` (when the items have one): a Tensor when the labels are numbers, else
        a list.
    """
    if not items:
        raise ParameterError("cannot collate an empty batch")
    xs = [item["x"] for item in items]
    lengths = [x.shape[0] for x in xs]
    out: dict[str, Any] = {}
    if len(set(lengths)) == 1:
        out["x"] = torch.stack(xs)
    else:
        first = xs[0]
        x = first.new_zeros((len(xs), max(lengths), *first.shape[1:]))
        for i, item in enumerate(xs):
            x[i, : item.shape[0]] = item
        out["x"] = x
    out["lengths"] = torch.as_tensor(lengths, dtype=torch.int64)
    out["document"] = [item["document"] for item in items]
    out["start"] = torch.as_tensor([item["start"] for item in items], dtype=torch.float64)
    if "label" in items[0]:
        labels = [item["label"] for item in items]
        numeric = all(isinstance(v, (numbers.Number, np.number)) and not isinstance(v, bool)
                      for v in labels)
        out["label"] = torch.as_tensor(labels) if numeric else labels
    return out


class BucketBatchSampler(torch.utils.data.Sampler):
    """Batches of items of similar length, each at most ``max_frames`` padded frames.

    For whole-document items (``FeatureWindows(..., window=None)``): the items are
    sorted into ``num_buckets`` buckets by length (quantiles), shuffled within each
    bucket, cut into batches whose padded size ``len(batch) * longest`` stays within
    ``max_frames``, and the batches shuffled; seeded, and reshuffled by
    :meth:`set_epoch`. Use with ``DataLoader(dataset, batch_sampler=sampler,
    collate_fn=collate)``.

    Parameters
    ----------
    dataset : FeatureWindows
    max_frames : int
        Padded frames per batch (> 0); a longer item makes a batch of its own.
    num_buckets : int
    shuffle : bool
    seed : int
    drop_last : bool
        Drop each bucket's last, partly filled batch.
    """

    def __init__(self, dataset: FeatureWindows, max_frames: int, num_buckets: int = 10,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        for name, value in (("max_frames", max_frames), ("num_buckets", num_buckets)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ParameterError(f"{name} must be a positive integer, got {value!r}")
        self.lengths = np.asarray(dataset.lengths(), dtype=np.int64)
        self.max_frames, self.num_buckets = int(max_frames), int(num_buckets)
        self.shuffle, self.seed, self.drop_last, self.epoch = bool(shuffle), int(seed), \
            bool(drop_last), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = np.argsort(self.lengths, kind="stable")
        batches = []
        for bucket in np.array_split(order, min(self.num_buckets, max(1, len(order)))):
            if self.shuffle:
                bucket = rng.permutation(bucket)
            batch: list[int] = []
            longest = 0
            for i in bucket:
                n = int(self.lengths[i])
                if batch and max(longest, n) * (len(batch) + 1) > self.max_frames:
                    batches.append(batch)
                    batch, longest = [], 0
                batch.append(int(i))
                longest = max(longest, n)
            if batch and not (self.drop_last and longest * len(batch) < self.max_frames
                              and len(batches)):
                batches.append(batch)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self):
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())
