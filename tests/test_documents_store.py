"""The feature-document contract on a real local Zarr store."""
import pickle

import cloudpickle
import dask.array as da
import numpy as np
import pytest
import zarr

import zounds_xr as zx
from zounds_xr.documents import AudioFeature, FeatureStore

from _documents_helpers import HOP_WINDOW, gain, spectral_graph, tone, write_wav

CALLS = []


def counted_gain(x, factor):
    CALLS.append(x.sizes["time"])
    return x * factor


def _expected_fft(x, rate):
    samples = zx.AudioSamples(x * 2.0, zx.audio_sample_rate(rate))
    return zx.fft(zx.sliding_window(samples, HOP_WINDOW, zx.OggVorbisWindowingFunc()))


def test_streamed_document_equals_one_piece(tmp_path):
    Sound = spectral_graph(tmp_path / "f.zarr")
    wav = write_wav(tmp_path / "a.wav", 3.3)
    doc_id = Sound.process(meta=wav, chunksize=zx.Seconds(0.37))
    snd = Sound(doc_id)
    assert isinstance(snd.fft.data, da.Array) and isinstance(snd.louder.data, da.Array)
    expected = _expected_fft(tone(3.3), 8000)
    assert snd.fft.shape == expected.shape
    np.testing.assert_allclose(snd.fft.values, expected.values, rtol=0, atol=1e-5)
    assert snd.fft.xindexes["time"].equals(expected.xindexes["time"])
    assert isinstance(snd.fft.xindexes["frequency"], zx.FrequencyIndex)
    assert snd.fft.xindexes["frequency"].equals(expected.xindexes["frequency"])
    # not stored: computed lazily from the stored ancestor
    assert isinstance(snd.mag.data, da.Array)
    np.testing.assert_allclose(snd.mag.values, np.abs(expected.values), atol=1e-5)
    assert snd.windowed.dims == ("time", "window")
    part = snd.fft.sel(time=zx.TimeSlice(zx.Seconds(1), start=zx.Seconds(1)))
    assert isinstance(part.data, da.Array) and 50 <= part.sizes["time"] <= 52
    assert snd.meta.samplerate == 8000 and snd.meta.uri == wav


def test_default_id_comes_from_the_path_and_reprocessing_finds_it(tmp_path, monkeypatch):
    Sound = spectral_graph(tmp_path / "f.zarr")
    wav = write_wav(tmp_path / "a.wav", 1)
    doc_id = Sound.process(meta=wav)
    monkeypatch.chdir(tmp_path)
    assert Sound.id_for("a.wav") == doc_id == Sound.id_for(zx.AudioMetaData(uri=wav))
    assert Sound.process(meta="a.wav") == doc_id
    assert Sound.ids() == [doc_id]
    assert Sound.id_for(b"bytes") is None
    a = Sound.process(meta=open(wav, "rb").read())
    b = Sound.process(meta=open(wav, "rb").read())
    assert a != b and len(a) == 32
    assert len(Sound) == 3


def test_iterate_exists_delete_and_unknown_ids(tmp_path):
    Sound = spectral_graph(tmp_path / "f.zarr")
    first = Sound.process(meta=write_wav(tmp_path / "a.wav", 0.5), _id="first")
    Sound.process(meta=write_wav(tmp_path / "b.wav", 0.5), _id="second")
    assert sorted(d.id for d in Sound) == ["first", "second"]
    assert Sound.exists(first) and "second" in Sound and not Sound.exists("nope")
    with pytest.raises(zx.DocumentNotFoundError):
        Sound("nope")
    with pytest.raises(KeyError):
        Sound("nope")
    Sound.delete("first")
    del Sound["second"]
    assert Sound.ids() == [] and len(Sound) == 0 and bool(Sound)
    with pytest.raises(zx.DocumentNotFoundError):
        Sound.delete("first")
    with pytest.raises(zx.ParameterError):
        Sound.process(meta=write_wav(tmp_path / "c.wav", 0.1), _id="a/b")


def test_bad_input_leaves_nothing(tmp_path):
    Sound = spectral_graph(tmp_path / "f.zarr")
    with pytest.raises(zx.AudioDecodeError):
        Sound.process(meta=b"this is not audio")
    with pytest.raises(zx.ZoundsError):
        Sound.process(meta=str(tmp_path / "missing.wav"))
    assert Sound.ids() == [] and Sound._store.invisible_parts() == []


def test_a_failing_feature_removes_the_partial_document(tmp_path):
    def explode(x):
        if x.xindexes["time"].start > 0:
            raise RuntimeError("boom")
        return x

    @zx.zarr_settings(tmp_path / "f.zarr")
    class Sound(zx.Document):
        bad = zx.Feature(explode, needs=zx.Document.audio, store=True)

    with pytest.raises(RuntimeError, match="boom"):
        Sound.process(meta=write_wav(tmp_path / "a.wav", 1), chunksize=zx.Seconds(0.25))
    assert Sound.ids() == [] and Sound._store.invisible_parts() == []


def test_versions_and_update_compute_only_what_is_stale(tmp_path):
    store = tmp_path / "f.zarr"
    wav = write_wav(tmp_path / "a.wav", 2)

    def graph(factor, with_extra=False):
        class Sound(zx.Document):
            louder = zx.Feature(counted_gain, needs=zx.Document.audio, factor=factor,
                                store=True)
            quieter = zx.Feature(gain, needs=zx.Document.audio, factor=0.5, store=True)
            if with_extra:
                rect = zx.Feature(np.abs, needs=louder, store=True)
        return zx.zarr_settings(store)(Sound)

    Sound = graph(2.0)
    doc_id = Sound.process(meta=wav, chunksize=zx.Seconds(1))
    assert graph(2.0).versions() == Sound.versions()
    assert graph(3.0).versions()["louder"] != Sound.versions()["louder"]
    assert graph(3.0).versions()["quieter"] == Sound.versions()["quieter"]
    quieter = ["quieter.array", "quieter.offset", "quieter.version"]
    quieter_before = Sound.catalog().loc[doc_id, quieter].tolist()

    # adding a feature: computed from the stored, current ancestor (no re-decode)
    CALLS.clear()
    Extra = graph(2.0, with_extra=True)
    assert Extra.stale_features(doc_id) == ["rect"]
    assert Extra.update() == {doc_id: ["rect"]}
    assert CALLS == []
    np.testing.assert_allclose(Extra(doc_id).rect.values, np.abs(tone(2) * 2), atol=1e-6)
    assert Extra.update() == {doc_id: []}

    # changing a parameter: only that feature (and what depends on it) is recomputed
    Changed = graph(3.0, with_extra=True)
    assert sorted(Changed.stale_features(doc_id)) == ["louder", "rect"]
    # a stale stored feature reads as computed from its ancestors, lazily
    np.testing.assert_allclose(Changed(doc_id).louder.values, tone(2) * 3, atol=1e-6)
    CALLS.clear()
    assert Changed.process(meta=wav) == doc_id  # processing again = update
    assert sum(CALLS) == 16000  # louder recomputed once, by re-decoding the source
    assert Changed.stale_features(doc_id) == []
    np.testing.assert_allclose(Changed(doc_id).rect.values, np.abs(tone(2) * 3), atol=1e-6)
    # the untouched feature is still read from the part that first wrote it
    assert Changed.catalog().loc[doc_id, quieter].tolist() == quieter_before
    assert Changed.catalog().loc[doc_id, "louder.array"] != Sound.catalog().loc[
        doc_id, "quieter.array"]


def test_update_needs_the_audio_source_when_audio_is_not_stored(tmp_path):
    store = tmp_path / "f.zarr"

    def graph(factor):
        class Sound(zx.Document):
            louder = zx.Feature(gain, needs=zx.Document.audio, factor=factor, store=True)
        return zx.zarr_settings(store)(Sound)

    doc_id = graph(2.0).process(meta=sf_bytes(tone(1)))
    with pytest.raises(zx.StoreError, match="cannot be opened again"):
        graph(3.0).update(doc_id)
    with pytest.raises(zx.StoreError):
        graph(2.0)(doc_id).audio


def sf_bytes(x, rate=8000, fmt="WAV"):
    return zx.AudioSamples(x, zx.audio_sample_rate(rate)).zx.encode(fmt=fmt,
                                                                     subtype="FLOAT").read()


def test_stored_audio_as_flac_and_ogg_decodes_only_the_blocks_read(tmp_path):
    x = tone(23, 11025)

    @zx.zarr_settings(tmp_path / "f.zarr")
    class Sound(zx.Document):
        audio = AudioFeature(store=True, store_as="flac")
        ogg = zx.Feature(gain, needs=zx.Document.audio, factor=1.0, store=True,
                         store_as="ogg")
        half = zx.Feature(gain, needs=audio, factor=0.5, store=True, store_as="float16")

    doc_id = Sound.process(meta=sf_bytes(x, 11025), chunksize=zx.Seconds(3))
    snd = Sound(doc_id)
    assert snd.audio.zx.samplerate == zx.SR11025() and snd.audio.dtype == np.float32
    np.testing.assert_allclose(snd.audio.values, x, atol=1 / 32000)
    ts = zx.TimeSlice(zx.Seconds(2), start=zx.Seconds(11))
    part = snd.ogg.sel(time=ts)
    assert part.sizes["time"] == 22050 and part.data.npartitions <= 2
    assert snd.ogg.data.npartitions == 5
    corr = np.corrcoef(part.values, x[11 * 11025:13 * 11025])[0, 1]
    assert corr > 0.99
    assert snd.half.dtype == np.float16
    np.testing.assert_allclose(snd.half.values, x * 0.5, atol=1e-3)
    # the audio is stored: a new feature is computed from it, not from the source
    assert Sound.exists(doc_id)


def test_in_memory_settings_and_pickling(tmp_path):
    def make():
        @zx.simple_in_memory_settings
        class Sound(zx.Document):
            louder = zx.Feature(gain, needs=zx.Document.audio, factor=2.0, store=True)
            spec = zx.Feature(zx.stft, needs=louder, wscheme=HOP_WINDOW,
                              wfunc=zx.HanningWindowingFunc(), store=True)
        return Sound

    Sound = make()
    doc_id = Sound.process(meta=sf_bytes(tone(1)), chunksize=zx.Seconds(0.3))
    assert Sound(doc_id).spec.dims == ("time", "frequency")
    expected = zx.stft(zx.AudioSamples(tone(1) * 2, zx.SR8000()), HOP_WINDOW,
                       zx.HanningWindowingFunc())
    np.testing.assert_allclose(Sound(doc_id).spec.values, expected.values, atol=1e-5)
    Again = pickle.loads(cloudpickle.dumps(Sound))
    assert Again.ids() == [doc_id]
    np.testing.assert_array_equal(Again(doc_id).louder.values, Sound(doc_id).louder.values)


def test_fsspec_url_store_and_cloudpickled_class(tmp_path):
    url = f"memory://zounds-test/{tmp_path.name}/features.zarr"
    Sound = spectral_graph(url)
    doc_id = Sound.process(meta=sf_bytes(tone(1)))
    Again = pickle.loads(cloudpickle.dumps(Sound))
    assert Again.ids() == [doc_id]
    assert isinstance(Again._store, FeatureStore) and Again._store.url == url
    np.testing.assert_allclose(Again(doc_id).fft.values, _expected_fft(tone(1), 8000).values,
                               atol=1e-5)
    store = FeatureStore(url)
    assert store.ids() == [doc_id]


def test_store_per_call_and_unbound_class(tmp_path):
    class Sound(zx.Document):
        louder = zx.Feature(gain, needs=zx.Document.audio, factor=2.0, store=True)

    with pytest.raises(zx.StoreError, match="no store"):
        Sound.ids()
    doc_id = Sound.process(meta=sf_bytes(tone(0.5)), store=tmp_path / "f.zarr")
    assert Sound.ids(store=str(tmp_path / "f.zarr")) == [doc_id]
    assert Sound(doc_id, store=tmp_path / "f.zarr").louder.sizes["time"] == 4000


def test_graph_errors():
    other = zx.Feature(np.abs, needs=zx.Document.audio)
    with pytest.raises(zx.ParameterError, match="not a feature"):
        class Bad(zx.Document):
            x = zx.Feature(np.abs, needs=other)
    with pytest.raises(zx.ParameterError):
        zx.Feature(np.abs)
    with pytest.raises(zx.ParameterError):
        zx.Feature(np.abs, needs=zx.Document.audio, store_as="mp3")
    with pytest.raises(zx.ParameterError):
        zx.Feature(np.abs, needs=zx.Document.meta)


@pytest.mark.parametrize("seconds, sharded", [(1.0, False), (90.0, True)])
def test_short_features_are_one_exact_chunk_long_ones_are_sharded(tmp_path, seconds, sharded,
                                                                  monkeypatch):
    from zounds_xr.documents import parts

    monkeypatch.setattr(parts, "SHARD_BYTES", 1 << 20)  # 90 s of FFT frames: shards
    Sound = spectral_graph(tmp_path / "f.zarr")
    doc_id = Sound.process(meta=write_wav(tmp_path / "a.wav", seconds),
                           chunksize=zx.Seconds(20))
    path = Sound.catalog().loc[doc_id, "fft.array"]
    array = zarr.open_array(tmp_path / "f.zarr" / path, mode="r")
    assert (array.shards is not None) == sharded
    if not sharded:  # no padding to a whole shard: the stored bytes are the data's
        assert array.chunks == array.shape
    np.testing.assert_allclose(Sound(doc_id).fft.values,
                               _expected_fft(tone(seconds), 8000).values, atol=1e-5)


def test_chunksize_follows_one_rule_on_first_write_and_update(tmp_path):
    store = tmp_path / "f.zarr"
    wav = write_wav(tmp_path / "a.wav", 1)

    def graph(factor):
        class Sound(zx.Document):
            louder = zx.Feature(counted_gain, needs=zx.Document.audio, factor=factor,
                                store=True)
            spec = zx.Feature(zx.stft, needs=louder, wscheme=HOP_WINDOW, store=True)
        return zx.zarr_settings(store)(Sound)

    CALLS.clear()
    doc_id = graph(2.0).process(meta=wav, chunksize=1000)  # frames of the source
    assert CALLS == [1000] * 8
    Changed = graph(3.0)
    with pytest.raises(zx.ParameterError, match="chunksize"):
        Changed.update(doc_id, chunksize=0)
    CALLS.clear()
    assert Changed.update(doc_id, chunksize=2000) == {doc_id: ["louder", "spec"]}
    assert CALLS == [2000] * 4
    expected = zx.stft(zx.AudioSamples(tone(1) * 3, zx.SR8000()), HOP_WINDOW)
    np.testing.assert_allclose(Changed(doc_id).spec.values, expected.values, atol=1e-5)
    for bad in (-1, 0, 2.5, "x", True):
        with pytest.raises(zx.ParameterError):
            Changed.process(meta=wav, chunksize=bad)


@pytest.mark.parametrize("path", ["", "file"])
def test_zarr_settings_refuses_an_empty_path_or_a_file(tmp_path, path):
    if path:
        path = tmp_path / "a-file"
        path.write_text("not a store")
    with pytest.raises(zx.ZoundsError, match="path|file"):
        zx.zarr_settings(path)
