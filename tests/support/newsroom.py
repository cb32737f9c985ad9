"""The seed article served as a full page on 127.0.0.1, edited between checks.

    room = Newsroom(title=seed.title, main=seed.body)
    with serve(room) as url:  # a LocalServer answering at ARTICLE_PATH
        room.url = url
        ...
        room.edit(LEAD, "预计将持续约三个小时。")
        room.status = 404  # the article is taken down

To serve a room on a server a test already has, route a path to it:
``site.route(path, room.respond)``.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.http_server import LocalServer, Request

SEED = Path(__file__).resolve().parents[2] / "seeds" / "000_f45fe6e83c05ee36.txt"
ARTICLE_PATH = "/zhongwen/simp/world-59301487"
LEAD = "预计将持续数个小时。"


@dataclass
class Newsroom:
    """The page as the site serves it right now; edited between passes."""

    title: str
    main: str
    url: str = ""
    status: int = 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def page(self) -> str:
        title = html.escape(self.title)
        return (
            '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            f"<title>{title} - BBC News 中文</title>"
            f'<meta property="og:title" content="{title}">'
            f'<link rel="canonical" href="{html.escape(self.url)}">'
            "<script>window.ads = [];</script></head><body>"
            '<header><nav><a href="/">BBC News 中文</a></nav></header>'
            f'{self.main}<footer class="footer">© BBC</footer></body></html>'
        )

    def edit(self, old: str, new: str) -> None:
        with self.lock:
            if old not in self.main:
                raise RuntimeError(f"newsroom edit target missing: {old}")
            self.main = self.main.replace(old, new, 1)

    def respond(self, req: Request) -> None:
        """A LocalServer route: the page while ``status`` is 200, else a 404."""
        with self.lock:
            found = self.status == 200
            body = self.page().encode("utf-8") if found else b"<h1>404 Not Found</h1>"
        req.respond(200 if found else 404, body)


@contextmanager
def serve(room: Newsroom, path: str = ARTICLE_PATH) -> Iterator[str]:
    """Serve ``room`` at ``path`` on a fresh LocalServer; yield the article URL."""
    with LocalServer() as site:
        site.route(path, room.respond)
        yield site.url(path)
