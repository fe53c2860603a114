"""Server-side paging, sorting and text filtering of a store's catalog.

A catalog of 10^6 rows is sorted and filtered with vectorised pandas operations; the
orders and filter results are kept in small LRU caches so that paging through a
sorted, filtered view costs a slice and a few hundred rows of JSON.
"""
from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict

import numpy as np
import pandas as pd

from ..core.errors import ParameterError

__all__ = ["MAX_LIMIT", "SORTABLE", "CatalogView", "position_in"]

#: the largest page a request may ask for
MAX_LIMIT = 1000
#: columns of the table (name -> where it comes from) and which sort
SORTABLE = ("id", "source", "duration", "samplerate", "channels", "tags")
#: catalog columns the table shows in its own columns (or never): the others (labels
#: set in the explorer, extra metadata) are shown as they are, and sort too
_SHOWN = frozenset({"uri", "samplerate", "channels", "duration", "licensing",
                    "description", "tags", "frames"})
_FEATURE_SUFFIXES = (".frames", ".version", ".array", ".offset", ".index")


def _joined(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _strings(values: pd.Series) -> pd.Series:
    """Convert a column to pyarrow-backed strings, so that string operations vectorise.

    Missing values become ``""``; lists (such as tags) are joined with ``", "``.
    """
    values = pd.Series(values).reset_index(drop=True)
    if values.dtype == object:
        sample = values.dropna()
        if len(sample) and isinstance(sample.iloc[0], (list, tuple, np.ndarray)):
            values = pd.Series([_joined(v) for v in values], dtype=object)
    return values.astype("string[pyarrow]").fillna("")


def _json_value(value):
    """Convert a catalog cell to JSON: numpy scalars to Python, NaN and NA to null."""
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_value(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)



def position_in(ids: pd.Index, doc_id: str) -> int | None:
    """Row of ``doc_id`` in a unique index of document ids, or ``None``."""
    try:
        pos = ids.get_loc(doc_id)
    except KeyError:
        return None
    return int(pos) if isinstance(pos, (int, np.integer)) else None

class _LRU:
    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key, value):
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


class CatalogView:
    """The table of the explorer over a catalog ``DataFrame`` (indexed by document id).

    Parameters
    ----------
    catalog : pandas.DataFrame
        ``store.catalog()``: index ``id``; columns ``uri``, ``samplerate``, ``channels``,
        ``duration``, ``tags`` (any may be missing) and ``"<feature>.frames"``.
    features : sequence of str
        The store's feature names (for the ``features`` column).
    """

    def __init__(self, catalog: pd.DataFrame, features):
        self.catalog = catalog
        self.features = list(features)
        n = len(catalog)
        ids = catalog.index.astype(str)

        def column(name, default):
            if name in catalog.columns:
                return catalog[name]
            return pd.Series(default, index=catalog.index, dtype=object)

        uri = _strings(column("uri", None))
        # string columns pass as pandas arrays: through object arrays, each of 10^5
        # strings would be boxed and converted back
        self.table = pd.DataFrame({
            "id": ids.array,
            # the last path component, vectorised (``a/b/c.wav/`` -> ``c.wav``)
            "source": uri.str.rstrip("/").str.replace(r"^.*/", "", regex=True).array,
            "duration": pd.to_numeric(column("duration", np.nan), errors="coerce").to_numpy(
                dtype=np.float64),
            "samplerate": pd.to_numeric(column("samplerate", np.nan),
                                        errors="coerce").to_numpy(dtype=np.float64),
            "channels": pd.to_numeric(column("channels", np.nan), errors="coerce").to_numpy(
                dtype=np.float64),
            "tags": _strings(column("tags", None)).array,
        })
        self.table.index = pd.RangeIndex(n)
        frames = {f: column(f"{f}.frames", 0).fillna(0).to_numpy() for f in self.features}
        self._frames = frames
        self._text_columns = (self.table["id"], uri, self.table["tags"],
                              column("description", ""))
        self._text: pd.Series | None = None
        self._text_lock = threading.Lock()
        self._orders = _LRU(8)
        self._filters = _LRU(16)
        self._positions = pd.Index(self.table["id"])
        self.extra = [str(c) for c in catalog.columns if str(c) not in _SHOWN
                      and not str(c).endswith(_FEATURE_SUFFIXES)]

    def __len__(self) -> int:
        return len(self.table)

    def position(self, doc_id: str) -> int | None:
        """Row of ``doc_id`` in the catalog, or ``None``."""
        return position_in(self._positions, doc_id)

    def _order(self, sort: str, descending: bool) -> np.ndarray:
        key = (sort, descending)
        order = self._orders.get(key)
        if order is None:
            values = self.table[sort] if sort in SORTABLE else \
                self.catalog[sort].reset_index(drop=True)
            if values.dtype == object:
                values = _strings(values).str.lower()
            # stable sort, ties keep catalog order; NaN last either way
            order = values.sort_values(ascending=not descending, kind="stable",
                                       na_position="last").index.to_numpy()
            self._orders.put(key, order)
        return order

    def _search_text(self) -> pd.Series:
        """Return what a text filter searches: id, source URI, tags, description.

        Lower case; built once, in the background when the server starts (see
        ``prepare_search``).
        """
        with self._text_lock:
            if self._text is None:
                self._text = self._build_text()
        return self._text

    def prepare_search(self) -> None:
        """Build the text the filter searches now.

        The server calls this in a thread as it starts, so the first filter of a large
        catalog does not pay for it.
        """
        self._search_text()

    def _build_text(self) -> pd.Series:
        parts = [_strings(pd.Series(np.asarray(c, dtype=object))).reset_index(drop=True)
                 for c in self._text_columns]
        text = parts[0]
        for part in parts[1:]:
            text = text + "\n" + part
        return text.str.lower()

    def _matches(self, query: str) -> np.ndarray:
        mask = self._filters.get(query)
        if mask is None:
            text = self._search_text()
            mask = np.ones(len(self.table), dtype=bool)
            for word in query.lower().split():
                mask &= text.str.contains(word, regex=False).to_numpy(dtype=bool)
            self._filters.put(query, mask)
        return mask

    def page(self, offset: int = 0, limit: int = 50, sort: str | None = None,
             descending: bool = False, query: str = "") -> dict:
        """Return one page of the table.

        Parameters
        ----------
        offset : int
            First row of the (sorted, filtered) view, >= 0.
        limit : int
            Rows, 1..``MAX_LIMIT``.
        sort : str, optional
            One of ``SORTABLE`` or of the other catalog columns (``extra``: labels and
            metadata the table does not show in its own columns); default catalog
            order.
        descending : bool
            Sort order.
        query : str
            Whitespace-separated words, each of which a row must contain (case
            insensitive) in its id, source URI, tags or description.

        Returns
        -------
        dict
            ``{"total", "offset", "limit", "extra", "rows": [{"id", "source", "duration",
            "samplerate", "channels", "tags", "features", "extra"}]}``: ``extra`` names
            the other columns and gives each row's values; ``total`` counts the
            filtered rows.

        Raises
        ------
        ParameterError
            If ``offset`` or ``limit`` is out of range, or ``sort`` names no column.
        """
        if offset < 0:
            raise ParameterError(f"offset must be >= 0, got {offset}")
        if not 1 <= limit <= MAX_LIMIT:
            raise ParameterError(f"limit must be in 1..{MAX_LIMIT}, got {limit}")
        if sort is not None and sort not in SORTABLE and sort not in self.extra:
            raise ParameterError(f"sort must be one of {', '.join((*SORTABLE, *self.extra))}"
                                 f", got {sort!r}")
        query = query.strip()
        if sort is None:
            rows = np.arange(len(self.table)) if not descending else \
                np.arange(len(self.table))[::-1]
        else:
            rows = self._order(sort, descending)
        if query:
            rows = rows[self._matches(query)[rows]]
        total = int(rows.size)
        chosen = rows[offset:offset + limit]
        page = self.table.iloc[chosen]
        extra = self.catalog[self.extra].iloc[chosen].to_dict("records") if self.extra \
            else [{}] * len(chosen)
        out = []
        for pos, record, more in zip(chosen, page.to_dict("records"), extra, strict=True):
            record = {k: _json_value(v) for k, v in record.items()}
            record["features"] = [f for f in self.features if self._frames[f][pos] > 0]
            record["extra"] = {k: _json_value(v) for k, v in more.items()}
            out.append(record)
        return {"total": total, "offset": offset, "limit": limit, "extra": self.extra,
                "rows": out}

    def row(self, doc_id: str) -> dict:
        """Return the whole catalog row of ``doc_id`` as JSON-safe values."""
        values = self.catalog.loc[doc_id]
        return {str(k): _json_value(v) for k, v in values.items()}


def dumps(obj) -> str:
    """Compact JSON (no NaN: the page's JSON.parse would reject it)."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)
