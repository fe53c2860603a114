"""Torch modules: thin wrappers over :mod:`zounds_xr.learn.functional`.

The modules hold filters as buffers (or parameters) and delegate
to :mod:`zounds_xr.learn.functional`. Device-agnostic: ``module.to("cuda")`` moves the
buffers, and ``forward`` runs wherever its input lives.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..core.optional import optional_import
from ..core.errors import ParameterError
from ..spectral.filters import morlet_filter_bank
from . import functional as Fz

if TYPE_CHECKING:  # type checkers read torch; at run time it is imported with a hint
    import torch
    from torch import nn
else:
    torch = optional_import("torch")
    nn = torch.nn

__all__ = ["FilterBank", "SincLayer", "PerceptualLoss"]


class FilterBank(nn.Module):
    """Convolve a 1-D signal with a bank of (real) Morlet filters.

    The filters are :func:`zounds_xr.morlet_filter_bank`'s output, held as the
    ``filters`` buffer (as torchaudio's ``MelScale`` holds ``melscale_fbanks``): the
    library has one Morlet design.

    Parameters
    ----------
    samplerate : AudioSampleRate or int > 0
        The rate of the input signal.
    kernel_size : int > 0
        Length of each filter in samples.
    scale : FrequencyScale
        Band centres give each filter's frequency.
    scaling_factors : float or sequence of float > 0
        Per-band time/frequency trade-off, usually in (0, 1] (smaller: sharper in
        frequency); one for all bands or one per band.
    normalize_filters : bool
        Give every filter unit norm (before the A-weighting).
    a_weighting : bool
        Multiply each filter by the IEC 61672 A-weighting gain at its band centre.

    Notes
    -----
    ``forward(x)``: ``x`` of shape ``(time,)``, ``(batch, time)`` or
    ``(batch, 1, time)`` -> ``(batch, n_bands, time)`` (``"same"`` padding). The
    ``filters`` buffer has shape ``(n_bands, kernel_size)`` and the default dtype.
    Devices: CPU, CUDA. Autograd: yes (with respect to the input).

    See Also
    --------
    zounds_xr.morlet_filter_bank : The filter design.
    SincLayer : Band-pass filters with learnable cut-offs.
    """

    def __init__(self, samplerate, kernel_size: int, scale, scaling_factors,
                 normalize_filters: bool = True, a_weighting: bool = True):
        super().__init__()
        self.samplerate = samplerate
        self.scale = scale
        self.kernel_size = int(kernel_size)
        basis = morlet_filter_bank(samplerate, kernel_size, scale, scaling_factors,
                                   normalize=normalize_filters).values
        if a_weighting:
            basis = basis * Fz.a_weighting_gain(scale.center_frequencies)[:, None]
        self.register_buffer("filters", torch.from_numpy(np.ascontiguousarray(basis))
                             .to(torch.get_default_dtype()))

    filters: torch.Tensor

    @property
    def n_bands(self) -> int:
        """The number of filters (bands of the scale)."""
        return int(self.filters.shape[0])

    def forward(self, x):
        """``(time,)``, ``(batch, time)`` or ``(batch, 1, time)`` -> ``(batch, n_bands, time)``."""
        return Fz.filter_bank_conv(x, self.filters, padding="same")

    def extra_repr(self) -> str:
        """Return the bank's size, for ``repr``."""
        return f"n_bands={self.n_bands}, kernel_size={self.kernel_size}"


class SincLayer(nn.Module):
    """SincNet's first layer: band-pass filters with learnable low/high cutoffs.

    "Speaker Recognition from raw waveform with SincNet" (Ravanelli & Bengio, 2018): only
    each band's low cutoff and bandwidth are learned (parameters ``low_hz`` and
    ``band_hz``, initialised from the scale's band edges), the filters are rebuilt from
    them at every ``forward``.

    Parameters
    ----------
    scale : FrequencyScale
        Initial band-pass filters (band edges, clipped to ``[0, nyquist]``).
    taps : int >= 3
        Filter length in samples.
    samplerate : AudioSampleRate or float > 0
        Rate of the incoming samples.
    min_low_hz : float >= 0
        Lowest low cutoff (added to ``|low_hz|``).
    min_band_hz : float >= 0
        Narrowest band (added to ``|band_hz|``).

    Notes
    -----
    ``forward(x)``: ``(time,)``, ``(batch, time)`` or ``(batch, 1, time)`` ->
    ``(batch, n_bands, time)``. Devices: CPU, CUDA. Autograd: yes (the cut-offs learn).

    See Also
    --------
    zounds_xr.learn.functional.sinc_filters : The filter design.
    FilterBank : Fixed Morlet filters.
    """

    def __init__(self, scale, taps, samplerate, min_low_hz=1.0, min_band_hz=1.0):
        super().__init__()
        self.taps = int(taps)
        self.samplerate = samplerate
        self.min_low_hz = float(min_low_hz)
        self.min_band_hz = float(min_band_hz)
        sr = Fz.as_samples_per_second(samplerate)
        _, starts, stops = Fz.scale_edges(scale)
        starts = np.clip(starts, 0, sr / 2)
        stops = np.clip(stops, 0, sr / 2)
        low = np.maximum(starts - self.min_low_hz, 0.0)
        band = np.maximum(stops - starts - self.min_band_hz, 0.0)
        dtype = torch.get_default_dtype()
        self.low_hz = nn.Parameter(torch.as_tensor(low, dtype=dtype))
        self.band_hz = nn.Parameter(torch.as_tensor(band, dtype=dtype))

    @property
    def n_bands(self) -> int:
        """The number of band-pass filters."""
        return self.low_hz.shape[0]

    def cutoffs(self):
        """``(low, high)`` cutoff frequencies in Hz as tensors (what the filters use)."""
        sr = Fz.as_samples_per_second(self.samplerate)
        f1 = self.min_low_hz + torch.abs(self.low_hz)
        f2 = torch.clamp(f1 + self.min_band_hz + torch.abs(self.band_hz), max=sr / 2)
        return f1, f2

    def filters(self):
        """Return the current filters, shape ``(n_bands, taps)``."""
        return Fz.sinc_filters(self.low_hz, self.band_hz, self.taps, self.samplerate,
                               min_low_hz=self.min_low_hz, min_band_hz=self.min_band_hz)

    def forward(self, x):
        """``(time,)``, ``(batch, time)`` or ``(batch, 1, time)`` -> ``(batch, n_bands, time)``."""
        return Fz.filter_bank_conv(x, self.filters(), padding="same")

    def extra_repr(self) -> str:
        """Return the layer's size, for ``repr``."""
        return f"n_bands={self.n_bands}, taps={self.taps}"


class PerceptualLoss(nn.Module):
    """Loss in a feature space that roughly models early auditory processing.

    The signals are split into bands by an FIR filter bank centred on the scale's bands
    (:func:`~zounds_xr.learn.functional.fir_filter_bank`), half-wave rectified,
    log-compressed (``log(1 + log_factor · x)``), optionally re-weighted per band, and
    compared with cosine distance (``1 - cos``) or mean squared error.

    Parameters
    ----------
    scale : FrequencyScale
        Band layout of the filter bank.
    samplerate : AudioSampleRate or float > 0
        Rate of the signals.
    frequency_window : array_like, optional
        Shape of each filter's frequency response (default:
        ``scipy.signal.windows.gaussian(100, 3)``).
    basis_size : int >= 4
        Filter taps.
    lap : int > 0
        Filter stride.
    log_factor : float > 0
        Log compression.
    frequency_weighting : callable or object, optional
        ``None``, an object with a ``weights``/``gain`` method, or a callable mapping band
        centres (Hz) to linear gains (e.g.
        :func:`~zounds_xr.learn.functional.a_weighting_gain`, ``zx.AWeighting()``).
    cosine_similarity : bool
        Cosine distance (True) or mean squared error (False).

    Notes
    -----
    ``forward(input, target)``: two tensors of the same shape ``(batch, time)`` (or
    ``(batch, 1, time)``) -> a scalar. Devices: CPU, CUDA. Autograd: yes.

    Raises
    ------
    ParameterError
        When ``frequency_weighting`` does not give one gain per band, or a size is out
        of range.

    See Also
    --------
    zounds_xr.learn.functional.perceptual_loss : The function it calls.
    """

    def __init__(self, scale, samplerate, frequency_window=None, basis_size=512, lap=2,
                 log_factor=100, frequency_weighting=None, cosine_similarity=True):
        super().__init__()
        self.lap = int(lap)
        self.log_factor = float(log_factor)
        self.cosine_similarity = bool(cosine_similarity)
        filters = Fz.fir_filter_bank(scale, basis_size, samplerate, frequency_window)
        dtype = torch.get_default_dtype()
        self.register_buffer("filters", torch.from_numpy(filters).to(dtype))
        if frequency_weighting is None:
            self.weights = None
        else:
            centers, _, _ = Fz.scale_edges(scale)
            gains = np.asarray(_weighting_gains(frequency_weighting, centers), dtype=float)
            if gains.shape != centers.shape:
                raise ParameterError(
                    f"frequency_weighting must give one gain per band ({centers.size}), got "
                    f"shape {gains.shape}")
            self.register_buffer("weights", torch.from_numpy(gains).to(dtype))

    def features(self, x):
        """Return the perceptual features of ``x``: ``(batch, n_bands, frames)``."""
        return Fz.perceptual_features(x, self.filters, lap=self.lap,
                                      log_factor=self.log_factor, weights=self.weights)

    def forward(self, input, target):
        """Return the loss between two batches of signals of the same shape (a scalar tensor)."""
        return Fz.perceptual_loss(input, target, self.filters, lap=self.lap,
                                  log_factor=self.log_factor, weights=self.weights,
                                  cosine_similarity=self.cosine_similarity)


def _weighting_gains(weighting, centers: np.ndarray):
    """Linear gains of a frequency weighting at ``centers`` (several duck types)."""
    for method in ("gain", "gains", "weights"):
        fn = getattr(weighting, method, None)
        if callable(fn):
            try:
                return fn(centers)
            except TypeError:
                continue
    if callable(weighting):
        return weighting(centers)
    raise ParameterError(
        f"frequency_weighting must be callable on frequencies (Hz), got {weighting!r}")
