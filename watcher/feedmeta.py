"""What a source said of an article: the ``source_meta`` JSON of a watch (pure).

One place owns the format, because three modules read or write it: the
poller (:mod:`watcher.discovery`) records a feed entry and notices a
re-dating, the store (:meth:`SourcesRepository.settle_redating`) notes what
the re-check then found, and the CLI shows it (:func:`notes`)::

    {"feed": "https://example.org/rss.xml",   # or "page": the section page
     "guid": "urn:1", "title": "…",
     "published": "2026-01-01T10:00:00Z", "updated": "2026-01-02T09:00:00Z",
     "found_at": 1767261600000,
     "redated": [{"from": "2026-01-01T10:00:00Z", "to": "2026-01-02T09:00:00Z",
                  "seen_at": 1767344400000, "checked_at": 1767344700000,
                  "found": "unchanged", "change_id": null}]}

Feed times are ISO 8601 UTC text, as the feed stated them; ``*_at`` are
epoch milliseconds like every time watcher records. A re-dating is pending
until the article's next check fills in ``found``: ``unchanged`` (re-dated
without visible change), ``noise``, ``significant`` or ``first version``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Re-datings kept per article, newest last: enough to show a pattern.
MAX_REDATINGS = 10
UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class Entry:
    """One article a source lists: its link and, for a feed, what the feed says."""

    link: str
    title: str | None = None
    guid: str | None = None
    published: str | None = None
    updated: str | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """One re-dating, as ``watcher history`` shows it."""

    at: int  # when the poller saw it
    text: str


def stamp(meta: dict[str, Any] | None) -> str | None:
    """The date a re-dating moves: ``updated``, else ``published`` (an RSS
    feed often has only pubDate, and re-dates by moving it)."""
    if not meta:
        return None
    value = meta.get("updated") or meta.get("published")
    return value if isinstance(value, str) else None


def new_meta(entry: Entry, source_url: str, kind: str, now_ms: int) -> dict[str, Any]:
    """The meta of an article a source has just found."""
    meta: dict[str, Any] = {"feed" if kind == "feed" else "page": source_url}
    meta.update(_entry_fields(entry))
    meta["found_at"] = now_ms
    return meta


def merged(
    old: dict[str, Any] | None, entry: Entry, source_url: str, kind: str, now_ms: int
) -> tuple[dict[str, Any], bool]:
    """The meta after another sighting of ``entry``, and whether the feed
    re-dated the article (its updated, else published, time moved)."""
    if not old:
        return new_meta(entry, source_url, kind, now_ms), False
    meta = {**old, **_entry_fields(entry)}
    meta.setdefault("feed" if kind == "feed" else "page", source_url)
    before, after = stamp(old), stamp(meta)
    redated = before is not None and after is not None and before != after
    if redated:
        event = {"from": before, "to": after, "seen_at": now_ms, "checked_at": None,
                 "found": None, "change_id": None}  # fmt: skip
        meta["redated"] = [*_redatings(old), event][-MAX_REDATINGS:]
    return meta, redated


def pending(meta: dict[str, Any] | None) -> bool:
    """Does a re-dating wait for the article's next check?"""
    return any(e.get("found") is None for e in _redatings(meta))


def settled(meta: dict[str, Any], now_ms: int, found: str, change_id: int | None) -> dict[str, Any]:
    """``meta`` with every pending re-dating seen before ``now_ms`` marked
    with what this check found."""
    done = {"checked_at": now_ms, "found": found, "change_id": change_id}
    events = [
        {**e, **done} if e.get("found") is None and int(e.get("seen_at") or 0) <= now_ms else e
        for e in _redatings(meta)
    ]
    return {**meta, "redated": events}


def notes(meta: dict[str, Any] | None) -> list[Note]:
    """One line per re-dating: "feed re-dated A → B without visible change"."""
    return [
        Note(
            int(e.get("seen_at") or 0),
            f"feed re-dated {e.get('from')} → {e.get('to')} {_outcome(e)}",
        )
        for e in _redatings(meta)
    ]


def _outcome(event: dict[str, Any]) -> str:
    found = event.get("found")
    if found is None:
        return "(re-check pending)"
    if found == UNCHANGED:
        return "without visible change"
    if found in ("noise", "none"):
        return "without visible change (only noise differed)"
    if found == "first version":
        return "(first version captured)"
    return f"with a {found} change"


def _entry_fields(entry: Entry) -> dict[str, Any]:
    fields = {
        "guid": entry.guid,
        "title": entry.title,
        "published": entry.published,
        "updated": entry.updated,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _redatings(meta: dict[str, Any] | None) -> list[dict[str, Any]]:
    events = (meta or {}).get("redated")
    return [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []
