"""One exception tree for zounds_xr.

Every error the library raises on purpose is a :class:`ZoundsError`. Subclasses
also derive from the builtin a caller would expect, so ``except ValueError`` and
``except FileNotFoundError`` keep working.
"""

__all__ = [
    "ZoundsError",
    "ParameterError",
    "SampleRateError",
    "AudioDecodeError",
    "AudioFileNotFoundError",
    "StoreError",
    "DocumentNotFoundError",
    "NotFittedError",
    "NotInvertibleError",
    "SelectionError",
    "NonFiniteSamplesWarning",
]


class ZoundsError(Exception):
    """Base class of every error raised by zounds_xr."""


class ParameterError(ZoundsError, ValueError):
    """A parameter or piece of metadata is invalid (names the parameter and value)."""


class SampleRateError(ZoundsError, TypeError):
    """A sample rate of the wrong kind was given (e.g. not an ``AudioSampleRate``)."""


class AudioDecodeError(ZoundsError):
    """Audio that cannot be decoded; the message names the source and libsndfile's reason."""


class AudioFileNotFoundError(AudioDecodeError, FileNotFoundError):
    """An audio source path that does not exist."""


class StoreError(ZoundsError):
    """A feature store that cannot be opened, read or written."""


class DocumentNotFoundError(StoreError, KeyError):
    """A document id that is not (completely) in the store."""

    def __str__(self):  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class SelectionError(ZoundsError, KeyError):
    """A label that selects nothing on its axis (e.g. a time past the end)."""

    def __str__(self):  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class NonFiniteSamplesWarning(RuntimeWarning):
    """Decoded audio holds NaN or infinity (kept: ``on_nonfinite="warn"``)."""


class NotFittedError(ZoundsError, RuntimeError):
    """A preprocessor that learns from data was used before ``fit``."""


class NotInvertibleError(ZoundsError, NotImplementedError):
    """``inverse_transform`` of a step that throws information away (e.g. ``Binarize``)."""
