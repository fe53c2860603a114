"""Saving and loading fitted pipelines without pickled bytecode.

A pipeline is stored as a *manifest* (JSON: format name and version, the zounds_xr
version, a content hash, and per step its registered class name, module and JSON
constructor parameters) plus the steps' learned arrays (numpy arrays; a torch module's
``state_dict`` tensors as arrays). Classes are found again through the preprocessor
registry (and, for :class:`~zounds_xr.learn.PyTorchNetwork` /
:class:`~zounds_xr.learn.SklearnModel`, the module's import path), never unpickled.

Two layouts:

- a directory: ``pipeline.json`` + ``arrays/<step>/<n>.npy``;
- a Zarr group (a ``zarr.Group``, a store, or a path or URL ending in ``.zarr``):
  the manifest in the group attribute ``"zounds_xr:pipeline"``, the arrays as zarr
  arrays ``step_<i>/a<n>``.

Content-addressed models (:func:`save_addressed`, :func:`load_addressed`): the steps of
a learned feature's model saved in a feature store under
``<root>/_models/<digest>/<copy>/`` (a Zarr group of the layout above, plus a
description in the attribute ``"zounds_xr:model"``). The store's commit log vouches for
one copy per digest and records its files
(:meth:`~zounds_xr.documents.store.FeatureStore.save_model`); a reader loads only that
copy, its files checked, and finds the model of any stored embedding by the digest its
feature records.

The content hash (sha256 of the steps' parameters and array bytes) is checked on load:
a mismatch raises :class:`~zounds_xr.StoreError`.

This module is the bottom of :mod:`zounds_xr.learn`'s pipelines: it holds the registry
of step classes (:func:`register_preprocessor`) and reads and writes *steps*; the
pipeline class (:mod:`zounds_xr.learn.pipeline`) builds on it, so that nothing here
imports the pipeline back.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from typing import Any, Literal, TypeVar

import numpy as np
import zarr

from .._version import __version__
from ..documents.log import MODELS, model_path  # their home: the store's log
from ..core.errors import ParameterError, StoreError

__all__ = ["register_preprocessor", "preprocessor_class", "pipeline_state", "save_steps",
           "load_steps", "save_addressed", "load_addressed", "model_path", "FORMAT",
           "FORMAT_VERSION", "MODELS"]

FORMAT = "zounds_xr.PreprocessingPipeline"
FORMAT_VERSION = 1
ATTRS_KEY = "zounds_xr:pipeline"
MANIFEST = "pipeline.json"
#: the attribute describing a saved model
MODEL_KEY = "zounds_xr:model"


# -- registry (persistence looks classes up by name, never unpickles) ---------------------
_REGISTRY: dict[str, type] = {}

C = TypeVar("C", bound=type)


def register_preprocessor(cls: C) -> C:
    """Class decorator: make a :class:`Preprocessor` subclass loadable by name.

    Saved pipelines record each step's registered name and module; loading imports that
    module (by name) and looks the class up here, so no bytecode is ever unpickled.

    Parameters
    ----------
    cls : type
        A :class:`~zounds_xr.learn.Preprocessor` subclass; its ``registry_name``
        attribute (default: the class name) is the name it is saved under.

    Returns
    -------
    type
        ``cls`` itself.

    Raises
    ------
    ParameterError
        When another class is registered under the same name.
    """
    name = getattr(cls, "registry_name", None) or cls.__name__
    other = _REGISTRY.get(name)
    if other is not None and other is not cls and (other.__module__, other.__qualname__) != (
            cls.__module__, cls.__qualname__):
        raise ParameterError(f"a preprocessor named {name!r} is already registered ({other!r})")
    target: Any = cls  # registry_name is a class attribute of every Preprocessor
    target.registry_name = name
    _REGISTRY[name] = cls
    return cls


def preprocessor_class(name: str, module: str | None = None) -> type:
    """Return the registered preprocessor class ``name`` (importing ``module`` first if needed).

    Parameters
    ----------
    name : str
        The registered name.
    module : str, optional
        The module defining the class, imported by name when the class is not
        registered yet.

    Returns
    -------
    type

    Raises
    ------
    ParameterError
        When no class is registered under ``name``.
    """
    if name not in _REGISTRY and module:
        importlib.import_module(module)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ParameterError(f"no preprocessor registered under the name {name!r}") from None


def _digest(steps: list[dict], arrays: list[dict[str, np.ndarray]]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(steps, sort_keys=True, separators=(",", ":")).encode())
    for step_arrays in arrays:
        for key in sorted(step_arrays):
            a = np.ascontiguousarray(step_arrays[key])
            h.update(json.dumps([key, a.dtype.str, list(a.shape)]).encode())
            h.update(a.tobytes())
    return h.hexdigest()


def pipeline_state(steps: Iterable[Any]) -> tuple[list[dict], str, list[dict[str, np.ndarray]]]:
    """``(step descriptions, content hash, arrays per step)`` of fitted steps.

    Parameters
    ----------
    steps : iterable of Preprocessor
        Fitted, registered steps (a pipeline's ``steps``).

    Returns
    -------
    descriptions : list of dict
        Per step ``{"type", "module", "config"}`` (JSON-safe).
    content_hash : str
        sha256 (hex) of the descriptions and the arrays' dtypes, shapes and bytes.
    arrays : list of dict
        Per step, the learned arrays by name.

    Raises
    ------
    ParameterError
        For a step that is not fitted, not registered, or not JSON-safe.
    """
    descriptions: list[dict] = []
    arrays: list[dict[str, np.ndarray]] = []
    step: Any
    for i, step in enumerate(steps):
        if not step.fitted:
            raise ParameterError(f"step {i} ({type(step).__name__}) is not fitted")
        name = step.registry_name or type(step).__name__
        kind = type(step)
        if preprocessor_class(name) is not kind:
            raise ParameterError(f"{type(step).__name__} is not registered: decorate it with "
                                 "@register_preprocessor")
        config = step.get_config()
        try:
            json.dumps(config)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"parameters of step {i} are not JSON-safe: {exc}") from None
        step_arrays = {k: np.asarray(v) for k, v in step.get_arrays().items() if v is not None}
        for k, v in step_arrays.items():
            if v.dtype == object:
                raise ParameterError(f"array {k!r} of step {i} has dtype object")
        descriptions.append({"type": name, "module": type(step).__module__, "config": config})
        arrays.append(step_arrays)
    return descriptions, _digest(descriptions, arrays), arrays


def _is_zarr_target(target) -> bool:
    if isinstance(target, (str, os.PathLike)):
        return os.fspath(target).rstrip("/").endswith(".zarr")
    return True  # a zarr Group or store object


def _open_group(target: Any, mode: Literal["r", "w"]) -> Any:
    if isinstance(target, zarr.Group):
        return target
    if isinstance(target, os.PathLike):
        target = os.fspath(target)
    return zarr.open_group(target, mode=mode, zarr_format=3) if mode == "w" else \
        zarr.open_group(target, mode=mode)


def save_steps(steps: Sequence[Any], target: Any, *, overwrite: bool = True) -> str:
    """Save fitted steps to a directory or a Zarr group (see the module docstring).

    Parameters
    ----------
    steps : sequence of Preprocessor
        Fitted, registered steps.
    target : str, os.PathLike, zarr.Group or zarr store
        A directory, or a Zarr group (a path or URL ending in ``.zarr``, a group or a
        store).
    overwrite : bool
        Replace a pipeline already saved there; ``False`` raises ``StoreError``.

    Returns
    -------
    str
        The content hash (see :func:`pipeline_state`).
    """
    descriptions, digest, arrays = pipeline_state(steps)
    manifest_steps: list[dict[str, Any]] = []
    manifest: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION,
                                "zounds_xr_version": __version__, "content_hash": digest,
                                "steps": manifest_steps}
    if _is_zarr_target(target):
        if isinstance(target, zarr.Group):
            group = target
            if not overwrite and ATTRS_KEY in group.attrs:
                raise StoreError(f"{group} already holds a pipeline")
            for name in list(group.keys()):
                if name.startswith("step_"):
                    del group[name]
        else:
            if not overwrite:
                try:
                    existing = _open_group(target, "r")
                    if ATTRS_KEY in existing.attrs:
                        raise StoreError(f"{target} already holds a pipeline")
                except (FileNotFoundError, zarr.errors.GroupNotFoundError):
                    pass
            group = _open_group(target, "w")
        for i, (step, step_arrays) in enumerate(zip(descriptions, arrays, strict=True)):
            sub = group.create_group(f"step_{i}", overwrite=True)
            names = {}
            for n, key in enumerate(sorted(step_arrays)):
                a = np.ascontiguousarray(step_arrays[key])
                sub.create_array(f"a{n}", shape=a.shape, dtype=a.dtype, overwrite=True)[...] = a
                names[key] = f"step_{i}/a{n}"
            manifest_steps.append({**step, "arrays": names})
        group.attrs[ATTRS_KEY] = manifest  # written last: a partial save is not loadable
        return digest
    path = os.fspath(target)
    if os.path.exists(os.path.join(path, MANIFEST)):
        if not overwrite:
            raise StoreError(f"{path} already holds a pipeline")
        os.remove(os.path.join(path, MANIFEST))
        shutil.rmtree(os.path.join(path, "arrays"), ignore_errors=True)
    os.makedirs(os.path.join(path, "arrays"), exist_ok=True)
    for i, (step, step_arrays) in enumerate(zip(descriptions, arrays, strict=True)):
        os.makedirs(os.path.join(path, "arrays", str(i)), exist_ok=True)
        names = {}
        for n, key in enumerate(sorted(step_arrays)):
            rel = f"arrays/{i}/{n}.npy"
            np.save(os.path.join(path, rel), np.ascontiguousarray(step_arrays[key]),
                    allow_pickle=False)
            names[key] = rel
        manifest_steps.append({**step, "arrays": names})
    tmp = os.path.join(path, MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, os.path.join(path, MANIFEST))  # written last
    return digest


def _read(source):
    """``(manifest, reader)``: reader(name) -> numpy array."""
    if isinstance(source, (str, os.PathLike)) and os.path.isfile(
            os.path.join(os.fspath(source), MANIFEST)):
        path = os.fspath(source)
        with open(os.path.join(path, MANIFEST)) as f:
            manifest = json.load(f)
        return manifest, lambda rel: np.load(os.path.join(path, rel), allow_pickle=False)
    try:
        group = _open_group(source, "r")
    except Exception as exc:  # noqa: BLE001  (zarr raises several kinds)
        raise StoreError(f"no saved pipeline at {source!r}: {exc}") from exc
    manifest = group.attrs.get(ATTRS_KEY)
    if manifest is None:
        raise StoreError(f"{source!r} does not hold a saved pipeline")
    return dict(manifest), lambda name: np.asarray(group[name][...])


def load_steps(source: Any) -> list[Any]:
    """Return the fitted steps saved by :func:`save_steps` (directory or Zarr group).

    Each step's class is found through the registry (its module is imported by name
    first), never unpickled; the content hash is checked.

    Parameters
    ----------
    source : str, os.PathLike, zarr.Group or zarr store

    Returns
    -------
    list of Preprocessor

    Raises
    ------
    StoreError
        When ``source`` holds no pipeline, one of a newer format, or one whose data no
        longer matches its content hash.
    """
    manifest, read = _read(source)
    if manifest.get("format") != FORMAT:
        raise StoreError(f"{source!r} does not hold a {FORMAT}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise StoreError(f"pipeline format version {version!r} is newer than this zounds_xr "
                         f"supports ({FORMAT_VERSION}); upgrade zounds_xr")
    steps, arrays, descriptions = [], [], []
    for spec in manifest["steps"]:
        step_arrays = {key: read(name) for key, name in spec["arrays"].items()}
        description = {"type": spec["type"], "module": spec["module"], "config": spec["config"]}
        descriptions.append(description)
        arrays.append(step_arrays)
    digest = _digest(descriptions, arrays)
    if digest != manifest.get("content_hash"):
        raise StoreError(f"content hash mismatch for the pipeline at {source!r}: the saved "
                         "data is corrupt or was modified")
    for description, step_arrays in zip(descriptions, arrays, strict=True):
        cls = preprocessor_class(description["type"], description["module"])
        steps.append(cls.from_state(description["config"], step_arrays))  # type: ignore[attr-defined]
    return steps


def save_addressed(steps: Sequence[Any], zstore: Any, path: str, description: dict) -> None:
    """Save fitted steps as the Zarr group ``path`` of a store.

    The group is one copy of a model (what
    :meth:`~zounds_xr.documents.store.FeatureStore.save_model` commits).

    Parameters
    ----------
    steps : sequence of Preprocessor
        Fitted, registered steps (saved as :func:`save_steps` does: no pickled code).
    zstore : zarr store
        The store written to (the feature store's, recording every file).
    path : str
        The copy's key prefix, ``_models/<digest>/<copy>``.
    description : dict
        JSON-safe description stored beside the steps (attribute ``"zounds_xr:model"``).

    Raises
    ------
    ParameterError
        When a step is not fitted, not registered or not JSON-safe (from
        :func:`save_steps`).
    """
    group = zarr.create_group(zstore, path=path, zarr_format=3,
                              attributes={MODEL_KEY: description})
    save_steps(steps, group)  # its manifest last


def load_addressed(zstore: Any) -> tuple[list[Any], dict]:
    """Load the model copy at the root of ``zstore``.

    Parameters
    ----------
    zstore : zarr store
        The checked files of one copy, as
        :meth:`~zounds_xr.documents.store.FeatureStore.model_copy` gives them.

    Returns
    -------
    steps : list of Preprocessor
        The fitted steps, in order.
    description : dict
        The description saved beside them (attribute ``"zounds_xr:model"``; empty when
        there is none).

    Raises
    ------
    StoreError
        When it holds no complete model, or its data does not match its content hash.
    ParameterError
        When a step's class is no longer registered under its saved name.
    """
    try:
        group: Any = zarr.open_group(zstore, mode="r", zarr_format=3)
        if ATTRS_KEY not in group.attrs:
            raise StoreError("it holds no complete model (no pipeline manifest)")
        return load_steps(group), dict(group.attrs.get(MODEL_KEY) or {})
    except (StoreError, ParameterError):
        raise
    except Exception as exc:  # noqa: BLE001  (zarr and its codecs raise many kinds)
        raise StoreError(f"the model cannot be read: {type(exc).__name__}: {exc}") from exc
