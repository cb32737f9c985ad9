"""(Article, Article) -> Change: what changed, classified as news or noise.

Noise is what a reader would not call an edit: the capture time
(``header_time``), a ticking "14 分钟前" (``relative_time``), HTML that differs
while nothing visible does (``markup_only``, including the same picture behind
another proxy, on another CDN host or at another width), and an "updated"
stamp that moved while nothing else did. Spacing that joins or splits no words
(spacing.py) is ``markup_only`` too, named where it is ("title: whitespace
only: …"), and a byline's date stamp is a time, not an edit (times.find_stamps).

Block alignment lives in align.py, inline tokenisation in inline.py, image
identity (which URLs show the same picture) in imageid.py. DeepDiff
compares the structured fields (image attributes, link lists, page metadata),
where it names exactly which field moved.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any
from urllib.parse import urlsplit

from deepdiff import DeepDiff

from watcher import spacing, times, typography
from watcher.align import Pair, align, caption_lines, join_like
from watcher.article import parse_article
from watcher.boilerplate import SEED_ONLY, Boilerplate
from watcher.imageid import image_key
from watcher.inline import inline_diff
from watcher.models import (
    EXTRACTION_NOTES,
    Article,
    Block,
    BlockKind,
    Change,
    ChangeItem,
    ChangeKind,
    Image,
    Snapshot,
    TimeBasis,
    TimeMention,
    Verdict,
)

Basis = tuple[TimeBasis, TimeBasis]
"""What the old and the new version's times are: captured by us, or stated by a file."""
CAPTURED_BOTH: Basis = (TimeBasis.CAPTURED, TimeBasis.CAPTURED)

_UPDATED_RE = re.compile(r"更新|update|修改|修訂|修订|edited|revised", re.IGNORECASE)


def diff_snapshots(
    old: Snapshot,
    new: Snapshot,
    *,
    old_metadata: dict[str, Any] | None = None,
    new_metadata: dict[str, Any] | None = None,
    old_article: Article | None = None,
    new_article: Article | None = None,
    basis: Basis = CAPTURED_BOTH,
    boilerplate: Boilerplate = SEED_ONLY,
) -> Change:
    """Parse both snapshots and compare them, noticing markup-only changes.

    Callers walking a chain of versions pass the articles they already parsed
    (``old_article``/``new_article``), so each version is parsed once.

    Archives in the seed format may carry front matter: its ``date`` is a
    header time like the epoch line, its other fields are archive metadata.
    ``basis`` says whether each side's time is our capture time or the time
    an imported file states, so reports name it truthfully.
    """
    change = diff_articles(
        old_article or parse_article(old),
        new_article or parse_article(new),
        old_body=_raw_content(old),
        new_body=_raw_content(new),
        old_metadata=old_metadata,
        new_metadata=new_metadata,
        basis=basis,
        boilerplate=boilerplate,
    )
    extra = _front_matter_items(old.front_matter, new.front_matter, change.items)
    if not extra and _markup_item() not in change.items:
        return change
    items = [i for i in change.items if i != _markup_item()] + extra
    if _nothing_shown(items) and _raw_differs(old, new):
        items += _markup_items(old, new, items)
    return extend(change, items, replace=True)


@dataclass(frozen=True, slots=True)
class Revert:
    """The new content is again that of version ``seq``. Undoing a significant
    change is news; coming back across noise only (a tick and its return) is not."""

    seq: int
    undoes_news: bool


@dataclass(frozen=True, slots=True)
class Redirect:
    """The fetch was redirected to ``final_url``; the previous version had
    been found at ``previous_url``."""

    previous_url: str | None
    final_url: str


def classify(
    old: Snapshot,
    new: Snapshot,
    *,
    old_metadata: dict[str, Any] | None = None,
    new_metadata: dict[str, Any] | None = None,
    old_article: Article | None = None,
    new_article: Article | None = None,
    reappeared_at: str | None = None,
    revert: Revert | None = None,
    redirect: Redirect | None = None,
    basis: Basis = CAPTURED_BOTH,
    boilerplate: Boilerplate = SEED_ONLY,
) -> Change:
    """The change from one stored version to the next, with what the article's
    history adds: it came back after a removal (at ``reappeared_at``), its content
    is again that of an older version (``revert``), or it was reached by a redirect.

    The one classification the daemon and the importer share, so both record
    the same change for the same two versions.
    """
    change = diff_snapshots(
        old,
        new,
        old_metadata=old_metadata,
        new_metadata=new_metadata,
        old_article=old_article,
        new_article=new_article,
        basis=basis,
        boilerplate=boilerplate,
    )
    change = disclosed(change, old_metadata, new_metadata)
    extra: list[ChangeItem] = []
    if reappeared_at is not None:
        extra.append(ChangeItem(ChangeKind.REAPPEARED, True, "article", None, reappeared_at))
    if revert is not None:
        extra.append(reverted_item(revert))
    if redirect is not None and redirect.final_url != redirect.previous_url:
        detail = _redirect_kind(redirect.final_url)
        extra.append(
            ChangeItem(
                ChangeKind.REDIRECTED,
                True,
                "url",
                redirect.previous_url,
                redirect.final_url,
                detail=detail,
            )
        )
    return extend(change, extra) if extra else change


#: Edits of what the article says (moves are not: the words are the same).
_TEXT_EDITS = frozenset({
    ChangeKind.TITLE,
    ChangeKind.PARAGRAPH_EDITED, ChangeKind.PARAGRAPH_ADDED, ChangeKind.PARAGRAPH_REMOVED,
    ChangeKind.HEADING_EDITED, ChangeKind.HEADING_ADDED, ChangeKind.HEADING_REMOVED,
    ChangeKind.LIST_ITEM_EDITED, ChangeKind.LIST_ITEM_ADDED, ChangeKind.LIST_ITEM_REMOVED,
    ChangeKind.QUOTE_EDITED, ChangeKind.QUOTE_ADDED, ChangeKind.QUOTE_REMOVED,
})  # fmt: skip
#: How a newsroom owns up to an edit in the text itself: a correction, an
#: update or an editor's note (Chinese and English newsroom wording).
_DISCLOSURE = re.compile(
    r"更正|勘误|订正|修正|编者按|编者注|本文(?:已|于|曾)?(?:更新|修改|修订)|更新[:：]|修订[:：]"
    r"|最[近后後]更新|更新[时時]间"
    r"|\bcorrect(?:ion|ed)\b|\bclarification\b|\beditor'?s note\b|\bupdated?\s*:|\bamended\b",
    re.IGNORECASE,
)
UNDISCLOSED = "undisclosed edit"


def disclosed(
    change: Change, old_metadata: dict[str, Any] | None, new_metadata: dict[str, Any] | None
) -> Change:
    """``change``, marked as an undisclosed edit when its article text was
    significantly edited while the page still states the same modified time
    (or, stating none, the same publication time) and nothing the change
    brought in (an edited or added block, a time line) is a correction or
    update note. A page that states no time at all is not marked: it claims
    nothing an edit could contradict. Imported versions carry no page
    metadata (their stated time is what the source system wrote, often a
    feed's publication date), so they are never marked."""
    edits = [i for i in change.items if i.significant and i.kind in _TEXT_EDITS]
    if not edits:
        return change
    stated = _stated_time(new_metadata)
    if stated is None or stated != _stated_time(old_metadata):
        return change
    if any(isinstance(i.after, str) and _DISCLOSURE.search(i.after) for i in change.items):
        return change
    return dataclasses.replace(
        change, undisclosed=stated, summary=f"{UNDISCLOSED}: {change.summary}"
    )


def _stated_time(metadata: dict[str, Any] | None) -> str | None:
    if not metadata:
        return None
    value = metadata.get("modified_time") or metadata.get("published_time")
    return str(value) if value else None


def removal(
    url: str,
    *,
    last: Article,
    last_seq: int,
    last_url: str | None,
    captured_after: int,
    status: int,
    reason: str | None = None,
) -> Change:
    """The article is gone (404/410, or a 200 that :func:`soft_removal`
    explains in ``reason``) after version ``last_seq``. The item carries that
    version's text, so the report answers "what did it say?"."""
    text = tuple(block.text for block in last.blocks if block.text)
    where = f" at {last_url}" if last_url else ""
    why = f"HTTP {status}: {reason}" if reason else f"HTTP {status}"
    item = ChangeItem(
        ChangeKind.GONE,
        True,
        "article",
        before=text,
        detail=f"{why}{where}; the last archived version (v{last_seq}) said:",
    )
    base = Change(
        url=url,
        title_before=last.title,
        title_after=last.title,
        captured_before=last.captured_at,
        captured_after=captured_after,
        items=(),
        verdict=Verdict.NONE,
        summary="",
    )
    return extend(base, [item])


def rebaseline(
    old: Snapshot,
    new: Snapshot,
    *,
    rules_before: str,
    rules_after: str,
    reappeared_at: str | None = None,
) -> Change:
    """The site's extraction rules changed between the versions: the new one
    is a baseline, not an edit, since a diff across rules shows the rules.
    One ``rules`` noise item, the rules as shown before and after (plus
    ``reappeared`` when the article came back with them)."""
    items = [
        ChangeItem(
            ChangeKind.RULES,
            False,
            "extraction rules",
            rules_before,
            rules_after,
            detail="this version is the new baseline; the next one is diffed against it",
        )
    ]
    if reappeared_at is not None:
        items.append(ChangeItem(ChangeKind.REAPPEARED, True, "article", None, reappeared_at))
    base = Change(
        url=new.url,
        title_before=old.title,
        title_after=new.title,
        captured_before=old.captured_at,
        captured_after=new.captured_at,
        items=(),
        verdict=Verdict.NONE,
        summary="",
    )
    return extend(base, items)


# A page that says the article is not there ("soft 404"), in its (by then
# tiny) text; a bare "404" counts only in the title or a heading.
_NOT_FOUND_WORDS = re.compile(
    r"\bnot\s+found\b|\bno\s+longer\s+(?:available|exists?)\b"
    r"|\b(?:does\s+not|doesn'?t|did\s+not|could\s+not)\s+(?:exist|be\s+found)\b"
    r"|\b(?:could\s+not|couldn'?t|can'?t|cannot|can\s+not)\s+(?:be\s+)?f(?:i|ou)nd\s+"
    r"(?:that|this|the|your|the\s+requested)?\s*(?:page|article|story)\b"
    r"|\b(?:page|article|story)\s+(?:has\s+been|was)\s+(?:removed|deleted)\b"
    r"|(?:页面|頁面|网页|網頁|文章|内容|內容|新闻|新聞|稿件|信息|資訊)"
    r"(?:已被|已经|已經|已)?(?:不存在|删除|刪除|下线|下線|找不到|未找到)"
    r"|找不到(?:该|該|此|您要的|你要的|您要找的|你要找的|相关|相關)?(?:页面|頁面|网页|網頁|文章|内容|內容)"
    r"|ページが見つかりません|ページは見つかりません|見つかりませんでした",
    re.IGNORECASE,
)
_NOT_FOUND_TITLE = re.compile(rf"\b404\b|{_NOT_FOUND_WORDS.pattern}", re.IGNORECASE)
SOFT_GONE_SHARE = 0.2  # a soft 404 keeps less than this share of the article's text
KEPT_SHARE = 0.2  # ... and a replacement page less than this share of its paragraphs
FRONT_PAGE_LINKS = 12  # a front page links to at least this many pages
FRONT_PAGE_LINK_SHARE = 0.5  # and link text is at least this share of its text


def soft_removal(
    old: Article,
    new: Article,
    *,
    page_url: str,
    old_metadata: dict[str, Any] | None = None,
    new_metadata: dict[str, Any] | None = None,
) -> str | None:
    """Why a page that answered 200 at ``page_url`` is no longer the article
    ``old`` was, or None when it still is (any edit, however large).

    Two general signals, each only once the article's own text has left the
    page: the page says it was not found (a "soft 404"), with a body tiny next
    to the article's; or the page is a front page (its canonical URL is the
    site root, or it is a list of many links where the article was prose).
    """
    old_text, new_text = _prose_length(old), _prose_length(new)
    if not old_text or _kept_share(old, new) >= KEPT_SHARE:
        return None
    if new_text <= old_text * SOFT_GONE_SHARE:
        said = _says_not_found(new)
        if said is not None:
            return f'a "soft 404": the page says "{said}"'
    old_canonical = (old_metadata or {}).get("canonical_url")
    new_canonical = (new_metadata or {}).get("canonical_url")
    if (
        isinstance(new_canonical, str)
        and _is_site_root(new_canonical)
        and not _is_site_root(page_url)
        and not (isinstance(old_canonical, str) and _is_site_root(old_canonical))
    ):
        return f"replaced by a front page (its canonical address is the site root, {new_canonical})"
    links = _front_page_links(new)
    if links and _front_page_links(old) == 0:
        return f"replaced by a front page (a list of {links} links where the article was)"
    return None


def _prose_length(article: Article) -> int:
    """Characters of the article's own text (link lists are navigation)."""
    return sum(len(b.text) for b in article.blocks if b.kind is not BlockKind.LINK_LIST)


def _kept_share(old: Article, new: Article) -> float:
    """The share of the old article's text blocks still on the new page."""
    olds = [b.stable_text for b in old.blocks if b.kind is not BlockKind.LINK_LIST and b.text]
    if not olds:
        return 0.0
    news = {b.stable_text for b in new.blocks}
    return sum(1 for text in olds if text in news) / len(olds)


def _says_not_found(article: Article) -> str | None:
    """The not-found phrase in the title, a heading or the text, if any."""
    for block in (None, *article.blocks):
        heading = block is None or block.kind is BlockKind.HEADING
        pattern = _NOT_FOUND_TITLE if heading else _NOT_FOUND_WORDS
        found = pattern.search(article.title if block is None else block.text)
        if found is not None:
            return found.group()
    return None


def _front_page_links(article: Article) -> int:
    """How many distinct pages the article links to, when it reads as a list
    of links (FRONT_PAGE_LINKS or more, mostly link text); else 0."""
    hrefs = {link.href for block in article.blocks for link in block.links if link.href}
    if len(hrefs) < FRONT_PAGE_LINKS:
        return 0
    total = sum(len(b.text) for b in article.blocks) or 1
    linked = sum(len(link.text) for b in article.blocks for link in b.links)
    return len(hrefs) if linked >= total * FRONT_PAGE_LINK_SHARE else 0


def _is_site_root(url: str) -> bool:
    path = urlsplit(url).path.strip("/").lower()
    return path in ("", "index.html", "index.htm", "index.php", "index.shtml")


def _redirect_kind(final: str) -> str:
    """A redirect to a site's front or section page is the article going away."""
    path = urlsplit(final).path.strip("/")
    if not path or (path.count("/") == 0 and len(path) < 20):
        return "redirected to a front or section page"
    return "redirected to another address"


def _nothing_shown(items: list[ChangeItem]) -> bool:
    """No item explains why the HTML differs (times are masked in that test)."""
    explained = (ChangeKind.BOILERPLATE, ChangeKind.TYPOGRAPHY)
    return all(i.kind.noise_only and i.kind not in explained for i in items)


def _markup_item() -> ChangeItem:
    return ChangeItem(ChangeKind.MARKUP_ONLY, False, "body", detail="HTML differs")


def _header_parts(old: Snapshot, new: Snapshot) -> list[tuple[str, str, str]]:
    """(where, before, after) for each field of the file outside the body,
    the date left out (it is a header time)."""
    parts = [("title", old.title, new.title), ("url", old.url, new.url)]
    if bool(old.front_matter) != bool(new.front_matter):
        return [("front matter", "", "added" if new.front_matter else "removed"), *parts]
    fields = sorted((set(old.front_matter) | set(new.front_matter)) - {"date"})
    if (old.front_matter.get("title"), new.front_matter.get("title")) == (old.title, new.title):
        fields.remove("title")  # the same title twice over: one item
    fm = [
        (f"front matter {k}", old.front_matter.get(k, ""), new.front_matter.get(k, ""))
        for k in fields
    ]
    return fm + parts


def _respaced_item(loc: str, before: str, after: str) -> ChangeItem:
    """Text that differs only in spacing a reader does not read (spacing.py)."""
    return ChangeItem(ChangeKind.MARKUP_ONLY, False, loc, detail=spacing.describe(before, after))


def _markup_items(old: Snapshot, new: Snapshot, existing: list[ChangeItem]) -> list[ChangeItem]:
    """Which part of the file differs while nothing visible does, and how: the
    title's spaces are not "body: HTML differs". Parts an item already names
    are left out."""
    named = {i.location for i in existing}
    parts = _header_parts(old, new)
    items: list[ChangeItem] = []
    for loc, before, after in parts:
        if loc in named or before == after:
            continue
        if spacing.blank_key(before) == spacing.blank_key(after):
            items.append(_respaced_item(loc, before, after))
        elif loc == "front matter":
            items.append(ChangeItem(ChangeKind.MARKUP_ONLY, False, loc, detail=after))
        else:
            items.append(ChangeItem(ChangeKind.MARKUP_ONLY, False, loc, detail="text differs"))
    if _markup_key(old.body) != _markup_key(new.body):
        before, after = spacing.unescape_spaces(old.body), spacing.unescape_spaces(new.body)
        if spacing.blank_key(before) != spacing.blank_key(after):
            items.append(_markup_item())
        elif not any(i.kind is ChangeKind.MARKUP_ONLY and i.location[:1] == "#" for i in existing):
            items.append(_respaced_item("body", before, after))  # else a block item says it
    return items


def _raw_content(snap: Snapshot) -> str:
    """Everything a file holds except its times: whitespace counts as markup."""
    fields = {k: v for k, v in snap.front_matter.items() if k != "date"}
    return f"{fields}\n{snap.title}\n{snap.url}\n{snap.body}"


def _raw_differs(old: Snapshot, new: Snapshot) -> bool:
    return _markup_key(_raw_content(old)) != _markup_key(_raw_content(new))


def _front_matter_items(
    before: dict[str, str], after: dict[str, str], existing: tuple[ChangeItem, ...]
) -> list[ChangeItem]:
    items: list[ChangeItem] = []
    has_header_time = any(i.kind is ChangeKind.HEADER_TIME for i in existing)
    if not before or not after:
        return items  # the archive format changed, not the article: markup only
    for field in sorted(set(before) | set(after)):
        old, new = before.get(field), after.get(field)
        if old == new or field == "title":
            continue  # the title is compared as the article title
        if field == "date":
            if not has_header_time:
                items.append(
                    ChangeItem(ChangeKind.HEADER_TIME, False, "front matter date", old, new)
                )
        elif " ".join((old or "").split()) != " ".join((new or "").split()):
            items.append(ChangeItem(ChangeKind.METADATA, False, f"front matter {field}", old, new))
    return items


def reverted_item(revert: Revert) -> ChangeItem:
    """The new content equals an older version's: undoing an edit is news,
    undoing noise is noise."""
    detail = f"content is again that of version {revert.seq}"
    if not revert.undoes_news:
        detail += " (only noise came between)"
    return ChangeItem(ChangeKind.REVERTED, revert.undoes_news, "article", detail=detail)


def extend(change: Change, items: list[ChangeItem], *, replace: bool = False) -> Change:
    """A change with more items (or, with ``replace``, these items instead);
    verdict and summary follow. The pipeline adds gone/reverted/redirected."""
    if not replace:
        items = list(change.items) + items
    summary = summarise(items)
    return dataclasses.replace(
        change,
        items=tuple(items),
        verdict=_verdict(items),
        summary=f"{UNDISCLOSED}: {summary}" if change.undisclosed else summary,
    )


def diff_articles(
    old: Article,
    new: Article,
    *,
    old_body: str | None = None,
    new_body: str | None = None,
    old_metadata: dict[str, Any] | None = None,
    new_metadata: dict[str, Any] | None = None,
    basis: Basis = CAPTURED_BOTH,
    boilerplate: Boilerplate = SEED_ONLY,
) -> Change:
    """Compare two articles. Site boilerplate (see boilerplate.py) is set apart
    first: its changes are one noise kind, and block numbers in the other
    items count the article's own blocks."""
    (old_content, old_site), (new_content, new_site) = boilerplate.split(old, new)
    items: list[ChangeItem] = []
    items += _header_items(old, new, basis)
    items += _block_items(old_content, new_content)
    items += _boilerplate_items(old_site, new_site)
    items += metadata_items(old_metadata, new_metadata)
    if _nothing_shown(items) and old_body is not None and new_body is not None:  # noqa: SIM102
        if _markup_key(old_body) != _markup_key(new_body):
            items.append(_markup_item())
    return extend(empty_change(old, new, basis), items)


def _boilerplate_items(
    old: list[tuple[int, Block]], new: list[tuple[int, Block]]
) -> list[ChangeItem]:
    """Boilerplate that came, went or changed, one noise item per block; a
    footer that only moved is not worth a line."""
    a = [_site_key(block) for _, block in old]
    b = [_site_key(block) for _, block in new]
    items: list[ChangeItem] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        for k in range(max(i2 - i1, j2 - j1)):
            before = old[i1 + k] if i1 + k < i2 else None
            after = new[j1 + k] if j1 + k < j2 else None
            index, block = after or before  # type: ignore[misc]
            loc = f"{'' if after else 'was '}#{index + 1} {block.kind.value}"
            items.append(
                ChangeItem(
                    ChangeKind.BOILERPLATE,
                    False,
                    loc,
                    _site_text(before[1]) if before else None,
                    _site_text(after[1]) if after else None,
                    detail="site or feed boilerplate",
                )
            )
    return items


def _site_text(block: Block) -> str:
    return block.image.origin_src if block.image is not None else block.text


def _site_key(block: Block) -> tuple[str, str]:
    if block.image is not None:
        return (block.kind.value, image_key(block.image.origin_src))
    return (block.kind.value, block.text)


def empty_change(old: Article, new: Article, basis: Basis = CAPTURED_BOTH) -> Change:
    """The frame of a change between two articles, before any item."""
    return Change(
        url=new.url,
        title_before=old.title,
        title_after=new.title,
        captured_before=old.captured_at,
        captured_after=new.captured_at,
        items=(),
        verdict=Verdict.NONE,
        summary=summarise([]),
        basis_before=basis[0],
        basis_after=basis[1],
    )


# -- header -------------------------------------------------------------------
def _header_items(old: Article, new: Article, basis: Basis) -> list[ChangeItem]:
    items: list[ChangeItem] = []
    if old.captured_at != new.captured_at:
        where = "capture time" if basis == CAPTURED_BOTH else "stated time"
        items.append(
            ChangeItem(ChangeKind.HEADER_TIME, False, where, old.captured_at, new.captured_at)
        )
    if old.title != new.title and spacing.same_words(old.title, new.title):
        items.append(_respaced_item("title", old.title, new.title))
    elif typography.same_wording(old.title, new.title):
        items.append(_typography_item("title", old.title, new.title))
    elif old.title != new.title:
        items.append(
            ChangeItem(
                ChangeKind.TITLE,
                True,
                "title",
                old.title,
                new.title,
                inline_diff(old.title, new.title),
            )
        )
    if old.url != new.url:
        items.append(ChangeItem(ChangeKind.URL, True, "url", old.url, new.url))
    return items


# -- blocks -------------------------------------------------------------------
def _block_items(old: Article, new: Article) -> list[ChangeItem]:
    pairs = align(old.blocks, new.blocks)
    pairs = _unpair_moved_pictures(old.blocks, new.blocks, pairs)
    moves = _find_moves(old.blocks, new.blocks, pairs)
    moved_to = {j: i for i, j in moves.moved.items()}
    kept_new = set(moves.kept.values())
    pairs = [p for p in pairs if not _title_heading(p, old, new)]
    same_clock = old.captured_at == new.captured_at or None in (old.captured_at, new.captured_at)
    items: list[ChangeItem] = []
    for pair in pairs:
        if pair.new is not None and pair.new in moved_to:
            items += _moved_items(old.blocks, new.blocks, moved_to[pair.new], pair.new, moves)
        elif pair.grouped:
            items += _split_items(old.blocks, new.blocks, pair, same_clock)
        elif pair.old is not None and pair.new is not None:
            a, b = old.blocks[pair.old], new.blocks[pair.new]
            if _repeats_title(a, b, old, new):
                continue  # an <h1> that repeats the title: already the title item
            items += _same_place_items(a, b, _loc(pair.new, b), same_clock)
        elif pair.new is not None and pair.new not in kept_new:
            b = new.blocks[pair.new]
            items.append(_added_item(b, _loc(pair.new, b)))
        elif pair.old is not None and pair.old not in moves.moved and pair.old not in moves.kept:
            a = old.blocks[pair.old]
            items.append(_removed_item(a, _loc(pair.old, a, old_side=True)))
    return items


def _split_items(
    old: tuple[Block, ...], new: tuple[Block, ...], pair: Pair, same_clock: bool
) -> list[ChangeItem]:
    """One block became several, or several one (``<p>A<br><br>B</p>`` and
    ``<p>A</p><p>B</p>``): compared as joined text, so the same words are
    markup only and a few changed words one edit, told how the blocks changed."""
    if len(pair.old_run) == 1:
        a = old[pair.old_run[0]]
        b = _joined([new[j] for j in pair.new_run], like=a)
    else:
        b = new[pair.new_run[0]]
        a = _joined([old[i] for i in pair.old_run], like=b)
    first, last = pair.new_run[0] + 1, pair.new_run[-1] + 1
    loc = f"#{first}–#{last} {b.kind.value}" if last > first else f"#{first} {b.kind.value}"
    noun = b.kind.value.replace("_", " ")
    if len(pair.new_run) > 1:
        shape = f"one {noun} split into {len(pair.new_run)}"
    else:
        shape = f"{len(pair.old_run)} {noun}s joined into one"
    return [
        dataclasses.replace(item, detail=shape) if item.inline and not item.detail else item
        for item in _same_place_items(a, b, loc, same_clock)
    ]


def _joined(blocks: list[Block], like: Block) -> Block:
    """Several blocks read as the one block ``like`` on the other side
    (align.join_like: a space between them where it has one)."""
    return Block(
        blocks[0].kind,
        join_like([b.text for b in blocks], like.text),
        join_like([b.stable_text for b in blocks], like.stable_text),
        links=tuple(lk for b in blocks for lk in b.links),
        times=tuple(t for b in blocks for t in b.times),
        level=blocks[0].level,
    )


@dataclass(frozen=True, slots=True)
class _Moves:
    """``moved``: blocks (old index -> new index) whose order relative to the
    blocks around them changed. ``kept``: a block removed and re-added
    identically whose order did not change: not a change at all."""

    moved: dict[int, int]
    kept: dict[int, int]
    captions: frozenset[int] = frozenset()  # new indices of text repeating a picture's caption


# In choosing what moved, a picture, a media player or the line repeating a
# picture's caption weighs this much against 1 for a block of text: swapped
# with a paragraph, the picture is what moved.
_LIGHT = 0.25
_FIXED = 1e9  # edited pairs and splits never count as moved


def _find_moves(old: tuple[Block, ...], new: tuple[Block, ...], pairs: list[Pair]) -> _Moves:
    """A block moved when its order relative to its neighbours changed.

    Removed and added blocks with the same content (``_move_key``) are
    candidates. With the aligned pairs they give (old, new) positions; the
    heaviest subsequence of them whose new positions increase is what stayed
    in place (a block of text weighs 1 and a little more when long, a picture
    or its caption line _LIGHT). An unchanged block outside it moved; a
    candidate inside it did not.
    """
    candidates = _move_candidates(old, new, pairs)
    if not candidates:
        return _Moves({}, {})
    old_captions = caption_lines(old)
    points: list[tuple[int, int, float]] = []
    for pair in pairs:
        if pair.old is None or pair.new is None:
            continue
        movable = pair.same and not pair.grouped and old[pair.old].kind is new[pair.new].kind
        weight = _move_weight(old, pair.old, old_captions) if movable else _FIXED
        points.append((pair.old, pair.new, weight))
    points += [(i, j, _move_weight(old, i, old_captions)) for i, j in candidates.items()]
    points.sort()
    stayed = _heaviest_increasing(points)
    moved = {i: j for k, (i, j, _) in enumerate(points) if k not in stayed}
    kept = {i: j for i, j in candidates.items() if i not in moved}
    return _Moves(moved, kept, caption_lines(new))


def _move_candidates(
    old: tuple[Block, ...], new: tuple[Block, ...], pairs: list[Pair]
) -> dict[int, int]:
    """Removed and added blocks with the same content, paired in reading order."""
    by_key: dict[tuple[str, ...], list[int]] = {}
    for p in pairs:
        if p.new is None and p.old is not None and old[p.old].stable_text:
            by_key.setdefault(_move_key(old[p.old]), []).append(p.old)
    found: dict[int, int] = {}
    for p in pairs:
        if p.old is None and p.new is not None:
            same = by_key.get(_move_key(new[p.new]))
            if same:
                found[same.pop(0)] = p.new
    return found


def _move_weight(blocks: tuple[Block, ...], index: int, captions: frozenset[int]) -> float:
    block = blocks[index]
    if block.kind in (BlockKind.IMAGE, BlockKind.MEDIA) or index in captions:
        return _LIGHT
    return 1 + min(len(block.text), 1000) / 10_000


def _heaviest_increasing(points: list[tuple[int, int, float]]) -> set[int]:
    """Positions in ``points`` (sorted by old index) of the heaviest
    subsequence whose new indices strictly increase. A Fenwick tree over new
    indices keeps it O(n log n)."""
    size = max(j for _, j, _ in points) + 1
    tree: list[tuple[float, int]] = [(0.0, -1)] * (size + 1)
    back: list[int] = []
    totals: list[float] = []
    for k, (_, j, weight) in enumerate(points):
        best, x = (0.0, -1), j  # the best chain ending at a new index below j
        while x > 0:
            best, x = max(best, tree[x]), x - (x & -x)
        back.append(best[1])
        totals.append(best[0] + weight)
        x = j + 1
        while x <= size:
            tree[x], x = max(tree[x], (totals[k], k)), x + (x & -x)
    k = max(range(len(points)), key=totals.__getitem__)
    stayed: set[int] = set()
    while k >= 0:
        stayed.add(k)
        k = back[k]
    return stayed


def _move_key(block: Block) -> tuple[str, ...]:
    """What a removed and an added block must share to be one move: the same
    content; for an image, the same picture (imageid.image_key: another host or
    width of the file is the same picture) with the same alt, caption and credit."""
    if block.image is not None:
        image = block.image
        picture = image_key(image.origin_src)
        return (block.kind.value, picture, image.alt, image.caption, image.credit)
    return (block.kind.value, block.stable_text)


def _unpair_moved_pictures(
    old: tuple[Block, ...], new: tuple[Block, ...], pairs: list[Pair]
) -> list[Pair]:
    """Alignment pairs two different pictures in one gap as a swap. When either
    picture is found unmatched elsewhere on the other side, it moved: the pair
    becomes a removal and an addition, so the move is one move and the picture
    that took its place one addition, not two changes."""
    swaps = {
        k: (p.old, p.new)
        for k, p in enumerate(pairs)
        if p.old is not None and p.new is not None and _other_picture(old[p.old], new[p.new])
    }
    if not swaps:
        return pairs
    loose_old = {
        _move_key(old[p.old])
        for k, p in enumerate(pairs)
        if p.old is not None and (p.new is None or k in swaps)
    }
    loose_new = {
        _move_key(new[p.new])
        for k, p in enumerate(pairs)
        if p.new is not None and (p.old is None or k in swaps)
    }
    moved = {
        k
        for k, (i, j) in swaps.items()
        if _move_key(old[i]) in loose_new or _move_key(new[j]) in loose_old
    }
    out: list[Pair] = []
    for k, pair in enumerate(pairs):
        if k in moved:
            out += [Pair(pair.old, None, False), Pair(None, pair.new, False)]
        else:
            out.append(pair)
    return out


def _other_picture(a: Block, b: Block) -> bool:
    """Two image blocks showing different pictures."""
    if a.image is None or b.image is None:
        return False
    return image_key(a.image.origin_src) != image_key(b.image.origin_src)


def _loc(index: int, block: Block, old_side: bool = False) -> str:
    side = "was " if old_side else ""
    return f"{side}#{index + 1} {block.kind.value}"


def _title_heading(pair: Pair, old: Article, new: Article) -> bool:
    """A removed/added <h1> that only repeats the old/new title."""
    if pair.old is not None and pair.new is None:
        block = old.blocks[pair.old]
        return block.kind is BlockKind.HEADING and block.text == old.title != new.title
    if pair.new is not None and pair.old is None:
        block = new.blocks[pair.new]
        return block.kind is BlockKind.HEADING and block.text == new.title != old.title
    return False


def _repeats_title(a: Block, b: Block, old: Article, new: Article) -> bool:
    return (
        a.kind is BlockKind.HEADING
        and b.kind is BlockKind.HEADING
        and a.text == old.title
        and b.text == new.title
    )


def _same_place_items(a: Block, b: Block, loc: str, same_clock: bool) -> list[ChangeItem]:
    if a.kind is BlockKind.IMAGE or b.kind is BlockKind.IMAGE:
        return _image_items(a, b, loc)
    if a.kind is BlockKind.TIME or b.kind is BlockKind.TIME:
        return _time_items(a, b, loc, same_clock)
    if a.kind is BlockKind.MEDIA:
        if a.media_src != b.media_src or a.text != b.text:
            return [ChangeItem(ChangeKind.MEDIA_CHANGED, True, loc, a.media_src, b.media_src)]
        return []
    if a.kind is BlockKind.LINK_LIST:
        return _link_items(a, b, loc, force=a.text != b.text)
    items: list[ChangeItem] = []
    if typography.same_wording(a.stable_text, b.stable_text):
        items.append(_typography_item(loc, a.text, b.text))
    elif not spacing.same_words(a.stable_text, b.stable_text):
        kind = ChangeKind.of_block(b.kind, "edited")
        items.append(ChangeItem(kind, True, loc, a.text, b.text, inline_diff(a.text, b.text)))
    elif a.stable_text != b.stable_text:  # the same words, spaced out otherwise
        items.append(_respaced_item(loc, a.stable_text, b.stable_text))
        if [m.text for m in a.times] != [m.text for m in b.times]:
            items += _time_items(a, b, loc, same_clock)
    elif a.text != b.text or a.times != b.times:
        items += _time_items(a, b, loc, same_clock)
    if a.kind is not b.kind and spacing.same_words(a.stable_text, b.stable_text):
        items.append(ChangeItem(ChangeKind.of_block(b.kind, "edited"), True, loc, a.kind.value, b.kind.value,
                                detail=f"{a.kind.value} became {b.kind.value}"))  # fmt: skip
    items += _link_items(a, b, loc)
    return items


def _typography_item(loc: str, before: str, after: str) -> ChangeItem:
    """The same words with other quotes, punctuation or character widths."""
    detail = typography.describe(before, after)
    inline = inline_diff(before, after)
    return ChangeItem(ChangeKind.TYPOGRAPHY, False, loc, before, after, inline, detail=detail)


def _time_items(a: Block, b: Block, loc: str, same_clock: bool) -> list[ChangeItem]:
    """Text differs only where a time is: a tick is noise, a move is news."""
    items: list[ChangeItem] = []
    for before, after in _pair_mentions(a.times, b.times):
        if before is not None and after is not None and before.text == after.text:
            continue
        if before is not None and after is not None and _is_tick(before, after, same_clock):
            items.append(ChangeItem(ChangeKind.RELATIVE_TIME, False, loc, before.text, after.text))
            continue
        if before is not None and after is not None and before.overlaps(after):
            items.append(
                ChangeItem(
                    ChangeKind.TIME,
                    False,
                    loc,
                    before.text,
                    after.text,
                    detail="same time, restated",
                )
            )
            continue
        items.append(_time_moved(before, after, loc, a, b))
    if not items and a.text != b.text:
        items.append(ChangeItem(ChangeKind.RELATIVE_TIME, False, loc, a.text, b.text))
    return items


def _is_tick(before: TimeMention, after: TimeMention, same_clock: bool) -> bool:
    """Could both relative phrases name the same instant?

    With two real capture times the resolved ranges must overlap. When both
    files carry the same epoch (archives that stored the feed's publication
    time, not the capture time) or no time, the elapsed time is unknown but
    never negative: the phrase may only point further back, never forward.
    """
    if not (before.relative or after.relative):
        return False
    if not same_clock or not (before.relative and after.relative):
        return before.overlaps(after)
    if before.end_ms is None or after.start_ms is None:
        return False
    return after.start_ms <= before.end_ms


def _pair_mentions(
    a: tuple[TimeMention, ...], b: tuple[TimeMention, ...]
) -> list[tuple[TimeMention | None, TimeMention | None]]:
    out: list[tuple[TimeMention | None, TimeMention | None]] = []
    for k in range(max(len(a), len(b))):
        out.append((a[k] if k < len(a) else None, b[k] if k < len(b) else None))
    return out


def _time_moved(
    before: TimeMention | None, after: TimeMention | None, loc: str, a: Block, b: Block
) -> ChangeItem:
    """A stated time moved or appeared. An "updated" stamp alone is noise;
    a publication time that moved (a re-dated article) is news."""
    updated = bool(
        _UPDATED_RE.search(_time_label(a, before)) or _UPDATED_RE.search(_time_label(b, after))
    )
    detail = "updated stamp" if updated else "publication time"
    return ChangeItem(
        ChangeKind.TIME,
        not updated,
        loc,
        before.text if before else None,
        after.text if after else None,
        detail=detail,
    )


def _time_label(block: Block, mention: TimeMention | None) -> str:
    """The words that say what a time is: all of a time block; in running text
    only those just around the time ("Updated Jul 21, 2020", "… 更新"), so an
    "update" further on in a sentence does not make a byline's date noise."""
    if block.kind is BlockKind.TIME or mention is None:
        return block.text
    at = block.text.find(mention.text)
    if at < 0:
        return block.text
    return block.text[max(0, at - _LABEL_REACH) : at + len(mention.text) + _LABEL_REACH]


_LABEL_REACH = 16


def _image_dict(image: Image | None) -> dict[str, str] | None:
    if image is None:
        return None
    return {
        "src": image.src,
        "origin_src": image.origin_src,
        "alt": image.alt,
        "caption": image.caption,
        "credit": image.credit,
    }


def _seen(image: dict[str, str]) -> dict[str, str]:
    """What a reader sees of an image: its words, and the picture by its
    identity (imageid.image_key), not by the address it is served from."""
    seen = {k: v for k, v in image.items() if k != "src"}
    seen["origin_src"] = image_key(image["origin_src"])
    return seen


def _image_items(a: Block, b: Block, loc: str) -> list[ChangeItem]:
    before, after = _image_dict(a.image), _image_dict(b.image)
    if before is None or after is None:
        return [_removed_item(a, loc), _added_item(b, loc)]
    visible_before, visible_after = _seen(before), _seen(after)
    if visible_before == visible_after:
        return []  # the same picture, maybe at another host or width: markup only
    changed = DeepDiff(visible_before, visible_after).get("values_changed", {})
    fields = sorted(path.split("'")[1] for path in changed)
    return [
        ChangeItem(ChangeKind.IMAGE_CHANGED, True, loc, before, after, detail=", ".join(fields))
    ]


def _link_items(a: Block, b: Block, loc: str, force: bool = False) -> list[ChangeItem]:
    if a.links == b.links and not force:
        return []
    before = [{"href": lk.href, "text": lk.text} for lk in a.links]
    after = [{"href": lk.href, "text": lk.text} for lk in b.links]
    if not force and _targets(before) == _targets(after):
        return []  # the same pages; only #fragments moved: markup
    return [ChangeItem(ChangeKind.LINK_CHANGED, True, loc, before, after)]


def _targets(links: list[dict[str, str]]) -> list[tuple[str, str]]:
    """Links as the pages they lead to: the #fragment names a place on the page."""
    return [(lk["href"].split("#", 1)[0], lk["text"]) for lk in links]


def _added_item(block: Block, loc: str) -> ChangeItem:
    if block.kind is BlockKind.IMAGE:
        return ChangeItem(ChangeKind.IMAGE_ADDED, True, loc, None, _image_dict(block.image))
    if block.kind is BlockKind.TIME:
        return _time_moved(None, block.times[0] if block.times else None, loc, block, block)
    if block.kind is BlockKind.MEDIA:
        return ChangeItem(
            ChangeKind.MEDIA_CHANGED, True, loc, None, block.media_src, detail="added"
        )
    if block.kind is BlockKind.LINK_LIST:
        return ChangeItem(ChangeKind.LINK_CHANGED, True, loc, None, _links(block), detail="added")
    return ChangeItem(ChangeKind.of_block(block.kind, "added"), True, loc, None, block.text)


def _removed_item(block: Block, loc: str) -> ChangeItem:
    if block.kind is BlockKind.IMAGE:
        return ChangeItem(ChangeKind.IMAGE_REMOVED, True, loc, _image_dict(block.image), None)
    if block.kind is BlockKind.TIME:
        return _time_moved(block.times[0] if block.times else None, None, loc, block, block)
    if block.kind is BlockKind.MEDIA:
        return ChangeItem(
            ChangeKind.MEDIA_CHANGED, True, loc, block.media_src, None, detail="removed"
        )
    if block.kind is BlockKind.LINK_LIST:
        return ChangeItem(ChangeKind.LINK_CHANGED, True, loc, _links(block), None, detail="removed")
    return ChangeItem(ChangeKind.of_block(block.kind, "removed"), True, loc, block.text, None)


def _moved_items(
    old: tuple[Block, ...], new: tuple[Block, ...], old_index: int, new_index: int, moves: _Moves
) -> list[ChangeItem]:
    """A block that moved, said with what it now follows. Text that moved is
    news (the story reads in another order); a picture or a player that moved
    is layout, noise. The line repeating a picture's caption moved with its
    picture: the picture's item tells it."""
    if new_index in moves.captions and any(
        k in moves.moved.values() and new[k].image is not None
        for k in (new_index - 1, new_index + 1)
    ):
        return []
    a, b = old[old_index], new[new_index]
    loc = f"#{new_index + 1} {b.kind.value}"
    detail = f"moved from #{old_index + 1} to #{new_index + 1}, " + _now_after(new, new_index)
    kind = ChangeKind.of_block(b.kind, "moved")
    layout = b.kind in (BlockKind.IMAGE, BlockKind.MEDIA)
    return [ChangeItem(kind, not layout, loc, a.text, b.text, detail=detail)]


def _now_after(blocks: tuple[Block, ...], index: int) -> str:
    """Where a moved block now stands, by the block before it."""
    if index == 0:
        return "now first"
    before = blocks[index - 1]
    text = before.text or (before.image.origin_src.rsplit("/", 1)[-1] if before.image else "")
    if not text:
        return f"now after a {before.kind.value.replace('_', ' ')}"
    return f"now after “{text[:30]}…”" if len(text) > 30 else f"now after “{text}”"


def _links(block: Block) -> list[dict[str, str]]:
    return [{"href": lk.href, "text": lk.text} for lk in block.links]


# -- metadata -------------------------------------------------------------------
def metadata_items(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[ChangeItem]:
    """Page metadata outside the body (og:title, JSON-LD dateModified, ...);
    watcher's own extraction notes are not the page's and are left out."""
    before, after = _page_fields(before), _page_fields(after)
    if not before or not after or before == after:
        return []  # empty = unknown (e.g. imported from an archive), not "all removed"
    items: list[ChangeItem] = []
    for path in sorted(_changed_paths(DeepDiff(before, after))):
        field = path.split("'")[1] if "'" in path else path
        old, new = before.get(field), after.get(field)
        significant = not field.startswith("modified")
        items.append(ChangeItem(ChangeKind.METADATA, significant, field, old, new))
    return items


def _page_fields(metadata: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (metadata or {}).items() if k not in EXTRACTION_NOTES}


def _changed_paths(dd: DeepDiff) -> set[str]:
    paths: set[str] = set()
    for section in (
        "values_changed",
        "dictionary_item_added",
        "dictionary_item_removed",
        "type_changes",
    ):
        for path in dd.get(section, {}):
            paths.add(str(path).split("]")[0] + "]")
    return paths


# -- verdict --------------------------------------------------------------------
def _markup_key(body: str) -> str:
    """The body with relative times masked (they are reported on their own)."""
    return times.mask_all(body)


def _verdict(items: list[ChangeItem]) -> Verdict:
    if not items:
        return Verdict.NONE
    return Verdict.SIGNIFICANT if any(i.significant for i in items) else Verdict.NOISE


_LABELS = {
    "header_time": ("capture time changed", "capture time changed"),
    "relative_time": ("1 relative timestamp updated", "relative timestamps updated"),
    "markup_only": ("markup only", "markup only"),
    "boilerplate": ("site boilerplate changed", "site boilerplate changes"),
    "typography": ("typography only", "typography changes"),
    "time": ("time stamp changed", "time stamps changed"),
    "metadata": ("metadata changed", "metadata fields changed"),
    "gone": ("article removed", "article removed"),
    "reappeared": ("article reappeared", "article reappeared"),
    "reverted": ("reverted to an earlier version", "reverted to an earlier version"),
    "redirected": ("redirected", "redirected"),
    "rules": ("extraction rules changed; new baseline", "extraction rules changed; new baseline"),
}


def summarise(items: list[ChangeItem] | tuple[ChangeItem, ...]) -> str:
    """One line a person can read: news first, then the noise."""
    if not items:
        return "no change"
    news = Counter(i.kind for i in items if i.significant)
    # Two captures always differ in capture time: saying so tells a reader
    # nothing (and filled every notification's subject). A stated time (an
    # imported file's) is what the source wrote, and its change is worth a word.
    told = [i for i in items if not _is_capture_time(i)] or list(items)
    noise = Counter(i.kind for i in told if not i.significant)
    parts = [_phrase(kind, n) for kind, n in news.items()]
    noise_parts = [_phrase(kind, n) for kind, n in noise.items()]
    if any(i.kind is ChangeKind.HEADER_TIME and i.location != "capture time" for i in items):
        # an imported file's time is what it states, not when it was captured
        noise_parts = [p.replace("capture time", "stated time") for p in noise_parts]
    if not parts:
        return "noise only: " + ", ".join(noise_parts)
    line = "; ".join(parts)
    return f"{line} (noise: {', '.join(noise_parts)})" if noise_parts else line


def _is_capture_time(item: ChangeItem) -> bool:
    return item.kind is ChangeKind.HEADER_TIME and item.location == "capture time"


def _phrase(kind: str, n: int) -> str:
    if kind == "markup_only":
        return "markup only"  # the items name each part that differs
    if kind in _LABELS:
        one, many = _LABELS[kind]
        return one if n == 1 else f"{n} {many}"
    if kind == "title":
        return "title changed"
    if kind == "url":
        return "URL changed"
    subject, _, action = kind.rpartition("_")
    if not subject:
        return kind if n == 1 else f"{n}× {kind}"
    noun = subject.replace("_", " ")
    return f"{n} {noun}{'s' if n > 1 else ''} {action}"
