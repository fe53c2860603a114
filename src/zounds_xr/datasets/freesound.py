"""``FreeSoundSearch``: the results of a text search on https://freesound.org (API v2)."""
from __future__ import annotations

from collections.abc import Iterator

from ..core.errors import ParameterError
from ..io.metadata import AudioMetaData
from .http import DatasetError, OnlineDataset, redact_url

__all__ = ["FreeSoundSearch"]

FIELDS = ("id", "name", "previews", "license", "description", "tags", "samplerate",
          "channels", "username")
PREVIEWS = ("preview-hq-ogg", "preview-hq-mp3", "preview-lq-ogg", "preview-lq-mp3")
MAX_PAGE_SIZE = 150  # Freesound's upper bound for page_size


class FreeSoundSearch(OnlineDataset):
    """Every result of a https://freesound.org text search, as AudioMetaData.

    Parameters
    ----------
    api_key : str
        Your Freesound API key (https://freesound.org/apiv2/apply/). It is sent in an
        ``Authorization: Token ...`` header, only to ``base_url``'s host, never in a URL.
    query : str
        The text query.
    n_results : int
        How many results to yield at most (fewer when the search finds fewer).
    delay : float
        Minimum seconds between two requests (Freesound allows 60 a minute).
    base_url : str
        The API root.
    preview : str
        Which preview to point ``uri`` at: ``"preview-hq-ogg"`` (default),
        ``"preview-hq-mp3"``, ``"preview-lq-ogg"`` or ``"preview-lq-mp3"``; when a result
        lacks it, the first available of these, in that order.
    page_size : int, optional
        Results per request; by default ``min(n_results, 150)``.
    timeout, retries, backoff
        Passed to :class:`~zounds_xr.datasets.http.HttpClient`.

    Yields
    ------
    AudioMetaData
        ``uri`` is the preview's URL (the audio is fetched when it is decoded, not
        while iterating); ``samplerate`` and ``channels`` are those Freesound reports
        for the uploaded original (the preview itself may differ); ``licensing`` is the
        license URL; ``description`` and ``tags`` as on Freesound; extras
        ``freesound_id``, ``name`` and ``username``.

    Raises
    ------
    ParameterError
        (a ``ValueError``) when ``api_key`` or ``query`` is missing, or a parameter is
        invalid.
    DatasetError
        While iterating: when Freesound refuses the key (HTTP 401), on another HTTP
        error, or when a response is not the expected JSON.

    Notes
    -----
    Requests happen while iterating, one page at a time, following the ``next`` links;
    each iteration searches again.

    Examples
    --------
    >>> import zounds_xr as zx
    >>> fss = zx.FreeSoundSearch("YOUR_API_KEY", "guitar", n_results=20)  # doctest: +SKIP
    >>> next(iter(fss))  # doctest: +SKIP
    AudioMetaData(uri='https://cdn.freesound.org/previews/...-hq.ogg', samplerate=44100, channels=2)
    """

    def __init__(self, api_key: str, query: str, n_results: int = 10, delay: float = 0.2,
                 base_url: str = "https://freesound.org/apiv2", *,
                 preview: str = "preview-hq-ogg", page_size: int | None = None,
                 timeout: float = 30.0, retries: int = 3, backoff: float = 1.0):
        if not api_key or not isinstance(api_key, str):
            raise ParameterError("FreeSoundSearch needs an api_key (a non-empty string)")
        if not query or not isinstance(query, str):
            raise ParameterError("FreeSoundSearch needs a query (a non-empty string)")
        if not isinstance(n_results, int) or isinstance(n_results, bool) or n_results <= 0:
            raise ParameterError(f"n_results must be a positive integer, got {n_results!r}")
        if preview not in PREVIEWS:
            raise ParameterError(f"preview must be one of {PREVIEWS}, got {preview!r}")
        if page_size is None:
            page_size = min(n_results, MAX_PAGE_SIZE)
        if (not isinstance(page_size, int) or isinstance(page_size, bool)
                or not 0 < page_size <= MAX_PAGE_SIZE):
            raise ParameterError(
                f"page_size must be an integer in [1, {MAX_PAGE_SIZE}], got {page_size!r}")
        self.query = query
        self.n_results = n_results
        self.delay = delay
        self.preview = preview
        self.page_size = page_size
        self._configure_client(base_url, delay=delay, timeout=timeout, retries=retries,
                               backoff=backoff,
                               auth_headers={"Authorization": f"Token {api_key}"})

    def __repr__(self) -> str:
        return (f"FreeSoundSearch(query={self.query!r}, n_results={self.n_results}, "
                f"base_url={self.base_url!r})")

    def _metadata(self, result: dict, url: str) -> AudioMetaData:
        if not isinstance(result, dict):
            raise DatasetError(f"Freesound result is not an object in {url}: {result!r:.80}",
                               url=url)
        previews = result.get("previews") or {}
        order = (self.preview, *(p for p in PREVIEWS if p != self.preview))
        uri = next((previews[p] for p in order if isinstance(previews.get(p), str)), None)
        if uri is None:
            raise DatasetError(
                f"Freesound sound {result.get('id')!r} in {url} has no preview URL "
                f"(previews={previews!r:.120})", url=url)
        samplerate = result.get("samplerate")
        if isinstance(samplerate, float) and samplerate.is_integer():
            samplerate = int(samplerate)
        tags = result.get("tags")
        return AudioMetaData(
            uri=uri, samplerate=samplerate, channels=result.get("channels"),
            licensing=result.get("license"), description=result.get("description"),
            tags=list(tags) if tags is not None else None,
            freesound_id=result.get("id"), name=result.get("name"),
            username=result.get("username"))

    def __iter__(self) -> Iterator[AudioMetaData]:
        client = self._client()
        params = {"query": self.query, "fields": ",".join(FIELDS),
                  "page_size": self.page_size}
        first = client.url("search/text/", params)
        url: str | None = first
        shown = redact_url(first)
        remaining = self.n_results
        seen: set[object] = set()
        visited: set[str | None] = {url}
        while url and remaining > 0:
            try:
                page = client.get_json(url)
            except DatasetError as err:
                if err.status == 401:
                    raise DatasetError(
                        f"Freesound refused the API key (HTTP 401) for {err.url}; check "
                        f"the key at https://freesound.org/apiv2/apply/ ({err})",
                        url=err.url, status=401) from None
                raise
            results = page.get("results") if isinstance(page, dict) else None
            if not isinstance(results, list):
                raise DatasetError(
                    f"Freesound response from {shown} has no 'results' list: {page!r:.120}",
                    url=shown)
            fresh = 0
            for result in results:
                meta = self._metadata(result, shown)
                sound_id = getattr(meta, "freesound_id", None)
                if sound_id is not None and sound_id in seen:
                    continue  # results shift between pages while the index changes
                seen.add(sound_id)
                fresh += 1
                yield meta
                remaining -= 1
                if remaining == 0:
                    return
            next_url = page.get("next")
            if next_url is not None and not isinstance(next_url, str):
                raise DatasetError(f"Freesound 'next' link is not a URL: {next_url!r}",
                                   url=shown)
            if not fresh or next_url in visited:
                return  # an empty/repeated page that still links on: stop, don't loop
            visited.add(next_url)
            url, shown = next_url, redact_url(next_url) if next_url else shown
