"""First writers racing to create a store's root must all succeed."""
import threading

from zounds_xr.documents.store import FeatureStore


def test_concurrent_first_writers_share_one_root(tmp_path):
    path = tmp_path / "features.zarr"
    errors = []

    def create():
        try:
            FeatureStore(path).root(create=True)
        except Exception as exc:  # noqa: BLE001  (collected and reported below)
            errors.append(repr(exc))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert FeatureStore(path).ids() == []
