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


# -- absolute stamps in running text ------------------------------------------------
JUL21_0901 = 1595322060000  # 2020-07-21T09:01:00Z
JUL21 = 1595289600000  # 2020-07-21T00:00:00Z
SEC = 1_000


@pytest.mark.parametrize(
    ("text", "stamp", "start", "unit"),
    [
        ("Author 2020-07-21T09:01:06Z", "2020-07-21T09:01:06Z", JUL21_0901 + 6 * SEC, "second"),
        ("2020-07-21 09:01", "2020-07-21 09:01", JUL21_0901, "minute"),
        ("更新 2020年7月21日 09:01", "2020年7月21日 09:01", JUL21_0901, "minute"),
        ("发布时间：2020年7月21日", "2020年7月21日", JUL21, "day"),
        ("Updated Jul 21, 2020", "Jul 21, 2020", JUL21, "day"),
        ("By Jane Doe | July 21, 2020 9:01 AM", "July 21, 2020 9:01 AM", JUL21_0901, "minute"),
        ("17/07/2020 - 12:42", "17/07/2020 - 12:42", 1594989720000, "minute"),  # rfi
        ("Fri, 26 Jun 2020 14:42:56 GMT", "Fri, 26 Jun 2020 14:42:56 GMT", 1593182576000, "second"),
        ("2020-07-21T17:01:00+08:00", "2020-07-21T17:01:00+08:00", JUL21_0901, "second"),
        (
            "2020年7月21日 下午5时30分",
            "2020年7月21日 下午5时30分",
            JUL21 + 17 * HOUR + 30 * MIN,
            "minute",
        ),
    ],
)
def test_stamps_in_running_text_resolve_to_their_precision(
    text: str, stamp: str, start: int, unit: str
) -> None:
    (found,) = times.find_stamps(text)
    mention = times.resolve_stamp(found)
    assert mention.text == stamp and not mention.relative
    assert (mention.start_ms, mention.granularity) == (start, unit)
    assert times.mask_stamps(text, [found]) == text.replace(stamp, times.MASK)


def test_a_stamp_moved_by_a_minute_no_longer_overlaps() -> None:
    (a,) = times.find_stamps("2020-07-21 09:01")
    (b,) = times.find_stamps("2020-07-21 09:02")
    (c,) = times.find_stamps("2020-07-21T09:01:30Z")
    one, two, same = times.resolve_stamp(a), times.resolve_stamp(b), times.resolve_stamp(c)
    assert not one.overlaps(two)
    assert one.overlaps(same)  # 09:01 restated to the second


def test_a_numeric_date_that_reads_both_ways_is_a_stamp_of_unknown_instant() -> None:
    """RFI prints "02/07/2020 - 01:20": 2 July or 7 February, the text cannot say."""
    (found,) = times.find_stamps("02/07/2020 - 01:20")
    assert found.group(0) == "02/07/2020 - 01:20"
    assert times.resolve_stamp(found).start_ms is None


def test_the_weekday_tells_the_two_readings_apart() -> None:
    """pao-pao (Drupal): "星期四, 12/01/2016" is Thursday 1 December (its markup
    says 2016-12-01T12:19:35+01:00), not Tuesday 12 January."""
    (found,) = times.find_stamps("Don Evans 在 星期四, 12/01/2016 - 12:19 提交")
    assert found.group(0) == "星期四, 12/01/2016 - 12:19"
    assert times.resolve_stamp(found).start_ms == 1480594740000  # 2016-12-01T12:19Z


@pytest.mark.parametrize(
    "text",
    [
        "2019 年 8 月 3 日，示威者在尖沙咀天星码头拆下国旗。 摄：林振东/端",  # a caption's date
        "于2020年6月28日凌晨1时31分在长治逝世，享年91岁。",  # prose with a spelled-out time
        "据该报道，张浩的量刑听证会定于2020年8月31日举行。",
        "A man walks past a shopping mall in Beijing on a cold morning, January 21, 2021.",
        "电话 2020-1234-5678",
        "截至美东时间周二（1月19日）清晨4:10，全球病例总数超过了9,560万例。",  # no year
    ],
)
def test_dates_in_prose_are_content_not_stamps(text: str) -> None:
    assert times.find_stamps(text) == []
