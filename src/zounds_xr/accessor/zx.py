"""The ``.zx`` accessor on DataArray and Dataset: thin delegation to the library.

:mod:`zounds_xr.accessor` registers these classes as ``.zx`` and imports this module
on first use, so that ``import zounds_xr`` does not import everything it delegates to.

Every property and method here forwards to a function of the module that owns the
idea (:mod:`zounds_xr.dimensions` for dimensions and zounds-style selection, the
``TimeIndex`` for rates and spans, :mod:`zounds_xr.io.encode` for encoding,
:mod:`zounds_xr.viz` for listening and plotting); the accessor holds no logic.
"""
from __future__ import annotations

from collections.abc import Hashable
from typing import IO, Any, Generic, TypeVar

import numpy as np
import xarray as xr

from ..core.validation import axis_index
from ..dimensions.lookup import Dimension, dimensions_by_dim, dimensions_of, select, select_labels
from ..io.encode import encode, save
from ..timeseries.durations import to_timedelta
from ..timeseries.index import TimeIndex
from ..timeseries.samplerate import SampleRate
from ..viz import audio_html, play, specshow

__all__ = ["ZxDataArrayAccessor", "ZxDatasetAccessor"]

T = TypeVar("T", xr.DataArray, xr.Dataset)


class _ZxAccessor(Generic[T]):
    def __init__(self, obj: T):
        self._obj: T = obj

    def _time_index(self) -> TimeIndex:
        return axis_index(self._obj, "time", TimeIndex, what=f"this {type(self._obj).__name__}")

    @property
    def samplerate(self) -> SampleRate:
        """The rate of the ``time`` axis (an ``AudioSampleRate`` for audio)."""
        return self._time_index().samplerate

    @property
    def samples_per_second(self) -> float:
        """Frames per second of the ``time`` axis (an ``int`` for audio)."""
        return self.samplerate.samples_per_second

    @property
    def duration(self) -> np.timedelta64:
        """Time from the start of the first frame to the end of the last."""
        return to_timedelta(self._time_index().span)

    def __getitem__(self, key: Any) -> T:
        """zounds-style selection: ``da.zx[TimeSlice(...), FrequencyBand(...)]``.

        See :func:`zounds_xr.dimensions.select`.
        """
        return select(self._obj, key)  # type: ignore[return-value]

    def sel(self, indexers: Any = None, method: str | None = None, **labels: Any) -> T:
        """Xarray's ``.sel`` that names a missing axis (a ``SelectionError``).

        See :func:`zounds_xr.dimensions.select_labels`.
        """
        return select_labels(self._obj, indexers, method=method,  # type: ignore[return-value]
                             **labels)


class ZxDataArrayAccessor(_ZxAccessor[xr.DataArray]):
    """``da.zx``: zounds semantics on a DataArray (dimensions, rates, audio helpers)."""

    @property
    def dimensions(self) -> tuple[Dimension, ...]:
        """Return the zounds dimension object of each axis, in dim order.

        The zounds dimension object of each axis, in dim order (see
        :func:`zounds_xr.dimensions.dimensions_of`).
        """
        return dimensions_of(self._obj)

    @property
    def channels(self) -> int:
        """Number of audio channels (1 when there is no ``channel`` axis)."""
        return int(self._obj.sizes.get("channel", 1))

    @property
    def mono(self) -> xr.DataArray:
        """The channel mean (a no-op for mono audio); labels are kept."""
        if "channel" not in self._obj.dims:
            return self._obj
        return self._obj.mean("channel", keep_attrs=True)

    def encode(self, flo: IO[bytes] | None = None, fmt: str = "WAV",
               subtype: str = "PCM_16") -> IO[bytes]:
        """Encode audio with libsndfile into ``flo`` (see :func:`zounds_xr.encode`)."""
        return encode(self._obj, flo=flo, fmt=fmt, subtype=subtype)

    def save(self, path: Any, fmt: str | None = None, subtype: str | None = None) -> Any:
        """Write audio to ``path`` (see :func:`zounds_xr.save`)."""
        return save(self._obj, path, fmt=fmt, subtype=subtype)

    def play(self, *, autoplay: bool = False, normalize: bool = True) -> Any:
        """Return an IPython audio widget for this audio (see :func:`zounds_xr.viz.play`).

        In a notebook, evaluating ``da.zx`` also shows a player for audio up to a minute
        long (and a summary line for any array).
        """
        return play(self._obj, autoplay=autoplay, normalize=normalize)

    def specshow(self, **kwargs: Any) -> Any:
        """Plot a (time, frequency) feature (see :func:`zounds_xr.viz.specshow`)."""
        return specshow(self._obj, **kwargs)

    def _repr_html_(self) -> str:
        """Rich display of ``da.zx`` in a notebook: a summary and, for audio, a player."""
        return audio_html(self._obj)


class ZxDatasetAccessor(_ZxAccessor[xr.Dataset]):
    """``ds.zx``: zounds semantics on a Dataset whose variables share their axes."""

    @property
    def dimensions(self) -> dict[Hashable, Dimension]:
        """Return the zounds dimension object of each dim, by name.

        The zounds dimension object of each dim, by name (see
        :func:`zounds_xr.dimensions.dimensions_by_dim`).
        """
        return dimensions_by_dim(self._obj)
