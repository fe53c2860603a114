"""Locality-sensitive hashing (SimHash) and brute-force Hamming search over a corpus.

:class:`SimHash` hashes feature vectors by the side of ``bits`` random hyperplanes
(through the corpus mean) they fall on: similar vectors (small angle) get codes with a
small Hamming distance. :class:`HammingIndex` stores the codes of many documents with
their ``(document id, TimeSlice)`` keys and answers "which stretches of which documents
sound like this" by a vectorised popcount (``np.bitwise_count``) over packed uint64
words.

Both are the seed's API over :mod:`zounds_xr.search` (the one home of the hyperplanes,
the packing of bits and the Hamming distance); the store-wide, persisted search with
neighbour semantics is :func:`zounds_xr.search.open_index`.

Examples
--------
>>> import numpy as np, zounds_xr as zx
>>> from zounds_xr.learn import SimHash, HammingIndex
>>> rng = np.random.default_rng(0)
>>> feats = zx.ArrayWithUnits(rng.normal(size=(100, 8)),
...                           [zx.TimeDimension(zx.Milliseconds(50)), zx.IdentityDimension()])
>>> hasher = SimHash(bits=64, packbits=True).fit(feats)
>>> codes = hasher(feats)
>>> codes.dims, codes.dtype
(('time', 'word'), dtype('uint64'))
>>> index = HammingIndex()
>>> index.add(codes, "doc-1")
>>> best = index.search(codes.isel(time=42), n_results=1)[0]
>>> best.document_id, best.distance, best.position
('doc-1', 0, 42)
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import xarray as xr

from ..core.validation import positive_int, smallest_k
from ..core.errors import ParameterError
from ..search.codes import hamming_distance, pack_bits, unpack_bits
from ..search.hashing import hyperplanes, simhash_bits
from ..timeseries.timeslice import TimeSlice
from .persist import register_preprocessor
from .pipeline import Preprocessor, _as_dataarray, _flat, _map_rows

__all__ = ["SimHash", "HammingIndex", "SearchResult", "pack_bits", "unpack_bits",
           "hamming_distance"]


@register_preprocessor
class SimHash(Preprocessor):
    """Hash feature vectors by the side of ``bits`` random hyperplanes they lie on.

    ``fit`` learns the corpus mean (streamed) so that the hyperplanes pass through the
    centre of the data; the hyperplanes are drawn from a seeded Gaussian.

    Parameters
    ----------
    bits : int > 0, default 64
        Number of hyperplanes, i.e. bits per code.
    packbits : bool, default False
        ``False``: codes of dims ``(example, "bit")``, uint8 0/1. ``True``: dims
        ``(example, "word")``, ``ceil(bits / 64)`` uint64 words (see :func:`pack_bits`).
    seed : int, default 0
        Seed of the hyperplanes.
    needs : object, optional
        Accepted for compatibility with zounds' graph syntax and ignored.

    Raises
    ------
    ParameterError
        If ``bits`` is not a positive int.

    Notes
    -----
    Not invertible. The example axis keeps its labels (e.g. the ``time`` index).
    """

    learns = True
    invertible = False

    def __init__(self, bits=64, packbits=False, seed=0, needs=None):
        super().__init__(needs)
        self.bits = positive_int(bits, "bits")
        self.packbits = bool(packbits)
        self.seed = int(seed)
        self.mean: np.ndarray | None = None
        self.planes: np.ndarray | None = None

    def _start_fit(self):
        self._sum: np.ndarray | None = None
        self._n = 0

    def _partial_fit(self, block, pass_index):
        rows = _flat(block).astype(np.float64)
        total = rows.sum(axis=0)
        self._sum = total if self._sum is None else self._sum + total
        self._n += rows.shape[0]

    def _end_fit(self):
        assert self._sum is not None, "SimHash fitted on no rows"
        self.mean = self._sum / self._n
        self.planes = hyperplanes(self.mean.size, self.bits, self.seed)
        del self._sum, self._n

    def _bits(self, rows: np.ndarray) -> np.ndarray:
        assert self.mean is not None and self.planes is not None  # fitted (checked before)
        return simhash_bits(rows, self.mean, self.planes)

    def _forward(self, x):
        if self.packbits:
            n_words = -(-self.bits // 64)
            out = _map_rows(x, lambda rows: pack_bits(self._bits(rows)), (n_words,), np.uint64,
                            ["word"])
        else:
            out = _map_rows(x, self._bits, (self.bits,), np.uint8, ["bit"])
        return out, None

    def get_config(self):
        """Return the constructor parameters ``bits``, ``packbits`` and ``seed``."""
        return {"bits": self.bits, "packbits": self.packbits, "seed": self.seed}

    def get_arrays(self):
        """Return the learned ``mean`` (features,) and ``planes`` (features, bits)."""
        return {"mean": self.mean, "planes": self.planes}

    def _set_arrays(self, arrays):
        self.mean, self.planes = np.asarray(arrays["mean"]), np.asarray(arrays["planes"])


@dataclass(frozen=True)
class SearchResult:
    """One hit of :meth:`HammingIndex.search`.

    Parameters
    ----------
    document_id : object
        The id the document's codes were added with (:meth:`HammingIndex.add`).
    time_slice : TimeSlice or None
        The stretch of the document the frame covers; ``None`` when its codes had no
        ``TimeIndex``.
    distance : int >= 0
        Hamming distance from the query, in bits.
    position : int >= 0
        Frame position inside the document's codes.
    """

    document_id: object
    time_slice: object  # TimeSlice, or None when the codes had no time index
    distance: int
    position: int  # frame position inside the document's codes


def _time_params(codes: xr.DataArray):
    """Return ``(start, frequency, duration)`` Fractions of the example axis, or ``None``."""
    index = codes.xindexes.get(codes.dims[0])
    if index is not None and hasattr(index, "frequency") and hasattr(index, "duration"):
        return Fraction(index.start), Fraction(index.frequency), Fraction(index.duration)
    return None


class HammingIndex:
    """Brute-force Hamming-distance search over the codes of a corpus.

    ``add(codes, document_id)`` appends the codes of one document (a DataArray of
    packed uint64 words, or of 0/1 bits, which are packed; its example axis is usually
    ``time``). ``search(query, n_results)`` returns the nearest frames as
    :class:`SearchResult` objects, nearest first (ties: earliest added first), with the
    :class:`~zounds_xr.TimeSlice` each frame covers when the codes carry a ``TimeIndex``.
    """

    def __init__(self):
        self._blocks: list[np.ndarray] = []
        self._codes: np.ndarray | None = None
        self._entries: list[dict] = []  # one per add: id, offset, size, time params
        self._n_words: int | None = None
        self._n_bits: int | None = None

    def __len__(self) -> int:
        return sum(e["size"] for e in self._entries)

    @property
    def document_ids(self) -> list:
        """The ids of the documents added, in order."""
        return [e["document_id"] for e in self._entries]

    def _pack(self, codes) -> np.ndarray:
        arr = np.asarray(codes)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.dtype == np.uint64:
            return arr.reshape(arr.shape[0], -1)
        if arr.dtype.kind in "biu" and arr.size and arr.max() <= 1 and arr.min() >= 0:
            bits = arr.reshape(arr.shape[0], -1)
            if self._n_bits is None:
                self._n_bits = bits.shape[1]
            return pack_bits(bits)
        if arr.size == 0:
            return arr.reshape(arr.shape[0], -1).astype(np.uint64)
        raise ParameterError(f"codes must be uint64 words or 0/1 bits, got dtype {arr.dtype}")

    def add(self, codes, document_id=None) -> None:
        """Add the codes of one document.

        Parameters
        ----------
        codes : xarray.DataArray or array [dims=(example, "word") uint64 or (example, "bit")]
            :class:`SimHash` output; a ``TimeIndex`` on the example axis gives each result
            its ``TimeSlice``.
        document_id : hashable, optional
            The document's id, returned by :meth:`search` (default ``None``); it must be
            JSON-safe for :meth:`save`.

        Raises
        ------
        ParameterError
            If ``codes`` are neither uint64 words nor 0/1 bits, or have a different
            number of words than the codes already added.
        """
        labelled = _as_dataarray(codes)
        words = self._pack(labelled.values)
        if self._n_words is None:
            self._n_words = words.shape[1]
        elif words.shape[1] != self._n_words:
            raise ParameterError(
                f"codes of {words.shape[1]} words cannot join an index of {self._n_words}")
        offset = len(self)
        self._entries.append({"document_id": document_id, "offset": offset,
                              "size": words.shape[0], "time": _time_params(labelled)})
        self._blocks.append(words)
        self._codes = None

    @property
    def codes(self) -> np.ndarray:
        """All codes, ``(n, n_words)`` uint64."""
        if self._codes is None:
            n_words = self._n_words or 1
            self._codes = (np.concatenate(self._blocks) if self._blocks
                           else np.zeros((0, n_words), np.uint64))
            self._blocks = [self._codes]
        return self._codes

    def distances(self, query) -> np.ndarray:
        """Compute the Hamming distance from ``query`` (one code) to every stored code.

        Parameters
        ----------
        query : xarray.DataArray or array [shape=(n_words,) uint64 or (n_bits,)]
            One code.

        Returns
        -------
        numpy.ndarray [shape=(n_codes,), int64]
            In the order the codes were added.

        Raises
        ------
        ParameterError
            If ``query`` is neither uint64 words nor 0/1 bits, holds more than one code,
            or has a different number of words than the stored codes.
        """
        q = self._pack(_as_dataarray(query).values if isinstance(query, xr.DataArray)
                       else query)
        if q.shape[0] != 1:
            raise ParameterError(f"search takes one query code, got {q.shape[0]}")
        if self._n_words is not None and q.shape[1] != self._n_words:
            raise ParameterError(f"query has {q.shape[1]} words, the index {self._n_words}")
        return hamming_distance(self.codes, q[0])

    def _key(self, position: int):
        starts = [e["offset"] for e in self._entries]
        k = int(np.searchsorted(starts, position, side="right")) - 1
        entry = self._entries[k]
        local = position - entry["offset"]
        time_slice = None
        if entry["time"] is not None:
            start, frequency, duration = entry["time"]
            time_slice = TimeSlice(duration=duration, start=start + local * frequency)
        return entry["document_id"], time_slice, local

    def search(self, query, n_results: int = 10) -> list[SearchResult]:
        """Find the ``n_results`` stored frames nearest to ``query`` (one code).

        Parameters
        ----------
        query : xarray.DataArray or array
            One code (see :meth:`distances`).
        n_results : int > 0
            How many results at most.

        Returns
        -------
        list of SearchResult
            Nearest first; ties are broken by position. Empty for an empty index.

        Raises
        ------
        ParameterError
            If ``n_results`` is not a positive int, or ``query`` is not one code of
            the index's width (see :meth:`distances`).
        """
        n_results = positive_int(n_results, "n_results")
        d = self.distances(query)
        if d.size == 0:
            return []
        order = smallest_k(d, n_results)
        out = []
        for position in order:
            doc, ts, local = self._key(int(position))
            out.append(SearchResult(doc, ts, int(d[position]), local))
        return out

    # persistence (JSON keys + one .npy of codes; document ids must be JSON-safe)
    def save(self, path) -> None:
        """Write the index to a directory (``codes.npy`` + ``index.json``, no pickle).

        Parameters
        ----------
        path : str or os.PathLike
            A directory (created if needed).

        See Also
        --------
        load : The inverse.
        """
        os.makedirs(path, exist_ok=True)
        np.save(os.path.join(path, "codes.npy"), self.codes, allow_pickle=False)
        entries = [{**e, "time": None if e["time"] is None else [str(v) for v in e["time"]]}
                   for e in self._entries]
        with open(os.path.join(path, "index.json"), "w") as f:
            json.dump({"format": "zounds_xr.HammingIndex", "format_version": 1,
                       "n_words": self._n_words, "n_bits": self._n_bits,
                       "entries": entries}, f)

    @classmethod
    def load(cls, path) -> HammingIndex:
        """Read an index written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
            The directory :meth:`save` wrote.

        Returns
        -------
        HammingIndex
            The saved codes and keys; further :meth:`add` calls extend it.

        Raises
        ------
        ParameterError
            If ``path/index.json`` is not a saved :class:`HammingIndex`.
        """
        with open(os.path.join(path, "index.json")) as f:
            meta = json.load(f)
        if meta.get("format") != "zounds_xr.HammingIndex":
            raise ParameterError(f"{path} does not hold a HammingIndex")
        obj = cls()
        obj._n_words, obj._n_bits = meta["n_words"], meta["n_bits"]
        obj._entries = [{**e, "time": None if e["time"] is None
                         else tuple(Fraction(v) for v in e["time"])} for e in meta["entries"]]
        codes = np.load(os.path.join(path, "codes.npy"), allow_pickle=False)
        obj._blocks, obj._codes = [codes], codes
        return obj
