"""The search index of a feature store: one file per immutable part, combined on open.

Layout (under the store's root; the store's readers never look under ``indexes/``)::

    indexes/<feature>/<key>/config.json          the window rule and the hasher
    indexes/<feature>/<key>/hasher.bin           what a SimHasher learned (if any)
    indexes/<feature>/<key>/parts/<part>.bin     the codes of that part's documents
    indexes/<feature>/<key>/combined/<commit>.bin  the index of one commit, ready to use

``<key>`` is a digest of the feature, the window rule and the hasher's parameters, so
another rule or hasher is another index. A part's file holds the codes of every
window of the documents the part wrote that were visible when it was hashed, with
each document's id, stored location (array path, first row), frame times and the
feature's version. Parts never change, so neither does their file: ingest of new
clips hashes only the new parts. Opening an index combines the files of the parts
the catalog's visible documents live in, keeping only the windows of those documents
(a deleted or replaced document drops out), and hashes any part without a valid file.

Combining 100 part files of 10^5 documents takes a second or more, so the combined
index is saved too, as one file named by the store's commit version (``store.version``)
and holding a digest of the visible documents' places: opening the index at that
commit reads that one file and nothing else. Ingest writes it (:func:`update_indexes`);
a file of another commit is never used, and is deleted when the current one is written.
``FeatureStore.vacuum`` deletes the part files of the parts it deletes (and of parts
no longer committed, after the same grace).

Every file carries a CRC-32 of its arrays, checked on reading: a damaged, truncated,
foreign or stale file (another format, key, or feature version than the catalog's) is
never used; it is rebuilt, with progress and a :class:`IndexRebuiltWarning`.
"""
from __future__ import annotations

import hashlib
import json
import time
import warnings
import zlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from .._version import __version__
from ..documents.labels import time_index
from ..documents.maintenance import INDEXES
from ..documents.objects import ObjectStore, open_zarr_store
from ..core.errors import ParameterError, StoreError
from .hashing import BitsHasher, SimHasher, hasher_for
from .index import CodeIndex, Segments
from .windows import FrameTimes, WindowRule

__all__ = ["IndexConfig", "StoreIndex", "IndexRebuiltWarning", "configure", "configured",
           "load", "open_index", "refresh", "update_indexes", "FORMAT_VERSION"]

FORMAT = "zounds_xr.search"
#: 2: parts/<part>.bin of codes + segments (arrays and versions by number),
#: config.json, hasher.bin; combined/<commit>.bin (added within 2: readers that do not
#: know it never look there)
FORMAT_VERSION = 2
ROOT = INDEXES
#: frames read from a stored array at once while hashing
BLOCK_ROWS = 1 << 16
#: windows a SimHasher learns its standardisation from at most
FIT_WINDOWS = 200_000
_SEGMENT_ARRAYS = ("seg_id", "seg_array", "seg_offset", "seg_frames", "seg_version",
                   "arrays", "versions",
                   "seg_start", "seg_step", "seg_extent")


class IndexRebuiltWarning(UserWarning):
    """A persisted index file was damaged or stale and has been rebuilt."""


# ------------------------------------------------------------------------ objects
def _objects(store) -> ObjectStore:
    """Return the store's object layer.

    For a reader with only a root URL (the store contract), one over that URL.
    """
    objects = getattr(store, "objects", None)
    if isinstance(objects, ObjectStore):
        return objects
    url = str(store.url)
    options = getattr(store, "storage_options", None) or {}
    return ObjectStore(open_zarr_store(url, options), url)


def _keep(objects: ObjectStore, key: str, data: bytes) -> bool:
    """Put a derived file, or warn where the store cannot be written.

    On object storage without write rights, go on without it (the index works from
    memory).
    """
    try:
        objects.put(key, data)
    except (StoreError, OSError) as exc:
        warnings.warn(f"the search index could not be saved in {objects.url} ({exc}); it "
                      f"is kept in memory", IndexRebuiltWarning, stacklevel=3)
        return False
    return True


#: first bytes of an index file
MAGIC = b"ZXSEARCH\x00\x01"


def _pack(arrays: dict, meta: dict) -> bytes:
    """Write ``arrays`` and ``meta`` as one file.

    ``MAGIC``, the length of a JSON header (8 bytes, little-endian), the header
    (``meta``, every array's dtype, shape and place, and the CRC-32 of the payload),
    then the arrays' bytes back to back.
    """
    places, payload, at = [], [], 0
    for name, value in arrays.items():
        value = np.ascontiguousarray(value)
        if value.dtype.kind == "O":
            value = value.astype(str)
        places.append({"name": name, "dtype": value.dtype.str, "shape": list(value.shape),
                       "offset": at, "nbytes": value.nbytes})
        payload.append(value.tobytes())
        at += value.nbytes
    body = b"".join(payload)
    header = json.dumps({"meta": meta, "arrays": places,
                         "crc32": zlib.crc32(body)}).encode()
    return MAGIC + len(header).to_bytes(8, "little") + header + body


def _unpack(data: bytes) -> tuple[dict, dict]:
    """``(arrays, meta)`` of :func:`_pack` bytes; ``ValueError`` when damaged."""
    if data[:len(MAGIC)] != MAGIC:
        raise ValueError("not an index file of this format")
    start = len(MAGIC) + 8
    try:
        size = int.from_bytes(data[len(MAGIC):start], "little")
        header = json.loads(data[start:start + size])
        body = memoryview(data)[start + size:]
        if zlib.crc32(body) != header["crc32"]:
            raise ValueError("checksum mismatch")
        arrays = {}
        for place in header["arrays"]:
            lo, n = place["offset"], place["nbytes"]
            if lo + n > len(body):
                raise ValueError("truncated")
            arrays[place["name"]] = np.frombuffer(body[lo:lo + n], dtype=place["dtype"]) \
                .reshape(place["shape"])
        return arrays, header["meta"]
    except (KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable header ({type(exc).__name__}: {exc})") from None


# ------------------------------------------------------------------------ config
class IndexConfig:
    """An index of a feature: window rule (frames), hasher, and where it lives.

    Parameters
    ----------
    feature : str
    rule : WindowRule
    hasher : BitsHasher or SimHasher
    step : float
        Seconds between the feature's frames.
    created : float
        Unix time the configuration was saved.
    """

    def __init__(self, feature: str, rule: WindowRule, hasher, step: float,
                 created: float = 0.0):
        self.feature, self.rule, self.hasher, self.step = feature, rule, hasher, float(step)
        self.created = float(created)

    @property
    def key(self) -> str:
        """A digest of the feature, window rule and hasher parameters."""
        text = json.dumps({"format_version": FORMAT_VERSION, "feature": self.feature,
                           "window": self.rule.window, "hop": self.rule.hop,
                           "hasher": self.hasher.params()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def learned(self) -> str:
        """A digest of what the hasher learned.

        A part hashed with other statistics is not of this index.
        """
        digest = hashlib.sha256()
        for name, value in sorted(self.hasher.arrays().items()):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        return digest.hexdigest()[:16]

    @property
    def prefix(self) -> str:
        """Where the index lives under the store's root."""
        return f"{ROOT}/{self.feature}/{self.key}"

    def to_json(self) -> dict:
        """Return the configuration as JSON (what ``config.json`` holds)."""
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "feature": self.feature,
                "window": self.rule.window, "hop": self.rule.hop, "step": self.step,
                "window_seconds": self.rule.window * self.step,
                "hop_seconds": self.rule.hop * self.step, "hasher": self.hasher.params(),
                "created": time.time(), "zounds_xr": __version__}

    def save(self, objects: ObjectStore) -> None:
        """Write ``hasher.bin`` (if anything was learned), then ``config.json``."""
        arrays = self.hasher.arrays()
        if arrays and not _keep(objects, f"{self.prefix}/hasher.bin",
                                       _pack(arrays, {"key": self.key})):
            return
        # written last: a config that is seen has its hasher
        _keep(objects, f"{self.prefix}/config.json", json.dumps(self.to_json()).encode())

    @classmethod
    def load(cls, objects: ObjectStore, feature: str, key: str) -> IndexConfig:
        """Read a saved configuration; :class:`StoreError` when damaged."""
        where = f"{objects.url}/{ROOT}/{feature}/{key}"
        raw = objects.get(f"{ROOT}/{feature}/{key}/config.json")
        try:
            if raw is None:
                raise ValueError("config.json is missing")
            meta = json.loads(raw)
            if meta["format"] != FORMAT or meta["format_version"] != FORMAT_VERSION:
                raise ValueError(f"format {meta['format']} {meta['format_version']}")
            arrays = None
            if meta["hasher"]["kind"] == SimHasher.kind:
                data = objects.get(f"{ROOT}/{feature}/{key}/hasher.bin")
                if data is None:
                    raise ValueError("hasher.bin is missing")
                arrays = _unpack(data)[0]
            config = cls(feature, WindowRule(int(meta["window"]), int(meta["hop"])),
                         hasher_for(meta["hasher"], arrays), meta["step"],
                         meta.get("created", 0.0))
        except (TypeError, KeyError, ValueError, ParameterError) as exc:
            raise StoreError(f"the search index at {where} is damaged ({exc}); rebuild it "
                             f"with `zounds-xr index STORE --feature {feature}`") from None
        if config.key != key:
            raise StoreError(f"the search index at {where} holds another index "
                             f"({config.key}); rebuild it with `zounds-xr index`")
        return config


def _paths(cat: pd.DataFrame, feature: str) -> list[str]:
    """Return the distinct arrays holding ``feature`` (few: one or two a part)."""
    return [p for p in pd.unique(cat[f"{feature}.array"]) if isinstance(p, str) and p]


def _part_of(path: str) -> str:
    """Return the part of a stored array's path, ``parts/<part>/<feature>...``."""
    return path.split("/")[1] if path.count("/") >= 2 else path


def _visible(store, feature: str, parts: set | None = None) -> pd.DataFrame:
    """Return the visible documents with frames of ``feature`` (of ``parts``, if given).

    One row each: id, array, offset, frames, index text, version and part.
    """
    cat = store.catalog()
    cols = [f"{feature}.{c}" for c in ("array", "offset", "frames", "index")]
    if feature not in list(store.features) or not all(c in cat.columns for c in cols):
        raise ParameterError(f"the store has no stored feature {feature!r}; it has "
                             f"{', '.join(store.features) or 'none'}")
    cat = cat[[c for c in (*cols, f"{feature}.version") if c in cat.columns]]
    frames = cat[f"{feature}.frames"].fillna(0).to_numpy(np.int64)
    has = (frames > 0) & cat[f"{feature}.array"].notna().to_numpy()
    if parts is not None:
        has &= cat[f"{feature}.array"].isin([p for p in _paths(cat, feature)
                                            if _part_of(p) in parts]).to_numpy()
    cat, frames = cat[has], frames[has]
    # strings repeat (few arrays, parts, versions and time indexes): categoricals, so
    # that 10^5 rows are never turned into Python strings one by one
    codes, paths = pd.factorize(cat[f"{feature}.array"])
    paths = np.asarray(paths, dtype=str)
    part_names = [_part_of(p) for p in paths]
    version = cat[f"{feature}.version"] if f"{feature}.version" in cat \
        else pd.Series("", index=cat.index)
    return pd.DataFrame({
        "id": cat.index,
        "array": pd.Categorical.from_codes(codes, paths),
        "offset": cat[f"{feature}.offset"].to_numpy(np.int64),
        "frames": frames,
        "index": cat[f"{feature}.index"].array,  # parsed where needed (_times)
        "version": pd.Categorical(version.fillna("")),
        "part": pd.Categorical(np.asarray(part_names, dtype=object)[codes]
                               if len(codes) else np.zeros(0, object))},
        index=pd.RangeIndex(len(cat)))


def _times(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(start, step, extent)`` seconds of rows' catalog ``<f>.index`` texts.

    Each distinct text is parsed once (:func:`~zounds_xr.documents.labels.time_index`,
    which also checks it against the row's frames).
    """
    text = pd.Categorical(rows["index"])
    _, first = np.unique(text.codes, return_index=True)
    frames = rows["frames"].to_numpy()[first]
    indexes = (time_index(t, int(n)) for t, n in zip(text.categories, frames, strict=True))
    params = np.array([[float(v) for v in (i.start, i.frequency, i.duration)]
                       for i in indexes]).reshape(-1, 3)
    per_row = params[text.codes]
    return per_row[:, 0], per_row[:, 1], per_row[:, 2]


def configure(store, feature: str, *, window: float | None = None, hop: float | None = None,
              bits: int = 256, seed: int = 0, progress=None) -> IndexConfig:
    """Return the index configuration of ``feature`` for these parameters.

    Learned and saved when new.

    Parameters
    ----------
    store, feature, window, hop, bits, seed, progress
        As for :func:`open_index`.

    Returns
    -------
    IndexConfig

    Raises
    ------
    ParameterError
        For an unknown feature, one without frames, audio, or bad parameters.
    """
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or bits < 1:
        raise ParameterError(f"bits must be a positive integer, got {bits!r}")
    rows = _visible(store, feature)
    if not len(rows):
        raise ParameterError(f"no document has frames of {feature!r}")
    _, steps, extents = _times(rows.iloc[:1])
    step = float(steps[0])
    first = rows.iloc[0]
    sample = np.asarray(store.array(first["array"])[int(first["offset"]):
                                                   int(first["offset"]) + 1])
    for value, what in ((window, "window"), (hop, "hop")):
        if value is not None and not (isinstance(value, (int, float))
                                      and not isinstance(value, bool)
                                      and np.isfinite(value) and value > 0):
            raise ParameterError(f"{what} must be a positive number of seconds, got "
                                 f"{value!r}")
    if sample.dtype.kind == "u":
        bits_hasher = BitsHasher.for_rows(sample)
        hasher: BitsHasher | SimHasher = bits_hasher
        w = max(1, round(window / step)) if window is not None else \
            bits_hasher.window_frames(bits)
        h = max(1, round(hop / step)) if hop is not None else 1
    elif sample.dtype.kind in "fc":
        dims = tuple(store[str(first["id"])][feature].dims)
        if set(dims) <= {"time", "channel"} and extents[0] == step:
            raise ParameterError(f"{feature!r} is audio; index a time-frequency feature "
                                 f"(a spectrogram, mel bands, MFCCs...) or "
                                 f"zx.fingerprint codes")
        hasher = SimHasher.for_rows(sample, dims, int(bits), int(seed))
        w = max(1, round((0.5 if window is None else window) / step))
        h = max(1, round(hop / step)) if hop is not None else max(1, w // 2)
    else:
        raise ParameterError(f"cannot index {feature!r} of dtype {sample.dtype}: codes "
                             f"(unsigned integers) or real/complex frames are indexed")
    config = IndexConfig(feature, WindowRule(w, h), hasher, step)
    objects = _objects(store)
    if objects.get(f"{config.prefix}/config.json") is not None:
        try:
            return IndexConfig.load(objects, feature, config.key)
        except StoreError as exc:
            warnings.warn(f"{exc}: rebuilding it", IndexRebuiltWarning, stacklevel=2)
    if isinstance(hasher, SimHasher):
        hasher.fit(_fit_summaries(store, rows, config, progress))
    config.save(objects)
    return config


def _fit_summaries(store, rows: pd.DataFrame, config: IndexConfig, progress) -> np.ndarray:
    """Raw window summaries of the first documents, up to ``FIT_WINDOWS`` windows."""
    out, n = [], 0
    hasher = config.hasher
    for block in _read_blocks(store, rows, config.rule, progress, "learning"):
        out.append(hasher.window_summaries(hasher.prepare(block.frames), block.starts,
                                           config.rule.window, block.ends))
        n += len(block.starts)
        if n >= FIT_WINDOWS:
            break
    return np.concatenate(out)


class _Block:
    """Frames of consecutive documents of one stored array, and their windows."""

    def __init__(self, positions, frames, starts, ends, counts):
        self.positions = positions  # the documents' positions in the rows
        self.frames = frames  # (rows, ...) the block's frames
        self.starts, self.ends = starts, ends  # per window: first frame, document end
        self.counts = counts  # windows per document


def _read_blocks(store, rows: pd.DataFrame, rule: WindowRule, progress, what: str):
    """Yield a :class:`_Block` per read of about ``BLOCK_ROWS`` frames.

    Every stored array is read in blocks of whole documents, in offset order.
    """
    total, done = int(rows["frames"].sum()), 0
    for path, group in rows.groupby("array", sort=False, observed=True):
        group = group.sort_values("offset", kind="stable")
        arr = store.array(path)
        offsets, frames = group["offset"].to_numpy(), group["frames"].to_numpy()
        i = 0
        while i < len(group):
            j, lo = i + 1, offsets[i]
            while j < len(group) and offsets[j] + frames[j] - lo <= BLOCK_ROWS:
                j += 1
            hi = int((offsets[i:j] + frames[i:j]).max())
            doc, start = rule.windows(frames[i:j])
            base = offsets[i:j] - lo
            yield _Block(group.index[i:j].to_numpy(), np.asarray(arr[int(lo):hi]),
                         base[doc] + start, (base + frames[i:j])[doc],
                         rule.counts(frames[i:j]))
            done += int(frames[i:j].sum())
            if progress is not None:
                progress(what, done, total)
            i = j


def _hash_part(store, config: IndexConfig, rows: pd.DataFrame, progress) -> dict:
    """Hash one part: the arrays of its file (its documents' codes and segments)."""
    codes, seg, start, summaries, order = [], [], [], [], []
    hasher, n_seg = config.hasher, 0
    for block in _read_blocks(store, rows, config.rule, progress, "hashing"):
        c, z = hasher.encode(block.frames, block.starts, config.rule.window, block.ends)
        doc = np.repeat(np.arange(block.counts.size), block.counts)
        first = np.cumsum(block.counts) - block.counts
        # each document's mean window summary (every document has a window)
        summaries.append(np.add.reduceat(z, first, axis=0) / block.counts[:, None])
        keep = hasher.informative(c)
        codes.append(c[keep])
        # window starts within their document
        start.append((block.starts - (block.starts[first])[doc])[keep])
        seg.append(n_seg + doc[keep])
        order.append(block.positions)
        n_seg += block.counts.size
    rows = rows.loc[np.concatenate(order)] if order else rows.iloc[:0]
    t0, step, extent = _times(rows)
    n_words = codes[0].shape[1] if codes else 1
    return {"codes": np.concatenate(codes) if codes else np.zeros((0, n_words), np.uint64),
            "window_segment": np.concatenate(seg).astype(np.int32) if seg
            else np.zeros(0, np.int32),
            "window_start": np.concatenate(start).astype(np.int32) if start
            else np.zeros(0, np.int32),
            "summary": np.concatenate(summaries).astype(np.float16) if summaries
            else np.zeros((0, 1), np.float16),
            "seg_id": np.asarray(rows["id"], dtype=str),
            # few distinct arrays and versions: their numbers, and the names once
            "seg_array": rows["array"].cat.remove_unused_categories().cat.codes
            .to_numpy(np.int32),
            "arrays": np.asarray(rows["array"].cat.remove_unused_categories()
                                 .cat.categories, dtype=str),
            "seg_offset": rows["offset"].to_numpy(np.int64),
            "seg_frames": rows["frames"].to_numpy(np.int64),
            "seg_version": rows["version"].cat.remove_unused_categories().cat.codes
            .to_numpy(np.int32),
            "versions": np.asarray(rows["version"].cat.remove_unused_categories()
                                   .cat.categories, dtype=str),
            "seg_start": t0, "seg_step": step, "seg_extent": extent}


def _part_file(arrays: dict, config: IndexConfig, part: str) -> bytes:
    return _pack(arrays, {"format": FORMAT, "format_version": FORMAT_VERSION,
                          "key": config.key, "learned": config.learned, "part": str(part)})


def _check_file(arrays: dict, meta: dict, config: IndexConfig, part: str) -> None:
    """``ValueError`` unless a part file is of this format, index and part."""
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"format {meta.get('format')} {meta.get('format_version')}")
    if meta.get("key") != config.key or meta.get("part") != part:
        raise ValueError("it belongs to another index or part")
    if meta.get("learned") != config.learned:
        raise ValueError("it was hashed with other learned statistics")
    missing = set(arrays) ^ {"codes", "window_segment", "window_start", "summary",
                             *_SEGMENT_ARRAYS}
    if missing:
        raise ValueError(f"arrays {sorted(missing)} are missing or unexpected")


def _locate(files: list[dict], rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Find every visible row's ``(file number, segment in that file)``.

    ``-1`` where no file holds it with the catalog's feature version. One vectorised
    pass over every file (a document is found by its array and first row).
    """
    seg_file = np.concatenate([np.full(f["seg_id"].size, i) for i, f in enumerate(files)])
    seg_local = np.concatenate([np.arange(f["seg_id"].size) for f in files])
    # a part never reuses a place: (array, first row) names a document's frames
    def numbers(names, known) -> np.ndarray:  # a file's few names -> the rows' codes
        codes = {name: i for i, name in enumerate(known)}
        return np.array([codes.get(str(n), -1) for n in names], dtype=np.int64)

    paths = list(rows["array"].cat.categories)
    seg_path = np.concatenate([numbers(f["arrays"], paths)[f["seg_array"]] for f in files])
    span = int(max(max((int(f["seg_offset"].max(initial=0)) for f in files), default=0),
                   int(rows["offset"].to_numpy().max(initial=0))) + 1)
    keys = seg_path.astype(np.int64) * span + np.concatenate(
        [f["seg_offset"] for f in files])
    gone = seg_path < 0  # an array no visible document uses: distinct keys never asked
    keys[gone] = -1 - np.arange(int(gone.sum()))
    found = pd.Index(keys).get_indexer(
        rows["array"].cat.codes.to_numpy(np.int64) * span + rows["offset"].to_numpy(np.int64))
    ok = found >= 0
    same = np.zeros(len(rows), dtype=bool)
    g = found[ok]
    known = list(rows["version"].cat.categories)
    versions = np.concatenate([numbers(f["versions"], known)[f["seg_version"]]
                               for f in files])
    same[ok] = versions[g] == rows["version"].cat.codes.to_numpy()[ok]
    return np.where(same, seg_file[np.maximum(found, 0)], -1), \
        np.where(same, seg_local[np.maximum(found, 0)], -1)


class StoreIndex:
    """The combined index of a feature over a store's visible documents.

    Made by :func:`open_index` or :func:`load`.

    Parameters
    ----------
    store : FeatureStore
    config : IndexConfig
    index : CodeIndex
    summaries : numpy.ndarray [shape=(documents, dims), float32]
        Each indexed document's mean window summary, in ``index.segments`` order (what
        a map places documents by).
    commit : object
        The store's commit version it reflects (``store.version`` where the store has
        one, else a digest of the visible documents' parts and feature versions).
    hashed, loaded : list of str
        Parts hashed now, and parts read from their files or the combined file
        (``hashed_parts``, ``loaded_parts``).
    rows : pandas.DataFrame
        Where each document's frames are.
    combined : bool
        Whether it was read from the combined file of the commit.
    """

    def __init__(self, store, config, index, summaries, commit, hashed, loaded, rows,
                 combined=False):
        self.store, self.config, self.index = store, config, index
        self.summaries, self.commit = summaries, commit
        self.hashed_parts, self.loaded_parts = hashed, loaded
        self.combined = combined
        self._rows = rows.set_index("id")  # where each document's frames are

    def __len__(self) -> int:
        return len(self.index)

    def neighbours(self, doc_id: str, start: float | None = None, end: float | None = None,
                   k: int = 10, *, exclude="selection", max_windows: int | None = 64
                   ) -> dict:
        """Find the ``k`` stretches nearest to ``[start, end)`` seconds of ``doc_id``.

        Returns
        -------
        dict
            ``results`` (list of :class:`~zounds_xr.search.index.Neighbour`),
            ``query`` (``start``/``end`` of the frames searched with, ``widened``,
            ``windows``, ``stride``).
        """
        if str(doc_id) not in self._rows.index:
            raise ParameterError(f"no document {doc_id!r} with frames of "
                                 f"{self.config.feature!r} in the store")
        row = self._rows.loc[str(doc_id)]
        s, step, extent = (float(v[0]) for v in _times(self._rows.loc[[str(doc_id)]]))
        times = FrameTimes(s, step, extent, int(row["frames"]))
        t0 = times.start if start is None else float(start)
        t1 = times.seconds(0, times.frames)[1] if end is None else float(end)
        arr = self.store.array(row["array"])
        off = int(row["offset"])
        found, sel = self.index.query(lambda a, b: np.asarray(arr[off + a:off + b]), times,
                                      t0, t1, self.config.hasher, k, doc_id=str(doc_id),
                                      exclude=exclude, max_windows=max_windows)
        q0, q1 = times.seconds(sel.first, sel.stop)
        return {"results": found, "query": {"start": q0, "end": q1, "widened": sel.widened,
                                            "windows": int(sel.starts.size),
                                            "stride": sel.stride}}


def _commit(store, rows: pd.DataFrame):
    """Return the store's commit version (the one place that knows how to get it)."""
    version = getattr(store, "version", None)
    if version is not None and not callable(version):
        return version
    pairs = rows[["part", "version"]].drop_duplicates().astype(str)
    text = "\n".join(sorted(pairs["part"] + "|" + pairs["version"]))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load(store, config: IndexConfig, progress=None, write: bool = True) -> StoreIndex:
    """Open the index ``config`` over the store's visible documents.

    The combined file of the store's commit is read when there is a valid one; else
    the parts' files are read and combined, parts without a valid file are hashed,
    and (when ``write``) what was hashed and the combined file are saved.

    Parameters
    ----------
    store : FeatureStore
    config : IndexConfig
        From :func:`configured` or :func:`configure`.
    progress : callable, optional
        ``progress(what, done_frames, total_frames)`` while hashing.
    write : bool
        Save what was hashed, and the combined index.

    Returns
    -------
    StoreIndex
    """
    objects = _objects(store)
    rows = _visible(store, config.feature)
    commit = _commit(store, rows)
    places = _places(rows)
    found = _read_combined(objects, config, commit, places)
    if found is not None:
        index, summary, parts = found
        return StoreIndex(store, config, index, summary, commit, [], parts, rows,
                          combined=True)
    parts = sorted(rows["part"].unique().astype(str))
    files: list[dict] = []
    hashed, loaded = [], []

    def hash_part(part):
        arrays = _hash_part(store, config, rows[(rows["part"] == part).to_numpy()],
                            progress)
        if write:
            _keep(objects, f"{config.prefix}/parts/{part}.bin", _part_file(arrays, config, part))
        hashed.append(part)
        return arrays

    for part in parts:
        key = f"{config.prefix}/parts/{part}.bin"
        data = objects.get(key)
        arrays = None
        if data is not None:
            try:
                arrays, meta = _unpack(data)
                _check_file(arrays, meta, config, part)
                loaded.append(part)
            except ValueError as exc:
                _rebuilt(objects, key, part, exc)
                arrays = None
        files.append(arrays if arrays is not None else hash_part(part))
    file_of, seg_of = _locate(files, rows) if files else (np.zeros(0, int),) * 2
    stale = sorted(rows["part"][file_of < 0].unique().astype(str))
    for part in stale:  # a file that lacks visible documents, or has other versions
        i = parts.index(part)
        if part in loaded:
            loaded.remove(part)
            _rebuilt(objects, f"{config.prefix}/parts/{part}.bin", part,
                     ValueError("its documents differ from the catalog's"))
        files[i] = hash_part(part)
    if stale:
        file_of, seg_of = _locate(files, rows)
    # every window of a visible document, its document renumbered in row order
    codes, wseg, wstart, segments, summaries = [], [], [], [], []
    n_seg = 0
    for i, f in enumerate(files):
        mine = np.flatnonzero(file_of == i)
        local = seg_of[mine]
        renumber = np.full(f["seg_id"].size, -1, dtype=np.int64)
        renumber[local] = n_seg + np.arange(local.size)
        seg = renumber[f["window_segment"]]
        keep = seg >= 0
        codes.append(f["codes"][keep])
        wseg.append(seg[keep])
        wstart.append(f["window_start"][keep])
        segments.append(Segments(f["seg_id"][local].astype(object), f["seg_start"][local],
                                 f["seg_step"][local], f["seg_extent"][local],
                                 f["seg_frames"][local]))
        summaries.append(f["summary"][local].astype(np.float32))
        n_seg += local.size
    n_words = -(-config.hasher.frame_bits * config.rule.window // 64) \
        if isinstance(config.hasher, BitsHasher) else -(-config.hasher.bits // 64)
    index = CodeIndex(np.concatenate(codes) if codes else np.zeros((0, n_words), np.uint64),
                      np.concatenate(wseg) if wseg else np.zeros(0, np.int64),
                      np.concatenate(wstart) if wstart else np.zeros(0, np.int64),
                      Segments.concat(segments), config.rule)
    summary = np.concatenate(summaries) if summaries else np.zeros((0, 1), np.float32)
    if write:
        _write_combined(objects, config, commit, places, index, summary, parts)
    return StoreIndex(store, config, index, summary, commit, hashed, loaded, rows)


# ------------------------------------------------------------------ combined file
def _places(rows: pd.DataFrame) -> str:
    """Return a digest of where every visible document's frames are, and their versions.

    A combined file is used only for the documents it was made of.
    """
    digest = hashlib.sha256()
    for name in ("id", "array", "offset", "frames", "version"):
        column = rows[name]
        if isinstance(column.dtype, pd.CategoricalDtype):  # few strings, one code a row
            digest.update(column.cat.codes.to_numpy(np.int64).tobytes())
            column = pd.Series(column.cat.categories)
        if column.dtype.kind in "iuf":
            digest.update(column.to_numpy().tobytes())
        else:  # each string's length, then their bytes: 10x pandas' row hashing
            text = column.astype(str)
            digest.update(pc.binary_length(pa.array(text)).to_numpy(
                zero_copy_only=False).astype(np.int64).tobytes())
            digest.update("".join(text.tolist()).encode())
    return digest.hexdigest()[:16]


def _combined_key(config: IndexConfig, commit) -> str:
    return f"{config.prefix}/combined/{commit}.bin"


def _write_combined(objects: ObjectStore, config: IndexConfig, commit, places: str,
                    index: CodeIndex, summary: np.ndarray, parts: list[str]) -> None:
    """Save the combined index of ``commit``; delete the files of other commits."""
    seg = index.segments
    arrays = {"codes": index.codes, "window_segment": index.window_segment,
              "window_start": index.window_start, "seg_id": seg.ids.astype(str),
              "seg_start": seg.start, "seg_step": seg.step, "seg_extent": seg.extent,
              "seg_frames": seg.frames, "summary": summary,
              "parts": np.asarray(parts, dtype=str)}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "key": config.key,
            "learned": config.learned, "commit": str(commit), "places": places}
    if not _keep(objects, _combined_key(config, commit), _pack(arrays, meta)):
        return
    for name in objects.list_dir(f"{config.prefix}/combined"):
        if name != f"{commit}.bin":  # another commit's: never used again
            objects.delete(f"{config.prefix}/combined/{name}")


def _read_combined(objects: ObjectStore, config: IndexConfig, commit, places: str):
    """``(CodeIndex, summaries, parts)`` of a valid combined file of ``commit``, or None.

    A stale one (of another index, learned statistics or documents) is not used; a
    damaged one neither, with a warning. :func:`load` writes it again.
    """
    key = _combined_key(config, commit)
    data = objects.get(key)
    if data is None:
        return None
    try:
        arrays, meta = _unpack(data)
        segments = Segments(arrays["seg_id"].astype(object), arrays["seg_start"],
                            arrays["seg_step"], arrays["seg_extent"], arrays["seg_frames"])
        index = CodeIndex(arrays["codes"], arrays["window_segment"], arrays["window_start"],
                          segments, config.rule)
        summary, parts = arrays["summary"], [str(p) for p in arrays["parts"]]
    except (KeyError, ValueError) as exc:
        warnings.warn(f"the search index file {objects.url}/{key} is not usable ({exc}); "
                      f"combining the part files again", IndexRebuiltWarning, stacklevel=4)
        return None
    current = {"format": FORMAT, "format_version": FORMAT_VERSION, "key": config.key,
               "learned": config.learned, "commit": str(commit), "places": places}
    if any(meta.get(name) != value for name, value in current.items()):
        return None  # stale
    return index, summary, parts


def _rebuilt(objects: ObjectStore, key: str, part: str, exc: Exception) -> None:
    warnings.warn(f"the search index file {objects.url}/{key} is not usable ({exc}); "
                  f"hashing part {part} again", IndexRebuiltWarning, stacklevel=4)


def open_index(store, feature: str, *, window: float | None = None,
               hop: float | None = None, bits: int = 256, seed: int = 0, progress=None,
               write: bool = True) -> StoreIndex:
    """Open the search index of ``feature`` over the store's visible documents.

    Parts with a valid index file are read; the others are hashed (and their files
    written, unless ``write=False`` or the store is read-only).

    Parameters
    ----------
    store : FeatureStore
        ``zx.open_store(...)``.
    feature : str
        A stored feature with a time axis: fingerprint codes (unsigned integers; a
        window is ``bits`` bits of consecutive frames, the hop one frame) or real /
        complex frames (a window of 0.5 s, hop half of it, SimHash of ``bits`` bits).
    window, hop : float, optional
        Window length and step in seconds (rounded to whole frames).
    bits : int
        Bits per code.
    seed : int
        Seed of the SimHash hyperplanes.
    progress : callable, optional
        ``progress(what, done_frames, total_frames)`` while reading frames.
    write : bool
        Persist what was hashed.

    Returns
    -------
    StoreIndex

    Raises
    ------
    ParameterError
        For an unknown feature, one without frames, or bad parameters.
    """
    config = configure(store, feature, window=window, hop=hop, bits=bits, seed=seed,
                       progress=progress)
    return load(store, config, progress, write)


def configured(store, feature: str | None = None) -> list[IndexConfig]:
    """Return the index configurations saved in the store, newest first.

    Parameters
    ----------
    store : FeatureStore
    feature : str, optional
        Only this feature's.

    Returns
    -------
    list of IndexConfig
    """
    objects = _objects(store)
    features = [feature] if feature is not None else objects.list_dir(ROOT)
    out = []
    for name in features:
        for key in objects.list_dir(f"{ROOT}/{name}"):
            try:
                out.append(IndexConfig.load(objects, name, key))
            except StoreError as exc:
                warnings.warn(str(exc), IndexRebuiltWarning, stacklevel=2)
    return sorted(out, key=lambda c: -c.created)


def refresh(store, config: IndexConfig, progress=None) -> list[str]:
    """Hash the visible parts that have no index file yet (nothing else is read).

    Returns
    -------
    list of str
        The parts hashed.
    """
    objects = _objects(store)
    have = {n[:-len(".bin")] for n in objects.list_dir(f"{config.prefix}/parts")
            if n.endswith(".bin")}
    missing = {_part_of(p) for p in _paths(store.catalog(), config.feature)} - have
    hashed: list[str] = []
    if not missing:
        return hashed
    rows = _visible(store, config.feature, missing)
    for part, group in rows.groupby("part", sort=True, observed=True):
        arrays = _hash_part(store, config, group, progress)
        _keep(objects, f"{config.prefix}/parts/{part}.bin", _part_file(arrays, config, part))
        hashed.append(str(part))
    return hashed


def update_indexes(store, progress=None) -> dict[str, list[str]]:
    """Bring every index of the store up to date (what ingest calls when it ends).

    Every saved configuration gets the parts it lacks hashed; a stored feature of codes
    (unsigned integers, e.g. ``zx.fingerprint``) without an index gets the default one.
    Only new parts are hashed; then each index is combined and saved for the store's
    current commit (what opening it at that commit reads, see :func:`load`).

    Parameters
    ----------
    store : FeatureStore
    progress : callable, optional
        ``progress(what, done_frames, total_frames)`` while hashing.

    Returns
    -------
    dict
        ``{"<feature>/<key>": [parts hashed]}``.
    """
    configs = {(c.feature, c.key): c for c in configured(store)}
    indexed = {c.feature for c in configs.values()}
    cat = store.catalog()
    for feature in store.features:
        if feature in indexed or f"{feature}.array" not in cat.columns:
            continue
        arrays = cat[f"{feature}.array"].dropna()
        if len(arrays) and np.dtype(store.array(arrays.iloc[0]).dtype).kind == "u":
            config = configure(store, feature, progress=progress)
            configs[(feature, config.key)] = config
    hashed = {}
    for c in configs.values():
        hashed[f"{c.feature}/{c.key}"] = refresh(store, c, progress)
        load(store, c, progress)  # the combined file of this commit (read when current)
    return hashed
