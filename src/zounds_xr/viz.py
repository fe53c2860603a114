"""Listening and looking: IPython audio widgets and spectrogram plots.

matplotlib and IPython are the ``[viz]`` extra; they are imported only when a
function here is called.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from ._optional import optional_import
from .errors import ParameterError

__all__ = ["play", "specshow"]


def play(samples: xr.DataArray, *, autoplay: bool = False):
    """An ``IPython.display.Audio`` widget for audio samples.

    Parameters
    ----------
    samples : xarray.DataArray [dims=("time",) or ("time", "channel")]
        Audio with an audio-rate TimeIndex (computed if dask-backed).

    Returns
    -------
    IPython.display.Audio
    """
    display = optional_import("IPython.display", extra="viz")
    rate = samples.zx.samplerate
    if not hasattr(rate, "__int__"):
        raise ParameterError(f"play() needs audio samples, got a time axis at {rate!r}")
    data = np.asarray(samples.transpose("channel", "time").values if "channel" in samples.dims
                      else samples.values, dtype=np.float64)
    # IPython normalises to the peak; keep silence silent instead of dividing by zero
    return display.Audio(data, rate=int(rate), autoplay=autoplay,
                         normalize=bool(np.any(data)))


def specshow(feature: xr.DataArray, *, ax=None, db: bool = True, power: float = 1.0,
             ref: float | str = "max",
             top_db: float | None = 80.0, yscale: str | None = None, cmap: str = "magma",
             colorbar: bool = True, **kwargs):
    """Plot a (time, frequency) feature: time in seconds, frequency in Hz, dB colour bar.

    Parameters
    ----------
    feature : xarray.DataArray [dims=("time", "frequency")]
        Complex or real values; complex values are shown as magnitudes.
    ax : matplotlib.axes.Axes, optional
        Where to draw (a new figure otherwise).
    db : bool
        Show decibels: ``20/power · log10(|x| / ref)``.
    power : float
        1 for magnitudes (amplitude dB), 2 for power spectra (``10 log10``).
    ref : float or "max"
        Reference of the dB scale.
    top_db : float, optional
        Clip the colour range to ``top_db`` below the peak.
    yscale : str, optional
        ``"linear"``, ``"log"`` or ``"symlog"``; by default log for geometric/mel/bark
        scales and linear for linear scales.
    kwargs
        Passed to ``matplotlib.axes.Axes.pcolormesh``.

    Returns
    -------
    matplotlib.collections.QuadMesh
    """
    plt = optional_import("matplotlib.pyplot", extra="viz")
    missing = {"time", "frequency"} - set(feature.dims)
    if missing or feature.ndim != 2:
        raise ParameterError(
            f"specshow needs a 2-D (time, frequency) feature, got dims {feature.dims}")
    feature = feature.transpose("frequency", "time")
    values = np.abs(np.asarray(feature.values, dtype=np.complex128 if np.iscomplexobj(
        feature.values) else np.float64))
    if db:
        reference = values.max() if ref == "max" else float(ref)
        values = 20 / power * np.log10(np.maximum(values, 1e-10) / max(reference, 1e-10))
        if top_db is not None:
            values = np.maximum(values, values.max() - top_db)
    index = feature.xindexes["time"]
    starts = float(index.start) + np.arange(index.size + 1) * float(index.frequency)
    scale = feature.zx.dimensions[0].scale
    edges = np.append([b.start_hz for b in scale.bands], scale.bands[-1].stop_hz)
    if not np.all(np.diff(edges) > 0):  # overlapping bands: draw around the centres
        centres = np.asarray(scale.center_frequencies, dtype=float)
        mid = (centres[1:] + centres[:-1]) / 2
        edges = np.concatenate([[centres[0] - (mid[0] - centres[0]) if len(mid) else
                                 centres[0] - 0.5], mid,
                                [centres[-1] + (centres[-1] - mid[-1]) if len(mid) else
                                 centres[-1] + 0.5]])
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    mesh = ax.pcolormesh(starts, edges, values, cmap=cmap, shading="flat", **kwargs)
    kind = type(scale).__name__
    if yscale is None:
        yscale = "linear" if kind in ("LinearScale", "ExplicitScale", "ChromaScale") else "log"
    if yscale == "log" and edges[0] <= 0:
        # a band reaching 0 Hz: start its drawing half way below its upper edge
        edges = edges.copy()
        edges[0] = edges[1] / 2
    ax.set_yscale(yscale)
    ax.set_xlabel("Time [s]")
    ax.set_ylabel("Frequency [Hz]")
    ax.set_title(f"{feature.name or 'feature'} ({kind}, {len(scale)} bands)")
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label="dB" if db else "magnitude")
    return mesh
