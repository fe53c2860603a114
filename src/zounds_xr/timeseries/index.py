"""``TimeIndex``: an exact, lazy xarray index for constant-rate time axes.

A time axis is fully described by ``start``, ``frequency`` (the step between frames)
and ``duration`` (the extent of one frame), kept as exact ``Fraction`` seconds, plus
its size. Frame ``i`` covers ``[start + i*frequency, start + i*frequency + duration)``.
Coordinate labels (``timedelta64[ns]``, the frame start rounded to the nearest ns) are
computed on demand for the positions asked for, never for the whole axis: a 2-hour
44.1 kHz axis costs a few hundred bytes, where a materialized one costs 2.5 GB.
"""
from __future__ import annotations

import datetime
import math
from fractions import Fraction
from collections.abc import Hashable, Mapping
from typing import Any, cast

import numpy as np
import pandas as pd
import xarray as xr
from xarray.core.indexing import IndexSelResult
from xarray.indexes import CoordinateTransform, CoordinateTransformIndex, PandasIndex

from ..core.types import DurationLike
from ..core.validation import nonnegative_int
from ..core.errors import ParameterError, SelectionError
from .durations import to_fraction, to_timedelta
from .samplerate import AudioSampleRate, SampleRate, rate_from_fractions
from .timeslice import TimeSlice

__all__ = ["TimeIndex", "time_coords"]

#: attrs key under which stores keep the index definition (see DESIGN.md)
ATTRS_KEY = "zounds_xr:index"
_NS = 10**9
# largest intermediate value kept in int64 when computing labels
_INT64_SAFE = 2**62


def _timelike_scalar(value) -> bool:
    return isinstance(value, (np.timedelta64, pd.Timedelta, datetime.timedelta, str))


class TimeTransform(CoordinateTransform):
    """Grid position -> frame start time, in exact rational arithmetic.

    The transform behind :class:`TimeIndex` (xarray's ``CoordinateTransform``
    protocol): label ``i`` is ``start + i * frequency`` rounded to the nearest ns.

    Parameters
    ----------
    start : Fraction
        Start of frame 0, seconds.
    frequency : Fraction > 0
        Step between frame starts, seconds.
    duration : Fraction > 0
        Extent of one frame, seconds.
    size : int >= 0
        Number of frames.
    dim : hashable
        The dim name.
    coord_name : hashable, optional
        The coordinate name (``dim`` by default).
    """

    def __init__(self, start: Fraction, frequency: Fraction, duration: Fraction, size: int,
                 dim: Hashable = "time", coord_name: Hashable | None = None):
        coord_name = dim if coord_name is None else coord_name
        # xarray types dims as str; any hashable dim name works at run time
        super().__init__([coord_name], {cast(str, dim): int(size)},
                         dtype=np.dtype("timedelta64[ns]"))
        if frequency <= 0 or duration <= 0:
            raise ParameterError(
                f"a time axis needs a positive frequency and duration, got "
                f"frequency={frequency}s duration={duration}s")
        self.start, self.frequency, self.duration = Fraction(start), Fraction(frequency), \
            Fraction(duration)
        # labels in ns are (S + i*P) / D, computed as integers
        start_ns, step_ns = self.start * _NS, self.frequency * _NS
        self._den = math.lcm(start_ns.denominator, step_ns.denominator)
        self._num_start = int(start_ns * self._den)
        self._num_step = int(step_ns * self._den)

    @property
    def dim(self) -> str:
        """The dim name."""
        return self.dims[0]

    @property
    def coord_name(self) -> Hashable:
        """The coordinate name."""
        return self.coord_names[0]

    @property
    def size(self) -> int:
        """Number of frames."""
        return self.dim_size[self.dim]

    def forward(self, dim_positions):
        """Labels (``timedelta64[ns]``, nearest ns) of the given positions, exactly."""
        pos = np.asarray(dim_positions[self.dim])
        n, d = self._num_start, self._den
        big = 2 * (abs(n) + (int(np.max(np.abs(pos), initial=0)) + 1) * self._num_step) + d
        if big < _INT64_SAFE:
            num = 2 * (n + pos.astype(np.int64) * self._num_step) + d
            ns = num // (2 * d)  # nearest ns, halves up
        else:  # exotic fractions: exact Python integers
            flat = [(2 * (n + int(p) * self._num_step) + d) // (2 * d) for p in pos.ravel()]
            ns = np.array(flat, dtype=np.int64).reshape(pos.shape)
        return {self.coord_name: ns.astype("timedelta64[ns]")}

    def reverse(self, coord_labels):
        """Positions (float) of the given labels."""
        labels = np.asarray(coord_labels[self.coord_name]).astype("timedelta64[ns]")
        ns = labels.astype(np.int64).astype(np.float64)
        return {self.dim: (ns - float(self.start * _NS)) / float(self.frequency * _NS)}

    def equals(self, other, exclude=None) -> bool:
        """Return the same start, frequency, duration, size and dim (parameters, never labels)."""
        return (isinstance(other, TimeTransform) and self.start == other.start
                and self.frequency == other.frequency and self.duration == other.duration
                and self.size == other.size and self.dim == other.dim)

    def replace(self, **changes: Any) -> TimeTransform:
        """Return a transform with some parameters changed (``start=``, ``size=``...)."""
        params: dict[str, Any] = dict(
            start=self.start, frequency=self.frequency, duration=self.duration,
            size=self.size, dim=self.dim, coord_name=self.coord_name)
        params.update(changes)
        return TimeTransform(**params)

    def __reduce__(self):
        return (TimeTransform, (self.start, self.frequency, self.duration, self.size, self.dim,
                                self.coord_name))


class TimeIndex(CoordinateTransformIndex):
    """Lazy, exact index of a constant-rate time axis (``time`` or ``window``).

    Build it with :meth:`from_params` or :func:`time_coords`, not ``__init__``.

    Parameters
    ----------
    transform : TimeTransform
        The exact start, frequency, duration and size (what the factories build).

    Selection (``da.sel(time=...)``):

    - ``TimeSlice(duration, start)``: every frame whose extent overlaps the span;
    - ``slice(t0, t1)`` of timedeltas or strings: frames whose label lies in
      ``[t0, t1]``, like pandas;
    - a scalar timedelta or string (``"3s"``): the latest frame that started at or
      before it, ``floor((t - start) / frequency)`` (``method="nearest"`` rounds);
    - an array of timedeltas: the same, element-wise.

    Examples
    --------
    >>> import numpy as np, xarray as xr, zounds_xr as zx
    >>> from fractions import Fraction
    >>> coords = zx.TimeIndex.coords(size=441000, frequency=Fraction(1, 44100))
    >>> da = xr.DataArray(np.zeros(441000), coords=coords, dims="time")
    >>> da.sel(time=zx.TimeSlice(zx.Seconds(2), start=zx.Seconds(1))).sizes["time"]
    88200
    """

    transform: TimeTransform

    # construction -------------------------------------------------------------------
    @classmethod
    def from_params(cls, size: int, frequency: DurationLike | SampleRate,
                    duration: DurationLike | None = None, start: DurationLike | int = 0, *,
                    dim: Hashable = "time", coord_name: Hashable | None = None) -> TimeIndex:
        """Return an index of ``size`` frames (the factory; do not call ``__init__``).

        Parameters
        ----------
        size : int >= 0
            Number of frames.
        frequency : np.timedelta64, Fraction, str or SampleRate
            Step between frame starts, > 0 (``Fraction`` = exact seconds); a
            :class:`SampleRate` gives both its frequency and its duration.
        duration : np.timedelta64, Fraction or str, optional
            Extent of one frame, > 0; defaults to ``frequency``.
        start : np.timedelta64, Fraction, str or 0
            Start of the first frame.
        dim : hashable
            The dim name.
        coord_name : hashable, optional
            The coordinate name (``dim`` by default).

        Returns
        -------
        TimeIndex

        Raises
        ------
        ParameterError
            For a negative size or a non-positive frequency or duration.

        See Also
        --------
        time_coords : The index wrapped in ``xarray.Coordinates``.
        """
        if isinstance(frequency, SampleRate):
            if duration is None:
                duration = frequency.exact_duration
            frequency = frequency.exact_frequency
        f = to_fraction(frequency, name="frequency")
        d = f if duration is None else to_fraction(duration, name="duration")
        s = Fraction(0) if isinstance(start, int) and start == 0 else to_fraction(start,
                                                                                  name="start")
        return cls(TimeTransform(s, f, d, nonnegative_int(size, "size"), dim, coord_name))

    @classmethod
    def coords(cls, size: int, frequency: DurationLike | SampleRate,
               duration: DurationLike | None = None, start: DurationLike | int = 0, *,
               dim: Hashable = "time") -> xr.Coordinates:
        """``xr.Coordinates`` holding a new index (see :meth:`from_params`)."""
        return xr.Coordinates.from_xindex(cls.from_params(size, frequency, duration, start,
                                                          dim=dim))

    @classmethod
    def from_variables(cls, variables, *, options) -> TimeIndex:
        """Build from an explicit ``timedelta64`` coordinate (``set_xindex``).

        ``options`` may give ``frequency`` and ``duration``; otherwise the step between
        the first two labels is used. The labels must be regular.
        """
        if len(variables) != 1:
            raise ParameterError("a TimeIndex is built from exactly one coordinate")
        (name, var), = variables.items()
        if var.ndim != 1:
            raise ParameterError(f"coordinate {name!r} must be 1-D to carry a TimeIndex")
        if ATTRS_KEY in var.attrs:
            return cls.from_attrs(var.attrs[ATTRS_KEY], dim=var.dims[0], coord_name=name)
        values = np.asarray(var.values).astype("timedelta64[ns]")
        if "frequency" in options:
            frequency = to_fraction(options["frequency"], name="frequency")
        elif len(values) >= 2:
            frequency = Fraction(int((values[1] - values[0]).astype(np.int64)), _NS)
        else:
            raise ParameterError(f"give frequency= to index the short coordinate {name!r}")
        duration = to_fraction(options.get("duration", frequency), name="duration")
        start = Fraction(int(values[0].astype(np.int64)), _NS) if len(values) else Fraction(0)
        index = cls(TimeTransform(start, frequency, duration, len(values), var.dims[0], name))
        expected = index.transform.forward({var.dims[0]: np.arange(len(values))})[name]
        if not np.array_equal(expected, values):
            raise ParameterError(f"coordinate {name!r} is not regularly spaced by {frequency}s")
        return index

    # persistence --------------------------------------------------------------------
    def to_attrs(self) -> dict:
        """JSON-safe definition (exact fractions of a second as strings).

        Returns
        -------
        dict
            ``{"type": "TimeIndex", "version": 1, "size", "start", "frequency",
            "duration"}``, times as strings such as ``"1/44100"``.

        See Also
        --------
        from_attrs : The inverse.

        Examples
        --------
        >>> import zounds_xr as zx
        >>> zx.TimeIndex.from_params(3, zx.SR44100()).to_attrs()["frequency"]
        '1/44100'
        """
        return {"type": "TimeIndex", "version": 1, "size": self.size,
                "start": str(self.start), "frequency": str(self.frequency),
                "duration": str(self.duration)}

    @classmethod
    def from_attrs(cls, attrs: Mapping, *, dim: Hashable = "time", size: int | None = None,
                   coord_name: Hashable | None = None) -> TimeIndex:
        """Inverse of :meth:`to_attrs` (how a store rebuilds the index on open).

        Parameters
        ----------
        attrs : mapping
            The output of :meth:`to_attrs`.
        dim : hashable
            The dim name.
        size : int >= 0, optional
            Overrides the stored size.
        coord_name : hashable, optional
            The coordinate name (``dim`` by default).

        Returns
        -------
        TimeIndex

        Raises
        ------
        ParameterError
            When ``attrs`` is not a TimeIndex definition.
        """
        if attrs.get("type") != "TimeIndex":
            raise ParameterError(f"not a TimeIndex definition: {dict(attrs)!r}")
        n = attrs["size"] if size is None else size
        return cls(TimeTransform(Fraction(attrs["start"]), Fraction(attrs["frequency"]),
                                 Fraction(attrs["duration"]), int(n), dim, coord_name))

    # parameters ---------------------------------------------------------------------
    @property
    def dim(self) -> str:
        """The dim name."""
        return self.transform.dim

    @property
    def size(self) -> int:
        """Number of frames."""
        return self.transform.size

    @property
    def start(self) -> Fraction:
        """Start of the first frame, exact seconds."""
        return self.transform.start

    @property
    def frequency(self) -> Fraction:
        """Step between frame starts, exact seconds."""
        return self.transform.frequency

    @property
    def duration(self) -> Fraction:
        """Extent of one frame, exact seconds."""
        return self.transform.duration

    @property
    def end(self) -> Fraction:
        """End of the last frame's extent, exact seconds."""
        if not self.size:
            return self.start
        return self.start + (self.size - 1) * self.frequency + self.duration

    @property
    def span(self) -> Fraction:
        """Time from the start of the first frame to the end of the last, exact seconds."""
        return self.end - self.start

    @property
    def samplerate(self) -> SampleRate:
        """The axis' rate: an audio rate when frequency == duration == 1/n s."""
        return rate_from_fractions(self.frequency, self.duration)

    # selection ----------------------------------------------------------------------
    def _label(self, labels: Mapping) -> Any:
        name = self.transform.coord_name
        return labels[name] if name in labels else labels[self.dim]

    def _clip(self, i: int) -> int:
        return max(0, min(self.size, i))

    def overlapping(self, start: Fraction, end: Fraction | None) -> slice:
        """Positions of the frames whose extent overlaps ``[start, end)``.

        Parameters
        ----------
        start : Fraction
            Seconds.
        end : Fraction, optional
            Seconds; ``None`` is the end of the axis.

        Returns
        -------
        slice
            Positions, clipped to the axis (empty when nothing overlaps).
        """
        f = self.frequency
        first = self._clip(math.floor((start - self.start - self.duration) / f) + 1)
        stop = self.size if end is None else self._clip(math.ceil((end - self.start) / f))
        return slice(first, max(first, stop))

    def _label_slice(self, label: slice) -> slice:
        if label.step is not None:
            raise ParameterError("time label slices cannot have a step; use isel for strides")
        f, half_ns = self.frequency, Fraction(1, 2 * _NS)
        # labels are rounded to the nearest ns: label_i >= t0  <=>  t_i >= t0 - 0.5 ns
        first = 0
        if label.start is not None:
            t0 = to_fraction(label.start, name="slice start")
            first = self._clip(math.ceil((t0 - half_ns - self.start) / f))
        stop = self.size
        if label.stop is not None:
            t1 = to_fraction(label.stop, name="slice stop")
            stop = self._clip(math.ceil((t1 + half_ns - self.start) / f))
        return slice(first, max(first, stop))

    def _position(self, t: Fraction, method: str | None) -> int:
        offset = (t - self.start) / self.frequency
        pos = math.floor(offset + Fraction(1, 2)) if method == "nearest" else math.floor(offset)
        if method == "nearest":
            pos = min(max(pos, 0), self.size - 1)
        if not 0 <= pos < self.size:
            raise SelectionError(f"{to_timedelta(t)} is outside the time axis "
                                 f"[{to_timedelta(self.start)}, {to_timedelta(self.end)})")
        return pos

    def sel(self, labels, method=None, tolerance=None) -> IndexSelResult:
        """Positions of the labels (see the class docstring for the rules)."""
        label = self._label(labels)
        if method not in (None, "nearest", "pad", "ffill"):
            raise ParameterError(f"method={method!r} is not supported by TimeIndex")
        if isinstance(label, TimeSlice):
            return IndexSelResult({self.dim: self.overlapping(label.start_fraction,
                                                              label.end_fraction)})
        if isinstance(label, slice):
            return IndexSelResult({self.dim: self._label_slice(label)})
        if _timelike_scalar(label) or isinstance(label, Fraction):
            return IndexSelResult({self.dim: self._position(to_fraction(label), method)})
        return self._sel_array(label, method)

    def _sel_array(self, label, method) -> IndexSelResult:
        wrapper = None
        if isinstance(label, (xr.DataArray, xr.Variable)):
            wrapper, data = label, np.asarray(label.data)
        else:
            data = np.asarray(label)
        if data.dtype.kind in "UO":
            data = pd.to_timedelta(data.ravel()).to_numpy().reshape(data.shape)
        if data.dtype.kind != "m":
            raise ParameterError(
                f"cannot select time with {type(label).__name__} of dtype {data.dtype}; use "
                f"TimeSlice, timedeltas or timedelta strings")
        if data.ndim == 0:
            return IndexSelResult({self.dim: self._position(to_fraction(data[()]), method)})
        ns = data.astype("timedelta64[ns]").astype(np.int64)
        offset = (ns - float(self.start * _NS)) / float(self.frequency * _NS)
        pos = np.floor(offset + (0.5 if method == "nearest" else 0) + 1e-9).astype(np.int64)
        if method == "nearest":
            pos = np.clip(pos, 0, self.size - 1)
        if pos.size and (pos.min() < 0 or pos.max() >= self.size):
            raise SelectionError(
                f"some times are outside the time axis [{to_timedelta(self.start)}, "
                f"{to_timedelta(self.end)})")
        if isinstance(wrapper, xr.DataArray):
            return IndexSelResult({self.dim: xr.DataArray(pos, dims=wrapper.dims)})
        if isinstance(wrapper, xr.Variable):
            return IndexSelResult({self.dim: xr.Variable(wrapper.dims, pos)})
        return IndexSelResult({self.dim: pos})

    def isel(self, indexers):
        """Return the index of a selection by positions.

        Return a TimeIndex for slices with a positive step (the step multiplies the
        frequency); a ``PandasIndex`` for arbitrary positions; ``None`` for a scalar.
        """
        idx = indexers[self.dim]
        if isinstance(idx, slice):
            r = range(self.size)[idx]
            if r.step > 0:
                return type(self)(self.transform.replace(
                    start=self.start + r.start * self.frequency,
                    frequency=self.frequency * r.step, size=len(r)))
            idx = np.arange(self.size)[idx]
        if isinstance(idx, xr.Variable):
            if idx.ndim != 1:
                return None
            new_dim, idx = idx.dims[0], np.asarray(idx.data)
        else:
            new_dim = self.dim
        if np.ndim(idx) == 0:
            return None  # a scalar selection drops the dim and its index
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        # arbitrary positions are no longer a regular grid: an explicit pandas index
        values = self.transform.forward({self.dim: idx})[self.transform.coord_name]
        return PandasIndex(pd.Index(values, name=self.transform.coord_name), new_dim)

    # alignment ----------------------------------------------------------------------
    def equals(self, other, *, exclude=None) -> bool:
        # parameters only: comparing values would materialize both axes
        """Compare the parameters (start, frequency, duration, size, dim), never labels."""
        return isinstance(other, TimeIndex) and self.transform.equals(other.transform)

    def _offset_of(self, other: TimeIndex) -> int:
        """Position in ``self``'s grid where ``other`` starts (same rate required)."""
        if not isinstance(other, TimeIndex):
            raise ParameterError("a TimeIndex can only be aligned with another TimeIndex")
        if self.frequency != other.frequency or self.duration != other.duration:
            raise ParameterError(
                f"cannot align time axes of different rates: frequency {self.frequency}s vs "
                f"{other.frequency}s, duration {self.duration}s vs {other.duration}s")
        offset = (other.start - self.start) / self.frequency
        if offset.denominator != 1:
            raise ParameterError("cannot align time axes whose frames are not on one grid")
        return int(offset)

    def join(self, other, how="inner") -> TimeIndex:
        """Return the joined axis of two axes of one rate on one grid.

        Return the joined axis of two axes of one rate on one grid (``ParameterError``
        otherwise): no labels are materialized.
        """
        offset = self._offset_of(other)
        spans = {"left": (0, self.size), "right": (offset, offset + other.size)}
        if how in ("inner", "exact"):
            lo, hi = max(0, offset), min(self.size, offset + other.size)
        elif how == "outer":
            lo, hi = min(0, offset), max(self.size, offset + other.size)
        elif how in spans:
            lo, hi = spans[how]
        else:
            raise ParameterError(f"join how={how!r} is not supported")
        return type(self)(self.transform.replace(start=self.start + lo * self.frequency,
                                                 size=max(0, hi - lo)))

    def reindex_like(self, other, method=None, tolerance=None):
        """Positions in this axis of ``other``'s frames (-1 where absent); same rate only."""
        offset = self._offset_of(other)  # other's frame j is self's frame j + offset
        positions = np.arange(other.size, dtype=np.int64) + offset
        positions[(positions < 0) | (positions >= self.size)] = -1
        return {self.dim: positions}

    @classmethod
    def concat(cls, indexes, dim, positions=None) -> TimeIndex:
        """One axis from contiguous pieces of one rate (gaps raise ``ParameterError``)."""
        if positions is not None:
            raise ParameterError("TimeIndex cannot be concatenated with explicit positions")
        first = indexes[0]
        size = 0
        for index in indexes:
            if not isinstance(index, TimeIndex):
                raise ParameterError("cannot concatenate a TimeIndex with another index type")
            if index.frequency != first.frequency or index.duration != first.duration:
                raise ParameterError("cannot concatenate time axes of different rates")
            expected = first.start + size * first.frequency
            if index.start != expected:
                raise ParameterError(
                    f"cannot concatenate time axes that are not contiguous: expected a piece "
                    f"starting at {to_timedelta(expected)}, got {to_timedelta(index.start)}")
            size += index.size
        return cls(first.transform.replace(size=size))

    def roll(self, shifts):
        """No index: rolled labels are no longer regular."""
        return None  # rolled labels are no longer regular

    def rename(self, name_dict, dims_dict):
        """Return the same index under a new dim or coordinate name."""
        name = self.transform.coord_name
        new_name = name_dict.get(name, name)
        new_dim = dims_dict.get(self.dim, self.dim)
        if new_name == name and new_dim == self.dim:
            return self
        return type(self)(self.transform.replace(dim=new_dim, coord_name=new_name))

    def create_variables(self, variables=None):
        """Return the lazy ``timedelta64[ns]`` coordinate, with a ``long_name``."""
        out = super().create_variables(variables)
        for var in out.values():
            var.attrs.setdefault("long_name", "Time" if self.dim != "window" else "Window time")
        return out

    def to_pandas_index(self) -> pd.Index:
        """Return a materialized ``TimedeltaIndex`` (costs 8 bytes a frame: avoid on long axes)."""
        values = self.transform.forward({self.dim: np.arange(self.size)})
        return pd.TimedeltaIndex(values[self.transform.coord_name], name=self.dim)

    def _repr_inline_(self, max_width: int) -> str:
        rate = self.samplerate
        what = (f"{rate.samples_per_second} Hz" if isinstance(rate, AudioSampleRate) else
                f"hop={float(self.frequency) * 1e3:.6g} ms, "
                f"window={float(self.duration) * 1e3:.6g} ms")
        text = (f"TimeIndex({what}, start={float(self.start):.6g} s, "
                f"span={float(self.end - self.start):.6g} s)")
        return text if len(text) <= max_width else text[: max(0, max_width - 1)] + "…"

    def __repr__(self) -> str:
        return (f"TimeIndex(start={self.start}s, frequency={self.frequency}s, "
                f"duration={self.duration}s, size={self.size}, dim={self.dim!r})")


def time_coords(size: int, frequency: DurationLike | SampleRate,
                duration: DurationLike | None = None, start: DurationLike | int = 0, *,
                dim: Hashable = "time") -> xr.Coordinates:
    """Coordinates with a lazy :class:`TimeIndex`: ``size`` frames, one every ``frequency``.

    Parameters
    ----------
    size : int >= 0
        Number of frames.
    frequency : np.timedelta64, Fraction, str or SampleRate
        Step between frame starts, > 0 (``Fraction`` = exact seconds); a
        :class:`SampleRate` gives both the step and the frame duration.
    duration : np.timedelta64, Fraction or str, optional
        Extent of one frame, > 0; defaults to ``frequency`` (or the rate's duration).
    start : np.timedelta64, Fraction, str or 0
        Start of the first frame.
    dim : hashable
        The dim (and coordinate) name, ``"time"`` or ``"window"``.

    Returns
    -------
    xarray.Coordinates
        One ``timedelta64[ns]`` coordinate ``dim`` (frame starts, nearest ns, computed
        on demand) indexed by a :class:`TimeIndex`.

    See Also
    --------
    TimeIndex.from_params : The index alone.
    zounds_xr.frequency_coords : The same for a frequency axis.

    Examples
    --------
    >>> import numpy as np, xarray as xr, zounds_xr as zx
    >>> coords = time_coords(4, zx.SR8000())
    >>> xr.DataArray(np.zeros(4), coords=coords, dims="time").zx.samplerate
    SR8000()
    """
    return TimeIndex.coords(size, frequency, duration, start, dim=dim)
