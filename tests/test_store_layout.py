"""Layout 2: parts, the Parquet catalog and its resolution rules, open_store, datatree."""
import json
import pathlib
import pickle
import warnings

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import xarray as xr
import zarr
from _documents_helpers import HOP_WINDOW, gain, spectral_graph, tone, write_wav

import zounds_xr as zx
from zounds_xr.documents import FeatureStore
from zounds_xr.documents import store as store_module


def _fragments(path):
    return sorted(p.name for p in (path / "catalog").glob("*.parquet"))


@pytest.fixture
def wavs(tmp_path):
    return [write_wav(tmp_path / f"{i}.wav", 0.5 + 0.25 * i, seed=i) for i in range(4)]


def test_a_part_holds_many_documents_back_to_back(tmp_path, wavs):
    Sound = spectral_graph(tmp_path / "f.zarr")
    report = zx.ingest(wavs, Sound, scheduler="synchronous", progress=False)
    assert len(report.processed) == 4
    cat = Sound.catalog()
    assert cat.index.name == "id" and list(cat.columns[:7]) == [
        "uri", "samplerate", "channels", "duration", "licensing", "description", "tags"]
    assert cat["fft.array"].nunique() == 1  # one part, one array
    assert cat["fft.frames"].dtype == np.int64 and cat["fft.offset"].dtype == np.int64
    store = zx.open_store(tmp_path / "f.zarr")
    offsets = sorted(zip(cat["fft.offset"], cat["fft.frames"], cat.index, strict=True))
    for (offset, frames, doc_id), nxt in zip(offsets, offsets[1:] + [None], strict=True):
        if nxt is not None:
            assert nxt[0] == offset + frames  # back to back
        rows = store.array(cat.loc[doc_id, "fft.array"])[offset:offset + frames]
        np.testing.assert_array_equal(rows, Sound(doc_id).fft.values)
        index = json.loads(cat.loc[doc_id, "fft.index"])
        assert index["type"] == "TimeIndex" and index["size"] == frames
        assert cat.loc[doc_id, "duration"] == pytest.approx(
            Sound(doc_id).louder.sizes["time"] / 8000)


def test_newest_fragment_wins_and_the_loser_is_vacuumed(tmp_path, wavs):
    path = tmp_path / "f.zarr"
    Sound = spectral_graph(path)
    doc_id = Sound.process(meta=wavs[0])
    first = Sound.catalog().loc[doc_id, "fft.array"]
    assert Sound.process(meta=wavs[0], overwrite=True) == doc_id
    second = Sound.catalog().loc[doc_id, "fft.array"]
    assert first != second and len(_fragments(path)) == 2 and Sound.ids() == [doc_id]
    store = Sound._store
    assert store.invisible_parts() == [first.split("/")[1]]
    assert store.vacuum(grace=0) == [first.split("/")[1]]
    np.testing.assert_allclose(Sound(doc_id).louder.values, tone(0.5) * 2, atol=1e-6)


def test_a_tombstone_hides_older_rows_only(tmp_path, wavs):
    path = tmp_path / "f.zarr"
    Sound = spectral_graph(path)
    ids = [Sound.process(meta=w) for w in wavs[:2]]
    Sound.delete(ids[0])
    assert Sound.ids() == [ids[1]] and not Sound.exists(ids[0])
    table = pq.read_table(path / "catalog" / _fragments(path)[-1])
    assert table.column("_status").to_pylist() == ["deleted"]
    with pytest.raises(zx.DocumentNotFoundError):
        Sound.delete(ids[0])
    assert Sound.process(meta=wavs[0]) == ids[0]  # newer than the tombstone: visible
    assert sorted(Sound.ids()) == sorted(ids)


def test_update_adds_a_feature_through_a_new_fragment(tmp_path, wavs):
    path = tmp_path / "f.zarr"
    First = zx.zarr_settings(path)(type("Sound", (zx.Document,), {
        "louder": zx.Feature(gain, needs=zx.Document.audio, factor=2.0, store=True)}))
    ids = [First.process(meta=w) for w in wavs[:3]]
    before = First.catalog()
    Sound = spectral_graph(path)  # same louder, adds a stored fft
    assert Sound.stale_features(ids[0]) == ["fft"]
    assert Sound.update() == {i: ["fft"] for i in sorted(ids)}
    after = Sound.catalog()
    assert len(_fragments(path)) == 4
    assert after["fft.array"].nunique() == 1  # the three documents' fft in one new part
    assert (after.loc[before.index, "louder.array"] == before["louder.array"]).all()
    assert Sound.update() == {i: [] for i in sorted(ids)}
    expected = zx.fft(zx.sliding_window(zx.AudioSamples(tone(0.75, seed=1) * 2, zx.SR8000()),
                                        HOP_WINDOW, zx.OggVorbisWindowingFunc()))
    np.testing.assert_allclose(Sound(ids[1]).fft.values, expected.values, atol=1e-5)
    assert zx.open_store(path).features == ["fft", "louder"]
    # compaction: one fragment, the same catalog
    assert Sound._store.compact() == 4
    assert len(_fragments(path)) == 1
    compacted = Sound.catalog()
    assert compacted.sort_index().equals(after.sort_index())
    # read fresh (this process's resolutions forgotten): the log says the compacted
    # fragment's ids are unique, and they are the same documents
    state = Sound._store.log.state()
    assert [r.get("unique_ids") for r in state.fragments.values()] == [True]
    store_module._RESOLVED.clear()
    fresh = FeatureStore(path)
    assert fresh.catalog().sort_index().equals(after.sort_index())
    store_module._RESOLVED.clear()
    assert FeatureStore(path).has([*ids, "nope"]).tolist() == [True] * 3 + [False]


def test_documents_whose_labels_differ_go_to_separate_arrays(tmp_path):
    rates = (8000, 16000)
    paths = [write_wav(tmp_path / f"{r}.wav", 0.5, samplerate=r) for r in rates]

    @zx.zarr_settings(tmp_path / "f.zarr")
    class Sound(zx.Document):
        spec = zx.Feature(zx.stft, needs=zx.Document.audio, wscheme=HOP_WINDOW,
                          wfunc=zx.HanningWindowingFunc(), store=True, magnitude=True)

    zx.ingest(paths, Sound, scheduler="synchronous", progress=False)
    cat = Sound.catalog()
    assert cat["spec.array"].nunique() == 2
    assert {a.split("/")[-2] for a in cat["spec.array"]} == {"spec", "spec.1"}
    shapes = {Sound(i).spec.shape[1] for i in cat.index}
    assert shapes == {161, 321}
    with pytest.raises(zx.StoreError, match="different labels"):
        Sound.frames("spec")
    one = Sound.frames("spec", [cat.index[0]])
    assert one.dims == ("frame", "frequency") and isinstance(
        one.xindexes["frequency"], zx.FrequencyIndex)


def test_open_store_is_read_only_and_picklable(tmp_path, wavs):
    Sound = spectral_graph(tmp_path / "f.zarr")
    ids = [Sound.process(meta=w) for w in wavs[:2]]
    store = zx.open_store(str(tmp_path / "f.zarr"))
    clone = pickle.loads(pickle.dumps(store))
    assert sorted(clone.catalog().index) == sorted(ids) and clone.features == ["fft", "louder"]
    doc = clone[ids[1]]
    assert set(doc) == {"fft", "louder"}
    np.testing.assert_array_equal(doc["fft"].values, Sound(ids[1]).fft.values)
    assert isinstance(doc["fft"].xindexes["time"], zx.TimeIndex)
    frames = clone.frames("louder", ids[::-1])
    np.testing.assert_array_equal(frames.values[:Sound(ids[1]).louder.sizes["time"]],
                                  Sound(ids[1]).louder.values)
    with pytest.raises(zx.StoreError, match="read-only"):
        clone.delete(ids[0])
    with pytest.raises(zx.StoreError, match="no feature store"):
        zx.open_store(tmp_path / "nothing.zarr")
    with pytest.raises(zx.DocumentNotFoundError):
        clone["nope"]


def test_plain_xarray_opens_the_store(tmp_path, wavs):
    @zx.zarr_settings(tmp_path / "f.zarr")
    class Sound(zx.Document):
        spec = zx.Feature(zx.stft, needs=zx.Document.audio, wscheme=HOP_WINDOW,
                          wfunc=zx.HanningWindowingFunc(), store=True, magnitude=True)
        mel = zx.Feature(zx.mel_spectrogram, needs=spec, n_mels=16, store=True)

    doc_id = Sound.process(meta=wavs[0])
    Sound.delete(Sound.process(meta=wavs[1]))  # a second fragment, and a tombstone
    Sound._store.compact()
    path = Sound.catalog().loc[doc_id, "mel.array"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tree = xr.open_datatree(tmp_path / "f.zarr", engine="zarr", consolidated=False)
    # the log is an empty group (its files are not Zarr nodes); the catalog is a plain
    # Parquet directory, which zarr names and skips: the only warning
    assert not tree["_log"].ds.variables and not tree["_log"].children
    assert "catalog" not in tree.children
    assert {str(w.message) for w in caught} == {
        "Object at catalog is not recognized as a component of a Zarr hierarchy."}
    # the fragments are a Parquet dataset for any reader, pandas' and pyarrow's plain
    # directory reads included
    table = pd.read_parquet(tmp_path / "f.zarr" / "catalog")
    assert doc_id in set(table["id"])
    assert doc_id in pq.read_table(tmp_path / "f.zarr" / "catalog").column("id").to_pylist()
    node = tree["/".join(path.split("/")[:-1])]
    mel = node.ds["mel"]
    assert mel.dims == ("time", "frequency") and mel.shape == Sound(doc_id).mel.shape
    assert node.ds["frequency"].attrs["units"] == "Hz"
    np.testing.assert_allclose(node.ds["frequency"].values,
                               Sound(doc_id).mel["frequency"].values)
    assert node.ds.attrs["time_step_units"] == "s" and node.ds.attrs["time_step"] == 0.02


def test_a_layout_1_store_says_how_to_rebuild(tmp_path):
    old = zarr.open_group(tmp_path / "old.zarr", mode="w")
    old.attrs["zounds_xr:store"] = {"layout": 1}
    old.create_group("0123abcd")
    Sound = spectral_graph(tmp_path / "old.zarr")
    for call in (Sound.ids, lambda: Sound.process(meta=write_wav(tmp_path / "a.wav", 0.2)),
                 lambda: zx.open_store(tmp_path / "old.zarr")):
        with pytest.raises(zx.StoreError, match="layout 1.*Rebuild.*ingest"):
            call()
    zarr.open_group(tmp_path / "other.zarr", mode="w").attrs["something"] = 1
    with pytest.raises(zx.StoreError, match="not a zounds_xr feature store"):
        spectral_graph(tmp_path / "other.zarr").ids()


def test_ingest_records_failures_in_the_store(tmp_path, wavs):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    Sound = spectral_graph(tmp_path / "f.zarr")
    report = zx.ingest([*wavs, str(broken)], Sound, scheduler="synchronous", progress=False)
    assert list(report.failed) == [str(broken)]
    failures = Sound._store.failures()
    assert list(failures["uri"]) == [str(broken)]
    assert "AudioDecodeError" in failures["error"].iloc[0]
    assert len(_fragments(tmp_path / "f.zarr")) == 1  # ingest compacts when it ends
    text = Sound._store.describe()
    assert "4 documents" in text and "1 failures" in text and "broken.wav" in text
    # a source that succeeds later is no longer a failure
    broken.write_bytes(pathlib.Path(wavs[0]).read_bytes())
    zx.ingest([str(broken)], Sound, scheduler="synchronous", progress=False)
    assert Sound._store.failures().empty


def test_in_memory_store_pickles_within_the_process(wavs):
    Sound = spectral_graph(FeatureStore.in_memory())
    doc_id = Sound.process(meta=wavs[0])
    clone = pickle.loads(pickle.dumps(Sound._store))
    assert clone.ids() == [doc_id]


def test_same_length_clips_are_computed_stacked_and_equal_one_piece(tmp_path, monkeypatch):
    from zounds_xr.documents import document as document_module

    calls = []
    original = document_module.Document._write.__func__

    def counting(cls, part, docs, sources, targets):
        calls.append(len(docs))
        return original(cls, part, docs, sources, targets)

    monkeypatch.setattr(document_module.Document, "_write", classmethod(counting))
    paths = [write_wav(tmp_path / f"{i}.wav", 0.5, samplerate=22050, seed=i)
             for i in range(5)]
    paths.append(write_wav(tmp_path / "longer.wav", 0.75, samplerate=22050, seed=9))
    stereo = tmp_path / "stereo.wav"
    import soundfile as sf

    sf.write(stereo, np.stack([tone(0.5, 22050), tone(0.5, 22050, seed=3)], axis=1), 22050,
             subtype="FLOAT")
    paths.append(str(stereo))

    @zx.zarr_settings(tmp_path / "f.zarr")
    class Clip(zx.Document):
        resampled = zx.Feature(zx.resample, needs=zx.Document.audio,
                               samplerate=zx.SR11025(), store=True)
        mel = zx.Feature(zx.mel_spectrogram, needs=resampled, n_mels=32, store=True)

    report = zx.ingest(paths, Clip, scheduler="synchronous", progress=False)
    assert len(report.processed) == 7 and not report.failed
    assert sorted(calls) == [1, 1, 5]  # five clips stacked; the longer one, the stereo
    for path in paths:
        doc = Clip(Clip.id_for(path))
        resampled = zx.resample(zx.load(path), zx.SR11025())
        np.testing.assert_allclose(doc.resampled.values, resampled.values, atol=1e-6)
        np.testing.assert_allclose(doc.mel.values,
                                   zx.mel_spectrogram(resampled, n_mels=32).values,
                                   rtol=1e-5, atol=1e-7)
        assert doc.meta.samplerate == 22050
        assert doc.meta.duration_seconds == pytest.approx(zx.load(path).sizes["time"] / 22050)


def test_stacked_clips_store_exactly_what_one_clip_at_a_time_stores(tmp_path, monkeypatch):
    # ingest stacks same-length mono clips, computes them in one call per function and
    # writes their rows in one append: the stored values and catalog rows must be the
    # ones each clip gets on its own (Document.process), bit for bit
    import soundfile as sf

    paths = []
    for i in range(9):
        path = tmp_path / f"c{i}.wav"
        sf.write(path, tone(0.5, 16000, seed=i), 16000, subtype="PCM_16" if i % 3 else "FLOAT")
        paths.append(str(path))

    def make(store):
        @zx.zarr_settings(store)
        class Clip(zx.Document):
            mel = zx.Feature(zx.mel_spectrogram, needs=zx.Document.audio, n_mels=32,
                             wscheme=zx.SR16000() * (160, 400), store=True)
            half = zx.Feature(zx.stft, needs=zx.Document.audio, store=True,
                              wscheme=zx.SR16000() * (256, 512))
            small = zx.Feature(np.abs, needs=half, store=True, store_as="float16")
        return Clip

    from zounds_xr.documents.parts import PartWriter

    written = []
    original = PartWriter.finish_stacked

    def spy(self, infos, chunks, docs):
        rows = original(self, infos, chunks, docs)
        written.append(0 if rows is None else len(rows))
        return rows

    monkeypatch.setattr(PartWriter, "finish_stacked", spy)
    Stacked, Single = make(tmp_path / "stacked.zarr"), make(tmp_path / "single.zarr")
    report = zx.ingest(paths, Stacked, scheduler="synchronous", progress=False)
    assert len(report.processed) == 9 and not report.failed
    assert written == [9]  # all nine in one stack, written in one append per feature
    for path in paths:
        Single.process(meta=path)
    stacked, single = Stacked.catalog(), Single.catalog()
    assert list(stacked.columns) == list(single.columns)
    for doc_id in stacked.index:
        a, b = Stacked(doc_id), Single(doc_id)
        for name in ("mel", "half", "small"):
            x, y = getattr(a, name), getattr(b, name)
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x.values, y.values)
            np.testing.assert_array_equal(x.time.values, y.time.values)
        ra, rb = stacked.loc[doc_id], single.loc[doc_id]
        for column in stacked.columns:
            if column.endswith((".array", ".offset")) or column.startswith("_"):
                continue
            assert ra[column] == rb[column] or (ra[column] != ra[column]
                                                and rb[column] != rb[column]), column
    offsets = stacked["mel.offset"].sort_values().to_numpy()
    frames = stacked["mel.frames"].to_numpy()
    np.testing.assert_array_equal(np.diff(offsets), frames[:-1])  # back to back


def test_finish_stacked_declines_what_must_be_written_one_by_one(tmp_path):
    # compressed audio (blocks per document), a chunk whose last dim is not the
    # stacked clips, and a chunk the sink refuses: nothing is recorded, and the
    # documents are then written one by one (each with its own outcome)
    @zx.zarr_settings(tmp_path / "f.zarr")
    class Clip(zx.Document):
        loud = zx.Feature(np.abs, needs=zx.Document.audio, store=True)
        coded = zx.Feature(np.abs, needs=zx.Document.audio, store=True, store_as="flac")

    fstore = Clip._store_for(None)
    part = fstore.part()
    audio = zx.AudioSamples(np.zeros((800, 3), np.float32), zx.SR8000())
    docs = [(f"{i:032x}", {"uri": None}) for i in range(3)]
    infos = {"loud": Clip._feature_info("loud")}
    assert part.finish_stacked({"coded": Clip._feature_info("coded")}, {"coded": audio},
                               docs) is None
    assert part.finish_stacked(infos, {"loud": audio.transpose("channel", "time")},
                               docs) is None
    dated = audio.copy(data=np.zeros((800, 3), "datetime64[ns]"))
    assert part.finish_stacked(infos, {"loud": dated}, docs) is None
    assert part.rows == []
    rows = part.finish_stacked(infos, {"loud": audio}, docs)
    assert [r["loud.offset"] for r in rows] == [0, 800, 1600]
    assert part.rows == rows
