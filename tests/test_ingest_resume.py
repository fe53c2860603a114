"""Ingest resumes from what the store committed, and nothing else.

A document is complete when the store holds its rows with a current version for every
stored feature of the graph: not a status column, not a cache of the process that
wrote it. These tests re-declare the Document class (as a re-run notebook cell or a
fresh process does) between runs, under every scheduler.
"""
import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import zounds_xr as zx

# one declaration, executed here and in fresh processes: "the same code"
DECLARATION = """
import zounds_xr as zx

def declare(path, n_mels=32, with_mfcc=False, n_mfcc=13):
    class Sound(zx.Document):
        resampled = zx.Feature(zx.resample, needs=zx.Document.audio,
                               samplerate=zx.SR11025(), store=True)
        mel = zx.Feature(zx.mel_spectrogram, needs=resampled, n_mels=n_mels, store=True)
        if with_mfcc:
            mfcc = zx.Feature(zx.mfcc, needs=mel, n_mfcc=n_mfcc, store=True)
    return zx.zarr_settings(path)(Sound)
"""

FRESH = DECLARATION + """
import json, sys
Sound = declare(sys.argv[1], with_mfcc=sys.argv[3] == "mfcc")
if sys.argv[2] == "versions":
    print(json.dumps(Sound.versions()))
else:
    if __name__ == "__main__":
        report = zx.ingest(zx.Directory(sys.argv[4]), Sound, scheduler=sys.argv[2],
                           num_workers=2, progress=False)
        print(json.dumps({"processed": report.processed, "skipped": report.skipped,
                          "failed": sorted(report.failed), "updated": report.updated}))
"""


def declare(*args, **kwargs):
    namespace: dict = {}
    exec(DECLARATION, namespace)  # a new class object each time, as a re-run cell makes
    return namespace["declare"](*args, **kwargs)


def fresh(tmp_path, *args) -> dict:
    script = tmp_path / "fresh.py"
    script.write_text(FRESH)
    done = subprocess.run([sys.executable, str(script), *map(str, args)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def mixed(tmp_path):
    """13 good sources of mixed formats, rates, lengths and channel counts, and 8
    broken ones (junk, truncated, empty, a text file, a header without data)."""
    audio = tmp_path / "audio"
    (audio / "sub").mkdir(parents=True)
    rng = np.random.default_rng(7)
    good = []
    specs = [("wav", 16000, 1, "PCM_16"), ("flac", 22050, 2, "PCM_24"),
             ("wav", 44100, 1, "FLOAT"), ("ogg", 22050, 1, "VORBIS"),
             ("aiff", 8000, 3, "PCM_16"), ("wav", 48000, 2, "PCM_16")]
    for i in range(13):
        ext, rate, channels, subtype = specs[i % len(specs)]
        seconds = 0.25 + 0.25 * (i % 3)
        shape = (int(rate * seconds), channels) if channels > 1 else int(rate * seconds)
        path = audio / ("sub" if i % 4 == 0 else "") / f"good{i:02d}.{ext}"
        sf.write(path, rng.uniform(-0.5, 0.5, shape).astype("float32"), rate,
                 subtype=subtype)
        good.append(str(path))
    wav = next(p for p in good if p.endswith(".wav"))
    broken = {
        "junk.wav": b"RIFF\x00\x00\x00\x00WAVEjunk",
        "empty.wav": b"",
        "text.flac": b"this is not audio\n" * 10,
        "truncated.flac": pathlib.Path(good[1]).read_bytes()[:60],
        "noise.ogg": rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(),
        "sub/headonly.aiff": b"FORM\x00\x00\x00\x04AIFF",
        "zeros.mp3": bytes(2000),
        "cut.wav": pathlib.Path(wav).read_bytes()[:30],
    }
    for name, data in broken.items():
        (audio / name).write_bytes(data)
    return audio, sorted(good), sorted(str(audio / n) for n in broken)


SCHEDULERS = ["threads", "processes", "synchronous"]


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_reingest_after_failures_in_a_fresh_process_reprocesses_nothing(tmp_path, mixed,
                                                                        scheduler):
    audio, good, broken = mixed
    store = tmp_path / "f.zarr"
    first = zx.ingest(zx.Directory(audio), declare(store), scheduler=scheduler,
                      num_workers=2, progress=False)
    assert sorted(first.failed) == broken and len(first.processed) == len(good)
    again = fresh(tmp_path, store, scheduler, "", audio)
    assert again["processed"] == [] and again["updated"] == {}
    assert sorted(again["skipped"]) == sorted(first.processed)
    assert again["failed"] == broken  # the broken files are tried again


def test_reingest_with_a_redeclared_class_in_process_reprocesses_nothing(tmp_path, mixed):
    audio, good, broken = mixed
    store = tmp_path / "f.zarr"
    first = zx.ingest(zx.Directory(audio), declare(store), progress=False)
    for scheduler in SCHEDULERS:
        again = zx.ingest(zx.Directory(audio), declare(store), scheduler=scheduler,
                          num_workers=2, progress=False)
        assert again.processed == [] and again.updated == {}
        assert sorted(again.skipped) == sorted(first.processed)
        assert sorted(again.failed) == broken


@pytest.mark.slow
def test_reingest_on_a_distributed_cluster_reprocesses_nothing(tmp_path, mixed):
    distributed = pytest.importorskip("distributed")
    audio, good, broken = mixed
    store = tmp_path / "f.zarr"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        first = zx.ingest(zx.Directory(audio), declare(store), client=client,
                          progress=False)
        again = zx.ingest(zx.Directory(audio), declare(store), client=client,
                          progress=False)
    assert sorted(first.failed) == broken and len(first.processed) == len(good)
    assert again.processed == [] and sorted(again.skipped) == sorted(first.processed)
    assert sorted(again.failed) == broken


def test_a_status_column_lost_in_a_merge_does_not_make_documents_unfinished(tmp_path,
                                                                             mixed,
                                                                             monkeypatch):
    """Resume reads rows and versions: a compaction that loses the ``_status`` values
    (as the merge of fragments once did) leaves documents complete all the same."""
    import pyarrow.parquet as pq

    from zounds_xr.documents import catalog

    audio, good, broken = mixed
    store = tmp_path / "f.zarr"
    first = zx.ingest(good[:7], declare(store), progress=False)
    real = catalog.compaction_rows

    def losing(resolved, failures):
        rows = real(resolved, failures)
        rows["_status"] = None
        return rows

    with monkeypatch.context() as patch:
        patch.setattr(catalog, "compaction_rows", losing)
        zx.ingest(zx.Directory(audio), declare(store), progress=False)  # compacts
    [fragment] = (store / "catalog").glob("*.parquet")
    assert pq.read_table(fragment).column("_status").null_count == len(good) + len(broken)
    again = zx.ingest(zx.Directory(audio), declare(store), progress=False)
    assert again.processed == [] and len(again.skipped) == len(good)
    assert set(first.processed) <= set(again.skipped)
    assert sorted(again.failed) == broken


def _columns(catalog, feature):
    return catalog[[f"{feature}.{c}" for c in ("array", "offset", "frames", "version")]]


@pytest.mark.parametrize("scheduler", ["synchronous", "processes"])
def test_a_new_stored_feature_is_computed_from_stored_ancestors_only(tmp_path, mixed,
                                                                     scheduler):
    audio, good, _ = mixed
    store = tmp_path / "f.zarr"
    zx.ingest(good[:5], declare(store), progress=False)
    before = declare(store).catalog()
    # the sources are gone: the new feature can only come from what is stored
    shutil.move(audio, tmp_path / "moved")
    Sound = declare(store, with_mfcc=True)
    report = zx.ingest(good[:5], Sound, scheduler=scheduler, num_workers=2, progress=False)
    assert not report.failed and not report.skipped
    assert report.updated == {doc_id: ["mfcc"] for doc_id in before.index}
    assert sorted(report.processed) == sorted(before.index)
    after = Sound.catalog()
    for feature in ("resampled", "mel"):  # untouched: the same rows of the same arrays
        assert _columns(after, feature).equals(_columns(before, feature).loc[after.index])
    for doc_id in before.index:
        doc = Sound(doc_id)
        np.testing.assert_allclose(doc.mfcc.values, zx.mfcc(doc.mel, n_mfcc=13).values,
                                   rtol=1e-5, atol=1e-4)
        assert after.loc[doc_id, "mfcc.frames"] == after.loc[doc_id, "mel.frames"]
    # complete now, in this process and in a fresh one
    assert zx.ingest(good[:5], declare(store, with_mfcc=True), progress=False).skipped \
        == report.processed
    # a changed parameter makes only that feature stale
    changed = declare(store, with_mfcc=True, n_mfcc=8)
    report = zx.ingest(good[:5], changed, progress=False)
    assert report.updated == {doc_id: ["mfcc"] for doc_id in before.index}
    assert changed(before.index[0]).mfcc.sizes["coefficient"] == 8


def test_versions_are_the_same_in_any_process_and_follow_the_parameters(tmp_path):
    store = tmp_path / "f.zarr"
    here = declare(store, with_mfcc=True).versions()
    assert declare(store, with_mfcc=True).versions() == here
    assert fresh(tmp_path, store, "versions", "mfcc") == here
    changed = declare(store, n_mels=40, with_mfcc=True).versions()
    assert changed["resampled"] == here["resampled"]  # upstream of the change: the same
    assert changed["mel"] != here["mel"] and changed["mfcc"] != here["mfcc"]


def test_update_and_process_agree_with_ingest_on_what_is_complete(tmp_path, mixed):
    _, good, _ = mixed
    store = tmp_path / "f.zarr"
    doc_id = declare(store).process(meta=good[0])
    Sound = declare(store, with_mfcc=True)
    assert Sound.update() == {doc_id: ["mfcc"]}
    assert Sound.update() == {doc_id: []}
    assert str(zx.ingest([good[0]], Sound, progress=False)).startswith(
        "0 processed, 1 skipped")
