"""Pictures for the explorer, drawn with numpy alone.

Colour-mapped PNG images of (time, band) features and min/max envelopes of waveforms.

The page draws the axes (seconds, Hz, the dB colour bar) around the image from the
JSON that comes with it, so the server never needs matplotlib or a font.
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = [
    "MAGMA",
    "POOLS",
    "colormap",
    "encode_png",
    "envelope",
    "image_of",
    "pool_columns",
    "pool_rows",
    "to_db",
]

# matplotlib's "magma" (CC0) sampled at 33 points; interpolated to 256 below
_MAGMA_33 = (
    "0000040303120a0822130d341d114729115a36106b440f7651127c5d177f6a1c81762181832681902a"
    "819c2e7faa337db73779c43c75d0416fdc4869e75263ef5d5ef56b5cf9795dfc8961fd9869fea772fe"
    "b67cfec488fed395fde2a3fcf0b2fcfdbf")


def _lut(hex_points: str, n: int = 256) -> np.ndarray:
    points = np.frombuffer(bytes.fromhex(hex_points), dtype=np.uint8).reshape(-1, 3)
    x = np.linspace(0.0, 1.0, len(points))
    at = np.linspace(0.0, 1.0, n)
    return np.stack([np.interp(at, x, points[:, c].astype(float)) for c in range(3)],
                    axis=1).round().astype(np.uint8)


#: ``(256, 3)`` uint8 lookup table of the magma colour map
MAGMA = _lut(_MAGMA_33)


def colormap(values: np.ndarray, vmin: float, vmax: float, lut: np.ndarray = MAGMA
             ) -> np.ndarray:
    """Colour ``(h, w)`` floats as ``(h, w, 3)`` uint8; NaN draws as the lowest colour.

    Parameters
    ----------
    values : numpy.ndarray [shape=(h, w)]
        What to draw.
    vmin, vmax : float
        The values of the lowest and highest colours (clipped beyond them).
    lut : numpy.ndarray [shape=(n, 3), uint8], default MAGMA
        The colour map, lowest first.

    Returns
    -------
    numpy.ndarray [shape=(h, w, 3), uint8]
    """
    span = vmax - vmin if vmax > vmin else 1.0
    scaled = np.nan_to_num((values - vmin) / span, nan=0.0, posinf=1.0, neginf=0.0)
    idx = np.clip(scaled * (len(lut) - 1) + 0.5, 0, len(lut) - 1).astype(np.intp)
    return lut[idx]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def encode_png(rgb: np.ndarray, level: int = 1) -> bytes:
    """Encode a ``(h, w, 3)`` uint8 image as a PNG (8-bit RGB, no filtering).

    ``level`` is zlib's compression level: 1 is several times faster than the default
    and the images are small anyway.
    """
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape[:2]:
        raise ValueError(f"encode_png needs a non-empty (h, w, 3) image, got {rgb.shape}")
    h, w = rgb.shape[:2]
    raw = np.zeros((h, 1 + 3 * w), dtype=np.uint8)  # filter byte 0 on every row
    raw[:, 1:] = rgb.reshape(h, 3 * w)
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(raw.tobytes(), level)) + _chunk(b"IEND", b""))


def to_db(values: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Convert to dB: ``20/power * log10(|x|)``, magnitudes floored at 1e-10.

    Amplitude dB for ``power`` 1, power dB for ``power`` 2.
    """
    mag = np.abs(values).astype(np.float32, copy=False)
    return (20.0 / power) * np.log10(np.maximum(mag, np.float32(1e-10)))


#: how values that share a pixel are reduced
POOLS = ("max", "mean")


def _pool(values: np.ndarray, size: int, axis: int, pool: str) -> np.ndarray:
    """Reduce ``values`` along ``axis`` to ``size`` groups of consecutive entries.

    Each group gives its ``max`` or its ``mean``; groups differ in length by one at most.
    A group's entries are combined one offset at a time (``max(v[starts], v[starts +
    1], ...)``): whole rows at once, where ``ufunc.reduceat`` along the first axis of a
    wide array is several times slower.
    """
    n = values.shape[axis]
    if n <= size:
        return values
    v = np.moveaxis(values, axis, 0)
    starts = np.linspace(0, n, size + 1).astype(np.intp)
    lengths = np.diff(starts)
    starts = starts[:-1]
    out = v[starts].astype(np.float32 if pool == "mean" else v.dtype)
    for j in range(1, int(lengths.max())):
        live = lengths > j
        if live.all():
            rows = v[starts + j]
            if pool == "max":
                np.maximum(out, rows, out=out)
            else:
                out += rows
        else:
            rows = v[starts[live] + j]
            out[live] = np.maximum(out[live], rows) if pool == "max" else out[live] + rows
    if pool == "mean":
        out /= lengths.reshape((-1,) + (1,) * (out.ndim - 1)).astype(np.float32)
    return np.moveaxis(out, 0, axis)


def pool_columns(values: np.ndarray, width: int, pool: str = "max") -> np.ndarray:
    """Pool the columns (time) of ``(bands, frames)`` down to at most ``width``.

    Max (the default) keeps short events (clicks, onsets) visible when many frames
    share a pixel; ``"mean"`` shows the average level instead.
    """
    return _pool(values, width, 1, pool)


def pool_rows(values: np.ndarray, height: int, pool: str = "max") -> np.ndarray:
    """Pool the rows (bands) of ``(bands, frames)`` down to at most ``height``."""
    return _pool(values, height, 0, pool)


def image_of(frames: np.ndarray, *, db: bool, power: float = 1.0, top_db: float = 80.0,
             width: int = 1024, height: int = 256, pool: str = "max") -> tuple[bytes, dict]:
    """PNG of ``(time, bands)`` values: time left to right, the first band at the bottom.

    Values that share a pixel are reduced with ``pool`` (``"max"`` or ``"mean"``; of
    the magnitudes, before the conversion to dB, for a ``db`` picture).
    Returns the PNG bytes and ``{"vmin", "vmax", "units", "columns", "rows"}``: the
    value range the colours span (dB when ``db``; the top is the loudest value of the
    picture, the bottom ``top_db`` below it) and the image size.
    """
    values = np.asarray(frames)
    values = np.abs(values) if np.iscomplexobj(values) or db else \
        values.astype(np.float32, copy=False)
    # pooled first, along the contiguous axis, then converted: the max of magnitudes is
    # the magnitude of the max, and the log runs on the pixels instead of every frame
    values = values.reshape(values.shape[0], -1)  # (time, bands)
    values = _pool(_pool(values, width, 0, pool), height, 1, pool).T  # (bands, columns)
    if db:
        values = to_db(values, power)
    finite = values[np.isfinite(values)]
    vmax = float(finite.max()) if finite.size else 0.0
    if db:
        vmin = vmax - top_db
    else:
        vmin = float(finite.min()) if finite.size else 0.0
    rgb = colormap(values[::-1], vmin, vmax)  # the highest band at the top
    return encode_png(rgb), {"vmin": vmin, "vmax": vmax, "units": "dB" if db else "",
                             "columns": int(rgb.shape[1]), "rows": int(rgb.shape[0])}


def envelope(samples: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of ``samples`` (``(n,)``, channels averaged before) in ``width`` bins."""
    samples = np.asarray(samples, dtype=np.float32)
    n = samples.shape[0]
    if n == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    width = max(1, min(width, n))
    edges = np.linspace(0, n, width + 1).astype(np.intp)
    starts = edges[:-1]
    return (np.minimum.reduceat(samples, starts), np.maximum.reduceat(samples, starts))
