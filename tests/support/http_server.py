"""A real HTTP server on 127.0.0.1 that tests program per path, and that logs
every request it answers (path, start and end time, headers).

    with LocalServer() as site:
        site.page("/news/1", "<html>...</html>")
        site.route("/flaky", lambda req: req.respond(500))
        url = site.url("/news/1")

Routes may be changed while clients run (the newsroom edits a page between
checks). ``delay`` (or ``delays[path]``) slows answers down, so daemons
overlap in time and signals arrive mid-fetch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

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
            handler = self.server.routes.get(self.path)
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
        self._thread: threading.Thread | None = None

    # -- programming -------------------------------------------------------------
    def route(self, path: str, handler: Handler) -> None:
        with self.lock:
            self.routes[path] = handler

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
        self.shutdown()
        self.server_close()
