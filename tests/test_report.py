"""Reports: every format shows the same facts; archived content cannot attack the reader."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html.parser import HTMLParser
from typing import Any

import pytest

from watcher import report
from watcher.errors import ChangeRecordError, WatcherError
from watcher.models import (
    Change,
    ChangeItem,
    ChangeKind,
    Verdict,
    change_from_dict,
    change_to_dict,
)

BEFORE_MS = 1637030584000  # 2021-11-16 02:43:04 UTC = 10:43:04 in Asia/Shanghai
AFTER_MS = 1637034304000  # 2021-11-16 03:45:04 UTC = 11:45:04 in Asia/Shanghai
TIMES = (
    "2021-11-16 02:43:04 UTC",
    "2021-11-16 10:43:04 +08:00",
    "2021-11-16 03:45:04 UTC",
    "2021-11-16 11:45:04 +08:00",
)
ANSI = re.compile(r"\x1b\[")
HOSTILE = '<script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1)) "q"'
TEXT_FORMATS = ("text", "md", "html")


def _item(kind: str, significant: bool = True, location: str = "", **kw: Any) -> ChangeItem:
    return ChangeItem(ChangeKind(kind), significant, location, **kw)


def make_change(*items: ChangeItem, verdict: Verdict = Verdict.SIGNIFICANT) -> Change:
    return Change(
        url="https://news.example.com/2021/11/story.html",
        title_before="旧的标题 Old headline",
        title_after="新的标题 New headline",
        captured_before=BEFORE_MS,
        captured_after=AFTER_MS,
        items=items,
        verdict=verdict,
        summary="2 paragraphs edited; title changed",
    )


def every_kind() -> Change:
    """One item of each kind the diff stage emits, noise interleaved with edits."""
    image = {"src": "https://img.example.com/a.jpg", "origin_src": "", "alt": "", "caption": ""}
    return make_change(
        _item("header_time", False, "capture time", before=BEFORE_MS, after=AFTER_MS),
        _item(
            "title",
            location="title",
            before="旧的标题 Old headline",
            after="新的标题 New headline",
            inline=(("-", "旧的"), ("+", "新的"), ("=", "标题 "), ("-", "Old"), ("+", "New")),
        ),
        _item("relative_time", False, "#2 paragraph", before="14 分钟前", after="1 小时前"),
        _item(
            "paragraph_edited",
            location="#3 paragraph",
            before="警方称有三人受伤。",
            after="警方称有五人受伤。",
            inline=(("=", "警方称有"), ("-", "三"), ("+", "五"), ("=", "人受伤。")),
        ),
        _item("markup_only", False, "body", detail="HTML differs"),
        _item("paragraph_added", location="#4 paragraph", after="A new paragraph."),
        _item("list_item_removed", location="#5 list item", before="Gone item"),
        _item("quote_moved", location="#6 quote", before="Q", after="Q", detail="from #9 to #6"),
        _item("relative_time", False, "#7 paragraph", before="2 天前", after="3 天前"),
        _item("image_changed", location="#8 image", before=image, after={**image, "alt": "x"}),
        _item(
            "link_changed",
            location="#9 links",
            before=[{"href": "https://a.example/", "text": "A"}],
            after=[{"href": "https://b.example/", "text": "B"}],
        ),
        _item("metadata", location="og:title", before="Old", after="New"),
        _item("time", False, "#10 time", before="11月16日 10:43", after="2021-11-16 10:43"),
        _item(
            "redirected", location="url", before="https://a.example/", after="https://b.example/"
        ),
        _item("reverted", location="body", detail="same as version 2"),
        _item("link_list_edited", location="?", before={"k": 1}, after={"k": 2}),
    )


def hostile_change() -> Change:
    return make_change(
        _item(
            "paragraph_edited",
            location="#1 paragraph",
            before="safe",
            after=HOSTILE,
            inline=(("-", "safe"), ("+", HOSTILE)),
        ),
        _item("paragraph_added", location="<b>#2</b>", after=HOSTILE, detail=HOSTILE),
        _item(
            "link_changed",
            location="#3 links",
            before=[],
            after=[
                {"href": "javascript:alert(1)", "text": HOSTILE},
                {"href": " JavaScript:alert(2)", "text": "x"},
                {"href": "data:text/html,<script>alert(3)</script>", "text": "y"},
                'https://ok.example/"onmouseover="alert(4)',
            ],
        ),
        _item(
            "image_added", location="#4 image", after={"src": "javascript:alert(5)", "alt": HOSTILE}
        ),
        _item(
            "redirected", location="url", before="https://a.example/", after="javascript:alert(6)"
        ),
        _item("relative_time", False, HOSTILE, before=HOSTILE, after="1 小时前"),
    )


# -- content every format shows ------------------------------------------------


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_every_format_shows_title_url_times_in_utc_and_zone_verdict_and_summary(fmt: str) -> None:
    out = report.render(every_kind(), fmt, tz="Asia/Shanghai")
    for expected in ("新的标题 New headline", "旧的标题 Old headline", *TIMES, "Asia/Shanghai"):
        assert expected in out
    assert "https://news.example.com/2021/11/story.html" in out
    assert "significant" in out.lower()
    assert "2 paragraphs edited; title changed" in out


def test_json_holds_the_same_facts() -> None:
    data = json.loads(report.render(every_kind(), "json"))
    assert data["schema"] == 1
    assert data["verdict"] == "significant"
    assert data["captured_before"] == BEFORE_MS
    assert data["title_after"] == "新的标题 New headline"


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_an_unknown_capture_time_reads_unknown(fmt: str) -> None:
    change = replace(make_change(), captured_before=None)
    out = report.render(change, fmt, tz="Asia/Shanghai")
    assert "unknown" in out
    assert "2021-11-16 03:45:04 UTC" in out


def test_format_time_in_utc_only_and_with_a_zone() -> None:
    assert report.format_time(BEFORE_MS) == "2021-11-16 02:43:04 UTC"
    assert report.format_time(None) == "unknown"
    out = report.format_time(BEFORE_MS, report.zone_info("America/New_York"))
    assert out.endswith("2021-11-15 21:43:04 -05:00 America/New_York")


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_the_default_zone_is_utc_and_shown_once(fmt: str) -> None:
    out = report.render(every_kind(), fmt)
    assert "2021-11-16 02:43:04 UTC" in out
    assert "+08:00" not in out


@pytest.mark.parametrize("fmt", [*TEXT_FORMATS, "json"])
def test_a_change_with_no_items_renders(fmt: str) -> None:
    out = report.render(make_change(verdict=Verdict.NONE), fmt, tz="Asia/Shanghai")
    assert "新的标题 New headline" in out


# -- ordering and noise ----------------------------------------------------------


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_significant_items_in_reading_order_then_noise_summarised_last(fmt: str) -> None:
    out = report.render(every_kind(), fmt, tz="Asia/Shanghai")
    significant = ["警方称有", "A new paragraph.", "Gone item", "https://b.example/"]
    positions = [out.index(text) for text in significant]
    assert positions == sorted(positions)
    summary = (
        "Noise: capture time changed, 2 relative timestamps updated, markup only, 1 stated time"
    )
    assert summary in out
    noise_at = out.index("Noise:")
    assert noise_at > max(positions)
    assert out.index("14 分钟前") > noise_at
    assert out.index("3 天前") > noise_at


def test_html_collapses_noise_into_details() -> None:
    out = report.render_html(every_kind())
    details = out[out.index("<details") : out.index("</details>")]
    assert "<summary>Noise: capture time changed" in details
    assert "14 分钟前" in details
    assert "警方称有" not in details


def test_moved_items_and_details_are_shown() -> None:
    out = report.render_text(every_kind())
    assert "Quote moved" in out
    assert "from #9 to #6" in out
    assert "same as version 2" in out
    assert "Link list edited" in out


def test_many_noise_items_are_cut_short_in_text() -> None:
    ticks = [
        _item("relative_time", False, f"#{n} paragraph", before="1 分钟前", after="2 分钟前")
        for n in range(20)
    ]
    out = report.render_text(make_change(*ticks))
    assert "Noise: 20 relative timestamps updated" in out
    assert "… and 12 more" in out
    assert "#19 paragraph" not in out


# -- inline diffs ------------------------------------------------------------------


def test_plain_text_uses_wdiff_markers_and_no_ansi() -> None:
    out = report.render_text(every_kind(), color=False)
    assert "警方称有[-三-]{+五+}人受伤。" in out
    assert not ANSI.search(out)


def test_colour_text_uses_ansi_instead_of_markers() -> None:
    out = report.render(every_kind(), "text", color=True)
    assert ANSI.search(out)
    assert "\x1b[9;31m三\x1b[0m\x1b[4;32m五\x1b[0m" in out
    assert "[-三-]" not in out


def test_markdown_strikes_deletions_and_bolds_insertions() -> None:
    out = report.render_markdown(every_kind())
    assert "警方称有~~三~~**五**人受伤。" in out


def test_markdown_keeps_spaces_outside_emphasis_markers() -> None:
    change = make_change(_item("title", location="title", inline=(("=", "a"), ("+", " b "))))
    assert "a **b** " in report.render_markdown(change)


def test_html_uses_del_and_ins() -> None:
    out = report.render_html(every_kind())
    assert "警方称有<del>三</del><ins>五</ins>人受伤。" in out


# -- hostile content ----------------------------------------------------------------


class _Elements(HTMLParser):
    """Every start tag with its attributes, as a browser would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _elements(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(page)
    parser.close()
    return parser.tags


def test_html_has_no_script_handler_or_javascript_link() -> None:
    out = report.render_html(hostile_change(), tz="Asia/Shanghai")
    tags = _elements(out)
    names = [tag for tag, _ in tags]
    assert "script" not in names
    assert "img" not in names
    for _, attrs in tags:
        assert not [a for a in attrs if a.startswith("on")]
    hrefs = [attrs["href"] or "" for tag, attrs in tags if "href" in attrs]
    assert all(h.startswith(("https://", "http://")) for h in hrefs)
    assert 'href="javascript:' not in out.lower()
    assert "<script" not in out.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out


def test_html_links_carry_rel_and_unsafe_urls_stay_text() -> None:
    out = report.render_html(hostile_change())
    links = [attrs for tag, attrs in _elements(out) if tag == "a"]
    assert links
    assert all(a["rel"] == "noopener noreferrer nofollow" for a in links)
    assert "javascript:alert(6)" in out  # shown, not linked
    # an attribute-breaking quote inside a URL is escaped, not obeyed
    assert any((a["href"] or "").endswith('"onmouseover="alert(4)') for a in links)


def test_html_page_is_self_contained() -> None:
    out = report.render_html(every_kind())
    tags = _elements(out)
    csp = [a for t, a in tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp
    assert csp[0]["content"] == "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'"
    assert not [t for t, _ in tags if t in ("script", "img", "link", "iframe", "object")]
    assert not [a for t, a in tags if t != "a" and ("src" in a or "href" in a)]
    assert "@import" not in out
    assert "url(" not in out
    assert "prefers-color-scheme" in out


def test_image_urls_are_shown_as_links_not_images() -> None:
    out = report.render_html(every_kind())
    assert '<a href="https://img.example.com/a.jpg"' in out


def test_markdown_escaping_prevents_links_and_html() -> None:
    out = report.render_markdown(hostile_change())
    assert not re.search(r"(?<!\\)\]\(", out)  # no [text](url) link syntax
    assert not re.search(r"(?<!\\)<(?!https?://)", out)  # only <http(s)://...> autolinks
    assert "<javascript:" not in out
    assert r"\[x\](javascript:alert(1))" in out


def test_terminal_text_cannot_carry_escape_sequences_from_content() -> None:
    change = make_change(
        _item(
            "paragraph_added", location="#1", after="red \x1b[31m text\x1b]0;title\x07 \u202eevil"
        )
    )
    for color in (False, True):
        out = report.render_text(change, color=color)
        assert "\x1b]" not in out
        assert "\x07" not in out
        assert "\u202e" not in out
        assert "\\u001b[31m" in out
    assert not ANSI.search(report.render_text(change))


# -- JSON --------------------------------------------------------------------------


@pytest.mark.parametrize("change", [every_kind(), hostile_change(), make_change()])
def test_json_round_trips(change: Change) -> None:
    data = json.loads(report.render_json(change))
    assert data["schema"] == 1
    assert change_from_dict(data) == change
    assert change_from_dict(change_to_dict(change)) == change


def test_json_stores_inline_as_lists_and_keeps_cjk_readable() -> None:
    out = report.render_json(every_kind())
    data = json.loads(out)
    edited = next(i for i in data["items"] if i["kind"] == "paragraph_edited")
    assert edited["inline"][1] == ["-", "三"]
    assert "警方称有" in out


def test_json_load_ignores_unknown_keys_and_fills_defaults() -> None:
    data = change_to_dict(every_kind())
    data["added_in_a_later_version"] = {"x": 1}
    data["items"][0]["confidence"] = 0.9
    assert change_from_dict(data) == every_kind()
    minimal = {"url": "https://a.example/", "verdict": "none", "items": [{"kind": "gone"}]}
    change = change_from_dict(minimal)
    assert change.items[0] == ChangeItem(ChangeKind.GONE, True, "")
    assert change.captured_after is None


def test_a_record_with_an_unknown_kind_is_refused_not_misread() -> None:
    data = change_to_dict(make_change(_item("title")))
    data["items"][0]["kind"] = "some_future_kind"
    with pytest.raises(ChangeRecordError, match="some_future_kind"):
        change_from_dict(data)


def test_json_refuses_a_newer_schema() -> None:
    data = change_to_dict(make_change())
    data["schema"] = 2
    with pytest.raises(ChangeRecordError, match="schema"):
        change_from_dict(data)


def test_json_turns_tuples_into_lists() -> None:
    change = make_change(_item("link_changed", before=("https://a.example/",), after=()))
    assert change_to_dict(change)["items"][0]["before"] == ["https://a.example/"]


# -- errors --------------------------------------------------------------------------


def test_unknown_format_raises_a_watcher_error() -> None:
    with pytest.raises(WatcherError, match="unknown report format 'pdf'"):
        report.render(make_change(), "pdf")


def test_unknown_time_zone_raises_a_watcher_error() -> None:
    with pytest.raises(WatcherError, match="Mars/Olympus"):
        report.render(make_change(), "text", tz="Mars/Olympus")


def test_formats_constant_lists_every_renderer() -> None:
    for fmt in report.FORMATS:
        assert report.render(make_change(), fmt)
