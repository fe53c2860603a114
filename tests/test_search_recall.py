"""Near-duplicate recall of zx.fingerprint + zounds_xr.search on real audio: copies of
the corpus clips (shifted, gain, Ogg Vorbis, FLAC, resampled, noisy) are ingested with
their originals, and every copy must find its original among its 10 nearest documents."""
import pathlib

import numpy as np
import pytest
from _copies import KINDS, originals, recall_at, write_copies

import zounds_xr as zx
from zounds_xr.search import open_index


@pytest.mark.slow
def test_copies_find_their_original(corpus, tmp_path):
    rng = np.random.default_rng(25)
    copies = {}
    for name, y in originals(corpus):
        copies[name] = write_copies(tmp_path / "audio", name, y, rng)
    assert len(copies) >= 12

    class Sound(zx.Document):
        fp = zx.Feature(zx.fingerprint, needs=zx.Document.audio, store=True)

    Sound = zx.zarr_settings(str(tmp_path / "store"))(Sound)  # noqa: N806
    report = zx.ingest(zx.Directory(str(tmp_path / "audio")), Sound, progress=False,
                       scheduler="threads", num_workers=2)
    assert not report.failed
    store = zx.open_store(tmp_path / "store")
    index = open_index(store, "fp")
    assert index.hashed_parts == []  # ingest made it
    ids = {pathlib.Path(uri).stem: doc for doc, uri in store.catalog()["uri"].items()}
    recall = recall_at(index, ids, copies)
    print("recall@10 per kind:", recall)
    assert set(recall) == set(KINDS)
    for kind, value in recall.items():
        assert value >= 0.95, (kind, recall)
