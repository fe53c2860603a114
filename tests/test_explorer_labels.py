"""Label edits from the explorer: ``POST /api/labels`` commits through the store's
``set_labels`` (one version per edit, the previous ones readable), only on a writable
explorer, only with this session's token, a JSON body and a same-origin request."""
import json
import urllib.error
import urllib.request

import pytest

import zounds_xr as zx
from zounds_xr.explorer import BackgroundServer, Explorer

from _explorer_store import EmbeddingStore, Labelled, demo_store, make_store

pytest.importorskip("tornado")


def request(url, body=None, headers=None, method=None):
    data = None if body is None else (body if isinstance(body, bytes) else
                                      json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture
def labelled(tmp_path):
    return Labelled(make_store(tmp_path / "store", n_docs=6, seconds=0.5))


@pytest.fixture
def server(labelled):
    srv = BackgroundServer(Explorer(labelled, writable=True)).start()
    yield srv
    srv.stop()


def token_of(server):
    status, info = request(server.url + "api/info")
    assert status == 200 and info["writable"] and info["read_only"] is None
    return info["token"]


def post(server, body, token, **headers):
    return request(server.url + "api/labels", body, {
        "Content-Type": "application/json", "X-Zx-Token": token, **headers}, "POST")


def test_label_three_documents_keeps_the_previous_version(server, labelled):
    token = token_of(server)
    ids = list(labelled.catalog().index[:3])
    status, result = post(server, {"column": "label", "value": "engine", "ids": ids,
                                   "author": "ana"}, token)
    assert status == 200, result
    assert result == {"column": "label", "documents": 3, "version": 1}
    assert labelled.authors[-1] == "ana"
    cat = labelled.catalog()
    assert list(cat.loc[ids, "label"]) == ["engine"] * 3
    assert cat["label"].isna().sum() == 3
    assert "label" not in labelled.catalog(version=0).columns
    # the table shows and sorts the new column at once
    status, page = request(server.url + "api/catalog?sort=label&order=desc&limit=10")
    assert page["extra"] == ["label"]
    assert [r["extra"]["label"] for r in page["rows"][:3]] == ["engine"] * 3
    # one value per document, and clearing with null
    status, result = post(server, {"column": "label", "values": {ids[0]: "dog", ids[1]: None}},
                          token)
    assert status == 200 and result["version"] == 2
    cat = labelled.catalog()
    assert cat.at[ids[0], "label"] == "dog" and cat.isna().at[ids[1], "label"]
    assert labelled.catalog(version=1).at[ids[0], "label"] == "engine"


def test_writes_without_the_token_or_from_another_site_are_refused(server, labelled):
    token = token_of(server)
    doc = labelled.catalog().index[0]
    body = {"column": "label", "value": "x", "ids": [doc]}
    cases = [
        ({"Content-Type": "application/json"}, 403, "token"),  # no token
        ({"Content-Type": "application/json", "X-Zx-Token": token[:-1] + "A"}, 403, "token"),
        ({"Content-Type": "application/json", "X-Zx-Token": token,
          "Origin": "http://evil.example"}, 403, "cross-site"),
        ({"Content-Type": "text/plain", "X-Zx-Token": token}, 415, "JSON"),
        ({"Content-Type": "application/json", "X-Zx-Token": token,
          "Host": "evil.example:80"}, 403, "answers to"),
    ]
    for headers, status, words in cases:
        got, answer = request(server.url + "api/labels", body, headers, "POST")
        assert got == status and words in answer["error"], (headers, answer)
    assert labelled.version == 0  # nothing was written
    # the token is not given to another host either (DNS rebinding)
    got, answer = request(server.url + "api/info", headers={"Host": "evil.example:80"})
    assert got == 403 and "token" not in answer
    # GET is not a write
    got, _ = request(server.url + "api/labels")
    assert got == 405


def test_bad_edits_are_400(server, labelled):
    token = token_of(server)
    doc = labelled.catalog().index[0]
    for body, words in [({"column": "", "value": "x", "ids": [doc]}, "label column"),
                        ({"column": "mel.frames", "value": 1, "ids": [doc]}, "stored data"),
                        ({"column": "label", "value": [1], "ids": [doc]}, "string, number"),
                        ({"column": "label", "value": "x", "ids": []}, "at least one"),
                        ({"column": "label", "value": "x", "ids": "doc000"}, "list"),
                        (b"{not json", "not JSON")]:
        status, answer = post(server, body, token)
        assert status == 400 and words in answer["error"], (body, answer)
    status, answer = post(server, {"column": "label", "value": "x", "ids": ["nope"]}, token)
    assert status == 404
    assert labelled.version == 0


def test_read_only_explorers_refuse_and_say_so(labelled, tmp_path):
    for explorer, why in [(Explorer(labelled), "read-only"),
                          (Explorer(make_store(tmp_path / "plain", n_docs=2, seconds=0.5),
                                    writable=True), "cannot commit")]:
        srv = BackgroundServer(explorer).start()
        try:
            status, info = request(srv.url + "api/info")
            assert not info["writable"] and why in info["read_only"] and "token" not in info
            # read-only, it answers any Host (a notebook behind a proxy), with no token
            status, info = request(srv.url + "api/info", headers={"Host": "proxy.example:80"})
            assert status == 200 and "token" not in info
            got, answer = request(srv.url + "api/labels", {"column": "a", "value": 1, "ids": []},
                                  {"Content-Type": "application/json", "X-Zx-Token": "x"},
                                  "POST")
            assert got == 403 and why in answer["error"]
        finally:
            srv.stop()
    assert labelled.version == 0


def test_label_a_lasso_selection_of_the_map(tmp_path):
    store = Labelled(EmbeddingStore(tmp_path, 400, clusters=4))
    srv = BackgroundServer(Explorer(store, writable=True)).start()
    try:
        token = token_of(srv)
        status, result = post(srv, {"column": "cluster_name", "value": "first",
                                    "map": {"feature": "embedding"}, "points": [0, 5, 7]}, token)
        assert status == 200 and result["documents"] == 3
        cat = store.catalog()
        assert list(cat.index[cat["cluster_name"] == "first"]) == [cat.index[i] for i in (0, 5, 7)]
        status, answer = post(srv, {"column": "c", "value": 1, "map": {"feature": "embedding"},
                                    "points": [400]}, token)
        assert status == 400 and "points" in answer["error"]
    finally:
        srv.stop()


@pytest.mark.skipif(not hasattr(zx.FeatureStore, "set_labels"),
                    reason="FeatureStore.set_labels comes with the store's commit log")
def test_labels_are_commits_of_a_real_store(tmp_path_factory):
    import shutil

    source = demo_store(tmp_path_factory)
    root = tmp_path_factory.mktemp("labels") / "features.zarr"
    shutil.copytree(source, root)
    from zounds_xr.explorer.server import open_explorer

    explorer = open_explorer(str(root), writable=True)
    srv = BackgroundServer(explorer).start()
    try:
        before = zx.open_store(str(root))
        version = before.version
        ids = list(before.catalog().index[:3])
        status, result = post(srv, {"column": "label", "value": "engine", "ids": ids},
                              token_of(srv))
        assert status == 200 and result["version"] > version
        store = zx.open_store(str(root))
        assert list(store.catalog().loc[ids, "label"]) == ["engine"] * 3
        assert "label" not in store.catalog(version=version).columns
    finally:
        srv.stop()


def test_a_store_that_refuses_the_write_turns_the_page_read_only(labelled):
    class Refusing(Labelled):
        def set_labels(self, column, values, author=None):
            raise zx.StoreError("cannot write the feature store: access denied") from \
                PermissionError("AccessDenied")

    store = Refusing(labelled._store)
    srv = BackgroundServer(Explorer(store, writable=True)).start()
    try:
        token = token_of(srv)
        status, answer = post(srv, {"column": "label", "value": "x",
                                    "ids": [store.catalog().index[0]]}, token)
        assert status == 403 and "refused the write" in answer["error"]
        status, info = request(srv.url + "api/info")
        assert not info["writable"] and "access denied" in info["read_only"]
    finally:
        srv.stop()
