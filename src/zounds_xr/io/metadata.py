"""``AudioMetaData`` and ``ChunkSizeBytes``."""
from __future__ import annotations

import math
import os
from fractions import Fraction

from ..core.validation import positive_int
from ..core.errors import ParameterError
from ..timeseries.durations import to_fraction
from ..timeseries.samplerate import SampleRate, audio_sample_rate

__all__ = ["AudioMetaData", "ChunkSizeBytes"]


class AudioMetaData:
    """What is known about a piece of source audio before (or after) decoding it.

    Parameters
    ----------
    uri : str, os.PathLike, bytes or file-like
        Where the audio comes from: a path, a URL, raw encoded bytes or a file object.
    samplerate : int, optional
        The source's sample rate in Hz.
    channels : int, optional
        The source's channel count.
    licensing, description : str, optional
    tags : list of str, optional
    **kwargs
        Any other properties (``artist``, ``title``...), kept as attributes.

    Raises
    ------
    ParameterError
        When ``uri`` is missing.
    """

    def __init__(self, uri=None, samplerate=None, channels=None, licensing=None,
                 description=None, tags=None, **kwargs):
        if uri is None:
            raise ParameterError("AudioMetaData needs a uri (a path, URL, bytes or file-like)")
        self.uri = uri
        self.samplerate = samplerate
        self.channels = channels
        self.licensing = licensing
        self.description = description
        self.tags = tags
        self.extra = dict(kwargs)
        for key, value in kwargs.items():
            setattr(self, key, value)

    def update(self, **kwargs) -> None:
        """Record more properties (e.g. what decoding found: ``frames``, ``duration_seconds``)."""
        reserved = {"uri", "samplerate", "channels", "licensing", "description", "tags"}
        for key, value in kwargs.items():
            if key in reserved:
                setattr(self, key, value)
            else:
                self.extra[key] = value
                setattr(self, key, value)

    @property
    def uri_string(self) -> str | None:
        """The uri as text when it names a location (path or URL), else ``None``."""
        if isinstance(self.uri, (str, os.PathLike)):
            return os.fspath(self.uri)
        return getattr(self.uri, "url", None)

    def to_dict(self) -> dict:
        """JSON-safe properties (an in-memory uri is left out)."""
        out = {"uri": self.uri_string, "samplerate": self.samplerate,
               "channels": self.channels, "licensing": self.licensing,
               "description": self.description, "tags": self.tags}
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> AudioMetaData:
        """Rebuild from :meth:`to_dict` output."""
        d = dict(d)
        if d.get("uri") is None:
            d["uri"] = "<memory>"
        return cls(**d)

    def __eq__(self, other) -> bool:
        return isinstance(other, AudioMetaData) and self.to_dict() == other.to_dict() and (
            self.uri_string is not None or self.uri is other.uri)

    def __hash__(self):
        return hash(self.uri_string) if self.uri_string else id(self)

    def __repr__(self) -> str:
        uri = self.uri_string or f"<{type(self.uri).__name__}>"
        return (f"AudioMetaData(uri={uri!r}, samplerate={self.samplerate!r}, "
                f"channels={self.channels!r})")


class ChunkSizeBytes:
    """A chunk size in bytes for ``duration`` of PCM audio (exact at any duration).

    Parameters
    ----------
    samplerate : SampleRate or int
        The rate of the audio.
    duration : np.timedelta64
        How much audio a chunk holds.
    channels : int
        Channels of the audio.
    bit_depth : int
        Bits per sample (16 for CD audio).

    Raises
    ------
    ParameterError
        When ``duration`` is not positive, or a count or bit depth is out of range.

    Examples
    --------
    >>> import zounds_xr as zx
    >>> int(zx.ChunkSizeBytes(zx.SR44100(), zx.Seconds(30)))
    5292000
    """

    def __init__(self, samplerate, duration, channels: int = 2, bit_depth: int = 16):
        rate = samplerate if isinstance(samplerate, SampleRate) else audio_sample_rate(samplerate)
        self.samplerate = rate
        self.duration = duration
        self._seconds = to_fraction(duration, name="duration")
        if self._seconds <= 0:
            raise ParameterError(f"duration must be positive, got {duration!r}")
        self.channels = positive_int(channels, "channels")
        self.bit_depth = positive_int(bit_depth, "bit_depth")

    @property
    def frames(self) -> int:
        """Whole sample frames in one chunk."""
        return math.floor(self._seconds / self.samplerate.exact_frequency)

    def __int__(self) -> int:
        return math.floor(self._seconds / self.samplerate.exact_frequency
                          * self.channels * Fraction(self.bit_depth, 8))

    __index__ = __int__

    def __repr__(self) -> str:
        return (f"ChunkSizeBytes(samplerate={self.samplerate!r}, duration={self.duration!r}, "
                f"channels={self.channels}, bit_depth={self.bit_depth})")
