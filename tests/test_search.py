"""zounds_xr.search: the window rule, exact neighbour semantics, backends, and the index
kept in a real feature store (per-part files, incremental, checked, rebuilt)."""
import json
import math
import pathlib
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

import zounds_xr as zx
from zounds_xr.search import (
    BitsHasher,
    CodeIndex,
    FrameTimes,
    IndexRebuiltWarning,
    Segments,
    WindowRule,
    hamming_distance,
    open_index,
)
from zounds_xr.search import persist
from zounds_xr.search.index import smallest_upto


# ---- the window rule ---------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(window=st.integers(1, 9), hop=st.integers(1, 5), frames=st.integers(1, 80),
       t0=st.floats(0, 3), length=st.floats(0.001, 3))
def test_sub_windows_are_the_indexed_windows_fully_inside_the_selection(
        window, hop, frames, t0, length):
    rule = WindowRule(window, hop)
    times = FrameTimes(start=0.0, step=0.04, extent=0.1, frames=frames)
    t1 = t0 + length
    sel = rule.selection(times, t0, t1)
    indexed = set(rule.windows(np.array([frames]))[1].tolist())
    assert set(sel.starts.tolist()) <= indexed
    inside = [s for s in indexed if s + window <= frames and s * 0.04 >= t0 - 1e-9
              and (s + window - 1) * 0.04 + 0.1 <= t1 + 1e-9]
    if inside:  # exactly the document's windows whose frames all lie inside
        assert not sel.widened and sel.starts.tolist() == sorted(inside)
    else:  # widened to the document's one window nearest the selection's centre
        assert sel.widened and sel.starts.size == 1
        centre = (t0 + t1) / 2
        mid = [abs(s * 0.04 + ((window - 1) * 0.04 + 0.1) / 2 - centre) for s in indexed
               if s + window <= max(frames, window)]
        got = abs(sel.starts[0] * 0.04 + ((window - 1) * 0.04 + 0.1) / 2 - centre)
        assert got <= min(mid) + 1e-9 or sel.starts[0] in (0, max(indexed))
    assert 0 <= sel.first <= sel.starts[0] and sel.stop <= frames


def test_frames_fully_inside_not_overlapping():
    # frames every 10 ms, 30 ms long: [0.1, 0.4) holds frames 10..37 fully (28 frames),
    # while 31 overlap it; with a window of 28 frames exactly one sub-window fits
    times = FrameTimes(0.0, 0.01, 0.03, 100)
    sel = WindowRule(28, 1).selection(times, 0.1, 0.4)
    assert (sel.starts.tolist(), sel.first, sel.stop, sel.widened) == ([10], 10, 38, False)
    assert WindowRule(29, 1).selection(times, 0.1, 0.4).widened


def test_long_selections_keep_aligned_sub_windows():
    times = FrameTimes(0.0, 0.01, 0.01, 10_000)
    sel = WindowRule(8, 2).selection(times, 0, 100, max_windows=64)
    assert sel.starts.size <= 64 and sel.stride > 1
    assert np.all(sel.starts % 2 == 0) and np.all(np.diff(sel.starts) == 2 * sel.stride)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_window_rule_refuses_bad_sizes(bad):
    with pytest.raises(zx.ParameterError, match="positive number of frames"):
        WindowRule(bad, 1)


# ---- exact search with neighbour semantics -----------------------------------------------
def _codes_index(docs, window=4, hop=1, backend="numpy"):
    """A CodeIndex over documents of uint32 frame codes (BitsHasher windows)."""
    rule, hasher = WindowRule(window, hop), BitsHasher(32)
    codes, seg, start = [], [], []
    for i, frames in enumerate(docs):
        s = rule.windows(np.array([len(frames)]))[1]
        codes.append(hasher.codes(frames, s, window))
        seg.append(np.full(s.size, i))
        start.append(s)
    n = len(docs)
    segments = Segments(np.array([f"d{i}" for i in range(n)], dtype=object), np.zeros(n),
                        np.full(n, 0.01), np.full(n, 0.01),
                        np.array([len(f) for f in docs]))
    return CodeIndex(np.concatenate(codes), np.concatenate(seg), np.concatenate(start),
                     segments, rule, backend=backend), hasher


def _random_docs(rng, n=6, frames=200):
    return [rng.integers(1, 2 ** 32, size=frames, dtype=np.uint64).astype(np.uint32)
            for _ in range(n)]


def _query(index, hasher, docs, doc, t0, t1, **kw):
    times = index.segments.times(doc)
    return index.query(lambda a, b: docs[doc][a:b], times, t0, t1, hasher,
                       doc_id=f"d{doc}", **kw)


def test_an_indexed_window_queried_exactly_is_at_0_and_first(rng):
    docs = _random_docs(rng)
    docs[4] = docs[2].copy()  # an identical copy, later in the index
    index, hasher = _codes_index(docs)
    for doc, (t0, t1) in [(2, (0.5, 0.54)), (2, (1.0, 1.2)), (0, (0.0, 0.04))]:
        found, sel = _query(index, hasher, docs, doc, t0, t1, exclude=None)
        assert found[0].id == f"d{doc}" and found[0].distance == 0
        assert found[0].start == pytest.approx(sel.first * 0.01)
    found, _ = _query(index, hasher, docs, 2, 1.0, 1.2, exclude=None, k=3)
    assert [f.id for f in found[:2]] == ["d2", "d4"] and found[1].distance == 0
    # ... even when the copy comes first in the index and one result is asked for
    found, _ = _query(index, hasher, docs, 4, 1.0, 1.2, exclude=None, k=1)
    assert [(f.id, f.distance) for f in found] == [("d4", 0)]
    # the selection itself is left out by default, the document on request
    found, _ = _query(index, hasher, docs, 2, 1.0, 1.2, k=3)
    assert found[0].id == "d4" and not any(
        f.id == "d2" and f.start < 1.2 and f.end > 1.0 for f in found)
    found, _ = _query(index, hasher, docs, 2, 1.0, 1.2, exclude="document", k=10)
    assert found[0].id == "d4" and all(f.id != "d2" for f in found)


@pytest.mark.parametrize("length", [4, 5, 9, 23, 60])
def test_sub_window_matching_finds_an_inserted_stretch(rng, length):
    """A stretch of d0 pasted into d3 at another position is found there at distance 0,
    for selections of several lengths (the minimum over aligned sub-windows)."""
    docs = _random_docs(rng)
    src, dst = 37, 101
    docs[3][dst:dst + 80] = docs[0][src:src + 80]
    index, hasher = _codes_index(docs)
    t0 = (src + 3) * 0.01
    found, sel = _query(index, hasher, docs, 0, t0, t0 + (length - 1) * 0.01 + 0.01,
                        exclude="document", k=3)
    assert not sel.widened
    assert found[0].id == "d3" and found[0].distance == 0
    assert found[0].start == pytest.approx((dst + 3) * 0.01)
    assert found[1].distance > 0


def test_distance_is_the_minimum_over_aligned_sub_windows(rng):
    docs = _random_docs(rng, n=3)
    # d1 = d0 with noise everywhere but one stretch of 4 frames (one window) at 120
    docs[1] = docs[0] ^ rng.integers(1, 2 ** 32, size=200, dtype=np.uint64).astype(np.uint32)
    docs[1][120:124] = docs[0][120:124]
    index, hasher = _codes_index(docs)
    found, sel = _query(index, hasher, docs, 0, 1.0, 1.5, exclude="document", k=1)
    assert sel.starts.size == 47
    assert found[0].id == "d1" and found[0].distance == 0
    assert found[0].start == pytest.approx(1.0)  # the stretch aligned with the selection
    # brute force: min over j of d(query_j, window of d1 at the aligned position)
    q = hasher.codes(docs[0], sel.starts, 4)
    w = hasher.codes(docs[1], sel.starts, 4)
    assert min(int(hamming_distance(a[None], b)[0]) for a, b in zip(q, w, strict=True)) == 0


def test_numpy_and_faiss_agree(rng):
    pytest.importorskip("faiss")
    docs = _random_docs(rng, n=20, frames=300)
    a, hasher = _codes_index(docs, backend="numpy")
    b, _ = _codes_index(docs, backend="faiss")
    assert (a.backend, b.backend) == ("numpy", "faiss")
    for doc, t0, t1 in [(3, 0.2, 0.25), (7, 1.0, 2.0), (11, 0.0, 3.0)]:
        fa, _ = _query(a, hasher, docs, doc, t0, t1, k=15, exclude=None)
        fb, _ = _query(b, hasher, docs, doc, t0, t1, k=15, exclude=None)
        assert [f.distance for f in fa] == [f.distance for f in fb]
        assert fa[0] == fb[0]


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.integers(0, 40), min_size=1, max_size=300),
       count=st.integers(1, 400))
def test_smallest_upto_holds_the_nearest_and_their_ties(values, count):
    d = np.asarray(values, dtype=np.uint16)
    got = smallest_upto(d, count)
    want = np.sort(d)[min(count, d.size) - 1]
    assert np.array_equal(got, np.flatnonzero(d <= want))


def test_bad_queries(rng):
    docs = _random_docs(rng, n=2)
    index, hasher = _codes_index(docs)
    with pytest.raises(zx.ParameterError, match="exclude"):
        _query(index, hasher, docs, 0, 0, 1, exclude="all")
    with pytest.raises(zx.ParameterError, match="bits"):
        index.search(np.zeros((1, 3), np.uint64), np.array([0]))
    with pytest.raises(zx.ParameterError, match="empty"):
        _query(index, hasher, docs, 0, 1, 1)
    with pytest.raises(zx.ParameterError, match="backend"):
        CodeIndex(index.codes, index.window_segment, index.window_start, index.segments,
                  index.rule, backend="gpu")


# ---- the index in a real store -------------------------------------------------------------
def _sound(root):
    class Sound(zx.Document):
        fp = zx.Feature(zx.fingerprint, needs=zx.Document.audio, store=True)
        mel = zx.Feature(zx.mel_spectrogram, needs=zx.Document.audio, n_mels=32, store=True)

    return zx.zarr_settings(str(root / "store"))(Sound)


def _write_clips(folder, rng, names, seconds=1.5, rate=22050):
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    for i, name in enumerate(names):
        f0 = 200 * (i + 1)
        y = 0.3 * np.sin(2 * np.pi * (f0 + 300 * t) * t) + 0.05 * rng.normal(size=t.size)
        y *= (np.sin(2 * np.pi * (1 + i % 3) * t) > -0.3)
        sf.write(folder / f"{name}.wav", y, rate)


def _ids(store):
    cat = store.catalog()
    return {pathlib.Path(u).stem: i for i, u in cat["uri"].items()}


@pytest.fixture
def fp_store(tmp_path, rng):
    _write_clips(tmp_path / "a", rng, [f"a{i}" for i in range(4)])
    sound = _sound(tmp_path)
    zx.ingest(zx.Directory(str(tmp_path / "a")), sound, progress=False,
              scheduler="synchronous")
    return tmp_path, sound


def _files(root, feature="fp"):
    return sorted((root / "store" / "indexes" / feature).glob("*/parts/*.bin"))


def test_ingest_keeps_the_fingerprint_index_and_reopening_reads_it(fp_store, rng):
    root, sound = fp_store
    store = zx.open_store(root / "store")
    assert len(_files(root)) == 1  # made by ingest: fp holds codes
    index = open_index(store, "fp")
    assert index.hashed_parts == [] and len(index.loaded_parts) == 1
    # more clips: ingest hashes only their part
    _write_clips(root / "b", rng, ["b0", "b1"])
    before = {p: p.stat().st_mtime_ns for p in _files(root)}
    zx.ingest(zx.Directory(str(root / "b")), sound, progress=False, scheduler="synchronous")
    after = _files(root)
    assert len(after) == 2 and all(p.stat().st_mtime_ns == before[p] for p in before)
    index = open_index(zx.open_store(root / "store"), "fp")
    assert index.hashed_parts == [] and len(index.loaded_parts) == 2
    assert len(index.index.segments) == 6
    ids = _ids(store)
    r = index.neighbours(ids["b1"], 0.4, 0.9, exclude=None)
    assert r["results"][0].id == ids["b1"] and r["results"][0].distance == 0


def _combined(root, feature="fp"):
    return sorted((root / "store" / "indexes" / feature).glob("*/combined/*.bin"))


def test_a_damaged_index_file_is_rebuilt_not_used(fp_store):
    root, _ = fp_store
    store = zx.open_store(root / "store")
    good = open_index(store, "fp", write=False)
    for path in _combined(root):  # opening reads the part files only without it
        path.unlink()
    path = _files(root)[0]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    seen = []
    with pytest.warns(IndexRebuiltWarning, match="not usable"):
        again = open_index(store, "fp", progress=lambda *a: seen.append(a))
    assert again.hashed_parts == good.loaded_parts and seen and seen[-1][1] == seen[-1][2]
    np.testing.assert_array_equal(again.index.codes, good.index.codes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for path in _combined(root):
            path.unlink()
        assert open_index(store, "fp").hashed_parts == []  # rewritten, valid again
    # a truncated file and a file of another part are refused too
    for path in _combined(root):
        path.unlink()
    path = _files(root)[0]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(IndexRebuiltWarning):
        open_index(store, "fp")


def _same_index(a, b):
    np.testing.assert_array_equal(a.index.codes, b.index.codes)
    np.testing.assert_array_equal(a.index.window_start, b.index.window_start)
    np.testing.assert_array_equal(a.index.window_segment, b.index.window_segment)
    np.testing.assert_array_equal(a.index.segments.ids, b.index.segments.ids)
    np.testing.assert_array_equal(a.index.segments.frames, b.index.segments.frames)
    np.testing.assert_array_equal(a.summaries, b.summaries)


def test_the_combined_file_is_used_when_current_ignored_when_stale_or_damaged(
        fp_store, rng):
    root, sound = fp_store
    _write_clips(root / "b", rng, ["b0", "b1"])
    zx.ingest(zx.Directory(str(root / "b")), sound, progress=False, scheduler="synchronous")
    store = zx.FeatureStore(root / "store")
    # ingest combined the index for its last commit: opening reads that one file
    assert [p.stem for p in _combined(root)] == [str(store.version)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast = open_index(zx.open_store(root / "store"), "fp")
    assert fast.combined and fast.hashed_parts == [] and len(fast.loaded_parts) == 2
    for path in _files(root):  # the part files are not read: their loss is not seen
        path.rename(path.with_suffix(".away"))
    again = open_index(zx.open_store(root / "store"), "fp", write=False)
    assert again.combined
    for path in root.glob("store/indexes/fp/*/parts/*.away"):
        path.rename(path.with_suffix(".bin"))
    combined = _combined(root)[0]
    combined.rename(combined.with_suffix(".away"))
    slow = open_index(zx.open_store(root / "store"), "fp", write=False)
    assert not slow.combined and slow.hashed_parts == []
    combined.with_suffix(".away").rename(combined)
    _same_index(fast, slow)
    ids = _ids(store)
    assert fast.neighbours(ids["b1"], 0.4, 0.9, exclude=None)["results"] == \
        slow.neighbours(ids["b1"], 0.4, 0.9, exclude=None)["results"]
    # damaged: not used, warned, combined from the parts and written again
    path = _combined(root)[0]
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.warns(IndexRebuiltWarning, match="not usable.*checksum"):
        repaired = open_index(zx.open_store(root / "store"), "fp")
    assert not repaired.combined and repaired.hashed_parts == []
    _same_index(repaired, slow)
    assert open_index(zx.open_store(root / "store"), "fp").combined
    # stale: a commit later (a document deleted), the old file is not used and goes
    store.delete(ids["a2"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        after = open_index(zx.open_store(root / "store"), "fp")
    assert not after.combined and ids["a2"] not in set(after.index.segments.ids)
    assert [p.stem for p in _combined(root)] == [str(store.version)]
    now = open_index(zx.open_store(root / "store"), "fp")
    assert now.combined and len(now.index.segments) == 5
    _same_index(now, after)


def test_vacuum_deletes_only_index_files_of_parts_no_longer_committed(fp_store, rng):
    root, sound = fp_store
    _write_clips(root / "b", rng, ["b0", "b1"])
    zx.ingest(zx.Directory(str(root / "b")), sound, progress=False, scheduler="synchronous")
    store = zx.FeatureStore(root / "store")
    files = _files(root)
    assert len(files) == 2
    folder = files[0].parent
    hour = 3600 * 10**9
    old = folder / f"{time.time_ns() - 2 * hour:019d}-0123456789ab.bin"  # a killed writer
    young = folder / f"{time.time_ns():019d}-0123456789ab.bin"  # a writer still running
    foreign = folder / "notapart.bin"
    for path in (old, young, foreign):
        path.write_bytes(files[0].read_bytes())
    store.vacuum()
    assert not old.exists() and young.exists() and foreign.exists()
    assert all(p.exists() for p in files)  # committed parts' files stay
    # every document of the b part deleted: vacuum (no grace) deletes the part and its
    # index file, never the a part's
    ids = _ids(store)
    store.delete(ids["b0"])
    store.delete(ids["b1"])
    a_part, b_part = (p.stem for p in files)  # named by creation time
    assert b_part in store.vacuum(grace=0)
    assert {p.stem for p in _files(root)} == {a_part, foreign.stem}  # young's went too
    index = open_index(zx.open_store(root / "store"), "fp")
    assert index.hashed_parts == [] and len(index.index.segments) == 4


def test_faiss_threads_are_the_callers_choice_and_restored(rng):
    faiss = pytest.importorskip("faiss")
    docs = _random_docs(rng, n=5, frames=100)
    one, hasher = _codes_index(docs, backend="faiss")
    assert one.threads == 1
    before = faiss.omp_get_max_threads()
    found, _ = _query(one, hasher, docs, 2, 0.2, 0.4, exclude=None)
    assert found[0].distance == 0 and faiss.omp_get_max_threads() == before
    with pytest.raises(zx.ParameterError, match="threads"):
        CodeIndex(one.codes, one.window_segment, one.window_start, one.segments, one.rule,
                  threads=0)


def test_a_deleted_document_drops_out(fp_store):
    root, sound = fp_store
    store = zx.FeatureStore(root / "store")
    ids = _ids(store)
    store.delete(ids["a2"])
    index = open_index(zx.open_store(root / "store"), "fp")
    assert index.hashed_parts == []
    assert ids["a2"] not in set(index.index.segments.ids)
    assert len(index.index.segments) == 3


def test_simhash_index_of_mel_finds_itself_and_persists_its_hasher(fp_store):
    root, _ = fp_store
    store = zx.open_store(root / "store")
    ids = _ids(store)
    index = open_index(store, "mel", window=0.3)
    assert index.config.hasher.kind == "simhash" and index.index.bits == 256
    again = open_index(zx.open_store(root / "store"), "mel", window=0.3)
    assert again.hashed_parts == [] and again.config.key == index.config.key
    for t0, t1 in [(0.2, 0.25), (0.3, 0.9), (0.0, 1.5)]:
        r = again.neighbours(ids["a1"], t0, t1, exclude=None)
        assert r["results"][0].id == ids["a1"] and r["results"][0].distance == 0
    # statistics learned again (another writer): the parts' codes are not used
    config = again.config
    config.hasher.scale = config.hasher.scale * 2
    config.save(persist._objects(store))
    with pytest.warns(IndexRebuiltWarning, match="other learned statistics"):
        third = open_index(zx.open_store(root / "store"), "mel", window=0.3)
    assert third.hashed_parts == again.loaded_parts
    with pytest.raises(zx.ParameterError, match="no stored feature"):
        open_index(store, "nope")
    with pytest.raises(zx.ParameterError, match="window"):
        open_index(store, "mel", window=-1)


def test_index_command_reports_and_reuses(fp_store):
    root, _ = fp_store
    cmd = [sys.executable, "-m", "zounds_xr.app.cli", "index", str(root / "store"), "--feature",
           "mel", "--quiet"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert "1 parts hashed, 0 read" in out
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert "0 parts hashed, 1 read" in out
    config = json.loads(next((root / "store" / "indexes" / "mel").glob("*/config.json"))
                        .read_text())
    assert config["hasher"]["kind"] == "simhash" and math.isclose(
        config["window_seconds"], 0.5, rel_tol=0.1)


def test_neighbours_endpoint_through_the_real_server(fp_store):
    pytest.importorskip("tornado")
    import urllib.request

    from zounds_xr.explorer import BackgroundServer, Explorer

    root, _ = fp_store
    store = zx.open_store(root / "store")
    ids = _ids(store)
    srv = BackgroundServer(Explorer(store)).start()

    def get(query):
        with urllib.request.urlopen(f"{srv.url}api/neighbours?{query}", timeout=60) as r:
            return json.loads(r.read())

    try:
        r = get(f"feature=fp&id={ids['a1']}&start=0.4&end=1.1&k=3&exclude=none")
        assert r["results"][0]["id"] == ids["a1"] and r["results"][0]["distance"] == 0
        assert r["query"]["widened"] is False and r["query"]["windows"] > 1
        assert r["bits"] == 256 and r["window"] == pytest.approx(8 * 690 / 22050)
        r = get(f"feature=fp&id={ids['a1']}&start=0.4&end=0.5")  # shorter than a window
        assert r["query"]["widened"] is True
        assert r["query"]["start"] <= 0.45 <= r["query"]["end"]
        # the selection's own window is left out: a1's hits share no frame with it
        step = 690 / 22050
        assert all(hit["id"] != ids["a1"] or abs(hit["start"] - r["query"]["start"])
                   >= 8 * step - 1e-6 for hit in r["results"])
        r = get(f"feature=fp&id={ids['a1']}&exclude=document&k=10")
        assert {hit["id"] for hit in r["results"]} <= set(ids.values()) - {ids["a1"]}
        try:
            get(f"feature=fp&id={ids['a1']}&exclude=everything")
            raise AssertionError("accepted a bad exclude")
        except urllib.error.HTTPError as exc:
            assert exc.code == 400
    finally:
        srv.stop()


def test_the_explorer_opens_saved_indexes_once_as_it_starts(fp_store, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from zounds_xr.explorer import Explorer

    root, _ = fp_store
    explorer = Explorer(zx.open_store(root / "store"))
    ids = _ids(explorer.store)
    loads = []
    real_load = persist.load

    def counted(store, config, *args, **kwargs):
        loads.append(config.feature)
        time.sleep(0.2)  # a slow read: the queries below arrive while it runs
        return real_load(store, config, *args, **kwargs)

    monkeypatch.setattr(persist, "load", counted)
    with ThreadPoolExecutor(4) as pool:
        started = pool.submit(explorer.prepare_indexes)
        queries = [pool.submit(explorer.neighbours, "fp", ids["a1"], 0.4, 1.1, 3, None)
                   for _ in range(3)]
        started.result()
        found = [q.result() for q in queries]
    assert loads == ["fp"]  # one opening, shared by the start-up and every query
    assert all(r["results"][0]["id"] == ids["a1"] and r["results"][0]["distance"] == 0
               for r in found)


def test_a_damaged_index_does_not_stop_the_start_and_the_query_reports_it(fp_store,
                                                                           monkeypatch):
    from zounds_xr.explorer import Explorer

    root, _ = fp_store
    explorer = Explorer(zx.open_store(root / "store"))

    def damaged(store, config, *args, **kwargs):
        raise zx.StoreError(f"index {config.key} of {config.feature!r} is damaged")

    monkeypatch.setattr(persist, "load", damaged)
    explorer.prepare_indexes()  # says nothing: the query that needs it will
    assert explorer.indexes() == ["fp"]
    with pytest.raises(zx.StoreError, match="damaged"):
        explorer.neighbours("fp", _ids(explorer.store)["a1"], 0.4, 1.1)
