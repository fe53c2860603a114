"""Frequency dimension objects: zounds' description of a frequency axis.

``FrequencyDimension(scale)``: one position per band of the scale.
``ExplicitFrequencyDimension(scale, slices)``: the coefficients of band ``i`` occupy
positions ``slices[i]`` (a frequency-adaptive transform's output). Both build their
axis with :func:`~zounds_xr.frequency.index.frequency_coords`, and come back from a
labelled array through :func:`zounds_xr.dimensions.dimension_of` (``da.zx.dimensions``).
"""
from __future__ import annotations

from collections.abc import Hashable

import xarray as xr

from ..core.dimension import Dimension
from ..core.errors import ParameterError
from .index import frequency_coords, normalize_slices
from .scales import FrequencyScale

__all__ = ["FrequencyDimension", "ExplicitFrequencyDimension"]


def _check_scale(scale) -> FrequencyScale:
    if not isinstance(scale, FrequencyScale):
        raise ParameterError(f"scale must be a FrequencyScale, got {scale!r}")
    return scale


class FrequencyDimension(Dimension):
    """An axis whose positions are the bands of ``scale``.

    Parameters
    ----------
    scale : FrequencyScale
        One band per position of the axis.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> scale = zx.LinearScale(frequency_band=zx.FrequencyBand(20, 20000), n_bands=100)
    >>> arr = zx.ArrayWithUnits(np.hanning(100), [zx.FrequencyDimension(scale)])
    >>> sliced = arr.sel(frequency=zx.FrequencyBand(100, 1000))
    >>> sliced.shape
    (5,)
    >>> sliced.zx.dimensions[0].scale.n_bands
    5
    """

    default_dim = "frequency"

    def __init__(self, scale: FrequencyScale):
        self.scale = _check_scale(scale)

    def validate(self, size: int) -> None:
        """Raise :class:`ParameterError` unless ``size`` is the number of bands."""
        if size != len(self.scale):
            raise ParameterError(
                f"an axis of {size} positions cannot carry {self.scale!r} "
                f"({len(self.scale)} bands)")

    def coords(self, size: int, dim: Hashable = "frequency") -> xr.Coordinates:
        """Return the axis' band centres with a :class:`~zounds_xr.FrequencyIndex`.

        Parameters
        ----------
        size : int
            Must be the number of bands.
        dim : hashable
            The dim name.

        Returns
        -------
        xarray.Coordinates
        """
        self.validate(size)
        return frequency_coords(self.scale, dim)

    def integer_based_slice(self, index):
        """zounds: the positions of the bands overlapping a FrequencyBand, as a slice.

        Parameters
        ----------
        index : FrequencyBand

        Returns
        -------
        slice
            See :meth:`FrequencyScale.get_slice`.
        """
        return self.scale.get_slice(index)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.scale == other.scale

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.scale))

    def __repr__(self) -> str:
        return f"FrequencyDimension(scale={self.scale!r})"


class ExplicitFrequencyDimension(Dimension):
    """An axis of coefficients grouped by band: band ``i`` occupies positions ``slices[i]``.

    The output of a frequency-adaptive transform: each band of ``scale`` has its own
    number of coefficients, stored one band after the other. The slices must tile the
    axis in order from 0 (band ``i+1`` starts where band ``i`` stops). On the array,
    the :class:`~zounds_xr.frequency.index.FrequencyIndex` labels every position with its
    band's centre; ``sel(frequency=FrequencyBand(a, b))`` returns the coefficients of
    every band overlapping ``[a, b)``, and a selection of whole bands keeps the
    dimension (``slices`` renumbered).

    Parameters
    ----------
    scale : FrequencyScale
        The bands (zounds used an ``ExplicitScale``; any scale works and is kept as is).
    slices : sequence of slice
        One ``slice(start, stop)`` per band (``(start, stop)`` pairs are accepted).

    Raises
    ------
    ParameterError
        When the number of slices is not the number of bands, or the slices do not
        tile ``[0, n)`` in order.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> scale = zx.ExplicitScale([zx.FrequencyBand(0, 100), zx.FrequencyBand(100, 300)])
    >>> dim = zx.ExplicitFrequencyDimension(scale, [slice(0, 2), slice(2, 6)])
    >>> arr = zx.ArrayWithUnits(np.arange(6.0), [dim])
    >>> arr.sel(frequency=zx.FrequencyBand(150, 200)).values
    array([2., 3., 4., 5.])
    """

    default_dim = "frequency"

    def __init__(self, scale: FrequencyScale, slices):
        self.scale = _check_scale(scale)
        self.slices = normalize_slices(slices, len(scale))

    @property
    def size(self) -> int:
        """The number of positions the slices cover."""
        return self.slices[-1].stop if self.slices else 0

    def validate(self, size: int) -> None:
        """Raise :class:`ParameterError` unless the slices cover exactly ``size`` positions."""
        if size != self.size:
            raise ParameterError(
                f"the slices cover {self.size} positions, the axis has {size}")

    def coords(self, size: int, dim: Hashable = "frequency") -> xr.Coordinates:
        """Return the coordinates of an axis in coefficients-by-band mode.

        As :meth:`FrequencyDimension.coords`, in coefficients-by-band mode: each
        position is labelled by its band's centre; ``size`` must be the number of
        positions the slices cover.
        """
        self.validate(size)
        return frequency_coords(self.scale, dim, slices=self.slices)

    def integer_based_slice(self, index):
        """zounds: the positions of the coefficients of the bands overlapping a band.

        Parameters
        ----------
        index : FrequencyBand

        Returns
        -------
        slice
            From the first coefficient of the first such band to the last of the last
            (empty when no band overlaps).
        """
        positions = self.scale.overlapping(index)
        if not len(positions):
            return slice(0, 0)
        return slice(self.slices[positions[0]].start, self.slices[positions[-1]].stop)

    def __eq__(self, other) -> bool:
        return (type(self) is type(other) and self.scale == other.scale
                and self.slices == other.slices)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.scale,
                     tuple((s.start, s.stop) for s in self.slices)))

    def __repr__(self) -> str:
        return f"ExplicitFrequencyDimension(scale={self.scale!r}, slices={list(self.slices)!r})"
