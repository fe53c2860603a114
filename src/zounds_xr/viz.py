"""Listening and looking: IPython audio widgets and spectrogram plots.

matplotlib and IPython are the ``[viz]`` extra; they are imported only when a
function here is called.

- :func:`play` -- an ``IPython.display.Audio`` widget (also ``da.zx.play()``).
- :func:`specshow` -- a (time, frequency) feature drawn band by band, time in seconds,
  frequency in Hz on an axis that suits its scale, a dB colour bar (``da.zx.specshow()``).
- :func:`seconds` -- the same array with a float ``time`` coordinate in seconds, so that
  xarray's own ``.plot()`` draws a time axis in seconds (a TimeIndex coordinate holds
  ``timedelta64[ns]``, which matplotlib draws as nanoseconds).
- :func:`audio_html` -- the rich display of ``da.zx`` in a notebook: a summary line and,
  for short audio, a player. DataArray is never subclassed, so ``da`` itself keeps
  xarray's display; evaluate ``da.zx`` (or call ``da.zx.play()``) to listen.
"""
from __future__ import annotations

import html

import numpy as np
import xarray as xr

from .core.optional import optional_import
from .core.validation import axis_index
from .core.errors import ParameterError
from .frequency.index import FrequencyIndex
from .frequency.scales import ChromaScale, ExplicitScale, LinearScale
from .timeseries.index import TimeIndex
from .timeseries.samplerate import AudioSampleRate

__all__ = ["play", "specshow", "seconds", "audio_html"]

#: longest audio (seconds) that ``da.zx``'s rich display embeds as a player
HTML_AUDIO_MAX_SECONDS = 60.0


def _time_index(x: xr.DataArray, dim: str, what: str) -> TimeIndex:
    return axis_index(x, dim, TimeIndex, what=what)


def _audio_rate(samples: xr.DataArray, what: str) -> int:
    """Return the integer sample rate of ``samples``, after checking they are audio."""
    if not isinstance(samples, xr.DataArray):
        raise ParameterError(f"{what} needs audio samples as a DataArray, got "
                             f"{type(samples).__name__}")
    extra = set(samples.dims) - {"time", "channel"}
    if "time" not in samples.dims or extra:
        raise ParameterError(f"{what} needs audio samples with dims ('time',) or "
                             f"('time', 'channel'), got {samples.dims}")
    rate = _time_index(samples, "time", what).samplerate
    if not isinstance(rate, AudioSampleRate):
        raise ParameterError(
            f"{what} needs audio samples, got a time axis of frames (hop "
            f"{rate.frequency}, window {rate.duration}); synthesize audio first")
    return int(rate)


def play(samples: xr.DataArray, *, autoplay: bool = False, normalize: bool = True):
    """Return an ``IPython.display.Audio`` widget for audio samples.

    The samples are computed (if dask-backed) and embedded in the notebook as a WAV, so
    slice long recordings first (``samples.zx[zx.TimeSlice(zx.Seconds(10))]``).

    Parameters
    ----------
    samples : xarray.DataArray [dims=("time",) or ("time", "channel")]
        Audio with an audio-rate TimeIndex (``AudioSamples``, ``load``, ``open_audio``,
        a synthesizer's output); any number of channels.
    autoplay : bool
        Start playing as soon as the widget is shown.
    normalize : bool
        Scale to the peak (IPython's default). With ``False`` the samples are played
        as they are and must lie in [-1, 1]. Silence is never scaled.

    Returns
    -------
    IPython.display.Audio
        A WAV at the audio's sample rate, embedded in the notebook; channels are kept
        (IPython wants them first, ``(channel, time)``, which this function arranges).

    Raises
    ------
    ParameterError
        For anything that is not audio: other dims, or a time axis of frames (a
        spectrogram), or samples outside [-1, 1] with ``normalize=False``.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> x = zx.AudioSamples(np.zeros((8000, 2), "f4"), zx.SR8000())
    >>> x.zx.play()                    # doctest: +SKIP
    <IPython.lib.display.Audio object>
    """
    rate = _audio_rate(samples, "play()")
    display = optional_import("IPython.display", extra="viz")
    arranged = samples.transpose("channel", "time") if "channel" in samples.dims else samples
    data = np.asarray(arranged.values, dtype=np.float64)
    if data.ndim == 2 and data.shape[0] == 1:
        data = data[0]
    data = np.nan_to_num(data)
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    if not normalize and peak > 1.0:
        raise ParameterError(f"play(normalize=False) needs samples in [-1, 1]; the peak is "
                             f"{peak:.3g}")
    # IPython normalises to the peak; keep silence silent instead of dividing by zero
    return display.Audio(data, rate=rate, autoplay=autoplay,
                         normalize=bool(normalize and peak > 0))


def seconds(x: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """``x`` with a float ``dim`` coordinate in seconds (frame starts), for plotting.

    A TimeIndex coordinate holds ``timedelta64[ns]``, which matplotlib draws in
    nanoseconds. This swaps in float seconds (``units="s"``, ``long_name="Time"``) so
    that ``seconds(x).plot()`` reads "Time [s]". The result has a plain pandas index on
    ``dim``: use it for plotting and quick looks, keep ``x`` for computing.

    Parameters
    ----------
    x : xarray.DataArray
        Any array with a TimeIndex on ``dim`` (audio, frames, features).
    dim : str
        The time axis (``"time"`` or ``"window"``).

    Returns
    -------
    xarray.DataArray
        ``x`` with ``dim`` labelled by float seconds (a plain pandas index).

    See Also
    --------
    specshow : A (time, frequency) plot with seconds and Hz axes.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> from zounds_xr.viz import seconds
    >>> x = zx.AudioSamples(np.zeros(4, "f4"), zx.SR8000())
    >>> seconds(x).time.values.tolist(), seconds(x).time.attrs["units"]
    ([0.0, 0.000125, 0.00025, 0.000375], 's')
    """
    index = _time_index(x, dim, "seconds()")
    start, step = index.start, index.frequency
    # exact numerators over a common denominator, then one float division per frame
    values = (float(start) + np.arange(index.size, dtype=np.float64) * step.numerator
              / step.denominator)
    attrs = {"units": "s", "long_name": x[dim].attrs.get("long_name", "Time")}
    return x.drop_vars(dim).assign_coords({dim: (dim, values, attrs)})


def _band_edges(scale) -> np.ndarray:
    """Where each band is drawn: its own edges, or half way between centres if bands overlap."""
    edges = np.append([b.start_hz for b in scale.bands], scale.bands[-1].stop_hz)
    if np.all(np.diff(edges) > 0):
        return edges.astype(float)
    centres = np.asarray(scale.center_frequencies, dtype=float)
    if len(centres) == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    mid = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[centres[0] - (mid[0] - centres[0])], mid,
                           [centres[-1] + (centres[-1] - mid[-1])]])


def specshow(feature: xr.DataArray, *, ax=None, db: bool = True, power: float = 1.0,
             ref: float | str = "max", top_db: float | None = 80.0,
             yscale: str | None = None, cmap: str = "magma", colorbar: bool = True,
             title: str | None = None, **kwargs):
    """Plot a (time, frequency) feature: time in seconds, frequency in Hz, dB colour bar.

    Each frame is drawn over its hop and each band over its extent on the feature's
    ``FrequencyScale``, so linear, mel, bark, geometric and explicit scales all draw
    true to their band layout; a ``ChromaScale`` is drawn as 12 rows named C..B.

    Parameters
    ----------
    feature : xarray.DataArray [dims=("time", "frequency") in any order]
        Complex or real values (numpy or dask: computed); complex values are shown as
        magnitudes. Average or pick channels first (``feature.zx.mono``).
    ax : matplotlib.axes.Axes, optional
        Where to draw (a new 8x4 inch figure otherwise).
    db : bool
        Show decibels: ``20/power * log10(|x| / ref)``; ``False`` shows ``|x|``.
    power : float
        1 for magnitudes or complex spectra (amplitude dB), 2 for power spectra such as
        ``mel_spectrogram``'s default output (``10 log10``).
    ref : float or "max"
        Reference of the dB scale (``"max"``: the peak is 0 dB).
    top_db : float, optional
        Clip the colour range to ``top_db`` below the peak.
    yscale : str, optional
        ``"linear"``, ``"log"`` or ``"symlog"``; by default log for geometric, mel and
        bark scales, linear for linear and explicit scales. A band reaching 0 Hz is
        drawn from half its upper edge on a log axis.
    cmap : str
        A matplotlib colour map.
    colorbar : bool
        Add a colour bar labelled ``dB`` (or ``magnitude``); it is ``mesh.colorbar``.
    title : str, optional
        Axes title; by default the feature's name (if any) and its scale.
    kwargs
        Passed to ``matplotlib.axes.Axes.pcolormesh`` (``vmin``, ``vmax``, ...).

    Returns
    -------
    matplotlib.collections.QuadMesh

    Raises
    ------
    ParameterError
        For anything other than a 2-D array with a TimeIndex on ``time`` and a
        FrequencyIndex on ``frequency``.

    Examples
    --------
    >>> spec = zx.stft(samples, zx.SR22050().half_lapped())   # doctest: +SKIP
    >>> spec.zx.specshow()                                    # doctest: +SKIP
    >>> zx.mel_spectrogram(spec).zx.specshow(power=2)         # doctest: +SKIP
    """
    if not isinstance(feature, xr.DataArray):
        raise ParameterError(f"specshow needs a DataArray, got {type(feature).__name__}")
    if set(feature.dims) != {"time", "frequency"} or feature.ndim != 2:
        hint = (" (average the channels first: feature.zx.mono)"
                if "channel" in feature.dims else
                "; for other features plot zounds_xr.viz.seconds(feature).plot()")
        raise ParameterError(
            f"specshow needs a 2-D (time, frequency) feature, got dims {feature.dims}{hint}")
    if yscale not in (None, "linear", "log", "symlog"):
        raise ParameterError(f"yscale must be 'linear', 'log' or 'symlog', got {yscale!r}")
    index = _time_index(feature, "time", "specshow")
    findex = axis_index(feature, "frequency", FrequencyIndex, what="specshow")
    plt = optional_import("matplotlib.pyplot", extra="viz")

    feature = feature.transpose("frequency", "time")
    values = np.abs(np.asarray(feature.values))
    values = values.astype(np.float64, copy=False)
    if db:
        reference = np.nanmax(values) if ref == "max" else float(ref)
        if not np.isfinite(reference) or reference <= 0:
            reference = 1.0
        values = 20.0 / power * np.log10(np.maximum(values, 1e-10) / max(reference, 1e-10))
        if top_db is not None and values.size:
            values = np.maximum(values, np.nanmax(values) - top_db)
    starts = float(index.start) + np.arange(index.size + 1) * float(index.frequency)

    scale = findex.scale
    kind = type(scale).__name__
    chroma = isinstance(scale, ChromaScale)
    if chroma:
        edges = np.arange(len(scale) + 1) - 0.5
        yscale = "linear"
    else:
        edges = _band_edges(scale)
        if yscale is None:
            yscale = "linear" if isinstance(scale, (LinearScale, ExplicitScale)) else "log"
        if yscale == "log" and edges[0] <= 0:
            # a band reaching 0 Hz (or below, for the DC bin): draw it from half its top
            edges = edges.copy()
            edges[0] = edges[1] / 2

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    mesh = ax.pcolormesh(starts, edges, values, cmap=cmap, shading="flat", **kwargs)
    ax.set_yscale(yscale)
    ax.set_xlim(starts[0], starts[-1])
    ax.set_ylim(edges[0], edges[-1])
    ax.set_xlabel("Time [s]")
    if chroma:
        ax.set_yticks(np.arange(len(scale)), list(scale.pitch_classes))
        ax.set_ylabel("Pitch class")
    else:
        ax.set_ylabel("Frequency [Hz]")
    if title is None:
        title = f"{kind}, {len(scale)} bands"
        if feature.name is not None:
            title = f"{feature.name} ({title})"
    ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label="dB" if db else "magnitude")
    return mesh


def audio_html(x: xr.DataArray) -> str:
    """HTML for the notebook display of ``x.zx``: a summary line, and a player for audio.

    Audio up to :data:`HTML_AUDIO_MAX_SECONDS` long gets an embedded player (dask-backed
    audio is computed for it); longer audio, features and arrays without a TimeIndex get
    the summary and xarray's own display.

    Parameters
    ----------
    x : xarray.DataArray
        Any array.

    Returns
    -------
    str
        HTML.

    See Also
    --------
    play : The player alone.
    """
    parts: list[str] = []
    index = x.xindexes.get("time")
    rate = index.samplerate if isinstance(index, TimeIndex) else None
    audio = isinstance(rate, AudioSampleRate) and set(x.dims) <= {"time", "channel"}
    span = 0.0
    if isinstance(index, TimeIndex):
        span = float(index.span)
        channels = x.sizes.get("channel", 1)
        layout = "mono" if channels == 1 else f"{channels} channels"
        what = (f"{rate.samples_per_second} Hz audio, {layout}, {span:.6g} s"
                if isinstance(rate, AudioSampleRate) and audio else index._repr_inline_(200))
        lazy = " (dask, lazy)" if x.chunks is not None else ""
        parts.append(f"<div><b>{html.escape(str(x.name or 'zounds_xr'))}</b>: "
                     f"{html.escape(what)}, dims {html.escape(str(x.dims))}{lazy}</div>")
    if audio and span <= HTML_AUDIO_MAX_SECONDS and x.size:
        parts.append(play(x)._repr_html_())
    else:
        if audio:
            parts.append(f"<div>(longer than {HTML_AUDIO_MAX_SECONDS:g} s: slice it, then "
                         f"<code>.zx.play()</code>)</div>")
        parts.append(x._repr_html_())
    return "\n".join(parts)
