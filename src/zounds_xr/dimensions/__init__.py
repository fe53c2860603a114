"""Dimension objects over labelled arrays: zounds' view of the indexes.

``lookup`` maps each index type to its dimension object and back, and does zounds-style
selection (``da.zx[...]``, ``da.zx.sel(...)``); ``arrays`` builds labelled arrays from
dimension objects (``ArrayWithUnits``) and labels results like their input
(``with_labels``). ``zounds_xr.dimensions`` keeps the names it had as one module.
"""
from ..core.dimension import Dimension, IdentityDimension
from ..core.validation import axis_index
from .arrays import ArrayWithUnits, with_labels
from .lookup import (
    INDEX_TYPES,
    dimension_of,
    dimensions_by_dim,
    dimensions_of,
    index_from_attrs,
    select,
    select_labels,
)

__all__ = ["Dimension", "IdentityDimension", "ArrayWithUnits", "with_labels", "INDEX_TYPES",
           "axis_index", "dimension_of", "dimensions_by_dim", "dimensions_of",
           "index_from_attrs", "select", "select_labels"]
