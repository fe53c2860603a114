"""``PhatDrumLoops``: the drum breaks listed on http://phatdrumloops.com/beats.php."""
from __future__ import annotations

import html.parser
import urllib.parse
from collections.abc import Iterator

from ..core.errors import ParameterError
from ..io.metadata import AudioMetaData
from .http import OnlineDataset

__all__ = ["PhatDrumLoops", "wav_links"]


class _LinkParser(html.parser.HTMLParser):
    """Collects ``<a href>`` targets (and the first ``<base href>``) of a page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        href = dict(attrs).get("href")
        if not href:
            return
        if tag == "a":
            self.hrefs.append(href.strip())
        elif tag == "base" and self.base is None:
            self.base = href.strip()

    handle_startendtag = handle_starttag


def wav_links(page: str, page_url: str) -> list[str]:
    """Absolute URLs of the ``.wav`` files an HTML page links to, in page order, once each.

    Relative links are resolved against the page's ``<base href>`` when it has one,
    else against ``page_url``; only http(s) links are kept.
    """
    parser = _LinkParser()
    parser.feed(page)
    parser.close()
    base = urllib.parse.urljoin(page_url, parser.base) if parser.base else page_url
    out, seen = [], set()
    for href in parser.hrefs:
        url = urllib.parse.urljoin(base, href)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.path.lower().endswith(".wav"):
            continue
        url = urllib.parse.urlunsplit(parts._replace(fragment=""))
        if url not in seen:
            seen.add(url)
            out.append(url)
    return out


class PhatDrumLoops(OnlineDataset):
    """Every drum break linked from http://phatdrumloops.com/beats.php, as AudioMetaData.

    Parameters
    ----------
    base_url : str
        The site's root URL; the page read is ``{base_url}/beats.php``.
    timeout, retries, backoff : float, int, float
        Of the HTTP client (:class:`~zounds_xr.datasets.http.HttpClient`): seconds
        per request, retries after a transient failure, seconds before the first retry.
    **attrs
        Extra properties given to every AudioMetaData.

    Yields
    ------
    AudioMetaData
        ``uri`` is the WAV file's absolute URL (fetched when decoded, not while
        iterating); the other properties are ``None`` unless set through ``attrs``.

    Raises
    ------
    DatasetError
        While iterating, when the page cannot be fetched.

    Examples
    --------
    >>> import zounds_xr as zx
    >>> pdl = zx.PhatDrumLoops()  # doctest: +SKIP
    >>> next(iter(pdl)).uri  # doctest: +SKIP
    'http://phatdrumloops.com/audio/wav/space_funk1.wav'
    """

    def __init__(self, base_url: str = "http://phatdrumloops.com", *, timeout: float = 30.0,
                 retries: int = 3, backoff: float = 1.0, **attrs):
        if "uri" in attrs:
            raise ParameterError("attrs cannot set 'uri': it is each break's URL")
        self.attrs = attrs
        self._configure_client(base_url, timeout=timeout, retries=retries, backoff=backoff)

    def __repr__(self) -> str:
        return f"PhatDrumLoops(base_url={self.base_url!r})"

    def __iter__(self) -> Iterator[AudioMetaData]:
        client = self._client()
        url = client.url("beats.php")
        response = client.get(url, accept="text/html, */*;q=0.5")
        for link in wav_links(response.text(), response.url):
            yield AudioMetaData(uri=link, **self.attrs)
