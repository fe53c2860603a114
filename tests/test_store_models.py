"""Learned features' models in the store's commit log: committed, checked, verified,
vacuumed, and saved by racing writers."""
import json
import multiprocessing
import os
import time

import numpy as np
import pytest
import xarray as xr

import zounds_xr as zx
from zounds_xr.documents.log import entry_key
from zounds_xr.documents.parts import new_part_name
from zounds_xr.documents.store import FeatureStore
from zounds_xr.core.errors import StoreError
from zounds_xr.learn import Learned, MeanStdNormalization, PreprocessingPipeline, load_model
from zounds_xr.learn.persist import save_addressed


def learned(seed=0) -> Learned:
    """A small fitted pipeline as a learned feature (the same digest for the same seed,
    in any process)."""
    rows = np.random.default_rng(seed).normal(size=(64, 5))
    pipeline = PreprocessingPipeline([MeanStdNormalization()]).fit(
        xr.DataArray(rows, dims=("time", "x")))
    return Learned(pipeline, needs=zx.Document.audio, dim="code")


def model_entries(fs: FeatureStore) -> list[dict]:
    return [e for e in (fs.log.entry(n) for n in fs.log.entry_numbers())
            if e["kind"] == "model"]


def copies(root, digest) -> list[str]:
    return sorted(p for p in os.listdir(root / "_models" / digest) if p != "zarr.json")


def committed_files(fs: FeatureStore, digest: str) -> list[str]:
    model = fs._state().models[digest]
    return sorted(k for k in model["files"] if "/c/" in k)


def test_a_model_is_committed_once_and_loads_from_its_checked_copy(tmp_path):
    fs = FeatureStore(tmp_path / "s.zarr")
    feature = learned()
    feature.prepare_store(fs)
    assert fs.version == 1  # a model commit is a commit
    [entry] = model_entries(fs)
    assert entry["digest"] == feature.digest
    assert entry["files"] and all({"size", "crc32c"} <= set(r) for r in entry["files"].values())
    feature.prepare_store(fs)  # committed and intact: nothing written, no commit
    assert fs.version == 1 and len(copies(tmp_path / "s.zarr", feature.digest)) == 1
    found = load_model(FeatureStore(tmp_path / "s.zarr", read_only=True), feature.digest)
    assert found.learned(needs=zx.Document.audio).digest == feature.digest
    assert fs.verify() == {}
    with pytest.raises(StoreError, match="read-only"):
        feature.prepare_store(FeatureStore(tmp_path / "s.zarr", read_only=True))


@pytest.mark.parametrize("damage", ["bytes", "truncate", "delete"])
def test_a_damaged_model_file_is_caught_reported_kept_and_saved_again(tmp_path, damage):
    root = tmp_path / "s.zarr"
    fs = FeatureStore(root)
    feature = learned()
    feature.prepare_store(fs)
    key = committed_files(fs, feature.digest)[0]
    path = root / key
    data = path.read_bytes()
    if damage == "bytes":
        path.write_bytes(data[:-4] + bytes(b ^ 0xFF for b in data[-4:]))
    elif damage == "truncate":
        path.write_bytes(data[:-1])
    else:
        path.unlink()
    reader = FeatureStore(root, read_only=True)
    with pytest.raises(StoreError) as caught:
        load_model(reader, feature.digest)
    assert feature.digest in str(caught.value) and key in str(caught.value)
    assert str(root) in str(caught.value)
    [problem] = fs.verify()[""]
    assert feature.digest in problem and key in problem
    [old] = copies(root, feature.digest)
    fs.vacuum(grace=0)
    assert copies(root, feature.digest) == [old]  # committed: never deleted
    # saving it again replaces the damaged copy (one more commit), which vacuum removes
    feature.prepare_store(fs)
    assert fs.version == 2 and len(copies(root, feature.digest)) == 2
    assert load_model(reader, feature.digest).digest == feature.digest
    assert fs.verify() == {}
    assert fs.vacuum(grace=0) == [f"_models/{feature.digest}/{old}"]
    assert old not in copies(root, feature.digest)
    assert load_model(FeatureStore(root), feature.digest).digest == feature.digest


def test_a_killed_writers_copy_is_ignored_and_vacuumed_after_grace(tmp_path):
    root = tmp_path / "s.zarr"
    fs = FeatureStore(root)
    feature = learned()
    fs.root(create=True)
    # a complete copy whose writer died before its commit
    killed = f"_models/{feature.digest}/{new_part_name()}"
    save_addressed(feature._steps, fs.zarr_store, killed, dict(feature.description))
    with pytest.raises(StoreError, match="no committed model"):
        load_model(fs, feature.digest)
    assert fs.verify() == {}
    assert fs.vacuum() == []  # younger than the grace period: its writer may be running
    assert (root / killed).is_dir()
    feature.prepare_store(fs)  # an uncommitted copy does not count as saved
    assert fs.version == 1
    assert fs._state().models[feature.digest]["copy"] != killed
    assert fs.vacuum(grace=0) == [killed]
    assert not (root / killed).exists()
    assert load_model(fs, feature.digest).digest == feature.digest


def test_a_writer_losing_the_race_for_a_digest_gives_up_its_copy(tmp_path):
    """A second writer commits the same model between the first's check and commit."""
    root = tmp_path / "s.zarr"
    first, second = FeatureStore(root), FeatureStore(root)
    feature = learned()
    description = dict(feature.description)

    def write(zstore, path):
        feature.prepare_store(second)  # wins the race
        save_addressed(feature._steps, zstore, path, description)

    assert first.save_model(feature.digest, write) == 0
    assert len(model_entries(first)) == 1
    assert len(copies(root, feature.digest)) == 1  # the loser's copy is gone
    assert load_model(first, feature.digest).digest == feature.digest


def _save_when_told(root: str, go: str, ready: str) -> int:
    feature = learned()
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.001)
    return FeatureStore(root).save_model(feature.digest, lambda zstore, path: save_addressed(
        feature._steps, zstore, path, dict(feature.description)))


@pytest.mark.slow
def test_two_processes_saving_one_model_at_once_both_succeed(tmp_path):
    root = tmp_path / "s.zarr"
    FeatureStore(root).root(create=True)
    go = tmp_path / "go"
    ready = [tmp_path / f"ready{i}" for i in range(2)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = [pool.apply_async(_save_when_told, (str(root), str(go), str(r)))
                   for r in ready]
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in ready) and time.monotonic() < deadline:
            time.sleep(0.01)
        go.touch()
        numbers = sorted(r.get(timeout=120) for r in results)
    assert numbers == [0, 1]  # one committed, the other gave up (no error)
    fs = FeatureStore(root)
    digest = learned().digest
    [entry] = model_entries(fs)
    assert json.loads((root / entry_key(1)).read_bytes())["digest"] == digest
    assert load_model(fs, digest).digest == digest
    fs.vacuum(grace=0)
    assert copies(root, digest) == [fs._state().models[digest]["copy"].rsplit("/", 1)[-1]]
