"""The pipeline framework: steps, results, streamed fitting, and the pipeline itself.

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

The steps are in :mod:`zounds_xr.learn.steps` (normalisation, shapes, k-means) and
:mod:`zounds_xr.learn.adapters` (scikit-learn and torch models); persistence and the
registry of step classes in :mod:`zounds_xr.learn.persist`.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import dask.array as dsa
import numpy as np
import xarray as xr

from ..dimensions.arrays import with_labels
from ..core.errors import NotFittedError, NotInvertibleError, ParameterError
from .persist import load_steps, pipeline_state, save_steps

__all__ = [
    "PreprocessResult",
    "Preprocessor",
    "PreprocessingPipeline",
    "save_pipeline",
    "load_pipeline",
    "DEFAULT_BLOCK_ROWS",
]

#: rows per block when a numpy-backed array is streamed through ``fit``
DEFAULT_BLOCK_ROWS = 8192


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
    """Yield loaded blocks of rows of ``x`` (dask chunks one by one, never all at once)."""
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
            spilled: list[tuple[str, tuple]] = []
            iterator, self._iterator = self._iterator, None
            assert iterator is not None  # one of factory, spilled or iterator is set
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
    """Return a loaded block as ``(n_examples, n_features)`` float64."""
    values = np.asarray(block.values)
    return values.reshape(values.shape[0], -1)


def _map_rows(x: xr.DataArray, func: Callable[[np.ndarray], np.ndarray],
              out_features: Sequence[int], out_dtype, out_dims: Sequence[str]) -> xr.DataArray:
    """Apply ``func`` ((n, features...) -> (n, out_features...)) row-block-wise; lazy on dask."""
    data = x.data
    out_features = tuple(int(s) for s in out_features)
    n_out = int(np.prod(out_features)) if out_features else 1
    if _is_dask(data):
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
    return with_labels(out, like=x, dims=cast(list[str], [x.dims[0], *out_dims]))


def _feature_dims(prefix: str, shape: Sequence[int]) -> list[str]:
    if len(shape) == 1:
        return [prefix]
    return [f"{prefix}_{i}" for i in range(len(shape))]


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

    Parameters
    ----------
    needs : object, optional
        Accepted for compatibility with zounds' graph syntax and ignored.

    See Also
    --------
    PreprocessingPipeline : A sequence of steps.
    zounds_xr.learn.steps : The library's steps.
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
        """Whether the step can transform (always for steps that learn nothing)."""
        return self._fitted

    def fit(self, data, *, block_rows: int = DEFAULT_BLOCK_ROWS):
        """Learn from a corpus, streamed block by block (refits a fitted step).

        Parameters
        ----------
        data : xarray.DataArray, array, iterable or callable
            The corpus: a DataArray (or array) of examples along its first dim, an
            iterable of them (e.g. ``(snd.bark for snd in Sound)``; a one-shot iterator
            is spilled to a temporary directory when a step needs several passes), or a
            callable returning such an iterable.
        block_rows : int > 0
            Rows per block when numpy-backed arrays are streamed (dask chunks are read
            one by one).

        Returns
        -------
        Preprocessor
            ``self``, fitted.
        """
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
        """Transform ``x``; the result can be inverted with ``inverse_transform()``.

        Parameters
        ----------
        x : xarray.DataArray or array [dims=(example, ...)]
            Examples along the first dim (numpy or dask: dask stays lazy).

        Returns
        -------
        PreprocessResult
            ``.data`` keeps ``x``'s example axis labels (and feature axes whose size is
            unchanged).

        Raises
        ------
        NotFittedError
            When the step learns from data and was not fitted.
        """
        self._check_fitted()
        y, inversion = self._forward(_as_dataarray(x))
        return PreprocessResult(y, self, inversion, self._inverse if self.invertible else None,
                                name=type(self).__name__)

    def __call__(self, x) -> xr.DataArray:
        """Apply to ``x``."""
        return self.transform(x).data

    def _forward(self, x: xr.DataArray):
        raise NotImplementedError

    def _inverse(self, y, inversion_data):
        raise NotInvertibleError(f"{type(self).__name__} is not invertible")

    # persistence
    def get_config(self) -> dict:
        """JSON-safe constructor parameters (what a saved pipeline re-creates the step from)."""
        return {}

    def get_arrays(self) -> dict[str, np.ndarray]:
        """Return the learned numpy arrays by name (saved next to the configuration)."""
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
        """Return a fitted instance from :meth:`get_config` and :meth:`get_arrays` output."""
        obj = cls(**config)
        obj._set_arrays(arrays)
        obj._fitted = True
        return obj

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({params})"


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
    needs : object, optional
        Accepted for compatibility with zounds' graph syntax and ignored.

    Raises
    ------
    ParameterError
        When no steps are given or a step is not a ``Preprocessor``.
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
        """Whether every step is fitted."""
        return all(step.fitted for step in self.steps)

    @property
    def invertible(self) -> bool:
        """Whether every step is invertible."""
        return all(step.invertible for step in self.steps)

    def fit(self, data, *, refit: bool = False, block_rows: int = DEFAULT_BLOCK_ROWS):
        """Fit the steps in order on ``data``, streamed.

        Fit the steps in order on ``data``, streamed: each sees the corpus transformed
        by the steps before it.

        Parameters
        ----------
        data : xarray.DataArray, array, iterable or callable
            The corpus: a DataArray (or array) of examples along its first dim, an
            iterable of them (e.g. ``(snd.bark for snd in Sound)``; a one-shot iterator
            is spilled to a temporary directory when a step needs several passes), or a
            callable returning such an iterable.
        refit : bool
            Refit steps that are fitted already (by default they are kept).
        block_rows : int > 0
            Rows per block when numpy-backed arrays are streamed (dask chunks are read
            one by one).

        Returns
        -------
        PreprocessingPipeline
            ``self``, fitted.
        """
        _fit_steps(self.steps, data, refit=refit, block_rows=block_rows)
        return self

    def transform(self, x) -> PreprocessResult:
        """Run ``x`` through every step; invert with ``result.inverse_transform()``.

        Parameters
        ----------
        x : xarray.DataArray or array [dims=(example, ...)]
            Examples along the first dim (numpy or dask: dask stays lazy).

        Returns
        -------
        PreprocessResult
            The last step's output and the inverse of the whole pipeline (``None`` when a
            step is not invertible).
        """
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
        for step, inversion in zip(reversed(self.steps), reversed(inversions), strict=True):
            y = step._inverse(y, inversion)
        return y

    def __call__(self, x) -> xr.DataArray:
        """Apply to ``x``."""
        return self.transform(x).data

    # persistence
    def save(self, target: Any, *, overwrite: bool = True) -> str:
        """Save to a directory or a Zarr group (see :func:`save_pipeline`).

        Parameters
        ----------
        target : str, os.PathLike, zarr.Group or zarr store
        overwrite : bool

        Returns
        -------
        str
            The content hash.
        """
        return save_steps(self.steps, target, overwrite=overwrite)

    @classmethod
    def load(cls, source: Any) -> PreprocessingPipeline:
        """Load a pipeline saved with :meth:`save` (checks its content hash).

        Parameters
        ----------
        source : str, os.PathLike, zarr.Group or zarr store

        Returns
        -------
        PreprocessingPipeline
        """
        return cls(load_steps(source))

    @property
    def content_hash(self) -> str:
        """sha256 of the steps' parameters and learned arrays (a version of the pipeline)."""
        return pipeline_state(self.steps)[1]

    def to_dict(self) -> dict:
        """Every step's parameters and learned arrays (stable: used to version features)."""
        return {"steps": [step.to_dict() for step in self.steps]}

    def __repr__(self) -> str:
        inner = ", ".join(repr(s) for s in self.steps)
        return f"PreprocessingPipeline([{inner}])"


def save_pipeline(pipeline: PreprocessingPipeline, target: Any, *,
                  overwrite: bool = True) -> str:
    """Save a fitted pipeline to a directory or a Zarr group; returns its content hash.

    Parameters
    ----------
    pipeline : PreprocessingPipeline
        Fitted; every step registered (:func:`~zounds_xr.learn.register_preprocessor`).
    target : str, os.PathLike, zarr.Group or zarr store
        A directory, or a Zarr group (a path or URL ending in ``.zarr``, a group, a
        store).
    overwrite : bool
        Replace a pipeline saved there before (``False``: ``StoreError``).

    Returns
    -------
    str
        sha256 (hex) of the steps' parameters and learned arrays.

    See Also
    --------
    load_pipeline : The inverse.
    """
    return pipeline.save(target, overwrite=overwrite)


def load_pipeline(source: Any) -> PreprocessingPipeline:
    """Load a pipeline saved by :func:`save_pipeline` (directory or Zarr group).

    Parameters
    ----------
    source : str, os.PathLike, zarr.Group or zarr store

    Returns
    -------
    PreprocessingPipeline
        Fitted, as saved.

    Raises
    ------
    StoreError
        When ``source`` holds no pipeline or its data does not match its content hash.

    See Also
    --------
    save_pipeline : The inverse.
    """
    return PreprocessingPipeline.load(source)
