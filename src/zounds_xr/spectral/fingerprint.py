"""Audio fingerprints that survive real copies: Haitsma-Kalker (Philips) sub-fingerprints.

A fingerprint frame is 32 bits. Two spectra one hop apart are taken over the frame
(Hann-windowed, ``duration - frequency`` seconds each); their energies in 33
logarithmically spaced bands between ``fmin`` and ``fmax`` give bit ``m``::

    D[t, m] = E[t, m] - E[t, m + 1]         (the spectral slope between bands m, m + 1)
    bit[m]  = D[second, m] - D[first, m] > 0  (does that slope grow over one hop?)

(J. Haitsma, T. Kalker, "A Highly Robust Audio Fingerprinting System", ISMIR 2002.)
Each bit is the sign of a difference of differences of band levels (dB), so it does
not change with gain, is robust to codecs and equalisation (smooth spectral changes
cancel in the band differences), and changes little when the frames are shifted by a
fraction of their long extent: a copy shifted by 10-50 ms keeps most of its bits. Two
departures from the paper, both for noise: levels more than ``RANGE`` (40) dB below a
spectrum's loudest band are clipped to that floor (their bits are 0 in a clean
original and stay 0 under 20 dB SNR of white noise, instead of following the noise),
and the bands span 100 Hz - 10 kHz instead of 300 - 2000 Hz (sounds whose energy lies
outside 300 - 2000 Hz, a low hum or an 8 kHz beep, were all noise there). The bands
are in Hz and the frames in seconds, so a copy at another sample rate (resampled, or
transcoded at 22.05 kHz) gets the same bits, without resampling; bands above a
signal's Nyquist frequency hold nothing.

Chromaprint (AcoustID) computes chroma images and applies learned Haar-like filters;
Shazam and audfprint hash pairs of spectral peaks (landmarks), which survive heavy noise
and pieces of a few seconds, but give a variable number of hashes per second that an
exact fixed-width Hamming search cannot use. Philips sub-fingerprints are a fixed 32 bits
per frame: 8 consecutive frames are one 256-bit code of
:mod:`zounds_xr.search`, compared bit for bit.

A frame whose energy in the bands is below ``-100 dB`` (digital silence) is 0, the code
:mod:`zounds_xr.search` never indexes (silence would otherwise match all silence).
"""
from __future__ import annotations

from fractions import Fraction

import dask.array as da
import numpy as np
import xarray as xr

from ..core.validation import axis_index
from ..core.errors import ParameterError
from ..core.streamable import framing
from ..timeseries.index import TimeIndex
from ..timeseries.samplerate import SampleRate
from .windowing import HanningWindowingFunc, window_values
from .sliding import frame_apply, frame_layout, frame_view, map_frame_blocks

__all__ = ["fingerprint", "fingerprint_wscheme", "FINGERPRINT_BITS"]

#: bits per fingerprint frame (one per pair of adjacent bands)
FINGERPRINT_BITS = 32
#: default hop between fingerprint frames, seconds
HOP = Fraction(1, 32)
#: default extent of one spectrum, seconds (two of them, one hop apart, make a frame)
SPECTRUM = Fraction(1, 4)
#: mean band power (full scale 1) below which a frame is silence, code 0
SILENCE = 1e-10
#: dB below a spectrum's loudest band where band levels are clipped
RANGE = 40.0


def fingerprint_wscheme(index: TimeIndex | None = None) -> SampleRate:
    """Return the default scheme of :func:`fingerprint`.

    A frame every 1/32 s spanning 1/4 + 1/32 s (two 1/4 s spectra one hop apart), at
    any sample rate.

    Parameters
    ----------
    index : TimeIndex, optional
        The audio's time index (the scheme is the same at every rate).

    Returns
    -------
    SampleRate
    """
    return SampleRate(HOP, SPECTRUM + HOP)


def _band_weights(n_fft: int, rate: float, fmin: float, fmax: float) -> np.ndarray:
    """Return ``(n_fft // 2 + 1, 33)`` 0/1 weights summing FFT bins into log-spaced bands."""
    edges = np.geomspace(fmin, fmax, FINGERPRINT_BITS + 2)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    band = np.searchsorted(edges, freqs, side="right") - 1
    weights = np.zeros((freqs.size, FINGERPRINT_BITS + 1))
    inside = (band >= 0) & (band <= FINGERPRINT_BITS)
    weights[np.flatnonzero(inside), band[inside]] = 1.0
    empty = np.flatnonzero((weights.sum(axis=0) == 0) & (edges[1:] <= rate / 2))
    if empty.size:
        raise ParameterError(
            f"fingerprint bands {fmin:g}-{fmax:g} Hz are too narrow for spectra of {n_fft} "
            f"samples at {rate:g} Hz ({empty.size} bands hold no FFT bin); use a longer "
            f"wscheme duration or a wider band")
    return weights


class _Kernel:
    """Compute the codes of the frames of a span of mono samples.

    The ``block_fn`` of :func:`~zounds_xr.spectral.sliding.frame_apply`: one spectrum
    per hop, shared by two frames.
    """

    def __init__(self, hop: int, win: int, rate: float, fmin: float, fmax: float):
        self.hop, self.n_fft = hop, win - hop
        self.window = window_values(HanningWindowingFunc(), self.n_fft, np.float64,
                                    name="wfunc")
        self.weights = _band_weights(self.n_fft, rate, fmin, fmax)
        self.floor = SILENCE * (FINGERPRINT_BITS + 1) * float(np.sum(self.window ** 2)) \
            * self.n_fft

    def __call__(self, segment: np.ndarray, out: np.ndarray) -> np.ndarray:
        # the spectra start every hop; frame i uses spectra i and i + 1
        spectra = frame_view(np.asarray(segment, dtype=np.float64), self.hop, self.n_fft)
        power = np.abs(np.fft.rfft(spectra * self.window, axis=-1)) ** 2
        energy = power @ self.weights  # (frames + 1, 33)
        # bands more than RANGE dB below the loudest of their spectrum are clipped to
        # that floor: their slopes are 0 and their bits 0, in the copy as in the
        # original, instead of the sign of whatever noise fills them
        level = 10 * np.log10(energy + 1e-30)
        level = np.maximum(level, level.max(axis=1, keepdims=True) - RANGE)
        slope = level[:, :-1] - level[:, 1:]
        bits = (slope[1:] - slope[:-1]) > 0
        loud = energy.sum(axis=1) > self.floor
        bits &= (loud[1:] & loud[:-1])[:, None]
        packed = np.packbits(bits, axis=1, bitorder="little")  # (frames, 4) uint8
        out[...] = np.ascontiguousarray(packed).view("<u4")[:, 0]
        return out


@framing("wscheme", default=fingerprint_wscheme)  # how it streams through a document graph
def fingerprint(samples: xr.DataArray, wscheme: SampleRate | None = None, *,
                fmin: float = 100.0, fmax: float = 10000.0) -> xr.DataArray:
    """Compute Philips (Haitsma-Kalker) sub-fingerprints: 32 bits a frame, robust to copies.

    Parameters
    ----------
    samples : xarray.DataArray [dims=("time",) or ("time", "channel")]
        Audio (``zx.AudioSamples``) at any sample rate above ``2 * fmin``; channels
        are averaged. Numpy or dask backed.
    wscheme : SampleRate, optional
        Hop (``frequency``) and frame extent (``duration``): a frame holds two spectra
        of ``duration - frequency`` seconds, one hop apart. Default
        :func:`fingerprint_wscheme` (1/32 s hop, 1/4 s spectra).
    fmin, fmax : float, default 100.0 and 10000.0
        Edges of the 33 logarithmically spaced bands, Hz; ``0 < fmin < fmax`` and
        ``fmin`` below the Nyquist frequency (bands above it hold nothing).

    Returns
    -------
    xarray.DataArray [dims=("time",), uint32]
        One code per frame, bit ``m`` (least significant first) for bands ``m, m+1``;
        ``time`` carries the frames' ``TimeIndex`` (one per hop, each spanning the
        frame). Digital silence is 0. Numpy in -> numpy out; dask in -> lazy dask.

    Raises
    ------
    ParameterError
        When ``samples`` is not real audio with a ``TimeIndex`` and dims ``time`` (and
        ``channel``), the bands are not ``0 < fmin < fmax`` with ``fmin`` below the
        Nyquist frequency, ``wscheme`` is not a SampleRate, gives a hop under one sample
        or a frame not longer than its hop, or a band below the Nyquist frequency holds
        no FFT bin.

    See Also
    --------
    zounds_xr.search : Exact Hamming search over windows of these codes.
    stft

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> audio = zx.AudioSamples(np.random.default_rng(0).normal(size=22050), zx.SR22050())
    >>> codes = zx.fingerprint(audio)
    >>> codes.dims, codes.shape, str(codes.dtype)
    (('time',), (24,), 'uint32')
    """
    index = axis_index(samples, "time", TimeIndex, what="fingerprint's audio")
    extra = [d for d in samples.dims if d not in ("time", "channel")]
    if extra:
        raise ParameterError(f"fingerprint takes audio (time[, channel]), got dims "
                             f"{samples.dims}")
    if np.iscomplexobj(np.empty(0, samples.dtype)):
        raise ParameterError("fingerprint takes real audio samples, got complex values")
    rate = float(1 / index.frequency)
    fmin, fmax = float(fmin), float(fmax)
    if not (0 < fmin < fmax and fmin < rate / 2):
        raise ParameterError(f"fingerprint needs 0 < fmin < fmax < samplerate / 2, got "
                             f"fmin={fmin}, fmax={fmax} at {rate:g} Hz")
    if wscheme is None:
        wscheme = fingerprint_wscheme(index)
    mono = samples.mean("channel") if "channel" in samples.dims else samples
    layout = frame_layout(mono, wscheme)
    if layout.win <= layout.hop:
        raise ParameterError(f"a fingerprint frame must be longer than its hop, got "
                             f"wscheme {wscheme!r}")
    kernel = _Kernel(layout.hop, layout.win, rate, fmin, fmax)
    data = mono.data
    out: da.Array | np.ndarray
    if isinstance(data, da.Array):
        out = map_frame_blocks(data.astype(np.float64), layout, kernel, (), np.uint32,
                               name="fingerprint")
    else:
        out = frame_apply([np.asarray(data, dtype=np.float64)], 0, layout.n_frames,
                          layout.hop, layout.win, 0, kernel,
                          np.empty(layout.n_frames, dtype=np.uint32))
    return xr.DataArray(out, coords=layout.time_coords(), dims=("time",))
