"""Align two block lists so an insertion is one insertion, not a cascade.

Step 1: difflib finds the longest runs of blocks whose *stable* content is
identical (relative times masked), anchoring everything that did not change.
Step 2: inside each gap between anchors, a small dynamic programme pairs old
and new blocks of the same family by text similarity, keeping reading order;
a pair below the threshold is a rewrite, reported as removed + added (but a
text found almost whole inside a far longer one is an edit of it). The same
programme may pair one block with a run of blocks on the other side whose
joined text is (nearly) the same: a paragraph split at ``<br><br>`` into
several ``<p>``, or several joined into one.
Step 3 finds the splits and merges no single gap holds, whose pieces lie on
both sides of a picture (_across_pictures).
Step 4 (in diff.py) turns an identical removed/added pair into a move when
its order relative to the blocks around it changed.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import TypeVar

from watcher.imageid import image_key
from watcher.models import Block, BlockKind

# Paragraph-like kinds compete for alignment together: a paragraph turned into
# a quote is an edit of that block, not a removal and an addition.
_TEXT_FAMILY = {BlockKind.PARAGRAPH, BlockKind.QUOTE, BlockKind.LIST_ITEM}
SIMILAR = 0.5
_LARGE_GAP = 60 * 60  # beyond this many cell comparisons, use the quick ratio only
# A split or merge: one block and a run of at most _MAX_SPAN text blocks whose
# joined text is at least GROUP_SIMILAR alike, each block of the run having at
# least _COVERED of its text in the one block. Only runs that start or end
# like the one block (first or last _EDGE characters) are compared at all, at
# most _TRIES of them per block, and beyond _MAX_GROUP_CHARS only an identical
# joined text counts. Across pictures, a run may step over _MAX_SKIPPED
# paragraphs of other text (one set between the pieces).
GROUP_SIMILAR = 0.8
_MAX_SPAN = 16
_COVERED = 0.5
_EDGE = 8
_TRIES = 3
_MAX_GROUP_CHARS = 3000
_MAX_SKIPPED = 2
# A text of at least _MIN_ABSORBED characters found (_ABSORBED of it) inside
# one over three times longer is an edit of it (see _absorbed).
_MIN_ABSORBED = 40
_ABSORBED = 0.85
_R = TypeVar("_R", bound=Sequence[int])


@dataclass(frozen=True, slots=True)
class Pair:
    """One aligned position: both sides set (same or edited), or one side None.

    A split or merge pairs one block with several on the other side:
    ``old_run``/``new_run`` list every block of both sides, in reading order
    (``<p>A<br><br>B</p>`` became ``<p>A</p><p>B</p>``: old_run (i,), new_run
    (j, j + 1)); ``old``/``new`` are their first blocks. Empty otherwise.
    """

    old: int | None
    new: int | None
    same: bool
    similarity: float = 1.0
    old_run: tuple[int, ...] = ()
    new_run: tuple[int, ...] = ()

    @property
    def grouped(self) -> bool:
        """A split or a merge."""
        return bool(self.old_run)


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
    return _across_pictures(old, new, pairs)


def similarity(a: Block, b: Block, quick: bool = False) -> float:
    if family(a) != family(b):
        return 0.0
    if a.kind is BlockKind.TIME:
        # Time stamps pair by the instant they name, not by their wording.
        same_instant = any(x.overlaps(y) for x in a.times for y in b.times)
        return 0.9 if same_instant else SIMILAR
    if a.kind is BlockKind.IMAGE and a.image and b.image:
        if image_key(a.image.origin_src) == image_key(b.image.origin_src):
            return 0.9  # the same picture, maybe at another host or width (imageid.py)
        same_words = bool(a.image.caption) and a.image.caption == b.image.caption
        same_alt = bool(a.image.alt) and a.image.alt == b.image.alt
        # Two pictures in the same gap between unchanged blocks: a swap.
        return 0.7 if same_words or same_alt else SIMILAR
    matcher = SequenceMatcher(None, a.stable_text, b.stable_text, autojunk=False)
    if matcher.real_quick_ratio() < SIMILAR:  # one is over three times the other's length
        return 0.0 if quick else _absorbed(a.stable_text, b.stable_text)
    if matcher.quick_ratio() < SIMILAR:
        return 0.0
    return matcher.quick_ratio() if quick else matcher.ratio()


def _absorbed(a: str, b: str) -> float:
    """SIMILAR when the shorter text reads almost whole inside the much longer
    one: a paragraph that grew by new sentences around it, or was merged into
    one with much new text, is an edit of it, not a removal and an addition."""
    short, long = sorted((a, b), key=len)
    if len(short) < _MIN_ABSORBED:
        return 0.0
    middle = (len(short) - _EDGE) // 2
    if sum(short[k : k + _EDGE] in long for k in (0, middle, len(short) - _EDGE)) < 2:
        return 0.0  # the quick test: its start, middle or end found word for word
    matcher = SequenceMatcher(None, short, long, autojunk=False)
    found = sum(size for _, _, size in matcher.get_matching_blocks())
    return SIMILAR if found >= _ABSORBED * len(short) else 0.0


def _align_gap(
    old: tuple[Block, ...], new: tuple[Block, ...], olds: range, news: range
) -> list[Pair]:
    n, m = len(olds), len(news)
    if n == 0 or m == 0:
        return [Pair(i, None, False) for i in olds] + [Pair(None, j, False) for j in news]
    quick = n * m > _LARGE_GAP
    sim = [[similarity(old[i], new[j], quick) for j in news] for i in olds]
    groups = _groups(old, new, olds, news)
    # score[i][j]: best total similarity aligning olds[:i] with news[:j];
    # step[i][j]: the last pair of that alignment, as (old blocks, new blocks,
    # similarity). A pair of a + b blocks counts (a + b) / 2 times its similarity.
    score = [[0.0] * (m + 1) for _ in range(n + 1)]
    step: list[list[_Step]] = [[(0, 1, 0.0)] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        step[i][0] = (1, 0, 0.0)
        for j in range(1, m + 1):
            s = sim[i - 1][j - 1]
            diag = score[i - 1][j - 1] + s if s >= SIMILAR else -1.0
            best = max(score[i - 1][j], score[i][j - 1], diag)
            if diag == best:
                move: _Step = (1, 1, s)
            elif score[i - 1][j] == best:
                move = (1, 0, 0.0)
            else:
                move = (0, 1, 0.0)
            for a, b, g in groups.get((i, j), ()):
                value = score[i - a][j - b] + g * (a + b) / 2
                if value > best:
                    best, move = value, (a, b, g)
            score[i][j], step[i][j] = best, move
    out: list[Pair] = []
    i, j = n, m
    while i > 0 or j > 0:
        a, b, s = step[i][j]
        if b == 0:
            out.append(Pair(olds[i - 1], None, False))
        elif a == 0:
            out.append(Pair(None, news[j - 1], False))
        elif a + b == 2:
            out.append(Pair(olds[i - 1], news[j - 1], False, s))
        else:
            old_run, new_run = tuple(olds[i - a : i]), tuple(news[j - b : j])
            same = _same_text(old, new, old_run, new_run)
            out.append(Pair(old_run[0], new_run[0], same, s, old_run, new_run))
        i, j = i - a, j - b
    out.reverse()
    return out


_Step = tuple[int, int, float]


def join_like(parts: Sequence[str], like: str) -> str:
    """The texts of several blocks read as the one text ``like`` they were split
    from (or merged into): joined by a space where ``like`` has one between
    them, else directly. A ``<br>`` reads as a space; a Chinese paragraph cut
    in two had none."""
    out = parts[0] if parts else ""
    for part in parts[1:]:
        out += part if out[-_EDGE:] + part[:_EDGE] in like else " " + part
    return out


def _joined(blocks: tuple[Block, ...], run: Iterable[int], like: str = "") -> str:
    return join_like([blocks[k].stable_text for k in run], like)


def _same_text(
    old: tuple[Block, ...], new: tuple[Block, ...], old_run: Sequence[int], new_run: Sequence[int]
) -> bool:
    """Whether a split or merge kept the words: markup only."""
    if len(old_run) == 1:
        text = old[old_run[0]].stable_text
        return _joined(new, new_run, text) == text
    text = new[new_run[0]].stable_text
    return _joined(old, old_run, text) == text


def _groups(
    old: tuple[Block, ...], new: tuple[Block, ...], olds: range, news: range
) -> dict[tuple[int, int], list[_Step]]:
    """Splits (one old block, a run of new ones) and merges (the reverse) in a
    gap, keyed by where they end in the programme's (old, new) coordinates."""
    found: dict[tuple[int, int], list[_Step]] = {}
    new_edges, old_edges = _Edges(new, news), _Edges(old, olds)
    for x, i in enumerate(olds):
        for start, stop, g in new_edges.runs_like(old[i]):
            found.setdefault((x + 1, stop), []).append((1, stop - start, g))
    for y, j in enumerate(news):
        for start, stop, g in old_edges.runs_like(new[j]):
            found.setdefault((stop, y + 1), []).append((stop - start, 1, g))
    return found


class _Edges:
    """The text blocks of one side of a gap by how they start and end, so that
    finding the runs a block may have been split into costs a lookup each."""

    def __init__(self, blocks: tuple[Block, ...], span: range) -> None:
        self.blocks, self.span = blocks, span
        self.heads: dict[str, list[int]] = {}
        self.tails: dict[str, list[int]] = {}
        self.short: list[int] = []  # shorter than _EDGE: compared one by one
        for y, k in enumerate(span):
            block = blocks[k]
            if family(block) != "text" or not block.stable_text:
                continue
            if len(block.stable_text) < _EDGE:
                self.short.append(y)
            else:
                self.heads.setdefault(block.stable_text[:_EDGE], []).append(y)
                self.tails.setdefault(block.stable_text[-_EDGE:], []).append(y)

    def runs_like(self, one: Block) -> list[tuple[int, int, float]]:
        """Runs of two or more text blocks whose joined text is ``one``'s, split
        or merged, as (start, stop, similarity) in positions of the span.

        Cheap tests first: a run must start or end like ``one`` and have a
        joined length a ratio of GROUP_SIMILAR allows; only those are compared."""
        text = one.stable_text
        if family(one) != "text" or len(text) < 2 * _EDGE:
            return []
        starts = self.heads.get(text[:_EDGE], []) + [
            y for y in self.short if text.startswith(self._text(y))
        ]
        ends = self.tails.get(text[-_EDGE:], []) + [
            y for y in self.short if text.endswith(self._text(y))
        ]
        if not starts and not ends:
            return []
        fits = _lengths(text)
        runs = {run for y in starts for run in self._grow(y, 1, fits)}
        runs.update(run for y in ends for run in self._grow(y, -1, fits))
        found = _first_alike(one, self.blocks, [self.span[start:stop] for start, stop in runs])
        if found is None:
            return []
        run, g = found
        return [(run.start - self.span.start, run.stop - self.span.start, g)]

    def _text(self, y: int) -> str:
        return self.blocks[self.span[y]].stable_text

    def _grow(self, y: int, direction: int, fits: tuple[float, float]) -> list[tuple[int, int]]:
        """Runs from position ``y`` growing in ``direction`` over text blocks,
        as (start, stop), whose joined length lies within ``fits``."""
        out: list[tuple[int, int]] = []
        length = -1
        for count in range(1, _MAX_SPAN + 1):
            z = y + direction * (count - 1)
            if not 0 <= z < len(self.span):
                break
            block = self.blocks[self.span[z]]
            if family(block) != "text" or not block.stable_text:
                break
            length += len(block.stable_text) + 1
            if length > fits[1]:
                break
            if count >= 2 and length >= fits[0]:
                out.append((y, z + 1) if direction > 0 else (z, y + 1))
        return out


def _lengths(text: str) -> tuple[float, float]:
    """The shortest and longest joined run that can be GROUP_SIMILAR alike ``text``."""
    return (
        len(text) * GROUP_SIMILAR / (2 - GROUP_SIMILAR),
        len(text) * (2 - GROUP_SIMILAR) / GROUP_SIMILAR,
    )


def _first_alike(
    one: Block, blocks: tuple[Block, ...], runs: Iterable[_R]
) -> tuple[_R, float] | None:
    """The first run, nearest ``one`` in joined length, whose text is ``one``'s
    split (with its similarity), among the _TRIES nearest: the full comparison
    is what costs, and the right run is nearly always the nearest."""
    size = len(one.stable_text)
    ordered = sorted(runs, key=lambda run: (abs(len(_joined(blocks, run)) - size), tuple(run)))
    for run in ordered[:_TRIES]:
        if g := _group_similarity(one, blocks, run):
            return run, g
    return None


def _group_similarity(one: Block, blocks: tuple[Block, ...], run: Sequence[int]) -> float:
    """How alike ``one`` and the joined ``run`` read, or 0.0 when they are not
    one text split in pieces: too different, or a block of the run mostly new
    (an added paragraph after an edited one is not a split)."""
    joined = _joined(blocks, run, one.stable_text)
    if joined == one.stable_text:
        return 1.0
    if len(joined) > _MAX_GROUP_CHARS:
        return 0.0  # comparing in full would cost too much; only the same text counts
    matcher = SequenceMatcher(None, joined, one.stable_text, autojunk=False)
    if matcher.real_quick_ratio() < GROUP_SIMILAR or matcher.quick_ratio() < GROUP_SIMILAR:
        return 0.0
    ratio = matcher.ratio()
    if ratio < GROUP_SIMILAR:
        return 0.0
    matches = matcher.get_matching_blocks()
    start = 0
    for k in run:
        start = joined.index(blocks[k].stable_text, start)  # after a space or not
        stop = start + len(blocks[k].stable_text)
        found = sum(max(0, min(stop, a + size) - max(start, a)) for a, _, size in matches)
        if found < _COVERED * (stop - start):
            return 0.0
        start = stop
    return ratio


# -- splits and merges across pictures ---------------------------------------------
def _across_pictures(
    old: tuple[Block, ...], new: tuple[Block, ...], pairs: list[Pair]
) -> list[Pair]:
    """Splits and merges whose pieces no single gap holds.

    ``<p>A<br><img><br>B</p>`` became ``<p>A</p><img><p>B</p>``: the unchanged
    picture anchors the alignment between A and B. So a text block left
    removed or edited is tried once more against the free text blocks
    (added, or its own partner) between its nearest aligned text neighbours,
    stepping over pictures, media and caption lines. Splits first (one old
    block, new pieces), then merges, by running the same search flipped.
    """
    pairs = _gather(old, new, pairs, at_first_piece=True)
    flipped = _gather(new, old, [_flip(p) for p in pairs], at_first_piece=False)
    return [_flip(p) for p in flipped]


def _flip(pair: Pair) -> Pair:
    return Pair(pair.new, pair.old, pair.same, pair.similarity, pair.new_run, pair.old_run)


def _gather(
    ones: tuple[Block, ...], pieces: tuple[Block, ...], pairs: list[Pair], *, at_first_piece: bool
) -> list[Pair]:
    """``pairs`` with splits of ``ones`` blocks into ``pieces`` found and put in
    place of the pairs they join: where the first piece was (a split, read on
    the new side) or where the one block was (a merge, the flipped search)."""
    free = {p.new: k for k, p in enumerate(pairs) if p.old is None and p.new is not None}
    if not any(family(pieces[j]) == "text" for j in free):
        return pairs
    finder = _PieceFinder(ones, pieces, pairs, set(free))
    place: dict[int, Pair] = {}
    drop: set[int] = set()
    for k, pair in enumerate(pairs):
        group = finder.group(pair)
        if group is None:
            continue
        positions = [free[j] for j in group.new_run if j in free]
        if pair.new is not None:
            positions.append(k)  # the partner it was edited into is one of the pieces
        drop.update([k, *positions])
        place[min(positions) if at_first_piece else k] = group
    if not place:
        return pairs
    out: list[Pair] = []
    for k, pair in enumerate(pairs):
        if k in place:
            out.append(place[k])
        if k not in drop:
            out.append(pair)
    return out


class _PieceFinder:
    """Finds the pieces a block of ``ones`` was split into among ``pieces``."""

    def __init__(
        self, ones: tuple[Block, ...], pieces: tuple[Block, ...], pairs: list[Pair], free: set[int]
    ) -> None:
        self.ones, self.pieces, self.free = ones, pieces, free
        self.captions = caption_lines(pieces)
        one_captions = caption_lines(ones)
        # aligned text pairs, (one, piece): a split lies between two of them
        bounds: list[tuple[int, int]] = []
        for p in pairs:
            if p.old is None or p.new is None or family(ones[p.old]) != "text":
                continue
            if p.old not in one_captions:
                bounds += [(p.old, p.new), (max(p.old_run or (p.old,)), max(p.new_run or (p.new,)))]
        self.bounds = sorted(bounds)
        self.heads: dict[str, list[int]] = {}
        self.tails: dict[str, list[int]] = {}
        self.short: list[int] = []
        for j in sorted(free):
            text = pieces[j].stable_text
            if family(pieces[j]) != "text" or j in self.captions or not text:
                continue
            if len(text) < _EDGE:
                self.short.append(j)
            else:
                self.heads.setdefault(text[:_EDGE], []).append(j)
                self.tails.setdefault(text[-_EDGE:], []).append(j)

    def group(self, pair: Pair) -> Pair | None:
        """The split of ``pair``'s one block (removed, or edited into its partner),
        if its text is found in pieces around it: better than the partner alone."""
        if pair.old is None or pair.grouped or pair.same:
            return None
        one, partner = self.ones[pair.old], pair.new
        text = one.stable_text
        if family(one) != "text" or len(text) < 2 * _EDGE:
            return None
        search = _Search(self.pieces, text, partner, *self._region(pair.old))
        found = _first_alike(one, self.pieces, self._runs(search))
        floor = 0.0 if partner is None else pair.similarity  # beat the partner alone
        if found is None or found[1] <= floor:
            return None
        run, g = found
        self.free.difference_update(run)
        return Pair(pair.old, run[0], _joined(self.pieces, run, text) == text, g, (pair.old,), run)

    def _runs(self, search: _Search) -> set[tuple[int, ...]]:
        """Candidate runs: from a piece starting like the block, or back from
        one ending like it, or either way from its partner (which they hold)."""
        text, partner = search.text, search.partner
        partners = [] if partner is None else [partner]
        starts = partners + self.heads.get(text[:_EDGE], [])
        starts += [j for j in self.short if text.startswith(self.pieces[j].stable_text)]
        ends = partners + self.tails.get(text[-_EDGE:], [])
        ends += [j for j in self.short if text.endswith(self.pieces[j].stable_text)]
        runs = {
            run for y in starts if search.lo < y < search.hi for run in self._grow(y, 1, search)
        }
        runs.update(
            run for y in ends if search.lo < y < search.hi for run in self._grow(y, -1, search)
        )
        return runs if partner is None else {run for run in runs if partner in run}

    def _region(self, i: int) -> tuple[int, int]:
        """The pieces strictly between the aligned text neighbours of one block ``i``."""
        at = bisect_left(self.bounds, (i, -1))
        lo = self.bounds[at - 1][1] if at > 0 else -1
        after = bisect_right(self.bounds, (i, len(self.pieces)))
        hi = self.bounds[after][1] if after < len(self.bounds) else len(self.pieces)
        return lo, hi

    def _grow(self, y: int, step: int, search: _Search) -> list[tuple[int, ...]]:
        """Runs of free text pieces from ``y`` in direction ``step`` whose
        joined length fits, stepping over pictures, media, caption lines and a
        paragraph or two of other text (one set in the middle of a split)."""
        out: list[tuple[int, ...]] = []
        run: list[int] = []
        length, skipped = -1, 0
        z = y
        while search.lo < z < search.hi and len(run) < _MAX_SPAN:
            block = self.pieces[z]
            if family(block) == "text" and z not in self.captions:
                if z != search.partner and (z not in self.free or not search.inside(z)):
                    skipped += 1
                    if z not in self.free or skipped > _MAX_SKIPPED:
                        break
                    z += step
                    continue
                length += len(block.stable_text) + 1
                if length > search.longest:
                    break
                run.append(z)
                if len(run) >= 2 and length >= search.shortest:
                    out.append(tuple(sorted(run)))
            elif block.kind not in (BlockKind.IMAGE, BlockKind.MEDIA) and z not in self.captions:
                break
            z += step
        return out


class _Search:
    """What the search for one block's pieces knows: its text, its partner (the
    block it was edited into, if any), the pieces it may lie between
    (exclusive) and the joined lengths a ratio of GROUP_SIMILAR allows."""

    def __init__(
        self, pieces: tuple[Block, ...], text: str, partner: int | None, lo: int, hi: int
    ) -> None:
        self.pieces, self.text, self.partner, self.lo, self.hi = pieces, text, partner, lo, hi
        self.shortest, self.longest = _lengths(text)

    def inside(self, j: int) -> bool:
        """Whether piece ``j`` reads like a part of the block: its start, middle
        or end is found there word for word. A quick test; the joined run is
        compared in full later (_group_similarity)."""
        piece = self.pieces[j].stable_text
        if len(piece) <= _EDGE:
            return piece in self.text
        middle = (len(piece) - _EDGE) // 2
        return any(piece[k : k + _EDGE] in self.text for k in (0, middle, len(piece) - _EDGE))


def caption_lines(blocks: tuple[Block, ...]) -> frozenset[int]:
    """Text blocks that repeat the caption or alt text of the picture next to
    them: a layout that prints a photo's caption again as a paragraph."""
    found: set[int] = set()
    for k, block in enumerate(blocks):
        if block.image is None:
            continue
        words = {w for w in (block.image.caption, block.image.alt) if w}
        found.update(
            near
            for near in (k - 1, k + 1)
            if 0 <= near < len(blocks) and blocks[near].image is None and blocks[near].text in words
        )
    return frozenset(found)
