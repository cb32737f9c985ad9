"""Sources: feeds and section pages served by a real server on 127.0.0.1,
polled by the real poller through the real fetcher, into the real databases
(every test runs on SQLite and on PostgreSQL); only the clock is simulated."""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.clock import MINUTE_MS, Clock
from tests.support.env import env_settings
from tests.support.http_server import LocalServer, Request
from tests.support.passes import daemon_pass
from watcher import api
from watcher.cli import main
from watcher.config import Config, SourceConfig
from watcher.discovery import SourcePoller, sync_config
from watcher.errors import WatcherError
from watcher.fetch import Fetcher
from watcher.models import change_from_dict
from watcher.settings import FetchSettings, Settings
from watcher.sources import discover
from watcher.store import SourceRecord, SourceSync, Store, WatchRecord, WatchState, now_ms

WORKER = "test-poller"


# -- the local news site ------------------------------------------------------------


@dataclass
class Item:
    path: str
    title: str
    updated: str  # RFC 3339
    published: str = "2026-01-05T08:00:00Z"


@dataclass
class Feed:
    """An RSS or Atom feed whose items tests edit; answers If-None-Match with 304."""

    items: list[Item]
    atom: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def render(self, base: str) -> str:
        if self.atom:
            entries = "".join(
                f'<entry><title>{html.escape(i.title)}</title><link href="{base}{i.path}"/>'
                f"<id>urn:watcher-test:{i.path}</id><published>{i.published}</published>"
                f"<updated>{i.updated}</updated></entry>"
                for i in self.items
            )
            return (
                '<?xml version="1.0" encoding="utf-8"?>'
                '<feed xmlns="http://www.w3.org/2005/Atom"><title>Newsroom</title>'
                f"<id>urn:watcher-test</id><updated>2026-01-05T08:00:00Z</updated>{entries}</feed>"
            )
        items = "".join(
            f"<item><title>{html.escape(i.title)}</title><link>{base}{i.path}?utm_source=rss</link>"
            f'<guid isPermaLink="false">guid-{i.path}</guid><pubDate>{_rfc822(i.updated)}</pubDate>'
            "</item>"
            for i in self.items
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Newsroom</title><link>{base}/</link>{items}</channel></rss>"
        )

    def respond(self, req: Request) -> None:
        base = f"http://127.0.0.1:{req.server.server_address[1]}"
        with self.lock:
            body = self.render(base).encode("utf-8")
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if req.headers.get("If-None-Match") == etag:
            req.respond(304, headers={"ETag": etag})
            return
        kind = "application/atom+xml" if self.atom else "application/rss+xml"
        req.respond(200, body, {"ETag": etag}, content_type=f"{kind}; charset=utf-8")


def _rfc822(iso: str) -> str:
    from datetime import datetime  # noqa: PLC0415
    from email.utils import format_datetime  # noqa: PLC0415

    return format_datetime(datetime.fromisoformat(iso.replace("Z", "+00:00")), usegmt=True)


def article(
    title: str, text: str = "双方正在就共同关切的领域展开对话，预计将持续数个小时。"
) -> str:
    return (
        f'<html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title></head>'
        f"<body><article><h1>{title}</h1>"
        "<p>美国总统拜登与中国国家主席习近平于北京时间星期二开始视频会晤。</p>"
        f"<p>{text}</p></article></body></html>"
    )


SECTION = """<!doctype html><html><head><title>World</title></head><body>
<header><a href="/">Home</a><nav><a href="/world">World</a><a href="/world/asia">Asia</a>
  <a href="/news/world-77777">Pinned in the menu</a></nav></header>
<main>
  <h2><a href="/news/world-10001">A headline</a></h2>
  <article><a href="/news/world-10002#comments">A card</a>
    <a href="/tag/china">china</a><a href="/author/li-wei">Li Wei</a></article>
  <ul><li><a href="/world/some-story">A list item</a></li><li><a href="/world/europe">Europe</a></li></ul>
  <p><a href="/world/2026/01/05/dated-story">Dated in running text</a>
     <a href="https://elsewhere.example/news/world-10003">Off site</a>
     <a href="javascript:void(0)">Share</a><a href="#top">Top</a><a href="/login">Log in</a>
     <a href="/world?page=2">More</a></p>
  <div class="share-bar"><a href="/share/world-10001-on-weibo">Weibo</a></div>
</main>
<footer><a href="/about-us/our-long-history">About</a><a href="/news/world-88888">Footer pick</a></footer>
</body></html>"""
SECTION_ARTICLES = [
    "/news/world-10001", "/news/world-10002", "/world/some-story", "/world/2026/01/05/dated-story",
]  # fmt: skip


# -- fixtures -----------------------------------------------------------------------


@dataclass
class Env:
    store: Store
    settings: Settings
    fetch: FetchSettings
    site: LocalServer
    clock: Clock

    def add(self, path: str, tags: tuple[str, ...] = (), match: str | None = None) -> SourceRecord:
        url = self.site.url(path)
        added = api.add_source(
            self.settings, self.store, url, tags=tags, match=match, now=self.clock()
        )
        source = self.store.get_source(added.url)
        assert source is not None
        return source

    def poll(self, minutes: int = 0) -> int:
        """Move the clock on, then one poller pass as the daemon runs it."""
        self.clock.advance(minutes)

        async def run() -> int:
            async with Fetcher(self.fetch) as fetcher:
                poller = SourcePoller(self.store, fetcher, self.settings, WORKER, clock=self.clock)
                return await poller.run_once()

        return asyncio.run(run())

    def source(self, path: str) -> SourceRecord:
        [found] = [s for s in self.store.list_sources() if s.url == self.site.url(path)]
        return found

    def watch(self, path: str) -> WatchRecord:
        watch = self.store.get_watch(self.site.url(path))
        assert watch is not None, path
        return watch

    def watched_paths(self) -> set[str]:
        base = self.site.url("")
        return {w.url.removeprefix(base) for w in self.store.watches()}


@pytest.fixture
def site() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


@pytest.fixture
def env(store: Store, db_url: str, tmp_path: Path, site: LocalServer) -> Env:
    settings, fetch = env_settings(tmp_path, db_url)
    return Env(store, settings, fetch, site, Clock(now_ms()))


@pytest.fixture
def feed(site: LocalServer) -> Feed:
    room = Feed(
        [
            Item("/news/world-10001", "习近平与拜登会晤", "2026-01-05T09:00:00Z"),
            Item("/news/world-10002", "会晤持续三个半小时", "2026-01-05T10:00:00Z"),
        ]
    )
    site.route("/rss.xml", room.respond)
    for i in (1, 2, 3):
        site.page(f"/news/world-1000{i}", article(f"快讯 {i}"))
    return room


# -- feeds --------------------------------------------------------------------------


def test_a_feed_poll_creates_watches_with_the_source_tags_and_feed_metadata(
    env: Env, feed: Feed
) -> None:
    source = env.add("/rss.xml", tags=("bbc", "world"))
    assert source.kind == "" and env.store.watches() == []  # nothing fetched at add time

    assert env.poll() == 2
    assert env.watched_paths() == {"/news/world-10001", "/news/world-10002"}  # utm_* dropped
    watch = env.watch("/news/world-10001")
    assert watch.tags == ("bbc", "world")
    assert watch.source_id == source.id
    assert watch.interval_s is None  # the adaptive schedule (and so retirement)
    assert watch.next_check_at <= env.clock()
    assert watch.source_meta is not None
    assert {k: watch.source_meta[k] for k in ("feed", "guid", "title", "published")} == {
        "feed": env.site.url("/rss.xml"),
        "guid": "guid-/news/world-10001",
        "title": "习近平与拜登会晤",
        "published": "2026-01-05T09:00:00Z",
    }
    polled = env.source("/rss.xml")
    assert (polled.kind, polled.articles, polled.last_error) == ("feed", 2, None)
    assert polled.next_check_at >= env.clock() + 9 * MINUTE_MS  # 10m, ±10% jitter


def test_a_second_poll_is_conditional_and_a_304_adds_nothing(env: Env, feed: Feed) -> None:
    env.add("/rss.xml")
    env.poll()
    assert env.poll(minutes=11) == 0
    first, second = env.site.hits("/rss.xml")
    assert "If-None-Match" not in first.headers
    assert second.headers["If-None-Match"] == env.source("/rss.xml").etag
    assert len(env.store.watches()) == 2
    assert env.source("/rss.xml").last_checked_at == env.clock()


def test_a_new_entry_adds_exactly_one_watch(env: Env, feed: Feed) -> None:
    env.add("/rss.xml", tags=("bbc",))
    env.poll()
    feed.items.insert(0, Item("/news/world-10003", "新消息", "2026-01-05T11:00:00Z"))
    assert env.poll(minutes=11) == 1
    assert env.watched_paths() == {"/news/world-10001", "/news/world-10002", "/news/world-10003"}
    assert env.watch("/news/world-10003").tags == ("bbc",)
    assert env.poll(minutes=11) == 0  # not modified again


def test_an_atom_feed_keeps_its_updated_times(env: Env, site: LocalServer) -> None:
    atom = Feed([Item("/a/2026/story-one", "One", "2026-01-05T09:30:00+08:00")], atom=True)
    site.route("/atom.xml", atom.respond)
    env.add("/atom.xml")
    assert env.poll() == 1
    meta = env.watch("/a/2026/story-one").source_meta
    assert meta is not None
    assert (meta["guid"], meta["updated"]) == (
        "urn:watcher-test:/a/2026/story-one",
        "2026-01-05T01:30:00Z",
    )


def test_match_filters_the_articles(env: Env, feed: Feed) -> None:
    env.add("/rss.xml", match=r"-10002$")
    assert env.poll() == 1
    assert env.watched_paths() == {"/news/world-10002"}
    assert env.source("/rss.xml").articles == 1


# -- section pages ------------------------------------------------------------------


def test_a_section_page_gives_its_articles_not_its_nav_footer_or_tag_links(
    env: Env, site: LocalServer
) -> None:
    site.page("/world", SECTION)
    env.add("/world", tags=("world",))
    assert env.poll() == len(SECTION_ARTICLES)
    assert env.watched_paths() == set(SECTION_ARTICLES)
    assert env.source("/world").kind == "page"
    meta = env.watch("/news/world-10001").source_meta
    assert meta is not None and meta["page"] == site.url("/world") and meta["title"] == "A headline"


def test_discovery_is_bounded_and_deduplicated() -> None:
    links = "".join(f'<h2><a href="/news/story-{i % 300}-x">s</a></h2>' for i in range(600))
    found = discover(f"<html><body><main>{links}</main></body></html>", "text/html",
                     "https://news.example/world")  # fmt: skip
    assert len(found.entries) == 200 and len({e.link for e in found.entries}) == 200


# -- re-dating ----------------------------------------------------------------------


def test_an_entry_whose_date_moved_is_due_now_and_its_check_notes_the_re_dating(
    env: Env, feed: Feed
) -> None:
    env.settings = replace(env.settings, min_interval=3600.0)  # the watches rest an hour
    env.add("/rss.xml")
    env.poll()
    daemon_pass(env.settings, env.store, clock=env.clock)  # first versions of both
    env.clock.advance(3)
    rested = env.watch("/news/world-10001")
    assert rested.next_check_at > env.clock()

    feed.items[0].updated = "2026-01-06T07:00:00Z"  # re-dated, the page unchanged
    env.poll(minutes=8)
    redated = env.watch("/news/world-10001")
    assert redated.next_check_at <= env.clock()  # due now
    assert env.watch("/news/world-10002").next_check_at > env.clock()  # the other is not
    assert redated.source_meta is not None
    [event] = redated.source_meta["redated"]
    assert (event["from"], event["to"], event["found"]) == (
        "2026-01-05T09:00:00Z", "2026-01-06T07:00:00Z", None,
    )  # fmt: skip
    assert "re-check pending" in api.feed_notes(redated)[0].text

    daemon_pass(env.settings, env.store, clock=env.clock)
    checked = env.watch("/news/world-10001")
    [note] = api.feed_notes(checked)
    assert note.text == (
        "feed re-dated 2026-01-05T09:00:00Z → 2026-01-06T07:00:00Z without visible change"
    )
    assert checked.source_meta is not None
    assert checked.source_meta["redated"][0]["checked_at"] == env.clock()
    assert env.store.changes(checked.id) == []


def test_a_re_dating_with_an_edit_is_recorded_on_the_change(
    env: Env, feed: Feed, site: LocalServer
) -> None:
    env.add("/rss.xml")
    env.poll()
    daemon_pass(env.settings, env.store, clock=env.clock)
    site.page("/news/world-10002", article("快讯 2", "会晤持续了三个半小时，双方同意继续对话。"))
    feed.items[1].updated = "2026-01-06T08:00:00Z"
    env.poll(minutes=11)
    daemon_pass(env.settings, env.store, clock=env.clock)

    watch = env.watch("/news/world-10002")
    [change] = env.store.changes(watch.id)
    [event] = change.record["feed_redated"]
    assert (event["to"], event["found"], event["change_id"]) == (
        "2026-01-06T08:00:00Z", "significant", change.id,
    )  # fmt: skip
    change_from_dict(change.record)  # the record stays readable
    assert api.feed_notes(watch)[0].text.endswith("with a significant change")


def test_history_and_list_show_the_feed_dates_and_the_re_dating(
    env: Env, feed: Feed, db_url: str, tmp_path: Path
) -> None:
    env.add("/rss.xml")
    env.poll()
    daemon_pass(env.settings, env.store, clock=env.clock)
    feed.items[0].updated = "2026-01-06T07:00:00Z"
    env.poll(minutes=11)
    daemon_pass(env.settings, env.store, clock=env.clock)

    cli = {"WATCHER_HOME": str(tmp_path), "WATCHER_DATABASE_URL": db_url}
    url = env.site.url("/news/world-10001")
    shown = CliRunner().invoke(main, ["history", url], env=cli)
    assert shown.exit_code == 0, shown.output
    assert f"feed {env.site.url('/rss.xml')}: published 2026-01-06T07:00:00Z" in shown.output
    assert "redated" in shown.output and "without visible change" in shown.output
    listed = CliRunner().invoke(main, ["list", "--json"], env=cli)
    assert listed.exit_code == 0, listed.output
    assert '"guid": "guid-/news/world-10001"' in listed.output
    assert '"found": "unchanged"' in listed.output


# -- failures and the daemon --------------------------------------------------------


def test_a_failing_source_records_its_error_backs_off_and_the_others_go_on(
    env: Env, feed: Feed, site: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    site.route("/broken.xml", lambda req: req.respond(500, b"oops"))
    site.page("/report.pdf", b"%PDF-1.4", content_type="application/pdf")
    env.add("/broken.xml")
    env.add("/report.pdf")
    env.add("/rss.xml")
    with caplog.at_level(logging.WARNING, logger="watcher.discovery"):
        assert env.poll() == 2  # the feed's articles, whatever the others did
    broken, pdf = env.source("/broken.xml"), env.source("/report.pdf")
    assert broken.last_error is not None and "500" in broken.last_error
    assert pdf.last_error == "neither a feed nor an HTML page (application/pdf)"
    assert (broken.failure_count, pdf.failure_count) == (1, 1)
    assert broken.next_check_at >= env.clock() + 9 * MINUTE_MS
    assert broken.claimed_by is None
    assert len([r for r in caplog.records if "broken.xml" in r.getMessage()]) == 1  # one line

    site.route("/broken.xml", feed.respond)  # fixed: the next poll succeeds
    env.poll(minutes=25)
    fixed = env.source("/broken.xml")
    assert (fixed.kind, fixed.last_error, fixed.failure_count) == ("feed", None, 0)


def test_sources_end_to_end_through_a_daemon_pass(env: Env, feed: Feed) -> None:
    env.add("/rss.xml", tags=("bbc",))
    env.poll()
    daemon_pass(env.settings, env.store, clock=env.clock)
    for path in ("/news/world-10001", "/news/world-10002"):
        watch = env.watch(path)
        assert watch.last_checked_at == env.clock() and watch.state == WatchState.ACTIVE
        assert len(env.store.versions(watch.id)) == 1


def test_a_removed_watch_is_not_brought_back_by_its_source(env: Env, feed: Feed) -> None:
    env.add("/rss.xml")
    env.poll()
    api.remove_watches(env.store, [env.site.url("/news/world-10001")])
    feed.items[0].updated = "2026-01-07T07:00:00Z"
    feed.items.append(Item("/news/world-10003", "新", "2026-01-07T08:00:00Z"))
    assert env.poll(minutes=11) == 1
    removed = env.watch("/news/world-10001")
    assert removed.state == WatchState.REMOVED
    assert removed.source_meta is not None and "redated" not in removed.source_meta


def test_removing_a_source_keeps_its_watches(env: Env, feed: Feed) -> None:
    source = env.add("/rss.xml")
    env.poll()
    [removed] = api.remove_sources(env.store, [source.url])
    assert removed.articles == 2
    assert env.store.list_sources() == []
    assert {w.source_id for w in env.store.watches()} == {None}


def test_config_sources_are_synced(env: Env, feed: Feed, site: LocalServer) -> None:
    site.page("/world", SECTION)
    env.add("/world", match="nothing-matches")  # a CLI source, which the file does not name
    configs = (SourceConfig(site.url("/rss.xml"), ("cfg",), 900.0, r"world-\d+"),)
    settings = replace(env.settings, config=Config(sources=configs))
    done = sync_config(env.store, settings, env.clock())
    assert (done.added, done.updated, done.removed) == (1, 0, 0)
    rss = env.source("/rss.xml")
    assert (rss.origin, rss.tags, rss.interval_s, rss.match) == (
        "config",
        ("cfg",),
        900,
        r"world-\d+",
    )
    with pytest.raises(WatcherError, match="config file"):
        env.add("/rss.xml")  # the file owns it
    assert sync_config(env.store, settings, env.clock()) == SourceSync(0, 0, 0)

    env.poll()
    changed = replace(settings, config=Config(sources=(replace(configs[0], interval_s=None),)))
    assert sync_config(env.store, changed, env.clock()).updated == 1
    assert env.source("/rss.xml").interval_s == 600  # WATCHER_SOURCE_INTERVAL's default

    gone = sync_config(env.store, replace(settings, config=Config()), env.clock())
    assert gone.removed == 1
    assert [s.url for s in env.store.list_sources()] == [site.url("/world")]
    assert env.watch("/news/world-10001").source_id is None  # the watches stay


# -- the command line ---------------------------------------------------------------


def test_source_commands(env: Env, feed: Feed, db_url: str, tmp_path: Path) -> None:
    cli = {"WATCHER_HOME": str(tmp_path), "WATCHER_DATABASE_URL": db_url}
    run = CliRunner().invoke
    url = env.site.url("/rss.xml")
    added = run(main, ["source", "add", url, "--tag", "bbc", "--interval", "15m", "--now"], env=cli)
    assert added.exit_code == 0, added.output
    assert f"added source: {url}" in added.output
    assert f"{url}: feed, 2 articles listed, 2 new watches, 0 re-dated" in added.output

    listed = run(main, ["source", "list"], env=cli)
    assert listed.exit_code == 0, listed.output
    assert url in listed.output and "15m" in listed.output and "bbc" in listed.output
    as_json = run(main, ["source", "list", "--json"], env=cli)
    assert '"articles": 2' in as_json.output and '"kind": "feed"' in as_json.output

    for args, message in [
        (["source", "add", "ftp://x.example/feed"], "only http and https"),
        (["source", "add", url, "--match", "(unclosed"], "not a regular expression"),
        (["source", "add", url, "--interval", "30s"], "at least 1m"),
        (["source", "remove", "https://nowhere.example/rss"], "is not a source"),
    ]:
        bad = run(main, args, env=cli)
        assert bad.exit_code == 2, (args, bad.output)
        assert message in bad.output and len(bad.output.strip().splitlines()) == 1

    gone = run(main, ["source", "remove", url], env=cli)
    assert gone.exit_code == 0 and "2 watches kept" in gone.output
    assert len(env.store.watches()) == 2


def test_the_user_agent_names_the_tool_and_how_to_reach_its_operator(env: Env, feed: Feed) -> None:
    assert "github.com/watcher" not in env.settings.user_agent
    contact = Settings.from_env({"WATCHER_CONTACT": "ops@example.org"})
    assert contact.user_agent.endswith("(news change monitor; contact: ops@example.org)")
    env.fetch = replace(env.fetch, user_agent=contact.user_agent)
    env.add("/rss.xml")
    env.poll()
    assert env.site.hits("/rss.xml")[0].headers["User-Agent"] == contact.user_agent


def test_the_daemon_polls_sources_and_checks_what_they_find(
    feed: Feed, site: LocalServer, tmp_path: Path
) -> None:
    """``watcher run`` as systemd runs it: config sources synced at start, the
    poll job wired next to the watches' dispatcher, a failing source logged once."""
    from tests.test_daemon import Daemon, wait_for  # noqa: PLC0415 - the daemon harness

    site.route("/broken.xml", lambda req: req.respond(500, b"oops"))
    home = tmp_path / "home"
    home.mkdir()
    (home / "watcher.toml").write_text(
        f'[[sources]]\nurl = "{site.url("/rss.xml")}"\ntags = ["cfg"]\n', encoding="utf-8"
    )
    cli = {"WATCHER_HOME": str(home)}
    assert CliRunner().invoke(main, ["db", "upgrade"], env=cli).exit_code == 0
    added = CliRunner().invoke(main, ["source", "add", site.url("/broken.xml")], env=cli)
    assert added.exit_code == 0, added.output

    daemon = Daemon(home).start()
    try:
        store = Store.open(f"sqlite:///{home / 'watcher.db'}")
        try:

            def checked() -> bool:
                watches = store.watches()
                return len(watches) == 2 and all(w.last_checked_at for w in watches)

            wait_for("the feed's articles to be checked", checked)
            assert {w.tags for w in store.watches()} == {("cfg",)}
            broken = next(s for s in store.list_sources() if s.url.endswith("/broken.xml"))
            assert broken.last_error == "HTTP 500"
        finally:
            store.close()
    finally:
        assert daemon.stop() == 0
    failed = [ln for ln in daemon.output().splitlines() if "broken.xml failed" in ln]
    assert len(failed) == 1, daemon.output()
