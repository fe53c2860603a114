"""Ingest progress in clips and hours of audio, updated as clips finish inside tasks.

Workers report each finished clip through a *channel* (:class:`Reporter` batches them,
a few messages a second): a callable in the same process (threads), a queue inherited
by the session's worker processes, or a ``distributed`` event topic. The parent shows
them with :class:`Progress`: a tqdm bar on a terminal (when tqdm is installed), else
one plain line every few seconds (a log file or CI output gets lines, not a bar
appended tick by tick).
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

__all__ = ["Progress", "Reporter", "format_line"]

#: seconds between two messages of one worker task
REPORT_EVERY = 0.25
#: seconds between two plain lines when the output is not a terminal
LINE_EVERY = 5.0


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


def format_line(done: int, total: int, audio: float, failed: int, elapsed: float) -> str:
    """Format one progress line.

    For example ``"ingest 1,234/2,000 clips (62%), 0.34 h of audio, 812 clips/s
    (1,120x realtime), ETA 0:00:01, 3 failed"``.
    """
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = _clock((total - done) / rate) if rate > 0 else "?"
    percent = 100 * done // total if total else 100
    realtime = audio / elapsed if elapsed > 0 else 0.0
    return (f"ingest {done:,}/{total:,} clips ({percent}%), {audio / 3600:.2f} h of audio, "
            f"{rate:,.0f} clips/s ({realtime:,.0f}x realtime), ETA {eta}, {failed} failed")


class Progress:
    """The parent's display; :meth:`update` is thread-safe.

    Parameters
    ----------
    total : int
        Clips to process.
    stream : file-like, optional
        Where to write (default ``sys.stderr``, as tqdm).
    bar : bool, optional
        A tqdm bar (default: when ``stream`` is a terminal and tqdm is installed).
    every : float
        Seconds between plain lines.
    """

    def __init__(self, total: int, stream=None, bar: bool | None = None,
                 every: float = LINE_EVERY):
        self.total, self.stream, self.every = total, stream or sys.stderr, every
        self.done = self.failed = 0
        self.audio = 0.0
        self._t0 = self._last = time.perf_counter()
        self._lock = threading.Lock()
        self._bar: Any = None
        if bar is None:
            bar = bool(getattr(self.stream, "isatty", lambda: False)())
        if bar:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                bar = False
            else:
                self._bar = tqdm(total=total, unit="clip", file=self.stream,
                                 desc="ingest", smoothing=0.1)

    def update(self, outcomes) -> None:
        """Count finished clips: ``outcomes`` are ``(ok, seconds of audio)``."""
        with self._lock:
            n = 0
            for ok, seconds in outcomes:
                n += 1
                if ok:
                    self.audio += seconds
                else:
                    self.failed += 1
            self.done += n
            if self._bar is not None:
                self._bar.update(n)
                self._bar.set_postfix_str(f"{self.audio / 3600:.2f} h audio, "
                                          f"{self.failed} failed", refresh=False)
                return
            now = time.perf_counter()
            if now - self._last >= self.every:
                self._last = now
                self._line(now)

    def _line(self, now: float) -> None:
        print(format_line(self.done, self.total, self.audio, self.failed, now - self._t0),
              file=self.stream, flush=True)

    def close(self, outcomes=None) -> None:
        """Show the last line (or close the bar).

        ``outcomes``: every clip's, to show the final counts even where some messages
        are still under way.
        """
        with self._lock:
            if outcomes is not None:
                outcomes = list(outcomes)
                self.audio = sum(seconds for ok, seconds in outcomes if ok)
                self.failed = sum(1 for ok, _ in outcomes if not ok)
                if self._bar is not None:
                    self._bar.update(len(outcomes) - self.done)
                self.done = len(outcomes)
            if self._bar is not None:
                self._bar.set_postfix_str(f"{self.audio / 3600:.2f} h audio, "
                                          f"{self.failed} failed", refresh=False)
                self._bar.close()
                self._bar = None
            elif self.total:
                self._line(time.perf_counter())


class Reporter:
    """Collect a worker task's ``(ok, seconds)`` per finished clip and send them.

    Batches go through ``channel`` (see the module docs), at most every
    ``REPORT_EVERY`` seconds and at :meth:`close`. Never raises: progress is
    informative, the task must go on.
    """

    def __init__(self, channel):
        self.channel = channel
        self.pending: list[tuple[bool, float]] = []
        self._last = time.perf_counter()

    def __call__(self, outcome) -> None:
        """Count one finished clip's outcome (its result, or the exception it raised)."""
        if self.channel is None:
            return
        ok = not isinstance(outcome, BaseException)
        self.pending.append((ok, float(outcome[1]) if ok else 0.0))
        if time.perf_counter() - self._last >= REPORT_EVERY:
            self.flush()

    def flush(self) -> None:
        """Send what is pending now."""
        if not self.pending or self.channel is None:
            return
        batch, self.pending = self.pending, []
        self._last = time.perf_counter()
        try:
            _send(self.channel, batch)
        except Exception:  # noqa: BLE001  (a lost progress message loses nothing else)
            pass

    close = flush


def _send(channel, batch) -> None:
    kind = channel[0] if isinstance(channel, tuple) else None
    if kind == "queue":  # the session's worker processes: (kind, token)
        queue = _WORKER_QUEUE
        if queue is not None:
            queue.put((channel[1], batch))
    elif kind == "topic":  # a distributed worker: (kind, topic)
        from distributed import get_worker

        get_worker().log_event(channel[1], batch)
    elif callable(channel):  # the same process
        channel(batch)


#: the queue a worker process of the session's pool inherited (see :func:`init_worker`)
_WORKER_QUEUE: Any = None


def init_worker(queue) -> None:
    """Pool initializer part: keep the progress queue this worker inherited."""
    global _WORKER_QUEUE
    _WORKER_QUEUE = queue


def drain(queue, token: str, progress: Progress, stop: threading.Event) -> None:
    """Feed ``progress`` from a pool's queue until ``stop`` is set and it is empty.

    Messages of other runs are dropped.
    """
    import queue as queue_module

    while True:
        try:
            got_token, batch = queue.get(timeout=0.1)
        except queue_module.Empty:
            if stop.is_set():
                return
            continue
        except (EOFError, OSError):  # the pool went away (a crash): nothing more comes
            return
        if got_token == token:
            progress.update(batch)


def unique_token() -> str:
    return f"{os.getpid()}-{time.time_ns()}"
