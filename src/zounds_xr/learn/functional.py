"""Pure functions behind the learn modules: filter design (numpy) and tensor ops (torch).

The Morlet filter design is :func:`zounds_xr.spectral.filters.morlet_filter_bank` (the
one implementation; :class:`~zounds_xr.learn.FilterBank` holds its output as a buffer,
as torchaudio's ``MelScale`` holds ``melscale_fbanks``).

The ``nn.Module`` classes of :mod:`zounds_xr.learn.modules` only hold configuration and
buffers and call these functions (torchaudio's functional/transforms split). Filter
design is plain numpy (it runs once, at construction); the tensor ops are
device-agnostic: they run wherever their inputs live (CPU or CUDA) and support autograd.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.signal.windows import gaussian

from ..core.optional import optional_import
from ..core.errors import ParameterError
from ..spectral.filters import morlet, morlet_filter_bank
from ..spectral.weighting import AWeighting

if TYPE_CHECKING:  # type checkers read torch; at run time it is imported with a hint
    import torch
    import torch.nn.functional as F  # noqa: N812
else:
    torch = optional_import("torch")
    F = torch.nn.functional

__all__ = [
    "scale_edges",
    "as_samples_per_second",
    "morlet",
    "morlet_filter_bank",
    "a_weighting_gain",
    "fir_filter_bank",
    "sinc_filters",
    "filter_bank_conv",
    "perceptual_features",
    "perceptual_loss",
]


# -- parameters --------------------------------------------------------------------------
def as_samples_per_second(samplerate: Any) -> float:
    """Return the samples per second of an ``AudioSampleRate`` (or a plain positive number).

    Parameters
    ----------
    samplerate : SampleRate or float > 0
        Anything with ``samples_per_second``, or a number of Hz.

    Returns
    -------
    float
        Finite and positive.

    Raises
    ------
    ParameterError
        For anything else.
    """
    value = getattr(samplerate, "samples_per_second", samplerate)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"samplerate must be an audio sample rate, got {samplerate!r}") \
            from None
    if not value > 0 or not math.isfinite(value):
        raise ParameterError(f"samplerate must be positive, got {samplerate!r}")
    return value


def scale_edges(scale: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(centers, starts, stops)`` in Hz of the bands of a frequency scale.

    Parameters
    ----------
    scale : FrequencyScale or sequence of FrequencyBand
        A :class:`~zounds_xr.frequency.scales.FrequencyScale` (``center_frequencies``,
        ``band_starts``/``band_stops`` or ``bandwidths``), or any sequence of
        ``FrequencyBand``-like objects with ``start_hz``/``stop_hz``; at least one band.

    Returns
    -------
    centers, starts, stops : numpy.ndarray [shape=(n_bands,), float64]
        Band centres (the scale's labels; midpoints for plain bands) and edges, in Hz.
    """
    if hasattr(scale, "center_frequencies"):
        centers = np.asarray(scale.center_frequencies, dtype=np.float64)
        if hasattr(scale, "band_starts") and hasattr(scale, "band_stops"):
            starts = np.asarray(scale.band_starts, dtype=np.float64)
            stops = np.asarray(scale.band_stops, dtype=np.float64)
        else:
            half = np.asarray(scale.bandwidths, dtype=np.float64) / 2
            starts, stops = centers - half, centers + half
    else:
        try:
            bands = list(scale)
            starts = np.array([b.start_hz for b in bands], dtype=np.float64)
            stops = np.array([b.stop_hz for b in bands], dtype=np.float64)
        except (TypeError, AttributeError):
            raise ParameterError(f"scale must be a FrequencyScale, got {scale!r}") from None
        centers = (starts + stops) / 2
    if centers.ndim != 1 or centers.size == 0:
        raise ParameterError(f"scale must have at least one band, got {scale!r}")
    return centers, starts, stops


# -- filter design (numpy) ---------------------------------------------------------------
# ``morlet`` and ``morlet_filter_bank`` are the library's one Morlet design
# (:mod:`zounds_xr.spectral.filters`), re-exported here for the torch side.


def a_weighting_gain(frequencies: ArrayLike) -> np.ndarray:
    """IEC 61672-1 A-weighting as a linear amplitude gain (1.0 at 1 kHz).

    The same curve as :class:`zounds_xr.AWeighting` (one definition for the library).

    Parameters
    ----------
    frequencies : array_like of float >= 0
        Frequencies in Hz.

    Returns
    -------
    numpy.ndarray [shape=np.shape(frequencies), float64]
        Linear amplitude gains.

    See Also
    --------
    zounds_xr.AWeighting : The weighting object (dB, gains, application to spectra).
    """
    return AWeighting().gains(frequencies)


def fir_filter_bank(scale, taps: int, samplerate, frequency_window=None) -> np.ndarray:
    """Real FIR band-pass filters designed in the frequency domain.

    For each band, ``frequency_window`` is stretched over the FFT bins of
    ``[start_hz, stop_hz)`` (at least one bin), the response is turned into a zero-phase
    impulse response with ``irfft``, centred, tapered with a Hann window and given unit
    norm.

    Parameters
    ----------
    scale : FrequencyScale or sequence of FrequencyBand
        One filter per band.
    taps : int >= 4
        Filter length in samples.
    samplerate : SampleRate or float > 0
        Rate of the signals.
    frequency_window : array_like of float, optional
        Shape of each filter's magnitude response over its band, at least two values
        (default: ``scipy.signal.windows.gaussian(100, 3)``).

    Returns
    -------
    numpy.ndarray [shape=(n_bands, taps), float64]
        Unit-norm filters (an all-zero response stays zero).

    See Also
    --------
    PerceptualLoss : The module using them.
    """
    sr = as_samples_per_second(samplerate)
    taps = int(taps)
    if taps < 4:
        raise ParameterError(f"taps must be at least 4, got {taps}")
    if frequency_window is None:
        frequency_window = gaussian(100, 3)
    window = np.asarray(frequency_window, dtype=np.float64)
    if window.ndim != 1 or window.size < 2:
        raise ParameterError("frequency_window must be a 1-D array of at least two values")
    _, starts, stops = scale_edges(scale)
    n_bins = taps // 2 + 1
    bin_hz = sr / taps
    grid = np.linspace(0, 1, window.size)
    taper = np.hanning(taps)
    out = np.zeros((len(starts), taps))
    for i, (a, b) in enumerate(zip(starts, stops, strict=True)):
        first = int(np.clip(np.floor(max(a, 0) / bin_hz), 0, n_bins - 1))
        last = int(np.clip(np.ceil(b / bin_hz), first + 1, n_bins))
        response = np.zeros(n_bins)
        response[first:last] = np.interp(np.linspace(0, 1, last - first), grid, window)
        kernel = np.fft.fftshift(np.fft.irfft(response, n=taps)) * taper
        norm = np.linalg.norm(kernel)
        out[i] = kernel / norm if norm > 0 else kernel
    return out


# -- tensor ops (torch) -------------------------------------------------------------------
def sinc_filters(low_hz, band_hz, taps: int, samplerate, *, min_low_hz: float = 1.0,
                 min_band_hz: float = 1.0):
    """SincNet band-pass filters from learnable cutoffs (Ravanelli & Bengio, 2018).

    Band ``i`` passes ``[f1, f2]`` with ``f1 = min_low_hz + |low_hz[i]|`` and
    ``f2 = clamp(f1 + min_band_hz + |band_hz[i]|, max=nyquist)``: the difference of two
    windowed sinc low-pass filters, Hamming-tapered (unit gain in the pass band).
    Differentiable in ``low_hz`` and ``band_hz``.

    Parameters
    ----------
    low_hz, band_hz : torch.Tensor [shape=(n_bands,)]
    taps : int
        Filter length (odd lengths are symmetric around the centre sample).
    samplerate : AudioSampleRate or float

    Returns
    -------
    torch.Tensor [shape=(n_bands, taps)]
    """
    sr = as_samples_per_second(samplerate)
    taps = int(taps)
    if taps < 3:
        raise ParameterError(f"taps must be at least 3, got {taps}")
    device, dtype = low_hz.device, low_hz.dtype
    f1 = min_low_hz + torch.abs(low_hz)
    f2 = torch.clamp(f1 + min_band_hz + torch.abs(band_hz), max=sr / 2)
    n = torch.arange(taps, device=device, dtype=dtype) - (taps - 1) / 2  # samples
    window = torch.hamming_window(taps, periodic=False, device=device, dtype=dtype)
    # ideal low-pass at normalised cutoff c (cycles/sample): 2 c sinc(2 c n), unit DC gain
    c1, c2 = (f1 / sr)[:, None], (f2 / sr)[:, None]
    low = 2 * c1 * torch.sinc(2 * c1 * n[None, :])
    high = 2 * c2 * torch.sinc(2 * c2 * n[None, :])
    return (high - low) * window[None, :]


def _as_batch_channel(x):
    """Return ``x`` as ``(batch, 1, time)``.

    ``x`` as ``(batch, 1, time)``: accepts ``(time,)``, ``(batch, time)`` and
    ``(batch, 1, time)``.
    """
    if x.ndim == 1:
        return x[None, None, :]
    if x.ndim == 2:
        return x[:, None, :]
    if x.ndim == 3 and x.shape[1] == 1:
        return x
    raise ParameterError(
        f"expected a signal of shape (time,), (batch, time) or (batch, 1, time), got "
        f"{tuple(x.shape)}")


def filter_bank_conv(x, filters, *, stride: int = 1, padding: str | int = "same"):
    """Convolve 1-D signals with a bank of real filters.

    Parameters
    ----------
    x : torch.Tensor [shape=(time,) or (batch, time) or (batch, 1, time)]
    filters : torch.Tensor [shape=(n_bands, taps)]
    stride : int
    padding : "same" or int
        ``"same"`` pads ``taps // 2`` on both sides, so that with ``stride=1`` the
        output has as many samples as the input (for odd ``taps``).

    Returns
    -------
    torch.Tensor [shape=(batch, n_bands, frames)]
    """
    x = _as_batch_channel(x)
    taps = filters.shape[-1]
    pad = taps // 2 if padding == "same" else int(padding)
    out = F.conv1d(x, filters[:, None, :].to(x.dtype), stride=int(stride), padding=pad)
    if padding == "same" and stride == 1 and out.shape[-1] > x.shape[-1]:
        out = out[..., :x.shape[-1]]
    return out


def perceptual_features(x, filters, *, lap: int = 2, log_factor: float = 100.0,
                        weights=None):
    """Filter-bank, half-wave rectified, log-compressed band energies.

    ``log(1 + log_factor · relu(filters * x))``, optionally times per-band ``weights``.

    Parameters
    ----------
    x : torch.Tensor [shape=(time,) or (batch, time) or (batch, 1, time)]
        Signals.
    filters : torch.Tensor [shape=(n_bands, taps)]
        Real filters (:func:`fir_filter_bank`).
    lap : int > 0
        Stride of the convolution.
    log_factor : float > 0
        Compression factor.
    weights : torch.Tensor [shape=(n_bands,)], optional
        Per-band gains.

    Returns
    -------
    torch.Tensor [shape=(batch, n_bands, frames)]
        ``frames = ceil(time / lap)`` (``"same"`` padding).

    See Also
    --------
    perceptual_loss : A distance in this feature space.
    """
    bands = filter_bank_conv(x, filters, stride=lap)
    bands = torch.log1p(log_factor * F.relu(bands))
    if weights is not None:
        bands = bands * weights.to(bands.dtype)[None, :, None]
    return bands


def perceptual_loss(input, target, filters, *, lap: int = 2, log_factor: float = 100.0,
                    weights=None, cosine_similarity: bool = True):
    """Distance between two batches of signals in a perceptual feature space.

    With ``cosine_similarity=True``: ``mean(1 - cos(feat(input), feat(target)))`` over
    examples (0 for identical features); else the mean squared error of the features.

    Parameters
    ----------
    input, target : torch.Tensor [shape=(batch, time) or (batch, 1, time)]
        Signals of the same shape.
    filters, lap, log_factor, weights
        See :func:`perceptual_features`.
    cosine_similarity : bool
        Cosine distance (True) or mean squared error (False).

    Returns
    -------
    torch.Tensor [shape=()]
        The loss, differentiable in ``input``.

    Raises
    ------
    ParameterError
        When the shapes differ.

    See Also
    --------
    PerceptualLoss : The module.
    """
    if input.shape != target.shape:
        raise ParameterError(
            f"input and target must have the same shape, got {tuple(input.shape)} and "
            f"{tuple(target.shape)}")
    n = input.shape[0] if input.ndim > 1 else 1
    a = perceptual_features(input.reshape(n, -1), filters, lap=lap, log_factor=log_factor,
                            weights=weights)
    b = perceptual_features(target.reshape(n, -1), filters, lap=lap, log_factor=log_factor,
                            weights=weights)
    if cosine_similarity:
        return (1 - F.cosine_similarity(a.reshape(n, -1), b.reshape(n, -1), dim=-1,
                                        eps=1e-8)).mean()
    return F.mse_loss(a, b)
