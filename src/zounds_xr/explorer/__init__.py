"""The explorer: see, hear and search a feature store in the browser.

``zounds-xr serve STORE`` (or :func:`explore` in a notebook) opens a page over any store
(``zx.open_store``), read-only: the catalog as a table (filter, sort, paging), a
document view with the waveform and any stored time-frequency feature as a spectrogram
(zoom, pan, select), playback of any selected range, the nearest neighbours of a
selection over a chosen feature, and a 2-D map of the documents. ``zounds-xr index
STORE --feature NAME`` builds the neighbour index (:mod:`zounds_xr.search`) and keeps it
in the store.

Needs the ``[explore]`` extra (tornado); neighbour search is numpy only.
See docs/EXPLORER.md for the JSON API.
"""
from .model import Explorer, NotFoundError
from .notebook import explore
from .server import BackgroundServer, make_app, open_explorer, serve

__all__ = [
           "BackgroundServer",
           "Explorer",
           "NotFoundError",
           "explore",
           "make_app",
           "open_explorer",
           "serve",
]
