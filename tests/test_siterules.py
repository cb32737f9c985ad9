"""Per-site extraction rules (``[sites."host"]``): real pages served on
127.0.0.1, checked by the real pipeline into a real database (SQLite and
PostgreSQL), with the rules given as the config file would give them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.env import PipelineEnv, make_env
from tests.support.http_server import LocalServer, Request
from tests.support.newsroom import LEAD, Newsroom
from watcher import siterules
from watcher import snapshot as snapshot_mod
from watcher.config import Config, SiteRules
from watcher.errors import WatcherError
from watcher.extract import extract
from watcher.models import change_from_dict
from watcher.report import render
from watcher.store import ChangeVerdict, CheckOutcome, Store

ARTICLE = "/zhongwen/simp/world-59301487"
HOST = "127.0.0.1"
SEED = snapshot_mod.read(Path(__file__).resolve().parents[1] / "seeds" / "000_f45fe6e83c05ee36.txt")
NEW_LEAD = "预计将持续约三个小时。"
# A "related stories" box inside the article's <main>, whose entries rotate.
RELATED_ITEM = '<li><a href="/zhongwen/simp/world-1">台湾问题成焦点</a> <time>5 分钟前</time></li>'
ROTATED_ITEM = (
    '<li><a href="/zhongwen/simp/world-2">白宫发布会晤细节</a> <time>1 分钟前</time></li>'
)
RELATED = f'<aside class="related"><h2>相关报道</h2><ul>{RELATED_ITEM}</ul></aside>'
# A site shell whose own <main> is a "most read" list; the story is outside it.
MOST_READ = (
    '<main class="shell"><h2>最多阅读</h2><ol>'
    + "".join(
        f'<li><a href="/zhongwen/simp/chinese-news-{n}">热门文章 {n}</a></li>' for n in range(5)
    )
    + "</ol></main>"
)
STORY = SEED.body.replace('<main role="main">', '<div class="story-body">').replace(
    "</main>", "</div>"
)


@pytest.fixture
def site() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


@pytest.fixture
def env(store: Store, db_url: str, tmp_path: Path, site: LocalServer) -> PipelineEnv:
    return make_env(PipelineEnv, store, db_url, tmp_path, site)


def use_rules(
    env: PipelineEnv, *, body: tuple[str, ...] = (), ignore: tuple[str, ...] = ()
) -> None:
    """The site's rules from now on, as a config file with ``[sites."127.0.0.1"]`` gives them."""
    rules = SiteRules(HOST, body=body, ignore=ignore)
    env.settings = replace(env.settings, config=Config(sites={HOST: rules}))


def serve(env: PipelineEnv, main: str, path: str = ARTICLE) -> Newsroom:
    room = Newsroom(title=SEED.title, main=main, url=env.site.url(path))
    env.site.route(path, room.respond)
    return room


def archived_text(env: PipelineEnv, url: str, seq: int) -> str:
    """What the archive holds of version ``seq``: the text a reader sees there."""
    return env.store.version_text(env.versions(url)[seq - 1].id)


def with_related() -> str:
    return SEED.body.replace("</main>", f"{RELATED}</main>")


# -- (a) ignore -------------------------------------------------------------------
def test_an_ignored_block_changing_is_no_change_at_all(env: PipelineEnv) -> None:
    page = Newsroom(title=SEED.title, main=with_related()).page()
    assert "相关报道" in extract(page, env.site.url(ARTICLE)).body_html  # without the rule
    use_rules(env, ignore=("aside.related",))
    room = serve(env, with_related())
    url = env.add(ARTICLE)
    env.check(url)

    env.clock.advance(30)
    room.edit(RELATED_ITEM, ROTATED_ITEM)  # the box rotates; the article does not change
    result = env.check(url)

    assert result.outcome is CheckOutcome.UNCHANGED and result.change is None
    assert env.changes(url) == [] and len(env.versions(url)) == 1
    text = archived_text(env, url, 1)
    assert "相关报道" not in text and "台湾问题成焦点" not in text
    assert LEAD in text  # the article itself is all there


# -- (b) body ---------------------------------------------------------------------
def test_a_body_rule_finds_the_article_the_page_structure_hides(env: PipelineEnv) -> None:
    page = Newsroom(title=SEED.title, main=MOST_READ + STORY).page()
    misled = extract(page, env.site.url(ARTICLE)).body_html
    assert "热门文章 0" in misled and LEAD not in misled  # <main> is the site's shell
    use_rules(env, body=("div.story-body",))
    room = serve(env, MOST_READ + STORY)
    url = env.add(ARTICLE)
    env.check(url)

    env.clock.advance(30)
    room.edit(LEAD, NEW_LEAD)
    result = env.check(url)

    text = archived_text(env, url, 1)
    assert LEAD in text and "热门文章" not in text
    assert result.outcome is CheckOutcome.NEW_VERSION and result.change is not None
    assert result.change.significant and "paragraph_edited" in result.change.kinds
    assert NEW_LEAD in archived_text(env, url, 2)


# -- (c) a rules change re-baselines once -------------------------------------------
def test_new_rules_give_one_rules_change_then_normal_diffs(env: PipelineEnv) -> None:
    room = serve(env, with_related())
    url = env.add(ARTICLE)
    env.check(url)
    assert "相关报道" in archived_text(env, url, 1)
    first_change_at = env.watch(url).last_change_at

    use_rules(env, ignore=("aside.related",))
    env.clock.advance(30)
    rebased = env.check(url)  # the very same bytes as before

    checks = env.checks(url)
    assert checks[0].body_sha256 == checks[1].body_sha256
    assert rebased.outcome is CheckOutcome.NEW_VERSION and rebased.change is not None
    [change] = env.changes(url)
    assert (change.kinds, change.verdict) == (("rules",), ChangeVerdict.NOISE)
    assert change.summary == "noise only: extraction rules changed; new baseline"
    report = render(change_from_dict(change.record), "text")
    assert "Extraction rules changed; new baseline" in report and "ignore: aside.related" in report
    assert "相关报道" not in archived_text(env, url, 2)
    assert env.watch(url).last_change_at == first_change_at  # noise: not a change of the article

    env.clock.advance(30)
    assert env.check(url).outcome is CheckOutcome.UNCHANGED  # once only

    env.clock.advance(30)
    room.edit(LEAD, NEW_LEAD)
    room.edit(RELATED_ITEM, ROTATED_ITEM)
    edited = env.check(url)

    assert edited.change is not None and edited.change.significant
    assert set(edited.change.kinds) == {"paragraph_edited", "header_time"}  # not the box
    assert [c.verdict for c in env.changes(url)] == [ChangeVerdict.NOISE, ChangeVerdict.SIGNIFICANT]


def test_new_rules_are_applied_even_when_the_server_answers_304(env: PipelineEnv) -> None:
    body = Newsroom(title=SEED.title, main=with_related()).page().encode("utf-8")

    def respond(req: Request) -> None:
        if req.headers.get("If-None-Match") == '"v1"':
            req.respond(304, headers={"ETag": '"v1"'})
        else:
            req.respond(200, body, headers={"ETag": '"v1"'})

    env.site.route(ARTICLE, respond)
    url = env.add(ARTICLE)
    env.check(url)
    env.clock.advance(30)
    assert env.check(url).outcome is CheckOutcome.NOT_MODIFIED

    use_rules(env, ignore=("aside.related",))
    env.clock.advance(30)
    result = env.check(url)

    assert result.outcome is CheckOutcome.NEW_VERSION
    assert [c.kinds for c in env.changes(url)] == [("rules",)]
    env.clock.advance(30)
    assert env.check(url).outcome is CheckOutcome.NOT_MODIFIED  # back to cheap checks


def test_removing_the_rules_re_baselines_too(env: PipelineEnv) -> None:
    serve(env, with_related())
    use_rules(env, ignore=("aside.related",))
    url = env.add(ARTICLE)
    env.check(url)
    assert env.versions(url)[0].page_metadata["site_rules"] == siterules.fingerprint(
        env.settings.config.rules_for(HOST)
    )

    env.settings = replace(env.settings, config=Config())
    env.clock.advance(30)
    env.check(url)

    [change] = env.changes(url)
    assert (change.kinds, change.verdict) == (("rules",), ChangeVerdict.NOISE)
    assert "相关报道" in archived_text(env, url, 2)
    assert "site_rules" not in env.versions(url)[1].page_metadata


# -- (d) a body rule that matches nothing ---------------------------------------------
def test_a_body_rule_matching_nothing_falls_back_and_says_so(
    env: PipelineEnv, caplog: pytest.LogCaptureFixture
) -> None:
    use_rules(env, body=("div.article-text",))  # the site was redesigned since
    serve(env, SEED.body)
    url = env.add(ARTICLE)

    with caplog.at_level(logging.WARNING, logger="watcher.extract"):
        result = env.check(url)

    assert result.outcome is CheckOutcome.NEW_VERSION
    assert LEAD in archived_text(env, url, 1)  # the usual extraction: not an empty article
    [version] = env.versions(url)
    assert version.page_metadata["body_rule_unmatched"] == "div.article-text"
    [warning] = [r for r in caplog.records if r.name == "watcher.extract"]
    assert warning.levelno == logging.WARNING
    assert url in warning.getMessage() and "div.article-text" in warning.getMessage()


def test_the_rules_notes_are_not_metadata_changes(env: PipelineEnv) -> None:
    """A body rule that stops matching changes the body, not the page's metadata."""
    room = serve(env, STORY)
    use_rules(env, body=("div.story-body",))
    url = env.add(ARTICLE)
    env.check(url)

    env.clock.advance(30)
    room.main = SEED.body  # redesigned: the class is gone, <main> is back
    result = env.check(url)

    # the same article, found the usual way: <main> for <div> is markup, not news
    assert result.change is not None and not result.change.significant
    assert "metadata" not in result.change.kinds and "rules" not in result.change.kinds
    assert env.versions(url)[1].page_metadata["body_rule_unmatched"] == "div.story-body"


# -- (e) a real page ------------------------------------------------------------------
def test_a_real_page_with_an_ignore_rule_for_its_feed_footer(
    env: PipelineEnv, corpus: Path
) -> None:
    """A DW capture from a feed archive ends in the aggregator's footer
    (``<hr><div>获取更多RSS：…``); the site's rule ignores it."""
    snap = snapshot_mod.read(corpus / "snapshots" / "dw" / "2.md")
    assert "获取更多RSS" in snap.body
    main = f"<article>{snap.body}</article>"
    use_rules(env, ignore=("hr + div",))
    room = Newsroom(title=snap.title, main=main, url=env.site.url(ARTICLE))
    env.site.route(ARTICLE, room.respond)
    url = env.add(ARTICLE)
    env.check(url)

    env.clock.advance(60)
    room.edit("https://feedx.xyz", "https://feedx.org")  # the footer changes
    result = env.check(url)

    assert result.outcome is CheckOutcome.UNCHANGED and env.changes(url) == []
    text = archived_text(env, url, 1)
    assert "获取更多RSS" not in text and "feedx" not in text
    assert "邹宗翰/杨威廉" in text  # the article's last line is kept
    assert "苹果公司周一表示" in text


# -- the pieces ----------------------------------------------------------------------
def test_a_site_without_rules_keeps_its_stored_body_hash() -> None:
    """Databases written before rules existed keep their raw-body shortcut."""
    sha = "ab" * 32
    assert siterules.body_digest(sha, None) == sha
    assert siterules.body_digest(sha, SiteRules(HOST)) == sha  # a section with no selector
    ruled = siterules.body_digest(sha, SiteRules(HOST, ignore=("aside",)))
    assert ruled not in (None, sha)
    assert ruled != siterules.body_digest(sha, SiteRules(HOST, ignore=("nav",)))


def test_a_bad_selector_is_named() -> None:
    assert siterules.selector_error("aside.related") is None
    assert siterules.selector_error("div[") is not None
    page = Newsroom(title=SEED.title, main=SEED.body).page()
    with pytest.raises(WatcherError, match=r"sites\.\"127\.0\.0\.1\".*'div\['"):
        extract(page, "http://127.0.0.1/a", SiteRules(HOST, body=("div[",)))
