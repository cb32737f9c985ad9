"""Property-based tests: hostile bodies, titles and URLs, generated.

Hypothesis writes random HTML fragments that mix every construct of issue 10
(script, handlers, scripted URLs in all their spellings, frames, SVG, base,
meta refresh, CSS url()) with random text: CJK, controls, bidi overrides,
lone surrogates. Each stage must take what it is given: the snapshot reader,
the article parser, the differ, every report format, the site's pages and
the feed raise nothing but :class:`WatcherError`, and no HTML they write
(nor the Markdown as a renderer shows it) holds an executable construct.
The extract stage must leave no scripted URL in a body.

Deterministic in CI: examples are derived from the test (``derandomize``),
no example database is written, and each test runs ~150 examples.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.test_hostile_outputs import (
    ATOM,
    MARKUP,
    RAW_CONSTRUCTS,
    SCRIPTED_HREFS,
    SCRIPTED_URLS,
    body_urls,
    executable_constructs,
    markdown_html,
    markdown_links_and_images,
    scripted_in_body,
)
from watcher import report
from watcher import snapshot as snapshot_mod
from watcher.article import parse_article
from watcher.diff import diff_snapshots
from watcher.errors import WatcherError
from watcher.extract import extract
from watcher.models import Change, Snapshot, change_to_dict
from watcher.outputs import site
from watcher.store import ChangeRecord, ChangeVerdict

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- what hostile input looks like -------------------------------------------------------

_SPECIAL = (
    "<>&\"'=/:;()[]!`*_#~|\\ \t\n\r\x00\x01\x0c\x1b\x7f\x85\x9b\u200e\u202e\u2066\u3000\ud800\udfff"
)
TEXT = st.text(
    st.one_of(
        st.sampled_from(_SPECIAL),
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),  # CJK
        st.characters(codec=None, exclude_categories=()),  # anything, lone surrogates too
    ),
    max_size=30,
)
URL = st.one_of(
    st.sampled_from(SCRIPTED_URLS + SCRIPTED_HREFS),
    st.builds(
        str.__add__,
        st.sampled_from(
            [
                "https://news.example/",
                "http://a/",
                "javascript:",
                "java&#x09;script:",
                "&#x01;javascript:",
                "data:text/html,",
                "//evil.example/",
                "",
                "  JaVaScRiPt:",
            ]
        ),
        TEXT,
    ),
)
INLINE_TAGS = ("b", "i", "span", "time", "em", "strong", "sup")
BLOCK_TAGS = ("p", "h2", "li", "blockquote", "figcaption", "div", "td", "section", "ul")


def _attr(value: str) -> str:
    """Into a double-quoted attribute; "&" left alone, so entity spellings reach the parser."""
    return value.replace('"', "&quot;")


def _element(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    kids = st.lists(children, max_size=4).map("".join)
    return st.one_of(
        st.builds(
            lambda tag, inner: f"<{tag}>{inner}</{tag}>",
            st.sampled_from(INLINE_TAGS + BLOCK_TAGS),
            kids,
        ),
        st.builds(lambda url, inner: f'<a href="{_attr(url)}">{inner}</a>', URL, kids),
        st.builds(
            lambda src, alt, caption: (
                f'<figure><img src="{_attr(src)}" alt="{_attr(alt)}" srcset="{_attr(src)} 2x">'
                f"<figcaption>{caption}</figcaption></figure>"
            ),
            URL,
            TEXT,
            kids,
        ),
        st.builds(lambda src: f'<iframe src="{_attr(src)}"></iframe>', URL),
        st.builds(lambda handler: f'<svg onload="{_attr(handler)}"><rect/></svg>', TEXT),
    )


FRAGMENT = st.recursive(
    st.one_of(
        TEXT.map(html.escape),
        TEXT,  # raw: may open or close tags at random
        st.sampled_from((*MARKUP, RAW_CONSTRUCTS)),
        st.sampled_from(MARKUP).map(html.escape),
    ),
    _element,
    max_leaves=12,
)
BODY = st.builds(lambda inner: f"<main>{inner}</main>", FRAGMENT) | FRAGMENT
TITLE = st.one_of(TEXT, st.sampled_from(MARKUP), st.builds(str.__add__, TEXT, FRAGMENT))
SNAPSHOT = st.builds(
    Snapshot,
    url=URL,
    title=TITLE,
    body=BODY,
    captured_at=st.one_of(st.none(), st.integers(min_value=-(2**62), max_value=2**62)),
)


def tolerated(call: Callable[[], Any]) -> Any:
    """Run ``call``; WatcherError is a refusal, which is allowed (None)."""
    try:
        return call()
    except WatcherError:
        return None


# -- the parsers ------------------------------------------------------------------------------


@PROPERTY
@given(text=st.one_of(TEXT, st.builds(snapshot_mod.render, SNAPSHOT), BODY))
def test_the_snapshot_reader_takes_any_text(text: str) -> None:
    parsed = tolerated(lambda: snapshot_mod.parse(text, "<generated>"))
    assert parsed is None or isinstance(parsed, Snapshot)


@PROPERTY
@given(snap=SNAPSHOT)
def test_a_snapshot_written_reads_back(snap: Snapshot) -> None:
    parsed = tolerated(lambda: snapshot_mod.parse(snapshot_mod.render(snap), "<generated>"))
    assert parsed is None or isinstance(parsed, Snapshot)


@PROPERTY
@given(snap=SNAPSHOT)
def test_the_article_parser_takes_any_body(snap: Snapshot) -> None:
    article = parse_article(snap)
    assert article.url == snap.url


# -- the differ and every report format --------------------------------------------------------

_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SGR = re.compile(r"\x1b\[[0-9;]*m")


def check_reports(change: Change) -> None:
    """Every format renders; none carries anything executable or a control."""
    page = report.render(change, "html", tz="Asia/Shanghai")
    assert executable_constructs(page) == []
    assert executable_constructs(report.render_html_fragment(change)) == []
    markdown = report.render(change, "md")
    assert markdown_links_and_images(markdown) == []
    assert executable_constructs(markdown_html(markdown)) == []
    assert not _CONTROLS.search(report.render(change, "text"))
    assert not _CONTROLS.search(_SGR.sub("", report.render(change, "text", color=True)))
    assert isinstance(json.loads(report.render(change, "json")), dict)


@PROPERTY
@given(old=SNAPSHOT, new=SNAPSHOT)
def test_the_differ_and_every_report_take_any_pair(old: Snapshot, new: Snapshot) -> None:
    change = tolerated(lambda: diff_snapshots(old, new))
    if change is not None:
        check_reports(change)


@PROPERTY
@given(old=SNAPSHOT, body=BODY, title=TITLE)
def test_an_edit_of_a_hostile_article_reports_safely(old: Snapshot, body: str, title: str) -> None:
    """Same URL and a shared paragraph: the differ aligns and shows inline edits."""
    shared = "<p>The minister said the talks went well today in the capital.</p>"
    before = Snapshot(old.url, old.title, f"<main>{shared}{old.body}</main>", 1_700_000_000_000)
    after = Snapshot(old.url, title, f"<main>{shared}{body}</main>", 1_700_000_600_000)
    change = tolerated(lambda: diff_snapshots(before, after))
    if change is not None:
        check_reports(change)


# -- the site's pages and the feed --------------------------------------------------------------

_FEED_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _record(change: Change, url: str, summary: str) -> ChangeRecord:
    return ChangeRecord(
        id=1,
        watch_id=1,
        url=url,
        old_version_id=1,
        new_version_id=2,
        created_at=0,
        verdict=ChangeVerdict.SIGNIFICANT,
        kinds=tuple(str(k) for k in change.kinds),
        summary=summary,
        record=change_to_dict(change),
        reverted_to_version_id=None,
    )


@PROPERTY
@given(old=SNAPSHOT, new=SNAPSHOT, summary=TITLE, base=st.sampled_from(["", "https://w.example"]))
def test_site_pages_and_the_feed_take_any_change(
    old: Snapshot, new: Snapshot, summary: str, base: str
) -> None:
    change = tolerated(lambda: diff_snapshots(old, new))
    if change is None:
        return
    record = _record(change, new.url, summary)
    row = site.IndexRow(1, new.url, new.title, new.title, summary, 2, record)
    for page in (site.render_index([row]), site.render_recent([record])):
        allowed = {site.TIME_JS, site.TIME_JS + site._INDEX_JS}  # the site's own, by hash
        assert executable_constructs(page, allowed_scripts=allowed) == []
    feed = etree.fromstring(site.render_feed([record], base_url=base).encode("utf-8"))
    for el in feed.iter(f"{ATOM}title", f"{ATOM}summary"):
        assert not _FEED_UNSAFE.search(el.text or "")
    for link in feed.iter(f"{ATOM}link"):
        assert not _FEED_UNSAFE.search(link.get("href") or "")
    for content in feed.iter(f"{ATOM}content"):
        assert executable_constructs(content.text or "") == []


# -- the extract stage ------------------------------------------------------------------------


@PROPERTY
@given(body=BODY, title=TITLE, head=st.sampled_from(["", *MARKUP[3:6]]))
def test_extract_leaves_no_scripted_url_in_a_body(body: str, title: str, head: str) -> None:
    page = f"<html><head><title>{title}</title>{head}</head><body>{body}</body></html>"
    extracted = extract(page, "https://news.example/a")
    assert [u for u in body_urls(extracted.body_html) if scripted_in_body(*u)] == []
    found = executable_constructs(extracted.body_html)
    kept = ("<iframe> element", "<embed> element", "<object> element")  # article content
    assert [f for f in found if f not in kept and "data:image/" not in f] == []
