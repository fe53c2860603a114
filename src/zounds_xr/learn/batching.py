"""Batches of training windows: stacking items into tensors, and buckets of similar length.

:func:`collate` stacks the items of :class:`~zounds_xr.learn.FeatureWindows` /
:class:`~zounds_xr.learn.RandomWindows` (padding items of different lengths);
:class:`BucketBatchSampler` batches whole documents of similar length.
"""
from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.optional import optional_import
from ..core.validation import positive_int
from ..core.errors import ParameterError

if TYPE_CHECKING:  # type checkers read torch; at run time it is imported with a hint
    import torch

    from .windows import FeatureWindows
else:
    torch = optional_import("torch")

__all__ = ["BucketBatchSampler", "batch_of", "collate"]


def collate(items: list[dict]) -> dict:
    """Stack items of :class:`FeatureWindows` / :class:`RandomWindows` into a batch dict.

    Parameters
    ----------
    items : list of dict
        Items as the datasets give them (``"x"``, ``"document"``, ``"start"``[,
        ``"label"``]).

    Returns
    -------
    dict
        ``"x"``: Tensor[batch, frames, *feature_shape] (items of different lengths are
        zero-padded at the end); ``"lengths"``: Tensor[batch] of int64, each item's frames;
        ``"document"``: list of str; ``"start"``: Tensor[batch] of float64 seconds;
        ``"label"`` (when the items have one): a Tensor when the labels are numbers, else
        a list.

    Raises
    ------
    ParameterError
        An empty list of items.
    """
    if not items:
        raise ParameterError("cannot collate an empty batch")
    return batch_of([item["x"] for item in items], [item["document"] for item in items],
                    [item["start"] for item in items],
                    [item["label"] for item in items] if "label" in items[0] else None)


def batch_of(xs: list, documents: list, starts, labels: list | None) -> dict:
    """Build the batch dict of :func:`collate` from its parts, stacked with one copy.

    Parameters
    ----------
    xs : list of numpy.ndarray or Tensor
        Each of shape (frames, *feature_shape).
    documents : list of str
    starts : array-like of float
        Seconds.
    labels : list, optional

    Returns
    -------
    dict
        As :func:`collate` returns.
    """
    lengths = [x.shape[0] for x in xs]
    out: dict[str, Any] = {}
    if isinstance(xs[0], np.ndarray):
        if len(set(lengths)) == 1:
            x = np.stack(xs)
        else:
            x = np.zeros((len(xs), max(lengths), *xs[0].shape[1:]), dtype=xs[0].dtype)
            for i, item in enumerate(xs):
                x[i, : item.shape[0]] = item
        out["x"] = torch.from_numpy(x)
    elif len(set(lengths)) == 1:
        out["x"] = torch.stack(xs)
    else:
        first = xs[0]
        out["x"] = first.new_zeros((len(xs), max(lengths), *first.shape[1:]))
        for i, item in enumerate(xs):
            out["x"][i, : item.shape[0]] = item
    out["lengths"] = torch.as_tensor(lengths, dtype=torch.int64)
    out["document"] = list(documents)
    out["start"] = torch.as_tensor(np.asarray(starts, dtype=np.float64))
    if labels is not None:
        numeric = all(isinstance(v, (numbers.Number, np.number)) and not isinstance(v, bool)
                      for v in labels)
        out["label"] = torch.as_tensor(labels) if numeric else list(labels)
    return out


class BucketBatchSampler(torch.utils.data.Sampler):
    """Batches of items of similar length, each at most ``max_frames`` padded frames.

    For whole-document items (``FeatureWindows(..., window=None)``): the items are
    sorted into ``num_buckets`` buckets by length (quantiles), shuffled within each
    bucket, cut into batches whose padded size ``len(batch) * longest`` stays within
    ``max_frames``, and the batches shuffled; seeded, and reshuffled by
    :meth:`set_epoch`. Use with ``DataLoader(dataset, batch_sampler=sampler,
    collate_fn=collate)``.

    Parameters
    ----------
    dataset : FeatureWindows
    max_frames : int
        Padded frames per batch (> 0); a longer item makes a batch of its own.
    num_buckets : int
    shuffle : bool
    seed : int
    drop_last : bool
        Drop each bucket's last, partly filled batch.
    """

    def __init__(self, dataset: FeatureWindows, max_frames: int, num_buckets: int = 10,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        self.max_frames = positive_int(max_frames, "max_frames")
        self.num_buckets = positive_int(num_buckets, "num_buckets")
        self.lengths = np.asarray(dataset.lengths(), dtype=np.int64)
        self.shuffle, self.seed, self.drop_last, self.epoch = bool(shuffle), int(seed), \
            bool(drop_last), 0

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for epoch ``epoch``."""
        self.epoch = int(epoch)

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = np.argsort(self.lengths, kind="stable")
        batches = []
        for bucket in np.array_split(order, min(self.num_buckets, max(1, len(order)))):
            if self.shuffle:
                bucket = rng.permutation(bucket)
            batch: list[int] = []
            longest = 0
            for i in bucket:
                n = int(self.lengths[i])
                if batch and max(longest, n) * (len(batch) + 1) > self.max_frames:
                    batches.append(batch)
                    batch, longest = [], 0
                batch.append(int(i))
                longest = max(longest, n)
            if batch and not (self.drop_last and longest * len(batch) < self.max_frames
                              and len(batches)):
                batches.append(batch)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self):
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())
