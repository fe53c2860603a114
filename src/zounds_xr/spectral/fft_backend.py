"""The FFT the spectral kernels use: torch's when torch is installed, else ``scipy.fft``.

Measured on the project's 2-core machine (float32 frames of 2048 samples in blocks of
64-256 frames, one thread): ``torch.fft.rfft`` about 2.1 µs a frame, ``scipy.fft.rfft``
about 3.5 µs, ``numpy.fft.rfft`` about 28 µs (``benchmarks/bench_stft.py`` measures both
backends in the same run). The two backends agree to float precision (relative 1e-6 in
float32; the tests check 1e-5).

Importing torch, though, costs 1.5 s (5 s on a loaded machine) and 180 MB of resident
memory in every process that does it: more than torch's FFT saves on a 10-minute
|STFT| (about 0.1 s), and a regression for short-lived processes (the CLI, worker
processes of an ingest, test workers). So ``"auto"`` (the default) uses torch's FFT when
torch is already imported in the process (a learning pipeline, the benchmarks: then it
is free) and scipy's otherwise; ``set_fft_backend("torch")`` (or
``ZOUNDS_XR_FFT=torch``) imports torch lazily, on the first transform, for long jobs.
``import zounds_xr`` never imports torch.

Threads. The kernels are parallel by themselves (frame ranges on threads for numpy
input, one task per block for dask input), so each FFT call must use one thread:
``scipy.fft`` is called with ``workers=1``; torch's intra-op thread count is set to 1
for the duration of a kernel call, in the calling thread, and restored after (measured:
torch's own 2-thread FFT of a 64-frame block is 3x slower than one thread on 2 busy
cores, and two dask threads each running 2 torch threads oversubscribe the cores).
No BLAS is used by the kernels, so no BLAS pool needs pinning.

Choose a backend with :func:`set_fft_backend` or the ``ZOUNDS_XR_FFT`` environment
variable (``"auto"``, ``"torch"``, ``"scipy"``).
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from typing import Any

import numpy as np
import scipy.fft

from ..core.errors import ParameterError

__all__ = ["fft_backend", "set_fft_backend", "rfft", "pinned_threads"]

_CHOICES = ("auto", "torch", "scipy")


def _scipy_r2c():
    """Return scipy's pocketfft ``r2c`` (it takes an output array); None if it moved."""
    try:
        from scipy.fft._pocketfft import pypocketfft  # scipy's internals: checked below
    except ImportError:  # pragma: no cover (another scipy layout: the public rfft)
        return None
    r2c = getattr(pypocketfft, "r2c", None)
    try:
        probe = np.arange(8, dtype=np.float32).reshape(2, 4)
        out = np.empty((2, 3), dtype=np.complex64)
        if r2c is None or r2c(probe.copy(), (1,), True, 0, out, 1) is not out or \
                not np.array_equal(out, scipy.fft.rfft(probe, axis=-1)):
            return None
    except Exception:  # noqa: BLE001  pragma: no cover (a changed signature)
        return None
    return r2c


_R2C = _scipy_r2c()
_state: dict[str, Any] = {"choice": None, "torch": None}


def _choice() -> str:
    if _state["choice"] is None:
        env = os.environ.get("ZOUNDS_XR_FFT", "auto").strip().lower() or "auto"
        if env not in _CHOICES:
            raise ParameterError(f"ZOUNDS_XR_FFT must be one of {_CHOICES}, got {env!r}")
        _state["choice"] = env
    return str(_state["choice"])


def _torch():
    """Return the torch module (imported on first use), or None when it is not installed."""
    if _state["torch"] is None:
        if importlib.util.find_spec("torch") is None:
            _state["torch"] = False
        else:
            import torch  # an optional dependency: imported lazily, only here

            _state["torch"] = torch
    return _state["torch"] or None


def fft_backend() -> str:
    """Return the backend the kernels use now: ``"torch"`` or ``"scipy"``.

    ``"auto"`` (the default) resolves to torch when torch is already imported in this
    process, else to scipy.

    Returns
    -------
    str
        ``"torch"`` or ``"scipy"``.

    Raises
    ------
    ParameterError
        When torch was chosen (:func:`set_fft_backend`) but is not installed.

    >>> fft_backend() in ("torch", "scipy")
    True
    """
    choice = _choice()
    if choice == "scipy" or (choice == "auto" and "torch" not in sys.modules):
        return "scipy"
    if _torch() is None:
        if choice == "torch":
            raise ParameterError("the torch FFT backend was requested but torch is not "
                                 "installed (pip install 'zounds_xr[learn]')")
        return "scipy"
    return "torch"


def set_fft_backend(name: str = "auto") -> str:
    """Choose the FFT of the spectral kernels; returns the previous choice.

    Parameters
    ----------
    name : {"auto", "torch", "scipy"}
        ``"auto"``: torch when it is already imported, else scipy; ``"torch"`` imports
        it (lazily, now) and fails when it is not installed.

    Returns
    -------
    str
        The previous choice (to restore it).

    Raises
    ------
    ParameterError
        For another name, or ``"torch"`` when torch is not installed.
    """
    if name not in _CHOICES:
        raise ParameterError(f"the FFT backend must be one of {_CHOICES}, got {name!r}")
    previous = _choice()
    _state["choice"] = name
    try:
        fft_backend()
    except ParameterError:
        _state["choice"] = previous
        raise
    return previous


@contextlib.contextmanager
def pinned_threads():
    """One FFT thread in the calling thread while the block runs (torch's is restored)."""
    torch = _torch() if fft_backend() == "torch" else None
    if torch is None:
        yield
        return
    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def rfft(frames: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Real FFT along the last axis of C-contiguous real ``frames`` (unnormalised).

    float32 in -> complex64 out, float64 -> complex128. ``frames`` may be overwritten.
    With ``out`` (of the result's shape and dtype: C-contiguous, or for 2-D ``frames``
    the transpose of a C-contiguous array, each frame's coefficients in a column) the
    coefficients are written there.
    """
    columns = out is not None and out.ndim == 2 and not out.flags.c_contiguous \
        and out.T.flags.c_contiguous
    if fft_backend() == "torch":
        torch = _torch()
        t = torch.from_numpy(frames)
        if out is None:
            return torch.fft.rfft(t, dim=-1).numpy()
        if columns:  # torch's tiled copy (its out= wants a contiguous tensor)
            torch.from_numpy(out).copy_(torch.fft.rfft(t, dim=-1))
        else:
            torch.fft.rfft(t, dim=-1, out=torch.from_numpy(out))
        return out
    if out is not None and _R2C is not None and frames.dtype in (np.float32, np.float64) \
            and out.dtype == np.result_type(frames.dtype, np.complex64) \
            and (out.flags.c_contiguous or columns) \
            and out.shape == (*frames.shape[:-1], frames.shape[-1] // 2 + 1):
        # what scipy.fft.rfft calls, writing into `out` (rfft's own array, copied into
        # `out`, cost 10 % of a mel spectrogram of audio); pocketfft writes through any
        # strides, so coefficients in columns cost no transpose (the same values: the
        # strides only change where each is stored)
        return _R2C(frames, (frames.ndim - 1,), True, 0, out, 1)
    spec = scipy.fft.rfft(frames, axis=-1, workers=1, overwrite_x=True)
    if out is not None:
        out[...] = spec
        return out
    return spec
