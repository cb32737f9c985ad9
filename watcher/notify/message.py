"""What a notification says: one change (or a digest of several) as a title,
a plain-text body and the JSON payload webhooks and exec hooks receive.

Pure: no I/O. Every message carries an idempotency key (the change id, or
the digest's channel and id range), because delivery is at least once: a
receiver that already saw the key can drop the repeat.

Text from archived pages is hostile (see :mod:`watcher.safetext`): controls,
escape sequences and bidi overrides are removed before anything reaches a
chat client or a mail reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from watcher.errors import ChangeRecordError
from watcher.models import (
    Change,
    ChangeItem,
    ChangeKind,
    TimeBasis,
    Verdict,
    change_from_dict,
    change_to_dict,
)
from watcher.notify.textcut import is_boundary, truncate, truncate_bytes
from watcher.outputs.site import RECENT, article_path
from watcher.safetext import one_line
from watcher.settings import Settings
from watcher.store import ChangeRecord

__all__ = [
    "INLINE_DIFF_MAX",
    "PAYLOAD_SCHEMA",
    "Item",
    "Message",
    "item_for",
    "message_for",
    "sample_message",
    "truncate",
    "truncate_bytes",
]

#: Version of the webhook / exec JSON payload (see the README).
PAYLOAD_SCHEMA = 1
#: An inline diff longer than this is left to the report.
INLINE_DIFF_MAX = 600
#: Unchanged text shown on each side of an edit in the inline diff.
_CONTEXT = 24
_DIGEST_NAMES = {"hour": "hourly", "day": "daily"}
_TEXT_ACTIONS = ("_edited", "_added", "_removed")


@dataclass(frozen=True)
class Item:
    """One change as a notification shows it. ``record`` is the versioned JSON
    change record (``watcher.models.change_to_dict``); ``created_at`` is epoch
    milliseconds; ``seq`` the version the change led to (for a removal, the
    last version before it)."""

    change_id: int
    url: str
    title: str
    summary: str
    verdict: str
    kinds: tuple[str, ...]
    created_at: int
    record: dict[str, Any]
    report_url: str | None = None
    inline_diff: str | None = None
    seq: int | None = None

    def to_json(self) -> dict[str, Any]:
        """This change in the payload (see :meth:`Message.payload`)."""
        return {
            "change_id": self.change_id,
            "url": self.url,
            "title": self.title,
            "summary": self.summary,
            "verdict": self.verdict,
            "kinds": list(self.kinds),
            "created_at": iso_utc(self.created_at),
            "report_url": self.report_url,
            "record": self.record,
        }


@dataclass(frozen=True)
class Message:
    """A notification: ``body`` is plain text and untruncated; each channel
    cuts it to its own limit. ``digest`` is ``hour``/``day`` for a digest."""

    key: str
    title: str
    body: str
    items: tuple[Item, ...]
    digest: str | None = None

    def payload(self) -> dict[str, Any]:
        """The JSON webhooks and exec hooks receive (documented in the README)."""
        return {
            "schema": PAYLOAD_SCHEMA,
            "idempotency_key": self.key,
            "changes": [item.to_json() for item in self.items],
            "digest": self.digest,
        }


def iso_utc(ms: int) -> str:
    """Epoch ms as ``2024-05-01T08:30:00Z``."""
    return (
        datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


# -- one change ----------------------------------------------------------------


def item_for(change: ChangeRecord, seq: int, settings: Settings) -> Item:
    """A stored change as a notification item. The report link is the
    article's page on the public report site (``WATCHER_PUBLIC_URL``), at
    this change; without a public URL there is no link."""
    data = change.record
    title = str(data.get("title_after") or data.get("title_before") or change.url)
    return Item(
        change_id=change.id,
        url=change.url,
        title=one_line(title),
        summary=one_line(change.summary),
        verdict=str(change.verdict.value),
        kinds=tuple(change.kinds),
        created_at=change.created_at,
        record=data,
        report_url=report_url(settings, change.watch_id, change.id),
        inline_diff=inline_diff(data),
        seq=seq,
    )


def report_url(settings: Settings, watch_id: int, change_id: int) -> str | None:
    """Where a reader sees the change in full, or None without a public URL."""
    if not settings.public_url:
        return None
    base = settings.public_url.rstrip("/") + "/"
    return f"{base}{article_path(watch_id).as_posix()}#change-{change_id}"


def inline_diff(record: dict[str, Any], limit: int = INLINE_DIFF_MAX) -> str | None:
    """The significant text edits as ``- before`` / ``+ after`` lines under
    their location, or None when there are none or they exceed ``limit``
    characters (the report has them)."""
    try:
        change = change_from_dict(record)
    except ChangeRecordError:
        return None
    blocks: list[str] = []
    left_out = 0
    for item in change.items:
        if not item.significant:
            continue
        lines = _item_lines(item)
        if lines:
            label = one_line(item.location or item.kind.value)
            blocks.append("\n".join([f"{label[:1].upper()}{label[1:]}:", *lines]))
        else:
            left_out += 1
    if not blocks:
        return None
    if left_out:
        blocks.append(f"(and {left_out} more in the report)")
    text = "\n".join(blocks)
    return text if len(text) <= limit else None


def _item_lines(item: ChangeItem) -> list[str]:
    """An item's before/after lines; [] for what is not text (images, links, moves)."""
    before: str | None
    after: str | None
    if item.inline:
        before, after = _condensed(item.inline)
    elif item.kind is ChangeKind.TITLE or item.kind.value.endswith(_TEXT_ACTIONS):
        before = item.before if isinstance(item.before, str) else None
        after = item.after if isinstance(item.after, str) else None
    else:
        return []
    lines = [f"{sign} {one_line(text)}" for sign, text in (("-", before), ("+", after)) if text]
    return lines if before or after else []


def _condensed(ops: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """An inline edit as (before, after): the changed span with a little
    unchanged text on each side, so a one-word edit in a long paragraph
    fits in a message."""
    changed = [i for i, (op, _) in enumerate(ops) if op in ("-", "+")]
    if not changed:
        text = "".join(t for _, t in ops)
        return text, text
    first, last = changed[0], changed[-1]
    left = "".join(t for _, t in ops[:first])
    right = "".join(t for _, t in ops[last + 1 :])
    middle = ops[first : last + 1]
    head, tail = _tail(left, _CONTEXT), _head(right, _CONTEXT)
    before = head + "".join(t for op, t in middle if op != "+") + tail
    after = head + "".join(t for op, t in middle if op != "-") + tail
    return before, after


def _tail(text: str, n: int) -> str:
    """The last ``n`` or so characters of ``text``, from a grapheme boundary."""
    if len(text) <= n:
        return text
    start = len(text) - n
    while not is_boundary(text, start):
        start += 1
    return "…" + text[start:]


def _head(text: str, n: int) -> str:
    if len(text) <= n:
        return text
    end = n
    while not is_boundary(text, end):
        end -= 1
    return text[:end] + "…"


# -- messages --------------------------------------------------------------------


def message_for(items: Sequence[Item], *, digest: str | None = None, channel: str = "") -> Message:
    """One change, or (``digest`` = ``hour``/``day``) a digest of several for
    ``channel``, whose name is part of the digest's idempotency key."""
    if not items:
        raise ValueError("a message needs at least one change")
    if digest is None:
        if len(items) != 1:
            raise ValueError("several changes make a digest: pass digest='hour' or 'day'")
        return _single(items[0])
    ordered = tuple(sorted(items, key=lambda item: item.change_id))
    count = len(ordered)
    noun = "change" if count == 1 else "changes"
    return Message(
        key=f"watcher-digest-{channel}-{ordered[0].change_id}-{ordered[-1].change_id}",
        title=f"[watcher] {count} {noun} ({_DIGEST_NAMES.get(digest, digest)} digest)",
        body="\n\n".join(_digest_entry(item) for item in ordered) + "\n",
        items=ordered,
        digest=digest,
    )


def _single(item: Item) -> Message:
    lines = [item.summary, item.title, item.url]
    if item.report_url:
        lines.append(f"Report: {item.report_url}")
    if item.inline_diff:
        lines += ["", item.inline_diff]
    return Message(
        key=f"watcher-change-{item.change_id}",
        title=f"[watcher] {item.summary}: {item.title}",
        body="\n".join(lines) + "\n",
        items=(item,),
    )


def _digest_entry(item: Item) -> str:
    lines = [f"• {item.title}: {item.summary}", f"  {item.url}"]
    if item.report_url:
        lines.append(f"  Report: {item.report_url}")
    return "\n".join(lines)


# -- the sample of ``watcher notify test`` ------------------------------------------


def sample_message(settings: Settings, *, now_ms: int) -> Message:
    """A realistic message for trying a channel: a headline edit on a Chinese
    news article. Its key is unique per run, so a receiver that drops repeats
    still shows every test."""
    url = "https://www.example.com/zhongwen/simp/world-59301487"
    before, after = "香港立法会选举投票率创新低", "香港立法会选举投票率创历史新低"
    change = Change(
        url=url,
        title_before=before,
        title_after=after,
        captured_before=now_ms - 3_600_000,
        captured_after=now_ms,
        items=(
            ChangeItem(ChangeKind.TITLE, True, "title", before, after),
            ChangeItem(
                ChangeKind.PARAGRAPH_EDITED,
                True,
                "#2 paragraph",
                inline=(
                    ("=", "本届投票率为30.2%，"),
                    ("-", "低于"),
                    ("+", "远低于"),
                    ("=", "上届。"),
                ),
            ),
        ),
        verdict=Verdict.SIGNIFICANT,
        summary="title changed; 1 paragraph edited",
        basis_before=TimeBasis.CAPTURED,
        basis_after=TimeBasis.CAPTURED,
    )
    record = change_to_dict(change)
    base = settings.public_url.rstrip("/") + "/" if settings.public_url else ""
    item = Item(
        change_id=0,
        url=url,
        title=after,
        summary=change.summary,
        verdict=change.verdict.value,
        kinds=tuple(change.kinds),
        created_at=now_ms,
        record=record,
        report_url=f"{base}{RECENT.as_posix()}" if base else None,
        inline_diff=inline_diff(record),
        seq=2,
    )
    message = _single(item)
    return Message(
        key=f"watcher-sample-{now_ms}",
        title=message.title.replace("[watcher]", "[watcher test]", 1),
        body=message.body,
        items=message.items,
    )
