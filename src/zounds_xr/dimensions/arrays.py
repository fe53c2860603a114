"""``ArrayWithUnits``: a labelled DataArray from raw data and zounds dimension objects."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from ..core.dimension import Dimension, IdentityDimension
from ..core.errors import ParameterError

__all__ = ["ArrayWithUnits", "with_labels"]


def _dim_names(dimensions: Sequence[Dimension]) -> list[str]:
    names: list[str] = []
    for i, dimension in enumerate(dimensions):
        name = dimension.default_dim or f"dim_{i}"
        if name == "time" and "time" in names:
            name = "window"  # a second time axis is the position inside a window
        if name in names:
            name = f"{name}_{i}"
        names.append(name)
    return names


def ArrayWithUnits(array, dimensions: Sequence[Dimension], dims: Sequence[str] | None = None,
                   name=None, attrs=None) -> xr.DataArray:  # noqa: N802  (zounds' name)
    """Return a DataArray whose axes carry the indexes of zounds dimension objects.

    Parameters
    ----------
    array : array_like or dask.array.Array
        The data (kept lazy when it is a dask array).
    dimensions : sequence of Dimension
        One per axis: ``TimeDimension`` -> ``time`` (a second one -> ``window``),
        ``FrequencyDimension`` -> ``frequency``, ``IdentityDimension`` -> ``dim_<i>``.
    dims : sequence of str, optional
        Explicit dim names, overriding the defaults.
    name : hashable, optional
        The DataArray's name.
    attrs : mapping, optional
        The DataArray's attributes.

    Returns
    -------
    xarray.DataArray
        ``array`` labelled by the dimensions' coordinates and indexes.

    Raises
    ------
    ParameterError
        When the number of dimensions does not match ``array.ndim``, or a dimension does
        not fit its axis.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> awu = zx.ArrayWithUnits(np.zeros(100), [zx.TimeDimension(zx.Seconds(1))])
    >>> awu.sel(time=zx.TimeSlice(zx.Seconds(10))).shape
    (10,)
    """
    if isinstance(array, xr.DataArray):
        array = array.data
    if not hasattr(array, "ndim"):
        array = np.asarray(array)
    dimensions = list(dimensions)
    if len(dimensions) != array.ndim:
        raise ParameterError(
            f"{len(dimensions)} dimensions given for an array of {array.ndim} axes "
            f"(shape {array.shape})")
    for i, d in enumerate(dimensions):
        if not isinstance(d, Dimension):
            raise ParameterError(f"dimension {i} must be a Dimension object, got {d!r}")
    names = list(dims) if dims is not None else _dim_names(dimensions)
    if len(names) != array.ndim or len(set(names)) != len(names):
        raise ParameterError(f"dims must be {array.ndim} distinct names, got {names!r}")
    out = xr.DataArray(array, dims=names, name=name, attrs=attrs)
    for dimension, dim, size in zip(dimensions, names, array.shape, strict=True):
        if not isinstance(dimension, IdentityDimension):
            out = out.assign_coords(dimension.coords(size, dim))
    return out


def with_labels(data, like: xr.DataArray, dims: Sequence[str], coords=(), name=None,
                attrs=None) -> xr.DataArray:
    """Wrap ``data`` with ``dims``, keeping ``like``'s coordinates on the dims they share.

    Custom indexes survive because coordinates are moved as ``Coordinates`` objects,
    never as plain dicts.

    Parameters
    ----------
    data : array_like or dask.array.Array
        The result's values.
    like : xarray.DataArray
        The input whose labels the result keeps.
    dims : sequence of str
        The result's dims.
    coords : xarray.Coordinates or sequence of them, optional
        Extra coordinates (e.g. a new frequency axis), assigned after ``like``'s.
    name : hashable, optional
        The result's name (``like``'s by default).
    attrs : mapping, optional
        The result's attributes.

    Returns
    -------
    xarray.DataArray
        ``data`` with ``like``'s coordinates on the dims they share, then ``coords``.
    """
    dims = list(dims)
    name = like.name if name is None else name
    sizes = dict(zip(dims, np.shape(data), strict=True))
    keep = [k for k, v in like.coords.items()
            if set(v.dims) <= set(dims) and all(like.sizes[d] == sizes[d] for d in v.dims)]
    sources = [like.drop_vars([k for k in like.coords if k not in keep]).coords,
               *(coords if isinstance(coords, (list, tuple)) else [coords])]
    named = [set(c) for c in sources]
    if all(isinstance(c, xr.Coordinates) for c in sources) \
            and sum(map(len, named)) == len(set().union(*named)):
        # distinct names: the same labels built in one step (each assign_coords aligns
        # and copies the coordinates so far: ~0.4 ms, a long recording's per-chunk cost)
        variables = {k: v.variable for c in sources for k, v in c.items()}
        indexes = {k: i for c in sources for k, i in c.xindexes.items()}
        return xr.DataArray(data, coords=xr.Coordinates(variables, indexes), dims=dims,
                            name=name, attrs=attrs)
    out = xr.DataArray(data, dims=dims, name=name, attrs=attrs)
    for extra in sources:
        out = out.assign_coords(extra)
    return out
