"""Feature documents: a declared graph of features, streamed and persisted in Zarr.

- :mod:`.feature`: ``Feature`` (a node: function, needs, parameters, storage) and versions;
- :mod:`.streaming`: the chunk-by-chunk execution model (carry-over for windows,
  stateful resampling, alignment of several inputs);
- :mod:`.parts`: writing a part (many documents' frames in sharded arrays);
- :mod:`.objects`: the object layer (get, ranged get, put, put-if-absent, listing);
- :mod:`.log`: the commit log, the one source of truth, and its checkpoints;
- :mod:`.manifest`: what the log records of each file, and the checks of a read;
- :mod:`.catalog`: the Parquet catalog fragments and their resolution;
- :mod:`.reader`: the checked reader (catalog row -> lazy DataArray);
- :mod:`.maintenance`: verify, repair, compact, vacuum, upgrade;
- :mod:`.store`: ``FeatureStore`` (the layers tied together), ``open_store``
  (``docs/STORE_LAYOUT.md``);
- :mod:`.document`: ``Document`` (process, read lazily, update, delete, iterate);
- :mod:`.settings`: ``zarr_settings``, ``simple_in_memory_settings``.
"""
from .document import AudioFeature, Document, Feature
from .settings import simple_in_memory_settings, zarr_settings
from .store import FeatureStore, open_store

__all__ = ["Document", "Feature", "AudioFeature", "FeatureStore", "open_store", "zarr_settings",
           "simple_in_memory_settings"]
