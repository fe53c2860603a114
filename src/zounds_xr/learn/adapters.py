"""Steps that wrap other libraries' models: scikit-learn estimators and torch networks.

Both are saved as their import path, JSON-safe constructor parameters and learned
arrays (never pickled), and re-imported by name when a pipeline is loaded.
"""
from __future__ import annotations

import importlib
import json
from typing import Any, TYPE_CHECKING

import numpy as np

from ..core.optional import optional_import
from ..core.errors import ParameterError
from .persist import register_preprocessor
from .pipeline import Preprocessor, _as_dataarray, _feature_dims, _flat, _Labels, _map_rows

if TYPE_CHECKING:  # type checkers read torch; at run time it is imported with a hint
    import torch
else:
    torch = optional_import("torch")

__all__ = ["SklearnModel", "PyTorchNetwork"]


def _json_safe(value: Any, name: str) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name}={value!r} is not JSON-serialisable and cannot be saved") \
            from None
    return value


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

    Parameters
    ----------
    model : sklearn estimator
        Has ``fit`` and ``transform`` (``inverse_transform`` makes the step invertible);
        a module-level class with JSON-safe parameters, to be saved.
    needs : object, optional
        Accepted for compatibility with zounds' graph syntax and ignored.

    Raises
    ------
    ParameterError
        When ``model`` has no ``fit`` and ``transform``.

    See Also
    --------
    PyTorchNetwork : The same for a torch module.
    """

    learns = True

    def __init__(self, model, needs=None):
        super().__init__(needs)
        if not (hasattr(model, "fit") and hasattr(model, "transform")):
            raise ParameterError(f"model must be a scikit-learn transformer, got {model!r}")
        self.model = model
        self.feature_shape = None
        self.invertible = hasattr(model, "inverse_transform")

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
        """JSON-safe constructor parameters, for saving."""
        module, qualname = _import_path(self.model)
        params = _json_safe(self.model.get_params(deep=False), "model parameters")
        return {"model": {"module": module, "qualname": qualname, "params": params}}

    def get_arrays(self):
        """Fitted arrays, for saving."""
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
        """Rebuild from :meth:`get_config` and :meth:`get_arrays` output."""
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
    needs : object, optional
        Accepted for compatibility with zounds' graph syntax and ignored.
    """

    invertible = False

    def __init__(self, network, trainer=None, post_training_func=None, training_set_prep=None,
                 chunksize=1024, network_kwargs=None, device="cpu", needs=None):
        self.trainer = trainer
        self.learns = trainer is not None  # before the base class reads it
        super().__init__(needs)
        self.network = network
        self.post_training_func = post_training_func
        self.training_set_prep = training_set_prep
        self.chunksize = int(chunksize)
        self.network_kwargs = (dict(network_kwargs) if network_kwargs is not None
                               else dict(getattr(network, "init_kwargs", {}) or {}))
        self.device = device
        self._fitted = trainer is None

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
        """JSON-safe constructor parameters, for saving."""
        module, qualname = _import_path(self.network)
        kwargs = _json_safe(self.network_kwargs, "network_kwargs")
        return {"network": {"module": module, "qualname": qualname, "kwargs": kwargs},
                "chunksize": self.chunksize}

    def get_arrays(self):
        """Fitted arrays, for saving."""
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
        """Rebuild from :meth:`get_config` and :meth:`get_arrays` output."""
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
