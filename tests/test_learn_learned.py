"""Learned features: trained pipelines and torch modules as stored, versioned features."""
import copy
import json
import os
import subprocess
import sys
import textwrap
import threading
from fractions import Fraction

import numpy as np
import pytest
import xarray as xr
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import zounds_xr as zx  # noqa: E402
from zounds_xr.core.errors import NotFittedError, ParameterError, StoreError  # noqa: E402
from zounds_xr.learn import (  # noqa: E402
    KMeans,
    Learned,
    Log,
    MeanStdNormalization,
    PreprocessingPipeline,
    load_model,
    model_of,
)
from zounds_xr.learn.persist import save_steps  # noqa: E402
from zounds_xr.testing import assert_identical  # noqa: E402

SR = zx.SR11025()
N_MELS = 16


class Encoder(torch.nn.Module):
    """A small conv encoder of mel windows (module level: re-created by name)."""

    def __init__(self, n_mels=N_MELS, dim=6):
        super().__init__()
        self.init_kwargs = {"n_mels": n_mels, "dim": dim}
        self.conv = torch.nn.Conv1d(n_mels, 12, 3, padding=1)
        self.out = torch.nn.Linear(12, dim)

    def forward(self, x):  # (batch, window, mels)
        return self.out(torch.relu(self.conv(x.transpose(1, 2))).mean(-1))


class FrameNet(torch.nn.Module):
    def __init__(self, n_in=N_MELS):
        super().__init__()
        self.init_kwargs = {"n_in": n_in}
        self.linear = torch.nn.Linear(n_in, 5)

    def forward(self, x):
        return torch.tanh(self.linear(x))


class Plain(torch.nn.Module):
    """No init_kwargs: its constructor arguments are given as model_kwargs."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.linear = torch.nn.Linear(n_in, n_out)

    def forward(self, x):
        return self.linear(x)


def clips(n, seconds=1.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(int(SR) * seconds)) / int(SR)
    return [zx.AudioSamples((0.3 * np.sin(2 * np.pi * rng.uniform(100, 3000) * t)
                             + 0.05 * rng.normal(size=t.size)).astype("f4"), SR)
            for _ in range(n)]


def base_document(store=None):
    class Base(zx.Document):
        spec = zx.Feature(zx.mel_spectrogram, needs=zx.Document.audio, n_mels=N_MELS,
                          store=True)

    return zx.zarr_settings(store)(Base) if store else zx.simple_in_memory_settings(Base)


@pytest.fixture(scope="module")
def fitted():
    """A k-means pipeline and a normalisation fitted on a few clips' mel spectra."""
    Base = base_document()
    ids = [Base.process(meta=c.zx.encode()) for c in clips(4, seed=1)]
    corpus = lambda: (Base(i).spec for i in ids)  # noqa: E731
    codes = PreprocessingPipeline([Log(), MeanStdNormalization(), KMeans(centroids=4)])
    norm = PreprocessingPipeline([Log(), MeanStdNormalization()])
    return codes.fit(corpus), norm.fit(corpus)


def encoder(seed=0):
    torch.manual_seed(seed)
    return Encoder()


def learned_document(fitted, store=None, model=None, batch_frames=256, **kw):
    codes, norm = fitted

    class Sound(zx.Document):
        spec = zx.Feature(zx.mel_spectrogram, needs=zx.Document.audio, n_mels=N_MELS,
                          store=True)
        code = Learned(codes, needs=spec, dim="code", batch_frames=batch_frames)
        embedding = Learned(model if model is not None else encoder(), needs=spec, window=8,
                            hop=4, preprocess=norm, batch_frames=batch_frames, **kw)

    return zx.zarr_settings(store)(Sound) if store else zx.simple_in_memory_settings(Sound)


def windows_by_hand(model, norm, spec, window=8, hop=4):
    frames = norm(spec).values.astype("f4")
    k = 1 + (frames.shape[0] - window) // hop if frames.shape[0] >= window else 0
    batch = np.stack([frames[i * hop:i * hop + window] for i in range(k)]) if k else \
        np.zeros((0, window, frames.shape[1]), "f4")
    with torch.no_grad():
        return model.eval()(torch.from_numpy(batch)).numpy() if k else np.zeros((0, 6))


def cosines(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


# ---------------------------------------------------------------------------- values
def test_frame_wise_and_window_models_give_labelled_exact_outputs(fitted):
    codes, norm = fitted
    model = encoder()
    Sound = learned_document(fitted, model=model)
    doc = Sound(Sound.process(meta=clips(1, seed=3)[0].zx.encode()))
    spec = doc.spec
    # frame-wise: the pipeline's output, frame for frame, with the input's time index
    assert doc.code.dims == ("time", "code")
    np.testing.assert_array_equal(doc.code.values, codes(spec).values)
    assert doc.code.xindexes["time"].equals(spec.xindexes["time"])
    # window model: one vector per hop, the exact extent of its window of input frames
    emb = doc.embedding
    assert emb.dims == ("time", "embedding") and emb.sizes["embedding"] == 6
    src, out = spec.xindexes["time"], emb.xindexes["time"]
    assert out.size == 1 + (src.size - 8) // 4
    assert (out.start, out.frequency) == (src.start, 4 * src.frequency)
    assert out.duration == 7 * src.frequency + src.duration
    np.testing.assert_allclose(emb.values, windows_by_hand(model, norm, spec), rtol=1e-5,
                               atol=1e-6)


def test_streamed_chunks_equal_one_piece_and_short_documents_have_no_frames(fitted):
    Sound = learned_document(fitted)
    long = clips(1, seconds=3.0, seed=4)[0]
    whole = Sound(Sound.process(meta=long.zx.encode(), _id="whole"))
    # chunks shorter than one window: windows are carried across chunk boundaries
    pieces = Sound(Sound.process(meta=long.zx.encode(), _id="pieces",
                                 chunksize=zx.Milliseconds(70)))
    for name in ("code", "embedding"):
        assert_identical(getattr(pieces, name).load(), getattr(whole, name).load())
    short = Sound(Sound.process(meta=clips(1, seconds=0.1, seed=5)[0].zx.encode()))
    assert short.spec.sizes["time"] < 8
    assert short.embedding.sizes == {"time": 0, "embedding": 6}  # never padded
    assert Sound.catalog().loc[short.id, "embedding.frames"] == 0


# ---------------------------------------------------------------------------- batching
def test_batches_across_documents_are_bitwise_the_per_document_result(fitted, tmp_path):
    sources = []
    for i, clip in enumerate(clips(12, seed=6)):
        path = tmp_path / f"clip{i:02d}.wav"
        clip.zx.save(str(path))
        sources.append(str(path))
    model = encoder()
    Alone = learned_document(fitted, model=model)
    alone = {Alone.id_for(s): Alone(Alone.process(meta=s)).embedding.values for s in sources}
    Batched = learned_document(fitted, store=str(tmp_path / "b.zarr"), model=model)
    report = zx.ingest(sources, Batched, scheduler="synchronous", progress=False)
    assert not report.failed and len(report.processed) == 12
    # 12 clips stacked in one call, 8 windows a batch: padding copies never leak
    for doc_id, values in alone.items():
        np.testing.assert_array_equal(Batched(doc_id).embedding.values, values)
    # another batch size: another batch shape, equal within float tolerance
    Other = learned_document(fitted, model=model, batch_frames=24)
    for s in sources[:4]:
        other = Other(Other.process(meta=s)).embedding.values
        assert cosines(other, alone[Other.id_for(s)]).min() >= 0.9999


REPRO = textwrap.dedent("""
    import json, sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    import zounds_xr as zx
    import test_learn_learned as t
    if __name__ == "__main__":
        model = t.Encoder()
        model.load_state_dict({{k: t.torch.tensor(v) for k, v in
                               json.load(open({weights!r})).items()}})
        Sound = t.learned_document(t.fitted_pipelines({fit!r}), store={store!r},
                                   model=model)
        report = zx.ingest({sources!r}, Sound, scheduler="processes", num_workers=2,
                           progress=False)
        assert not report.failed, report.failed
        print(json.dumps(Sound.versions()))
""")


def fitted_pipelines(path):
    """The module fixture's pipelines, reloaded (for another process)."""
    return tuple(PreprocessingPipeline.load(os.path.join(path, n)) for n in ("codes", "norm"))


@pytest.mark.slow
def test_reruns_in_other_processes_with_two_workers_are_bitwise_equal(fitted, tmp_path):
    fitted[0].save(str(tmp_path / "codes"))
    fitted[1].save(str(tmp_path / "norm"))
    sources = []
    for i, clip in enumerate(clips(6, seed=7)):
        path = tmp_path / f"c{i}.wav"
        clip.zx.save(str(path))
        sources.append(str(path))
    model = encoder(seed=2)
    with open(tmp_path / "weights.json", "w") as f:
        json.dump({k: v.tolist() for k, v in model.state_dict().items()}, f)
    Here = learned_document(fitted_pipelines(str(tmp_path)), store=str(tmp_path / "a.zarr"),
                            model=model)
    zx.ingest(sources, Here, scheduler="threads", num_workers=1, progress=False)
    script = tmp_path / "rerun.py"
    script.write_text(REPRO.format(tests=os.path.dirname(__file__), weights=str(
        tmp_path / "weights.json"), fit=str(tmp_path), store=str(tmp_path / "b.zarr"),
        sources=sources))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == Here.versions()
    There = learned_document(fitted_pipelines(str(tmp_path)), store=str(tmp_path / "b.zarr"),
                             model=model)
    for doc_id in Here.ids():
        for name in ("code", "embedding"):
            np.testing.assert_array_equal(getattr(There(doc_id), name).values,
                                          getattr(Here(doc_id), name).values)


# ---------------------------------------------------------------------------- versions
def test_version_is_the_models_content_and_a_new_checkpoint_updates_only_it(fitted, tmp_path):
    model = encoder()
    Sound = learned_document(fitted, store=str(tmp_path / "s.zarr"), model=model)
    # the same content in another object: the same version; identity never enters it
    assert learned_document(fitted, model=copy.deepcopy(model)).versions() == Sound.versions()
    ids = [Sound.process(meta=c.zx.encode()) for c in clips(3, seed=8)]
    catalog = Sound.catalog()
    assert (catalog["embedding.version"] == Sound.versions()["embedding"]).all()
    before = catalog[["spec.array", "code.array", "embedding.array"]].copy()
    old = Sound(ids[0]).embedding.values
    # the declared feature holds a copy: training the original on does not change it
    with torch.no_grad():
        model.out.bias += 1.0
    assert learned_document(fitted, model=model).versions()["embedding"] != \
        Sound.versions()["embedding"]
    assert Sound.stale_features(ids[0]) == []

    New = learned_document(fitted, store=str(tmp_path / "s.zarr"), model=model)
    assert {k: v for k, v in New.versions().items() if v != Sound.versions()[k]}.keys() == \
        {"embedding"}
    assert New.update() == {i: ["embedding"] for i in ids}
    after = New.catalog()
    assert (after[["spec.array", "code.array"]] == before[["spec.array", "code.array"]]
            ).all().all()
    assert (after["embedding.array"] != before["embedding.array"]).all()
    np.testing.assert_allclose(New(ids[0]).embedding.values, old + 1.0, rtol=1e-5)
    # each stored embedding leads to the model that made it
    assert model_of(New, ids[0], "embedding").digest == New.embedding.digest
    assert model_of(str(tmp_path / "s.zarr"), ids[0], "code").kind == "pipeline"
    assert New.update() == {i: [] for i in ids}


def test_saved_models_reload_as_the_same_feature_and_damage_is_caught(fitted, tmp_path):
    root = tmp_path / "m.zarr"
    model = encoder(seed=5)
    Sound = learned_document(fitted, store=str(root), model=model)
    doc_id = Sound.process(meta=clips(1, seed=9)[0].zx.encode())
    digest = Sound.embedding.digest
    assert sorted(set(os.listdir(root / "_models")) - {"zarr.json"}) == sorted(
        [digest, Sound.code.digest])
    found = load_model(Sound, digest)
    assert (found.kind, found.window, found.hop, found.dim) == ("torch", 8, 4, "embedding")
    assert found.learned(needs=Sound.spec).digest == digest
    for a, b in zip(found.model.state_dict().values(), model.state_dict().values(),
                    strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # a duration window is kept exactly
    timed = Learned(model, needs=Sound.spec, window=zx.Milliseconds(500), hop=Fraction(1, 4))
    assert (timed.window, timed.hop) == (Fraction(1, 2), Fraction(1, 4))
    # damaged model arrays: the content hash catches them
    [network] = (root / "_models" / digest).glob("*/step_2")
    chunk = next(p for p in sorted(network.rglob("*")) if p.is_file()
                 and "c" in p.relative_to(network).parts)
    chunk.write_bytes(chunk.read_bytes()[:-4] + b"\1\2\3\4")
    with pytest.raises(StoreError):
        model_of(Sound, doc_id, "embedding")
    # copies the log does not vouch for are never read, even intact ones
    intact = zarr.create_group(str(root), path=f"_models/{digest}/zz-intact", zarr_format=3,
                               attributes={"zounds_xr:model": {**Sound.embedding.description}})
    save_steps(Sound.embedding._steps, intact)
    with pytest.raises(StoreError, match="damaged"):
        model_of(Sound, doc_id, "embedding")
    # writing again saves and commits a new copy in place of the damaged one
    Sound.process(meta=clips(1, seed=10)[0].zx.encode())
    assert model_of(Sound, doc_id, "embedding").digest == digest
    with pytest.raises(StoreError, match="no committed model"):
        load_model(Sound, "0" * 32)
    with pytest.raises(StoreError, match="not a learned feature"):
        model_of(Sound, doc_id, "spec")
    with pytest.raises(ParameterError, match="hex"):
        load_model(Sound, "../parts")


# ---------------------------------------------------------------------------- errors
def test_bad_declarations_raise_clear_errors(fitted):
    codes, norm = fitted
    spec = base_document().spec

    class Local(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(N_MELS, 2)

    with pytest.raises(ParameterError, match="PreprocessingPipeline or a torch"):
        Learned(np.abs, needs=spec)
    with pytest.raises(NotFittedError):
        Learned(PreprocessingPipeline([MeanStdNormalization()]), needs=spec)
    with pytest.raises(ParameterError, match="inside a function"):
        Learned(Local(), needs=spec)
    with pytest.raises(ParameterError, match="re-create"):
        Learned(torch.nn.Sequential(torch.nn.Linear(N_MELS, 2)), needs=spec)
    with pytest.raises(ParameterError, match="hop= needs window="):
        Learned(FrameNet(), needs=spec, hop=2)
    with pytest.raises(ParameterError, match="batch_frames"):
        Learned(FrameNet(), needs=spec, batch_frames=0)
    with pytest.raises(ParameterError, match="window"):
        Learned(FrameNet(), needs=spec, window=-1)
    with pytest.raises(ParameterError, match="dim"):
        Learned(FrameNet(), needs=spec, dim="time")
    with pytest.raises(ParameterError, match="device"):
        Learned(FrameNet(), needs=spec, device="abacus")
    with pytest.raises(ParameterError, match="own preprocessing"):
        Learned(codes, needs=spec, preprocess=norm)
    with pytest.raises(ParameterError, match="one input"):
        Learned(FrameNet(), needs=(spec, spec))


def test_a_model_that_does_not_fit_its_input_fails_that_document_clearly(tmp_path):
    @zx.simple_in_memory_settings
    class Sound(zx.Document):
        spec = zx.Feature(zx.mel_spectrogram, needs=zx.Document.audio, n_mels=N_MELS,
                          store=True)
        bad = Learned(FrameNet(n_in=N_MELS + 1), needs=spec)

    with pytest.raises(ParameterError, match="the model failed on a batch"):
        Sound.process(meta=clips(1)[0].zx.encode())
    assert Sound.ids() == []


def test_frame_wise_torch_model_and_cuda_when_present(fitted):
    net = FrameNet()

    @zx.simple_in_memory_settings
    class Sound(zx.Document):
        spec = zx.Feature(zx.mel_spectrogram, needs=zx.Document.audio, n_mels=N_MELS,
                          store=True)
        vec = Learned(net, needs=spec, batch_frames=7)

    doc = Sound(Sound.process(meta=clips(1, seed=11)[0].zx.encode()))
    with torch.no_grad():
        expected = net(torch.from_numpy(doc.spec.values.astype("f4"))).numpy()
    np.testing.assert_allclose(doc.vec.values, expected, rtol=1e-5, atol=1e-6)
    assert zx.Learned is Learned
    if torch.cuda.is_available():
        on_gpu = Learned(net, needs=Sound.spec, batch_frames=7, device="cuda")
        assert on_gpu.digest == Sound.vec.digest  # the device is not part of the version
        assert cosines(on_gpu.func(doc.spec).values, doc.vec.values).min() >= 0.9999


# ---------------------------------------------------------------------------- properties
def _spec_frames(n_docs, n_frames, seed):
    """Stacked mel-like frames of ``n_docs`` documents (dims time, channel, frequency)."""
    rng = np.random.default_rng(seed)
    data = np.abs(rng.normal(size=(n_frames, n_docs, N_MELS))).astype("f4")
    coords = zx.time_coords(n_frames, Fraction(512, 11025), Fraction(1024, 11025))
    return xr.DataArray(data, dims=("time", "channel", "frequency"), coords=coords)


@settings(max_examples=10, deadline=None)
@given(n_docs=st.integers(1, 5), n_frames=st.integers(0, 40),
       cuts=st.lists(st.integers(1, 39), max_size=4), batch_frames=st.integers(8, 64),
       window=st.integers(1, 9), hop=st.integers(1, 9))
def test_windows_streamed_grouped_or_batched_never_change_a_vector(
        fitted, n_docs, n_frames, cuts, batch_frames, window, hop):
    spec = _spec_frames(n_docs, n_frames, seed=n_frames)
    feature = Learned(encoder(), needs=base_document().spec, window=window, hop=hop,
                      preprocess=fitted[1], batch_frames=batch_frames)
    whole = feature.func(spec)
    k = 0 if n_frames < window else 1 + (n_frames - window) // hop
    assert whole.sizes == {"time": k, "channel": n_docs, "embedding": 6}
    # chunk by chunk through the streaming state: the same frames, bitwise
    stream = feature.func.__zounds_streaming__.factory()
    bounds = [0, *sorted({c for c in cuts if c < n_frames}), n_frames]
    pieces = [stream.push(spec.isel(time=slice(a, b)))
              for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    pieces = [p for p in [*pieces, stream.flush()] if p is not None and p.sizes["time"]]
    if k:
        streamed = xr.concat(pieces, dim="time")
        np.testing.assert_array_equal(streamed.values, whole.values)
        assert streamed.xindexes["time"].equals(whole.xindexes["time"])
    # each document alone (another grouping of the batches): bitwise the same
    for d in range(n_docs):
        alone = feature.func(spec.isel(channel=[d]))
        np.testing.assert_array_equal(alone.values[:, 0], whole.values[:, d])
    # another batch size: within float tolerance
    other = Learned(feature.model, needs=base_document().spec, window=window, hop=hop,
                    preprocess=fitted[1], batch_frames=batch_frames + 37)
    if k:
        assert cosines(other.func(spec).values, whole.values).min() >= 0.9999


def test_torch_threads_are_capped_like_the_spectral_kernels():
    from zounds_xr.learn.learned import _torch_threads
    from zounds_xr.spectral.kernels import set_default_threads

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    seen = []

    def probe():
        with _torch_threads():
            seen.append(torch.get_num_threads())

    try:
        worker = threading.Thread(target=probe)  # a dask thread: one torch thread
        worker.start()
        worker.join()
        set_default_threads(1)  # a pool worker process's main thread: one
        probe()
        set_default_threads(None)  # the main thread: torch's own setting, never raised
        probe()
        assert seen == [1, 1, 2]
        assert torch.get_num_threads() == 2  # restored
    finally:
        set_default_threads(None)
        torch.set_num_threads(previous)


def test_model_kwargs_recreate_a_module_without_init_kwargs(tmp_path):
    with pytest.raises(ParameterError, match="model_kwargs"):
        Learned(Plain(N_MELS, 3), needs=base_document().spec)

    @zx.zarr_settings(str(tmp_path / "p.zarr"))
    class Sound(zx.Document):
        spec = zx.Feature(zx.mel_spectrogram, needs=zx.Document.audio, n_mels=N_MELS,
                          store=True)
        vec = Learned(Plain(N_MELS, 3), needs=spec, model_kwargs={"n_in": N_MELS, "n_out": 3})

    doc_id = Sound.process(meta=clips(1, seconds=0.3)[0].zx.encode())
    found = model_of(Sound, doc_id, "vec")
    assert found.model_kwargs == {"n_in": N_MELS, "n_out": 3}
    assert found.learned(needs=Sound.spec).digest == Sound.vec.digest
