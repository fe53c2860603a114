"""The explorer's 2-D map (``explorer.maplayout``, ``explorer.mapview``): per-document
summaries equal those computed document by document, layouts keep neighbourhoods, maps
are stored and read back (damage is a StoreError), and the HTTP API sends positions,
colours and the document under a point."""
import json

import numpy as np
import pytest

from zounds_xr.app.cli import main
from zounds_xr.core.errors import ParameterError, StoreError
from zounds_xr.explorer import BackgroundServer, Explorer
from zounds_xr.explorer.maplayout import build_map, layout_of, load_map, map_path, summaries
from zounds_xr.explorer.mapview import MISSING

from _explorer_store import EmbeddingStore, fetch, make_store

pytest.importorskip("tornado")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("map-store"), n_docs=12, seconds=1.0)


@pytest.fixture(scope="module")
def server(store):
    srv = BackgroundServer(Explorer(store)).start()
    yield srv
    srv.stop()


def _neighbour_agreement(xy: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Fraction of each point's k nearest points on the map that share its label."""
    d = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1)[:, :k]
    return float((labels[nearest] == labels[:, None]).mean())


def test_summaries_are_per_document_mean_and_std(store):
    ids, x = summaries(store, "mel")
    assert list(ids) == list(store.catalog().index)
    for pos, doc_id in enumerate(ids):
        frames = np.log(np.maximum(np.asarray(store[doc_id]["mel"].transpose("time", ...)
                                              .values, dtype=np.float64), 1e-10))
        np.testing.assert_allclose(x[pos], np.r_[frames.mean(0), frames.std(0)],
                                   rtol=1e-6, atol=1e-6)
    # a 1-frame embedding is its own mean
    ids, x = summaries(store, "centroid", log=False)
    centroid = np.asarray(store[ids[3]]["centroid"].values, dtype=np.float64)
    assert x[3, 0] == pytest.approx(centroid.mean()) and x[3, 1] == pytest.approx(centroid.std())


def test_summaries_through_the_lazy_arrays_agree(store):
    class Lazy:  # no array(): every document is read through store[doc_id]
        features = store.features
        catalog = store.catalog

        def __getitem__(self, doc_id):
            return store[doc_id]

    ids_a, a = summaries(store, "mel")
    ids_b, b = summaries(Lazy(), "mel")
    assert list(ids_a) == list(ids_b)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_pca_map_over_http_places_twins_together(server, store):
    m = json.loads(fetch(f"{server.url}api/map?feature=mel")[2])
    assert m["method"] == "pca" and not m["stored"]
    assert m["documents"] == m["total"] == 12
    status, headers, body = fetch(f"{server.url}api/map/points.bin?feature=mel")
    assert status == 200 and len(body) == 12 * 8
    xy = np.frombuffer(body, "<f4").reshape(-1, 2)
    assert np.isfinite(xy).all()
    # every document's nearest on the map is its twin (same sound, 0.95 of the level)
    d = np.linalg.norm(xy[:, None] - xy[None], axis=2) + np.eye(len(xy)) * 1e9
    twins = [(i + 6) % 12 for i in range(12)]
    assert sum(int(np.argmin(d[i]) == twins[i]) for i in range(12)) >= 10
    lo_x, hi_x, lo_y, hi_y = m["bounds"]
    assert lo_x == pytest.approx(xy[:, 0].min()) and hi_y == pytest.approx(xy[:, 1].max())
    point = json.loads(fetch(f"{server.url}api/map/point?feature=mel&i=4")[2])
    assert point["id"] == store.catalog().index[4] and point["source"]


def test_colours_follow_the_catalog(server, store):
    cat = store.catalog()
    status, headers, body = fetch(f"{server.url}api/map/colours.bin?feature=mel&column=tags")
    assert status == 200
    codes = np.frombuffer(body, np.uint8)
    legend = json.loads(headers["X-Zx-Legend"])
    assert legend["kind"] == "category" and len(codes) == 12
    # two documents share a colour exactly when they share the value
    values = [", ".join(t) for t in cat["tags"]]
    for i in range(12):
        for j in range(12):
            assert (codes[i] == codes[j]) == (values[i] == values[j])
        assert legend["categories"][codes[i]] == values[i]
    _, headers, body = fetch(f"{server.url}api/map/colours.bin?feature=mel&column=duration")
    legend = json.loads(headers["X-Zx-Legend"])
    assert legend["kind"] == "category"  # one distinct duration: a category
    status, _, body = fetch(f"{server.url}api/map/colours.bin?feature=mel&column=mel.array")
    assert status == 400 and "cannot colour" in json.loads(body)["error"]


def test_numeric_colours_span_the_range(tmp_path):
    store = EmbeddingStore(tmp_path, 500, clusters=3)
    explorer = Explorer(store)
    view = explorer.map_view("embedding")
    body, legend = view.colours("duration")
    codes = np.frombuffer(body, np.uint8)
    durations = store.catalog()["duration"].to_numpy()
    assert legend["kind"] == "category"  # 10 distinct values
    body, legend = view.colours("embedding.frames")
    assert set(np.frombuffer(body, np.uint8)) == {0}
    store._catalog["loudness"] = np.linspace(-60, 0, 500)
    store._catalog.loc[store._catalog.index[7], "loudness"] = np.nan
    explorer = Explorer(store)
    body, legend = explorer.map_view("embedding").colours("loudness")
    codes = np.frombuffer(body, np.uint8)
    assert legend == {"column": "loudness", "kind": "number", "min": -60.0, "max": 0.0}
    assert codes[0] == 0 and codes[-1] == 254 and codes[7] == MISSING
    assert (np.diff(codes[8:].astype(int)) >= 0).all()
    assert len(durations) == 500


@pytest.mark.slow
def test_umap_map_keeps_clusters_and_places_the_unsampled(tmp_path):
    pytest.importorskip("umap")
    store = EmbeddingStore(tmp_path, 3000, dims=12, clusters=6, seed=3)
    stages = []
    layout = build_map(store, "embedding", "umap", sample=1500,
                       progress=lambda stage, done, total: stages.append(stage))
    assert {"reading", "umap", "placing"} <= set(stages)
    xy = layout.xy
    assert xy.shape == (3000, 2) and np.isfinite(xy).all()
    assert _neighbour_agreement(xy, store.cluster) > 0.95
    loaded = load_map(store, "embedding", "umap")
    assert loaded is not None and list(loaded.ids) == list(layout.ids)
    np.testing.assert_array_equal(loaded.xy, xy)
    assert loaded.attrs["sample"] == 1500 and loaded.attrs["documents"] == 3000
    # the explorer prefers the stored UMAP map
    info = Explorer(store).map_view("embedding").info()
    assert info["method"] == "umap" and info["stored"]


def test_pca_layout_is_exact_and_deterministic():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 5)) * [10, 3, 1, 1, 1]
    a, b = layout_of(x, "pca"), layout_of(x[::-1].copy(), "pca")[::-1]
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    z = (x - x.mean(0)) / x.std(0)
    top = np.linalg.svd(z, full_matrices=False)[2][:2]
    np.testing.assert_allclose(np.abs(a), np.abs(z @ top.T), rtol=1e-4, atol=1e-4)
    with pytest.raises(ParameterError, match="method"):
        layout_of(x, "tsne")


def test_map_command_stores_a_map_and_damage_is_an_error(tmp_path, capsys):
    store = EmbeddingStore(tmp_path, 2000, clusters=4)
    layout = build_map(store, "embedding", "pca")
    assert _neighbour_agreement(layout.xy[:500], store.cluster[:500]) > 0.9
    loaded = load_map(store, "embedding", "pca")
    assert loaded is not None and loaded.attrs["method"] == "pca"
    assert list(loaded.ids) == list(layout.ids)
    # a server prepares stored maps as it starts: the ids are matched before any hover
    explorer = Explorer(store)
    explorer.prepare_maps()
    assert explorer.map_view("embedding")._positions is not None
    assert explorer.map_view("embedding", "pca") is explorer.map_view("embedding")
    chunk = next((tmp_path / map_path("embedding", "pca") / "xy" / "c").rglob("*"))
    while chunk.is_dir():
        chunk = next(chunk.iterdir())
    data = bytearray(chunk.read_bytes())
    data[3] ^= 0x55
    chunk.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="damaged"):
        load_map(store, "embedding", "pca")
    assert load_map(store, "embedding", "umap") is None
    with pytest.raises(ParameterError, match="no feature"):
        summaries(store, "nope")


def test_map_command(tmp_path, capsys, monkeypatch):
    store = EmbeddingStore(tmp_path, 300, clusters=3)
    import zounds_xr.explorer.cli as explorer_cli

    monkeypatch.setattr(explorer_cli, "open_explorer", lambda url: Explorer(store))
    assert main(["map", str(tmp_path), "--feature", "embedding", "--method", "pca",
                 "--quiet"]) == 0
    assert "pca map of 300 documents" in capsys.readouterr().out
    assert load_map(store, "embedding", "pca") is not None


def test_large_store_without_a_map_says_how_to_build_one(tmp_path):
    store = EmbeddingStore(tmp_path, 20001, clusters=3)
    from zounds_xr.explorer.model import NotFoundError

    with pytest.raises(NotFoundError, match="zounds-xr map"):
        Explorer(store).map_view("embedding")
