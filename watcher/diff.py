"""(Article, Article) -> Change: what changed, classified as news or noise.

Noise is what a reader would not call an edit: the capture time
(``header_time``), a ticking "14 分钟前" (``relative_time``), HTML that differs
while nothing visible does (``markup_only``, including the same image behind
another proxy host), and an "updated" stamp that moved while nothing else did.

Block alignment lives in align.py, inline tokenisation in inline.py. DeepDiff
compares the structured fields (image attributes, link lists, page metadata),
where it names exactly which field moved.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from deepdiff import DeepDiff

from watcher import times
from watcher.align import Pair, align
from watcher.article import parse_article
from watcher.inline import inline_diff
from watcher.models import (
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
    )
    extra = _front_matter_items(old.front_matter, new.front_matter, change.items)
    if not extra:
        return change
    items = [i for i in change.items if i.kind is not ChangeKind.MARKUP_ONLY] + extra
    if all(i.kind.noise_only for i in items) and _raw_differs(old, new):
        items.append(_markup_item())
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
    )
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


def removal(
    url: str,
    *,
    last: Article,
    last_seq: int,
    last_url: str | None,
    captured_after: int,
    status: int,
) -> Change:
    """The article is gone (404/410) after version ``last_seq``. The item
    carries that version's text, so the report answers "what did it say?"."""
    text = tuple(block.text for block in last.blocks if block.text)
    where = f" at {last_url}" if last_url else ""
    item = ChangeItem(
        ChangeKind.GONE,
        True,
        "article",
        before=text,
        detail=f"HTTP {status}{where}; the last archived version (v{last_seq}) said:",
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


def _redirect_kind(final: str) -> str:
    """A redirect to a site's front or section page is the article going away."""
    path = urlsplit(final).path.strip("/")
    if not path or (path.count("/") == 0 and len(path) < 20):
        return "redirected to a front or section page"
    return "redirected to another address"


def _markup_item() -> ChangeItem:
    return ChangeItem(ChangeKind.MARKUP_ONLY, False, "body", detail="HTML differs")


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
    return dataclasses.replace(
        change,
        items=tuple(items),
        verdict=_verdict(items),
        summary=summarise(items),
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
) -> Change:
    items: list[ChangeItem] = []
    items += _header_items(old, new, basis)
    items += _block_items(old, new)
    items += metadata_items(old_metadata, new_metadata)
    visible = [i for i in items if not i.kind.noise_only]
    if not visible and old_body is not None and new_body is not None:  # noqa: SIM102
        if _markup_key(old_body) != _markup_key(new_body):
            items.append(_markup_item())
    return extend(empty_change(old, new, basis), items)


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
    if old.title != new.title:
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
    moves = _find_moves(old.blocks, new.blocks, pairs)
    pairs = [p for p in pairs if not _title_heading(p, old, new)]
    same_clock = old.captured_at == new.captured_at or None in (old.captured_at, new.captured_at)
    items: list[ChangeItem] = []
    for pair in pairs:
        if pair.old is not None and pair.new is not None:
            a, b = old.blocks[pair.old], new.blocks[pair.new]
            if _repeats_title(a, b, old, new):
                continue  # an <h1> that repeats the title: already the title item
            items += _same_place_items(a, b, _loc(pair.new, b), same_clock)
        elif pair.new is not None:
            b = new.blocks[pair.new]
            if pair.new in moves.values():
                origin = next(o for o, n in moves.items() if n == pair.new)
                items.append(_moved_item(old.blocks[origin], b, origin, pair.new))
            else:
                items.append(_added_item(b, _loc(pair.new, b)))
        elif pair.old is not None and pair.old not in moves:
            a = old.blocks[pair.old]
            items.append(_removed_item(a, _loc(pair.old, a, old_side=True)))
    return items


def _find_moves(
    old: tuple[Block, ...], new: tuple[Block, ...], pairs: list[Pair]
) -> dict[int, int]:
    """Removed and added blocks with identical content are one move."""
    removed = [p.old for p in pairs if p.new is None and p.old is not None]
    added = [p.new for p in pairs if p.old is None and p.new is not None]
    by_key: dict[tuple[str, str], list[int]] = {}
    for i in removed:
        if old[i].stable_text:
            by_key.setdefault((old[i].kind.value, old[i].stable_text), []).append(i)
    moves: dict[int, int] = {}
    for j in added:
        candidates = by_key.get((new[j].kind.value, new[j].stable_text))
        if candidates:
            moves[candidates.pop(0)] = j
    return moves


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
    if a.stable_text != b.stable_text:
        kind = ChangeKind.of_block(b.kind, "edited")
        items.append(ChangeItem(kind, True, loc, a.text, b.text, inline_diff(a.text, b.text)))
    elif a.text != b.text or a.times != b.times:
        items += _time_items(a, b, loc, same_clock)
    if a.kind is not b.kind and a.stable_text == b.stable_text:
        items.append(ChangeItem(ChangeKind.of_block(b.kind, "edited"), True, loc, a.kind.value, b.kind.value,
                                detail=f"{a.kind.value} became {b.kind.value}"))  # fmt: skip
    items += _link_items(a, b, loc)
    return items


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
    text = (after or before).text if (after or before) else b.text  # type: ignore[union-attr]
    updated = bool(
        _UPDATED_RE.search(b.text) or _UPDATED_RE.search(a.text) or _UPDATED_RE.search(text)
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


def _image_items(a: Block, b: Block, loc: str) -> list[ChangeItem]:
    before, after = _image_dict(a.image), _image_dict(b.image)
    if before is None or after is None:
        return [_removed_item(a, loc), _added_item(b, loc)]
    visible_before = {k: v for k, v in before.items() if k != "src"}
    visible_after = {k: v for k, v in after.items() if k != "src"}
    if visible_before == visible_after:
        return []  # same picture, maybe another proxy host: markup only
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
    if before == after and not force:
        return []
    return [ChangeItem(ChangeKind.LINK_CHANGED, True, loc, before, after)]


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


def _moved_item(a: Block, b: Block, old_index: int, new_index: int) -> ChangeItem:
    loc = f"#{new_index + 1} {b.kind.value}"
    detail = f"moved from #{old_index + 1} to #{new_index + 1}"
    kind = ChangeKind.of_block(b.kind, "moved")
    return ChangeItem(kind, True, loc, a.text, b.text, detail=detail)


def _links(block: Block) -> list[dict[str, str]]:
    return [{"href": lk.href, "text": lk.text} for lk in block.links]


# -- metadata -------------------------------------------------------------------
def metadata_items(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[ChangeItem]:
    """Page metadata outside the body (og:title, JSON-LD dateModified, ...)."""
    if not before or not after or before == after:
        return []  # empty = unknown (e.g. imported from an archive), not "all removed"
    items: list[ChangeItem] = []
    for path in sorted(_changed_paths(DeepDiff(before, after))):
        field = path.split("'")[1] if "'" in path else path
        old, new = before.get(field), after.get(field)
        significant = not field.startswith("modified")
        items.append(ChangeItem(ChangeKind.METADATA, significant, field, old, new))
    return items


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
    "time": ("time stamp changed", "time stamps changed"),
    "metadata": ("metadata changed", "metadata fields changed"),
    "gone": ("article removed", "article removed"),
    "reappeared": ("article reappeared", "article reappeared"),
    "reverted": ("reverted to an earlier version", "reverted to an earlier version"),
    "redirected": ("redirected", "redirected"),
}


def summarise(items: list[ChangeItem] | tuple[ChangeItem, ...]) -> str:
    """One line a person can read: news first, then the noise."""
    if not items:
        return "no change"
    news = Counter(i.kind for i in items if i.significant)
    noise = Counter(i.kind for i in items if not i.significant)
    parts = [_phrase(kind, n) for kind, n in news.items()]
    noise_parts = [_phrase(kind, n) for kind, n in noise.items()]
    if any(i.kind is ChangeKind.HEADER_TIME and i.location != "capture time" for i in items):
        # an imported file's time is what it states, not when it was captured
        noise_parts = [p.replace("capture time", "stated time") for p in noise_parts]
    if not parts:
        return "noise only: " + ", ".join(noise_parts)
    line = "; ".join(parts)
    return f"{line} (noise: {', '.join(noise_parts)})" if noise_parts else line


def _phrase(kind: str, n: int) -> str:
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
