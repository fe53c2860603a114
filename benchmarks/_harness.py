"""Shared timing helpers for the benchmark scripts."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

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
