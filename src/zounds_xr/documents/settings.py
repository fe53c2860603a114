"""Class decorators that bind a document class to a :class:`FeatureStore`."""
from __future__ import annotations

from ..core.errors import ParameterError
from .document import Document
from .store import FeatureStore

__all__ = ["zarr_settings", "simple_in_memory_settings"]


def _check(cls):
    if not (isinstance(cls, type) and issubclass(cls, Document)):
        raise ParameterError(f"store settings decorate Document subclasses, got {cls!r}")
    return cls


def zarr_settings(path_or_url, storage_options=None):
    """Bind a document class to a Zarr store: a local directory or any fsspec URL.

    ``storage_options`` go to fsspec (for ``s3://`` URLs, s3fs: ``key``, ``secret``,
    ``client_kwargs={"endpoint_url": ...}``, ``anon``...); without them, credentials and
    endpoint come from the usual environment (``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``~/.aws``, an instance role). They
    are pickled with the store to dask workers: prefer the environment or roles for
    secrets on a shared cluster. See ``docs/OBJECT_STORAGE.md``.

    >>> import zounds_xr as zx
    >>> @zx.zarr_settings("memory://docs/features.zarr")
    ... class Sound(zx.Document):
    ...     pass
    >>> Sound.ids()
    []
    """
    if isinstance(path_or_url, FeatureStore):
        if storage_options:
            raise ParameterError("storage_options go with a path or URL, not with a "
                                 "FeatureStore (it has its own)")
        store = path_or_url
    else:
        store = FeatureStore(path_or_url, storage_options=storage_options)

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
