"""One long recording's work split across workers, in time ranges.

Streamed in one task, a 2-hour file keeps one core busy while the others idle.
:func:`plan` (run by ``ingest`` in its own process) cuts such a file into time ranges,
one task each (:func:`write_range`, on any worker), and :meth:`Split.finish` commits the
document once every range has succeeded. The stored result is the one-process stream's,
exactly.

Why it is exact
---------------
Every node on the way from the audio to the stored features must be frame-local or
framing (:mod:`zounds_xr.core.streamable`: frame ``k`` of a framing covers input frames
``[k*hop, k*hop + window)``, no centring). A range that starts on a sample where every
node's frames start (a multiple of each node's frame period, in samples) then computes
exactly the frames of the one stream from its first sample on: it needs no context
before its start. After its end it needs what its last frames' windows cover: the range
decodes on until every stored feature has emitted its last frame (the declared windows
decide how far), and keeps only its own frames. The last range reads to the end of the
file and flushes the nodes as the one stream does (the padded frames of the end). A
graph with a stateful node (``resample``: soxr's filter state carries across the whole
signal, and a resampler started mid-stream converges to the one stream's output only to
within rounding) or with a function of several features is not split: such a document
streams in one task, as before.

Writes and the commit
---------------------
Range boundaries are common multiples of every node's frame period and of every stored
array's shard (in samples), so ranges write disjoint whole shards of arrays the planner
created at their full length (no read-modify-write between writers; only the last range
writes a partial shard). Each range records the files it writes
(:class:`~zounds_xr.documents.manifest.RecordingStore`) and returns the records; the
planner commits the part (one catalog row, one log entry) once all ranges succeeded.
A failed range leaves no document: the part is discarded (what a killed writer leaves
is vacuumed) and the failure recorded, as for a source that fails in one task. Only
files whose length libsndfile knows exactly and whose format seeks exactly (PCM, FLAC:
:func:`zounds_xr.audio_info`) are split; each range seeks to its first sample.

The explorer's pyramid
----------------------
A stored feature long enough for a pyramid (:mod:`.pyramid`) gets it from the ranges:
each summarises the frames it writes, shard by shard, into the levels whose rows lie
within its range (ranges start on multiples of a shard, a power of two of frames), and
writes the chunks of those levels that are its own; ingest's process writes the few
rows of shared chunks and the levels above from the ranges' summaries before the
commit, and makes the pyramid current after it. The pyramid equals the one
:func:`~zounds_xr.documents.pyramid.build_pyramid` builds from the stored frames,
bytes and all, without reading the frames back.

Memory per worker: one decoded chunk, the nodes' carry-over, one shard per stored
feature and its summaries.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
import warnings
from fractions import Fraction
from typing import Any

import numpy as np
import zarr

from ..audio.samples import AudioSamples
from ..core.errors import StoreError, ZoundsError
from ..io.decode import stream_arrays
from ..io.lazy import audio_info
from ..io.metadata import AudioMetaData
from .document import _as_meta
from .chunks import write_rows
from .manifest import RecordingStore
from .pyramid import (
    RangePyramid,
    discard_split_pyramid,
    finish_split_pyramid,
    plan_split_pyramid,
    seal_split_pyramid,
)
from .streaming import AlignNode, StatefulNode, time_index_of

__all__ = ["RangeJob", "Split", "plan", "splittable", "write_range"]

#: samples of the first chunk the planner streams through the graph (frame periods,
#: labels and dtypes of every node)
_PROBE_SECONDS = 10


def splittable(document) -> bool:
    """Tell whether ``document``'s stored features can be computed in time ranges.

    Every node between the audio and them is frame-local or framing (see the module
    docs).
    """
    audio = document._root_name("audio")
    nodes = document._nodes(document._stored_names(), {audio})
    return not any(isinstance(n, (AlignNode, StatefulNode)) for n in nodes.values())


@dataclasses.dataclass(frozen=True)
class RangeJob:
    """One range of a split recording: what a worker needs (small, pickled).

    Attributes
    ----------
    uri : str
        The source file.
    start, stop : int
        Its samples ``[start, stop)``; ``stop`` is ``None`` for the last range (to the
        end of the file, nodes flushed).
    rows : dict of str to (int, int or None)
        Per stored feature, the rows it writes (``None``: to the end).
    arrays : dict of str to dict
        Per stored feature, the array the planner created
        (:meth:`~zounds_xr.documents.parts.PartWriter.reserve`).
    chunksize : object
        The decoding chunk (as :func:`zounds_xr.stream` takes it).
    pyramids : dict of str to dict
        Per stored feature that gets a pyramid, what the range builds of it
        (:func:`~zounds_xr.documents.pyramid.plan_split_pyramid`).
    """

    uri: str
    start: int
    stop: int | None
    rows: dict[str, tuple[int, int | None]]
    arrays: dict[str, dict]
    chunksize: Any
    pyramids: dict[str, dict] = dataclasses.field(default_factory=dict)


class _RangeSink:
    """Write one stored feature's rows ``[lo, hi)`` of a range, in whole shards."""

    def __init__(self, name: str, array: zarr.Array, lo: int, hi: int | None, spec: dict,
                 pyramid: RangePyramid | None = None):
        self.name, self.array, self.lo, self.hi = name, array, lo, hi
        self.pyramid = pyramid
        self.dtype = np.dtype(spec["dtype"])
        self.shape = tuple(spec["shape"])
        self.shard = int(spec["shard_rows"])
        self.row = lo  # the next row to write to the array
        # the shard being filled, reused (a fresh 32 MiB array per shard costs its
        # page faults, and concatenating the frames a copy)
        self.buffer = np.empty((self.shard, *self.shape), dtype=self.dtype)
        self.held = 0
        self.done = False  # every row of the range emitted (hi reached)

    def __call__(self, chunk) -> None:
        index = time_index_of(chunk, self.name)
        if chunk.dims[0] != "time":
            chunk = chunk.transpose("time", ...)
        exact = index.start / index.frequency
        n = chunk.sizes["time"]
        expected = self.row + self.held
        if self.done:
            return  # frames past the range (context for the other features)
        if exact.denominator != 1 or (n and int(exact) > expected):
            raise StoreError(f"feature {self.name!r}: a range's frames start at "
                             f"{index.start}s, frame {expected} expected (a gap)")
        first = int(exact)
        stop = first + n if self.hi is None else min(first + n, self.hi)
        if stop > expected:
            data = np.asarray(chunk.data)[expected - first:stop - first]
            if data.shape[1:] != self.shape:
                raise StoreError(f"feature {self.name!r}: frames of shape {data.shape[1:]} "
                                 f"in a range, {self.shape} in the first chunk")
            while len(data):
                take = min(len(data), self.shard - self.held)
                self.buffer[self.held:self.held + take] = data[:take]  # (the stored dtype)
                self.held += take
                data = data[take:]
                if self.held == self.shard:
                    self._write()
        if self.hi is not None and first + n >= self.hi:
            self.done = True

    def _write(self) -> None:
        block = self.buffer[:self.held]
        if self.row + len(block) > self.array.shape[0]:
            raise StoreError(f"feature {self.name!r}: more frames than the file's length "
                             f"announces ({self.array.shape[0]} rows reserved)")
        write_rows(self.array, self.row, block)
        if self.pyramid is not None:
            self.pyramid.add(block)
        self.row += len(block)
        self.held = 0

    def close(self) -> int:
        """Write what is held; return the rows this range wrote."""
        if self.held:
            self._write()
        return self.row - self.lo


def write_range(document, job: RangeJob) -> dict:
    """Compute and write one range of a split recording (a worker's task).

    Parameters
    ----------
    document : Document subclass
        The class being ingested.
    job : RangeJob
        The range.

    Returns
    -------
    dict
        ``rows`` (per stored feature, the rows written), ``frames`` (the sample after
        the last one decoded), ``records`` (the log's records of the files written)
        and ``pyramids`` (per feature with one, what ingest's process writes of it).

    Raises
    ------
    ZoundsError
        When decoding or a feature fails, or the range cannot complete its frames
        before the end of the file.
    """
    fstore = document._store_for(None)
    recording = RecordingStore(fstore.zarr_store)
    sinks = {}
    with fstore.reaching("write to"):
        for name, spec in job.arrays.items():
            recording.adopt_array(spec["path"], spec["metadata"])
            # every chunk written, as the part's own writer does (the direct reads
            # refuse a missing one; zarr leaves out chunks of zeros by default)
            array = zarr.open_array(recording, path=spec["path"], zarr_format=3, mode="r+"
                                    ).with_config({"write_empty_chunks": True})
            lo, hi = job.rows[name]
            pyramid = job.pyramids.get(name)
            sinks[name] = _RangeSink(name, array, lo, hi, spec, None if pyramid is None
                                     else RangePyramid(fstore, pyramid, lo, hi))
    audio = document._root_name("audio")
    pipeline = document._pipeline(sinks, list(sinks), {audio})
    last = job.stop is None
    position = job.start
    chunks = stream_arrays(job.uri, job.chunksize, start=job.start)
    with contextlib.closing(chunks):
        for data, rate, at in chunks:
            pipeline.feed(audio, AudioSamples(data, rate,
                                              start=Fraction(at) * rate.exact_frequency))
            position = at + len(data)
            if not last and all(s.done for s in sinks.values()):
                break
    if last:
        pipeline.finish()
    elif not all(s.done for s in sinks.values()):
        raise StoreError(f"{job.uri}: the range from sample {job.start} reached the end of "
                         f"the file before its last frames")
    with fstore.reaching("write to"):
        rows = {name: s.close() for name, s in sinks.items()}
        pyramids = {name: s.pyramid.close() for name, s in sinks.items()
                    if s.pyramid is not None}
    return {"rows": rows, "frames": position, "records": dict(recording.records),
            "pyramids": pyramids}


class Split:
    """A long recording planned into ranges: run :attr:`jobs`, then :meth:`finish`.

    Made by :func:`plan`; holds the uncommitted part the ranges write into.
    """

    def __init__(self, document, part, meta: AudioMetaData, doc_id: str, jobs: list,
                 first, frames: int):
        self.document, self.part, self.meta, self.doc_id = document, part, meta, doc_id
        self.jobs: list[RangeJob] = jobs
        self._first, self._frames = first, frames

    @property
    def source(self) -> str:
        """The source's name in reports."""
        return self.meta.uri_string or repr(self.meta)

    def finish(self, outcomes: list) -> tuple[str, float]:
        """Commit the document once every range succeeded; else discard the part.

        Parameters
        ----------
        outcomes : list
            Per job, in order: :func:`write_range`'s dict, or a reason (str) why it
            failed.

        Returns
        -------
        tuple
            ``(doc_id, seconds of audio)``.

        Raises
        ------
        ZoundsError
            When a range failed, or the ranges do not add up to the file (then nothing
            is committed: the part is discarded).
        """
        try:
            failed = next((o for o in outcomes if not isinstance(o, dict)), None)
            if failed is not None:
                raise StoreError(f"a time range failed: {failed}")
            frames = outcomes[-1]["frames"]
            if frames != self._frames:
                raise StoreError(f"{frames} frames decoded, {self._frames} in the header")
            rows: dict[str, int] = {}
            records: dict[str, dict] = {}
            for job, outcome in zip(self.jobs, outcomes, strict=True):
                records.update(outcome["records"])
                for name, (lo, hi) in job.rows.items():
                    n = outcome["rows"][name]
                    if hi is not None and n != hi - lo:
                        raise StoreError(f"feature {name!r}: a range wrote {n} rows of "
                                         f"{hi - lo}")
                    rows[name] = lo + n
            pyramids = self._finish_pyramids(rows, outcomes)
            self.part.adopt(rows, records)
            done = self.document._finish(self.part, self.doc_id, self.meta,
                                         {"first": self._first, "frames": frames},
                                         channels=None)
            if isinstance(done, BaseException):
                raise done
            self.part.commit()
        except BaseException:
            self.discard()
            raise
        self._seal_pyramids(pyramids)
        return done

    def _pyramid_failed(self, name: str, spec: dict, exc: Exception) -> None:
        warnings.warn(f"the pyramid of feature {name!r} of {self.source} was not built with "
                      f"its ranges ({type(exc).__name__}: {exc}); ingest builds it from "
                      f"the stored frames", RuntimeWarning, stacklevel=3)
        with contextlib.suppress(Exception):
            discard_split_pyramid(self.part.fstore, spec)

    def _finish_pyramids(self, rows: dict[str, int], outcomes: list) -> dict:
        """Write what the ranges left of each pyramid: ``{name: (levels, seconds)}``.

        A pyramid that cannot be finished is dropped (ingest then builds it from the
        stored frames, after the commit): it never fails the document.
        """
        out = {}
        for name, spec in self.jobs[0].pyramids.items():
            ranges = [o["pyramids"][name] for o in outcomes]
            started = time.perf_counter()
            try:
                levels = finish_split_pyramid(self.part.fstore, spec, rows[name], ranges)
            except Exception as exc:  # noqa: BLE001  (derived data: rebuilt after the commit)
                self._pyramid_failed(name, spec, exc)
                continue
            if levels is not None:
                seconds = sum(r["seconds"] for r in ranges) + time.perf_counter() - started
                out[name] = (levels, seconds)
        return out

    def _seal_pyramids(self, pyramids: dict) -> None:
        """Make the finished pyramids current (the document is committed)."""
        if not pyramids:
            return
        fstore = self.part.fstore
        try:
            row = fstore.row(self.doc_id)
        except Exception as exc:  # noqa: BLE001  (derived data: rebuilt after the commit)
            for name in pyramids:
                self._pyramid_failed(name, self.jobs[0].pyramids[name], exc)
            return
        for name, (levels, seconds) in pyramids.items():
            spec = self.jobs[0].pyramids[name]
            try:
                seal_split_pyramid(fstore, spec, name, self.doc_id, row, levels, seconds)
            except Exception as exc:  # noqa: BLE001
                self._pyramid_failed(name, spec, exc)

    def record_failure(self, reason: str) -> None:
        """Record in the store that the source failed, as a task that fails one does."""
        with contextlib.suppress(Exception):  # the report has it either way
            part = self.part.fstore.part()
            part.record_failure(self.doc_id, self.source, reason)
            part.commit()

    def discard(self) -> None:
        """Remove what the ranges wrote (nothing was committed)."""
        for spec in self.jobs[0].pyramids.values() if self.jobs else ():
            with contextlib.suppress(Exception):  # derived data; never current
                discard_split_pyramid(self.part.fstore, spec)
        self.part.discard()


def plan(document, meta: AudioMetaData, doc_id: str, ranges: int, chunksize
         ) -> Split | None:
    """Plan a long recording into at most ``ranges`` time ranges of about equal length.

    ``None`` when it is not split: fewer than 2 ranges fit (boundaries fall on common
    multiples of the frame periods and shards), the graph is not :func:`splittable`,
    the file's length is not known exactly or its format does not seek exactly, or the
    first seconds cannot be computed (the one-stream task then reports why).

    Parameters
    ----------
    document : Document subclass
        The class being ingested.
    meta : AudioMetaData
        The source (a local path).
    doc_id : str
        The document's id.
    ranges : int
        The most ranges (the workers).
    chunksize : object
        The decoding chunk.

    Returns
    -------
    Split or None
        The jobs to run and the part they write into (created, uncommitted).
    """
    uri = meta.uri_string
    if ranges < 2 or uri is None or "://" in uri or not splittable(document):
        return None
    try:
        info = audio_info(uri)
    except ZoundsError:
        return None
    if info.counted or not info.frames:
        return None
    fstore = document._store_for(None)
    document._prepare_store(fstore)
    part = fstore.part()
    try:
        split = _plan(document, part, _as_meta(meta), doc_id, info, ranges, chunksize)
    except Exception:  # noqa: BLE001  (the one-stream task reports it)
        split = None
    if split is None:
        part.discard()
    return split


def _plan(document, part, meta, doc_id, info, ranges, chunksize) -> Split | None:
    uri, total = meta.uri_string, int(info.frames)
    step = info.samplerate.exact_frequency
    audio = document._root_name("audio")
    targets = document._stored_names()
    sinks = part.sinks({n: document._feature_info(n) for n in targets})
    first: dict[str, Any] = {}  # every node's first chunk's time index

    def watch(name, forward=None):
        def sink(chunk):
            first.setdefault(name, time_index_of(chunk, name))
            if forward is not None:
                forward(chunk)
        return sink

    names = [audio, *document._nodes(targets, {audio})]
    pipeline = document._pipeline({n: watch(n, sinks.get(n)) for n in names}, targets,
                                  {audio})
    probe = min(total, max(256, int(_PROBE_SECONDS / step)))
    with contextlib.closing(stream_arrays(uri, probe)) as chunks:
        data, rate, _ = next(chunks)
    head = AudioSamples(data, rate)
    pipeline.feed(audio, head)
    if any(n not in first for n in names):
        return None  # a window longer than the probe: such files are rare, streamed
    periods, span = {}, 0
    for name, index in first.items():
        period, start = index.frequency / step, index.start / step
        if period.denominator != 1 or start != 0:
            return None
        periods[name] = int(period)
        span = max(span, math.ceil(index.duration / step))
    capacity = {n: -(-total // periods[n]) + 16 for n in targets}
    arrays = part.reserve(capacity)
    if arrays is None:
        return None
    unit = math.lcm(*periods.values(),
                    *(arrays[n]["shard_rows"] * periods[n] for n in targets))
    count = min(ranges, total // unit)
    edges = sorted({round(i * total / count / unit) * unit for i in range(1, count)}
                   if count > 1 else set())
    edges = [e for e in edges if 0 < e and total - e > span]
    if not edges:
        return None
    bounds = [0, *edges, None]
    rows = [{n: (a // periods[n], None if b is None else b // periods[n]) for n in targets}
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    pyramids = {}
    for name in targets:
        spec = _pyramid_of(part.fstore, name, doc_id, capacity[name], arrays[name],
                           [r[name][0] for r in rows])
        if spec is not None:
            pyramids[name] = spec
    jobs = [RangeJob(uri, a, b, r, arrays, chunksize, pyramids)
            for a, b, r in zip(bounds[:-1], bounds[1:], rows, strict=True)]
    return Split(document, part, meta, doc_id, jobs, head, total)


def _pyramid_of(fstore, name: str, doc_id: str, capacity: int, array: dict,
                starts: list[int]) -> dict | None:
    """Plan the pyramid of a stored feature built by the ranges (``None``: none)."""
    dims = json.loads(array["metadata"]).get("dimension_names") or []
    if not dims or dims[0] != "time":
        return None
    rest = tuple(n for d, n in zip(dims[1:], array["shape"], strict=True) if d != "channel")
    channel = dims.index("channel") if "channel" in dims else None
    return plan_split_pyramid(fstore, name, doc_id, capacity, rest, channel,
                              int(array["shard_rows"]), starts)
