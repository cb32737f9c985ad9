"""Recognise time expressions in article text and resolve them to ranges.

News pages print "14 分钟前" / "3 小時前" / "5 minutes ago" next to a story and
re-render it on every request. To tell that tick from a real edit we resolve
each phrase against the capture time and keep its granularity: "14 分钟前"
captured at 02:43:04 is 02:29:04 ± 1 minute, "1 小时前" captured at 03:45 is
02:45 ± 1 hour, and the two overlap, so they may denote the same instant.

Finding phrases is a cheap regular expression; resolving them is dateparser's
job (given language hints so it stays fast). A relative phrase resolves to a
fixed offset from the capture time, so the offset is computed once per
distinct phrase and cached.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from dateparser.date import DateDataParser

from watcher.models import TimeMention

MASK = "⟨time⟩"
_UNIT_MS = {
    "second": 1_000,
    "minute": 60_000,
    "hour": 3_600_000,
    "day": 86_400_000,
    "week": 7 * 86_400_000,
    "month": 31 * 86_400_000,
    "year": 366 * 86_400_000,
}
_CJK_UNITS = {
    "秒": "second", "秒钟": "second", "秒鐘": "second",
    "分钟": "minute", "分鐘": "minute",
    "小时": "hour", "小時": "hour", "钟头": "hour", "鐘頭": "hour", "个小时": "hour", "個小時": "hour",
    "天": "day",
    "周": "week", "週": "week", "星期": "week", "个星期": "week", "個星期": "week",
    "个月": "month", "個月": "month",
    "年": "year",
}  # fmt: skip
# Units that tick on a live page. In running text only these count as a
# relative timestamp: "三年前" in prose is content, and an edit of it is news.
_TICKING = ("second", "minute", "hour", "day")
_CJK_NUM = r"\d+|[一二两兩三四五六七八九十半几幾]+"
_EN_NUM = r"\d+|an?|one|two|three|four|five|six|seven|eight|nine|ten|few|several"
_EN_UNITS = {"sec": "second", "second": "second", "min": "minute", "minute": "minute",
             "hr": "hour", "hour": "hour", "day": "day", "week": "week", "month": "month",
             "year": "year"}  # fmt: skip


def _alternation(words: list[str]) -> str:
    return "|".join(sorted(map(re.escape, words), key=len, reverse=True))


def _compile(units: tuple[str, ...]) -> re.Pattern[str]:
    cjk = _alternation([w for w, u in _CJK_UNITS.items() if u in units])
    en = _alternation([w for w, u in _EN_UNITS.items() if u in units])
    return re.compile(
        rf"(?P<cjk>(?P<cn>{_CJK_NUM})\s*(?P<cu>{cjk})\s*(?:以前|前)(?![往来來夕後后去]))"
        r"|(?P<cjknow>刚刚|剛剛|刚才|剛才)"
        r"|(?P<cjkday>昨天|前天|昨日)"
        rf"|(?P<en>\b(?P<en_n>{_EN_NUM})\s+(?P<eu>{en})s?\s+ago\b)"
        r"|(?P<ennow>\bjust now\b)"
        r"|(?P<enday>\byesterday\b)",
        re.IGNORECASE,
    )


RELATIVE_RE = _compile(_TICKING)
TIME_ELEMENT_RE = _compile(tuple(_UNIT_MS))
_LANGS = ["zh", "zh-Hant", "en"]
# dateparser needs a base for relative phrases; any fixed instant works
# because we only keep the offset from it.
_REFERENCE = datetime(2001, 6, 15, 12, 0, 0)
_parser_cache: dict[bool, DateDataParser] = {}


def _parser(relative: bool) -> DateDataParser:
    if relative not in _parser_cache:
        settings = {"RETURN_TIME_AS_PERIOD": True, "PREFER_DATES_FROM": "past"}
        if relative:
            settings["RELATIVE_BASE"] = _REFERENCE
        _parser_cache[relative] = DateDataParser(languages=_LANGS, settings=settings)
    return _parser_cache[relative]


_CUES = re.compile(r"前|刚|剛|昨|ago|now|yesterday", re.IGNORECASE)


def may_have_relative(text: str) -> bool:
    """Cheap pre-check: most paragraphs contain no cue, so skip the big regex."""
    return _CUES.search(text) is not None


_WINDOW_BACK = 40  # a phrase ends at (or starts with) its cue: "…分钟前", "… ago", "昨天"
_WINDOW_AHEAD = 4


def _windows(text: str) -> list[tuple[int, int]]:
    """Spans of ``text`` around each cue, merged; phrases can only occur there.

    The phrase regex is a long alternation, slow to run over a whole page
    body; the cue regex is cheap, and cues are rare.
    """
    spans: list[tuple[int, int]] = []
    for cue in _CUES.finditer(text):
        start = max(0, cue.start() - _WINDOW_BACK)
        while start > 0 and text[start - 1].isalnum():
            start -= 1  # never start inside a number or word
        end = min(len(text), cue.end() + _WINDOW_AHEAD)
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def _finditer(pattern: re.Pattern[str], text: str) -> list[re.Match[str]]:
    return [m for start, end in _windows(text) for m in pattern.finditer(text, start, end)]


def _mask(pattern: re.Pattern[str], text: str) -> str:
    found = _finditer(pattern, text)
    if not found:
        return text
    parts: list[str] = []
    last = 0
    for m in found:
        parts += [text[last : m.start()], MASK]
        last = m.end()
    parts.append(text[last:])
    return "".join(parts)


def find_relative(text: str) -> list[re.Match[str]]:
    return _finditer(RELATIVE_RE, text)


def mask_relative(text: str) -> str:
    """Replace relative-time phrases, so ticking text compares equal."""
    return _mask(RELATIVE_RE, text)


def mask_all(text: str) -> str:
    """Replace every time phrase a ``<time>`` element may hold (any unit)."""
    return _mask(TIME_ELEMENT_RE, text)


def _granularity(m: re.Match[str]) -> str:
    if m.group("cu"):
        return _CJK_UNITS[m.group("cu")]
    if m.group("eu"):
        return _EN_UNITS[m.group("eu").lower()]
    if m.group("cjknow") or m.group("ennow"):
        return "minute"
    return "day"


@lru_cache(maxsize=4096)
def _relative_offset_ms(phrase: str) -> int | None:
    """How far before the capture time the phrase points, or None."""
    data = _parser(True).get_date_data(phrase)
    if data.date_obj is None:
        return None
    return round((_REFERENCE - data.date_obj.replace(tzinfo=None)).total_seconds() * 1000)


def _offset_ms(m: re.Match[str]) -> int | None:
    """How far back a matched phrase points.

    "N units ago" is N times "1 unit ago": dateparser resolves the one-unit
    form once per unit word and the result is scaled, so a page ticking
    through "1 分钟前" … "59 分钟前" costs one dateparser call, not 59.
    Phrases with words for numbers ("半小时前", "an hour ago") go to
    dateparser as they are, cached by phrase.
    """
    phrase = " ".join(m.group(0).split())
    number = m.group("cn") or m.group("en_n")
    if number and number.isdigit():
        start = (m.start("cn") if m.group("cn") else m.start("en_n")) - m.start(0)
        template = " ".join((m.group(0)[:start] + "1" + m.group(0)[start + len(number) :]).split())
        one = _relative_offset_ms(template)
        return None if one is None else one * int(number)
    return _relative_offset_ms(phrase)


def resolve_relative(m: re.Match[str], base_ms: int | None) -> TimeMention:
    phrase = m.group(0)
    unit = _granularity(m)
    offset = _offset_ms(m)
    if offset is None or base_ms is None:
        return TimeMention(phrase, None, True, unit, None, None)
    width = _UNIT_MS[unit]
    centre = base_ms - offset
    return TimeMention(phrase, None, True, unit, centre - width, centre + width)


def relative_mentions(text: str, base_ms: int | None) -> tuple[TimeMention, ...]:
    return tuple(resolve_relative(m, base_ms) for m in find_relative(text))


def resolve_time_element(text: str, datetime_attr: str | None, base_ms: int | None) -> TimeMention:
    """A ``<time>`` element: the attribute is authoritative, the text decides
    whether it is relative (and so expected to tick)."""
    rel = TIME_ELEMENT_RE.search(text)
    if rel is not None:
        mention = resolve_relative(rel, base_ms)
        return TimeMention(
            text, datetime_attr, True, mention.granularity, mention.start_ms, mention.end_ms
        )
    if datetime_attr and (rng := _iso_range(datetime_attr)) is not None:
        return TimeMention(text, datetime_attr, False, rng[2], rng[0], rng[1])
    if text and (rng := _absolute_range(text)) is not None:
        return TimeMention(text, datetime_attr, False, rng[2], rng[0], rng[1])
    return TimeMention(text, datetime_attr, False, None, None, None)


def _iso_range(value: str) -> tuple[int, int, str] | None:
    value = value.strip()
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if len(value) <= 10:
        # A bare date: the publisher's time zone is unknown, so allow the
        # whole span of that calendar day anywhere on Earth (UTC-12..UTC+14).
        start = dt.replace(tzinfo=UTC) - timedelta(hours=14)
        end = dt.replace(tzinfo=UTC) + timedelta(days=1, hours=12)
        return _ms(start), _ms(end), "day"
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return _ms(dt) - 60_000, _ms(dt) + 60_000, "minute"


@lru_cache(maxsize=4096)
def _absolute_range(text: str) -> tuple[int, int, str] | None:
    data = _parser(False).get_date_data(text)
    if data.date_obj is None:
        return None
    period = data.period if data.period in _UNIT_MS else "minute"
    if period == "time":
        period = "minute"
    dt = data.date_obj
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    width = _UNIT_MS.get(period, _UNIT_MS["minute"])
    return _ms(dt) - width, _ms(dt) + width, period


def _ms(dt: datetime) -> int:
    return round(dt.timestamp() * 1000)
