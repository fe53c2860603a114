"""``Feature``: one node of a document's processing graph, and its version.

A feature is a function applied to the features it ``needs``::

    fft = Feature(zx.fft, needs=windowed, store=True)
    mag = Feature(np.abs, needs=fft)                       # computed on access
    both = Feature(my_func, needs=(fft, mag), scale=2.0)   # my_func(fft, mag, scale=2.0)

The *version* of a feature is a hash of what determines its values: the function's
identity (module + qualified name; for user functions also a hash of their source
code), the parameters (a canonical JSON form: ``SampleRate``/``WindowingFunc``/arrays
/fractions/durations all have a stable form), the storage option ``store_as`` (lossy
storage changes the values) and the versions of the features it needs. Changing any of
these makes the stored feature *stale*; ``Document.update`` recomputes it.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import json
import numbers
import textwrap
from fractions import Fraction
from typing import Any

import numpy as np

from ..core.moved import versioned_module
from ..core.errors import ParameterError

__all__ = ["STORE_AS", "AudioFeature", "Feature", "MetaFeature", "canonical",
           "function_identity", "resolved_params"]

#: storage options: a cast of the float data, or compressed audio in blocks
STORE_AS = (None, "float16", "float32", "float64", "ogg", "flac")

# modules whose functions are identified by name only (their code is versioned by the
# package that ships them); anything else also hashes its source code
_LIBRARY_PREFIXES = ("zounds_xr", "numpy", "scipy", "xarray", "dask", "librosa", "builtins",
                     "math", "operator", "functools", "soxr")


def _qualified(obj) -> str:
    if isinstance(obj, np.ufunc):
        return f"numpy.{obj.__name__}"
    module = getattr(obj, "__module__", None) or type(obj).__module__
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if name is None:
        name = type(obj).__qualname__
    # a moved module keeps its pre-move name: stored features keep their versions
    module = versioned_module(module)
    return f"{module}.{name}"


def _source_hash(obj) -> str | None:
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        if code is None:
            return None
        # no source (e.g. defined in a REPL): hash the bytecode and constants
        payload = code.co_code + repr(code.co_consts).encode() + repr(code.co_names).encode()
        return hashlib.sha256(payload).hexdigest()[:16]
    return hashlib.sha256(textwrap.dedent(source).encode()).hexdigest()[:16]


def function_identity(func) -> dict:
    """Describe ``func`` as JSON that changes when its behaviour may change."""
    if isinstance(func, functools.partial):
        return {"partial": function_identity(func.func),
                "args": canonical(list(func.args)),
                "keywords": canonical(dict(func.keywords))}
    name = _qualified(func)
    ident: dict[str, Any] = {"function": name}
    library = name.split(".", 1)[0] in {p.split(".")[0] for p in _LIBRARY_PREFIXES}
    if inspect.isfunction(func) or inspect.ismethod(func):
        if not library:
            ident["source"] = _source_hash(func)
    elif not (inspect.isbuiltin(func) or isinstance(func, (np.ufunc, type))):
        # a callable object: its class and its state
        cls = type(func)
        ident = {"function": _qualified(cls)}
        if not library:
            ident["source"] = _source_hash(cls)
        state = getattr(func, "__dict__", None)
        if state:
            ident["state"] = canonical(state)
    elif isinstance(func, type) and not library:
        ident["source"] = _source_hash(func)
    return ident


def canonical(value, _depth: int = 0):
    """Return a JSON-safe, deterministic form of a parameter value (for version hashes).

    Raises
    ------
    ParameterError
        When the value has no stable form (e.g. an object whose repr is its address).
    """
    if _depth > 20:
        raise ParameterError("parameter value nests too deeply to be versioned")
    d = _depth + 1
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.timedelta64):
        return {"timedelta64_ns": int(value.astype("timedelta64[ns]").astype(np.int64))}
    if isinstance(value, np.datetime64):
        return {"datetime64": str(value)}
    if isinstance(value, np.generic):
        return canonical(value.item(), d)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, Fraction):
        return {"fraction": str(value)}
    if isinstance(value, float):
        return {"float": repr(value)}
    if isinstance(value, complex):
        return {"complex": repr(value)}
    if isinstance(value, bytes):
        return {"bytes_sha256": hashlib.sha256(value).hexdigest()}
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        if data.dtype != object:
            # numpy's stubs declare ndarray a Buffer only for Python >= 3.12
            digest = hashlib.sha256(data.view(np.uint8)).hexdigest()  # type: ignore[arg-type]
        else:
            digest = hashlib.sha256(repr(data.tolist()).encode()).hexdigest()
        return {"ndarray": str(data.dtype), "shape": list(data.shape), "sha256": digest}
    if isinstance(value, (list, tuple)):
        return [canonical(v, d) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((canonical(v, d) for v in value), key=json.dumps)
    if isinstance(value, dict):
        return {str(k): canonical(v, d)
                for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        try:
            return {"type": _qualified(type(value)), "value": canonical(to_dict(), d)}
        except TypeError:
            pass
    if isinstance(value, Feature):
        raise ParameterError("features go in needs=, not in the parameters")
    if callable(value) and (inspect.isfunction(value) or inspect.isbuiltin(value)
                            or isinstance(value, (np.ufunc, type, functools.partial))):
        return function_identity(value)
    state = getattr(value, "__dict__", None)
    if state is not None:
        return {"type": _qualified(type(value)),
                "state": canonical({k: v for k, v in state.items() if not k.startswith("_")}, d)}
    text = repr(value)
    if " at 0x" in text:
        raise ParameterError(f"parameter {text} has no stable form to version it by")
    return {"type": _qualified(type(value)), "repr": text}


def resolved_params(func, params: dict, inputs: int = 1) -> dict:
    """Complete ``params`` with ``func``'s defaults for the parameters left out.

    Only parameters after its first ``inputs`` positional ones (which receive the
    features it needs) are completed.

    Defaults that have no stable form (objects whose repr is their address) are left
    out; so are functions without an inspectable signature (ufuncs, builtins).
    """
    target = func.func if isinstance(func, functools.partial) else func
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return dict(params)
    out = {}
    positional = 0
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and positional < inputs:
            positional += 1
            continue
        if p.name in params or p.default is p.empty:
            continue
        if isinstance(func, functools.partial) and p.name in func.keywords:
            continue
        try:
            canonical(p.default)
        except ParameterError:
            continue
        out[p.name] = p.default
    out.update(params)
    return out


def version_hash(payload) -> str:
    """Return 16 hex digits of the SHA-256 of a canonical JSON payload."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Feature:
    """A feature of a :class:`~zounds_xr.documents.document.Document`.

    Parameters
    ----------
    func : callable
        ``func(*inputs, **params) -> DataArray``: any transform of zounds_xr, any
        callable on DataArrays (``np.abs``) or a user function. It receives the features
        named in ``needs`` (as DataArrays with a ``time`` axis) in that order.
    needs : Feature or sequence of Feature
        The input feature(s), e.g. ``Document.audio`` or another feature of the class.
    store : bool, default False
        Persist the feature in the document's Zarr group while processing. A feature
        that is not stored is computed lazily on access, from its nearest stored
        ancestors.
    store_as : {None, "float16", "float32", "float64", "ogg", "flac"}, optional
        How to store it: a cast of the values (``"float16"`` halves size and write
        time), or, for audio-rate features, compressed audio in independently decodable
        blocks (``"ogg"``: Ogg Vorbis, lossy; ``"flac"``: 16-bit FLAC) that are decoded
        only for the part that is read.
    **params
        Keyword arguments for ``func``; they are part of the feature's version.

    Raises
    ------
    ParameterError
        When ``func`` is not callable, ``needs`` is missing, is not a Feature or a
        non-empty sequence of Features, or is ``Document.meta``; when ``store`` is not
        a bool or ``store_as`` is not one of the choices above.

    Notes
    -----
    Streaming contract (see :mod:`zounds_xr.documents.streaming`): while a document is
    processed, ``func`` sees consecutive chunks of its inputs, each with the exact
    ``TimeIndex`` of where it lies in the document. ``func`` declares how it streams
    (:mod:`zounds_xr.core.streamable`): ``framing`` (it frames its input like
    ``sliding_window``, e.g. ``stft``; the tail samples a window needs are carried into
    the next chunk), ``stateful`` (``resample``), or ``frame_local`` (output frame ``i``
    depends on input frame ``i`` only), which is what an undeclared function is taken
    to be (and checked). Whole-signal functions (a mean over time, a normalisation by
    the maximum) work for features that are not stored.

    The version hashes the parameters with the function's defaults resolved: a
    feature relying on a default is stale when the default changes.
    """

    #: the role of a root feature ("audio", "meta"); ``None`` for computed features
    root: str | None = None

    def __init__(self, func, needs=None, store: bool = False, store_as: str | None = None,
                 **params):
        if not callable(func):
            raise ParameterError(f"a Feature needs a callable, got {func!r}")
        if needs is None:
            raise ParameterError(
                f"Feature({_qualified(func)}) needs an input: give needs=Document.audio or "
                f"another feature")
        if isinstance(needs, Feature):
            needs = (needs,)
        elif isinstance(needs, (list, tuple)) and needs:
            needs = tuple(needs)
        else:
            raise ParameterError(f"needs must be a Feature or a sequence of Features, "
                                 f"got {needs!r}")
        for need in needs:
            if not isinstance(need, Feature):
                raise ParameterError(f"needs must hold Features, got {need!r}")
            if need.root == "meta":
                raise ParameterError("features cannot need Document.meta: need Document.audio")
        self._init_storage(store, store_as)
        self.func = func
        self.needs = needs
        self.params = dict(params)
        canonical(self.params)  # fail early on parameters that cannot be versioned
        self.name: str | None = None

    def _init_storage(self, store, store_as):
        if not isinstance(store, (bool, np.bool_)):
            raise ParameterError(f"store must be True or False, got {store!r}")
        if store_as not in STORE_AS:
            raise ParameterError(f"store_as must be one of {STORE_AS}, got {store_as!r}")
        self.store = bool(store)
        self.store_as = store_as

    # ---------------------------------------------------------------- descriptor
    def __set_name__(self, owner, name):
        if self.name is None:
            self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        name = owner._names.get(self)  # the class's own features: no call
        return instance._feature(owner._name_of(self) if name is None else name)

    # ---------------------------------------------------------------- identity
    def identity(self) -> dict:
        """Return what this feature's version hashes, besides its upstream versions.

        That is the function, its parameters with the defaults it was declared with
        resolved (so a changed default changes the version), and ``store_as``.
        """
        return {"func": function_identity(self.func),
                "params": canonical(resolved_params(self.func, self.params,
                                                    len(self.needs))),
                "store_as": self.store_as}

    def prepare_store(self, fstore) -> None:
        """Prepare ``fstore`` before documents are written to it; nothing by default.

        A hook called for every stored feature before documents are written to
        ``fstore`` (a :class:`~zounds_xr.FeatureStore`).

        A feature that must leave something in the store beside its frames does it here
        (:class:`~zounds_xr.learn.Learned` saves its model under ``_models/<digest>/``,
        so that a stored embedding can be traced to the model that made it). It may be
        called several times, by several writers at once: it must be idempotent.
        """

    def __repr__(self) -> str:
        needs = ", ".join(str(n.name) for n in self.needs)
        return (f"Feature({_qualified(self.func)}, needs=({needs}), store={self.store}"
                + (f", store_as={self.store_as!r}" if self.store_as else "")
                + "".join(f", {k}={v!r}" for k, v in self.params.items()) + ")")


class AudioFeature(Feature):
    """The root feature ``audio``: the decoded source samples (all channels, float32).

    Not stored by default (the source can be decoded again); declare
    ``audio = AudioFeature(store=True)`` (optionally ``store_as="flac"`` or ``"ogg"``) in
    a document class to keep it in the store.

    Parameters
    ----------
    store : bool, default False
        Persist the decoded audio in the store while processing.
    store_as : {None, "float16", "float32", "float64", "ogg", "flac"}, optional
        How to store it (see :class:`Feature`); ``"ogg"`` and ``"flac"`` keep it as
        compressed audio in independently decodable blocks.

    Raises
    ------
    ParameterError
        When ``store`` is not a bool or ``store_as`` is not one of the choices above.
    """

    root = "audio"

    def __init__(self, store: bool = False, store_as: str | None = None):
        self._init_storage(store, store_as)
        self.func = None
        self.needs = ()
        self.params = {}
        self.name = None

    def identity(self) -> dict:
        """Return what the decoded audio's version hashes (the decoder and ``store_as``)."""
        return {"func": {"function": "zounds_xr.io.decode.stream"}, "params": {},
                "store_as": self.store_as}

    def __repr__(self) -> str:
        return f"AudioFeature(store={self.store}, store_as={self.store_as!r})"


class MetaFeature(Feature):
    """The root feature ``meta``: the source's :class:`AudioMetaData` (always stored)."""

    root = "meta"

    def __init__(self):
        self.store = True
        self.store_as = None
        self.func = None
        self.needs = ()
        self.params = {}
        self.name = None

    def identity(self) -> dict:
        """Return what the metadata's version hashes (the metadata reader)."""
        return {"func": {"function": "zounds_xr.io.metadata.AudioMetaData"}}

    def __repr__(self) -> str:
        return "MetaFeature()"
