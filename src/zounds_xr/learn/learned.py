"""Learned features: a fitted pipeline or a torch module as a feature of a Document.

>>> class Sound(zx.Document):                                      # doctest: +SKIP
...     mel = zx.Feature(zx.mel_spectrogram, needs=zx.Document.audio, store=True)
...     codes = Learned(pipeline, needs=mel, dim="code")            # frame-wise
...     embedding = Learned(encoder, needs=mel, window=16, hop=8,   # one vector a hop
...                         preprocess=normalise)

Frame-wise models map each frame of the input to one vector; window models map each
window of ``window`` frames, every ``hop`` frames, to one vector: output frame ``k``
covers input frames ``[k*hop, k*hop + window)`` and its ``TimeIndex`` says so exactly
(step ``hop`` input frames, extent ``window - 1`` steps plus one input frame). Only
complete windows are embedded: the end of a document is never padded (a document
shorter than one window has no frames).

Provenance. The feature's version hashes a *digest* of what determines its values: the
model's weights (every tensor's bytes) and architecture (the class, the source of each
user-defined module class, the module tree's description), or a pipeline's content hash;
the preprocessing's content hash; the window policy and the output dim. The document
graph adds the upstream versions. Object identity and file paths never enter it, so the
same model gives the same version in any process; a new checkpoint gives a new one and
``update()`` recomputes just that feature. The model is copied when declared: training
the original further does not change what the feature computes. Before documents are
written, the model is saved in the store under ``_models/<digest>/`` (safe persistence,
no pickled code: :mod:`zounds_xr.learn.persist`) and committed to the store's log with
its files' checksums; :func:`model_of` finds the model of any stored embedding, and
reads only the copy the log vouches for, checked.

Batched inference. The function is declared channelwise: ingest stacks short clips
along ``channel`` (see ``Document._write_many``), so the model runs over the frames of
many documents of a part at once, in batches of about ``batch_frames`` frames, under
``torch.inference_mode()``. Every batch has the same number of examples (the last one
is filled with copies of its last example, dropped from the output): rows never
influence each other in evaluation mode, and a fixed batch shape makes torch's CPU
kernels give bitwise the same vector for an example wherever it lies in a batch and
whatever is beside it, so results do not depend on how documents were grouped into
parts, on the number of workers, or on the process. Another ``batch_frames`` changes
the batch shape: equal to float tolerance. Torch's threads are capped as the spectral
kernels' are (one in a dask thread or a pool worker process, see
:func:`zounds_xr.spectral.kernels.set_default_threads`).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import math
import numbers
import re
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from ..core.optional import optional_import
from ..core.validation import positive_int
from ..documents.feature import Feature, canonical, function_identity
from ..documents.store import FeatureStore
from ..documents.streaming import _concat, time_index_of
from ..core.errors import NotFittedError, ParameterError, StoreError
from ..spectral.kernels import n_workers
from ..core.streamable import Streaming
from ..timeseries.durations import to_fraction
from ..timeseries.index import time_coords
from .adapters import PyTorchNetwork
from .persist import load_addressed, model_path, save_addressed
from .pipeline import PreprocessingPipeline

if TYPE_CHECKING:
    import torch
else:
    torch = optional_import("torch")

__all__ = ["Learned", "StoredModel", "load_model", "model_of"]

#: what ``identity()["func"]["function"]`` says of a learned feature
FUNCTION = "zounds_xr.learn.Learned"


# -- digests ------------------------------------------------------------------------------
def _hash(payload) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _weights_digest(module) -> str:
    """sha256 of every parameter and buffer: name, dtype, shape and bytes."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _architecture(module) -> dict:
    """Describe a module's architecture.

    Its tree (``repr``) and the identity (with source, for user classes) of every
    module class in it.
    """
    classes = {}
    for sub in module.modules():
        ident = function_identity(type(sub))
        classes[ident["function"]] = ident
    # an object's default repr in an extra_repr holds its address: not part of what it is
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", repr(module))
    return {"repr": text, "classes": [classes[k] for k in sorted(classes)]}


def _frames(value, name: str):
    """``window``/``hop``: a positive int (frames of the input) or a duration."""
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.timedelta64)):
        return positive_int(value, name)
    seconds = to_fraction(value, name=name)
    if seconds <= 0:
        raise ParameterError(f"{name} must be a positive number of frames or a duration, "
                             f"got {value!r}")
    return seconds


def _in_frames(value, step) -> int:
    """Count the input frames of ``window``/``hop``.

    A duration is rounded up, as the streaming windows of ``sliding_window`` are.
    """
    return value if isinstance(value, int) else max(1, math.ceil(value / step))


@contextlib.contextmanager
def _torch_threads():
    """Cap torch's intra-op threads while a batch runs.

    The cap is what the spectral kernels would use here: one inside a dask thread or a
    pool worker process (their siblings hold the other cores), torch's own setting in
    the main thread. Restored after.
    (Measured on the loaded 2-core machine: a small conv on 128 windows took 2.4 ms on
    one thread, 3.1 ms on two; 6 windows 0.6 ms against 5 ms.)
    """
    previous = torch.get_num_threads()
    wanted = min(previous, n_workers(None))
    if previous == wanted:
        yield
        return
    torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# -- the computation ------------------------------------------------------------------------
class _Apply:
    """Compute a learned feature: a chunk of its input -> its vectors.

    See the module docs. Declared channelwise, frame-local (frame-wise models) or stateful
    (window models: whole windows only, carried across chunks).
    """

    def __init__(self, spec: Learned):
        self.kind, self.model, self.preprocess = spec.kind, spec.model, spec.preprocess
        self.window, self.hop, self.dim = spec.window, spec.hop, spec.dim
        self.batch_frames, self.device = spec.batch_frames, spec.device
        self._placed: Any = None  # the model on its device (per process, not pickled)
        self._widths: dict[tuple, tuple] = {}
        self.__zounds_streaming__ = (
            Streaming("frame_local", channelwise=True) if self.window is None else
            Streaming("stateful", factory=self._windows, channelwise=True))

    def __getstate__(self):
        return {**self.__dict__, "_placed": None}

    def _windows(self):
        return _WindowStream(self)

    # -- layout
    def layout(self, step) -> tuple[int, int] | None:
        """(window, hop) in frames of an input whose frames are ``step`` s apart."""
        if self.window is None:
            return None
        window = _in_frames(self.window, step)
        hop = window if self.hop is None else _in_frames(self.hop, step)
        return window, hop

    def __call__(self, x: xr.DataArray) -> xr.DataArray:
        index = time_index_of(x, "learned")
        layout = self.layout(index.frequency)
        channel = "channel" in x.dims
        rest = [d for d in x.dims if d not in ("time", "channel")]
        order = (["channel"] if channel else []) + ["time"] + rest
        data = np.asarray(x.transpose(*order).data)
        if not channel:
            data = data[np.newaxis]
        n_ch, n_t = data.shape[:2]
        frames = self._preprocessed(data.reshape(n_ch * n_t, *data.shape[2:]))
        frames = frames.reshape(n_ch, n_t, *frames.shape[1:])
        if layout is None:
            items = frames.reshape(n_ch * n_t, *frames.shape[2:])
            k, step, extent = n_t, index.frequency, index.duration
        else:
            window, hop = layout
            k = 0 if n_t < window else 1 + (n_t - window) // hop
            if k:
                views = np.lib.stride_tricks.sliding_window_view(frames, window, axis=1)
                # (channel, k, *features, window) -> (channel * k, window, *features)
                items = np.moveaxis(views[:, :(k - 1) * hop + 1:hop], -1, 2)
                items = items.reshape(n_ch * k, window, *frames.shape[2:])
            else:
                items = np.zeros((0, window, *frames.shape[2:]), frames.dtype)
            step = hop * index.frequency
            extent = (window - 1) * index.frequency + index.duration
        out = self._run(items)
        out = out.reshape(n_ch, k, out.shape[-1])
        if not channel:
            out = out[0]
        else:
            out = np.moveaxis(out, 0, 1)
        dims = ("time", "channel", self.dim) if channel else ("time", self.dim)
        coords = time_coords(k, step, extent, index.start)
        return xr.DataArray(out, dims=dims, coords=coords)

    def _preprocessed(self, rows: np.ndarray) -> np.ndarray:
        if self.preprocess is None:
            return rows.astype(np.float32, copy=False) if self.kind == "torch" else rows
        return self._pipeline(self.preprocess, rows)

    @staticmethod
    def _pipeline(pipeline, rows: np.ndarray) -> np.ndarray:
        dims = ["time"] + [f"_d{i}" for i in range(1, rows.ndim)]
        return np.asarray(pipeline(xr.DataArray(rows, dims=dims)).values)

    # -- batches
    def _batch_size(self, item_shape: tuple) -> int:
        frames = item_shape[0] if self.window is not None and item_shape else 1
        return max(1, self.batch_frames // max(1, frames))

    def _run(self, items: np.ndarray) -> np.ndarray:
        """Run the model over ``items`` in batches of one fixed size: ``(n, width)``."""
        shape = items.shape[1:]
        size = self._batch_size(shape)
        n = items.shape[0]
        if n == 0:
            width, dtype = self._width(shape, items.dtype, size)
            return np.empty((0, width), dtype)
        outs = []
        for start in range(0, n, size):
            batch = items[start:start + size]
            m = batch.shape[0]
            if m < size:  # a full batch: copies of its last example, dropped below
                batch = np.concatenate([batch, np.repeat(batch[-1:], size - m, axis=0)])
            outs.append(self._forward(np.ascontiguousarray(batch))[:m])
        return np.concatenate(outs) if len(outs) > 1 else outs[0]

    def _width(self, shape: tuple, dtype, size: int) -> tuple[int, np.dtype]:
        """Output width and dtype for items of ``shape`` (a probe batch, once)."""
        key = (shape, np.dtype(dtype).str)
        if key not in self._widths:
            with np.errstate(all="ignore"):
                out = self._forward(np.zeros((size, *shape), dtype))
            self._widths[key] = (out.shape[1], out.dtype)
        return self._widths[key]

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        try:
            if self.kind == "pipeline":
                out = self._pipeline(self.model, batch)
            else:
                out = self._torch(batch)
        except (ParameterError, StoreError):
            raise
        except Exception as exc:
            raise ParameterError(
                f"learned feature: the model failed on a batch of shape {batch.shape} "
                f"({type(exc).__name__}: {exc}); frame-wise models get (batch, *features), "
                f"window models (batch, window, *features)") from exc
        if out.ndim == 0 or out.shape[0] != batch.shape[0]:
            raise ParameterError(f"learned feature: the model made {out.shape} of a batch of "
                                 f"{batch.shape}: one output per example expected")
        return out.reshape(out.shape[0], -1)

    def _torch(self, batch: np.ndarray) -> np.ndarray:
        if self._placed is None:
            device = torch.device(self.device)
            if device.type == "cuda" and not torch.cuda.is_available():
                raise ParameterError(f"learned feature: device {self.device!r} was asked "
                                     f"for, but torch sees no CUDA device here")
            self._placed = self.model if device.type == "cpu" else \
                copy.deepcopy(self.model).to(device)
        with _torch_threads(), torch.inference_mode():
            x = torch.from_numpy(batch.astype(np.float32, copy=False)).to(self.device)
            y = self._placed(x)
            if not isinstance(y, torch.Tensor):
                raise ParameterError(f"learned feature: the model returned "
                                     f"{type(y).__name__}, a tensor expected")
            return y.detach().to("cpu", torch.float32).numpy()


class _WindowStream:
    """Stream a window model.

    It emits the complete windows of what has arrived and keeps the input from the
    next window's start on; it never pads the end.
    """

    def __init__(self, apply: _Apply):
        self.apply = apply
        self.buffer: xr.DataArray | None = None
        self.skip = 0  # frames still to drop before the next window (hop > window)
        self.emitted = False

    def push(self, chunk: xr.DataArray) -> xr.DataArray | None:
        if self.skip:  # (the buffer is empty then)
            dropped = min(self.skip, chunk.sizes["time"])
            self.skip -= dropped
            if self.skip:  # the whole chunk lies before the next window
                return None
            chunk = chunk.isel(time=slice(dropped, None))
        data = chunk if self.buffer is None else _concat([self.buffer, chunk])
        layout = self.apply.layout(time_index_of(data, "learned").frequency)
        assert layout is not None  # only window models stream this way
        window, hop = layout
        n = data.sizes["time"]
        if n < window:
            self.buffer = data
            return None
        k = 1 + (n - window) // hop
        out = self.apply(data.isel(time=slice(0, (k - 1) * hop + window)))
        # the next window starts at frame k * hop: keep what is there, or skip to it
        self.buffer = data.isel(time=slice(k * hop, None)) if k * hop < n else None
        self.skip = max(0, k * hop - n)
        self.emitted = True
        return out

    def flush(self) -> xr.DataArray | None:
        if self.emitted or self.buffer is None:
            return None
        # shorter than one window: no frames, but the stored feature exists (empty)
        self.emitted = True
        return self.apply(self.buffer)


# -- the feature ------------------------------------------------------------------------------
class Learned(Feature):
    """A trained model as a feature of a :class:`~zounds_xr.Document`.

    It is stored and versioned by what it is (see the module docs).

    Parameters
    ----------
    model : PreprocessingPipeline or torch.nn.Module
        A fitted pipeline (its steps registered: it is saved without pickled code), or
        a module. A module must be re-creatable by name: a module-level class built
        from JSON-safe keyword arguments (``model_kwargs=``, or its ``init_kwargs``
        attribute). It gets a float32 tensor ``(batch, *features)`` (frame-wise) or
        ``(batch, window, *features)`` (window models; time before the features, as
        in the stored arrays) and returns one vector (any shape, flattened) per
        example. It runs in evaluation mode, on a copy taken now.
    needs : Feature
        The input feature (e.g. a stored mel spectrogram).
    store : bool, default True
    window : int or duration, optional
        Frames per window (a duration is rounded up to whole input frames); ``None``:
        a frame-wise model.
    hop : int or duration, optional
        Step between windows (default ``window``); only with ``window``.
    batch_frames : int > 0, default 1024
        Input frames per batch (a window model's batches hold ``batch_frames // window``
        windows). Results do not depend on how documents fill batches; another
        ``batch_frames`` agrees to float tolerance.
    preprocess : PreprocessingPipeline, optional
        A fitted pipeline applied to the input frames before a torch ``model`` (e.g.
        log, mean/std normalisation); part of the version.
    dim : str, default "embedding"
        The name of the output's vector dim (``"code"`` for codebooks, hashes).
    device : str, default "cpu"
        Where the torch model runs (``"cuda"``, ``"cuda:1"``...); not part of the
        version (results agree to float tolerance).
    model_kwargs : dict, optional
        The constructor arguments of ``model``'s class (default its ``init_kwargs``).
    store_as : {None, "float16", "float32", "float64"}, optional

    Attributes
    ----------
    digest : str
        The content digest of model, preprocessing and window policy: the store keeps
        the model under ``_models/<digest>/``.
    kind : {"pipeline", "torch"}

    Raises
    ------
    ParameterError
        For a model of another type, a module that cannot be saved and re-created, bad
        window/hop/batch_frames/dim/device, or more than one input.
    NotFittedError
        For a pipeline (or ``preprocess``) that is not fitted.

    See Also
    --------
    model_of : the model that made a stored feature.
    zounds_xr.learn.PreprocessingPipeline, zounds_xr.learn.PyTorchNetwork

    Examples
    --------
    >>> import numpy as np, zounds_xr as zx
    >>> from zounds_xr.learn import KMeans, Learned, Log, PreprocessingPipeline
    >>> @zx.simple_in_memory_settings
    ... class Sound(zx.Document):
    ...     mel = zx.Feature(zx.mel_spectrogram, needs=zx.Document.audio, n_mels=16,
    ...                      store=True)
    >>> t = np.arange(11025) / 11025
    >>> tone = zx.AudioSamples(np.sin(2 * np.pi * 440 * t * (1 + t)).astype("f4"),
    ...                        zx.SR11025())
    >>> mel = Sound(Sound.process(meta=tone.zx.encode())).mel
    >>> codebook = PreprocessingPipeline([Log(), KMeans(centroids=4)]).fit(mel)
    >>> @zx.simple_in_memory_settings
    ... class Coded(Sound):
    ...     codes = Learned(codebook, needs=Sound.mel, dim="code")
    >>> doc = Coded(Coded.process(meta=tone.zx.encode()))
    >>> doc.codes.dims, doc.codes.sizes["time"] == doc.mel.sizes["time"]
    (('time', 'code'), True)
    >>> "codes.version" in Coded.catalog()
    True
    """

    def __init__(self, model, needs=None, store: bool = True, window=None, hop=None,
                 batch_frames: int = 1024, *, preprocess=None, dim: str = "embedding",
                 device: str = "cpu", model_kwargs: dict | None = None,
                 store_as: str | None = None):
        self.window = _frames(window, "window")
        self.hop = _frames(hop, "hop")
        if self.hop is not None and self.window is None:
            raise ParameterError("hop= needs window=: a frame-wise model has no hop")
        self.batch_frames = positive_int(batch_frames, "batch_frames")
        if not isinstance(dim, str) or not dim or dim in ("time", "channel"):
            raise ParameterError(f"dim must name the output's vector dim (not 'time' or "
                                 f"'channel'), got {dim!r}")
        self.dim = dim
        try:
            self.device = str(torch.device(device))
        except (RuntimeError, TypeError) as exc:
            raise ParameterError(f"device={device!r} is not a torch device: {exc}") from None
        (self.kind, self.model, self.preprocess, self._steps, self.description,
         self.digest) = _described(model, preprocess, self.window, self.hop, dim,
                                   model_kwargs)
        super().__init__(_Apply(self), needs=needs, store=store, store_as=store_as)
        if len(self.needs) != 1:
            raise ParameterError(f"a learned feature has one input, got {len(self.needs)}")
        if store_as in ("ogg", "flac"):
            raise ParameterError(f"store_as={store_as!r} is for audio, not learned vectors")

    def identity(self) -> dict:
        """Return what the feature's version hashes besides its input's.

        Returns
        -------
        dict
            The model's digest (weights, architecture, preprocessing, window policy)
            and the storage option.
        """
        return {"func": {"function": FUNCTION, "model": self.digest, "kind": self.kind},
                "params": canonical({"window": self.window, "hop": self.hop,
                                     "dim": self.dim}),
                "store_as": self.store_as}

    def prepare_store(self, fstore) -> None:
        """Save the model under ``_models/<digest>/`` of ``fstore`` and commit it.

        Nothing is written when the store's log vouches for it already.

        Parameters
        ----------
        fstore : FeatureStore
            The writable store the feature is computed into.
        """
        description = {**self.description, "digest": self.digest}
        fstore.save_model(self.digest, lambda zstore, path: save_addressed(
            self._steps, zstore, path, description))

    def __repr__(self) -> str:
        policy = "" if self.window is None else f", window={self.window!r}, hop={self.hop!r}"
        return (f"Learned({self.kind}, needs=({self.needs[0].name}), store={self.store}"
                f"{policy}, dim={self.dim!r}, digest={self.digest[:12]!r})")


def _described(model, preprocess, window, hop, dim: str, model_kwargs) -> tuple:
    """``(kind, model copy, preprocess copy, steps to save, description, digest)``."""
    preprocess = _fitted(preprocess, "preprocess") if preprocess is not None else None
    if isinstance(model, PreprocessingPipeline):
        if preprocess is not None:
            raise ParameterError("a pipeline model is its own preprocessing: put the "
                                 "steps of preprocess= in the pipeline")
        kind = "pipeline"
        model = _fitted(model, "model")
        steps = list(model.steps)
        model_part: dict = {"pipeline": model.content_hash}
    elif isinstance(model, torch.nn.Module):
        kind = "torch"
        model = copy.deepcopy(model).cpu().eval().requires_grad_(False)
        steps = [*(preprocess.steps if preprocess else []), _savable(model, model_kwargs)]
        model_part = {"weights": _weights_digest(model), "architecture": _architecture(model)}
    else:
        raise ParameterError(f"Learned needs a fitted PreprocessingPipeline or a "
                             f"torch.nn.Module, got {type(model).__name__}")
    description = {"kind": kind, "window": canonical(window), "hop": canonical(hop),
                   "dim": dim, "n_preprocess": len(steps) - 1 if kind == "torch" else 0}
    digest = _hash({"model": model_part, "description": description,
                    "preprocess": preprocess.content_hash if preprocess else None})[:32]
    return kind, model, preprocess, steps, description, digest


def _fitted(pipeline, name: str) -> PreprocessingPipeline:
    if not isinstance(pipeline, PreprocessingPipeline):
        raise ParameterError(f"{name} must be a PreprocessingPipeline, got "
                             f"{type(pipeline).__name__}")
    if not pipeline.fitted:
        raise NotFittedError(f"{name}: the pipeline must be fitted before it is a feature")
    pipeline = copy.deepcopy(pipeline)
    pipeline.content_hash  # noqa: B018  (raises ParameterError when it cannot be saved)
    return pipeline


def _savable(module, kwargs: dict | None) -> PyTorchNetwork:
    """Wrap the module as a pipeline step that saves it by name.

    It is checked re-creatable: its class built from ``kwargs`` has the same
    parameters and buffers.
    """
    network = PyTorchNetwork(module, network_kwargs=kwargs)
    config = network.get_config()  # ParameterError for a class defined in a function
    cls = type(module)
    try:
        fresh = cls(**config["network"]["kwargs"])
    except Exception as exc:
        raise ParameterError(
            f"{cls.__qualname__}(**{config['network']['kwargs']!r}) cannot be built "
            f"({type(exc).__name__}: {exc}): give model_kwargs= (or an init_kwargs "
            f"attribute) so that the model can be re-created from the store") from None
    ours = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in fresh.state_dict().items()}
    if ours != theirs:
        raise ParameterError(
            f"{cls.__qualname__}(**{config['network']['kwargs']!r}) does not re-create the "
            f"model (its parameters differ): give model_kwargs= with the constructor "
            f"arguments, or wrap the layers in a module-level nn.Module class")
    return network


# -- tracing stored features to their models ------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StoredModel:
    """A learned feature's model as saved in a store.

    What :func:`load_model` and :func:`model_of` return.

    Parameters
    ----------
    digest : str
        The feature's model digest (``Learned.digest``).
    kind : {"pipeline", "torch"}
    model : PreprocessingPipeline or torch.nn.Module
    preprocess : PreprocessingPipeline or None
        A torch model's preprocessing.
    window, hop : int, Fraction or None
        The window policy (frames, or seconds as a Fraction).
    dim : str
        The output's vector dim.
    model_kwargs : dict or None
        A torch model's constructor arguments.
    """

    digest: str
    kind: str
    model: Any
    preprocess: Any
    window: Any
    hop: Any
    dim: str
    model_kwargs: Any = None

    def learned(self, needs, **kwargs) -> Learned:
        """Make the feature again (same digest), computed from ``needs``.

        Parameters
        ----------
        needs : Feature
            The input feature (the one the model was made for, or its equal).
        **kwargs
            Further :class:`Learned` arguments: ``store``, ``store_as``,
            ``batch_frames``, ``device``... (a torch model's ``model_kwargs`` default to
            the saved ones).

        Returns
        -------
        Learned
            A feature of this model's digest.

        Raises
        ------
        ParameterError
            When an argument is invalid (as :class:`Learned` raises it).
        """
        if self.kind == "torch":
            kwargs.setdefault("model_kwargs", self.model_kwargs)
        return Learned(self.model, needs=needs, window=self.window, hop=self.hop,
                       preprocess=self.preprocess, dim=self.dim, **kwargs)


def _fstore(store) -> FeatureStore:
    if isinstance(store, FeatureStore):
        return store
    store_for = getattr(store, "_store_for", None)
    if callable(store_for):  # a Document class
        return store_for(None)
    return FeatureStore(store, read_only=True)


def _policy(value):
    if isinstance(value, dict) and "fraction" in value:
        return Fraction(value["fraction"])
    return value


def load_model(store, digest: str) -> StoredModel:
    """Load the model saved under ``_models/<digest>/`` of a store.

    Parameters
    ----------
    store : FeatureStore, Document class, str or os.PathLike
        The store (a Document class's own; a path or URL is opened read-only).
    digest : str
        A learned feature's digest (``Learned.digest``; recorded by every stored array
        of the feature).

    Returns
    -------
    StoredModel

    Raises
    ------
    StoreError
        When the store's log commits no such model, a file of its committed copy is
        missing or does not match the log's record, its data does not match its
        content hash, or it does not re-create a model of that digest (e.g. the
        module's class has changed since).
    """
    fstore = _fstore(store)
    with fstore.reaching("read"):
        copy = fstore.model_copy(digest)  # the copy the log vouches for, checked
    try:
        steps, description = load_addressed(copy)
    except StoreError as exc:
        raise StoreError(f"the model {model_path(digest)!r} of {fstore.url!r}: "
                         f"{exc}") from exc
    kind = description.get("kind")
    kwargs = None
    if kind == "torch":
        k = int(description.get("n_preprocess", 0))
        preprocess = PreprocessingPipeline(steps[:k]) if k else None
        model, kwargs = steps[k].network, steps[k].network_kwargs
    else:
        preprocess, model = None, PreprocessingPipeline(steps)
    found = StoredModel(digest, str(kind), model, preprocess, _policy(description.get("window")),
                        _policy(description.get("hop")), str(description.get("dim")), kwargs)
    check = _described(model, preprocess, found.window, found.hop, found.dim, kwargs)[-1]
    if check != digest:
        raise StoreError(f"the model saved under _models/{digest} of {fstore.url!r} "
                         f"re-creates a model of digest {check}: its class or its "
                         f"preprocessing changed since it was saved")
    return found


def model_of(store, doc_id: str, feature: str) -> StoredModel:
    """Load the model that made a stored feature of a document.

    Parameters
    ----------
    store : FeatureStore, Document class, str or os.PathLike
        The store (a Document class's own; a path or URL is opened read-only).
    doc_id : str
        The document's id in that store.
    feature : str
        A stored learned feature's name.

    Returns
    -------
    StoredModel

    Raises
    ------
    DocumentNotFoundError
        When there is no such document.
    StoreError
        When the document does not store ``feature``, or it is not a learned feature.
    """
    fstore = _fstore(store)
    row = fstore.row(doc_id)
    path = row.get(f"{feature}.array")
    if not isinstance(path, str):
        raise StoreError(f"document {doc_id!r} of {fstore.url!r} stores no feature "
                         f"{feature!r}")
    info = fstore.reader.group_info(path.rsplit("/", 1)[0])["info"]
    function = info.get("function") or {}
    if function.get("function") != FUNCTION:
        raise StoreError(f"feature {feature!r} of {fstore.url!r} is not a learned feature "
                         f"(made by {function.get('function')!r})")
    return load_model(fstore, function["model"])
