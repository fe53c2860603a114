"""Batch ingest on the local schedulers and on a distributed LocalCluster."""
import os
import socket
import time

import numpy as np
import pytest
import soundfile as sf

import zounds_xr as zx


def _make_sound(path):
    @zx.zarr_settings(path)
    class Sound(zx.Document):
        resampled = zx.Feature(zx.resample, needs=zx.Document.audio, samplerate=zx.SR8000(),
                               store=True)
        spec = zx.Feature(zx.stft, needs=resampled, wscheme=zx.SR8000().half_lapped(),
                          store=False)
        mag = zx.Feature(np.abs, needs=spec, store=True)

    return Sound


@pytest.fixture
def corpus(tmp_path):
    audio = tmp_path / "audio"
    (audio / "nested").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(3):
        sf.write(audio / f"tone{i}.wav", rng.uniform(-0.5, 0.5, 8000 * (i + 1)), 16000)
    sf.write(audio / "nested" / "deep.flac", rng.uniform(-0.5, 0.5, 4000), 22050)
    (audio / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (audio / "notes.txt").write_text("not audio, not listed")
    return audio


@pytest.mark.parametrize("scheduler", ["threads", "processes", "synchronous"])
def test_ingest_records_failures_and_resumes(tmp_path, corpus, scheduler):
    Sound = _make_sound(tmp_path / "features.zarr")
    t0 = time.time()
    report = zx.ingest(zx.Directory(corpus), Sound, scheduler=scheduler, progress=False,
                       num_workers=2)
    _check_timeline(report, t0, time.time(), other_processes=scheduler == "processes")
    assert len(report.processed) == 4 and not report.skipped
    assert list(report.failed) == [str(corpus / "broken.wav")]
    assert "AudioDecodeError" in report.failed[str(corpus / "broken.wav")]
    assert sorted(Sound.ids()) == sorted(report.processed)
    again = zx.ingest(zx.Directory(corpus), Sound, scheduler=scheduler, progress=False)
    assert not again.processed and sorted(again.skipped) == sorted(report.processed)
    assert list(again.failed) == [str(corpus / "broken.wav")]
    assert sum(t.sources for t in again.tasks) == 1  # only the broken file was retried


def _check_timeline(report, t0, t1, other_processes):
    """Every source of the run is in exactly one task, which ran within the run."""
    assert report.tasks
    assert sum(t.sources for t in report.tasks) == len(report.processed) + len(report.failed)
    for task in report.tasks:
        assert t0 <= task.start <= task.end <= t1
        host, pid, thread = task.worker.split("/")
        assert host == socket.gethostname() and thread
        assert (int(pid) != os.getpid()) == other_processes


def test_ingest_redoes_a_deleted_document_only(tmp_path, corpus):
    Sound = _make_sound(tmp_path / "features.zarr")
    first = zx.ingest(zx.Directory(corpus), Sound, progress=False)
    Sound.delete(first.processed[0])
    again = zx.ingest(zx.Directory(corpus), Sound, progress=False)
    assert again.processed == [first.processed[0]] and len(again.skipped) == 3


def test_ingest_reports_audio_throughput(tmp_path, corpus):
    Sound = _make_sound(tmp_path / "features.zarr")
    report = zx.ingest(zx.Directory(corpus), Sound, progress=False)
    assert report.audio_seconds == pytest.approx(0.5 + 1.0 + 1.5 + 4000 / 22050, rel=1e-3)
    assert report.throughput > 0
    assert "4 processed, 0 skipped, 1 failed" in str(report)


def test_ingest_on_error_raise(tmp_path, corpus):
    Sound = _make_sound(tmp_path / "features.zarr")
    with pytest.raises(zx.ZoundsError, match="broken.wav"):
        zx.ingest(zx.Directory(corpus), Sound, progress=False, on_error="raise")


@pytest.mark.parametrize("kwargs", [{"scheduler": "gpu"}, {"on_error": "ignore"}])
def test_ingest_validates_its_options(tmp_path, kwargs):
    Sound = _make_sound(tmp_path / "features.zarr")
    with pytest.raises(zx.ParameterError):
        zx.ingest([], Sound, **kwargs)


def test_ingest_accepts_paths_and_shows_progress(tmp_path, corpus, capsys):
    Sound = _make_sound(tmp_path / "features.zarr")
    report = zx.ingest([str(corpus / "tone0.wav"), str(corpus / "broken.wav")], Sound,
                       progress=True)
    assert len(report.processed) == 1
    err = capsys.readouterr().err  # not a terminal: plain lines, the last one complete
    assert "ingest 2/2 clips (100%)" in err and "1 failed" in err and "\r" not in err


@pytest.mark.parametrize("scattered", [False, True])
def test_ingest_on_a_distributed_local_cluster(tmp_path, corpus, monkeypatch, scattered):
    distributed = pytest.importorskip("distributed")
    from zounds_xr.documents import batch

    if scattered:  # as a large document class is: scattered once, not sent per task
        monkeypatch.setattr(batch, "_SCATTER_BYTES", 0)
    Sound = _make_sound(tmp_path / "features.zarr")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        t0 = time.time()
        report = zx.ingest(zx.Directory(corpus), Sound, client=client, progress=False)
        _check_timeline(report, t0, time.time(), other_processes=True)
        assert {t.worker.split("/")[1] for t in report.tasks} <= {
            str(pid) for pid in client.run(os.getpid).values()}
        # the workers' heaps are released after the run (documents/heap.py): the
        # nanny's malloc setting holds again (the release is not waited for)
        for _ in range(100):
            if not any(client.run(_heap_raised).values()):
                break
            time.sleep(0.1)
        assert not any(client.run(_heap_raised).values())
    assert len(report.processed) == 4
    assert list(report.failed) == [str(corpus / "broken.wav")]
    snd = Sound(report.processed[0])
    assert snd.mag.dims == ("time", "frequency") and snd.resampled.zx.samplerate == zx.SR8000()


def _heap_raised():
    from zounds_xr.documents import heap

    return heap._raised


def _pid(_):
    import os

    return os.getpid()


def test_process_workers_are_started_once_and_reused(tmp_path, corpus):
    from zounds_xr.documents.batch import process_pool

    pool = process_pool(2)
    assert process_pool(2) is pool
    Sound = _make_sound(tmp_path / "features.zarr")
    zx.ingest(zx.Directory(corpus), Sound, scheduler="processes", num_workers=2,
              progress=False)
    assert process_pool(2) is pool
    assert len(set(pool.map(_pid, range(8)))) <= 2


def _crash(x):
    import os

    os._exit(3)  # a decoder segfault, as the batch sees it


def test_a_crashing_worker_does_not_stop_the_batch(tmp_path, corpus, monkeypatch):
    from zounds_xr.documents import batch

    Sound = _make_sound(tmp_path / "features.zarr")
    done = zx.ingest([str(corpus / "tone0.wav")], Sound, progress=False)
    monkeypatch.setattr(batch, "_process_batch", lambda *args: _crash(args))
    report = zx.ingest(zx.Directory(corpus), Sound, scheduler="processes", num_workers=2,
                       progress=False)
    assert report.skipped == done.processed
    assert len(report.failed) == 4 and all("worker process died" in r
                                           for r in report.failed.values())
    assert batch.process_pool(2) is not None  # a fresh pool for the next run


@pytest.mark.parametrize("n, workers, size", [(0, 2, None), (5, 2, 3), (50, 2, 25),
                                              (1000, 2, 500), (1000, 64, 16),
                                              (2500, 2, 1250), (100_000, 2, 2000),
                                              (100_000, 8, 1786), (7, 3, 3)])
def test_tasks_hold_many_clips_but_keep_every_worker_busy(n, workers, size):
    from zounds_xr.documents.batch import _batches

    batches = _batches(list(range(n)), workers)
    assert [x for b in batches for x in b] == list(range(n))
    if size is not None:
        assert max(map(len, batches)) == size
        assert len(batches) >= min(n, workers)
        # whole rounds of equal tasks: no last round that leaves workers idle
        assert len(batches) % workers == 0 or len(batches) < workers
        assert max(map(len, batches)) - min(map(len, batches)) <= 1


def test_tasks_are_balanced_by_source_bytes(tmp_path):
    from zounds_xr.documents.batch import _batches

    items = []
    for i, size in enumerate([4000, 1000, 1000, 1000, 1000, 2000, 2000]):
        path = tmp_path / f"{i}.wav"
        path.write_bytes(b"x" * size)
        items.append((zx.AudioMetaData(uri=str(path)), str(i)))
    batches = _batches(items, 2)  # 12,000 bytes: 6,000 a task, not 4 + 3 files
    assert [[doc_id for _, doc_id in b] for b in batches] == [["0", "1", "2"],
                                                              ["3", "4", "5", "6"]]
    # a source of unknown size (a URL): the tasks are balanced by counts
    items[3] = (zx.AudioMetaData(uri="https://example.org/3.wav"), "3")
    assert [len(b) for b in _batches(items, 2)] == [4, 3]


def test_a_long_recording_is_a_task_of_its_own(tmp_path, monkeypatch):
    from zounds_xr.documents import batch

    monkeypatch.setattr(batch, "_MAX_BYTES_PER_TASK", 1000)
    monkeypatch.setattr(batch, "_LONG_FILE_BYTES", 2000)
    items = []
    for i, size in enumerate([10, 10, 5000, 10, 600, 600]):
        path = tmp_path / f"{i}.wav"
        path.write_bytes(b"x" * size)
        items.append((zx.AudioMetaData(uri=str(path)), str(i)))
    batches = batch._batches(items, 1)
    # the long one alone (the clips around it stay together), then a task per 1000 bytes
    assert [[doc_id for _, doc_id in b] for b in batches] == [["2"], ["0", "1", "3", "4"],
                                                              ["5"]]


@pytest.mark.parametrize("dataset, document, kwargs, message", [
    (None, "Sound", {}, "iterable"),
    (5, "Sound", {}, "iterable"),
    ("a.wav", "Sound", {}, "single path"),
    ([], "Sound", {"num_workers": -1}, "num_workers"),
    ([], "Sound", {"num_workers": 0}, "num_workers"),
    ([], "Sound", {"num_workers": 1.5}, "num_workers"),
    ([], "text", {}, "Document subclass"),
])
def test_ingest_refuses_bad_arguments_up_front(tmp_path, dataset, document, kwargs, message):
    Sound = _make_sound(tmp_path / "features.zarr")
    document = Sound if document == "Sound" else document
    with pytest.raises(zx.ParameterError, match=message):
        zx.ingest(dataset, document, progress=False, **kwargs)
    assert not (tmp_path / "features.zarr").exists()


SCRIPT = """
import numpy as np
import zounds_xr as zx

class Sound(zx.Document):
    louder = zx.Feature(np.negative, needs=zx.Document.audio, store=True)

Sound = zx.zarr_settings("features.zarr")(Sound)
{call}
"""


def test_a_scripts_guards_are_parsed_once_per_version(tmp_path):
    from zounds_xr.documents.batch import _script_guards

    def guards(path):
        stat = os.stat(path)
        return _script_guards(str(path), stat.st_mtime_ns, stat.st_size)

    script = tmp_path / "script.py"
    script.write_text("import os\nif __name__ == '__main__':\n    print(1)\n")
    first = guards(script)
    assert first == ((3, 3),) and guards(script) is first  # parsed once
    script.write_text("if __name__ == '__main__':\n    print(1)\n    print(2)\n")
    assert guards(script) == ((2, 3),)  # an edited script is parsed again
    script.write_text("if (:\n")
    assert guards(script) is None


@pytest.mark.parametrize("guarded", [False, True])
def test_processes_from_a_script_without_a_main_guard_is_one_clear_error(tmp_path, corpus,
                                                                         guarded):
    import subprocess
    import sys

    call = (f"report = zx.ingest(zx.Directory({str(corpus)!r}), Sound, "
            f"scheduler='processes', num_workers=2, progress=False)\nprint(report)")
    if guarded:
        call = "if __name__ == '__main__':\n" + "\n".join("    " + line
                                                          for line in call.splitlines())
    (tmp_path / "script.py").write_text(SCRIPT.format(call=call))
    done = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    if guarded:
        assert done.returncode == 0, done.stderr
        assert "4 processed, 0 skipped, 1 failed" in done.stdout
    else:
        assert done.returncode != 0
        assert "without an `if __name__ == \"__main__\":` guard" in done.stderr
        assert done.stderr.count("errors.ParameterError:") == 1
        assert "bootstrapping" not in done.stderr
