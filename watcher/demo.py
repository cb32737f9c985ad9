"""``watcher demo``: a newsroom on 127.0.0.1 edits an article; watcher notices.

Everything is real except the clock: a local HTTP server serves the seed
article as a full page, the daemon's dispatcher claims the watch from a real
SQLite database and runs the real pipeline, and between passes the demo
moves a simulated clock forward (so "14 分钟前" can honestly become "1 小时前")
while the newsroom edits the page.
"""

from __future__ import annotations

import asyncio
import html
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import click

from watcher import api
from watcher import snapshot as snapshot_mod
from watcher.daemon import worker_id
from watcher.fetch import Fetcher
from watcher.models import change_from_dict
from watcher.pipeline import Pipeline
from watcher.report import render
from watcher.scheduler import Dispatcher
from watcher.settings import Settings
from watcher.store import Store

SEED = Path(__file__).resolve().parents[1] / "seeds" / "000_f45fe6e83c05ee36.txt"
ARTICLE_PATH = "/zhongwen/simp/world-59301487"
MINUTE_MS = 60_000
LEAD = "预计将持续数个小时。"
PARAGRAPH = "本次会晤由拜登总统发起，双方的开场白向外界公开，之后双方进入闭门会议。"


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
                raise RuntimeError(f"demo edit target missing: {old}")
            self.main = self.main.replace(old, new, 1)


def _handler(room: Newsroom) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with room.lock:
                found = self.path == ARTICLE_PATH and room.status == 200
                body = (room.page() if found else "<h1>404 Not Found</h1>").encode("utf-8")
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

    return Handler


@contextmanager
def serve(room: Newsroom) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(room))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{ARTICLE_PATH}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Clock:
    now: int

    def __call__(self) -> int:
        return self.now

    def advance(self, minutes: int) -> None:
        self.now += minutes * MINUTE_MS


def _steps(room: Newsroom) -> list[tuple[int, str, Callable[[], None]]]:
    """(minutes later, what the newsroom does, the edit)."""

    def insert_paragraph() -> None:
        lead_end = "</b></p></div>"
        room.edit(lead_end, lead_end + "<div><p>白宫表示，会晤气氛“坦诚而富有建设性”。</p></div>")

    return [
        (
            62,
            'the "14 分钟前" label ticks to "1 小时前" (noise)',
            lambda: room.edit("14 分钟前", "1 小时前"),
        ),
        (
            30,
            "an editor corrects the lead paragraph",
            lambda: room.edit(LEAD, "预计将持续约三个小时。"),
        ),
        (30, "a paragraph is inserted after the lead", insert_paragraph),
        (60, "the article is taken down (404)", lambda: setattr(room, "status", 404)),
    ]


def run_demo(keep: Path | None, fmt: str, color: bool = False) -> int:
    seed = snapshot_mod.read(SEED)
    room = Newsroom(title=seed.title, main=seed.body)
    with tempfile.TemporaryDirectory(prefix="watcher-demo-") as tmp:
        home = keep or Path(tmp)
        # The newsroom runs on 127.0.0.1, which watcher refuses unless allowed.
        settings = Settings.from_env(
            {}, home=home, retries=0, timeout=10.0, allow_hosts="127.0.0.1"
        )
        clock = Clock(seed.captured_at or 0)
        with serve(room) as url:
            room.url = url
            _narrate(f"A local newsroom serves {url} (the seed article as a full page).")
            store = api.open_store(settings)
            try:
                api.add_watches(store, [url], now=clock())
                _narrate("watcher add: watching it; the daemon's dispatcher runs each pass.")
                _pass(settings, store, clock)
                for minutes, what, edit in _steps(room):
                    clock.advance(minutes)
                    edit()
                    _narrate(f"+{minutes} min: {what}.")
                    _pass(settings, store, clock)
                    _print_latest_change(store, url, fmt, settings.timezone, color)
                _narrate(f"History (watcher history {url}):")
                _print_history(store, url)
            finally:
                store.close()
        _narrate(f"Archive: {settings.archive_dir}  Reports: {settings.reports_dir}")
        click.echo(
            "  (files for the versions people read: v1, v3, v4 and the removal; the noise-only"
            " v2 is in the database alone, and `watcher export DIR` writes every version)"
        )
        if keep is None:
            _narrate("(a temporary folder, removed now; use --keep DIR to keep it)")
    return 0


def _pass(settings: Settings, store: Store, clock: Clock) -> None:
    async def run() -> None:
        async with Fetcher(settings.fetch_settings()) as fetcher:
            pipeline = Pipeline(store, fetcher, settings, clock=clock)
            dispatcher = Dispatcher(store, pipeline, settings, worker_id(), clock=clock)
            try:
                await dispatcher.run_until_idle()
            finally:
                pipeline.close()

    asyncio.run(run())


def _print_latest_change(store: Store, url: str, fmt: str, tz: str, color: bool) -> None:
    latest = api.history(store, url).latest_change
    if latest is None:
        click.echo("  (no change recorded)")
        return
    click.echo(render(change_from_dict(latest.record), fmt, tz=tz, color=color))


def _print_history(store: Store, url: str) -> None:
    hist = api.history(store, url)
    for entry in hist.entries:
        change = entry.change
        verdict = change.verdict if change else "first"
        summary = change.summary if change else "first capture"
        number = f"v{entry.version.seq}" if entry.version else "--"
        click.echo(f"  {number}  {verdict:<11}  {summary}")


def _narrate(text: str) -> None:
    click.secho(f"\n== {text}", bold=True)
