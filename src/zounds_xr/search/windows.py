"""The window rule: how documents and query selections are cut into windows of frames.

A document of ``n`` frames has windows starting at frames ``0, hop, 2*hop, ...`` while
a whole window fits (a document shorter than one window has one window, from frame
0, of its ``n`` frames). A query selection ``[t0, t1)`` seconds is cut the same way,
from the frames *fully inside* it: its sub-windows are the document's own windows
that lie inside the selection. A selection holding none is widened to the document's
window centred nearest to it (clamped to the document), and :class:`Selection` says
so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.errors import ParameterError

__all__ = ["WindowRule", "Selection", "FrameTimes"]

#: seconds of slack when deciding whether a frame lies inside a selection given in
#: (rounded) float seconds
EPS = 1e-9


@dataclass(frozen=True)
class FrameTimes:
    """Where a document's frames are.

    Frame ``i`` covers ``[start + i*step, start + i*step + extent)`` seconds,
    ``i < frames``.

    Parameters
    ----------
    start, step, extent : float
        Seconds.
    frames : int
    """

    start: float
    step: float
    extent: float
    frames: int

    def seconds(self, first: int, stop: int) -> tuple[float, float]:
        """``(t0, t1)`` covered by frames ``first .. stop - 1``."""
        return (self.start + first * self.step,
                self.start + (stop - 1) * self.step + self.extent)


@dataclass(frozen=True)
class Selection:
    """The windows a query selection is cut into.

    Parameters
    ----------
    starts : numpy.ndarray of int
        First frame of each query sub-window (``hop * stride`` apart).
    first, stop : int
        The frames the sub-windows cover, ``[first, stop)``.
    widened : bool
        The selection held fewer frames than one window and was widened.
    stride : int
        Every ``stride``-th sub-window is used (a selection of more than
        ``max_windows`` sub-windows).
    """

    starts: np.ndarray
    first: int
    stop: int
    widened: bool
    stride: int


@dataclass(frozen=True)
class WindowRule:
    """Windows of ``window`` frames every ``hop`` frames (see the module docstring).

    Parameters
    ----------
    window, hop : int > 0
        Frames.

    Raises
    ------
    ParameterError
        For a size that is not a positive integer.
    """

    window: int
    hop: int

    def __post_init__(self):
        for value, what in ((self.window, "window"), (self.hop, "hop")):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or value < 1:
                raise ParameterError(f"{what} must be a positive number of frames, got "
                                     f"{value!r}")

    def counts(self, frames: np.ndarray) -> np.ndarray:
        """Windows per document of ``frames`` frames (0 for an empty document)."""
        frames = np.asarray(frames, dtype=np.int64)
        return np.where(frames >= self.window, (frames - self.window) // self.hop + 1,
                        (frames > 0).astype(np.int64))

    def windows(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(document number, first frame)`` of every window.

        For documents of ``frames`` frames, document by document.
        """
        counts = self.counts(frames)
        doc = np.repeat(np.arange(counts.size), counts)
        first = np.cumsum(counts) - counts
        start = (np.arange(doc.size) - np.repeat(first, counts)) * self.hop
        return doc, start

    def selection(self, times: FrameTimes, t0: float, t1: float,
                  max_windows: int | None = None) -> Selection:
        """Cut ``[t0, t1)`` seconds of a document into query sub-windows.

        Parameters
        ----------
        times : FrameTimes
            The document's frames.
        t0, t1 : float
            The selection, seconds.
        max_windows : int, optional
            Use at most this many sub-windows: every ``stride``-th of them, so that
            they stay aligned with the index's windows.

        Returns
        -------
        Selection

        Raises
        ------
        ParameterError
            For an empty selection or a document without frames.
        """
        if times.frames <= 0:
            raise ParameterError("the document has no frames to search with")
        if not t1 > t0:
            raise ParameterError(f"the selection [{t0}, {t1}) s is empty")
        first = max(0, math.ceil((t0 - EPS - times.start) / times.step))
        stop = min(times.frames,
                   math.floor((t1 + EPS - times.extent - times.start) / times.step) + 1)
        # sub-windows start on the index's grid (multiples of hop), so that a selection
        # holding an indexed window finds it at distance 0
        grid = -(-first // self.hop) * self.hop
        starts = np.arange(grid, stop - self.window + 1, self.hop)
        widened = starts.size == 0
        if widened:
            starts = np.array([self.centred(times, (t0 + t1) / 2)])
            first = int(starts[0])
        else:
            first = grid
        stride = 1
        if max_windows is not None and starts.size > max_windows:
            stride = -(-starts.size // max_windows)
            starts = starts[::stride]
        stop = min(times.frames, int(starts[-1]) + self.window)
        return Selection(starts, first, stop, widened, stride)

    def centred(self, times: FrameTimes, centre: float) -> int:
        """Return the first frame of the indexed window centred nearest ``centre``.

        A multiple of ``hop``, within the document; ``centre`` in seconds.
        """
        span_centre = ((self.window - 1) * times.step + times.extent) / 2
        first = round((centre - times.start - span_centre) / times.step / self.hop)
        last = max(times.frames - self.window, 0) // self.hop
        return int(min(max(first, 0), last)) * self.hop
