"""Assertions for tests of labelled arrays, checking zounds' indexes first.

A ``TimeIndex`` that came back as a ``PandasIndex`` (after ``resample``, ``to_zarr``,
``{**coords}``...) has the same coordinate values; xarray reports it as two
equal-looking pandas indexes. The assertions here first require every index to be of
the same type and to have the same parameters (``index.equals``: exact start, frequency
and duration of a ``TimeIndex``; scale and slices of a ``FrequencyIndex``) and say which
differs, then compare values, dims, names and attrs with xarray's assertions, like
``assert_identical(..., check_indexes=True)`` in xarray's own test suite.
"""
from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import xarray as xr

__all__ = ["assert_identical", "assert_allclose", "assert_indexes_equal"]

_Labelled = xr.DataArray | xr.Dataset


def _check_types(a: Any, b: Any) -> None:
    if not isinstance(a, (xr.DataArray, xr.Dataset)):
        raise TypeError(f"expected a DataArray or a Dataset, got {type(a).__name__}")
    if type(a) is not type(b):
        raise AssertionError(f"types differ: {type(a).__name__} vs {type(b).__name__}")


def _describe(indexes: Mapping[Hashable, xr.Index]) -> str:
    return ", ".join(f"{name!r}: {type(index).__name__}" for name, index in indexes.items())


def assert_indexes_equal(a: _Labelled, b: _Labelled) -> None:
    """Assert that ``a`` and ``b`` have the same indexes.

    Assert that ``a`` and ``b`` have the same indexes: same coordinates, same types,
    same parameters.

    Parameters
    ----------
    a, b : xarray.DataArray or xarray.Dataset

    Raises
    ------
    AssertionError
        Naming the first coordinate whose index is missing on one side, of another type,
        or different (both reprs are shown).

    See Also
    --------
    assert_identical : Indexes, values, dims, names and attrs.
    """
    __tracebackhide__ = True
    _check_types(a, b)
    ia, ib = dict(a.xindexes.items()), dict(b.xindexes.items())
    if ia.keys() != ib.keys():
        raise AssertionError(
            f"indexed coordinates differ: left has {{{_describe(ia)}}}, right has "
            f"{{{_describe(ib)}}}")
    for name, left in ia.items():
        right = ib[name]
        if type(left) is not type(right):
            raise AssertionError(
                f"coordinate {name!r} is indexed by a {type(left).__name__} on the left and "
                f"a {type(right).__name__} on the right")
        if not left.equals(right):
            raise AssertionError(f"indexes of {name!r} differ:\nL {left!r}\nR {right!r}")


def assert_identical(a: _Labelled, b: _Labelled) -> None:
    """Assert that two labelled objects are identical, their indexes included.

    Compares the type and parameters of every index (:func:`assert_indexes_equal`),
    then values, dims, coordinates, names and attrs (``xarray.testing.assert_identical``).
    Dask-backed data is computed.

    Parameters
    ----------
    a, b : xarray.DataArray or xarray.Dataset

    Raises
    ------
    AssertionError
        Saying what differs.

    See Also
    --------
    assert_allclose : The same, with values compared within a tolerance.
    xarray.testing.assert_identical : Values, names and attrs, without index types.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> from zounds_xr.testing import assert_identical
    >>> x = zx.AudioSamples(np.zeros(8), zx.SR8000())
    >>> assert_identical(x, x.copy())
    >>> assert_identical(x, x.drop_indexes("time").set_xindex("time"))
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    AssertionError: coordinate 'time' is indexed by a TimeIndex on the left and a PandasIndex ...
    """
    __tracebackhide__ = True
    assert_indexes_equal(a, b)
    xr.testing.assert_identical(a, b)


def assert_allclose(a: _Labelled, b: _Labelled, *, rtol: float = 1e-05,
                    atol: float = 1e-08) -> None:
    """Assert that two labelled objects have equal labels and close values.

    Assert that two labelled objects have the same indexes and labels, and values
    equal within a tolerance.

    Parameters
    ----------
    a, b : xarray.DataArray or xarray.Dataset
    rtol : float >= 0
        Relative tolerance (``numpy.isclose``'s).
    atol : float >= 0
        Absolute tolerance.

    Raises
    ------
    AssertionError
        Saying what differs.

    See Also
    --------
    assert_identical : Exact values, names and attrs too.
    """
    __tracebackhide__ = True
    assert_indexes_equal(a, b)
    xr.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
