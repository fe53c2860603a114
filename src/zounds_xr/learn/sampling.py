"""Random examples drawn from a feature across all the documents of a corpus."""
from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import xarray as xr

from ..documents import Document
from ..core.errors import ParameterError
from .preprocess import _as_dataarray
from .windows import RandomWindows

__all__ = ["ShuffledSamples"]


class ShuffledSamples:
    """Draw ``nsamples`` random examples (frames, or runs of frames) from a corpus.

    The corpus is a store (a ``Document`` subclass bound to one, a store from
    :func:`zounds_xr.open_store`, or its URL; give ``feature=``), a sequence or iterable
    of (lazy) DataArrays, or a mapping ``{document_id: DataArray}`` whose first dim is
    the example axis. The ``(document, frame)`` pairs are drawn uniformly over all
    frames. From a store, the draw is :meth:`RandomWindows.sample` (windows of
    ``length`` frames at every frame, read straight from the store's arrays, block by
    block); from DataArrays, each document is read with one ``.isel`` of the rows
    drawn, so a dask-backed feature reads only the chunks it needs.

    Parameters
    ----------
    nsamples : int
        Number of examples.
    length : int
        Consecutive frames per example (``1``: single frames).
    replace : bool
        Draw with replacement (always the case when ``nsamples`` exceeds the number of
        possible examples).
    dtype : numpy dtype, optional
        Cast the result.
    seed : int or numpy.random.Generator, optional
    feature : str, optional
        The stored feature to sample when the corpus is a store.
    multiplexed, needs
        Accepted for zounds compatibility; unused.

    Returns (``sampler(corpus)`` or ``sampler.sample(corpus)``)
    -----------------------------------------------------------
    xarray.DataArray [dims=("sample", *feature_dims)] or, with ``length > 1``,
    ``("sample", "offset", *feature_dims)``, with coordinates ``document`` (id or
    position in the corpus) and ``frame`` (first frame of each example) on ``sample``.

    Raises
    ------
    ParameterError
        ``nsamples`` or ``length`` not a positive integer; an empty corpus, documents of
        different shapes, none long enough; a store without ``feature=``.

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> from zounds_xr.learn import ShuffledSamples
    >>> docs = {f"d{i}": zx.ArrayWithUnits(np.full((20, 3), i), [zx.TimeDimension(
    ...     zx.Milliseconds(10)), zx.IdentityDimension()]) for i in range(3)}
    >>> samples = ShuffledSamples(nsamples=8, seed=0)(docs)
    >>> samples.dims, samples.shape
    (('sample', 'dim_1'), (8, 3))
    >>> bool((samples.values[:, 0] == [int(d[1]) for d in samples.document.values]).all())
    True
    """

    def __init__(self, nsamples: int, length: int = 1, replace: bool = False, dtype=None,
                 seed=None, multiplexed=False, needs=None, feature: str | None = None):
        if isinstance(nsamples, bool) or int(nsamples) < 1:
            raise ParameterError(f"nsamples must be a positive integer, got {nsamples!r}")
        if int(length) < 1:
            raise ParameterError(f"length must be a positive integer, got {length!r}")
        self.nsamples = int(nsamples)
        self.length = int(length)
        self.replace = bool(replace)
        self.dtype = dtype
        self.seed = seed
        self.needs = needs
        self.feature = feature

    def __call__(self, corpus) -> xr.DataArray:
        """Draw the examples (as :meth:`sample`)."""
        return self.sample(corpus)

    def sample(self, corpus) -> xr.DataArray:
        """Draw the examples from ``corpus`` (see the class's Parameters and Returns).

        Parameters
        ----------
        corpus : store, sequence or mapping of DataArrays

        Returns
        -------
        xarray.DataArray
        """
        if _is_store(corpus):
            return self._sample_store(corpus)
        if isinstance(corpus, (xr.DataArray, np.ndarray)):
            items = [(0, corpus)]
        elif isinstance(corpus, Mapping):
            items = list(corpus.items())
        else:
            items = list(enumerate(corpus))
        arrays = [(key, _as_dataarray(a)) for key, a in items]
        if not arrays:
            raise ParameterError("cannot sample from an empty corpus")
        feature_dims = arrays[0][1].dims[1:]
        feature_shape = arrays[0][1].shape[1:]
        for key, a in arrays:
            if a.dims[1:] != feature_dims or a.shape[1:] != feature_shape:
                found = dict(zip(a.dims[1:], a.shape[1:], strict=True))
                expected = dict(zip(feature_dims, feature_shape, strict=True))
                raise ParameterError(
                    f"document {key!r} has features {found}, expected {expected}")
        # number of possible examples (start positions) per document
        counts = np.array([max(a.shape[0] - self.length + 1, 0) for _, a in arrays])
        total = int(counts.sum())
        if total == 0:
            raise ParameterError(f"no document has {self.length} frames to sample")
        rng = np.random.default_rng(self.seed)
        replace = self.replace or self.nsamples > total
        flat = rng.choice(total, size=self.nsamples, replace=replace)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        doc = np.searchsorted(bounds, flat, side="right") - 1
        frame = flat - bounds[doc]
        out = np.empty((self.nsamples, self.length, *feature_shape),
                       dtype=self.dtype or np.result_type(*[a.dtype for _, a in arrays]))
        offsets = np.arange(self.length)
        for d in np.unique(doc):
            rows = np.flatnonzero(doc == d)
            starts = frame[rows]
            wanted = np.unique((starts[:, None] + offsets[None, :]).ravel())
            a = arrays[d][1]
            values = np.asarray(a.isel({a.dims[0]: wanted}).values)  # reads only these rows
            lookup = np.searchsorted(wanted, starts[:, None] + offsets[None, :])
            out[rows] = values[lookup]
        keys = [arrays[d][0] for d in doc]
        if self.length == 1:
            data, dims = out[:, 0], ("sample", *feature_dims)
        else:
            data, dims = out, ("sample", "offset", *feature_dims)
        result = xr.DataArray(data, dims=dims)
        first = arrays[0][1]
        keep = [k for k, v in first.coords.items() if set(v.dims) and set(v.dims) <= set(
            feature_dims)]
        result = result.assign_coords(first.drop_vars(
            [k for k in first.coords if k not in keep]).coords)
        return result.assign_coords(document=("sample", np.asarray(keys, dtype=object)
                                              if not all(isinstance(k, (int, np.integer))
                                                         for k in keys)
                                              else np.asarray(keys)),
                                    frame=("sample", frame.astype(np.int64)))

    def _sample_store(self, corpus) -> xr.DataArray:
        if self.feature is None:
            raise ParameterError("give ShuffledSamples(feature=...) to sample from a store")
        seed = self.seed
        if not isinstance(seed, (int, np.integer)):
            seed = int(np.random.default_rng(seed).integers(2**63))
        windows = RandomWindows(corpus, self.feature, window=self.length, hop=1, seed=seed)
        batch = windows.sample(self.nsamples, replace=self.replace)
        data = batch["x"].numpy()
        if self.dtype is not None:
            data = data.astype(self.dtype, copy=False)
        first = _stored(windows.store, batch["document"][0], self.feature)
        feature_dims = first.dims[1:] if first is not None else tuple(
            f"dim_{i + 1}" for i in range(data.ndim - 2))
        if self.length == 1:
            data, dims = data[:, 0], ("sample", *feature_dims)
        else:
            dims = ("sample", "offset", *feature_dims)
        result = xr.DataArray(data, dims=dims)
        if first is not None:
            keep = [k for k, v in first.coords.items()
                    if set(v.dims) and set(v.dims) <= set(feature_dims)]
            result = result.assign_coords(first.drop_vars(
                [k for k in first.coords if k not in keep]).coords)
        return result.assign_coords(
            document=("sample", np.asarray(batch["document"], dtype=object)),
            frame=("sample", batch["frame"].numpy()))


def _is_store(corpus) -> bool:
    return (isinstance(corpus, (str, os.PathLike))
            or (isinstance(corpus, type) and issubclass(corpus, Document))
            or (hasattr(corpus, "catalog") and hasattr(corpus, "array")))


def _stored(store, doc_id, feature):
    """Return the document's lazy DataArray of ``feature``, if the store gives one.

    Read for its dims and labels only.
    """
    try:
        return store[doc_id][feature]
    except (TypeError, KeyError, AttributeError):
        return None
