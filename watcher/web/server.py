"""Running the web app on uvicorn: on its own (``watcher serve``) or inside
the daemon's event loop (``watcher run --http``).

The listening socket is bound here, before uvicorn starts: a port already
taken or an address not on this machine is then one clear error before
anything else starts, where uvicorn would log it and call ``sys.exit`` from
inside the event loop (which, in the daemon, would end the checks too).

Inside the daemon, uvicorn must not take SIGTERM/SIGINT for itself: the
daemon's own handlers stop the checks, the deliveries and the server
together, in order (:class:`EmbeddedServer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from watcher.errors import WatcherError
from watcher.settings import parse_bind

log = logging.getLogger(__name__)


def listen(bind: str) -> socket.socket:
    """A socket listening on ``bind`` (HOST:PORT); WatcherError saying why not."""
    try:
        host, port = parse_bind(bind)
    except WatcherError as exc:
        raise WatcherError(f"{bind!r}: {exc}") from None
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise WatcherError(f"cannot listen on {bind}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def _config(app: ASGIApp, *, log_level: str, grace_s: float | None = None) -> uvicorn.Config:
    grace = None if grace_s is None else max(1, math.ceil(grace_s))
    # log_config=None: our logging (text or JSON) stays in charge of the format
    return uvicorn.Config(
        app,
        log_config=None,
        log_level=log_level.lower(),
        server_header=False,
        timeout_graceful_shutdown=grace,
    )


def serve(app: ASGIApp, sock: socket.socket, *, log_level: str) -> None:
    """Serve until SIGINT/SIGTERM (``watcher serve``): uvicorn stops gracefully,
    then re-raises the signal, so the process ends by it as systemd expects."""
    uvicorn.Server(_config(app, log_level=log_level)).run(sockets=[sock])


class _InLoop(uvicorn.Server):
    """uvicorn without its signal handlers: the daemon's own stay in charge."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class EmbeddedServer:
    """The web app served from the daemon's event loop, beside the checks.

    Endpoints run in Starlette's thread pool, as under ``watcher serve``, so a
    slow page never holds up the scheduler. If the server fails, the failure
    is logged and the daemon goes on checking.
    """

    def __init__(self, app: ASGIApp, sock: socket.socket, *, log_level: str, grace_s: float):
        self.sock = sock
        self.server = _InLoop(_config(app, log_level=log_level, grace_s=grace_s))
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start serving; returns once the app has started (its lifespan ran)."""
        self.task = asyncio.create_task(self._serve(), name="http")
        while not self.server.started and not self.task.done():
            await asyncio.sleep(0.01)

    async def _serve(self) -> None:
        try:
            await self.server.serve(sockets=[self.sock])
        except (Exception, SystemExit) as exc:  # uvicorn sys.exit()s when the app cannot start
            log.error("the web UI stopped; checks go on: %s", exc)
            return
        if not self.server.should_exit:
            log.error("the web UI stopped; checks go on")

    async def stop(self) -> None:
        """Stop accepting, let requests under way finish (within the grace
        period), close the socket."""
        if self.task is None:
            return
        self.server.should_exit = True
        await self.task
        self.sock.close()
