"""Learned preprocessing pipelines over a corpus of features (every public name).

This module gathers the names of three modules, where they are defined:
:mod:`~zounds_xr.learn.pipeline` (the framework: ``Preprocessor``,
``PreprocessingPipeline``, ``PreprocessResult``), :mod:`~zounds_xr.learn.steps` (the
steps) and :mod:`~zounds_xr.learn.adapters` (scikit-learn and torch models); the
registry is in :mod:`~zounds_xr.learn.persist` and the errors in :mod:`zounds_xr.core.errors`.

How a pipeline is fitted on a corpus (streamed, block by block) and what
``transform`` keeps of the input's labels is described in :mod:`~zounds_xr.learn.pipeline`.

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

from ..core.errors import NotFittedError, NotInvertibleError
from .adapters import PyTorchNetwork, SklearnModel
from .persist import preprocessor_class, register_preprocessor
from .pipeline import (
    DEFAULT_BLOCK_ROWS,
    PreprocessingPipeline,
    Preprocessor,
    PreprocessResult,
    _as_dataarray,
)
from .steps import (
    Binarize,
    InstanceScaling,
    KMeans,
    Log,
    MeanStdNormalization,
    Multiply,
    Reshape,
    Slicer,
    UnitNorm,
)

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
    "DEFAULT_BLOCK_ROWS",
    "_as_dataarray",  # used by learn.sampling
]
