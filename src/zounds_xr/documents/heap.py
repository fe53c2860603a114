"""A worker task's large temporaries on the heap, where a fixed malloc threshold is set.

glibc serves an allocation above its mmap threshold (128 KiB at start) with a fresh
``mmap``, and raises the threshold to the size of each such block that is freed (up to
32 MiB): a process that allocates the same large temporaries again and again soon
takes them from its heap. Setting any malloc threshold, by an environment variable
(``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TOP_PAD_``,
``MALLOC_MMAP_MAX_``) or a ``GLIBC_TUNABLES`` ``glibc.malloc.*`` tunable, turns that
adjustment off for the process's life. ``dask.distributed``'s nanny does it for every
worker (``distributed.nanny.pre-spawn-environ``: ``MALLOC_TRIM_THRESHOLD_=65536``, so
that freed memory goes back to the OS, where the worker's memory monitor sees it). Every
array above 128 KiB (a stack of clips, its spectra, a shard's buffer) is then mapped,
page-faulted, zeroed by the kernel and unmapped, every time: a 1,000-clip ingest task
took ~110,000 minor page faults and ~1.5x the CPU of the same task in a process pool's
worker (benchmarks/RESULTS.md, issue 30).

:func:`task_heap` sets, for ingest's tasks, the thresholds glibc's own adjustment
reaches (mmap 32 MiB, trim 64 MiB); :func:`release_heap` restores those the environment
asked for and gives the free memory back to the OS (``malloc_trim``): the nanny's
intent, memory returned when the work is done, is kept. Ingest schedules it on every
worker when a run ends, to happen once the worker has run no ingest task for
``RELEASE_DELAY`` seconds (:func:`release_heap_later`): not at each task's end, where
the next task would fault its heap in again (~20,000 pages a 1,000-clip task of
speech-framed clips, ~13% of its CPU), nor at once at the run's end, where the next
run of a loop of ingests would (6 faults a clip and ~10% more worker CPU for 2,000
one-second clips, 2048/512 framing). All do nothing off glibc, or where no threshold
was fixed (glibc's adjustment already reuses the heap there).
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["task_heap", "release_heap", "release_heap_later", "fixed_thresholds"]

#: ``mallopt`` parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: glibc's initial trim and mmap thresholds
_DEFAULT_THRESHOLD = 128 * 1024
#: during a task: the largest mmap threshold glibc accepts on 64-bit systems (its dynamic
#: adjustment stops there too), and a trim threshold twice it (the adjustment's ratio)
TASK_MMAP_THRESHOLD = 32 << 20
TASK_TRIM_THRESHOLD = 64 << 20
#: seconds without an ingest task after which a worker's heap goes back to the OS
RELEASE_DELAY = 5.0

#: the settings that turn glibc's dynamic thresholds off, by environment variable
_ENVIRON = {"MALLOC_TRIM_THRESHOLD_": "trim_threshold", "MALLOC_TOP_PAD_": "top_pad",
            "MALLOC_MMAP_THRESHOLD_": "mmap_threshold", "MALLOC_MMAP_MAX_": "mmap_max"}

_lock = threading.Lock()
_active = 0  # tasks inside task_heap (threads of one worker share its heap)
_raised = False  # the task thresholds are set
_timer: threading.Timer | None = None  # a pending release_heap_later


@functools.cache
def _glibc() -> Any:
    """Return the process's C library when it is glibc (with ``mallopt``), else ``None``."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: musl has no such symbol)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


def fixed_thresholds(environ=None) -> dict[str, int]:
    """Return the malloc settings an environment fixes (they turn glibc's adjustment off).

    Parameters
    ----------
    environ : mapping, optional
        Default ``os.environ`` (glibc read it when the process started).

    Returns
    -------
    dict of str to int
        ``{"trim_threshold": 65536}`` in a ``distributed`` worker; empty when the
        thresholds are glibc's dynamic ones. A ``GLIBC_TUNABLES`` entry wins over the
        environment variable of the same setting, as in glibc.
    """
    environ = os.environ if environ is None else environ
    fixed: dict[str, int] = {}
    for var, name in _ENVIRON.items():
        with contextlib.suppress(KeyError, ValueError):
            fixed[name] = int(environ[var], 0)
    for entry in environ.get("GLIBC_TUNABLES", "").split(":"):
        key, _, value = entry.partition("=")
        name = key.removeprefix("glibc.malloc.")
        if name != key and name in _ENVIRON.values():
            with contextlib.suppress(ValueError):
                fixed[name] = int(value, 0)
    return fixed


@contextlib.contextmanager
def task_heap() -> Iterator[None]:
    """Keep a task's temporaries of up to 32 MiB on the heap, where a threshold is fixed.

    Process-wide (``mallopt``), and left so after the task, for the next one, until
    :func:`release_heap`.

    Yields
    ------
    None

    See Also
    --------
    fixed_thresholds, release_heap
    """
    global _active, _raised
    libc = _glibc()
    fixed = fixed_thresholds() if libc is not None else {}
    if not fixed:
        yield
        return
    with _lock:
        _cancel_timer()
        if not _raised:
            libc.mallopt(_M_MMAP_THRESHOLD, TASK_MMAP_THRESHOLD)
            libc.mallopt(_M_TRIM_THRESHOLD, max(TASK_TRIM_THRESHOLD,
                                                fixed.get("trim_threshold", 0)))
            _raised = True
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1


def release_heap() -> bool:
    """Restore the environment's malloc thresholds and give the free heap back to the OS.

    Undoes :func:`task_heap` once no task is inside it (a task of another run keeps the
    thresholds; its run releases them when it ends).

    Returns
    -------
    bool
        Whether the thresholds were restored (``False``: nothing to do, or a task is
        running).
    """
    global _raised
    with _lock:
        if not _raised or _active:
            return False
        libc, fixed = _glibc(), fixed_thresholds()
        libc.mallopt(_M_MMAP_THRESHOLD, fixed.get("mmap_threshold", _DEFAULT_THRESHOLD))
        libc.mallopt(_M_TRIM_THRESHOLD, fixed.get("trim_threshold", _DEFAULT_THRESHOLD))
        libc.malloc_trim(0)
        _raised = False
        return True


def _cancel_timer() -> None:
    global _timer
    if _timer is not None:
        _timer.cancel()
        _timer = None


def release_heap_later(delay: float = RELEASE_DELAY) -> threading.Timer | None:
    """Call :func:`release_heap` once no :func:`task_heap` has begun for ``delay`` seconds.

    A task that begins before then cancels it (its run schedules another when it ends):
    a loop of ingests keeps the heap its first run grew.

    Parameters
    ----------
    delay : float, optional
        Seconds (``>= 0``); default ``RELEASE_DELAY``.

    Returns
    -------
    threading.Timer or None
        The pending release (a daemon thread); ``None`` when there is nothing to
        release (the thresholds are not raised, or off glibc).
    """
    global _timer
    with _lock:
        _cancel_timer()
        if not _raised:
            return None
        _timer = threading.Timer(delay, release_heap)
        _timer.daemon = True
        _timer.start()
        return _timer
