"""The zounds-xr command line, run as a shell user would."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf

DOCUMENT = textwrap.dedent("""
    import numpy as np
    import zounds_xr as zx

    class Sound(zx.Document):
        resampled = zx.Feature(zx.resample, needs=zx.Document.audio, samplerate=zx.SR8000(),
                               store=True)
        mag = zx.Feature(np.abs, needs=resampled, store=True)

    NotADocument = 3
""")


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "zounds_xr.app.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "mydocs.py").write_text(DOCUMENT)
    audio = tmp_path / "audio"
    audio.mkdir()
    for i in range(2):
        sf.write(audio / f"a{i}.wav", np.zeros(1600 * (i + 1)), 16000)
    return tmp_path


def test_ingest_then_info(workdir):
    done = _cli("ingest", "audio", "--document", "mydocs:Sound", "--store", "f.zarr",
                "--quiet", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert "2 processed, 0 skipped, 0 failed" in done.stdout
    again = _cli("ingest", "audio", "--document", "mydocs:Sound", "--store", "f.zarr",
                 "--quiet", "--scheduler", "synchronous", cwd=workdir)
    assert "0 processed, 2 skipped" in again.stdout
    info = _cli("info", "f.zarr", cwd=workdir)
    assert info.returncode == 0, info.stderr
    assert "2 documents" in info.stdout and "0 failures" in info.stdout
    assert "resampled" in info.stdout and "mag" in info.stdout and "version" in info.stdout


def test_failures_exit_with_1_and_name_the_source(workdir):
    (workdir / "audio" / "bad.wav").write_bytes(b"nope")
    done = _cli("ingest", "audio", "--document", "mydocs:Sound", "--store", "f.zarr",
                "--quiet", cwd=workdir)
    assert done.returncode == 1
    assert "bad.wav" in done.stderr and "AudioDecodeError" in done.stderr


@pytest.mark.parametrize("args, message", [
    (["ingest", "audio", "--document", "mydocs"], "module:Class"),
    (["ingest", "audio", "--document", "nosuchmodule:Sound"], "cannot load"),
    (["ingest", "audio", "--document", "mydocs:NotADocument"], "not a zounds_xr Document"),
    (["ingest", "missing-dir", "--document", "mydocs:Sound"], "no such file"),
    (["frobnicate"], "invalid choice"),
])
def test_usage_errors_exit_with_2(workdir, args, message):
    done = _cli(*args, cwd=workdir)
    assert done.returncode == 2
    assert message in done.stderr


def test_demo_on_a_given_directory(workdir):
    done = _cli("demo", "--audio", "audio", "--output", "out", "--scheduler", "threads",
                "--quiet", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert "2 processed" in done.stdout and "median centroid" in done.stdout
    assert (workdir / "out" / "spectrogram.png").stat().st_size > 10_000
