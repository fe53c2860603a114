"""A local HTTP server for dataset tests, and responses shaped like the real services'.

Nothing here reaches the internet: :class:`LocalServer` listens on 127.0.0.1 (port 0),
answers at most ``max_requests`` requests (then 503), closes idle sockets after a few
seconds, and is shut down when its ``with`` block ends.

The JSON/HTML bodies follow the real services' field names (Freesound API v2
``/search/text/``, archive.org ``/metadata/<id>``, phatdrumloops.com ``beats.php``),
written by hand with the audio URLs pointing back at the local server.
"""
from __future__ import annotations

import io
import json
import math
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import soundfile


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    sleep: float = 0.0  # seconds to wait before answering (timeout tests)


def json_reply(obj, status: int = 200, **headers) -> Reply:
    return Reply(status, json.dumps(obj).encode(),
                 {"Content-Type": "application/json", **headers})


def text_reply(text: str, status: int = 200, content_type: str = "text/html; charset=utf-8",
               **headers) -> Reply:
    return Reply(status, text.encode("utf-8"), {"Content-Type": content_type, **headers})


@dataclass(frozen=True)
class Logged:
    time: float  # time.monotonic() when the server received the request
    path: str  # unquoted path
    query: dict  # parsed query string (lists of values)
    headers: dict


class LocalServer:
    """``with LocalServer() as srv:``; ``srv.route(path, handler_or_replies...)``.

    A route is a callable ``(server, Logged) -> Reply`` or a sequence of ``Reply``
    given in order (the last one repeats). ``srv.log`` lists every request received.
    """

    def __init__(self, max_requests: int = 100):
        self.max_requests = max_requests
        self.log: list[Logged] = []
        self._routes: dict = {}
        self._lock = threading.Lock()
        self._httpd = None
        self._thread = None

    # -- configuration ------------------------------------------------------------------
    def route(self, path: str, *replies) -> None:
        if len(replies) == 1 and callable(replies[0]):
            self._routes[path] = replies[0]
        else:
            queue = list(replies)

            def serve(_srv, _req):
                return queue.pop(0) if len(queue) > 1 else queue[0]
            self._routes[path] = serve

    @property
    def origin(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def requests_to(self, path: str) -> list[Logged]:
        return [r for r in self.log if r.path == path]

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> LocalServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5  # seconds a client socket may stay idle
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                parts = urllib.parse.urlsplit(self.path)
                req = Logged(time.monotonic(), urllib.parse.unquote(parts.path),
                             urllib.parse.parse_qs(parts.query, keep_blank_values=True),
                             {k.lower(): v for k, v in self.headers.items()})
                with outer._lock:
                    outer.log.append(req)
                    over = len(outer.log) > outer.max_requests
                    handler = outer._routes.get(req.path)
                if over:
                    reply = text_reply("request budget exhausted", 503, "text/plain")
                elif handler is None:
                    reply = text_reply("<h1>Not Found</h1>", 404)
                else:
                    reply = handler(outer, req)
                if reply.sleep:
                    time.sleep(reply.sleep)
                try:
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):  # client gave up (timeout)
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


# -- audio ----------------------------------------------------------------------------------
def wav_bytes(samplerate: int = 8000, channels: int = 1, seconds: float = 0.05,
              freq: float = 440.0) -> bytes:
    """A short sine as a 16-bit PCM WAV file, in memory."""
    t = np.arange(int(samplerate * seconds)) / samplerate
    x = 0.5 * np.sin(2 * math.pi * freq * t)
    data = np.stack([x] * channels, axis=1)
    buf = io.BytesIO()
    soundfile.write(buf, data, samplerate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def wav_reply(data: bytes) -> Reply:
    return Reply(200, data, {"Content-Type": "audio/x-wav"})


# -- Freesound API v2 -------------------------------------------------------------------------
FREESOUND_KEY = "fs-test-key-0123456789"
FREESOUND_PATH = "/apiv2/search/text/"

_NAMES = ["Etude of Electric Guitar in Dm.wav", "guitar_strum_G.aiff", "acoustic pluck 03.flac",
          "Guitar Harmonics.wav", "slide-guitar-riff.mp3", "nylon_arp_120bpm.wav",
          "Feedback Swell.ogg"]


def freesound_sounds(origin: str, n: int = 7) -> list[dict]:
    """``n`` search results with every field FreeSoundSearch asks for."""
    out = []
    for i in range(n):
        sid = 100001 + i
        folder = f"{origin}/data/previews/{sid // 1000}"
        stem = f"{folder}/{sid}_{4000 + i}"
        out.append({
            "id": sid,
            "name": _NAMES[i % len(_NAMES)],
            "previews": {
                "preview-lq-ogg": f"{stem}-lq.ogg",
                "preview-lq-mp3": f"{stem}-lq.mp3",
                "preview-hq-ogg": f"{stem}-hq.ogg",
                "preview-hq-mp3": f"{stem}-hq.mp3",
            },
            "license": ["http://creativecommons.org/licenses/by/3.0/",
                        "http://creativecommons.org/publicdomain/zero/1.0/",
                        "https://creativecommons.org/licenses/by-nc/4.0/"][i % 3],
            "description": "Etude of Electric Guitar in Dm. Used chorus and reverberation "
                           f"effects. Size 6/4. Tempo 100. Take {i}.",
            "tags": ["guitar", "Electric", "Chorus", f"take-{i}"],
            "samplerate": [44100.0, 48000.0, 96000.0][i % 3],
            "channels": 1 + i % 2,
            "username": f"user{i}",
        })
    return out


def freesound_search(sounds: list[dict], api_key: str = FREESOUND_KEY):
    """A route answering like ``GET /apiv2/search/text/`` (token auth, paging)."""

    def serve(srv: LocalServer, req: Logged) -> Reply:
        auth = req.headers.get("authorization")
        token = req.query.get("token", [None])[0]
        if auth != f"Token {api_key}" and token != api_key:
            return json_reply({"detail": "Invalid token."}, 401,
                              **{"WWW-Authenticate": "Token"})
        q = {k: v[0] for k, v in req.query.items()}
        page, page_size = int(q.get("page", 1)), int(q.get("page_size", 15))
        fields = q.get("fields", "id,name,tags,username,license").split(",")
        start = (page - 1) * page_size
        results = [{k: s[k] for k in fields if k in s} for s in sounds[start:start + page_size]]

        def link(p):
            # the real API writes "?&query=...": keep that quirk
            params = {"query": q.get("query", ""), "page": p, "page_size": page_size,
                      "fields": ",".join(fields)}
            return f"{srv.origin}{FREESOUND_PATH}?&{urllib.parse.urlencode(params)}"

        return json_reply({
            "count": len(sounds),
            "next": link(page + 1) if start + page_size < len(sounds) else None,
            "previous": link(page - 1) if page > 1 else None,
            "results": results,
        })
    return serve


# -- archive.org ----------------------------------------------------------------------------------
IA_ID = "Greatest_Speeches_of_the_20th_Century"


def ia_metadata(archive_id: str = IA_ID) -> dict:
    """``GET /metadata/<id>``: a Flac original with MP3/Ogg derivatives, an Apple
    Lossless original (not decodable) with derivatives, a WAVE original in a sub-folder
    with spaces in its name, and non-audio files."""
    flac = "01 The Cuban Missile Crisis.flac"
    alac = "02 Ich bin ein Berliner.m4a"
    common = {"creator": "John F. Kennedy", "artist": "John F. Kennedy",
              "album": "Great Speeches of the 20th Century [Box Set] Disc 2", "genre": "Folk"}
    return {
        "created": 1719830400,
        "d1": "ia800301.us.archive.org",
        "d2": "ia600301.us.archive.org",
        "dir": f"/27/items/{archive_id}",
        "files": [
            {"name": flac, "source": "original", "format": "Flac", "mtime": "1236666800",
             "size": "31264435", "md5": "e00f4e7bd9df7bdba4db7098d1ccdfe0",
             "crc32": "ace17eb5", "sha1": "e42d1f348078a11ed9a6ea9c8934a1236235c7b3",
             "length": "454.03", "height": "0", "width": "0", "track": "15",
             "title": "The Cuban Missile Crisis", **common,
             "external-identifier": [
                 "urn:acoustid:ff850a0c-2efa-450f-8034-efdb31a9b696",
                 "urn:mb_recording_id:912cedd0-5530-4f26-972c-13d131fef06e"]},
            {"name": "01 The Cuban Missile Crisis.mp3", "source": "derivative",
             "format": "VBR MP3", "original": flac, "mtime": "1236670000", "size": "7264435",
             "length": "454.03", "title": "The Cuban Missile Crisis", **common},
            {"name": "01 The Cuban Missile Crisis.ogg", "source": "derivative",
             "format": "Ogg Vorbis", "original": flac, "size": "5110000", "length": "454.0"},
            {"name": "01 The Cuban Missile Crisis.png", "source": "derivative",
             "format": "PNG", "original": flac, "size": "31000"},
            {"name": alac, "source": "original", "format": "Apple Lossless Audio",
             "size": "20100000", "length": "334.2", "title": "Ich bin ein Berliner",
             "track": "16", **common},
            {"name": "02 Ich bin ein Berliner.mp3", "source": "derivative",
             "format": "VBR MP3", "original": alac, "size": "5400000", "length": "334.2",
             "title": "Ich bin ein Berliner", **common},
            {"name": "02 Ich bin ein Berliner.ogg", "source": "derivative",
             "format": "Ogg Vorbis", "original": alac, "size": "4000000", "length": "334.1",
             "title": "Ich bin ein Berliner", **common},
            {"name": "extras/03 Inaugural Address.wav", "source": "original",
             "format": "WAVE", "size": "1680044", "length": "9.52",
             "title": "Inaugural Address", **common},
            {"name": f"{archive_id}_meta.xml", "source": "original", "format": "Metadata",
             "size": "1024"},
            {"name": "notes.txt", "source": "original", "format": "Text", "size": "300"},
            {"name": "__ia_thumb.jpg", "source": "original", "format": "Item Tile",
             "size": "8000"},
        ],
        "files_count": 11,
        "item_last_updated": 1719830400,
        "item_size": 75000000,
        "metadata": {
            "identifier": archive_id,
            "mediatype": "audio",
            "collection": ["opensource_audio", "community"],
            "creator": "Various",
            "title": "Greatest Speeches of the 20th Century",
            "subject": "speeches; history; 20th century",
            "licenseurl": "http://creativecommons.org/publicdomain/mark/1.0/",
            "publicdate": "2009-03-10 07:00:00",
        },
        "server": "ia800301.us.archive.org",
        "uniq": 1234567890,
        "workable_servers": ["ia800301.us.archive.org", "ia600301.us.archive.org"],
    }


# -- phatdrumloops.com ----------------------------------------------------------------------------
def phat_beats_html(origin: str) -> str:
    """``beats.php``: an old-school table of breaks (WAV and MP3 links), navigation links,
    a duplicate, an upper-case extension and an absolute link."""
    return f"""<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN">
<html><head><title>Phat Drum Loops :: Beats</title>
<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"></head>
<body bgcolor="#000000" text="#FFFFFF" link="#FF9900">
<a href="index.php"><img src="images/logo.gif" border="0" alt="phatdrumloops"></a>
<table width="600" border="0">
<tr><td><b>Break</b></td><td><b>BPM</b></td><td colspan="2"><b>Download</b></td></tr>
<tr><td>Space Funk</td><td>98</td>
    <td><a href="audio/wav/space_funk1.wav">wav</a></td>
    <td><a href="audio/mp3/space_funk1.mp3">mp3</a></td></tr>
<tr><td>Amen Brother</td><td>136</td>
    <td><a href="/audio/wav/amen_brother.WAV">wav</a></td>
    <td><a href="/audio/mp3/amen_brother.mp3">mp3</a></td></tr>
<tr><td>Funky Drummer</td><td>101</td>
    <td><a href='{origin}/audio/wav/funky_drummer.wav'>wav</a></td>
    <td><a href="audio/mp3/funky_drummer.mp3">mp3</a></td></tr>
<tr><td>Space Funk (again)</td><td>98</td>
    <td><a href="audio/wav/space_funk1.wav#top">wav</a></td><td></td></tr>
</table>
<p><a href="beats.php?page=2">more beats &gt;&gt;</a> |
<a href="mailto:webmaster@phatdrumloops.com">contact</a></p>
</body></html>
"""
