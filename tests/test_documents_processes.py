"""Crash safety and concurrent writers, with real processes on a local Zarr store."""
import subprocess

import numpy as np

import zounds_xr as zx

from _documents_helpers import (blocking_graph, healthy_blocking_graph, kill_when_flagged,
                               python_argv, tone, write_wav)


def test_a_killed_writer_leaves_nothing_visible_and_is_redone(tmp_path):
    store, flag = str(tmp_path / "f.zarr"), str(tmp_path / "flag")
    wav = write_wav(tmp_path / "a.wav", 4)
    proc = subprocess.Popen(python_argv(f"""
        import zounds_xr as zx
        from _documents_helpers import blocking_graph
        blocking_graph({store!r}, {flag!r}).process(meta={wav!r}, chunksize=zx.Seconds(1))
    """))
    kill_when_flagged(proc, flag)
    Sound = healthy_blocking_graph(store)
    doc_id = Sound.id_for(wav)
    assert Sound.ids() == [] and not Sound.exists(doc_id)
    [left] = Sound._store.invisible_parts()  # left behind, invisible
    assert Sound.process(meta=wav) == doc_id  # the next run redoes it
    assert Sound.ids() == [doc_id] and Sound._store.invisible_parts() == [left]
    assert Sound._store.vacuum(grace=3600) == []  # it might be a running writer's
    assert Sound._store.vacuum(grace=0) == [left] and Sound._store.invisible_parts() == []
    np.testing.assert_allclose(Sound(doc_id).louder.values, tone(4) * 2, atol=1e-6)
    assert blocking_graph(store, flag).versions()["louder"] != Sound.versions()["louder"]


def test_two_processes_write_different_documents_at_once(tmp_path):
    store = str(tmp_path / "f.zarr")
    wavs = [write_wav(tmp_path / f"{i}.wav", 6, seed=i) for i in range(2)]
    procs = [subprocess.Popen(python_argv(f"""
        import zounds_xr as zx
        from _documents_helpers import spectral_graph
        spectral_graph({store!r}).process(meta={wav!r}, chunksize=zx.Seconds(0.5))
    """)) for wav in wavs]
    assert [p.wait(120) for p in procs] == [0, 0]
    from _documents_helpers import spectral_graph

    Sound = spectral_graph(store)
    assert sorted(Sound.ids()) == sorted(Sound.id_for(w) for w in wavs)
    for i, wav in enumerate(wavs):
        snd = Sound(Sound.id_for(wav))
        np.testing.assert_allclose(snd.louder.values, tone(6, seed=i) * 2, atol=1e-6)
        assert snd.fft.sizes["time"] == 1 + -(-(48000 - 320) // 160)
    assert zx.Document.ids(store=store) == Sound.ids()
