"""Validation and small array helpers shared by every layer (the bottom of the package).

One home for checks that were written by hand in many modules: positive integers,
the dtype a transform computes in, read-only cached arrays, dropping the coordinates
along a dim, and refusing requests whose output cannot fit in memory. This module
imports nothing of the package but :mod:`zounds_xr.core.errors`.
"""
from __future__ import annotations

import numbers
import os
from collections.abc import Hashable
from typing import Any

import numpy as np
import xarray as xr

from .errors import ParameterError

__all__ = ["positive_int", "nonnegative_int", "float_dtype", "real_float_dtype",
           "magnitude_dtype", "smallest_k", "frozen", "drop_coords_along",
           "check_output_size", "axis_index", "data_array", "output_limit",
           "MAX_OUTPUT_BYTES"]

#: the largest single output a transform agrees to allocate (bytes); a request beyond it
#: (or beyond the machine's physical memory, see :func:`output_limit`) is refused with its
#: estimated size before anything is allocated
MAX_OUTPUT_BYTES = 1 << 36  # 64 GiB


def output_limit() -> int:
    """Return the most bytes one output may take: 64 GiB or physical memory.

    An allocation beyond the machine's memory fails deep inside numpy or a C library
    (``MemoryError``, ``std::bad_alloc``) or gets the process killed; refusing it up
    front names the request instead.

    Returns
    -------
    int
        ``min(MAX_OUTPUT_BYTES, physical memory)``; ``MAX_OUTPUT_BYTES`` where the
        platform does not tell its memory.
    """
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # pragma: no cover (not POSIX)
        return MAX_OUTPUT_BYTES
    return min(MAX_OUTPUT_BYTES, physical) if physical > 0 else MAX_OUTPUT_BYTES


def positive_int(value, name: str) -> int:
    """``value`` as an ``int`` > 0, else :class:`ParameterError` naming ``name``.

    Booleans and non-integral numbers (``2.5``) are refused; integral numpy scalars
    are accepted.

    >>> positive_int(3, "n_fft")
    3
    >>> positive_int(0, "n_fft")
    Traceback (most recent call last):
    ...
    zounds_xr.core.errors.ParameterError: n_fft must be a positive integer, got 0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ParameterError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def nonnegative_int(value, name: str) -> int:
    """``value`` as an ``int`` >= 0, else :class:`ParameterError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ParameterError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def float_dtype(dtype) -> np.dtype:
    """Return the floating (or complex) dtype a transform computes in (else float64).

    >>> float_dtype("int16"), float_dtype("float32"), float_dtype("complex64")
    (dtype('float64'), dtype('float32'), dtype('complex64'))
    """
    dtype = np.dtype(dtype)
    return dtype if dtype.kind in "fc" else np.dtype(np.float64)


def real_float_dtype(dtype, what: str = "this transform") -> np.dtype:
    """:func:`float_dtype` for transforms of real input (complex input is refused)."""
    dtype = float_dtype(dtype)
    if dtype.kind == "c":
        raise ParameterError(f"{what} needs real input, got {dtype}")
    return dtype


def magnitude_dtype(dtype) -> np.dtype:
    """Return the real dtype of magnitudes computed from ``dtype`` data.

    float32 for float16, float32 and complex64 (single precision stays single);
    float64 for everything else (integers, float64, complex128).

    >>> magnitude_dtype("complex64"), magnitude_dtype("int16")
    (dtype('float32'), dtype('float64'))
    """
    dtype = np.dtype(dtype)
    if dtype in (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.complex64)):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def frozen(a, dtype=np.float64) -> np.ndarray:
    """Return a contiguous, read-only copy-or-view of ``a`` (for cached arrays)."""
    a = np.ascontiguousarray(a, dtype=dtype)
    a.setflags(write=False)
    return a


def drop_coords_along(x, dim: str):
    """``x`` without any coordinate that lies along ``dim`` (indexes included)."""
    return x.drop_vars([k for k, v in x.coords.items() if dim in v.dims])


def data_array(x: Any, what: str = "the input") -> xr.DataArray:
    """``x`` when it is an ``xarray.DataArray``, else a ``ParameterError`` naming ``what``.

    Parameters
    ----------
    x : object
        The input of a labelled function.
    what : str
        How the message names ``x``.

    Returns
    -------
    xarray.DataArray
        ``x`` itself.

    Raises
    ------
    ParameterError
        When ``x`` is anything else (a NumPy array has no labels to work from).
    """
    if not isinstance(x, xr.DataArray):
        raise ParameterError(f"{what} must be an xarray.DataArray, got {type(x).__name__}"
                             + ("; label it first (zx.AudioSamples, zx.ArrayWithUnits)"
                                if isinstance(x, np.ndarray) else ""))
    return x


def axis_index(x: Any, dim: Hashable, kind: type, *, what: str = "the input",
               hint: str = "") -> Any:
    """Return the index of type ``kind`` on ``x``'s ``dim``, or refuse ``x``.

    The one check every labelled function starts with: a ``ParameterError`` says what
    is missing.

    Parameters
    ----------
    x : xarray.DataArray or xarray.Dataset
        The labelled input.
    dim : hashable
        The dim whose index is wanted.
    kind : type
        The index class required (``TimeIndex``, ``FrequencyIndex``...).
    what : str
        How the message names ``x``.
    hint : str
        Appended to the message (how to get such an index).

    Returns
    -------
    xarray.Index
        ``x.xindexes[dim]``, an instance of ``kind``.

    Raises
    ------
    ParameterError
        When ``x`` is not labelled or has no ``kind`` index on ``dim``.
    """
    if not isinstance(x, (xr.DataArray, xr.Dataset)):
        raise ParameterError(f"{what} must be an xarray.DataArray, got {type(x).__name__}")
    index = x.xindexes.get(dim)
    if not isinstance(index, kind):
        raise ParameterError(
            f"{what} needs a {kind.__name__} on {dim!r}{'; ' + hint if hint else ''} "
            f"(dims: {tuple(x.dims)})")
    return index


def check_output_size(shape, dtype, what: str, limit: int | None = None) -> None:
    """Refuse an output of ``shape``/``dtype`` larger than ``limit`` bytes, up front.

    The message gives the estimated size, so that a request that cannot fit in memory
    fails before anything is allocated rather than deep inside numpy.

    >>> check_output_size((10**6, 10**6), "float64", "the spectrogram")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    zounds_xr.core.errors.ParameterError: the spectrogram would need 7.28 TiB (shape ...), more ...
    """
    if limit is None:
        limit = output_limit()
    nbytes = float(np.prod([float(s) for s in shape])) * np.dtype(dtype).itemsize
    if nbytes > limit:
        raise ParameterError(
            f"{what} would need {_human(nbytes)} (shape {tuple(int(s) for s in shape)}, "
            f"{np.dtype(dtype)}), more than the {_human(limit)} limit")


def _human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def smallest_k(distances: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` smallest ``distances``, nearest first, ties by position.

    The one k-nearest selection of the package (Hamming search, the explorer's
    neighbours): ``argpartition`` when ``k`` is below the size, then every candidate at
    the cut-off distance competes so that equal distances break by position.

    >>> smallest_k(np.array([3, 1, 2, 1]), 2)
    array([1, 3])
    """
    d = np.asarray(distances)
    k = max(0, min(int(k), d.size))
    if k == 0:
        return np.zeros(0, dtype=np.intp)
    if k < d.size:
        candidates = np.argpartition(d, k - 1)[:k]
        candidates = np.flatnonzero(d <= d[candidates].max())
    else:
        candidates = np.arange(d.size)
    return candidates[np.lexsort((candidates, d[candidates]))][:k]
