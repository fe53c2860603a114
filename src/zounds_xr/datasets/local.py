"""Local datasets: audio files under a folder, and several datasets chained.

:class:`Directory` (audio files under a folder) and
:class:`CompositeDataset` (several datasets chained).
"""
from __future__ import annotations

import itertools
import os
import pathlib
from collections.abc import Iterable, Iterator

import soundfile

from ..core.errors import ParameterError
from ..io.metadata import AudioMetaData

__all__ = ["AUDIO_EXTENSIONS", "CompositeDataset", "Directory", "audio_extensions"]

# File extensions (lower case, no dot) of each libsndfile major format. Formats
# libsndfile lists but that we leave out on purpose: RAW (header-less: nothing to read
# the rate from), MAT4/MAT5 (``.mat`` files are nearly always Matlab data, not audio)
# and MPC2K (its ``.mpc`` extension is far more often Musepack, which libsndfile cannot
# decode).
_FORMAT_EXTENSIONS = {
    "WAV": ("wav", "wave"),
    "WAVEX": ("wav", "wave"),
    "RF64": ("rf64",),
    "W64": ("w64",),
    "AIFF": ("aif", "aiff", "aifc"),
    "AU": ("au", "snd"),
    "CAF": ("caf",),
    "FLAC": ("flac",),
    "OGG": ("ogg", "oga", "opus"),  # Vorbis and Opus streams in an Ogg container
    "MP3": ("mp3",),
    "SD2": ("sd2",),
    "VOC": ("voc",),
    "AVR": ("avr",),
    "HTK": ("htk",),
    "SVX": ("iff", "svx", "8svx"),
    "PAF": ("paf",),
    "PVF": ("pvf",),
    "SDS": ("sds",),
    "IRCAM": ("sf", "ircam"),
    "NIST": ("nist", "sph"),
    "WVE": ("wve",),
    "XI": ("xi",),
}
_EXCLUDED_FORMATS = frozenset({"RAW", "MAT4", "MAT5", "MPC2K"})


def audio_extensions() -> frozenset[str]:
    """Extensions (lower case, without the dot) of the formats this libsndfile reads.

    Built from :func:`soundfile.available_formats` and the usual aliases of each
    format: ``wav wave rf64 w64 aif aiff aifc au snd caf flac ogg oga opus mp3 sd2 voc
    avr htk iff svx 8svx paf pvf sds sf ircam nist sph wve xi``, each present only when
    the installed libsndfile knows its format (MP3 needs libsndfile >= 1.1, for example).
    A format this table does not know is matched by its own name (``"FOO"`` ->
    ``.foo``). Header-less RAW, Matlab MAT4/MAT5 and Akai MPC2K (``.mpc``) are left out.

    Returns
    -------
    frozenset of str
        The extensions, e.g. ``{"wav", "flac", "ogg", ...}``.
    """
    out: set[str] = set()
    for name in soundfile.available_formats():
        if name in _EXCLUDED_FORMATS:
            continue
        out.update(_FORMAT_EXTENSIONS.get(name, (name.lower(),)))
    return frozenset(out)


AUDIO_EXTENSIONS = audio_extensions()


def _header(path: pathlib.Path) -> tuple[int | None, int | None]:
    """(samplerate, channels) from the file's header, or (None, None) when unreadable."""
    try:
        info = soundfile.info(os.fspath(path))
    except Exception:  # corrupt/unsupported files are reported later, when processed
        return None, None
    return int(info.samplerate), int(info.channels)


class Directory:
    """Every audio file under a folder, as :class:`~zounds_xr.AudioMetaData`.

    Parameters
    ----------
    path : str or os.PathLike
        The folder to search.
    pattern : str
        A :meth:`pathlib.Path.glob` pattern relative to ``path``; the default
        ``"**/*"`` recurses into every sub-folder. Of the files it matches, only those
        whose extension (case-insensitively) is in :data:`AUDIO_EXTENSIONS` are kept.

    Yields
    ------
    AudioMetaData
        ``uri`` is the file's absolute path as a string; ``samplerate`` and
        ``channels`` come from the header (:func:`soundfile.info`), or are ``None``
        when the header cannot be read. A corrupt file never stops the iteration:
        decoding it later records the failure.

    Raises
    ------
    ParameterError
        When ``path`` is not an existing folder or ``pattern`` is not a relative glob.

    Notes
    -----
    Files are listed anew, sorted by their path relative to ``path``, at every
    iteration, so the order is deterministic and files added meanwhile are found.
    ``len()`` counts the matching files without reading them.

    Examples
    --------
    >>> import zounds_xr as zx
    >>> ds = zx.Directory("corpus")  # doctest: +SKIP
    >>> [m.uri for m in ds]  # doctest: +SKIP
    ['/data/corpus/a.wav', '/data/corpus/drums/b.flac']
    """

    def __init__(self, path, pattern: str = "**/*"):
        try:
            root = pathlib.Path(path).expanduser()
        except TypeError:
            raise ParameterError(f"path must be a folder path, got {path!r}") from None
        if not root.is_dir():
            raise ParameterError(f"Directory: {os.fspath(path)!r} is not an existing folder")
        if not isinstance(pattern, str) or not pattern or pathlib.PurePath(pattern).is_absolute():
            raise ParameterError(f"pattern must be a non-empty relative glob, got {pattern!r}")
        self.path = root.absolute()
        self.pattern = pattern

    def paths(self) -> list[pathlib.Path]:
        """Return the matching audio files, sorted by their path relative to ``path``."""
        if not self.path.is_dir():
            raise ParameterError(f"Directory: {os.fspath(self.path)!r} is no longer a folder")
        try:
            found = [p for p in self.path.glob(self.pattern)
                     if p.suffix[1:].lower() in AUDIO_EXTENSIONS and p.is_file()]
        except (ValueError, NotImplementedError) as err:
            raise ParameterError(f"invalid glob pattern {self.pattern!r}: {err}") from None
        return sorted(found, key=lambda p: p.relative_to(self.path).as_posix())

    def __iter__(self) -> Iterator[AudioMetaData]:
        for p in self.paths():
            samplerate, channels = _header(p)
            yield AudioMetaData(uri=os.fspath(p), samplerate=samplerate, channels=channels)

    def __len__(self) -> int:
        return len(self.paths())

    def __repr__(self) -> str:
        return f"Directory({os.fspath(self.path)!r}, pattern={self.pattern!r})"


class CompositeDataset:
    """Several datasets chained into one, in the order given.

    Parameters
    ----------
    *datasets : iterables of AudioMetaData
        One or more datasets (:class:`Directory`, :class:`FreeSoundSearch`, ... or
        any re-iterable of :class:`~zounds_xr.AudioMetaData`).

    Raises
    ------
    ParameterError
        When no dataset is given, or one is not iterable.

    Examples
    --------
    >>> import zounds_xr as zx
    >>> both = zx.CompositeDataset(zx.InternetArchive("beethoven_ingigong_850"),
    ...                            zx.Directory("corpus"))  # doctest: +SKIP
    """

    def __init__(self, *datasets: Iterable[AudioMetaData]):
        if not datasets:
            raise ParameterError("CompositeDataset needs at least one dataset")
        for i, ds in enumerate(datasets):
            if isinstance(ds, (str, bytes, os.PathLike)) or not isinstance(ds, Iterable):
                raise ParameterError(
                    f"CompositeDataset: dataset {i} must be an iterable of AudioMetaData, "
                    f"got {type(ds).__name__}")
            if iter(ds) is ds:
                raise ParameterError(
                    f"CompositeDataset: dataset {i} is a one-shot iterator; give a "
                    f"re-iterable dataset (or a list)")
        self.datasets = tuple(datasets)

    def __iter__(self) -> Iterator[AudioMetaData]:
        return itertools.chain.from_iterable(self.datasets)

    def __len__(self) -> int:
        """Return the total length; a ``TypeError`` when a member dataset has no length."""
        return sum(len(ds) for ds in self.datasets)  # type: ignore[arg-type, misc]

    def __repr__(self) -> str:
        return f"CompositeDataset({', '.join(map(repr, self.datasets))})"
