"""``sliding_window``: cut a constant-rate signal (or feature) into overlapping frames.

Conventions
-----------
- The scheme's hop and window are rounded *up* to whole samples (frames) of the input
  rate: ``hop = ceil(wscheme.frequency / rate)``, ``window = ceil(wscheme.duration / rate)``.
- Frames start at the first sample (no centring, unlike librosa's ``center=True``);
  frame ``i`` covers input samples ``[i*hop, i*hop + window)``.
- The end is padded with ``padwith`` so that every sample is in a frame:
  ``n_frames = 1 + ceil(max(n - window, 0) / hop)`` (an empty input gives no frames).
- Dims: ``window`` is inserted right after ``time``; other dims keep their order:
  audio ``(time,)`` -> ``(time, window)``, ``(time, channel)`` ->
  ``(time, window, channel)``, a feature ``(time, frequency)`` ->
  ``(time, window, frequency)``.
- Labels: ``time`` becomes a :class:`~zounds_xr.timeseries.index.TimeIndex` of frames
  (``frequency`` = hop, ``duration`` = extent of the window, ``start`` = the input's
  start); ``window`` is a ``TimeIndex`` at the input's rate starting at 0 (for a
  feature input, at the feature's frame rate and frame duration).

The helpers :func:`frame_layout` and :func:`map_frame_blocks` are shared with
:mod:`zounds_xr.spectral.transforms` (``stft``) and with the spectral features: they
build a lazy dask array whose output blocks each read only the input span (with the
halo a window needs) of their frames.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, cast

import dask
import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize
from dask.utils import parse_bytes
from dask.highlevelgraph import HighLevelGraph

from ..core.validation import axis_index, check_output_size, drop_coords_along, float_dtype
from ..dimensions.arrays import with_labels
from ..core.errors import ParameterError
from ..timeseries.index import TimeIndex, time_coords
from ..core.streamable import framing
from ..timeseries.samplerate import SampleRate
from .windowing import window_values

__all__ = ["sliding_window", "FrameLayout", "frame_layout", "map_frame_blocks",
           "frame_apply", "frame_view", "n_frames_for"]

#: the largest window (float64 bytes) a framing transform agrees to evaluate
MAX_WINDOW_BYTES = 1 << 30

#: target number of input samples read by one output block when the input chunks are
#: not a good guide (numpy input framed lazily, or tiny chunks)
_MIN_BLOCK_SAMPLES = 2**14


def n_frames_for(n: int, hop: int, win: int) -> int:
    """Frames needed so every one of ``n`` samples is in one: ``1 + ceil(max(n-win,0)/hop)``."""
    if n <= 0:
        return 0
    return 1 + -(-max(n - win, 0) // hop)


@dataclass(frozen=True)
class FrameLayout:
    """How a time axis is cut into frames (all sizes in samples of the input rate)."""

    index: TimeIndex  #: the input's time index
    hop: int
    win: int
    n: int  #: input samples
    n_frames: int

    def time_coords(self, dim: str = "time") -> xr.Coordinates:
        """Return the frames' time axis: hop apart, each spanning the window."""
        f, d = self.index.frequency, self.index.duration
        return time_coords(self.n_frames, self.hop * f, (self.win - 1) * f + d,
                           start=self.index.start, dim=dim)

    def window_coords(self, dim: str = "window") -> xr.Coordinates:
        """Positions inside a window, at the input's rate, from 0."""
        return time_coords(self.win, self.index.frequency, self.index.duration, dim=dim)


def _time_index(x: xr.DataArray) -> TimeIndex:
    return axis_index(x, "time", TimeIndex, hint="e.g. zx.AudioSamples")


def frame_layout(x: xr.DataArray, wscheme: SampleRate) -> FrameLayout:
    """Hop, window and frame count for cutting ``x``'s ``time`` axis with ``wscheme``."""
    index = _time_index(x)
    if not isinstance(wscheme, SampleRate):
        raise ParameterError(
            f"wscheme must be a SampleRate such as zx.SampleRate(hop, window) or "
            f"zx.HalfLapped(), got {wscheme!r}")
    hop = math.ceil(wscheme.exact_frequency / index.frequency)
    win = math.ceil(wscheme.exact_duration / index.frequency)
    if hop < 1 or win < 1:
        raise ParameterError(f"wscheme {wscheme!r} gives hop={hop}, window={win} samples")
    # a window (evaluated in float64, then one frame of it) of more than 1 GiB is never
    # meant: refuse it before the window function allocates it
    check_output_size((win,), np.float64, f"one window of {win} samples",
                      limit=MAX_WINDOW_BYTES)
    n = x.sizes["time"]
    return FrameLayout(index, hop, win, n, n_frames_for(n, hop, win))


def frame_view(padded: np.ndarray, hop: int, win: int) -> np.ndarray:
    """Read-only strided view of the frames of ``padded`` (time on axis 0).

    Shape ``(n_frames, *rest, win)``: the window axis is last, as
    ``numpy.lib.stride_tricks.sliding_window_view`` puts it.
    """
    if padded.shape[0] < win:
        return np.empty((0, *padded.shape[1:], win), dtype=padded.dtype)
    return np.lib.stride_tricks.sliding_window_view(padded, win, axis=0)[::hop]


def pad_end(data: np.ndarray, length: int, padwith) -> np.ndarray:
    """Return ``data`` (time on axis 0) cut or padded with ``padwith`` to ``length`` samples."""
    n = data.shape[0]
    if n >= length:
        return data[:length]
    out = np.empty((length, *data.shape[1:]), dtype=data.dtype)
    out[:n] = data
    out[n:] = padwith
    return out


def frame_apply(pieces, offset: int, n_frames: int, hop: int, win: int, padwith, block_fn,
                out: np.ndarray) -> np.ndarray:
    """Fill ``out`` with ``block_fn`` of ``n_frames`` frames read from consecutive ``pieces``.

    The pieces (arrays with time on axis 0) are consecutive spans of one signal; frame
    ``i`` starts ``offset + i*hop`` samples into the first piece. Runs of frames that lie
    inside one piece are read from it in place (a strided view, no copy); only the few
    frames that straddle two pieces, or run past the end (padded with ``padwith``), are
    copied into a small stitched buffer. ``block_fn(segment, out=rows)`` writes the rows
    of the frames of ``segment`` (``(len(segment) - win) // hop + 1`` of them).
    """
    bounds = np.cumsum([0] + [p.shape[0] for p in pieces])
    total = int(bounds[-1])

    def piece_of(start):
        """Index of the piece holding a whole frame starting at ``start``, else -1."""
        if start >= total:
            return -1
        j = int(np.searchsorted(bounds, start, side="right")) - 1
        return j if start + win <= bounds[j + 1] else -1

    i = 0
    while i < n_frames:
        start = offset + i * hop
        j = piece_of(start)
        if j >= 0:  # frames i..k-1 lie inside piece j
            k = min(n_frames, i + (int(bounds[j + 1]) - win - start) // hop + 1)
            local = start - int(bounds[j])
            block_fn(pieces[j][local:local + (k - i - 1) * hop + win], out=out[i:k])
        else:  # straddling or padded frames, up to the next frame inside one piece
            k = i + 1
            while k < n_frames and piece_of(offset + k * hop) < 0:
                k += 1
            stop = offset + (k - 1) * hop + win
            parts = [p[max(0, start - int(b)):max(0, min(stop, total) - int(b))]
                     for p, b in zip(pieces, bounds[:-1], strict=True)
                     if b < min(stop, total) and b + p.shape[0] > start]
            joined = parts[0] if len(parts) == 1 else np.concatenate(
                parts or [pieces[0][:0]], axis=0)
            block_fn(pad_end(joined, stop - start, padwith), out=out[i:k])
        i = k
    return out


def _block_task(pieces, offset, n_frames, hop, win, padwith, block_fn, out_tail, dtype):
    """One output block of :func:`map_frame_blocks`."""
    out = np.empty((n_frames, *out_tail), dtype=dtype)
    return frame_apply(pieces, offset, n_frames, hop, win, padwith, block_fn, out)


def map_frame_blocks(data: da.Array, layout: FrameLayout, block_fn, out_tail: tuple,
                     dtype, *, padwith=0, frames_per_block: int | None = None,
                     name: str = "frames") -> da.Array:
    """Return a lazy array of shape ``(n_frames, *out_tail)`` computed frame block by block.

    Output block ``b`` holds frames ``[f0, f1)``; its task reads only the input chunks
    that overlap samples ``[f0*hop, (f1-1)*hop + win)`` (the block's span plus the halo
    a window needs) and fills its ``(f1-f0, *out_tail)`` rows through
    :func:`frame_apply`: ``block_fn(segment, out=rows)`` is called on spans of whole
    frames (in place where a run of frames lies inside one input chunk; stitched and
    padded with ``padwith`` where frames straddle chunks or run past the end) and must
    write one row per frame of ``segment`` into ``rows``.

    ``data`` has time on axis 0; its other axes are merged into one chunk. By default a
    block has as many frames as fit in the median input chunk (at least
    ``2**14`` samples' worth), so each task reads about one or two input chunks, capped
    so that an output block stays within dask's ``array.chunk-size``.
    """
    hop, win, nf = layout.hop, layout.win, layout.n_frames
    if data.ndim > 1 and any(len(c) > 1 for c in data.chunks[1:]):
        data = data.rechunk({i: -1 for i in range(1, data.ndim)})
    out_tail = tuple(int(s) for s in out_tail)
    if frames_per_block is None:
        chunk = int(np.median(data.chunks[0])) if data.chunks[0] else 0
        frames_per_block = max(1, max(chunk, _MIN_BLOCK_SAMPLES) // hop)
        # ... but never an output block larger than dask's array.chunk-size (128 MiB)
        limit = parse_bytes(dask.config.get("array.chunk-size"))
        row_bytes = np.dtype(dtype).itemsize * max(1, math.prod(out_tail))
        frames_per_block = max(1, min(frames_per_block, limit // row_bytes))
    frames_per_block = int(frames_per_block)
    if frames_per_block < 1:
        raise ParameterError(f"frames_per_block must be positive, got {frames_per_block}")
    starts = list(range(0, nf, frames_per_block))
    out_chunks = (tuple(min(frames_per_block, nf - f0) for f0 in starts) or (0,),
                  *((s,) for s in out_tail))
    bounds = np.concatenate([[0], np.cumsum(data.chunks[0])]).astype(np.int64)
    n = int(bounds[-1])
    token = tokenize(data, hop, win, nf, block_fn, out_tail, np.dtype(dtype), padwith,
                     frames_per_block)
    out_name = f"{name}-{token}"
    rest = (0,) * (data.ndim - 1)
    zeros_tail = (0,) * len(out_tail)
    dsk: dict[Any, Any] = {}
    for b, f0 in enumerate(starts):
        f1 = min(nf, f0 + frames_per_block)
        s0, s1 = f0 * hop, (f1 - 1) * hop + win
        lo = int(np.searchsorted(bounds, min(s0, n), side="right")) - 1
        hi = int(np.searchsorted(bounds, min(s1, n), side="left"))
        lo = min(max(lo, 0), len(data.chunks[0]) - 1)
        hi = max(hi, lo + 1)
        pieces = [(data.name, j, *rest) for j in range(lo, hi)]
        dsk[(out_name, b, *zeros_tail)] = (
            _block_task, pieces, int(s0 - bounds[lo]), f1 - f0, hop, win, padwith, block_fn,
            out_tail, np.dtype(dtype))
    if not starts:  # no frames: one empty block
        empty = np.empty((0, *out_tail), dtype=dtype)
        dsk[(out_name, 0, *zeros_tail)] = (np.array, empty)
    graph = HighLevelGraph.from_collections(out_name, dsk, dependencies=[cast(Any, data)])
    return da.Array(graph, out_name, chunks=out_chunks, dtype=dtype)


class _Framer:
    """``block_fn`` for sliding_window: frames of a segment times the window.

    A class (not a closure) so that dask tokenizes and pickles it deterministically.
    """

    def __init__(self, hop: int, win: int, window: np.ndarray | None, dtype):
        self.hop, self.win, self.window, self.dtype = hop, win, window, np.dtype(dtype)

    def __call__(self, segment: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        view = frame_view(segment, self.hop, self.win)  # (nf, *rest, win)
        view = np.moveaxis(view, -1, 1)  # (nf, win, *rest)
        if out is None:
            out = np.empty(view.shape, dtype=self.dtype)
        if self.window is None:
            out[...] = view
        else:
            w = self.window.reshape((self.win,) + (1,) * (view.ndim - 2))
            np.multiply(view, w, out=out)
        return out

    def __dask_tokenize__(self):
        return (type(self).__name__, self.hop, self.win, str(self.dtype),
                None if self.window is None else self.window.tobytes())


def check_padwith(padwith, dtype) -> None:
    """``padwith`` must be a real number that ``dtype`` data can hold."""
    if isinstance(padwith, bool) or not isinstance(padwith, numbers.Number) or \
            (isinstance(padwith, complex) and np.dtype(dtype).kind != "c"):
        raise ParameterError(f"padwith must be a number, got {padwith!r}")


@framing("wscheme", channelwise=True)  # how it streams through a document graph
def sliding_window(x: xr.DataArray, wscheme: SampleRate, wfunc=None, padwith=0,
                   *, frames_per_block: int | None = None) -> xr.DataArray:
    """Overlapping windows of ``x`` along ``time``, each multiplied by ``wfunc``.

    Parameters
    ----------
    x : xarray.DataArray [dims=("time", ...)]
        Audio (``zx.AudioSamples``, mono or multi-channel) or a feature with a
        ``TimeIndex`` on ``time`` (e.g. ``(time, frequency)``): windows then slide over
        the feature's frames.
    wscheme : SampleRate
        Hop (``frequency``) and window extent (``duration``), e.g.
        ``zx.SampleRate(zx.Milliseconds(250), zx.Milliseconds(500))`` or
        ``zx.HalfLapped()``; both are rounded up to whole samples of ``x``'s rate.
    wfunc : WindowingFunc, optional
        Multiplies every window (``None``: no windowing).
    padwith : scalar, default 0
        Value the end is padded with so that the last samples are in a frame.
    frames_per_block : int, optional
        Dask input only: frames per output chunk (default: about one input chunk).

    Returns
    -------
    xarray.DataArray [dims=("time", "window", ...)]
        Frames on ``time`` (hop apart, each spanning the window), positions inside a
        window on ``window`` (a ``TimeIndex`` at the input rate). Integer input becomes
        float64; float32 stays float32. Numpy in, numpy out (a new array, not a view);
        dask in, lazy dask out chunked along ``time`` only.

    Raises
    ------
    ParameterError
        When ``x`` has no ``TimeIndex`` on ``time``, already has a ``window`` dim, the
        scheme is not a ``SampleRate``, ``padwith`` is not a number, or the frames
        cannot fit in memory (the message gives their size).

    See Also
    --------
    stft, fft, FrameLayout

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> audio = zx.AudioSamples(np.zeros(5 * 11025), zx.SR11025())
    >>> scheme = zx.SampleRate(zx.Milliseconds(250), zx.Milliseconds(500))
    >>> windowed = zx.sliding_window(audio, scheme, zx.OggVorbisWindowingFunc())
    >>> windowed.dims, windowed.shape
    (('time', 'window'), (19, 5513))
    """
    layout = frame_layout(x, wscheme)
    if "window" in x.dims:
        raise ParameterError("x already has a 'window' dim; rename it before windowing again")
    x = x.transpose("time", ...)
    rest_dims = list(x.dims[1:])
    dtype = float_dtype(x.dtype)
    check_padwith(padwith, dtype)
    check_output_size((layout.n_frames, layout.win, *x.shape[1:]), dtype,
                      "the windowed frames")
    window = window_values(wfunc, layout.win, dtype, name="wfunc")
    framer = _Framer(layout.hop, layout.win, window, dtype)
    data = x.data
    rest_shape = tuple(data.shape[1:])
    out: Any
    if isinstance(data, da.Array):
        out = map_frame_blocks(data, layout, framer, (layout.win, *rest_shape), dtype,
                               padwith=padwith, frames_per_block=frames_per_block,
                               name="sliding-window")
    else:
        out = np.empty((layout.n_frames, layout.win, *rest_shape), dtype=dtype)
        frame_apply([np.asarray(data)], 0, layout.n_frames, layout.hop, layout.win, padwith,
                    framer, out)
    like = drop_coords_along(x, "time")
    return with_labels(out, like, ["time", "window", *map(str, rest_dims)],
                       coords=[layout.time_coords(), layout.window_coords()])
