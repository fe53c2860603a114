"""Batch feature extraction: process a corpus into a feature store with dask.

``ingest`` turns a dataset (an iterable of :class:`~zounds_xr.AudioMetaData`) into
documents of a :class:`~zounds_xr.Document` class. Sources are grouped into tasks (many
short clips, or one long recording, per task); each task writes one part of the store
and its catalog fragment last. It runs on the local threaded or process scheduler, or
on a ``distributed.Client`` (the same code path as a remote cluster). A task never
raises: failures come back as messages (and are recorded in the part's fragment), so
one corrupt file never stops the batch. Visible documents are skipped on the next run
(resume reads the catalog once); a killed task's part is invisible and redone.
"""
from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import dataclasses
import functools
import hashlib
import multiprocessing
import os
import socket
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..core.optional import optional_import
from .progress import Progress, Reporter, drain, init_worker, unique_token
from ..core.validation import positive_int
from .document import Document
from .heap import release_heap_later, task_heap
from .longfile import plan as plan_split, write_range
from .pyramid import build_pyramids
from ..core.errors import ParameterError, ZoundsError
from ..io.metadata import AudioMetaData
from ..search.persist import update_indexes
from ..spectral.kernels import set_default_threads

__all__ = ["ingest", "IngestReport", "TaskTiming", "process_pool"]

_CHUNK = np.timedelta64(30, "s")

_SCHEDULERS = ("threads", "processes", "synchronous", "sync", "single-threaded")


@dataclasses.dataclass(frozen=True)
class TaskTiming:
    """Where and when one task of an :func:`ingest` ran (``IngestReport.tasks``).

    Attributes
    ----------
    worker : str
        ``host/pid/thread`` of the worker that ran it.
    start, end : float
        Wall-clock time (``time.time()``, seconds since the epoch) at which the task
        began and ended, inside the worker.
    sources : int
        Sources (clips) the task held; 0 for a time range of a long recording split
        across workers.
    """

    worker: str
    start: float
    end: float
    sources: int


def _timed(func):
    """Wrap a task's function to return ``(result, TaskTiming)``.

    The wrapper keeps the function's name: dask's keys, and pickling by reference.
    """
    @functools.wraps(func)
    def timed(shipped, work, *args):
        start = time.time()
        result = func(shipped, work, *args)
        worker = f"{socket.gethostname()}/{os.getpid()}/{threading.current_thread().name}"
        return result, TaskTiming(worker, start, time.time(),
                                  len(work) if isinstance(work, list) else 0)
    return timed


@dataclasses.dataclass
class IngestReport:
    """Record what an :func:`ingest` run did.

    :func:`ingest` builds and returns it; every field has a default (an empty run).

    Parameters
    ----------
    processed, skipped : list of str, optional
        See Attributes.
    failed : dict of str to str, optional
        See Attributes.
    updated : dict of str to list of str, optional
        See Attributes.
    seconds, audio_seconds : float, optional
        See Attributes; ``>= 0``.
    tasks : list of TaskTiming, optional
        See Attributes.

    Attributes
    ----------
    processed : list of str
        Ids of the documents computed by this run (new ones, and stored ones that were
        brought up to date).
    skipped : list of str
        Ids of documents that were complete already.
    failed : dict of str to str
        Source URI -> a readable reason, for every source that could not be processed
        (they are retried by the next run).
    updated : dict of str to list of str
        Id -> the stored features computed for a document that was in the store already
        (missing from it, or stale: the graph changed); nothing else of it is computed.
    seconds : float
        Wall-clock time of the run.
    audio_seconds : float
        Seconds of audio processed by this run (when the documents report it).
    tasks : list of TaskTiming
        Where and when each task of the run ran, in submission order: a timeline of the
        workers, to see whether they were all busy until the end (none when a worker
        process died).
    """

    processed: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    updated: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    audio_seconds: float = 0.0
    tasks: list[TaskTiming] = dataclasses.field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Seconds of audio processed per second of wall-clock time."""
        return self.audio_seconds / self.seconds if self.seconds else 0.0

    def __str__(self) -> str:
        return (f"{len(self.processed)} processed, {len(self.skipped)} skipped, "
                f"{len(self.failed)} failed in {self.seconds:.1f} s")


def _source_name(meta: AudioMetaData) -> str:
    return meta.uri_string or repr(meta)


def _failure(exc: BaseException) -> str:
    if isinstance(exc, ZoundsError):
        return f"{type(exc).__name__}: {exc}"
    tail = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return f"unexpected error: {tail}"


#: document classes a worker process has unpickled, by digest of their pickle: a worker
#: builds each class (its graph, versions) and opens its store once, not once a task
_WORKER_DOCUMENTS: dict[str, type] = {}


def _ship(document) -> tuple[str, bytes]:
    """Pickle the document class as ``(digest, cloudpickle bytes)`` for worker processes."""
    import cloudpickle

    blob = cloudpickle.dumps(document)
    return hashlib.sha256(blob).hexdigest(), blob


def _document_of(shipped):
    if isinstance(shipped, type):  # threads: the class itself
        return shipped
    key, blob = shipped
    document = _WORKER_DOCUMENTS.get(key)
    if document is None:
        import cloudpickle

        if len(_WORKER_DOCUMENTS) >= 8:  # a long session of many graphs
            _WORKER_DOCUMENTS.clear()
        document = _WORKER_DOCUMENTS[key] = cloudpickle.loads(blob)
    return document


@_timed
def _process_batch(shipped, items, channel=None):
    """Process several sources into one part of the store.

    It never raises (the batch must go on): it returns ``(status, source, doc_id,
    seconds or reason)`` per source, and the task's :class:`TaskTiming`. ``items`` are
    ``(meta, doc_id, stale)``: a source to process (``stale`` is ``None``), or a stored
    document whose ``stale`` features are computed. Each finished clip is reported
    through ``channel`` (see :mod:`zounds_xr.documents.progress`).
    """
    # nested parallelism inside a worker only oversubscribes its cores
    import dask

    results = []
    reporter = Reporter(channel)
    # task_heap: a distributed worker's fixed malloc threshold would mmap (and fault in)
    # every large temporary afresh, per stack of clips (documents/heap.py)
    with dask.config.set(scheduler="synchronous"), task_heap():
        try:
            document = _document_of(shipped)
            fstore = document._store_for(None)
            part = fstore.part()
        except Exception as exc:  # noqa: BLE001  (a worker must report, not die)
            for _ in items:
                reporter(exc)
            reporter.close()
            return [("failed", _source_name(m), None, _failure(exc)) for m, _, _ in items]
        items = [(meta, doc_id or uuid.uuid4().hex, stale) for meta, doc_id, stale in items]
        outcomes = document._write_many(part, items, _CHUNK, fstore, on_done=reporter)
        reporter.close()
        for (meta, doc_id, _), outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                reason = _failure(outcome)
                part.record_failure(doc_id, _source_name(meta), reason)
                results.append(("failed", _source_name(meta), None, reason))
            else:
                results.append(("ok", _source_name(meta), *outcome))
        try:
            part.commit()
        except Exception as exc:  # noqa: BLE001
            reason = f"the task's part could not be committed: {_failure(exc)}"
            part.discard()
            return [("failed", src, None, reason if status == "ok" else detail)
                    for status, src, _, detail in results]
    return results


@_timed
def _process_range(shipped, job):
    """Write one time range of a split long recording (``documents/longfile.py``).

    Returns :func:`~zounds_xr.documents.longfile.write_range`'s dict, or the reason it
    failed (it never raises: the planner commits the document only when every range
    succeeded), and the task's :class:`TaskTiming`.
    """
    import dask

    with dask.config.set(scheduler="synchronous"), task_heap():
        try:
            return write_range(_document_of(shipped), job)
        except Exception as exc:  # noqa: BLE001  (a worker must report, not die)
            return _failure(exc)


def _split(document, batch: list, workers: int):
    """Plan a long recording alone in its task into time ranges, one per worker.

    ``None``: the task runs whole (see :func:`~zounds_xr.documents.longfile.plan`).
    """
    if workers < 2 or len(batch) != 1:
        return None
    meta, doc_id, stale = batch[0]
    if stale is not None or doc_id is None or _source_bytes(meta) < _LONG_FILE_BYTES:
        return None
    return plan_split(document, meta, doc_id, workers, _CHUNK)


def _task_groups(batches: list, splits: list, submit, shipped, channel) -> list:
    """Per batch, its tasks: one, or one per range of a split recording."""
    return [[submit(_process_batch, shipped, batch, channel)] if split is None
            else [submit(_process_range, shipped, job) for job in split.jobs]
            for batch, split in zip(batches, splits, strict=True)]


def _gather_groups(splits: list, outputs, display) -> tuple[list, list[TaskTiming]]:
    """Flatten the tasks' results, and list their timings.

    A split recording is committed here, once.
    """
    results: list = []
    timings = [timing for _, timing in outputs]
    outputs = iter(output for output, _ in outputs)
    for split in splits:
        if split is None:
            results.extend(next(outputs))
            continue
        try:
            outcome = ("ok", split.source, *split.finish([next(outputs) for _ in split.jobs]))
        except Exception as exc:  # noqa: BLE001  (reported, as the task it replaces)
            reason = _failure(exc)
            split.record_failure(reason)
            outcome = ("failed", split.source, None, reason)
        if display is not None:
            display.update(_final([outcome]))
        results.append(outcome)
    return results, timings


#: a task's share of sources: at least this many files (when there are enough) ...
_MIN_FILES_PER_TASK = 1000
#: ... at most this many files ...
_MAX_FILES_PER_TASK = 2000
#: ... and this many bytes of (encoded) source files (2,000 clips of 5 s of 44.1 kHz
#: PCM_16 are 880 MB: parts of 5 s clips hold as many documents as parts of 1 s clips)
_MAX_BYTES_PER_TASK = 1 << 30
#: a file this large is a long recording: a task of its own (12 min of 44.1 kHz stereo)
_LONG_FILE_BYTES = 64 << 20


def _source_bytes(meta: AudioMetaData) -> int:
    uri = meta.uri_string
    if uri is not None and "://" not in uri:
        try:
            return os.path.getsize(uri)
        except OSError:
            return 0
    return 0


def _task_count(n: int, workers: int) -> int:
    """How many tasks ``n`` short clips make, on ``workers`` workers.

    A short clip takes a few ms to compute; a part costs a few files and a task a few
    ms of scheduling. So tasks hold many clips (up to ``_MAX_FILES_PER_TASK``), while
    every worker still gets >= 4 tasks to balance uneven lengths, and small corpora are
    not split into tiny parts (one per worker). The count is a whole number of rounds
    (a multiple of ``workers``): a last round of fewer tasks than workers leaves the
    others idle while it runs (2,500 clips on 2 workers were tasks of 1,000, 1,000 and
    500: a worker idle for a fifth of the run).
    """
    # >= 4 tasks per worker, but no fewer than _MIN_FILES_PER_TASK files a task unless
    # that would leave a worker without work: a part costs ~10 files and a few writes
    per_task = max(-(-n // (4 * workers)), min(_MIN_FILES_PER_TASK, n // workers))
    tasks = -(-n // max(1, min(_MAX_FILES_PER_TASK, per_task)))
    if tasks <= workers:
        return tasks
    fewer = tasks // workers * workers  # larger tasks (fewer parts), if they may be
    return fewer if -(-n // fewer) <= _MAX_FILES_PER_TASK else -(-tasks // workers) * workers


def _batches(todo: list, workers: int) -> list[list]:
    """Group sources into tasks of one part each, in whole rounds of ``workers``.

    :func:`_task_count` tasks of about equal source bytes (equal counts when a source's
    size is unknown: a URL), in order; a task closes early at ``_MAX_FILES_PER_TASK``
    files or ``_MAX_BYTES_PER_TASK`` bytes. A long recording (``_LONG_FILE_BYTES``) is a
    task of its own.
    """
    if not todo:
        return []
    sizes = [_source_bytes(item[0]) if isinstance(item, tuple) else 0 for item in todo]
    short = [n for n in sizes if n < _LONG_FILE_BYTES]
    weights = sizes if short and all(short) else [1] * len(todo)
    step = sum(w for w, n in zip(weights, sizes, strict=True) if n < _LONG_FILE_BYTES) / max(
        1, _task_count(len(short), max(1, workers)))
    batches: list[list] = []
    current: list = []
    size = done = 0
    cut = step  # the next boundary between tasks, in cumulated weight
    for item, n, weight in zip(todo, sizes, weights, strict=True):
        if n >= _LONG_FILE_BYTES:
            batches.append([item])
            continue
        middle = done + weight / 2  # a source goes to the task its middle falls in
        if current and (middle > cut or len(current) >= _MAX_FILES_PER_TASK
                        or size + n > _MAX_BYTES_PER_TASK):
            batches.append(current)
            current, size = [], 0
        while cut < middle:
            cut += step
        current.append(item)
        size += n
        done += weight
    if current:
        batches.append(current)
    return batches


def _audio_seconds(document, meta: AudioMetaData, doc_id: str) -> float:
    # process() records what decoding found on the meta it was given (when it is not
    # copied); otherwise read it back from the stored document
    seconds = getattr(meta, "duration_seconds", None)
    if seconds is None:
        try:
            seconds = document(doc_id).meta.duration_seconds
        except (ZoundsError, AttributeError, OSError):  # the figure is informative only
            seconds = 0.0
    return float(seconds)


def _as_meta(item) -> AudioMetaData:
    return item if isinstance(item, AudioMetaData) else AudioMetaData(uri=item)


def ingest(dataset: Iterable, document, client=None, scheduler: str = "threads",
           progress: bool = True, on_error: str = "record", num_workers: int | None = None,
           repair: bool = False) -> IngestReport:
    """Process every source of ``dataset`` into documents of ``document``, in parallel.

    Parameters
    ----------
    dataset : iterable of AudioMetaData (or paths/URLs)
        E.g. ``zx.Directory("corpus/")``.
    document : Document subclass
        Bound to a store (``@zarr_settings``); must pickle with cloudpickle for the
        process scheduler and distributed workers.
    client : distributed.Client, optional
        Run on this cluster (its workers must reach the store).
    scheduler : {"threads", "processes", "synchronous"}
        Local dask scheduler when no client is given.
    progress : bool
        Show progress in clips and hours of audio, with the rate, ETA and failures so
        far, updated as clips finish inside the tasks (local schedulers and a
        ``distributed.Client`` alike): a tqdm bar on a terminal (when tqdm is
        installed), else one plain line every few seconds, on ``sys.stderr``.
    on_error : {"record", "raise"}
        Record failures in the report (default) or raise the first one after the run.
    num_workers : int, optional
        Local workers (threads or processes); dask's default otherwise. Worker
        processes are started once per session and reused (:func:`process_pool`).
    repair : bool, default False
        Check every visible document first (:meth:`FeatureStore.verify`: missing
        chunks, failed checksums) and recompute the damaged ones whose sources are in
        ``dataset`` into new parts (the newest fragment wins; the damaged parts are
        vacuumed once nothing refers to them).

    Returns
    -------
    IngestReport
        The documents processed, skipped, updated and failed, and the run's timings.

    Raises
    ------
    ParameterError
        If ``document`` is not a :class:`~zounds_xr.Document` subclass, ``dataset`` is
        not an iterable of sources (a single path included), ``on_error`` or
        ``scheduler`` is not one of the values above, ``num_workers`` is not a
        positive int, or ``scheduler="processes"`` is called at a script's top level
        without an ``if __name__ == "__main__":`` guard (spawned workers would
        import the script and start ingest again).
    ZoundsError
        With ``on_error="raise"``, after the run, when any source failed (the message
        counts them and names the first with its reason); the others are stored.
    StoreError
        If ``document`` is bound to no store, or the store's root is unusable (e.g.
        parts or a catalog without a root).

    Examples
    --------
    >>> report = zx.ingest(zx.Directory("audio/"), Sound, scheduler="processes")  # doctest: +SKIP
    >>> report.failed  # doctest: +SKIP
    {'audio/broken.wav': 'AudioDecodeError: ...'}
    """
    _check_document(document)
    if dataset is None or isinstance(dataset, (str, bytes, os.PathLike)) or not isinstance(
            dataset, Iterable):
        hint = " (a single path: give [path], or zx.Directory(path))" if isinstance(
            dataset, (str, bytes, os.PathLike)) else ""
        raise ParameterError(f"ingest needs an iterable of sources (AudioMetaData, paths or "
                             f"URLs) as dataset, got {type(dataset).__name__}{hint}")
    if on_error not in ("record", "raise"):
        raise ParameterError(f"on_error must be 'record' or 'raise', got {on_error!r}")
    if not isinstance(scheduler, str) or (client is None and scheduler not in _SCHEDULERS):
        raise ParameterError(f"scheduler must be one of {_SCHEDULERS}, got {scheduler!r}; pass "
                             f"a distributed.Client as client= for a cluster")
    if num_workers is not None:
        num_workers = positive_int(num_workers, "num_workers")
    if client is None and scheduler == "processes":
        _check_main_guard()
    t0 = time.perf_counter()
    # workers start (and import) while the dataset is scanned below; a pool set in dask's
    # config (dask.config.set(pool=...)) is used as dask would
    pool = None
    if client is None and scheduler == "processes":
        import dask

        pool = dask.config.get("pool", None) or process_pool(num_workers)
        if any(getattr(f, "kind", None) == "torch" for f in document._features.values()):
            for _ in range(getattr(pool, "_max_workers", 1)):  # learned torch features
                pool.submit(_warm_torch)
    # create the store once, here: first writers racing to create its root would fail
    fstore = document._store_for(None)
    fstore.root(create=True)
    damaged = set(fstore.verify()) if repair else set()
    report = IngestReport()
    todo = []
    metas = [_as_meta(item) for item in dataset]
    ids = [document.id_for(meta) for meta in metas]  # None for in-memory sources
    # resume from what the store committed, read once: a document is complete when it
    # holds every stored feature of the graph at its current version; one that misses
    # some (or holds stale ones) gets only those computed
    pending = document._pending(fstore.catalog(), ids)
    for meta, doc_id, stale in zip(metas, ids, pending, strict=True):
        if doc_id is None or doc_id in damaged:
            stale = None
        if stale == ():
            report.skipped.append(doc_id)
        else:
            todo.append((meta, doc_id, stale))
            if stale is not None:
                report.updated[doc_id] = list(stale)
    if client is not None:
        results, report.tasks = _run_distributed(client, document, todo, progress)
    else:
        results, report.tasks = _run_local(document, todo, scheduler, progress,
                                           num_workers, pool)
    if todo:
        # one fragment again, and what killed writers left behind goes; the documents
        # are committed already, so a failure here is a warning, not a lost run
        try:
            fstore.compact()
            fstore.vacuum()
            update_indexes(fstore)  # every search index hashes the new parts (only them)
            build_pyramids(fstore)  # long documents' summaries for the explorer's zoom
        except ZoundsError as exc:
            warnings.warn(f"ingest: the store's maintenance after the run failed ({exc}); "
                          f"the documents are in; run FeatureStore.compact() later",
                          RuntimeWarning, stacklevel=2)
    for status, source, doc_id, detail in results:
        if status == "ok":
            report.processed.append(doc_id)
            report.audio_seconds += detail
        else:
            report.failed[source] = detail
    report.seconds = time.perf_counter() - t0
    if on_error == "raise" and report.failed:
        source, reason = next(iter(report.failed.items()))
        raise ZoundsError(f"{len(report.failed)} sources failed; first: {source}: {reason}")
    return report


def _check_document(document) -> None:
    if not (isinstance(document, type) and issubclass(document, Document)):
        raise ParameterError(f"ingest needs a Document subclass as document, got "
                             f"{document!r}")


def _guarded_lines(source: str) -> list[tuple[int, int]]:
    """Line spans of the ``if __name__ == "__main__":`` blocks of a module's source."""
    import ast

    def is_main_test(test) -> bool:
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1
                and isinstance(test.ops[0], ast.Eq)):
            return False
        sides = [test.left, test.comparators[0]]
        names = {s.id for s in sides if isinstance(s, ast.Name)}
        values = {s.value for s in sides if isinstance(s, ast.Constant)}
        return names == {"__name__"} and values == {"__main__"}

    spans = []
    for node in ast.walk(ast.parse(source)):  # a guard may sit inside another block
        if isinstance(node, ast.If) and is_main_test(node.test):
            spans.append((node.body[0].lineno, node.end_lineno or node.lineno))
    return spans


@functools.lru_cache(maxsize=8)
def _script_guards(path: str, mtime_ns: int, size: int) -> tuple[tuple[int, int], ...] | None:
    """Return the guard spans of a script; ``None`` when it cannot be read or parsed.

    Parsed once per version of the file: a 600-line script takes 10-20 ms to parse, a
    fixed cost of every ingest call it makes otherwise.
    """
    try:
        with open(path, encoding="utf-8") as f:
            return tuple(_guarded_lines(f.read()))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None


def _check_main_guard() -> None:
    """Refuse ``ingest(scheduler="processes")`` at a script's unguarded top level.

    Raises :class:`ParameterError` when the call is not under an ``if __name__ ==
    "__main__":`` guard. Worker processes are spawned: each imports the main script
    again, and an unguarded call would start workers from the workers (multiprocessing
    refuses, and every file would be reported failed with its bootstrapping message).
    """
    import sys
    import types

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    import dask

    method = dask.config.get("multiprocessing.context", "spawn")
    if not path or method == "fork":
        return
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and not (frame.f_globals is vars(main)
                                     and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None:
        return  # not called from the main script's code (a notebook, a test runner)
    try:
        stat = os.stat(path)
    except OSError:
        return
    spans = _script_guards(path, stat.st_mtime_ns, stat.st_size)
    if spans is None:
        return
    line = frame.f_lineno
    if not any(lo <= line <= hi for lo, hi in spans):
        raise ParameterError(
            f"ingest(..., scheduler='processes') is called at the top level of {path} "
            f"(line {line}) without an `if __name__ == \"__main__\":` guard: worker "
            f"processes import the script again and would start ingest themselves. Put "
            f"the call under the guard, or use scheduler='threads'")


_POOLS: dict[int, concurrent.futures.ProcessPoolExecutor] = {}
#: each pool's progress queue, inherited by its workers when they start
_QUEUES: dict[int, Any] = {}


def _init_worker(queue) -> None:
    # each worker's task runs in its main thread, where the spectral kernels would
    # otherwise take every core: n workers x n threads oversubscribes the machine
    set_default_threads(1)
    init_worker(queue)


def _warm_worker() -> None:
    """Import what processing needs, so the first task of a new worker runs at speed."""
    import cloudpickle  # noqa: F401
    import dask.array  # noqa: F401
    import scipy.fft  # noqa: F401
    import soundfile  # noqa: F401
    import soxr  # noqa: F401
    import zarr  # noqa: F401

    from .. import audio, documents, spectral  # noqa: F401


def _warm_torch() -> None:
    """Import torch (seconds) before a worker's first task needs it.

    A learned feature needs torch; the pool's workers are idle then, so each likely
    takes one of these.
    """
    import torch  # noqa: F401


def process_pool(num_workers: int | None = None) -> concurrent.futures.ProcessPoolExecutor:
    """Return the session's pool of worker processes for ``scheduler="processes"``.

    Starting workers (spawn + imports) costs ~0.6 s: more than processing a few dozen
    short files. The pool is started once, warmed in the background while the dataset is
    scanned, reused by later ingests, and shut down when the interpreter exits.

    Parameters
    ----------
    num_workers : int, optional
        Number of worker processes (``>= 1``); ``os.cpu_count()`` when ``None`` or 0.
        One pool is kept per size.

    Returns
    -------
    concurrent.futures.ProcessPoolExecutor
        The pool, started with dask's ``multiprocessing.context`` (``"spawn"`` by
        default); the same object on every call with the same size.
    """
    import dask

    n = int(num_workers or os.cpu_count() or 1)
    pool = _POOLS.get(n)
    if pool is None:
        context = multiprocessing.get_context(dask.config.get("multiprocessing.context",
                                                              "spawn"))
        queue = context.Queue()
        pool = concurrent.futures.ProcessPoolExecutor(
            n, mp_context=context, initializer=_init_worker, initargs=(queue,))
        for _ in range(n):  # start every worker now, not at the first task
            pool.submit(_warm_worker)
        _POOLS[n], _QUEUES[n] = pool, queue
        atexit.register(pool.shutdown, wait=False, cancel_futures=True)
    return pool


def _forget_pool(pool) -> None:
    for n, cached in list(_POOLS.items()):
        if cached is pool:
            del _POOLS[n]
            _QUEUES.pop(n, None)
    pool.shutdown(wait=False, cancel_futures=True)


def _pool_queue(pool):
    return next((_QUEUES.get(n) for n, p in _POOLS.items() if p is pool), None)


def _run_local(document, todo, scheduler, progress, num_workers, pool=None):
    import dask

    if not todo:
        return [], []
    workers = num_workers or getattr(pool, "_max_workers", None) or os.cpu_count() or 1
    if scheduler in ("synchronous", "sync", "single-threaded"):
        workers = 1
    display = Progress(len(todo)) if progress else None
    queue = _pool_queue(pool) if pool is not None else None
    stop = threading.Event()
    drainer = None
    channel: Any  # where the tasks report progress (see zounds_xr._progress)
    shipped: Any
    if pool is None:  # threads: the same process
        shipped, channel = document, (display.update if display is not None else None)
    else:
        shipped = _ship(document)
        channel = None
        if display is not None and queue is not None:
            token = unique_token()
            channel = ("queue", token)
            drainer = threading.Thread(target=drain, args=(queue, token, display, stop),
                                       daemon=True)
            drainer.start()
    batches = _batches(todo, workers)
    splits = [_split(document, batch, workers) for batch in batches]
    # the arguments travel inside a partial: dask would otherwise walk every item of
    # every batch looking for collections (8,000 calls for 2,000 clips, 7% of an ingest)
    groups = _task_groups(batches, splits,
                          lambda f, *a: dask.delayed(functools.partial(f, *a), pure=False)(),
                          shipped, channel)
    kwargs: dict[str, Any] = {"scheduler": "synchronous" if scheduler == "sync"
                              else scheduler}
    if num_workers:
        kwargs["num_workers"] = num_workers
    if pool is not None:
        kwargs["pool"] = pool
        # dask hands ready tasks to the pool in chunks of 6 by default: with a few
        # large tasks, all of them can go to one worker while the others idle
        kwargs["chunksize"] = 1
    try:
        with _task_progress(display if channel is None else None):
            outputs = dask.compute(*[t for group in groups for t in group], **kwargs)
        results, timings = _gather_groups(splits, outputs, display)
    except concurrent.futures.process.BrokenProcessPool:
        for split in splits:
            if split is not None:
                split.discard()
        if pool is None:
            raise
        # a worker died (a crash in a decoder, killed, out of memory): the batch goes on
        # to its report; what completed is in the store, the rest is retried next run
        _forget_pool(pool)
        fstore = document._store_for(None)
        pending = document._pending(fstore.catalog(), [doc_id for _, doc_id, _ in todo])
        results = [_outcome_after_crash(document, meta, doc_id, left == ())
                   for (meta, doc_id, _), left in zip(todo, pending, strict=True)]
        timings = []
    finally:
        stop.set()
        if drainer is not None:
            drainer.join()
        if pool is None:  # this process ran the tasks (the pool's are ingest's own)
            release_heap_later()  # as on a cluster: a loop of ingests keeps its heap
    if display is not None:
        display.close(_final(results))
    return results, timings


def _final(results) -> list[tuple[bool, float]]:
    """Summarise outcomes for progress's last line (messages may still be under way)."""
    return [(status == "ok", detail if status == "ok" else 0.0)
            for status, _, _, detail in results]


@contextlib.contextmanager
def _task_progress(display):
    """Report progress task by task, for a pool that cannot report clip by clip.

    Such a pool is one set in dask's config, without the session pool's queue.
    """
    if display is None:
        yield
        return
    from dask.callbacks import Callback

    def posttask(key, result, dsk, state, worker_id):
        output, _ = result  # (output, TaskTiming)
        if isinstance(output, list):  # a batch's outcomes (not a long file's range)
            display.update(_final(output))

    with Callback(posttask=posttask):
        yield


def _outcome_after_crash(document, meta, doc_id, found):
    if doc_id is not None and found:
        return ("ok", _source_name(meta), doc_id, _audio_seconds(document, meta, doc_id))
    return ("failed", _source_name(meta), None,
            "the worker process died (a crash or a kill) while processing this batch")


#: a shipped document class larger than this is scattered to the workers once
_SCATTER_BYTES = 64 << 10


async def _release_heap_later() -> None:
    # a coroutine: what distributed's Client.run(wait=False) needs
    release_heap_later()


def _run_distributed(client, document, todo, progress):
    optional_import("distributed", extra="distributed")
    if not todo:
        return [], []
    # the document class travels as bytes, unpickled once per worker; a large one (a
    # class that holds arrays) is scattered once, a small one (~1 KB) goes in each task:
    # a scatter is a round trip to every worker (5-9 ms of a 0.5 s ingest)
    shipped = _ship(document)
    if len(shipped[1]) > _SCATTER_BYTES:
        [shipped] = client.scatter([shipped], broadcast=True)
    workers = sum(client.nthreads().values()) or 1
    display = Progress(len(todo)) if progress else None
    channel = None
    if display is not None:
        channel = ("topic", f"zounds-xr-ingest-{unique_token()}")
        client.subscribe_topic(channel[1], lambda event: display.update(event[1]))
    try:
        batches = _batches(todo, workers)
        splits = [_split(document, batch, workers) for batch in batches]
        groups = _task_groups(batches, splits,
                              lambda f, *a: client.submit(f, *a, pure=False), shipped, channel)
        # one batched gather: a result() per future is a round trip each
        outputs = client.gather([f for group in groups for f in group])
        results, timings = _gather_groups(splits, outputs, display)
    finally:
        if channel is not None:
            client.unsubscribe_topic(channel[1])
        # the workers' memory goes back to the OS once they have been idle a while (a
        # loop of ingests keeps it: documents/heap.py); not waited for, and a lost
        # cluster takes its heaps along
        with contextlib.suppress(Exception):
            client.run(_release_heap_later, wait=False)
    if display is not None:
        display.close(_final(results))
    return results, timings
