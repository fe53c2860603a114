"""Hertz to and from perceptual units: mels (Slaney or HTK) and Bark, as librosa 0.11.

The conversions the perceptual scales (:class:`~zounds_xr.frequency.scales.MelScale`,
:class:`~zounds_xr.frequency.scales.BarkScale`) place their bands with; also public on
their own (``zounds_xr.frequency.hz_to_mel`` ...).
"""
from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["hz_to_mel", "mel_to_hz", "hz_to_bark", "bark_to_hz"]

# ------------------------------------------------------------------------------------
# perceptual frequency scales (as librosa 0.11 computes them)
# ------------------------------------------------------------------------------------
_F_SP = 200.0 / 3  # Slaney: linear part, 66.67 Hz per mel
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(frequencies: ArrayLike, *, htk: bool = False) -> np.ndarray:
    """Hertz to mels: Slaney's Auditory Toolbox mel scale, or HTK's with ``htk=True``.

    Parameters
    ----------
    frequencies : float or array_like of float >= 0
        Frequencies in Hz.
    htk : bool
        ``2595 log10(1 + f / 700)`` (HTK) instead of Slaney's (linear below 1 kHz,
        logarithmic above), as ``librosa.hz_to_mel``.

    Returns
    -------
    numpy.ndarray [shape=np.shape(frequencies), float64]
        Mels.

    See Also
    --------
    mel_to_hz : The inverse.
    MelScale : Bands equally spaced on this scale.

    Examples
    --------
    >>> round(float(hz_to_mel(1000.0)), 6), round(float(hz_to_mel(1000.0, htk=True)), 3)
    (15.0, 999.986)
    """
    f = np.asarray(frequencies, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    mels = f / _F_SP
    log = f >= _MIN_LOG_HZ
    return np.where(log, _MIN_LOG_MEL + np.log(np.where(log, f, _MIN_LOG_HZ) / _MIN_LOG_HZ)
                    / _LOGSTEP, mels)


def mel_to_hz(mels: ArrayLike, *, htk: bool = False) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`.

    Parameters
    ----------
    mels : float or array_like of float
        Mels.
    htk : bool
        The HTK formula instead of Slaney's.

    Returns
    -------
    numpy.ndarray [shape=np.shape(mels), float64]
        Frequencies in Hz.

    See Also
    --------
    hz_to_mel : The inverse.

    Examples
    --------
    >>> round(float(mel_to_hz(15.0)), 9)
    1000.0
    """
    m = np.asarray(mels, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    return np.where(m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)),
                    _F_SP * m)


def hz_to_bark(frequencies: ArrayLike) -> np.ndarray:
    """Hertz to Bark, Traunmüller (1990) with his low and high end corrections.

    ``z = 26.81 f / (1960 + f) - 0.53``; below 2 Bark ``z + 0.15 (2 - z)``, above
    20.1 Bark ``z + 0.22 (z - 20.1)``.

    Parameters
    ----------
    frequencies : float or array_like of float >= 0
        Frequencies in Hz.

    Returns
    -------
    numpy.ndarray [shape=np.shape(frequencies), float64]
        Barks.

    See Also
    --------
    bark_to_hz : The inverse.
    BarkScale : Bands equally spaced on this scale.

    Examples
    --------
    >>> round(float(hz_to_bark(1000.0)), 3)
    8.527
    """
    f = np.asarray(frequencies, dtype=np.float64)
    z = 26.81 * f / (1960.0 + f) - 0.53
    z = np.where(z < 2.0, z + 0.15 * (2.0 - z), z)
    return np.where(z > 20.1, z + 0.22 * (z - 20.1), z)


def bark_to_hz(barks: ArrayLike) -> np.ndarray:
    """Inverse of :func:`hz_to_bark`.

    Parameters
    ----------
    barks : float or array_like of float
        Barks (below 26.28, the scale's asymptote).

    Returns
    -------
    numpy.ndarray [shape=np.shape(barks), float64]
        Frequencies in Hz.

    See Also
    --------
    hz_to_bark : The inverse.

    Examples
    --------
    >>> round(float(bark_to_hz(hz_to_bark(440.0))), 6)
    440.0
    """
    z = np.asarray(barks, dtype=np.float64)
    # undo the corrections: both are affine, and monotone, so their inverses are too
    z = np.where(z < 2.0, (z - 0.3) / 0.85, z)
    z = np.where(z > 20.1, (z + 0.22 * 20.1) / 1.22, z)
    return 1960.0 * (z + 0.53) / (26.28 - z)
