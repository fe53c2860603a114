"""Ingest progress: clips and hours of audio, updated as clips finish inside a task."""
import io
import time

import numpy as np
import pytest
import soundfile as sf

import zounds_xr as zx
from zounds_xr.documents import batch, progress


def slow_gain(x, factor):
    """Frame-local and not declared channelwise: every clip is computed on its own,
    slowly enough that a task reports several times before it ends."""
    time.sleep(0.12)
    return x * factor


def _sound(path):
    @zx.zarr_settings(path)
    class Slow(zx.Document):
        louder = zx.Feature(slow_gain, needs=zx.Document.audio, factor=2.0, store=True)

    return Slow


@pytest.fixture
def clips(tmp_path):
    rng = np.random.default_rng(3)
    paths = []
    for i in range(10):
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, rng.uniform(-0.5, 0.5, 800).astype("float32"), 8000)
        paths.append(str(path))
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    return paths + [str(tmp_path / "broken.wav")]


class Recording(progress.Progress):
    calls: list = []

    def __init__(self, total, **kwargs):
        super().__init__(total, stream=io.StringIO(), bar=False, **kwargs)
        Recording.calls = []

    def update(self, outcomes):
        outcomes = list(outcomes)
        Recording.calls.append(len(outcomes))
        super().update(outcomes)


def _run(monkeypatch, tmp_path, clips, **kwargs):
    monkeypatch.setattr(batch, "Progress", Recording)
    report = zx.ingest(clips, _sound(tmp_path / "f.zarr"), progress=True, **kwargs)
    assert len(report.processed) == 10 and len(report.failed) == 1
    return Recording.calls


@pytest.mark.parametrize("scheduler", ["synchronous", "processes"])
def test_progress_counts_clips_inside_one_task(tmp_path, clips, monkeypatch, scheduler):
    calls = _run(monkeypatch, tmp_path, clips, scheduler=scheduler, num_workers=1)
    # one task of 11 clips (1.2 s), reported in several messages while it ran
    assert len(batch._batches(clips, 1)) == 1
    assert len(calls) >= 3 and sum(calls) == 11


@pytest.mark.slow
def test_progress_on_a_distributed_client(tmp_path, clips, monkeypatch):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        calls = _run(monkeypatch, tmp_path, clips, client=client)
    assert len(calls) >= 3  # events from inside the task (the last ones may trail)


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    display = progress.Progress(4, stream=out, every=0.0)
    display.update([(True, 3600.0), (False, 0.0)])
    display.close([(True, 3600.0), (False, 0.0), (True, 1800.0), (True, 1800.0)])
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in out.getvalue()
    assert lines[0].startswith("ingest 2/4 clips (50%), 1.00 h of audio") \
        and "1 failed" in lines[0] and "ETA" in lines[0] and "clips/s" in lines[0]
    assert lines[1].startswith("ingest 4/4 clips (100%), 2.00 h of audio")


def test_plain_lines_are_rate_limited():
    out = io.StringIO()
    display = progress.Progress(1000, stream=out, every=60.0)
    for _ in range(100):
        display.update([(True, 1.0)] * 10)
    assert out.getvalue() == ""  # nothing before `every` seconds have passed
    display.close()
    assert out.getvalue().startswith("ingest 1,000/1,000 clips (100%)")


def test_a_bar_on_a_terminal():
    pytest.importorskip("tqdm")
    out = io.StringIO()
    display = progress.Progress(10, stream=out, bar=True)
    display.update([(True, 1.0)] * 4)
    display.close([(True, 1.0)] * 9 + [(False, 0.0)])
    text = out.getvalue()
    assert "10/10" in text and "clip" in text and "1 failed" in text


def test_a_reporter_never_raises_and_batches(monkeypatch):
    got = []
    reporter = progress.Reporter(got.append)
    monkeypatch.setattr(progress, "REPORT_EVERY", 3600.0)
    for _ in range(5):
        reporter(("id", 1.5))
    reporter(zx.AudioDecodeError("broken"))
    assert got == []
    reporter.close()
    assert got == [[(True, 1.5)] * 5 + [(False, 0.0)]]

    def failing(batch):
        raise OSError("the parent went away")

    reporter = progress.Reporter(failing)
    reporter(("id", 1.0))
    reporter.close()  # no exception: progress is informative only
