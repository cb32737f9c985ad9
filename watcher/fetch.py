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
response is abandoned as soon as it passes ``max_body_bytes``.
"""

from __future__ import annotations

import asyncio
import codecs
import email.utils
import hashlib
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from types import TracebackType
from urllib.parse import SplitResult, urlsplit, urlunsplit

import charset_normalizer
import httpx

from watcher.errors import (
    BodyTooLargeError,
    FetchError,
    FetchTimeoutError,
    HTTPStatusError,
    InvalidURLError,
)
from watcher.models import FetchResult
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
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
}
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


class Fetcher:
    """One shared HTTP client with global and per-host concurrency limits.

    Use as ``async with Fetcher(settings) as fetcher: await fetcher.fetch(url)``.
    ``sleep`` and ``transport`` exist so tests can run without waiting and
    without a network.
    """

    def __init__(
        self,
        settings: FetchSettings,
        *,
        sleep: Sleep = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
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
            headers={"User-Agent": self.settings.user_agent},
            transport=transport,
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
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """GET ``url``, conditionally when ``etag``/``last_modified`` are known.

        Retries timeouts, connection errors, 5xx and 429; raises the matching
        ``FetchError`` subclass once the retries are used up.
        """
        url = validate_url(url)
        headers = _conditional_headers(etag, last_modified)
        started = time.perf_counter()
        failures = 0
        while True:
            try:
                result = await self._attempt(url, headers, etag, last_modified)
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
        self, url: str, headers: dict[str, str], etag: str | None, last_modified: str | None
    ) -> FetchResult:
        """One request, with every httpx failure translated."""
        async with self._slot(urlsplit(url).hostname or ""):
            try:
                async with asyncio.timeout(self.settings.timeout_s):
                    return await self._request(url, headers, etag, last_modified)
            except (TimeoutError, httpx.TimeoutException):
                reason = f"no complete answer within {self.settings.timeout_s:g}s"
                raise _Retryable(FetchTimeoutError(url, reason)) from None
            except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                raise _Retryable(FetchError(url, _describe(exc))) from None
            except httpx.TooManyRedirects:
                raise FetchError(url, "too many redirects") from None
            except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
                raise FetchError(url, _describe(exc)) from None

    async def _request(
        self, url: str, headers: dict[str, str], etag: str | None, last_modified: str | None
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
                return replace(head, not_modified=True)
            body = await self._read_body(url, response)
        text, encoding = decode_body(body, response.headers.get("Content-Type"))
        digest = hashlib.sha256(body).hexdigest()
        return replace(head, text=text, body_sha256=digest, encoding=encoding)

    async def _read_body(self, url: str, response: httpx.Response) -> bytes:
        """Read the decompressed body, giving up as soon as it passes the limit."""
        limit = self.settings.max_body_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise BodyTooLargeError(url, f"Content-Length {declared} exceeds {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise BodyTooLargeError(url, f"body exceeds {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def _conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _describe(exc: Exception) -> str:
    """A short log-line reason; httpx messages are sometimes empty."""
    detail = str(exc).strip()
    kind = type(exc).__name__
    return f"{kind}: {detail}" if detail else kind


def _parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def decode_body(body: bytes, content_type: str | None) -> tuple[str, str]:
    """Decode a page the way a browser would; return ``(text, encoding)``.

    Order: byte-order mark, Content-Type charset, ``<meta>`` charset in the
    first few KB, then detection. A declared charset is trusted (as browsers
    do), so a few bad bytes become U+FFFD instead of a wrong second guess.
    """
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(name, errors="replace"), name
    declared = _normalise_encoding(_header_charset(content_type)) or _normalise_encoding(
        _meta_charset(body[:META_SNIFF_BYTES])
    )
    encoding = declared or _detect_encoding(body)
    return body.decode(encoding, errors="replace"), encoding


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
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return _SUPERSETS.get(name, name)


def _detect_encoding(body: bytes) -> str:
    """UTF-8 when the bytes are valid UTF-8 (cheap and by far the most common), else guess."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    best = charset_normalizer.from_bytes(body).best()
    return _normalise_encoding(best.encoding if best else None) or "utf-8"
