"""The explorer's HTTP server (tornado): the page, its static files and the JSON API.

Why tornado: it is one pure-Python package with no dependencies of its own, already in
every Jupyter environment (ipykernel needs it), and its ``StaticFileHandler`` implements
HTTP byte ranges (206, 416, ``Content-Range``, ETags): the WAV stream reuses that
machinery instead of parsing ``Range`` headers by hand. Its IOLoop runs happily in a
background thread, which is how :func:`zounds_xr.explore` serves a notebook.

Every handler is read-only (GET/HEAD). Blocking reads run on a small thread pool so a
slow picture never stalls the page. Errors are JSON ``{"error": "..."}`` with 400 for a
bad parameter, 404 for an unknown document, feature or index, 416 for a byte range
outside the WAV.
"""
from __future__ import annotations

import asyncio
import hashlib
import importlib.resources
import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .._optional import optional_import
from .._version import __version__
from ..documents.store import open_store
from ..errors import DocumentNotFoundError, ParameterError, ZoundsError
from .catalog import dumps
from .model import Explorer, NotFoundError

__all__ = ["STATIC", "BackgroundServer", "make_app", "serve"]

#: the page's files, shipped inside the package
STATIC = importlib.resources.files(__package__) / "static"


def _tornado():
    optional_import("tornado", extra="explore")
    return importlib.import_module("tornado.web")


def _handlers(web: Any):
    class Base(web.RequestHandler):
        def initialize(self, explorer: Explorer, executor: ThreadPoolExecutor):
            self.explorer = explorer
            self.executor = executor

        def set_default_headers(self):
            self.set_header("Cache-Control", "no-store")
            self.set_header("X-Content-Type-Options", "nosniff")

        def write_error(self, status_code, **kwargs):
            message = self._reason
            exc = kwargs.get("exc_info", (None, None, None))[1]
            if isinstance(exc, web.HTTPError) and exc.log_message:
                message = exc.log_message
            self.set_header("Content-Type", "application/json")
            self.finish(dumps({"error": message, "status": status_code}))

        def int_arg(self, name, default, low=None, high=None):
            text = self.get_argument(name, None)
            if text is None or text == "":
                return default
            try:
                value = int(text)
            except ValueError:
                raise web.HTTPError(400, f"{name} must be an integer, got {text!r}") from None
            if (low is not None and value < low) or (high is not None and value > high):
                raise web.HTTPError(400, f"{name} must be in {low}..{high}, got {value}")
            return value

        def float_arg(self, name, default=None):
            text = self.get_argument(name, None)
            return default if text in (None, "") else text  # validated by the model

        async def run(self, func, *args, **kwargs):
            """Call the model on the pool; map its errors to HTTP statuses."""
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(self.executor, lambda: func(*args, **kwargs))
            except (DocumentNotFoundError, NotFoundError) as exc:
                raise web.HTTPError(404, str(exc)) from None
            except ParameterError as exc:
                raise web.HTTPError(400, str(exc)) from None
            except ZoundsError as exc:
                raise web.HTTPError(500, f"{type(exc).__name__}: {exc}") from None

        def json(self, obj):
            self.set_header("Content-Type", "application/json")
            self.finish(dumps(obj))

    class Info(Base):
        async def get(self):
            ex = self.explorer
            indexes = await self.run(ex.indexes)
            kinds = await self.run(ex.kinds)
            self.json({"zounds_xr": __version__, "store": ex.url, "documents": len(ex.view),
                       "features": ex.features, "kinds": kinds, "indexes": indexes})

    class Catalog(Base):
        async def get(self):
            sort = self.get_argument("sort", None) or None
            order = self.get_argument("order", "asc")
            if order not in ("asc", "desc"):
                raise web.HTTPError(400, f"order must be 'asc' or 'desc', got {order!r}")
            page = await self.run(self.explorer.view.page,
                                  offset=self.int_arg("offset", 0, 0),
                                  limit=self.int_arg("limit", 50, 1, 1000),
                                  sort=sort, descending=order == "desc",
                                  query=self.get_argument("q", ""))
            self.json(page)

    class Document(Base):
        async def get(self, doc_id):
            self.json(await self.run(self.explorer.document, doc_id))

    class Image(Base):
        async def get(self, doc_id, feature):
            db = self.get_argument("db", None)
            if db not in (None, "", "0", "1"):
                raise web.HTTPError(400, f"db must be 0 or 1, got {db!r}")
            power = self.get_argument("power", "1")
            try:
                power = float(power)
            except ValueError:
                raise web.HTTPError(400, f"power must be a number, got {power!r}") from None
            png, meta = await self.run(
                self.explorer.image, doc_id, feature, self.float_arg("start"),
                self.float_arg("end"), width=self.int_arg("width", 1024),
                height=self.int_arg("height", 256),
                db=None if db in (None, "") else db == "1", power=power)
            self.set_header("Content-Type", "image/png")
            self.set_header("X-Zx-Image", json.dumps(meta))
            self.finish(png)

    class Values(Base):
        async def get(self, doc_id, feature):
            self.json(await self.run(self.explorer.values, doc_id, feature,
                                     self.float_arg("start"), self.float_arg("end"),
                                     width=self.int_arg("width", 1024)))

    class Neighbours(Base):
        async def get(self):
            feature = self.get_argument("feature", None)
            doc_id = self.get_argument("id", None)
            if not feature or not doc_id:
                raise web.HTTPError(400, "neighbours needs feature= and id=")
            exclude = self.get_argument("exclude", "selection")
            if exclude not in ("selection", "document", "none"):
                raise web.HTTPError(400, f"exclude must be selection, document or none, "
                                         f"got {exclude!r}")
            self.json(await self.run(self.explorer.neighbours, feature, doc_id,
                                     self.float_arg("start"), self.float_arg("end"),
                                     k=self.int_arg("k", 10, 1, 200),
                                     exclude=None if exclude == "none" else exclude))

    class Map(Base):
        async def get(self):
            feature = self.get_argument("feature", None)
            if not feature:
                raise web.HTTPError(400, "map needs feature=")
            self.json(await self.run(self.explorer.map, feature))

    class Audio(web.StaticFileHandler):
        """``GET /api/documents/<id>/audio.wav?start=&end=``: 16-bit PCM WAV, byte ranges.

        ``StaticFileHandler`` does the HTTP (ranges, 206/416, HEAD, ETag); the
        overrides below make the "file" the sound of the selection, whose bytes are
        generated only for the range asked.
        """

        def initialize(self, explorer: Explorer, executor: ThreadPoolExecutor):
            super().initialize(path="")
            self.explorer = explorer
            self.clip: Any = None

        async def prepare(self):
            doc_id = self.path_args[0]
            loop = asyncio.get_running_loop()
            try:
                self.clip = await loop.run_in_executor(
                    None, lambda: self.explorer.clip(doc_id, self.get_argument("start", None),
                                                     self.get_argument("end", None)))
            except (DocumentNotFoundError, NotFoundError) as exc:
                raise web.HTTPError(404, str(exc)) from None
            except ParameterError as exc:
                raise web.HTTPError(400, str(exc)) from None

        write_error = Base.write_error

        @classmethod
        def get_absolute_path(cls, root, path):
            return path

        def validate_absolute_path(self, root, absolute_path):
            return absolute_path

        def get_content_size(self):
            return self.clip.size

        def get_content(self, abspath, start=None, end=None):
            return self.clip.chunks(start, end)

        def get_modified_time(self):
            return None

        def get_content_type(self):
            return "audio/wav"

        def compute_etag(self):
            key = (f"{self.explorer.url}|{self.path_args[0]}|{self.request.query}|"
                   f"{self.clip.source}|{self.clip.frames}")
            return '"' + hashlib.sha1(key.encode()).hexdigest() + '"'

        def get_cache_time(self, path, modified, mime_type):
            return 0

    class Page(web.StaticFileHandler):
        def get_cache_time(self, path, modified, mime_type):
            return 0

    return {"info": Info, "catalog": Catalog, "document": Document, "image": Image,
            "values": Values, "neighbours": Neighbours, "map": Map, "audio": Audio,
            "page": Page}


def make_app(explorer: Explorer, executor: ThreadPoolExecutor | None = None):
    """The tornado ``Application`` of the explorer over ``explorer`` (an :class:`Explorer`).

    Routes (all GET; documented in docs/EXPLORER.md)::

        /                                           the page
        /static/<file>                              its CSS and JS
        /api/info
        /api/catalog?offset=&limit=&sort=&order=&q=
        /api/documents/<id>
        /api/documents/<id>/features/<name>/image.png?start=&end=&width=&height=&db=&power=
        /api/documents/<id>/features/<name>/values?start=&end=&width=
        /api/documents/<id>/audio.wav?start=&end=
        /api/neighbours?feature=&id=&start=&end=&k=
        /api/map?feature=
    """
    web = _tornado()
    h = _handlers(web)
    executor = executor or ThreadPoolExecutor(max_workers=4, thread_name_prefix="zx-explore")
    executor.submit(explorer.view.prepare_search)  # the filter's text, off the first request
    kw = {"explorer": explorer, "executor": executor}
    doc = r"/api/documents/([^/]+)"
    static = str(STATIC)
    routes = [
        (r"/api/info", h["info"], kw),
        (r"/api/catalog", h["catalog"], kw),
        (doc, h["document"], kw),
        (doc + r"/features/([^/]+)/image\.png", h["image"], kw),
        (doc + r"/features/([^/]+)/values", h["values"], kw),
        (doc + r"/audio\.wav", h["audio"], kw),
        (r"/api/neighbours", h["neighbours"], kw),
        (r"/api/map", h["map"], kw),
        (r"/static/(.*)", h["page"], {"path": static}),
        (r"/()", h["page"], {"path": static, "default_filename": "index.html"}),
    ]
    return web.Application(routes, compress_response=False)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class BackgroundServer:
    """The explorer served from a daemon thread (for notebooks and tests).

    ``BackgroundServer(explorer, host, port=0).start()`` returns once the server
    listens; ``.url`` is its address; ``.stop()`` closes it.
    """

    def __init__(self, explorer: Explorer, host: str = "127.0.0.1", port: int = 0):
        self.explorer = explorer
        self.host = host
        self.port = port or _free_port(host)
        self._thread: threading.Thread | None = None
        self._loop: Any = None
        self._server: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def _run(self):
        asyncio.set_event_loop(asyncio.new_event_loop())
        ioloop = importlib.import_module("tornado.ioloop")
        try:
            self._loop = ioloop.IOLoop.current()
            self._server = make_app(self.explorer).listen(self.port, address=self.host)
        except OSError as exc:  # e.g. the port is taken: reported to the caller of start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.start()

    def start(self) -> BackgroundServer:
        _tornado()
        thread = threading.Thread(target=self._run, name="zx-explore-server", daemon=True)
        self._thread = thread
        thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        def close():
            self._server.stop()
            self._loop.stop()

        self._loop.add_callback(close)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None


def serve(store, host: str = "127.0.0.1", port: int = 8765, *, storage_options=None,
          echo=print) -> None:
    """Serve the explorer over ``store`` until interrupted (``zounds-xr serve``).

    Parameters
    ----------
    store : str or store object
        A store URL (local path, ``s3://...``) opened with ``zx.open_store``, or an
        opened store.
    host : str
        Interface to bind; the default ``127.0.0.1`` keeps the explorer on this machine.
    port : int
        TCP port.
    storage_options : dict, optional
        fsspec options for a URL (S3 endpoint, credentials).
    """
    explorer = open_explorer(store, storage_options)
    web = _tornado()
    ioloop = importlib.import_module("tornado.ioloop")
    del web
    app = make_app(explorer)
    app.listen(port, address=host)
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    echo(f"zounds-xr explorer: {len(explorer.view)} documents, features "
         f"{', '.join(explorer.features)}; open http://{shown}:{port}/ (Ctrl-C stops)")
    try:
        ioloop.IOLoop.current().start()
    except KeyboardInterrupt:
        pass


def open_explorer(store, storage_options=None) -> Explorer:
    """An :class:`Explorer` over a store object or URL."""
    if isinstance(store, Explorer):
        return store
    if isinstance(store, str) or hasattr(store, "__fspath__"):
        url = str(store)
        return Explorer(open_store(url, storage_options=storage_options), url=url,
                        storage_options=storage_options)
    return Explorer(store)
