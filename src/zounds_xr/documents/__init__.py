"""Feature documents: a declared graph of features, streamed and persisted in Zarr.

- :mod:`.feature`: ``Feature`` (a node: function, needs, parameters, storage) and versions;
- :mod:`.streaming`: the chunk-by-chunk execution model (carry-over for windows,
  stateful resampling, alignment of several inputs);
- :mod:`.store`: ``FeatureStore`` and the Zarr layout (``docs/STORE_LAYOUT.md``);
- :mod:`.document`: ``Document`` (process, read lazily, update, delete, iterate);
- :mod:`.settings`: ``zarr_settings``, ``simple_in_memory_settings``.
"""
from .document import AudioFeature, Document, Feature
from .settings import simple_in_memory_settings, zarr_settings
from .store import FeatureStore

__all__ = ["Document", "Feature", "AudioFeature", "FeatureStore", "zarr_settings",
           "simple_in_memory_settings"]
