"""Relative-time phrases resolved against the capture time, granularity kept."""

from __future__ import annotations

import pytest

from watcher import times

BASE = 1637030584000  # 2021-11-16T02:43:04Z, the seed file's epoch
MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000


@pytest.mark.parametrize(
    ("phrase", "offset", "unit"),
    [
        ("14 分钟前", 14 * MIN, MIN),
        ("14分鐘前", 14 * MIN, MIN),
        ("3 小时前", 3 * HOUR, HOUR),
        ("3 小時前", 3 * HOUR, HOUR),
        ("2 天前", 2 * DAY, DAY),
        ("刚刚", 0, MIN),
        ("剛剛", 0, MIN),
        ("5 minutes ago", 5 * MIN, MIN),
        ("an hour ago", HOUR, HOUR),
        ("yesterday", DAY, DAY),
    ],
)
def test_phrases_resolve_to_a_range_as_wide_as_their_unit(
    phrase: str, offset: int, unit: int
) -> None:
    (mention,) = times.relative_mentions(f"更新于 {phrase}。", BASE)
    assert mention.relative
    assert mention.start_ms == BASE - offset - unit
    assert mention.end_ms == BASE - offset + unit


def test_ticking_phrases_taken_an_hour_apart_overlap() -> None:
    (early,) = times.relative_mentions("14 分钟前", BASE)
    (late,) = times.relative_mentions("1 小时前", BASE + 62 * MIN)
    assert early.overlaps(late)


def test_a_moved_time_does_not_overlap() -> None:
    (early,) = times.relative_mentions("14 分钟前", BASE)
    (late,) = times.relative_mentions("2 分钟前", BASE)
    assert not early.overlaps(late)


@pytest.mark.parametrize("text", ["他10月前往北京", "三年前的今天", "5 years ago he left", "目前"])
def test_prose_that_is_not_a_ticking_timestamp_is_left_alone(text: str) -> None:
    assert times.relative_mentions(text, BASE) == ()
    assert times.mask_relative(text) == text


def test_time_element_keeps_its_attribute_and_resolves_its_text() -> None:
    mention = times.resolve_time_element("14 分钟前", "2021-11-16", BASE)
    assert mention.datetime_attr == "2021-11-16"
    assert mention.relative and mention.granularity == "minute"
    assert (mention.start_ms, mention.end_ms) == (BASE - 15 * MIN, BASE - 13 * MIN)


def test_time_element_with_absolute_text_uses_the_attribute() -> None:
    mention = times.resolve_time_element(
        "2020年10月2日凌晨5点08分", "2020-10-02T05:08:00+08:00", None
    )
    assert not mention.relative
    assert mention.start_ms == 1601586480000 - MIN


def test_unknown_capture_time_leaves_relative_phrases_unresolved() -> None:
    (mention,) = times.relative_mentions("3 小时前", None)
    assert mention.start_ms is None and not mention.overlaps(mention)
