"""A small HTTP client shared by the online datasets (standard library only).

:class:`HttpClient` GETs JSON or text relative to a configurable base URL, with a
timeout per request, bounded retries with exponential backoff on HTTP 429, 5xx and
connection errors (honouring ``Retry-After``), and rate limiting through a minimum
delay between the starts of successive requests. Every failure is a
:class:`DatasetError` whose message names the URL (with credentials redacted) and the
HTTP status.
"""
from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import Message

from .._version import __version__
from ..core.errors import ParameterError, ZoundsError

__all__ = ["DatasetError", "HttpClient", "OnlineDataset", "Response", "redact_url"]

USER_AGENT = f"zounds_xr/{__version__} (+https://github.com/JohnVinyard/zounds; python urllib)"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_SECRET_PARAMS = frozenset({"token", "api_key", "apikey", "key", "access_token", "password"})


class DatasetError(ZoundsError):
    """A dataset's source could not be listed (HTTP error, bad response, unknown item).

    Attributes
    ----------
    url : str or None
        The URL requested, with credentials redacted.
    status : int or None
        The HTTP status of the last response, when there was one.
    """

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None):
        super().__init__(message)
        self.url = url
        self.status = status


def redact_url(url: str) -> str:
    """``url`` with the values of credential-like query parameters replaced by ``***``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    if not parts.query:
        return url
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if not any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
        return url
    query = urllib.parse.urlencode(
        [(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*")
    return urllib.parse.urlunsplit(parts._replace(query=query))


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _check_http_url(url: str, name: str) -> str:
    if not isinstance(url, str) or not url:
        raise ParameterError(f"{name} must be an http(s) URL string, got {url!r}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ParameterError(f"{name} must be an http(s) URL, got {url!r}")
    return url


@dataclass(frozen=True)
class Response:
    """A successful response: the final URL, its status, headers and body bytes."""

    url: str
    status: int
    headers: Message = field(repr=False)
    body: bytes = field(repr=False)

    def text(self) -> str:
        """Return the body decoded with the charset of ``Content-Type`` (UTF-8 by default)."""
        charset = self.headers.get_content_charset() or "utf-8"
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:  # unknown charset name
            return self.body.decode("utf-8", errors="replace")


class HttpClient:
    """GET JSON or text from one web API, politely.

    Parameters
    ----------
    base_url : str
        An http(s) URL; relative paths given to :meth:`get` are resolved against it
        (a trailing ``/`` is implied, so ``"search/text/"`` extends the base path).
    timeout : float
        Seconds to wait for a connection or for data, per request.
    retries : int
        How many times a request is retried after an HTTP 408/425/429/5xx or a
        connection error (so at most ``retries + 1`` requests). Other 4xx statuses
        fail at once.
    backoff : float
        Seconds before the first retry; doubled for every further retry. A
        ``Retry-After`` header (in seconds) lengthens the wait.
    max_backoff : float
        Upper bound of any single wait between retries.
    delay : float
        Minimum seconds between the starts of two successive requests (rate limit),
        retries included.
    headers : dict, optional
        Headers sent with every request.
    auth_headers : dict, optional
        Headers (credentials) sent only to URLs of the same origin as ``base_url``
        and never forwarded across a redirect.
    max_bytes : int
        Responses larger than this raise :class:`DatasetError`.

    Raises
    ------
    ParameterError
        When ``base_url`` is not an http(s) URL or a number is out of range.

    Notes
    -----
    A client is safe to share between threads: the rate limit is kept under a lock.
    """

    def __init__(self, base_url: str, *, timeout: float = 30.0, retries: int = 3,
                 backoff: float = 0.5, max_backoff: float = 30.0, delay: float = 0.0,
                 headers: dict | None = None, auth_headers: dict | None = None,
                 max_bytes: int = 64 * 2**20):
        _check_http_url(base_url, "base_url")
        for name, value in (("timeout", timeout), ("backoff", backoff),
                            ("max_backoff", max_backoff), ("delay", delay)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ParameterError(f"{name} must be a non-negative number, got {value!r}")
        if timeout == 0:
            raise ParameterError("timeout must be positive, got 0")
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise ParameterError(f"retries must be a non-negative integer, got {retries!r}")
        if not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ParameterError(f"max_bytes must be a positive integer, got {max_bytes!r}")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.timeout = float(timeout)
        self.retries = retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.delay = float(delay)
        self.headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self._auth_headers = dict(auth_headers or {})
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._last_start: float | None = None

    def __repr__(self) -> str:
        return (f"HttpClient({self.base_url!r}, timeout={self.timeout}, retries={self.retries}, "
                f"delay={self.delay})")

    # -- URLs -------------------------------------------------------------------------
    def url(self, path: str = "", params: dict | None = None) -> str:
        """Return the absolute URL of ``path`` (relative to the base URL) with query ``params``.

        ``path`` may also be an absolute http(s) URL (e.g. a ``next`` page link).
        Parameters whose value is ``None`` are left out.
        """
        if not urllib.parse.urlsplit(path).scheme:
            path = path.lstrip("/")  # relative to the base path, not the host root
        url = urllib.parse.urljoin(self.base_url, path)
        if params:
            query = urllib.parse.urlencode(
                [(k, v) for k, v in params.items() if v is not None], doseq=True)
            if query:
                url += ("&" if urllib.parse.urlsplit(url).query else "?") + query
        return url

    # -- requests ---------------------------------------------------------------------
    def _wait_turn(self) -> None:
        with self._lock:
            now = time.monotonic()
            if self._last_start is not None and self.delay > 0:
                wait = self._last_start + self.delay - now
                if wait > 0:
                    time.sleep(wait)
                    now = time.monotonic()
            self._last_start = now

    def _request(self, url: str, accept: str) -> urllib.request.Request:
        req = urllib.request.Request(url, method="GET", headers={**self.headers,
                                                                 "Accept": accept})
        if self._auth_headers and _origin(url) == _origin(self.base_url):
            for key, value in self._auth_headers.items():
                req.add_unredirected_header(key, value)
        return req

    def _retry_wait(self, attempt: int, retry_after: str | None) -> float:
        wait = self.backoff * 2**attempt
        if retry_after:
            try:
                wait = max(wait, float(retry_after))
            except ValueError:  # an HTTP date: fall back to our own backoff
                pass
        return min(wait, self.max_backoff)

    def get(self, path: str = "", params: dict | None = None, *,
            accept: str = "*/*") -> Response:
        """GET ``path`` (or an absolute URL), retrying as configured.

        Raises
        ------
        DatasetError
            On a non-retryable HTTP status, when the retries are exhausted, or when the
            body is larger than ``max_bytes``.
        """
        url = self.url(path, params)
        _check_http_url(url, "url")
        shown = redact_url(url)
        attempts = self.retries + 1
        last = ""
        status = None
        for attempt in range(attempts):
            self._wait_turn()
            retry_after = None
            try:
                with urllib.request.urlopen(self._request(url, accept),
                                            timeout=self.timeout) as resp:
                    body = resp.read(self.max_bytes + 1)
                    if len(body) > self.max_bytes:
                        raise DatasetError(
                            f"GET {shown}: response larger than {self.max_bytes} bytes",
                            url=shown, status=resp.status)
                    return Response(resp.geturl(), resp.status, resp.headers, body)
            except urllib.error.HTTPError as err:
                status = err.code
                detail = _snippet(err)
                last = f"HTTP {err.code} {err.reason}" + (f": {detail}" if detail else "")
                if err.code not in RETRY_STATUSES and not 500 <= err.code < 600:
                    raise DatasetError(f"GET {shown} failed: {last}", url=shown,
                                       status=err.code) from None
                retry_after = err.headers.get("Retry-After") if err.headers else None
            except (TimeoutError, urllib.error.URLError, http.client.HTTPException,
                    ConnectionError) as err:
                status = None
                reason = getattr(err, "reason", err)
                last = f"connection error: {reason or type(err).__name__}"
            if attempt + 1 < attempts:
                time.sleep(self._retry_wait(attempt, retry_after))
        raise DatasetError(
            f"GET {shown} failed after {attempts} attempt{'s' if attempts > 1 else ''}: {last}",
            url=shown, status=status)

    def get_text(self, path: str = "", params: dict | None = None) -> str:
        """GET and decode the body as text (charset from ``Content-Type``, else UTF-8)."""
        return self.get(path, params, accept="text/html, text/*;q=0.9, */*;q=0.5").text()

    def get_json(self, path: str = "", params: dict | None = None):
        """GET and parse the body as JSON.

        Raises
        ------
        DatasetError
            Also when the body is not valid JSON.
        """
        resp = self.get(path, params, accept="application/json")
        try:
            return json.loads(resp.text())
        except json.JSONDecodeError as err:
            shown = redact_url(resp.url)
            raise DatasetError(
                f"GET {shown} did not return valid JSON ({err.msg} at line {err.lineno} "
                f"column {err.colno}); body starts {resp.body[:80]!r}",
                url=shown, status=resp.status) from None


def _snippet(err: urllib.error.HTTPError, limit: int = 200) -> str:
    """Return a short, single-line excerpt of an error response's body (or ``""``)."""
    try:
        body = err.read(limit + 1)
    except Exception:  # the body is a courtesy; never mask the HTTP error itself
        return ""
    text = body.decode("utf-8", errors="replace").strip()
    text = " ".join(text.split())
    return text[:limit] + ("…" if len(text) > limit else "")


class OnlineDataset:
    """Base of the datasets read over HTTP.

    It keeps the client's settings, not a client: every iteration makes its own
    :class:`HttpClient`, so datasets pickle and iterate again with fresh connections.
    """

    def _configure_client(self, base_url: str, **options) -> None:
        self.base_url = base_url
        self._client_options = options
        self._client()  # validate base_url and the options now rather than when iterating

    def _client(self) -> HttpClient:
        return HttpClient(self.base_url, **self._client_options)
