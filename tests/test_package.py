"""Package hygiene: lazy optional dependencies, the public namespace, the error tree."""
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
        zx.does_not_exist


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
    from zounds_xr._optional import optional_import

    with pytest.raises(ImportError, match=r"zounds_xr\[viz\]"):
        optional_import("matplotlib.this_does_not_exist", extra="viz")
