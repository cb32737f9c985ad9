"""A real HTTP server on 127.0.0.1 that tests program per path, and that logs
every request it answers (path, start and end time, headers).

    with LocalServer() as site:
        site.page("/news/1", "<html>...</html>")
        site.route("/flaky", lambda req: req.respond(500))
        url = site.url("/news/1")

        @site.route("/stall")  # route() is also a decorator
        def _(req: Request) -> None:
            site.release.wait(5)  # set when the server stops

Routes may be changed while clients run (the newsroom edits a page between
checks). ``delay`` (or ``delays[path]``) slows answers down, so daemons
overlap in time and signals arrive mid-fetch.

A handler gets the request handler itself (HTTP/1.1, keep-alive), so it may
misbehave on purpose: write any bytes with ``req.send_raw`` (or ``req.wfile``),
wait on ``site.release`` to hang or trickle, drop the connection with
``req.hang_up()`` or reset it with ``req.hang_up(reset=True)``. A path with a
query string is routed by its exact text, else by the part before the ``?``.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, overload

Handler = Callable[["Request"], None]


@dataclass(frozen=True, slots=True)
class Hit:
    """One request the server answered."""

    path: str
    started: float  # time.monotonic()
    finished: float
    headers: dict[str, str] = field(default_factory=dict)


class Request(BaseHTTPRequestHandler):
    """Dispatches each GET to the handler registered for its path (else 404)."""

    server: LocalServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        started = time.monotonic()
        with self.server.lock:
            self.server.arrived.append(self.path)
            delay = self.server.delays.get(self.path, self.server.delay)
        if delay:
            time.sleep(delay)  # the server is slow, not the test
        with self.server.lock:
            routes = self.server.routes
            handler = routes.get(self.path) or routes.get(self.path.split("?", 1)[0])
        if handler is None:
            self.respond(404, b"<h1>404 Not Found</h1>")
        else:
            handler(self)
        hit = Hit(self.path, started, time.monotonic(), dict(self.headers.items()))
        with self.server.lock:
            self.server.log.append(hit)

    def respond(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "text/html; charset=utf-8",
    ) -> None:
        self.send_response(status)
        all_headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
        all_headers.update(headers or {})
        for name, value in all_headers.items():
            if value:
                self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def send_raw(self, data: bytes) -> None:
        """Put ``data`` on the wire as it is (status line, headers, body or junk)."""
        self.wfile.write(data)
        self.wfile.flush()

    def hang_up(self, *, reset: bool = False) -> None:
        """Close the connection now, whatever has been sent: a FIN, or with
        ``reset`` an RST (the client sees "connection reset by peer")."""
        self.close_connection = True
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(self.connection.detach())  # rfile/wfile still hold the socket open
        else:
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), Request)
        self.routes: dict[str, Handler] = {}
        self.log: list[Hit] = []  # answered requests, in the order they finished
        self.arrived: list[str] = []  # paths of requests received, answered or not
        self.delays: dict[str, float] = {}  # per-path delay, overriding ``delay``
        self.lock = threading.Lock()
        self.delay = delay
        self.release = threading.Event()  # for handlers that hang; set on exit
        self._thread: threading.Thread | None = None

    # -- programming -------------------------------------------------------------
    @overload
    def route(self, path: str) -> Callable[[Handler], Handler]: ...
    @overload
    def route(self, path: str, handler: Handler) -> Handler: ...
    def route(
        self, path: str, handler: Handler | None = None
    ) -> Handler | Callable[[Handler], Handler]:
        """Answer ``path`` with ``handler``; without one, a decorator that does."""
        if handler is None:
            return lambda handler: self.route(path, handler)
        with self.lock:
            self.routes[path] = handler
        return handler

    def page(
        self,
        path: str,
        body: str | bytes,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        content_type: str = "text/html; charset=utf-8",
    ) -> None:
        """Serve a fixed answer at ``path`` (str bodies are sent as UTF-8)."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.route(path, lambda req: req.respond(status, data, headers, content_type))

    def redirect(self, path: str, location: str, status: int = 301) -> None:
        self.route(path, lambda req: req.respond(status, headers={"Location": location}))

    def gone(self, path: str) -> None:
        with self.lock:
            self.routes.pop(path, None)

    # -- reading -----------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def hits(self, path: str | None = None) -> list[Hit]:
        with self.lock:
            return [h for h in self.log if path is None or h.path == path]

    def received(self, path: str | None = None) -> int:
        """How many requests for ``path`` arrived, answered or not (a handler
        counts its own request)."""
        with self.lock:
            return sum(1 for p in self.arrived if path is None or p == path)

    # -- lifecycle ---------------------------------------------------------------
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up early (size limit, a killed daemon) are expected."""

    def __enter__(self) -> LocalServer:
        self._thread = threading.Thread(target=self.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()
