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

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.support.http_server import LocalServer, Request
from watcher import demo, snapshot

SEED = demo.SEED
ARTICLE_PATH = demo.ARTICLE_PATH
LEAD = demo.LEAD


@dataclass
class Newsroom(demo.Newsroom):
    """The ``watcher demo`` newsroom's page (title, body, edits), served by a
    test's LocalServer instead of the demo's own server."""

    @classmethod
    def seed(cls) -> Newsroom:
        """The seed article (the demo's), unedited."""
        article = snapshot.read(SEED)
        return cls(title=article.title, main=article.body)

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
