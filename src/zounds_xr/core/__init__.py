"""The foundation every layer may import: errors, validation, optional imports, types.

Modules
-------
errors
    ``ZoundsError`` and its subclasses (raise these, never a bare ``ValueError``).
validation
    The shared checks (``positive_int``, ``check_output_size``, ``axis_index``...).
optional
    ``optional_import``: an optional dependency, or an ``ImportError`` with its extra.
types
    Shared type aliases (``DurationLike``).
dimension
    The ``Dimension`` base class of the dimension objects (``TimeDimension``...).
streamable
    How a transform declares its streaming (``frame_local``, ``framing``, ``stateful``).
moved
    Old import paths (``zounds_xr.errors``...) kept working after the package's layout
    changed, and the pre-move names that keep feature versions stable.

Nothing here imports another layer of the package. Importing this package installs
:mod:`~zounds_xr.core.moved`'s finder, so that the old paths import wherever the package
is imported.
"""
from .moved import install as _install

_install()
