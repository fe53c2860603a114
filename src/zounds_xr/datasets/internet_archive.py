"""``InternetArchive``: the audio files of one https://archive.org item."""
from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator

from ..core.errors import ParameterError
from ..io.metadata import AudioMetaData
from .http import DatasetError, OnlineDataset

__all__ = ["AUDIO_FORMATS", "InternetArchive"]

# archive.org ``format`` names of audio that libsndfile decodes, in order of preference
# when one recording exists in several of them (lossless first, then Ogg before MP3).
AUDIO_FORMATS = (
    "Flac", "24bit Flac", "WAVE", "AIFF", "Ogg Vorbis", "Opus",
    "VBR MP3", "320Kbps MP3", "256Kbps MP3", "192Kbps MP3", "160Kbps MP3", "128Kbps MP3",
    "96Kbps MP3", "64Kbps MP3", "56Kbps MP3", "48Kbps MP3", "40Kbps MP3", "32Kbps MP3",
    "24Kbps MP3", "16Kbps MP3", "8Kbps MP3", "MP3",
)
_RANK = {name.casefold(): i for i, name in enumerate(AUDIO_FORMATS)}
# AudioMetaData parameters that a file record must not set through **kwargs
_RESERVED = frozenset({"uri", "samplerate", "channels", "licensing", "description", "tags"})


def _format_of(record: dict) -> str:
    value = record.get("format")
    return value if isinstance(value, str) else ""


def _default_selection(files: list[dict]) -> list[dict]:
    """One decodable rendition per recording.

    archive.org derives copies of every uploaded (``source: "original"``) audio file in
    other formats (``source: "derivative"``, ``original: <name>``). Keep each decodable
    original, and for an original that is not decodable (e.g. Apple Lossless) its
    preferred decodable derivative, so no recording is yielded twice.
    """
    audio = [f for f in files if _format_of(f).casefold() in _RANK]
    decodable_names = {f.get("name") for f in audio}

    by_name = {f.get("name"): f for f in files}

    def root(record: dict) -> str | None:
        name, hops = record.get("name"), 0
        while record.get("source") == "derivative" and record.get("original") and hops < 10:
            name = record["original"]
            record = by_name.get(name, {})
            hops += 1
        return name

    best: dict[str, dict] = {}
    for record in audio:
        key = root(record)
        if key is None:
            continue  # a record without a name cannot be fetched
        if key in decodable_names and record.get("name") != key:
            continue  # a derivative of a decodable original: the original is enough
        current = best.get(key)
        if current is None or (_RANK[_format_of(record).casefold()]
                               < _RANK[_format_of(current).casefold()]):
            best[key] = record
    chosen = {id(r) for r in best.values()}
    return [f for f in audio if id(f) in chosen]  # in the item's own order


def _make_filter(format_filter) -> Callable[[dict], bool] | None:
    if format_filter is None:
        return None
    if callable(format_filter):
        return format_filter
    if isinstance(format_filter, str):
        format_filter = (format_filter,)
    try:
        wanted = {str(f).casefold() for f in format_filter}
    except TypeError:
        raise ParameterError(
            "format_filter must be None, a format name, a list of names or a function of "
            f"a file record, got {format_filter!r}") from None
    if not wanted:
        raise ParameterError("format_filter is an empty list of formats")
    return lambda record: _format_of(record).casefold() in wanted


class InternetArchive(OnlineDataset):
    """The audio files of an https://archive.org item, as AudioMetaData.

    Parameters
    ----------
    archive_id : str
        The item's identifier (``archive.org/details/<archive_id>``).
    format_filter : None, str, list of str or callable
        Which files to yield. ``None`` (default): one decodable rendition of each
        recording: every original upload in one of :data:`AUDIO_FORMATS` (``"Flac"``,
        ``"WAVE"``, ``"Ogg Vorbis"``, ``"VBR MP3"`` ...), and, for an original in a
        format libsndfile cannot decode, its best derivative. A string or a list of
        strings: every file whose ``format`` is one of them (case-insensitive), e.g.
        ``"Ogg Vorbis"``. A callable: every file record (a dict) for which it returns
        true.
    base_url : str
        The archive's root URL.
    timeout, retries, backoff : float, int, float
        Of the HTTP client (:class:`~zounds_xr.datasets.http.HttpClient`): seconds
        per request, retries after a transient failure, seconds before the first retry.
    **attrs
        Extra properties given to every AudioMetaData (they override the file record's).

    Yields
    ------
    AudioMetaData
        ``uri`` is ``{base_url}/download/{archive_id}/{name}`` (URL-quoted); the audio is
        not fetched while iterating. The file record's fields (``name``, ``format``,
        ``size``, ``length``, ``title``, ``creator``, ``album``, ``track``, ``md5`` ...)
        become extras, plus ``archive_id``; ``licensing`` is the item's ``licenseurl``
        and ``tags`` its ``subject``; ``samplerate``/``channels`` are ``None`` (the
        archive does not report them).

    Raises
    ------
    ParameterError
        When ``archive_id`` is missing or ``format_filter`` is invalid.
    DatasetError
        While iterating: unknown, empty or dark item, HTTP error, malformed response.

    Examples
    --------
    >>> import zounds_xr as zx
    >>> ia = zx.InternetArchive("Greatest_Speeches_of_the_20th_Century")  # doctest: +SKIP
    >>> next(iter(ia)).title  # doctest: +SKIP
    'The Cuban Missile Crisis'
    """

    def __init__(self, archive_id: str, format_filter=None,
                 base_url: str = "https://archive.org", *, timeout: float = 30.0,
                 retries: int = 3, backoff: float = 1.0, **attrs):
        if not archive_id or not isinstance(archive_id, str):
            raise ParameterError("InternetArchive needs an archive_id (a non-empty string)")
        if "uri" in attrs:
            raise ParameterError("attrs cannot set 'uri': it is each file's download URL")
        self.archive_id = archive_id
        self.format_filter = format_filter
        self._filter = _make_filter(format_filter)
        self.attrs = attrs
        self._configure_client(base_url, timeout=timeout, retries=retries, backoff=backoff)

    def __repr__(self) -> str:
        return (f"InternetArchive({self.archive_id!r}, format_filter={self.format_filter!r}, "
                f"base_url={self.base_url!r})")

    def __iter__(self) -> Iterator[AudioMetaData]:
        client = self._client()
        quoted_id = urllib.parse.quote(self.archive_id, safe="")
        url = client.url(f"metadata/{quoted_id}")
        item = client.get_json(url)
        if not isinstance(item, dict) or not item:
            raise DatasetError(
                f"archive.org has no item {self.archive_id!r} (empty metadata from {url})",
                url=url)
        if item.get("is_dark"):
            raise DatasetError(f"archive.org item {self.archive_id!r} is dark (withdrawn)",
                               url=url)
        files = item.get("files")
        if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
            raise DatasetError(
                f"archive.org item {self.archive_id!r} has no 'files' list ({url})", url=url)
        if not files:
            raise DatasetError(f"archive.org item {self.archive_id!r} has no files ({url})",
                               url=url)
        found = item.get("metadata")
        meta: dict = found if isinstance(found, dict) else {}
        licensing = meta.get("licenseurl")
        tags = meta.get("subject")
        if isinstance(tags, str):
            tags = [t.strip() for t in tags.split(";") if t.strip()]
        selected = (_default_selection(files) if self._filter is None
                    else [f for f in files if f.get("name") and self._filter(f)])
        for record in selected:
            name = record.get("name")
            if not isinstance(name, str) or not name:
                continue
            uri = client.url(f"download/{quoted_id}/{urllib.parse.quote(name, safe='/')}")
            extras = {k: v for k, v in record.items() if k not in _RESERVED}
            fields = {"licensing": licensing, "description": record.get("description"),
                      "tags": list(tags) if tags else None, **extras,
                      "archive_id": self.archive_id, **self.attrs}
            yield AudioMetaData(uri=uri, **fields)
