"""What the page's map needs from a :class:`~.maplayout.MapLayout`, in compact binary form.

A map of 10^6 documents is sent as 8 MB of float32 positions and, per colouring, 1 MB
of uint8 colour codes with a small legend; a document's id and source are asked for
only when the pointer rests on it. Points are numbered in the map's order; the map's
documents are matched to the current catalog once (documents deleted since are left
out of colours and hover, added ones are absent until the map is rebuilt).
"""
from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from ..core.errors import ParameterError
from .catalog import CatalogView, _joined, _json_value
from .maplayout import MapLayout

__all__ = ["CATEGORIES", "MISSING", "MapView", "colourable"]

#: the most frequent values of a column get their own colour; the rest share one
CATEGORIES = 20
#: colour code of a point whose value is missing (or whose document is gone)
MISSING = 255
#: a numeric column with at most this many distinct values is coloured as categories
_FEW = 12
#: catalog columns that locate data rather than describe documents
_LOCATORS = (".array", ".offset", ".index", ".version")


def colourable(catalog: pd.DataFrame) -> list[str]:
    """List the catalog columns a map can be coloured by (not the ones that locate frames)."""
    return [str(c) for c in catalog.columns if not str(c).endswith(_LOCATORS)]


def _codes(values: pd.Series) -> tuple[np.ndarray, dict]:
    """Code a column as ``uint8`` (``MISSING`` for missing values), with its legend."""
    n = len(values)
    codes = np.full(n, MISSING, np.uint8)
    numeric = pd.to_numeric(values, errors="coerce") if values.dtype != object else None
    if numeric is not None and values.dtype != bool:
        finite = np.isfinite(numeric.to_numpy(np.float64, na_value=np.nan))
        distinct = pd.unique(numeric[finite])
        if len(distinct) > _FEW:
            x = numeric.to_numpy(np.float64, na_value=np.nan)
            lo, hi = float(np.nanmin(x[finite])), float(np.nanmax(x[finite]))
            span = hi - lo if hi > lo else 1.0
            codes[finite] = np.clip((x[finite] - lo) / span * 254 + 0.5, 0, 254).astype(np.uint8)
            return codes, {"kind": "number", "min": lo, "max": hi}
    text = pd.Series([_joined(v) if isinstance(v, (list, tuple, np.ndarray)) else v
                      for v in values], dtype=object) if values.dtype == object else values
    present = text.notna().to_numpy() & (text.astype(str) != "").to_numpy()
    counts = text[present].astype(str).value_counts(sort=True)
    top = list(counts.index[:CATEGORIES - 1]) if len(counts) > CATEGORIES else list(counts.index)
    lookup = {value: i for i, value in enumerate(top)}
    labels = text.astype(str).to_numpy(dtype=object)
    other = len(top)
    mapped = pd.Series(labels).map(lookup).to_numpy(dtype=np.float64, na_value=np.nan)
    codes[present] = np.where(np.isnan(mapped[present]), other, mapped[present]).astype(np.uint8)
    legend: dict = {"kind": "category", "categories": [_json_value(v) for v in top],
              "counts": [int(counts[v]) for v in top]}
    if len(counts) > len(top):
        legend["other"] = int(counts.iloc[len(top):].sum())
    return codes, legend


class MapView:
    """A stored or computed map matched to the explorer's catalog."""

    def __init__(self, layout: MapLayout, view: CatalogView, stored: bool):
        self.layout = layout
        self.view = view
        self.stored = stored
        self._positions: np.ndarray | None = None
        self._colours: dict = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.layout.xy)

    @property
    def positions(self) -> np.ndarray:
        """Catalog row of each point (-1: a document deleted since the map was made).

        Found when first needed (hover, colours), not to draw the points.
        """
        if self._positions is None:
            self._positions = self.view.catalog.index.get_indexer(self.layout.ids)
        return self._positions

    def info(self) -> dict:
        """Describe the map as JSON for ``/api/map``.

        Returns
        -------
        dict
            ``feature``, ``method``, ``documents`` (points), ``total`` (catalog rows),
            ``stored``, ``bounds`` (``[xmin, xmax, ymin, ymax]`` of the finite points),
            ``attrs`` (how the map was made) and the colourable ``columns``.
        """
        xy = self.layout.xy
        finite = xy[np.isfinite(xy).all(axis=1)]
        bounds = ([float(finite[:, 0].min()), float(finite[:, 0].max()),
                   float(finite[:, 1].min()), float(finite[:, 1].max())]
                  if len(finite) else [0.0, 1.0, 0.0, 1.0])
        attrs = {k: v for k, v in self.layout.attrs.items() if k not in ("format",)}
        return {"feature": attrs["feature"], "method": attrs["method"],
                "documents": len(self), "total": len(self.view), "stored": self.stored,
                "bounds": bounds,
                "attrs": attrs, "columns": colourable(self.view.catalog)}

    def points(self) -> bytes:
        """Return the positions as little-endian float32 ``x0, y0, x1, y1, ...``."""
        return np.ascontiguousarray(self.layout.xy, dtype="<f4").tobytes()

    def colours(self, column: str) -> tuple[bytes, dict]:
        """Colour the points by ``column``: one ``uint8`` code per point, and the legend.

        Kept per column for the view's life.

        Raises
        ------
        ParameterError
            If ``column`` is not a colourable column (see :func:`colourable`).
        """
        cat = self.view.catalog
        if column not in colourable(cat):
            raise ParameterError(f"cannot colour by {column!r}; columns: "
                                 f"{', '.join(colourable(cat))}")
        with self._lock:
            found = self._colours.get(column)
        if found is None:
            present = self.positions >= 0
            codes = np.full(len(self), MISSING, np.uint8)
            values = cat[column].iloc[self.positions[present]].reset_index(drop=True)
            sub, legend = _codes(values)
            codes[present] = sub
            found = (codes.tobytes(), {"column": column, **legend})
            with self._lock:
                self._colours[column] = found
        return found

    def point(self, i: int) -> dict:
        """Describe the document at point ``i`` (for the hover on the map).

        Parameters
        ----------
        i : int
            A point, ``0 <= i < len(self)``.

        Returns
        -------
        dict
            ``id`` and ``present``; for a document still in the catalog also its
            ``source``, ``duration``, ``tags`` and position ``x``, ``y``.

        Raises
        ------
        ParameterError
            If ``i`` is not a point of the map.
        """
        if not 0 <= i < len(self):
            raise ParameterError(f"point must be in 0..{len(self) - 1}, got {i}")
        pos = int(self.positions[i])
        doc_id = str(self.layout.ids[i])
        if pos < 0:
            return {"id": doc_id, "present": False}
        row = self.view.table.iloc[pos]
        return {"id": doc_id, "present": True, "source": row["source"],
                "duration": _json_value(row["duration"]), "tags": row["tags"],
                "x": float(self.layout.xy[i, 0]), "y": float(self.layout.xy[i, 1])}

    def ids_of(self, points) -> list[str]:
        """Return the ids of points (for labelling a lasso selection).

        Raises
        ------
        ParameterError
            If a point is not on the map.
        """
        points = np.asarray(points, dtype=np.int64)
        if points.size and (points.min() < 0 or points.max() >= len(self)):
            raise ParameterError(f"points must be in 0..{len(self) - 1}")
        return [str(i) for i in self.layout.ids[points]]
