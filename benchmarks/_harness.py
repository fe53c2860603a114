"""Shared timing helpers for the benchmark scripts."""
from __future__ import annotations

import pathlib
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import zarr
from zarr.storage import WrapperStore


def rounds(functions: dict[str, Callable[[], object]], n: int = 5, warmup: int = 1):
    """Time each function ``n`` times, interleaved round by round.

    Returns ``{name: [seconds per round]}``. Interleaving makes the per-round ratios
    robust to the machine's load changing during the run.
    """
    for _ in range(warmup):
        for f in functions.values():
            f()
    times = {name: [] for name in functions}
    for _ in range(n):
        for name, f in functions.items():
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    return times


def median(values) -> float:
    return statistics.median(values)


def ratio(times: dict[str, list[float]], slow: str, fast: str) -> float:
    """Median over rounds of ``slow / fast``."""
    return statistics.median(s / f for s, f in zip(times[slow], times[fast], strict=False))


def pct(values, q) -> float:
    """The ``q``-th percentile of ``values`` (seconds), in milliseconds."""
    return float(np.percentile(np.asarray(values) * 1000, q))


def table(header: list[str], rows: list[list]) -> str:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


class CountingStore(WrapperStore):
    """Counts what goes through ``get``/``get_partial_values`` (what a remote store bills)."""

    def __init__(self, store):
        super().__init__(store)
        self.requests, self.nbytes = 0, 0

    def _with_store(self, store):
        return type(self)(store)

    async def get(self, key, prototype, byte_range=None):
        buf = await self._store.get(key, prototype, byte_range)
        self.requests += 1
        self.nbytes += len(buf) if buf is not None else 0
        return buf

    async def get_partial_values(self, prototype, key_ranges):
        key_ranges = list(key_ranges)
        bufs = await self._store.get_partial_values(prototype, key_ranges)
        self.requests += len(key_ranges)
        self.nbytes += sum(len(b) for b in bufs if b is not None)
        return bufs


class ContractReader:
    """The store contract's reading side over a benchmark's own files: a ``catalog``
    folder of Parquet parts and the Zarr arrays its rows name (no FeatureStore needed
    to make 10^5..10^6 documents)."""

    def __init__(self, root, features: list[str]):
        self.url, self.storage_options, self.features = str(root), None, list(features)
        self._arrays: dict = {}
        self._catalog: pd.DataFrame | None = None

    def catalog(self) -> pd.DataFrame:
        if self._catalog is None:
            self._catalog = pd.read_parquet(pathlib.Path(self.url) / "catalog")
        return self._catalog

    def array(self, path):
        if path not in self._arrays:
            self._arrays[path] = zarr.open_array(f"{self.url}/{path}", mode="r")
        return self._arrays[path]
