"""Labels of stored features, rebuilt from their definitions once and kept.

A part's array stores the labels its documents share (the frequency index, small
coordinates) in its group's attrs, and each document's time index in its catalog row
(``"<feature>.index"``). Parts never change and a store's documents share a few time
definitions (one per rate, start and length), so both are parsed once and kept
(:class:`Labels` by the reader, per array; time definitions in a bounded cache here):
reading a document rebuilds nothing.
"""
from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Hashable, Mapping
from fractions import Fraction
from typing import Any

import xarray as xr

from ..dimensions.lookup import INDEX_TYPES
from ..core.errors import StoreError, ZoundsError
from ..timeseries.index import TimeIndex

__all__ = ["Labels", "decode_index", "time_index"]


# ---------------------------------------------------------------------- time
@functools.lru_cache(maxsize=4096)
def _time_labels(definition: str, size: int) -> tuple[TimeIndex, dict, tuple]:
    """Parse a catalog's ``"<feature>.index"`` text once: its index, coordinate, rate.

    Returns the :class:`TimeIndex`, its lazy coordinate and its rate. A store's
    documents share a few definitions (one per rate, start and length), so this
    bounded cache hits.
    """
    try:
        attrs = json.loads(definition)
        if int(attrs.get("size", size)) != size:
            raise ValueError(f"it has {attrs.get('size')} frames, the row {size}")
        index = TimeIndex.from_attrs(attrs, size=size)
    except (ValueError, TypeError, KeyError, AttributeError, ZoundsError) as exc:
        raise StoreError(f"the time-index definition {definition!r} of the catalog is "
                         f"damaged: {type(exc).__name__}: {exc}") from exc
    return index, index.create_variables(), (index.frequency, index.duration)


def time_index(definition: str, size: int) -> TimeIndex:
    """Return the time index a catalog row defines, parsed once.

    Parameters
    ----------
    definition : str
        The catalog's ``"<feature>.index"`` text (``TimeIndex.to_attrs()`` as JSON).
    size : int
        The row's frames.

    Returns
    -------
    TimeIndex

    Raises
    ------
    StoreError
        When the definition is damaged or says another size.
    """
    return _time_labels(definition, size)[0]


# ---------------------------------------------------------------------- other labels
def decode_index(dim: Hashable, definition: Mapping, size: int | None = None) -> xr.Index:
    """Rebuild an index from its stored definition.

    Parameters
    ----------
    dim : hashable
        Its dim.
    definition : mapping
        ``index.to_attrs()`` plus ``coord`` (the coordinate's name) and, for index
        types defined outside zounds_xr, ``module``.
    size : int, optional
        Frames, for a :class:`TimeIndex`.

    Returns
    -------
    xarray.Index

    Raises
    ------
    StoreError
        When the index type is unknown.
    """
    kind = str(definition.get("type"))
    module = definition.get("module")  # recorded only for index types not in INDEX_TYPES
    cls = getattr(importlib.import_module(module), kind, None) if module else \
        INDEX_TYPES.get(kind)
    if cls is None:
        raise StoreError(f"unknown index type {kind!r} in the store")
    kwargs: dict[str, Any] = {"dim": dim, "coord_name": definition.get("coord", dim)}
    if cls is TimeIndex:
        kwargs["size"] = size
    attrs = {k: v for k, v in definition.items() if k not in ("coord", "module")}
    return cls.from_attrs(attrs, **kwargs)


class Labels:
    """Hold what the documents of one stored array share, built once per array.

    That is the dims, the coordinates and indexes of every dim but ``time``, and the
    time rate.

    Parameters
    ----------
    dims : tuple
        The array's dims (``time`` first).
    defs : mapping
        The group's index definitions by dim (``zounds_xr:index``); ``time`` gives the
        rate every document's time index must have.
    coords : mapping
        Other small coordinates (name -> ``xarray.Variable``).
    """

    def __init__(self, dims: tuple[Hashable, ...], defs: Mapping, coords: Mapping):
        self.dims = tuple(dims)
        self.variables: dict[Hashable, xr.Variable] = {}
        self.indexes: dict[Hashable, xr.Index] = {}
        for dim, definition in defs.items():
            if dim == "time":
                continue
            index = decode_index(dim, definition)
            variables = index.create_variables()
            self.indexes.update(dict.fromkeys(variables, index))
            self.variables.update(variables)
        for name, var in coords.items():
            self.variables.setdefault(name, var)
        rate = defs.get("time")
        self.rate = None if rate is None else (Fraction(rate["frequency"]),
                                                Fraction(rate["duration"]))
        # what must agree for documents to be stacked (Sound.frames)
        self.key = json.dumps({str(k): v for k, v in defs.items() if k != "time"},
                              sort_keys=True, default=str)

    def label(self, data, name: Hashable, definition: str | None = None,
              dims: tuple[Hashable, ...] | None = None) -> xr.DataArray:
        """Return the document's rows as a DataArray with these labels.

        Parameters
        ----------
        data : array-like
            The rows (numpy or dask).
        name : hashable
            The DataArray's name.
        definition : str, optional
            A catalog's ``"<feature>.index"`` text: the index along ``time``.
        dims : tuple, optional
            Instead of the array's dims (``("frame", ...)`` for stacked documents: no
            time index).

        Returns
        -------
        xarray.DataArray
            With its own copies of the shared coordinate variables.

        Raises
        ------
        StoreError
            When the definition is damaged, or its size or rate is not the data's.
        """
        variables, indexes = self.variables, self.indexes
        if definition is not None:
            index, time, rate = _time_labels(definition, data.shape[0])
            if self.rate is not None and rate != self.rate:
                raise StoreError(f"the time-index definition {definition!r} of the catalog "
                                 f"does not have the rate of its stored array (frames of "
                                 f"{self.rate[1]} s every {self.rate[0]} s)")
            variables, indexes = {**time, **variables}, {"time": index, **indexes}
        # the cached variables are shared by every read: each array gets its own copies
        # (an edit of one's attrs stays there); the indexes are immutable
        coords = {k: v.copy(deep=False) for k, v in variables.items()}
        return xr.DataArray(xr.Variable(dims or self.dims, data), coords=coords, name=name,
                            indexes=indexes, fastpath=True)
