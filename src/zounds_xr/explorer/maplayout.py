"""The 2-D map of a store's documents, stored as a versioned artifact.

The layout is computed from any stored feature (a spectrogram, a fingerprint, a
learned embedding).

**Summaries.** Each document is one vector: for every band of the feature (bands beyond
``MAX_BANDS`` pooled into contiguous groups; spectra on a log scale) the mean and the
standard deviation over the document's frames. An embedding stored as one frame per
document is its own mean. Frames are read straight from the stored arrays in large
blocks (one pass, whatever the number of documents), per-document sums accumulated.

**Layouts.** ``"pca"``: the first two principal components of the standardised
summaries (exact, seconds at 10^6 documents). ``"umap"`` (``umap-learn``, the layout
Renumics Spotlight and Embedding Atlas use): summaries are reduced to at most
``UMAP_DIMS`` principal components, UMAP is fitted on a seeded sample of at most
``UMAP_SAMPLE`` documents, and every other document is placed at the distance-weighted
mean of its ``PLACE_NEIGHBOURS`` nearest sampled documents, found with the
nearest-neighbour index UMAP built (pynndescent): neighbourhoods are kept, and 10^6
documents cost one fit of 10^5 and a query.

**Storage** (no pickle): ``<root>/maps/<feature>/<method>/`` holds ``xy`` (documents x
2, float32) and ``ids`` (strings), every chunk with a CRC32C, and the attribute
``zounds_xr:map`` written last: the method, its parameters, the feature's versions, the
store's version (the commit the map was computed at) and how long it took. A map of a
store that has changed since shows the documents it has; the page says how many.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import cast

import numpy as np
import pandas as pd
import zarr
import zarr.errors
from zarr.codecs import Crc32cCodec, ZstdCodec

from ..core.optional import optional_import
from .._version import __version__
from ..documents.pyramid import root_store
from ..core.errors import ParameterError, StoreError

__all__ = [
    "FORMAT",
    "METHODS",
    "MapLayout",
    "build_map",
    "layout_of",
    "load_map",
    "map_path",
    "summaries",
]

FORMAT = "zounds_xr.explorer.MapLayout"
FORMAT_VERSION = 1
METHODS = ("umap", "pca")
#: bands a summary keeps at most (wider features are pooled into this many)
MAX_BANDS = 128
#: UMAP is fitted on at most this many documents; the others are placed by neighbours
UMAP_SAMPLE = 100_000
#: principal components UMAP sees
UMAP_DIMS = 32
#: sampled neighbours that place a document outside the sample
PLACE_NEIGHBOURS = 10
#: bytes of frames read at once while summarising
BLOCK_BYTES = 1 << 25

Progress = Callable[[str, int, int], None]


def map_path(feature: str, method: str) -> str:
    """Return where the map of ``feature`` made with ``method`` lives, relative to the root.

    Raises
    ------
    ParameterError
        If ``method`` is not one of ``METHODS``, or ``feature`` is empty or holds ``/``.
    """
    if method not in METHODS:
        raise ParameterError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not isinstance(feature, str) or not feature or "/" in feature:
        raise ParameterError(f"invalid feature name {feature!r}")
    return f"maps/{feature}/{method}"


def _pool_edges(n: int) -> np.ndarray:
    return np.linspace(0, n, min(n, MAX_BANDS) + 1).astype(np.intp)


def _prepare(values: np.ndarray, log: bool, edges: np.ndarray) -> np.ndarray:
    """Turn ``(rows, ...)`` frames into ``(rows, bands)`` float64 magnitudes.

    Log if asked; every axis but time is flattened and pooled into ``len(edges) - 1``
    groups.
    """
    values = np.asarray(values)
    if np.iscomplexobj(values):
        values = np.abs(values)
    rows = values.reshape(values.shape[0], -1).astype(np.float64)
    if log:
        rows = np.log(np.maximum(np.abs(rows), 1e-10))
    if rows.shape[1] != len(edges) - 1:
        rows = np.add.reduceat(rows, edges[:-1], axis=1) / np.diff(edges)
    return rows


def summaries(store, feature: str, ids=None, *, log: bool | None = None,
              progress: Progress | None = None) -> tuple[pd.Index, np.ndarray]:
    """Per-document summary vectors of a stored feature (see the module docs).

    Parameters
    ----------
    store : FeatureStore or store-like
        ``catalog()`` with the store contract's ``"<f>.array"``, ``.offset``,
        ``.frames`` columns and ``array(path)``; or ``store[doc_id]`` (slower).
    feature : str
    ids : sequence of str, optional
        Default: every document that stores the feature, in catalog order.
    log : bool, optional
        Summarise log magnitudes; default: for complex features and features with a
        ``frequency`` axis (spectra).
    progress : callable, optional
        ``progress("reading", frames_done, frames_total)``.

    Returns
    -------
    (pandas.Index, ndarray [shape=(documents, 2 * bands)])
    """
    cat = store.catalog()
    column = f"{feature}.frames"
    if column not in cat.columns:
        raise ParameterError(f"the store has no feature {feature!r}; it has "
                             f"{', '.join(store.features) or 'none'}")
    frames = pd.to_numeric(cat[column], errors="coerce").fillna(0).astype(np.int64)
    cat = cat[frames.to_numpy() > 0]
    if ids is not None:
        cat = cat.loc[pd.Index(list(ids))]
    if not len(cat):
        raise ParameterError(f"no document stores {feature!r}")
    sample = store[str(cat.index[0])][feature]
    if log is None:
        log = np.iscomplexobj(sample) or "frequency" in sample.dims
    other = [d for d in sample.dims if d not in ("time", "channel")]
    width = int(np.prod([sample.sizes[d] for d in other], dtype=np.int64)) if other else 1
    edges = _pool_edges(width)
    channel = "channel" in sample.dims
    sums = np.zeros((len(cat), len(edges) - 1))
    squares = np.zeros_like(sums)
    counts = pd.to_numeric(cat[column]).to_numpy(np.int64)
    total = int(counts.sum())
    done = 0

    def add(pos: np.ndarray, rows: np.ndarray) -> None:
        """Add the prepared rows (owned by documents ``pos``, in runs) to the sums."""
        nonlocal done
        starts = np.flatnonzero(np.r_[True, pos[1:] != pos[:-1]])
        sums[pos[starts]] += np.add.reduceat(rows, starts, axis=0)
        squares[pos[starts]] += np.add.reduceat(rows * rows, starts, axis=0)
        done += rows.shape[0]
        if progress is not None:
            progress("reading", done, total)

    located = hasattr(store, "array") and all(
        f"{feature}.{c}" in cat.columns for c in ("array", "offset"))
    if located:
        paths = cat[f"{feature}.array"].astype(str).to_numpy()
        offsets = pd.to_numeric(cat[f"{feature}.offset"]).to_numpy(np.int64)
        for path in pd.unique(paths):
            docs = np.flatnonzero(paths == path)
            docs = docs[np.argsort(offsets[docs], kind="stable")]
            first, last = offsets[docs], offsets[docs] + counts[docs]
            array = store.array(path)
            row_bytes = max(1, int(np.prod(array.shape[1:], dtype=np.int64))
                            * np.dtype(array.dtype).itemsize)
            block = max(1, BLOCK_BYTES // row_bytes)
            a, stop = int(first.min()), int(last.max())
            while a < stop:
                b = min(stop, a + block)
                try:
                    values = np.asarray(array[a:b])
                except Exception as exc:
                    raise StoreError(f"cannot read rows {a}:{b} of {path!r} (feature "
                                     f"{feature!r}) from {getattr(store, 'url', store)!r}: "
                                     f"{type(exc).__name__}: {exc}") from exc
                if channel:
                    values = values.mean(axis=sample.dims.index("channel"))
                rows_at = np.arange(a, b)
                j = np.searchsorted(first, rows_at, side="right") - 1
                inside = (j >= 0) & (rows_at < last[np.maximum(j, 0)])
                if inside.any():
                    add(docs[j[inside]], _prepare(values[inside], log, edges))
                a = b
    else:
        for pos, doc_id in enumerate(cat.index):
            da = store[str(doc_id)][feature].transpose("time", ...)
            if channel:
                da = da.mean("channel")
            values = np.asarray(da.values)
            add(np.full(values.shape[0], pos), _prepare(values, log, edges))
    mean = sums / counts[:, None]
    std = np.sqrt(np.maximum(squares / counts[:, None] - mean * mean, 0.0))
    return pd.Index(cat.index.astype(str), name="id"), np.hstack([mean, std])


def _standardised(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    scale = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(scale > 1e-12 * (np.abs(x).max() + 1), scale, 1.0)


def _principal(x: np.ndarray, k: int) -> np.ndarray:
    """Return the first ``k`` principal components of centred ``x``.

    Signs are fixed (the largest loading of each is positive), so that the map is the
    same on every run.
    """
    cov = x.T @ x / max(1, x.shape[0] - 1)
    values, vectors = np.linalg.eigh(cov)
    vectors = vectors[:, ::-1][:, :k]
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])])
    return x @ (vectors * np.where(signs == 0, 1, signs))


def _nearest(queries: np.ndarray, points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Find the ``k`` nearest ``points`` of each query (exhaustive): indices, distances."""
    d = (np.sum(queries * queries, axis=1)[:, None] - 2 * queries @ points.T
         + np.sum(points * points, axis=1)[None, :])
    nearest = np.argpartition(d, k - 1, axis=1)[:, :k] if k < points.shape[0] else \
        np.broadcast_to(np.arange(points.shape[0]), (len(queries), points.shape[0]))
    return nearest, np.sqrt(np.maximum(np.take_along_axis(d, nearest, axis=1), 0))


def layout_of(x: np.ndarray, method: str = "umap", *, seed: int = 0,
              sample: int = UMAP_SAMPLE, n_neighbors: int = 15, min_dist: float = 0.1,
              progress: Progress | None = None) -> np.ndarray:
    """2-D positions ``(n, 2)`` float32 of the rows of ``x`` (see the module docs).

    Parameters
    ----------
    x : ndarray [shape=(n, d)]
    method : {"umap", "pca"}
    seed : int
        Seeds the sample UMAP is fitted on (UMAP itself runs in parallel, so two runs
        differ slightly; PCA is exact).
    sample : int
        UMAP is fitted on at most this many rows.
    n_neighbors, min_dist
        UMAP's parameters.

    Raises
    ------
    ParameterError
        For an unknown method or fewer than 3 rows for UMAP.
    ImportError
        When ``umap-learn`` is missing (``pip install zounds_xr[explore]``).
    """
    if method not in METHODS:
        raise ParameterError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    x = _standardised(x)
    n = x.shape[0]
    if method == "pca" or n < 3:
        if method != "pca":
            raise ParameterError(f"a UMAP layout needs at least 3 documents, got {n}")
        xy = _principal(x, 2)
        if xy.shape[1] < 2:
            xy = np.hstack([xy, np.zeros((n, 2 - xy.shape[1]))])
        return xy.astype(np.float32)
    umap = optional_import("umap", extra="explore")
    reduced = _principal(x, min(UMAP_DIMS, x.shape[1])).astype(np.float32)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(n, size=min(n, sample), replace=False))
    if progress is not None:
        progress("umap", 0, len(chosen))
    model = umap.UMAP(n_neighbors=min(n_neighbors, len(chosen) - 1), min_dist=min_dist,
                      low_memory=True, n_components=2)
    fitted = np.asarray(model.fit_transform(reduced[chosen]), dtype=np.float32)
    if progress is not None:
        progress("umap", len(chosen), len(chosen))
    xy = np.empty((n, 2), np.float32)
    xy[chosen] = fitted
    rest = np.setdiff1d(np.arange(n), chosen, assume_unique=True)
    k = min(PLACE_NEIGHBOURS, len(chosen))
    # UMAP keeps its pynndescent index for large fits only; small samples are searched
    # exhaustively
    index = getattr(model, "_knn_search_index", None)
    block = 1 << 16 if index is not None else max(1, (1 << 24) // len(chosen))
    for a in range(0, len(rest), block):
        part = rest[a:a + block]
        if index is not None:
            neighbours, distances = index.query(reduced[part], k=k)
        else:
            neighbours, distances = _nearest(reduced[part], reduced[chosen], k)
        weights = 1.0 / (distances + 1e-6)
        xy[part] = (fitted[neighbours] * weights[..., None]).sum(axis=1) \
            / weights.sum(axis=1, keepdims=True)
        if progress is not None:
            progress("placing", a + len(part), len(rest))
    return xy


class MapLayout:
    """A map: ``xy`` (``(n, 2)`` float32), ``attrs`` and ``ids``.

    ``ids`` are the documents, a ``pandas.Index``; a stored map reads them when first
    asked (drawing needs only the positions).

    Parameters
    ----------
    xy : numpy.ndarray [shape=(n, 2), float32]
        Position of each document.
    attrs : dict
        How the map was made (method, parameters, feature versions, store version).
    ids : sequence of str, optional
        The ``n`` documents; given for a map computed now, read from ``source`` for a
        stored one.
    source : tuple, optional
        ``(zarr group, description)`` of a stored map, where ``ids`` is read from.
    """

    def __init__(self, xy: np.ndarray, attrs: dict, ids=None, *, source=None):
        self.xy, self.attrs = xy, attrs
        self._ids = None if ids is None else pd.Index(ids, name="id")
        self._source = source  # (zarr group, description) of a stored map
        self._lock = threading.Lock()

    @property
    def ids(self) -> pd.Index:
        """The documents of the points, in order (read once from a stored map).

        Raises
        ------
        StoreError
            When the stored ids cannot be read or do not match the positions.
        """
        with self._lock:
            if self._ids is None:
                group, where = self._source
                try:
                    ids = np.asarray(cast(zarr.Array, group["ids"])[...]).astype(object)
                except Exception as exc:
                    raise StoreError(f"{where} is damaged ({type(exc).__name__}: {exc}); "
                                     f"rebuild it with `zounds-xr map`") from exc
                if len(ids) != len(self.xy):
                    raise StoreError(f"{where} is damaged ({len(ids)} ids, "
                                     f"{len(self.xy)} positions); rebuild it")
                self._ids = pd.Index(ids, name="id")
            return self._ids

    def save(self, store) -> None:
        """Write the map under ``<root>/maps/<feature>/<method>/`` (replacing it)."""
        path = map_path(self.attrs["feature"], self.attrs["method"])
        try:
            group = zarr.open_group(root_store(store), path=path, mode="w", zarr_format=3)
            xy = np.ascontiguousarray(self.xy, dtype=np.float32)
            arr = group.create_array("xy", shape=xy.shape, dtype=np.float32,
                                     chunks=(max(1, min(len(xy), 1 << 16)), 2),
                                     compressors=[Crc32cCodec()])
            arr[...] = xy
            ids = np.asarray(self.ids, dtype=object)
            arr = group.create_array("ids", shape=ids.shape, dtype=str,
                                     chunks=(max(1, min(len(ids), 1 << 16)),),
                                     compressors=[ZstdCodec(level=3), Crc32cCodec()])
            arr[...] = ids
            group.attrs["zounds_xr:map"] = self.attrs  # last: a reader sees all or nothing
        except OSError as exc:
            raise StoreError(f"cannot write the map {path!r} to "
                             f"{getattr(store, 'url', store)!r}: {exc}") from exc


def _versions_digest(store, feature: str, ids: pd.Index) -> str:
    cat = store.catalog()
    column = f"{feature}.version"
    versions = cat.loc[ids, column].astype(str) if column in cat.columns else pd.Series([])
    digest = hashlib.sha256()
    for value in sorted(set(versions)):
        digest.update(value.encode() + b"\0")
    return digest.hexdigest()[:16]


def build_map(store, feature: str, method: str = "umap", *, seed: int = 0,
              sample: int = UMAP_SAMPLE, progress: Progress | None = None,
              save: bool = True) -> MapLayout:
    """Summarise every document's ``feature``, lay the documents out, store the map.

    Parameters
    ----------
    store : FeatureStore or store-like
    feature : str
        Any stored feature with a time axis (a spectrogram, a fingerprint, an
        embedding).
    method : {"umap", "pca"}
    seed, sample
        See :func:`layout_of`.
    progress : callable, optional
        ``progress(stage, done, total)`` with stages ``"reading"``, ``"umap"``,
        ``"placing"``.
    save : bool
        Store the map under ``<root>/maps/`` (see the module docs).

    Returns
    -------
    MapLayout
    """
    started = time.perf_counter()
    ids, x = summaries(store, feature, progress=progress)
    xy = layout_of(x, method, seed=seed, sample=sample, progress=progress)
    attrs = {"format": FORMAT, "format_version": FORMAT_VERSION, "feature": feature,
             "method": method, "documents": len(ids), "dims": int(x.shape[1]),
             "seed": seed, "sample": min(sample, len(ids)) if method == "umap" else None,
             "store_version": getattr(store, "version", None),
             "feature_versions": _versions_digest(store, feature, ids),
             "zounds_xr": __version__, "created": time.time(),
             "built_seconds": round(time.perf_counter() - started, 3)}
    layout = MapLayout(xy, attrs, ids)
    if save:
        layout.save(store)
    return layout


def load_map(store, feature: str, method: str) -> MapLayout | None:
    """Load the stored map of ``feature`` made with ``method``.

    The positions are read now, the ids when first used.

    Parameters
    ----------
    store : FeatureStore
        An opened store with a root (``zarr_store``, or a ``url``).
    feature : str
        A stored feature's name (not empty, no ``/``).
    method : {"umap", "pca"}
        How the map was made.

    Returns
    -------
    MapLayout or None
        ``None`` when there is no such map, it is unfinished, or it has another format
        version.

    Raises
    ------
    StoreError
        When the stored map is damaged.
    ParameterError
        If ``method`` or ``feature`` is not valid, or ``store`` has no root.
    """
    path = map_path(feature, method)
    try:
        group = zarr.open_group(root_store(store), path=path, mode="r", zarr_format=3)
    except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError,
            zarr.errors.NodeTypeValidationError):
        return None
    attrs = group.attrs.get("zounds_xr:map")
    if not isinstance(attrs, dict) or attrs.get("format") != FORMAT \
            or attrs.get("format_version") != FORMAT_VERSION:
        return None
    where = f"the map {path!r} of {getattr(store, 'url', store)!r}"
    try:
        xy = np.asarray(cast(zarr.Array, group["xy"])[...], dtype=np.float32)
        ids = cast(zarr.Array, group["ids"])
    except Exception as exc:
        raise StoreError(f"{where} is damaged ({type(exc).__name__}: {exc}); rebuild it "
                         f"with `zounds-xr map`") from exc
    if xy.shape != (attrs.get("documents"), 2) or ids.shape != (len(xy),):
        raise StoreError(f"{where} is damaged ({ids.shape} ids, positions {xy.shape}); "
                         f"rebuild it")
    return MapLayout(xy, dict(attrs), source=(group, where))
