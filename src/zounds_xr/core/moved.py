"""Old import paths of modules that moved, kept working; and their pre-move names.

The root modules moved into packages (``zounds_xr.errors`` is
``zounds_xr.core.errors``...). :func:`install` (run by ``import zounds_xr``) adds a finder
that makes ``import zounds_xr.errors`` give the module at its new path, the same module
object, so that users' imports, pickles and ``python -m zounds_xr.cli`` keep working.
:func:`versioned_module` gives the pre-move path of a module, so that the versions of
stored features (which name their functions) do not change with the layout.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__all__ = ["MOVED", "install", "versioned_module"]

#: old module path -> new module path
MOVED: dict[str, str] = {
    "zounds_xr._dimension": "zounds_xr.core.dimension",
    "zounds_xr._optional": "zounds_xr.core.optional",
    "zounds_xr._registration": "zounds_xr.accessor",
    "zounds_xr._typing": "zounds_xr.core.types",
    "zounds_xr._validation": "zounds_xr.core.validation",
    "zounds_xr.arrays": "zounds_xr.dimensions.arrays",
    "zounds_xr.batch": "zounds_xr.documents.batch",
    "zounds_xr.cli": "zounds_xr.app.cli",
    "zounds_xr.demo": "zounds_xr.app.demo",
    "zounds_xr.errors": "zounds_xr.core.errors",
    "zounds_xr.resampling": "zounds_xr.audio.resampling",
    "zounds_xr.streamable": "zounds_xr.core.streamable",
    "zounds_xr.windowing": "zounds_xr.spectral.windowing",
}
#: new module path -> the path it had before the layout moved it (feature versions)
_PRE_MOVE: dict[str, str] = {
    "zounds_xr.core.dimension": "zounds_xr._dimension",
    "zounds_xr.core.optional": "zounds_xr._optional",
    "zounds_xr.core.types": "zounds_xr._typing",
    "zounds_xr.core.validation": "zounds_xr._validation",
    "zounds_xr.accessor.zx": "zounds_xr.accessor",
    "zounds_xr.dimensions.arrays": "zounds_xr.arrays",
    "zounds_xr.audio.samples": "zounds_xr.audio",
    "zounds_xr.documents.batch": "zounds_xr.batch",
    "zounds_xr.app.cli": "zounds_xr.cli",
    "zounds_xr.app.demo": "zounds_xr.demo",
    "zounds_xr.dimensions.lookup": "zounds_xr.dimensions",
    "zounds_xr.core.errors": "zounds_xr.errors",
    "zounds_xr.audio.resampling": "zounds_xr.resampling",
    "zounds_xr.core.streamable": "zounds_xr.streamable",
    "zounds_xr.spectral.windowing": "zounds_xr.windowing",
}


def versioned_module(module: str) -> str:
    """Return the path a module had before the layout moved it (itself when it did not move).

    Parameters
    ----------
    module : str
        A module path, e.g. ``"zounds_xr.audio.resampling"``.

    Returns
    -------
    str
        ``"zounds_xr.resampling"`` for that one; ``module`` itself for any other.
    """
    return _PRE_MOVE.get(module, module)


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old path as the module at its new path (the same object)."""

    def find_spec(self, fullname, path=None, target=None):
        """Return a spec for an old path, ``None`` for any other name."""
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        """Use the default module creation (replaced in :meth:`exec_module`)."""
        return None

    def exec_module(self, module):
        """Put the module at its new path in the old path's place."""
        sys.modules[module.__name__] = importlib.import_module(MOVED[module.__name__])

    def get_code(self, fullname):
        """Return code that runs the new module as ``__main__`` (``python -m <old path>``)."""
        return compile(f"import runpy\nrunpy.run_module({MOVED[fullname]!r}, "
                       f"run_name='__main__', alter_sys=True)\n",
                       f"<{fullname}, moved to {MOVED[fullname]}>", "exec")

    def is_package(self, fullname):
        """Return False: the moved paths are modules."""
        return False


def install() -> None:
    """Add the old-path finder to ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
