"""Datasets: iterables of :class:`~zounds_xr.AudioMetaData` to feed ``ingest``.

Local
    :class:`Directory` (audio files under a folder), :class:`CompositeDataset`.
Online (lazy: listing requests happen while iterating; audio is fetched when decoded)
    :class:`FreeSoundSearch` (freesound.org API v2), :class:`InternetArchive`
    (archive.org items), :class:`PhatDrumLoops` (phatdrumloops.com breaks).

Online failures raise :class:`DatasetError`.
"""
from .freesound import FreeSoundSearch
from .http import DatasetError, HttpClient
from .internet_archive import InternetArchive
from .local import AUDIO_EXTENSIONS, CompositeDataset, Directory, audio_extensions
from .phatdrumloops import PhatDrumLoops

__all__ = [
    "AUDIO_EXTENSIONS",
    "CompositeDataset",
    "DatasetError",
    "Directory",
    "FreeSoundSearch",
    "HttpClient",
    "InternetArchive",
    "PhatDrumLoops",
    "audio_extensions",
]
