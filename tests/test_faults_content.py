"""The fault matrix, content half (issue 10): whatever a 200 carries, one check
row says what happened, earlier versions stay as they were, and the daemon
goes on with the other watches.

Every case runs on a real server on 127.0.0.1 through the real fetcher and
pipeline (on SQLite and PostgreSQL, except the decoding matrix, which is
about bytes, not databases). The established article is the seed, served by
the test newsroom; each case then swaps what its address answers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CORPUS, corpus_files
from tests.support.content_faults import (
    DECLARATIONS,
    FOREIGN_ARTICLE,
    PAGES,
    PARAGRAPH,
    SEED,
    SOFT_404,
    cjk_page,
    declared,
    deep,
    front_page,
    headlines_page,
    pdf,
    png,
    refresh,
    seed_page,
)
from tests.support.env import PipelineEnv, make_env
from tests.support.http_server import LocalServer, Request
from tests.support.newsroom import LEAD, Newsroom
from tests.support.passes import daemon_pass
from watcher import api
from watcher import fetch as fetch_mod
from watcher import snapshot as snapshot_mod
from watcher.article import parse_article
from watcher.diff import soft_removal
from watcher.extract import TITLE_MAX, refresh_target
from watcher.importer import import_paths
from watcher.models import change_from_dict
from watcher.outputs.reports import report_paths
from watcher.pipeline import CheckResult, Pipeline
from watcher.store import (
    ChangeVerdict,
    CheckOutcome,
    Store,
    VersionRecord,
    WatchRecord,
    WatchState,
    open_engine,
    upgrade,
)

ARTICLE = "/zhongwen/simp/world-59301487"
OTHER = "/zhongwen/simp/other-article"
DAY_MINUTES = 24 * 60


class Env(PipelineEnv):
    """The shared pipeline environment, plus what the fault cases need."""

    def daemon_pass(self) -> None:
        """A day later, one daemon pass over every due watch."""
        self.clock.advance(DAY_MINUTES)
        daemon_pass(self.settings, self.store, clock=self.clock)

    def established(self, path: str = ARTICLE) -> tuple[str, VersionRecord]:
        """The seed article served at ``path`` and checked once: version 1."""
        room = Newsroom(title=SEED.title, main=SEED.body, url=self.site.url(path))
        self.site.route(path, room.respond)
        url = self.add(path)
        assert self.check(url).outcome is CheckOutcome.NEW_VERSION
        [v1] = self.versions(url)
        self.clock.advance(30)
        return url, v1

    def intact(self, url: str, v1: VersionRecord) -> None:
        """Version 1 is still the only version, its text as stored, and no change."""
        [version] = self.versions(url)
        assert (version.id, version.content_sha256) == (v1.id, v1.content_sha256)
        text = self.store.version_text(v1.id)
        assert hashlib.sha256(text.encode("utf-8")).hexdigest() == v1.content_sha256
        assert self.changes(url) == []


@pytest.fixture
def site() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


def _env(store: Store, db_url: str, tmp_path: Path, site: LocalServer) -> Env:
    return make_env(Env, store, db_url, tmp_path, site)


@pytest.fixture
def env(store: Store, db_url: str, tmp_path: Path, site: LocalServer) -> Env:
    return _env(store, db_url, tmp_path, site)


@pytest.fixture
def sqlite_env(tmp_path: Path, site: LocalServer) -> Iterator[Env]:
    """The decoding matrix: SQLite only (the bytes, not the database, vary)."""
    url = f"sqlite:///{tmp_path}/watcher.db"
    upgrade(url)
    engine = open_engine(url)
    yield _env(Store(engine), url, tmp_path, site)
    engine.dispose()


# -- what a 200 can be ---------------------------------------------------------------
NOT_ARTICLES = {
    # case: (body, content type, the reason recorded)
    "pdf": (pdf(), "application/pdf", "not an article: application/pdf (12 KB)"),
    "image": (png(), "image/png", "not an article: image/png (3 KB)"),
    "text-plain": (
        ("美国总统拜登与中国国家主席习近平开始视频会晤。\n" * 20).encode(),
        "text/plain; charset=utf-8",
        "not an article: text/plain (1 KB)",
    ),
    "empty": (b"", "text/html; charset=utf-8", "not an article: empty body, text/html (0 bytes)"),
    "blank": (b"  \r\n\t ", "text/html", "not an article: empty body, text/html (6 bytes)"),
    "octet-stream": (b"\x00\x01binary" * 10, "application/octet-stream", "not an article: "),
    "truncated-in-head": (
        b'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>\xe6\x8b\x9c',
        "text/html; charset=utf-8",
        "not an article: no article text in text/html (",
    ),
    "script-only-shell": (
        b'<html><head><title>BBC</title></head><body><div id="root"></div>'
        b"<script>render(window.__DATA__)</script></body></html>",
        "text/html",
        "not an article: no article text in text/html (",
    ),
}


@pytest.mark.parametrize("case", list(NOT_ARTICLES), ids=list(NOT_ARTICLES))
def test_a_200_that_is_not_an_article_is_a_failed_check_not_a_version(env: Env, case: str) -> None:
    body, content_type, reason = NOT_ARTICLES[case]
    url, v1 = env.established()
    env.site.page(OTHER, seed_page())
    other = env.add(OTHER)
    env.site.page(ARTICLE, body, content_type=content_type)

    env.daemon_pass()  # the other watch is checked in the same pass

    check = env.checks(url)[-1]
    assert check.outcome is CheckOutcome.ERROR
    assert check.error is not None and check.error.startswith(reason), check.error
    assert check.http_status == 200
    assert check.body_sha256 == hashlib.sha256(body).hexdigest()  # the evidence
    env.intact(url, v1)
    watch = env.watch(url)
    assert watch.claimed_by is None and watch.failure_count == 1
    assert [v.seq for v in env.versions(other)] == [1]

    # the article comes back: no change at all, since nothing was stored meanwhile
    env.site.route(ARTICLE, Newsroom(title=SEED.title, main=SEED.body, url=url).respond)
    env.clock.advance(DAY_MINUTES)
    assert env.check(url).outcome is CheckOutcome.UNCHANGED
    env.intact(url, v1)
    assert env.watch(url).failure_count == 0


def test_a_body_cut_short_on_the_wire_is_a_failed_check(env: Env) -> None:
    url, v1 = env.established()
    page = seed_page().encode()

    @env.site.route(ARTICLE)
    def _(req: Request) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "text/html; charset=utf-8")
        req.send_header("Content-Length", str(len(page)))
        req.end_headers()
        req.wfile.write(page[: len(page) // 3])
        req.wfile.flush()
        req.hang_up()

    result = env.check(url)

    assert result.outcome is CheckOutcome.ERROR and result.error
    assert env.checks(url)[-1].error == result.error
    env.intact(url, v1)


def test_a_first_check_of_a_pdf_stores_nothing(env: Env) -> None:
    env.site.page("/report.pdf", pdf(), content_type="application/pdf")
    url = env.add("/report.pdf")

    result = env.check(url)

    assert (result.outcome, result.status) == (CheckOutcome.ERROR, 200)
    assert result.error == "not an article: application/pdf (12 KB)"
    assert env.versions(url) == []


def test_an_unlabelled_html_page_is_still_an_article(env: Env) -> None:
    env.site.page(ARTICLE, seed_page(), content_type="")
    url = env.add(ARTICLE)
    assert env.check(url).outcome is CheckOutcome.NEW_VERSION


# -- odd HTML ----------------------------------------------------------------------
def test_a_page_without_main_or_article_gets_a_version_from_readability(env: Env) -> None:
    paragraphs = "".join(
        f"<p>{PARAGRAPH}第{i}段，外界对会晤可能达成的成果期待不高，双方将继续沟通。</p>"
        for i in range(8)
    )
    page = (
        '<html><head><meta charset="utf-8"><title>拜登和习近平视像会晤</title></head><body>'
        '<div class="nav"><a href="/">首页</a> <a href="/news">新闻</a></div>'
        f'<div class="story-body"><h1>拜登和习近平视像会晤</h1>{paragraphs}</div>'
        '<div class="footer">© BBC</div></body></html>'
    )
    env.site.page(ARTICLE, page)
    url = env.add(ARTICLE)

    assert env.check(url).outcome is CheckOutcome.NEW_VERSION

    [version] = env.versions(url)
    text = env.store.version_text(version.id)
    assert "第0段" in text and "第7段" in text


def test_20000_deep_nesting_loses_no_content(env: Env) -> None:
    """libxml2 stops at 2048 levels and drops the rest of the page: the page is
    flattened first, so the article reads the same as without the nesting."""
    url, _ = env.established()
    env.site.page(ARTICLE, deep(seed_page(url)))

    result = env.check(url)

    assert result.outcome is CheckOutcome.NEW_VERSION
    assert result.change is not None and not result.change.significant  # markup only
    old, new = (parse_article(env.store.version_snapshot(v)) for v in env.versions(url))
    assert [b.text for b in new.blocks] == [b.text for b in old.blocks]


def test_20000_deep_nesting_without_main_loses_no_content(env: Env) -> None:
    paragraphs = "".join(f"<p>{PARAGRAPH}第{i}段，外界对会晤期待不高。</p>" for i in range(6))
    page = (
        "<html><head><title>深</title></head><body>"
        + "<div>" * 20_000
        + paragraphs
        + "</div>" * 20_000
        + f"<p>{PARAGRAPH}最后一段。</p></body></html>"
    )
    env.site.page(ARTICLE, page)
    url = env.add(ARTICLE)

    assert env.check(url).outcome is CheckOutcome.NEW_VERSION
    text = env.store.version_text(env.versions(url)[0].id)
    assert "第0段" in text and "第5段" in text


def test_nul_bytes_are_dropped_like_a_browser_does(env: Env) -> None:
    url, v1 = env.established()
    page = seed_page(url, **{PARAGRAPH: PARAGRAPH[:5] + "\x00" + PARAGRAPH[5:]})
    page = page.replace("<title>", "<title>\x00", 1).replace('alt="', 'alt="\x00', 1)
    env.site.page(ARTICLE, page.encode())

    result = env.check(url)

    assert result.outcome is CheckOutcome.UNCHANGED  # the same article, NULs aside
    env.intact(url, v1)


def test_invalid_utf8_becomes_replacement_characters_only_where_it_is(env: Env) -> None:
    url, v1 = env.established()
    raw = seed_page(url).encode()
    at = raw.index(PARAGRAPH.encode()) + len(PARAGRAPH[:5].encode())
    env.site.page(ARTICLE, raw[:at] + b"\xff\xfe\xc3" + raw[at:])

    result = env.check(url)

    assert result.outcome is CheckOutcome.NEW_VERSION
    text = env.store.version_text(env.versions(url)[1].id)
    damaged = PARAGRAPH[:5] + "\ufffd" * 3 + PARAGRAPH[5:]  # one per undecodable byte
    assert damaged in text and "\ufffd" not in text.replace(damaged, "")
    assert LEAD in text
    assert env.versions(url)[0].content_sha256 == v1.content_sha256


def _no_surrogates(text: str) -> bool:
    return not any(0xD800 <= ord(char) <= 0xDFFF for char in text)


def test_lone_surrogates_never_reach_the_database_or_the_reports(env: Env) -> None:
    url, _ = env.established()
    ld = '{"@type": "NewsArticle", "headline": "会晤\\ud800开始", "author": {"name": "BBC\\udc00"}}'
    page = seed_page(
        url,
        **{
            "</head>": f'<script type="application/ld+json">{ld}</script></head>',
            LEAD: LEAD[:4] + "&#xD800;" + LEAD[4:],
        },
    ).encode()
    at = page.index(PARAGRAPH.encode())
    page = page[:at] + b"\xed\xa0\x80" + page[at:]  # a UTF-8-encoded surrogate
    env.site.page(ARTICLE, page)

    result = env.check(url)

    assert result.outcome is CheckOutcome.NEW_VERSION
    v2 = env.versions(url)[1]
    assert _no_surrogates(env.store.version_text(v2.id))
    assert _no_surrogates(json.dumps(v2.page_metadata, ensure_ascii=False))
    assert v2.page_metadata["headline"] == "会晤\ufffd开始"
    [change] = env.changes(url)
    [reports] = env.store.deliveries(change_id=change.id, channel="reports")
    assert reports.state == "sent"  # its reports were written
    for path in report_paths(url, 2):
        assert _no_surrogates((env.settings.reports_dir / path).read_text("utf-8"))


# -- encodings -----------------------------------------------------------------------
@pytest.mark.parametrize("declaration", DECLARATIONS)
@pytest.mark.parametrize("codec", list(PAGES))
def test_cjk_pages_decode_to_the_same_article_howeverdeclared(
    sqlite_env: Env, codec: str, declaration: str
) -> None:
    """Version 1 is the page in UTF-8; the same page in a legacy encoding,
    declared well, not at all or wrongly, is the same article: unchanged."""
    env = sqlite_env
    page, content_type = declared(codec, declaration)
    env.site.page(ARTICLE, cjk_page(codec))  # UTF-8, undeclared
    url = env.add(ARTICLE)
    assert env.check(url).outcome is CheckOutcome.NEW_VERSION
    env.site.page(ARTICLE, page.encode(codec), content_type=content_type)
    env.clock.advance(30)

    result = env.check(url)

    assert result.outcome is CheckOutcome.UNCHANGED, env.store.version_text(
        env.versions(url)[-1].id
    )
    [version] = env.versions(url)
    assert version.title == PAGES[codec][0]


NON_TEXT_CODECS = {
    "header-base64": ("text/html; charset=base64", ""),
    "header-idna": ("text/html; charset=idna", ""),
    "header-hex": ("text/html; charset=hex", ""),
    "header-utf7": ("text/html; charset=utf-7", ""),
    "meta-rot13": ("text/html", '<meta charset="rot13">'),
    "meta-zlib": (
        "text/html",
        '<meta http-equiv="Content-Type" content="text/html; charset=zlib">',
    ),
}


@pytest.mark.parametrize("case", list(NON_TEXT_CODECS), ids=list(NON_TEXT_CODECS))
def test_a_codec_that_is_no_charset_is_ignored(env: Env, case: str) -> None:
    content_type, meta = NON_TEXT_CODECS[case]
    page = seed_page(**{'<meta charset="utf-8">': meta})
    env.site.page(ARTICLE, page.encode(), content_type=content_type)
    url = env.add(ARTICLE)

    result = env.check(url)

    assert result.outcome is CheckOutcome.NEW_VERSION, result.error
    assert PARAGRAPH in env.store.version_text(env.versions(url)[0].id)
    assert env.versions(url)[0].title == SEED.title


def test_any_error_in_the_fetch_is_an_error_check_and_releases_the_lease(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug below the fetch (here a codec that raises) no longer escapes the
    check: the watch gets an error row and its back-off, the others go on."""
    decode = fetch_mod.decode_body

    def broken(body: bytes, content_type: str | None) -> tuple[str, str]:
        if b"BROKEN" in body:
            raise LookupError("'base64' is not a text encoding")
        return decode(body, content_type)

    monkeypatch.setattr(fetch_mod, "decode_body", broken)
    env.site.page("/broken", "<html><body><main><p>BROKEN</p></main></body></html>")
    env.site.page(OTHER, seed_page())
    bad, good = env.add("/broken"), env.add(OTHER)

    env.daemon_pass()

    [check] = env.checks(bad)
    assert check.outcome is CheckOutcome.ERROR
    assert check.error is not None and "LookupError" in check.error
    watch = env.watch(bad)
    assert watch.claimed_by is None and watch.failure_count == 1
    assert watch.next_check_at > env.clock()
    assert [v.seq for v in env.versions(good)] == [1]


def test_a_check_that_crashes_is_recorded_and_released_by_the_dispatcher(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = Pipeline.check

    async def crashing(self: Pipeline, watch: WatchRecord) -> CheckResult:
        if watch.url.endswith("/crash"):
            raise RuntimeError("a bug in a check")
        return await check(self, watch)

    monkeypatch.setattr(Pipeline, "check", crashing)
    env.site.page("/crash", seed_page())
    env.site.page(OTHER, seed_page())
    bad, good = env.add("/crash"), env.add(OTHER)

    env.daemon_pass()

    [row] = env.checks(bad)
    assert row.outcome is CheckOutcome.ERROR and "a bug in a check" in (row.error or "")
    assert env.watch(bad).claimed_by is None and env.watch(bad).failure_count == 1
    assert [v.seq for v in env.versions(good)] == [1]


# -- title, refresh, soft 404, front page ---------------------------------------------
def test_a_1mb_title_is_cut_to_a_sane_length(env: Env) -> None:
    url, v1 = env.established()
    huge = "很长的标题" * 200_000  # a million characters
    page = seed_page(url, **{f'<meta property="og:title" content="{SEED.title}">': ""})
    env.site.page(ARTICLE, page.replace("<title>", f"<title>{huge}", 1))

    result = env.check(url)

    assert result.outcome is CheckOutcome.NEW_VERSION
    v2 = env.versions(url)[1]
    assert v2.title is not None and len(v2.title) <= TITLE_MAX and v2.title.endswith("…")
    assert len(env.store.version_text(v2.id)) < len(env.store.version_text(v1.id)) + TITLE_MAX * 4
    assert env.versions(url)[0].content_sha256 == v1.content_sha256


def test_a_meta_refresh_is_followed_like_a_redirect(env: Env) -> None:
    url, v1 = env.established()
    moved = Newsroom(title=SEED.title, main=SEED.body, url=env.site.url("/moved"))
    env.site.route("/moved", moved.respond)
    env.site.page(ARTICLE, refresh("/moved"))

    result = env.check(url)

    assert result.outcome is CheckOutcome.NEW_VERSION  # the same article at its new address
    check = env.checks(url)[-1]
    assert (check.redirects, check.final_url) == ((url,), env.site.url("/moved"))
    assert result.change is not None and "redirected" in result.change.kinds
    assert not [k for k in result.change.kinds if k.startswith("paragraph")]
    assert env.versions(url)[0].content_sha256 == v1.content_sha256


def test_a_meta_refresh_to_the_front_page_is_the_article_gone(env: Env) -> None:
    url, v1 = env.established()
    env.site.page("/", front_page())
    env.site.page(ARTICLE, refresh("/"))

    result = env.check(url)

    assert (result.outcome, result.status) == (CheckOutcome.GONE, 200)
    check = env.checks(url)[-1]
    assert check.final_url == env.site.url("/") and "front page" in (check.error or "")
    [change] = env.changes(url)
    assert change.kinds == ("gone",) and change.new_version_id is None
    assert [v.id for v in env.versions(url)] == [v1.id]


def test_a_slow_self_refresh_is_not_a_redirect(env: Env) -> None:
    url, v1 = env.established()
    env.site.page(
        ARTICLE, seed_page(url, **{"</head>": '<meta http-equiv="refresh" content="600"></head>'})
    )
    assert env.check(url).outcome is CheckOutcome.UNCHANGED
    env.intact(url, v1)


@pytest.mark.parametrize(
    ("head", "target"),
    [
        ('<meta http-equiv="refresh" content="0; url=/moved">', "http://h.test/moved"),
        ("<meta http-equiv=Refresh content=\"2;URL='/m?a=1&amp;b=2'\">", "http://h.test/m?a=1&b=2"),
        ('<meta content="0;http://h.test/x" http-equiv="refresh">', "http://h.test/x"),
        ('<meta http-equiv="refresh" content="600">', None),  # a reload, not a redirect
        ('<meta http-equiv="refresh" content="30; url=/later">', None),  # a page to read first
        ('<meta http-equiv="refresh" content="0; url=/a">', None),  # itself
        ('<meta http-equiv="refresh" content="0; url=javascript:go()">', None),
        ('<noscript><meta http-equiv="refresh" content="0; url=/nojs"></noscript>', None),
    ],
)
def test_which_meta_refresh_is_a_redirect(head: str, target: str | None) -> None:
    assert (
        refresh_target(f"<html><head>{head}</head><body></body></html>", "http://h.test/a")
        == target
    )


@pytest.mark.parametrize("case", list(SOFT_404), ids=list(SOFT_404))
def test_a_soft_404_is_the_article_gone_not_an_edit(env: Env, case: str) -> None:
    url, v1 = env.established()
    env.site.page(ARTICLE, SOFT_404[case])

    gone = env.check(url)

    assert (gone.outcome, gone.status) == (CheckOutcome.GONE, 200)
    assert env.watch(url).state is WatchState.GONE
    check = env.checks(url)[-1]
    assert check.error is not None and "soft 404" in check.error
    [change] = env.changes(url)
    assert change.kinds == ("gone",) and change.verdict is ChangeVerdict.SIGNIFICANT
    [item] = change_from_dict(change.record).items
    assert "soft 404" in item.detail and "HTTP 200" in item.detail
    assert [v.id for v in env.versions(url)] == [v1.id]

    env.clock.advance(60)  # still the soft 404: quiet
    assert env.check(url).outcome is CheckOutcome.GONE
    assert len(env.changes(url)) == 1

    env.site.route(ARTICLE, Newsroom(title=SEED.title, main=SEED.body, url=url).respond)
    env.clock.advance(60)
    back = env.check(url)
    assert back.outcome is CheckOutcome.REAPPEARED
    assert "reappeared" in env.changes(url)[-1].kinds


@pytest.mark.parametrize("canonical", [True, False], ids=["canonical-root", "link-list"])
def test_an_article_replaced_by_the_front_page_is_gone(env: Env, canonical: bool) -> None:
    url, v1 = env.established()
    # headlines with summaries (few links) at the root, or a list of many links
    env.site.page(ARTICLE, headlines_page(env.site.url("/")) if canonical else front_page())

    result = env.check(url)

    assert (result.outcome, result.status) == (CheckOutcome.GONE, 200)
    assert "front page" in (env.checks(url)[-1].error or "")
    [change] = env.changes(url)
    assert change.kinds == ("gone",)
    assert [v.id for v in env.versions(url)] == [v1.id]


def test_a_heavily_cut_article_is_an_edit_not_a_removal(env: Env) -> None:
    url, _ = env.established()
    body = (
        '<main role="main"><h1>拜登和习近平视像会晤开始</h1>'
        "<p>本文已更新：会晤结束，双方未发表联合声明，详情请见后续报道。404 名记者到场采访。</p></main>"
    )
    env.site.route(ARTICLE, Newsroom(title=SEED.title, main=body, url=url).respond)

    result = env.check(url)

    assert result.outcome is CheckOutcome.NEW_VERSION
    assert result.change is not None and result.change.significant
    assert "gone" not in result.change.kinds


PAIRS = [p for p in corpus_files("pairs/*") if p.is_dir()]


@pytest.mark.skipif(not PAIRS, reason=f"real-article corpus not found at {CORPUS}")
def test_no_real_pair_is_taken_for_a_removal() -> None:
    """The soft-404 and front-page signals fire on no real edit, either way round."""
    fired = []
    for pair in PAIRS:
        v1, v2 = (parse_article(snapshot_mod.read(pair / f"v{n}.md")) for n in (1, 2))
        for old, new in ((v1, v2), (v2, v1)):
            reason = soft_removal(old, new, page_url=old.url)
            if reason is not None:
                fired.append((pair.name, reason))
    assert fired == []


# -- canonical poisoning ------------------------------------------------------------
def test_another_sites_canonical_is_ignored(env: Env, tmp_path: Path) -> None:
    """A page here claiming to be the BBC article is stored under its own
    address; exported and imported next to the real article, it does not
    give the real one a fake change."""
    fake = seed_page(FOREIGN_ARTICLE, **{LEAD: "预计将持续约三个小时。（伪造）"})
    env.site.page("/fake", fake)
    url = env.add("/fake")
    assert env.check(url).outcome is CheckOutcome.NEW_VERSION
    [version] = env.versions(url)
    snap = env.store.version_snapshot(version)
    assert snap.url == url and "canonical_url" not in version.page_metadata

    assert api.export_archive(env.store, tmp_path / "export") == 1
    fresh_url = f"sqlite:///{tmp_path}/fresh.db"
    upgrade(fresh_url)
    fresh = Store.open(fresh_url)
    try:
        seeds = Path(__file__).resolve().parents[1] / "seeds"
        import_paths(fresh, tmp_path / "fresh-archive", [seeds], workers=1)
        import_paths(fresh, tmp_path / "fresh-archive", [tmp_path / "export"], workers=1)
        real = fresh.get_watch(FOREIGN_ARTICLE)
        assert real is not None
        assert len(fresh.versions(real.id)) == 1 and fresh.changes(real.id) == []
        assert fresh.get_watch(url) is not None
    finally:
        fresh.close()


def test_a_canonical_on_the_same_site_still_counts(env: Env) -> None:
    canonical = env.site.url("/zhongwen/simp/the-canonical-address")
    page = seed_page().replace(
        '<link rel="canonical" href="">', f'<link rel="canonical" href="{canonical}">'
    )
    env.site.page(ARTICLE + "-amp", page)
    url = env.add(ARTICLE + "-amp")
    assert env.check(url).outcome is CheckOutcome.NEW_VERSION
    [version] = env.versions(url)
    assert env.store.version_snapshot(version).url == canonical


# -- error statuses -----------------------------------------------------------------
@pytest.mark.parametrize("status", [429, 500, 503])
def test_an_error_status_is_recorded_on_the_check(env: Env, status: int) -> None:
    url, v1 = env.established()
    env.site.page(ARTICLE, "busy", status=status, headers={"Retry-After": "0"})

    result = env.check(url)

    assert (result.outcome, result.status, result.error) == (
        CheckOutcome.ERROR,
        status,
        f"HTTP {status}",
    )
    check = env.checks(url)[-1]
    assert (check.http_status, check.error) == (status, f"HTTP {status}")
    env.intact(url, v1)
