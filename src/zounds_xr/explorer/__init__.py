"""The explorer: see, hear and search a feature store in the browser.

``zounds-xr serve STORE`` (or :func:`explore` in a notebook) opens a page over any store
(``zx.open_store``): the catalog as a table (filter, sort, paging), a document view
with the waveform and any stored time-frequency feature as a spectrogram (zoom, pan,
select; long documents drawn from their pyramids), playback of any selected range, the
nearest neighbours of a selection over a chosen feature, and a WebGL map of the
documents. Read-only unless ``--writable``: then label edits from the table, the map
and the document view, each a commit of the store, with the session's token.
``zounds-xr index`` (:mod:`zounds_xr.search`), ``map`` and ``pyramid`` build the
neighbour index, the map and the pyramids, and keep them in the store.

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
