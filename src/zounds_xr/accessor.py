"""The ``.zx`` accessor on DataArray and Dataset: thin delegation to the library."""
from __future__ import annotations

import numpy as np
import xarray as xr

from .dimensions import axis_index, dimensions_of
from .errors import ParameterError

__all__ = ["ZxDataArrayAccessor", "ZxDatasetAccessor"]


def _time_index(obj, dim: str = "time"):
    from .timeseries.index import TimeIndex

    return axis_index(obj, dim, TimeIndex, what=f"this {type(obj).__name__}")


class _ZxAccessor:
    def __init__(self, obj):
        self._obj = obj

    @property
    def samplerate(self):
        """The rate of the ``time`` axis (an ``AudioSampleRate`` for audio)."""
        return _time_index(self._obj).samplerate

    @property
    def samples_per_second(self):
        """Frames per second of the ``time`` axis (an ``int`` for audio)."""
        return self.samplerate.samples_per_second

    @property
    def duration(self) -> np.timedelta64:
        """Time from the start of the first frame to the end of the last."""
        from .timeseries.durations import to_timedelta

        index = _time_index(self._obj)
        return to_timedelta(index.end - index.start)

    def _dim_with(self, kind, position: int | None):
        dims = list(self._obj.dims)
        if position is not None and position < len(dims):
            if isinstance(self._obj.xindexes.get(dims[position]), kind):
                return dims[position]
        for dim in dims:
            if isinstance(self._obj.xindexes.get(dim), kind):
                return dim
        raise ParameterError(f"no {kind.__name__} to select on; dims are {tuple(dims)}")

    def __getitem__(self, key):
        """zounds-style selection: ``da.zx[TimeSlice(...), FrequencyBand(...)]``.

        Each ``TimeSlice`` applies to a time axis and each ``FrequencyBand`` to a
        frequency axis (the one at that position when it has the right index); ints and
        slices select positions of the axis at their position.
        """
        from .frequency.band import FrequencyBand
        from .frequency.index import FrequencyIndex
        from .timeseries.index import TimeIndex
        from .timeseries.timeslice import TimeSlice

        keys = key if isinstance(key, tuple) else (key,)
        by_label, by_position = {}, {}
        dims = list(self._obj.dims)
        for i, k in enumerate(keys):
            if isinstance(k, TimeSlice):
                by_label[self._dim_with(TimeIndex, i)] = k
            elif isinstance(k, FrequencyBand):
                by_label[self._dim_with(FrequencyIndex, i)] = k
            elif k is Ellipsis or (isinstance(k, slice) and k == slice(None)):
                continue
            elif i < len(dims):
                by_position[dims[i]] = k
            else:
                raise ParameterError(f"too many indices for dims {tuple(dims)}")
        out = self._obj.sel(by_label) if by_label else self._obj
        return out.isel(by_position) if by_position else out


@xr.register_dataarray_accessor("zx")
class ZxDataArrayAccessor(_ZxAccessor):
    """``da.zx``: zounds semantics on a DataArray (dimensions, rates, audio helpers)."""

    @property
    def dimensions(self):
        """The zounds dimension object of each axis, in dim order."""
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

    def encode(self, flo=None, fmt: str = "WAV", subtype: str = "PCM_16"):
        """Encode audio with libsndfile into ``flo`` (a new BytesIO at position 0)."""
        from .io.encode import encode

        return encode(self._obj, flo=flo, fmt=fmt, subtype=subtype)

    def save(self, path, fmt: str | None = None, subtype: str | None = None):
        """Write audio to ``path`` (format from the extension unless ``fmt`` is given)."""
        from .io.encode import save

        return save(self._obj, path, fmt=fmt, subtype=subtype)

    def play(self, *, autoplay: bool = False, normalize: bool = True):
        """An IPython audio widget for this audio (needs the ``[viz]`` extra).

        See :func:`zounds_xr.viz.play`. In a notebook, evaluating ``da.zx`` also shows
        a player for audio up to a minute long (and a summary line for any array).
        """
        from .viz import play

        return play(self._obj, autoplay=autoplay, normalize=normalize)

    def specshow(self, **kwargs):
        """Plot a (time, frequency) feature: time in s, frequency in Hz, dB colour bar.

        See :func:`zounds_xr.viz.specshow` for the keyword arguments.
        """
        from .viz import specshow

        return specshow(self._obj, **kwargs)

    def _repr_html_(self) -> str:
        """Rich display of ``da.zx`` in a notebook: a summary and, for audio, a player."""
        from .viz import audio_html

        return audio_html(self._obj)


@xr.register_dataset_accessor("zx")
class ZxDatasetAccessor(_ZxAccessor):
    """``ds.zx``: zounds semantics on a Dataset whose variables share their axes."""

    @property
    def dimensions(self) -> dict:
        """The zounds dimension object of each dim, by name."""
        from .dimensions import IdentityDimension

        out = {}
        for dim in self._obj.dims:
            make = getattr(self._obj.xindexes.get(dim), "dimension", None)
            out[dim] = make() if make is not None else IdentityDimension()
        return out
