"""Learning on corpora of features (needs the ``[learn]`` extra).

Torch modules, preprocessing pipelines, trainers, sampling, hashing and search; the
``[learn]`` extra installs torch and scikit-learn.

Modules (``torch.nn.Module``; CPU and CUDA)
    FilterBank, SincLayer, PerceptualLoss (pure functions in ``learn.functional``)
Preprocessing pipelines
    PreprocessingPipeline, Preprocessor, PreprocessResult, MeanStdNormalization, UnitNorm,
    Log, Multiply, Slicer, Reshape, InstanceScaling, KMeans, SklearnModel, PyTorchNetwork,
    Binarize, register_preprocessor (``learn.pipeline``, ``learn.steps``,
    ``learn.adapters``; all gathered in ``learn.preprocess``); persistence:
    save_pipeline, load_pipeline
Sampling and training data
    ShuffledSamples; FeatureWindows, RandomWindows (torch datasets of windows over a
    store), collate, BucketBatchSampler
Trainers
    SupervisedTrainer, TripletEmbeddingTrainer, WassersteinGanTrainer
Hashing and search
    SimHash, HammingIndex, SearchResult
Learned features (``learn.learned``)
    Learned (a fitted pipeline or torch module as a stored, versioned document feature),
    load_model, model_of, StoredModel (the model of a stored feature, from the store)
"""
from ..core.optional import optional_import

optional_import("torch")  # a clear install hint when the [learn] extra is missing

from . import functional  # noqa: E402
from .hashing import HammingIndex, SearchResult, SimHash, hamming_distance, pack_bits, unpack_bits  # noqa: E402,E501
from .learned import Learned, StoredModel, load_model, model_of  # noqa: E402
from .modules import FilterBank, PerceptualLoss, SincLayer  # noqa: E402
from ..core.errors import NotFittedError, NotInvertibleError  # noqa: E402
from .pipeline import load_pipeline, save_pipeline  # noqa: E402
from .preprocess import (  # noqa: E402  (the steps, gathered from pipeline/steps/adapters)
    Binarize,
    InstanceScaling,
    KMeans,
    Log,
    MeanStdNormalization,
    Multiply,
    PreprocessingPipeline,
    Preprocessor,
    PreprocessResult,
    PyTorchNetwork,
    Reshape,
    SklearnModel,
    Slicer,
    UnitNorm,
    register_preprocessor,
)
from .sampling import ShuffledSamples  # noqa: E402
from .trainers import (  # noqa: E402
    SupervisedTrainer,
    Trainer,
    TripletEmbeddingTrainer,
    WassersteinGanTrainer,
)
from .windows import BucketBatchSampler, FeatureWindows, RandomWindows, collate  # noqa: E402

__all__ = [
    "functional",
    "FilterBank", "SincLayer", "PerceptualLoss",
    "PreprocessingPipeline", "Preprocessor", "PreprocessResult", "MeanStdNormalization",
    "UnitNorm", "Log", "Multiply", "Slicer", "Reshape", "InstanceScaling", "KMeans",
    "SklearnModel", "PyTorchNetwork", "Binarize", "register_preprocessor",
    "NotFittedError", "NotInvertibleError", "save_pipeline", "load_pipeline",
    "ShuffledSamples", "FeatureWindows", "RandomWindows", "collate", "BucketBatchSampler",
    "Trainer", "SupervisedTrainer", "TripletEmbeddingTrainer", "WassersteinGanTrainer",
    "SimHash", "HammingIndex", "SearchResult", "pack_bits", "unpack_bits", "hamming_distance",
    "Learned", "StoredModel", "load_model", "model_of",
]
