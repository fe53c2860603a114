"""Inverses of the frequency-adaptive transform: back to audio.

``FrequencyAdaptiveFFTSynthesizer(scale, samplerate).synthesize(fa)`` inverts
``frequency_adaptive(fft(long frames), transform=np.fft.irfft, scale=scale,
window_func=np.hanning)``; ``FrequencyAdaptiveDCTSynthesizer`` the same over ``dct``
with ``transform=scipy.fft.idct``. (Re-exported from ``zounds_xr.synthesize.inverse``.)

Method, per frame of the long-window spectrum
---------------------------------------------
1. Each band's coefficients go back through the forward transform
   (``rfft``/``dct``, orthonormal) to the windowed bins ``w_i * X[bins_i]``.
2. The band windows are undone by a least-squares overlap-add across bands:
   ``X[k] = sum_i w_i[k] * c_i[k] / sum_i w_i[k] ** 2``. This is exact for every bin
   that some band covers with a non-zero window weight; it needs the bands to overlap
   (``scale.ensure_overlap_ratio(0.5)``) so that no bin inside the scale is lost. Bins
   outside every band are zero (the transform never saw them).
3. The frame is inverted (``irfft``/``idct``) and the frames are overlap-added at the
   analysis hop with the analysis window ``v`` (``frame_window``, Vorbis by default):
   ``x = sum_j v * frame_j / sum_j v ** 2`` (exact for any hop, not only when the window
   is power-complementary). Samples where ``sum_j v ** 2`` is below 1e-3 (the very
   first and last samples) are left as the plain overlap-add.

Hop, frame length and sample rate come from the labels: the ``time`` axis' step and
extent at ``samplerate``. Lazy on dask input (chunked along ``time``).

Departure from zounds, which summed the bands without undoing their windows and
overlap-added without normalising: its reconstruction carried the ripple of the band
windows' sum.
"""
from __future__ import annotations

from fractions import Fraction

import dask.array as da
import numpy as np
import scipy.fft
import xarray as xr

from ..audio.samples import AudioSamples
from ..core.errors import ParameterError
from ..frequency.scales import FrequencyScale, LinearScale
from ..spectral.adaptive import _adaptive_index, overlap_add
from ..timeseries.index import TimeIndex
from ..timeseries.samplerate import as_audio_rate
from ..spectral.windowing import OggVorbisWindowingFunc, window_values

__all__ = ["FrequencyAdaptiveFFTSynthesizer", "FrequencyAdaptiveDCTSynthesizer"]


#: the default synthesis frame window (one immutable instance, not a call per default)
_VORBIS = OggVorbisWindowingFunc()


class _Frames:
    """Numpy kernel: concatenated band coefficients ``(t, total)`` -> frames ``(t, n)``."""

    def __init__(self, kind: str, n: int, coeff_slices, bin_slices, windows, frame_window,
                 n_bins: int, dtype):
        self.kind, self.n, self.n_bins = kind, n, n_bins
        self.coeff_slices, self.bin_slices, self.windows = coeff_slices, bin_slices, windows
        self.frame_window = frame_window
        self.dtype = np.dtype(dtype)
        # sum of the squared band windows per bin (the least-squares denominator)
        den = np.zeros(n_bins)
        for s, w in zip(bin_slices, windows, strict=True):
            den[s] += w * w
        self.inv_den = np.divide(1.0, den, out=np.zeros_like(den), where=den > 1e-12)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        cdtype = np.result_type(self.dtype, np.complex64) if self.kind == "fft" else self.dtype
        spectrum = np.zeros((block.shape[0], self.n_bins), dtype=cdtype)
        for cs, bs, w in zip(self.coeff_slices, self.bin_slices, self.windows, strict=True):
            coeffs = block[:, cs]
            if self.kind == "fft":
                back = scipy.fft.rfft(coeffs, axis=-1, norm="ortho")
            else:
                back = scipy.fft.dct(coeffs, type=2, axis=-1, norm="ortho")
            spectrum[:, bs] += back * w
        spectrum *= self.inv_den
        if self.kind == "fft":
            frames = scipy.fft.irfft(spectrum, n=self.n, axis=-1)
        else:
            frames = scipy.fft.idct(spectrum, type=2, axis=-1, norm="ortho")
        return (frames * self.frame_window).astype(self.dtype, copy=False)

    def __dask_tokenize__(self):
        return ("zounds_xr._Frames", self.kind, self.n, self.n_bins,
                tuple((s.start, s.stop) for s in self.coeff_slices),
                tuple((s.start, s.stop) for s in self.bin_slices),
                tuple(w.tobytes() for w in self.windows), self.frame_window.tobytes(),
                str(self.dtype))


class _FrequencyAdaptiveSynthesizer:
    _kind = "fft"

    def __init__(self, scale, samplerate, window_func=np.hanning,
                 frame_window=_VORBIS):

        if not isinstance(scale, FrequencyScale):
            raise ParameterError(f"scale must be a FrequencyScale, got {scale!r}")
        self.scale = scale
        self.samplerate = as_audio_rate(samplerate)
        if window_func is not None and not callable(window_func):
            raise ParameterError(f"window_func must be None or callable, got {window_func!r}")
        if frame_window is not None and not callable(frame_window):
            raise ParameterError(f"frame_window must be None or callable, got {frame_window!r}")
        self.window_func = window_func
        self.frame_window = frame_window

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(scale={self.scale!r}, samplerate={self.samplerate!r})")

    def _source_scale(self, n: int):
        raise NotImplementedError

    def synthesize(self, freq_adaptive_coeffs: xr.DataArray) -> xr.DataArray:
        """Audio from a frequency-adaptive array (dims ``("time", "frequency")``).

        Returns
        -------
        xarray.DataArray
            ``AudioSamples`` at ``samplerate``, ``(n_frames - 1) * hop + n`` samples,
            starting where the first frame starts.

        Raises
        ------
        ParameterError
            When the array's scale is not this synthesizer's, the frame extent or hop
            is not a whole number of samples at ``samplerate``, or a band's number of
            coefficients does not fit the analysis this synthesizer inverts.
        """
        fa = freq_adaptive_coeffs
        index = _adaptive_index(fa)
        if index.scale != self.scale:
            raise ParameterError(
                f"the array's scale {index.scale!r} is not this synthesizer's {self.scale!r}")
        if fa.dims != ("time", "frequency"):
            raise ParameterError(f"expected dims ('time', 'frequency'), got {fa.dims}")
        tindex = fa.xindexes.get("time")
        if not isinstance(tindex, TimeIndex):
            raise ParameterError("the array needs a TimeIndex on 'time'")
        sps = self.samplerate.samples_per_second
        exact_n, exact_hop = Fraction(tindex.duration) * sps, Fraction(tindex.frequency) * sps
        if exact_n.denominator != 1 or exact_hop.denominator != 1:
            raise ParameterError(
                f"frames of {float(exact_n)} samples every {float(exact_hop)} samples at "
                f"{sps} Hz: not whole samples; is samplerate the analysis rate?")
        n, hop = int(exact_n), int(exact_hop)
        source = self._source_scale(n)
        bin_slices, windows = [], []
        for i, (band, cs) in enumerate(zip(self.scale, index.slices, strict=True)):
            bs = source.get_slice(band)
            k, m = bs.stop - bs.start, cs.stop - cs.start
            inverted = m if self._kind == "dct" else m // 2 + 1  # bins the coefficients give
            if k == 0 or inverted != k:
                raise ParameterError(
                    f"band {i} has {m} coefficients, which do not invert to its {k} bins of "
                    f"a {n}-sample frame; was it made by this transform at this rate?")
            w = window_values(self.window_func, k, name="window_func")
            bin_slices.append(bs)
            windows.append(np.ones(k) if w is None else w)
        fw = window_values(self.frame_window, n, name="frame_window")
        fw = np.ones(n) if fw is None else fw
        dtype = np.result_type(fa.dtype, np.float32)
        if np.dtype(dtype).kind == "c":
            dtype = np.result_type(dtype.type(0).real.dtype, np.float32)
        kernel = _Frames(self._kind, n, index.slices, bin_slices, windows, fw, len(source),
                         dtype)
        data = fa.data
        if isinstance(data, da.Array):
            data = data.rechunk({1: -1})
            frames = data.map_blocks(kernel, chunks=(data.chunks[0], (n,)), dtype=dtype,
                                     meta=np.empty((0, 0), dtype=dtype))
            weights = da.broadcast_to(fw * fw, (fa.shape[0], n), chunks=(data.chunks[0], (n,)))
        else:
            frames = kernel(np.asarray(data))
            weights = np.broadcast_to(fw * fw, (fa.shape[0], n))
        num = overlap_add(frames, hop)
        den = overlap_add(weights, hop)
        xp = da if isinstance(num, da.Array) else np
        samples = xp.where(den >= 1e-3, num / xp.where(den >= 1e-3, den, 1.0), num)
        return AudioSamples(samples.astype(dtype), self.samplerate, start=tindex.start)


class FrequencyAdaptiveFFTSynthesizer(_FrequencyAdaptiveSynthesizer):
    """Invert a frequency-adaptive transform made with an FFT (zounds).

    The analysis this inverts: ``spec = fft(sliding_window(audio, wscheme,
    OggVorbisWindowingFunc()))`` and ``frequency_adaptive(spec, np.fft.irfft, scale,
    window_func=np.hanning)``. See the module docstring for the method.

    Parameters
    ----------
    scale : FrequencyScale
        The scale of the transform.
    samplerate : AudioSampleRate
        The audio rate of the analysed signal (and of the result).
    window_func : callable or None
        The per-band window the analysis used (``np.hanning`` as in zounds' examples).
    frame_window : callable or None
        The window of the long analysis frames (Vorbis by default).

    Raises
    ------
    ParameterError
        When ``scale`` is not a scale, ``samplerate`` not an audio rate or a window not
        callable.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> sr = zx.SR11025()
    >>> audio = zx.SineSynthesizer(sr).synthesize(zx.Seconds(3), [440.0])
    >>> scale = zx.GeometricScale(100, 5000, bandwidth_ratio=0.089, n_bands=100)
    >>> frames = zx.sliding_window(audio, zx.SampleRate(zx.Milliseconds(500), zx.Seconds(1)),
    ...                            zx.OggVorbisWindowingFunc())
    >>> fa = zx.frequency_adaptive(zx.fft(frames), np.fft.irfft, scale, np.hanning)
    >>> recon = zx.FrequencyAdaptiveFFTSynthesizer(scale, sr).synthesize(fa)
    >>> recon.zx.samplerate == sr
    True
    """

    _kind = "fft"

    def _source_scale(self, n: int):

        return LinearScale.from_rfft(n, self.samplerate.samples_per_second)


class FrequencyAdaptiveDCTSynthesizer(_FrequencyAdaptiveSynthesizer):
    """Invert a frequency-adaptive transform made with a DCT (zounds).

    The analysis this inverts: ``spec = dct(sliding_window(audio, wscheme,
    OggVorbisWindowingFunc()))`` (orthonormal DCT-II on a ``LinearScale`` of ``n`` bands
    from 0 Hz to Nyquist) and ``frequency_adaptive(spec, scipy.fft.idct, scale,
    window_func=np.hanning)``.

    Parameters
    ----------
    scale : FrequencyScale
        The scale of the transform.
    samplerate : AudioSampleRate
        The audio rate of the analysed signal (and of the result).
    window_func : callable or None
        The per-band window the analysis used.
    frame_window : callable or None
        The window of the long analysis frames (Vorbis by default).

    Raises
    ------
    ParameterError
        As :class:`FrequencyAdaptiveFFTSynthesizer`.
    """

    _kind = "dct"

    def _source_scale(self, n: int):

        return LinearScale.from_sample_rate(self.samplerate, n)
