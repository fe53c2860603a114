"""Package hygiene: lazy optional dependencies, the public namespace, the error tree."""
import ast
import pathlib
import subprocess
import sys

import pytest

import zounds_xr as zx


def test_import_needs_only_core_dependencies():
    code = ("import sys, zounds_xr as zx; zx.AudioSamples; zx.TimeIndex; "
            "bad = [m for m in ('torch', 'matplotlib', 'distributed') if m in sys.modules]; "
            "print(bad); sys.exit(bool(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute"):
        _ = zx.does_not_exist


def test_every_error_is_a_zounds_error_and_a_builtin():
    assert issubclass(zx.ParameterError, ValueError)
    assert issubclass(zx.SampleRateError, TypeError)
    assert issubclass(zx.AudioFileNotFoundError, FileNotFoundError)
    assert issubclass(zx.DocumentNotFoundError, KeyError)
    for error in (zx.ParameterError, zx.SampleRateError, zx.AudioDecodeError,
                  zx.AudioFileNotFoundError, zx.StoreError, zx.DocumentNotFoundError):
        assert issubclass(error, zx.ZoundsError)
    assert str(zx.DocumentNotFoundError("no document 'x'")) == "no document 'x'"


def test_optional_import_gives_an_install_hint():
    from zounds_xr.core.optional import optional_import

    with pytest.raises(ImportError, match=r"zounds_xr\[viz\]"):
        optional_import("matplotlib.this_does_not_exist", extra="viz")


# the lazy namespace as tools see it -----------------------------------------------------------
ERRORS = {"ZoundsError", "ParameterError", "SampleRateError", "AudioDecodeError",
          "AudioFileNotFoundError", "StoreError", "DocumentNotFoundError", "NotFittedError",
          "NotInvertibleError", "SelectionError", "NonFiniteSamplesWarning"}
# named by the contract, stubbed in __init__.pyi until their branches land (issues 13, 16)
PENDING = {"open_store", "explore"}


def _stub_names():
    tree = ast.parse(pathlib.Path(zx.__file__).with_suffix(".pyi").read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level:  # the package's own modules
            names |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.FunctionDef):
            names.add(node.name)
    return names


def test_all_is_exports_plus_errors_and_matches_the_stub():
    assert zx.__all__ == sorted(zx.__all__)
    assert set(zx.__all__) == set(zx._EXPORTS) | ERRORS | {"__version__"}
    # a pending name stays stubbed until it lands in _EXPORTS (then it is in __all__)
    assert (_stub_names() - (PENDING - set(zx.__all__))) == set(zx.__all__)
    assert (pathlib.Path(zx.__file__).parent / "py.typed").exists()


def test_every_core_export_resolves():
    import importlib

    for name, module in zx._EXPORTS.items():
        if module in (".learn",):
            continue  # needs the [learn] extra; covered by the learn tests
        assert getattr(importlib.import_module(module, "zounds_xr"), name) is not None, name


def _module_imports():
    """Module name -> the package's modules it imports at module level (not under
    ``if TYPE_CHECKING``, not inside functions)."""
    root = pathlib.Path(zx.__file__).parent
    graph = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        package = parts[:-1]  # what a relative import of this file is relative to
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        deps = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                deps.add(target)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("zounds_xr.")}
        graph[name] = {d for d in deps if d != name}
    return graph


def test_no_import_circles_between_modules():
    graph = _module_imports()
    # a package's __init__ only gathers names: its own arrows are left out, as an
    # import of ``pkg.mod`` is an arrow to ``mod``
    packages = {n for n in graph if (pathlib.Path(zx.__file__).parent.parent
                                     / n.replace(".", "/") / "__init__.py").exists()}
    edges = {n: {d for d in deps if d in graph and d not in packages}
             for n, deps in graph.items() if n not in packages}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == "open":
                cycle = stack[stack.index(dep):] + [dep]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_import_is_cheap_and_the_accessor_loads_on_first_use():
    code = ("import sys, numpy as np, zounds_xr as zx\n"
            "heavy = [m for m in ('zounds_xr.accessor.zx', 'zounds_xr.spectral.kernels', "
            "'zounds_xr.frequency', 'scipy.fft', 'soundfile') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "x = zx.AudioSamples(np.zeros(4), zx.SR8000())\n"
            "assert type(x.zx).__name__ == 'ZxDataArrayAccessor' and x.zx is x.zx\n"
            "assert 'zounds_xr.accessor.zx' in sys.modules\n"
            "import xarray as xr\n"
            "assert isinstance(xr.DataArray.zx.samplerate, property)  # docs tools\n"
            "assert type(xr.Dataset({'a': x}).zx).__name__ == 'ZxDatasetAccessor'\n")
    result = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
