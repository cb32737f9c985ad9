"""One watch checked end to end: a real server on 127.0.0.1, the real pipeline,
and a real database (every test runs on SQLite and on PostgreSQL).

The page is the seed article served as a full page by the test newsroom,
which edits it between checks; only the pipeline's clock is simulated, so
"14 分钟前" can honestly become "1 小时前".
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.support.env import PipelineEnv, make_env
from tests.support.http_server import LocalServer, Request
from tests.support.newsroom import LEAD, Newsroom
from tests.support.passes import daemon_pass
from watcher import api, archive, scheduler
from watcher import fetch as fetch_mod
from watcher import snapshot as snapshot_mod
from watcher.article import parse_article
from watcher.errors import StoreError
from watcher.fetch import Fetcher
from watcher.models import change_from_dict
from watcher.outputs.reports import report_paths
from watcher.parsed import ParsedVersions
from watcher.pipeline import Pipeline
from watcher.settings import Settings
from watcher.store import (
    ChangeVerdict,
    CheckOutcome,
    DeliveryState,
    QuietCheck,
    Store,
    Transaction,
    VersionRecord,
    WatchState,
)

ARTICLE = "/zhongwen/simp/world-59301487"
SEED = snapshot_mod.read(Path(__file__).resolve().parents[1] / "seeds" / "000_f45fe6e83c05ee36.txt")
NEW_LEAD = "预计将持续约三个小时。"


Env = PipelineEnv


@pytest.fixture
def site() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


@pytest.fixture
def env(store: Store, db_url: str, tmp_path: Path, site: LocalServer) -> Env:
    return make_env(PipelineEnv, store, db_url, tmp_path, site)


def newsroom(env: Env, path: str = ARTICLE) -> Newsroom:
    """The seed article served at ``path``; edits show on the next request."""
    room = Newsroom(title=SEED.title, main=SEED.body, url=env.site.url(path))
    env.site.route(path, room.respond)
    return room


def stored_snapshot(env: Env, version: VersionRecord) -> snapshot_mod.Snapshot:
    """The version as the archive file holds it (checked against the database)."""
    assert version.archive_path is not None
    snap = snapshot_mod.read(env.settings.archive_dir / version.archive_path)
    assert snapshot_mod.content_text(snap) == env.store.version_text(version.id)
    return snap


# -- a version only when the content changes ----------------------------------------
def test_first_check_stores_a_version_and_an_unchanged_page_stores_none(env: Env) -> None:
    newsroom(env)
    url = env.add(ARTICLE)

    first = env.check(url)
    assert (first.outcome, first.status, first.version_seq) == (CheckOutcome.NEW_VERSION, 200, 1)
    [version] = env.versions(url)
    snap = stored_snapshot(env, version)
    assert (snap.title, snap.url, snap.captured_at) == (SEED.title, url, env.clock())

    env.clock.advance(10)
    second = env.check(url)
    assert second.outcome is CheckOutcome.UNCHANGED and second.change is None
    assert len(env.versions(url)) == 1
    checks = env.checks(url)
    assert [c.outcome for c in checks] == [CheckOutcome.NEW_VERSION, CheckOutcome.UNCHANGED]
    # Same raw body: recognised by its hash, before any extraction.
    assert checks[1].body_sha256 == checks[0].body_sha256 == env.watch(url).last_body_sha256
    assert checks[1].version_id is None
    assert env.watch(url).last_checked_at == env.clock()


def test_same_article_in_a_different_page_is_unchanged(env: Env) -> None:
    """Raw bytes differ (a new ad script) but the article does not: no version."""
    page = Newsroom(title=SEED.title, main=SEED.body).page()
    served = iter(range(1000))

    def serve(req: Request) -> None:  # a new ad rotation on every request
        req.respond(
            200, page.replace("window.ads = [];", f"window.ads = [{next(served)}];").encode()
        )

    env.site.route(ARTICLE, serve)
    url = env.add(ARTICLE)
    env.check(url)

    result = env.check(url)

    assert result.outcome is CheckOutcome.UNCHANGED
    assert len(env.versions(url)) == 1
    first, second = env.checks(url)
    assert first.body_sha256 != second.body_sha256  # went through extraction this time


def test_304_for_a_known_etag_is_not_modified(env: Env) -> None:
    body = Newsroom(title=SEED.title, main=SEED.body).page().encode("utf-8")

    def serve(req: Request) -> None:
        if req.headers.get("If-None-Match") == '"v1"':
            req.respond(304, headers={"ETag": '"v1"'})
        else:
            req.respond(200, body, headers={"ETag": '"v1"'})

    env.site.route(ARTICLE, serve)
    url = env.add(ARTICLE)
    assert env.check(url).outcome is CheckOutcome.NEW_VERSION

    result = env.check(url)

    assert (result.outcome, result.status) == (CheckOutcome.NOT_MODIFIED, 304)
    assert env.site.hits(ARTICLE)[1].headers.get("If-None-Match") == '"v1"'
    assert len(env.versions(url)) == 1
    assert env.checks(url)[-1].outcome is CheckOutcome.NOT_MODIFIED
    assert env.watch(url).etag == '"v1"'


# -- what changed ----------------------------------------------------------------------
def test_relative_time_tick_is_stored_as_noise(env: Env) -> None:
    room = newsroom(env)
    url = env.add(ARTICLE)
    env.check(url)
    env.clock.advance(62)
    room.edit("14 分钟前", "1 小时前")

    result = env.check(url)

    assert (result.outcome, result.version_seq) == (CheckOutcome.NEW_VERSION, 2)
    assert result.change is not None and result.change.verdict.value == "noise"
    [change] = env.changes(url)
    assert change.verdict is ChangeVerdict.NOISE
    assert "relative_time" in change.kinds
    ticks = [i for i in change_from_dict(change.record).items if i.kind == "relative_time"]
    assert [(i.before, i.after) for i in ticks] == [("14 分钟前", "1 小时前")]
    # Noise only: the version is in the database alone (export writes it), no
    # archive file and no report files; its first capture keeps its file.
    first, tick = env.versions(url)
    assert "1 小时前" in env.store.version_snapshot(tick).body
    assert tick.archive_path is None and "14 分钟前" in stored_snapshot(env, first).body
    assert sorted(p.name for p in env.settings.archive_dir.rglob("*.md")) == [
        Path(first.archive_path or "").name
    ]
    assert env.store.deliveries(change_id=change.id) == []
    assert not env.settings.reports_dir.exists() or not any(env.settings.reports_dir.rglob("*"))


def test_an_edit_after_ticks_is_filed_and_reported_and_every_version_exports(env: Env) -> None:
    """Ticks, then an edit: the edit's version has its file and reports, and
    the export rebuilds every version, the ticks too, from the database."""
    room = newsroom(env)
    url = env.add(ARTICLE)
    env.check(url)
    for minutes, before, after in ((62, "14 分钟前", "1 小时前"), (60, "1 小时前", "2 小时前")):
        env.clock.advance(minutes)
        room.edit(before, after)
        tick = env.check(url).change
        assert tick is not None and tick.verdict.value == "noise", tick
    env.clock.advance(30)
    room.edit(LEAD, NEW_LEAD)
    assert env.check(url).version_seq == 4

    versions = env.versions(url)
    assert [v.archive_path is not None for v in versions] == [True, False, False, True]
    reports = sorted(p.name for p in env.settings.reports_dir.rglob("*") if p.is_file())
    assert reports == ["v4.html", "v4.md"]
    out = env.settings.home / "export"
    assert api.export_archive(env.store, out) == 4
    paths = archive.export_paths(url, [(v.captured_at, v.archive_path) for v in versions])
    for version, relative in zip(versions, paths, strict=True):
        text = (out / relative).read_text("utf-8")
        stored = env.store.version_text(version.id)
        assert text == snapshot_mod.join_capture_time(stored, version.captured_at)
        if version.archive_path is not None:
            assert text == (env.settings.archive_dir / relative).read_text("utf-8")


def test_paragraph_edit_is_significant_reported_and_marked(env: Env) -> None:
    room = newsroom(env)
    url = env.add(ARTICLE)
    env.check(url)
    env.clock.advance(30)
    room.edit(LEAD, NEW_LEAD)

    result = env.check(url)

    assert result.change is not None and result.change.significant
    [change] = env.changes(url)
    assert change.verdict is ChangeVerdict.SIGNIFICANT
    assert "paragraph_edited" in change.kinds
    assert reports_state(env, change.id) is DeliveryState.SENT
    assert env.store.deliveries(state="pending") == []
    md, html = (env.settings.reports_dir / p for p in report_paths(url, 2))
    assert "持续~~数~~**约三**个小时" in md.read_text(encoding="utf-8")
    assert "<html" in html.read_text(encoding="utf-8").lower()
    assert env.watch(url).last_change_at == env.clock()


class DatedNewsroom(Newsroom):
    """The newsroom's page stating a modified time in its <head>, as news sites do."""

    modified = "2021-11-16T02:00:00Z"

    def page(self) -> str:
        meta = f'<meta property="article:modified_time" content="{self.modified}">'
        return super().page().replace("</head>", meta + "</head>", 1)


def test_an_edit_under_an_unchanged_modified_time_is_reported_as_undisclosed(env: Env) -> None:
    room = DatedNewsroom(title=SEED.title, main=SEED.body, url=env.site.url(ARTICLE))
    env.site.route(ARTICLE, room.respond)
    url = env.add(ARTICLE)
    env.check(url)
    env.clock.advance(30)
    room.edit(LEAD, NEW_LEAD)
    env.check(url)
    [change] = env.changes(url)
    assert change.summary == "undisclosed edit: 1 paragraph edited"
    assert change.record["undisclosed"] == DatedNewsroom.modified
    md, html = (env.settings.reports_dir / p for p in report_paths(url, 2))
    assert "**Undisclosed edit:** the text changed, but the page still states" in md.read_text(
        encoding="utf-8"
    )
    assert "<dt>Undisclosed edit</dt>" in html.read_text(encoding="utf-8")
    # the next edit comes with a new modified time: disclosed, not marked
    env.clock.advance(30)
    room.modified = "2021-11-16T03:00:00Z"
    room.edit(NEW_LEAD, "预计将持续约四个小时。")
    env.check(url)
    latest = env.changes(url)[-1]
    assert latest.summary.startswith("1 paragraph edited")  # (noise: metadata changed)
    assert "undisclosed" not in latest.record


def test_404_is_gone_and_a_later_200_is_reappeared(env: Env) -> None:
    room = newsroom(env)
    url = env.add(ARTICLE)
    env.check(url)
    room.status = 404
    env.clock.advance(60)

    gone = env.check(url)

    assert (gone.outcome, gone.status) == (CheckOutcome.GONE, 404)
    assert env.watch(url).state is WatchState.GONE
    [change] = env.changes(url)
    assert (change.kinds, change.new_version_id) == (("gone",), None)
    assert change.verdict is ChangeVerdict.SIGNIFICANT
    assert reports_state(env, change.id) is DeliveryState.SENT
    assert len(env.versions(url)) == 1

    env.clock.advance(60)  # still gone: no second "gone" change
    assert env.check(url).outcome is CheckOutcome.GONE
    assert len(env.changes(url)) == 1

    room.status = 200
    env.clock.advance(60)
    back = env.check(url)

    assert (back.outcome, back.version_seq) == (CheckOutcome.REAPPEARED, 2)
    assert env.watch(url).state is WatchState.ACTIVE
    assert "reappeared" in env.changes(url)[-1].kinds


def test_a_takedown_keeps_its_own_report_and_says_what_the_article_said(env: Env) -> None:
    room = newsroom(env)
    url = env.add(ARTICLE)
    env.check(url)
    env.clock.advance(30)
    room.edit(LEAD, NEW_LEAD)
    env.check(url)  # v2: an edit, reported in v2.md
    room.status = 404
    env.clock.advance(30)
    env.check(url)

    edit_md, _ = (env.settings.reports_dir / p for p in report_paths(url, 2))
    gone_md, gone_html = (env.settings.reports_dir / p for p in report_paths(url, 2, removed=True))
    assert "article removed" not in edit_md.read_text("utf-8")  # not overwritten
    assert gone_md.name == "v2-removed.md" and gone_html.is_file()
    takedown = gone_md.read_text("utf-8")
    assert "article removed" in takedown and "v2" in takedown
    assert NEW_LEAD in takedown  # the last archived text answers "what did it say?"


def test_history_lists_the_takedown_between_the_versions_around_it(env: Env) -> None:
    room = newsroom(env)
    url = env.add(ARTICLE)
    env.check(url)
    room.status = 404
    env.clock.advance(51)
    env.check(url)
    room.status = 200
    room.edit(LEAD, NEW_LEAD)
    env.clock.advance(3)
    env.check(url)

    entries = api.history(env.store, url).entries
    assert [(e.version.seq if e.version else None) for e in entries] == [1, None, 2]
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    assert entries[1].at == entries[0].at + 51 * 60_000  # when the 404 was seen


def test_a_gone_article_is_rechecked_from_its_own_interval(env: Env) -> None:
    room = newsroom(env)
    url = env.add(ARTICLE, interval_s=60)
    env.check(url)
    room.status = 404
    env.clock.advance(1)
    env.check(url)
    waits = [(env.watch(url).next_check_at - env.clock()) / 1000]
    for _ in range(3):
        env.clock.advance(1)
        env.check(url)
        waits.append((env.watch(url).next_check_at - env.clock()) / 1000)
    # 1, 2, 4, 8 minutes (± jitter), not a day: a quick return is seen quickly
    for wait, minutes in zip(waits, (1, 2, 4, 8), strict=True):
        assert 0.8 * minutes * 60 <= wait <= 1.2 * minutes * 60


def test_resuming_a_gone_article_keeps_it_gone_so_its_return_is_news(env: Env) -> None:
    room = newsroom(env)
    url = env.add(ARTICLE)
    env.check(url)
    room.status = 404
    env.clock.advance(60)
    env.check(url)
    api.set_paused(env.store, url, True)
    api.set_paused(env.store, url, False, now=env.clock())
    assert env.watch(url).state is WatchState.GONE
    room.status = 200  # back, unchanged
    env.clock.advance(60)
    back = env.check(url)
    assert back.outcome is CheckOutcome.REAPPEARED
    assert "reappeared" in env.changes(url)[-1].kinds


def test_redirect_is_recorded_on_the_check(env: Env) -> None:
    newsroom(env, "/news/new-address")
    env.site.redirect("/news/old-address", "/news/new-address")
    url = env.add("/news/old-address")

    result = env.check(url)

    assert result.outcome is CheckOutcome.NEW_VERSION
    [check] = env.checks(url)
    assert check.redirects == (url,)
    assert check.final_url == env.site.url("/news/new-address")
    assert env.versions(url)[0].final_url == check.final_url


def test_redirect_to_the_front_page_is_a_redirected_change(env: Env) -> None:
    newsroom(env)
    url = env.add(ARTICLE)
    env.check(url)
    front = "<html><head><title>BBC News 中文</title></head><body><main><h1>首页</h1><p>今日要闻：天气晴。</p></main></body></html>"
    env.site.page("/", front)
    env.site.redirect(ARTICLE, "/")
    env.clock.advance(30)

    result = env.check(url)

    assert result.outcome is CheckOutcome.NEW_VERSION
    assert env.checks(url)[-1].redirects == (url,)
    [change] = env.changes(url)
    assert "redirected" in change.kinds and change.verdict is ChangeVerdict.SIGNIFICANT
    [item] = [i for i in change_from_dict(change.record).items if i.kind == "redirected"]
    assert (item.before, item.after) == (url, env.site.url("/"))
    assert "front or section page" in item.detail


@pytest.mark.parametrize(
    ("content_type", "meta"),
    [
        ("text/html; charset=gbk", ""),
        ("text/html", '<meta charset="gbk">'),
        ("text/html", ""),
    ],
    ids=["header-charset", "meta-charset", "undeclared"],
)
def test_gbk_page_is_decoded(env: Env, content_type: str, meta: str) -> None:
    page = (
        Newsroom(title=SEED.title, main=SEED.body)
        .page()
        .replace('<meta charset="utf-8">', meta)
        .replace("©", "(c)")
    )
    env.site.page(ARTICLE, page.encode("gbk"), content_type=content_type)
    url = env.add(ARTICLE)

    assert env.check(url).outcome is CheckOutcome.NEW_VERSION

    [version] = env.versions(url)
    assert version.title == SEED.title == "拜登和习近平视像会晤开始 双方在讨论什么"
    text = env.store.version_text(version.id)
    assert "本次会晤由拜登总统发起，双方的开场白向外界公开" in text
    assert "\ufffd" not in text
    assert stored_snapshot(env, version).title == SEED.title


# -- failures ------------------------------------------------------------------------
def test_500_then_200_succeeds_after_a_retry(env: Env) -> None:
    body = Newsroom(title=SEED.title, main=SEED.body).page().encode("utf-8")
    answers = iter([500])

    def flaky(req: Request) -> None:
        status = next(answers, 200)
        req.respond(status, body if status == 200 else b"oops")

    env.site.route(ARTICLE, flaky)
    env.fetch = replace(env.fetch, retries=2)
    url = env.add(ARTICLE)

    result = env.check(url)

    assert (result.outcome, result.status) == (CheckOutcome.NEW_VERSION, 200)
    assert len(env.site.hits(ARTICLE)) == 2
    assert [c.outcome for c in env.checks(url)] == [CheckOutcome.NEW_VERSION]


def test_persistent_500_is_an_error_check_with_back_off(env: Env) -> None:
    env.site.page(ARTICLE, "oops", status=503)
    env.fetch = replace(env.fetch, retries=1)
    url = env.add(ARTICLE)

    for expected_failures in (1, 2, 3):
        result = env.check(url)
        assert (result.outcome, result.error) == (CheckOutcome.ERROR, "HTTP 503")
        assert env.watch(url).failure_count == expected_failures

    assert env.versions(url) == []
    assert env.checks(url)[-1].error == "HTTP 503"
    assert env.watch(url).state is WatchState.FAILING
    assert env.watch(url).next_check_at > env.clock() + env.settings.min_interval * 1000


def _streamed_without_length(body: bytes) -> object:
    def serve(req: Request) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "text/html; charset=utf-8")
        req.send_header("Connection", "close")
        req.end_headers()
        req.wfile.write(body)
        req.close_connection = True

    return serve


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_body_over_the_limit_fails_that_watch_only(
    store: Store, db_url: str, tmp_path: Path, site: LocalServer, declared: bool
) -> None:
    settings = Settings.from_env(
        {}, home=tmp_path, database_url=db_url, max_body=2000, retries=0, timeout=5.0,
        allow_hosts="127.0.0.1",
    )  # fmt: skip
    big = ("<p>" + "新闻" * 3000 + "</p>").encode("utf-8")
    if declared:
        site.page("/big", big)
    else:
        site.route("/big", _streamed_without_length(big))  # type: ignore[arg-type]
    site.page("/small", f"<html><head><title>短讯</title></head><body><p>{LEAD}</p></body></html>")
    api.add_watches(store, [site.url("/big"), site.url("/small")])

    daemon_pass(settings, store)  # one daemon pass: the dispatcher and real fetcher

    big_watch, small_watch = store.get_watch(site.url("/big")), store.get_watch(site.url("/small"))
    assert big_watch is not None and small_watch is not None
    [check] = store.recent_checks(big_watch.id)
    assert check.outcome is CheckOutcome.ERROR
    assert check.error is not None and "exceeds 2000 bytes" in check.error
    assert store.versions(big_watch.id) == []
    assert big_watch.failure_count == 1 and big_watch.claimed_by is None
    assert [v.seq for v in store.versions(small_watch.id)] == [1]


# -- history ---------------------------------------------------------------------------
def test_reverting_an_edit_points_back_to_version_1(env: Env) -> None:
    room = newsroom(env)
    url = env.add(ARTICLE)
    env.check(url)
    for old, new in ((LEAD, NEW_LEAD), (NEW_LEAD, LEAD)):
        env.clock.advance(30)
        room.edit(old, new)
        env.check(url)

    v1, v2, v3 = env.versions(url)
    assert v1.content_sha256 == v3.content_sha256 != v2.content_sha256
    last = env.changes(url)[-1]
    assert (last.old_version_id, last.new_version_id) == (v2.id, v3.id)
    assert last.reverted_to_version_id == v1.id
    [item] = [i for i in change_from_dict(last.record).items if i.kind == "reverted"]
    assert item.significant and "version 1" in item.detail
    assert item.before is None and item.after is None  # nothing to show as "+ after: 1"
    assert hashlib.sha256(env.store.version_text(v3.id).encode()).hexdigest() == v1.content_sha256


def test_coming_back_across_noise_only_is_not_news(env: Env) -> None:
    """v2 differs from v1 in markup only; v3 is v1 again: the return is noise."""
    room = newsroom(env)
    url = env.add(ARTICLE)
    env.check(url)
    word = LEAD[:4]
    for old, new in ((word, f"<span>{word}</span>"), (f"<span>{word}</span>", word)):
        env.clock.advance(30)
        room.edit(old, new)
        env.check(url)
    v1, _, v3 = env.versions(url)
    assert v3.content_sha256 == v1.content_sha256
    first, last = env.changes(url)
    assert first.verdict is ChangeVerdict.NOISE and "markup_only" in first.kinds
    assert last.verdict is ChangeVerdict.NOISE and "reverted" in last.kinds
    [item] = [i for i in change_from_dict(last.record).items if i.kind == "reverted"]
    assert not item.significant and "only noise came between" in item.detail


def test_an_article_restored_unchanged_is_reappeared_even_if_the_server_says_304(
    env: Env,
) -> None:
    """After a 404 the old ETag says nothing about what we have: ask unconditionally."""
    body = Newsroom(title=SEED.title, main=SEED.body).page().encode("utf-8")
    online = {"up": True}

    def serve(req: Request) -> None:
        if not online["up"]:
            req.respond(404, b"gone")
        elif req.headers.get("If-None-Match") == '"v1"':
            req.respond(304, headers={"ETag": '"v1"'})
        else:
            req.respond(200, body, headers={"ETag": '"v1"'})

    env.site.route(ARTICLE, serve)
    url = env.add(ARTICLE)
    env.check(url)
    online["up"] = False
    assert env.check(url).outcome is CheckOutcome.GONE
    online["up"] = True

    back = env.check(url)

    assert (back.outcome, back.status) == (CheckOutcome.REAPPEARED, 200)
    assert env.site.hits(ARTICLE)[-1].headers.get("If-None-Match") is None
    assert env.watch(url).state is WatchState.ACTIVE
    assert "reappeared" in env.changes(url)[-1].kinds


def reports_state(env: Env, change_id: int) -> DeliveryState:
    """The state of a change's ``reports`` delivery (its report files)."""
    [row] = env.store.deliveries(change_id=change_id, channel="reports")
    return row.state


def test_a_report_that_could_not_be_written_is_written_later(env: Env) -> None:
    """Store, then notify, then mark: a failed report is retried, not lost."""
    room = newsroom(env)
    url = env.add(ARTICLE)
    env.check(url)
    env.clock.advance(30)
    room.edit(LEAD, NEW_LEAD)
    env.settings.reports_dir.parent.mkdir(parents=True, exist_ok=True)
    env.settings.reports_dir.write_text("a file where the reports folder should be")

    result = env.check(url)

    assert result.outcome is CheckOutcome.NEW_VERSION  # the check itself succeeded
    assert [reports_state(env, c.id) for c in env.changes(url)] == [DeliveryState.PENDING]
    env.settings.reports_dir.unlink()
    pipeline = Pipeline(env.store, None, env.settings, clock=env.clock)  # type: ignore[arg-type]
    env.clock.advance(3600)  # past the retry's back-off
    assert pipeline.report_pending() == 1
    assert env.store.deliveries(state="pending") == []
    md, _ = (env.settings.reports_dir / p for p in report_paths(url, 2))
    assert "约三" in md.read_text(encoding="utf-8")


def test_a_crash_between_the_gone_change_and_the_release_records_it_once(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The removal, its check and the lease release commit together: a crash
    before the release leaves nothing behind, so the next check records the
    removal once (it used to commit the change first and record it again)."""
    room = newsroom(env)
    url = env.add(ARTICLE)
    env.check(url)
    room.status = 404
    env.clock.advance(60)

    def crash(*args: object, **kwargs: object) -> None:
        raise StoreError("database error: the connection went away")

    with monkeypatch.context() as patch:
        patch.setattr(Transaction, "release", crash)
        failed = env.check(url)
    assert failed.outcome is CheckOutcome.ERROR
    assert env.changes(url) == [] and env.watch(url).state is WatchState.ACTIVE

    env.clock.advance(60)
    assert env.check(url).outcome is CheckOutcome.GONE
    env.clock.advance(60)
    assert env.check(url).outcome is CheckOutcome.GONE
    assert [c.kinds for c in env.changes(url)] == [("gone",)]


def test_a_failed_check_is_written_off_the_event_loop_in_one_transaction(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.site.page(ARTICLE, b"<h1>Internal Server Error</h1>", status=500)
    url = env.add(ARTICLE)
    threads: list[str] = []
    original = Transaction.record_check

    def record_check(self: Transaction, *args: Any, **kwargs: Any) -> int:
        threads.append(threading.current_thread().name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Transaction, "record_check", record_check)
    result = env.check(url)
    assert (result.outcome, result.error) == (CheckOutcome.ERROR, "HTTP 500")
    assert threads and threading.main_thread().name not in threads
    [check] = env.checks(url)
    assert (check.outcome, check.error) == (CheckOutcome.ERROR, "HTTP 500")
    assert env.watch(url).failure_count == 1 and env.watch(url).claimed_by is None

    def crash(*args: object, **kwargs: object) -> None:
        raise StoreError("database error: the connection went away")

    monkeypatch.setattr(Transaction, "release", crash)
    env.clock.advance(60)
    env.check(url)  # logged, not raised; the check row rolled back with the release
    assert len(env.checks(url)) == 1 and env.watch(url).failure_count == 1


def test_errors_do_not_turn_a_gone_article_into_news_again(env: Env) -> None:
    room = newsroom(env)
    url = env.add(ARTICLE)
    env.check(url)
    room.status = 404
    env.clock.advance(60)
    env.check(url)
    room.status = 500
    for _ in range(4):
        env.clock.advance(60)
        env.check(url)
    assert env.watch(url).state is WatchState.GONE
    room.status = 404
    env.clock.advance(60)
    env.check(url)
    assert [c.kinds for c in env.changes(url)] == [("gone",)]


def test_check_now_leaves_a_watch_a_daemon_is_checking(env: Env) -> None:
    newsroom(env)
    url = env.add(ARTICLE)
    watch = env.watch(url)
    assert env.store.claim("other-daemon", [watch.id], env.clock(), 60_000)
    run = api.check_now(env.settings, env.store, [watch])
    assert run.busy == [url] and run.results == []
    assert env.versions(url) == []


# -- what a check that finds nothing new costs ----------------------------------------
def test_the_same_bytes_again_are_unchanged_without_being_decoded(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The raw-body hash is compared before the body is decoded; the same
    bytes sent as something else than HTML are still refused, as before."""
    body = Newsroom(title=SEED.title, main=SEED.body).page().encode("utf-8")
    sent = {"type": "text/html; charset=utf-8"}
    env.site.route(ARTICLE, lambda req: req.respond(200, body, content_type=sent["type"]))
    url = env.add(ARTICLE)
    env.check(url)
    decoded: list[str | None] = []
    decode = fetch_mod.decode_body

    def counted(raw: bytes, content_type: str | None) -> tuple[str, str]:
        decoded.append(content_type)
        return decode(raw, content_type)

    monkeypatch.setattr(fetch_mod, "decode_body", counted)
    env.clock.advance(10)
    assert env.check(url).outcome is CheckOutcome.UNCHANGED
    assert decoded == []
    assert env.checks(url)[-1].body_sha256 == hashlib.sha256(body).hexdigest()

    sent["type"] = "application/pdf"
    env.clock.advance(10)
    refused = env.check(url)
    assert refused.outcome is CheckOutcome.ERROR and decoded == ["application/pdf"]
    assert refused.error is not None and refused.error.startswith("not an article")


def test_a_daemon_pass_writes_its_unchanged_checks_in_batches(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [f"{ARTICLE}-{n}" for n in range(3)]
    for path in paths:
        newsroom(env, path)
    urls = [env.add(path) for path in paths]
    daemon_pass(env.settings, env.store, env.clock)
    batches: list[list[int]] = []
    alone: list[int] = []
    record = Store.record_quiet_checks

    def batched(self: Store, checks: list[QuietCheck]) -> None:
        batches.append([c.watch_id for c in checks])
        record(self, checks)

    def in_a_transaction(self: Transaction, checks: list[QuietCheck]) -> None:
        alone.extend(c.watch_id for c in checks)

    monkeypatch.setattr(Store, "record_quiet_checks", batched)
    monkeypatch.setattr(Transaction, "record_quiet_checks", in_a_transaction)
    env.clock.advance(60)
    daemon_pass(env.settings, env.store, env.clock)

    ids = sorted(env.watch(url).id for url in urls)
    assert sorted(i for batch in batches for i in batch) == ids and alone == []
    for url in urls:
        watch = env.watch(url)
        assert (watch.claimed_by, watch.last_checked_at) == (None, env.clock())
        assert watch.next_check_at > env.clock() and watch.unchanged_count == 1
        assert [c.outcome for c in env.checks(url)][-1] is CheckOutcome.UNCHANGED


def test_the_latest_version_kept_parsed_diffs_as_the_stored_one_does(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two watches of the same page, one checked by a pipeline that keeps its
    latest version parsed, one by a pipeline that reads it back every time:
    the same changes, the same boilerplate sightings, and only the second
    reads versions back."""
    paths = (ARTICLE, f"{ARTICLE}-twin")
    rooms = [newsroom(env, path) for path in paths]
    urls = [env.add(path) for path in paths]
    read_back: list[int] = []
    version_snapshot = Store.version_snapshot

    def counted(self: Store, version: VersionRecord) -> snapshot_mod.Snapshot:
        read_back.append(version.watch_id)
        return version_snapshot(self, version)

    monkeypatch.setattr(Store, "version_snapshot", counted)
    edits = [(62, "14 分钟前", "1 小时前"), (60, "1 小时前", "2 小时前"), (30, LEAD, NEW_LEAD)]

    async def run() -> None:
        async with Fetcher(env.fetch) as fetcher:
            kept = Pipeline(env.store, fetcher, env.settings, clock=env.clock)
            fresh = Pipeline(env.store, fetcher, env.settings, clock=env.clock)
            fresh.parsed = ParsedVersions(0)
            pipelines = (kept, fresh)
            for pipeline, url in zip(pipelines, urls, strict=True):
                await pipeline.check(env.watch(url))
            for minutes, before, after in edits:
                env.clock.advance(minutes)
                for room in rooms:
                    room.edit(before, after)
                for pipeline, url in zip(pipelines, urls, strict=True):
                    assert (await pipeline.check(env.watch(url))).change is not None

    asyncio.run(run())
    kept_id, fresh_id = (env.watch(url).id for url in urls)
    assert read_back == [fresh_id] * len(edits)

    def told(url: str) -> list[object]:
        return [
            (c.verdict, c.kinds, c.summary, change_from_dict(c.record).items)
            for c in env.changes(url)
        ]

    assert told(urls[0]) == told(urls[1])
    assert [c.verdict for c in env.changes(urls[0])] == [
        ChangeVerdict.NOISE, ChangeVerdict.NOISE, ChangeVerdict.SIGNIFICANT
    ]  # fmt: skip
    with env.store.engine.connect() as conn:
        rows = conn.execute(text("SELECT watch_id, fingerprint FROM block_sightings")).all()
    seen = {watch_id: {fp for w, fp in rows if w == watch_id} for watch_id in (kept_id, fresh_id)}
    assert seen[kept_id] == seen[fresh_id] != set()


def test_stopping_writes_the_quiet_checks_held_for_a_batch(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quiet check waits for its batch holding its watch (lease kept, in
    flight); a stop writes it and releases the watch."""
    monkeypatch.setattr(scheduler, "QUIET_WAIT_S", 3600.0)  # the batch never fills by itself
    newsroom(env)
    url = env.add(ARTICLE)
    daemon_pass(env.settings, env.store, env.clock)
    env.clock.advance(60)

    async def run() -> None:
        async with Fetcher(env.fetch) as fetcher:
            pipeline = Pipeline(env.store, fetcher, env.settings, clock=env.clock)
            dispatcher = scheduler.Dispatcher(
                env.store, pipeline, env.settings, "worker-a", env.clock
            )
            assert await dispatcher.dispatch_once() == 1
            await asyncio.gather(*dispatcher.tasks)
            assert dispatcher.in_flight == {env.watch(url).id}
            assert env.watch(url).claimed_by == "worker-a"
            assert await dispatcher.renew_leases() == 1
            await dispatcher.drain(5.0)
            assert dispatcher.in_flight == set()

    asyncio.run(run())
    watch = env.watch(url)
    assert (watch.claimed_by, watch.last_checked_at) == (None, env.clock())
    assert env.checks(url)[-1].outcome is CheckOutcome.UNCHANGED


def test_parsed_versions_keep_the_last_watches_and_only_the_version_they_were_made_from() -> None:
    snap = replace(SEED, captured_at=1_000)
    content = snapshot_mod.content_text(snap)
    sha = hashlib.sha256(content.encode("utf-8")).hexdigest()
    article = parse_article(snap)
    kept = ParsedVersions(size=2)
    for watch_id in (1, 2, 3):
        kept.put(
            watch_id, content=content, content_sha256=sha, snap=snap, article=article,
            fingerprints=frozenset({"0123456789abcdef"}),
        )  # fmt: skip
    assert len(kept) == 2 and kept.get(1, sha, 1_000) is None  # the oldest went
    entry = kept.get(2, sha, 1_000)
    assert entry is not None and entry.article == article
    assert entry.snapshot == snapshot_mod.stored(content, 1_000)
    assert entry.fingerprints == {"0123456789abcdef"}
    assert kept.get(3, sha, 2_000) is None and len(kept) == 1  # another version: dropped
    other = replace(snap, body=snap.body + "<p>not in the stored text</p>")
    kept.put(
        4, content=content, content_sha256=sha, snap=other, article=article,
        fingerprints=frozenset(),
    )  # fmt: skip
    assert kept.get(4, sha, 1_000) is None  # it would not read back as itself
