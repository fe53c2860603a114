"""Cache-blocked numeric kernels of the spectral transforms (numpy in, numpy out).

Every transform of the package ends in one of these, on numpy blocks (a whole array,
or one dask block at a time):

- :class:`FrameKernel`: audio -> frames -> window -> rFFT -> the complex coefficients,
  ``|X|``, ``|X|**2``, or ``|X|**p`` rebinned onto a filter bank (mel), a block of
  frames at a time into a preallocated output. Frames are read through strided views
  of the signal, so neither the frames nor the complex spectrogram of the whole signal
  ever exist (a block of 1 MiB of frames and its spectrum stay in the L2 cache).
- :class:`SparseRebin`: the one rebinning kernel (mel, Bark, chroma, any
  ``filters.filter_bank``): ``|x| ** power`` (or ``x`` itself) times a sparse filter
  bank. Mel banks are 1.5 % non-zero (each FFT bin feeds at most two triangles), so a
  CSR product does ~2,000 multiply-adds a frame instead of a dense 131,000, without
  BLAS (no thread pool to pin; scipy's sparse kernels release the GIL).
- :class:`RowTransform`: ``fft``/``dct``/``dctiv``/``mdct`` of windowed data along its
  last axis, a block of rows at a time into a preallocated output.
- :func:`apply_along`: runs such a kernel along one dim of a DataArray, lazily (one
  task per block) on dask input.
- :func:`run_frames`: a :class:`FrameKernel` over numpy audio, frame ranges on threads.

The FFT is :func:`~zounds_xr.spectral.fft_backend.rfft` (torch's when installed, else
scipy's); every kernel call runs with one FFT thread (:func:`pinned_threads`), since the
parallelism comes from threads over frame ranges or from dask's tasks, and the numeric
work releases the GIL (numpy ufuncs, scipy.fft, torch, scipy.sparse).
"""
from __future__ import annotations

import hashlib
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import dask.array as da
import numpy as np
import scipy.fft
import scipy.sparse
import xarray as xr

from ..core.validation import check_output_size, float_dtype, positive_int
from ..core.errors import ParameterError
from .fft_backend import pinned_threads, rfft
from .sliding import frame_apply

__all__ = ["FrameKernel", "SparseRebin", "RowTransform", "apply_along", "run_frames",
           "mdct_array", "imdct_array", "materialize", "BLOCK_BYTES"]

#: bytes of windowed frames transformed at once (with their spectrum they fit in L2)
BLOCK_BYTES = 2**20
#: rows of a spectrum rebinned at once by :class:`SparseRebin`
_REBIN_ROWS = 256


def _complex_of(dtype) -> np.dtype:
    return np.result_type(float_dtype(dtype), np.complex64)


def _weights_digest(a: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()


# ------------------------------------------------------------------------------------
# |x| ** power and the sparse rebinning product
# ------------------------------------------------------------------------------------
def magnitudes_to(x: np.ndarray, power: float, out: np.ndarray,
                  scratch: np.ndarray | None = None) -> np.ndarray:
    """``|x| ** power`` of a complex or real block into ``out`` (real, same shape).

    ``scratch`` (real, ``x``'s shape with a last axis twice as long) avoids allocating
    the squares of a complex block.
    """
    if np.iscomplexobj(x):
        if power == 2.0:
            if x.flags.c_contiguous:
                # square the interleaved (re, im) floats in one pass, then add the pairs
                flat = x.view(x.real.dtype)
                sq = np.square(flat, out=scratch if scratch is not None
                               and scratch.shape == flat.shape
                               and scratch.dtype == flat.dtype else None)
                return np.add(sq[..., 0::2], sq[..., 1::2], out=out)
            np.multiply(x.real, x.real, out=out)
            out += x.imag * x.imag
            return out
        np.abs(x, out=out)
    elif power == 2.0:
        return np.multiply(x, x, out=out)
    else:
        np.abs(x, out=out)
    if power != 1.0:
        np.power(out, out.dtype.type(power), out=out)
    return out


class SparseRebin:
    """``out[..., m] = sum_f w[m, f] * |x[..., f]| ** power`` (``power=None``: ``x``).

    The one rebinning kernel of the package (``mel_spectrogram``, ``bark_bands``,
    ``chroma``, ``filters.apply_scale``). ``weights`` is ``(n_out, n_in)``; its zeros
    are dropped (CSR). Rows of ``x`` are processed ``256`` at a time: the magnitudes of
    the block are transposed to ``(n_in, rows)`` so that the CSR product streams
    contiguous rows, and the ``(n_out, rows)`` result is written transposed into the
    preallocated output.

    Parameters
    ----------
    weights : array_like, shape (n_out, n_in)
        The filter bank (``filters.filter_bank(scale, source_scale)``).
    power : float or None
        Exponent of the magnitudes; ``None`` rebins ``x`` itself (linear, complex
        allowed).
    dtype : dtype
        The real precision of the product (float32 or float64).
    """

    def __init__(self, weights, power: float | None, dtype):
        self.dtype = np.dtype(dtype)
        w = np.asarray(weights, dtype=self.dtype)
        if w.ndim != 2:
            raise ParameterError(f"weights must be 2-D (n_out, n_in), got shape {w.shape}")
        self.n_out, self.n_in = w.shape
        self.csr = scipy.sparse.csr_array(w)
        self.power = None if power is None else float(power)
        self._digest = _weights_digest(w)

    def out_dtype(self, in_dtype) -> np.dtype:
        """Return the dtype of the output."""
        if self.power is None and np.dtype(in_dtype).kind == "c":
            return _complex_of(self.dtype)
        return self.dtype

    def into_transposed(self, pt: np.ndarray, out: np.ndarray) -> None:
        """``out (rows, n_out) = (W @ pt).T`` for magnitudes ``pt`` of shape (n_in, rows)."""
        out[...] = (self.csr @ pt).T

    def block_into(self, x: np.ndarray, out: np.ndarray) -> None:
        """Rebin rows ``x`` ``(rows, n_in)`` into ``out`` ``(rows, n_out)``."""
        if self.power is None:
            pt = np.ascontiguousarray(x.T)
        else:
            mag = np.empty(x.shape, dtype=self.dtype)
            magnitudes_to(x, self.power, mag)
            pt = np.ascontiguousarray(mag.T)
        self.into_transposed(pt, out)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Run the kernel on one block."""
        if x.shape[-1] != self.n_in:
            raise ParameterError(
                f"expected {self.n_in} frequency bins, got an axis of {x.shape[-1]}")
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.n_in)
        out = np.empty((flat.shape[0], self.n_out), dtype=self.out_dtype(x.dtype))
        for b in range(0, flat.shape[0], _REBIN_ROWS):
            self.block_into(flat[b:b + _REBIN_ROWS], out[b:b + _REBIN_ROWS])
        return out.reshape(*lead, self.n_out)

    def __dask_tokenize__(self):
        return ("zounds_xr.SparseRebin", self._digest, self.n_out, self.n_in, self.power,
                str(self.dtype))


# ------------------------------------------------------------------------------------
# audio -> frames -> window -> rFFT -> output
# ------------------------------------------------------------------------------------
class FrameKernel:
    """Frames of a signal -> window -> rFFT -> ``mode``, block by block into ``out``.

    ``mode`` is ``"complex"`` (the coefficients), ``"magnitude"`` (``|X|``),
    ``"power"`` (``|X|**2``) or ``"rebin"`` (``|X| ** rebin.power`` through a
    :class:`SparseRebin`: the mel spectrogram straight from audio).

    Called as ``kernel(segment, out=rows)`` (the ``block_fn`` protocol of
    :func:`~zounds_xr.spectral.sliding.frame_apply`): ``segment`` holds time on axis 0
    and any other axes after it (channels, clips); it is cut into
    ``(len - win) // hop + 1`` frames, and ``rows`` has shape
    ``(n_frames, n_out, *segment.shape[1:])``. Frames are windowed into a small reused
    buffer, transformed, and reduced straight into ``rows``: one call covers every
    channel (a batch of clips of one length goes through one call).
    """

    def __init__(self, hop: int, win: int, window: np.ndarray | None, dtype, mode: str,
                 rebin: SparseRebin | None = None, block_bytes: int = BLOCK_BYTES):
        if mode not in ("complex", "magnitude", "power", "rebin"):
            raise ParameterError(f"unknown kernel mode {mode!r}")
        if (mode == "rebin") != (rebin is not None):
            raise ParameterError("mode 'rebin' needs a SparseRebin, and only it does")
        if rebin is not None and rebin.power is None:
            raise ParameterError("audio frames are rebinned as |X| ** power: give a power")
        self.hop, self.win, self.mode, self.rebin = int(hop), int(win), mode, rebin
        self.dtype = np.dtype(dtype)  # the real compute dtype
        self.window = None if window is None else np.asarray(window, dtype=self.dtype)
        self.nbins = self.win // 2 + 1
        if rebin is not None and rebin.n_in != self.nbins:
            raise ParameterError(f"the filter bank takes {rebin.n_in} bins, the FFT gives "
                                 f"{self.nbins}")
        self.block_frames = max(1, int(block_bytes) // (self.win * self.dtype.itemsize))

    @property
    def n_out(self) -> int:
        """Values per frame in the output."""
        return self.nbins if self.rebin is None else self.rebin.n_out

    @property
    def out_dtype(self) -> np.dtype:
        """The dtype of the output."""
        return _complex_of(self.dtype) if self.mode == "complex" else self.dtype

    def n_frames(self, length: int) -> int:
        """Frames in a segment of ``length`` samples."""
        return 0 if length < self.win else (length - self.win) // self.hop + 1

    def __call__(self, segment: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Run the kernel on one block."""
        nf = self.n_frames(segment.shape[0])
        rest = segment.shape[1:]
        if out is None:
            out = np.empty((nf, self.n_out, *rest), dtype=self.out_dtype)
        if nf == 0:
            return out
        n_rest = math.prod(rest)
        signals = segment.reshape(segment.shape[0], n_rest)
        if n_rest > 1:
            # one signal per row: framing a strided column gathers every sample
            # win/hop times from scattered cache lines (stacked clips: 2x slower)
            signals = np.ascontiguousarray(signals.T).T
        rows = out.reshape(nf, self.n_out, n_rest) if out.flags.c_contiguous or not rest \
            else None
        with pinned_threads():
            bf = min(self.block_frames, nf * n_rest)
            buf = np.empty((bf, self.win), dtype=self.dtype)
            work = None
            if self.mode == "rebin":
                # the coefficients in columns (bins, frames): the CSR product streams
                # the magnitudes' rows, and the FFT writes there without a transpose.
                # Flat buffers: a block of any n frames is a C-contiguous (bins, n) view
                # of their start (grouped clips make most blocks shorter than bf, and a
                # fresh array per block is an mmap under a fixed malloc threshold)
                spec = np.empty(self.nbins * bf, dtype=_complex_of(self.dtype))
                work = (np.empty(self.nbins * bf, dtype=self.dtype),
                        np.empty(self.nbins * 2 * bf, dtype=self.dtype))
            else:
                spec = np.empty((bf, self.nbins), dtype=_complex_of(self.dtype))
            # short signals (stacked clips) go several to a block, so that a block of
            # frames, not a clip, pays each call's fixed cost (the values are the same:
            # every frame is transformed and rebinned on its own)
            group = max(1, bf // nf) if len(rest) == 1 else 1
            for c0 in range(0, n_rest, group):
                c1 = min(n_rest, c0 + group)
                if c1 - c0 > 1:
                    self._signals(signals[:, c0:c1], out[:, :, c0:c1], buf, spec, work)
                    continue
                if rows is not None:
                    target = rows[:, :, c0]
                else:
                    where: tuple[Any, ...] = (slice(None), slice(None),
                                              *(int(i) for i in np.unravel_index(c0, rest)))
                    target = out[where]
                self._signal(signals[:, c0], target, buf, spec, work)
        return out

    def _signal(self, signal: np.ndarray, out: np.ndarray, buf, spec, work) -> None:
        hop, win, nf = self.hop, self.win, out.shape[0]
        # one strided view of every frame, sliced per block (building the view costs
        # ~30 us, a block's FFT ~300 us)
        every = np.lib.stride_tricks.sliding_window_view(
            signal[:(nf - 1) * hop + win], win)[::hop]
        for f0 in range(0, nf, buf.shape[0]):
            f1 = min(nf, f0 + buf.shape[0])
            n = f1 - f0
            frames = every[f0:f1]
            tmp = buf[:n]
            if self.window is None:
                tmp[...] = frames
            else:
                np.multiply(frames, self.window, out=tmp)
            self._transform(tmp, out[f0:f1], spec, work)

    def _signals(self, signals: np.ndarray, out: np.ndarray, buf, spec, work) -> None:
        """All frames of several signals (columns of ``signals``) as one block.

        ``out`` is ``(n_frames, n_out, signals)``; ``buf`` holds every frame.
        """
        nf, k = out.shape[0], signals.shape[1]
        n = nf * k
        frames = np.lib.stride_tricks.sliding_window_view(
            signals[:(nf - 1) * self.hop + self.win].T, self.win, axis=1)[:, ::self.hop]
        tmp = buf[:n]
        if self.window is None:
            tmp.reshape(k, nf, self.win)[...] = frames
        else:
            np.multiply(frames, self.window, out=tmp.reshape(k, nf, self.win))
        planes = out.transpose(2, 0, 1)  # (signals, frames, n_out): contiguous when the
        # output is one plane per signal (run_audio_kernel's layout)
        if planes.flags.c_contiguous:
            self._transform(tmp, planes.reshape(n, -1), spec, work)
        else:
            rows = np.empty((n, out.shape[1]), dtype=out.dtype)
            self._transform(tmp, rows, spec, work)
            planes[...] = rows.reshape(k, nf, -1)

    def _transform(self, tmp: np.ndarray, target: np.ndarray, spec, work) -> None:
        """Windowed frames ``tmp`` -> rFFT -> ``mode``, into the rows ``target``."""
        n = tmp.shape[0]
        if self.mode == "rebin":
            rebin = cast(SparseRebin, self.rebin)
            mag, scratch = (w[:self.nbins * n * k].reshape(self.nbins, n * k)
                            for w, k in zip(work, (1, 2), strict=True))
            spec = spec[:self.nbins * n].reshape(self.nbins, n)
            rfft(tmp, out=spec.T)
            magnitudes_to(spec, cast(float, rebin.power), mag, scratch)
            rebin.into_transposed(mag, target)
            return
        if self.mode == "complex" and target.flags.c_contiguous:
            rfft(tmp, out=target)
            return
        x = rfft(tmp, out=spec[:n])
        if self.mode == "complex":
            target[...] = x
        elif self.mode == "magnitude":
            np.abs(x, out=target)
        else:
            magnitudes_to(x, 2.0, target)

    def __dask_tokenize__(self):
        return ("zounds_xr.FrameKernel", self.hop, self.win, self.mode, str(self.dtype),
                None if self.window is None else _weights_digest(self.window),
                None if self.rebin is None else self.rebin.__dask_tokenize__(),
                self.block_frames)


#: threads for ``workers=None`` in the main thread (``None``: every core). A worker
#: process of a pool sets 1 (its siblings hold the other cores): see
#: :func:`set_default_threads`.
_DEFAULT_THREADS: int | None = None


def set_default_threads(threads: int | None) -> None:
    """Threads a kernel uses for ``workers=None`` in this process's main thread.

    ``None`` (the default) means every core. Process pools set 1 in each worker
    (``ProcessPoolExecutor(initializer=set_default_threads, initargs=(1,))``): the
    worker's task runs in its main thread, and every sibling process wants a core too.
    """
    global _DEFAULT_THREADS
    _DEFAULT_THREADS = None if threads is None else positive_int(threads, "threads")


def n_workers(workers: int | None) -> int:
    """Return the threads for numpy input.

    Threads for numpy input: ``None`` = the process default (every core) from the
    main thread, else 1.
    """
    if workers is None:
        if threading.current_thread() is not threading.main_thread():
            return 1  # inside a dask task or a thread pool: don't oversubscribe
        return _DEFAULT_THREADS or max(1, os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers == 0:
        raise ParameterError(f"workers must be a positive integer, -1 or None, got {workers!r}")
    return max(1, os.cpu_count() or 1) if workers < 0 else int(workers)


def run_frames(kernel: FrameKernel, data: np.ndarray, out: np.ndarray, layout,
               workers: int, padwith=0) -> np.ndarray:
    """Fill ``out`` with ``kernel`` over the frames of numpy ``data`` (time on axis 0).

    Contiguous frame ranges run on ``workers`` threads (the kernels release the GIL);
    each range reads its own span of ``data`` in place (only the padded tail is copied)
    and writes its own rows of ``out``, so the output is never concatenated.
    """
    nf, hop, win = layout.n_frames, layout.hop, layout.win
    # split only work worth a thread: >= 2**18 window samples a part
    parts = max(1, min(4 * workers, nf * win // 2**18)) if workers > 1 else 1
    edges = np.linspace(0, nf, parts + 1).astype(int)

    def run(i):
        f0, f1 = int(edges[i]), int(edges[i + 1])
        if f1 > f0:
            frame_apply([data], f0 * hop, f1 - f0, hop, win, padwith, kernel, out[f0:f1])

    if parts == 1:
        run(0)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, range(parts)))
    return out


# ------------------------------------------------------------------------------------
# transforms of windowed rows: fft, dct, dctiv, mdct
# ------------------------------------------------------------------------------------
def mdct_array(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """MDCT of frames of even length ``N = 2M`` along ``axis``: ``M`` coefficients.

    ``X[k] = sqrt(2/M) · Σₙ x[n] cos(π/M (n + ½ + M/2)(k + ½))``: the standard MDCT with
    the orthonormal DCT-IV scaling, so that :func:`imdct_array` followed by a window
    satisfying Princen-Bradley (``w[n]² + w[n+M]² = 1``, e.g. Vorbis) and overlap-add at
    hop ``M`` reconstructs the input exactly. Computed as the DCT-IV of the folded frame
    ``(-c_r - d, a - b_r)`` when ``N % 4 == 0``, else through a length-``N`` complex FFT.

    Parameters
    ----------
    x : numpy.ndarray
        Real frames, ``N`` (even, > 0) samples along ``axis``.
    axis : int
        The axis of the samples.

    Returns
    -------
    numpy.ndarray
        ``x``'s shape with ``N/2`` coefficients along ``axis``; ``x``'s float precision.
    """
    x = np.moveaxis(np.asarray(x), axis, -1)
    n = x.shape[-1]
    if n % 2 or n == 0:
        raise ParameterError(f"the MDCT needs an even, non-zero window, got {n} samples")
    m = n // 2
    if n % 4 == 0:
        h = m // 2
        a, b, c, d = x[..., :h], x[..., h:m], x[..., m:m + h], x[..., m + h:]
        folded = np.empty((*x.shape[:-1], m), dtype=float_dtype(x.dtype))
        np.negative(c[..., ::-1], out=folded[..., :h])
        folded[..., :h] -= d
        np.subtract(a, b[..., ::-1], out=folded[..., h:])
        out = scipy.fft.dct(folded, type=4, norm="ortho", axis=-1, workers=1,
                            overwrite_x=True)
    else:
        ctype = np.result_type(x.dtype, np.complex64)
        k = np.arange(n)
        pre = np.exp(-1j * np.pi * k / n).astype(ctype)
        spec = scipy.fft.fft(x * pre, axis=-1, workers=1)[..., :m]
        n0 = 0.5 + m / 2
        post = (np.exp(-1j * np.pi * n0 * (np.arange(m) + 0.5) / m)
                * np.sqrt(2 / m)).astype(ctype)
        out = (spec * post).real.astype(float_dtype(x.dtype), copy=False)
    return np.moveaxis(out, -1, axis)


def imdct_array(coeffs: np.ndarray, axis: int = -1) -> np.ndarray:
    """Inverse of :func:`mdct_array` up to time-domain aliasing: ``M`` -> ``2M`` samples.

    ``y[n] = sqrt(2/M) · Σₖ X[k] cos(π/M (n + ½ + M/2)(k + ½))``. Windowed with a
    Princen-Bradley window and overlap-added at hop ``M``, the aliasing cancels.

    Parameters
    ----------
    coeffs : numpy.ndarray
        ``M`` (> 0) real coefficients along ``axis``.
    axis : int
        The axis of the coefficients.

    Returns
    -------
    numpy.ndarray
        ``coeffs``' shape with ``2M`` samples along ``axis``.
    """
    X = np.moveaxis(np.asarray(coeffs), axis, -1)  # noqa: N806 (the transform's name)
    m = X.shape[-1]
    if m == 0:
        raise ParameterError("the inverse MDCT needs at least one coefficient")
    if m % 2 == 0:
        h = m // 2
        y = scipy.fft.dct(X, type=4, norm="ortho", axis=-1, workers=1)
        p, q = y[..., :h], y[..., h:]
        out = np.concatenate([q, -q[..., ::-1], -p[..., ::-1], -p], axis=-1)
    else:
        n = 2 * m
        ctype = np.result_type(X.dtype, np.complex64)
        n0 = 0.5 + m / 2
        pre = np.exp(1j * np.pi * n0 * np.arange(m) / m).astype(ctype)
        padded = np.zeros((*X.shape[:-1], n), dtype=ctype)
        padded[..., :m] = X * pre
        z = scipy.fft.ifft(padded, axis=-1, workers=1) * n
        post = (np.exp(1j * np.pi * (np.arange(n) + n0) / n) * np.sqrt(2 / m)).astype(ctype)
        out = (z * post).real.astype(float_dtype(X.dtype), copy=False)
    return np.moveaxis(out, -1, axis)


class RowTransform:
    """``kind`` of transform along the last axis, a block of rows at a time.

    ``kind``: ``"rfft"`` (zero-padded to ``n``; unnormalised), ``"dct"`` (type II),
    ``"dctiv"``, ``"mdct"`` (orthonormal). The output is allocated once and filled a
    block of about 1 MiB of rows at a time (the rows' input, their transform and the
    scratch stay in cache).
    """

    def __init__(self, kind: str, n_in: int, n: int | None = None):
        if kind not in ("rfft", "dct", "dctiv", "mdct"):
            raise ParameterError(f"unknown transform {kind!r}")
        self.kind, self.n_in = kind, int(n_in)
        self.n = self.n_in if n is None else int(n)
        self.n_out = {"rfft": self.n // 2 + 1, "dct": self.n_in, "dctiv": self.n_in,
                      "mdct": self.n_in // 2}[kind]

    def out_dtype(self, in_dtype) -> np.dtype:
        """Return the dtype of the output."""
        if self.kind == "rfft":
            return _complex_of(in_dtype)
        dtype = float_dtype(in_dtype)
        if dtype.kind == "c":
            raise ParameterError(f"{self.kind} needs real input, got {dtype}")
        return dtype

    def _block(self, rows: np.ndarray, out: np.ndarray, buf: np.ndarray | None) -> None:
        if self.kind == "rfft":
            assert buf is not None  # allocated by __call__ for the rfft
            n = rows.shape[0]
            tmp = buf[:n]
            tmp[:, :self.n_in] = rows
            tmp[:, self.n_in:] = 0  # the FFT may have overwritten the padding
            if out.flags.c_contiguous:
                rfft(tmp, out=out)
            else:
                out[...] = rfft(tmp)
        elif self.kind == "mdct":
            out[...] = mdct_array(rows, axis=-1)
        else:
            out[...] = scipy.fft.dct(rows, type=2 if self.kind == "dct" else 4, norm="ortho",
                                     axis=-1, workers=1)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Run the kernel on one block."""
        if x.shape[-1] != self.n_in:
            raise ParameterError(f"expected windows of {self.n_in} samples, got {x.shape[-1]}")
        dtype = float_dtype(x.dtype)
        out_dtype = self.out_dtype(x.dtype)
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.n_in)
        out = np.empty((flat.shape[0], self.n_out), dtype=out_dtype)
        block = max(1, BLOCK_BYTES // (max(self.n, 1) * dtype.itemsize))
        buf = None
        if self.kind == "rfft":
            buf = np.zeros((min(block, max(flat.shape[0], 1)), self.n), dtype=dtype)
        with pinned_threads():
            for b in range(0, flat.shape[0], block):
                self._block(flat[b:b + block].astype(dtype, copy=False), out[b:b + block],
                            buf)
        return out.reshape(*lead, self.n_out)

    def __dask_tokenize__(self):
        return ("zounds_xr.RowTransform", self.kind, self.n_in, self.n)


# ------------------------------------------------------------------------------------
# labelled application
# ------------------------------------------------------------------------------------
def apply_along(x: xr.DataArray, func, dim: str, n_out: int, dtype, *,
                new_dim: str | None = None, args=()) -> xr.DataArray:
    """Apply ``func`` (numpy; last axis ``n_in`` -> ``n_out``) along ``dim`` of ``x``.

    The one helper that runs a kernel along a dim: numpy in -> numpy out; dask in ->
    lazy, one task per block (``dim`` is made one chunk, the other dims keep their
    chunks). The result has ``new_dim`` (default ``dim``) where ``dim`` was, without
    ``dim``'s coordinates, and every other coordinate, index, the name and attrs of
    ``x``. ``args`` are extra (scalar or 0-d DataArray) arguments passed to ``func``.
    """
    new_dim = dim if new_dim is None else new_dim
    if x.chunks is not None:
        x = x.chunk({dim: -1})
    out = xr.apply_ufunc(
        func, x, *args,
        input_core_dims=[[dim]] + [[] for _ in args], output_core_dims=[[new_dim]],
        exclude_dims={dim},
        dask="parallelized",
        dask_gufunc_kwargs={"output_sizes": {new_dim: n_out},
                            "meta": np.empty((0,) * x.ndim, dtype=dtype)},
        keep_attrs=True,
    )
    order = [new_dim if d == dim else d for d in x.dims]
    return out.transpose(*order)


def materialize(x: xr.DataArray, *, scheduler=None, num_workers: int | None = None
                ) -> xr.DataArray:
    """Compute a lazy DataArray into one preallocated numpy array, blocks in parallel.

    ``x.compute()`` runs the blocks in parallel, then dask concatenates them into the
    result on one thread: for a 10-minute |STFT| (211 MB) that copy, into freshly
    allocated memory, costs about as much as the transform. Here every block is written
    into its place in the output by the task that computed it (``dask.array.store``
    without a lock), so the output is assembled by all the workers and never
    concatenated.

    Parameters
    ----------
    x : xarray.DataArray
        Any DataArray; a numpy-backed one is returned as it is.
    scheduler : str, optional
        dask's scheduler (default: dask's configured one, threads for arrays).
    num_workers : int, optional
        Threads or processes of the scheduler.

    Returns
    -------
    xarray.DataArray
        ``x`` with numpy data: the same dims, coordinates, indexes, name and attrs.

    See Also
    --------
    stft, mel_spectrogram

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> audio = zx.AudioSamples(np.ones(22050, dtype="float32"), zx.SR11025())
    >>> spec = zx.stft(audio.chunk({"time": 4096}), magnitude=True)
    >>> type(zx.materialize(spec).data).__name__
    'ndarray'
    """
    if not isinstance(x.data, da.Array):
        return x
    check_output_size(x.shape, x.dtype, "the computed array")
    out = np.empty(x.shape, dtype=x.dtype)
    kwargs: dict[str, Any] = {} if num_workers is None else {"num_workers": num_workers}
    if scheduler is not None:
        kwargs["scheduler"] = scheduler
    da.store(x.data, out, lock=False, compute=True, **kwargs)
    return x.copy(data=out)
