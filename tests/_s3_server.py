"""A local S3-compatible server for tests and benchmarks (moto's ``ThreadedMotoServer``).

The server listens on 127.0.0.1 (a free port), in a thread of the calling process, and
keeps a log of every HTTP request it answers (method, bucket/key path, query), whoever
sent it: this process, a subprocess or a dask worker. Tests count requests from that
log; nothing leaves the machine.

    with S3Server() as server:
        server.create_bucket("features")
        fs = FeatureStore("s3://features/f.zarr", storage_options=server.storage_options)

Credentials are dummies, set by the caller in the environment or in ``storage_options``
(``server.environ`` gives the variables a subprocess needs).
"""
from __future__ import annotations

import dataclasses
import threading
import urllib.parse
import urllib.request

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    path: str  # "/bucket/key..." (unquoted)
    query: str

    @property
    def is_list(self) -> bool:
        return self.method == "GET" and ("list-type" in self.query or self.path.count("/") == 1
                                         and "prefix" in self.query)

    @property
    def is_read(self) -> bool:
        return self.method in ("GET", "HEAD")


class _Logging:
    """WSGI middleware: records every request before moto answers it."""

    def __init__(self, app, log: list, lock: threading.Lock):
        self.app, self.log, self.lock = app, log, lock
        self.conditional = threading.Lock()

    def __call__(self, environ, start_response):
        path = urllib.parse.unquote(environ.get("PATH_INFO", ""))
        if not path.startswith("/moto-api"):
            with self.lock:
                self.log.append(Request(environ.get("REQUEST_METHOD", ""), path,
                                        environ.get("QUERY_STRING", "")))
        if environ.get("REQUEST_METHOD") == "PUT" and "HTTP_IF_NONE_MATCH" in environ:
            # moto checks If-None-Match and then stores, unlocked: two racing conditional
            # PUTs could both succeed. S3's conditional PUT is atomic; so is this one.
            with self.conditional:
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


class S3Server:
    """moto's S3 server on 127.0.0.1 with a request log (a context manager)."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        log, lock = [], threading.Lock()

        class Server(ThreadedMotoServer):
            def _server_entry(self):
                from moto.moto_server.werkzeug_app import (
                    DomainDispatcherApplication,
                    MotoRequestHandler,
                    create_backend_app,
                )
                from werkzeug.serving import make_server

                class Quiet(MotoRequestHandler):
                    def log_request(self, *args, **kwargs):
                        pass

                app = _Logging(DomainDispatcherApplication(create_backend_app), log, lock)
                self._server = make_server(self._ip_address, self._port, app, True,
                                           request_handler=Quiet)
                self._server_ready_event.set()
                self._server.serve_forever()

        self._log, self._lock = log, lock
        self._server = Server(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> S3Server:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------ clients
    @property
    def storage_options(self) -> dict:
        """fsspec/s3fs options that reach this server with the dummy credentials."""
        return {"key": DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                "secret": DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                "client_kwargs": {"endpoint_url": self.endpoint,
                                  "region_name": DUMMY_CREDENTIALS["AWS_DEFAULT_REGION"]}}

    @property
    def environ(self) -> dict:
        """Environment variables that point boto/s3fs at this server (for subprocesses)."""
        return {**DUMMY_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ENDPOINT_URL_S3": self.endpoint}

    def client(self):
        """A boto3 S3 client of this server (independent of the code under test)."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint,
                            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                            region_name=DUMMY_CREDENTIALS["AWS_DEFAULT_REGION"])

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key under ``prefix`` (paginated listing through boto3)."""
        out = []
        for page in self.client().get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return out

    def reset(self) -> None:
        """Forget every bucket and object (moto's reset API); the log is kept."""
        self._call("POST", "/moto-api/reset")

    def require_authentication(self, enabled: bool) -> None:
        """Refuse (enabled) or accept (default) credentials that IAM does not know."""
        self._call("POST", "/moto-api/reset-auth", b"0" if enabled else b"inf")

    def _call(self, method: str, path: str, data: bytes | None = None) -> None:
        req = urllib.request.Request(self.endpoint + path, data=data, method=method,
                                     headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(req, timeout=10) as response:
            response.read()

    # ------------------------------------------------------------------ request log
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._log)

    def mark(self) -> int:
        """A position in the log, for :meth:`since`."""
        with self._lock:
            return len(self._log)

    def since(self, mark: int) -> list[Request]:
        with self._lock:
            return list(self._log[mark:])
