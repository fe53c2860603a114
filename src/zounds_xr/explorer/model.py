"""What the explorer shows, independent of HTTP: documents, features, pictures, sound.

:class:`Explorer` wraps any object with the store's reading interface (``catalog()``,
``features``, ``store[doc_id]`` -> {feature: lazy DataArray}; see ``zx.open_store``) and
answers the JSON API's questions. Every read is of the requested time range only.
Where the catalog locates a document's frames (the store contract's ``"<f>.array"``,
``"<f>.offset"``, ``"<f>.frames"``, ``"<f>.index"``), pictures, envelopes, stored audio
and neighbour queries read those rows straight from the stored array (one Zarr read, no
DataArray built per request); otherwise the lazy DataArray is sliced by its
``TimeIndex`` before anything is computed.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import xarray as xr

from ..documents import labels
from ..documents.pyramid import MIN_BYTES, Pyramid, open_pyramid
from ..core.errors import DocumentNotFoundError, ParameterError, StoreError, ZoundsError
from ..frequency.index import FrequencyIndex
from ..search import persist as search
from ..timeseries.index import TimeIndex
from .catalog import CatalogView
from .maplayout import METHODS, build_map, load_map
from .mapview import MapView
from .playback import AudioClip, clip_for, sample_rate, source_of
from .render import POOLS, envelope, image_of

__all__ = ["Explorer", "FeatureInfo", "NotFoundError", "ReadOnlyError", "check_label_column",
           "feature_info"]

#: largest picture a request may ask for (pixels per side)
MAX_PIXELS = 4096
#: longest selection (seconds) the page may play or search with
MAX_SELECTION_SECONDS = 600.0
#: frames (samples) read per pixel column at most: longer ranges are read with a step,
#: which bounds the memory and the work of an overview of a long document
FRAMES_PER_COLUMN = {"image": 4, "values": 64}
#: a store this small gets a neighbour index of a feature of frames built (and saved)
#: on the first query when none is saved; codes (fingerprints) always do
IN_MEMORY_INDEX_DOCUMENTS = 5000
#: a store this small gets a PCA map computed in memory when none is stored
IN_MEMORY_MAP_DOCUMENTS = 20000


class NotFoundError(ZoundsError, LookupError):
    """A feature, index or resource the explorer does not have (HTTP 404)."""


class ReadOnlyError(ZoundsError, PermissionError):
    """A write to an explorer or store that is read-only (HTTP 403)."""


#: at most this long, a label column's name
MAX_COLUMN = 64


def check_label_column(column, features) -> str:
    """Check a label column's name: not empty, short, and naming no stored data.

    Parameters
    ----------
    column : str
        The name: 1 to ``MAX_COLUMN`` (64) characters, none of them control characters.
    features : collection of str
        The store's features: ``<feature>`` and ``<feature>.*`` are their columns.

    Returns
    -------
    str
        ``column``, unchanged.

    Raises
    ------
    ParameterError
        If ``column`` is not such a name, or names stored data (``id``, ``uri``,
        ``samplerate``, ``channels``, ``duration`` or a feature's columns).
    """
    if not isinstance(column, str) or not column.strip() or len(column) > MAX_COLUMN \
            or any(ord(c) < 32 for c in column):
        raise ParameterError(f"a label column is a name of 1..{MAX_COLUMN} printable "
                             f"characters, got {column!r}")
    stem = column.split(".", 1)[0]
    if column in ("id", "uri", "samplerate", "channels", "duration") or stem in features:
        raise ParameterError(f"{column!r} is stored data, not a label column")
    return column


@dataclass(frozen=True)
class FeatureInfo:
    """How the explorer sees one stored feature of one document."""

    name: str
    kind: str  # "audio", "spectrogram", "matrix" (time + another axis) or "series"
    dims: tuple
    shape: tuple
    dtype: str
    start: float  # seconds, first frame start
    step: float  # seconds between frames
    extent: float  # seconds one frame covers
    end: float  # seconds, end of the last frame
    samplerate: int | None  # audio features only
    scale: str | None  # name of the FrequencyScale
    bands: dict | None  # {"centers": [...], "edges": [...]} in Hz, for spectrograms

    def to_json(self) -> dict:
        """Return the fields as a JSON-safe dict (tuples as lists)."""
        return {"name": self.name, "kind": self.kind, "dims": list(self.dims),
                "shape": list(self.shape), "dtype": self.dtype, "start": self.start,
                "step": self.step, "extent": self.extent, "end": self.end,
                "samplerate": self.samplerate, "scale": self.scale, "bands": self.bands}


@dataclass(frozen=True)
class _Layout:
    """How a feature's frames sit in its stored arrays (the same for every document)."""

    kind: str
    dims: tuple  # time first
    shape: tuple  # sizes of the other dims


def time_index(da: xr.DataArray, name: str) -> TimeIndex:
    index = da.xindexes.get("time")
    if not isinstance(index, TimeIndex):
        raise NotFoundError(f"feature {name!r} has no TimeIndex on 'time' (dims {da.dims})")
    return index


def _band_edges(scale) -> list[float]:
    starts = np.asarray(scale.band_starts, dtype=float)
    stops = np.asarray(scale.band_stops, dtype=float)
    edges = np.append(starts, stops[-1]) if len(starts) else np.zeros(0)
    return [round(float(e), 3) for e in edges]


def feature_info(name: str, da: xr.DataArray) -> FeatureInfo:
    """Classify a stored feature for display (see :class:`FeatureInfo`)."""
    index = time_index(da, name)
    other = [d for d in da.dims if d not in ("time", "channel")]
    findex = da.xindexes.get("frequency")
    rate = sample_rate(index) if not other else None
    scale = bands = None
    if rate is not None:
        kind = "audio"
    elif other == ["frequency"] and isinstance(findex, FrequencyIndex):
        kind = "spectrogram"
        scale_obj = findex.scale
        scale = type(scale_obj).__name__
        bands = {"centers": [round(float(c), 3) for c in scale_obj.center_frequencies],
                 "edges": _band_edges(scale_obj)}
    elif len(other) == 1:
        kind = "matrix"
    elif not other:
        kind = "series"
    else:
        kind = "matrix"  # several feature axes: drawn flattened
    return FeatureInfo(name, kind, tuple(map(str, da.dims)), tuple(int(s) for s in da.shape),
                       str(da.dtype), float(index.start), float(index.frequency),
                       float(index.duration), float(index.end), rate, scale, bands)


def _parse_seconds(value, name: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number of seconds, got {value!r}") from None
    if not math.isfinite(seconds):
        raise ParameterError(f"{name} must be finite, got {value!r}")
    return seconds


def _stepped(sl: slice, width: int, per_column: int) -> slice:
    """Give ``sl`` a step that leaves at most ``per_column * width`` frames."""
    step = max(1, (sl.stop - sl.start) // (per_column * width))
    return slice(sl.start, sl.stop, step)


def compute(da: xr.DataArray) -> np.ndarray:
    """Values of a small lazy selection, read in this thread (no scheduler overhead)."""
    data = da.data
    if hasattr(data, "dask"):
        return np.asarray(data.compute(scheduler="synchronous"))
    return np.asarray(data)


class Explorer:
    """The explorer's view of a store (read-only).

    Parameters
    ----------
    store : object
        What ``zx.open_store`` returns, or anything with ``catalog()`` (a DataFrame
        indexed by id), ``features`` and ``store[doc_id]`` -> mapping of feature names to
        lazy DataArrays.
    url : str, optional
        The store's root URL (where ``zounds-xr index`` persists neighbour indexes);
        taken from ``store.url`` when not given.
    storage_options : dict, optional
        fsspec options for ``url`` (S3 credentials, endpoint).
    writable : bool, default False
        Allow label edits (:meth:`set_labels`), when the store can commit them
        (``store.set_labels``); otherwise the explorer is read-only and says why
        (``read_only``).
    """

    def __init__(self, store, url: str | None = None, storage_options: dict | None = None,
                 writable: bool = False):
        self.store = store
        self.read_only: str | None = None  # why labels cannot be edited
        if not writable:
            self.read_only = "the explorer was started read-only (serve --writable edits)"
        elif not callable(getattr(store, "set_labels", None)):
            self.read_only = (f"this store ({type(store).__name__}) cannot commit label "
                              f"edits")
        elif getattr(store, "read_only", False):
            self.read_only = "the store was opened read-only"
        self.url = url if url is not None else getattr(store, "url", None)
        self.storage_options = storage_options or getattr(store, "storage_options", None)
        self.features = list(store.features)
        self.view = CatalogView(store.catalog(), self.features)
        self._docs: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._clips: OrderedDict = OrderedDict()
        self._indexes: dict = {}
        self._opening: dict = {}  # feature -> lock held while its index is opened
        self._layouts: dict = {}  # feature -> _Layout
        self._arrays: dict = {}  # array path -> stored array
        self._pyramids: OrderedDict = OrderedDict()  # (doc, feature) -> Pyramid | None
        self._maps: dict = {}  # (feature, method) -> MapView

    # labels ------------------------------------------------------------------------
    @property
    def version(self):
        """The store's version (its newest commit), or ``None`` for a store without a log."""
        return getattr(self.store, "version", None)

    def refresh(self) -> None:
        """Read the catalog again (after an edit): the table, the maps' colours."""
        view = CatalogView(self.store.catalog(), self.features)
        with self._lock:
            self.view = view
            self._maps.clear()

    def set_labels(self, column: str, values: dict, author: str | None = None) -> dict:
        """Set the catalog column ``column`` of documents, in one commit.

        The edit is one commit in the store's log (``store.set_labels``); the table and
        the maps show it at once.

        Parameters
        ----------
        column : str
            A label column (see :func:`check_label_column`); new or existing.
        values : dict of str to (str, int, float, bool or None)
            Document id -> its value (finite numbers only); at least one.
        author : str, optional
            Who made the edit, recorded in the commit.

        Returns
        -------
        dict
            ``{"column", "documents", "version"}``: the column, how many documents
            were set and the commit's version.

        Raises
        ------
        ReadOnlyError
            When the explorer or the store is read-only.
        ParameterError
            For a column that names stored data, a value that is not a scalar, or an
            empty edit.
        DocumentNotFoundError
            For an id that is not in the catalog.
        """
        if self.read_only is not None:
            raise ReadOnlyError(f"labels cannot be edited: {self.read_only}")
        check_label_column(column, self.features)
        if not isinstance(values, dict) or not values:
            raise ParameterError("a label edit needs at least one document")
        if author is not None and not isinstance(author, str):
            raise ParameterError(f"author must be a string, got {author!r}")
        for doc_id, value in values.items():
            self.check_id(doc_id)
            if not (value is None or isinstance(value, (str, bool, int, float))) or (
                    isinstance(value, float) and not math.isfinite(value)):
                raise ParameterError(f"a label is a string, number, boolean or null; got "
                                     f"{value!r} for {doc_id!r}")
        try:
            version = self.store.set_labels(column, dict(values), author=author)
        except (PermissionError, StoreError) as exc:
            denied = isinstance(exc, PermissionError) or isinstance(exc.__cause__,
                                                                    PermissionError)
            if not denied:
                raise
            self.read_only = f"the store refused the write ({exc})"
            raise ReadOnlyError(f"labels cannot be edited: {self.read_only}") from exc
        self.refresh()
        return {"column": column, "documents": len(values), "version": version}

    # documents -------------------------------------------------------------------
    def check_id(self, doc_id: str) -> None:
        """Refuse an id that is not in the catalog.

        Raises
        ------
        DocumentNotFoundError
            If ``doc_id`` is not a document of the catalog.
        """
        if self.view.position(doc_id) is None:
            raise DocumentNotFoundError(f"no document {doc_id!r} in the store")

    def arrays(self, doc_id: str) -> dict:
        """Return ``{feature: lazy DataArray}`` of a document (the last 16 are kept open).

        Raises
        ------
        DocumentNotFoundError
            If ``doc_id`` is not in the catalog.
        """
        self.check_id(doc_id)
        with self._lock:
            if doc_id in self._docs:
                self._docs.move_to_end(doc_id)
                return self._docs[doc_id]
        arrays = dict(self.store[doc_id])
        with self._lock:
            self._docs[doc_id] = arrays
            while len(self._docs) > 16:
                self._docs.popitem(last=False)
        return arrays

    def feature(self, doc_id: str, name: str) -> xr.DataArray:
        """Return the lazy stored feature ``name`` of document ``doc_id``.

        Raises
        ------
        DocumentNotFoundError
            If ``doc_id`` is not in the catalog.
        NotFoundError
            If the document has no stored feature ``name``.
        """
        arrays = self.arrays(doc_id)
        if name not in arrays:
            raise NotFoundError(f"document {doc_id!r} has no stored feature {name!r}; it has "
                                f"{', '.join(sorted(arrays)) or 'none'}")
        return arrays[name]

    def document(self, doc_id: str) -> dict:
        """JSON of one document: its catalog row, its features and how it plays."""
        arrays = self.arrays(doc_id)
        infos = []
        for name, da in arrays.items():
            try:
                infos.append(feature_info(name, da).to_json())
            except NotFoundError:
                continue  # a feature without a time axis is listed in the row only
        row = self.view.row(doc_id)
        ends = [f["end"] for f in infos]
        duration = row.get("duration")
        if not isinstance(duration, (int, float)) or not duration > 0:
            duration = max(ends) if ends else 0.0
        playback = source_of(arrays, row.get("uri"))
        for info in infos:  # long features: drawn from a pyramid, if there is one
            values = math.prod(n for d, n in zip(info["dims"], info["shape"], strict=True)
                               if d != "channel")
            if values * 4 >= MIN_BYTES and info["name"] in self.features:
                info["pyramid"] = self.pyramid(doc_id, info["name"]) is not None
        return {"id": doc_id, "row": row, "duration": float(duration), "features": infos,
                "playback": playback}

    # straight reads ----------------------------------------------------------------
    def _layout(self, feature: str, doc_id: str) -> _Layout:
        layout = self._layouts.get(feature)
        if layout is None:
            da = self.feature(doc_id, feature).transpose("time", ...)
            info = feature_info(feature, da)
            layout = _Layout(info.kind, tuple(map(str, da.dims)), tuple(da.shape[1:]))
            self._layouts[feature] = layout
        return layout

    def kinds(self) -> dict:
        """Map each feature to its kind, from the first document that has it.

        Kinds are ``"audio"``, ``"spectrogram"``, ``"matrix"`` and ``"series"``.
        """
        cat = self.view.catalog
        out = {}
        for name in self.features:
            column = f"{name}.frames"
            has = (cat[column].fillna(0).to_numpy() > 0) if column in cat.columns else None
            if has is None or not has.any():
                continue
            doc_id = str(cat.index[int(np.argmax(has))])
            try:
                out[name] = self._layout(name, doc_id).kind
            except NotFoundError:
                continue
        return out

    def _located(self, doc_id: str, feature: str):
        """Locate a document's frames from the catalog: ``(path, first row, frames, TimeIndex)``.

        From the store contract's ``"<f>.array"``, ``.offset``, ``.frames`` and
        ``.index`` columns; ``None`` when the catalog does not say.
        """
        cat = self.view.catalog
        cols = [f"{feature}.{c}" for c in ("array", "offset", "frames", "index")]
        if not all(c in cat.columns for c in cols):
            return None
        path, offset, frames, text = cat.loc[doc_id, cols]
        if not (isinstance(path, str) and path and isinstance(text, str) and text):
            return None
        try:
            frames, offset = int(frames), int(offset)
        except (TypeError, ValueError):
            return None
        if frames <= 0:
            return None
        return path, offset, frames, labels.time_index(text, frames)

    def _direct(self, doc_id: str, feature: str):
        """Find where a document's frames of ``feature`` can be read straight from.

        Returns ``(stored array, first row, TimeIndex, layout)`` when one Zarr read (no
        DataArray built) gives them, else ``None`` (then the lazy DataArray is read).
        """
        if not hasattr(self.store, "array"):
            return None
        located = self._located(doc_id, feature)
        if located is None:
            return None
        path, offset, frames, index = located
        layout = self._layout(feature, doc_id)
        array = self._arrays.get(path)
        if array is None:
            array = self._arrays[path] = self.store.array(path)
        # encoded audio (bytes) or another shape: not rows of frames
        if (np.dtype(array.dtype).kind not in "fc" or tuple(array.shape[1:]) != layout.shape
                or array.shape[0] < offset + frames):
            return None
        return array, offset, index, layout

    def _rows(self, direct, sl: slice) -> np.ndarray:
        """Read frames ``sl`` (a slice with a step) of a ``_direct`` location, channels averaged."""
        array, offset, _, layout = direct
        rows = np.asarray(array[offset + sl.start:offset + sl.stop])[::sl.step or 1]
        if "channel" in layout.dims:
            rows = rows.mean(axis=layout.dims.index("channel"))
        return rows

    def document_end(self, doc_id: str) -> float:
        """Seconds: the catalog's duration, or the end of the longest stored feature."""
        row_duration: object = None
        if "duration" in self.view.catalog.columns:
            row_duration = self.view.catalog.at[doc_id, "duration"]
        ends = []
        for name in self.features:
            located = self._located(doc_id, name)
            if located is not None:
                ends.append(float(located[3].end))
        if not ends:
            for name, da in self.arrays(doc_id).items():
                try:
                    ends.append(feature_info(name, da).end)
                except NotFoundError:
                    continue
        try:
            duration = float(row_duration)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            duration = math.nan
        if math.isfinite(duration) and duration > 0:
            return max([duration, *ends])
        return max(ends) if ends else 0.0

    # ranges ------------------------------------------------------------------------
    def span(self, start, end, limit: float) -> tuple[float, float]:
        """Validate ``[start, end)`` seconds against a document ``limit`` seconds long."""
        t0 = 0.0 if start is None else _parse_seconds(start, "start")
        t1 = limit if end is None else _parse_seconds(end, "end")
        if t0 < 0:
            raise ParameterError(f"start must be >= 0 s, got {t0}")
        if t1 <= t0:
            raise ParameterError(f"end ({t1} s) must be after start ({t0} s)")
        if t0 >= limit:
            raise ParameterError(f"start ({t0} s) is at or after the end of the document "
                                 f"({limit:.6g} s)")
        return t0, min(t1, limit)

    @staticmethod
    def frames(index: TimeIndex, t0: float, t1: float) -> slice:
        """Return the slice of the frames of ``index`` that overlap ``[t0, t1)`` seconds."""
        return index.overlapping(Fraction(t0), Fraction(t1))

    # pictures ----------------------------------------------------------------------
    def pyramid(self, doc_id: str, feature: str) -> Pyramid | None:
        """Return the stored pyramid of a document's feature, or ``None``.

        Only a current pyramid (``documents.pyramid``) counts; it is looked up once per
        document and feature (the last 64 are kept).
        """
        key = (doc_id, feature)
        with self._lock:
            if key in self._pyramids:
                self._pyramids.move_to_end(key)
                return self._pyramids[key]
        found = None
        if self.url is not None or hasattr(self.store, "zarr_store"):
            row = self.view.catalog.loc[doc_id].to_dict()
            found = open_pyramid(self.store, doc_id, feature, row)
        with self._lock:
            self._pyramids[key] = found
            while len(self._pyramids) > 64:
                self._pyramids.popitem(last=False)
        return found

    def forget_pyramid(self, doc_id: str, feature: str) -> None:
        """Look the pyramid up again on the next picture (after one was built)."""
        with self._lock:
            self._pyramids.pop((doc_id, feature), None)

    def _visible(self, doc_id: str, name: str, start, end, width: int, one_d: bool,
                 stats: tuple[str, ...]):
        """Read the frames of ``name`` in ``[start, end)`` s, reduced to about ``width`` columns.

        Channels are averaged. ``one_d`` says which kind of feature the caller draws (an
        envelope of audio or a series, or an image); the other kind is refused before
        anything is read.

        Where the document has a pyramid of the feature and more frames fall on a pixel
        column than its first level summarises, the level matching the pixels is read
        (between ``width`` and ``2 * width`` rows of each of ``stats``); else the frames
        themselves, straight from the stored array when the catalog says where they
        are, thinned to a few per column.

        Returns ``(kind, frame slice covered, start s, step s, complex?, {stat: rows})``.
        """
        direct = self._direct(doc_id, name) if name in self.features else None
        if direct is not None:
            index, kind = direct[2], direct[3].kind
            is_complex = np.dtype(direct[0].dtype).kind == "c"
        else:
            da = self.feature(doc_id, name)
            index, kind = time_index(da, name), feature_info(name, da).kind
            is_complex = np.dtype(da.dtype).kind == "c"
        if one_d and kind not in ("audio", "series"):
            raise ParameterError(f"feature {name!r} is a {kind}; ask for its image")
        if not one_d and kind in ("audio", "series"):
            raise ParameterError(f"feature {name!r} is 1-D ({kind}); ask for its values")
        t0, t1 = self.span(start, end, float(index.end))
        sl = self.frames(index, t0, t1)
        per_column = FRAMES_PER_COLUMN["values" if one_d else "image"]
        span = (sl.stop - sl.start) / width
        pyramid = self.pyramid(doc_id, name) if span > per_column and name in \
            self.features else None
        level = pyramid.level_for(span) if pyramid is not None else None
        if pyramid is not None and level is not None:
            out = {}
            for stat in stats:
                rows, f0, f1 = pyramid.read(stat, level, sl.start, sl.stop)
                out[stat] = rows
            return kind, slice(f0, f1), float(index.start), float(index.frequency), \
                False, out
        stepped = _stepped(sl, width, per_column)
        if direct is not None:
            values = self._rows(direct, stepped)
        else:
            part = da.isel(time=stepped)
            if "channel" in part.dims:
                part = part.mean("channel")
            values = compute(part.transpose("time", ...))
        return kind, sl, float(index.start), float(index.frequency), is_complex, \
            dict.fromkeys(stats, values)

    def image(self, doc_id: str, name: str, start=None, end=None, width: int = 1024,
              height: int = 256, db: bool | None = None, power: float = 1.0,
              pool: str = "max") -> tuple[bytes, dict]:
        """PNG of the frames of ``name`` overlapping ``[start, end)`` seconds.

        Only those frames are read, or the pyramid level that matches ``width``.
        Channels are averaged. ``db`` defaults to True for spectrograms and complex
        features. ``pool`` ("max" or "mean") says how frames and bands that share a
        pixel are reduced. The metadata gives the value range, the exact span the
        picture covers (``t0``, ``t1``: frame edges, seconds) and the pyramid level
        read (``level``: frames per row ``2**level``; 0 for the frames themselves).
        """
        self.check_id(doc_id)
        for value, what in ((width, "width"), (height, "height")):
            if not 1 <= value <= MAX_PIXELS:
                raise ParameterError(f"{what} must be in 1..{MAX_PIXELS}, got {value}")
        if not power > 0:
            raise ParameterError(f"power must be positive, got {power}")
        if pool not in POOLS:
            raise ParameterError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
        kind, sl, start_s, step_s, is_complex, found = self._visible(
            doc_id, name, start, end, width, one_d=False, stats=(pool,))
        values = found[pool]
        t0, t1 = start_s + sl.start * step_s, start_s + sl.stop * step_s
        if db is None:
            db = kind == "spectrogram" or is_complex
        if values.shape[0] == 0:
            raise ParameterError(f"no frames of {name!r} in {t0}..{t1} s")
        png, meta = image_of(values, db=db, power=power, width=width, height=height,
                             pool=pool)
        level = 0 if values.shape[0] >= sl.stop - sl.start else \
            int(round(math.log2((sl.stop - sl.start) / values.shape[0])))
        meta.update({"t0": t0, "t1": t1, "level": level,
                     "frames": [int(sl.start), int(sl.stop)], "bands": values.shape[1]
                     if values.ndim > 1 else 1})
        return png, meta

    def values(self, doc_id: str, name: str, start=None, end=None, width: int = 1024) -> dict:
        """Compute the min/max envelope of a 1-D feature (audio or a series).

        It is read from the pyramid level that matches ``width`` where there is one.

        Parameters
        ----------
        doc_id : str
            A document of the catalog.
        name : str
            A feature of kind ``"audio"`` or ``"series"``.
        start, end : float or str, optional
            Seconds, ``0 <= start < end``; default the whole document (``end`` is
            clipped to its end).
        width : int, default 1024
            Pixel columns, ``1..MAX_PIXELS`` (4096).

        Returns
        -------
        dict
            ``t0``, ``t1`` (the seconds covered), ``min`` and ``max`` (``width`` values
            each, ``None`` where not finite) and ``kind``.

        Raises
        ------
        DocumentNotFoundError
            If ``doc_id`` is not in the catalog.
        NotFoundError
            If the document has no feature ``name`` (or it has no ``TimeIndex``).
        ParameterError
            If ``width`` or the span is out of range, or the feature is an image.
        """
        self.check_id(doc_id)
        if not 1 <= width <= MAX_PIXELS:
            raise ParameterError(f"width must be in 1..{MAX_PIXELS}, got {width}")
        kind, sl, start_s, step_s, _, found = self._visible(
            doc_id, name, start, end, width, one_d=True, stats=("min", "max"))

        def one(values):
            values = values.reshape(values.shape[0], -1).mean(axis=1) if values.ndim > 1 \
                else values
            return np.abs(values) if np.iscomplexobj(values) else values

        lo, hi = envelope(one(found["min"]), width)[0], envelope(one(found["max"]), width)[1]
        finite = np.isfinite(lo) & np.isfinite(hi)
        return {"t0": start_s + sl.start * step_s, "t1": start_s + sl.stop * step_s,
                "min": [float(v) if f else None for v, f in zip(lo, finite, strict=True)],
                "max": [float(v) if f else None for v, f in zip(hi, finite, strict=True)],
                "kind": kind}

    # sound -------------------------------------------------------------------------
    def clip(self, doc_id: str, start=None, end=None) -> AudioClip:
        """Return the sound of ``[start, end)`` seconds of a document.

        Stored audio is read straight from its array; otherwise see
        :func:`~zounds_xr.explorer.playback.clip_for`. The last 32 clips are kept.

        Parameters
        ----------
        doc_id : str
            A document of the catalog.
        start, end : float or str, optional
            Seconds, ``0 <= start < end``, at most ``MAX_SELECTION_SECONDS`` (600) apart;
            default the whole document.

        Returns
        -------
        AudioClip

        Raises
        ------
        DocumentNotFoundError
            If ``doc_id`` is not in the catalog.
        ParameterError
            If the span is out of range or too long, or the document has nothing to
            play.
        """
        self.check_id(doc_id)
        t0, t1 = self.span(start, end, self.document_end(doc_id))
        if t1 - t0 > MAX_SELECTION_SECONDS:
            raise ParameterError(f"selections are at most {MAX_SELECTION_SECONDS:g} s long, "
                                 f"got {t1 - t0:.6g} s")
        key = (doc_id, t0, t1)
        with self._lock:
            if key in self._clips:
                self._clips.move_to_end(key)
                return self._clips[key]
        clip = self._stored_clip(doc_id, t0, t1)
        if clip is None:
            clip = clip_for(self.arrays(doc_id), self.view.row(doc_id).get("uri"), t0, t1)
        with self._lock:
            self._clips[key] = clip
            while len(self._clips) > 32:
                self._clips.popitem(last=False)
        return clip

    def _stored_clip(self, doc_id: str, t0: float, t1: float) -> AudioClip | None:
        """Read the stored audio of ``[t0, t1)`` straight from its array, or ``None``."""
        best = None
        for name in self.features:
            located = self._located(doc_id, name)
            if located is None:
                continue
            index = located[3]
            rate = 1 / index.frequency if index.frequency == index.duration else None
            if rate is None or rate.denominator != 1 or rate < 1000:
                continue
            if best is None or rate > best[0]:
                best = (int(rate), name)
        if best is None:
            return None
        rate, name = best
        direct = self._direct(doc_id, name)
        if direct is None or direct[3].kind != "audio":
            return None
        array, offset, index, layout = direct
        sl = self.frames(index, t0, t1)
        channels = layout.shape[0] if layout.shape else 1
        first = offset + sl.start

        def read(f0, f1):
            return np.asarray(array[first + f0:first + f1])

        return AudioClip(read, sl.stop - sl.start, channels, rate, f"stored:{name}")

    # neighbours and the map --------------------------------------------------------
    def index(self, feature: str) -> search.StoreIndex:
        """Return the search index of ``feature`` (:mod:`zounds_xr.search`).

        The newest one saved in the store (``zounds-xr index``, or kept by ingest), the
        parts it lacks hashed; or, when none is saved, one with the default parameters,
        for fingerprint codes or a store of at most ``IN_MEMORY_INDEX_DOCUMENTS``
        documents. Kept for the session.

        Parameters
        ----------
        feature : str
            A stored feature.

        Returns
        -------
        zounds_xr.search.StoreIndex

        Raises
        ------
        NotFoundError
            If the store has no such feature, or no saved index of it and is too large
            to build one now.
        """
        if feature not in self.features:
            raise NotFoundError(f"the store has no feature {feature!r}; it has "
                                f"{', '.join(self.features) or 'none'}")
        with self._lock:
            cached = self._indexes.get(feature)
            opening = self._opening.setdefault(feature, threading.Lock())
        if cached is not None:
            return cached
        # one opening per feature: a request that comes while the server's start-up
        # opens it (prepare_indexes) waits for that, rather than reading it again
        with opening:
            with self._lock:
                cached = self._indexes.get(feature)
            if cached is None:
                cached = self._open_index(feature)
                with self._lock:
                    self._indexes[feature] = cached
        return cached

    def _open_index(self, feature: str):
        saved = search.configured(self.store, feature)
        if saved:
            index = search.load(self.store, saved[0])
        else:
            column = f"{feature}.array"
            paths = self.view.catalog[column].dropna() if column in self.view.catalog \
                else None
            codes = paths is not None and len(paths) > 0 and \
                np.dtype(self.store.array(paths.iloc[0]).dtype).kind == "u"
            if not codes and len(self.view) > IN_MEMORY_INDEX_DOCUMENTS:
                raise NotFoundError(
                    f"no neighbour index of {feature!r}; build it with `zounds-xr index "
                    f"{self.url or 'STORE'} --feature {feature}`")
            index = search.open_index(self.store, feature)
        return index

    def prepare_indexes(self) -> None:
        """Open the saved search index of every feature that has one, now.

        The server calls this in a thread as it starts, so the first neighbour query
        does not read and check the index files; a damaged index is left for the query
        that asks for it to report.
        """
        for feature in dict.fromkeys(c.feature for c in search.configured(self.store)):
            if feature in self.features:
                try:
                    self.index(feature)
                except ZoundsError:
                    pass  # the query that asks for it reports it

    def indexes(self) -> list[str]:
        """List the features with a saved search index (or one built since the start)."""
        found = set(self._indexes) | {c.feature for c in search.configured(self.store)}
        return [f for f in self.features if f in found]

    def neighbours(self, feature: str, doc_id: str, start=None, end=None, k: int = 10,
                   exclude: str | None = "selection") -> dict:
        """Find the ``k`` stretches of ``feature`` nearest to ``[start, end)`` of ``doc_id``.

        The semantics are :mod:`zounds_xr.search`'s.

        Parameters
        ----------
        feature : str
            A stored feature (see :meth:`index`).
        doc_id : str
            The query's document.
        start, end : float or str, optional
            The query's seconds, ``0 <= start < end``; default the whole document.
        k : int, default 10
            Results, ``1..200``.
        exclude : {"selection", "document", None}
            Leave out stretches overlapping the query, the whole query document, or
            nothing.

        Returns
        -------
        dict
            ``feature``, ``query``, the index's ``window``, ``hop``, ``windows`` and
            ``bits``, and ``results`` (nearest first, each with its ``source``).

        Raises
        ------
        DocumentNotFoundError
            If ``doc_id`` is not in the catalog.
        NotFoundError
            If the store has no such feature or no usable index of it.
        ParameterError
            If ``k`` or the span is out of range, or the document has no stored frames
            of ``feature``.
        """
        if not 1 <= k <= 200:
            raise ParameterError(f"k must be in 1..200, got {k}")
        self.check_id(doc_id)
        if feature not in self.features:
            raise NotFoundError(f"the store has no feature {feature!r}; it has "
                                f"{', '.join(self.features) or 'none'}")
        located = self._located(doc_id, feature)
        if located is None:
            raise ParameterError(f"document {doc_id!r} has no stored frames of {feature!r}")
        t0, t1 = self.span(start, end, float(located[3].end))
        index = self.index(feature)
        found = index.neighbours(doc_id, t0, t1, k=k, exclude=exclude)
        out = []
        for r in found["results"]:
            item = r.to_json()
            pos = self.view.position(r.id)
            item["source"] = self.view.table["source"].iat[pos] if pos is not None else ""
            out.append(item)
        config = index.config
        return {"feature": feature,
                "query": {"id": doc_id, "start": t0, "end": t1, **found["query"]},
                "window": config.rule.window * config.step,
                "hop": config.rule.hop * config.step, "windows": len(index),
                "bits": index.index.bits, "results": out}

    def prepare_maps(self) -> None:
        """Open the stored maps and match them to the catalog now.

        The server calls this in a thread as it starts, so the first hover or colouring
        does not wait; a damaged map is left for the request that asks for it to report.
        """
        if self.url is None and not hasattr(self.store, "zarr_store"):
            return
        for feature in self.features:
            for method in METHODS:  # the one map_view(feature) shows: UMAP first
                try:
                    layout = load_map(self.store, feature, method)
                    if layout is None:
                        continue
                    view = MapView(layout, self.view, stored=True)
                    with self._lock:  # drawable now; matched to the catalog below
                        view = self._maps.setdefault((feature, method), view)
                        self._maps.setdefault((feature, None), view)
                    view.positions  # noqa: B018 (the ids read and matched now)
                except ZoundsError:
                    pass  # a damaged map: the request that asks for it says so
                break

    def map_view(self, feature: str, method: str | None = None) -> MapView:
        """Return the map of ``feature``.

        The stored one made with ``method``, or, for a store of at most
        ``IN_MEMORY_MAP_DOCUMENTS`` documents without one, a PCA map computed now (not
        stored: ``zounds-xr map`` stores one). Kept for the session.

        Parameters
        ----------
        feature : str
            A stored feature.
        method : {"umap", "pca"}, optional
            Default: UMAP if stored, else PCA.

        Returns
        -------
        MapView

        Raises
        ------
        NotFoundError
            If the store has no such feature, or no such map and is too large to
            compute one now.
        ParameterError
            If ``method`` is not one of ``METHODS``.
        StoreError
            If the stored map is damaged.
        """
        if feature not in self.features:
            raise NotFoundError(f"the store has no feature {feature!r}; it has "
                                f"{', '.join(self.features) or 'none'}")
        if method is not None and method not in METHODS:
            raise ParameterError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        key = (feature, method)
        with self._lock:
            found = self._maps.get(key)
        if found is not None:
            return found
        layout = None
        if self.url is not None or hasattr(self.store, "zarr_store"):
            for candidate in [method] if method else METHODS:
                layout = load_map(self.store, feature, candidate)
                if layout is not None:
                    break
        if layout is not None:
            found = MapView(layout, self.view, stored=True)
        elif method in (None, "pca") and len(self.view) <= IN_MEMORY_MAP_DOCUMENTS:
            found = MapView(build_map(self.store, feature, "pca", save=False), self.view,
                            stored=False)
        else:
            raise NotFoundError(
                f"no {method or 'stored'} map of {feature!r}; build it with `zounds-xr map "
                f"{self.url or 'STORE'} --feature {feature} --method {method or 'umap'}`")
        with self._lock:
            self._maps[key] = found
        return found
