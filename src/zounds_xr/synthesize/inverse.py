"""Inverses of the short-time transforms.

``FFTSynthesizer``, ``DCTSynthesizer``,
``DCTIVSynthesizer``, ``MDCTSynthesizer``.

Every synthesizer's ``synthesize(coeffs)`` reads what it needs from the labels of the
coefficients (nothing is passed by hand, as in zounds):

- the hop and window extent from the ``time`` ``TimeIndex`` (``frequency`` and
  ``duration`` of the frames);
- the window size from the ``frequency`` axis (``n`` bands for the DCTs, ``2n`` for
  the MDCT, ``2(n - 1)`` or ``2n - 1`` for the FFT) and the audio rate as
  ``window size / window duration`` (the FFT's rate also from its band width, which
  settles the parity of the transform size and any ``padding_samples``).

It inverts each frame, multiplies it by the synthesis window and overlap-adds the frames
at the hop. With the seed's half-lapped setups (analysis with
``OggVorbisWindowingFunc``; FFT/MDCT synthesis with the Vorbis window, DCT/DCT-IV with
``windowing_func=OggVorbisWindowingFunc()``) the squared windows sum to one and the
reconstruction is exact to rounding away from the first and last half window. The
output has ``(n_frames - 1) * hop + window`` samples, at least as many as the analysed
audio (the end padding of ``sliding_window`` is kept), and starts where the first
frame starts.

Dask input is computed: the result is numpy-backed audio (synthesis is the last step of
a pipeline and its output is small next to the coefficients).
"""
from __future__ import annotations

import numbers
from fractions import Fraction

import numpy as np
import scipy.fft
import xarray as xr

from ..audio.samples import AudioSamples
from ..dimensions.lookup import axis_index
from ..core.errors import ParameterError
from ..spectral.transforms import imdct_array
from ..timeseries.index import TimeIndex
from ..timeseries.samplerate import audio_sample_rate
from ..spectral.windowing import IdentityWindowingFunc, OggVorbisWindowingFunc, WindowingFunc

__all__ = ["FFTSynthesizer", "DCTSynthesizer", "DCTIVSynthesizer", "MDCTSynthesizer",
           "overlap_add"]


def overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
    """Sum ``frames`` (shape ``(n_frames, window, *rest)``) placed ``hop`` samples apart.

    Returns an array of ``(n_frames - 1) * hop + window`` samples (shape
    ``(length, *rest)``). Vectorised: one strided add per ``hop``-long segment of the
    window, whatever the overlap (also ``window`` not a multiple of ``hop``, or
    ``hop > window``).
    """
    frames = np.asarray(frames)
    nf, n = frames.shape[:2]
    rest = frames.shape[2:]
    if hop < 1:
        raise ParameterError(f"hop must be a positive number of samples, got {hop}")
    if nf == 0:
        return np.zeros((0, *rest), dtype=frames.dtype)
    length = (nf - 1) * hop + n
    segments = -(-n // hop)
    out = np.zeros(((nf + segments) * hop, *rest), dtype=frames.dtype)
    for k in range(segments):
        width = min(hop, n - k * hop)
        region = out[k * hop:k * hop + nf * hop].reshape(nf, hop, *rest)
        region[:, :width] += frames[:, k * hop:k * hop + width]
    return out[:length]


class _ShortTimeSynthesizer:
    """Shared machinery: labels -> (window, rate, hop), invert, window, overlap-add."""

    def _window(self, n: int) -> np.ndarray | None:
        raise NotImplementedError  # pragma: no cover  (every subclass defines it)

    def _inverse(self, data: np.ndarray, n_window: int, n_transform: int) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover

    def _sizes(self, index: TimeIndex, scale, n_bands: int) -> tuple[int, int, int]:
        """``(window samples, transform size, samples per second)``."""
        raise NotImplementedError  # pragma: no cover

    def synthesize(self, coeffs: xr.DataArray) -> xr.DataArray:
        """Audio from short-time coefficients labelled by the matching transform.

        Parameters
        ----------
        coeffs : xarray.DataArray [dims=("time", "frequency"[, "channel"])]
            Output of the matching transform (numpy or dask backed; dask is computed).

        Returns
        -------
        xarray.DataArray
            ``AudioSamples`` at the analysis rate, ``(n_frames - 1) * hop + window``
            samples long, starting at the first frame's start.

        Raises
        ------
        ParameterError
            When the labels are missing or do not describe a whole transform of audio
            (e.g. coefficients sliced in frequency).
        """
        index = axis_index(coeffs, "time", TimeIndex, what="coefficients")
        findex = coeffs.xindexes.get("frequency")
        scale = getattr(findex, "scale", None)
        if scale is None:
            raise ParameterError(f"coefficients need a FrequencyIndex on 'frequency'; dims "
                                 f"are {coeffs.dims}")
        extra = set(coeffs.dims) - {"time", "frequency", "channel"}
        if extra:
            raise ParameterError(
                f"cannot synthesize audio with extra dims {sorted(map(str, extra))}")
        n_window, n_transform, sps = self._sizes(index, scale, coeffs.sizes["frequency"])
        hop = index.frequency * sps
        if hop.denominator != 1:
            raise ParameterError(f"the hop ({index.frequency} s) is not a whole number of "
                                 f"samples at {sps} Hz")
        coeffs = coeffs.transpose("time", "frequency", ...)
        data = np.asarray(coeffs.data)  # computes dask input (see the module docstring)
        frames = self._inverse(data, n_window, n_transform)
        window = self._window(n_window)
        if window is not None:
            frames = frames * window.astype(frames.dtype).reshape(
                (n_window,) + (1,) * (frames.ndim - 2))
        audio = overlap_add(frames, int(hop))
        return AudioSamples(audio, audio_sample_rate(sps), start=index.start,
                            name=coeffs.name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _rate_from_window(index: TimeIndex, n_window: int) -> int:
    sps = Fraction(n_window) / index.duration
    if sps.denominator != 1:
        raise ParameterError(
            f"{n_window} samples in a window of {index.duration} s is not a whole-number "
            f"sample rate; were the coefficients sliced in frequency?")
    return int(sps)


def _check_nyquist(scale, sps: int) -> None:
    stop = float(getattr(scale, "stop_hz", np.nan))
    start = float(getattr(scale, "start_hz", np.nan))
    if not (abs(start) < 1e-6 * sps and abs(stop - sps / 2) <= 0.5 + 1e-9 * sps):
        raise ParameterError(
            f"the frequency axis ({start:g}..{stop:g} Hz) is not the full 0..Nyquist axis of "
            f"the transform at {sps} Hz; were the coefficients sliced in frequency?")


class _VorbisSynthesis:
    """Synthesis window of the FFT and MDCT synthesizers (zounds): the Vorbis window."""

    _wfunc = OggVorbisWindowingFunc()

    def _window(self, n: int) -> np.ndarray | None:
        return self._wfunc(n)


class FFTSynthesizer(_VorbisSynthesis, _ShortTimeSynthesizer):
    """Inverts a short-time Fourier transform (the output of ``zx.fft`` or ``zx.stft``).

    Each frame is ``irfft``'d (unnormalised forward transform, so ``irfft`` is the exact
    inverse), cut to the analysis window (dropping ``padding_samples``), multiplied by the
    Vorbis window and overlap-added. Exact for Vorbis-windowed half-lapped analysis.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> t = np.arange(11025) / 11025
    >>> audio = zx.AudioSamples(np.sin(2 * np.pi * 440 * t), zx.SR11025())
    >>> spec = zx.stft(audio, wfunc=zx.OggVorbisWindowingFunc())
    >>> recon = zx.FFTSynthesizer().synthesize(spec)
    >>> recon.zx.samplerate, recon.sizes["time"] >= 11025
    (SR11025(), True)
    >>> bool(np.allclose(recon.values[512:10000], audio.values[512:10000]))
    True
    """

    def _sizes(self, index, scale, n_bands):
        bandwidth = getattr(scale, "bandwidth", None)
        if not isinstance(bandwidth, numbers.Real):
            raise ParameterError("FFT coefficients need a LinearScale frequency axis "
                                 "(LinearScale.from_rfft)")
        bandwidth = float(bandwidth)
        if abs(float(scale.start_hz) + bandwidth / 2) > 1e-6 * bandwidth:
            raise ParameterError("the frequency axis does not start at the 0 Hz bin; were the "
                                 "coefficients sliced in frequency?")
        # the transform size is 2(n-1) or 2n-1; even first (the usual case)
        for n_fft in (2 * (n_bands - 1), 2 * n_bands - 1):
            if n_fft < 1:
                continue
            sps_float = bandwidth * n_fft
            sps = round(sps_float)
            if sps < 1 or abs(sps_float - sps) > 1e-6 * sps_float:
                continue
            n_window = index.duration * sps
            if n_window.denominator == 1 and 0 < n_window <= n_fft:
                return int(n_window), n_fft, sps
        raise ParameterError(
            f"cannot infer the audio rate and window of {n_bands} FFT bins {bandwidth:g} Hz "
            f"wide with windows of {index.duration} s")

    def _inverse(self, data, n_window, n_transform):
        frames = scipy.fft.irfft(data, n=n_transform, axis=1, workers=1)
        return frames[:, :n_window]


class _DCTFamily(_ShortTimeSynthesizer):
    def __init__(self, windowing_func: WindowingFunc | None = None):
        if windowing_func is None:
            windowing_func = IdentityWindowingFunc()
        if not callable(windowing_func):
            raise ParameterError(f"windowing_func must be a WindowingFunc, got "
                                 f"{windowing_func!r}")
        self.windowing_func = windowing_func

    def _window(self, n: int) -> np.ndarray | None:
        w = self.windowing_func(n)
        return None if w is None else np.asarray(w)

    def _sizes(self, index, scale, n_bands):
        sps = _rate_from_window(index, n_bands)
        _check_nyquist(scale, sps)
        return n_bands, n_bands, sps

    def __repr__(self) -> str:
        return f"{type(self).__name__}(windowing_func={self.windowing_func!r})"


class DCTSynthesizer(_DCTFamily):
    """Inverts a short-time orthonormal DCT-II (the output of ``zx.dct``).

    Parameters
    ----------
    windowing_func : WindowingFunc, default IdentityWindowingFunc()
        Synthesis window applied to every inverted frame before overlap-add; use
        ``OggVorbisWindowingFunc()`` after Vorbis-windowed half-lapped analysis for an
        exact reconstruction.

    Raises
    ------
    ParameterError
        When ``windowing_func`` is not a ``WindowingFunc``.
    """

    def _inverse(self, data, n_window, n_transform):
        return scipy.fft.idct(data, type=2, norm="ortho", axis=1, workers=1)


class DCTIVSynthesizer(_DCTFamily):
    """Inverts a short-time orthonormal DCT-IV (the output of ``zx.dctiv``).

    The orthonormal DCT-IV is its own inverse.

    Parameters
    ----------
    windowing_func : WindowingFunc, default IdentityWindowingFunc()
        Synthesis window applied to every inverted frame before overlap-add.

    Raises
    ------
    ParameterError
        When ``windowing_func`` is not a ``WindowingFunc``.
    """

    def _inverse(self, data, n_window, n_transform):
        return scipy.fft.dct(data, type=4, norm="ortho", axis=1, workers=1)


class MDCTSynthesizer(_VorbisSynthesis, _ShortTimeSynthesizer):
    """Inverts a short-time MDCT (the output of ``zx.mdct``).

    Each frame's ``n`` coefficients give ``2n`` aliased samples
    (:func:`~zounds_xr.spectral.transforms.imdct_array`), multiplied by the Vorbis window
    and overlap-added: time-domain aliasing cancels between neighbouring frames
    (Princen-Bradley), exactly for Vorbis-windowed half-lapped analysis.
    """

    def _sizes(self, index, scale, n_bands):
        sps = _rate_from_window(index, 2 * n_bands)
        _check_nyquist(scale, sps)
        return 2 * n_bands, 2 * n_bands, sps

    def _inverse(self, data, n_window, n_transform):
        return imdct_array(data, axis=1)



# the frequency-adaptive synthesizers live in their own module; re-exported here so that
# every inverse synthesizer is importable from zounds_xr.synthesize.inverse
from .adaptive import *  # noqa: E402,F401,F403
from .adaptive import __all__ as _adaptive_all  # noqa: E402

__all__ += _adaptive_all
