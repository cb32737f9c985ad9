"""Cutting text to a channel's limit without breaking what a reader sees.

A naive ``text[:n]`` can split an emoji family (joined by ZWJ) into loose
faces, a flag into a stray regional letter, ``é`` written as ``e`` + U+0301
into a bare ``e``, or (in text that kept lone surrogates) a surrogate pair
into garbage that some services reject outright. The cut here lands on a
grapheme-cluster boundary (a close approximation of UAX #29 built from
:mod:`unicodedata`, so no new dependency), prefers the end of a line, a
space or CJK sentence punctuation when one is near, and appends ``…``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

ELLIPSIS = "…"
_ZWJ = "\u200d"
#: How far back (in characters) a cut may move to end at a line, space or
#: punctuation rather than mid-word; beyond it, the hard cut is kept.
_SOFT_WINDOW = 40
#: Characters after which a CJK sentence or clause ends: good places to cut.
_CJK_STOPS = frozenset("。！？；，、：…」』）》")


def truncate(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` code points, else a prefix ending on a
    grapheme boundary plus ``…``, at most ``limit`` code points in all."""
    return _cut(text, limit, len, lambda ch: 1)


def truncate_bytes(text: str, limit: int) -> str:
    """Like :func:`truncate`, for channels that count UTF-8 bytes: the result
    encodes to at most ``limit`` bytes."""
    return _cut(text, limit, _utf8_len, _utf8_len)


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _cut(text: str, limit: int, size: Callable[[str], int], char_size: Callable[[str], int]) -> str:
    if size(text) <= limit:
        return text
    budget = limit - size(ELLIPSIS)
    if budget < 0:
        return ""
    end, used = 0, 0
    while end < len(text) and used + char_size(text[end]) <= budget:
        used += char_size(text[end])
        end += 1
    end = _soft_end(text, _hard_end(text, end))
    return text[:end] + ELLIPSIS


def _hard_end(text: str, end: int) -> int:
    """The nearest cut at or before ``end`` that is a grapheme boundary and
    leaves no trailing white space."""
    while end > 0 and (text[end - 1].isspace() or not is_boundary(text, end)):
        end -= 1
    return end


def _soft_end(text: str, end: int) -> int:
    """Move the cut back to a line end, a space or CJK punctuation if one is
    within reach; otherwise keep it."""
    floor = max(0, end - _SOFT_WINDOW)
    for breaks in ("\n", None):
        for i in range(end, floor, -1):
            ch = text[i - 1]
            hit = ch == breaks if breaks else (ch.isspace() or ch in _CJK_STOPS)
            if hit:
                soft = _hard_end(text, i)
                if soft > floor:
                    return soft
    return end


def is_boundary(text: str, i: int) -> bool:
    """True when ``text[:i]`` ends a grapheme cluster (both ends always do)."""
    if i <= 0 or i >= len(text):
        return True
    prev, cur = text[i - 1], text[i]
    if prev == "\r" and cur == "\n":
        return False
    if _is_high_surrogate(prev) and _is_low_surrogate(cur):
        return False
    if prev == _ZWJ or _extends(cur):
        return False
    if _is_regional(prev) and _is_regional(cur):
        run = 0
        while run < i and _is_regional(text[i - 1 - run]):
            run += 1
        return run % 2 == 0  # flags pair up from the start of the run
    return True


def _extends(ch: str) -> bool:
    """Characters that belong to the cluster before them: combining and
    spacing marks, ZWJ, variation selectors, emoji skin tones, emoji tag
    sequences, and conjoining Hangul vowels and finals."""
    code = ord(ch)
    if unicodedata.category(ch) in ("Mn", "Mc", "Me"):
        return True
    return (
        ch == _ZWJ
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0x1F3FB <= code <= 0x1F3FF  # skin tones (category Sk)
        or 0xE0020 <= code <= 0xE007F  # tags (subdivision flags)
        or 0x1160 <= code <= 0x11FF  # Hangul jamo: vowels and finals
        or 0xD7B0 <= code <= 0xD7FF
    )


def _is_regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _is_high_surrogate(ch: str) -> bool:
    return 0xD800 <= ord(ch) <= 0xDBFF


def _is_low_surrogate(ch: str) -> bool:
    return 0xDC00 <= ord(ch) <= 0xDFFF
