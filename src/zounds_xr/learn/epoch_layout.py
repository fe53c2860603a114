"""Which positions of an epoch's sequence each rank and DataLoader worker takes.

One seed gives one sequence of windows per epoch (positions ``0 .. total-1``); this
module deals it out, whatever the number of ranks and workers, so that the ranks'
batches interleaved by step *are* that sequence:

- the sequence from ``start`` (0, or where a resumed state left off) is cut into
  batches of ``unit`` positions (the batch size; 1 when items are yielded one by one);
- global batch ``g`` goes to rank ``g % world_size``, as its batch ``g // world_size``;
- the last round (fewer than ``world_size * unit`` positions left) is split into
  ``world_size`` contiguous pieces whose sizes differ by at most one, in rank order;
  with ``drop_uneven`` the ``remaining % world_size`` positions at the very end are
  left out first, so that every rank gets the same number (at most ``world_size - 1``
  windows lost, as ``DistributedSampler(drop_last=True)``);
- a rank's batch ``j`` goes to its DataLoader worker ``j % num_workers``: the
  DataLoader takes batches from its workers in turn, so it yields the rank's batches in
  order.

After every rank has taken ``steps`` batches, exactly the positions ``start ..
position_after(steps) - 1`` have been delivered: a prefix of the sequence. That is the
whole state a resume needs, with any number of ranks, workers or batch size.
"""
from __future__ import annotations

import numpy as np

__all__ = ["EpochLayout", "positions"]


class EpochLayout:
    """The deal of positions ``[start, total)`` to ``world_size`` ranks.

    Parameters
    ----------
    start, total : int
        The positions left to deal.
    world_size : int
    unit : int
        Positions per batch (>= 1).
    drop_uneven : bool
        Leave out the last ``(total - start) % world_size`` positions.
    """

    def __init__(self, start: int, total: int, world_size: int, unit: int,
                 drop_uneven: bool):
        self.start, self.world_size, self.unit = int(start), int(world_size), int(unit)
        remaining = max(int(total) - self.start, 0)
        if drop_uneven:
            remaining -= remaining % self.world_size
        self.stop = self.start + remaining
        self.rounds, self.rest = divmod(remaining, self.world_size * self.unit)

    def _last(self, rank: int) -> tuple[int, int]:
        """(offset, size) of rank ``rank``'s piece of the last, partial round."""
        q, m = divmod(self.rest, self.world_size)
        base = self.start + self.rounds * self.world_size * self.unit
        return base + rank * q + min(rank, m), q + (rank < m)

    def batches(self, rank: int) -> int:
        """Batches rank ``rank`` takes."""
        return self.rounds + (self._last(rank)[1] > 0)

    def length(self, rank: int) -> int:
        """Positions rank ``rank`` takes."""
        return self.rounds * self.unit + self._last(rank)[1]

    def batch_spans(self, rank: int, js: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first position, size) of the rank's batches ``js`` (int array)."""
        js = np.asarray(js, dtype=np.int64)
        offsets = self.start + (js * self.world_size + rank) * self.unit
        sizes = np.full(len(js), self.unit, dtype=np.int64)
        last = js == self.rounds
        if last.any():
            offsets[last], sizes[last] = self._last(rank)
        return offsets, sizes

    def position_after(self, steps: int) -> int:
        """Return the next position once every rank has taken ``steps`` batches."""
        if steps >= self.rounds + (self.rest > 0):
            return self.stop
        return self.start + int(steps) * self.world_size * self.unit


def positions(offsets: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Return the positions of the spans ``[offsets[i], offsets[i] + sizes[i])``."""
    total = int(sizes.sum())
    starts = np.repeat(offsets - (np.cumsum(sizes) - sizes), sizes)
    return starts + np.arange(total, dtype=np.int64)
