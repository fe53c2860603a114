"""Preprocessing steps and pipelines: round trips, labels, streaming fits, dask."""
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

import zounds_xr as zx  # noqa: E402
from zounds_xr.testing import assert_allclose, assert_identical, assert_indexes_equal  # noqa: E402
from zounds_xr.learn import (  # noqa: E402
    Binarize,
    InstanceScaling,
    KMeans,
    Log,
    MeanStdNormalization,
    Multiply,
    NotFittedError,
    NotInvertibleError,
    PreprocessingPipeline,
    PyTorchNetwork,
    Reshape,
    SklearnModel,
    Slicer,
    UnitNorm,
)


def feature(rng, n=60, bands=6, start=0, offset=0.0):
    scale = zx.LinearScale(zx.FrequencyBand(0, 600), bands)
    data = rng.normal(loc=offset, size=(n, bands)) * np.arange(1, bands + 1)
    return zx.ArrayWithUnits(data, [zx.TimeDimension(zx.Milliseconds(10),
                                                     start=zx.Milliseconds(start)),
                                    zx.FrequencyDimension(scale)], name="bark")


def assert_labels_equal(a, b):
    assert a.dims == b.dims and a.shape == b.shape and a.name == b.name
    assert_indexes_equal(a, b)


@pytest.fixture
def corpus(rng):
    return [feature(rng, n=40 + 10 * i, offset=i) for i in range(4)]


LOSSLESS = [
    lambda: MeanStdNormalization(),
    lambda: UnitNorm(),
    lambda: Log(),
    lambda: Multiply(3.5),
    lambda: Multiply(np.arange(1, 7)),
    lambda: InstanceScaling(),
    lambda: Reshape((2, 3), dims=("a", "b")),
    lambda: SklearnModel(__import__("sklearn.decomposition").decomposition.PCA(n_components=6)),
]


@pytest.mark.parametrize("make", LOSSLESS)
def test_round_trip_restores_values_and_labels(make, corpus, backend):
    step = make().fit(corpus)
    x = backend(corpus[1])
    result = step.transform(x)
    assert result.data.sizes["time"] == x.sizes["time"]
    assert result.data.xindexes["time"].equals(x.xindexes["time"])
    assert_allclose(result.inverse_transform(), x, rtol=1e-9, atol=1e-9)
    assert step(x).dims == result.data.dims


def test_dask_input_stays_lazy(corpus):
    x = corpus[0].chunk({"time": 16})
    pipeline = PreprocessingPipeline([MeanStdNormalization(), UnitNorm(),
                                      KMeans(centroids=3, passes=1)]).fit(corpus)
    out = pipeline(x)
    assert out.chunks is not None
    assert_identical(out.compute(), pipeline(corpus[0]))


def test_mean_std_streamed_equals_whole(corpus):
    step = MeanStdNormalization().fit(iter(corpus), block_rows=7)  # one-shot, tiny blocks
    whole = np.concatenate([c.values for c in corpus])
    np.testing.assert_allclose(step.mean, whole.mean(axis=0))
    np.testing.assert_allclose(step.std, whole.std(axis=0))
    y = step(whole)
    np.testing.assert_allclose(y.values.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(y.values.std(axis=0), 1, atol=1e-12)


def test_fit_reads_dask_chunks_one_at_a_time(corpus):
    import dask

    x = corpus[2].chunk({"time": 10})
    seen = []
    step = MeanStdNormalization()
    original = step._partial_fit
    step._partial_fit = lambda block, p: (seen.append(block.shape[0]), original(block, p))
    with dask.config.set(scheduler="sync"):
        step.fit(x)
    assert seen == [10] * (x.sizes["time"] // 10)


def test_unit_norm_and_instance_scaling_values(corpus):
    x = corpus[0]
    np.testing.assert_allclose(np.linalg.norm(UnitNorm()(x).values, axis=1), 1)
    np.testing.assert_allclose(np.abs(InstanceScaling()(x).values).max(axis=1), 1)
    zeros = x.copy(data=np.zeros(x.shape))
    assert np.all(UnitNorm()(zeros).values == 0)


def test_slicer(corpus):
    x = corpus[0]
    step = Slicer(slice(1, 4))
    y = step(x)
    assert y.shape == (x.shape[0], 3)
    np.testing.assert_array_equal(y.values, x.values[:, 1:4])
    np.testing.assert_allclose(y.frequency.values, x.frequency.values[1:4])
    inverted = step.transform(x).inverse_transform()
    assert_labels_equal(inverted, x)
    np.testing.assert_array_equal(inverted.values[:, 1:4], x.values[:, 1:4])
    assert np.all(inverted.values[:, [0, 4, 5]] == 0)
    # data that is zero outside the slice round-trips exactly; fancy positions too
    masked = x.copy(data=np.where(np.isin(np.arange(6), [0, 2, 5]), x.values, 0))
    fancy = Slicer([5, 0, 2])
    assert fancy(masked).shape[1] == 3
    np.testing.assert_array_equal(fancy.transform(masked).inverse_transform().values,
                                  masked.values)
    lazy = Slicer(slice(None, None, 2)).transform(x.chunk({"time": 7}))
    np.testing.assert_array_equal(lazy.inverse_transform().values[:, ::2], x.values[:, ::2])


def test_kmeans_codes_and_inverse(rng):
    centers = np.array([[0, 0], [10, 0], [0, 10]], dtype=float)
    pts = centers[rng.integers(0, 3, size=300)] + rng.normal(scale=0.1, size=(300, 2))
    x = zx.ArrayWithUnits(pts, [zx.TimeDimension(zx.Milliseconds(5)), zx.IdentityDimension()])
    km = KMeans(centroids=3, batch_size=64, passes=3).fit(x)
    found = sorted(map(tuple, np.round(km.cluster_centers, 1)))
    np.testing.assert_allclose(found, sorted(map(tuple, centers)), atol=0.2)
    result = km.transform(x)
    assert result.data.dims == ("time", "centroid") and result.data.dtype == np.uint8
    assert np.all(result.data.values.sum(axis=1) == 1)
    inverted = result.inverse_transform()
    assert_labels_equal(inverted, x)
    np.testing.assert_allclose(inverted.values, pts, atol=0.5)
    assert km.predict(x).dims == ("time",)


def test_binarize_is_not_invertible(corpus):
    result = Binarize(threshold=0.5).transform(corpus[0])
    np.testing.assert_array_equal(result.data.values, (corpus[0].values > 0.5).astype(np.uint8))
    with pytest.raises(NotInvertibleError):
        result.inverse_transform()


def test_unfitted_step_raises(corpus):
    with pytest.raises(NotFittedError):
        MeanStdNormalization().transform(corpus[0])


def test_pipeline_seed_example(corpus):
    """zounds' example: normalise, learn k-means, assign codes, reconstruct."""
    pipeline = PreprocessingPipeline(needs=(MeanStdNormalization(), KMeans(centroids=8)))
    fitted = pipeline.fit(lambda: (c for c in corpus))  # re-iterable generator factory
    assert fitted is pipeline and pipeline.fitted
    result = pipeline.transform(corpus[3])
    assert result.data.dims == ("time", "centroid")
    inverted = result.inverse_transform()
    assert_labels_equal(inverted, corpus[3])
    # reconstruction error is well below the data's variance
    err = ((inverted.values - corpus[3].values) ** 2).mean()
    assert err < corpus[3].values.var()


def test_pipeline_fit_on_one_shot_generator_equals_list(corpus):
    a = PreprocessingPipeline([Log(), MeanStdNormalization(), KMeans(centroids=4, seed=3)])
    b = PreprocessingPipeline([Log(), MeanStdNormalization(), KMeans(centroids=4, seed=3)])
    a.fit(corpus)
    b.fit(c for c in corpus)  # spilled to disk, streamed again for the later steps
    np.testing.assert_allclose(a[1].mean, b[1].mean)
    np.testing.assert_allclose(a[2].cluster_centers, b[2].cluster_centers)


def test_lossless_pipeline_round_trip(corpus, backend):
    pipeline = PreprocessingPipeline([Log(), MeanStdNormalization(), Multiply(2.0),
                                      UnitNorm(), Reshape((3, 2))]).fit(corpus)
    x = backend(corpus[0])
    result = pipeline.transform(x)
    assert result.data.dims == ("time", "dim_1", "dim_2")
    assert_allclose(result.inverse_transform(), x, rtol=1e-9, atol=1e-9)


class TinyNet(__import__("torch").nn.Module):
    def __init__(self, n_in=6, n_out=2):
        import torch

        super().__init__()
        self.linear = torch.nn.Linear(n_in, n_out)
        self.init_kwargs = {"n_in": n_in, "n_out": n_out}

    def forward(self, x):
        return self.linear(x)


def test_pytorch_network_step(corpus):
    import torch

    from zounds_xr.learn import SupervisedTrainer

    class AutoEncoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Linear(6, 3)
            self.decoder = torch.nn.Linear(3, 6)

        def forward(self, x):
            return self.decoder(self.encoder(x))

    torch.manual_seed(0)
    net = AutoEncoder()
    trainer = SupervisedTrainer(net, torch.nn.MSELoss(), lambda p: torch.optim.Adam(p, lr=1e-2),
                                epochs=5, batch_size=32, seed=0)
    step = PyTorchNetwork(net, trainer=trainer, post_training_func=lambda n: n.encoder)
    pipeline = PreprocessingPipeline([MeanStdNormalization(), step]).fit(corpus)
    assert trainer.history["train"][-1] < trainer.history["train"][0]
    out = pipeline(corpus[0])
    assert out.dims == ("time", "feature") and out.shape == (corpus[0].sizes["time"], 3)
    lazy = pipeline(corpus[0].chunk({"time": 9}))
    np.testing.assert_allclose(lazy.values, out.values, rtol=1e-6)
    with pytest.raises(NotInvertibleError):
        pipeline.transform(corpus[0]).inverse_transform()


def test_pytorch_network_without_trainer(corpus):
    step = PyTorchNetwork(TinyNet())
    assert step.fitted
    assert step(corpus[0]).shape == (corpus[0].sizes["time"], 2)


def test_bad_steps():
    with pytest.raises(zx.ParameterError):
        PreprocessingPipeline([object()])
    with pytest.raises(zx.ParameterError):
        Multiply(0)
    with pytest.raises(zx.ParameterError):
        MeanStdNormalization().fit([])
