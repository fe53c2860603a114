"""Registers the ``.zx`` accessor on DataArray and Dataset, loading it on first use.

``import zounds_xr`` must stay cheap, but the accessor delegates to most of the library
(dimensions, frequency scales, spectral kernels, audio encoding, plotting), and
:mod:`zounds_xr.accessor` imports all of it at module level. So what is registered here
is a stand-in that imports :mod:`zounds_xr.accessor` the first time ``da.zx`` is used
(the one function-level import of the package's own code: it is what keeps the import
cheap); xarray then caches the real accessor on the object. ``xr.DataArray.zx.<name>``
reaches the real class's attributes, for documentation tools.
"""
from __future__ import annotations

from typing import Any

import xarray as xr

__all__: list[str] = []


class _Deferred:
    """Stands for the accessor class ``name`` of :mod:`zounds_xr.accessor`."""

    def __init__(self, name: str):
        self._name = name

    def _resolve(self) -> type:
        from . import accessor  # deferred on purpose (module docstring)

        cls: type = getattr(accessor, self._name)
        return cls

    def __call__(self, obj: Any) -> Any:
        return self._resolve()(obj)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self._resolve(), attr)

    def __repr__(self) -> str:
        return f"<zounds_xr.accessor.{self._name} (loaded on first use)>"


xr.register_dataarray_accessor("zx")(_Deferred("ZxDataArrayAccessor"))
xr.register_dataset_accessor("zx")(_Deferred("ZxDatasetAccessor"))
