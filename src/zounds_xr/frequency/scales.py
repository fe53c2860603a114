"""Frequency scales: ordered sets of :class:`~zounds_xr.frequency.band.FrequencyBand`.

A scale describes what the positions of a ``frequency`` axis mean (band ``i`` of the
scale is position ``i`` of the axis). Scales are immutable values: equality and hashing
compare their *parameters* (never recomputed band arrays), ``to_dict``/``from_dict``
give an exact JSON-safe round trip for persistence. The filter banks that rebin a
spectrum onto a scale are spectral (:func:`zounds_xr.spectral.filters.filter_bank`,
:func:`~zounds_xr.spectral.filters.apply_scale`); ``scale.weights(...)`` and
``scale.apply(...)``, zounds' methods, call them.

=====================  =================================================================
scale                  bands
=====================  =================================================================
``LinearScale``        ``n_bands`` contiguous bands of equal width (FFT/DCT bins)
``GeometricScale``     constant-Q: geometric centres, width ``centre * bandwidth_ratio``
``MelScale``           librosa's mel triangles (Slaney or HTK mel)
``BarkScale``          the same triangular layout on Traunmüller's (1990) Bark scale
``ChromaScale``        the 12 pitch classes C..B
``ExplicitScale``      any list of bands
=====================  =================================================================
"""
from __future__ import annotations

import json
import math
import numbers
import operator
from collections.abc import Mapping

import numpy as np
import xarray as xr

from ..core.validation import frozen, positive_int
from ..core.errors import ParameterError
from .band import FrequencyBand, _hz
from .perceptual import bark_to_hz, hz_to_bark, hz_to_mel, mel_to_hz

__all__ = [
    "FrequencyScale",
    "LinearScale",
    "GeometricScale",
    "MelScale",
    "BarkScale",
    "ChromaScale",
    "ExplicitScale",
    "hz_to_mel",
    "mel_to_hz",
    "hz_to_bark",
    "bark_to_hz",
]

#: names of the pitch classes of a :class:`ChromaScale`, in axis order
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


# ------------------------------------------------------------------------------------
# parameter checks
# ------------------------------------------------------------------------------------
def _band(value, name: str = "frequency_band") -> FrequencyBand:
    if not isinstance(value, FrequencyBand):
        raise ParameterError(f"{name} must be a FrequencyBand, got {value!r}")
    return value


# ------------------------------------------------------------------------------------
# the base class
# ------------------------------------------------------------------------------------
class FrequencyScale:
    """An ordered set of frequency bands; base class of every scale.

    Subclasses define their bands from a few parameters. The common interface:

    - ``bands`` (list of :class:`FrequencyBand`), ``center_frequencies``,
      ``bandwidths``, ``Q``, ``band_starts``, ``band_stops`` (read-only numpy arrays);
    - ``frequency_band``, ``start_hz``, ``stop_hz``: the span of the scale;
    - ``len(scale)``/``n_bands``, iteration over bands, ``scale[i]`` (a band) and
      ``scale[slice or positions]`` (a scale: a contiguous slice of a linear, mel or
      Bark scale and a regular stride of a geometric scale keep their kind, anything
      else is an :class:`ExplicitScale`);
    - :meth:`overlapping`, :meth:`get_slice`, :meth:`ensure_overlap_ratio`;
    - :meth:`weights` and :meth:`apply` to rebin a spectrum onto the scale (the
      filter banks of :mod:`zounds_xr.spectral.filters`);
    - :meth:`to_dict` / :meth:`FrequencyScale.from_dict` for persistence.

    Scales are immutable; ``==`` and ``hash`` compare the parameters (two scales of
    different kinds are never equal, even with identical bands).
    """

    #: see :meth:`get_slice`
    always_even: bool = False

    _types: dict[str, type[FrequencyScale]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        FrequencyScale._types[cls.__name__] = cls

    # subclass interface ---------------------------------------------------------------
    def _params(self) -> tuple:
        """Hashable tuple of the parameters that define the scale."""
        raise NotImplementedError

    def _compute_edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(starts, stops)`` of the bands."""
        raise NotImplementedError

    def _compute_centers(self) -> np.ndarray:
        starts, stops = self._edges()
        return starts + (stops - starts) / 2

    def _slice(self, r: range) -> FrequencyScale:
        """Return the scale of positions ``r`` (non-empty, not the whole scale)."""
        return self._explicit(np.asarray(r, dtype=np.int64))

    def _explicit(self, positions: np.ndarray) -> ExplicitScale:
        # keep the centres: for mel, Bark and chroma they are not the band midpoints
        starts, stops = self._edges()
        pairs = zip(starts[positions].tolist(), stops[positions].tolist(), strict=True)
        return ExplicitScale(list(pairs),
                             centers=self.center_frequencies[positions].tolist())

    def to_dict(self) -> dict:
        """JSON-safe parameters, ``{"type": <class name>, ...}``; see :meth:`from_dict`."""
        raise NotImplementedError

    # cached arrays ---------------------------------------------------------------------
    def _cached(self, key, compute):
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            cache[key] = compute()
        return cache[key]

    def _edges(self) -> tuple[np.ndarray, np.ndarray]:
        return self._cached("edges", lambda: tuple(frozen(a) for a in self._compute_edges()))

    def __getstate__(self):
        # arrays are cheap to recompute; never ship them with the scale
        return {k: v for k, v in self.__dict__.items() if k != "_cache"}

    def __setstate__(self, state):
        self.__dict__.update(state)

    # the bands -------------------------------------------------------------------------
    @property
    def n_bands(self) -> int:
        """The number of bands."""
        return len(self._edges()[0])

    def __len__(self) -> int:
        return self.n_bands

    @property
    def bands(self) -> list[FrequencyBand]:
        """Every band of the scale, in axis order."""
        bands = self._cached("bands", lambda: tuple(
            FrequencyBand(a, b) for a, b in zip(*(e.tolist() for e in self._edges()), strict=True)))
        return list(bands)

    def __iter__(self):
        return iter(self.bands)

    @property
    def band_starts(self) -> np.ndarray:
        """Lower edges of the bands (Hz)."""
        return self._edges()[0]

    @property
    def band_stops(self) -> np.ndarray:
        """Upper edges of the bands (Hz)."""
        return self._edges()[1]

    @property
    def center_frequencies(self) -> np.ndarray:
        """Centre frequency of each band (Hz): the axis labels.

        The midpoint of the band, except for the triangular scales (mel, Bark) where it
        is the peak of the triangle, and :class:`ChromaScale` (the note frequency).
        """
        return self._cached("centers", lambda: frozen(self._compute_centers()))

    @property
    def bandwidths(self) -> np.ndarray:
        """Width of each band (Hz)."""
        return self._cached("bandwidths",
                            lambda: frozen(self._edges()[1] - self._edges()[0]))

    @property
    def Q(self) -> np.ndarray:  # noqa: N802  (zounds' name)
        """Quality factor of each band: centre frequency / bandwidth."""
        return self.center_frequencies / self.bandwidths

    @property
    def frequency_band(self) -> FrequencyBand:
        """The band spanning the whole scale."""
        starts, stops = self._edges()
        if not len(starts):
            raise ParameterError("an empty scale has no frequency_band")
        return FrequencyBand(float(starts.min()), float(stops.max()))

    @property
    def start_hz(self) -> float:
        """Lower bound of the scale (Hz)."""
        return self.frequency_band.start_hz

    @property
    def stop_hz(self) -> float:
        """Upper bound of the scale (Hz)."""
        return self.frequency_band.stop_hz

    # selection -------------------------------------------------------------------------
    def __getitem__(self, index):
        """``scale[i]`` is band ``i``; ``scale[slice or positions or FrequencyBand]`` a scale."""
        n = self.n_bands
        if isinstance(index, (numbers.Integral, np.integer)) and not isinstance(index, bool):
            i = operator.index(index)
            if not -n <= i < n:
                raise IndexError(f"band {i} out of range for a scale of {n} bands")
            starts, stops = self._edges()
            return FrequencyBand(float(starts[i]), float(stops[i]))
        if isinstance(index, FrequencyBand):  # zounds: the sub-scale overlapping a band
            return self[self.overlapping(index)]
        if isinstance(index, slice):
            return self._take(range(n)[index])
        positions = np.asarray(index)
        if positions.dtype == bool:
            if positions.shape != (n,):
                raise IndexError(f"boolean mask of shape {positions.shape} for {n} bands")
            positions = np.flatnonzero(positions)
        if positions.ndim != 1 or not (positions.size == 0
                                       or np.issubdtype(positions.dtype, np.integer)):
            raise IndexError(f"cannot index a scale with {index!r}")
        positions = positions.astype(np.int64)
        if positions.size and (positions.min() < -n or positions.max() >= n):
            raise IndexError(f"positions out of range for a scale of {n} bands")
        positions = np.where(positions < 0, positions + n, positions)
        r = _as_range(positions)
        if r is not None:
            return self._take(r)
        return self._explicit(positions)

    def _take(self, r: range) -> FrequencyScale:
        if len(r) == 0:
            return ExplicitScale([])
        if r == range(self.n_bands):
            return self
        return self._slice(r)

    def overlapping(self, band: FrequencyBand) -> np.ndarray:
        """Positions of the bands that overlap ``band`` (half-open: touching is not overlap).

        Parameters
        ----------
        band : FrequencyBand

        Returns
        -------
        numpy.ndarray [shape=(n,), int64]
            Increasing positions (empty when nothing overlaps).

        See Also
        --------
        get_slice : The same as a slice.

        Examples
        --------
        >>> from zounds_xr import FrequencyBand, LinearScale
        >>> LinearScale(FrequencyBand(0, 1000), 10).overlapping(FrequencyBand(450, 650))
        array([4, 5, 6])
        """
        band = _band(band, "band")
        starts, stops = self._edges()
        return np.flatnonzero((starts < band.stop_hz) & (stops > band.start_hz))

    def get_slice(self, band: FrequencyBand) -> slice:
        """Return the positions of the bands overlapping ``band``, as a slice.

        Half-open overlap (a band that only touches an edge of ``band`` is left out).
        When ``always_even`` is set, an odd-length slice grows by one band (at the top,
        or at the bottom when the top is the end of the scale), as zounds did for
        transforms that need an even number of coefficients. An :class:`ExplicitScale`
        whose overlapping bands are not contiguous gets the slice from the first to the
        last of them. No overlap gives an empty slice.

        Parameters
        ----------
        band : FrequencyBand

        Returns
        -------
        slice
            ``slice(start, stop)`` of positions.

        See Also
        --------
        overlapping : The positions themselves.

        Examples
        --------
        >>> from zounds_xr import FrequencyBand, LinearScale
        >>> LinearScale(FrequencyBand(0, 1000), 10).get_slice(FrequencyBand(450, 650))
        slice(4, 7, None)
        """
        positions = self.overlapping(band)
        if not len(positions):
            return slice(0, 0)
        start, stop = int(positions[0]), int(positions[-1]) + 1
        if self.always_even and (stop - start) % 2:
            if stop < self.n_bands:
                stop += 1
            elif start > 0:
                start -= 1
        return slice(start, stop)

    def ensure_overlap_ratio(self, required_ratio: float = 0.5) -> None:
        """Check that each band overlaps the next by at least ``required_ratio`` of its width.

        Useful for invertible frequency-adaptive transforms (constant overlap-add).

        Parameters
        ----------
        required_ratio : float
            The least overlap of band ``i`` and band ``i + 1``, as a fraction of band
            ``i``'s width (finite; 0.5 for half-overlapping bands).

        Raises
        ------
        ParameterError
            Naming the first pair of adjacent bands that overlap too little. Departure
            from zounds, which raised ``AssertionError``: ``ParameterError`` is a
            ``ValueError`` and survives ``python -O``.

        Examples
        --------
        >>> from zounds_xr import GeometricScale
        >>> GeometricScale(100, 5000, bandwidth_ratio=0.089, n_bands=100).ensure_overlap_ratio(0.5)
        """
        if isinstance(required_ratio, bool) or not isinstance(required_ratio, numbers.Real) \
                or not math.isfinite(required_ratio):
            raise ParameterError(f"required_ratio must be a finite number, got {required_ratio!r}")
        ratio_required = float(required_ratio)
        starts, stops = self._edges()
        if len(starts) < 2:
            return
        inter = np.minimum(stops[:-1], stops[1:]) - np.maximum(starts[:-1], starts[1:])
        ratios = np.maximum(inter, 0.0) / (stops[:-1] - starts[:-1])
        bad = np.flatnonzero(ratios < ratio_required)
        if len(bad):
            i = int(bad[0])
            raise ParameterError(
                f"bands {i} and {i + 1} ({self[i]!r}, {self[i + 1]!r}) overlap by "
                f"{float(ratios[i]):.4g} of band {i}'s bandwidth; "
                f"required_ratio={required_ratio!r}")

    # rebinning (zounds' methods) -------------------------------------------------------
    # The filter banks are spectral (spectral/filters.py, which imports this module);
    # these methods import it when called, so that no module-level arrow runs upward.
    def weights(self, linear_scale: FrequencyScale, window=None, **options) -> np.ndarray:
        """Return the filter bank that rebins a spectrum on ``linear_scale`` onto this scale.

        See :func:`zounds_xr.spectral.filters.filter_bank` (each kind of scale's
        shape and options).

        Parameters
        ----------
        linear_scale : FrequencyScale
            The scale of the spectrum's frequency axis.
        window : callable, optional
            Called with a size, returns that many weights; ``None`` for rectangular.
        **options
            The options of this kind of scale (``norm`` for mel and Bark scales...).

        Returns
        -------
        numpy.ndarray [shape=(len(self), len(linear_scale))]
            Read-only, cached weights.

        Raises
        ------
        ParameterError
            When ``linear_scale`` is not a scale or an option is unknown or invalid.

        Examples
        --------
        >>> from zounds_xr import FrequencyBand, LinearScale
        >>> LinearScale(FrequencyBand(0, 400), 2).weights(LinearScale(FrequencyBand(0, 400), 4))
        array([[1., 1., 0., 0.],
               [0., 0., 1., 1.]])
        """
        from ..spectral.filters import filter_bank  # deferred: spectral sits above

        return filter_bank(self, linear_scale, window, **options)

    def apply(self, x: xr.DataArray, window=None, *, dim: str = "frequency",
              **options) -> xr.DataArray:
        """Rebin ``x``'s frequency axis onto this scale.

        See :func:`zounds_xr.spectral.filters.apply_scale`.

        Parameters
        ----------
        x : xarray.DataArray
            A spectrum with a ``FrequencyIndex`` on ``dim``.
        window : callable, optional
            See :meth:`weights`.
        dim : str
            The frequency dim of ``x``.
        **options
            Passed to :meth:`weights`.

        Returns
        -------
        xarray.DataArray
            ``x`` with ``dim`` rebinned onto and labelled by this scale.

        Raises
        ------
        ParameterError
            When ``x`` has no frequency axis to rebin, or :meth:`weights` refuses.
        """
        from ..spectral.filters import apply_scale  # deferred: spectral sits above

        return apply_scale(x, self, window, dim=dim, **options)

    # persistence and identity ---------------------------------------------------------------
    @staticmethod
    def from_dict(d) -> FrequencyScale:
        """Rebuild a scale from :meth:`to_dict` output (a mapping or its JSON string).

        Parameters
        ----------
        d : mapping or str
            ``{"type": <class name>, ...parameters}`` or its JSON.

        Returns
        -------
        FrequencyScale
            Equal to the scale that wrote ``d``.

        Raises
        ------
        ParameterError
            For an unknown type or invalid parameters.

        Examples
        --------
        >>> from zounds_xr import FrequencyScale, GeometricScale
        >>> s = GeometricScale(20, 20000, 0.05, 10)
        >>> FrequencyScale.from_dict(s.to_dict()) == s
        True
        """
        if isinstance(d, (str, bytes)):
            d = json.loads(d)
        if not isinstance(d, Mapping) or "type" not in d:
            raise ParameterError(f"not a frequency scale definition: {d!r}")
        params = dict(d)
        kind = params.pop("type")
        cls = FrequencyScale._types.get(kind)
        if cls is None:
            raise ParameterError(f"unknown frequency scale type {kind!r}")
        try:
            return cls._from_params(params)
        except (KeyError, TypeError) as e:
            raise ParameterError(f"invalid {kind} definition {d!r}: {e}") from None

    @classmethod
    def _from_params(cls, params: dict) -> FrequencyScale:
        return cls(**params)

    def __eq__(self, other) -> bool:
        if self is other:
            return True
        return type(self) is type(other) and self._params() == other._params()

    def __hash__(self) -> int:
        return self._cached("hash", lambda: hash((type(self).__name__, self._params())))

    def _describe(self) -> str:
        """Short human description, e.g. for an index repr."""
        if not self.n_bands:
            return f"{type(self).__name__}, 0 bands"
        return (f"{type(self).__name__} {self.start_hz:.6g}\u2013{self.stop_hz:.6g} Hz, "
                f"{self.n_bands} bands")


def _as_range(positions: np.ndarray) -> range | None:
    """``positions`` as a range when it is an increasing arithmetic progression."""
    if positions.size == 0:
        return range(0)
    if positions.size == 1:
        return range(int(positions[0]), int(positions[0]) + 1)
    steps = np.diff(positions)
    step = int(steps[0])
    if step > 0 and np.all(steps == step):
        return range(int(positions[0]), int(positions[-1]) + 1, step)
    return None


# ------------------------------------------------------------------------------------
# linear
# ------------------------------------------------------------------------------------
class LinearScale(FrequencyScale):
    """``n_bands`` contiguous bands of equal width spanning ``frequency_band``.

    Band ``i`` is ``[start + i*w, start + (i+1)*w)`` with ``w = bandwidth / n_bands``
    (zounds semantics). Appropriate for transforms whose coefficients lie on a linear
    frequency scale (FFT, DCT). :meth:`from_rfft` builds the axis of ``np.fft.rfft``.

    Parameters
    ----------
    frequency_band : FrequencyBand
        The span of the scale.
    n_bands : int
        The number of bands (>= 1).
    always_even : bool
        Whether :meth:`get_slice` always returns an even number of bands.

    Examples
    --------
    >>> from zounds_xr import FrequencyBand, LinearScale
    >>> scale = LinearScale(FrequencyBand(20, 20000), 10)
    >>> scale.Q[:3].round(6)
    array([0.51001, 1.51001, 2.51001])
    >>> scale[2:4].frequency_band, type(scale[2:4]).__name__
    (FrequencyBand(start_hz=4016.0, stop_hz=8012.0, center=6014.0, bandwidth=3996.0), 'LinearScale')
    """

    def __init__(self, frequency_band: FrequencyBand, n_bands: int, always_even: bool = False):
        band = _band(frequency_band)
        n = positive_int(n_bands, "n_bands")
        self._init(band.start_hz, band.bandwidth / n, n, band.stop_hz, always_even)

    def _init(self, start: float, step: float, n: int, stop: float, always_even) -> None:
        # the step is a parameter in its own right (not recomputed from the band) so
        # that from_rfft's bin 0 is centred exactly on 0 Hz and slices keep the step
        self._start = float(start)
        self._step = float(step)
        self._n = int(n)
        self._stop = float(stop)
        self.always_even = bool(always_even)
        if not (math.isfinite(self._step) and self._step > 0):
            raise ParameterError(f"band width must be a positive finite number, got {step!r}")

    @classmethod
    def _from_step(cls, start: float, step: float, n: int, stop: float | None = None,
                   always_even: bool = False) -> LinearScale:
        self = cls.__new__(cls)
        self._init(start, step, n, start + n * step if stop is None else stop, always_even)
        return self

    @classmethod
    def from_sample_rate(cls, sample_rate, n_bands: int, always_even: bool = False) -> LinearScale:
        """``n_bands`` bands from 0 Hz to the Nyquist frequency of ``sample_rate``.

        Band ``i`` starts at ``i * nyquist / n_bands`` (zounds).

        Parameters
        ----------
        sample_rate : SampleRate
            Anything with a ``nyquist`` frequency (Hz).
        n_bands : int > 0
            The number of bands.
        always_even : bool
            See :meth:`FrequencyScale.get_slice`.

        Returns
        -------
        LinearScale

        Examples
        --------
        >>> import zounds_xr as zx
        >>> zx.LinearScale.from_sample_rate(zx.SR44100(), 1024).bands[1].start_hz
        21.533203125
        """
        nyquist = getattr(sample_rate, "nyquist", None)
        if nyquist is None:
            raise ParameterError(f"sample_rate must have a nyquist frequency, got {sample_rate!r}")
        return cls(FrequencyBand(0, nyquist), n_bands, always_even=always_even)

    @classmethod
    def from_rfft(cls, n_fft: int, samples_per_second, always_even: bool = False) -> LinearScale:
        """Return the axis of ``np.fft.rfft`` of ``n_fft`` samples at ``samples_per_second``.

        ``n_fft // 2 + 1`` bands, each one bin (``sr / n_fft``) wide and *centred* on
        ``np.fft.rfftfreq(n_fft, 1 / sr)`` (bin 0 spans ``[-w/2, w/2)``; its centre is
        exactly 0 Hz).

        Parameters
        ----------
        n_fft : int
            The transform size (window length plus padding).
        samples_per_second : float or SampleRate
            The sample rate (a number, or an object with ``samples_per_second``).

        Examples
        --------
        >>> import numpy as np
        >>> from zounds_xr import LinearScale
        >>> scale = LinearScale.from_rfft(8, 8000)
        >>> scale.center_frequencies
        array([   0., 1000., 2000., 3000., 4000.])
        >>> bool(np.allclose(scale.center_frequencies, np.fft.rfftfreq(8, 1 / 8000)))
        True
        """
        n_fft = positive_int(n_fft, "n_fft")
        sr = _hz(getattr(samples_per_second, "samples_per_second", samples_per_second),
                 "samples_per_second")
        if sr <= 0:
            raise ParameterError(f"samples_per_second must be positive, got {sr!r}")
        step = sr / int(n_fft)
        return cls._from_step(-step / 2, step, int(n_fft) // 2 + 1, always_even=always_even)

    @property
    def n_bands(self) -> int:
        """Number of bands."""
        return self._n

    @property
    def bandwidth(self) -> float:
        """The width of every band (Hz)."""
        return self._step

    @property
    def frequency_band(self) -> FrequencyBand:
        """The span of the scale, lowest band start to highest band stop."""
        return FrequencyBand(self._start, self._stop)

    def _compute_edges(self):
        edges = self._start + np.arange(self._n + 1) * self._step
        edges[-1] = self._stop  # the given band's edge, not a re-rounded one
        return edges[:-1], edges[1:]

    def _compute_centers(self):
        return (self._start + self._step / 2) + np.arange(self._n) * self._step

    def overlapping(self, band: FrequencyBand) -> np.ndarray:
        """Positions of the bands that overlap ``band`` (half-open overlap)."""
        # O(log n) on an evenly spaced axis: no need to scan every bin
        band = _band(band, "band")
        starts, stops = self._edges()
        lo = int(np.searchsorted(stops, band.start_hz, side="right"))
        hi = int(np.searchsorted(starts, band.stop_hz, side="left"))
        return np.arange(lo, max(lo, hi))

    def _slice(self, r: range) -> FrequencyScale:
        if r.step != 1:  # a stride leaves gaps: no longer contiguous
            return super()._slice(r)
        starts, stops = self._edges()
        return LinearScale._from_step(float(starts[r.start]), self._step, len(r),
                                      float(stops[r.stop - 1]), self.always_even)

    def _params(self):
        return (self._start, self._step, self._n, self._stop, self.always_even)

    def to_dict(self) -> dict:
        """Return the scale's JSON-safe parameters.

        ``{"type": "LinearScale", "start_hz", "stop_hz", "n_bands", "bandwidth_hz",
        "always_even"}``.
        """
        return {"type": "LinearScale", "start_hz": self._start, "stop_hz": self._stop,
                "n_bands": self._n, "bandwidth_hz": self._step,
                "always_even": self.always_even}

    @classmethod
    def _from_params(cls, params):
        return cls._from_step(float(params["start_hz"]), float(params["bandwidth_hz"]),
                              int(params["n_bands"]), float(params["stop_hz"]),
                              bool(params.get("always_even", False)))

    def __repr__(self) -> str:
        extra = ", always_even=True" if self.always_even else ""
        return f"LinearScale(band={self.frequency_band!r}, n_bands={self._n}{extra})"


# ------------------------------------------------------------------------------------
# geometric (constant Q)
# ------------------------------------------------------------------------------------
class GeometricScale(FrequencyScale):
    """A constant-Q scale: geometrically spaced centres, width ``centre * bandwidth_ratio``.

    Parameters
    ----------
    start_center_hz, stop_center_hz : float
        Centres of the first and last band (> 0; equal when ``n_bands == 1``).
    bandwidth_ratio : float
        Band width as a fraction of the centre frequency (``Q = 1 / bandwidth_ratio``).
    n_bands : int
        The number of bands.
    always_even : bool
        See :meth:`FrequencyScale.get_slice`.

    Raises
    ------
    ParameterError
        When a frequency or ratio is not a positive number, ``n_bands`` is not a
        positive integer, or the centres are not increasing.

    Examples
    --------
    >>> from zounds_xr import GeometricScale
    >>> scale = GeometricScale(20, 20000, 0.05, 10)
    >>> scale.start_hz, scale.stop_hz
    (19.5, 20500.0)
    >>> scale.Q.round(6)
    array([20., 20., 20., 20., 20., 20., 20., 20., 20., 20.])
    """

    def __init__(self, start_center_hz, stop_center_hz, bandwidth_ratio, n_bands: int,
                 always_even: bool = False):
        self.start_center_hz = _hz(start_center_hz, "start_center_hz")
        self.stop_center_hz = _hz(stop_center_hz, "stop_center_hz")
        self.bandwidth_ratio = _hz(bandwidth_ratio, "bandwidth_ratio")
        self._n = positive_int(n_bands, "n_bands")
        self.always_even = bool(always_even)
        if self.start_center_hz <= 0:
            raise ParameterError(f"start_center_hz must be > 0, got {start_center_hz!r}")
        if self._n > 1 and not self.stop_center_hz > self.start_center_hz:
            raise ParameterError(
                f"stop_center_hz must be greater than start_center_hz, got "
                f"{stop_center_hz!r} <= {start_center_hz!r}")
        if self._n == 1 and self.stop_center_hz != self.start_center_hz:
            raise ParameterError(
                "a one-band GeometricScale needs stop_center_hz == start_center_hz, got "
                f"{start_center_hz!r}, {stop_center_hz!r}")
        if self.bandwidth_ratio <= 0:
            raise ParameterError(f"bandwidth_ratio must be > 0, got {bandwidth_ratio!r}")

    @property
    def n_bands(self) -> int:
        """Number of bands."""
        return self._n

    def _compute_centers(self):
        return np.geomspace(self.start_center_hz, self.stop_center_hz, num=self._n)

    def _compute_edges(self):
        c = self.center_frequencies
        half = c * self.bandwidth_ratio / 2
        return c - half, c + half

    def _slice(self, r: range) -> FrequencyScale:
        if r.step < 1:
            return super()._slice(r)
        c = self.center_frequencies
        # any regular stride of a geometric progression is a geometric progression
        return GeometricScale(float(c[r.start]), float(c[r[-1]]), self.bandwidth_ratio,
                              len(r), always_even=self.always_even)

    def _params(self):
        return (self.start_center_hz, self.stop_center_hz, self.bandwidth_ratio, self._n,
                self.always_even)

    def to_dict(self) -> dict:
        """JSON-safe parameters; :meth:`FrequencyScale.from_dict` rebuilds the scale."""
        return {"type": "GeometricScale", "start_center_hz": self.start_center_hz,
                "stop_center_hz": self.stop_center_hz, "bandwidth_ratio": self.bandwidth_ratio,
                "n_bands": self._n, "always_even": self.always_even}

    def __repr__(self) -> str:
        extra = ", always_even=True" if self.always_even else ""
        return (f"GeometricScale(start_center_hz={self.start_center_hz!r}, "
                f"stop_center_hz={self.stop_center_hz!r}, "
                f"bandwidth_ratio={self.bandwidth_ratio!r}, n_bands={self._n}{extra})")


# ------------------------------------------------------------------------------------
# triangular perceptual scales (mel, Bark)
# ------------------------------------------------------------------------------------
class _TriangularScale(FrequencyScale):
    """Bands as overlapping triangles on a perceptual scale.

    ``n_bands + 2`` points equally spaced on a perceptual scale from ``start_hz`` to
    ``stop_hz``; band ``i`` spans points ``i .. i+2`` and peaks at point ``i+1``.
    """

    def __init__(self, frequency_band: FrequencyBand, n_bands: int):
        self._band = _band(frequency_band)
        self._n = positive_int(n_bands, "n_bands")
        if self._band.start_hz < 0:
            raise ParameterError(
                f"frequency_band must start at or above 0 Hz, got {frequency_band!r}")

    def _to_scale(self, hz):
        raise NotImplementedError

    def _to_hz(self, units):
        raise NotImplementedError

    @property
    def n_bands(self) -> int:
        return self._n

    @property
    def frequency_band(self) -> FrequencyBand:
        return self._band

    @property
    def points(self) -> np.ndarray:
        """The ``n_bands + 2`` triangle corners (Hz), as ``librosa.mel_frequencies``."""
        def compute():
            lo, hi = self._to_scale(self._band.start_hz), self._to_scale(self._band.stop_hz)
            return frozen(self._to_hz(np.linspace(lo, hi, self._n + 2)))
        return self._cached("points", compute)

    def _compute_edges(self):
        p = self.points
        return p[:-2], p[2:]

    def _compute_centers(self):
        return self.points[1:-1]

    def _slice(self, r: range) -> FrequencyScale:
        if r.step != 1:
            return super()._slice(r)
        p = self.points
        # contiguous bands use consecutive, equally spaced points: the same kind of scale
        return self._with(FrequencyBand(float(p[r.start]), float(p[r.stop + 1])), len(r))

    def _with(self, band, n):
        raise NotImplementedError


class MelScale(_TriangularScale):
    """Mel bands: librosa's triangular mel filters as a scale.

    ``n_bands + 2`` points equally spaced on the mel scale (Slaney's, or HTK's with
    ``htk=True``) from ``start_hz`` to ``stop_hz``; band ``i`` spans points
    ``i .. i+2`` and its centre frequency is point ``i+1`` (the triangle's peak), exactly
    as ``librosa.filters.mel``.

    Parameters
    ----------
    frequency_band : FrequencyBand
        ``fmin`` to ``fmax`` (``start_hz >= 0``).
    n_bands : int
        The number of mel bands (``n_mels``).
    htk : bool
        Use the HTK formula instead of Slaney's.

    Examples
    --------
    >>> from zounds_xr import FrequencyBand, LinearScale, MelScale
    >>> mel = MelScale(FrequencyBand(0, 11025), 128)
    >>> mel.n_bands, round(float(mel.center_frequencies[0]), 2)
    (128, 25.79)
    """

    def __init__(self, frequency_band: FrequencyBand, n_bands: int, htk: bool = False):
        super().__init__(frequency_band, n_bands)
        self.htk = bool(htk)

    def _to_scale(self, hz):
        return hz_to_mel(hz, htk=self.htk)

    def _to_hz(self, units):
        return mel_to_hz(units, htk=self.htk)

    def _with(self, band, n):
        return MelScale(band, n, htk=self.htk)

    def _params(self):
        return (self._band.start_hz, self._band.stop_hz, self._n, self.htk)

    def to_dict(self) -> dict:
        """JSON-safe parameters; :meth:`FrequencyScale.from_dict` rebuilds the scale."""
        return {"type": "MelScale", "start_hz": self._band.start_hz,
                "stop_hz": self._band.stop_hz, "n_bands": self._n, "htk": self.htk}

    @classmethod
    def _from_params(cls, params):
        return cls(FrequencyBand(params["start_hz"], params["stop_hz"]), params["n_bands"],
                   htk=bool(params.get("htk", False)))

    def __repr__(self) -> str:
        return f"MelScale(band={self._band!r}, n_bands={self._n}, htk={self.htk})"


class BarkScale(_TriangularScale):
    """Bark bands: the mel layout on Traunmüller's (1990) Bark scale.

    ``n_bands + 2`` points equally spaced in Bark (:func:`hz_to_bark`) from
    ``start_hz`` to ``stop_hz``; band ``i`` spans points ``i .. i+2`` and peaks at point
    ``i+1``.

    Parameters
    ----------
    frequency_band : FrequencyBand
        The span (``start_hz >= 0``).
    n_bands : int
        The number of bands.

    Raises
    ------
    ParameterError
        When ``frequency_band`` is not a band starting at or above 0 Hz, or
        ``n_bands`` is not a positive integer.

    Examples
    --------
    >>> from zounds_xr import BarkScale, FrequencyBand
    >>> len(BarkScale(FrequencyBand(20, 5000), 50))
    50
    """

    def _to_scale(self, hz):
        return hz_to_bark(hz)

    def _to_hz(self, units):
        return bark_to_hz(units)

    def _with(self, band, n):
        return BarkScale(band, n)

    def _params(self):
        return (self._band.start_hz, self._band.stop_hz, self._n)

    def to_dict(self) -> dict:
        """JSON-safe parameters; :meth:`FrequencyScale.from_dict` rebuilds the scale."""
        return {"type": "BarkScale", "start_hz": self._band.start_hz,
                "stop_hz": self._band.stop_hz, "n_bands": self._n}

    @classmethod
    def _from_params(cls, params):
        return cls(FrequencyBand(params["start_hz"], params["stop_hz"]), params["n_bands"])

    def __repr__(self) -> str:
        return f"BarkScale(band={self._band!r}, n_bands={self._n})"


# ------------------------------------------------------------------------------------
# chroma
# ------------------------------------------------------------------------------------
_C0_MIDI = 12  # C0, 16.35 Hz: the lowest octave a ChromaScale labels


def _midi_to_hz(midi):
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


class ChromaScale(FrequencyScale):
    """The 12 pitch classes C, C#, ..., B (equal temperament, A4 = 440 Hz).

    Layout: band ``k`` is the semitone-wide band (a quarter tone either side) around
    pitch class ``k`` in the *lowest C octave within the band*: the octave of the lowest
    C at or above ``max(start_hz, C0 = 16.35 Hz)``. Those bands label the axis (and are
    what ``sel(frequency=FrequencyBand(...))`` sees); the rebinning (``filter_bank``)
    folds every source bin inside ``frequency_band`` onto its pitch class, whatever its
    octave. ``pitch_classes`` names the bands.

    Parameters
    ----------
    frequency_band : FrequencyBand
        The range of frequencies folded onto the pitch classes.

    Examples
    --------
    >>> from zounds_xr import ChromaScale, FrequencyBand
    >>> chroma = ChromaScale(FrequencyBand(20, 5000))
    >>> chroma.pitch_classes[:3], round(float(chroma.center_frequencies[0]), 3)
    (('C', 'C#', 'D'), 32.703)
    """

    n_pitch_classes = 12
    pitch_classes = PITCH_CLASSES

    def __init__(self, frequency_band: FrequencyBand):
        self._band = _band(frequency_band)

    @property
    def frequency_band(self) -> FrequencyBand:
        """The span of the scale, lowest band start to highest band stop."""
        return self._band

    @property
    def n_bands(self) -> int:
        """Number of bands."""
        return 12

    @property
    def lowest_c_midi(self) -> int:
        """MIDI note number of the C whose octave labels the axis."""
        lowest = max(self._band.start_hz, float(_midi_to_hz(_C0_MIDI)))
        midi = 69.0 + 12.0 * math.log2(lowest / 440.0)
        # a hair of tolerance so that a band starting exactly on a C keeps that C
        return 12 * math.ceil(midi / 12.0 - 1e-9)

    def _compute_centers(self):
        return _midi_to_hz(self.lowest_c_midi + np.arange(12))

    def _compute_edges(self):
        c = self.center_frequencies
        quarter_tone = 2.0 ** (1.0 / 24.0)
        return c / quarter_tone, c * quarter_tone

    def _params(self):
        return (self._band.start_hz, self._band.stop_hz)

    def to_dict(self) -> dict:
        """JSON-safe parameters; :meth:`FrequencyScale.from_dict` rebuilds the scale."""
        return {"type": "ChromaScale", "start_hz": self._band.start_hz,
                "stop_hz": self._band.stop_hz}

    @classmethod
    def _from_params(cls, params):
        return cls(FrequencyBand(params["start_hz"], params["stop_hz"]))

    def __repr__(self) -> str:
        return f"ChromaScale(band={self._band!r})"


# ------------------------------------------------------------------------------------
# explicit
# ------------------------------------------------------------------------------------
class ExplicitScale(FrequencyScale):
    """A scale whose bands are given one by one (any order, overlaps allowed, may be empty).

    Parameters
    ----------
    bands : iterable of FrequencyBand
        The bands (``(start_hz, stop_hz)`` pairs are accepted too).
    centers : sequence of float, optional
        The centre frequency (axis label) of each band, when it is not the midpoint of
        the band: selecting bands of a mel, Bark or chroma scale irregularly gives an
        ``ExplicitScale`` that keeps their centres. Each must lie in its band.

    Raises
    ------
    ParameterError
        When a band is not a ``FrequencyBand`` or a centre lies outside its band.

    Examples
    --------
    >>> from zounds_xr import ExplicitScale, FrequencyBand
    >>> scale = ExplicitScale([FrequencyBand(100, 200), FrequencyBand(150, 400)])
    >>> scale.center_frequencies
    array([150., 275.])
    """

    def __init__(self, bands, centers=None):
        pairs = []
        for i, b in enumerate(bands):
            if not isinstance(b, FrequencyBand):
                try:
                    b = FrequencyBand(*b)
                except (TypeError, ParameterError) as e:
                    raise ParameterError(f"bands[{i}] must be a FrequencyBand, got {b!r}: {e}") \
                        from None
            pairs.append((b.start_hz, b.stop_hz))
        self._pairs = tuple(pairs)
        self._centers = None
        if centers is not None:
            centers = tuple(_hz(c, f"centers[{i}]") for i, c in enumerate(centers))
            if len(centers) != len(pairs):
                raise ParameterError(
                    f"{len(centers)} centers given for {len(pairs)} bands")
            for i, (c, (a, b)) in enumerate(zip(centers, pairs, strict=True)):
                if not a <= c <= b:
                    raise ParameterError(f"centers[{i}] = {c!r} is outside band [{a}, {b})")
            midpoints = tuple(a + (b - a) / 2 for a, b in pairs)
            # centres equal to the midpoints are the default: keep one spelling of a scale
            self._centers = None if centers == midpoints else centers

    def _compute_edges(self):
        if not self._pairs:
            return np.zeros(0), np.zeros(0)
        a = np.asarray(self._pairs, dtype=np.float64)
        return a[:, 0], a[:, 1]

    def _compute_centers(self):
        if self._centers is None:
            return super()._compute_centers()
        return np.asarray(self._centers, dtype=np.float64)

    def _params(self):
        return (self._pairs, self._centers)

    def to_dict(self) -> dict:
        """Return the scale's JSON-safe parameters.

        ``{"type": "ExplicitScale", "bands": [[start_hz, stop_hz], ...]}`` (plus
        ``"centers"`` when they are not the midpoints).
        """
        out = {"type": "ExplicitScale", "bands": [list(p) for p in self._pairs]}
        if self._centers is not None:
            out["centers"] = list(self._centers)
        return out

    def __repr__(self) -> str:
        if len(self._pairs) <= 4 and self._centers is None:
            return f"ExplicitScale(bands={self.bands!r})"
        return f"ExplicitScale(band={self.frequency_band!r}, n_bands={len(self._pairs)})"
