"""Spectral transforms: pure functions over labelled DataArrays, lazy on dask input.

Modules
-------
sliding
    :func:`~zounds_xr.spectral.sliding.sliding_window` (frames of audio or of features).
transforms
    :func:`~zounds_xr.spectral.transforms.fft`, ``stft``, ``dct``, ``dctiv``, ``mdct``.
adaptive, features, weighting, filters
    Frequency-adaptive transforms, spectral features, frequency weightings, filter banks.

The public names are re-exported lazily from ``zounds_xr`` (``zx.stft`` ...).
"""
