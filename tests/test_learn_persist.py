"""Saving fitted pipelines (directory and Zarr), reloading them in a fresh process."""
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

import zounds_xr as zx  # noqa: E402
from zounds_xr.testing import assert_identical  # noqa: E402
from zounds_xr.learn import (  # noqa: E402
    KMeans,
    Log,
    MeanStdNormalization,
    PreprocessingPipeline,
    PyTorchNetwork,
    SimHash,
    SklearnModel,
    Slicer,
    load_pipeline,
    save_pipeline,
)


class Encoder(torch.nn.Module):
    """Module-level network: re-imported by name on load."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.init_kwargs = {"n_in": n_in, "n_out": n_out}
        self.linear = torch.nn.Linear(n_in, n_out)
        self.register_buffer("scale", torch.tensor(2.0))

    def forward(self, x):
        return torch.tanh(self.linear(x)) * self.scale


def feature(rng, n=50, offset=0.0):
    return zx.ArrayWithUnits(rng.normal(loc=offset, size=(n, 8)),
                             [zx.TimeDimension(zx.Milliseconds(20)), zx.IdentityDimension()])


@pytest.fixture
def corpus(rng):
    return [feature(rng, 40 + 5 * i, offset=i) for i in range(3)]


def make_pipelines(corpus):
    from sklearn.decomposition import PCA

    torch.manual_seed(0)
    return {
        "kmeans": PreprocessingPipeline([Log(), MeanStdNormalization(), Slicer(slice(0, 6)),
                                         KMeans(centroids=5)]).fit(corpus),
        "pca": PreprocessingPipeline([MeanStdNormalization(),
                                      SklearnModel(PCA(n_components=3))]).fit(corpus),
        "torch_hash": PreprocessingPipeline([MeanStdNormalization(),
                                             PyTorchNetwork(Encoder(8, 4)),
                                             SimHash(bits=70, packbits=True, seed=5)]
                                            ).fit(corpus),
    }


@pytest.mark.parametrize("layout", ["directory", "zarr"])
def test_save_load_same_outputs(corpus, tmp_path, layout):
    for name, pipeline in make_pipelines(corpus).items():
        target = tmp_path / (f"{name}.zarr" if layout == "zarr" else name)
        digest = pipeline.save(target)
        assert digest == pipeline.content_hash and len(digest) == 64
        loaded = PreprocessingPipeline.load(target)
        assert [type(s) for s in loaded] == [type(s) for s in pipeline]
        assert loaded.content_hash == digest
        assert_identical(loaded(corpus[0]), pipeline(corpus[0]))
        if pipeline.invertible:
            np.testing.assert_allclose(loaded.transform(corpus[0]).inverse_transform().values,
                                       pipeline.transform(corpus[0]).inverse_transform().values)


def test_zarr_group_object_and_memory_store(corpus):
    import zarr

    pipeline = make_pipelines(corpus)["kmeans"]
    group = zarr.open_group(zarr.storage.MemoryStore(), mode="w")
    save_pipeline(pipeline, group)
    manifest = group.attrs["zounds_xr:pipeline"]
    assert manifest["format_version"] == 1 and manifest["content_hash"] == pipeline.content_hash
    np.testing.assert_array_equal(load_pipeline(group)(corpus[1]).values,
                                  pipeline(corpus[1]).values)


def test_directory_layout_has_no_pickles(corpus, tmp_path):
    make_pipelines(corpus)["torch_hash"].save(tmp_path / "p")
    files = sorted(p.relative_to(tmp_path / "p").as_posix() for p in (tmp_path / "p").rglob("*")
                   if p.is_file())
    assert files[-1] == "pipeline.json"
    assert all(f.endswith(".npy") for f in files[:-1])
    for f in files[:-1]:
        np.load(tmp_path / "p" / f, allow_pickle=False)  # would raise on object arrays
    manifest = json.loads((tmp_path / "p" / "pipeline.json").read_text())
    net = manifest["steps"][1]["config"]["network"]
    assert net == {"module": Encoder.__module__, "qualname": "Encoder",
                   "kwargs": {"n_in": 8, "n_out": 4}}


def test_tampered_content_is_detected(corpus, tmp_path):
    pipeline = make_pipelines(corpus)["pca"]
    pipeline.save(tmp_path / "p")
    manifest = json.loads((tmp_path / "p" / "pipeline.json").read_text())
    rel = manifest["steps"][0]["arrays"]["mean"]
    arr = np.load(tmp_path / "p" / rel)
    np.save(tmp_path / "p" / rel, arr + 1)
    with pytest.raises(zx.StoreError, match="hash"):
        load_pipeline(tmp_path / "p")


def test_newer_format_version_is_refused(corpus, tmp_path):
    make_pipelines(corpus)["pca"].save(tmp_path / "p")
    path = tmp_path / "p" / "pipeline.json"
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 99
    path.write_text(json.dumps(manifest))
    with pytest.raises(zx.StoreError, match="version"):
        load_pipeline(tmp_path / "p")


def test_locally_defined_network_cannot_be_saved(corpus, tmp_path):
    class Local(torch.nn.Module):
        def forward(self, x):
            return x

    pipeline = PreprocessingPipeline([PyTorchNetwork(Local())])
    with pytest.raises(zx.ParameterError, match="inside a function"):
        pipeline.save(tmp_path / "p")


def test_unfitted_pipeline_cannot_be_saved(tmp_path):
    with pytest.raises(zx.ParameterError, match="not fitted"):
        PreprocessingPipeline([MeanStdNormalization()]).save(tmp_path / "p")


def test_reload_in_fresh_process(corpus, tmp_path):
    tests_dir = pathlib.Path(__file__).resolve().parent
    x = corpus[2]
    np.save(tmp_path / "x.npy", x.values)
    expected = {}
    for name, pipeline in make_pipelines(corpus).items():
        for layout, target in (("dir", tmp_path / name), ("zarr", tmp_path / f"{name}.zarr")):
            pipeline.save(target)
            expected[(name, layout)] = pipeline(x).values
    script = textwrap.dedent(f"""
        import sys, numpy as np
        sys.path.insert(0, {str(tests_dir)!r})
        import zounds_xr as zx
        from zounds_xr.learn import load_pipeline
        x = zx.ArrayWithUnits(np.load({str(tmp_path / 'x.npy')!r}),
                              [zx.TimeDimension(zx.Milliseconds(20)), zx.IdentityDimension()])
        for name in ["kmeans", "pca", "torch_hash"]:
            for layout, suffix in (("dir", ""), ("zarr", ".zarr")):
                out = load_pipeline({str(tmp_path)!r} + "/" + name + suffix)(x)
                np.save({str(tmp_path)!r} + f"/out_{{name}}_{{layout}}.npy", out.values)
        print("torch" in sys.modules)
    """)
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for (name, layout), values in expected.items():
        got = np.load(tmp_path / f"out_{name}_{layout}.npy")
        np.testing.assert_array_equal(got, values, err_msg=f"{name} {layout}")
