"""Ingest on a distributed cluster: a worker killed mid-task leaves the store exact."""
import os

import numpy as np
import pytest
import soundfile as sf

import zounds_xr as zx


def _graph(path, flag: str, after: int):
    def twice_or_die(x):
        """Frame-local (not channelwise: clips are written one by one). The ``after``-th
        call of the first run kills its worker process: a crash, as the cluster sees one,
        after the task has written documents into its (uncommitted) part."""
        counter = flag + ".calls"
        with open(counter, "a") as f:
            f.write("x\n")
        with open(counter) as f:
            calls = sum(1 for _ in f)
        if calls >= after and not os.path.exists(flag):
            with open(flag, "w") as f:
                f.write(str(os.getpid()))
            os._exit(1)
        return x * 2

    @zx.zarr_settings(path)
    class Sound(zx.Document):
        louder = zx.Feature(twice_or_die, needs=zx.Document.audio, store=True)

    return Sound


@pytest.mark.slow
def test_a_worker_killed_mid_task_leaves_the_store_exact(tmp_path):
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(5)
    paths, expected = [], {}
    for i in range(8):
        path = tmp_path / f"clip{i}.wav"
        x = rng.uniform(-0.4, 0.4, 800 + 100 * i).astype("float32")
        sf.write(path, x, 8000, subtype="FLOAT")
        paths.append(str(path))
    flag = str(tmp_path / "killed")
    Sound = _graph(tmp_path / "f.zarr", flag, after=3)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        report = zx.ingest(paths, Sound, client=client, progress=False)
    assert os.path.exists(flag)  # a worker did die in a task
    assert not report.failed and sorted(report.processed) == sorted(map(Sound.id_for, paths))
    store = Sound._store_for(None)
    assert store.verify() == {}
    catalog = Sound.catalog()
    assert catalog.index.is_unique and sorted(catalog.index) == sorted(report.processed)
    assert store.failures().empty
    # the killed task's part: written, never committed, invisible; vacuum removes it
    assert len(store.invisible_parts()) >= 1
    store.vacuum(grace=0)
    assert store.invisible_parts() == []
    for path in paths:
        expected[path] = sf.read(path, dtype="float32")[0] * 2
        np.testing.assert_array_equal(Sound(Sound.id_for(path)).louder.values,
                                      expected[path])
    again = zx.ingest(paths, _graph(tmp_path / "f.zarr", flag, after=3), progress=False)
    assert again.processed == [] and len(again.skipped) == len(paths)
