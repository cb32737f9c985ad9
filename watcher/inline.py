"""Inline diffs that read well in every script.

Tokens are single characters in CJK runs (a Chinese copy edit is one or two
characters), whole words in Latin text, and whole numbers ("3,000" -> "3,500"
is one token, not "0" -> "5"). difflib aligns the token lists.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

Op = tuple[str, str]  # ("=" | "-" | "+", text)

_TOKEN_RE = re.compile(
    r"\d+(?:[.,:/]\d+)*%?"  # numbers, with thousands separators, decimals, times, dates
    r"|[^\W\d_]+(?:['’-][^\W\d_]+)*"  # letter runs; CJK runs are split below
    r"|\s+"
    r"|.",
    re.UNICODE,
)
_CJK_RE = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\u3040-\u30ff\uf900-\ufaff]")


def tokenize(text: str) -> list[str]:
    """Split text into diff tokens: CJK characters one by one, words and numbers whole."""
    tokens: list[str] = []
    for match in _TOKEN_RE.finditer(text):
        token = match.group(0)
        if len(token) > 1 and _CJK_RE.search(token):
            tokens.extend(_split_cjk(token))
        else:
            tokens.append(token)
    return tokens


def _split_cjk(token: str) -> list[str]:
    """A word-character run mixing CJK and Latin: CJK chars alone, Latin runs whole."""
    out: list[str] = []
    latin = ""
    for ch in token:
        if _CJK_RE.match(ch):
            if latin:
                out.append(latin)
                latin = ""
            out.append(ch)
        else:
            latin += ch
    if latin:
        out.append(latin)
    return out


def inline_diff(before: str, after: str) -> tuple[Op, ...]:
    """The edit from ``before`` to ``after`` as merged (op, text) runs."""
    a, b = tokenize(before), tokenize(after)
    ops: list[Op] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            _push(ops, "=", "".join(a[i1:i2]))
        else:
            _push(ops, "-", "".join(a[i1:i2]))
            _push(ops, "+", "".join(b[j1:j2]))
    return tuple(ops)


def _push(ops: list[Op], op: str, text: str) -> None:
    if not text:
        return
    if ops and ops[-1][0] == op:
        ops[-1] = (op, ops[-1][1] + text)
    else:
        ops.append((op, text))
