"""The base of zounds' dimension objects (the bottom layer, below every index).

:class:`Dimension` and :class:`IdentityDimension` live here, under the time and
frequency dimensions that subclass them; :mod:`zounds_xr.dimensions`, above all of
them, maps index types to dimensions and re-exports both names.
"""
from __future__ import annotations

from collections.abc import Hashable

import xarray as xr

__all__ = ["Dimension", "IdentityDimension"]


class Dimension:
    """Base class of the dimension objects (``TimeDimension``, ``FrequencyDimension``...).

    A dimension object describes what the positions of one axis mean and builds that
    axis' coordinates (and custom index). Subclasses set :attr:`default_dim` (the xarray
    dim name they get in ``ArrayWithUnits``) and implement :meth:`coords`.

    See Also
    --------
    zounds_xr.dimensions.dimensions_of : The dimension objects of a labelled array.
    zounds_xr.ArrayWithUnits : A DataArray built from data and dimension objects.
    """

    #: xarray dim name used when the dimension is given without a name
    default_dim: str | None = None

    def coords(self, size: int, dim: Hashable) -> xr.Coordinates:
        """Coordinates (and index) of an axis named ``dim`` with ``size`` positions.

        Parameters
        ----------
        size : int >= 0
            The number of positions of the axis.
        dim : hashable
            The dim name.

        Returns
        -------
        xarray.Coordinates
            Empty for an axis without labels.
        """
        raise NotImplementedError

    def validate(self, size: int) -> None:
        """Raise :class:`~zounds_xr.ParameterError` if an axis of ``size`` cannot carry this.

        The base class accepts any size.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class IdentityDimension(Dimension):
    """An axis with no units: integer positions, no index.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> arr = zx.ArrayWithUnits(np.zeros(100), [zx.IdentityDimension()])
    >>> arr[4:6].shape
    (2,)
    """

    def coords(self, size: int, dim: Hashable) -> xr.Coordinates:
        """No coordinates: an unlabelled axis (see :meth:`Dimension.coords`)."""
        return xr.Coordinates()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdentityDimension)

    def __hash__(self) -> int:
        return hash(IdentityDimension)
