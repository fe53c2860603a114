"""Similarity search over windows of a stored feature: numpy only, exact, persisted.

The one search of the package: :class:`zounds_xr.learn.SimHash` and
:class:`~zounds_xr.learn.HammingIndex`, the explorer's neighbours and ``zounds-xr
index`` all use it. It imports neither torch nor the explorer.

**Semantics** (docs/EXPLORER.md, "Neighbours").

- Documents are cut into windows of ``window`` frames every ``hop`` frames
  (:class:`~zounds_xr.search.windows.WindowRule`); each window gets a packed binary code
  (:mod:`~zounds_xr.search.hashing`: the bits of fingerprint frames, or a SimHash of
  a window summary of any other feature).
- A query selection is cut into sub-windows with the same window and hop, from the
  frames fully inside it. A selection shorter than one window is widened to one window
  centred on it (clamped to the document), and the answer says so.
- A candidate stretch's distance is the minimum over its aligned sub-windows of the
  Hamming distance; an indexed window queried exactly is at distance 0 and ranks first
  among equals. ``exclude`` says whether the selection's own stretch (the default),
  its whole document, or nothing is left out.

**Speed.** Exact search, a popcount of XORs (``np.bitwise_count``) word by word:
10^6 codes of 256 bits in about 8 ms on one core; ``faiss.IndexBinaryFlat`` is used
instead when ``faiss-cpu`` is installed (``pip install "zounds_xr[search]"``), with
identical results (benchmarks/bench_search.py).

**Persistence.** :func:`open_index` keeps one index file per immutable part of the
store (:mod:`~zounds_xr.search.persist`), so ingest hashes only new parts and opening
a store reads the files (checked by CRC-32, rebuilt when damaged or stale).

Modules
-------
codes
    ``pack_bits``, ``unpack_bits``, ``hamming_distance``, ``WordMajor``.
windows
    ``WindowRule``, ``Selection``, ``FrameTimes``.
hashing
    ``BitsHasher``, ``SimHasher``, ``hyperplanes``, ``simhash_bits``.
index
    ``CodeIndex`` (exact search with the semantics above), ``Neighbour``.
persist
    ``open_index``, ``update_indexes``, ``StoreIndex``, ``IndexRebuiltWarning``.
"""
from .codes import WordMajor, hamming_distance, pack_bits, unpack_bits
from .hashing import BitsHasher, SimHasher, hyperplanes, simhash_bits
from .index import CodeIndex, Neighbour, Segments
from .persist import (
    IndexConfig,
    IndexRebuiltWarning,
    StoreIndex,
    configure,
    configured,
    load,
    open_index,
    update_indexes,
)
from .windows import FrameTimes, Selection, WindowRule

__all__ = [
    "BitsHasher",
    "CodeIndex",
    "FrameTimes",
    "IndexConfig",
    "IndexRebuiltWarning",
    "Neighbour",
    "Segments",
    "Selection",
    "SimHasher",
    "StoreIndex",
    "WindowRule",
    "WordMajor",
    "configure",
    "configured",
    "hamming_distance",
    "hyperplanes",
    "load",
    "open_index",
    "pack_bits",
    "simhash_bits",
    "unpack_bits",
    "update_indexes",
]
