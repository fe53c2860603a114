"""Binary codes as packed uint64 words, and Hamming distances between them.

Bit ``j`` of a code is bit ``j % 64`` (least significant first) of word ``j // 64``.
Distances are popcounts of XORs (``np.bitwise_count``). :class:`WordMajor` keeps many
codes word by word so that one query is a few cache-sized passes: 10^6 codes of 256
bits in a few milliseconds on one core.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["pack_bits", "unpack_bits", "hamming_distance", "WordMajor", "as_words"]

#: rows per pass of :meth:`WordMajor.distances` (4 words x 32 KiB: stays in L2)
BLOCK = 1 << 15


def pack_bits(bits: ArrayLike) -> np.ndarray:
    """``(..., n_bits)`` 0/1 values -> ``(..., ceil(n_bits / 64))`` uint64 words.

    Parameters
    ----------
    bits : array_like [shape=(..., n_bits)]
        Truth values (non-zero is 1); ``n_bits >= 1``.

    Returns
    -------
    numpy.ndarray [shape=(..., ceil(n_bits / 64)), uint64]
        The codes, zero-padded to whole words.

    See Also
    --------
    unpack_bits : The inverse.
    hamming_distance : Distances between packed codes.

    Examples
    --------
    >>> pack_bits([1, 0, 1])
    array([5], dtype=uint64)
    """
    bits = np.asarray(bits).astype(bool)
    n_bits = bits.shape[-1]
    n_words = -(-n_bits // 64)
    padded = np.zeros((*bits.shape[:-1], n_words * 64), dtype=bool)
    padded[..., :n_bits] = bits
    packed = np.packbits(padded, axis=-1, bitorder="little")  # (..., n_words * 8) uint8
    return np.ascontiguousarray(packed).view("<u8").astype(np.uint64, copy=False)


def unpack_bits(words: ArrayLike, n_bits: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: uint64 words -> ``(..., n_bits)`` uint8 bits.

    Parameters
    ----------
    words : array_like [shape=(..., n_words), uint64]
        Packed codes.
    n_bits : int, 0 <= n_bits <= 64 * n_words
        Bits per code.

    Returns
    -------
    numpy.ndarray [shape=(..., n_bits), uint8]
        0/1 values.

    See Also
    --------
    pack_bits : The inverse.

    Examples
    --------
    >>> unpack_bits(pack_bits([1, 0, 1]), 3)
    array([1, 0, 1], dtype=uint8)
    """
    words = np.ascontiguousarray(np.asarray(words, dtype=np.uint64).astype("<u8"))
    as_bytes = words.view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, bitorder="little")[..., :n_bits]


def as_words(frames: np.ndarray) -> np.ndarray:
    """Turn rows of unsigned integers ``(n, ...)`` into ``(n, words)`` uint64 codes.

    The bytes of each row (little-endian), zero-padded to whole words.
    """
    rows = np.ascontiguousarray(np.asarray(frames).reshape(frames.shape[0], -1))
    raw = rows.astype(rows.dtype.newbyteorder("<"), copy=False).view(np.uint8)
    raw = raw.reshape(rows.shape[0], -1)
    pad = -raw.shape[1] % 8
    if pad:
        raw = np.concatenate([raw, np.zeros((raw.shape[0], pad), np.uint8)], axis=1)
    return np.ascontiguousarray(raw).view("<u8").astype(np.uint64, copy=False)


def hamming_distance(codes: ArrayLike, query: ArrayLike) -> np.ndarray:
    """Hamming distance between every row of ``codes`` and ``query`` (packed uint64).

    Parameters
    ----------
    codes : array_like [shape=(..., n_words), uint64]
        Packed codes (:func:`pack_bits`).
    query : array_like [shape=(n_words,), uint64]
        One packed code (broadcast against ``codes``).

    Returns
    -------
    numpy.ndarray [shape=(...), int64]
        The number of differing bits, per code.

    See Also
    --------
    WordMajor : The same over many codes, fast.

    Examples
    --------
    >>> hamming_distance(pack_bits([[1, 0, 1], [0, 1, 1]]), pack_bits([1, 1, 1]))
    array([1, 1])
    """
    codes = np.asarray(codes, dtype=np.uint64)
    query = np.asarray(query, dtype=np.uint64)
    return np.bitwise_count(np.bitwise_xor(codes, query)).sum(axis=-1, dtype=np.int64)


class WordMajor:
    """Codes ``(n, words)`` kept word by word, for fast exact distances to one query.

    Parameters
    ----------
    codes : numpy.ndarray [shape=(n, words), uint64]
        The codes (copied word by word).

    Raises
    ------
    ValueError
        For codes of more than 65535 bits (distances are uint16).
    """

    def __init__(self, codes: np.ndarray):
        codes = np.asarray(codes, dtype=np.uint64)
        self.n, self.n_words = codes.shape
        self.words = np.ascontiguousarray(codes.T)
        if self.n_words * 64 > np.iinfo(np.uint16).max:
            raise ValueError("codes of more than 65535 bits")

    def distances(self, query: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``(n,)`` uint16 Hamming distances from one packed ``query`` to every code.

        Block by block (``BLOCK`` rows), with every temporary reused: the XOR, popcount
        and sum of a block stay in cache.
        """
        query = np.asarray(query, dtype=np.uint64).reshape(-1)
        if out is None:
            out = np.empty(self.n, dtype=np.uint16)
        xor = np.empty(min(BLOCK, self.n), dtype=np.uint64)
        count = np.empty(xor.size, dtype=np.uint8)
        for lo in range(0, self.n, BLOCK):
            hi = min(lo + BLOCK, self.n)
            x, c, acc = xor[:hi - lo], count[:hi - lo], out[lo:hi]
            acc[...] = 0
            for word, q in zip(self.words, query, strict=True):
                np.bitwise_xor(word[lo:hi], q, out=x)
                np.bitwise_count(x, out=c)
                np.add(acc, c, out=acc)
        return out
