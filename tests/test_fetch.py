"""fetch.py against a real HTTP server on 127.0.0.1, programmed per test."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import brotli
import pytest

from tests.support.http_server import LocalServer, Request
from watcher.errors import (
    BodyTooLargeError,
    FetchError,
    FetchTimeoutError,
    HTTPStatusError,
    InvalidURLError,
)
from watcher.fetch import Fetcher, _parse_retry_after, decode_body, validate_url
from watcher.models import FetchResult
from watcher.settings import FetchSettings, Settings

# Enough running Chinese text for charset detection to be sure of itself.
CHINESE = (
    "美国总统拜登与中国国家主席习近平于北京时间星期二开始视频会晤。"
    "双方正在就共同关切的领域展开对话，预计将持续数个小时。"
    "但外界对会晤可能达成的成果期待不高。本次会晤由拜登总统发起，"
    "双方的开场白向外界公开，之后双方进入闭门会议。"
) * 4


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as site:
        yield site


class RecordingSleep:
    """Stands in for asyncio.sleep so retries cost no wall time."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def fetch_settings(**changes: Any) -> FetchSettings:
    """The default settings (as ``watcher run`` uses them) with ``changes``;
    127.0.0.1, where the test server runs, is allowed (tests/test_ssrf.py
    covers the default refusal)."""
    defaults = Settings.from_env({}, allow_hosts="127.0.0.1").fetch_settings()
    return replace(defaults, **changes)


FAST = fetch_settings(timeout_s=2, retries=2, backoff_base_s=0.01, backoff_max_s=0.05)


def fetch(
    url: str,
    settings: FetchSettings = FAST,
    sleep: RecordingSleep | None = None,
    **kwargs: str,
) -> FetchResult:
    async def run() -> FetchResult:
        async with Fetcher(settings, sleep=sleep or RecordingSleep()) as fetcher:
            return await fetcher.fetch(url, **kwargs)

    return asyncio.run(run())


def test_plain_200_has_text_sha256_and_timing(server: LocalServer) -> None:
    body = "<html><body><p>héllo</p></body></html>".encode()

    @server.route("/page")
    def _(req: Request) -> None:
        req.respond(200, body, {"ETag": '"v1"', "Last-Modified": "Tue, 16 Nov 2021 02:00:00 GMT"})

    result = fetch(server.url("/page"))
    assert result.status == 200
    assert result.text == body.decode()
    assert result.body_sha256 == hashlib.sha256(body).hexdigest()
    assert result.encoding == "utf-8"
    assert result.etag == '"v1"'
    assert result.last_modified == "Tue, 16 Nov 2021 02:00:00 GMT"
    assert result.final_url == result.url == server.url("/page")
    assert result.redirects == ()
    assert result.duration_ms > 0
    assert not result.not_modified


def test_conditional_get_304_is_not_modified(server: LocalServer) -> None:
    seen: dict[str, str | None] = {}

    @server.route("/page")
    def _(req: Request) -> None:
        seen["etag"] = req.headers.get("If-None-Match")
        seen["since"] = req.headers.get("If-Modified-Since")
        req.respond(304)

    since = "Tue, 16 Nov 2021 02:00:00 GMT"
    result = fetch(server.url("/page"), etag='"v1"', last_modified=since)
    assert seen == {"etag": '"v1"', "since": since}
    assert result.not_modified
    assert result.status == 304
    assert result.text is None
    assert result.body_sha256 is None
    assert result.etag == '"v1"'


def test_redirect_chain_is_recorded(server: LocalServer) -> None:
    @server.route("/a")
    def _(req: Request) -> None:
        req.respond(301, headers={"Location": "/b"})

    @server.route("/b")
    def _(req: Request) -> None:
        req.respond(302, headers={"Location": server.url("/c")})

    @server.route("/c")
    def _(req: Request) -> None:
        req.respond(200, b"done")

    result = fetch(server.url("/a#frag"))
    assert result.url == server.url("/a")
    assert result.redirects == (server.url("/a"), server.url("/b"))
    assert result.final_url == server.url("/c")
    assert result.text == "done"


def _serve(server: LocalServer, path: str, body: bytes, content_type: str) -> None:
    server.page(path, body, content_type=content_type)


def test_gbk_declared_in_header(server: LocalServer) -> None:
    html = f"<html><body><p>{CHINESE}</p></body></html>"
    _serve(server, "/gbk", html.encode("gbk"), "text/html; charset=GBK")
    result = fetch(server.url("/gbk"))
    assert result.encoding == "gb18030"
    assert result.text == html


def test_gbk_declared_only_in_meta(server: LocalServer) -> None:
    html = f'<html><head><meta charset="gb2312"></head><body><p>{CHINESE}</p></body></html>'
    _serve(server, "/gbk", html.encode("gbk"), "text/html")
    result = fetch(server.url("/gbk"))
    assert result.encoding == "gb18030"
    assert result.text == html


def test_http_equiv_meta_is_read() -> None:
    html = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=big5">'
        f"</head><body>{CHINESE}</body></html>"
    )
    text, encoding = decode_body(html.encode("big5", errors="ignore"), "text/html")
    assert encoding == "big5hkscs"
    assert "拜登" in text


@pytest.mark.parametrize(("codec", "expected"), [("gbk", "gb18030"), ("big5", "big5hkscs")])
def test_undeclared_chinese_is_detected(server: LocalServer, codec: str, expected: str) -> None:
    html = f"<html><body><p>{CHINESE}</p></body></html>"
    if codec == "big5":
        html = html.replace("习近平", "習近平").replace("双方", "雙方")
    _serve(server, "/page", html.encode(codec, errors="ignore"), "text/html")
    result = fetch(server.url("/page"))
    assert result.encoding == expected
    assert "拜登" in (result.text or "")
    assert "\ufffd" not in (result.text or "")


def test_declared_charset_is_trusted_with_replacement() -> None:
    text, encoding = decode_body(b"ok \xff", "text/html; charset=utf-8")
    assert (text, encoding) == ("ok \ufffd", "utf-8")


def test_utf8_bom_wins() -> None:
    text, encoding = decode_body(b"\xef\xbb\xbfhi", "text/html; charset=gbk")
    assert (text, encoding) == ("hi", "utf-8")


@pytest.mark.parametrize("coding", ["gzip", "br"])
def test_compressed_responses_are_decoded(server: LocalServer, coding: str) -> None:
    raw = f"<html><body>{CHINESE}</body></html>".encode()
    packed = gzip.compress(raw) if coding == "gzip" else brotli.compress(raw)

    @server.route("/z")
    def _(req: Request) -> None:
        assert coding in req.headers.get("Accept-Encoding", "")
        req.respond(200, packed, {"Content-Encoding": coding})

    result = fetch(server.url("/z"))
    assert result.text == raw.decode()
    assert result.body_sha256 == hashlib.sha256(raw).hexdigest()


def test_500_then_200_succeeds_after_retry(server: LocalServer) -> None:
    @server.route("/flaky")
    def _(req: Request) -> None:
        if server.received("/flaky") == 1:
            req.respond(500, b"oops")
        else:
            req.respond(200, b"fine")

    sleep = RecordingSleep()
    result = fetch(server.url("/flaky"), sleep=sleep)
    assert result.status == 200
    assert result.text == "fine"
    assert len(sleep.delays) == 1
    assert 0 <= sleep.delays[0] <= FAST.backoff_base_s


def test_429_retry_after_is_honoured(server: LocalServer) -> None:
    @server.route("/busy")
    def _(req: Request) -> None:
        if server.received("/busy") == 1:
            req.respond(429, headers={"Retry-After": "7"})
        else:
            req.respond(200, b"ok")

    sleep = RecordingSleep()
    settings = fetch_settings(retries=1, backoff_max_s=10)
    assert fetch(server.url("/busy"), settings, sleep).status == 200
    assert sleep.delays == [7.0]


def test_retry_after_is_capped(server: LocalServer) -> None:
    server.route("/busy", lambda req: req.respond(429, headers={"Retry-After": "3600"}))
    sleep = RecordingSleep()
    with pytest.raises(HTTPStatusError) as info:
        fetch(server.url("/busy"), fetch_settings(retries=2, backoff_max_s=30), sleep)
    assert info.value.status == 429
    assert sleep.delays == [30.0, 30.0]


def test_retry_after_http_date() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert _parse_retry_after(later, now) == 90
    assert _parse_retry_after(format_datetime(now - timedelta(hours=1), usegmt=True), now) == 0
    assert _parse_retry_after("soon", now) is None
    assert _parse_retry_after(None) is None


def test_backoff_grows_exponentially_with_jitter(server: LocalServer) -> None:
    server.route("/down", lambda req: req.respond(503, b"down"))
    sleep = RecordingSleep()
    settings = fetch_settings(retries=3, backoff_base_s=1, backoff_max_s=3)
    with pytest.raises(HTTPStatusError) as info:
        fetch(server.url("/down"), settings, sleep)
    assert info.value.status == 503
    assert info.value.url == server.url("/down")
    assert server.received("/down") == 4
    assert [d <= cap for d, cap in zip(sleep.delays, [1, 2, 3], strict=True)] == [True] * 3


def test_stalled_server_raises_timeout(server: LocalServer) -> None:
    @server.route("/stall")
    def _(req: Request) -> None:
        server.release.wait(5)

    settings = fetch_settings(timeout_s=0.2, retries=1, backoff_base_s=0.01)
    started = time.perf_counter()
    with pytest.raises(FetchTimeoutError):
        fetch(server.url("/stall"), settings)
    assert time.perf_counter() - started < 2
    assert server.received("/stall") == 2


def test_slow_drip_body_hits_total_timeout(server: LocalServer) -> None:
    """httpx's read timeout is per chunk; the attempt as a whole is bounded too."""

    @server.route("/drip")
    def _(req: Request) -> None:
        req.send_response(200)
        req.send_header("Content-Length", "1000")
        req.end_headers()
        for _ in range(100):
            req.send_raw(b"x")
            if server.release.wait(0.05):
                return

    settings = fetch_settings(timeout_s=0.3, retries=0)
    with pytest.raises(FetchTimeoutError):
        fetch(server.url("/drip"), settings)


def _endless(server: LocalServer, path: str, *, content_length: bool) -> dict[str, int]:
    """Serve up to 64 MiB in 64 KiB pieces, counting what actually went out."""
    sent = {"bytes": 0}
    chunk = b"x" * 65536
    total = 1024 * len(chunk)

    @server.route(path)
    def _(req: Request) -> None:
        req.send_response(200)
        if content_length:
            req.send_header("Content-Length", str(total))
        else:
            req.send_header("Transfer-Encoding", "chunked")
        req.end_headers()
        try:
            while sent["bytes"] < total:
                if content_length:
                    req.wfile.write(chunk)
                else:
                    req.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent["bytes"] += len(chunk)
        except OSError:
            return

    return sent


@pytest.mark.parametrize("content_length", [True, False])
def test_body_over_limit_is_abandoned(server: LocalServer, content_length: bool) -> None:
    sent = _endless(server, "/big", content_length=content_length)
    with pytest.raises(BodyTooLargeError) as info:
        fetch(server.url("/big"), fetch_settings(max_body_bytes=100_000))
    assert "100000" in str(info.value)
    assert sent["bytes"] < 32 * 1024 * 1024


def test_404_is_a_value(server: LocalServer) -> None:
    server.route("/gone", lambda req: req.respond(404, b"<p>not here</p>"))
    result = fetch(server.url("/gone"))
    assert result.status == 404
    assert result.gone
    assert result.text == "<p>not here</p>"


def test_403_is_a_value_not_retried(server: LocalServer) -> None:
    server.route("/no", lambda req: req.respond(403, b"forbidden"))
    sleep = RecordingSleep()
    result = fetch(server.url("/no"), sleep=sleep)
    assert (result.status, result.gone) == (403, False)
    assert sleep.delays == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/file", "only http and https"),
        ("not a url", "not a URL"),
        ("http://", "no host"),
        ("https:///path", "no host"),
        ("javascript:alert(1)", "only http and https"),
        ("http://exa mple.com/", "not allowed"),
    ],
)
def test_invalid_urls_raise_before_any_request(url: str, reason: str) -> None:
    with pytest.raises(InvalidURLError, match=reason):
        fetch(url)


def test_validate_url_normalises() -> None:
    assert validate_url(" HTTPS://News.Example.COM/a/b?q=1#top ") == (
        "https://news.example.com/a/b?q=1"
    )
    assert validate_url("http://Example.com") == "http://example.com/"
    assert validate_url("http://user@[::1]:8080/x") == "http://user@[::1]:8080/x"


def test_connection_refused_is_fetch_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleep = RecordingSleep()
    with pytest.raises(FetchError) as info:
        fetch(f"http://127.0.0.1:{port}/", sleep=sleep)
    assert type(info.value) is FetchError
    assert len(sleep.delays) == FAST.retries


def test_per_host_limit_is_respected(server: LocalServer) -> None:
    active = {"now": 0, "peak": 0}
    lock = threading.Lock()

    @server.route("/slow")
    def _(req: Request) -> None:
        with lock:
            active["now"] += 1
            active["peak"] = max(active["peak"], active["now"])
        time.sleep(0.05)
        with lock:
            active["now"] -= 1
        req.respond(200, b"ok")

    settings = fetch_settings(per_host=2, max_connections=10)

    async def run() -> list[FetchResult]:
        async with Fetcher(settings) as fetcher:
            urls = [server.url(f"/slow?n={i}") for i in range(8)]
            return await asyncio.gather(*(fetcher.fetch(u) for u in urls))

    results = asyncio.run(run())
    assert all(r.status == 200 for r in results)
    assert active["peak"] == 2


def test_a_body_the_caller_knows_comes_back_undecoded(server: LocalServer) -> None:
    body = f"<html><body><p>{CHINESE}</p></body></html>".encode("gb18030")
    digest = hashlib.sha256(body).hexdigest()

    @server.route("/page")
    def _(req: Request) -> None:
        req.respond(200, body, {"Content-Type": "text/html; charset=gbk"})

    asked: list[FetchResult] = []

    def known(result: FetchResult) -> bool:
        asked.append(result)
        return result.body_sha256 == digest

    async def run(known: Callable[[FetchResult], bool]) -> FetchResult:
        async with Fetcher(FAST) as fetcher:
            return await fetcher.fetch(server.url("/page"), known=known)

    result = asyncio.run(run(known))
    assert result.known_body and result.text is None and result.encoding is None
    assert (result.status, result.body_sha256, result.body_bytes) == (200, digest, len(body))
    [seen] = asked  # asked once, before decoding: headers and hash, no text
    assert seen.text is None and seen.content_type == "text/html; charset=gbk"

    other = asyncio.run(run(lambda result: False))
    assert not other.known_body and other.text is not None and CHINESE in other.text


def test_304s_keep_their_connection_open_for_the_next_request(server: LocalServer) -> None:
    """A 304 is read to its (empty) end: left unread, it closed its keep-alive
    connection, and every conditional check paid for a new one."""
    ports: list[int] = []

    @server.route("/page")
    def _(req: Request) -> None:
        ports.append(req.client_address[1])
        req.respond(304, headers={"ETag": '"v1"'})

    async def run() -> list[FetchResult]:
        async with Fetcher(FAST) as fetcher:
            return [await fetcher.fetch(server.url("/page"), etag='"v1"') for _ in range(5)]

    assert all(result.not_modified for result in asyncio.run(run()))
    assert len(ports) == 5 and len(set(ports)) == 1
