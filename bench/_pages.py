"""A local news site for bench_daemon.py: N full article pages on 127.0.0.1.

Runs in its own process (``start_site``), so the daemon's CPU time is
measured alone. Page ``i`` is a corpus snapshot body wrapped into a full page
(head with og tags, canonical, JSON-LD, inline CSS, ad scripts, nav, a
related-links aside, a footer and a ``__NEXT_DATA__`` blob) padded to a
deterministic size between 30 and 80 KB. Its bytes depend only on ``i`` and
the site state:

- ``now``: the simulated clock; the byline's "N 分钟前" is computed from it,
  so a tick between two captures is a consistent relative time (noise);
- ``tick``: the ad slot's id and the ad script's cache-buster (noise outside
  the article);
- ``edits[i]``: how many times page i's first paragraph was really edited.

The server is a raw asyncio protocol speaking just enough HTTP/1.1:
keep-alive, Content-Length, ETag / Last-Modified, and ``If-None-Match`` ->
304 when ``conditional`` is on. ``GET /_control?...`` changes the state
(``now``, ``tick``, ``edit=1`` edits 10% of pages, ``conditional=0|1``) and
rebuilds every page before answering; ``GET /_stats`` reports the server's
CPU seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from watcher import snapshot  # the project's own reader of the seed format
from watcher.errors import SnapshotFormatError

MIN_PAGE = 30_000
MAX_PAGE = 80_000
MAX_BODY = 60_000  # corpus bodies larger than this would not fit a 80 KB page
MIN_BODY = 1_500
MINUTE_MS = 60_000
EDIT_SHARE = 10  # one page in ten per edit round

CSS = (
    "body{margin:0;font-family:-apple-system,'PingFang SC','Noto Sans CJK SC',sans-serif}"
    ".site-header{background:#b80000;color:#fff;padding:8px 16px}"
    ".site-header a{color:#fff;margin-right:12px;text-decoration:none}"
    ".ad-slot{min-height:90px;background:#f2f2f2;margin:12px auto;max-width:970px}"
    "main{max-width:680px;margin:0 auto;padding:0 16px;line-height:1.7}"
    ".byline{color:#555;font-size:14px}.related li{margin:6px 0}"
    "footer{background:#222;color:#ccc;padding:24px 16px;font-size:13px}"
) * 6
NAV = "".join(
    f'<a href="/section/{k}" class="nav-link nav-{k}">栏目 {k}</a>'
    for k in ("news", "world", "china", "business", "science", "sport", "culture", "video")
)
FOOTER = (
    '<footer class="site-footer"><nav>'
    + "".join(f'<a href="/about/{k}">关于我们 {k}</a> ' for k in range(20))
    + "</nav><p>© 2021 Example News. 版权所有，未经许可不得转载。</p></footer>"
)


@dataclass(frozen=True, slots=True)
class Article:
    title: str
    body: str


def load_articles(corpus: Path) -> list[Article]:
    """Corpus snapshot bodies that fit a 30-80 KB page and have paragraphs."""
    out: list[Article] = []
    for path in sorted((corpus / "snapshots").glob("*/*.md")):
        try:
            snap = snapshot.parse(snapshot.decode(path.read_bytes(), str(path)), source=str(path))
        except SnapshotFormatError:
            continue
        size = len(snap.body.encode("utf-8"))
        if MIN_BODY <= size <= MAX_BODY and "</p>" in snap.body:
            out.append(Article(" ".join(snap.title.split()) or path.stem, snap.body))
    return out


def _mix(i: int, salt: int = 0) -> int:
    return int.from_bytes(hashlib.blake2b(f"{i}:{salt}".encode(), digest_size=8).digest())


def _esc(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _relative(minutes: int) -> str:
    return f"{minutes} 分钟前" if minutes < 60 else f"{minutes // 60} 小时前"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Site:
    """What the site serves now; every page is rebuilt when the state changes."""

    articles: list[Article]
    n: int
    base: str = "http://127.0.0.1"
    start_ms: int = 1_637_030_584_000
    now_ms: int = 1_637_030_584_000
    tick: int = 0
    conditional: bool = False
    edit_rounds: int = 0
    edits: list[int] = field(default_factory=list)
    pages: list[tuple[bytes, str, str]] = field(default_factory=list)

    def url(self, i: int) -> str:
        return f"{self.base}/news/{i:05d}"

    def published_ms(self, i: int) -> int:
        return self.start_ms - (3 + _mix(i, 1) % 40) * MINUTE_MS

    def page(self, i: int) -> str:
        article = self.articles[i % len(self.articles)]
        title = _esc(f"{article.title} ({i})")
        url = self.url(i)
        published = self.published_ms(i)
        edits = self.edits[i] if self.edits else 0
        modified = published + edits * 7 * MINUTE_MS
        body = article.body
        if edits:
            cut = body.find("</p>")
            body = f"{body[:cut]}（更新 {edits}：编辑补充了新的细节和一位官员的回应。）{body[cut:]}"
        minutes = max(1, (self.now_ms - published) // MINUTE_MS)
        ad = hashlib.md5(f"{i}:{self.tick}".encode()).hexdigest()[:12]
        ld = json.dumps(
            {
                "@context": "https://schema.org",
                "@type": "NewsArticle",
                "headline": f"{article.title} ({i})",
                "datePublished": _iso(published),
                "dateModified": _iso(modified),
                "author": [{"@type": "Person", "name": f"记者 {i % 37}"}],
                "mainEntityOfPage": url,
            },
            ensure_ascii=False,
        )
        related = "".join(
            f'<li><a href="/news/{(i + k * 97) % self.n:05d}" class="related-link">'
            f"{_esc(self.articles[(i + k) % len(self.articles)].title)}</a></li>"
            for k in range(1, 16)
        )
        head = (
            '<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{title} - Example News 中文</title>\n"
            f'<meta property="og:title" content="{title}">\n'
            f'<meta property="og:description" content="{title}：来自 Example News 的报道">\n'
            f'<meta property="og:url" content="{url}">\n<meta property="og:type" content="article">\n'
            f'<meta property="article:published_time" content="{_iso(published)}">\n'
            f'<meta property="article:modified_time" content="{_iso(modified)}">\n'
            f'<link rel="canonical" href="{url}">\n'
            '<link rel="stylesheet" href="/static/site.css">\n'
            f"<style>{CSS}</style>\n"
            f'<script type="application/ld+json">{ld}</script>\n'
            f'<script async src="https://ads.example/gpt.js?cb={ad}"></script>\n'
            "</head>\n<body>\n"
            f'<header class="site-header"><nav>{NAV}</nav></header>\n'
            f'<div class="ad-slot ad-top" id="ad-{ad}" data-slot="top-{ad}"></div>\n'
            '<main role="main" class="article">\n'
            f'<p class="byline"><span>Example News 记者</span> '
            f'<time datetime="{_iso(published)}">{_relative(minutes)}</time></p>\n'
            f"{body}\n</main>\n"
            f'<aside class="related"><h2>相关内容</h2><ul>{related}</ul></aside>\n'
            f"{FOOTER}\n"
        )
        tail = f'<script>window.__ads={{"slot":"{ad}","ts":{self.now_ms}}};</script>\n</body>\n</html>\n'
        target = MIN_PAGE + _mix(i, 2) % (MAX_PAGE - MIN_PAGE)
        used = len(head.encode()) + len(tail.encode())
        return head + _next_data(i, max(0, target - used)) + tail

    def rebuild(self) -> None:
        pages = []
        for i in range(self.n):
            data = self.page(i).encode("utf-8")
            etag = '"' + hashlib.blake2b(data, digest_size=10).hexdigest() + '"'
            modified = self.published_ms(i) + (self.edits[i] if self.edits else 0) * 7 * MINUTE_MS
            pages.append((data, etag, formatdate(modified / 1000, usegmt=True)))
        self.pages = pages

    def control(self, query: dict[str, list[str]]) -> dict[str, object]:
        if "now" in query:
            self.now_ms = int(query["now"][0])
        if "start" in query:
            self.start_ms = int(query["start"][0])
        if "tick" in query:
            self.tick = int(query["tick"][0])
        if "conditional" in query:
            self.conditional = query["conditional"][0] == "1"
        if query.get("edit") == ["1"]:
            self.edit_rounds += 1
            if not self.edits:
                self.edits = [0] * self.n
            for i in range(self.n):
                if (i + self.edit_rounds) % EDIT_SHARE == 0:
                    self.edits[i] += 1
        if query.keys() - {"stats"}:
            self.rebuild()
        sizes = [len(p[0]) for p in self.pages]
        return {
            "cpu": time.process_time(),
            "pages": len(sizes),
            "min_bytes": min(sizes),
            "max_bytes": max(sizes),
            "mean_bytes": sum(sizes) / len(sizes),
        }


def _next_data(i: int, size: int) -> str:
    """A framework's JSON state blob of about ``size`` bytes (pure padding)."""
    if size < 64:
        return ""
    items: list[str] = []
    used = 80
    k = 0
    while used < size:
        item = json.dumps(
            {"id": f"{i}-{k}", "type": "promo", "headline": f"推荐阅读 {k}", "url": f"/p/{k}"},
            ensure_ascii=False,
        )
        items.append(item)
        used += len(item.encode()) + 1
        k += 1
    return (
        '<script id="__NEXT_DATA__" type="application/json">{"props":{"items":['
        + ",".join(items)
        + "]}}</script>\n"
    )


class _HTTP(asyncio.Protocol):
    def __init__(self, site: Site) -> None:
        self.site = site
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            self.respond(head.decode("latin-1"))

    def respond(self, head: str) -> None:
        assert self.transport is not None
        lines = head.split("\r\n")
        target = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        path = urlsplit(target)
        close = headers.get("connection", "").lower() == "close"
        if path.path in ("/_control", "/_stats"):
            body = json.dumps(self.site.control(parse_qs(path.query))).encode()
            self.send(200, body, "application/json", (), close)
            return
        index = _page_index(path.path, self.site.n)
        if index is None:
            self.send(404, b"<h1>404 Not Found</h1>", "text/html; charset=utf-8", (), close)
            return
        data, etag, modified = self.site.pages[index]
        extra = (("ETag", etag), ("Last-Modified", modified), ("Cache-Control", "max-age=60"))
        if self.site.conditional and headers.get("if-none-match") == etag:
            self.send(304, b"", None, extra, close)
        else:
            self.send(200, data, "text/html; charset=utf-8", extra, close)

    def send(
        self,
        status: int,
        body: bytes,
        content_type: str | None,
        extra: tuple[tuple[str, str], ...],
        close: bool,
    ) -> None:
        assert self.transport is not None
        reason = {200: "OK", 304: "Not Modified", 404: "Not Found"}[status]
        lines = [f"HTTP/1.1 {status} {reason}", "Server: bench-site"]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        if status != 304:
            lines.append(f"Content-Length: {len(body)}")
        lines += [f"{k}: {v}" for k, v in extra]
        lines.append("Connection: close" if close else "Connection: keep-alive")
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        if close:
            self.transport.close()


def _page_index(path: str, n: int) -> int | None:
    if not path.startswith("/news/"):
        return None
    tail = path[len("/news/") :]
    if not tail.isdigit() or int(tail) >= n:
        return None
    return int(tail)


def serve(corpus: str, n: int, conn: Connection) -> None:
    """Child process entry: build the site, send back its base URL, serve forever."""
    articles = load_articles(Path(corpus))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        site = Site(articles, n)
        server = await loop.create_server(lambda: _HTTP(site), "127.0.0.1", 0, backlog=512)
        port = server.sockets[0].getsockname()[1]
        site.base = f"http://127.0.0.1:{port}"
        site.rebuild()
        conn.send((site.base, len(articles)))
        await server.serve_forever()

    asyncio.run(main())


def start_site(corpus: Path, n: int) -> tuple[multiprocessing.process.BaseProcess, str, int]:
    """Start the site in a fresh process; return it, its base URL and the article count."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=serve, args=(str(corpus), n, child), daemon=True)
    process.start()
    if not parent.poll(300):
        process.terminate()
        raise RuntimeError("the bench site did not start")
    base, count = parent.recv()
    return process, base, count
