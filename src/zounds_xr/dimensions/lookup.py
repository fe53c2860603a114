"""Dimension objects: zounds' way of describing what an array axis means.

A :class:`Dimension` knows how to build the xarray coordinates (and custom index) of an
axis of a given size. This module is the one place that knows which index type stands
for which dimension (:data:`_DIMENSION_OF`): :func:`dimensions_of` gives the dimension
objects of a labelled DataArray back (``da.zx.dimensions``, as
``ArrayWithUnits.dimensions`` did), and :func:`select` does zounds-style selection by
``TimeSlice`` and ``FrequencyBand`` (``da.zx[...]``) and :func:`select_labels` is
xarray's ``.sel`` that names a missing axis (``da.zx.sel(...)``). The indexes themselves know
nothing of the dimension objects.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

import xarray as xr

from ..core.dimension import Dimension, IdentityDimension
from ..core.validation import axis_index
from ..core.errors import ParameterError, SelectionError
from ..frequency.band import FrequencyBand
from ..frequency.dimension import ExplicitFrequencyDimension, FrequencyDimension
from ..frequency.index import FrequencyIndex
from ..timeseries.dimension import TimeDimension
from ..timeseries.index import TimeIndex
from ..timeseries.timeslice import TimeSlice

__all__ = ["Dimension", "IdentityDimension", "dimension_of", "dimensions_of",
           "dimensions_by_dim", "select", "select_labels", "axis_index", "INDEX_TYPES",
           "index_from_attrs"]


def _time_dimension(index: TimeIndex) -> Dimension:
    return TimeDimension(index.frequency, index.duration, size=index.size, start=index.start)


def _frequency_dimension(index: FrequencyIndex) -> Dimension:
    if index.slices is None:
        return FrequencyDimension(index.scale)
    return ExplicitFrequencyDimension(index.scale, index.slices)


#: index type -> the dimension object describing an axis it labels
_DIMENSION_OF: dict[type, Callable[[Any], Dimension]] = {
    TimeIndex: _time_dimension,
    FrequencyIndex: _frequency_dimension,
}

#: the type name an index writes in ``to_attrs()["type"]`` -> its class (for stores)
INDEX_TYPES: dict[str, type[TimeIndex] | type[FrequencyIndex]] = {
    "TimeIndex": TimeIndex,
    "FrequencyIndex": FrequencyIndex,
}

#: zounds selector type -> the index type of the axis it selects on
_AXIS_OF: dict[type, type] = {
    TimeSlice: TimeIndex,
    FrequencyBand: FrequencyIndex,
}


def index_from_attrs(attrs: Mapping[str, Any], *, dim: Hashable,
                     coord_name: Hashable | None = None,
                     size: int | None = None) -> TimeIndex | FrequencyIndex:
    """Rebuild a zounds index from its ``to_attrs()`` definition, whatever its type.

    Parameters
    ----------
    attrs : mapping
        ``index.to_attrs()`` of a :class:`~zounds_xr.TimeIndex` or a
        :class:`~zounds_xr.FrequencyIndex` (``attrs["type"]`` names which).
    dim : hashable
        The dim name.
    coord_name : hashable, optional
        The coordinate name (``dim`` by default).
    size : int >= 0, optional
        The number of frames of a time axis (overrides the stored size; a frequency
        axis' size comes from its scale).

    Returns
    -------
    TimeIndex or FrequencyIndex

    Raises
    ------
    ParameterError
        For a definition of no known index type.

    See Also
    --------
    zounds_xr.TimeIndex.from_attrs, zounds_xr.FrequencyIndex.from_attrs

    Examples
    --------
    >>> import zounds_xr as zx
    >>> index = zx.TimeIndex.from_params(10, zx.SR8000())
    >>> index_from_attrs(index.to_attrs(), dim="time").equals(index)
    True
    """
    kind = INDEX_TYPES.get(str(attrs.get("type")))
    if kind is TimeIndex:
        return TimeIndex.from_attrs(attrs, dim=dim, size=size, coord_name=coord_name)
    if kind is FrequencyIndex:
        return FrequencyIndex.from_attrs(attrs, dim=dim, coord_name=coord_name)
    raise ParameterError(f"unknown index type {attrs.get('type')!r}; known: "
                         f"{sorted(INDEX_TYPES)}")


def dimension_of(index: xr.Index | None) -> Dimension:
    """Return the dimension object of an axis labelled by ``index``.

    Parameters
    ----------
    index : xarray.Index or None
        The axis' index (``obj.xindexes.get(dim)``).

    Returns
    -------
    Dimension
        ``TimeDimension`` for a ``TimeIndex``; ``FrequencyDimension`` or
        ``ExplicitFrequencyDimension`` for a ``FrequencyIndex``; an
        :class:`IdentityDimension` for any other index or none.

    See Also
    --------
    dimensions_of : The dimension of every axis of a DataArray.
    """
    for kind, make in _DIMENSION_OF.items():
        if isinstance(index, kind):
            return make(index)
    return IdentityDimension()


def dimensions_by_dim(obj: xr.DataArray | xr.Dataset) -> dict[Hashable, Dimension]:
    """Return the dimension object of each dim of ``obj``, by dim name (``ds.zx.dimensions``).

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset

    Returns
    -------
    dict
        dim name -> :class:`Dimension`, in ``obj.dims`` order.

    Raises
    ------
    ParameterError
        When ``obj`` is not an xarray object.

    See Also
    --------
    dimensions_of : The same, as a tuple, for a DataArray.
    """
    if not isinstance(obj, (xr.DataArray, xr.Dataset)):
        raise ParameterError(f"dimensions are defined for xarray objects, not "
                             f"{type(obj).__name__}")
    return {dim: dimension_of(obj.xindexes.get(dim)) for dim in obj.dims}


def dimensions_of(obj: xr.DataArray) -> tuple[Dimension, ...]:
    """Return the dimension object of every axis of ``obj``, in dim order (``da.zx.dimensions``).

    Parameters
    ----------
    obj : xarray.DataArray

    Returns
    -------
    tuple of Dimension
        One per dim (see :func:`dimension_of`).

    Raises
    ------
    ParameterError
        When ``obj`` is not a DataArray.

    See Also
    --------
    dimension_of : The dimension of one index.
    zounds_xr.ArrayWithUnits : The inverse: a DataArray from dimension objects.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> da = zx.ArrayWithUnits(np.zeros((3, 2)), [zx.TimeDimension(zx.Seconds(1)),
    ...                                           zx.IdentityDimension()])
    >>> [type(d).__name__ for d in dimensions_of(da)]
    ['TimeDimension', 'IdentityDimension']
    """
    if not isinstance(obj, xr.DataArray):
        raise ParameterError(f"dimensions are defined for DataArrays, not {type(obj).__name__}")
    return tuple(dimensions_by_dim(obj).values())


def _dim_with(obj: xr.DataArray | xr.Dataset, kind: type, position: int) -> Hashable:
    """Return the dim indexed by ``kind``: the one at ``position`` if it has one, else the first."""
    dims = list(obj.dims)
    if position < len(dims) and isinstance(obj.xindexes.get(dims[position]), kind):
        return dims[position]
    for dim in dims:
        if isinstance(obj.xindexes.get(dim), kind):
            return dim
    raise ParameterError(f"no {kind.__name__} to select on; dims are {tuple(dims)}")


def select(obj: xr.DataArray | xr.Dataset, key: Any) -> xr.DataArray | xr.Dataset:
    """zounds-style selection: ``da.zx[TimeSlice(...), FrequencyBand(...)]``.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
    key : selector or tuple of selectors
        Each ``TimeSlice`` applies to a time axis and each ``FrequencyBand`` to a
        frequency axis (the one at that position when it has the right index, else the
        first such axis); ints and slices select positions of the axis at their
        position; ``...`` and ``slice(None)`` skip an axis.

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        ``obj`` selected by labels first, then by positions.

    Raises
    ------
    ParameterError
        When no axis carries the index a selector needs, or there are more positional
        keys than dims.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> da = zx.ArrayWithUnits(np.zeros((10, 4)), [zx.TimeDimension(zx.Seconds(1)),
    ...                                            zx.IdentityDimension()])
    >>> select(da, (zx.TimeSlice(zx.Seconds(3)), slice(0, 2))).shape
    (3, 2)
    """
    keys = key if isinstance(key, tuple) else (key,)
    by_label: dict[Hashable, Any] = {}
    by_position: dict[Hashable, Any] = {}
    dims = list(obj.dims)
    for i, k in enumerate(keys):
        kind = next((index for selector, index in _AXIS_OF.items()
                     if isinstance(k, selector)), None)
        if kind is not None:
            by_label[_dim_with(obj, kind, i)] = k
        elif k is Ellipsis or (isinstance(k, slice) and k == slice(None)):
            continue
        elif i < len(dims):
            by_position[dims[i]] = k
        else:
            raise ParameterError(f"too many indices for dims {tuple(dims)}")
    out = obj.sel(by_label) if by_label else obj
    return out.isel(by_position) if by_position else out


def select_labels(obj: xr.DataArray | xr.Dataset, indexers: Mapping[Any, Any] | None = None,
                  method: str | None = None,
                  **indexers_kwargs: Any) -> xr.DataArray | xr.Dataset:
    """Xarray's ``.sel`` that names a missing axis: ``da.zx.sel(frequency=FrequencyBand(...))``.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        The labelled object.
    indexers : mapping, optional
        Labels by dim or coordinate name, as ``xarray.DataArray.sel`` takes them.
    method : str, optional
        As ``xarray.DataArray.sel`` (``"nearest"``...).
    **indexers_kwargs
        Labels given as keywords.

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        ``obj.sel(indexers, method=method)``.

    Raises
    ------
    SelectionError
        When a name is neither a dim nor a coordinate of ``obj`` (e.g. ``frequency`` on
        audio), naming it and the dims there are, before anything is selected; or a
        label selects nothing on its axis (the indexes raise it). A ``KeyError`` too,
        as xarray's own error for a missing name.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> audio = zx.AudioSamples(np.zeros(8000), zx.SR8000())
    >>> try:
    ...     audio.zx.sel(frequency=zx.FrequencyBand(100, 200))
    ... except zx.SelectionError as error:
    ...     print(str(error).split(";")[0][-65:])
    DataArray has no 'frequency' axis or coordinate (dims: ('time',))
    """
    if indexers is not None and indexers_kwargs:
        raise ParameterError("give the labels either as a mapping or as keywords, not both")
    labels = dict(indexers if indexers is not None else indexers_kwargs)
    for name, label in labels.items():
        if name not in obj.dims and name not in obj.coords:
            raise SelectionError(
                f"cannot select {name}={label!r}: this {type(obj).__name__} has no {name!r} "
                f"axis or coordinate (dims: {tuple(obj.dims)}); a "
                f"{'spectrum' if name == 'frequency' else 'labelled array'} from "
                f"zx.stft or zx.ArrayWithUnits has one")
    return obj.sel(labels, method=method)
