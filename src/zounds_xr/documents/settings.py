"""Class decorators that bind a document class to a :class:`FeatureStore`."""
from __future__ import annotations

from ..errors import ParameterError
from .store import FeatureStore

__all__ = ["zarr_settings", "simple_in_memory_settings"]


def _check(cls):
    from .document import Document

    if not (isinstance(cls, type) and issubclass(cls, Document)):
        raise ParameterError(f"store settings decorate Document subclasses, got {cls!r}")
    return cls


def zarr_settings(path_or_url, storage_options=None):
    """Bind a document class to a Zarr store: a local directory or any fsspec URL.

    >>> import zounds_xr as zx
    >>> @zx.zarr_settings("memory://docs/features.zarr")
    ... class Sound(zx.Document):
    ...     pass
    >>> Sound.ids()
    []
    """
    store = path_or_url if isinstance(path_or_url, FeatureStore) else FeatureStore(
        path_or_url, storage_options=storage_options)

    def decorate(cls):
        _check(cls)._store = store
        return cls

    return decorate


def simple_in_memory_settings(cls=None):
    """Bind a document class to a new in-memory store (zarr's ``MemoryStore``).

    Use as ``@simple_in_memory_settings`` or ``@simple_in_memory_settings()``.
    """
    def decorate(klass):
        _check(klass)._store = FeatureStore.in_memory()
        return klass

    return decorate if cls is None else decorate(cls)
