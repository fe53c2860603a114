"""Spectral features: mel spectrogram, MFCC, Bark bands, chroma, centroid, flatness.

Every function takes a spectrum labelled with a ``FrequencyIndex`` on ``frequency``
(usually the output of :func:`~zounds_xr.spectral.transforms.stft` or ``fft``) and
returns a labelled DataArray: the ``frequency`` axis is replaced by the feature's axis
(a new scale, a ``coefficient`` axis, or nothing for per-frame summaries) and every
other dim, coordinate and index (``time`` included) is kept. Numpy in -> numpy out; dask
in (chunked along ``time``; the frequency axis must be one chunk) -> lazy dask out.
Single precision in (float32/complex64) -> float32 out, computed in float32; otherwise
float64.

Conventions (checked against librosa 0.11 in the tests)
--------------------------------------------------------
- Complex input is turned into magnitudes ``|X|``; a real input is taken as
  magnitudes already (its absolute value is used). Functions with a ``power`` raise the
  magnitudes to it: ``mel_spectrogram(spec, power=2)`` of a *magnitude* spectrogram
  squares it once (librosa's ``S`` argument is used as is; pass ``power=1`` to use a
  power spectrogram unchanged).
- Frequencies are the band centres of the input's scale (for an ``stft`` axis,
  ``np.fft.rfftfreq``, librosa's ``fft_frequencies``).
"""
from __future__ import annotations

import functools
import numbers
import warnings

import numpy as np
import scipy.fft
import xarray as xr

from ..core.validation import check_output_size, data_array, drop_coords_along, magnitude_dtype, \
    positive_int
from ..core.errors import ParameterError
from ..frequency.band import FrequencyBand
from ..frequency.index import frequency_coords
from ..frequency.scales import BarkScale, ChromaScale, ExplicitScale, LinearScale, MelScale
from ..core.streamable import framing
from .windowing import HanningWindowingFunc
from .filters import (
    check_positive,
    filter_bank,
    frequency_index,
    linear_scale_of,
    nyquist_of,
)
from .kernels import SparseRebin, apply_along
from .transforms import audio_kernel, default_wscheme, run_audio_kernel

__all__ = ["mel_spectrogram", "mfcc", "bark_bands", "chroma", "spectral_centroid",
           "spectral_flatness", "power_to_db", "rebin"]

#: the largest filter bank (dense weights, bytes) a feature agrees to build
_MAX_WEIGHTS_BYTES = 1 << 30


# ------------------------------------------------------------------------------------
# rebinning: one kernel (kernels.SparseRebin), labelled here
# ------------------------------------------------------------------------------------
def rebin(x: xr.DataArray, weights: np.ndarray, new_scale, *, power: float | None,
          dim: str = "frequency") -> xr.DataArray:
    """Rebin ``|x| ** power`` by ``weights`` onto ``new_scale`` along ``dim``.

    ``|x| ** power`` (``power=None``: ``x`` itself) rebinned by ``weights`` onto
    ``new_scale`` along ``dim``.

    Parameters
    ----------
    x : xarray.DataArray [dims=(..., dim, ...)]
        A spectrum, numpy or dask backed (``dim`` is made one chunk).
    weights : numpy.ndarray, shape (len(new_scale), x.sizes[dim])
        The filter bank (``filter_bank(new_scale, source_scale)``).
    new_scale : FrequencyScale
        Labels the result's ``dim``.
    power : float or None
        Exponent of the magnitudes, or ``None`` for a linear rebinning (complex input
        stays complex).
    dim : str
        The frequency dim.

    Returns
    -------
    xarray.DataArray [dims: ``x``'s, ``dim`` of ``len(new_scale)`` positions]
        float32 for single-precision input, float64 otherwise (complex for a linear
        rebinning of complex input); every other coordinate of ``x`` kept.

    See Also
    --------
    mel_spectrogram, bark_bands, chroma, zounds_xr.spectral.filters.apply_scale
    """
    kernel = SparseRebin(weights, power, magnitude_dtype(x.dtype))
    out = apply_along(x, kernel, dim, kernel.n_out, kernel.out_dtype(x.dtype))
    return out.assign_coords(frequency_coords(new_scale, dim=dim))


def _check_power(power) -> float:
    return check_positive(power, "power")


# ------------------------------------------------------------------------------------
# mel and MFCC
# ------------------------------------------------------------------------------------
def _mel_scale(lin: LinearScale, n_mels, fmin, fmax, htk) -> MelScale:
    n_mels = positive_int(n_mels, "n_mels")
    nyquist = nyquist_of(lin)
    fmax = nyquist if fmax is None else fmax
    if isinstance(fmin, bool) or not isinstance(fmin, numbers.Real) or not float(fmin) >= 0:
        raise ParameterError(f"fmin must be a number >= 0, got {fmin!r}")
    fmin = float(fmin)
    if isinstance(fmax, bool) or not isinstance(fmax, numbers.Real) or not fmax > fmin:
        raise ParameterError(f"fmax must be a number > fmin={fmin!r}, got {fmax!r}")
    fmax = float(fmax)
    if fmax > nyquist * (1 + 1e-9):
        raise ParameterError(f"fmax={fmax!r} Hz is above the Nyquist frequency "
                             f"{nyquist:g} Hz of the spectrum")
    check_output_size((n_mels, len(lin)), np.float64, f"the filter bank of {n_mels} mel bands",
                      limit=_MAX_WEIGHTS_BYTES)
    return MelScale(FrequencyBand(fmin, fmax), n_mels, htk=htk)


def _mel_weights(scale: MelScale, lin: LinearScale) -> np.ndarray:
    weights = filter_bank(scale, lin)
    _warn_empty(weights, scale, lin)
    return weights


def _warn_empty(weights: np.ndarray, scale: MelScale, lin: LinearScale) -> None:
    empty = int(np.count_nonzero(~weights.any(axis=1)))
    if empty:
        # as librosa.filters.mel: too many bands for the resolution of the spectrum
        warnings.warn(f"{empty} of {len(scale)} mel bands are empty (all-zero filters): "
                      f"n_mels={len(scale)} is too high for {len(lin)} frequency bins",
                      UserWarning, stacklevel=4)


@functools.lru_cache(maxsize=16)
def _mel_rebin(lin: LinearScale, n_mels, fmin, fmax, htk, power, dtype: str, _types: tuple
               ) -> tuple[MelScale, np.ndarray, SparseRebin]:
    """Build the mel scale, filter bank and kernel of these parameters, once a process.

    A long recording streams through ``mel_spectrogram`` chunk after chunk with the same
    parameters: building them cost 1.8 ms a chunk (6 % of a 30 s chunk's mel). The
    parameters' types are part of the key (``1 == 1.0 == True``, but only ``1`` is
    valid for ``n_mels``).
    """
    scale = _mel_scale(lin, n_mels, fmin, fmax, htk)
    weights = filter_bank(scale, lin)
    return scale, weights, SparseRebin(weights, power, dtype)


def _is_audio(chunk: xr.DataArray) -> bool:
    """Tell whether ``mel_spectrogram`` frames this input (audio).

    Whether ``mel_spectrogram`` frames this input (audio) or maps its frames
    (a spectrum): what the document pipeline asks of the first chunk.
    """
    return "frequency" not in chunk.dims and "window" not in chunk.dims


# in a document graph the mel of audio streams like stft (the fused kernel frames the
# audio, the tail a window needs is carried to the next chunk); of a spectrum it is
# frame-local
@framing("wscheme", default=default_wscheme, when=_is_audio, channelwise=True)
def mel_spectrogram(x: xr.DataArray, n_mels: int = 128, fmin: float = 0.0,
                    fmax: float | None = None, power: float = 2.0, htk: bool = False,
                    *, dim: str = "frequency", wscheme=None, wfunc=None,
                    workers: int | None = None,
                    frames_per_block: int | None = None) -> xr.DataArray:
    """Mel spectrogram: ``|X| ** power`` through librosa's mel filter bank.

    ``x`` is a spectrum (``stft``/``fft`` output), or audio, as librosa's
    ``melspectrogram`` takes ``S`` or ``y``. From audio the STFT is computed block by
    block by the same kernel as :func:`stft` (window, FFT, ``|X|**power`` and the sparse
    mel product on a block of frames at a time) without ever holding the complex
    spectrogram: the fused form is faster and needs a tenth of the memory.

    Parameters
    ----------
    x : xarray.DataArray
        Either a complex or magnitude spectrum with dims ``(..., "frequency", ...)`` on
        a linear frequency axis (``stft``/``fft`` output: a ``LinearScale``; a magnitude
        input is raised to ``power`` like a complex one, ``|S| ** power``, so give
        ``power=1`` for a power spectrogram), or audio with dims ``("time"[, ...])`` and
        a ``TimeIndex`` (``zx.AudioSamples``, mono, multi-channel or a batch of clips).
    n_mels : int > 0
        Number of mel bands. More bands than the spectrum resolves leave some filters
        empty: a ``UserWarning`` says so, as librosa's.
    fmin : float >= 0
        Lowest frequency of the filter bank, in Hz.
    fmax : float, fmin < fmax <= Nyquist, optional
        Highest frequency; ``None`` is the Nyquist frequency of the input's axis
        (``sr / 2`` for an ``stft`` axis). Above Nyquist is refused.
    power : float > 0
        Exponent of the magnitudes (2: power, librosa's default; 1: energy).
    htk : bool
        HTK's mel formula instead of Slaney's.
    dim : str
        The frequency dim of a spectrum input.
    wscheme : SampleRate, optional
        Audio input only: hop and window, as :func:`stft` (default
        ``samplerate.half_lapped()``). The FFT size is the window.
    wfunc : WindowingFunc, optional
        Audio input only: the window, as :func:`stft` (default the symmetric
        ``HanningWindowingFunc()``; ``HanningWindowingFunc(periodic=True)`` for
        librosa's).
    workers : int, optional
        Audio input on numpy only: threads, as :func:`stft`.
    frames_per_block : int, optional
        Audio input on dask only: frames per output chunk, as :func:`stft`.

    Returns
    -------
    xarray.DataArray [dims: a spectrum's, or ("time", "frequency", ...) from audio]
        ``n_mels`` positions on ``frequency``, labelled by a ``MelScale``; float32 for
        single-precision input, float64 otherwise. Equal (to float precision) to
        ``librosa.feature.melspectrogram(S=|X| ** power, sr=sr, n_fft=n_fft,
        n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk)`` transposed to (time,
        frequency): Slaney-normalised triangles (unit area in Hz,
        ``librosa.filters.mel``'s default ``norm="slaney"``). From audio, equal to
        ``mel_spectrogram(stft(x, wscheme, wfunc))``.

    Raises
    ------
    ParameterError
        When ``x`` is neither a linear spectrum nor audio, a parameter is out of range,
        ``wscheme``/``wfunc`` are given with a spectrum, or the output cannot fit in
        memory.

    See Also
    --------
    stft, mfcc, MelScale, power_to_db

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> tone = zx.SineSynthesizer(zx.SR22050()).synthesize(zx.Seconds(1), [440.0])
    >>> spec = zx.stft(tone, wscheme=zx.SR22050().half_lapped())
    >>> mel = zx.mel_spectrogram(spec, n_mels=64)
    >>> mel.dims, mel.sizes["frequency"]
    (('time', 'frequency'), 64)
    >>> fused = zx.mel_spectrogram(tone, n_mels=64, wscheme=zx.SR22050().half_lapped())
    >>> bool(np.allclose(fused, mel, rtol=1e-5))
    True
    """
    x = data_array(x, "mel_spectrogram's x")
    power = _check_power(power)
    if dim not in x.dims and "time" in x.dims:
        return _mel_of_audio(x, n_mels, fmin, fmax, power, htk, wscheme=wscheme,
                             wfunc=wfunc, workers=workers, frames_per_block=frames_per_block)
    if wscheme is not None or wfunc is not None:
        raise ParameterError("wscheme and wfunc apply to audio input; x is a spectrum "
                             f"(it has a {dim!r} dim)")
    lin = linear_scale_of(x, dim)
    scale = _mel_scale(lin, n_mels, fmin, fmax, htk)
    return rebin(x, _mel_weights(scale, lin), scale, power=power, dim=dim)


def _mel_of_audio(samples, n_mels, fmin, fmax, power, htk, *, wscheme, wfunc, workers,
                  frames_per_block):
    scales = {}

    def make_rebin(lin: LinearScale, dtype) -> SparseRebin:
        params = (n_mels, fmin, fmax, htk, power)
        key = (lin, *params, np.dtype(dtype).str, tuple(type(p) for p in params))
        try:
            hash(key)
        except TypeError:  # parameters of odd types: checked (and refused) uncached
            scales["mel"] = scale = _mel_scale(lin, n_mels, fmin, fmax, htk)
            return SparseRebin(_mel_weights(scale, lin), power, dtype)
        scales["mel"], weights, rebin = _mel_rebin(*key)
        _warn_empty(weights, scales["mel"], lin)
        return rebin

    samples, layout, kernel = audio_kernel(samples, wscheme, wfunc, "rebin",
                                           make_rebin=make_rebin, what="mel_spectrogram")
    return run_audio_kernel(samples, layout, kernel, frequency_coords(scales["mel"]),
                            workers=workers, frames_per_block=frames_per_block,
                            name="mel-spectrogram")


def power_to_db(power: xr.DataArray, *, ref: float = 1.0, amin: float = 1e-10,
                top_db: float | None = 80.0) -> xr.DataArray:
    """``10 * log10(max(amin, S) / ref)``, clipped ``top_db`` below the array's peak.

    ``librosa.power_to_db`` with a fixed ``ref``. The peak is the maximum over the whole
    array (all frames), as librosa: on dask input it is a lazy global reduction.

    Parameters
    ----------
    power : xarray.DataArray
        Powers (e.g. a mel spectrogram), real and >= 0.
    ref : float > 0
        The power of 0 dB.
    amin : float > 0
        Floor of the powers before the logarithm.
    top_db : float > 0 or None
        Floor of the result below its peak (``None``: none).

    Returns
    -------
    xarray.DataArray
        ``power``'s dims and labels, in dB.

    See Also
    --------
    mel_spectrogram, mfcc
    """
    amin = check_positive(amin, "amin")
    ref = check_positive(ref, "ref")
    db = 10.0 * np.log10(np.maximum(power, power.dtype.type(amin)))
    db = db - 10.0 * np.log10(max(amin, ref))
    if top_db is not None:
        top_db = check_positive(top_db, "top_db")
        db = np.maximum(db, db.max() - top_db)
    return db


class _Cepstrum:
    """Mel powers -> dB (floored ``top_db`` below the peak) -> DCT -> lifter, in blocks.

    ``peak_db`` (the dB of the whole array's peak, passed per call so that a lazy
    global maximum can feed dask blocks) sets the floor; rows are processed 1,024 at a
    time into the preallocated ``(..., n_mfcc)`` output.
    """

    def __init__(self, n_mfcc: int, dct_type: int, norm, lifter: float, amin: float,
                 top_db: float | None, dtype):
        self.n_mfcc, self.dct_type, self.norm, self.lifter = n_mfcc, dct_type, norm, lifter
        self.amin, self.top_db, self.dtype = amin, top_db, np.dtype(dtype)

    def __call__(self, x: np.ndarray, peak_db=None) -> np.ndarray:
        lead, n_in = x.shape[:-1], x.shape[-1]
        flat = x.reshape(-1, n_in)
        out = np.empty((flat.shape[0], self.n_mfcc), dtype=self.dtype)
        floor = None
        if self.top_db is not None:
            floor = self.dtype.type(float(np.asarray(peak_db)) - self.top_db)
        lift = None
        if self.lifter > 0:
            n = np.arange(1, 1 + self.n_mfcc, dtype=self.dtype)
            lift = 1 + (self.lifter / 2) * np.sin(np.pi * n / self.lifter)
        amin = self.dtype.type(self.amin)
        for b in range(0, flat.shape[0], 1024):
            block = flat[b:b + 1024]
            db = np.abs(block).astype(self.dtype) if np.iscomplexobj(block) else \
                block.astype(self.dtype, copy=True)
            np.maximum(db, amin, out=db)
            np.log10(db, out=db)
            db *= self.dtype.type(10)
            if floor is not None:
                np.maximum(db, floor, out=db)
            c = scipy.fft.dct(db, type=self.dct_type, norm=self.norm, axis=-1, workers=1,
                              overwrite_x=True)[:, :self.n_mfcc]
            if lift is not None:
                c = c * lift
            out[b:b + 1024] = c
        return out.reshape(*lead, self.n_mfcc)

    def __dask_tokenize__(self):
        return ("zounds_xr._Cepstrum", self.n_mfcc, self.dct_type, self.norm, self.lifter,
                self.amin, self.top_db, str(self.dtype))


def mfcc(x: xr.DataArray, n_mfcc: int = 20, *, dct_type: int = 2, norm: str | None = "ortho",
         lifter: float = 0.0, top_db: float | None = 80.0, dim: str = "frequency",
         **mel_kwargs) -> xr.DataArray:
    """Mel-frequency cepstral coefficients.

    The mel powers go to dB as ``librosa.power_to_db(S, ref=1.0, amin=1e-10,
    top_db=80)`` (the ``top_db`` floor is relative to the peak of the whole array), then
    a DCT over the mel bands keeps the first ``n_mfcc`` coefficients; ``lifter > 0``
    applies librosa's sinusoidal liftering. dB, floor, DCT and lifter run block by block
    in one kernel into the preallocated output. Equal to
    ``librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=...)``.

    Parameters
    ----------
    x : xarray.DataArray
        A mel (power) spectrogram (its ``dim`` labelled by a ``MelScale``, e.g. from
        :func:`mel_spectrogram`), a linear spectrum, or audio (dims ``("time"[,
        ...])``); from the last two the mel spectrogram is computed first with
        ``mel_kwargs``.
    n_mfcc : int > 0, <= the number of mel bands
        Number of coefficients kept.
    dct_type : {1, 2, 3, 4}
        Type of the DCT (2, as librosa).
    norm : {"ortho", None, "backward", "forward"}
        Normalisation of the DCT (``scipy.fft.dct``'s).
    lifter : float >= 0
        Liftering coefficient (0: none).
    top_db : float > 0 or None
        Floor of the dB values below the peak of the whole array (on dask input a lazy
        global maximum); ``None``: no floor.
    dim : str
        The frequency dim of a spectrum input.
    **mel_kwargs
        Options of :func:`mel_spectrogram` (``n_mels``, ``fmin``, ``fmax``, ``power``,
        ``htk``, and for audio ``wscheme``, ``wfunc``...) when ``x`` is not a mel
        spectrogram already.

    Returns
    -------
    xarray.DataArray [dims: ``frequency`` replaced by ``coefficient``]
        ``n_mfcc`` positions (no index) where ``frequency`` was (``("time",
        "coefficient", ...)`` from audio); float32 for single-precision input; other
        labels kept.

    Raises
    ------
    ParameterError
        For out-of-range parameters, mel options given with a mel spectrogram, or an
        input that is neither a mel spectrogram, a linear spectrum nor audio.

    See Also
    --------
    mel_spectrogram, power_to_db, dct

    Examples
    --------
    >>> import zounds_xr as zx
    >>> tone = zx.SineSynthesizer(zx.SR22050()).synthesize(zx.Seconds(1), [440.0])
    >>> spec = zx.stft(tone, wscheme=zx.SR22050().half_lapped())
    >>> zx.mfcc(spec, n_mfcc=13).dims
    ('time', 'coefficient')
    """
    n_mfcc = positive_int(n_mfcc, "n_mfcc")
    if dct_type not in (1, 2, 3, 4):
        raise ParameterError(f"dct_type must be 1, 2, 3 or 4, got {dct_type!r}")
    if norm not in (None, "ortho", "backward", "forward"):
        raise ParameterError(f"norm must be None or 'ortho', got {norm!r}")
    if isinstance(lifter, bool) or not isinstance(lifter, numbers.Real) or not lifter >= 0:
        raise ParameterError(f"lifter must be a number >= 0, got {lifter!r}")
    if top_db is not None:
        top_db = check_positive(top_db, "top_db")
    x = data_array(x, "mfcc's x")
    if dim not in x.dims and "time" in x.dims:
        mel = mel_spectrogram(x, dim=dim, **mel_kwargs)
    else:
        scale = frequency_index(x, dim).scale
        if isinstance(scale, MelScale):
            if mel_kwargs:
                raise ParameterError(f"x is a mel spectrogram already; mel options "
                                     f"{sorted(mel_kwargs)} do not apply")
            mel = x
        elif isinstance(scale, LinearScale):
            mel = mel_spectrogram(x, dim=dim, **mel_kwargs)
        else:
            raise ParameterError(f"x must be a mel spectrogram, a linear spectrum or audio, "
                                 f"got a {type(scale).__name__} axis")
    if n_mfcc > mel.sizes[dim]:
        raise ParameterError(f"n_mfcc={n_mfcc} exceeds the {mel.sizes[dim]} mel bands")
    dtype = magnitude_dtype(mel.dtype)
    amin = 1e-10
    kernel = _Cepstrum(n_mfcc, dct_type, norm, float(lifter), amin, top_db, dtype)
    args = ()
    if top_db is not None:
        peak = abs(mel).max() if np.dtype(mel.dtype).kind == "c" else mel.max()
        peak = drop_coords_along(peak, dim)
        args = (10.0 * np.log10(np.maximum(peak.astype(np.float64), amin)),)
    out = apply_along(mel, kernel, dim, n_mfcc, dtype, new_dim="coefficient", args=args)
    out.attrs = {}
    return out


# ------------------------------------------------------------------------------------
# Bark and chroma
# ------------------------------------------------------------------------------------
#: bark_bands' default window over the bins of a band (zounds')
_BARK_WINDOW = HanningWindowingFunc()


def bark_bands(spec: xr.DataArray, frequency_band, n_bands: int = 100,
               window=_BARK_WINDOW, *, power: float = 1.0,
               dim: str = "frequency") -> xr.DataArray:
    """Magnitudes summed into ``n_bands`` Bark bands (zounds' ``BarkBands``).

    ``BarkScale(frequency_band, n_bands)``: Traunmüller's Bark, ``n_bands + 2`` points
    equally spaced, band ``i`` spanning points ``i .. i+2``. Each band is the sum of the
    input bins that overlap it, weighted by ``window`` over those bins (zounds;
    ``filter_bank(BarkScale, source, window)``); ``window=None`` gives unit-peak triangles
    (``filter_bank(BarkScale, source)``).

    Parameters
    ----------
    spec : xarray.DataArray [dims=(..., "frequency", ...)]
        Complex or magnitude spectrum with a frequency axis of one position per band
        (any ``FrequencyScale``, usually an ``stft`` axis).
    frequency_band : FrequencyBand
        The span of the Bark scale.
    n_bands : int > 0
        Number of Bark bands.
    window : callable or None
        Window over the bins of each band (a ``WindowingFunc``, ``np.hanning``).
    power : float > 0
        Exponent of the magnitudes (1: zounds).
    dim : str
        The frequency dim.

    Returns
    -------
    xarray.DataArray [dims: ``spec``'s; ``frequency`` of ``n_bands`` positions]
        Labelled by the ``BarkScale``; float32 for single-precision input, else
        float64. Lazy on dask input.

    Raises
    ------
    ParameterError
        When ``spec`` has no frequency axis of one position per band, or a parameter
        is out of range.

    See Also
    --------
    mel_spectrogram, chroma, BarkScale
    """
    source = frequency_index(spec, dim).scale
    scale = BarkScale(frequency_band, positive_int(n_bands, "n_bands"))
    return rebin(spec, filter_bank(scale, source, window), scale, power=_check_power(power),
                 dim=dim)


def _windowed_chroma_weights(scale, source, window) -> np.ndarray:
    """zounds-style chroma: each semitone band in range, windowed, folded to its class."""
    band = scale.frequency_band
    lo = max(band.start_hz, 1e-6)
    first = int(np.ceil(69 + 12 * np.log2(lo / 440.0)))
    last = int(np.floor(69 + 12 * np.log2(band.stop_hz / 440.0)))
    out = np.zeros((12, len(source)))
    if last < first:
        return out
    midi = np.arange(first, last + 1)
    centres = 440.0 * 2.0 ** ((midi - 69) / 12.0)
    quarter = 2.0 ** (1 / 24)
    bands = ExplicitScale([FrequencyBand(c / quarter, c * quarter) for c in centres])
    rows = filter_bank(bands, source, window)
    np.add.at(out, midi % 12, rows)
    return out


def _normalize(norm):
    def func(x: np.ndarray) -> np.ndarray:
        mag = np.abs(x)
        if norm == np.inf:
            length = mag.max(axis=-1, keepdims=True)
        elif norm == 1:
            length = mag.sum(axis=-1, keepdims=True)
        else:
            length = np.sqrt((mag * mag).sum(axis=-1, keepdims=True))
        tiny = np.finfo(x.dtype).tiny
        return x / np.where(length < tiny, x.dtype.type(1), length)
    return func


def chroma(spec: xr.DataArray, frequency_band, window=None, norm=np.inf, *,
           power: float = 1.0, dim: str = "frequency") -> xr.DataArray:
    """Energy per pitch class, C..B (``ChromaScale(frequency_band)``).

    With ``window=None`` (default) the bins are spread over the pitch classes by
    librosa's chroma filter bank (``filter_bank`` of a ``ChromaScale``: ``librosa.filters.chroma``
    with ``tuning=0``, ``base_c=True``, Gaussian octave weighting around octave 5),
    restricted to the bins inside ``frequency_band``. With a ``window`` (zounds), each
    semitone band (a quarter tone either side of each note) inside ``frequency_band`` sums
    its bins under ``window`` and is added to its pitch class.

    Each frame is then normalised over the 12 classes (``norm``: ``np.inf`` max = 1,
    librosa's default; 1; 2; ``None`` for none; frames whose norm is below the smallest
    float are left as they are, as ``librosa.util.normalize``).

    With ``frequency_band = FrequencyBand(0, sr / 2)``, ``window=None`` and an ``stft``
    magnitude input ``S`` this equals ``librosa.feature.chroma_stft(S=S, sr=sr,
    tuning=0)`` (transposed); ``power=2`` gives the same as librosa's default on ``y``.

    Parameters
    ----------
    spec : xarray.DataArray [dims=(..., "frequency", ...)]
        Complex or magnitude spectrum with one position per band on ``frequency``.
    frequency_band : FrequencyBand
        The range of frequencies that count.
    window : callable or None
        ``None``: librosa's chroma filter bank; a callable of a size: zounds' windowed
        semitone bands.
    norm : {np.inf, 1, 2, None}
        Per-frame normalisation over the 12 classes.
    power : float > 0
        Exponent of the magnitudes.
    dim : str
        The frequency dim.

    Returns
    -------
    xarray.DataArray [dims: ``spec``'s; ``frequency`` of 12 positions]
        Labelled by the ``ChromaScale`` (C, C#, ..., B); float32 for single-precision
        input, else float64.

    Raises
    ------
    ParameterError
        For an unknown ``norm``, a non-positive ``power`` or an input without a
        frequency axis.

    See Also
    --------
    mel_spectrogram, bark_bands, ChromaScale
    """
    if norm not in (None, 1, 2, np.inf):
        raise ParameterError(f"norm must be np.inf, 1, 2 or None, got {norm!r}")
    source = frequency_index(spec, dim).scale
    scale = ChromaScale(frequency_band)
    if window is None:
        weights = filter_bank(scale, source)
    else:
        weights = _windowed_chroma_weights(scale, source, window)
    out = rebin(spec, weights, scale, power=_check_power(power), dim=dim)
    if norm is None:
        return out
    normalized = xr.apply_ufunc(_normalize(norm), out, input_core_dims=[[dim]],
                                output_core_dims=[[dim]], dask="parallelized",
                                output_dtypes=[out.dtype], keep_attrs=True)
    return normalized.transpose(*out.dims)


# ------------------------------------------------------------------------------------
# per-frame summaries
# ------------------------------------------------------------------------------------
def spectral_centroid(spec: xr.DataArray, *, dim: str = "frequency") -> xr.DataArray:
    """Return the magnitude-weighted mean frequency of each frame, in Hz.

    ``sum_f(f * |X_f|) / sum_f |X_f|`` over the band centres ``f`` of the input's scale
    (departure from zounds: in Hz, and divided by the sum of magnitudes). A frame whose
    magnitudes sum to less than the smallest float gets 0, as librosa. Equal to
    ``librosa.feature.spectral_centroid(S=|X|)``.

    Parameters
    ----------
    spec : xarray.DataArray [dims=(..., "frequency", ...)]
        Complex or magnitude spectrum with one position per band on ``dim``.
    dim : str
        The frequency dim.

    Returns
    -------
    xarray.DataArray [dims: the input's without ``frequency``, e.g. ("time",)]
        Hz (``units`` attr), float32 for single-precision input, else float64.

    Raises
    ------
    ParameterError
        When ``spec`` has no frequency axis of one position per band.

    See Also
    --------
    spectral_flatness, stft
    """
    index = frequency_index(spec, dim)
    mag = _magnitudes(spec)
    freqs = xr.DataArray(np.asarray(index.scale.center_frequencies, dtype=mag.dtype),
                         dims=(dim,))
    mag = drop_coords_along(mag, dim)
    num = xr.dot(mag, freqs, dim=dim)
    den = mag.sum(dim)
    tiny = np.finfo(mag.dtype).tiny
    out = num / den.where(den >= tiny, 1)
    out.name = spec.name
    out.attrs = {"units": "Hz", "long_name": "spectral centroid"}
    return out


def spectral_flatness(spec: xr.DataArray, *, amin: float = 1e-10, power: float = 2.0,
                      dim: str = "frequency") -> xr.DataArray:
    """Wiener entropy: geometric over arithmetic mean of the power of each frame.

    ``S = max(amin, |X| ** power)`` (power floored at ``1e-10``), flatness
    ``exp(mean(log S)) / mean(S)`` over the frequency axis: 1 for white noise, near 0
    for a few sinusoids. Equal to ``librosa.feature.spectral_flatness(S=|X|)``.

    Parameters
    ----------
    spec : xarray.DataArray [dims=(..., "frequency", ...)]
        Complex or magnitude spectrum with one position per band on ``dim``.
    amin : float > 0
        Floor of the powers.
    power : float > 0
        Exponent of the magnitudes (2: power, librosa's default).
    dim : str
        The frequency dim.

    Returns
    -------
    xarray.DataArray [dims: the input's without ``frequency``, e.g. ("time",)]
        Values in (0, 1]; float32 for single-precision input, else float64.

    Raises
    ------
    ParameterError
        When ``spec`` has no frequency axis of one position per band, or ``amin`` or
        ``power`` is not positive.

    See Also
    --------
    spectral_centroid
    """
    frequency_index(spec, dim)
    amin = check_positive(amin, "amin")
    power = _check_power(power)
    mag = _magnitudes(spec)
    mag = drop_coords_along(mag, dim)
    s = np.maximum(mag ** power, mag.dtype.type(amin))
    out = np.exp(np.log(s).mean(dim)) / s.mean(dim)
    out.name = spec.name
    out.attrs = {"long_name": "spectral flatness"}
    return out


def _magnitudes(spec: xr.DataArray) -> xr.DataArray:
    # |X| of complex input; the absolute value of a real (magnitude) input
    return abs(spec).astype(magnitude_dtype(spec.dtype), copy=False)
