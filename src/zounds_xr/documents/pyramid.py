"""Multi-resolution summaries ("pyramids") of long stored features.

A picture of a whole hour of a 2048-bin |STFT| would otherwise read every frame (635 MB
at 22.05 kHz). A pyramid keeps, for one document and one feature, summaries over
``2**k`` consecutive frames for ``k = base, base + 1, ...``: row ``r`` of level ``k``
summarises frames ``[r * 2**k, (r + 1) * 2**k)`` (the last row the frames that are
left). A view ``F`` frames wide drawn on ``W`` pixels reads level
``floor(log2(F / W))``: between ``W`` and ``2 W`` rows whatever the zoom.

Statistics (channels averaged first, complex values as magnitudes):

- 1-D features (audio, series): ``min``, ``max`` and ``mean`` (waveform envelopes);
- features with other axes (spectra, matrices): ``max`` and ``mean`` per band.

Storage, next to the store's parts (the store's reader never looks there)::

    <root>/pyramids/<feature>/<doc_id>/<stat>_<k>     float32 (rows, ...) arrays,
                                                      every chunk with a CRC32C
    attrs "zounds_xr:pyramid"                         format, levels, stats, and the
                                                      document's source: the stored
                                                      array, offset, frame count and
                                                      feature version it summarises

The attributes are written last, so a half-written pyramid is never used, and a pyramid
whose source differs from the document's catalog row (the document was re-ingested or
the feature changed) is stale: :func:`open_pyramid` ignores it and :func:`build_pyramid`
replaces it. Reading a damaged chunk raises :class:`~zounds_xr.core.errors.StoreError`
naming the store, document, feature and level, as any stored data does.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

import numpy as np
import zarr
import zarr.errors
import zarr.storage
from zarr.codecs import Crc32cCodec

from ..core.errors import ParameterError, StoreError
from .store import validate_id

__all__ = [
    "MIN_BYTES",
    "PYRAMID",
    "Pyramid",
    "build_pyramid",
    "build_pyramids",
    "long_documents",
    "open_pyramid",
    "pyramid_path",
    "root_store",
]

PYRAMID = "zounds_xr:pyramid"
FORMAT_VERSION = 1
#: a document's feature gets a pyramid by default when its frames hold at least this
#: many bytes (as float32, channels averaged): below, a picture of all of it reads little
#: enough. 95 s of a 1025-band |STFT| or of 44.1 kHz audio; 12 minutes of a 128-band mel
MIN_BYTES = 1 << 24
#: first level (2**k frames per row) by kind: a spectrum's rows are large, so its
#: pyramid starts early (about the size of the feature in all); audio's rows are one
#: number, so reading 64 samples per pixel is cheap and the pyramid is 1/10 of the audio
BASE_LEVEL = {"1d": 6, "2d": 2}
#: the top level is the first with at most this many rows
TOP_ROWS = 256
#: bytes of frames summarised per read while building (at least 2**12 frames)
BLOCK_BYTES = 1 << 24
#: uncompressed bytes of a chunk (the unit a read fetches and checks)
CHUNK_BYTES = 1 << 17

ProgressCallback = Callable[[int, int], None]


def pyramid_path(feature: str, doc_id: str) -> str:
    """Where the pyramid of ``feature`` of ``doc_id`` lives, relative to the root."""
    validate_id(doc_id)
    if not isinstance(feature, str) or not feature or "/" in feature:
        raise ParameterError(f"invalid feature name {feature!r}")
    return f"pyramids/{feature}/{doc_id}"


def root_store(store):
    """Return the zarr store at a feature store's root, where derived data is written.

    Derived data are pyramids and maps; the store is ``store.zarr_store``, or one
    opened from ``store.url``.
    """
    found = getattr(store, "zarr_store", None)
    if found is not None:
        return found
    url = getattr(store, "url", None)
    if not isinstance(url, str):
        raise ParameterError(f"cannot locate the root of {store!r}: it has no url")
    if "://" in url and not url.startswith("file://"):
        return zarr.storage.FsspecStore.from_url(
            url, storage_options=getattr(store, "storage_options", None) or None)
    return zarr.storage.LocalStore(url.removeprefix("file://"))


def _source(row: dict, feature: str) -> dict | None:
    """Describe what a pyramid of ``feature`` summarises, from the document's catalog row."""
    path = row.get(f"{feature}.array")
    if not isinstance(path, str) or not path:
        return None
    try:
        offset, frames = int(row[f"{feature}.offset"]), int(row[f"{feature}.frames"])
    except (KeyError, TypeError, ValueError):
        return None
    version = row.get(f"{feature}.version")
    return {"array": path, "offset": offset, "frames": frames,
            "version": version if isinstance(version, str) else ""}


def _levels(frames: int, base: int) -> list[int]:
    levels = [base]
    while -(-frames // (1 << levels[-1])) > TOP_ROWS:
        levels.append(levels[-1] + 1)
    return levels


@dataclass(frozen=True)
class Pyramid:
    """An opened pyramid: ``read(stat, level, first, stop)`` returns summary rows."""

    group: zarr.Group
    where: str  # "store ..., document ..., feature ..." for errors
    frames: int
    levels: tuple[int, ...]
    stats: tuple[str, ...]

    def level_for(self, frames_per_pixel: float) -> int | None:
        """Return the coarsest level with at most ``frames_per_pixel`` frames per row.

        ``None`` when even the first level is coarser (then read the frames).
        """
        if frames_per_pixel < (1 << self.levels[0]):
            return None
        k = int(math.floor(math.log2(frames_per_pixel)))
        return min(k, self.levels[-1])

    def read(self, stat: str, level: int, first: int, stop: int) -> tuple[np.ndarray, int, int]:
        """Summary rows of frames ``[first, stop)`` at ``level``.

        Returns ``(rows, first frame, stop frame)``: the rows cover whole groups of
        ``2**level`` frames, so the span they cover starts at or before ``first`` and
        ends at or after ``stop`` (at most the document's end).
        """
        if stat not in self.stats or level not in self.levels:
            raise ParameterError(f"the pyramid has stats {self.stats} and levels "
                                 f"{self.levels}, not {stat!r} at level {level}")
        r0, r1 = first >> level, -(-stop // (1 << level))
        try:
            array = cast(zarr.Array, self.group[f"{stat}_{level}"])  # checked on open
            rows = np.asarray(array[r0:r1])
        except Exception as exc:
            what = f"{type(exc).__name__}: {exc}"
            if "checksum" in what.lower() or "crc" in what.lower():
                what = f"a chunk fails its checksum (damaged data): {what}"
            raise StoreError(f"cannot read the pyramid of {self.where}, level {level} "
                             f"{stat!r}, rows {r0}:{r1}: {what}") from exc
        if rows.shape[0] != r1 - r0:
            raise StoreError(f"the pyramid of {self.where} has {rows.shape[0]} rows at "
                             f"level {level} where {r1 - r0} were expected (damaged)")
        return rows, r0 << level, min(r1 << level, self.frames)


def open_pyramid(store, doc_id: str, feature: str, row: dict | None = None
                 ) -> Pyramid | None:
    """Open the stored pyramid of ``feature`` of ``doc_id``, if there is a fresh one.

    ``None`` when there is none or it is stale (its source differs from the
    document's catalog ``row``).

    Parameters
    ----------
    store : FeatureStore or store-like
        What ``zx.open_store`` returns (anything with ``catalog()``/``row()``, and
        ``zarr_store`` or a ``url``).
    doc_id, feature : str
    row : dict, optional
        The document's catalog row (read from the store when not given).

    Raises
    ------
    StoreError
        When the pyramid's metadata is damaged.
    """
    path = pyramid_path(feature, doc_id)
    row = _row(store, doc_id) if row is None else row
    source = _source(row, feature)
    if source is None:
        return None
    try:
        group = zarr.open_group(root_store(store), path=path, mode="r", zarr_format=3)
    except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError,
            zarr.errors.NodeTypeValidationError):
        return None
    attrs = group.attrs.get(PYRAMID)
    if not isinstance(attrs, dict) or attrs.get("format") != FORMAT_VERSION:
        return None  # unfinished, or written by another version: rebuilt when asked
    if attrs.get("source") != source:
        return None  # stale
    where = f"document {doc_id!r}, feature {feature!r} in {getattr(store, 'url', store)!r}"
    levels, stats = tuple(attrs["levels"]), tuple(attrs["stats"])
    frames = source["frames"]
    for level in levels:
        for stat in stats:
            try:
                arr = group[f"{stat}_{level}"]
            except KeyError:
                raise StoreError(f"the pyramid of {where} lacks {stat}_{level} "
                                 f"(damaged; rebuild it)") from None
            if not isinstance(arr, zarr.Array) or arr.shape[0] != -(-frames // (1 << level)):
                raise StoreError(f"the pyramid of {where} has a damaged {stat}_{level} "
                                 f"(shape {getattr(arr, 'shape', None)}); rebuild it")
    return Pyramid(group, where, frames, levels, stats)


def _row(store, doc_id: str) -> dict:
    if hasattr(store, "row"):
        return dict(store.row(doc_id))
    return dict(store.catalog().loc[doc_id].to_dict())


def _groups(ufunc, values: np.ndarray, factor: int, dtype=None) -> np.ndarray:
    """``ufunc`` over each group of ``factor`` rows (the last may be short).

    What ``ufunc.reduceat`` gives, in the same order of operations (bitwise equal),
    10-15x faster: whole groups are one reduction over a reshaped axis.
    """
    full = values.shape[0] // factor
    whole = ufunc.reduce(values[:full * factor].reshape(full, factor, *values.shape[1:]),
                         axis=1, dtype=dtype)
    tail = values[full * factor:]
    if not len(tail):
        return whole
    return np.concatenate([whole, ufunc.reduce(tail, axis=0, keepdims=True, dtype=dtype)])


def _summarise(rows: np.ndarray, factor: int, stats: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Summarise each group of ``factor`` rows (the last one may be short).

    The stats have ``sum`` and ``count`` in place of ``mean`` so that groups combine
    exactly.
    """
    n = rows.shape[0]
    starts = np.arange(-(-n // factor)) * factor
    out = {"count": np.minimum(factor, n - starts).astype(np.float64)}
    if "max" in stats:
        out["max"] = _groups(np.maximum, rows, factor)
    if "min" in stats:
        out["min"] = _groups(np.minimum, rows, factor)
    out["sum"] = _groups(np.add, rows, factor, dtype=np.float64)
    return out


def _combine(parts: dict[str, np.ndarray], factor: int) -> dict[str, np.ndarray]:
    """Summaries of groups of ``factor`` consecutive summary rows."""
    return {name: _groups({"max": np.maximum, "min": np.minimum}.get(name, np.add), values,
                          factor)
            for name, values in parts.items()}


def _mean(parts: dict[str, np.ndarray]) -> np.ndarray:
    count = parts["count"].reshape((-1,) + (1,) * (parts["sum"].ndim - 1))
    return (parts["sum"] / count).astype(np.float32)


def _chunk_rows(row_bytes: int) -> int:
    rows = max(1, CHUNK_BYTES // max(row_bytes, 1))
    return 1 << int(math.floor(math.log2(rows)))


def _frames_reader(store, doc_id: str, feature: str):
    """``(read(a, b) -> float32 rows with channels averaged, magnitudes), kind, shape)``."""
    arrays = store[doc_id]
    if feature not in arrays:
        raise ParameterError(f"document {doc_id!r} has no stored feature {feature!r}")
    da = arrays[feature]
    if "time" not in da.dims:
        raise ParameterError(f"feature {feature!r} has no time axis (dims {da.dims})")
    da = da.transpose("time", ...)
    channel = da.dims.index("channel") if "channel" in da.dims else None
    rest = tuple(s for d, s in zip(da.dims[1:], da.shape[1:], strict=True) if d != "channel")
    kind = "2d" if rest else "1d"

    def read(a: int, b: int) -> np.ndarray:
        part = da.data[a:b]
        values = np.asarray(part.compute(scheduler="synchronous")
                            if hasattr(part, "dask") else part)
        if np.iscomplexobj(values):
            values = np.abs(values)
        values = values.astype(np.float32, copy=False)
        if channel is not None:
            values = values.mean(axis=channel, dtype=np.float32)
        return values

    return read, kind, rest, int(da.shape[0])


def build_pyramid(store, doc_id: str, feature: str, *, progress: ProgressCallback | None = None
                  ) -> Pyramid:
    """Compute and store the pyramid of ``feature`` of ``doc_id`` (see the module docs).

    The frames are read once, about ``BLOCK_BYTES`` at a time (memory stays bounded
    however long the document); a pyramid that is already current is returned as it is.

    Parameters
    ----------
    store : FeatureStore or store-like
        ``store[doc_id]`` gives ``{feature: lazy DataArray}``; the pyramid is written
        under ``<root>/pyramids/`` (allowed even where the store is opened read-only:
        it is derived data, as the explorer's indexes are).
    doc_id, feature : str
    progress : callable, optional
        ``progress(frames_done, frames_total)`` after every block.

    Returns
    -------
    Pyramid

    Raises
    ------
    ParameterError
        For a feature the document does not store, or one without a time axis.
    StoreError
        When the frames cannot be read or the pyramid cannot be written.
    """
    row = _row(store, doc_id)
    current = open_pyramid(store, doc_id, feature, row)
    if current is not None:
        return current
    source = _source(row, feature)
    if source is None:
        raise ParameterError(f"document {doc_id!r} has no stored feature {feature!r}")
    started = time.perf_counter()
    read, kind, rest, frames = _frames_reader(store, doc_id, feature)
    if frames != source["frames"]:
        raise StoreError(f"document {doc_id!r}, feature {feature!r}: the catalog says "
                         f"{source['frames']} frames, the stored array {frames}")
    stats = ("min", "max", "mean") if kind == "1d" else ("max", "mean")
    base = BASE_LEVEL[kind]
    levels = _levels(frames, base)
    row_bytes = int(np.prod(rest, dtype=np.int64)) * 4
    block_level = max(12, int(math.log2(max(1, BLOCK_BYTES // row_bytes))))
    block_frames = 1 << block_level
    try:
        group = zarr.open_group(root_store(store), path=pyramid_path(feature, doc_id),
                                mode="w", zarr_format=3)
        chunk = _chunk_rows(row_bytes)
        arrays = {}
        for level in levels:
            n = -(-frames // (1 << level))
            for stat in stats:
                arrays[stat, level] = group.create_array(
                    f"{stat}_{level}", shape=(n, *rest), dtype=np.float32,
                    chunks=(min(chunk, max(n, 1)), *rest), compressors=[Crc32cCodec()],
                    fill_value=0.0, config={"write_empty_chunks": True})
        carried: list[dict[str, np.ndarray]] = []  # per block: summaries over the block
        done = 0
        while done < frames:
            stop = min(frames, done + block_frames)
            parts = _summarise(read(done, stop), 1 << base, stats)
            level = base
            while True:
                if level in levels:
                    r0 = done >> level
                    for stat in stats:
                        values = _mean(parts) if stat == "mean" else parts[stat]
                        arrays[stat, level][r0:r0 + values.shape[0]] = values
                if level >= min(levels[-1], block_level):
                    break
                parts = _combine(parts, 2)
                level += 1
            carried.append(parts)
            done = stop
            if progress is not None:
                progress(done, frames)
        if levels[-1] > block_level:
            # higher levels from one summary row per block: few rows, kept in memory
            parts = {k: np.concatenate([c[k] for c in carried]) for k in carried[0]}
            for level in range(block_level + 1, levels[-1] + 1):
                parts = _combine(parts, 2)
                for stat in stats:
                    arrays[stat, level][...] = _mean(parts) if stat == "mean" else parts[stat]
        group.attrs[PYRAMID] = {
            "format": FORMAT_VERSION, "feature": feature, "document": doc_id,
            "source": source, "kind": kind, "levels": levels, "stats": list(stats),
            "built_seconds": round(time.perf_counter() - started, 3)}
    except (OSError, zarr.errors.ContainsArrayError, zarr.errors.ContainsGroupError) as exc:
        raise StoreError(f"cannot write the pyramid of document {doc_id!r}, feature "
                         f"{feature!r} to {getattr(store, 'url', store)!r}: "
                         f"{type(exc).__name__}: {exc}") from exc
    found = open_pyramid(store, doc_id, feature, row)
    assert found is not None, "a pyramid just written opens"
    return found


def _row_values(store, doc_id: str, feature: str) -> int:
    """Return the values in one frame of a stored feature, channels averaged.

    That is what a pyramid row holds.
    """
    da = store[doc_id][feature]
    return int(np.prod([n for d, n in da.sizes.items() if d not in ("time", "channel")],
                       dtype=np.int64))


def long_documents(store, features: Iterable[str] | None = None, ids=None,
                   min_bytes: int | None = None) -> list[tuple[str, str, int]]:
    """List the stored features whose frames hold at least ``min_bytes`` as float32.

    Returns ``(doc_id, feature, frames)`` of each, longest first, from the catalog
    (``min_bytes`` defaults to ``MIN_BYTES``), and the width of one frame of each
    feature (read from one document).
    """
    min_bytes = MIN_BYTES if min_bytes is None else int(min_bytes)
    cat = store.catalog()
    if ids is not None:
        cat = cat.loc[cat.index.intersection(list(ids))]
    names = list(store.features) if features is None else list(features)
    out = []
    for name in names:
        column = f"{name}.frames"
        if column not in cat.columns:
            raise ParameterError(f"the store has no feature {name!r}; it has "
                                 f"{', '.join(store.features) or 'none'}")
        frames = cat[column].fillna(0).astype(np.int64)
        frames = frames[frames > 0]
        if frames.empty:
            continue
        width = _row_values(store, str(frames.index[0]), name)
        for doc_id, n in frames[frames * 4 * width >= min_bytes].items():
            out.append((str(doc_id), name, int(n)))
    return sorted(out, key=lambda t: (-t[2], t[0], t[1]))


def build_pyramids(store, features: Iterable[str] | None = None, ids=None, *,
                   min_bytes: int | None = None, progress: ProgressCallback | None = None
                   ) -> list[tuple[str, str]]:
    """Build the missing or stale pyramids of every long enough document.

    A document qualifies when its frames of a feature hold at least ``min_bytes``
    (see :func:`long_documents`).

    Parameters
    ----------
    store : FeatureStore or store-like
    features : iterable of str, optional
        Default: every stored feature (features without a time axis are skipped).
    ids : iterable of str, optional
        Default: every document.
    min_bytes : int, optional
        Default ``MIN_BYTES``: shorter documents are drawn from their frames and need
        no pyramid.
    progress : callable, optional
        ``progress(frames_done, frames_total)`` over all the documents.

    Returns
    -------
    list of (doc_id, feature)
        The pyramids that are now current.
    """
    todo = long_documents(store, features, ids, min_bytes)
    total = sum(n for _, _, n in todo)
    done = 0
    out = []
    for doc_id, feature, frames in todo:
        def step(d, _t, base=done):
            if progress is not None:
                progress(base + d, total)
        try:
            build_pyramid(store, doc_id, feature, progress=step)
        except ParameterError:
            if features is not None:
                raise
            continue  # a feature without a time axis: nothing to draw
        done += frames
        out.append((doc_id, feature))
    if progress is not None:
        progress(total, total)
    return out
