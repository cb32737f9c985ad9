"""When two texts differ only in spacing nobody reads, and how that is named."""

from __future__ import annotations

import pytest

from watcher import spacing


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("疫情起源中共外长", "疫情起源 中共外长"),  # between two Chinese characters
        ("COVID-19病例", "COVID-19 病例"),  # between Latin and Chinese
        ("美国（USA）", "美国 （USA）"),  # beside punctuation
        ("foo, bar", "foo,bar"),
        (" 维权律师", "维权律师"),  # at an end
        ("ไทย ภาษา", "ไทยภาษา"),  # Thai is written without spaces between words
    ],
)
def test_spacing_that_does_not_join_or_split_words_reads_the_same(before: str, after: str) -> None:
    assert spacing.same_words(before, after)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("foo bar", "foobar"),  # two words merged
        ("10 000", "10000"),
        ("한국 사람", "한국사람"),  # Korean separates its words with spaces
    ],
)
def test_a_space_between_two_words_is_part_of_them(before: str, after: str) -> None:
    assert not spacing.same_words(before, after)


@pytest.mark.parametrize(
    ("before", "after", "detail"),
    [
        ("a\u00a0b", "a b", "whitespace only: no-break space → space"),
        ("a\u3000b\u3000c", "a b c", "whitespace only: ideographic space → space ×2"),
        ("a b", "a  b", "whitespace only: space → 2 spaces"),
        ("起源中共", "起源 中共", "whitespace only: space added"),
        (" 维权", "维权", "whitespace only: space removed"),
        ("a\u200bb", "ab", "whitespace only: zero-width space removed"),
    ],
)
def test_the_difference_is_named(before: str, after: str, detail: str) -> None:
    assert spacing.blank_key(before) == spacing.blank_key(after)
    assert spacing.describe(before, after) == detail
