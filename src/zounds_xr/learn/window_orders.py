"""The sequence of windows of an epoch: position ``p`` -> window number, per seed.

- :class:`UniformOrder` (the default): a keyed pseudo-random permutation of all windows
  (:class:`~zounds_xr.learn.permutation.KeyedPermutation`), computed per position in
  O(1), nothing stored.
- :class:`WeightedOrder`: weighted sampling without replacement (Efraimidis & Spirakis
  2006): window ``i`` of a document of weight ``w`` gets the key ``-log(u_i) / w``, with
  ``u_i`` uniform and computed from the seed and ``i`` alone, and the epoch takes the
  ``num_samples`` smallest keys in order. It holds the epoch's order (4 bytes per window
  taken, 8 while it is sorted).
- :class:`BlockOrder` (``shuffle="block"``): runs of windows contiguous in storage are
  shuffled as blocks, then the windows of a few consecutive blocks (a buffer) among
  themselves: cheap reads, weaker randomness.

Each is a function of ``(seed, epoch)`` only: never of the ranks or workers.
"""
from __future__ import annotations

import numpy as np

from .permutation import KeyedPermutation, uniform
from .window_plan import WindowPlan

__all__ = ["BlockOrder", "UniformOrder", "WeightedOrder"]


class UniformOrder:
    """A uniform pseudo-random permutation of all ``plan.total`` windows.

    Its first ``num_samples`` when given.
    """

    def __init__(self, plan: WindowPlan, seed: int, epoch: int, num_samples: int | None = None):
        self.permutation = KeyedPermutation(plan.total, (seed, epoch))
        self.total = plan.total if num_samples is None else min(plan.total, num_samples)

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        """Return the windows at ``positions`` of the epoch's sequence."""
        return self.permutation(positions)


class WeightedOrder:
    """The first ``num_samples`` windows of a weighted random order.

    Without replacement; windows of weight 0 never come.
    """

    def __init__(self, plan: WindowPlan, seed: int, epoch: int, num_samples: int | None):
        assert plan.weights is not None
        counts = plan.counts()
        weight = np.repeat(plan.weights, counts)
        u = uniform((seed, epoch, 3), np.arange(plan.total))
        with np.errstate(divide="ignore"):
            keys = -np.log(u) / weight  # weight 0: +inf, last and cut below
        positive = int(np.count_nonzero(weight > 0))
        del weight, u
        self.total = positive if num_samples is None else min(int(num_samples), positive)
        if self.total < plan.total:
            top = np.argpartition(keys, self.total - 1)[:self.total]
            order = top[np.argsort(keys[top], kind="stable")]
        else:
            order = np.argsort(keys, kind="stable")
        del keys
        self.order = order.astype(np.int32 if plan.total < 2**31 else np.int64)

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        """Return the windows at ``positions`` of the epoch's sequence."""
        return self.order[np.asarray(positions, dtype=np.int64)].astype(np.int64)


class BlockOrder:
    """Shuffled blocks of windows contiguous in storage, then shuffled buffers.

    Blocks of about ``block_windows`` windows; buffers of ``buffer_size`` windows or more
    (whole blocks).
    """

    def __init__(self, plan: WindowPlan, seed: int, epoch: int, block_windows: int,
                 buffer_size: int):
        self.total, self.plan, self.key = plan.total, plan, (seed, epoch)
        # documents in storage order (array, offset); windows numbered in that order
        self.docs = np.lexsort((plan.offsets, plan.array_codes))
        counts = plan.counts()[self.docs]
        self.cumulative = np.concatenate([[0], np.cumsum(counts)])
        self.block = max(1, int(block_windows))
        n_blocks = -(-self.total // self.block)
        blocks = KeyedPermutation(n_blocks, (seed, epoch, 1))(np.arange(n_blocks))
        sizes = np.full(n_blocks, self.block, dtype=np.int64)
        sizes[blocks == n_blocks - 1] = self.total - (n_blocks - 1) * self.block
        per_buffer = max(1, -(-int(buffer_size) // self.block))
        self.blocks, self.block_sizes = blocks, sizes
        self.buffer_blocks = per_buffer
        ends = np.cumsum(sizes)
        self.block_ends = ends
        self.buffer_ends = ends[np.minimum(np.arange(per_buffer - 1, n_blocks + per_buffer - 1,
                                                     per_buffer), n_blocks - 1)]

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        """Return the windows at ``positions`` of the epoch's sequence."""
        positions = np.asarray(positions, dtype=np.int64)
        buffer = np.searchsorted(self.buffer_ends, positions, side="right")
        begin = np.where(buffer > 0, self.buffer_ends[np.maximum(buffer - 1, 0)], 0)
        local = np.empty_like(positions)
        for b in np.unique(buffer):  # a handful per read-ahead
            rows = buffer == b
            size = int(self.buffer_ends[b] - (self.buffer_ends[b - 1] if b else 0))
            local[rows] = KeyedPermutation(size, (*self.key, 2, int(b)))(
                positions[rows] - begin[rows])
        shuffled = begin + local  # a position of the block sequence, within its buffer
        block = np.searchsorted(self.block_ends, shuffled, side="right")
        within = shuffled - (self.block_ends[block] - self.block_sizes[block])
        stored = self.blocks[block] * self.block + within  # window in storage order
        doc = np.searchsorted(self.cumulative, stored, side="right") - 1
        return self.plan.cumulative[self.docs[doc]] + (stored - self.cumulative[doc])
