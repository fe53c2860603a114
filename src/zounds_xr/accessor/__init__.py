"""The ``.zx`` accessor on DataArray and Dataset, registered here and loaded on first use.

``import zounds_xr`` must stay cheap, but the accessor delegates to most of the library
(dimensions, frequency scales, spectral kernels, audio encoding, plotting), and
:mod:`zounds_xr.accessor.zx` imports all of it at module level. So what is registered
here is a stand-in that imports :mod:`~zounds_xr.accessor.zx` the first time ``da.zx`` is
used (the package's one deferred import of its own code, inside this folder: it is what
keeps the import cheap); xarray then caches the real accessor on the object.
``xr.DataArray.zx.<name>`` reaches the real class's attributes, for documentation tools,
and ``zounds_xr.accessor.ZxDataArrayAccessor`` the class itself.
"""
from __future__ import annotations

from typing import Any

import xarray as xr

__all__ = ["ZxDataArrayAccessor", "ZxDatasetAccessor"]


def _classes() -> Any:
    from . import zx  # deferred on purpose (module docstring)

    return zx


class _Deferred:
    """Stands for the accessor class ``name`` of :mod:`zounds_xr.accessor.zx`."""

    def __init__(self, name: str):
        self._name = name

    def _resolve(self) -> type:
        cls: type = getattr(_classes(), self._name)
        return cls

    def __call__(self, obj: Any) -> Any:
        return self._resolve()(obj)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self._resolve(), attr)

    def __repr__(self) -> str:
        return f"<zounds_xr.accessor.zx.{self._name} (loaded on first use)>"


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(_classes(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


xr.register_dataarray_accessor("zx")(_Deferred("ZxDataArrayAccessor"))
xr.register_dataset_accessor("zx")(_Deferred("ZxDatasetAccessor"))
