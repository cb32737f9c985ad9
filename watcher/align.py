"""Align two block lists so an insertion is one insertion, not a cascade.

Step 1: difflib finds the longest runs of blocks whose *stable* content is
identical (relative times masked), anchoring everything that did not change.
Step 2: inside each gap between anchors, a small dynamic programme pairs old
and new blocks of the same family by text similarity, keeping reading order;
a pair below the threshold is a rewrite, reported as removed + added.
Step 3 (in diff.py) turns an identical removed/added pair into a move.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher

from watcher.models import Block, BlockKind

# Paragraph-like kinds compete for alignment together: a paragraph turned into
# a quote is an edit of that block, not a removal and an addition.
_TEXT_FAMILY = {BlockKind.PARAGRAPH, BlockKind.QUOTE, BlockKind.LIST_ITEM}
SIMILAR = 0.5
_LARGE_GAP = 60 * 60  # beyond this many cell comparisons, use the quick ratio only


@dataclass(frozen=True, slots=True)
class Pair:
    """One aligned position: both sides set (same or edited), or one side None."""

    old: int | None
    new: int | None
    same: bool
    similarity: float = 1.0


def family(block: Block) -> str:
    return "text" if block.kind in _TEXT_FAMILY else block.kind.value


def key(block: Block) -> tuple[str, str]:
    return (family(block), block.stable_text)


def align(old: tuple[Block, ...], new: tuple[Block, ...]) -> list[Pair]:
    """Pairs covering every block of both lists, in reading order."""
    a = [key(b) for b in old]
    b = [key(b) for b in new]
    pairs: list[Pair] = []
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs.extend(
                Pair(i, j, True) for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
            )
        else:
            pairs.extend(_align_gap(old, new, range(i1, i2), range(j1, j2)))
    return pairs


def similarity(a: Block, b: Block, quick: bool = False) -> float:
    if family(a) != family(b):
        return 0.0
    if a.kind is BlockKind.TIME:
        # Time stamps pair by the instant they name, not by their wording.
        same_instant = any(x.overlaps(y) for x in a.times for y in b.times)
        return 0.9 if same_instant else SIMILAR
    if a.kind is BlockKind.IMAGE and a.image and b.image:
        if a.image.origin_src == b.image.origin_src:
            return 0.9
        same_words = bool(a.image.caption) and a.image.caption == b.image.caption
        same_alt = bool(a.image.alt) and a.image.alt == b.image.alt
        # Two pictures in the same gap between unchanged blocks: a swap.
        return 0.7 if same_words or same_alt else SIMILAR
    matcher = SequenceMatcher(None, a.stable_text, b.stable_text, autojunk=False)
    if matcher.real_quick_ratio() < SIMILAR or matcher.quick_ratio() < SIMILAR:
        return 0.0
    return matcher.quick_ratio() if quick else matcher.ratio()


def _align_gap(
    old: tuple[Block, ...], new: tuple[Block, ...], olds: range, news: range
) -> list[Pair]:
    n, m = len(olds), len(news)
    if n == 0 or m == 0:
        return [Pair(i, None, False) for i in olds] + [Pair(None, j, False) for j in news]
    quick = n * m > _LARGE_GAP
    sim = [[similarity(old[i], new[j], quick) for j in news] for i in olds]
    # score[i][j]: best total similarity aligning olds[:i] with news[:j]
    score = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            s = sim[i - 1][j - 1]
            diag = score[i - 1][j - 1] + s if s >= SIMILAR else -1.0
            score[i][j] = max(score[i - 1][j], score[i][j - 1], diag)
    out: list[Pair] = []
    i, j = n, m
    while i > 0 and j > 0:
        s = sim[i - 1][j - 1]
        if s >= SIMILAR and score[i][j] == score[i - 1][j - 1] + s:
            out.append(Pair(olds[i - 1], news[j - 1], False, s))
            i, j = i - 1, j - 1
        elif score[i][j] == score[i - 1][j]:
            out.append(Pair(olds[i - 1], None, False))
            i -= 1
        else:
            out.append(Pair(None, news[j - 1], False))
            j -= 1
    out.extend(Pair(olds[k], None, False) for k in range(i - 1, -1, -1))
    out.extend(Pair(None, news[k], False) for k in range(j - 1, -1, -1))
    out.reverse()
    return out
