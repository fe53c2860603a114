"""The commit log: versions, label edits, the catalog as of a commit, checkpoints,
concurrent commits and store creation, the upgrade of a store without a log."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from _documents_helpers import python_argv, spectral_graph, tone, write_wav

import zounds_xr as zx
from zounds_xr.documents import FeatureStore
from zounds_xr.documents.store import forget_process_state
from zounds_xr.documents.log import CHECKPOINT_INTERVAL, entry_key

#: a process that commits ``n`` parts (one short document each) and ``n`` label edits
COMMITTER = """
    import zounds_xr as zx
    from _documents_helpers import spectral_graph, write_wav
    Sound = spectral_graph({url!r})
    for i in range({n}):
        doc = Sound.process(meta=write_wav({tmp!r} + f"/{tag}{{i}}.wav", 0.1, seed=i))
        Sound.set_labels("writer", {{doc: {tag!r}}}, author={tag!r})
"""


def two_committing_processes(url: str, tmp: str, n: int, env=None) -> list[subprocess.Popen]:
    return [subprocess.Popen(python_argv(COMMITTER.format(url=url, tmp=tmp, n=n, tag=tag)),
                             env=env) for tag in ("a", "b")]


def check_no_lost_commit(store: FeatureStore, n: int) -> None:
    """Every commit of two committers of ``n`` parts and ``n`` label edits each is in
    the log, numbered 1..4n, and visible."""
    assert store.version == 4 * n
    kinds = [store.log.entry(i)["kind"] for i in range(1, 4 * n + 1)]
    assert sorted(kinds) == ["labels"] * 2 * n + ["part"] * 2 * n
    cat = store.catalog()
    assert len(cat) == 2 * n and sorted(cat["writer"].value_counts().to_dict().items()) == [
        ("a", n), ("b", n)]


@pytest.fixture
def stored(tmp_path):
    Sound = spectral_graph(tmp_path / "f.zarr")
    ids = [Sound.process(meta=write_wav(tmp_path / f"{i}.wav", 0.5, seed=i))
           for i in range(3)]
    return Sound, ids


def test_every_commit_is_one_log_entry_and_the_version(tmp_path, stored):
    Sound, ids = stored
    store = Sound._store
    assert store.version == 3
    entry = json.loads((tmp_path / "f.zarr" / entry_key(1)).read_text())
    assert entry["kind"] == "part" and entry["fragment"]["key"].startswith("catalog/")
    files = entry["files"]
    assert files and all({"size", "crc32c"} <= set(r) for r in files.values())
    shards = [r for k, r in files.items() if "/c/" in k and "chunks" in r]
    arrays = entry["arrays"]
    assert {a["data_type"] for a in arrays.values()} >= {"float32", "complex64"}
    assert [r["id"] for r in entry["rows"]] == [ids[0]]
    # a fresh store object sees the same version; reading is not a commit
    fresh = spectral_graph(tmp_path / "f.zarr")
    assert fresh._store.version == 3 and len(fresh(ids[0]).fft.values)
    assert fresh._store.version == 3
    assert shards == [] or all(len(r["chunks"].split(",")) > 0 for r in shards)


def test_label_edits_are_commits_applied_in_order_and_catalogs_of_old_versions(tmp_path,
                                                                                stored):
    Sound, ids = stored
    before = Sound.catalog()
    v = Sound.set_labels("label", {ids[0]: "dog", ids[1]: "cat"}, author="ann")
    assert v == 4 and Sound._store.version == 4
    w = zx.open_store(tmp_path / "f.zarr").set_labels("label", {ids[1]: "bird"})
    assert w == 5
    cat = Sound.catalog()
    assert cat.loc[ids[0], "label"] == "dog" and cat.loc[ids[1], "label"] == "bird"
    assert cat.loc[ids[2], "label"] is None
    assert Sound.catalog(version=4).loc[ids[1], "label"] == "cat"
    assert "label" not in Sound.catalog(version=3).columns
    np.testing.assert_array_equal(Sound.catalog(version=3).index, before.index)
    entry = Sound._store.log.entry(4)
    assert entry["author"] == "ann" and entry["time"] > 0
    # the same after a compaction replaced the fragments the old versions used
    v3, v4 = Sound.catalog(version=3), Sound.catalog(version=4)
    assert Sound._store.compact() == 3
    fresh = spectral_graph(tmp_path / "f.zarr")
    assert fresh.catalog(version=3).equals(v3) and fresh.catalog(version=4).equals(v4)
    assert fresh.catalog().loc[ids[1], "label"] == "bird"
    # a label edit never reaches a document rewritten after it
    wav = Sound.catalog().loc[ids[1], "uri"]
    Sound.process(meta=wav, overwrite=True)
    assert Sound.catalog().loc[ids[1], "label"] is None
    assert Sound.catalog().loc[ids[0], "label"] == "dog"


def test_label_edits_refuse_what_the_store_cannot_hold(stored):
    Sound, ids = stored
    for column in ("id", "fft.frames", "_seq", "", "duration"):
        with pytest.raises(zx.ParameterError, match="cannot set labels"):
            Sound.set_labels(column, {ids[0]: 1})
    with pytest.raises(zx.ParameterError, match="not text"):
        Sound.set_labels("label", {ids[0]: {"a": 1}})
    with pytest.raises(zx.DocumentNotFoundError, match="nope"):
        Sound.set_labels("label", {"nope": 1})
    with pytest.raises(zx.StoreError, match="no commit 99"):
        Sound.catalog(version=99)
    assert Sound._store.version == 3


def test_opening_reads_a_checkpoint_and_the_entries_after_it(tmp_path, stored):
    Sound, ids = stored
    for i in range(2 * CHECKPOINT_INTERVAL + 2):
        Sound.set_labels("n", {ids[0]: i})
    version = Sound._store.version
    last = version - version % CHECKPOINT_INTERVAL
    assert json.loads((tmp_path / "f.zarr/_log/_last_checkpoint").read_text()) == {
        "version": last}

    def opened():
        fresh = FeatureStore(tmp_path / "f.zarr")
        read = []
        original = fresh.objects.get

        def counting(key):
            read.append(key)
            return original(key)

        fresh.objects.get = counting
        cat = fresh.catalog()
        assert cat.loc[ids[0], "n"] == 2 * CHECKPOINT_INTERVAL + 1
        return read, [k for k in read if k.startswith("_log/") and k[5:25].isdigit()
                      and not k.endswith("checkpoint.json")]

    # opened again in this process: the newest entry read (checked to be the same) and
    # the next one
    read, entries = opened()
    assert entries == [entry_key(version), entry_key(version + 1)] and len(read) <= 3
    # as in a new process: the entries after the checkpoint, the next one and the gap
    # probe: O(1) files
    forget_process_state()
    read, entries = opened()
    assert entries == [entry_key(n) for n in range(last + 1, version + 3)]
    assert len(read) <= 4 + len(entries) + 3
    # a damaged checkpoint is only slower: the entries are replayed
    (tmp_path / f"f.zarr/_log/{last:020d}.checkpoint.json").write_text("{garbage")
    assert FeatureStore(tmp_path / "f.zarr").catalog().equals(Sound.catalog())


def test_a_lost_log_entry_is_a_store_error_and_verify_names_it(tmp_path, stored):
    Sound, _ = stored
    os.remove(tmp_path / "f.zarr" / entry_key(2))
    forget_process_state()  # (this process read the log before: as another process)
    with pytest.raises(zx.StoreError, match="missing while later entries exist"):
        spectral_graph(tmp_path / "f.zarr").catalog()
    problems = FeatureStore(tmp_path / "f.zarr").verify()
    assert any("[2]" in p for p in problems[""])
    with pytest.raises(zx.StoreError):
        FeatureStore(tmp_path / "f.zarr").vacuum(grace=0)


def test_a_store_without_a_log_says_to_upgrade_and_upgrade_writes_it(tmp_path, stored):
    Sound, ids = stored
    Sound.process(meta=Sound.catalog().loc[ids[0], "uri"], overwrite=True)  # a loser part
    expected = Sound.catalog()
    values = {i: Sound(i).fft.values for i in ids}
    root = tmp_path / "f.zarr"
    shutil.rmtree(root / "_log")
    meta = json.loads((root / "zarr.json").read_text())
    meta["attributes"]["zounds_xr:store"] = {"layout": 2}
    (root / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(zx.StoreError, match="zounds-xr upgrade"):
        spectral_graph(root).catalog()
    cli = subprocess.run([sys.executable, "-m", "zounds_xr.app.cli", "upgrade", str(root)],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    fresh = spectral_graph(root)
    cat = fresh.catalog()
    assert cat.drop(columns=[c for c in cat if c.startswith("_")]).equals(expected)
    for i in ids:
        np.testing.assert_array_equal(fresh(i).fft.values, values[i])
    assert fresh._store.verify() == {}
    assert len(fresh._store.vacuum(grace=0)) == 1  # the loser part: superseded


def test_upgrade_refuses_a_store_with_a_damaged_chunk(tmp_path, stored):
    Sound, _ = stored
    root = tmp_path / "f.zarr"
    shutil.rmtree(root / "_log")
    meta = json.loads((root / "zarr.json").read_text())
    meta["attributes"]["zounds_xr:store"] = {"layout": 2}
    (root / "zarr.json").write_text(json.dumps(meta))
    chunk = next(p for p in sorted(root.glob("parts/*/fft/fft/c/**/*")) if p.is_file())
    data = bytearray(chunk.read_bytes())
    data[10] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(zx.StoreError, match="fails its check"):
        FeatureStore(root).upgrade()
    assert not (root / "_log").exists() or not list((root / "_log").glob("0*.json"))


def test_processes_creating_one_store_at_once_get_one_store(tmp_path):
    path = str(tmp_path / "new.zarr")
    code = f"""
        from zounds_xr.documents import FeatureStore
        FeatureStore({path!r}).root(create=True)
    """
    procs = [subprocess.Popen(python_argv(code), stderr=subprocess.PIPE) for _ in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    assert FeatureStore(path).root()["zounds_xr:store"] == {"layout": 2, "log": 1}
    assert sorted(os.listdir(path)) == ["_log", "parts", "zarr.json"]


@pytest.mark.slow
def test_two_committing_processes_lose_no_commit(tmp_path):
    url = str(tmp_path / "f.zarr")
    procs = two_committing_processes(url, str(tmp_path), 4)
    assert [p.wait(300) for p in procs] == [0, 0]
    store = FeatureStore(url)
    check_no_lost_commit(store, 4)
    for doc_id in store.ids():
        np.testing.assert_allclose(spectral_graph(url)(doc_id).louder.values,
                                   tone(0.1, seed=int(store.catalog().loc[doc_id, "uri"]
                                                      [-5])) * 2, atol=1e-6)


def test_a_compactions_catalog_as_its_writer_keeps_it_is_what_a_fresh_reader_reads(
        tmp_path):
    # the writer keeps the rows it resolved and wrote (ingest's maintenance reads them
    # next); they must be the compacted fragment's, as any other process reads it:
    # updated documents (two rows of an id), deletions, failures and labels included
    url = tmp_path / "f.zarr"
    Sound = spectral_graph(url)
    wavs = [write_wav(tmp_path / f"{i}.wav", 0.1 + 0.05 * i, seed=i) for i in range(5)]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not a wave file")
    ids = zx.ingest(wavs[:3] + [str(broken)], Sound, scheduler="synchronous",
                    progress=False).processed
    Sound.process(meta=wavs[0])  # a second row of the same id
    Sound.delete(ids[1])
    Sound.set_labels("label", {ids[0]: "dog", ids[2]: "cat"})
    zx.ingest(wavs[3:], Sound, scheduler="synchronous", progress=False)  # compacts
    store = Sound._store
    assert len(store.log.state().fragments) == 1
    for version in (None, store.version):
        kept, kept_failures = store._resolve(version)
        fresh, fresh_failures = FeatureStore(url)._resolve(version)
        pd.testing.assert_frame_equal(kept, fresh)
        pd.testing.assert_frame_equal(kept_failures, fresh_failures)
    assert len(kept_failures) == 1 and ids[1] not in kept.index
