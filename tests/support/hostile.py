"""Hostile servers on 127.0.0.1: every transport fault a watched site can commit.

Each :class:`Fault` takes over one URL that served a healthy page a moment
ago, either by answering its path with a misbehaving handler on the site's
``LocalServer`` (HTTP faults), or by stopping that server and holding its port
(faults below HTTP: nothing listening, or a listener that never answers):

    with LocalServer() as site:
        site.route("/a", healthy)
        ...                       # a version is stored
        with fault.applied(site, "/a"):
            ...                   # checks of site.url("/a") meet the fault

Everything here is bounded in bytes and in time: big bodies are generated
piece by piece as the client reads them (a 1 GB body or a 3 GB bomb is never
held by the server), and every wait ends when ``site.release`` is set (on
exit) or after at most :data:`HOLD_S`. ``tests/test_faults_fetch.py`` runs the
table through the pipeline; ``bench/bench_faults_fetch.py`` measures it.
"""

from __future__ import annotations

import socket
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import brotli

from tests.support.http_server import Handler, LocalServer, Request

HOLD_S = 30.0  # the longest any hostile handler or socket keeps a client waiting
PIECE = 1 << 16  # what a streaming handler writes at a time
GB = 1 << 30


# -- faults below HTTP ---------------------------------------------------------------
class Squatter:
    """Holds a port on 127.0.0.1 after its server stopped.

    ``listen=False``: bound but not listening, so a connection is refused (and
    no other process can take the port meanwhile). ``listen=True``: connections
    are accepted and then never read from or answered, until :meth:`close`.
    """

    def __init__(self, port: int, *, listen: bool) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.accepted: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        if listen:
            self.sock.listen(16)
            self.sock.settimeout(0.05)
            self._thread = threading.Thread(target=self._accept, daemon=True)
            self._thread.start()

    def _accept(self) -> None:
        rounds = int(HOLD_S / 0.05)
        for _ in range(rounds):
            if self._closed.is_set() or len(self.accepted) >= 64:
                return
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)  # held open, never read, never answered

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join(1)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@contextmanager
def port_taken_over(site: LocalServer, *, listen: bool) -> Iterator[None]:
    """Stop ``site`` and squat on its port for the duration."""
    port = site.server_address[1]
    site.release.set()
    site.shutdown()
    site.server_close()
    squatter = Squatter(port, listen=listen)
    try:
        yield
    finally:
        squatter.close()


# -- misbehaving HTTP answers ----------------------------------------------------------
@dataclass
class Sent:
    """What a streaming handler really put on the wire (the client may hang up early)."""

    bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, n: int) -> None:
        with self.lock:
            self.bytes += n


def _stream(req: Request, pieces: Iterator[bytes], sent: Sent, release: threading.Event) -> None:
    """Write ``pieces`` until they end, the client hangs up or the server stops."""
    try:
        for piece in pieces:
            if release.is_set():
                return
            req.wfile.write(piece)
            sent.add(len(piece))
    except OSError:  # the client gave up, as it should
        return
    req.wfile.flush()


def never_answer(site: LocalServer) -> Handler:
    """Read the request, then say nothing."""

    def serve(req: Request) -> None:
        site.release.wait(HOLD_S)

    return serve


def slow_headers(site: LocalServer, gap_s: float = 0.25) -> Handler:
    """A status line, then one header line every ``gap_s``; the headers never end."""

    def serve(req: Request) -> None:
        req.send_raw(b"HTTP/1.1 200 OK\r\n")
        for n in range(int(HOLD_S / gap_s)):
            if site.release.wait(gap_s):
                return
            try:
                req.send_raw(b"X-Slow-%d: still thinking\r\n" % n)
            except OSError:
                return

    return serve


def trickle(site: LocalServer, gap_s: float = 1.0) -> Handler:
    """Complete headers, then the body a byte a second."""
    size = int(HOLD_S / gap_s)

    def serve(req: Request) -> None:
        req.send_raw(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % size
        )
        for _ in range(size):
            try:
                req.send_raw(b"x")
            except OSError:
                return
            if site.release.wait(gap_s):
                return

    return serve


def huge_body(site: LocalServer, sent: Sent, *, declared: bool, total: int = GB) -> Handler:
    """``total`` bytes of page, made a piece at a time; with or without a Content-Length."""
    piece = b"<p>" + b"x" * (PIECE - 7) + b"</p>\n"

    def pieces() -> Iterator[bytes]:
        for _ in range(total // len(piece)):
            yield b"%x\r\n%s\r\n" % (len(piece), piece) if not declared else piece
        if not declared:
            yield b"0\r\n\r\n"

    def serve(req: Request) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "text/html; charset=utf-8")
        if declared:
            req.send_header("Content-Length", str(total // len(piece) * len(piece)))
        else:
            req.send_header("Transfer-Encoding", "chunked")
        req.end_headers()
        _stream(req, pieces(), sent, site.release)

    return serve


@dataclass(frozen=True)
class Bomb:
    """A compressed stream of zero bytes, made from a few repeated segments:
    ``pieces()`` yields it as it is read, so no side ever holds it whole."""

    coding: str
    first: bytes
    again: bytes  # every later segment compresses to these same bytes
    count: int  # segments in all
    end: Callable[[], bytes]  # what closes the stream (made only if reached)
    end_length: int

    @property
    def length(self) -> int:
        return len(self.first) + len(self.again) * (self.count - 1) + self.end_length

    def pieces(self) -> Iterator[bytes]:
        yield self.first
        for _ in range(self.count - 1):
            yield self.again
        yield self.end()


def gzip_bomb(size: int = GB) -> Bomb:
    """``size`` zero bytes (a multiple of 1 MiB) as valid gzip, ~1 KB per MiB.

    After a full flush the compressor starts afresh, so every later MiB
    compresses to the same bytes; the trailer's CRC is computed only for a
    client that reads that far.
    """
    mib = bytes(1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = packer.compress(mib) + packer.flush(zlib.Z_FULL_FLUSH)
    again = packer.compress(mib) + packer.flush(zlib.Z_FULL_FLUSH)
    last_block = packer.flush()[:-8]  # the final empty block, without the trailer
    count = size >> 20

    def end() -> bytes:
        crc = 0
        for _ in range(count):
            crc = zlib.crc32(mib, crc)
        return last_block + struct.pack("<II", crc, size & 0xFFFFFFFF)

    return Bomb("gzip", first, again, count, end, len(last_block) + 8)


def brotli_bomb(size: int = 3 * GB) -> Bomb:
    """``size`` zero bytes (a multiple of 16 MiB) as valid brotli, 24 bytes
    per 16 MiB: 3 GB in under 5 KB."""
    block = bytes(1 << 24)
    packer = brotli.Compressor(quality=2, lgwin=24)
    first = packer.process(block) + packer.flush()
    again = packer.process(block) + packer.flush()
    end = packer.finish()
    return Bomb("br", first, again, size >> 24, lambda: end, len(end))


def bomb(site: LocalServer, sent: Sent, coding: str) -> Handler:
    """A small compressed answer that inflates to gigabytes (made now, once)."""
    made = gzip_bomb() if coding == "gzip" else brotli_bomb()

    def serve(req: Request) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "text/html; charset=utf-8")
        req.send_header("Content-Encoding", coding)
        req.send_header("Content-Length", str(made.length))
        req.end_headers()
        _stream(req, made.pieces(), sent, site.release)

    return serve


def short_body(declared: int = 5000, sent: int = 100) -> Handler:
    """A Content-Length it does not keep: part of the body, then the connection closes."""

    def serve(req: Request) -> None:
        req.send_raw(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % declared
        )
        req.send_raw(b"<p>" + b"x" * (sent - 3))
        req.hang_up()

    return serve


def reset_mid_body(declared: int = 100_000, sent: int = 10_000) -> Handler:
    """Part of the body, then a TCP reset."""

    def serve(req: Request) -> None:
        req.send_raw(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % declared
        )
        req.send_raw(b"<p>" + b"x" * (sent - 3))
        req.hang_up(reset=True)

    return serve


def broken_chunked() -> Handler:
    """A chunked body whose second chunk header is not hexadecimal."""

    def serve(req: Request) -> None:
        req.send_raw(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"10\r\n<html><p>hello, \r\nzz; not a size\r\nworld</p>\r\n0\r\n\r\n"
        )
        req.hang_up()

    return serve


def status(code: int, retry_after: str | Callable[[], str] | None = None) -> Handler:
    """An error status; ``retry_after`` is sent as it is (a callable: made per request)."""

    def serve(req: Request) -> None:
        value = retry_after() if callable(retry_after) else retry_after
        req.respond(code, b"<h1>busy</h1>", {"Retry-After": value or ""})

    return serve


def http_date_in(seconds: float) -> Callable[[], str]:
    return lambda: format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)


def redirect_loop(path: str) -> Handler:
    """``path`` -> ``path?hop=1`` -> ``path`` -> ... for ever."""
    return lambda req: req.respond(
        302, headers={"Location": path if "?" in req.path else f"{path}?hop=1"}
    )


def redirect_to(location: str) -> Handler:
    return lambda req: req.respond(302, headers={"Location": location})


# -- the table -------------------------------------------------------------------------
@dataclass(frozen=True)
class Fault:
    """One way a watched URL can fail below the content.

    ``reason`` is a regular expression the recorded check reason must match;
    ``status`` the HTTP status the check row must record (None: no answer).
    ``waits``: the client can only wait out its timeout; any other fault is
    over in about the retries' back-off.
    """

    name: str
    reason: str
    status: int | None = None
    handler: Callable[[LocalServer, Sent, str], Handler] | None = None
    port: str | None = None  # "refused" or "silent": the fault is below HTTP
    waits: bool = False

    @contextmanager
    def applied(self, site: LocalServer, path: str) -> Iterator[Sent]:
        """Make ``site``'s ``path`` (or its whole port) commit this fault;
        yields what streaming handlers manage to send."""
        sent = Sent()
        if self.port is not None:
            with port_taken_over(site, listen=self.port == "silent"):
                yield sent
            return
        assert self.handler is not None
        site.route(path, self.handler(site, sent, path))
        yield sent


TIMEOUT = r"^no complete answer within [\d.]+s$"
FAULTS: tuple[Fault, ...] = (
    Fault("refused", r"^ConnectError: .*Connection refused", port="refused"),
    Fault("silent", TIMEOUT, port="silent", waits=True),
    Fault("no-answer", TIMEOUT, handler=lambda site, _, __: never_answer(site), waits=True),
    Fault("slow-headers", TIMEOUT, handler=lambda site, _, __: slow_headers(site), waits=True),
    Fault("trickle", TIMEOUT, handler=lambda site, _, __: trickle(site), waits=True),
    Fault(
        "1GB-declared",
        r"^Content-Length \d+ exceeds \d+ bytes$",
        handler=lambda site, sent, _: huge_body(site, sent, declared=True),
    ),
    Fault(
        "1GB-chunked",
        r"^body exceeds \d+ bytes$",
        handler=lambda site, sent, _: huge_body(site, sent, declared=False),
    ),
    Fault("gzip-bomb", r"^body exceeds \d+ bytes$", handler=lambda s, n, _: bomb(s, n, "gzip")),
    Fault("brotli-bomb", r"^body exceeds \d+ bytes$", handler=lambda s, n, _: bomb(s, n, "br")),
    Fault(
        "short-body",
        r"^RemoteProtocolError: .*received 100 bytes, expected 5000",
        handler=lambda *_: short_body(),
    ),
    Fault("reset-mid-body", r"^ReadError: .*reset", handler=lambda *_: reset_mid_body()),
    Fault("broken-chunked", r"^RemoteProtocolError: .*chunk", handler=lambda *_: broken_chunked()),
    Fault("500", r"^HTTP 500$", 500, handler=lambda *_: status(500)),
    Fault("502", r"^HTTP 502$", 502, handler=lambda *_: status(502)),
    Fault("503", r"^HTTP 503$", 503, handler=lambda *_: status(503)),
    Fault("429-seconds", r"^HTTP 429$", 429, handler=lambda *_: status(429, "2")),
    Fault("429-http-date", r"^HTTP 429$", 429, handler=lambda *_: status(429, http_date_in(60))),
    Fault("429-huge", r"^HTTP 429$", 429, handler=lambda *_: status(429, "999999999999")),
    Fault("429-nan", r"^HTTP 429$", 429, handler=lambda *_: status(429, "nan")),
    Fault("429-inf", r"^HTTP 429$", 429, handler=lambda *_: status(429, "inf")),
    Fault("429-garbage", r"^HTTP 429$", 429, handler=lambda *_: status(429, "soon, ish")),
    Fault(
        "redirect-loop", r"^too many redirects$", handler=lambda _, __, path: redirect_loop(path)
    ),
    Fault(
        "redirect-file",
        r"redirect\W.*\bfile:/.* not an http or https URL$",
        handler=lambda *_: redirect_to("file:///etc/passwd"),
    ),
    Fault(
        "redirect-ftp",
        r"redirect\W.*\bftp://127\.0\.0\.1/pub/ is not an http or https URL$",
        handler=lambda *_: redirect_to("ftp://127.0.0.1/pub/"),
    ),
)
