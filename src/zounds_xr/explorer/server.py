"""The explorer's HTTP server (tornado): the page, its static files and the JSON API.

Why tornado: it is one pure-Python package with no dependencies of its own, already in
every Jupyter environment (ipykernel needs it), and its ``StaticFileHandler`` implements
HTTP byte ranges (206, 416, ``Content-Range``, ETags): the WAV stream reuses that
machinery instead of parsing ``Range`` headers by hand. Its IOLoop runs happily in a
background thread, which is how :func:`zounds_xr.explore` serves a notebook.

Every handler but one is read-only (GET/HEAD). The one write, ``POST /api/labels``,
exists only when the explorer is writable (``serve --writable``), and is guarded against
other sites: it needs this server session's random token in the ``X-Zx-Token`` header
(which a page of another origin can neither read nor send without a CORS preflight that
this server never grants), a JSON body, an ``Origin`` (when the browser sends one) equal
to the server's own; and a writable server bound to a loopback address answers only
requests whose ``Host`` names it (a DNS rebinding page cannot read the token either).
Blocking reads run on a small thread pool so a slow picture never stalls the page.
Errors are JSON ``{"error": "..."}`` with 400 for a bad parameter, 403 for a refused
write, 404 for an unknown document, feature or index, 416 for a byte range outside the
WAV.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib.resources
import json
import secrets
import socket
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..core.optional import optional_import
from .._version import __version__
from ..documents.store import FeatureStore, open_store
from ..core.errors import DocumentNotFoundError, ParameterError, ZoundsError
from .catalog import dumps
from .model import Explorer, NotFoundError, ReadOnlyError

__all__ = ["STATIC", "BackgroundServer", "make_app", "serve"]

#: the page's files, shipped inside the package
STATIC = importlib.resources.files(__package__) / "static"


def _tornado():
    optional_import("tornado", extra="explore")
    return importlib.import_module("tornado.web")


#: hosts a loopback-bound server answers to (the Host header), with its port
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def _handlers(web: Any):
    class Base(web.RequestHandler):
        def initialize(self, explorer: Explorer, executor: ThreadPoolExecutor,
                       guard: dict):
            self.explorer = explorer
            self.executor = executor
            self.guard = guard

        def prepare(self):
            hosts = self.guard.get("hosts")
            if hosts is not None and self.request.host not in hosts:
                raise web.HTTPError(403, f"this server answers to {', '.join(sorted(hosts))}"
                                         f", not {self.request.host!r}")

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
            except ReadOnlyError as exc:
                raise web.HTTPError(403, str(exc)) from None
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
            info = {"zounds_xr": __version__, "store": ex.url, "documents": len(ex.view),
                    "features": ex.features, "kinds": kinds, "indexes": indexes,
                    "extra": ex.view.extra, "version": ex.version,
                    "writable": ex.read_only is None,
                    "read_only": ex.read_only}
            if ex.read_only is None:
                info["token"] = self.guard["token"]  # same-origin pages only can read it
            self.json(info)

    class Labels(Base):
        """``POST /api/labels``: set a label column of documents.

        The body is ``{"column", "value", "ids": [...]}``, or ``{"column", "values":
        {id: value}}``, or ``{"column", "value", "map": {"feature", "method"},
        "points": [...]}`` (a lasso on the map); ``"author"`` optional. Answers
        ``{"column", "documents", "version"}``.
        """

        def check_write(self):
            origin = self.request.headers.get("Origin")
            if origin is not None and urllib.parse.urlsplit(origin).netloc != self.request.host:
                raise web.HTTPError(403, f"cross-site write refused (Origin {origin!r})")
            token = self.request.headers.get("X-Zx-Token", "")
            if not hmac.compare_digest(token.encode(), self.guard["token"].encode()):
                raise web.HTTPError(403, "a write needs this session's token (X-Zx-Token "
                                         "header, from /api/info)")
            ctype = self.request.headers.get("Content-Type", "").split(";")[0].strip()
            if ctype != "application/json":
                raise web.HTTPError(415, f"a write is JSON (Content-Type application/json), "
                                         f"got {ctype or 'none'!r}")

        async def post(self):
            ex = self.explorer
            if ex.read_only is not None:
                raise web.HTTPError(403, f"labels cannot be edited: {ex.read_only}")
            self.check_write()
            try:
                body = json.loads(self.request.body or b"null")
            except ValueError:
                raise web.HTTPError(400, "the body is not JSON") from None
            if not isinstance(body, dict):
                raise web.HTTPError(400, "the body is a JSON object")
            if "values" in body:
                values = body["values"]
                if not isinstance(values, dict):
                    raise web.HTTPError(400, "values maps document ids to values")
            else:
                ids = body.get("ids")
                if ids is None and isinstance(body.get("map"), dict):
                    m = body["map"]
                    view = await self.run(ex.map_view, str(m.get("feature")),
                                          m.get("method") or None)
                    ids = await self.run(view.ids_of, body.get("points") or [])
                if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                    raise web.HTTPError(400, "ids is a list of document ids")
                values = dict.fromkeys(ids, body.get("value"))
            self.json(await self.run(ex.set_labels, body.get("column"), values,
                                     author=body.get("author")))

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
                db=None if db in (None, "") else db == "1", power=power,
                pool=self.get_argument("pool", "max"))
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
        """``/api/map``: the map's description, and its points, colours and documents.

        ``/api/map/points.bin``: float32 x, y per point; ``/api/map/colours.bin?column=``:
        a uint8 code per point (legend in ``X-Zx-Legend``); ``/api/map/point?i=``: the
        document at a point.
        """

        async def get(self, what=None):
            feature = self.get_argument("feature", None)
            if not feature:
                raise web.HTTPError(400, "the map needs feature=")
            method = self.get_argument("method", None) or None
            view = await self.run(self.explorer.map_view, feature, method)
            if what is None:
                self.json(view.info())
            elif what == "points.bin":
                self.set_header("Content-Type", "application/octet-stream")
                self.finish(await self.run(view.points))
            elif what == "colours.bin":
                column = self.get_argument("column", None)
                if not column:
                    raise web.HTTPError(400, "colours need column=")
                codes, legend = await self.run(view.colours, column)
                self.set_header("Content-Type", "application/octet-stream")
                self.set_header("X-Zx-Legend", dumps(legend))
                self.finish(codes)
            elif what == "point":
                self.json(await self.run(view.point, self.int_arg("i", 0, 0)))
            else:
                raise web.HTTPError(404, f"no map resource {what!r}")

    class Audio(web.StaticFileHandler):
        """``GET /api/documents/<id>/audio.wav?start=&end=``: 16-bit PCM WAV, byte ranges.

        ``StaticFileHandler`` does the HTTP (ranges, 206/416, HEAD, ETag); the
        overrides below make the "file" the sound of the selection, whose bytes are
        generated only for the range asked.
        """

        def initialize(self, explorer: Explorer, executor: ThreadPoolExecutor,
                       guard: dict):
            super().initialize(path="")
            self.explorer = explorer
            self.guard = guard
            self.clip: Any = None

        async def prepare(self):
            Base.prepare(self)
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
        def initialize(self, path, guard: dict, default_filename=None):
            super().initialize(path, default_filename)
            self.guard = guard

        def prepare(self):
            Base.prepare(self)

        def get_cache_time(self, path, modified, mime_type):
            return 0

    return {"info": Info, "catalog": Catalog, "document": Document, "image": Image,
            "values": Values, "neighbours": Neighbours, "map": Map, "audio": Audio,
            "labels": Labels, "page": Page}


def allowed_hosts(host: str, port: int) -> frozenset[str] | None:
    """Return the ``Host`` headers a server bound to ``host:port`` answers.

    Its loopback names when it is bound to a loopback address (DNS rebinding
    protection), else any.

    Parameters
    ----------
    host : str
        The address the server binds.
    port : int
        Its TCP port.

    Returns
    -------
    frozenset of str or None
        ``"<name>:<port>"`` for ``127.0.0.1``, ``localhost`` and ``[::1]``; ``None``
        (any ``Host``) for a non-loopback ``host``.
    """
    if host not in ("127.0.0.1", "localhost", "::1"):
        return None
    return frozenset(f"{name}:{port}" for name in _LOOPBACK)


def make_app(explorer: Explorer, executor: ThreadPoolExecutor | None = None,
             hosts: frozenset[str] | None = None, token: str | None = None):
    """Build the tornado ``Application`` of the explorer.

    Parameters
    ----------
    explorer : Explorer
        What the routes serve.
    executor : concurrent.futures.ThreadPoolExecutor, optional
        Where requests read and draw (off the event loop); default 4 threads. The
        catalog's search text and the stored maps are prepared in it at once.
    hosts : frozenset of str, optional
        The ``Host`` headers a writable explorer answers (see :func:`allowed_hosts`);
        ``None``: any. A read-only explorer answers any.
    token : str, optional
        The session's write token (random by default; sent to the page in
        ``/api/info`` when the explorer is writable, required by label edits).

    Returns
    -------
    tornado.web.Application
        Not yet listening (``app.listen(port, address=host)``).

    Raises
    ------
    ImportError
        When tornado is not installed (the ``explore`` extra).

    Notes
    -----
    Routes (GET but for ``POST /api/labels``; documented in docs/EXPLORER.md)::

        /                                           the page
        /static/<file>                              its CSS and JS
        /api/info
        /api/catalog?offset=&limit=&sort=&order=&q=
        /api/documents/<id>
        /api/documents/<id>/features/<name>/image.png?start=&end=&width=&height=&db=&power=&pool=
        /api/documents/<id>/features/<name>/values?start=&end=&width=
        /api/documents/<id>/audio.wav?start=&end=
        /api/neighbours?feature=&id=&start=&end=&k=
        /api/map?feature=&method=
        POST /api/labels                            (writable explorers only)
        /api/map/points.bin|colours.bin|point?feature=&method=&column=&i=
    """
    web = _tornado()
    h = _handlers(web)
    executor = executor or ThreadPoolExecutor(max_workers=4, thread_name_prefix="zx-explore")
    executor.submit(explorer.view.prepare_search)  # the filter's text, off the first request
    executor.submit(explorer.prepare_maps)  # stored maps' ids, off the first hover
    executor.submit(explorer.prepare_indexes)  # saved search indexes, off the first query
    # a read-only explorer answers any Host (notebooks behind proxies); a writable one
    # only its own names, so that a DNS-rebinding page can never read its token
    guard = {"hosts": hosts if explorer.read_only is None else None,
             "token": token or secrets.token_urlsafe(32)}
    kw = {"explorer": explorer, "executor": executor, "guard": guard}
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
        (r"/api/map/([a-z.]+)", h["map"], kw),
        (r"/api/labels", h["labels"], kw),
        (r"/static/(.*)", h["page"], {"path": static, "guard": guard}),
        (r"/()", h["page"], {"path": static, "default_filename": "index.html",
                             "guard": guard}),
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

    Parameters
    ----------
    explorer : Explorer
        What it serves.
    host : str, default "127.0.0.1"
        The address to bind (a loopback one also limits the ``Host`` headers, see
        :func:`allowed_hosts`).
    port : int, default 0
        TCP port; 0 picks a free one now.
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
        """The server's address, ``http://<host>:<port>/``."""
        return f"http://{self.host}:{self.port}/"

    def _run(self):
        asyncio.set_event_loop(asyncio.new_event_loop())
        ioloop = importlib.import_module("tornado.ioloop")
        try:
            self._loop = ioloop.IOLoop.current()
            app = make_app(self.explorer, hosts=allowed_hosts(self.host, self.port))
            self._server = app.listen(self.port, address=self.host)
        except OSError as exc:  # e.g. the port is taken: reported to the caller of start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.start()

    def start(self) -> BackgroundServer:
        """Start serving; return once the server listens (30 s at most).

        Returns
        -------
        BackgroundServer
            ``self``.

        Raises
        ------
        ImportError
            When tornado is not installed (the ``explore`` extra).
        OSError
            When the server cannot listen (e.g. the port is taken).
        """
        _tornado()
        thread = threading.Thread(target=self._run, name="zx-explore-server", daemon=True)
        self._thread = thread
        thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        """Stop serving and wait (10 s at most) for the thread to end; idempotent."""
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
          writable: bool = False, echo=print) -> None:
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
    writable : bool, default False
        Allow label edits from the page (each with the session's token).
    echo : callable, default print
        Called with the one line that says what is served and where.

    Raises
    ------
    StoreError
        When there is no feature store at ``store``.
    ImportError
        When tornado is not installed (the ``explore`` extra).
    OSError
        When the server cannot listen on ``host:port``.
    """
    explorer = open_explorer(store, storage_options, writable=writable)
    web = _tornado()
    ioloop = importlib.import_module("tornado.ioloop")
    del web
    app = make_app(explorer, hosts=allowed_hosts(host, port))
    app.listen(port, address=host)
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    mode = "label edits allowed" if explorer.read_only is None else \
        f"read-only: {explorer.read_only}"
    echo(f"zounds-xr explorer: {len(explorer.view)} documents, features "
         f"{', '.join(explorer.features)}; {mode}; open http://{shown}:{port}/ "
         f"(Ctrl-C stops)")
    try:
        ioloop.IOLoop.current().start()
    except KeyboardInterrupt:
        pass


def open_explorer(store, storage_options=None, writable: bool = False) -> Explorer:
    """Open an :class:`Explorer` over a store object or URL.

    Parameters
    ----------
    store : str, os.PathLike, store object or Explorer
        A store URL (opened with ``zx.open_store``), an opened store, or an explorer
        (returned as it is).
    storage_options : dict, optional
        fsspec options for a URL (S3 endpoint, credentials).
    writable : bool, default False
        Open the store for writing label edits; read-only otherwise.

    Returns
    -------
    Explorer

    Raises
    ------
    StoreError
        When there is no feature store at the URL.
    """
    if isinstance(store, Explorer):
        return store
    if isinstance(store, str) or hasattr(store, "__fspath__"):
        url = str(store)
        opened = open_store(url, storage_options=storage_options)
        if writable:
            opened = FeatureStore(url, storage_options=storage_options)
        return Explorer(opened, url=url, storage_options=storage_options, writable=writable)
    return Explorer(store, writable=writable)
