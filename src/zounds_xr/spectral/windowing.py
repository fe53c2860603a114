"""Windowing functions: callables of a size that multiply with arrays (zounds style).

``np.ones(5) * HanningWindowingFunc()`` multiplies the last axis by a window of its
size; windows are cached per size.

:func:`window_values` is the one place where a window argument is evaluated. The public
functions name that argument as zounds and DESIGN.md do: ``wfunc=`` (``stft``,
``sliding_window``, ``mel_spectrogram`` of audio), ``windowing_func=`` (the DCT
synthesizers, ``WindowingFunc``), ``window_func=`` (``frequency_adaptive``) and
``window=`` (``spectral.filters.filter_bank``, ``bark_bands``, ``chroma``). They are aliases of
one concept: a callable of a size (a ``WindowingFunc``, ``np.hanning``...) or ``None``.
New code names it ``window`` and evaluates it with :func:`window_values`.
"""
from __future__ import annotations

import functools

import numpy as np
import xarray as xr

from ..core.errors import ParameterError

__all__ = ["WindowingFunc", "HanningWindowingFunc", "OggVorbisWindowingFunc",
           "IdentityWindowingFunc", "window_values"]


def window_values(window, size: int, dtype=np.float64, *, name: str = "window"):
    """Return the ``size`` weights of ``window`` as ``dtype``, or ``None`` for no window.

    Parameters
    ----------
    window : callable or None
        A callable of a size returning that many weights (a ``WindowingFunc``,
        ``np.hanning``); ``None``, an ``IdentityWindowingFunc`` or a callable returning
        ``None`` mean no window (rectangular).
    size : int
        Number of weights.
    dtype : dtype
        The weights' dtype (the real dtype of a complex one).
    name : str
        The caller's name for the argument, for error messages (``"wfunc"``...).

    Returns
    -------
    numpy.ndarray of shape (size,), or None

    Raises
    ------
    ParameterError
        When ``window`` is not callable, or returns another shape.

    >>> window_values(HanningWindowingFunc(), 3)
    array([0., 1., 0.])
    >>> window_values(None, 3) is None
    True
    """
    if window is None:
        return None
    if not callable(window):
        raise ParameterError(f"{name} must be a WindowingFunc or a callable of a size, "
                             f"got {window!r}")
    w = window(int(size))
    if w is None:
        return None
    w = np.asarray(w)
    if w.shape != (size,):
        raise ParameterError(f"{name} {window!r} returned shape {w.shape} for a window of "
                             f"{size}")
    return w.astype(np.dtype(dtype).type(0).real.dtype, copy=False)


class WindowingFunc:
    """A window made by ``windowing_func(size)``, applied by multiplication.

    Parameters
    ----------
    windowing_func : callable, optional
        Takes a size and returns a 1-D array of that size (e.g. ``np.hanning``);
        ``None`` is no window (multiplying leaves the data as it is).

    Raises
    ------
    ParameterError
        When ``windowing_func`` is not callable.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> wf = zx.WindowingFunc(lambda size: np.hanning(size))
    >>> np.ones(5) * wf
    array([0. , 0.5, 1. , 0.5, 0. ])
    """

    # make ndarray * wf defer to wf.__rmul__ instead of broadcasting elementwise
    __array_ufunc__ = None

    def __init__(self, windowing_func=None):
        if windowing_func is not None and not callable(windowing_func):
            raise ParameterError(f"windowing_func must be callable, got {windowing_func!r}")
        self.windowing_func = windowing_func

    def __call__(self, size: int) -> np.ndarray:
        """Return the window of ``size`` samples (``None`` for no window)."""
        return self._window(int(size))

    @functools.lru_cache(maxsize=32)  # noqa: B019  (instances are few and long-lived)
    def _window(self, size: int):
        if self.windowing_func is None:
            return None
        w = np.asarray(self.windowing_func(size), dtype=np.float64)
        if w.shape != (size,):
            raise ParameterError(f"windowing function returned shape {w.shape} for size {size}")
        w.setflags(write=False)
        return w

    def __mul__(self, other):
        if isinstance(other, xr.DataArray):
            window = self._window(other.shape[-1])
            if window is None:
                return other
            return other * xr.DataArray(window, dims=(other.dims[-1],))
        other = other if hasattr(other, "shape") else np.asarray(other)
        window = self._window(other.shape[-1])
        return other if window is None else other * window

    __rmul__ = __mul__

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.windowing_func == other.windowing_func

    def __hash__(self) -> int:
        return hash((type(self), self.windowing_func))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class IdentityWindowingFunc(WindowingFunc):
    """No window: multiplication leaves the input unchanged."""

    def __init__(self):
        super().__init__(None)


def _hann_symmetric(size):
    return np.hanning(size)


def _hann_periodic(size):
    # periodic Hann, as scipy.signal.get_window("hann", size) and librosa
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / size)


class HanningWindowingFunc(WindowingFunc):
    """The Hann window: symmetric (``np.hanning``, zounds) or ``periodic=True`` (librosa).

    Parameters
    ----------
    periodic : bool
        ``scipy.signal.get_window("hann", n)`` (librosa's STFT window) instead of the
        symmetric ``np.hanning(n)``.
    """

    def __init__(self, periodic: bool = False):
        self.periodic = bool(periodic)
        super().__init__(_hann_periodic if self.periodic else _hann_symmetric)

    def __repr__(self) -> str:
        return f"HanningWindowingFunc(periodic={self.periodic})"


def _vorbis(size):
    n = np.arange(size)
    return np.sin(np.pi / 2 * np.sin(np.pi * (n + 0.5) / size) ** 2)


class OggVorbisWindowingFunc(WindowingFunc):
    """The Vorbis window ``sin(π/2 · sin²(π(n + ½)/N))``, power-complementary at half overlap."""

    def __init__(self):
        super().__init__(_vorbis)
