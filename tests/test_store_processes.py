"""Layout 2 with real processes: kill -9 mid-ingest, two ingests at once, compaction
while another process reads."""
import subprocess
import time

import numpy as np
import pytest

import zounds_xr as zx

from _documents_helpers import python_argv, spectral_graph, tone, write_wav


def _corpus(tmp_path, n, seconds=1.5):
    audio = tmp_path / "audio"
    audio.mkdir(exist_ok=True)
    return [write_wav(audio / f"{i:03d}.wav", seconds, seed=i) for i in range(n)]


def _check_one_piece(Sound, wavs, seconds=1.5):
    """Every document equals the computation of its whole source at once."""
    assert sorted(Sound.ids()) == sorted(Sound.id_for(w) for w in wavs)
    for i, wav in enumerate(wavs):
        snd = Sound(Sound.id_for(wav))
        x = tone(seconds, seed=i) * 2
        np.testing.assert_allclose(snd.louder.values, x, atol=1e-6)
        expected = zx.fft(zx.sliding_window(zx.AudioSamples(x, zx.SR8000()),
                                            zx.SampleRate(zx.Milliseconds(20),
                                                          zx.Milliseconds(40)),
                                            zx.OggVorbisWindowingFunc()))
        # float32 FFTs agree to ~1e-5 of the peak across backends and stacked/single
        # computation (spectral/fft_backend.py), not to 1e-5 absolute
        peak = float(np.abs(expected.values).max())
        np.testing.assert_allclose(snd.fft.values, expected.values, atol=1e-5 * peak)
    assert Sound._store.verify() == {}


@pytest.mark.slow
def test_kill_9_mid_ingest_then_resume(tmp_path):
    wavs = _corpus(tmp_path, 24)
    store = str(tmp_path / "f.zarr")
    Sound = spectral_graph(store)
    zx.ingest(wavs[:8], Sound, scheduler="synchronous", progress=False)  # some visible
    log = tmp_path / "calls.log"
    proc = subprocess.Popen(python_argv(f"""
        import time
        import zounds_xr as zx
        from _documents_helpers import spectral_graph
        Sound = spectral_graph({store!r})
        Sound.versions(), Sound._feature_info("louder")  # versions of the real function
        def logged(x, factor):
            with open({str(log)!r}, "a") as f:
                f.write("call\\n")
            time.sleep(0.05)
            return x * factor
        Sound.louder.func = logged  # same stored version: the class's identity is cached
        zx.ingest({wavs!r}, Sound, scheduler="threads", num_workers=2, progress=False)
    """))
    deadline = time.monotonic() + 120
    while not (log.exists() and log.read_text().count("call") >= 6):
        assert proc.poll() is None, "the ingest ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.kill()  # SIGKILL
    proc.wait(10)
    assert sorted(Sound.ids()) == sorted(Sound.id_for(w) for w in wavs[:8])
    assert Sound._store.invisible_parts()  # what the killed tasks left, invisible
    report = zx.ingest(wavs, Sound, scheduler="synchronous", progress=False)
    assert len(report.skipped) == 8 and len(report.processed) == 16
    _check_one_piece(Sound, wavs)
    Sound._store.vacuum(grace=0)
    assert Sound._store.invisible_parts() == []


@pytest.mark.slow
def test_two_ingests_into_one_store_at_once(tmp_path):
    wavs = _corpus(tmp_path, 18)
    store = str(tmp_path / "f.zarr")
    halves = (wavs[:12], wavs[6:])  # overlapping: six documents written twice
    procs = [subprocess.Popen(python_argv(f"""
        import zounds_xr as zx
        from _documents_helpers import spectral_graph
        r = zx.ingest({half!r}, spectral_graph({store!r}), scheduler="synchronous",
                      progress=False)
        assert not r.failed, r.failed
    """)) for half in halves]
    assert [p.wait(300) for p in procs] == [0, 0]
    Sound = spectral_graph(store)
    _check_one_piece(Sound, wavs)
    assert Sound.catalog().index.is_unique


@pytest.mark.slow
def test_compacting_while_another_process_reads(tmp_path):
    wavs = _corpus(tmp_path, 10)
    store = str(tmp_path / "f.zarr")
    Sound = spectral_graph(store)
    ids = [Sound.process(meta=w) for w in wavs]  # ten fragments
    stop = tmp_path / "stop"
    reader = subprocess.Popen(python_argv(f"""
        import os, numpy as np
        import zounds_xr as zx
        from _documents_helpers import spectral_graph, tone
        ids, wavs = {ids!r}, {wavs!r}
        reads = 0
        while not os.path.exists({str(stop)!r}) or reads < 20:
            store = zx.open_store({store!r})
            i = reads % len(ids)
            got = store[ids[i]]["louder"].values
            np.testing.assert_allclose(got, tone(1.5, seed=i) * 2, atol=1e-6)
            reads += 1
        print(reads)
    """), stdout=subprocess.PIPE, text=True)
    try:
        for k in range(6):
            Sound.process(meta=wavs[k], overwrite=True)  # a new fragment for a document
            assert Sound._store.compact() >= 2
    finally:
        stop.write_text("stop")
    out, _ = reader.communicate(timeout=120)
    assert reader.returncode == 0 and int(out) >= 20
    assert len(list((tmp_path / "f.zarr" / "catalog").glob("*.parquet"))) == 1
    _check_one_piece(Sound, wavs)
