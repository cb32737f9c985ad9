"""Whitespace a reader does not read: when two texts differ only in spacing.

``article.normalise_text`` already folds what nobody sees (NBSP, U+3000 and
the other Unicode spaces, runs of spaces, zero-width characters), so parsed
texts can still differ by a space that is there in one and not in the other.
Whether that is an edit depends on the script around it:

* between two letters or digits of a script that separates its words with
  spaces ("foo bar" / "foobar", "10 000" / "10000") the space is part of the
  words: adding or removing it is an edit;
* anywhere else (between two Chinese characters, "COVID-19 病例" /
  "COVID-19病例", beside punctuation, at either end) it only spaces the text
  out: the words are the same, and the difference is noise.

The raw file (title line, front matter, body HTML) is compared byte for byte
elsewhere; :func:`blank_key` and :func:`describe` name a difference there that
is whitespace only.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

# Characters of scripts written without spaces between words: CJK ideographs
# and radicals, kana, CJK punctuation, full-width forms, Thai, Lao, Myanmar,
# Khmer. Hangul is spaced (Korean separates words), so it is not here.
_UNSPACED = re.compile(
    r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u2e80-\u9fff\uf900-\ufaff"
    r"\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003ffff]"
)
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
_BLANKS = re.compile(rf"[\s{_INVISIBLE}]+")
_RUN_BEFORE = re.compile(rf"([\s{_INVISIBLE}]*)[^\s{_INVISIBLE}]")
_TRAILING = re.compile(rf"[\s{_INVISIBLE}]+\Z")
_NAMES = {
    " ": "space",
    "\u00a0": "no-break space",
    "\u3000": "ideographic space",
    "\t": "tab",
    "\n": "line break",
    "\u200b": "zero-width space",
    "\ufeff": "zero-width no-break space",
}
_MAX_PHRASES = 3
_SPACE_ENTITIES = {
    "nbsp": "\u00a0",
    "ensp": "\u2002",
    "emsp": "\u2003",
    "thinsp": "\u2009",
    "zerowidthspace": "\u200b",
    "#160": "\u00a0",
    "#xa0": "\u00a0",
    "#12288": "\u3000",
    "#x3000": "\u3000",
    "#8203": "\u200b",
    "#x200b": "\u200b",
    "#32": " ",
    "#x20": " ",
}
_SPACE_ENTITY = re.compile(
    "&(" + "|".join(re.escape(e) for e in _SPACE_ENTITIES) + ");", re.IGNORECASE
)


def _spaced(ch: str) -> bool:
    """A letter or digit of a script that puts spaces between its words."""
    return ch.isalnum() and _UNSPACED.match(ch) is None


def words_key(text: str) -> str:
    """``text`` with every blank run removed, except one space where it
    separates two words ("foo bar"): texts with equal keys read the same."""
    out: list[str] = []
    last = 0
    for m in _BLANKS.finditer(text):
        out.append(text[last : m.start()])
        before = text[m.start() - 1] if m.start() else ""
        after = text[m.end()] if m.end() < len(text) else ""
        if before and after and _spaced(before) and _spaced(after):
            out.append(" ")
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def same_words(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ (if at all) only in spacing nobody reads."""
    return a == b or words_key(a) == words_key(b)


def blank_key(text: str) -> str:
    """``text`` without any whitespace or zero-width character."""
    return _BLANKS.sub("", text)


def unescape_spaces(html: str) -> str:
    """HTML with its space entities (``&nbsp;``, ``&#12288;``, ``&#8203;`` …) as
    the characters they stand for; every other entity is left as it is."""
    if "&" not in html:
        return html
    return _SPACE_ENTITY.sub(lambda m: _SPACE_ENTITIES[m.group(1).lower()], html)


def describe(before: str, after: str) -> str:
    """What changed between two texts that differ only in blanks, for a reader:
    "whitespace only: no-break space → space", "… space added ×2"."""
    changes: Counter[str] = Counter()
    for old, new in _blank_runs(before, after):
        if old != new:
            changes[_change_phrase(old, new)] += 1
    phrases = [p if n == 1 else f"{p} ×{n}" for p, n in changes.most_common(_MAX_PHRASES)]
    if len(changes) > _MAX_PHRASES:
        phrases.append("…")
    return "whitespace only" + (": " + ", ".join(phrases) if phrases else "")


def _blank_runs(before: str, after: str) -> list[tuple[str, str]]:
    """The blank runs of both texts, side by side: around each visible
    character, what stood before it in one text and in the other. Both texts
    must have the same visible characters (equal :func:`blank_key`)."""
    return list(zip(_runs(before), _runs(after), strict=False))


def _runs(text: str) -> list[str]:
    """The blank run before each visible character, and the trailing one."""
    runs = _RUN_BEFORE.findall(text)
    trailing = _TRAILING.search(text)
    runs.append(trailing.group(0) if trailing else "")
    return runs


def _change_phrase(old: str, new: str) -> str:
    if not old:
        return f"{_run_name(new)} added"
    if not new:
        return f"{_run_name(old)} removed"
    return f"{_run_name(old)} → {_run_name(new)}"


def _run_name(run: str) -> str:
    """A run named for a reader: "space", "2 spaces", "no-break space + space"."""
    if len(set(run)) == 1:
        name = _char_name(run[0])
        return name if len(run) == 1 else f"{len(run)} {name}s"
    return " + ".join(_char_name(ch) for ch in run)


def _char_name(ch: str) -> str:
    return _NAMES.get(ch) or unicodedata.name(ch, f"U+{ord(ch):04X}").lower()
