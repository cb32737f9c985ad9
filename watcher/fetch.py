"""HTTP stage: URL in, ``FetchResult`` out. The only module that imports httpx.

Every httpx exception is translated here into the ``FetchError`` tree, so the
rest of watcher never sees a library-specific error. Normal outcomes (304, 404,
other 4xx) are values; only failures that survive the retries are raised.

Retries use a small explicit loop rather than tenacity: the wait depends on the
last response (``Retry-After``), the concurrency slots must be released while
waiting, and the sleep function is injected so tests never really sleep. With
those three needs a tenacity ``AsyncRetrying`` setup would be longer than the
loop it replaces and harder to read.

Bodies are streamed and counted as they arrive (after content decoding), so a
response is abandoned as soon as it passes ``max_body_bytes``. Content decoding
is watcher/inflate.py's, not httpx's: it inflates in bounded pieces, so a few
KB of gzip or brotli that would become gigabytes are stopped at the limit too.

With ``record`` set (WATCHER_WARC), every request and response of a fetch,
redirect hops included, is kept as it crossed the wire (``FetchResult.exchanges``)
for the WARC log (watcher/warc.py): a transport wrapper copies the raw stream.
"""

from __future__ import annotations

import asyncio
import codecs
import contextvars
import email.utils
import hashlib
import logging
import math
import os
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import TracebackType
from urllib.parse import SplitResult, urlsplit, urlunsplit

import charset_normalizer
import httpcore
import httpx
from charset_normalizer.md import mess_ratio

from watcher.errors import (
    BodyTooLargeError,
    FetchError,
    FetchTimeoutError,
    HTTPStatusError,
    InvalidURLError,
    RefusedAddressError,
)
from watcher.guard import AddressPolicy, AddressRefused, GuardedBackend, Resolve
from watcher.inflate import ACCEPT_ENCODING, Decoder, DecodingError
from watcher.models import Exchange, FetchResult
from watcher.settings import FetchSettings

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

META_SNIFF_BYTES = 4096
_ALLOWED_SCHEMES = ("http", "https")
_BAD_HOST_CHARS = re.compile(r"[\s<>\"{}|\\^`]")
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
# Decode with the superset a browser would use; the declared name is often too narrow.
# Keys are Python codec names (``codecs.lookup(label).name``).
_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "big5": "big5hkscs",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
}
# Text codecs that are not character sets (codec names, as codecs.lookup gives them).
_NOT_CHARSETS = frozenset(
    {"idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape", "utf-7"}
)
# Overriding a declared charset needs evidence: this many non-ASCII characters,
# and this many undecodable ones (over UNDECODABLE_SHARE of them) or a mess
# ratio over PLAUSIBLE_MESS; then a guess that fits better by DECLARED_MARGIN.
MIN_EVIDENCE = 16
UNDECODABLE_SHARE = 0.2
PLAUSIBLE_MESS = 0.1
DECLARED_MARGIN = 0.1
MESS_SCAN_CHARS = 262_144  # judge the encoding on the start of the page ...
MESS_SAMPLE_CHARS = 8_192  # ... and on this much of its non-ASCII text
_TAG = re.compile(r"<[^<>]*>")
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def validate_url(url: str) -> str:
    """Return ``url`` normalised (lower-case scheme and host, no fragment).

    Raises ``InvalidURLError`` with a reason a user can act on, before any
    request is made.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidURLError(url, f"not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise InvalidURLError(url, "not a URL: expected http://host/... or https://host/...")
    if scheme not in _ALLOWED_SCHEMES:
        raise InvalidURLError(url, "only http and https URLs can be watched")
    host = parts.hostname
    if not host:
        raise InvalidURLError(url, "no host")
    if _BAD_HOST_CHARS.search(parts.netloc):
        raise InvalidURLError(url, "the host contains spaces or characters not allowed in a URL")
    return urlunsplit((scheme, _netloc(parts, host, port), parts.path or "/", parts.query, ""))


def _netloc(parts: SplitResult, host: str, port: int | None) -> str:
    """Rebuild the netloc with a lower-case host, keeping user info and port."""
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    userinfo, sep, _ = parts.netloc.rpartition("@")
    return f"{userinfo}{sep}{netloc}"


class _Retryable(Exception):
    """One failed attempt that may succeed later; ``error`` is raised when retries run out."""

    def __init__(self, error: FetchError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport over a connection pool whose network backend is
    the guard (watcher/guard.py), so every connection, redirect hops included,
    goes to a checked address.

    httpx 0.28 has no parameter for a network backend (only httpcore's pool
    does), so this sets ``_pool``, the one attribute the inherited methods use;
    tests/test_ssrf.py fails loudly if a new httpx stops honouring it.
    """

    def __init__(self, pool: httpcore.AsyncConnectionPool) -> None:
        self._pool = pool


def guarded_transport(
    settings: FetchSettings,
    *,
    resolve: Resolve | None = None,
    backend: httpcore.AsyncNetworkBackend | None = None,
) -> httpx.AsyncBaseTransport:
    """The transport every fetch uses: it refuses non-public addresses (except
    ``settings.allow_hosts``) at connect time. ``resolve`` and ``backend`` are
    for tests (a fake DNS, a recording connect)."""
    limits = httpx.Limits(max_connections=settings.max_connections)
    guard = GuardedBackend(
        AddressPolicy.allowing(settings.allow_hosts), resolve=resolve, backend=backend
    )
    return _GuardedTransport(
        httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=guard,
        )
    )


@dataclass(slots=True)
class _Taped:
    """A request and its response while the response body is still arriving."""

    request: httpx.Request
    response: httpx.Response
    started_ms: int
    peer_ip: str | None
    body: bytearray


#: The exchanges of the fetch attempt running in this task (None: not recording).
#: A context variable, because one client (and transport) serves every fetch.
_TAPE: contextvars.ContextVar[list[_Taped] | None] = contextvars.ContextVar(
    "watcher_fetch_tape", default=None
)


class _TapedStream(httpx.AsyncByteStream):
    """The raw response stream, copied as it is read (still content-encoded)."""

    def __init__(self, inner: httpx.AsyncByteStream, tape: bytearray) -> None:
        self._inner = inner
        self._tape = tape

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._tape += chunk
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class _RecordingTransport(httpx.AsyncBaseTransport):
    """Wraps the real transport and tapes each exchange of a recording fetch,
    redirect hops included: below httpx's redirect handling and content
    decoding, so the bytes are those the server sent."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.time_ns() // 1_000_000
        response = await self._inner.handle_async_request(request)
        tape = _TAPE.get()
        if tape is not None:
            taped = _Taped(request, response, started, _peer_ip(response), bytearray())
            tape.append(taped)
            assert isinstance(response.stream, httpx.AsyncByteStream)
            response.stream = _TapedStream(response.stream, taped.body)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _peer_ip(response: httpx.Response) -> str | None:
    """The address the response came from (asked while its connection is open)."""
    stream = response.extensions.get("network_stream")
    try:
        peer = stream.get_extra_info("server_addr") if stream is not None else None
    except OSError:
        return None
    return str(peer[0]) if isinstance(peer, tuple) and peer else None


def _exchange(taped: _Taped) -> Exchange:
    request, response = taped.request, taped.response
    version = response.extensions.get("http_version", b"HTTP/1.1")
    reason = response.extensions.get("reason_phrase", b"")
    return Exchange(
        url=str(request.url),
        method=request.method,
        request_headers=tuple(request.headers.raw),
        http_version=version.decode("ascii", "replace"),
        status=response.status_code,
        reason=reason.decode("latin-1") if isinstance(reason, bytes) else str(reason),
        response_headers=tuple(response.headers.raw),
        body=bytes(taped.body),
        peer_ip=taped.peer_ip,
        started_ms=taped.started_ms,
    )


class _RefusedRedirect(Exception):
    """A redirect to a scheme other than http/https (raised by a response hook)."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


async def _refuse_other_schemes(response: httpx.Response) -> None:
    """Stop before following a redirect to file://, ftp://, gopher://, ...

    httpx would refuse to follow it too, but with a message that does not say
    where the redirect pointed.
    """
    if not response.has_redirect_location:
        return
    location = response.headers["Location"]
    try:
        target = response.request.url.join(location)
    except httpx.InvalidURL:
        return  # httpx raises its own error for it
    if target.scheme not in _ALLOWED_SCHEMES:
        raise _RefusedRedirect(location)


def _refused(url: str, exc: AddressRefused | _RefusedRedirect) -> RefusedAddressError:
    if isinstance(exc, _RefusedRedirect):
        reason = f"refused (after a redirect): {exc.target} is not an http or https URL"
        return RefusedAddressError(url, reason)
    redirected = exc.host != httpx.URL(url).raw_host.decode("ascii")
    return RefusedAddressError(url, exc.reason(redirected=redirected))


class Fetcher:
    """One shared HTTP client with global and per-host concurrency limits.

    Use as ``async with Fetcher(settings) as fetcher: await fetcher.fetch(url)``.
    ``sleep`` and ``transport`` exist so tests can run without waiting and
    without a network. The default transport is :func:`guarded_transport`;
    environment proxies (HTTP_PROXY, ...) are not used, since a proxy would
    connect where the guard cannot check.
    """

    def __init__(
        self,
        settings: FetchSettings,
        *,
        sleep: Sleep = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        inner = transport if transport is not None else guarded_transport(settings)
        self._sleep = sleep
        self._random = random.Random()
        self._global = asyncio.Semaphore(self.settings.max_connections)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._client = httpx.AsyncClient(
            follow_redirects=True,
            http1=True,
            http2=False,
            timeout=httpx.Timeout(self.settings.timeout_s),
            limits=httpx.Limits(max_connections=self.settings.max_connections),
            headers={"User-Agent": self.settings.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            transport=_RecordingTransport(inner) if settings.record else inner,
            event_hooks={"response": [_refuse_other_schemes]},
        )

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        known: Callable[[FetchResult], bool] | None = None,
        record: bool = True,
    ) -> FetchResult:
        """GET ``url``, conditionally when ``etag``/``last_modified`` are known.

        ``known`` is asked about a body before it is decoded, with the result
        so far (status, headers, ``body_sha256``, no text): True means the
        caller already has this body, and it comes back undecoded
        (``known_body``, ``text`` None), which saves the charset work on a
        page that did not change.

        ``record=False``: no ``exchanges`` even when the fetcher records, for
        a caller that keeps no WARC record of this fetch (feed polls).

        Retries timeouts, connection errors, 5xx and 429; raises the matching
        ``FetchError`` subclass once the retries are used up.
        """
        url = validate_url(url)
        headers = _conditional_headers(etag, last_modified)
        started = time.perf_counter()
        failures = 0
        while True:
            try:
                result = await self._attempt(
                    url, headers, etag, last_modified, known, record=record
                )
            except _Retryable as failure:
                failures += 1
                if failures > self.settings.retries:
                    raise failure.error from None
                delay = self._delay(failures, failure.retry_after)
                log.info("retrying %s in %.2fs after: %s", url, delay, failure.error.reason)
                await self._sleep(delay)
                continue
            duration_ms = (time.perf_counter() - started) * 1000
            return replace(result, duration_ms=duration_ms)

    def _delay(self, failures: int, retry_after: float | None) -> float:
        """Retry-After when the server gave one, else exponential backoff with full jitter."""
        cap = self.settings.backoff_max_s
        if retry_after is not None:
            return min(max(retry_after, 0.0), cap)
        ceiling = min(cap, self.settings.backoff_base_s * 2 ** (failures - 1))
        return self._random.uniform(0, ceiling)

    @asynccontextmanager
    async def _slot(self, host: str) -> AsyncIterator[None]:
        """Hold one global and one per-host slot for the duration of an attempt."""
        per_host = self._hosts.get(host)
        if per_host is None:
            per_host = self._hosts[host] = asyncio.Semaphore(self.settings.per_host)
        async with self._global, per_host:
            yield

    async def _attempt(
        self,
        url: str,
        headers: dict[str, str],
        etag: str | None,
        last_modified: str | None,
        known: Callable[[FetchResult], bool] | None,
        *,
        record: bool,
    ) -> FetchResult:
        """One request, with every httpx failure translated."""
        tape: list[_Taped] | None = [] if self.settings.record and record else None
        token = _TAPE.set(tape)
        async with self._slot(urlsplit(url).hostname or ""):
            try:
                async with asyncio.timeout(self.settings.timeout_s):
                    result = await self._request(url, headers, etag, last_modified, known)
                if tape:
                    result = replace(result, exchanges=tuple(_exchange(t) for t in tape))
                return result
            except (AddressRefused, _RefusedRedirect) as exc:
                raise _refused(url, exc) from None
            except (TimeoutError, httpx.TimeoutException):
                reason = f"no complete answer within {self.settings.timeout_s:g}s"
                raise _Retryable(FetchTimeoutError(url, reason)) from None
            except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                raise _Retryable(FetchError(url, _describe(exc))) from None
            except httpx.TooManyRedirects:
                raise FetchError(url, "too many redirects") from None
            except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
                raise FetchError(url, _describe(exc)) from None
            finally:
                _TAPE.reset(token)

    async def _request(
        self,
        url: str,
        headers: dict[str, str],
        etag: str | None,
        last_modified: str | None,
        known: Callable[[FetchResult], bool] | None,
    ) -> FetchResult:
        async with self._client.stream("GET", url, headers=headers) as response:
            status = response.status_code
            if status == 429 or status >= 500:
                retry_after = _parse_retry_after(response.headers.get("Retry-After"))
                raise _Retryable(HTTPStatusError(url, status), retry_after)
            head = FetchResult(
                url=url,
                final_url=str(response.url),
                status=status,
                redirects=tuple(str(r.url) for r in response.history),
                etag=response.headers.get("ETag") or etag,
                last_modified=response.headers.get("Last-Modified") or last_modified,
            )
            if status == 304:
                # Read to its end (a 304 has no body): a response left unread
                # closes its connection, and the next request would open one.
                await self._read_body(url, response)
                return replace(head, not_modified=True)
            body = await self._read_body(url, response)
        content_type = response.headers.get("Content-Type")
        digest = hashlib.sha256(body).hexdigest()
        read = replace(head, body_sha256=digest, content_type=content_type, body_bytes=len(body))
        if known is not None and known(read):
            return replace(read, known_body=True)
        text, encoding = decode_body(body, content_type)
        return replace(read, text=text, encoding=encoding)

    async def _read_body(self, url: str, response: httpx.Response) -> bytes:
        """Read and decode the body, giving up as soon as it passes the limit.

        The raw stream is decoded here a bounded piece at a time (a bomb never
        inflates past the limit), yielding to the event loop between pieces
        so other fetches and the attempt's timeout keep running.
        """
        limit = self.settings.max_body_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise BodyTooLargeError(url, f"Content-Length {declared} exceeds {limit} bytes")
        decoder = Decoder(response.headers.get_list("Content-Encoding", split_commas=True))
        body = bytearray()
        received = 0
        try:
            async for raw in response.aiter_raw():
                received += len(raw)
                for piece in decoder.feed(raw):
                    if len(body) + len(piece) > limit:
                        raise BodyTooLargeError(url, f"body exceeds {limit} bytes")
                    body += piece
                    if decoder.layers:
                        await asyncio.sleep(0)
                if received > limit:  # compressed data that inflates to nothing, forever
                    raise BodyTooLargeError(url, f"body exceeds {limit} bytes")
            decoder.finish()
        except DecodingError as exc:
            raise FetchError(url, str(exc)) from None
        return bytes(body)


def _conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _describe(exc: Exception) -> str:
    """A short log-line reason: the first message in the exception's chain
    (httpx's own is sometimes empty: a reset mid-body is a bare ReadError),
    plus the system's words for the root cause when they add something
    ("All connection attempts failed (Connection refused)")."""
    messages: list[str] = []
    system = ""
    cause: BaseException | None = exc
    for _ in range(8):
        if cause is None:
            break
        if text := " ".join(str(cause).split()):
            messages.append(text)
        if isinstance(cause, OSError) and cause.errno:
            system = os.strerror(cause.errno)
        cause = cause.__cause__ or cause.__context__
    detail = messages[0] if messages else ""
    if system and system.lower() not in detail.lower():
        detail = f"{detail} ({system})" if detail else system
    kind = type(exc).__name__
    return f"{kind}: {detail}" if detail else kind


def _parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date).

    None for anything else: ``nan``, ``inf`` and negative numbers included
    (a nan wait once stalled the event loop's timer heap), so the retry falls
    back to the usual back-off.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def decode_body(body: bytes, content_type: str | None) -> tuple[str, str]:
    """Decode a page the way a browser would; return ``(text, encoding)``.

    Order: byte-order mark, Content-Type charset, ``<meta>`` charset in the
    first few KB, then detection. Only character sets count as a declaration
    (``charset=base64``, ``idna`` or ``rot13`` are ignored, as browsers do).
    A declared charset is trusted (as browsers do), so a few bad bytes become
    U+FFFD instead of a wrong second guess; only when the bytes clearly deny
    it (GBK bytes labelled UTF-8 or Shift_JIS) does a better-fitting guess win.
    """
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(name, errors="replace"), name
    declared = _normalise_encoding(_header_charset(content_type)) or _normalise_encoding(
        _meta_charset(body[:META_SNIFF_BYTES])
    )
    encoding = _choose_encoding(body, declared)
    return body.decode(encoding, errors="replace"), encoding


def _choose_encoding(body: bytes, declared: str | None) -> str:
    """The declared encoding unless the bytes clearly deny it and a guess fits better."""
    if declared is None:
        return _detect_encoding(body)
    if declared == "utf-8" and _is_utf8(body):
        return declared  # the common case, and valid UTF-8 is never an accident
    text = body.decode(declared, errors="replace")
    if not _denied(text):
        return declared
    guess = _detect_encoding(body)
    if guess == declared:
        return declared
    fits_better = _misfit(body.decode(guess, errors="replace")) + DECLARED_MARGIN < _misfit(text)
    return guess if fits_better else declared


def _denied(text: str) -> bool:
    """Decoded ``text`` is plainly not what the page says: many undecodable
    bytes, or mojibake (a mess ratio no real text has)."""
    foreign = _foreign(text)
    if foreign < MIN_EVIDENCE:
        return False  # too little to go on: a few bad bytes stay U+FFFD
    errors = text.count("\ufffd")
    if errors >= MIN_EVIDENCE and errors > foreign * UNDECODABLE_SHARE:
        return True
    return _mess(text) > PLAUSIBLE_MESS


def _misfit(text: str) -> float:
    """How badly a decoding reads: its share of undecodable characters plus
    charset_normalizer's mess ratio (0 for clean text)."""
    return text.count("\ufffd") / (_foreign(text) or 1) + _mess(text)


def _foreign(text: str) -> int:
    """How many characters of ``text`` are not ASCII."""
    return len(text) - len(text.encode("ascii", "ignore"))


def _mess(text: str) -> float:
    """charset_normalizer's mess ratio of the page's non-ASCII text runs (a
    bounded sample: markup and ASCII runs say nothing about the encoding)."""
    runs: list[str] = []
    size = 0
    for run in _TAG.split(text[:MESS_SCAN_CHARS]):
        if run.isascii() or not (run := run.strip()):
            continue
        runs.append(run)
        size += len(run)
        if size >= MESS_SAMPLE_CHARS:
            break
    return mess_ratio("\n".join(runs)[:MESS_SAMPLE_CHARS], maximum_threshold=1.0)


def _header_charset(content_type: str | None) -> str | None:
    match = _HEADER_CHARSET.search(content_type or "")
    return match.group(1) if match else None


def _meta_charset(head: bytes) -> str | None:
    match = _META_CHARSET.search(head)
    return match.group(1).decode("ascii") if match else None


def _normalise_encoding(label: str | None) -> str | None:
    """Python codec name for ``label``, widened to its superset; None when unknown."""
    if not label:
        return None
    try:
        codec = codecs.lookup(label)
    except LookupError:
        return None
    # base64, rot13, hex, zlib... turn bytes into bytes or str into str; idna,
    # punycode and the escapes are text codecs but no page's character set.
    if not codec._is_text_encoding or codec.name in _NOT_CHARSETS:
        return None
    return _SUPERSETS.get(codec.name, codec.name)


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _detect_encoding(body: bytes) -> str:
    """UTF-8 when the bytes are valid UTF-8 (cheap and by far the most common), else guess."""
    if _is_utf8(body):
        return "utf-8"
    best = charset_normalizer.from_bytes(body).best()
    return _normalise_encoding(best.encoding if best else None) or "utf-8"
