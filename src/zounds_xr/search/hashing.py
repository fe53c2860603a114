"""Window codes: how the frames of a window become one packed binary code.

Two hashers, chosen by the stored feature's dtype:

:class:`BitsHasher` (unsigned integer features, e.g. :func:`zounds_xr.fingerprint`)
    The code of a window is its frames' bits, back to back (8 frames of 32-bit
    fingerprints: 256 bits). Nothing is learned; a frame past a document's end is 0.
:class:`SimHasher` (real or complex features: spectrograms, mel bands, MFCCs...)
    A window is summarised, per band (at most ``MAX_BANDS``, pooled; log magnitudes for
    spectra), by the mean over the first and over the second half of its frames and the
    standard deviation over all of them; summaries are standardised with the corpus
    statistics and hashed by the sides of ``bits`` random hyperplanes they fall on
    (SimHash, Charikar 2002). The statistics are learned once, when the index is
    created, and kept with it.

Both hash a query's sub-windows with the very code that hashed the index's windows, so
an indexed window queried exactly is at distance 0.
"""
from __future__ import annotations

import numpy as np

from ..core.errors import ParameterError
from .codes import as_words, pack_bits, unpack_bits

__all__ = ["BitsHasher", "SimHasher", "hasher_for", "hyperplanes", "simhash_bits",
           "MAX_BANDS"]

#: bands a SimHasher's window summary keeps at most (wider features are pooled)
MAX_BANDS = 64


def hyperplanes(dims: int, bits: int, seed: int) -> np.ndarray:
    """Draw ``bits`` Gaussian hyperplane normals in ``dims`` dimensions.

    Parameters
    ----------
    dims, bits : int
        Dimensions of the vectors hashed, and hyperplanes (bits per code).
    seed : int
        Seed of the Gaussian draw.

    Returns
    -------
    numpy.ndarray [shape=(dims, bits), float64]
    """
    return np.random.default_rng(int(seed)).standard_normal((int(dims), int(bits)))


def simhash_bits(rows: np.ndarray, mean: np.ndarray, planes: np.ndarray) -> np.ndarray:
    """Return the side of each hyperplane (through ``mean``) of each row.

    Parameters
    ----------
    rows : numpy.ndarray [shape=(n, ...)]
        Vectors (flattened per row).
    mean : numpy.ndarray [shape=(dims,)]
        The point the hyperplanes pass through.
    planes : numpy.ndarray [shape=(dims, bits)]
        Their normals (:func:`hyperplanes`).

    Returns
    -------
    numpy.ndarray [shape=(n, bits), uint8]
        1 on the positive side.

    Raises
    ------
    ParameterError
        When the rows do not have ``dims`` values.
    """
    rows = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
    if rows.shape[1] != planes.shape[0]:
        raise ParameterError(f"SimHash was fitted on {planes.shape[0]} features, got "
                             f"{rows.shape[1]}")
    return ((rows - mean) @ planes > 0).astype(np.uint8)


def _gather(ends, starts: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the frame positions ``(k, window)`` of windows and which of them exist.

    Positions are clipped; a frame exists before ``ends`` (per window, or one int), the
    end of the window's document.
    """
    pos = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(window)
    ends = np.broadcast_to(np.asarray(ends, dtype=np.int64), (len(pos),))[:, None]
    return np.minimum(pos, np.maximum(ends - 1, 0)), pos < ends


class BitsHasher:
    """Codes of windows of a feature of unsigned integer codes (see the module docs).

    Parameters
    ----------
    frame_bits : int
        Bits of one frame of the feature (32 for :func:`zounds_xr.fingerprint`).
    """

    kind = "bits"

    def __init__(self, frame_bits: int):
        self.frame_bits = int(frame_bits)

    @classmethod
    def for_rows(cls, sample: np.ndarray) -> BitsHasher:
        """Make the hasher of a feature whose frames look like ``sample``."""
        per_frame = int(np.prod(sample.shape[1:], dtype=np.int64)) * sample.dtype.itemsize
        return cls(8 * per_frame)

    def window_frames(self, bits: int) -> int:
        """Frames per window for codes of about ``bits`` bits."""
        return max(1, -(-int(bits) // self.frame_bits))

    def codes(self, rows: np.ndarray, starts: np.ndarray, window: int, ends=None
              ) -> np.ndarray:
        """Hash the windows at ``starts`` of ``rows`` into ``(k, words)`` codes.

        Each window lies within its document's frames (before ``ends``; default: all
        the rows).
        """
        rows = np.asarray(rows)
        per_frame = rows.reshape(rows.shape[0], -1)
        pos, valid = _gather(rows.shape[0] if ends is None else ends, starts, window)
        frames = per_frame[pos] * valid[..., None].astype(per_frame.dtype)
        return as_words(frames.reshape(len(starts), -1))

    def encode(self, rows: np.ndarray, starts: np.ndarray, window: int, ends=None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(codes, summaries)`` of the windows at ``starts``.

        Summaries: per window, how often each bit of a frame is set (``frame_bits``
        float32; a document's mean is what the map places it by).
        """
        codes = self.codes(rows, starts, window, ends)
        bits = unpack_bits(codes, window * self.frame_bits).reshape(len(codes), window, -1)
        return codes, bits.mean(axis=1, dtype=np.float32)

    @staticmethod
    def informative(codes: np.ndarray) -> np.ndarray:
        """Say which windows are worth indexing: all but all-zero codes.

        All-zero codes are silence (see :func:`zounds_xr.fingerprint`), which would
        match every silence.
        """
        return np.asarray(codes.any(axis=1), dtype=bool)

    def params(self) -> dict:
        """Return the parameters that define the hasher (JSON)."""
        return {"kind": self.kind, "frame_bits": self.frame_bits}

    def arrays(self) -> dict:
        """Return what the hasher learned: nothing."""
        return {}


def _is_spectrum(dtype, dims) -> bool:
    return bool(np.iscomplexobj(np.empty(0, dtype)) or "frequency" in dims)


class SimHasher:
    """Codes of windows of a real or complex feature (see the module docs).

    Parameters
    ----------
    width : int
        Values per frame (all non-time axes flattened).
    log : bool
        Summarise ``log |x|`` (spectra).
    bits, seed : int
        Hyperplanes (bits per code) and their seed.
    center, scale : numpy.ndarray, optional
        The learned standardisation (:meth:`fit`).
    """

    kind = "simhash"

    def __init__(self, width: int, log: bool, bits: int = 256, seed: int = 0,
                 center=None, scale=None):
        self.width, self.log = int(width), bool(log)
        self.bits, self.seed = int(bits), int(seed)
        self.edges = np.linspace(0, self.width, min(self.width, MAX_BANDS) + 1) \
            .astype(np.intp)
        self.dims = 3 * (len(self.edges) - 1)
        self.planes = hyperplanes(self.dims, self.bits, self.seed)
        self.center = None if center is None else np.asarray(center, np.float64)
        self.scale = None if scale is None else np.asarray(scale, np.float64)

    @classmethod
    def for_rows(cls, sample: np.ndarray, dims, bits: int, seed: int) -> SimHasher:
        """Make the (unfitted) hasher of a feature whose frames look like ``sample``."""
        width = int(np.prod(sample.shape[1:], dtype=np.int64))
        return cls(width, _is_spectrum(sample.dtype, dims), bits, seed)

    def prepare(self, values: np.ndarray) -> np.ndarray:
        """Turn frames ``(n, ...)`` into ``(n, bands)`` float64 rows.

        Flattened, ``log |x|`` for spectra, contiguous bands averaged down to at most
        ``MAX_BANDS``.
        """
        rows = np.asarray(values).reshape(values.shape[0], -1)
        if np.iscomplexobj(rows):
            rows = np.abs(rows)
        rows = rows.astype(np.float64, copy=False)
        if self.log:
            rows = np.log(np.abs(rows) + 1e-6)
        if rows.shape[1] != len(self.edges) - 1:
            counts = np.diff(self.edges).astype(np.float64)
            rows = np.add.reduceat(rows, self.edges[:-1], axis=1) / counts
        return rows

    def window_summaries(self, rows: np.ndarray, starts: np.ndarray, window: int,
                         ends=None) -> np.ndarray:
        """``(k, dims)`` raw summaries of the windows at ``starts`` of prepared rows.

        Each window is summarised from its own frames only (no running sums over the
        document), so a query sub-window gets bit for bit the summary of the same
        indexed window.
        """
        out = np.empty((len(starts), self.dims))
        for lo in range(0, len(starts), 1024):
            e = rows.shape[0] if ends is None else np.asarray(ends)[lo:lo + 1024]
            pos, valid = _gather(e, starts[lo:lo + 1024], window)
            x = rows[pos] * valid[..., None]
            n = valid.sum(axis=1)
            half = np.maximum(n // 2, 1)
            j = np.arange(window)
            early = (j < half[:, None])[..., None]
            late = ((j >= (n - half)[:, None]) & valid)[..., None]
            h = half[:, None].astype(np.float64)
            mean = x.sum(axis=1) / n[:, None]
            dev = (x - mean[:, None, :]) * valid[..., None]
            out[lo:lo + 1024] = np.concatenate(
                [(x * early).sum(axis=1) / h, (x * late).sum(axis=1) / h,
                 np.sqrt((dev * dev).sum(axis=1) / n[:, None])], axis=1)
        return out

    def fit(self, summaries: np.ndarray) -> SimHasher:
        """Learn the standardisation from raw window summaries ``(k, dims)``."""
        self.center = summaries.mean(axis=0)
        scale = summaries.std(axis=0)
        scale[~(scale > 1e-12)] = 1.0
        self.scale = scale
        return self

    def standardised(self, summaries: np.ndarray) -> np.ndarray:
        """Standardise raw summaries with the learned centre and scale."""
        if self.center is None or self.scale is None:
            raise ParameterError("the SimHasher is not fitted")
        return (summaries - self.center) / self.scale

    def codes(self, rows: np.ndarray, starts: np.ndarray, window: int, ends=None
              ) -> np.ndarray:
        """Hash the windows at ``starts`` of ``rows`` into ``(k, words)`` codes.

        Each window lies within its document's frames (before ``ends``; default: all
        the rows).
        """
        return self.encode(rows, starts, window, ends)[0]

    def encode(self, rows: np.ndarray, starts: np.ndarray, window: int, ends=None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(codes, summaries)`` of the windows at ``starts``.

        Summaries: the standardised window summaries (float32; a document's mean is
        what the map places it by).
        """
        z = self.standardised(self.window_summaries(self.prepare(rows), starts, window,
                                                    ends))
        codes = pack_bits(simhash_bits(z, np.zeros(z.shape[1]), self.planes))
        return codes, z.astype(np.float32)

    @staticmethod
    def informative(codes: np.ndarray) -> np.ndarray:
        """Windows worth indexing: all of them."""
        return np.ones(len(codes), dtype=bool)

    def params(self) -> dict:
        """Return the parameters that define the hasher (JSON)."""
        return {"kind": self.kind, "width": self.width, "log": self.log, "bits": self.bits,
                "seed": self.seed}

    def arrays(self) -> dict:
        """Return what the hasher learned: the standardisation."""
        return {"center": self.center, "scale": self.scale}


def hasher_for(params: dict, arrays: dict | None = None) -> BitsHasher | SimHasher:
    """Make a hasher from its ``params()`` and ``arrays()``."""
    if params.get("kind") == BitsHasher.kind:
        return BitsHasher(params["frame_bits"])
    if params.get("kind") == SimHasher.kind:
        arrays = arrays or {}
        return SimHasher(params["width"], params["log"], params["bits"], params["seed"],
                         arrays.get("center"), arrays.get("scale"))
    raise ParameterError(f"unknown hasher {params.get('kind')!r}")
