"""The report site: pages, links, escaping, the Atom feed, incremental updates, the CLI.

Histories come from two places: the real daemon pipeline against the test
newsroom (fetch, extract, diff, store, notify), and versions stored
directly the way an importer stores them (for content no newsroom page would
survive extraction with, like a hostile title).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from tests.support.clock import Clock
from tests.support.newsroom import SEED, Newsroom, serve
from watcher import api, archive
from watcher import snapshot as snapshot_mod
from watcher.cli import main
from watcher.daemon import worker_id
from watcher.diff import diff_snapshots
from watcher.fetch import Fetcher
from watcher.models import Change, Snapshot, change_from_dict
from watcher.outputs import site
from watcher.outputs.atom import atom_time
from watcher.outputs.reports import SiteUpdates, write_change_reports
from watcher.pipeline import Pipeline
from watcher.report import render_html, render_html_fragment
from watcher.scheduler import Dispatcher
from watcher.settings import Settings
from watcher.store import Store, WatchRecord, upgrade

PWNED = "window.__pwned=1"
HOSTILE_TITLE = f"</title><script>{PWNED}</script>"
PG_ADMIN_URL = os.environ.get(
    "WATCHER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


# -- building histories ------------------------------------------------------------


def make_settings(home: Path) -> Settings:
    return Settings.from_env({}, home=home, retries=0, timeout=10.0, allow_hosts="127.0.0.1")


def snap(url: str, title: str, paragraphs: list[str], at: int, extra: str = "") -> Snapshot:
    body = "<main>" + "".join(f"<p>{p}</p>" for p in paragraphs) + extra + "</main>"
    return Snapshot(url=url, title=title, body=body, captured_at=at)


def store_history(
    store: Store, url: str, snaps: list[Snapshot], tags: tuple[str, ...] = ()
) -> WatchRecord:
    """Store versions and their changes directly, as an importer does."""
    watch, _ = store.add_watch(
        url, site=urlsplit(url).hostname or "", tags=tags, now_ms=snaps[0].captured_at
    )
    previous = None
    for s in snaps:
        assert s.captured_at is not None
        content = snapshot_mod.content_text(s)
        with store.transaction() as tx:
            version = tx.add_version(
                watch.id,
                captured_at=s.captured_at,
                content_sha256=hashlib.sha256(content.encode()).hexdigest(),
                content_text=content,
                http_status=200,
                final_url=s.url,
                title=s.title,
                # every version here is one people read (a first or an edit): it has a file
                archive_path=archive.version_path(url, s.captured_at).as_posix(),
            )
            if previous is not None:
                change = diff_snapshots(previous[0], s)
                tx.add_change(
                    change,
                    watch_id=watch.id,
                    old_version_id=previous[1],
                    new_version_id=version.id,
                    created_at=s.captured_at,
                )
        previous = (s, version.id)
    return watch


def calm_history(store: Store, url: str, start: int) -> WatchRecord:
    """Two versions, one significant edit."""
    return store_history(
        store,
        url,
        [
            snap(url, "Calm headline", ["The minister said the talks went well today.",
                                        "Both sides agreed to meet again next month."], start),
            snap(url, "Calm headline", ["The minister said the talks went badly today.",
                                        "Both sides agreed to meet again next month."],
                 start + 600_000),
        ],
    )  # fmt: skip


def hostile_history(store: Store, url: str, start: int) -> WatchRecord:
    """An article whose second version tries every way of running script."""
    first = snap(
        url,
        "Calm headline",
        ["First paragraph of the article, long enough to be a paragraph.",
         "Second paragraph says something else entirely here."],
        start,
        '<figure><img src="https://img.example/a.jpg" alt="a photo"></figure>'
        '<p><a href="https://news.example/more">more</a></p>',
    )  # fmt: skip
    second = snap(
        url,
        HOSTILE_TITLE,
        [f"First paragraph &lt;script&gt;{PWNED}&lt;/script&gt; of the article, long enough.",
         f'Second <a href="javascript:{PWNED}">click</a> paragraph '
         f'&lt;img src=x onerror="{PWNED}"&gt; says something.'],
        start + 600_000,
        f'<figure><img src="javascript:{PWNED}" onerror="{PWNED}" alt="&lt;svg onload={PWNED}&gt;">'
        f'</figure><p><a href="javascript:{PWNED}">more</a></p><script>{PWNED}</script>',
    )  # fmt: skip
    return store_history(store, url, [first, second])


def demo_history(home: Path) -> tuple[Settings, str]:
    """The real daemon pipeline against the test newsroom: a tick (noise), an edit,
    an insertion, a takedown. Notify writes reports and keeps home/site current."""
    settings = make_settings(home)
    seed = snapshot_mod.read(SEED)
    room = Newsroom(title=seed.title, main=seed.body)
    clock = Clock(seed.captured_at or 0)
    lead_end = "</b></p></div>"
    edits = [
        lambda: room.edit("14 分钟前", "1 小时前"),
        lambda: room.edit("预计将持续数个小时。", "预计将持续约三个小时。"),
        lambda: room.edit(lead_end, lead_end + "<div><p>白宫表示，会晤气氛“坦诚而富有建设性”。</p></div>"),
        lambda: setattr(room, "status", 404),
    ]  # fmt: skip
    with serve(room) as url:
        room.url = url
        store = api.open_store(settings)
        try:
            api.add_watches(store, [url], now=clock())
            run_pass(settings, store, clock)
            for edit in edits:
                clock.advance(62)
                edit()
                run_pass(settings, store, clock)
        finally:
            store.close()
    return settings, url


def run_pass(settings: Settings, store: Store, clock: Clock) -> None:
    """One daemon pass with the simulated clock, like the demo's."""

    async def run() -> None:
        async with Fetcher(settings.fetch_settings()) as fetcher:
            pipeline = Pipeline(store, fetcher, settings, clock=clock)
            await Dispatcher(store, pipeline, settings, worker_id(), clock=clock).run_until_idle()

    asyncio.run(run())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "home")


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = api.open_store(settings)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, str]:
    return demo_history(tmp_path_factory.mktemp("demo") / "home")


# -- reading pages -------------------------------------------------------------------


class Page(HTMLParser):
    """Every element with its attributes, the ids, and the text of each <script>."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data

    @property
    def ids(self) -> set[str]:
        return {str(a["id"]) for _, a in self.elements if a.get("id")}

    def attr(self, tag: str, name: str) -> list[str]:
        return [str(a[name]) for t, a in self.elements if t == tag and a.get(name) is not None]


def pages(root: Path) -> dict[Path, Page]:
    return {p.relative_to(root): Page(p.read_text("utf-8")) for p in root.rglob("*.html")}


def csp(page: Page) -> str:
    metas = [a for t, a in page.elements if t == "meta" and a.get("http-equiv")]
    assert metas and metas[0]["http-equiv"] == "Content-Security-Policy"
    return str(metas[0]["content"])


# -- the site ------------------------------------------------------------------------


def test_a_built_site_has_every_page_and_every_link_resolves(store: Store, tmp_path: Path) -> None:
    calm = calm_history(store, "https://news.example/world/calm", 1_700_000_000_000)
    hostile = hostile_history(store, "https://news.example/world/hostile", 1_700_100_000_000)
    root = tmp_path / "site"
    written = site.build_site(store, root)
    expected = {"index.html", "recent.html", "feed.atom", "articles/1.html", "articles/2.html",
                "articles/1/v1.html", "articles/1/v2.html", "articles/2/v1.html",
                "articles/2/v2.html"}  # fmt: skip
    assert {p.relative_to(root).as_posix() for p in written} == expected
    assert {calm.id, hostile.id} == {1, 2}
    parsed = pages(root)
    for path, page in parsed.items():
        for href in page.attr("a", "href"):
            if href.startswith(("http://", "https://")):
                continue
            target, _, fragment = href.partition("#")
            resolved = (root / path).parent / target if target else root / path
            assert resolved.resolve().is_file(), f"{path}: broken link {href}"
            if fragment and resolved.suffix == ".html":
                found = parsed[resolved.resolve().relative_to(root.resolve())]
                assert fragment in found.ids, f"{path}: no #{fragment} in {target}"
    index = parsed[Path("index.html")]
    assert {"articles/1.html", "articles/2.html"} <= set(index.attr("a", "href"))
    assert "recent.html" in index.attr("a", "href") and "feed.atom" in index.attr("a", "href")


def test_the_index_lists_title_site_versions_last_change_and_state(
    store: Store, tmp_path: Path
) -> None:
    calm_history(store, "https://news.example/world/calm", 1_700_000_000_000)
    store.add_watch("https://other.example/new", site="other.example", now_ms=1)
    site.build_site(store, tmp_path)
    index = (tmp_path / "index.html").read_text("utf-8")
    row = re.search(r'<tr data-state="active"><td><a href="articles/1.html">.*?</tr>', index)
    assert row is not None
    assert "Calm headline" in row.group() and "news.example" in row.group()
    assert '<td class="num" data-label="Versions">2</td>' in row.group()
    assert "2023-11-14 22:23 UTC" in row.group() and "1 paragraph edited" in row.group()
    assert "https://other.example/new" in index  # no version yet: the URL stands in
    # A watch without versions still gets a page, so its index link resolves.
    assert (tmp_path / "articles" / "2.html").is_file()


def test_the_article_page_has_a_timeline_and_each_change_rendered(
    demo_home: tuple[Settings, str], tmp_path: Path
) -> None:
    settings, _ = demo_home
    store = api.open_store(settings)
    try:
        site.build_site(store, tmp_path, tz="Asia/Shanghai")
        changes = store.changes(1)
    finally:
        store.close()
    article = (tmp_path / "articles" / "1.html").read_text("utf-8")
    page = Page(article)
    assert {"v1", "v2", "v3", "v4"} <= page.ids
    assert {f"change-{c.id}" for c in changes} <= page.ids
    assert "first capture" in article and "+08:00 Asia/Shanghai" in article
    # Significant changes are open sections, newest first; the tick is collapsed.
    sections = re.findall(r'<(section|details) class="change" id="change-(\d+)"', article)
    assert [int(i) for _, i in sections] == sorted((c.id for c in changes), reverse=True)
    kinds = {int(i): tag for tag, i in sections}
    for c in changes:
        assert kinds[c.id] == ("section" if c.verdict == "significant" else "details")
    assert "<del>数</del><ins>约三</ins>" in article  # the inline diff, by character
    assert "白宫表示" in article and "Article gone (404/410)" in article
    assert '<span class="state">gone</span>' in article


def test_pages_are_self_contained_with_a_strict_csp(store: Store, tmp_path: Path) -> None:
    hostile_history(store, "https://news.example/world/hostile", 1_700_100_000_000)
    site.build_site(store, tmp_path)
    for path, page in pages(tmp_path).items():
        policy = csp(page)
        assert policy.startswith("default-src 'none';"), path
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
        for tag, attrs in page.elements:
            assert tag not in {"img", "iframe", "object", "embed", "video", "audio", "base"}
            assert "src" not in attrs and "style" not in attrs, (path, tag)
            if tag == "link":
                assert attrs.get("rel") == "alternate", (path, attrs)
        text = (tmp_path / path).read_text("utf-8")
        assert "@import" not in text and "url(" not in text
        # one script per page, admitted by its hash alone: the local-time
        # rewrite of <time> stamps (and on the index, sorting and filters)
        assert len(page.scripts) == 1, path
        digest = hashlib.sha256(page.scripts[0].encode()).digest()
        assert f"script-src 'sha256-{base64.b64encode(digest).decode()}';" in policy
        assert ("sortBy" in page.scripts[0]) == (path == Path("index.html"))


def test_archived_content_is_escaped_everywhere(store: Store, tmp_path: Path) -> None:
    hostile_history(store, "https://news.example/world/hostile", 1_700_100_000_000)
    site.build_site(store, tmp_path)
    for path, page in pages(tmp_path).items():
        for _, attrs in page.elements:
            assert not any(name.startswith("on") for name in attrs), (path, attrs)
            for value in attrs.values():
                assert "javascript:" not in (value or "").lower(), (path, attrs)
        assert all(PWNED not in script for script in page.scripts), path
        text = (tmp_path / path).read_text("utf-8")
        assert "<script>window" not in text and "<svg" not in text
    article = (tmp_path / "articles" / "1.html").read_text("utf-8")
    assert "&lt;/title&gt;&lt;script&gt;window.__pwned=1&lt;/script&gt;" in article
    assert '<span class="url">javascript:window.__pwned=1</span>' in article
    index = (tmp_path / "index.html").read_text("utf-8")
    assert "&lt;/title&gt;&lt;script&gt;" in index


def test_recent_lists_significant_changes_only_newest_first(store: Store, tmp_path: Path) -> None:
    url = "https://news.example/world/tick"
    base = 1_700_000_000_000
    store_history(store, url, [
        snap(url, "Tick", ["A paragraph that will not change at all here."], base),
        snap(url, "Tick", ["A paragraph that will not change at all here."], base + 60_000),
    ])  # fmt: skip
    calm_history(store, "https://news.example/world/calm", base + 1000)
    hostile_history(store, "https://news.example/world/hostile", base + 2000)
    site.build_site(store, tmp_path)
    recent = (tmp_path / "recent.html").read_text("utf-8")
    links = Page(recent).attr("a", "href")
    article_links = [h for h in links if h.startswith("articles/")]
    assert [h.split("#")[0] for h in article_links] == ["articles/3.html", "articles/2.html"]
    assert "articles/1.html" not in recent  # the noise-only change is not listed


# -- the Atom feed ---------------------------------------------------------------------


def test_the_feed_is_valid_atom_that_feedparser_reads(store: Store, tmp_path: Path) -> None:
    calm_history(store, "https://news.example/world/calm", 1_700_000_000_000)
    hostile_history(store, "https://news.example/world/hostile", 1_700_100_000_000)
    site.build_site(store, tmp_path)
    raw = (tmp_path / "feed.atom").read_bytes()
    feed = feedparser.parse(raw)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title == "watcher: significant changes"
    assert feed.feed.id.startswith("tag:watcher.invalid,2026:")
    assert feed.feed.updated == atom_time(1_700_100_600_000)  # the newest change
    assert feed.feed.author == "watcher"
    assert any(link.rel == "self" for link in feed.feed.links)
    assert len(feed.entries) == 2
    newest, older = feed.entries
    assert newest.title.startswith(HOSTILE_TITLE)  # text, exactly as archived
    assert newest.link.startswith("articles/2.html#change-")
    assert newest.id.startswith("tag:watcher.invalid,2026:change:")
    assert newest.updated == atom_time(1_700_100_600_000)
    assert older.summary == "1 paragraph edited"
    assert "<del>well</del><ins>badly</ins>" in older.content[0].value  # the report, as HTML
    assert len({e.id for e in feed.entries}) == 2


def test_feed_ids_are_stable_and_base_url_makes_links_absolute(
    store: Store, tmp_path: Path
) -> None:
    calm_history(store, "https://news.example/world/calm", 1_700_000_000_000)
    site.build_site(store, tmp_path / "a")
    site.build_site(store, tmp_path / "b", base_url="https://example.org/watch")
    a = feedparser.parse((tmp_path / "a" / "feed.atom").read_bytes())
    b = feedparser.parse((tmp_path / "b" / "feed.atom").read_bytes())
    assert not b.bozo
    assert [e.id for e in a.entries] == [e.id for e in b.entries]
    assert b.entries[0].link.startswith("https://example.org/watch/articles/1.html#change-")
    assert b.feed.id == "https://example.org/watch/feed.atom"


def test_an_empty_database_builds_an_empty_but_valid_site(store: Store, tmp_path: Path) -> None:
    site.build_site(store, tmp_path, now_ms=1_700_000_000_000)
    assert "No watched articles yet." in (tmp_path / "index.html").read_text("utf-8")
    assert "No significant changes yet." in (tmp_path / "recent.html").read_text("utf-8")
    feed = feedparser.parse((tmp_path / "feed.atom").read_bytes())
    assert not feed.bozo and feed.entries == []
    assert feed.feed.updated == atom_time(1_700_000_000_000)  # no entries: the build time


# -- incremental updates -----------------------------------------------------------------


@pytest.fixture
def write_log(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file written through archive.write_atomic, as root/relative."""
    log: list[str] = []
    real = archive.write_atomic

    def spy(root: Path, relative: Path, text: str, *, durable: bool = True) -> Path:
        log.append(f"{root.name}/{relative.as_posix()}")
        return real(root, relative, text, durable=durable)

    monkeypatch.setattr(archive, "write_atomic", spy)
    return log


def next_version(store: Store, watch: WatchRecord, paragraphs: list[str], at: int) -> Snapshot:
    """Add one more version of ``watch`` with its change; return the snapshot."""
    versions = store.versions(watch.id)
    latest = versions[-1]
    previous = snapshot_mod.parse(store.version_text(latest.id))
    previous = Snapshot(previous.url, previous.title, previous.body, latest.captured_at)
    new = snap(watch.url, previous.title, paragraphs, at)
    content = snapshot_mod.content_text(new)
    change = diff_snapshots(previous, new)
    with store.transaction() as tx:
        version = tx.add_version(
            watch.id, captured_at=at, content_sha256=hashlib.sha256(content.encode()).hexdigest(),
            content_text=content, http_status=200, final_url=new.url, title=new.title,
            archive_path=None,
        )  # fmt: skip
        tx.add_change(
            change, watch_id=watch.id, old_version_id=latest.id, new_version_id=version.id,
            created_at=at,
        )  # fmt: skip
    return new


def write_reports(
    settings: Settings, url: str, seq: int, change: Change, *, store: Store
) -> list[Path]:
    """What the pipeline does for one stored change: its reports, then the
    site flush the daemon runs after a batch of checks."""
    updates = SiteUpdates(settings)
    written = write_change_reports(settings, url, seq, change)
    watch = store.get_watch(url)
    assert watch is not None
    updates.mark(watch.id, change.significant)
    return written + updates.flush(store)


def test_a_change_rewrites_only_its_article_the_index_recent_and_feed(
    settings: Settings, store: Store, write_log: list[str]
) -> None:
    base = 1_700_000_000_000
    calm = calm_history(store, "https://news.example/world/calm", base)
    calm_history(store, "https://news.example/world/other", base + 1)
    calm_history(store, "https://news.example/world/third", base + 2)
    root = site.site_dir(settings)
    site.build_site(store, root)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    write_log.clear()

    paragraphs = ["The minister said the talks failed today.",
                  "Both sides agreed to meet again next month."]  # fmt: skip
    next_version(store, calm, paragraphs, base + 3_600_000)
    change = change_from_dict(store.changes(calm.id)[-1].record)
    assert change.significant
    written = write_reports(settings, calm.url, 3, change, store=store)

    assert sorted(write_log) == sorted([
        f"reports/{archive.article_dir(calm.url).as_posix()}/v3.md",
        f"reports/{archive.article_dir(calm.url).as_posix()}/v3.html",
        "site/articles/1.html", "site/index.html", "site/recent.html", "site/feed.atom",
    ])  # fmt: skip
    assert len(written) == 6
    after = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    assert after[root / "articles" / "2.html"] == before[root / "articles" / "2.html"]
    assert after[root / "articles" / "3.html"] == before[root / "articles" / "3.html"]
    assert re.search(r"<ins>[^<]*failed", (root / "articles" / "1.html").read_text("utf-8"))
    # The incremental result is exactly what a full build gives.
    write_log.clear()
    assert site.build_site(store, root) == [] and write_log == []


def test_a_noise_change_leaves_recent_and_feed_alone(
    settings: Settings, store: Store, write_log: list[str]
) -> None:
    base = 1_700_000_000_000
    calm = calm_history(store, "https://news.example/world/calm", base)
    root = site.site_dir(settings)
    site.build_site(store, root)
    write_log.clear()
    same = ["The minister said the talks went badly today.",
            "Both sides agreed to meet again next month."]  # fmt: skip
    next_version(store, calm, same, base + 3_600_000)
    change = change_from_dict(store.changes(calm.id)[-1].record)
    assert not change.significant
    write_reports(settings, calm.url, 3, change, store=store)
    assert sorted(p for p in write_log if p.startswith("site/")) == [
        "site/articles/1.html",
        "site/index.html",
    ]


def test_the_first_update_builds_the_whole_site_and_new_watches_get_pages(
    settings: Settings, store: Store, write_log: list[str]
) -> None:
    base = 1_700_000_000_000
    calm = calm_history(store, "https://news.example/world/calm", base)
    calm_history(store, "https://news.example/world/other", base + 1)
    change = change_from_dict(store.changes(calm.id)[-1].record)
    write_reports(settings, calm.url, 2, change, store=store)
    root = site.site_dir(settings)
    assert {p.name for p in (root / "articles").iterdir()} == {"1.html", "2.html", "1", "2"}
    assert (root / "feed.atom").is_file()
    # A watch added later gets its page on the next update, nothing else is redone.
    store.add_watch("https://news.example/world/new", site="news.example", now_ms=base)
    write_log.clear()
    write_reports(settings, calm.url, 2, change, store=store)
    site_writes = sorted(p for p in write_log if p.startswith("site/"))
    assert site_writes == ["site/articles/3.html", "site/index.html"]


def test_each_version_people_read_has_a_page_of_its_own_text(store: Store, tmp_path: Path) -> None:
    calm = calm_history(store, "https://news.example/world/calm", 1_700_000_000_000)
    site.build_site(store, tmp_path)
    first = (tmp_path / "articles" / str(calm.id) / "v1.html").read_text("utf-8")
    second = (tmp_path / "articles" / str(calm.id) / "v2.html").read_text("utf-8")
    assert "<p>The minister said the talks went well today.</p>" in first
    assert "went badly" not in first
    assert "went badly" in second and 'href="v1.html"' in second  # the version before
    assert f'href="../{calm.id}.html#v2"' in second
    article = (tmp_path / "articles" / f"{calm.id}.html").read_text("utf-8")
    assert f'<a href="{calm.id}/v1.html">v1</a>' in article
    assert f'<a href="{calm.id}/v2.html">v2</a>' in article
    # times: one UTC stamp per cell, which the page's script shows in the reader's zone
    assert '<time class="when" datetime="2023-11-14T22:13:20Z">2023-11-14 22:13 UTC</time>' in (
        article
    )


def test_a_takedown_links_the_last_version_people_read(demo_home: tuple[Settings, str]) -> None:
    settings, _ = demo_home
    root = site.site_dir(settings)
    article = (root / "articles" / "1.html").read_text("utf-8")
    # v2 was noise only (a relative time ticked): it reads as v1 and has no page
    assert "<td>v2</td>" in article and not (root / "articles" / "1" / "v2.html").exists()
    link = '<a href="1/v4.html">the last version people read: v4</a>'
    assert article.count(link) == 2  # the timeline's takedown row and the takedown report
    last = (root / "articles" / "1" / "v4.html").read_text("utf-8")
    assert "白宫表示" in last


def test_the_daemon_keeps_the_data_folder_site_current(demo_home: tuple[Settings, str]) -> None:
    settings, _ = demo_home
    root = site.site_dir(settings)
    assert (root / "index.html").is_file() and (root / "articles" / "1.html").is_file()
    index = (root / "index.html").read_text("utf-8")
    assert '<tr data-state="gone">' in index and "article removed" in index
    feed = feedparser.parse((root / "feed.atom").read_bytes())
    assert not feed.bozo
    assert [e.summary for e in feed.entries] == [
        "article removed",
        "1 paragraph added",
        "1 paragraph edited",
    ]
    assert (root / "index.html").stat().st_mode & 0o777 == 0o644
    # What the daemon built change by change equals a build from scratch.
    store = api.open_store(settings)
    try:
        assert site.build_site(store, root) == []
    finally:
        store.close()


def test_a_failing_site_update_does_not_stop_the_reports(
    settings: Settings, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    calm = calm_history(store, "https://news.example/world/calm", 1_700_000_000_000)
    site.site_dir(settings).parent.mkdir(parents=True, exist_ok=True)
    site.site_dir(settings).write_text("a file where the site folder should be")
    change = change_from_dict(store.changes(calm.id)[-1].record)
    written = write_reports(settings, calm.url, 2, change, store=store)
    assert [p.suffix for p in written] == [".md", ".html"]
    assert "cannot update the report site" in caplog.text


def test_a_rebuild_removes_pages_of_removed_watches(store: Store, tmp_path: Path) -> None:
    calm_history(store, "https://news.example/world/calm", 1_700_000_000_000)
    other = calm_history(store, "https://news.example/world/other", 1_700_000_000_001)
    site.build_site(store, tmp_path)
    (tmp_path / "articles" / "notes.html").write_text("mine")
    store.remove_watch(other.url)
    site.build_site(store, tmp_path)
    # its version pages' folder too; files not the site's own are left alone
    assert {p.name for p in (tmp_path / "articles").iterdir()} == {"1.html", "1", "notes.html"}


# -- the report fragment -------------------------------------------------------------------


def test_the_fragment_is_the_page_body_without_the_page(store: Store) -> None:
    watch = hostile_history(store, "https://news.example/world/hostile", 1_700_100_000_000)
    change = change_from_dict(store.changes(watch.id)[-1].record)
    fragment = render_html_fragment(change, heading_level=4)
    page = render_html(change)
    assert "<html" not in fragment and "<style" not in fragment and "<h1" not in fragment
    assert fragment.count("<h4>") == page.count("<h3>") > 0
    body = re.sub(r"</?h[34]>", "", fragment)
    for piece in re.sub(r"</?h[34]>", "", page).split("\n"):
        if piece.startswith(("<li", "<p", "<dt", "<details")):
            assert piece in body


# -- the repository queries the site uses, on SQLite and PostgreSQL --------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/watcher.db"
        upgrade(url)
        opened = Store.open(url)
        yield opened
        opened.close()
        return
    schema = f"site_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except SQLAlchemyError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL unavailable: {str(getattr(exc, 'orig', exc)).splitlines()[0]}")
    url = make_url(PG_ADMIN_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    url_text = url.render_as_string(hide_password=False)
    try:
        upgrade(url_text)
        opened = Store.open(url_text)
        yield opened
        opened.close()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_recent_and_latest_change_queries(any_store: Store) -> None:
    base = 1_700_000_000_000
    a = calm_history(any_store, "https://news.example/a", base)
    b = hostile_history(any_store, "https://news.example/b", base + 5000)
    tick = "https://news.example/tick"
    c = store_history(any_store, tick, [
        snap(tick, "Tick", ["A paragraph that will not change at all here."], base + 9000),
        snap(tick, "Tick", ["A paragraph that will not change at all here."], base + 900_000),
    ])  # fmt: skip
    recent = any_store.recent_changes(verdict="significant", limit=10)
    assert [r.watch_id for r in recent] == [b.id, a.id]
    assert [r.watch_id for r in any_store.recent_changes(limit=1)] == [c.id]
    assert any_store.recent_changes(limit=0) == []
    latest = any_store.latest_changes_by_watch(verdict="significant")
    assert set(latest) == {a.id, b.id} and latest[b.id].url == b.url
    assert set(any_store.latest_changes_by_watch()) == {a.id, b.id, c.id}


# -- the command ---------------------------------------------------------------------------


def test_watcher_site_builds_a_site_anywhere(
    demo_home: tuple[Settings, str], tmp_path: Path
) -> None:
    settings, _ = demo_home
    runner = CliRunner()
    target = tmp_path / "public"
    result = runner.invoke(main, ["--home", str(settings.home), "site", str(target)])
    assert result.exit_code == 0, result.output
    # index, recent, feed, the article page and its three versions people read
    assert "7 files written" in result.output
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == [
        "articles/1.html", "articles/1/v1.html", "articles/1/v3.html", "articles/1/v4.html",
        "feed.atom", "index.html", "recent.html",
    ]  # fmt: skip
    daemon_site = site.site_dir(settings)
    assert (target / "index.html").read_bytes() == (daemon_site / "index.html").read_bytes()
    again = runner.invoke(main, ["--home", str(settings.home), "site", str(target)])
    assert "0 files written" in again.output
    bad = runner.invoke(main, ["--home", str(settings.home), "site", str(target), "--tz", "Mars/X"])
    assert bad.exit_code == 2 and "unknown time zone" in bad.output
    help_text = runner.invoke(main, ["site", "--help"]).output
    assert "Example:" in help_text and "--base-url" in help_text
