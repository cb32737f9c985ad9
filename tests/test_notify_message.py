"""What a notification says (title, body, payload) and how text is cut to a
channel's limit without breaking Chinese text, emoji or accents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.models import Change, ChangeItem, ChangeKind, Verdict, change_to_dict
from watcher.notify.message import (
    INLINE_DIFF_MAX,
    Item,
    item_for,
    message_for,
    sample_message,
    truncate,
    truncate_bytes,
)
from watcher.settings import Settings
from watcher.store import ChangeRecord, ChangeVerdict

URL = "https://www.example.com/zhongwen/simp/china-58291234"
OLD_TITLE = "北京宣布放宽防疫措施"
NEW_TITLE = "北京宣布大幅放宽防疫措施 多地跟进"
LONG_PARAGRAPH = (
    "据新华社报道，国务院联防联控机制周三发布新的防疫措施，"
    "要求各地不得随意扩大封控范围，并取消对跨地区流动人员的核酸检测要求。"
)
EDIT_AT = LONG_PARAGRAPH.index("要求各地")


def settings(tmp_path: Path, public_url: str = "https://watch.example.org/news/") -> Settings:
    return Settings.from_env({}, home=tmp_path, public_url=public_url)


def change_record(
    items: tuple[ChangeItem, ...] | None = None, *, change_id: int = 42, title: str = NEW_TITLE
) -> ChangeRecord:
    if items is None:
        items = (
            ChangeItem(ChangeKind.TITLE, True, "title", OLD_TITLE, title),
            ChangeItem(
                ChangeKind.PARAGRAPH_EDITED,
                True,
                "#3 paragraph",
                inline=(
                    ("=", LONG_PARAGRAPH[:EDIT_AT]),
                    ("-", "要求"),
                    ("+", "明确要求"),
                    ("=", LONG_PARAGRAPH[EDIT_AT + 2 :]),
                ),
            ),
        )
    change = Change(
        url=URL,
        title_before=OLD_TITLE,
        title_after=title,
        captured_before=1_700_000_000_000,
        captured_after=1_700_003_600_000,
        items=items,
        verdict=Verdict.SIGNIFICANT,
        summary="title changed; 1 paragraph edited",
    )
    return ChangeRecord(
        id=change_id,
        watch_id=7,
        url=URL,
        old_version_id=1,
        new_version_id=2,
        created_at=1_700_003_601_000,
        verdict=ChangeVerdict.SIGNIFICANT,
        kinds=tuple(change.kinds),
        summary=change.summary,
        record=change_to_dict(change),
        reverted_to_version_id=None,
    )


# -- one change ------------------------------------------------------------------


def test_one_change_reads_as_a_journalist_expects(tmp_path: Path) -> None:
    item = item_for(change_record(), 2, settings(tmp_path))
    message = message_for([item])

    assert message.key == "watcher-change-42"
    assert message.title == f"[watcher] title changed; 1 paragraph edited: {NEW_TITLE}"
    lines = message.body.splitlines()
    assert lines[:4] == [
        "title changed; 1 paragraph edited",
        NEW_TITLE,
        URL,
        "Report: https://watch.example.org/news/articles/7.html#change-42",
    ]
    assert f"- {OLD_TITLE}" in lines and f"+ {NEW_TITLE}" in lines


def test_inline_diff_shows_a_small_edit_in_a_long_paragraph_with_context(tmp_path: Path) -> None:
    item = item_for(change_record(), 2, settings(tmp_path))
    assert item.inline_diff is not None
    before, after = (
        line for line in item.inline_diff.splitlines() if line.startswith(("- …", "+ …"))
    )
    assert "据新华社" not in before  # a little context, not the whole paragraph
    assert len(before) < len(LONG_PARAGRAPH)
    assert "，要求各地" in before and "，明确要求各地" in after
    assert before.endswith("…") and after.endswith("…")
    assert len(item.inline_diff) <= INLINE_DIFF_MAX


def test_no_report_link_without_a_public_url(tmp_path: Path) -> None:
    item = item_for(change_record(), 2, settings(tmp_path, public_url=""))
    assert item.report_url is None
    assert "Report:" not in message_for([item]).body


def test_a_long_diff_is_left_to_the_report(tmp_path: Path) -> None:
    paragraphs = tuple(
        ChangeItem(ChangeKind.PARAGRAPH_ADDED, True, f"#{n} paragraph", None, LONG_PARAGRAPH)
        for n in range(1, 12)
    )
    item = item_for(change_record(paragraphs), 2, settings(tmp_path))
    assert item.inline_diff is None
    assert "+ 据新华社" not in message_for([item]).body


def test_changes_that_are_not_text_are_counted_not_shown(tmp_path: Path) -> None:
    image = {"src": "https://img.example.com/a.jpg", "origin_src": "", "alt": "", "caption": ""}
    items = (
        ChangeItem(ChangeKind.TITLE, True, "title", OLD_TITLE, NEW_TITLE),
        ChangeItem(ChangeKind.IMAGE_REMOVED, True, "#2 image", image, None),
    )
    item = item_for(change_record(items), 2, settings(tmp_path))
    assert item.inline_diff is not None
    assert item.inline_diff.endswith("(and 1 more in the report)")
    assert "img.example.com" not in item.inline_diff
    only_image = item_for(change_record(items[1:]), 2, settings(tmp_path))
    assert only_image.inline_diff is None


def test_hostile_titles_cannot_drive_a_terminal_or_reorder_text(tmp_path: Path) -> None:
    hostile = "标题\x1b]0;owned\x07\u202egnp.exe\r\nBcc: x@example.org"
    item = item_for(change_record(title=hostile), 2, settings(tmp_path))
    message = message_for([item])
    for text in (message.title, message.body, item.title):
        assert "\x1b" not in text and "\u202e" not in text and "\r" not in text
    assert "\n" not in message.title


# -- digests -----------------------------------------------------------------------


def test_a_digest_lists_its_changes_under_one_key(tmp_path: Path) -> None:
    items = [item_for(change_record(change_id=n), 2, settings(tmp_path)) for n in (12, 10, 11)]
    message = message_for(items, digest="hour", channel="desk")

    assert message.title == "[watcher] 3 changes (hourly digest)"
    assert message.key == "watcher-digest-desk-10-12"
    assert [i.change_id for i in message.items] == [10, 11, 12]
    assert message.body.count(f"• {NEW_TITLE}: title changed; 1 paragraph edited") == 3
    assert message.payload()["digest"] == "hour"
    assert message_for(items[:1], digest="day", channel="desk").title == (
        "[watcher] 1 change (daily digest)"
    )


def test_several_changes_without_a_digest_are_refused(tmp_path: Path) -> None:
    items = [item_for(change_record(change_id=n), 2, settings(tmp_path)) for n in (1, 2)]
    with pytest.raises(ValueError, match="digest"):
        message_for(items)
    with pytest.raises(ValueError):
        message_for([])


# -- the payload ------------------------------------------------------------------------


def test_payload_is_the_documented_json(tmp_path: Path) -> None:
    record = change_record()
    message = message_for([item_for(record, 2, settings(tmp_path))])
    payload: dict[str, Any] = json.loads(json.dumps(message.payload()))

    assert payload == {
        "schema": 1,
        "idempotency_key": "watcher-change-42",
        "digest": None,
        "changes": [
            {
                "change_id": 42,
                "url": URL,
                "title": NEW_TITLE,
                "summary": "title changed; 1 paragraph edited",
                "verdict": "significant",
                "kinds": ["paragraph_edited", "title"],
                "created_at": "2023-11-14T23:13:21Z",
                "report_url": "https://watch.example.org/news/articles/7.html#change-42",
                "record": record.record,
            }
        ],
    }


def test_sample_message_is_a_chinese_headline_edit_with_a_fresh_key(tmp_path: Path) -> None:
    first = sample_message(settings(tmp_path), now_ms=1_700_000_000_000)
    second = sample_message(settings(tmp_path), now_ms=1_700_000_060_000)
    assert first.key != second.key  # a receiver dropping repeats still shows each test
    assert first.title.startswith("[watcher test] title changed")
    assert "香港立法会" in first.title
    assert "- 香港立法会选举投票率创新低" in first.body
    assert "Report: https://watch.example.org/news/recent.html" in first.body


def test_item_is_plain_data(tmp_path: Path) -> None:
    item = item_for(change_record(), 5, settings(tmp_path))
    assert isinstance(item, Item)
    assert item.seq == 5
    assert item.kinds == ("paragraph_edited", "title")


# -- truncation ------------------------------------------------------------------------

#: Grapheme clusters a reader sees as one character each (or one line break).
CLUSTERS = [
    "a", "Z", " ", "\n", "。", "，", "中", "國", "𠀋",  # a CJK Extension B character
    "e\u0301",  # e + combining acute
    "a\u0308\u0323",  # two combining marks
    "👍🏽",  # skin tone
    "👨\u200d👩\u200d👧\u200d👦",  # ZWJ family
    "🏳\ufe0f\u200d🌈",  # variation selector + ZWJ
    "🇨🇳", "🇯🇵",  # flags: regional-indicator pairs
    "\r\n",
    "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # Scotland flag
    "\ud83d\ude00",  # a surrogate pair kept as two code points
]  # fmt: skip


@given(st.lists(st.sampled_from(CLUSTERS), max_size=60), st.integers(min_value=0, max_value=80))
def test_truncate_never_cuts_inside_a_cluster(clusters: list[str], limit: int) -> None:
    text = "".join(clusters)
    result = truncate(text, limit)
    assert len(result) <= limit
    if len(text) <= limit:
        assert result == text
        return
    boundaries = {0}
    offset = 0
    for cluster in clusters:
        offset += len(cluster)
        boundaries.add(offset)
    if limit == 0:
        assert result == ""
        return
    assert result.endswith("…")
    kept = result[:-1]
    assert text.startswith(kept)
    assert len(kept) in boundaries


@given(st.lists(st.sampled_from(CLUSTERS), max_size=60), st.integers(min_value=0, max_value=120))
def test_truncate_bytes_fits_the_byte_limit(clusters: list[str], limit: int) -> None:
    text = "".join(clusters)
    result = truncate_bytes(text, limit)
    assert len(result.encode("utf-8", "surrogatepass")) <= limit
    if len(text.encode("utf-8", "surrogatepass")) <= limit:
        assert result == text
    elif result:
        assert text.startswith(result[:-1])


@given(st.text(), st.integers(min_value=0, max_value=200))
def test_truncate_any_text_fits(text: str, limit: int) -> None:
    assert len(truncate(text, limit)) <= limit


def test_chinese_is_cut_after_a_sentence_when_one_ends_nearby() -> None:
    text = "国务院周三发布新措施。各地不得随意扩大封控范围并取消核酸检测要求"
    assert truncate(text, 20) == "国务院周三发布新措施。…"


def test_words_are_not_cut_in_half() -> None:
    assert truncate("Beijing eases its zero-covid rules", 20) == "Beijing eases its…"


def test_a_cut_never_strands_half_an_emoji_family() -> None:
    family = "👨\u200d👩\u200d👧\u200d👦"
    result = truncate(family * 3, 10)
    assert result == family + "…"
