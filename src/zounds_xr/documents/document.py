"""``Document``: a declared graph of features, processed into the store's parts.

>>> import numpy as np, zounds_xr as zx
>>> @zx.simple_in_memory_settings
... class Sound(zx.Document):
...     louder = zx.Feature(lambda x, gain: x * gain, needs=zx.Document.audio,
...                         gain=2.0, store=True)
...     rectified = zx.Feature(np.abs, needs=louder)      # computed on access
>>> samples = zx.AudioSamples(np.full(11025, 0.25, "f4"), zx.SR11025())
>>> doc_id = Sound.process(meta=samples.zx.encode(), chunksize=zx.Seconds(0.25))
>>> snd = Sound(doc_id)
>>> type(snd.louder.data).__name__, float(snd.rectified.max())
('Array', 0.5)

Processing (:meth:`Document.process`) streams the source chunk by chunk through the
graph (see :mod:`zounds_xr.documents.streaming`) and appends every ``store=True``
feature to the arrays of a new part of the store; the part's catalog fragment is
written last, so a killed writer leaves nothing visible and the next ``process``
redoes it. Reading (``Sound(doc_id).feature``) gives lazy dask-backed
DataArrays with their TimeIndex/FrequencyIndex rebuilt; a feature that is not stored (or
is stale) is computed on access from its nearest stored, current ancestors.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import numbers
import os
import uuid
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np
import xarray as xr

from ..core.errors import ParameterError, StoreError
from ..io.decode import open_audio, stream, stream_arrays
from ..core.validation import positive_int
from ..audio.samples import AudioSamples
from ..io.metadata import AudioMetaData, ChunkSizeBytes
from ..timeseries.durations import to_fraction
from .catalog import meta_columns, meta_of_row
from .feature import AudioFeature, Feature, MetaFeature, canonical, version_hash
from .store import FeatureStore, validate_id
from .streaming import Pipeline, declaration, make_node

__all__ = ["AudioFeature", "Document", "DocumentMeta", "Feature"]

_DEFAULT_CHUNK = np.timedelta64(30, "s")
#: at most this many clips are stacked and computed together (see Document._write_many) ...
_BATCH_CLIPS = 256
#: ... and this many samples (16 MiB of float32 audio: 256 clips of 1 s at 16 kHz, 19 of
#: 5 s at 44.1 kHz), so that a stack's intermediate spectra stay small
_BATCH_SAMPLES = 1 << 22


def _resolve_graph(cls, features: dict) -> tuple[dict, list]:
    """Needs by name (resolved through the class: overrides win) and a topological order."""
    roots = {f.root: name for name, f in features.items() if f.root}
    graph = {}
    for name, f in features.items():
        needs = []
        for need in f.needs:
            found = next((k for k, v in features.items() if v is need), None)
            if found is None and need.root:
                found = roots.get(need.root)
            if found is None and need.name in features:
                found = need.name
            if found is None:
                raise ParameterError(
                    f"{cls.__name__}.{name} needs {need!r}, which is not a feature of "
                    f"{cls.__name__}")
            needs.append(found)
        graph[name] = tuple(needs)
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name, path):
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise ParameterError(f"{cls.__name__}: features depend on each other in a cycle: "
                                 f"{' -> '.join(path + [name])}")
        state[name] = "visiting"
        for need in graph[name]:
            visit(need, path + [name])
        state[name] = "done"
        order.append(name)

    for name in features:
        visit(name, [])
    return graph, order


class DocumentMeta(type):
    """Collect a document class's features and resolve its graph.

    Also the class-level collection protocol over the bound store (``iter``, ``len``,
    ``in``, ``del``).
    """

    def __new__(mcls, name, bases, namespace, **kwargs):
        """Create a document class: collect its features and resolve their graph."""
        # Any: the attributes set and used here are Document's (declared there)
        cls: Any = super().__new__(mcls, name, bases, namespace, **kwargs)
        features = {}
        for klass in reversed(cls.__mro__):
            for key, value in vars(klass).items():
                if isinstance(value, Feature):
                    features[key] = value
        roots = [f.root for f in features.values() if f.root]
        for role in ("audio", "meta"):
            if roots.count(role) > 1:
                raise ParameterError(f"{name} declares more than one {role} root feature")
        cls._features = features
        # feature -> its name here (by identity: Feature has no __eq__; pickles with the
        # class, its keys the same objects as _features'): ``Sound(id).mel`` looks it up
        cls._names = {f: name for name, f in features.items()}
        cls._graph, cls._order = _resolve_graph(cls, features)
        return cls

    def __iter__(cls: Any):
        store = cls._store_for(None)
        for doc_id in store.ids():
            yield cls(doc_id)

    def __len__(cls: Any):
        return len(cls._store_for(None).id_index())

    def __bool__(cls):
        return True

    def __contains__(cls: Any, doc_id):
        return cls.exists(doc_id)

    def __getitem__(cls, doc_id):
        return cls(doc_id)

    def __delitem__(cls: Any, doc_id):
        cls.delete(doc_id)


def _as_meta(meta) -> AudioMetaData:
    if meta is None:
        raise ParameterError("process() needs meta=: a path, URL, bytes, file-like or "
                             "AudioMetaData")
    m = meta if isinstance(meta, AudioMetaData) else AudioMetaData(uri=meta)
    uri = m.uri_string
    if uri is not None and "://" not in uri:
        absolute = os.path.abspath(os.path.expanduser(uri))
        if absolute != uri:
            m = AudioMetaData.from_dict({**m.to_dict(), "uri": absolute})
    return m


def _check_chunksize(chunksize):
    """Check ``chunksize`` up front, by the one rule of :func:`zounds_xr.stream`.

    A duration, a ``ChunkSizeBytes``, or an int number of frames of the source.
    """
    if isinstance(chunksize, ChunkSizeBytes):
        return chunksize
    if isinstance(chunksize, numbers.Integral) and not isinstance(chunksize, np.timedelta64):
        positive_int(chunksize, "chunksize (frames of the source)")
        return chunksize
    if to_fraction(chunksize, name="chunksize") <= 0:
        raise ParameterError(f"chunksize must be a positive duration, got {chunksize!r}")
    return chunksize


def _chunk_seconds(chunksize, samplerate, channels) -> Fraction:
    """``chunksize`` in seconds of a source at ``samplerate`` with ``channels``."""
    if isinstance(chunksize, (ChunkSizeBytes, numbers.Integral)) and not isinstance(
            chunksize, np.timedelta64):
        rate = int(samplerate or 0)
        if rate <= 0:
            return Fraction(30)
        if isinstance(chunksize, ChunkSizeBytes):
            frames = int(chunksize) // (int(channels or 1) * chunksize.bit_depth // 8 or 1)
        else:
            frames = int(chunksize)
        return Fraction(max(1, frames), rate)
    return to_fraction(chunksize, name="chunksize")


def _counted(chunks, seen: dict):
    """Pass the decoded audio's chunks on, counting frames and keeping the first.

    For the document's metadata: what decoding found (headers can lie about
    lengths).
    """
    for chunk in chunks:
        seen.setdefault("first", chunk)
        seen["frames"] += chunk.sizes["time"]
        yield chunk


_PLAIN = (str, int, float, bool, type(None))


def _json_safe(d: dict) -> dict:
    # plain values come back from JSON as they are: skip the round trip (a clip's
    # metadata is plain, and the round trip cost a tenth of processing a short clip)
    if all(type(k) is str and type(v) in _PLAIN for k, v in d.items()):
        return dict(d)
    return json.loads(json.dumps(d, default=str))


class Document(metaclass=DocumentMeta):
    """A sound and its features, persisted in a :class:`FeatureStore`.

    Subclass it and declare :class:`Feature` attributes; bind a store with
    ``@zarr_settings(path_or_url)`` or ``@simple_in_memory_settings`` (or pass ``store=``
    to each call). Root features: ``Document.meta`` (the source's ``AudioMetaData``) and
    ``Document.audio`` (the decoded samples; not stored unless a subclass declares
    ``audio = AudioFeature(store=True)``).

    Parameters
    ----------
    _id : str
        The id of a complete document.
    store : FeatureStore, str or os.PathLike, optional
        Overrides the class's store.

    Raises
    ------
    DocumentNotFoundError
        When the store holds no complete document with that id (a ``KeyError``).
    """

    meta = MetaFeature()
    audio = AudioFeature()
    _store: FeatureStore | None = None
    # Set by DocumentMeta on every class (declared here, without values, for the type
    # checker; the caches are looked up in each class's own __dict__).
    _features: ClassVar[dict[str, Feature]]
    _names: ClassVar[dict[Feature, str]]
    _graph: ClassVar[dict[str, tuple[str, ...]]]
    _order: ClassVar[list[str]]
    _version_cache: ClassVar[dict[str, str]]
    _info_cache: ClassVar[dict[str, dict]]
    _channelwise_cache: ClassVar[bool]

    def __init__(self, _id: str, store=None):
        self._fstore = type(self)._store_for(store)
        self._row = self._fstore.row(_id)  # checks the id
        self._id = _id
        self._cache: dict = {}

    # ------------------------------------------------------------------ instance side
    @property
    def id(self) -> str:
        """The document id."""
        return self._id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._id!r})"

    def __eq__(self, other) -> bool:
        return (type(other) is type(self) and other._id == self._id
                and other._fstore.url == self._fstore.url)

    def __hash__(self):
        return hash((type(self).__name__, self._id))

    def _feature(self, name: str):
        if name in self._cache:
            return self._cache[name]
        cls = type(self)
        feature = cls._features[name]
        if feature.root == "meta":
            value = AudioMetaData.from_dict(meta_of_row(self._row))
        else:
            value = self._compute(name, feature)
        self._cache[name] = value
        return value

    def _compute(self, name: str, feature: Feature):
        cls = type(self)
        if self._row.get(f"{name}.version") == cls._versions()[name]:
            return self._fstore.reader.read(self._row, name)
        if feature.root == "audio":
            uri = self._row.get("uri")
            if not isinstance(uri, str):
                raise StoreError(
                    f"document {self._id!r}: the audio is not stored and its source cannot "
                    f"be opened again (it was not a path or URL)")
            return open_audio(uri).rename(name)
        inputs = [self._feature(need) for need in cls._graph[name]]
        out = feature.func(*inputs, **feature.params)
        return out.rename(name) if isinstance(out, xr.DataArray) else out

    # ------------------------------------------------------------------ class side
    @classmethod
    def _store_for(cls, store) -> FeatureStore:
        if store is None:
            store = cls._store
        if store is None:
            raise StoreError(
                f"{cls.__name__} is bound to no store: decorate it with "
                f"@zarr_settings(path) or @simple_in_memory_settings, or pass store=")
        if isinstance(store, FeatureStore):
            return store
        return FeatureStore(store)

    @classmethod
    def _name_of(cls, feature: Feature) -> str:
        name = cls._names.get(feature)
        if name is not None:
            return name
        if feature.root:
            return cls._root_name(feature.root)
        raise AttributeError(f"{feature!r} is not a feature of {cls.__name__}")

    @classmethod
    def _root_name(cls, role: str) -> str:
        return next(k for k, f in cls._features.items() if f.root == role)

    @classmethod
    def _versions(cls) -> dict[str, str]:
        """Every feature's version (hash of function, parameters, storage, upstream)."""
        cached = cls.__dict__.get("_version_cache")
        if cached is not None:
            return cached
        versions: dict[str, str] = {}
        for name in cls._order:
            versions[name] = version_hash({
                "feature": cls._features[name].identity(),
                "needs": [versions[n] for n in cls._graph[name]]})
        cls._version_cache = versions
        return versions

    @classmethod
    def versions(cls) -> dict[str, str]:
        """Return the version of each feature, by name."""
        return dict(cls._versions())

    @classmethod
    def _stored_names(cls) -> list[str]:
        return [n for n in cls._order if cls._features[n].store and cls._features[n].root
                != "meta"]

    @classmethod
    def _prepare_store(cls, fstore: FeatureStore) -> None:
        """Run each stored feature's :meth:`Feature.prepare_store` hook before writing.

        A learned feature saves its model in the store there.
        """
        for name in cls._stored_names():
            cls._features[name].prepare_store(fstore)

    @classmethod
    def id_for(cls, meta) -> str | None:
        """Return the default id of a source, derived from its URI (a path or URL).

        ``None`` when it has no URI (then :meth:`process` draws a random one).

        Local paths are made absolute first, so the same file always maps to the same
        id: 32 hex digits of the SHA-256 of the URI.
        """
        if meta is None:
            return None
        uri = _as_meta(meta).uri_string
        if uri is None:
            return None
        return hashlib.sha256(uri.encode("utf-8")).hexdigest()[:32]

    @classmethod
    def ids(cls, store=None) -> list[str]:
        """Ids of the complete documents in the store."""
        return cls._store_for(store).ids()

    @classmethod
    def exists(cls, _id: str, store=None) -> bool:
        """Whether a complete document ``_id`` is in the store."""
        return cls._store_for(store).exists(_id)

    @classmethod
    def delete(cls, _id: str, store=None) -> None:
        """Remove a document (:class:`DocumentNotFoundError` if there is none)."""
        cls._store_for(store).delete(_id)

    @classmethod
    def catalog(cls, store=None, version: int | None = None):
        """Return the store's catalog: one row per document.

        A ``pandas.DataFrame`` indexed by ``id``: ``uri``, ``samplerate``,
        ``channels``, ``duration`` (seconds), ``licensing``, ``description``,
        ``tags``, other metadata (label edits applied), and per stored feature ``f``:
        ``f.frames``, ``f.version``, ``f.array``, ``f.offset``, ``f.index``.

        Parameters
        ----------
        store : FeatureStore, optional
            Default: the class's store.
        version : int, optional
            The catalog as of that commit (default: the newest, ``store.version``).

        See Also
        --------
        frames : the stored frames of many documents at once.
        set_labels : commit a label edit.
        """
        return cls._store_for(store).catalog(version=version)

    @classmethod
    def set_labels(cls, column: str, values: dict, author: str | None = None,
                   store=None) -> int:
        """Commit a label edit (``{doc_id: value}`` in ``column``).

        Returns the commit's number. See :meth:`FeatureStore.set_labels`.
        """
        return cls._store_for(store).set_labels(column, values, author=author)

    @classmethod
    def frames(cls, feature: str, ids=None, store=None) -> xr.DataArray:
        """Read the stored frames of ``feature`` for many documents as one lazy DataArray.

        Parameters
        ----------
        feature : str
            A stored feature's name.
        ids : sequence of str, optional
            The documents, in this order (default: every document storing it, in
            catalog order).

        Returns
        -------
        xarray.DataArray
            Dims ``("frame", ...)``: document ``ids[k]`` is the block of
            ``catalog()[f"{feature}.frames"][ids[k]]`` rows after those before it.
        """
        return cls._store_for(store).frames(feature, ids)

    @classmethod
    def _stale(cls, row: dict) -> list[str]:
        versions = cls._versions()
        return [n for n in cls._stored_names() if row.get(f"{n}.version") != versions[n]]

    @classmethod
    def stale_features(cls, _id: str, store=None) -> list[str]:
        """List the stored features of ``_id`` that are missing or whose version changed."""
        return cls._stale(cls._store_for(store).row(_id))

    @classmethod
    def _feature_info(cls, name: str) -> dict:
        """Return what a part records of a stored feature (computed once per class)."""
        cached = cls.__dict__.get("_info_cache")
        if cached is None:
            cached = {}
            cls._info_cache = cached
        info = cached.get(name)
        if info is None:
            f = cls._features[name]
            info = {"version": cls._versions()[name], "function": f.identity()["func"],
                    "params": canonical(f.params), "needs": list(cls._graph[name]),
                    "store_as": f.store_as,
                    "document": f"{cls.__module__}.{cls.__qualname__}"}
            cached[name] = info
        return info

    @classmethod
    def process(cls, meta=None, _id: str | None = None, chunksize=_DEFAULT_CHUNK,
                store=None, overwrite: bool = False) -> str:
        """Decode ``meta``, stream it through the graph, persist the stored features.

        The document is written as a part of its own (see ``docs/STORE_LAYOUT.md``);
        :func:`~zounds_xr.ingest` writes many documents per part.

        Parameters
        ----------
        meta : str, os.PathLike, bytes, file-like or AudioMetaData
            The source (an ``AudioMetaData``'s ``uri`` is decoded).
        _id : str, optional
            The document id; default :meth:`id_for` (derived from the source's path or
            URL) or, for in-memory sources, a random ``uuid4().hex``.
        chunksize : np.timedelta64, ChunkSizeBytes or int, optional
            Size of the chunks the source is decoded and processed in, as
            :func:`~zounds_xr.stream` takes it: a duration, a ``ChunkSizeBytes`` or a
            number of frames of the source. Memory is bounded by it, whatever the
            file's length. The same rule holds when stale features are updated from
            stored ones (the size is converted to seconds at the source's rate).
        store : FeatureStore or path/URL, optional
            Overrides the class's store.
        overwrite : bool, default False
            Rewrite a visible document from scratch. By default a visible document is
            only brought up to date (missing or stale features are computed).

        Returns
        -------
        str
            The document id.

        Raises
        ------
        AudioDecodeError, AudioFileNotFoundError
            When the source cannot be decoded; nothing is left in the store.
        """
        fstore = cls._store_for(store)
        chunksize = _check_chunksize(chunksize)
        m = _as_meta(meta)
        doc_id = validate_id(_id) if _id is not None else (cls.id_for(m) or uuid.uuid4().hex)
        if not overwrite and fstore.exists(doc_id):
            cls._update_many(fstore, [doc_id], chunksize)
            return doc_id
        cls._prepare_store(fstore)
        part = fstore.part()
        try:
            [outcome] = cls._write(part, [(doc_id, m)], {cls._root_name("audio"): stream(
                m.uri, chunksize=chunksize)}, cls._stored_names())
            if isinstance(outcome, BaseException):
                raise outcome
            part.commit()
        except BaseException:
            part.discard()
            raise
        return doc_id

    @classmethod
    def update(cls, _id: str | None = None, chunksize=_DEFAULT_CHUNK, store=None) -> dict:
        """Compute the stored features that are missing or stale (graph changed).

        Stale features are recomputed from their nearest stored, current ancestors; the
        audio is decoded again from ``meta.uri`` only when it is needed and not stored.
        The new frames go to one new part; older parts keep the rest.

        Returns
        -------
        dict
            ``{doc_id: [feature names recomputed]}``.
        """
        fstore = cls._store_for(store)
        chunksize = _check_chunksize(chunksize)
        ids = [_id] if _id is not None else fstore.ids()
        return cls._update_many(fstore, ids, chunksize)

    # ------------------------------------------------------------------ processing
    @classmethod
    def _write(cls, part, docs: list, sources: dict, targets: list[str]) -> list:
        """Compute ``targets`` from ``sources`` and append them to ``part`` (the one writer).

        Parameters
        ----------
        docs : list of (doc_id, meta)
            The documents: ``meta`` is the ``AudioMetaData`` of a new source (completed
            with what decoding found), or the catalog columns of a stored document that
            gets some features (kept as they are).
        sources : dict of name -> iterable of chunks
            The decoded audio and/or stored features the targets are computed from. One
            document streams: its chunks go to the part as they come (bounded memory).
            Several documents are stacked along ``channel`` (document ``k`` is channel
            ``k``, one chunk each): every function runs once for all of them, then each
            document's slice is written.
        targets : list of str
            The stored features to compute.

        Returns
        -------
        list
            Per document, in order: ``(doc_id, seconds of audio)`` or the exception that
            stopped it (its frames are forgotten; the others are written). A stacked
            computation that fails is redone document by document, so that an error
            lands on its own document.
        """
        infos = {n: cls._feature_info(n) for n in targets}
        audio = cls._root_name("audio")
        seen: dict = {"frames": 0}
        fed = dict(sources)
        if audio in fed:
            fed[audio] = _counted(fed[audio], seen)
        stacked = len(docs) > 1
        if not stacked:
            [(doc_id, meta)] = docs
            sinks: dict = part.sinks(infos)
        else:
            outputs: dict[str, list] = {n: [] for n in targets}
            sinks = {n: outputs[n].append for n in targets}
        try:
            cls._run(sinks, targets, fed)
        except BaseException as exc:
            if not stacked:
                part.abort_document()
                if not isinstance(exc, Exception):
                    raise
                return [exc]
            if not isinstance(exc, Exception):
                raise
            return [r for k, doc in enumerate(docs) for r in cls._write(
                part, [doc], {n: [c.isel(channel=k) for c in chunks]
                              for n, chunks in sources.items()}, targets)]
        if not stacked:
            return [cls._finish(part, doc_id, meta, seen, channels=None)]
        found = None  # each document's columns, once computed
        if all(len(outputs[name]) == 1 for name in targets):
            # every document's rows in one append per feature; else (or when a
            # document fails) one by one below, each with its own outcome
            found = [cls._columns(doc_id, meta, seen, channels=1) for doc_id, meta in docs]
            if not any(isinstance(f, BaseException) for f in found) and part.finish_stacked(
                    infos, {n: outputs[n][0] for n in targets},
                    [(doc_id, f[0]) for (doc_id, _), f in zip(docs, found, strict=True)]):
                return [(doc_id, f[1]) for (doc_id, _), f in zip(docs, found, strict=True)]
        results = []
        for k, (doc_id, meta) in enumerate(docs):
            sinks = part.sinks(infos)
            try:
                for name in targets:
                    for chunk in outputs[name]:
                        sinks[name](chunk.isel(channel=k))
            except Exception as exc:  # noqa: BLE001  (reported per document)
                part.abort_document()
                results.append(exc)
                continue
            results.append(cls._finish(part, doc_id, meta, seen, channels=1,
                                       found=None if found is None else found[k]))
        return results

    @classmethod
    def _finish(cls, part, doc_id: str, meta, seen: dict, channels: int | None,
                found=None):
        """Record a written document with its metadata; its outcome for :meth:`_write`.

        ``found``: its :meth:`_columns`, when already computed.
        """
        if found is None:
            found = cls._columns(doc_id, meta, seen, channels)
        if not isinstance(found, BaseException):
            try:
                part.finish_document(doc_id, found[0])
            except Exception as exc:  # noqa: BLE001  (reported per document)
                found = exc
        if isinstance(found, BaseException):
            part.abort_document()
            return found
        return doc_id, found[1]

    @staticmethod
    def _columns(doc_id: str, meta, seen: dict, channels: int | None):
        """Return a document's catalog metadata columns and seconds of audio, or the exception."""
        try:
            if isinstance(meta, dict):  # a stored document: its metadata as it is
                return meta, float(meta.get("duration") or 0.0)
            first = seen.get("first")
            if first is None:
                raise StoreError(f"document {doc_id!r}: no audio was decoded")
            frequency = first.xindexes["time"].frequency
            if meta.samplerate is None:
                meta.samplerate = int(round(1 / frequency))
            if meta.channels is None:
                meta.channels = channels or (first.shape[1] if first.ndim == 2 else 1)
            # what decoding found (headers can lie about lengths), with the meta
            seconds = float(seen["frames"] * frequency)
            meta.update(frames=seen["frames"], duration_seconds=seconds)
            return meta_columns(_json_safe(meta.to_dict())), seconds
        except Exception as exc:  # noqa: BLE001  (reported per document)
            return exc

    @classmethod
    def _channelwise(cls) -> bool:
        """Tell whether every computed feature on the way to the stored ones is channelwise.

        That is, treats a ``channel`` dim channel by channel (declared
        ``channelwise``), so that mono clips of one rate and length may be stacked and
        computed in one call.
        """
        cached = cls.__dict__.get("_channelwise_cache")
        if cached is None:
            needed: set[str] = set()

            def reach(name):
                if name in needed or cls._features[name].root:
                    return
                needed.add(name)
                for need in cls._graph[name]:
                    reach(need)

            for name in cls._stored_names():
                reach(name)
            cached = all(len(cls._graph[n]) == 1 and declaration(cls._features[n].func)
                         .channelwise for n in needed)
            cls._channelwise_cache = cached
        return cached

    @classmethod
    def _pending(cls, catalog, ids) -> list:
        """Tell what each of ``ids`` still needs, read from the store's ``catalog`` alone.

        Per id: ``None`` when the store holds no document of that id (process the
        source), ``()`` when it holds every stored feature of the graph at its current
        version (complete), else a tuple of the stored features that are missing or
        stale (compute only those). One vectorised pass over the catalog's version
        columns.
        """
        ids = list(ids)
        rows = catalog.index.get_indexer(ids)  # -1: not in the store
        known = rows >= 0
        names = cls._stored_names()
        versions = cls._versions()
        current = {}
        for name in names:
            column = catalog.get(f"{name}.version")
            current[name] = np.zeros(len(ids), bool) if column is None else known & (
                (column == versions[name]).to_numpy(dtype=bool, na_value=False)[rows])
        complete = np.logical_and.reduce([known, *current.values()])
        # tuples: 10^6 lists would wake the garbage collector over and over (0.4 s)
        out: list = [() if done else None for done in complete.tolist()]
        for i in np.flatnonzero(known & ~complete).tolist():  # rare: a graph changed
            out[i] = tuple(n for n in names if not current[n][i])
        return out

    @classmethod
    def _write_many(cls, part, jobs, chunksize, fstore=None, on_done=None) -> list:
        """Write many documents into ``part``.

        Returns ``[(doc_id, seconds) or the exception]``, in order.

        ``jobs`` are ``(meta, doc_id, stale)``: a source to process (``stale`` is
        ``None``) or a stored document of ``fstore`` whose ``stale`` features are
        computed. Short mono clips (one chunk) of the same rate and length are stacked
        along ``channel`` and computed in one call of each function when the graph is
        channelwise (measured: 64 one-second clips through the fused mel spectrogram,
        5-6x less CPU than 64 calls; the values are identical), up to ``_BATCH_CLIPS``
        clips and ``_BATCH_SAMPLES`` samples at a time. Anything else streams one
        document at a time. ``on_done(outcome)`` is called as each document ends (for
        progress).
        """
        cls._prepare_store(part.fstore)
        results: list = [None] * len(jobs)
        batching = cls._channelwise() and len(jobs) > 1
        targets = cls._stored_names()
        groups: dict[tuple, list] = {}

        def done(indices, outcomes):
            for i, outcome in zip(indices, outcomes, strict=True):
                results[i] = outcome
                if on_done is not None:
                    on_done(outcome)

        def write(group):
            docs = [(doc_id, m) for _, m, doc_id, _, _ in group]
            rate = group[0][4]
            if len(group) == 1:
                audio = AudioSamples(group[0][3], rate)
            else:  # document k is channel k, filled in place; each channel contiguous
                # (Fortran order): the frame kernel frames channel by channel
                stacked = np.empty((len(group[0][3]), len(group)), np.float32, order="F")
                for k, entry in enumerate(group):
                    stacked[:, k] = entry[3]
                audio = AudioSamples(stacked, rate)
            done([g[0] for g in group],
                 cls._write(part, docs, {cls._root_name("audio"): [audio]}, targets))

        for i, (meta, doc_id, stale) in enumerate(jobs):
            if stale is not None:
                done([i], [cls._update_one(fstore, part, doc_id, stale, chunksize)])
                continue
            m = _as_meta(meta)
            if not batching:
                done([i], cls._write(part, [(doc_id, m)], {cls._root_name("audio"): stream(
                    m.uri, chunksize=chunksize)}, targets))
                continue
            try:
                # plain arrays first: labelling each clip costs more than decoding it
                arrays = stream_arrays(m.uri, chunksize=chunksize)
                first = next(arrays)  # decoding errors surface here, before any write
                second = next(arrays, None)
            except Exception as exc:  # noqa: BLE001  (reported per source)
                done([i], [exc])
                continue
            data, rate, _ = first
            if second is not None or data.ndim != 1 or not len(data):
                chunks = (AudioSamples(d, r, start=Fraction(p) * r.exact_frequency)
                          for d, r, p in itertools.chain(
                              [first] if second is None else [first, second], arrays))
                done([i], cls._write(part, [(doc_id, m)], {cls._root_name("audio"): chunks},
                                     targets))
                continue
            key = (int(rate), len(data))
            group = groups.setdefault(key, [])
            group.append((i, m, doc_id, data, rate))
            if len(group) >= min(_BATCH_CLIPS, max(1, _BATCH_SAMPLES // key[1])):
                write(groups.pop(key))
        for group in groups.values():
            write(group)
        return results

    @classmethod
    def _update_many(cls, fstore: FeatureStore, ids, chunksize) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        part = None
        try:
            for doc_id in ids:
                stale = cls._stale(fstore.row(doc_id))
                out[doc_id] = stale
                if not stale:
                    continue
                if part is None:
                    cls._prepare_store(fstore)
                    part = fstore.part()
                outcome = cls._update_one(fstore, part, doc_id, stale, chunksize)
                if isinstance(outcome, BaseException):
                    raise outcome
            if part is not None:
                part.commit()
        except BaseException:
            if part is not None:
                part.discard()
            raise
        return out

    @classmethod
    def _update_one(cls, fstore, part, doc_id: str, stale: list[str], chunksize):
        """Compute a stored document's ``stale`` features from its nearest current ancestors.

        The audio is decoded again only when it is needed and not stored. Returns
        :meth:`_write`'s outcome.
        """
        try:
            row = fstore.row(doc_id)
            sources = cls._update_sources(fstore, row, stale, chunksize)
        except Exception as exc:  # noqa: BLE001  (reported per document)
            return exc
        [outcome] = cls._write(part, [(doc_id, meta_columns(meta_of_row(row)))], sources,
                               stale)
        return outcome

    @classmethod
    def _update_sources(cls, fstore, row: dict, stale: list[str], chunksize) -> dict:
        versions = cls._versions()
        current = {n for n in cls._stored_names()
                   if n not in stale and row.get(f"{n}.version") == versions[n]}
        audio = cls._root_name("audio")
        sources: set[str] = set()

        def reach(name):
            for need in cls._graph[name]:
                if need in current:
                    sources.add(need)
                elif need == audio:
                    sources.add(audio)
                else:
                    reach(need)

        for name in stale:
            if name == audio:
                sources.add(audio)
            else:
                reach(name)
        seconds = _chunk_seconds(chunksize, row.get("samplerate"), row.get("channels"))
        iterables = {}
        for name in sources:
            if name in current:
                iterables[name] = fstore.iter_chunks(row, name, seconds)
            else:
                uri = row.get("uri")  # None: decoded from memory
                if not isinstance(uri, str):
                    raise StoreError(
                        f"document {row['id']!r}: cannot compute {stale}: the audio is not "
                        f"stored and its source cannot be opened again (not a path or URL)")
                iterables[name] = stream(uri, chunksize=chunksize)
        return iterables

    @classmethod
    def _run(cls, sinks: dict, targets: list[str], sources: dict) -> None:
        cls._pipeline(sinks, targets, sources).run(sources)

    @classmethod
    def _nodes(cls, targets: list[str], sources) -> dict:
        """Build the streaming nodes that compute ``targets`` from ``sources``, in graph order."""
        needed: set[str] = set()

        def reach(name):
            if name in needed or name in sources:
                return
            needed.add(name)
            for need in cls._graph[name]:
                reach(need)

        for name in targets:
            reach(name)
        return {n: make_node(n, cls._features[n]) for n in cls._order if n in needed}

    @classmethod
    def _pipeline(cls, sinks: dict, targets: list[str], sources) -> Pipeline:
        """Build the pipeline that streams ``sources`` (names) into ``targets``' ``sinks``."""
        nodes = cls._nodes(targets, sources)
        return Pipeline(nodes, {n: cls._graph[n] for n in nodes}, sinks)
