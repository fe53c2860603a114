"""Frequency-adaptive transforms: time resolution that varies with frequency (zounds).

Layout of a frequency-adaptive array (what :func:`frequency_adaptive` returns and
:func:`FrequencyAdaptive` builds)
---------------------------------------------------------------------------------
A plain DataArray with dims ``("time", "frequency")``:

- ``time``: the frames of the (long-window) spectrum it was computed from, with that
  spectrum's ``TimeIndex`` (hop and window extent, e.g. 0.5 s / 1 s);
- ``frequency``: the coefficients of every band of ``scale``, one band after the
  other. Band ``i`` occupies positions ``slices[i]``; the axis carries a
  ``FrequencyIndex`` in coefficients-by-band mode, i.e. an
  ``ExplicitFrequencyDimension(scale, slices)`` (``fa.zx.dimensions[1].scale`` is the
  scale, ``.slices`` the slices), and each position is labelled by its band's centre.
  ``fa.sel(frequency=FrequencyBand(a, b))`` keeps the coefficients of the bands
  overlapping ``[a, b)``.

One array (not a Dataset of per-band arrays) keeps it a single chunked, storable
variable; :func:`bands` gives the per-band views back.
"""
from __future__ import annotations

import inspect
import math
import numbers
from fractions import Fraction

import dask.array as da
import numpy as np
import scipy.signal
import xarray as xr

from ..dimensions.arrays import ArrayWithUnits
from ..core.errors import ParameterError
from ..frequency.dimension import ExplicitFrequencyDimension
from ..frequency.index import frequency_coords
from ..frequency.scales import FrequencyScale
from ..timeseries.index import TimeIndex, time_coords
from .windowing import window_values
from .filters import frequency_index
from .kernels import apply_along

__all__ = ["frequency_adaptive", "square", "FrequencyAdaptive", "bands", "overlap_add"]


# ------------------------------------------------------------------------------------
# construction and access
# ------------------------------------------------------------------------------------
def FrequencyAdaptive(arrs, time_dimension, scale=None, explicit_freq_dimension=None,  # noqa: N802
                      *, name=None) -> xr.DataArray:
    """Return a frequency-adaptive array from per-band coefficient arrays (zounds' constructor).

    Parameters
    ----------
    arrs : sequence of array_like, each ``(n_frames, n_i)``
        The coefficients of each band (numpy or dask; all the same number of frames).
    time_dimension : TimeDimension
        The frames' time axis.
    scale : FrequencyScale, optional
        The bands (one array per band); the slices follow from the arrays' widths.
    explicit_freq_dimension : ExplicitFrequencyDimension, optional
        Instead of ``scale``: scale and slices (which must match the arrays' widths).
    name : hashable, optional
        The result's name.

    Returns
    -------
    xarray.DataArray [dims=("time", "frequency")]
        See the module docstring for the layout.

    Raises
    ------
    ParameterError
        When not exactly one of ``scale`` and ``explicit_freq_dimension`` is given, or
        the arrays are not 2-D, differ in frames, or do not match the bands.
    """
    if (scale is None) == (explicit_freq_dimension is None):
        raise ParameterError("give exactly one of scale and explicit_freq_dimension")
    arrs = [a if hasattr(a, "ndim") else np.asarray(a) for a in arrs]
    if any(a.ndim != 2 for a in arrs):
        raise ParameterError("each band's coefficients must be (n_frames, n_coefficients)")
    if len({a.shape[0] for a in arrs}) > 1:
        raise ParameterError("every band must have the same number of frames")
    widths = np.array([a.shape[1] for a in arrs], dtype=np.int64)
    stops = np.cumsum(widths)
    slices = [slice(int(b - w), int(b)) for b, w in zip(stops, widths, strict=True)]
    if explicit_freq_dimension is None:
        if len(arrs) != len(scale):
            raise ParameterError(f"{len(arrs)} arrays given for a scale of {len(scale)} bands")
        fdim = ExplicitFrequencyDimension(scale, slices)
    else:
        fdim = explicit_freq_dimension
        if list(fdim.slices) != slices:
            raise ParameterError("the arrays' widths do not match the dimension's slices")
    lazy = any(isinstance(a, da.Array) for a in arrs)
    data = (da.concatenate if lazy else np.concatenate)(arrs, axis=1)
    return ArrayWithUnits(data, [time_dimension, fdim], name=name)


def _adaptive_index(fa: xr.DataArray, dim: str = "frequency"):
    index = frequency_index(fa, dim, one_per_band=False)
    if index.slices is None:
        raise ParameterError(
            f"expected a frequency-adaptive array (coefficients grouped by band on {dim!r}); "
            "this axis has one position per band")
    return index


def bands(fa: xr.DataArray, *, dim: str = "frequency"):
    """Yield ``(band, coefficients)`` for every band of a frequency-adaptive array.

    ``coefficients`` is the (lazy when ``fa`` is) DataArray slice of that band.
    """
    index = _adaptive_index(fa, dim)
    for band, s in zip(index.scale, index.slices, strict=True):
        yield band, fa.isel({dim: s})


# ------------------------------------------------------------------------------------
# the transform
# ------------------------------------------------------------------------------------
def _accepts_norm(transform) -> bool:
    try:
        params = inspect.signature(transform).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: numpy/scipy FFTs take it
        return True
    return any(p.name == "norm" or p.kind is p.VAR_KEYWORD for p in params)


class _BandTransform:
    """Numpy kernel: the spectrum block ``(..., F)`` -> concatenated band coefficients."""

    def __init__(self, transform, source_slices, windows, use_norm: bool, dtype):
        self.transform = transform
        self.source_slices = source_slices
        self.windows = windows
        self.use_norm = use_norm
        self.dtype = np.dtype(dtype)

    def band(self, block: np.ndarray, i: int) -> np.ndarray:
        coeffs = block[..., self.source_slices[i]]
        w = self.windows[i]
        if w is not None:
            coeffs = coeffs * w.astype(coeffs.real.dtype, copy=False)
        if self.use_norm:
            return np.asarray(self.transform(coeffs, norm="ortho"))
        return np.asarray(self.transform(coeffs))

    def __call__(self, block: np.ndarray) -> np.ndarray:
        out = [self.band(block, i) for i in range(len(self.source_slices))]
        return np.concatenate(out, axis=-1).astype(self.dtype, copy=False)

    def __dask_tokenize__(self):
        return ("zounds_xr._BandTransform", repr(self.transform), tuple(
            (s.start, s.stop) for s in self.source_slices),
            tuple(None if w is None else w.tobytes() for w in self.windows), self.use_norm,
            str(self.dtype))


def frequency_adaptive(x: xr.DataArray, transform, scale, window_func=None,
                       check_scale_overlap_ratio: bool = False, *,
                       dim: str = "frequency") -> xr.DataArray:
    """Return a frequency-adaptive transform of a (long-window) spectrum (zounds).

    For each band of ``scale``, the bins of ``x`` that overlap it (half-open overlap,
    ``source_scale.get_slice(band)``) are multiplied by ``window_func(n_bins)`` and
    transformed by ``transform`` along the bins: ``transform(windowed, norm="ortho")``
    (zounds' call; ``norm`` is left out for a callable that does not accept it). With
    ``x = fft(long frames)`` and ``transform=np.fft.irfft`` each band becomes a short
    time-domain signal of ``2 * (n_bins - 1)`` samples at that band's resolution: low
    bands (few bins) get few coefficients, high bands many. ``dct`` +
    ``scipy.fft.idct`` works the same way with ``n_bins`` coefficients.

    Parameters
    ----------
    x : xarray.DataArray [dims=(..., "frequency")]
        A spectrum with one position per band (``fft``/``dct`` output), numpy or dask
        (lazy; chunk along ``time`` only).
    transform : callable
        Applied to ``(..., n_bins)`` arrays along the last axis.
    scale : FrequencyScale
        The bands (e.g. ``GeometricScale(100, 5000, 0.089, 100)``).
    window_func : callable, optional
        ``window_func(n)`` gives ``n`` weights (``np.hanning``, a ``WindowingFunc``);
        ``None`` for none.
    check_scale_overlap_ratio : bool
        Check (``scale.ensure_overlap_ratio(0.5)``) that adjacent bands overlap by at
        least half, as an invertible transform needs.
    dim : str
        The frequency dim of ``x``.

    Returns
    -------
    xarray.DataArray [dims=("time", "frequency")]
        The layout described in the module docstring; dtype is the transform's output
        dtype.

    Raises
    ------
    ParameterError
        When a band covers no bin of ``x`` (``"band ... covers no bins"``), the overlap
        check fails, or ``x`` has no one-per-band frequency axis.
    """
    index = frequency_index(x, dim)
    if not isinstance(scale, FrequencyScale):
        raise ParameterError(f"scale must be a FrequencyScale, got {scale!r}")
    if not callable(transform):
        raise ParameterError(f"transform must be callable, got {transform!r}")
    if check_scale_overlap_ratio:
        scale.ensure_overlap_ratio(0.5)
    source = index.scale
    source_slices, windows = [], []
    for i, band in enumerate(scale):
        s = source.get_slice(band)
        if s.stop <= s.start:
            raise ParameterError(f"band {i} ({band!r}) covers no bins of the input's "
                                 f"{source!r}")
        source_slices.append(s)
        windows.append(window_values(window_func, s.stop - s.start, name="window_func"))
    use_norm = _accepts_norm(transform)
    # the output length and dtype of each band: the transform of one frame of zeros
    probe = _BandTransform(transform, source_slices, windows, use_norm, np.float64)
    zeros = np.zeros((1, index.size), dtype=x.dtype)
    outs = [probe.band(zeros, i) for i in range(len(source_slices))]
    if any(o.ndim != 2 or o.shape[0] != 1 for o in outs):
        raise ParameterError("transform must keep the leading axes and work on the last one")
    widths = [o.shape[1] for o in outs]
    dtype = np.result_type(*[o.dtype for o in outs])
    stops = np.cumsum(widths)
    slices = [slice(int(b - w), int(b)) for b, w in zip(stops, widths, strict=True)]
    kernel = _BandTransform(transform, source_slices, windows, use_norm, dtype)

    out = apply_along(x, kernel, dim, int(stops[-1]) if len(stops) else 0, dtype)
    out = out.assign_coords(frequency_coords(scale, dim=dim, slices=slices))
    out.attrs = {}
    return out


# ------------------------------------------------------------------------------------
# square view
# ------------------------------------------------------------------------------------
class _Square:
    def __init__(self, slices, n_coeffs: int, dtype):
        self.slices = slices
        self.n_coeffs = n_coeffs
        self.dtype = np.dtype(dtype)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        out = np.empty((*block.shape[:-1], self.n_coeffs, len(self.slices)), dtype=self.dtype)
        for i, s in enumerate(self.slices):
            coeffs = block[..., s]
            if coeffs.shape[-1] == self.n_coeffs:
                out[..., i] = coeffs
            else:
                out[..., i] = scipy.signal.resample(coeffs, self.n_coeffs, axis=-1)
        return out

    def __dask_tokenize__(self):
        return ("zounds_xr._Square", tuple((s.start, s.stop) for s in self.slices),
                self.n_coeffs, str(self.dtype))


def square(fa: xr.DataArray, n_coeffs: int, do_overlap_add: bool = False, *,
           dim: str = "frequency") -> xr.DataArray:
    """Return a "square" view: every band resampled to ``n_coeffs`` coefficients (zounds).

    Each band's coefficients in a frame (a short signal covering the frame's duration)
    are resampled to ``n_coeffs`` by ``scipy.signal.resample`` (Fourier method).

    Parameters
    ----------
    fa : xarray.DataArray [dims=("time", "frequency")]
        A frequency-adaptive array (:func:`frequency_adaptive`) with a ``TimeIndex`` on
        ``time`` and no ``window`` dim.
    n_coeffs : int > 0
        Coefficients of every band after resampling.
    do_overlap_add : bool
        Overlap-add the frames at their hop into one time axis.
    dim : str
        The frequency dim.

    Returns
    -------
    xarray.DataArray
        Without overlap-add: dims ``("time", "window", "frequency")``, shape
        ``(n_frames, n_coeffs, n_bands)``; ``window`` is a time axis of step
        ``frame duration / n_coeffs``, ``frequency`` the scale (one position per band).
        With ``do_overlap_add``: the frames overlap-added at their hop, dims
        ``("time", "frequency")``, ``time`` at the coefficient rate
        (``frame duration / n_coeffs``), ``(n_frames - 1) * hop + n_coeffs`` long, where
        ``hop = n_coeffs * frame step / frame duration`` must be a whole number
        (departure from zounds, which used the overlap ratio as the step ratio: the same
        at half overlap).

    Raises
    ------
    ParameterError
        When ``fa`` is not frequency-adaptive, has no ``time`` ``TimeIndex``, or the hop
        rounds to zero coefficients.

    See Also
    --------
    frequency_adaptive, bands, overlap_add
    """
    index = _adaptive_index(fa, dim)
    n_coeffs = int(n_coeffs) if isinstance(n_coeffs, numbers.Integral) and n_coeffs > 0 \
        else _bad_n(n_coeffs)
    tindex = fa.xindexes.get("time")
    if not isinstance(tindex, TimeIndex):
        raise ParameterError("the frequency-adaptive array needs a TimeIndex on 'time'")
    if "window" in fa.dims:
        raise ParameterError("the input already has a 'window' dim")
    dtype = np.result_type(fa.dtype, np.float32)
    x = fa.chunk({dim: -1}) if fa.chunks is not None else fa
    step = Fraction(tindex.duration) / n_coeffs
    kernel = _Square(index.slices, n_coeffs, dtype)
    out = xr.apply_ufunc(
        kernel, x, input_core_dims=[[dim]], output_core_dims=[["window", dim]],
        exclude_dims={dim}, dask="parallelized",
        dask_gufunc_kwargs={"output_sizes": {"window": n_coeffs, dim: len(index.scale)},
                            "meta": np.empty((0,) * (x.ndim + 1), dtype=dtype)})
    order: list = []
    for d in fa.dims:
        order += ["window", dim] if d == dim else [d]
    out = out.transpose(*order)
    out = out.assign_coords(time_coords(n_coeffs, step, dim="window"))
    out = out.assign_coords(frequency_coords(index.scale, dim=dim))
    out.attrs = {}
    if not do_overlap_add:
        return out
    exact_hop = Fraction(tindex.frequency) * n_coeffs / Fraction(tindex.duration)
    hop = round(exact_hop)
    if hop < 1:
        raise ParameterError(
            f"n_coeffs={n_coeffs} gives a hop of {float(exact_hop):.3g} coefficients; "
            "overlap-add needs at least one")
    rest = [d for d in out.dims if d not in ("time", "window")]
    frames = out.transpose("time", "window", *rest)
    summed = overlap_add(frames.data, int(hop))
    result = xr.DataArray(summed, dims=("time", *rest), name=fa.name)
    keep = frames.drop_vars([k for k, v in frames.coords.items()
                             if {"time", "window"} & set(v.dims)])
    result = result.assign_coords(keep.coords)
    result = result.assign_coords(
        time_coords(result.shape[0], step, start=tindex.start, dim="time"))
    return result.transpose(*[d for d in fa.dims])


def _bad_n(value):
    raise ParameterError(f"n_coeffs must be a positive integer, got {value!r}")


# ------------------------------------------------------------------------------------
# overlap-add (numpy or dask)
# ------------------------------------------------------------------------------------
def overlap_add(frames, hop: int):
    """Sum frames ``(T, N, ...)`` placed every ``hop`` samples: ``((T - 1) * hop + N, ...)``.

    Works on numpy and (lazily) on dask arrays chunked along the first axis. Frames
    ``r, r + R, r + 2R ...`` with ``R = ceil(N / hop)`` never overlap, so each such
    phase is laid end to end by a reshape, shifted by ``r * hop`` and the ``R`` phases
    are summed: no Python loop over frames.
    """
    if isinstance(hop, bool) or not isinstance(hop, numbers.Integral) or hop < 1:
        raise ParameterError(f"hop must be a positive integer, got {hop!r}")
    xp = da if isinstance(frames, da.Array) else np
    t, n = frames.shape[0], frames.shape[1]
    rest = frames.shape[2:]
    if t == 0:
        return xp.zeros((0, *rest), dtype=frames.dtype)
    length = (t - 1) * hop + n
    r_count = max(1, math.ceil(n / hop))
    span = r_count * hop
    total = None
    no_pad = [(0, 0)] * len(rest)
    for r in range(min(r_count, t)):
        phase = frames[r::r_count]
        if span > n:
            phase = xp.pad(phase, [(0, 0), (0, span - n), *no_pad])
        laid = phase.reshape((phase.shape[0] * span, *rest))
        before = r * hop
        after = length - before - laid.shape[0]
        if after >= 0:
            laid = xp.pad(laid, [(before, after), *no_pad])
        else:
            laid = xp.pad(laid[:laid.shape[0] + after], [(before, 0), *no_pad])
        total = laid if total is None else total + laid
    return total
