"""Shared timing helpers for the benchmark scripts."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable


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
    return statistics.median(s / f for s, f in zip(times[slow], times[fast]))


def table(header: list[str], rows: list[list]) -> str:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
