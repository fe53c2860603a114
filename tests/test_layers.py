"""The package's layers: no module imports a module of a higher layer.

Layers, bottom up (a module may import its own layer and those below). Module-level
imports only (the deferred imports that keep ``import zounds_xr`` cheap, and
``FrequencyScale.weights``/``apply``, zounds' methods that call the spectral filter banks,
are the documented exceptions). The root holds at most four modules besides
``__init__`` and ``_version``.
"""
from __future__ import annotations

import ast
import pathlib

import zounds_xr as zx

ROOT = pathlib.Path(zx.__file__).parent
#: bottom up; a module belongs to the first layer whose prefix it starts with
LAYERS = [
    ["core", "_version"],
    ["timeseries", "frequency"],
    ["dimensions", "testing"],
    ["audio"],
    ["io", "spectral"],
    ["synthesize", "datasets", "viz"],
    ["documents", "search"],  # batch (documents) updates the indexes; they read parts
    ["learn"],
    ["explorer", "accessor"],
    ["app"],
]
ROOT_MODULES_AT_MOST = 4


def _layer(module: str) -> int:
    rest = module.split(".", 1)[1] if "." in module else ""
    top = rest.split(".")[0]
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{module} belongs to no layer: add its package to LAYERS")


def _imports():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_pkg else parts)
        package = parts if is_pkg else parts[:-1]
        if name == "zounds_xr":
            continue  # the namespace gathers every layer, lazily
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                if target == "zounds_xr":  # from .. import module
                    for alias in node.names:
                        yield name, f"zounds_xr.{alias.name}"
                else:
                    yield name, target
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "zounds_xr."):
                yield name, node.module


def test_no_module_imports_a_higher_layer():
    upward = [f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})"
              for a, b in _imports() if _layer(b) > _layer(a)]
    assert not upward, "\n".join(upward)


def test_the_root_holds_few_modules():
    modules = sorted(p.name for p in ROOT.glob("*.py")
                     if p.name not in ("__init__.py", "_version.py"))
    assert len(modules) <= ROOT_MODULES_AT_MOST, modules


def test_old_module_paths_still_import():
    import importlib

    from zounds_xr.core.moved import MOVED, versioned_module

    for old, new in MOVED.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
    assert versioned_module("zounds_xr.audio.resampling") == "zounds_xr.resampling"
    assert versioned_module("zounds_xr.audio.samples") == "zounds_xr.audio"
    assert versioned_module("zounds_xr.io.decode") == "zounds_xr.io.decode"
    # module paths that are package paths now keep their names
    from zounds_xr.audio import AudioSamples
    from zounds_xr.dimensions import dimensions_of

    assert AudioSamples is zx.AudioSamples and callable(dimensions_of)
    from zounds_xr.errors import ParameterError  # a user's import of today

    assert ParameterError is zx.ParameterError
