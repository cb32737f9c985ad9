"""Site and feed boilerplate: blocks that belong to a site, not to one article.

Feed plugins and CMSs append or edit lines in every article ("The post … appeared
first on …", "© … | Permalink | Post tags …", "获取更多RSS", a zoom icon under
every photo). A change confined to such blocks is noise of its own kind
(``boilerplate``), never news.

Two ways to know a block is boilerplate:

* **Learned per site.** Each stored version records the *fingerprints* of its
  short blocks under its host (``block_sightings``). A fingerprint seen in at
  least :data:`THRESHOLD` distinct stories of the same host is boilerplate
  there. The daemon learns as it goes; an import learns from the whole
  imported set before it classifies anything.

  Stories, not URLs: one story often lives at several URLs of a site (a
  syndicated wire story, print and web editions, a tracking-parameter
  variant), and its paragraphs repeat across them without being the site's.
  An article's :func:`story` is its longest text blocks hashed; copies of
  one story share it, and count once.
* **A short seed list** (:data:`SEEDS`) of the very common feed and CMS
  footers, for a site with too few articles to learn from.

A fingerprint is the block's *skeleton* hashed: its text with the article's
own title, link texts, digits and times masked, spaces and case folded, so a
footer that repeats the title or a date still matches across articles. Blocks
with little literal text left (a lone link, a number) and long blocks (real
paragraphs) get no fingerprint: they are never learned as boilerplate. An
image's fingerprint is its file name, and only an image without a caption can
be boilerplate (a stock photo with a caption is content wherever it appears).
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import re
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from watcher.models import Article, Block, BlockKind

#: Distinct articles of one host a block must appear in to be learned as boilerplate.
THRESHOLD = 5
#: How many of an article's longest text blocks name its story.
STORY_BLOCKS = 2
#: Longer blocks are article text, never boilerplate.
MAX_CHARS = 400
#: How alike an edited block must be to the boilerplate it replaces to be boilerplate too.
ALIKE = 0.6
#: A skeleton needs this many letters (not masks, digits, spaces or punctuation):
#: a bare time stamp or number is never learned as boilerplate.
MIN_LITERAL = 6

_LINK = "⟨a⟩"
_TITLE = "⟨title⟩"
_DIGITS = re.compile(r"\d+")
_LITERAL = re.compile(r"[^\W\d_]")  # letters and CJK characters, not digits
_MASKS = re.compile(r"⟨(?:a|title|time)⟩")
_TEXT_KINDS = frozenset({BlockKind.PARAGRAPH, BlockKind.LIST_ITEM, BlockKind.QUOTE})

#: Feed and CMS footers common enough to know without learning, matched on the
#: skeleton (see module docstring): WordPress's "The post … appeared first on",
#: the Better Feed plugin's copyright/permalink/tags line and its credit, and
#: feed mirrors' promotional lines.
SEEDS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p)
    for p in (
        r"^the post ⟨(?:a|title)⟩ appeared first on ⟨a⟩",
        r"^feed enhanced by ⟨a⟩",
        r"get_post_time\(|\|\s*⟨a⟩\s*\|.*post tags:",
        r"^获取更多rss",
    )
)


def skeleton(block: Block, title: str) -> str:
    """The block's text with what varies between articles masked."""
    return _skeleton(block.stable_text, title, tuple(link.text for link in block.links))


# A diff asks for the skeletons of both versions' blocks and the sightings for
# the new one's again: cached by what a skeleton depends on (strings, cheap to
# hash and compare), so each block of a check is masked once.
@functools.lru_cache(maxsize=8192)
def _skeleton(text: str, title: str, link_texts: tuple[str, ...]) -> str:
    if title and len(title) >= 4:
        text = text.replace(title, _TITLE)
    for link_text in sorted(link_texts, key=len, reverse=True):
        if link_text.strip():
            text = text.replace(link_text.strip(), _LINK)
    text = _DIGITS.sub("0", text)
    return " ".join(text.lower().split())


def fingerprint(block: Block, title: str) -> str | None:
    """A short hash naming the block's skeleton, or None for a block that is
    never boilerplate (long, almost all masks, or not text / a captionless image)."""
    if block.kind is BlockKind.IMAGE and block.image is not None:
        if block.image.caption:
            return None
        name = PurePosixPath(urlsplit(block.image.origin_src).path).name.lower()
        return _hash(f"img:{name}") if name else None
    if block.kind not in _TEXT_KINDS or len(block.text) > MAX_CHARS:
        return None
    return _shape_fingerprint(skeleton(block, title))


@functools.lru_cache(maxsize=8192)
def _shape_fingerprint(shape: str) -> str | None:
    """A text block's fingerprint from its skeleton (None: almost all masks)."""
    if len(_LITERAL.findall(_MASKS.sub("", shape))) < MIN_LITERAL:
        return None
    return _hash(shape)


def fingerprints(article: Article) -> set[str]:
    """The fingerprints an article's version contributes to its host's sightings."""
    found = (fingerprint(block, article.title) for block in article.blocks)
    return {fp for fp in found if fp is not None}


def story(article: Article) -> str | None:
    """A short hash naming the story an article tells: its two longest text
    blocks, digits masked, which copies of the story share (a copy may number
    itself, or its dateline).

    Two, because a footer can outgrow every paragraph of a one-line brief: two
    briefs still differ in their second-longest block. None for an article
    with no text.
    """
    texts = (block.stable_text for block in article.blocks if block.kind in _TEXT_KINDS)
    longest = heapq.nlargest(
        STORY_BLOCKS, (_DIGITS.sub("0", " ".join(t.split())) for t in texts), key=len
    )
    return _hash("\n".join(longest)) if any(longest) else None


def host_of(url: str) -> str:
    """The site an article belongs to, for learning: its host without ``www.``."""
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class Boilerplate:
    """What is boilerplate on one site: the learned fingerprints and the seeds."""

    learned: frozenset[str] = frozenset()

    @classmethod
    def of(cls, learned: Iterable[str]) -> Boilerplate:
        return cls(frozenset(learned))

    def __contains__(self, item: tuple[Block, str]) -> bool:
        """``(block, article_title) in boilerplate``."""
        block, title = item
        if block.kind in _TEXT_KINDS and len(block.text) <= MAX_CHARS:
            shape = skeleton(block, title)  # once: the seeds and the fingerprint read it
            if any(seed.search(shape) for seed in SEEDS):
                return True
            found = _shape_fingerprint(shape) if self.learned else None
        else:
            found = fingerprint(block, title) if self.learned else None
        return found is not None and found in self.learned

    def split(
        self, old: Article, new: Article
    ) -> tuple[tuple[Article, list[tuple[int, Block]]], tuple[Article, list[tuple[int, Block]]]]:
        """Each article without its boilerplate blocks, and those blocks with
        their positions in the original article.

        A block that stands where the other version has boilerplate and reads
        like it (an edited footer: the edit is new, so not yet learned) is
        boilerplate too.
        """
        old_marks = [(b, old.title) in self for b in old.blocks]
        new_marks = [(b, new.title) in self for b in new.blocks]
        if not any(old_marks) and not any(new_marks):
            return (old, []), (new, [])
        _pair_edits(old, new, old_marks, new_marks)
        return _apart(old, old_marks), _apart(new, new_marks)


SEED_ONLY = Boilerplate()


def _pair_edits(old: Article, new: Article, old_marks: list[bool], new_marks: list[bool]) -> None:
    """Mark the unmarked side of a replaced block pair whose other side is
    boilerplate, when the two skeletons are alike."""
    a = [(b.kind, b.text) for b in old.blocks]
    b = [(b.kind, b.text) for b in new.blocks]
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "replace":
            continue
        for i in range(i1, i2):
            for j in range(j1, j2):
                if old_marks[i] == new_marks[j]:
                    continue
                x, y = old.blocks[i], new.blocks[j]
                if x.kind is y.kind and _alike(skeleton(x, old.title), skeleton(y, new.title)):
                    old_marks[i] = new_marks[j] = True


def _alike(a: str, b: str) -> bool:
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    return matcher.quick_ratio() >= ALIKE and matcher.ratio() >= ALIKE


def _apart(article: Article, marks: list[bool]) -> tuple[Article, list[tuple[int, Block]]]:
    dropped = [
        (i, block)
        for i, (block, mark) in enumerate(zip(article.blocks, marks, strict=True))
        if mark
    ]
    if not dropped:
        return article, []
    kept = tuple(block for block, mark in zip(article.blocks, marks, strict=True) if not mark)
    return _with_blocks(article, kept), dropped


def _with_blocks(article: Article, blocks: tuple[Block, ...]) -> Article:
    return Article(
        url=article.url,
        title=article.title,
        captured_at=article.captured_at,
        blocks=blocks,
        dropped_boilerplate=article.dropped_boilerplate,
    )
