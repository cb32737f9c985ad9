"""Records as JSON values for the API (pure).

Times are given twice: ISO 8601 UTC for people and epoch milliseconds for
programs (``captured_at`` / ``captured_at_ms``). Archived strings are kept as
they are: JSON escapes what it must, and the responses are
``application/json`` with ``nosniff``, never read as HTML.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from watcher.models import Article
from watcher.search import Hit
from watcher.store import ChangeRecord, VersionRecord, WatchRecord
from watcher.web.markup import iso_time
from watcher.web.queries import Page, VersionRow, WatchRow, change_time


def page(items: list[dict[str, Any]], source: Page[Any]) -> dict[str, Any]:
    """The envelope of every list: ``items`` and the cursor of the next page."""
    return {"items": items, "next_cursor": source.next_cursor}


def watch(row: WatchRow) -> dict[str, Any]:
    w = row.watch
    return {
        "id": w.id,
        "url": w.url,
        "site": w.site,
        "title": w.latest_title,
        "state": row.state,
        "tags": list(w.tags),
        "interval_s": w.interval_s,
        "versions": w.version_count,
        "last_checked_at": iso_time(w.last_checked_at),
        "last_error": w.last_error,
        "last_change": change(row.latest) if row.latest else None,
        "html": f"/articles/{w.id}",
    }


def watch_record(w: WatchRecord) -> dict[str, Any]:
    """A watch after a write (set, pause, resume); ``interval_s`` None: adaptive."""
    return {"id": w.id, "url": w.url, "state": str(w.state), "tags": list(w.tags),
            "interval_s": w.interval_s}  # fmt: skip


def change(c: ChangeRecord, *, record: bool = False) -> dict[str, Any]:
    """A change; with ``record``, its full record too (every item, before and
    after, as ``watcher diff --format json`` prints it: its own ``schema``)."""
    at = change_time(c)
    out = {
        "id": c.id,
        "watch_id": c.watch_id,
        "url": c.url,
        "old_version_id": c.old_version_id,
        "new_version_id": c.new_version_id,
        "at": iso_time(at),
        "at_ms": at,
        "recorded_at": iso_time(c.created_at),
        "verdict": str(c.verdict),
        "kinds": list(c.kinds),
        "summary": c.summary,
        "reverted_to_version_id": c.reverted_to_version_id,
    }
    if record:
        out["record"] = c.record
    return out


def version(
    v: VersionRecord, incoming: ChangeRecord | None, *, record: bool = False
) -> dict[str, Any]:
    """A version; ``time_basis`` says whether ``captured_at`` is when watcher
    fetched it (``captured``) or the time an imported archive stated."""
    return {
        "id": v.id,
        "watch_id": v.watch_id,
        "seq": v.seq,
        "captured_at": iso_time(v.captured_at),
        "captured_at_ms": v.captured_at,
        "time_basis": str(v.time_basis),
        "title": v.title,
        "http_status": v.http_status,
        "final_url": v.final_url,
        "content_sha256": v.content_sha256,
        "change": change(incoming, record=record) if incoming else None,
        "html": f"/versions/{v.id}",
    }


def version_row(row: VersionRow) -> dict[str, Any]:
    return version(row.version, row.change)


def version_detail(
    v: VersionRecord, incoming: ChangeRecord | None, url: str, article: Article
) -> dict[str, Any]:
    """A version with its watch's URL, page metadata and the parsed article."""
    return {
        **version(v, incoming, record=True),
        "url": url,
        "page_metadata": v.page_metadata,
        "article": asdict(article),
    }


def hit(h: Hit, url: str) -> dict[str, Any]:
    return {
        "version_id": h.version_id,
        "watch_id": h.watch_id,
        "url": url,
        "title": h.title,
        "seq": h.seq,
        "captured_at": iso_time(h.captured_at),
        "captured_at_ms": h.captured_at,
        "snippet": h.snippet,
        "matches": [list(span) for span in h.marks],
        "html": f"/versions/{h.version_id}",
    }
