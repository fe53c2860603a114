"""Directory and CompositeDataset on files written with soundfile in tmp_path."""
from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile

import zounds_xr as zx
from zounds_xr.datasets import AUDIO_EXTENSIONS, audio_extensions


def write(path, samplerate=8000, channels=1, frames=160, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.zeros((frames, channels)), samplerate, **kwargs)
    return path


@pytest.fixture
def corpus(tmp_path):
    """A folder of nested audio files, non-audio files and a corrupt WAV."""
    root = tmp_path / "corpus"
    write(root / "b.wav", 8000, 1)
    write(root / "a.flac", 16000, 2)
    write(root / "drums" / "kick.WAV", 11025, 1)
    write(root / "drums" / "deep" / "loop.ogg", 22050, 2, format="OGG", subtype="VORBIS")
    write(root / "drums" / "snare.aiff", 44100, 1)
    (root / "notes.txt").write_text("not audio")
    (root / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "README").write_text("no extension")
    (root / "folder.wav").mkdir()  # a folder named like audio is not a file
    (root / "drums" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00garbage" * 3)
    (root / "drums" / "empty.flac").write_bytes(b"")
    return root


def rel(ds, metas):
    return [os.path.relpath(m.uri, ds.path).replace(os.sep, "/") for m in metas]


def test_directory_recurses_sorted_and_keeps_audio_only(corpus):
    ds = zx.Directory(corpus)
    metas = list(ds)
    assert rel(ds, metas) == ["a.flac", "b.wav", "drums/broken.wav", "drums/deep/loop.ogg",
                              "drums/empty.flac", "drums/kick.WAV", "drums/snare.aiff"]
    assert all(isinstance(m, zx.AudioMetaData) and isinstance(m.uri, str) for m in metas)
    assert all(os.path.isabs(m.uri) and os.path.isfile(m.uri) for m in metas)
    assert len(ds) == 7


def test_directory_reads_headers(corpus):
    by_name = {os.path.basename(m.uri): m for m in zx.Directory(corpus)}
    assert (by_name["a.flac"].samplerate, by_name["a.flac"].channels) == (16000, 2)
    assert (by_name["b.wav"].samplerate, by_name["b.wav"].channels) == (8000, 1)
    assert (by_name["kick.WAV"].samplerate, by_name["kick.WAV"].channels) == (11025, 1)
    assert (by_name["loop.ogg"].samplerate, by_name["loop.ogg"].channels) == (22050, 2)
    assert by_name["snare.aiff"].samplerate == 44100
    assert isinstance(by_name["a.flac"].samplerate, int)


def test_directory_corrupt_files_do_not_stop_iteration(corpus):
    by_name = {os.path.basename(m.uri): m for m in zx.Directory(corpus)}
    for name in ("broken.wav", "empty.flac"):
        assert by_name[name].samplerate is None and by_name[name].channels is None


def test_directory_pattern(corpus):
    ds = zx.Directory(corpus, pattern="*.wav")  # top level only
    assert rel(ds, ds) == ["b.wav"]
    ds = zx.Directory(corpus, pattern="drums/**/*.ogg")
    assert rel(ds, ds) == ["drums/deep/loop.ogg"]
    ds = zx.Directory(corpus / "drums", pattern="*")
    assert rel(ds, ds) == ["broken.wav", "empty.flac", "kick.WAV", "snare.aiff"]


def test_directory_is_reiterable_and_sees_new_files(corpus):
    ds = zx.Directory(corpus)
    assert list(ds) == list(ds)
    write(corpus / "new" / "c.wav")
    assert len(ds) == 8 and "new/c.wav" in rel(ds, ds)


def test_directory_relative_path_gives_absolute_uris(corpus, monkeypatch):
    monkeypatch.chdir(corpus.parent)
    ds = zx.Directory("corpus")
    assert ds.path == corpus and os.path.isabs(next(iter(ds)).uri)
    assert "Directory(" in repr(ds)


def test_directory_uris_load(corpus):
    meta = next(m for m in zx.Directory(corpus) if m.uri.endswith("b.wav"))
    data, sr = soundfile.read(meta.uri)
    assert sr == meta.samplerate and data.shape == (160,)


def test_directory_errors(tmp_path):
    with pytest.raises(zx.ParameterError, match="not an existing folder"):
        zx.Directory(tmp_path / "missing")
    write(tmp_path / "x.wav")
    with pytest.raises(zx.ParameterError):
        zx.Directory(tmp_path / "x.wav")  # a file, not a folder
    with pytest.raises(zx.ParameterError):
        zx.Directory(tmp_path, pattern="/abs/*.wav")
    with pytest.raises(zx.ParameterError):
        zx.Directory(tmp_path, pattern="")
    with pytest.raises(zx.ParameterError):
        zx.Directory(None)
    ds = zx.Directory(tmp_path / ".")
    (tmp_path / "x.wav").unlink()
    tmp_path.rmdir()
    with pytest.raises(zx.ParameterError, match="no longer a folder"):
        list(ds)


def test_empty_directory(tmp_path):
    ds = zx.Directory(tmp_path)
    assert list(ds) == [] and len(ds) == 0


def test_audio_extensions_follow_libsndfile():
    assert AUDIO_EXTENSIONS == audio_extensions()
    formats = soundfile.available_formats()
    assert {"wav", "wave", "flac", "aif", "aiff", "aifc", "au", "caf", "w64", "rf64"} <= (
        AUDIO_EXTENSIONS)
    assert ("ogg" in AUDIO_EXTENSIONS) == ("OGG" in formats)
    assert ("opus" in AUDIO_EXTENSIONS) == ("OGG" in formats)
    assert ("mp3" in AUDIO_EXTENSIONS) == ("MP3" in formats)
    assert not {"raw", "mat", "mpc", "txt", "png", ""} & AUDIO_EXTENSIONS
    assert all(e == e.lower() and not e.startswith(".") for e in AUDIO_EXTENSIONS)


# -- CompositeDataset ---------------------------------------------------------------------------
def test_composite_chains_in_order(tmp_path):
    write(tmp_path / "one" / "a.wav")
    write(tmp_path / "two" / "b.wav")
    write(tmp_path / "two" / "c.flac")
    extra = [zx.AudioMetaData(uri="http://127.0.0.1:1/x.wav")]
    ds = zx.CompositeDataset(zx.Directory(tmp_path / "two"), zx.Directory(tmp_path / "one"),
                             extra)
    names = [os.path.basename(m.uri) for m in ds]
    assert names == ["b.wav", "c.flac", "a.wav", "x.wav"]
    assert len(ds) == 4
    assert [m.uri for m in ds] == [m.uri for m in ds]  # re-iterable
    nested = zx.CompositeDataset(ds, zx.Directory(tmp_path / "one"))
    assert len(list(nested)) == 5


def test_composite_len_needs_sized_members(tmp_path):
    class Unsized:
        def __iter__(self):
            yield zx.AudioMetaData(uri="u.wav")

    ds = zx.CompositeDataset(zx.Directory(tmp_path), Unsized())
    with pytest.raises(TypeError):
        len(ds)
    assert [m.uri for m in ds] == ["u.wav"]


@pytest.mark.parametrize("bad", [3, "folder", b"x", iter([])])
def test_composite_rejects_non_datasets(bad):
    with pytest.raises(zx.ParameterError):
        zx.CompositeDataset(bad)


def test_composite_needs_a_dataset():
    with pytest.raises(zx.ParameterError, match="at least one"):
        zx.CompositeDataset()


def test_public_names():
    from zounds_xr import datasets

    for name in ("Directory", "CompositeDataset", "FreeSoundSearch", "InternetArchive",
                 "PhatDrumLoops"):
        assert getattr(zx, name) is getattr(datasets, name)
    assert issubclass(datasets.DatasetError, zx.ZoundsError)
