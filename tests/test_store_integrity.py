"""Integrity on layout 2: never a silent zero (issue 13's fault-injection cases)."""
import json
import os
import pathlib
import subprocess
import sys
import threading

import numpy as np
import pytest

import zounds_xr as zx
from zounds_xr.documents.store import forget_process_state

from _documents_helpers import (gain, healthy_blocking_graph, kill_when_flagged, python_argv,
                               tone, write_wav)


def _graph(path):
    @zx.zarr_settings(path)
    class Sound(zx.Document):
        spec = zx.Feature(zx.stft, needs=zx.Document.audio, magnitude=True, store=True)
    return Sound


@pytest.fixture
def stored(tmp_path, monkeypatch):
    from zounds_xr.documents import parts

    monkeypatch.setattr(parts, "SHARD_BYTES", 1 << 20)  # several shards of 40 s
    wavs = [write_wav(tmp_path / f"{i}.wav", 40, seed=i) for i in range(2)]
    Sound = _graph(tmp_path / "f.zarr")
    report = zx.ingest(wavs, Sound, scheduler="synchronous", progress=False)
    assert len(report.processed) == 2
    cat = Sound.catalog()
    chunks = sorted((tmp_path / "f.zarr").glob("parts/*/spec/spec/c/*/*"))
    assert len(chunks) >= 2  # sharded: the damage below hits some documents only
    return Sound, wavs, cat, chunks


def _expected(wav):
    return zx.stft(zx.load(wav), magnitude=True).values


def test_a_missing_shard_is_an_error_naming_everything_and_is_repaired(tmp_path, stored):
    Sound, wavs, cat, chunks = stored
    os.remove(chunks[0])
    doc_id = cat.index[cat["spec.offset"] == 0][0]
    with pytest.raises(zx.StoreError) as info:
        _ = Sound(doc_id).spec.values
    message = str(info.value)
    for part in (str(tmp_path / "f.zarr"), doc_id, "'spec'", "missing",
                 os.path.relpath(chunks[0], tmp_path / "f.zarr")):
        assert part in message, (part, message)
    problems = Sound._store.verify()
    shard = Sound._store.array(cat.loc[doc_id, "spec.array"]).shards[0]
    hit = sorted(cat.index[cat["spec.offset"] < shard])  # documents with rows in shard 0
    assert sorted(problems) == hit and "missing" in problems[doc_id][0]
    cli = subprocess.run([sys.executable, "-m", "zounds_xr.app.cli", "verify",
                          str(tmp_path / "f.zarr")], capture_output=True, text=True,
                         timeout=120)
    assert cli.returncode == 1 and f"damaged: {doc_id}" in cli.stdout
    # resume alone skips it; repair recomputes it into a new part
    assert zx.ingest(wavs, Sound, scheduler="synchronous", progress=False).processed == []
    report = zx.ingest(wavs, Sound, scheduler="synchronous", progress=False, repair=True)
    assert sorted(report.processed) == hit and Sound._store.verify() == {}
    wav = Sound.catalog().loc[doc_id, "uri"]
    np.testing.assert_allclose(Sound(doc_id).spec.values, _expected(wav), rtol=1e-5,
                               atol=1e-5)


def test_garbage_in_an_uncompressed_chunk_fails_its_checksum(stored):
    Sound, _, cat, chunks = stored
    data = bytearray(chunks[0].read_bytes())
    data[5000:5000 + 4096] = np.random.default_rng(0).bytes(4096)
    chunks[0].write_bytes(bytes(data))
    doc_id = cat.index[cat["spec.offset"] == 0][0]
    with pytest.raises(zx.StoreError, match="checksum"):
        _ = Sound(doc_id).spec.values
    assert doc_id in Sound._store.verify()


def test_an_edited_array_shape_is_an_error_not_padding(tmp_path, stored):
    Sound, _, cat, _ = stored
    path = tmp_path / "f.zarr" / cat["spec.array"].iloc[0] / "zarr.json"
    meta = json.loads(path.read_text())
    meta["shape"][0] -= 100
    path.write_text(json.dumps(meta))
    last = cat["spec.offset"].idxmax()
    # (this process opened the array before the edit, and keeps what it opened: as
    # another process would open it)
    forget_process_state()
    fresh = _graph(tmp_path / "f.zarr")
    with pytest.raises(zx.StoreError, match="not match the log"):
        _ = fresh(last).spec.values
    assert last in fresh._store.verify()


def test_store_level_damage_says_what_is_wrong(tmp_path, stored):
    Sound, _, _, _ = stored
    root = tmp_path / "f.zarr" / "zarr.json"
    good = root.read_text()
    root.write_text("{not json")
    with pytest.raises(zx.StoreError, match="damaged root metadata"):
        _graph(tmp_path / "f.zarr").ids()
    root.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(zx.StoreError, match="damaged root metadata"):
        _graph(tmp_path / "f.zarr").ids()
    root.unlink()
    for call in (lambda s: s.ids(), lambda s: s.catalog(), lambda s: s("x")):
        with pytest.raises(zx.StoreError, match="root metadata.*missing"):
            call(_graph(tmp_path / "f.zarr"))
    root.write_text(good)
    assert len(_graph(tmp_path / "f.zarr").ids()) == 2
    fragment = next((tmp_path / "f.zarr" / "catalog").glob("*.parquet"))
    fragment.write_bytes(b"PAR1 truncated")
    with pytest.raises(zx.StoreError, match="damaged or replaced.*zounds-xr repair"):
        _graph(tmp_path / "f.zarr").ids()
    afile = tmp_path / "file.zarr"
    afile.write_text("a file")
    with pytest.raises(zx.StoreError, match="file"):
        zx.open_store(afile)


def _gate(x, flag, release):
    """Frame-local identity that, after the first chunk, waits for ``release``."""
    if os.path.exists(flag):
        GATES[release].wait(120)
    else:
        pathlib.Path(flag).write_text("first chunk")
    return x


GATES: dict[str, threading.Event] = {}


def test_two_writers_of_one_document_never_touch_each_others_keys(tmp_path):
    # issue 13's repro: A writes a 100 s file in 5 s chunks and pauses after its first
    # shard; B writes the same file and is killed; A resumes and commits
    store, wav = str(tmp_path / "f.zarr"), write_wav(tmp_path / "a.wav", 100)
    GATES["a"] = threading.Event()
    flag_a, flag_b = str(tmp_path / "flag-a"), str(tmp_path / "flag-b")

    @zx.zarr_settings(store)
    class A(zx.Document):
        gated = zx.Feature(_gate, needs=zx.Document.audio, flag=flag_a, release="a")
        louder = zx.Feature(gain, needs=gated, factor=2.0, store=True)
        spec = zx.Feature(zx.stft, needs=louder, magnitude=True, store=True)

    done = {}
    writer_a = threading.Thread(target=lambda: done.setdefault(
        "id", A.process(meta=wav, chunksize=zx.Seconds(5))))
    writer_a.start()
    while not os.path.exists(flag_a):
        writer_a.join(0.05)
    proc = subprocess.Popen(python_argv(f"""
        import zounds_xr as zx
        from _documents_helpers import blocking_graph
        blocking_graph({store!r}, {flag_b!r}).process(meta={wav!r}, chunksize=zx.Seconds(5),
                                                      overwrite=True)
    """))
    kill_when_flagged(proc, flag_b)
    GATES["a"].set()
    writer_a.join(120)
    doc_id = done["id"]
    assert A.ids() == [doc_id] and A.stale_features(doc_id) == []
    np.testing.assert_allclose(A(doc_id).louder.values, tone(100) * 2, atol=1e-6)
    expected = zx.stft(zx.AudioSamples(tone(100) * 2, zx.SR8000()), magnitude=True)
    np.testing.assert_allclose(A(doc_id).spec.values, expected.values, rtol=1e-5, atol=1e-4)
    assert A._store.verify() == {}
    [left] = A._store.invisible_parts()  # the killed writer's, never visible
    assert A._store.vacuum(grace=0) == [left]
    assert healthy_blocking_graph(store).ids() == [doc_id]
