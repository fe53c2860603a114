"""Streaming a document's graph chunk by chunk, in bounded memory.

The model
---------
A *chunk* is a DataArray whose ``time`` axis carries the exact :class:`TimeIndex` of
where it lies in the document (its ``start`` is the time of its first frame). Sources
(the decoder, or a stored feature read back from Zarr) yield consecutive chunks; every
feature node turns the chunks of its input(s) into chunks of its output, and stored
features append them to their Zarr array. Four kinds of node:

Each function declares how it streams (:mod:`zounds_xr.core.streamable`: ``frame_local``,
``framing``, ``stateful``); undeclared functions are frame-local, and checked.

``MapNode``
    a frame-local function (output frame ``i`` depends on input frame ``i``): ``fft``,
    ``np.abs``, a user function that scales audio. Applied to each chunk as it comes.
``WindowNode``
    a ``framing`` function (``sliding_window``, ``stft``, the mel spectrogram of audio):
    frame ``k`` covers input frames ``[k*hop, k*hop + window)`` with
    ``hop``/``window`` the scheme (the parameter, or the declared default for the
    input's rate) rounded *up* to whole input frames. The node keeps a
    carry-over buffer: it emits only the frames whose window is complete and keeps the
    input from the first frame it has not emitted (``k*hop``) on. At the end it frames
    what is left (the function pads the end as it does on a whole signal), unless those
    samples are already inside the last frame. The frames are identical to the
    one-piece result, whatever the chunk boundaries.
``StatefulNode``
    a ``stateful`` function (``resample``: the resampler's filter state crosses chunk
    boundaries): its factory gives an object with ``push(chunk)`` and ``flush()``,
    both returning a chunk or ``None``.
``AlignNode``
    a function of several features at the same time rate: it buffers each input and
    calls the function on the span they all cover.

Memory: each node holds at most one input chunk plus a window's tail; each stored
feature buffers at most one Zarr shard. A 2-hour file costs what its first chunk costs.
"""
from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import xarray as xr

from ..core.errors import ParameterError, StoreError
from ..audio.resampling import Resampler, resample
from ..spectral.features import mel_spectrogram
from ..spectral.sliding import sliding_window
from ..spectral.transforms import fft, stft
from ..core.streamable import Streaming, frame_local, framing, stateful, streaming_of
from ..dimensions.arrays import with_labels
from ..timeseries.index import TimeIndex
from .feature import Feature, _qualified

__all__ = ["AlignNode", "MapNode", "Pipeline", "StatefulNode", "WindowNode", "declaration",
           "make_node", "register_streaming", "time_index_of"]

_STREAMING: dict[str, Callable] = {}


def _is_audio(chunk: xr.DataArray) -> bool:
    return "frequency" not in chunk.dims and "window" not in chunk.dims


def _half_lapped(index: TimeIndex):
    rate = index.samplerate
    if not hasattr(rate, "half_lapped"):
        raise ParameterError(f"no default wscheme for a time axis at {rate!r}; give "
                             f"wscheme=")
    return rate.half_lapped()


# the library's transforms that are not frame-local (declared here, where streaming is
# used, when their modules do not declare it themselves)
for _func, _spec in ((sliding_window, framing("wscheme", channelwise=True)),
                     (stft, framing("wscheme", default=_half_lapped, channelwise=True)),
                     # of audio it frames (fused STFT); of a spectrum it is frame-local
                     (mel_spectrogram, framing("wscheme", default=_half_lapped,
                                               when=_is_audio, channelwise=True)),
                     (fft, frame_local(channelwise=True)),
                     (resample, stateful(Resampler, channelwise=True))):
    _declared = streaming_of(_func)
    if _declared is None:
        _spec(_func)
    elif not _declared.channelwise:
        # these transforms compute each channel on its own (checked in
        # tests/test_store_layout.py: stacked clips equal one-piece computations)
        # mypy does not model attributes set on functions
        _func.__zounds_streaming__ = dataclasses.replace(  # type: ignore[union-attr]
            _declared, channelwise=True)


def register_streaming(func, factory: Callable) -> None:
    """Declare the stateful streaming counterpart of ``func``.

    For functions that cannot carry a :func:`zounds_xr.stateful` declaration
    themselves.

    ``factory(**params)`` must return an object with ``push(chunk) -> DataArray | None``
    and ``flush() -> DataArray | None``; chunks out must carry exact TimeIndexes.
    """
    _STREAMING[_qualified(func)] = factory


def declaration(func) -> Streaming:
    """Tell how ``func`` streams.

    Its declaration, a registered factory, else frame-local (numpy's ufuncs:
    frame-local and channelwise, they are elementwise).
    """
    spec = streaming_of(func)
    if spec is not None:
        return spec
    if isinstance(func, np.ufunc) and func.nin == 1:
        return Streaming("frame_local", channelwise=True)
    factory = getattr(func, "__zounds_stream__", None) or _STREAMING.get(_qualified(func))
    if factory is not None:
        return Streaming("stateful", factory=factory)
    return Streaming("frame_local")


def time_index_of(chunk: xr.DataArray, feature: str = "?") -> TimeIndex:
    """Return the :class:`TimeIndex` of a function's output ``chunk``.

    Raises :class:`StoreError` naming ``feature`` when ``chunk`` is not a DataArray
    with a ``time`` axis carrying a :class:`TimeIndex`.
    """
    if not isinstance(chunk, xr.DataArray) or "time" not in chunk.dims:
        raise StoreError(
            f"feature {feature!r}: expected a DataArray with a 'time' axis from its function, "
            f"got {type(chunk).__name__}"
            + (f" with dims {chunk.dims}" if isinstance(chunk, xr.DataArray) else ""))
    index = chunk.xindexes.get("time")
    if not isinstance(index, TimeIndex):
        raise StoreError(f"feature {feature!r}: its 'time' axis has no TimeIndex")
    return index


def _concat(pieces: list[xr.DataArray]) -> xr.DataArray:
    if len(pieces) == 1:
        return pieces[0]
    first = pieces[0]
    indexes = [p.xindexes.get("time") for p in pieces]
    if all(isinstance(p.data, np.ndarray) and p.dims == first.dims
           and p.dtype == first.dtype for p in pieces) \
            and all(isinstance(i, TimeIndex) for i in indexes) \
            and all(k == "time" or "time" not in v.dims for k, v in first.coords.items()):
        # what xr.concat below makes of a window's carry and the next chunk (the first
        # piece's other labels and attrs), without its alignment of every coordinate
        # (0.55 ms of every 30 s of a long recording)
        time = xr.Coordinates.from_xindex(TimeIndex.concat(indexes, "time"))
        data = np.concatenate([p.data for p in pieces], axis=first.dims.index("time"))
        return with_labels(data, first, [str(d) for d in first.dims], coords=time,
                           attrs=first.attrs)
    return xr.concat(pieces, dim="time", coords="minimal", compat="override",
                     join="override", combine_attrs="override")


class MapNode:
    """Apply a frame-local function chunk by chunk.

    Each output chunk must have as many frames as its input: a function that frames
    or reduces its input must declare it, see :mod:`zounds_xr.core.streamable`.
    """

    def __init__(self, name: str, func, params: dict):
        self.name, self.func, self.params = name, func, params
        self._emitted = False

    def push(self, port: int, chunk: xr.DataArray, whole: bool = False
             ) -> list[xr.DataArray]:
        """Take ``chunk`` on input ``port``; return the output chunks now ready."""
        if chunk.sizes["time"] == 0 and self._emitted:
            return []
        self._emitted = True
        out = self.func(chunk, **self.params)
        if isinstance(out, xr.DataArray) and "time" in out.dims and \
                out.sizes["time"] != chunk.sizes["time"]:
            raise StoreError(
                f"feature {self.name!r}: {_qualified(self.func)} made {out.sizes['time']} "
                f"frames of a chunk of {chunk.sizes['time']}, so it is not frame-local; "
                f"declare how it streams (zx.framing / zx.stateful) or compute it on "
                f"access (store=False)")
        return [out]

    def flush(self) -> list[xr.DataArray]:
        """Return the output chunks still held, at the end of the signal."""
        return []


class WindowNode:
    """A framing function with a carry-over buffer (see module docs)."""

    def __init__(self, name: str, func, params: dict, spec: Streaming | None = None):
        self.name, self.func, self.params = name, func, params
        self.spec = spec or Streaming("framing", scheme="wscheme")
        self._buffer: list[xr.DataArray] = []
        self._frames = 0  # frames emitted so far
        self._hop: int | None = None
        self._win: int | None = None

    def _layout(self, index: TimeIndex) -> tuple[int, int]:
        """(hop, window) in samples, fixed at the first chunk."""
        if self._hop is not None and self._win is not None:
            return self._hop, self._win
        key = self.spec.scheme
        wscheme = self.params.get(key)
        if wscheme is None and self.spec.default is not None:
            wscheme = self.spec.default(index)
        hop_s = getattr(wscheme, "exact_frequency", None)
        win_s = getattr(wscheme, "exact_duration", None)
        if hop_s is None or win_s is None:
            raise ParameterError(f"feature {self.name!r}: {key} must be a SampleRate, "
                                 f"got {wscheme!r}")
        self._hop = math.ceil(hop_s / index.frequency)
        self._win = math.ceil(win_s / index.frequency)
        return self._hop, self._win

    def _call(self, data: xr.DataArray, expected: int | None) -> xr.DataArray:
        out = self.func(data, **self.params)
        n = time_index_of(out, self.name).size
        if expected is not None and n != expected:
            raise StoreError(
                f"feature {self.name!r}: {_qualified(self.func)} made {n} frames of "
                f"{data.sizes['time']} samples, {expected} expected from hop={self._hop}, "
                f"window={self._win}; functions with a wscheme must frame like "
                f"sliding_window (no centring)")
        return out

    def push(self, port: int, chunk: xr.DataArray, whole: bool = False
             ) -> list[xr.DataArray]:
        """Take ``chunk`` on input ``port``; return the output chunks now ready."""
        if whole and not self._buffer and not self._frames:
            # the whole signal in one chunk: the one-piece computation itself (one call
            # instead of the complete frames and then the padded tail)
            self._frames = -1
            return [self.func(chunk, **self.params)]
        hop, win = self._layout(time_index_of(chunk, self.name))
        if chunk.sizes["time"]:
            self._buffer.append(chunk)
        buffered = sum(c.sizes["time"] for c in self._buffer)
        if buffered < win:
            return []
        k = 1 + (buffered - win) // hop  # frames with a complete window
        data = _concat(self._buffer)
        out = self._call(data.isel(time=slice(0, (k - 1) * hop + win)), k)
        self._buffer = [data.isel(time=slice(k * hop, None))]
        self._frames += k
        return [out]

    def flush(self) -> list[xr.DataArray]:
        """Return the output chunks still held, at the end of the signal."""
        if not self._buffer:
            return []
        # a buffered chunk means push() has fixed the layout
        assert self._hop is not None and self._win is not None
        hop, win = self._hop, self._win
        data = _concat(self._buffer)
        self._buffer = []
        left = data.sizes["time"]
        # samples from the next frame's start on; already covered by the last frame?
        if left == 0 or (self._frames and left <= win - hop):
            return []
        return [self._call(data, 1 + -(-max(left - win, 0) // hop))]


class StatefulNode:
    """A function with a stateful streaming counterpart (e.g. ``resample``).

    The state object has ``push(chunk)`` (or ``process(chunk)``, as
    `zounds_xr.Resampler`) and ``flush()``.
    """

    def __init__(self, name: str, factory, params: dict, func=None):
        self.name, self.func, self.params = name, func, params
        self.factory = factory
        self.state: Any = None  # the factory's object, duck-typed (push/process, flush)
        self._whole = False

    def push(self, port: int, chunk: xr.DataArray, whole: bool = False
             ) -> list[xr.DataArray]:
        """Take ``chunk`` on input ``port``; return the output chunks now ready."""
        if whole and self.state is None and self.func is not None:
            self._whole = True  # the whole signal: the plain function, no state to carry
            return [self.func(chunk, **self.params)]
        if self.state is None:
            self.state = self.factory(**self.params)
        push = getattr(self.state, "push", None) or self.state.process
        out = push(chunk)
        return [] if out is None else [out]

    def flush(self) -> list[xr.DataArray]:
        """Return the output chunks still held, at the end of the signal."""
        if self._whole or self.state is None:
            return []
        out = self.state.flush()
        return [] if out is None else [out]


class AlignNode:
    """A function of several same-rate features: called on the span all inputs cover."""

    def __init__(self, name: str, func, params: dict, n_inputs: int):
        self.name, self.func, self.params = name, func, params
        self._buffers: list[xr.DataArray | None] = [None] * n_inputs
        self._emitted = False

    def push(self, port: int, chunk: xr.DataArray, whole: bool = False
             ) -> list[xr.DataArray]:
        """Take ``chunk`` on input ``port``; return the output chunks now ready."""
        buf = self._buffers[port]
        self._buffers[port] = chunk if buf is None else _concat([buf, chunk])
        buffers = [b for b in self._buffers if b is not None]
        if len(buffers) < len(self._buffers):
            return []
        indexes = [time_index_of(b, self.name) for b in buffers]
        first = indexes[0]
        for ix in indexes[1:]:
            if ix.frequency != first.frequency or ix.duration != first.duration:
                raise StoreError(
                    f"feature {self.name!r} needs features at different time rates; "
                    f"streaming needs them at one rate (compute it on access: store=False)")
        start = max(ix.start for ix in indexes)
        end = min(ix.start + ix.size * ix.frequency for ix in indexes)
        n = int((end - start) / first.frequency)
        if n <= 0 and self._emitted:
            return []
        parts = []
        for i, (b, ix) in enumerate(zip(buffers, indexes, strict=True)):
            exact = (start - ix.start) / ix.frequency
            if exact.denominator != 1:
                raise StoreError(f"feature {self.name!r}: its inputs' frames do not line up")
            offset = int(exact)
            parts.append(b.isel(time=slice(offset, offset + max(n, 0))))
            self._buffers[i] = b.isel(time=slice(offset + max(n, 0), None))
        self._emitted = True
        return [self.func(*parts, **self.params)]

    def flush(self) -> list[xr.DataArray]:
        """Return the output chunks still held, at the end of the signal."""
        return []


class _ChooseNode:
    """Stream a framing function that is frame-local for some inputs (``when``).

    Decided at the first chunk.
    """

    def __init__(self, name: str, func, params: dict, spec: Streaming):
        self.name, self.func, self.params, self.spec = name, func, params, spec
        self.node: WindowNode | MapNode | None = None
        assert spec.when is not None  # make_node chooses this node only for a `when`
        self._when: Callable = spec.when

    def push(self, port: int, chunk: xr.DataArray, whole: bool = False
             ) -> list[xr.DataArray]:
        """Take ``chunk`` on input ``port``; return the output chunks now ready."""
        if self.node is None:
            framing_input = bool(self._when(chunk))
            self.node = (WindowNode(self.name, self.func, self.params, self.spec)
                         if framing_input else MapNode(self.name, self.func, self.params))
        return self.node.push(port, chunk, whole)

    def flush(self) -> list[xr.DataArray]:
        """Return the output chunks still held, at the end of the signal."""
        return [] if self.node is None else self.node.flush()


def make_node(name: str, feature: Feature):
    """Build the streaming node for a computed feature, from its function's declaration."""
    if len(feature.needs) > 1:
        return AlignNode(name, feature.func, feature.params, len(feature.needs))
    spec = declaration(feature.func)
    if spec.kind == "stateful":
        return StatefulNode(name, spec.factory, feature.params, feature.func)
    if spec.kind == "framing":
        if spec.when is not None:
            return _ChooseNode(name, feature.func, feature.params, spec)
        return WindowNode(name, feature.func, feature.params, spec)
    return MapNode(name, feature.func, feature.params)


class Pipeline:
    """Push chunks from sources through nodes into sinks.

    Parameters
    ----------
    nodes : dict name -> node
        The computed features to run, in topological order.
    inputs : dict name -> tuple of names
        What each node needs (sources or other nodes).
    sinks : dict name -> callable(chunk)
        Writers of stored features (sources may have sinks too).
    """

    def __init__(self, nodes: dict, inputs: dict, sinks: dict):
        self.nodes, self.sinks = nodes, sinks
        self.consumers: dict[str, list[tuple[str, int]]] = {}
        for name, needs in inputs.items():
            for port, need in enumerate(needs):
                self.consumers.setdefault(need, []).append((name, port))

    def feed(self, name: str, chunk: xr.DataArray, whole: bool = False) -> None:
        """Push ``chunk`` of ``name`` to its sink and consumers.

        ``whole``: it is the entire signal (a single-input node may then compute in
        one piece).
        """
        time_index_of(chunk, name)
        sink = self.sinks.get(name)
        if sink is not None:
            sink(chunk)
        for consumer, port in self.consumers.get(name, ()):
            node = self.nodes[consumer]
            outs = node.push(port, chunk, whole)
            passes = whole and not isinstance(node, AlignNode) and len(outs) == 1
            for out in outs:
                self.feed(consumer, out, passes)

    def finish(self) -> None:
        """Flush every node at the end of the signal, feeding what they held."""
        for name, node in self.nodes.items():
            for out in node.flush():
                self.feed(name, out)

    def run(self, sources: dict[str, Iterable[xr.DataArray]]) -> None:
        """Feed every source to the end, in time order across sources, then flush."""
        heap: list[tuple[Any, int, str, xr.DataArray]] = []
        counter = itertools.count()
        iterators: dict[str, Iterator] = {k: iter(v) for k, v in sources.items()}
        if len(iterators) == 1:
            # a source of one chunk (a short clip) runs every node once, in one piece
            [(name, it)] = iterators.items()
            first = next(it, None)
            second = next(it, None) if first is not None else None
            if first is not None and second is None:
                self.feed(name, first, whole=True)
                self.finish()
                return
            iterators[name] = itertools.chain([c for c in (first, second)
                                               if c is not None], it)

        def advance(name):
            chunk = next(iterators[name], None)
            if chunk is not None:
                start = time_index_of(chunk, name).start
                heapq.heappush(heap, (start, next(counter), name, chunk))

        for name in iterators:
            advance(name)
        while heap:
            _, _, name, chunk = heapq.heappop(heap)
            self.feed(name, chunk)
            advance(name)
        self.finish()

