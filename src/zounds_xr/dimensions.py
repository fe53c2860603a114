"""Dimension objects: zounds' way of describing what an array axis means.

A :class:`Dimension` knows how to build the xarray coordinates (and custom index) of an
axis of a given size; :func:`dimensions_of` gives the dimension objects of a labelled
DataArray back, so that ``da.zx.dimensions`` works as ``ArrayWithUnits.dimensions`` did.
"""
from __future__ import annotations

import xarray as xr

from .errors import ParameterError

__all__ = ["Dimension", "IdentityDimension", "dimensions_of", "axis_index"]


class Dimension:
    """Base class of the dimension objects (``TimeDimension``, ``FrequencyDimension``...).

    Subclasses set :attr:`default_dim` (the xarray dim name they get in
    ``ArrayWithUnits``) and implement :meth:`coords`.
    """

    #: xarray dim name used when the dimension is given without a name
    default_dim: str | None = None

    def coords(self, size: int, dim: str) -> xr.Coordinates:
        """Coordinates (and index) of an axis named ``dim`` with ``size`` positions."""
        raise NotImplementedError

    def validate(self, size: int) -> None:
        """Raise :class:`ParameterError` if an axis of ``size`` cannot carry this dimension."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class IdentityDimension(Dimension):
    """An axis with no units: integer positions, no index.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> arr = zx.ArrayWithUnits(np.zeros(100), [zx.IdentityDimension()])
    >>> arr[4:6].shape
    (2,)
    """

    def coords(self, size: int, dim: str) -> xr.Coordinates:
        return xr.Coordinates()

    def __eq__(self, other) -> bool:
        return isinstance(other, IdentityDimension)

    def __hash__(self) -> int:
        return hash(IdentityDimension)


def axis_index(x, dim: str, kind: type, *, what: str = "the input", hint: str = ""):
    """The index of type ``kind`` on ``x``'s ``dim``, or a ``ParameterError`` that says
    what is missing (the one check every labelled function starts with)."""
    if not isinstance(x, (xr.DataArray, xr.Dataset)):
        raise ParameterError(f"{what} must be an xarray.DataArray, got {type(x).__name__}")
    index = x.xindexes.get(dim)
    if not isinstance(index, kind):
        raise ParameterError(
            f"{what} needs a {kind.__name__} on {dim!r}{'; ' + hint if hint else ''} "
            f"(dims: {tuple(x.dims)})")
    return index


def dimensions_of(obj: xr.DataArray) -> tuple[Dimension, ...]:
    """The dimension object of every axis of ``obj``, in dim order.

    An axis whose index has a ``dimension()`` method (``TimeIndex``, ``FrequencyIndex``)
    gets that dimension; any other axis is an :class:`IdentityDimension`.
    """
    if not isinstance(obj, xr.DataArray):
        raise ParameterError(f"dimensions are defined for DataArrays, not {type(obj).__name__}")
    out = []
    for dim in obj.dims:
        index = obj.xindexes.get(dim)
        make = getattr(index, "dimension", None)
        out.append(make() if make is not None else IdentityDimension())
    return tuple(out)
