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
from .chunks import write_rows
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


def frame_values(values: np.ndarray, channel: int | None) -> np.ndarray:
    """Return stored frames as a pyramid summarises them: float32 magnitudes, channels averaged.

    ``channel``: the axis of channels in ``values`` (``None``: none).
    """
    if np.iscomplexobj(values):
        values = np.abs(values)
    values = values.astype(np.float32, copy=False)
    if channel is not None:
        values = values.mean(axis=channel, dtype=np.float32)
    return values


@dataclass(frozen=True)
class _Layout:
    """What a pyramid of frames of one shape holds and how it is chunked and built."""

    rest: tuple[int, ...]  # a summary row's shape (the frame's, channels averaged)
    kind: str
    stats: tuple[str, ...]
    base: int
    chunk: int  # rows of a chunk
    block_level: int  # frames summarised per read: 2**block_level
    align: int | None  # log2 of the frames of a shard of the stored feature

    @classmethod
    def of(cls, rest: tuple[int, ...], shard_rows: int | None) -> _Layout:
        """Return the layout of the pyramid of frames of shape ``rest`` (channels averaged).

        ``shard_rows``: the rows of a shard of the stored feature (``None``: unsharded).
        """
        kind = "2d" if rest else "1d"
        row_bytes = int(np.prod(rest, dtype=np.int64)) * 4
        return cls(rest, kind, ("min", "max", "mean") if kind == "1d" else ("max", "mean"),
                   BASE_LEVEL[kind], _chunk_rows(row_bytes),
                   max(12, int(math.log2(max(1, BLOCK_BYTES // row_bytes)))),
                   None if not shard_rows else _trailing_zeros(int(shard_rows)))

    def shard(self, level: int) -> int | None:
        """Rows of a shard at ``level`` (``None``: one file per chunk).

        A shard summarises the largest power of two of frames that divides the stored
        feature's shards (the time ranges of a split recording start on those): each
        is written whole by one writer, and a level has a file per shard of the feature
        (creating files costs more than writing them) instead of one per chunk; levels
        whose shard would hold less than two chunks have a file per chunk.
        """
        if self.align is None or self.align - level < 0:
            return None
        rows = 1 << (self.align - level)
        return rows if rows >= 2 * self.chunk else None

    def create(self, group: zarr.Group, stat: str, level: int, rows: int) -> zarr.Array:
        """Create the array of ``stat`` at ``level`` with ``rows`` rows in ``group``."""
        shard = self.shard(level)
        return group.create_array(
            f"{stat}_{level}", shape=(rows, *self.rest), dtype=np.float32,
            chunks=(min(self.chunk, max(rows, 1)), *self.rest),
            shards=None if shard is None else (shard, *self.rest),
            compressors=[Crc32cCodec()], fill_value=0.0,
            config={"write_empty_chunks": True})

    def block(self, values: np.ndarray, top: int):
        """Summaries of a block of frames (aligned on ``2**top``) at levels ``base..top``.

        Yields ``(level, parts)``; the last ``parts`` summarise the block at ``top``.
        """
        parts = _summarise(values, 1 << self.base, self.stats)
        level = self.base
        while True:
            yield level, parts
            if level >= top:
                return
            parts = _combine(parts, 2)
            level += 1


def _stat_rows(parts: dict[str, np.ndarray], stat: str) -> np.ndarray:
    return _mean(parts) if stat == "mean" else parts[stat]


def _attrs(feature: str, doc_id: str, source: dict, layout: _Layout, levels: list[int],
           seconds: float) -> dict:
    """Return the attributes that make a written pyramid current (written last)."""
    return {"format": FORMAT_VERSION, "feature": feature, "document": doc_id,
            "source": source, "kind": layout.kind, "levels": levels,
            "stats": list(layout.stats), "built_seconds": round(seconds, 3)}


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
        return frame_values(np.asarray(part.compute(scheduler="synchronous")
                                       if hasattr(part, "dask") else part), channel)

    return read, kind, rest, int(da.shape[0])


def _shard_rows(store, path: str) -> int | None:
    """Rows of a shard of the stored array at ``path`` (``None``: not sharded)."""
    try:
        array = zarr.open_array(root_store(store), path=path, mode="r", zarr_format=3)
    except Exception:  # noqa: BLE001  (a layout without shards: a file per chunk)
        return None
    shards = getattr(array, "shards", None)
    return int(shards[0]) if shards else None


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
    read, _, rest, frames = _frames_reader(store, doc_id, feature)
    if frames != source["frames"]:
        raise StoreError(f"document {doc_id!r}, feature {feature!r}: the catalog says "
                         f"{source['frames']} frames, the stored array {frames}")
    layout = _Layout.of(rest, _shard_rows(store, source["array"]))
    levels = _levels(frames, layout.base)
    top = min(levels[-1], layout.block_level)
    try:
        group = zarr.open_group(root_store(store), path=pyramid_path(feature, doc_id),
                                mode="w", zarr_format=3)
        arrays = {(stat, level): layout.create(group, stat, level, -(-frames // (1 << level)))
                  for level in levels for stat in layout.stats}
        carried: list[dict[str, np.ndarray]] = []  # per block: summaries over the block
        done = 0
        while done < frames:
            stop = min(frames, done + (1 << layout.block_level))
            for level, parts in layout.block(read(done, stop), top):
                r0 = done >> level
                for stat in layout.stats:
                    values = _stat_rows(parts, stat)
                    arrays[stat, level][r0:r0 + values.shape[0]] = values
            carried.append(parts)
            done = stop
            if progress is not None:
                progress(done, frames)
        if levels[-1] > top:
            # higher levels from one summary row per block: few rows, kept in memory
            parts = {k: np.concatenate([c[k] for c in carried]) for k in carried[0]}
            for level in range(top + 1, levels[-1] + 1):
                parts = _combine(parts, 2)
                for stat in layout.stats:
                    arrays[stat, level][...] = _stat_rows(parts, stat)
        group.attrs[PYRAMID] = _attrs(feature, doc_id, source, layout, levels,
                                      time.perf_counter() - started)
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


# ------------------------------------------------------------------------------------
# a split long recording's pyramid, built by its time ranges from the frames they write
# ------------------------------------------------------------------------------------
# Row r of level k summarises frames [r 2**k, (r + 1) 2**k), and every value is the same
# binary tree of pairwise combinations of groups of 2**base frames, however the frames
# are cut into blocks aligned on a power of two: so the ranges of a split recording
# (documents/longfile.py), which start on multiples of 2**align frames, compute every
# row of the levels up to ``align`` from their own frames, bitwise as build_pyramid
# does. Each range writes the chunks of those levels that lie in its rows alone; the
# rows of chunks shared with a neighbour (a few per level), the levels that fit in two
# chunks and the summaries at ``align`` for the levels above come back to ingest's
# process, which writes them once every range succeeded (finish_split_pyramid), and
# makes the pyramid current once the document is committed (seal_split_pyramid).


def _trailing_zeros(n: int) -> int:
    return (n & -n).bit_length() - 1


def plan_split_pyramid(fstore, feature: str, doc_id: str, capacity: int, rest: tuple,
                       channel: int | None, shard_rows: int, starts: list[int]
                       ) -> dict | None:
    """Create the pyramid arrays that the ranges of a split recording write into.

    Parameters
    ----------
    fstore : FeatureStore
        The store being ingested into.
    feature, doc_id : str
    capacity : int
        At least the frames the document will have (the arrays are trimmed at the end).
    rest : tuple of int
        The shape of a summary row (a frame's, without channels).
    channel : int or None
        The axis of channels in a block of stored frames.
    shard_rows : int
        The rows of a shard of the stored feature.
    starts : list of int
        Each range's first frame.

    Returns
    -------
    dict or None
        What each range needs (small, pickled), or ``None`` when the document gets no
        pyramid here (too short, or its ranges are not aligned on the first level):
        ingest then builds it after the commit, as for any document.
    """
    layout = _Layout.of(tuple(rest), shard_rows)
    width = int(np.prod(layout.rest, dtype=np.int64))
    align = min((_trailing_zeros(s) for s in starts if s), default=62)
    if capacity * 4 * width < MIN_BYTES or align < layout.base:
        return None
    levels = _levels(capacity, layout.base)
    path = pyramid_path(feature, doc_id)
    group = zarr.open_group(root_store(fstore), path=path, mode="w", zarr_format=3)
    # levels of at least 2 chunks are written by the ranges where they can be (whole
    # shards, or the chunks a range alone covers); the last range trims them to the
    # exact length before its last write: their files are build_pyramid's
    created = [k for k in levels
               if k <= align and -(-capacity // (1 << k)) >= 2 * layout.chunk]
    for level in created:
        for stat in layout.stats:
            layout.create(group, stat, level, -(-capacity // (1 << level)))
    return {"path": path, "rest": list(layout.rest), "channel": channel, "levels": levels,
            "align": align, "created": created, "shard_rows": shard_rows}


def _opened(group: zarr.Group, name: str) -> zarr.Array:
    """Open the array ``name`` of ``group`` writing every chunk, as it was created."""
    return cast(zarr.Array, group[name]).with_config({"write_empty_chunks": True})


class _LevelRows:
    """One level's rows of one range: its own files written, rows of shared ones kept.

    ``unit``: the rows of a file (a shard, or a chunk).
    """

    def __init__(self, arrays: dict | None, lo: int, hi: int | None, unit: int):
        self.arrays, self.unit, self.at = arrays, unit, lo
        # the rows whose files this range alone writes: [own_lo, own_hi)
        self.own_lo = -(-lo // unit) * unit if arrays is not None else lo
        if arrays is None:
            self.own_hi = lo
        elif hi is None:  # the last range: up to the end
            self.own_hi = 1 << 62
        else:
            self.own_hi = max(self.own_lo, hi // unit * unit)
        self.kept: list[tuple[int, dict[str, np.ndarray]]] = []
        self.pending: list[dict[str, np.ndarray]] = []
        self.pending_at = self.own_lo

    def push(self, rows: dict[str, np.ndarray]) -> None:
        n = next(iter(rows.values())).shape[0]
        a, b = self.at, self.at + n
        for lo, hi, own in ((a, min(b, self.own_lo), False),
                            (max(a, self.own_lo), min(b, self.own_hi), True),
                            (max(a, self.own_hi), b, False)):
            if hi <= lo:
                continue
            piece = {s: v[lo - a:hi - a] for s, v in rows.items()}
            if own:
                self.pending.append(piece)
            else:
                self.kept.append((lo, piece))
        self.at = b
        self._write(final=False)

    def _write(self, final: bool) -> None:
        held = sum(next(iter(p.values())).shape[0] for p in self.pending)
        n = held if final else held // self.unit * self.unit
        if not n or self.arrays is None:
            return
        joined = self.pending[0] if len(self.pending) == 1 else \
            {s: np.concatenate([p[s] for p in self.pending]) for s in self.arrays}
        for stat, array in self.arrays.items():
            write_rows(array, self.pending_at, joined[stat][:n])
        self.pending = [{s: v[n:] for s, v in joined.items()}] if n < held else []
        self.pending_at += n

    def close(self, rows: int | None) -> list[tuple[int, dict[str, np.ndarray]]]:
        """Write what is left of the range's own rows; return the rows kept.

        ``rows``: the level's length, known to the last range, which trims the arrays
        to it first (the planner made them as long as the file could make them).
        """
        if rows is not None and self.arrays is not None:
            for array in self.arrays.values():
                array.resize((rows, *array.shape[1:]))
        self._write(final=True)
        return self.kept


class RangePyramid:
    """The pyramid of one range of a split recording, from the frames it writes.

    Parameters
    ----------
    fstore : FeatureStore
    spec : dict
        :func:`plan_split_pyramid`'s.
    first : int
        The range's first frame (a multiple of ``2**spec["align"]``).
    stop : int or None
        The frame after its last (``None``: the last range, to the end).
    """

    def __init__(self, fstore, spec: dict, first: int, stop: int | None):
        self.spec, self.first, self.last = spec, first, stop is None
        self.layout = layout = _Layout.of(tuple(spec["rest"]), spec["shard_rows"])
        self.top = min(spec["levels"][-1], spec["align"])  # the levels computed here
        # the levels a block of frames summarises (above it: from the blocks' summaries)
        self.block_top = min(layout.block_level, self.top)
        self.block = 1 << self.block_top
        group = zarr.open_group(root_store(fstore), path=spec["path"], mode="r+",
                                zarr_format=3)
        self.rows = {}
        for k in range(layout.base, self.top + 1):
            arrays = ({s: _opened(group, f"{s}_{k}") for s in layout.stats}
                      if k in spec["created"] else None)
            self.rows[k] = _LevelRows(arrays, first >> k,
                                      None if stop is None else stop >> k,
                                      layout.shard(k) or layout.chunk)
        self.pending: list[np.ndarray] = []
        self.held = 0
        self.frames = first  # the frame after the last taken
        self.carried: list[dict[str, np.ndarray]] = []
        self.seconds = 0.0

    def add(self, frames: np.ndarray) -> None:
        """Take the range's next stored frames (time first, the stored dtype).

        ``frames`` is not kept: the caller may overwrite it after the call.
        """
        started = time.perf_counter()
        values = frame_values(frames, self.spec["channel"])  # (may be ``frames`` itself)
        if self.pending:
            values = np.concatenate([*self.pending, values])
        self.held += frames.shape[0]
        self.frames += frames.shape[0]
        whole = self.held // self.block * self.block
        for b in range(0, whole, self.block):
            self._block(values[b:b + self.block])
        # what is left is kept as a copy: the caller reuses its buffer
        self.pending = [values[whole:].copy()] if whole < self.held else []
        self.held -= whole
        self.seconds += time.perf_counter() - started

    def _block(self, values: np.ndarray) -> None:
        for level, parts in self.layout.block(values, self.block_top):
            self.rows[level].push({s: _stat_rows(parts, s) for s in self.layout.stats})
        self.carried.append(parts)

    def close(self) -> dict:
        """Summarise what is left; return what ingest's process writes of the pyramid.

        That is ``{"kept": ..., "parts": ..., "seconds": ...}``.

        ``kept``: per level, ``(first row, {stat: rows})`` of the chunks shared with
        other ranges; ``parts``: the summaries at ``align`` (for the levels above).
        """
        started = time.perf_counter()
        if self.held:  # the end of the recording (only the last range stops mid-block)
            self._block(np.concatenate(self.pending) if len(self.pending) > 1
                        else self.pending[0])
            self.pending, self.held = [], 0
        parts = {k: np.concatenate([c[k] for c in self.carried]) for k in self.carried[0]} \
            if self.carried else None
        for level in range(self.block_top + 1, self.top + 1):
            assert parts is not None
            parts = _combine(parts, 2)
            self.rows[level].push({s: _stat_rows(parts, s) for s in self.layout.stats})
        kept = {k: rows.close(-(-self.frames // (1 << k)) if self.last else None)
                for k, rows in self.rows.items()}
        self.seconds += time.perf_counter() - started
        return {"kept": kept, "parts": parts, "seconds": self.seconds}


def finish_split_pyramid(fstore, spec: dict, frames: int, ranges: list[dict]) -> list[int] | None:
    """Write what the ranges of a split recording left of its pyramid (before the commit).

    Parameters
    ----------
    fstore : FeatureStore
    spec : dict
        :func:`plan_split_pyramid`'s.
    frames : int
        The document's frames.
    ranges : list of dict
        Each range's :meth:`RangePyramid.close`, in order.

    Returns
    -------
    list of int or None
        The levels, or ``None`` when the document is too short for a pyramid after all
        (then it has none, as with :func:`build_pyramids`).

    Raises
    ------
    StoreError
        When the ranges' rows do not tile a level.
    """
    layout = _Layout.of(tuple(spec["rest"]), spec["shard_rows"])
    width = int(np.prod(layout.rest, dtype=np.int64))
    if not frames or frames * 4 * width < MIN_BYTES:
        discard_split_pyramid(fstore, spec)
        return None
    levels = _levels(frames, layout.base)
    group = zarr.open_group(root_store(fstore), path=spec["path"], mode="r+", zarr_format=3)
    top = min(levels[-1], spec["align"])
    for level in levels:
        n = -(-frames // (1 << level))
        if level > top:
            break
        if level in spec["created"]:  # trimmed by the last range
            arrays = {s: _opened(group, f"{s}_{level}") for s in layout.stats}
        else:
            arrays = {s: layout.create(group, s, level, n) for s in layout.stats}
        runs: list[list] = []  # contiguous rows: [first, [pieces]]
        for first, piece in sorted((p for r in ranges for p in r["kept"].get(level, ())),
                                   key=lambda p: p[0]):
            rows = next(iter(piece.values())).shape[0]
            if runs and runs[-1][0] + runs[-1][1] == first:
                runs[-1][1] += rows
                runs[-1][2].append(piece)
            else:
                runs.append([first, rows, [piece]])
        if level not in spec["created"] and [(r[0], r[1]) for r in runs] != [(0, n)]:
            raise StoreError(f"the ranges' pyramid rows at level {level} do not tile its "
                             f"{n} rows ({[(r[0], r[1]) for r in runs]})")
        for first, rows, pieces in runs:
            for stat, array in arrays.items():
                array[first:first + rows] = np.concatenate([p[stat] for p in pieces])
    if levels[-1] > top:
        # higher levels from each range's summaries at `align`: few rows
        parts = {k: np.concatenate([r["parts"][k] for r in ranges]) for k in ranges[0]["parts"]}
        for level in range(top + 1, levels[-1] + 1):
            parts = _combine(parts, 2)
            for stat in layout.stats:
                layout.create(group, stat, level, parts["count"].shape[0])[...] = \
                    _stat_rows(parts, stat)
    return levels


def seal_split_pyramid(fstore, spec: dict, feature: str, doc_id: str, row: dict,
                       levels: list[int], seconds: float) -> None:
    """Make a split recording's pyramid current, once its document is committed.

    ``row``: the document's catalog row (the pyramid's source).
    """
    source = _source(row, feature)
    if source is None:
        raise StoreError(f"document {doc_id!r} has no stored feature {feature!r} to summarise")
    group = zarr.open_group(root_store(fstore), path=spec["path"], mode="r+", zarr_format=3)
    group.attrs[PYRAMID] = _attrs(feature, doc_id, source,
                                  _Layout.of(tuple(spec["rest"]), spec["shard_rows"]),
                                  levels, seconds)


def discard_split_pyramid(fstore, spec: dict) -> None:
    """Remove what was written of a split recording's pyramid (it never became current)."""
    fstore.objects.delete_dir(spec["path"])
