"""A small store with the reading interface of ``zx.open_store`` (COORDINATION.md's store
contract), for the explorer's tests: documents computed with zounds_xr transforms, their
frames written back to back into real Zarr arrays on disk, and a catalog DataFrame.
"""
from __future__ import annotations

import json
import pathlib
import shutil
import urllib.error
import urllib.request
from fractions import Fraction

import numpy as np
import pandas as pd
import soundfile as sf
import xarray as xr
import zarr

import zounds_xr as zx
from zounds_xr.timeseries.index import time_coords


def fetch(url, headers=None, method="GET"):
    """``(status, headers, body)``; 4xx/5xx are returned, not raised."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def _signals(rate: int, seconds: float, rng) -> dict[str, np.ndarray]:
    t = np.arange(int(rate * seconds)) / rate

    def chirp(f0, f1):
        k = (f1 - f0) / t[-1]
        return 0.8 * np.sin(2 * np.pi * (f0 * t + k * t * t / 2))

    return {
        "chord_a_minor.wav": sum(np.sin(2 * np.pi * f * t) for f in (220, 261.63, 329.63)) / 3,
        "chirp_up.flac": chirp(100, 8000),
        "chirp_down.ogg": chirp(6000, 200),
        "noise_bursts.wav": rng.uniform(-1, 1, t.size) * (np.sin(2 * np.pi * 2 * t) > 0.5),
        "clicks.wav": (np.arange(t.size) % 800 < 8).astype(float),
        "fm_tone.flac": 0.7 * np.sin(2 * np.pi * 440 * t + 5 * np.sin(2 * np.pi * 3 * t)),
    }


def features_of(samples: np.ndarray, rate, stored: tuple[str, ...]) -> dict[str, xr.DataArray]:
    audio = zx.AudioSamples(samples.astype(np.float32), rate)
    spectrum = zx.stft(audio, rate.half_lapped(), zx.HanningWindowingFunc(periodic=True))
    out = {"resampled": audio, "spectrum": spectrum,
           "magnitude": np.abs(spectrum).rename("magnitude"),
           "mel": zx.mel_spectrogram(spectrum, n_mels=32),
           "centroid": zx.spectral_centroid(np.abs(spectrum))}
    return {k: v for k, v in out.items() if k in stored}


class ContractStore:
    """Read side of the store contract over documents held as DataArrays.

    ``catalog()``, ``features``, ``store[doc_id]`` (lazy, dask-backed DataArrays with
    their indexes), ``frames(feature, ids=None)``, ``array(path)`` and ``url``.
    """

    def __init__(self, root, documents: dict[str, tuple[dict, dict[str, xr.DataArray]]]):
        self.url = str(root)
        self.storage_options = None
        root = pathlib.Path(root)
        root.mkdir(parents=True, exist_ok=True)
        self._docs = {doc_id: feats for doc_id, (_, feats) in documents.items()}
        names = []
        for _, feats in documents.values():
            names += [n for n in feats if n not in names]
        self.features = names
        rows = {}
        offsets = dict.fromkeys(names, 0)
        blocks: dict[str, list[np.ndarray]] = {n: [] for n in names}
        for doc_id, (meta, feats) in documents.items():
            row = dict(meta)
            for name in names:
                da = feats.get(name)
                if da is None:
                    row.update({f"{name}.frames": 0, f"{name}.version": "",
                                f"{name}.array": "", f"{name}.offset": 0,
                                f"{name}.index": ""})
                    continue
                index = da.xindexes["time"]
                values = np.asarray(da.transpose("time", ...).values)
                blocks[name].append(values)
                row.update({f"{name}.frames": values.shape[0], f"{name}.version": "v1",
                            f"{name}.array": f"parts/p0/{name}",
                            f"{name}.offset": offsets[name],
                            f"{name}.index": json.dumps(index.to_attrs())})
                offsets[name] += values.shape[0]
            rows[doc_id] = row
        self._arrays = {}
        for name in names:
            data = np.concatenate(blocks[name]) if blocks[name] else np.zeros(0)
            arr = zarr.create_array(str(root / "parts" / "p0" / name), shape=data.shape,
                                    dtype=data.dtype, chunks=(max(1, min(4096, len(data))),
                                                              *data.shape[1:]),
                                    overwrite=True)
            arr[...] = data
            self._arrays[f"parts/p0/{name}"] = zarr.open_array(
                str(root / "parts" / "p0" / name), mode="r")
        cat = pd.DataFrame.from_dict(rows, orient="index")
        cat.index.name = "id"
        self._catalog = cat

    def catalog(self) -> pd.DataFrame:
        return self._catalog.copy()

    def __getitem__(self, doc_id):
        if doc_id not in self._docs:
            raise zx.DocumentNotFoundError(f"no document {doc_id!r}")
        return {name: da.chunk({"time": 2048}) for name, da in self._docs[doc_id].items()}

    def array(self, path):
        return self._arrays[path]


def make_store(root, *, stored=("resampled", "magnitude", "mel", "centroid"), seconds=2.0,
               n_docs=6, sources=None, seed=7) -> ContractStore:
    """A demo-like store: ``n_docs`` generated sounds at 22050 Hz (cycling through six
    kinds); ``sources`` (a directory) also writes each sound as a WAV file there and uses
    it as the document's ``uri``."""
    rng = np.random.default_rng(seed)
    rate = zx.SR22050()
    signals = _signals(int(rate), seconds, rng)
    kinds = list(signals)
    documents = {}
    for i in range(n_docs):
        name = kinds[i % len(kinds)]
        samples = np.clip(signals[name] * (1 - 0.05 * (i // len(kinds))), -1, 1)
        uri = f"/corpus/{i:03d}_{name}"
        if sources is not None:
            path = pathlib.Path(sources) / f"{i:03d}_{name.rsplit('.', 1)[0]}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, samples, int(rate))
            uri = str(path)
        meta = {"uri": uri, "samplerate": int(rate), "channels": 1,
                "duration": samples.size / int(rate), "licensing": "CC0",
                "description": f"generated {name.rsplit('.', 1)[0].replace('_', ' ')}",
                "tags": ["generated", name.split("_")[0]]}
        documents[f"doc{i:03d}"] = (meta, features_of(samples, rate, stored))
    return ContractStore(root, documents)


def demo_store(tmp_path_factory) -> pathlib.Path:
    """A private copy of the demo's store (``zounds-xr demo``: 8 generated sounds
    ingested with dask), generated once per test session (per xdist worker).

    Each caller gets its own copy: tests write to it (search indexes, labels), and a
    store shared between test modules would make their results depend on the order
    they run in.
    """
    from zounds_xr.app.demo import run_demo

    root = tmp_path_factory.getbasetemp() / "explorer-demo"
    done = root / "done"
    if not done.exists():
        run_demo(output=root, scheduler="threads", workers=2, progress=False,
                 echo=lambda *args, **kwargs: None)
        done.touch()
    copy = tmp_path_factory.mktemp("demo") / "features.zarr"
    shutil.copytree(root / "features.zarr", copy)
    return copy


class EmbeddingStore:
    """The store contract over ``n`` documents that each hold one frame of a
    ``dims``-dimensional embedding in ``clusters`` clusters, written as one real Zarr
    array and a catalog DataFrame: a corpus of 10^5..10^6 documents made in seconds.
    ``cluster`` (a catalog column) says which cluster a document was drawn from."""

    def __init__(self, root, n: int, dims: int = 16, clusters: int = 8, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.url = str(root)
        self.storage_options = None
        self.features = ["embedding"]
        centres = rng.normal(0, 6, (clusters, dims))
        cluster = rng.integers(0, clusters, n)
        values = (centres[cluster] + rng.normal(0, 1, (n, dims))).astype(np.float32)
        path = "parts/p0/embedding"
        arr = zarr.create_array(str(pathlib.Path(root) / path), shape=values.shape,
                                dtype=np.float32, chunks=(65536, dims), overwrite=True)
        arr[...] = values
        self._array = zarr.open_array(str(pathlib.Path(root) / path), mode="r")
        index = json.dumps(zx.TimeIndex.from_params(1, zx.Seconds(1)).to_attrs())
        ids = pd.Index([f"e{i:07d}" for i in range(n)], name="id")
        words = ["dog", "rain", "engine", "bird", "speech", "music", "door", "wind"]
        self._catalog = pd.DataFrame({
            "uri": [f"/corpus/{words[c % 8]}/{i:07d}.wav" for i, c in enumerate(cluster)],
            "samplerate": 16000, "channels": 1, "duration": 1.0 + (np.arange(n) % 10),
            "tags": [words[c % 8] for c in cluster], "cluster": cluster,
            "embedding.frames": np.int64(1), "embedding.version": "v1",
            "embedding.array": path, "embedding.offset": np.arange(n, dtype=np.int64),
            "embedding.index": index}, index=ids)
        self.values, self.cluster = values, cluster

    def catalog(self) -> pd.DataFrame:
        return self._catalog.copy()

    def array(self, path):
        return self._array

    def __getitem__(self, doc_id):
        pos = self._catalog.index.get_indexer([doc_id])[0]
        if pos < 0:
            raise zx.DocumentNotFoundError(f"no document {doc_id!r}")
        da = xr.DataArray(self.values[pos:pos + 1], dims=("time", "dim"), name="embedding")
        return {"embedding": da.assign_coords(time_coords(1, Fraction(1)))}


class Labelled:
    """A store of the contract above with label edits as versioned data, the interface
    the commit log gives ``FeatureStore`` (``set_labels(column, {id: value},
    author=None) -> int``, ``catalog(version=n)``, ``version``): every edit is a new
    version of the catalog, the old ones stay readable."""

    def __init__(self, store):
        self._store = store
        self.url, self.storage_options, self.features = store.url, None, store.features
        self._versions = [store.catalog()]
        self.authors: list = [None]

    @property
    def version(self) -> int:
        return len(self._versions) - 1

    def catalog(self, version=None):
        return self._versions[self.version if version is None else version].copy()

    def set_labels(self, column, values, author=None) -> int:
        cat = self.catalog()
        missing = set(values) - set(cat.index)
        if missing:
            raise zx.DocumentNotFoundError(f"no documents {sorted(missing)}")
        if column not in cat.columns:
            cat[column] = pd.Series(pd.NA, index=cat.index, dtype=object)
        cat[column] = cat[column].astype(object)
        for doc_id, value in values.items():
            cat.at[doc_id, column] = value
        self._versions.append(cat)
        self.authors.append(author)
        return self.version

    def __getitem__(self, doc_id):
        return self._store[doc_id]

    def array(self, path):
        return self._store.array(path)
