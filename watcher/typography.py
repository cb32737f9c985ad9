"""Typography: quotes, punctuation and character width, which a reader does not
read as a change of wording.

Real edits of news articles include house-style passes: “…” becomes 「…」, a
comma a full stop, full-width letters half-width. The words are the same, so
such a change is noise (``typography``), reported with what changed. Numbers
are the exception: a point or comma between digits ("1.5", "1,000") and a
sign before a digit are part of the number, so "1.5" → "15" stays an edit.
"""

from __future__ import annotations

import unicodedata
from collections import Counter

_SIGNS = frozenset("-−+")


def _wording(text: str) -> str:
    """The text without punctuation that is not part of a number, width folded."""
    folded = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    for i, ch in enumerate(folded):
        if unicodedata.category(ch).startswith("P"):
            before = folded[i - 1] if i else ""
            after = folded[i + 1] if i + 1 < len(folded) else ""
            in_number = before.isdigit() and after.isdigit()
            if not in_number and not (ch in _SIGNS and after.isdigit()):
                out.append(" ")
                continue
        out.append(ch)
    return " ".join("".join(out).split())


def same_wording(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ, but only in typography."""
    return a != b and _wording(a) == _wording(b)


def describe(a: str, b: str) -> str:
    """Which marks came and went, e.g. "“ ” → 「 」" (at most a few)."""
    marks_a = Counter(ch for ch in a if unicodedata.category(ch).startswith("P"))
    marks_b = Counter(ch for ch in b if unicodedata.category(ch).startswith("P"))
    gone = " ".join(sorted((marks_a - marks_b).elements()))[:24]
    came = " ".join(sorted((marks_b - marks_a).elements()))[:24]
    if gone and came:
        return f"typography only: {gone} → {came}"
    if gone or came:
        return f"typography only: {'removed ' + gone if gone else 'added ' + came}"
    return "typography only: character width"
