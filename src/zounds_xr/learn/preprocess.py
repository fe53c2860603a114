"""Learned preprocessing pipelines over a corpus of features.

A :class:`PreprocessingPipeline` is a sequence of :class:`Preprocessor` steps. Fitting it
on a corpus (a DataArray, or an iterable of DataArrays such as
``(snd.bark for snd in Sound)``) streams the data block by block: each step that
learns something (mean and variance, k-means centroids, a network...) sees the corpus
transformed by the steps before it, through partial statistics, so the corpus is never
loaded whole. A one-shot iterator is spilled to a temporary directory on the first pass
when later passes are needed.

The first dim of every array is the *example* dim (usually ``time``); the other dims
are the features of one example. ``transform(x)`` keeps the labels of ``x`` (the
example axis always, feature axes when their size is unchanged) and is lazy on dask
input; it returns a :class:`PreprocessResult` whose ``inverse_transform()`` restores the
input's labels and values (exactly for the lossless steps, within float tolerance).

Examples
--------
>>> import numpy as np, zounds_xr as zx
>>> from zounds_xr.learn import PreprocessingPipeline, MeanStdNormalization, KMeans
>>> rng = np.random.default_rng(0)
>>> feats = [zx.ArrayWithUnits(rng.normal(size=(50, 4)),
...                            [zx.TimeDimension(zx.Milliseconds(10)), zx.IdentityDimension()])
...          for _ in range(3)]
>>> pipeline = PreprocessingPipeline([MeanStdNormalization(), KMeans(centroids=4)])
>>> pipeline = pipeline.fit(feats)
>>> result = pipeline.transform(feats[0])
>>> result.data.dims, result.data.shape
(('time', 'centroid'), (50, 4))
>>> result.inverse_transform().shape
(50, 4)
"""
from __future__ import annotations

import importlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import xarray as xr

from ..arrays import with_labels
from .._validation import positive_int
from ..errors import ParameterError, ZoundsError

__all__ = [
    "NotFittedError",
    "NotInvertibleError",
    "PreprocessResult",
    "Preprocessor",
    "PreprocessingPipeline",
    "MeanStdNormalization",
    "UnitNorm",
    "Log",
    "Multiply",
    "Slicer",
    "Reshape",
    "InstanceScaling",
    "KMeans",
    "SklearnModel",
    "PyTorchNetwork",
    "Binarize",
    "register_preprocessor",
    "preprocessor_class",
]

#: rows per block when a numpy-backed array is streamed through ``fit``
DEFAULT_BLOCK_ROWS = 8192


class NotFittedError(ZoundsError, RuntimeError):
    """A preprocessor that learns from data was used before ``fit``."""


class NotInvertibleError(ZoundsError, NotImplementedError):
    """``inverse_transform`` of a step that throws information away (e.g. Binarize)."""


# -- registry (persistence looks classes up by name, never unpickles) ---------------------
_REGISTRY: dict[str, type] = {}


def register_preprocessor(cls: type) -> type:
    """Class decorator: make a :class:`Preprocessor` subclass loadable by name.

    Saved pipelines record each step's registered name and module; loading imports that
    module (by name) and looks the class up here, so no bytecode is ever unpickled.
    """
    name = getattr(cls, "registry_name", None) or cls.__name__
    other = _REGISTRY.get(name)
    if other is not None and other is not cls and (other.__module__, other.__qualname__) != (
            cls.__module__, cls.__qualname__):
        raise ParameterError(f"a preprocessor named {name!r} is already registered ({other!r})")
    cls.registry_name = name
    _REGISTRY[name] = cls
    return cls


def preprocessor_class(name: str, module: str | None = None) -> type:
    """The registered preprocessor class ``name`` (importing ``module`` first if needed)."""
    if name not in _REGISTRY and module:
        importlib.import_module(module)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ParameterError(f"no preprocessor registered under the name {name!r}") from None


# -- data sources -------------------------------------------------------------------------
def _as_dataarray(x) -> xr.DataArray:
    if isinstance(x, xr.DataArray):
        return x
    if hasattr(x, "ndim") and hasattr(x, "shape"):
        arr = x if hasattr(x, "dask") or isinstance(x, np.ndarray) else np.asarray(x)
        if arr.ndim == 0:
            raise ParameterError("expected an array of examples, got a scalar")
        return xr.DataArray(arr, dims=["time"] + [f"dim_{i}" for i in range(1, arr.ndim)])
    raise ParameterError(f"expected a DataArray (or array) of examples, got {type(x).__name__}")


def _iter_blocks(x: xr.DataArray, block_rows: int) -> Iterator[xr.DataArray]:
    """Loaded blocks of rows of ``x`` (dask chunks are read one by one, never all at once)."""
    dim = x.dims[0]
    n = x.sizes[dim]
    chunks = x.chunks[0] if x.chunks else None
    bounds = []
    if chunks:
        start = 0
        for c in chunks:
            for s in range(start, start + c, block_rows):
                bounds.append((s, min(start + c, s + block_rows)))
            start += c
    else:
        bounds = [(s, min(n, s + block_rows)) for s in range(0, n, block_rows)]
    for a, b in bounds:
        if b > a:
            yield x.isel({dim: slice(a, b)}).load()


class _DataSource:
    """Iterate a corpus several times: DataArray, sequence, callable or one-shot iterator."""

    def __init__(self, data, block_rows: int = DEFAULT_BLOCK_ROWS):
        self.block_rows = int(block_rows)
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._spilled: list[tuple[str, tuple]] | None = None
        self._iterator = None
        self._factory = None
        if isinstance(data, (xr.DataArray, np.ndarray)) or (
                hasattr(data, "ndim") and hasattr(data, "shape") and hasattr(data, "dtype")):
            self._factory = lambda: iter([data])
        elif callable(data) and not isinstance(data, Iterable):
            self._factory = lambda: iter(data())
        elif isinstance(data, Iterator):
            self._iterator = data
        elif isinstance(data, Iterable):
            self._factory = lambda: iter(data)
        else:
            raise ParameterError(
                f"fit expects a DataArray, an iterable of DataArrays or a callable returning "
                f"one, got {type(data).__name__}")

    def blocks(self) -> Iterator[xr.DataArray]:
        if self._factory is not None:
            for item in self._factory():
                yield from _iter_blocks(_as_dataarray(item), self.block_rows)
        elif self._spilled is not None:
            for path, dims in self._spilled:
                yield xr.DataArray(np.load(path, allow_pickle=False), dims=dims)
        else:  # first pass over a one-shot iterator: spill to disk while streaming
            self._tmp = tempfile.TemporaryDirectory(prefix="zounds_xr_fit_")
            spilled = []
            iterator, self._iterator = self._iterator, None
            for item in iterator:
                for block in _iter_blocks(_as_dataarray(item), self.block_rows):
                    path = os.path.join(self._tmp.name, f"{len(spilled):08d}.npy")
                    np.save(path, np.asarray(block.values), allow_pickle=False)
                    spilled.append((path, block.dims))
                    yield block
            self._spilled = spilled

    def close(self):
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _fit_steps(steps: Sequence[Preprocessor], data, *, refit: bool = False,
               block_rows: int = DEFAULT_BLOCK_ROWS) -> None:
    """Fit each step that needs it on ``data`` transformed by the steps before it."""
    source = _DataSource(data, block_rows)
    try:
        for i, step in enumerate(steps):
            if not step.learns or (step.fitted and not refit):
                continue
            step._start_fit()
            for p in range(step.passes):
                seen = 0
                for block in source.blocks():
                    for previous in steps[:i]:
                        block = previous._forward(block)[0]
                    block = block.load() if block.chunks else block
                    seen += block.shape[0]
                    step._partial_fit(block, p)
                if seen == 0:
                    raise ParameterError("cannot fit on an empty corpus (no examples)")
            step._end_fit()
            step._fitted = True
    finally:
        source.close()


# -- helpers ------------------------------------------------------------------------------
class _Labels:
    """Everything needed to give an array the labels of an earlier input back."""

    __slots__ = ("dims", "coords", "name", "attrs", "shape")

    def __init__(self, x: xr.DataArray):
        self.dims = x.dims
        self.coords = x.coords
        self.name = x.name
        self.attrs = dict(x.attrs)
        self.shape = x.shape

    def apply(self, data) -> xr.DataArray:
        out = xr.DataArray(data, dims=self.dims, name=self.name, attrs=self.attrs)
        return out.assign_coords(self.coords)


def _is_dask(data) -> bool:
    return hasattr(data, "dask")


def _flat(block: xr.DataArray) -> np.ndarray:
    """A loaded block as ``(n_examples, n_features)`` float64."""
    values = np.asarray(block.values)
    return values.reshape(values.shape[0], -1)


def _map_rows(x: xr.DataArray, func: Callable[[np.ndarray], np.ndarray],
              out_features: Sequence[int], out_dtype, out_dims: Sequence[str]) -> xr.DataArray:
    """Apply ``func`` ((n, features...) -> (n, out_features...)) row-block-wise; lazy on dask."""
    data = x.data
    out_features = tuple(int(s) for s in out_features)
    n_out = int(np.prod(out_features)) if out_features else 1
    if _is_dask(data):
        import dask.array as dsa

        data = data.rechunk({i: -1 for i in range(1, data.ndim)})
        feat_shape = data.shape[1:]

        def block_func(b):
            y = func(np.asarray(b).reshape((b.shape[0], *feat_shape)))
            return np.asarray(y).reshape(b.shape[0], n_out)

        flat = data.reshape(data.shape[0], -1) if data.ndim != 2 else data
        out = dsa.map_blocks(block_func, flat, chunks=(flat.chunks[0], (n_out,)),
                             dtype=out_dtype)
        out = out.reshape((data.shape[0], *out_features)) if out_features != (n_out,) else out
        if not out_features:
            out = out.reshape(data.shape[0])
    else:
        out = np.asarray(func(np.asarray(data))).astype(out_dtype, copy=False)
        out = out.reshape((data.shape[0], *out_features))
    return with_labels(out, like=x, dims=[x.dims[0], *out_dims])


def _feature_dims(prefix: str, shape: Sequence[int]) -> list[str]:
    if len(shape) == 1:
        return [prefix]
    return [f"{prefix}_{i}" for i in range(len(shape))]


def _json_safe(value, name: str):
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name}={value!r} is not JSON-serialisable and cannot be saved") \
            from None
    return value


# -- results ------------------------------------------------------------------------------
class PreprocessResult:
    """The output of a preprocessing step or pipeline, and how to undo it.

    Parameters
    ----------
    data : xarray.DataArray
        The transformed data.
    op : Preprocessor or PreprocessingPipeline
        What produced ``data`` (callable on new data).
    inversion_data : object, optional
        Data kept from the forward pass that the inverse needs (norms, input labels...).
    inverse : callable, optional
        ``inverse(data, inversion_data) -> DataArray``; ``None`` when not invertible.
    name : str, optional
    """

    def __init__(self, data, op, inversion_data=None, inverse=None, name=None):
        self.data = data
        self.op = op
        self.inversion_data = inversion_data
        self.inverse = inverse
        self.name = name

    def inverse_transform(self, data=None) -> xr.DataArray:
        """Undo the transform (of ``data``, default ``self.data``: e.g. modified codes)."""
        if self.inverse is None:
            raise NotInvertibleError(f"{self.name or self.op!r} is not invertible")
        return self.inverse(self.data if data is None else data, self.inversion_data)

    def __repr__(self) -> str:
        return f"PreprocessResult(name={self.name!r}, data={self.data.dims}{self.data.shape})"


# -- base class ---------------------------------------------------------------------------
class Preprocessor:
    """A step of a :class:`PreprocessingPipeline`.

    Subclasses implement ``_forward(x) -> (y, inversion_data)`` and, when invertible,
    ``_inverse(y, inversion_data) -> x``. Steps that learn from data set ``learns = True``
    and implement ``_start_fit``, ``_partial_fit(block, pass_index)`` and ``_end_fit``
    (streamed over blocks; ``passes`` passes over the corpus). Persistence:
    ``get_config()`` (JSON-safe constructor parameters), ``get_arrays()`` (learned
    numpy arrays) and ``_set_arrays(arrays)``; decorate with :func:`register_preprocessor`.

    ``needs`` is accepted for compatibility with zounds' graph syntax and ignored.
    """

    learns = False
    invertible = True
    passes = 1
    registry_name: str = ""

    def __init__(self, needs=None):
        self.needs = needs
        self._fitted = not self.learns

    # fitting
    @property
    def fitted(self) -> bool:
        return self._fitted

    def fit(self, data, *, block_rows: int = DEFAULT_BLOCK_ROWS):
        """Learn from a corpus (DataArray or iterable of DataArrays), streamed; returns self."""
        _fit_steps([self], data, refit=True, block_rows=block_rows)
        return self

    def _start_fit(self):
        pass

    def _partial_fit(self, block: xr.DataArray, pass_index: int):
        pass

    def _end_fit(self):
        pass

    def _check_fitted(self):
        if not self._fitted:
            raise NotFittedError(f"{type(self).__name__} must be fitted before use")

    # transforming
    def transform(self, x) -> PreprocessResult:
        """Transform ``x``; the result can be inverted with ``inverse_transform()``."""
        self._check_fitted()
        y, inversion = self._forward(_as_dataarray(x))
        return PreprocessResult(y, self, inversion, self._inverse if self.invertible else None,
                                name=type(self).__name__)

    def __call__(self, x) -> xr.DataArray:
        return self.transform(x).data

    def _forward(self, x: xr.DataArray):
        raise NotImplementedError

    def _inverse(self, y, inversion_data):
        raise NotInvertibleError(f"{type(self).__name__} is not invertible")

    # persistence
    def get_config(self) -> dict:
        return {}

    def get_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _set_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        pass

    def to_dict(self) -> dict:
        """Parameters and learned arrays (what a document ``Feature`` versions a step by)."""
        try:
            config = self.get_config()
        except ParameterError:  # e.g. a network class defined inside a function
            config = {"repr": type(self).__qualname__}
        arrays = self.get_arrays() if self.fitted else {}
        return {"type": self.registry_name or type(self).__name__, "config": config,
                "fitted": self.fitted,
                "arrays": {k: np.asarray(v) for k, v in arrays.items() if v is not None}}

    @classmethod
    def from_state(cls, config: Mapping, arrays: Mapping[str, np.ndarray]):
        """A fitted instance from :meth:`get_config` and :meth:`get_arrays` output."""
        obj = cls(**config)
        obj._set_arrays(arrays)
        obj._fitted = True
        return obj

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({params})"


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
    so the corpus is streamed. Features with zero variance are only centred.
    """

    learns = True

    def __init__(self, needs=None):
        super().__init__(needs)
        self.mean = None
        self.std = None

    def _start_fit(self):
        self._n, self._mean, self._m2 = 0, None, None

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
        return {"mean": self.mean, "std": self.std}

    def _set_arrays(self, arrays):
        self.mean, self.std = np.asarray(arrays["mean"]), np.asarray(arrays["std"])


@register_preprocessor
class Log(_SameShape):
    """Sign-preserving log compression ``sign(x) · log(1 + |x|)`` (exactly invertible)."""

    def _apply(self, data):
        return np.sign(data) * np.log1p(np.abs(data))

    def _unapply(self, data):
        return np.sign(data) * np.expm1(np.abs(data))


@register_preprocessor
class Multiply(_SameShape):
    """Multiply by a constant ``factor`` (a scalar or an array over the feature dims)."""

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
        return {"factor": self.factor.tolist()}


class _PerExampleScale(Preprocessor):
    """Divide each example by a per-example scale; the scales are the inversion data."""

    def _scales(self, data):
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
    """Give every example unit L2 norm (all-zero examples are left as they are)."""

    def _scales(self, data, axes):
        return np.sqrt((data ** 2).sum(axis=axes)) if axes else np.abs(data)


@register_preprocessor
class InstanceScaling(_PerExampleScale):
    """Divide every example by its maximum absolute value (range ``[-1, 1]``)."""

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
            import dask.array as dsa

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
        return {"new_shape": list(self.new_shape), "dims": self.dims}


@register_preprocessor
class Binarize(Preprocessor):
    """``1`` where ``x > threshold`` else ``0`` (uint8). Not invertible."""

    invertible = False

    def __init__(self, threshold=0.0, needs=None):
        super().__init__(needs)
        self.threshold = float(threshold)

    def _forward(self, x):
        return x.copy(data=(x.data > self.threshold).astype(np.uint8)), None

    def get_config(self):
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
    """

    learns = True

    def __init__(self, centroids=32, batch_size=1024, passes=3, seed=0, needs=None):
        super().__init__(needs)
        self.centroids = positive_int(centroids, "centroids")
        self.batch_size = max(int(batch_size), self.centroids)
        self.passes = max(int(passes), 1)
        self.seed = int(seed)
        self.cluster_centers = None
        self.feature_shape = None

    def _start_fit(self):
        from sklearn.cluster import MiniBatchKMeans

        self._model = MiniBatchKMeans(n_clusters=self.centroids, batch_size=self.batch_size,
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
        """Index of the nearest centroid of every example (dims ``(example,)``)."""
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
        return {"centroids": self.centroids, "batch_size": self.batch_size,
                "passes": self.passes, "seed": self.seed}

    def get_arrays(self):
        return {"cluster_centers": self.cluster_centers,
                "feature_shape": np.asarray(self.feature_shape, dtype=np.int64)}

    def _set_arrays(self, arrays):
        self.cluster_centers = np.asarray(arrays["cluster_centers"])
        self.feature_shape = tuple(int(s) for s in arrays["feature_shape"])


def _import_object(module: str, qualname: str):
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        if part == "<locals>":
            raise ParameterError(f"{module}.{qualname} is defined inside a function and cannot "
                                 "be imported by name")
        obj = getattr(obj, part)
    return obj


def _import_path(obj) -> tuple[str, str]:
    cls = obj if isinstance(obj, type) else type(obj)
    if "<locals>" in cls.__qualname__:
        raise ParameterError(
            f"{cls.__qualname__} is defined inside a function: only module-level classes can "
            "be saved (they are re-imported by name)")
    return cls.__module__, cls.__qualname__


@register_preprocessor
class SklearnModel(Preprocessor):
    """Wrap a scikit-learn estimator that has ``transform`` (PCA, StandardScaler...).

    Examples are flattened to ``(n, features)``. Estimators with ``partial_fit``
    (IncrementalPCA, MiniBatchKMeans, StandardScaler...) are fitted block by block;
    others see the whole (flattened) corpus at once: feed them a bounded sample, e.g.
    from :class:`~zounds_xr.learn.ShuffledSamples`. ``transform`` output dims are
    ``(example, "component")``; the inverse uses the estimator's ``inverse_transform``.

    Saved as the estimator's import path, ``get_params()`` (must be JSON-safe) and its
    fitted array attributes (names ending in ``_``): never pickled.
    """

    learns = True

    def __init__(self, model, needs=None):
        super().__init__(needs)
        if not (hasattr(model, "fit") and hasattr(model, "transform")):
            raise ParameterError(f"model must be a scikit-learn transformer, got {model!r}")
        self.model = model
        self.feature_shape = None
        self.invertible = hasattr(model, "inverse_transform")

    @property
    def passes(self):
        return 1

    def _start_fit(self):
        self._rows = []

    def _partial_fit(self, block, pass_index):
        if self.feature_shape is None:
            self.feature_shape = tuple(block.shape[1:])
        rows = _flat(block)
        if hasattr(self.model, "partial_fit"):
            self.model.partial_fit(rows)
        else:
            self._rows.append(rows)

    def _end_fit(self):
        if self._rows:
            self.model.fit(np.concatenate(self._rows))
        del self._rows

    def _forward(self, x):
        probe = self.model.transform(np.zeros((1, int(np.prod(x.shape[1:])))))
        k = probe.shape[1]
        out = _map_rows(x, lambda rows: self.model.transform(rows.reshape(rows.shape[0], -1)),
                        (k,), probe.dtype, ["component"])
        return out, _Labels(x)

    def _inverse(self, y, labels):
        shape = labels.shape[1:]
        out = _map_rows(_as_dataarray(y),
                        lambda rows: self.model.inverse_transform(rows).reshape(-1, *shape),
                        shape, np.float64, [f"_f{i}" for i in range(len(shape))])
        return labels.apply(out.data)

    def get_config(self):
        module, qualname = _import_path(self.model)
        params = _json_safe(self.model.get_params(deep=False), "model parameters")
        return {"model": {"module": module, "qualname": qualname, "params": params}}

    def get_arrays(self):
        out = {"feature_shape": np.asarray(self.feature_shape, dtype=np.int64)}
        for key, value in vars(self.model).items():
            if not key.endswith("_") or key.startswith("_"):
                continue
            if isinstance(value, np.ndarray) and value.dtype != object:
                out[f"attr.{key}"] = value
            elif isinstance(value, (int, float, np.integer, np.floating, bool, np.bool_)):
                out[f"scalar.{key}"] = np.asarray(value)
            elif value is None:
                continue
            else:
                raise ParameterError(
                    f"fitted attribute {key} of {type(self.model).__name__} is not an array or "
                    "a number and cannot be saved without pickling")
        return out

    @classmethod
    def from_state(cls, config, arrays):
        spec = config["model"]
        model = _import_object(spec["module"], spec["qualname"])(**spec["params"])
        for key, value in arrays.items():
            kind, _, attr = key.partition(".")
            if kind == "attr":
                setattr(model, attr, np.asarray(value))
            elif kind == "scalar":
                setattr(model, attr, np.asarray(value).item())
        obj = cls(model)
        obj.feature_shape = tuple(int(s) for s in arrays["feature_shape"])
        obj._fitted = True
        return obj


@register_preprocessor
class PyTorchNetwork(Preprocessor):
    """Apply a torch module to every example; optionally train it during ``fit``.

    Parameters
    ----------
    network : torch.nn.Module
        Must be a module-level class so that it can be re-imported by name when a
        pipeline is loaded.
    trainer : optional
        A trainer (:class:`~zounds_xr.learn.SupervisedTrainer`, ...) whose
        ``train(data)`` gets the corpus as one ``(n, features...)`` float32 array and
        returns the trained network. Without a trainer the network is used as is.
    post_training_func : callable, optional
        ``network -> network`` after training (e.g. keep only the encoder).
    training_set_prep : callable, optional
        ``array -> array`` applied to the training set before ``trainer.train``.
    chunksize : int
        Examples per forward batch.
    network_kwargs : dict, optional
        JSON-safe constructor arguments of ``network``'s class, needed to save it
        (default: the network's ``init_kwargs`` attribute, or none).
    device : str
        Where inference runs ("cpu", "cuda"...).

    ``transform`` output dims: ``(example, "feature")`` (or ``feature_0, feature_1...``).
    Not invertible. Saved as import path + constructor kwargs + ``state_dict`` arrays.
    """

    invertible = False

    def __init__(self, network, trainer=None, post_training_func=None, training_set_prep=None,
                 chunksize=1024, network_kwargs=None, device="cpu", needs=None):
        self.trainer = trainer
        super().__init__(needs)
        self.network = network
        self.post_training_func = post_training_func
        self.training_set_prep = training_set_prep
        self.chunksize = int(chunksize)
        self.network_kwargs = (dict(network_kwargs) if network_kwargs is not None
                               else dict(getattr(network, "init_kwargs", {}) or {}))
        self.device = device
        self._fitted = trainer is None

    @property
    def learns(self):
        return self.trainer is not None

    def _start_fit(self):
        self._rows = []

    def _partial_fit(self, block, pass_index):
        self._rows.append(np.asarray(block.values, dtype=np.float32))

    def _end_fit(self):
        data = np.concatenate(self._rows)
        del self._rows
        if self.training_set_prep is not None:
            data = self.training_set_prep(data)
        network = self.trainer.train(data)
        if network is not None:
            self.network = network
        if self.post_training_func is not None:
            self.network = self.post_training_func(self.network)

    def _run(self, rows: np.ndarray) -> np.ndarray:
        import torch

        net = self.network.to(self.device)
        was_training = net.training
        net.eval()
        outs = []
        try:
            with torch.no_grad():
                for s in range(0, rows.shape[0], self.chunksize):
                    batch = torch.as_tensor(np.ascontiguousarray(rows[s:s + self.chunksize]),
                                            dtype=torch.float32, device=self.device)
                    outs.append(net(batch).detach().cpu().numpy())
        finally:
            net.train(was_training)
        if not outs:
            return self._run(np.zeros((1, *rows.shape[1:]), dtype=np.float32))[:0]
        return np.concatenate(outs)

    def _forward(self, x):
        probe = self._run(np.zeros((1, *x.shape[1:]), dtype=np.float32))
        shape = probe.shape[1:]
        out = _map_rows(x, self._run, shape, probe.dtype, _feature_dims("feature", shape))
        return out, None

    def get_config(self):
        module, qualname = _import_path(self.network)
        kwargs = _json_safe(self.network_kwargs, "network_kwargs")
        return {"network": {"module": module, "qualname": qualname, "kwargs": kwargs},
                "chunksize": self.chunksize}

    def get_arrays(self):
        import torch

        out = {}
        for key, tensor in self.network.state_dict().items():
            t = tensor.detach().cpu()
            if t.dtype.is_floating_point and t.dtype not in (torch.float16, torch.float32,
                                                             torch.float64):
                t = t.float()  # bfloat16 & co have no numpy dtype; restored on load
            out[f"state_dict.{key}"] = t.numpy()
        return out

    @classmethod
    def from_state(cls, config, arrays):
        import torch

        spec = config["network"]
        network = _import_object(spec["module"], spec["qualname"])(**spec["kwargs"])
        reference = network.state_dict()
        state = {}
        for key, value in arrays.items():
            if key.startswith("state_dict."):
                name = key[len("state_dict."):]
                tensor = torch.from_numpy(np.array(value))
                if name in reference:
                    tensor = tensor.to(reference[name].dtype)
                state[name] = tensor
        network.load_state_dict(state)
        network.eval()
        obj = cls(network, chunksize=config.get("chunksize", 1024),
                  network_kwargs=spec["kwargs"])
        obj._fitted = True
        return obj


# -- the pipeline -------------------------------------------------------------------------
class PreprocessingPipeline:
    """A sequence of :class:`Preprocessor` steps fitted on a corpus and re-used.

    Parameters
    ----------
    steps : sequence of Preprocessor
        (``needs=`` is accepted as a synonym, as in zounds.)

    ``fit(data)`` streams a corpus through the steps (see the module docstring);
    ``transform(x)`` returns a :class:`PreprocessResult` (``.data`` and
    ``.inverse_transform()``); ``pipeline(x)`` returns the transformed DataArray, so a
    fitted pipeline is a function usable as a document ``Feature``. ``save(target)`` and
    :meth:`load` persist it (see :mod:`zounds_xr.learn.persist`).
    """

    def __init__(self, steps: Sequence[Preprocessor] | None = None, *, needs=None):
        steps = steps if steps is not None else needs
        if steps is None:
            raise ParameterError("a PreprocessingPipeline needs its steps")
        if isinstance(steps, Preprocessor):
            steps = [steps]
        steps = list(steps)
        for i, step in enumerate(steps):
            if not isinstance(step, Preprocessor):
                raise ParameterError(f"step {i} must be a Preprocessor, got {step!r}")
        self.steps = steps

    def __len__(self):
        return len(self.steps)

    def __getitem__(self, i):
        return self.steps[i]

    def __iter__(self):
        return iter(self.steps)

    @property
    def fitted(self) -> bool:
        return all(step.fitted for step in self.steps)

    @property
    def invertible(self) -> bool:
        return all(step.invertible for step in self.steps)

    def fit(self, data, *, refit: bool = False, block_rows: int = DEFAULT_BLOCK_ROWS):
        """Fit the steps in order on ``data`` (streamed); returns self.

        ``data``: a DataArray, an iterable of DataArrays (e.g. ``(snd.bark for snd in
        Sound)``), or a callable returning such an iterable. Steps already fitted are kept
        unless ``refit``.
        """
        _fit_steps(self.steps, data, refit=refit, block_rows=block_rows)
        return self

    def transform(self, x) -> PreprocessResult:
        """Run ``x`` through every step; invert with ``result.inverse_transform()``."""
        x = _as_dataarray(x)
        inversions = []
        for step in self.steps:
            step._check_fitted()
            x, inversion = step._forward(x)
            inversions.append(inversion)
        return PreprocessResult(x, self, inversions,
                                self._inverse if self.invertible else None,
                                name="PreprocessingPipeline")

    def _inverse(self, y, inversions):
        for step, inversion in zip(reversed(self.steps), reversed(inversions)):
            y = step._inverse(y, inversion)
        return y

    def __call__(self, x) -> xr.DataArray:
        return self.transform(x).data

    # persistence
    def save(self, target, *, overwrite: bool = True) -> str:
        """Save to a directory or a Zarr group; returns the content hash."""
        from .persist import save_pipeline

        return save_pipeline(self, target, overwrite=overwrite)

    @classmethod
    def load(cls, source) -> PreprocessingPipeline:
        """Load a pipeline saved with :meth:`save`."""
        from .persist import load_pipeline

        return load_pipeline(source)

    @property
    def content_hash(self) -> str:
        """sha256 of the steps' parameters and learned arrays (a version of the pipeline)."""
        from .persist import pipeline_state

        return pipeline_state(self)[1]

    def to_dict(self) -> dict:
        """Every step's parameters and learned arrays (stable: used to version features)."""
        return {"steps": [step.to_dict() for step in self.steps]}

    def __repr__(self) -> str:
        inner = ", ".join(repr(s) for s in self.steps)
        return f"PreprocessingPipeline([{inner}])"

