"""Labels of stored features, rebuilt from their definitions once and kept.

A part's array stores the labels its documents share (the frequency index, small
coordinates) in its group's attrs, and each document's time index in its catalog row
(``"<feature>.index"``). Parts never change and a store's documents share a few time
definitions (one per rate and start), so both are parsed once and kept in bounded
caches (:class:`LRU`): reading a document rebuilds nothing.
"""
from __future__ import annotations

import importlib
import json
import threading
from fractions import Fraction
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import xarray as xr

from ..dimensions import INDEX_TYPES
from ..errors import StoreError, ZoundsError
from ..timeseries.index import TimeIndex

__all__ = ["LRU", "Labels", "decode_index", "time_index"]


class LRU:
    """A bounded, thread-safe mapping that forgets the least recently used entries."""

    def __init__(self, size: int):
        self.size = size
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, default=None):
        with self._lock:
            try:
                self._data.move_to_end(key)
            except KeyError:
                return default
            return self._data[key]

    def put(self, key, value):
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def drop(self, keep: Callable[[Any], bool]) -> None:
        """Forget the entries whose key ``keep`` refuses."""
        with self._lock:
            for key in [k for k in self._data if not keep(k)]:
                del self._data[key]

    def __len__(self) -> int:
        return len(self._data)


# ---------------------------------------------------------------------- time
#: parsed time-index definitions, by (catalog text, frames): a store's documents share
#: a few definitions (one per rate and start), so this stays small and hits
_TIME = LRU(4096)


def _time_labels(definition: str, size: int) -> tuple[TimeIndex, dict]:
    """The :class:`TimeIndex` of a catalog's ``"<feature>.index"`` text and its lazy
    coordinate, parsed once."""
    key = (definition, size)
    found = _TIME.get(key)
    if found is None:
        try:
            attrs = json.loads(definition)
            if int(attrs.get("size", size)) != size:
                raise ValueError(f"it has {attrs.get('size')} frames, the row {size}")
            index = TimeIndex.from_attrs(attrs, size=size)
        except (ValueError, TypeError, KeyError, AttributeError, ZoundsError) as exc:
            raise StoreError(f"the time-index definition {definition!r} of the catalog is "
                             f"damaged: {type(exc).__name__}: {exc}") from exc
        found = _TIME.put(key, (index, index.create_variables()))
    return found


def time_index(definition: str, size: int) -> TimeIndex:
    """The :class:`TimeIndex` of ``size`` frames that a catalog's
    ``"<feature>.index"`` text defines (parsed once; :class:`StoreError` when it is
    damaged or says another size)."""
    return _time_labels(definition, size)[0]


# ---------------------------------------------------------------------- other labels
def decode_index(dim: Hashable, definition: Mapping, size: int | None = None) -> xr.Index:
    """An index rebuilt from its stored definition (``to_attrs()`` plus ``coord`` and,
    for index types defined outside zounds_xr, ``module``)."""
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
    """What the documents of one stored array share, built once per array: dims, the
    coordinates and indexes of every dim but ``time``, and the time rate.

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

    def coords(self, definition: str | None = None, size: int = 0) -> xr.Coordinates:
        """These labels, plus the time index of ``size`` frames that ``definition`` (a
        catalog's ``"<feature>.index"`` text) gives; :class:`StoreError` when that
        definition is damaged or its rate is not the array's."""
        if definition is None:
            return xr.Coordinates(self.variables, indexes=self.indexes)
        index, variables = _time_labels(definition, size)
        if self.rate is not None and (index.frequency, index.duration) != self.rate:
            raise StoreError(f"the time index {definition!r} of the catalog does not have "
                             f"the rate of its stored array (frames of {self.rate[1]} s "
                             f"every {self.rate[0]} s)")
        return xr.Coordinates({**variables, **self.variables},
                              indexes={"time": index, **self.indexes})
