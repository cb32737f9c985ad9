"""Site and feed boilerplate: seeds on real pairs, learning by import and by
the daemon on a real local server, and what must never be learned."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import CORPUS
from tests.support.http_server import LocalServer
from watcher import api, snapshot
from watcher.article import parse_article
from watcher.boilerplate import (
    THRESHOLD,
    Boilerplate,
    fingerprint,
    fingerprints,
    host_of,
    story,
)
from watcher.diff import diff_snapshots
from watcher.fetch import Fetcher
from watcher.importer import import_paths
from watcher.models import Block, BlockKind, Link, Verdict
from watcher.pipeline import Pipeline
from watcher.settings import Settings
from watcher.store import Store, open_engine, upgrade

HOST = "https://news.example.org"
FOOTER = "<p>本文由<a href='/about'>新闻网</a>授权转载，转载请注明出处并保留链接。</p>"
EDITED_FOOTER = "<p>本文由<a href='/about'>新闻网</a>授权发布，转载请注明出处并保留本文链接。</p>"
ADDED = "<p>警方周二表示，已有三名嫌疑人被捕。</p>"


TOPICS = (
    "台风登陆",
    "议会选举",
    "强烈地震",
    "股市大跌",
    "疫情反弹",
    "奥运开幕",
    "外交访问",
    "油价上涨",
    "铁路通车",
)


def _body(n: int, footer: str = FOOTER, extra: str = "") -> str:
    """Article ``n``: its own story (a topic of its own), the site's footer."""
    topic = TOPICS[n]
    return (
        f"<main><h1>第{n}篇报道</h1><p>这是关于{topic}的导语，编号{n}。</p>"
        f"<p>第二段讲述了{topic}的来龙去脉。</p>{extra}{footer}</main>"
    )


def _copy(n: int, second: str = "第二段讲述了事情的来龙去脉，警方仍在调查。") -> str:
    """One wire story as the site's copy ``n`` of it carries it: numbered."""
    return (
        f"<main><h1>同一篇通稿</h1><p>这是同一篇通稿的导语，各个版本完全相同。（第 {n} 号稿件）</p>"
        f"<p>{second}</p>{FOOTER}</main>"
    )


def _seed(url: str, title: str, body: str, epoch: int) -> str:
    return snapshot.render_header(title, url, epoch) + body + "\n"


def _store(path: Path) -> Store:
    path.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{path}/watcher.db"
    upgrade(url)
    return Store.open(url)


# -- what a fingerprint is ------------------------------------------------------------
def _para(text: str, *links: str) -> Block:
    return Block(BlockKind.PARAGRAPH, text, text, links=tuple(Link("/x", t) for t in links))


def test_a_footer_that_repeats_the_title_or_a_date_has_one_fingerprint() -> None:
    one = _para("The post Story one appeared first on Daily News 2020.", "Story one", "Daily")
    two = _para("The post Other story appeared first on Daily News 2021.", "Other story", "Daily")
    assert fingerprint(one, "Story one") == fingerprint(two, "Other story") is not None


@pytest.mark.parametrize(
    "text", ["2021-01-22T01:08:23Z", "12345", "Related link", "x" * 500], ids=str.__len__
)
def test_stamps_numbers_lone_links_and_long_paragraphs_are_never_learned(text: str) -> None:
    links = ("Related link",) if text == "Related link" else ()
    assert fingerprint(_para(text, *links), "title") is None


def test_hosts_are_sites_without_www() -> None:
    assert (
        host_of("https://www.rfa.org/mandarin/a.html") == host_of("http://rfa.org/b") == "rfa.org"
    )


def test_copies_of_a_story_tell_one_story_and_briefs_with_a_long_footer_differ() -> None:
    copies = {story(parse_article(_snap(_copy(n)))) for n in range(3)}
    assert len(copies) == 1 and None not in copies
    briefs = {story(parse_article(_snap(_body(n)))) for n in range(3)}  # footer is longest
    assert len(briefs) == 3


def _snap(html: str) -> snapshot.Snapshot:
    return snapshot.parse(_seed(f"{HOST}/a.html", "t", html, 1_700_000_000_000))


# -- the seed list, on real pairs ---------------------------------------------------------
LABELS = CORPUS / "pairs" / "labels.json"


@pytest.mark.parametrize(
    ("pair", "footer"),
    [
        ("a003", "获取更多RSS (feedx)"),
        ("a024", "CDT © … Permalink … Post tags gained a tag"),
        ("a041", "Better Feed credit and copyright lines added"),
    ],
)
def test_feed_footers_alone_are_boilerplate_noise(corpus: Path, pair: str, footer: str) -> None:
    old = snapshot.read(corpus / "pairs" / pair / "v1.md")
    new = snapshot.read(corpus / "pairs" / pair / "v2.md")
    change = diff_snapshots(old, new)
    assert change.verdict is Verdict.NOISE, (footer, change.summary)
    assert "boilerplate" in change.kinds and "markup_only" not in change.kinds
    labelled = json.loads(LABELS.read_text(encoding="utf-8"))["pairs"][pair]
    assert labelled["significant"]  # the script labels call these news: they are not


def test_a_footer_that_repeats_a_changed_title_follows_the_title(corpus: Path) -> None:
    """a015: the title lost a column suffix; the "appeared first on" footer that
    repeats it is boilerplate, so the change is the title alone."""
    old = snapshot.read(corpus / "pairs" / "a015" / "v1.md")
    new = snapshot.read(corpus / "pairs" / "a015" / "v2.md")
    change = diff_snapshots(old, new)
    assert [i.kind for i in change.items if i.significant] == ["title"]
    assert "boilerplate" in change.kinds


# -- learned from an imported archive --------------------------------------------------
def _archive(folder: Path, articles: int, *, host: str = HOST) -> None:
    for n in range(articles):
        url = f"{host}/news/{n}.html"
        (folder / f"{n}-v1.md").write_text(
            _seed(url, f"第{n}篇报道", _body(n), 1_700_000_000_000), encoding="utf-8"
        )


def _import(tmp_path: Path, articles: int, v2: str, *, host: str = HOST) -> str:
    folder = tmp_path / "in"
    folder.mkdir()
    _archive(folder, articles, host=host)
    url = f"{host}/news/0.html"
    (folder / "0-v2.md").write_text(
        _seed(url, "第0篇报道", v2, 1_700_003_600_000), encoding="utf-8"
    )
    store = _store(tmp_path / "data")
    try:
        import_paths(store, tmp_path / "archive", [folder], workers=1)
        watch = store.get_watch(url)
        assert watch is not None
        [change] = store.changes(watch.id)
        return change.summary
    finally:
        store.close()


def test_an_import_learns_the_sites_footer_before_classifying(tmp_path: Path) -> None:
    """Five other articles carry the footer; this one's newest file edits it."""
    summary = _import(tmp_path, THRESHOLD + 1, _body(0, EDITED_FOOTER))
    assert summary == "noise only: stated time changed, site boilerplate changed"


def test_too_few_articles_teach_nothing(tmp_path: Path) -> None:
    summary = _import(tmp_path, THRESHOLD, _body(0, EDITED_FOOTER))
    assert summary.startswith("1 paragraph edited")


def test_a_sentence_added_to_one_article_is_never_boilerplate(tmp_path: Path) -> None:
    summary = _import(tmp_path, THRESHOLD + 3, _body(0, extra=ADDED))
    assert summary.startswith("1 paragraph added")


def test_an_import_counts_copies_of_one_story_once(tmp_path: Path) -> None:
    """A wire story at six URLs: its paragraphs are not the site's, and an
    edit of one is news."""
    folder = tmp_path / "in"
    folder.mkdir()
    for n in range(THRESHOLD + 1):
        url = f"{HOST}/news/{n}.html"
        (folder / f"{n}-v1.md").write_text(
            _seed(url, "同一篇通稿", _copy(n), 1_700_000_000_000), encoding="utf-8"
        )
    edited = _copy(0, "第二段讲述了事情的来龙去脉，警方已逮捕两人。")
    (folder / "0-v2.md").write_text(
        _seed(f"{HOST}/news/0.html", "同一篇通稿", edited, 1_700_003_600_000), encoding="utf-8"
    )
    store = _store(tmp_path / "data")
    try:
        import_paths(store, tmp_path / "archive", [folder], workers=1)
        watch = store.get_watch(f"{HOST}/news/0.html")
        assert watch is not None
        [change] = store.changes(watch.id)
        assert change.verdict == "significant"
        assert "paragraph_edited" in change.kinds and "boilerplate" not in change.kinds
    finally:
        store.close()


def test_learning_is_per_site(tmp_path: Path) -> None:
    """The footer is common on another site, not on this article's."""
    folder = tmp_path / "other"
    folder.mkdir()
    _archive(folder, THRESHOLD, host="https://elsewhere.example.net")
    store = _store(tmp_path / "data")
    try:
        import_paths(store, tmp_path / "archive", [folder], workers=1)
        assert store.boilerplate_fingerprints("elsewhere.example.net", THRESHOLD)
        assert not store.boilerplate_fingerprints("news.example.org", THRESHOLD)
    finally:
        store.close()


# -- learned by the daemon as it goes ----------------------------------------------------------
def _page(n: int, body: str) -> bytes:
    return f"<html><head><title>第{n}篇报道</title></head><body>{body}</body></html>".encode()


def _check(settings: Settings, store: Store, urls: list[str]) -> None:
    async def run() -> None:
        async with Fetcher(settings.fetch_settings()) as fetcher:
            pipeline = Pipeline(store, fetcher, settings)
            for url in urls:
                watch = store.get_watch(url)
                assert watch is not None
                await pipeline.check(watch)

    asyncio.run(run())


def test_the_daemon_learns_boilerplate_as_it_goes(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    settings = Settings.from_env(
        {}, home=tmp_path, database_url=db_url, retries=0, timeout=5.0, allow_hosts="127.0.0.1"
    )
    with LocalServer() as site:
        urls = []
        for n in range(THRESHOLD):
            site.page(f"/news/{n}.html", _page(n, _body(n)))
            urls.append(site.url(f"/news/{n}.html"))
        api.add_watches(store, urls)
        _check(settings, store, urls)  # first captures: the footer is seen on 5 articles
        assert Boilerplate.of(store.boilerplate_fingerprints("127.0.0.1", THRESHOLD))

        site.page("/news/0.html", _page(0, _body(0, EDITED_FOOTER)))
        site.page("/news/1.html", _page(1, _body(1, extra=ADDED)))
        _check(settings, store, urls[:2])

    footer_change = store.changes(store.get_watch(urls[0]).id)[-1]  # type: ignore[union-attr]
    assert footer_change.verdict == "noise"
    assert footer_change.kinds == ("boilerplate", "header_time")
    news = store.changes(store.get_watch(urls[1]).id)[-1]  # type: ignore[union-attr]
    assert news.verdict == "significant"
    assert news.kinds == ("header_time", "paragraph_added")


def test_the_daemon_counts_copies_of_one_story_once(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    """Six URLs of one site carry the same story; an edit of its second
    paragraph on one of them is news, not boilerplate."""
    settings = Settings.from_env(
        {}, home=tmp_path, database_url=db_url, retries=0, timeout=5.0, allow_hosts="127.0.0.1"
    )
    with LocalServer() as site:
        urls = []
        for n in range(THRESHOLD + 1):
            site.page(f"/wire/{n}.html", _page(n, _copy(n)))
            urls.append(site.url(f"/wire/{n}.html"))
        api.add_watches(store, urls)
        _check(settings, store, urls)
        site.page(
            "/wire/0.html", _page(0, _copy(0, "第二段讲述了事情的来龙去脉，警方已逮捕两人。"))
        )
        _check(settings, store, urls[:1])

    change = store.changes(store.get_watch(urls[0]).id)[-1]  # type: ignore[union-attr]
    assert change.verdict == "significant"
    assert change.kinds == ("header_time", "paragraph_edited")


def test_sightings_from_before_migration_0005_count_per_watch(db_url: str) -> None:
    """Rows recorded before stories were: each stands for its own watch, so
    what a database had learned stays learned; new rows count per story."""
    upgrade(db_url, revision="0004")
    engine = open_engine(db_url)
    try:
        with engine.begin() as conn:
            for n in range(THRESHOLD):
                conn.execute(
                    text(
                        "INSERT INTO watches (url, site, state, tags, created_at, next_check_at,"
                        " failure_count, unchanged_count)"
                        " VALUES (:u, 'news.example.org', 'active', '[]', 1, 1, 0, 0)"
                    ),
                    {"u": f"{HOST}/old/{n}.html"},
                )
            conn.execute(
                text(
                    "INSERT INTO block_sightings (host, fingerprint, watch_id)"
                    " SELECT 'news.example.org', '00112233445566aa', id FROM watches"
                )
            )
        upgrade(db_url)
        store = Store(engine)
        assert store.boilerplate_fingerprints("news.example.org", THRESHOLD) == {"00112233445566aa"}
        ids = [w.id for w in api.list_watches(store)]
        for watch_id in ids[:2]:  # two URLs, one story
            store.record_sightings("news.example.org", watch_id, {"00112233445566bb"}, "s1")
        assert "00112233445566bb" not in store.boilerplate_fingerprints("news.example.org", 2)
    finally:
        engine.dispose()


def test_a_versions_fingerprints_skip_its_own_paragraphs(seed_path: Path) -> None:
    """A real article's long paragraphs never become sightings; short lines may."""
    article = parse_article(snapshot.read(seed_path))
    long_blocks = [b for b in article.blocks if len(b.text) > 400]
    assert all(fingerprint(b, article.title) is None for b in long_blocks)
    assert len(fingerprints(article)) < len(article.blocks)
