"""Where encoded audio comes from: paths, URLs, bytes and file-like objects.

Sources
    A path (``str`` or ``os.PathLike``), an ``http(s)://`` URL (fetched with the
    standard library's ``urllib`` into a spooled temporary file: memory up to 32 MiB,
    disk beyond), encoded ``bytes``, a binary file-like object (one that cannot seek
    is spooled the same way), a ``urllib.request.Request`` or an ``AudioMetaData``
    (its ``uri`` is decoded).
"""
from __future__ import annotations

import contextlib
import io
import os
import pathlib
import re
import shutil
import tempfile
import urllib.error
import urllib.request

from ..core.errors import AudioDecodeError, AudioFileNotFoundError, ParameterError
from .metadata import AudioMetaData

__all__ = ["HTTP_TIMEOUT", "SPOOL_BYTES", "URL", "binary_source", "describe"]

#: spooled downloads and unseekable streams stay in memory up to this size
SPOOL_BYTES = 32 << 20
#: seconds before an HTTP fetch gives up
HTTP_TIMEOUT = 60
#: what an http(s) URL looks like
URL = re.compile(r"^https?://", re.IGNORECASE)


def describe(source) -> str:
    """How messages name ``source`` (a path, a URL, bytes or a file object)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes in memory>"
    if isinstance(source, urllib.request.Request):
        return source.full_url
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    name = getattr(source, "name", None)
    return f"<{type(source).__name__} {name!r}>" if isinstance(name, str) else (
        f"<{type(source).__name__}>")


def _spool(fileobj, name: str):
    """Copy an unseekable binary stream into a seekable spooled temporary file."""
    spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    try:
        shutil.copyfileobj(fileobj, spooled, length=1 << 20)
    except OSError as exc:
        spooled.close()
        raise AudioDecodeError(f"cannot read audio from {name}: {exc}") from exc
    spooled.seek(0)
    return spooled


def _fetch(url, name: str):
    """Download ``url`` (str or Request) into a spooled temporary file."""
    try:
        response = urllib.request.urlopen(url, timeout=HTTP_TIMEOUT)  # noqa: S310 (http(s) only)
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410):
            raise AudioFileNotFoundError(f"no audio at {name}: HTTP {exc.code} {exc.reason}") \
                from exc
        raise AudioDecodeError(f"cannot fetch audio from {name}: HTTP {exc.code} {exc.reason}") \
            from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AudioDecodeError(f"cannot fetch audio from {name}: {reason}") from exc
    with response:
        return _spool(response, name)


@contextlib.contextmanager
def binary_source(source):
    """Give what soundfile can open for ``source`` (a path or a seekable file-like), and a name.

    Temporary objects (downloads, spooled copies) are closed on exit; a caller's file
    object is left open.
    """
    if isinstance(source, AudioMetaData):
        source = source.uri
    name = describe(source)
    if isinstance(source, urllib.request.Request) or (
            isinstance(source, str) and URL.match(source)):
        with _fetch(source, name) as tmp:
            yield tmp, name
        return
    if isinstance(source, (str, os.PathLike)):
        path = pathlib.Path(source)
        if not path.exists():
            raise AudioFileNotFoundError(f"audio file not found: {name}")
        if path.is_dir():
            raise AudioDecodeError(f"cannot decode {name}: it is a directory")
        yield os.fspath(path), name
        return
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield io.BytesIO(bytes(source)), name
        return
    if hasattr(source, "read"):
        seekable = getattr(source, "seekable", None)
        if callable(seekable) and seekable() and hasattr(source, "seek") and hasattr(source,
                                                                                    "tell"):
            yield source, name
            return
        with _spool(source, name) as tmp:
            yield tmp, name
        return
    raise ParameterError(
        f"cannot decode audio from a {type(source).__name__}: give a path, an http(s) URL, "
        f"bytes or a binary file-like object")
