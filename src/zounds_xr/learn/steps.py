"""The preprocessing steps: normalisation, shape changes and a k-means codebook.

Every class here is a :class:`~zounds_xr.learn.pipeline.Preprocessor` registered by
name (:func:`~zounds_xr.learn.persist.register_preprocessor`), so that saved pipelines
find it again without pickling. Steps that wrap scikit-learn estimators or torch
networks are in :mod:`zounds_xr.learn.adapters`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dask.array as dsa
import numpy as np
import xarray as xr

from ..core.optional import optional_import
from ..core.validation import positive_int
from ..dimensions.arrays import with_labels
from ..core.errors import ParameterError
from .persist import register_preprocessor
from .pipeline import Preprocessor, _as_dataarray, _flat, _is_dask, _Labels, _map_rows

__all__ = [
    "MeanStdNormalization",
    "UnitNorm",
    "Log",
    "Multiply",
    "Slicer",
    "Reshape",
    "InstanceScaling",
    "KMeans",
    "Binarize",
]


class _SameShape(Preprocessor):
    """Element-wise steps: the output has the input's shape and labels."""

    def _forward(self, x):
        return x.copy(data=self._apply(x.data)), _Labels(x)

    def _inverse(self, y, labels):
        return labels.apply(self._unapply(_as_dataarray(y).data))

    def _apply(self, data):
        raise NotImplementedError

    def _unapply(self, data):
        raise NotImplementedError


# -- normalisation steps ------------------------------------------------------------------
@register_preprocessor
class MeanStdNormalization(_SameShape):
    """Feature-wise standardisation ``(x - mean) / std`` with corpus statistics.

    Mean and variance are accumulated block by block (Chan et al.'s parallel update),
    so the corpus is streamed. Features with zero variance are only centred. Exactly
    invertible.

    Parameters
    ----------
    needs : object, optional
        Accepted for compatibility with zounds' graph syntax and ignored.

    See Also
    --------
    UnitNorm, InstanceScaling : Per-example scaling.
    """

    learns = True

    def __init__(self, needs=None):
        super().__init__(needs)
        self.mean = None
        self.std = None

    def _start_fit(self):
        self._n = 0
        self._mean: Any = None
        self._m2: Any = None

    def _partial_fit(self, block, pass_index):
        values = np.asarray(block.values, dtype=np.float64)
        n_b = values.shape[0]
        if n_b == 0:
            return
        mean_b = values.mean(axis=0)
        m2_b = ((values - mean_b) ** 2).sum(axis=0)
        if self._mean is None:
            self._n, self._mean, self._m2 = n_b, mean_b, m2_b
            return
        if mean_b.shape != self._mean.shape:
            raise ParameterError(
                f"examples of shape {values.shape[1:]} after {self._mean.shape}: every "
                "array of the corpus must have the same features")
        n = self._n + n_b
        delta = mean_b - self._mean
        self._mean = self._mean + delta * n_b / n
        self._m2 = self._m2 + m2_b + delta ** 2 * self._n * n_b / n
        self._n = n

    def _end_fit(self):
        std = np.sqrt(self._m2 / self._n)
        self.mean, self.std = self._mean, np.where(std > 0, std, 1.0)
        del self._n, self._mean, self._m2

    def _apply(self, data):
        return (data - self.mean) / self.std

    def _unapply(self, data):
        return data * self.std + self.mean

    def get_arrays(self):
        """Fitted arrays, for saving."""
        return {"mean": self.mean, "std": self.std}

    def _set_arrays(self, arrays):
        self.mean, self.std = np.asarray(arrays["mean"]), np.asarray(arrays["std"])


@register_preprocessor
class Log(_SameShape):
    """Sign-preserving log compression ``sign(x) · log(1 + |x|)`` (exactly invertible).

    Parameters
    ----------
    needs : object, optional
        Accepted for compatibility with zounds' graph syntax and ignored.
    """

    def _apply(self, data):
        return np.sign(data) * np.log1p(np.abs(data))

    def _unapply(self, data):
        return np.sign(data) * np.expm1(np.abs(data))


@register_preprocessor
class Multiply(_SameShape):
    """Multiply by a constant ``factor`` (a scalar or an array over the feature dims).

    Parameters
    ----------
    factor : float or array_like of float
        Finite and non-zero; broadcast against the feature dims of one example.
    needs : object, optional
        Accepted for compatibility with zounds' graph syntax and ignored.

    Raises
    ------
    ParameterError
        When ``factor`` is not finite and non-zero.
    """

    def __init__(self, factor=1.0, needs=None):
        super().__init__(needs)
        factor = np.asarray(factor, dtype=np.float64)
        if np.any(factor == 0) or not np.all(np.isfinite(factor)):
            raise ParameterError(f"factor must be finite and non-zero, got {factor!r}")
        self.factor = factor

    def _apply(self, data):
        return data * self.factor

    def _unapply(self, data):
        return data / self.factor

    def get_config(self):
        """JSON-safe constructor parameters, for saving."""
        return {"factor": self.factor.tolist()}


class _PerExampleScale(Preprocessor):
    """Divide each example by a per-example scale; the scales are the inversion data."""

    def _scales(self, data, axes):
        raise NotImplementedError

    def _forward(self, x):
        data = x.data
        axes = tuple(range(1, data.ndim))
        scale = self._scales(data, axes)
        scale = np.where(scale == 0, 1.0, scale)
        shaped = scale.reshape((-1,) + (1,) * len(axes))
        return x.copy(data=data / shaped), (_Labels(x), shaped)

    def _inverse(self, y, inversion):
        labels, shaped = inversion
        return labels.apply(_as_dataarray(y).data * shaped)


@register_preprocessor
class UnitNorm(_PerExampleScale):
    """Give every example unit L2 norm (all-zero examples are left as they are).

    Parameters
    ----------
    needs : object, optional
        Accepted for compatibility with zounds' graph syntax and ignored.
    """

    def _scales(self, data, axes):
        return np.sqrt((data ** 2).sum(axis=axes)) if axes else np.abs(data)


@register_preprocessor
class InstanceScaling(_PerExampleScale):
    """Divide every example by its maximum absolute value (range ``[-1, 1]``).

    Parameters
    ----------
    needs : object, optional
        Accepted for compatibility with zounds' graph syntax and ignored.
    """

    def _scales(self, data, axes):
        return np.abs(data).max(axis=axes) if axes else np.abs(data)


# -- shape steps --------------------------------------------------------------------------
@register_preprocessor
class Slicer(Preprocessor):
    """Keep ``slicex`` positions of one feature dim (default: the last dim).

    The inverse puts the kept values back in place and fills the removed positions with
    ``fill_value``, restoring the input's shape and labels.

    Parameters
    ----------
    slicex : slice, int or sequence of int
    dim : str, optional
    fill_value : float
    needs : object, optional
        Accepted for compatibility with zounds' graph syntax and ignored.
    """

    def __init__(self, slicex=slice(None), dim=None, fill_value=0.0, needs=None):
        super().__init__(needs)
        if isinstance(slicex, Mapping):  # from a saved config
            slicex = slice(slicex.get("start"), slicex.get("stop"), slicex.get("step"))
        if isinstance(slicex, (int, np.integer)):
            slicex = [int(slicex)]
        if not isinstance(slicex, slice):
            slicex = [int(i) for i in slicex]
        self.slicex = slicex
        self.dim = dim
        self.fill_value = float(fill_value)

    def _dim(self, x):
        dim = self.dim if self.dim is not None else x.dims[-1]
        if dim not in x.dims or dim == x.dims[0]:
            raise ParameterError(f"Slicer dim must be a feature dim of {x.dims}, got {dim!r}")
        return dim

    def _forward(self, x):
        dim = self._dim(x)
        positions = np.arange(x.sizes[dim])[self.slicex]
        sel = self.slicex if isinstance(self.slicex, slice) else positions
        return x.isel({dim: sel}), (_Labels(x), dim, positions)

    def _inverse(self, y, inversion):
        labels, dim, positions = inversion
        y = _as_dataarray(y)
        axis = labels.dims.index(dim)
        size = labels.shape[axis]
        data = y.transpose(*labels.dims).data
        fill_shape = list(data.shape)
        fill_shape[axis] = 1
        if _is_dask(data):
            fill = dsa.full(fill_shape, self.fill_value, dtype=data.dtype)
            full = dsa.concatenate([data, fill], axis=axis)
            take = dsa.take
        else:
            fill = np.full(fill_shape, self.fill_value, dtype=data.dtype)
            full = np.concatenate([data, fill], axis=axis)
            take = np.take
        where = np.full(size, len(positions))
        where[positions] = np.arange(len(positions))
        return labels.apply(take(full, where, axis=axis))

    def get_config(self):
        """JSON-safe constructor parameters, for saving."""
        s = self.slicex
        slicex = ({"start": s.start, "stop": s.stop, "step": s.step}
                  if isinstance(s, slice) else list(s))
        return {"slicex": slicex, "dim": self.dim, "fill_value": self.fill_value}


@register_preprocessor
class Reshape(Preprocessor):
    """Reshape every example to ``new_shape`` (one entry may be ``-1``).

    Parameters
    ----------
    new_shape : tuple of int
    dims : sequence of str, optional
        Names of the new feature dims (default ``dim_1, dim_2, ...``).
    needs : object, optional
        Accepted for compatibility with zounds' graph syntax and ignored.

    Raises
    ------
    ParameterError
        When ``dims`` do not name the new axes or ``new_shape`` has more than one -1.
    """

    def __init__(self, new_shape=(-1,), dims=None, needs=None):
        super().__init__(needs)
        self.new_shape = tuple(int(s) for s in np.atleast_1d(new_shape))
        if dims is not None and len(dims) != len(self.new_shape):
            raise ParameterError(f"dims {dims!r} must name the {len(self.new_shape)} new axes")
        self.dims = None if dims is None else list(dims)

    def _forward(self, x):
        n_features = int(np.prod(x.shape[1:]))
        shape = list(self.new_shape)
        if shape.count(-1) > 1:
            raise ParameterError(f"at most one -1 in new_shape, got {self.new_shape}")
        if -1 in shape:
            known = int(np.prod([s for s in shape if s != -1]))
            if known == 0 or n_features % known:
                raise ParameterError(f"cannot reshape {x.shape[1:]} into {self.new_shape}")
            shape[shape.index(-1)] = n_features // known
        if int(np.prod(shape)) != n_features:
            raise ParameterError(f"cannot reshape {x.shape[1:]} into {self.new_shape}")
        dims = self.dims or [f"dim_{i}" for i in range(1, len(shape) + 1)]
        data = x.data.reshape((x.shape[0], *shape))
        return with_labels(data, like=x, dims=[x.dims[0], *dims]), _Labels(x)

    def _inverse(self, y, labels):
        data = _as_dataarray(y).data
        return labels.apply(data.reshape(labels.shape))

    def get_config(self):
        """JSON-safe constructor parameters, for saving."""
        return {"new_shape": list(self.new_shape), "dims": self.dims}


@register_preprocessor
class Binarize(Preprocessor):
    """``1`` where ``x > threshold`` else ``0`` (uint8). Not invertible.

    Parameters
    ----------
    threshold : float
        Values above it become 1.
    needs : object, optional
        Accepted for compatibility with zounds' graph syntax and ignored.

    See Also
    --------
    zounds_xr.learn.SimHash : Binary codes that keep angular similarity.
    """

    invertible = False

    def __init__(self, threshold=0.0, needs=None):
        super().__init__(needs)
        self.threshold = float(threshold)

    def _forward(self, x):
        return x.copy(data=(x.data > self.threshold).astype(np.uint8)), None

    def get_config(self):
        """JSON-safe constructor parameters, for saving."""
        return {"threshold": self.threshold}


# -- learned models -----------------------------------------------------------------------
@register_preprocessor
class KMeans(Preprocessor):
    """A k-means codebook learned with mini-batch k-means, streamed over the corpus.

    ``transform`` gives a one-hot code per example (dims ``(example, "centroid")``,
    uint8); the inverse replaces each code by its centroid, reshaped to the input's
    feature shape, with the input's labels. ``predict(x)`` gives the centroid indices.

    Parameters
    ----------
    centroids : int
        Size of the codebook.
    batch_size : int
        Rows per ``partial_fit`` call.
    passes : int
        Passes over the corpus.
    seed : int
    needs : object, optional
        Accepted for compatibility with zounds' graph syntax and ignored.
    """

    learns = True

    def __init__(self, centroids=32, batch_size=1024, passes=3, seed=0, needs=None):
        super().__init__(needs)
        self.centroids = positive_int(centroids, "centroids")
        self.batch_size = max(int(batch_size), self.centroids)
        self.passes = max(int(passes), 1)
        self.seed = int(seed)
        self.cluster_centers: Any = None
        self.feature_shape = None

    def _start_fit(self):
        cluster = optional_import("sklearn.cluster", extra="learn")
        self._model = cluster.MiniBatchKMeans(n_clusters=self.centroids, batch_size=self.batch_size,
                                      random_state=self.seed, n_init=3)
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._pass = None

    def _flush(self, final=False):
        """Feed the buffered rows to ``partial_fit`` (at least ``centroids`` rows at a time).

        Fewer rows stay buffered for the next call; at the very end they are dropped once
        the model has been fitted (they were seen in earlier passes when ``passes > 1``).
        """
        if not self._buffer:
            return
        rows = np.concatenate(self._buffer)
        if rows.shape[0] < self.centroids:
            if not final:
                self._buffer, self._buffered = [rows], rows.shape[0]
                return
            if not hasattr(self._model, "cluster_centers_"):
                raise ParameterError(
                    f"KMeans needs at least {self.centroids} examples, got {rows.shape[0]}")
        else:
            self._model.partial_fit(rows)
        self._buffer, self._buffered = [], 0

    def _partial_fit(self, block, pass_index):
        if pass_index != self._pass:
            self._flush()
            self._pass = pass_index
        if self.feature_shape is None:
            self.feature_shape = tuple(block.shape[1:])
        rows = _flat(block)
        self._buffer.append(rows)
        self._buffered += rows.shape[0]
        if self._buffered >= self.batch_size:
            self._flush()

    def _end_fit(self):
        self._flush(final=True)
        self.cluster_centers = np.asarray(self._model.cluster_centers_, dtype=np.float64)
        del self._model, self._buffer, self._buffered, self._pass

    def _assign(self, rows: np.ndarray) -> np.ndarray:
        rows = rows.reshape(rows.shape[0], -1).astype(np.float64, copy=False)
        c = self.cluster_centers
        d = (rows ** 2).sum(1)[:, None] - 2 * rows @ c.T + (c ** 2).sum(1)[None, :]
        return np.argmin(d, axis=1)

    def predict(self, x) -> xr.DataArray:
        """Index of the nearest centroid of every example.

        Parameters
        ----------
        x : xarray.DataArray or array [dims=(example, ...)]
            Examples with the features the codebook was fitted on.

        Returns
        -------
        xarray.DataArray [dims=(example,), int64]
            Centroid indices in ``[0, centroids)``; the example axis keeps its labels.
        """
        self._check_fitted()
        return _map_rows(_as_dataarray(x), self._assign, (), np.int64, [])

    def _forward(self, x):
        k = self.centroids

        def one_hot(rows):
            out = np.zeros((rows.shape[0], k), dtype=np.uint8)
            out[np.arange(rows.shape[0]), self._assign(rows)] = 1
            return out

        return _map_rows(x, one_hot, (k,), np.uint8, ["centroid"]), _Labels(x)

    def _inverse(self, y, labels):
        y = _as_dataarray(y)
        centers = self.cluster_centers
        shape = labels.shape[1:]
        out = _map_rows(y, lambda codes: centers[np.argmax(codes.reshape(codes.shape[0], -1),
                                                           axis=1)].reshape(-1, *shape),
                        shape, np.float64, [f"_f{i}" for i in range(len(shape))])
        return labels.apply(out.data)

    def get_config(self):
        """JSON-safe constructor parameters, for saving."""
        return {"centroids": self.centroids, "batch_size": self.batch_size,
                "passes": self.passes, "seed": self.seed}

    def get_arrays(self):
        """Fitted arrays, for saving."""
        return {"cluster_centers": self.cluster_centers,
                "feature_shape": np.asarray(self.feature_shape, dtype=np.int64)}

    def _set_arrays(self, arrays):
        self.cluster_centers = np.asarray(arrays["cluster_centers"])
        self.feature_shape = tuple(int(s) for s in arrays["feature_shape"])
