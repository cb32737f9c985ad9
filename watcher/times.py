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
from datetime import UTC, datetime, timedelta, timezone
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


# r"前|刚|剛|昨|ago|now|yesterday" with re.IGNORECASE, spelt out so that it
# starts with a character set: the engine then skips ahead to candidates in C
# (about twice as fast over a page body). "ſ" is the one fold IGNORECASE adds.
_CUES = re.compile(
    r"(?=[前刚剛昨aAnNyY])"
    r"(?:[前刚剛昨]|[aA][gG][oO]|[nN][oO][wW]|[yY][eE][sSſ][tT][eE][rR][dD][aA][yY])"
)


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
        start = _word_start(text, max(0, cue.start() - _WINDOW_BACK))
        end = min(len(text), cue.end() + _WINDOW_AHEAD)
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


#: A run of letters and digits (``str.isalnum``: ``\w`` without "_") ending the string.
_ALNUM_TAIL = re.compile(r"[^\W_]+\Z")


def _word_start(text: str, start: int) -> int:
    """``start``, moved back to the beginning of the word or number it is
    inside: a window never starts inside one. Found by the regex engine a
    stretch at a time, since in Chinese a "word" runs to the next punctuation,
    a long walk for a Python loop."""
    reach = 64
    while start > 0:
        low = max(0, start - reach)
        run = _ALNUM_TAIL.search(text, low, start)
        if run is None:
            return start
        if run.start() > low or low == 0:
            return run.start()
        reach *= 4
    return start


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


# -- absolute stamps in running text ------------------------------------------------
# A byline "Author 2020-07-21T09:01:06Z", "Updated Jul 21, 2020", a Drupal
# "Don Evans 在 星期四, 12/01/2016 - 12:19 提交", a "17/07/2020 - 12:42" line:
# the stamp changes while the words around it do not. Every form carries a
# four-digit year, so a paragraph without one costs a single cheap search.
# The regex pins every field, so the instant is built directly: dateparser
# (about a millisecond per distinct string) has nothing left to add.
_YEAR_CUE = re.compile(r"(?:19|20)\d\d")
_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_WEEKDAY = (
    r"(?:(?:Mon|Tues?|Wed(?:nes)?|Thu(?:rs)?|Fri|Sat(?:ur)?|Sun)(?:day)?\.?,?"
    r"|(?:星期|禮拜|礼拜|周|週)[一二三四五六日天][,，]?)"
)
STAMP_RE = re.compile(
    r"(?=[\dA-Za-z星禮礼周週])"  # where a stamp can start: fails fast everywhere else
    rf"(?:(?P<wd>{_WEEKDAY})\s*)?"
    r"(?:(?<![\d/.-])(?P<y1>\d{4})(?P<sep1>[-/.])(?P<m1>\d{1,2})(?P=sep1)(?P<d1>\d{1,2})(?![\d/.]?\d)"
    r"|(?<!\d)(?P<y2>\d{4})\s*年\s*(?P<m2>\d{1,2})\s*月\s*(?P<d2>\d{1,2})\s*[日号號]"
    r"|(?<![\d/.-])(?P<a3>\d{1,2})(?P<sep3>[/.])(?P<b3>\d{1,2})(?P=sep3)(?P<y3>\d{4})(?![\d/.]?\d)"
    rf"|\b(?P<mon4>{_MONTH})\s+(?P<d4>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y4>\d{{4}})(?!\d)"
    rf"|(?<!\d)(?P<d5>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<mon5>{_MONTH}),?\s+(?P<y5>\d{{4}})(?!\d))"
    # an optional time of day: "T09:01:06Z", " - 12:42", ", 9:01 AM GMT", "下午5时30分"
    rf"(?:(?:T|\s*(?:[-–—,@|]|at)?\s*(?:{_WEEKDAY}\s*)?)"
    r"(?P<half>上午|下午|早上|晚上|凌晨|中午|清晨|傍晚|晚間|晚间)?\s*"
    r"(?P<h>\d{1,2})(?:[:：](?P<mi>\d\d)(?:[:：](?P<s>\d\d)(?:[.,]\d+)?)?"
    r"|\s*[时時点點]\s*(?:(?P<mi2>\d{1,2})\s*分)?)(?!\d)"
    r"(?:\s*(?P<ampm>[ap]\.?m\b\.?))?"
    r"(?:\s*(?P<tz>Z|[+-]\d\d:?\d\d|GMT|UTC)(?![a-z\d]))?)?",
    re.IGNORECASE,
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_AFTERNOON = ("下午", "晚上", "傍晚", "晚間", "晚间")
# A date alone is a stamp only in a byline-like block: little else in it,
# and no sentence. "2019年8月3日，示威者在……拆下国旗。" is a caption whose
# date is content, and an edit of it is news.
_BYLINE_REST = 40
_SENTENCE_END = re.compile(r"[。！？；!?;]")


def find_stamps(text: str) -> list[re.Match[str]]:
    """Absolute date/time stamps in ``text`` that a page re-renders, not prose.

    A full date with a clock time ("2020-07-21 09:01", "2020年7月21日 09:01",
    "Fri, 26 Jun 2020 14:42:56 GMT") is a stamp wherever it stands: prose
    writes "下午5时30分" or "at 9 a.m.". A date alone ("Jul 21, 2020",
    "2020年7月21日"), or one with a spelled-out time, is a stamp only in a
    byline-like block: once the stamps are taken out at most ``_BYLINE_REST``
    characters remain and none ends a sentence.
    """
    found = [m for m in _stamp_candidates(text) if _is_stamp(m)]
    if not found:
        return found
    if all(m.group("mi") for m in found):
        return found
    rest = mask_stamps(text, found)
    if len(rest) - len(found) * len(MASK) <= _BYLINE_REST and not _SENTENCE_END.search(rest):
        return found
    return [m for m in found if m.group("mi")]


_STAMP_BACK = 30  # "Wednesday, September 21st, " before the year
_STAMP_AHEAD = 40  # "-07-21T09:01:06.123+08:00", "年7月21日 下午 12 点 30 分" after it


def _stamp_candidates(text: str) -> list[re.Match[str]]:
    """STAMP_RE's matches, searched only around four-digit years: the regex is
    slow to run over a whole paragraph, years are rare and cheap to find."""
    spans: list[tuple[int, int]] = []
    if "19" not in text and "20" not in text:
        return []
    for cue in _YEAR_CUE.finditer(text):
        start = max(0, cue.start() - _STAMP_BACK)
        while start > 0 and text[start - 1].isalnum():
            start -= 1  # never start inside a number or word
        end = min(len(text), cue.end() + _STAMP_AHEAD)
        while end < len(text) and (text[end].isalnum() or text[end] in ":：.-/"):
            end += 1  # nor end inside one (a lookahead would see the end of text)
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return [m for start, end in spans for m in STAMP_RE.finditer(text, start, end)]


def mask_stamps(text: str, found: list[re.Match[str]]) -> str:
    """``text`` with each of the ``found`` stamps replaced by MASK."""
    parts: list[str] = []
    last = 0
    for m in found:
        parts += [text[last : m.start()], MASK]
        last = m.end()
    parts.append(text[last:])
    return "".join(parts)


def resolve_stamp(m: re.Match[str]) -> TimeMention:
    """A stamp found by :func:`find_stamps`, as the span its precision names."""
    rng = stamp_range(m)
    start, end, unit = rng if rng is not None else (None, None, None)
    return TimeMention(m.group(0).strip(), None, False, unit, start, end)


def stamp_range(m: re.Match[str]) -> tuple[int, int, str] | None:
    """The instant a stamp names, as wide as its precision ("09:01" is that
    whole minute, a date alone that day); None when it reads two ways.

    Without a zone the stamp is read as UTC: the stamps of one page share
    their zone, so comparing them needs none."""
    instants = _stamp_instants(m)
    if len(instants) != 1:
        return None  # 01/02/2020: January or February?
    unit = _stamp_clock(m)[3]
    start = _ms(instants[0])
    return start, start + _STAMP_UNIT_MS[unit] - 1, unit


def _is_stamp(m: re.Match[str]) -> bool:
    return bool(_stamp_instants(m))


_STAMP_UNIT_MS = {"day": 86_400_000, "hour": 3_600_000, "minute": 60_000, "second": 1_000}


def _stamp_instants(m: re.Match[str]) -> list[datetime]:
    """Every valid reading of the stamp (two for a numeric date read either
    way, unless its weekday tells them apart: "星期四, 12/01/2016" is 1 December)."""
    hour, minute, second, _ = _stamp_clock(m)
    zone = _stamp_zone(m.group("tz"))
    weekday = _weekday(m.group("wd"))
    out: list[datetime] = []
    for year, month, day in _stamp_dates(m):
        try:
            dt = datetime(year, month, day, hour, minute, second, tzinfo=zone)
        except ValueError:
            continue
        if dt not in out:
            out.append(dt)
    agree = [dt for dt in out if dt.weekday() == weekday]
    return agree or out  # a weekday that fits no reading is a typo, not a veto


def _weekday(name: str | None) -> int | None:
    """Monday 0 … Sunday 6, from "Fri," or "星期四"."""
    if not name:
        return None
    name = name.rstrip(".,， ")
    if name[-1] in "一二三四五六日天":
        return "一二三四五六日天".index(name[-1]) if name[-1] != "天" else 6
    return ("mon", "tue", "wed", "thu", "fri", "sat", "sun").index(name[:3].lower())


def _stamp_dates(m: re.Match[str]) -> list[tuple[int, int, int]]:
    g = m.group
    if g("y1"):
        return [(int(g("y1")), int(g("m1")), int(g("d1")))]
    if g("y2"):
        return [(int(g("y2")), int(g("m2")), int(g("d2")))]
    if g("y4"):
        return [(int(g("y4")), _MONTHS.index(g("mon4")[:3].lower()) + 1, int(g("d4")))]
    if g("y5"):
        return [(int(g("y5")), _MONTHS.index(g("mon5")[:3].lower()) + 1, int(g("d5")))]
    year, a, b = int(g("y3")), int(g("a3")), int(g("b3"))
    if g("sep3") == ".":
        return [(year, b, a)]  # 21.07.2020: day first
    return [(year, b, a), (year, a, b)]  # 17/07/2020 or 12/25/2020: whichever is a date


def _stamp_clock(m: re.Match[str]) -> tuple[int, int, int, str]:
    """Hour, minute, second and the finest unit given ("day" without a time)."""
    if m.group("h") is None:
        return 0, 0, 0, "day"
    hour = int(m.group("h"))
    ampm = (m.group("ampm") or "").lower()
    if (m.group("half") in _AFTERNOON or ampm.startswith("p")) and hour < 12:
        hour += 12
    elif ampm.startswith("a") and hour == 12:
        hour = 0
    minute = m.group("mi") or m.group("mi2")
    second = m.group("s")
    unit = "second" if second else "minute" if minute else "hour"
    return hour, int(minute or 0), int(second or 0), unit


def _stamp_zone(tz: str | None) -> timezone:
    if not tz or tz.upper() in ("Z", "GMT", "UTC"):
        return UTC
    sign = -1 if tz[0] == "-" else 1
    digits = tz[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
