"""``FrequencyIndex``: an xarray index over the bands of a :class:`FrequencyScale`.

The index holds the scale (the *generator* of the bands); the coordinate it creates
holds the band centres in Hz (``units="Hz"``, ``long_name="Frequency"``). Band edges
are not coordinates (index coordinates of edges break ``ds[name] = da``, ``assign`` and
``drop_attrs``); they are on the scale: ``da.xindexes["frequency"].scale.band_starts``.

Two modes:

*one position per band* (``slices=None``; :class:`FrequencyDimension`)
    position ``i`` of the axis is band ``i`` of the scale.
*coefficients grouped by band* (``slices`` given; :class:`ExplicitFrequencyDimension`)
    the axis holds the coefficients of every band one after the other, band ``i``
    occupying positions ``slices[i]`` (contiguous, in order, from 0; the output of a
    frequency-adaptive transform). Each position is labelled with its band's centre,
    ``sel`` selects whole bands, and ``isel`` keeps the index only when it selects whole
    bands (any other selection leaves a plain coordinate).

Selection (``da.sel(frequency=...)``):

- ``FrequencyBand(a, b)``: every band overlapping ``[a, b)`` (half-open: a band that
  only touches an edge is not selected); the index keeps the sub-scale, of the same
  kind when it stays regular (``LinearScale[i:j]`` is a ``LinearScale``).
- ``slice(a, b)`` of Hz: bands whose *centre* lies in ``[a, b]`` (inclusive, as pandas
  label slices); a step is a positional stride.
- a scalar number of Hz: the band containing it (of several overlapping bands, the one
  whose centre is nearest); ``method="nearest"``: the band with the nearest centre
  (``tolerance`` in Hz). Arrays of numbers select band by band. No match: ``KeyError``.
"""
from __future__ import annotations

import json
import numbers
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from xarray.core.indexing import IndexSelResult
from xarray.indexes import Index

from ..core.errors import ParameterError
from .band import FrequencyBand
from .scales import ExplicitScale, FrequencyScale, LinearScale, _as_range

__all__ = ["FrequencyIndex", "frequency_coords", "ATTRS_KEY"]

#: attrs key under which a coordinate (or the store) keeps the index definition
ATTRS_KEY = "zounds_xr:index"

_COORD_ATTRS = {"units": "Hz", "long_name": "Frequency"}


def normalize_slices(slices: Iterable[Any], n_bands: int) -> tuple[slice, ...]:
    """Check and normalise the per-band slices of a coefficients-by-band axis.

    Parameters
    ----------
    slices : iterable of slice or (int, int)
        One per band, without a step; they must tile ``[0, n)`` in order: the first
        starts at 0 and each starts where the previous stopped (a band may have no
        coefficient).
    n_bands : int >= 0
        The number of bands of the scale.

    Returns
    -------
    tuple of slice
        ``slice(start, stop)`` with integer bounds, one per band.

    Raises
    ------
    ParameterError
        Naming the first slice that is not a slice, has a step, or does not continue
        the tiling, or when the number of slices is not ``n_bands``.

    Examples
    --------
    >>> normalize_slices([(0, 2), slice(2, 5)], 2)
    (slice(0, 2, None), slice(2, 5, None))
    """
    out = []
    expected = 0
    for i, s in enumerate(slices):
        if isinstance(s, slice):
            if s.step not in (None, 1):
                raise ParameterError(f"slices[{i}] must have no step, got {s!r}")
            start, stop = s.start, s.stop
        else:
            try:
                start, stop = s
            except (TypeError, ValueError):
                raise ParameterError(f"slices[{i}] must be a slice, got {s!r}") from None
        start = expected if start is None and i == 0 else start
        for v in (start, stop):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise ParameterError(f"slices[{i}] must have integer bounds, got {s!r}")
        start, stop = int(start), int(stop)
        if start != expected or stop < start:
            raise ParameterError(
                f"slices must tile the axis in order from 0: slices[{i}] = {s!r}, expected "
                f"a slice starting at {expected}")
        out.append(slice(start, stop))
        expected = stop
    if len(out) != n_bands:
        raise ParameterError(f"{len(out)} slices given for a scale of {n_bands} bands")
    return tuple(out)


def _sizes(slices) -> np.ndarray:
    return np.array([s.stop - s.start for s in slices], dtype=np.int64)


def _positions_to_indexer(positions: np.ndarray):
    """Return a slice when the positions are contiguous and increasing (a view, not a copy)."""
    r = _as_range(np.asarray(positions, dtype=np.int64))
    if r is not None and r.step == 1:
        return slice(r.start, r.stop)
    return np.asarray(positions, dtype=np.int64)


class FrequencyIndex(Index):
    """An xarray index over a frequency axis, holding its :class:`FrequencyScale`.

    Build it with :func:`frequency_coords` (or :meth:`from_scale`), never by hand. See
    the module docstring for the selection rules.

    Parameters
    ----------
    scale : FrequencyScale
        The bands of the axis.
    dim : str
        The dimension name.
    slices : sequence of slice, optional
        Coefficients-by-band mode: band ``i`` occupies positions ``slices[i]``.
    name : hashable, optional
        The coordinate name (``dim`` by default).

    Raises
    ------
    ParameterError
        When ``scale`` is not a ``FrequencyScale`` or ``slices`` do not tile it.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from zounds_xr import FrequencyBand, LinearScale
    >>> from zounds_xr.frequency import frequency_coords
    >>> scale = LinearScale(FrequencyBand(0, 1000), 10)
    >>> da = xr.DataArray(np.arange(10.0), dims="frequency", coords=frequency_coords(scale))
    >>> sub = da.sel(frequency=FrequencyBand(450, 650))
    >>> sub.values
    array([4., 5., 6.])
    >>> sub.xindexes["frequency"].scale.frequency_band
    FrequencyBand(start_hz=400.0, stop_hz=700.0, center=550.0, bandwidth=300.0)
    """

    def __init__(self, scale: FrequencyScale, dim: Hashable = "frequency", *,
                 slices=None, name: Hashable | None = None):
        if not isinstance(scale, FrequencyScale):
            raise ParameterError(f"scale must be a FrequencyScale, got {scale!r}")
        self.scale = scale
        self.dim = dim
        self.name = dim if name is None else name
        self.slices = None if slices is None else normalize_slices(slices, len(scale))

    # construction ----------------------------------------------------------------------
    @classmethod
    def from_scale(cls, scale: FrequencyScale, dim: Hashable = "frequency", *,
                   slices=None) -> FrequencyIndex:
        """Return the index of an axis labelled by ``scale``.

        Parameters
        ----------
        scale : FrequencyScale
            The bands of the axis.
        dim : hashable
            The dim (and coordinate) name.
        slices : sequence of slice, optional
            Coefficients-by-band mode (see :func:`normalize_slices`).

        Returns
        -------
        FrequencyIndex

        See Also
        --------
        frequency_coords : The index wrapped in ``xarray.Coordinates``.
        """
        return cls(scale, dim, slices=slices)

    @classmethod
    def from_variables(cls, variables, *, options) -> FrequencyIndex:
        """Rebuild from a centres coordinate (``set_xindex``), e.g. after reading a store.

        The scale comes from ``options["scale"]`` (a scale or its ``to_dict()``) or from
        the coordinate's ``attrs["zounds_xr:index"]`` (the output of :meth:`to_attrs`, or
        a scale's ``to_dict()``, as a mapping or JSON). ``options["slices"]`` sets the
        coefficients-by-band mode. The coordinate's values must match the scale.

        >>> import numpy as np, xarray as xr
        >>> from zounds_xr import FrequencyBand, LinearScale, FrequencyIndex
        >>> scale = LinearScale(FrequencyBand(0, 1000), 10)
        >>> da = xr.DataArray(np.zeros(10), dims="frequency",
        ...                   coords={"frequency": scale.center_frequencies})
        >>> da = da.drop_indexes("frequency").set_xindex("frequency", FrequencyIndex, scale=scale)
        >>> type(da.xindexes["frequency"]).__name__
        'FrequencyIndex'
        """
        if len(variables) != 1:
            raise ParameterError(
                f"a FrequencyIndex is built from one coordinate, got {list(variables)}")
        (name, var), = variables.items()
        if var.ndim != 1:
            raise ParameterError(f"coordinate {name!r} must be 1-D, got dims {var.dims}")
        slices = options.get("slices")
        if "scale" in options:
            scale = options["scale"]
            if not isinstance(scale, FrequencyScale):
                scale = FrequencyScale.from_dict(scale)
        elif ATTRS_KEY in var.attrs:
            index = cls.from_attrs(var.attrs[ATTRS_KEY], dim=var.dims[0], coord_name=name)
            scale = index.scale
            slices = index.slices if slices is None else slices
        else:
            raise ParameterError(
                f"cannot build a FrequencyIndex on {name!r}: pass scale=... or store "
                f"the index definition in the coordinate's attrs[{ATTRS_KEY!r}]")
        index = cls(scale, var.dims[0], slices=slices, name=name)
        if var.shape[0] != index.size:
            raise ParameterError(
                f"coordinate {name!r} has {var.shape[0]} positions, the scale describes "
                f"{index.size}")
        if not np.allclose(np.asarray(var.values, dtype=np.float64), index._values(),
                           rtol=1e-9, atol=1e-9):
            raise ParameterError(f"the values of {name!r} are not the centres of {scale!r}")
        return index

    def to_attrs(self) -> dict:
        """JSON-safe definition of the index (what a store keeps instead of the labels).

        Returns
        -------
        dict
            ``{"type": "FrequencyIndex", "version": 1, "scale": scale.to_dict()}``, plus
            ``"slices": [[start, stop], ...]`` in coefficients-by-band mode.

        See Also
        --------
        from_attrs : The inverse.
        """
        out = {"type": "FrequencyIndex", "version": 1, "scale": self.scale.to_dict()}
        if self.slices is not None:
            out["slices"] = [[s.start, s.stop] for s in self.slices]
        return out

    @classmethod
    def from_attrs(cls, attrs, *, dim: Hashable = "frequency",
                   coord_name: Hashable | None = None) -> FrequencyIndex:
        """Inverse of :meth:`to_attrs`.

        Parameters
        ----------
        attrs : mapping or str
            :meth:`to_attrs` output, or its JSON; a bare scale definition
            (``scale.to_dict()``) is accepted too.
        dim : hashable
            The dim name.
        coord_name : hashable, optional
            The coordinate name (``dim`` by default).

        Returns
        -------
        FrequencyIndex

        Raises
        ------
        ParameterError
            When ``attrs`` is not such a definition.
        """
        if isinstance(attrs, (str, bytes)):
            attrs = json.loads(attrs)
        if not isinstance(attrs, Mapping):
            raise ParameterError(f"not a FrequencyIndex definition: {attrs!r}")
        if attrs.get("type") != "FrequencyIndex":  # a scale's to_dict()
            return cls(FrequencyScale.from_dict(attrs), dim, name=coord_name)
        if "scale" not in attrs:
            raise ParameterError(f"FrequencyIndex definition without a scale: {dict(attrs)!r}")
        return cls(FrequencyScale.from_dict(attrs["scale"]), dim,
                   slices=attrs.get("slices"), name=coord_name)

    # the axis ----------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """The number of positions of the axis."""
        if self.slices is None:
            return len(self.scale)
        return self.slices[-1].stop if self.slices else 0

    def _band_of_position(self) -> np.ndarray:
        """Band number of every position (coefficients-by-band mode)."""
        return np.repeat(np.arange(len(self.scale)), _sizes(self.slices))

    def _values(self) -> np.ndarray:
        centers = np.asarray(self.scale.center_frequencies)
        if self.slices is None:
            return centers
        return centers[self._band_of_position()]

    def _band_positions(self, bands: np.ndarray) -> np.ndarray:
        """Axis positions of the given bands (the bands themselves in normal mode)."""
        bands = np.asarray(bands, dtype=np.int64)
        if self.slices is None:
            return bands
        if not len(bands):
            return bands
        return np.concatenate([np.arange(self.slices[b].start, self.slices[b].stop)
                               for b in bands.tolist()])

    def create_variables(self, variables=None):
        """Return the band-centre coordinate (Hz), with ``units``/``long_name``.

        Return the band-centre coordinate (Hz), with ``units``/``long_name``; a stored
        definition in its attrs is dropped (it would go stale after a selection).
        """
        attrs = {}
        if variables is not None and self.name in variables:
            attrs = dict(variables[self.name].attrs)
        # a definition copied from a store would go stale after a selection
        attrs.pop(ATTRS_KEY, None)
        attrs.update(_COORD_ATTRS)
        var = xr.Variable(self.dim, self._values(), attrs=attrs)
        return {self.name: var}

    def to_pandas_index(self) -> pd.Index:
        """Return the band centres (Hz) as a ``pandas.Index``."""
        return pd.Index(self._values(), name=self.name)

    # selection ----------------------------------------------------------------------------
    def sel(self, labels, method=None, tolerance=None) -> IndexSelResult:
        """Positions of the labels (see the module docstring for the rules)."""
        label = labels[self.name]
        if isinstance(label, (xr.DataArray, xr.Variable)):
            if label.ndim == 0:
                return self.sel({self.name: label.values[()]}, method, tolerance)
            positions = self._positions_of_values(np.asarray(label.values), method, tolerance)
            indexer: xr.Variable | xr.DataArray
            if isinstance(label, xr.Variable):
                indexer = xr.Variable(label.dims, positions)
            else:
                indexer = xr.DataArray(positions, coords=label._coords, dims=label.dims)
            return IndexSelResult({self.dim: indexer})
        if isinstance(label, FrequencyBand):
            return IndexSelResult({self.dim: self._sel_band(label)})
        if isinstance(label, slice):
            return IndexSelResult({self.dim: self._sel_slice(label)})
        if isinstance(label, (numbers.Real, np.number)) and not isinstance(label, bool):
            return IndexSelResult({self.dim: self._sel_scalar(float(label), method, tolerance)})
        try:
            values = np.asarray(label, dtype=np.float64)
        except (TypeError, ValueError):
            raise ParameterError(
                f"cannot select {self.name!r} with {label!r}: use a FrequencyBand, a slice "
                "of Hz, or numbers of Hz") from None
        if values.ndim == 0:
            return IndexSelResult({self.dim: self._sel_scalar(float(values), method, tolerance)})
        return IndexSelResult({self.dim: self._positions_of_values(values, method, tolerance)})

    def _sel_band(self, band: FrequencyBand):
        scale = self.scale
        if self.slices is None and scale.always_even:
            return scale.get_slice(band)  # zounds: grow odd selections by one band
        return _positions_to_indexer(self._band_positions(scale.overlapping(band)))

    def _sel_slice(self, label: slice):
        lo = -np.inf if label.start is None else _label_hz(label.start, self.name)
        hi = np.inf if label.stop is None else _label_hz(label.stop, self.name)
        centers = np.asarray(self.scale.center_frequencies)
        bands = np.flatnonzero((centers >= lo) & (centers <= hi))
        indexer = _positions_to_indexer(self._band_positions(bands))
        if label.step is None:
            return indexer
        if self.slices is not None:
            raise ParameterError("a stride cannot select whole bands of coefficients")
        if isinstance(label.step, bool) or not isinstance(label.step, numbers.Integral):
            raise ParameterError(f"slice step must be an integer, got {label.step!r}")
        positions = np.arange(self.size)[indexer][::int(label.step)]
        return _positions_to_indexer(positions) if int(label.step) > 0 else positions

    def _band_of(self, hz: float, method, tolerance) -> int:
        centers = np.asarray(self.scale.center_frequencies)
        if not len(centers):
            raise KeyError(f"{hz!r} Hz: the {self.name!r} axis is empty")
        if method == "nearest":
            distance = np.abs(centers - hz)
            b = int(np.argmin(distance))
            if tolerance is not None and distance[b] > float(tolerance):
                raise KeyError(f"no band of {self.name!r} centred within {tolerance} of {hz} Hz")
            return b
        if method is not None:
            raise ParameterError(f"method must be None or 'nearest', got {method!r}")
        starts, stops = self.scale.band_starts, self.scale.band_stops
        containing = np.flatnonzero((starts <= hz) & (hz < stops))
        if not len(containing):
            raise KeyError(f"{hz!r} Hz is in no band of {self.name!r} ({self.scale._describe()})")
        return int(containing[np.argmin(np.abs(centers[containing] - hz))])

    def _sel_scalar(self, hz: float, method, tolerance):
        b = self._band_of(hz, method, tolerance)
        if self.slices is None:
            return b  # a scalar position: the dim is dropped, as for pandas labels
        return self.slices[b]  # all of the band's coefficients

    def _positions_of_values(self, values: np.ndarray, method, tolerance) -> np.ndarray:
        try:
            values = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise ParameterError(f"cannot select {self.name!r} with {values!r}") from None
        bands = np.array([self._band_of(float(v), method, tolerance) for v in values.ravel()],
                         dtype=np.int64)
        if self.slices is None:
            return bands.reshape(values.shape)
        if values.ndim != 1:
            raise ParameterError("coefficients-by-band axes take 1-D label arrays")
        return self._band_positions(bands)

    def isel(self, indexers) -> FrequencyIndex | None:
        """Return the sub-scale of the selected bands, if any.

        Return the sub-scale of the selected bands (whole bands only in coefficients-by-band
        mode, else ``None``); ``None`` for a scalar or vectorised selection.
        """
        idx = indexers[self.dim]
        if isinstance(idx, xr.Variable):
            if idx.dims != (self.dim,):
                return None  # vectorised indexing onto new dims: no band axis any more
            idx = np.asarray(idx.values)
        # np.ndim(slice(...)) == 0: test for slices before scalars
        if isinstance(idx, slice):
            positions = np.arange(self.size)[idx]
        elif np.ndim(idx) == 0:
            return None  # a single position: the dim is dropped
        else:
            positions = np.asarray(idx)
            if positions.dtype == bool:
                positions = np.flatnonzero(positions)
            positions = np.where(positions < 0, positions + self.size, positions)
        if self.slices is None:
            return self.with_scale(self.scale[positions if not isinstance(idx, slice) else idx])
        return self._isel_coefficients(np.asarray(positions, dtype=np.int64))

    def _isel_coefficients(self, positions: np.ndarray) -> FrequencyIndex | None:
        # keep the index only when the positions are whole bands, each in order
        assert self.slices is not None
        band_of = self._band_of_position()
        bands: list[int] = []
        slices: list[slice] = []
        k = 0
        while k < len(positions):
            b = int(band_of[positions[k]])
            s = self.slices[b]
            n = s.stop - s.start
            if not np.array_equal(positions[k:k + n], np.arange(s.start, s.stop)):
                return None
            bands.append(b)
            start = slices[-1].stop if slices else 0
            slices.append(slice(start, start + n))
            k += n
        # bands without coefficients are invisible to positions: keep those in between
        return type(self)(self.scale[np.asarray(bands, dtype=np.int64)], self.dim,
                          slices=slices, name=self.name)

    def with_scale(self, scale: FrequencyScale) -> FrequencyIndex:
        """Return an index of the same dim and coordinate name, one position per band of ``scale``.

        Parameters
        ----------
        scale : FrequencyScale
            The bands of the new axis.

        Returns
        -------
        FrequencyIndex
        """
        return type(self)(scale, self.dim, name=self.name)

    # alignment ----------------------------------------------------------------------------
    def equals(self, other, *, exclude=None) -> bool:
        # compare parameters, never coordinate values
        """Return the same dim, scale and slices (parameters, never labels)."""
        return (isinstance(other, FrequencyIndex) and self.dim == other.dim
                and self.scale == other.scale and self.slices == other.slices)

    def _check_alignable(self, other) -> None:
        if self.slices is not None or other.slices is not None:
            raise ParameterError(
                "cannot align axes of coefficients grouped by band with different scales: "
                f"{self.scale!r} vs {other.scale!r}")

    def join(self, other, how="inner") -> FrequencyIndex:
        """Join two frequency axes by their bands' edges.

        Bands present in both (``inner``) or either (``outer``) axis, matched by their
        edges; coefficients-by-band axes only join when equal.
        """
        if self.equals(other):
            return self
        self._check_alignable(other)
        if how == "left":
            return self
        if how == "right":
            return other._replace_name(self.name, self.dim)
        in_self = _match_bands(self.scale, other.scale)  # other's bands in self
        if how == "inner":
            keep = np.sort(in_self[in_self >= 0])
            return self.with_scale(self.scale[keep])
        if how == "outer":
            extra = np.flatnonzero(in_self < 0)
            if not len(extra):
                return self
            starts = np.concatenate([self.scale.band_starts, other.scale.band_starts[extra]])
            stops = np.concatenate([self.scale.band_stops, other.scale.band_stops[extra]])
            centers = np.concatenate([self.scale.center_frequencies,
                                      other.scale.center_frequencies[extra]])
            order = np.lexsort((stops, starts))
            return self.with_scale(_merge_scale(starts[order], stops[order], centers[order]))
        raise ParameterError(f"cannot join frequency axes with how={how!r}")

    def _replace_name(self, name, dim) -> FrequencyIndex:
        return type(self)(self.scale, dim, slices=self.slices, name=name)

    def reindex_like(self, other, method=None, tolerance=None):
        """Positions in this axis of ``other``'s bands (-1 where absent)."""
        if self.equals(other):
            return {self.dim: np.arange(self.size)}
        self._check_alignable(other)
        return {self.dim: _match_bands(self.scale, other.scale)}

    @classmethod
    def concat(cls, indexes, dim, positions=None) -> FrequencyIndex:
        """Concatenate pieces of frequency axes into one axis.

        One axis from pieces: a LinearScale when they are adjacent pieces of one, else
        an ExplicitScale.
        """
        indexes = list(indexes)
        if not indexes:
            raise ParameterError("nothing to concatenate")
        first = indexes[0]
        explicit = [ix.slices is not None for ix in indexes]
        if any(explicit) and not all(explicit):
            raise ParameterError(
                "cannot concatenate a coefficients-by-band axis with a one-band-per-position "
                "axis")
        starts = np.concatenate([ix.scale.band_starts for ix in indexes])
        stops = np.concatenate([ix.scale.band_stops for ix in indexes])
        centers = np.concatenate([ix.scale.center_frequencies for ix in indexes])
        if all(explicit):
            if positions is not None:
                raise ParameterError("cannot reorder an axis of coefficients grouped by band")
            sizes = np.concatenate([_sizes(ix.slices) for ix in indexes])
            edges = np.concatenate([[0], np.cumsum(sizes)])
            slices = [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
            scale = (_concat_linear([ix.scale for ix in indexes])
                     or _merge_scale(starts, stops, centers))
            return cls(scale, dim, slices=slices, name=first.name)
        if positions is not None:
            order = np.argsort(np.concatenate([np.asarray(p) for p in positions]))
            starts, stops, centers = starts[order], stops[order], centers[order]
            return cls(_merge_scale(starts, stops, centers), dim, name=first.name)
        scales = [ix.scale for ix in indexes]
        return cls(_concat_linear(scales) or _merge_scale(starts, stops, centers), dim,
                   name=first.name)

    def roll(self, shifts):
        """No index: a rolled axis no longer follows its scale."""
        return None  # a rolled axis no longer follows its scale

    def rename(self, name_dict, dims_dict):
        """Return the same index under a new dim or coordinate name."""
        name = name_dict.get(self.name, self.name)
        dim = dims_dict.get(self.dim, self.dim)
        if name == self.name and dim == self.dim:
            return self
        return self._replace_name(name, dim)

    def _copy(self, deep=True, memo=None):
        # the scale is immutable: share it
        return type(self)(self.scale, self.dim, slices=self.slices, name=self.name)

    # display -----------------------------------------------------------------------------
    def _repr_inline_(self, max_width: int) -> str:
        text = self.scale._describe()
        if self.slices is not None:
            text += f", {self.size} coefficients"
        if len(text) > max_width:
            text = text[:max(max_width - 3, 0)] + "..."
        return text

    def __repr__(self) -> str:
        extra = "" if self.slices is None else f", {self.size} coefficients"
        return f"FrequencyIndex({self.scale!r}, dim={self.dim!r}{extra})"


def _label_hz(value, name) -> float:
    value = getattr(value, "hz", value)
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.number)):
        raise ParameterError(f"slice bounds of {name!r} must be numbers of Hz, got {value!r}")
    return float(value)


def _tolerance(*arrays) -> float:
    scale = max([1.0] + [float(np.max(np.abs(a))) for a in arrays if len(a)])
    return 1e-9 * scale


def _match_bands(scale: FrequencyScale, other: FrequencyScale) -> np.ndarray:
    """For each band of ``other``, its position in ``scale`` (-1 when absent).

    Bands match when both edges agree to 1e-9 of the largest frequency: slices of a
    scale recompute their edges and may differ from the original in the last bit.
    """
    a0, a1 = scale.band_starts, scale.band_stops
    b0, b1 = other.band_starts, other.band_stops
    tol = _tolerance(a0, a1, b0, b1)
    order = np.argsort(a0, kind="stable")
    sorted_starts = a0[order]
    lo = np.searchsorted(sorted_starts, b0 - tol, side="left")
    hi = np.searchsorted(sorted_starts, b0 + tol, side="right")
    out = np.full(len(b0), -1, dtype=np.int64)
    for k in range(len(b0)):
        for j in order[lo[k]:hi[k]]:
            if abs(a1[j] - b1[k]) <= tol:
                out[k] = j
                break
    return out


def _merge_scale(starts: np.ndarray, stops: np.ndarray, centers: np.ndarray) -> FrequencyScale:
    """Return the simplest scale that labels these bands.

    Return a LinearScale when the bands are contiguous, equally wide and labelled by their
    midpoints, else an ExplicitScale (keeping the centres).
    """
    if len(starts) and _is_linear(starts, stops) and np.allclose(
            centers, starts + (stops - starts) / 2, rtol=0, atol=_tolerance(starts, stops)):
        width = float(stops[0] - starts[0])
        return LinearScale._from_step(float(starts[0]), width, len(starts), float(stops[-1]))
    return ExplicitScale(list(zip(starts.tolist(), stops.tolist(), strict=True)),
                         centers=centers.tolist())


def _is_linear(starts, stops) -> bool:
    tol = _tolerance(starts, stops)
    widths = stops - starts
    return bool(np.all(np.abs(widths - widths[0]) <= tol)
                and np.all(np.abs(starts[1:] - stops[:-1]) <= tol))


def _concat_linear(scales) -> LinearScale | None:
    """Concatenate adjacent pieces of one linear scale, if they are.

    Adjacent pieces of one linear scale (same step, each starting where the previous
    stopped) concatenate to a LinearScale that keeps the first piece's exact step.
    """
    if not all(isinstance(s, LinearScale) for s in scales):
        return None
    first = scales[0]
    tol = _tolerance(*[np.array([s.start_hz, s.stop_hz]) for s in scales])
    for prev, nxt in zip(scales[:-1], scales[1:], strict=True):
        if abs(nxt.bandwidth - first.bandwidth) > tol or abs(nxt.start_hz - prev.stop_hz) > tol:
            return None
    return LinearScale._from_step(first.start_hz, first.bandwidth, sum(len(s) for s in scales),
                                  scales[-1].stop_hz, first.always_even)


def frequency_coords(scale: FrequencyScale, dim: Hashable = "frequency", *,
                     slices=None) -> xr.Coordinates:
    """Return the coordinates (centres in Hz, with a :class:`FrequencyIndex`) of a frequency axis.

    Parameters
    ----------
    scale : FrequencyScale
        The bands of the axis.
    dim : str
        The dimension (and coordinate) name.
    slices : sequence of slice, optional
        Coefficients-by-band mode (see :class:`FrequencyIndex`).

    Returns
    -------
    xarray.Coordinates
        One coordinate ``dim`` of band centres (Hz; ``units``/``long_name`` attrs) with
        its :class:`FrequencyIndex`.

    See Also
    --------
    FrequencyIndex : The index and its selection rules.
    zounds_xr.time_coords : The same for a time axis.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from zounds_xr import FrequencyBand, LinearScale
    >>> from zounds_xr.frequency import frequency_coords
    >>> da = xr.DataArray(np.zeros((2, 5)), dims=("time", "frequency"),
    ...                   coords=frequency_coords(LinearScale(FrequencyBand(0, 1000), 5)))
    >>> da.frequency.values
    array([100., 300., 500., 700., 900.])
    """
    return xr.Coordinates.from_xindex(FrequencyIndex(scale, dim, slices=slices))
