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

    Parameters
    ----------
    path_or_url : str, os.PathLike, zarr Store or FeatureStore
        Where the documents are stored: a local directory (created on first write),
        any fsspec URL (``memory://...``, ``s3://bucket/features.zarr``), a zarr store
        or an existing :class:`FeatureStore`.
    storage_options : dict, optional
        Passed to fsspec (for ``s3://`` URLs, s3fs: ``key``, ``secret``,
        ``client_kwargs={"endpoint_url": ...}``, ``anon``...); without them,
        credentials and endpoint come from the usual environment
        (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``,
        ``~/.aws``, an instance role). They are pickled with the store to dask
        workers: prefer the environment or roles for secrets on a shared cluster.
        See ``docs/OBJECT_STORAGE.md``. Not allowed with a :class:`FeatureStore`.

    Returns
    -------
    callable
        A class decorator that binds a :class:`Document` subclass to the store and
        returns the class.

    Raises
    ------
    ParameterError
        When ``storage_options`` come with a :class:`FeatureStore`, or the decorated
        object is not a :class:`Document` subclass; as :class:`FeatureStore` for a bad
        ``path_or_url``.
    StoreError
        As :class:`FeatureStore`, when ``path_or_url`` is a regular file.

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

    Parameters
    ----------
    cls : type, optional
        The :class:`Document` subclass, when used without parentheses.

    Returns
    -------
    type or callable
        ``cls`` bound to a new store; without ``cls``, a decorator that does that.

    Raises
    ------
    ParameterError
        When the decorated object is not a :class:`Document` subclass.
    """
    def decorate(klass):
        _check(klass)._store = FeatureStore.in_memory()
        return klass

    return decorate if cls is None else decorate(cls)
