"""The explorer: see, hear and search a feature store in the browser.

``zounds-xr serve STORE`` (or :func:`explore` in a notebook) opens a page over any store
(``zx.open_store``), read-only: the catalog as a table (filter, sort, paging), a
document view with the waveform and any stored time-frequency feature as a spectrogram
(zoom, pan, select), playback of any selected range, the nearest neighbours of a
selection over a chosen feature, and a 2-D map of the documents. ``zounds-xr index
STORE --feature NAME`` builds the neighbour index and persists it in the store.

Needs the ``[explore]`` extra (tornado); neighbour search needs ``[learn]`` (SimHash).
See docs/EXPLORER.md for the JSON API.
"""
from .model import Explorer, NotFoundError
from .neighbours import NeighbourIndex, build_index, index_url, load_index
from .notebook import explore
from .server import BackgroundServer, make_app, open_explorer, serve

__all__ = [
           "BackgroundServer",
           "Explorer",
           "NeighbourIndex",
           "NotFoundError",
           "build_index",
           "explore",
           "index_url",
           "load_index",
           "make_app",
           "open_explorer",
           "serve",
]
