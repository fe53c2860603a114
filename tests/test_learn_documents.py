"""A fitted pipeline used as a Feature of a Document, fitted on a corpus of documents."""
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("zounds_xr.documents")

import zounds_xr as zx  # noqa: E402
from zounds_xr.learn import (  # noqa: E402
    HammingIndex,
    KMeans,
    Log,
    MeanStdNormalization,
    PreprocessingPipeline,
    ShuffledSamples,
    SimHash,
)

SR = zx.SR11025()


def sounds(rng):
    t = np.arange(int(SR) // 2) / int(SR)
    return [zx.AudioSamples((np.sin(2 * np.pi * f * t) + 0.05 * rng.normal(size=t.size))
                            .astype("f4"), SR) for f in (220, 440, 880, 1760)]


def test_pipeline_as_document_feature(rng):
    @zx.simple_in_memory_settings
    class Sound(zx.Document):
        spec = zx.Feature(zx.stft, needs=zx.Document.audio, wscheme=SR.half_lapped())
        mag = zx.Feature(np.abs, needs=spec, store=True)

    ids = [Sound.process(meta=s.zx.encode()) for s in sounds(rng)]
    corpus = lambda: (Sound(i).mag for i in ids)  # noqa: E731  (streamed, lazy arrays)
    pipeline = PreprocessingPipeline([Log(), MeanStdNormalization(), KMeans(centroids=4)])
    pipeline.fit(corpus)
    samples = ShuffledSamples(nsamples=32, seed=0)({i: Sound(i).mag for i in ids})
    assert samples.shape == (32, Sound(ids[0]).mag.sizes["frequency"])

    @zx.simple_in_memory_settings
    class Coded(zx.Document):
        spec = zx.Feature(zx.stft, needs=zx.Document.audio, wscheme=SR.half_lapped())
        mag = zx.Feature(np.abs, needs=spec, store=True)
        codes = zx.Feature(pipeline, needs=mag, store=True)
        hashes = zx.Feature(PreprocessingPipeline([Log(), SimHash(bits=32, packbits=True)])
                            .fit(corpus), needs=mag, store=True)

    sound = sounds(rng)[1]
    doc = Coded(Coded.process(meta=sound.zx.encode(), chunksize=zx.Seconds(0.2)))
    codes = doc.codes
    assert codes.dims == ("time", "centroid")
    assert codes.xindexes["time"].equals(doc.mag.xindexes["time"])
    np.testing.assert_array_equal(codes.values, pipeline(doc.mag).values)

    index = HammingIndex()
    for i in ids:
        index.add(Coded.hashes.func(Sound(i).mag), i)
    hit = index.search(doc.hashes.isel(time=5), n_results=1)[0]
    assert hit.document_id == ids[1] and hit.distance <= 4
    assert isinstance(hit.time_slice, zx.TimeSlice)
