"""What a page or an API call lists: the watch index with its filters, the
changes since a time, an article's versions, all paginated by cursor.

Every list is in a fixed order with a unique key per item; a cursor is the
key of the last item of the page before (integers joined by dots: opaque to
clients), so a walk with ``next_cursor`` meets every item exactly once even
while new ones arrive. Lists that cover the whole database (watches, versions)
come from the store's one-query methods; changes come page by page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from watcher import api
from watcher.api import ArticleHistory
from watcher.errors import WatcherError
from watcher.models import ChangeKind
from watcher.search import parse_cursor
from watcher.store import (
    ChangeRecord,
    Store,
    VersionRecord,
    WatchRecord,
    WatchState,
    WatchSummary,
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
STATES = tuple(str(s) for s in WatchState)
KINDS = frozenset(str(k) for k in ChangeKind)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
    #: The changes list only: where to ask next time for what is new (set
    #: on the last page too, where ``next_cursor`` is None).
    poll_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Filters:
    """The index's and search's filters; None: any. ``kind`` is a change kind
    (of a watch's latest change on the index, of the change that led to a
    version in search, of each change in the changes list)."""

    site: str | None = None
    tag: str | None = None
    state: str | None = None
    kind: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> Filters:
        def get(name: str) -> str | None:
            value = params.get(name, "").strip()
            return value or None

        state = get("state")
        # a mistyped filter must not read as "nothing matches"
        if state is not None and state not in STATES:
            raise WatcherError(f"state must be one of {', '.join(STATES)}")
        return cls(get("site"), get("tag"), state, parse_kind(get("kind")))

    @property
    def on_watches(self) -> bool:
        return any((self.site, self.tag, self.state))


def parse_kind(text: str | None) -> str | None:
    """``?kind=``: a change kind such as ``paragraph_edited``, or None for any."""
    if text and text not in KINDS:
        raise WatcherError(f"unknown change kind {text!r}, e.g. paragraph_edited or title")
    return text or None


def parse_limit(text: str | None) -> int:
    """``?limit=``: 1 to :data:`MAX_LIMIT`, default :data:`DEFAULT_LIMIT`."""
    if not text:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise WatcherError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def paginate(
    items: Sequence[T], key: Callable[[T], tuple[int, ...]], limit: int, cursor: str | None
) -> Page[T]:
    """``items`` sorted by ``key`` descending: the ``limit`` after ``cursor``."""
    ordered = sorted(items, key=key, reverse=True)
    if cursor:
        after = parse_cursor(cursor, len(key(ordered[0]))) if ordered else ()
        ordered = [i for i in ordered if key(i) < after]
    chunk = ordered[:limit]
    more = len(ordered) > limit
    return Page(chunk, ".".join(map(str, key(chunk[-1]))) if more and chunk else None)


# -- watches -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchRow:
    """One watch on the index: what ``watcher list`` knows, and its newest change."""

    watch: WatchSummary
    latest: ChangeRecord | None

    @property
    def title(self) -> str:
        return self.watch.latest_title or self.watch.url

    @property
    def state(self) -> str:
        """The state, or ``gone`` when the newest change is a takedown the
        watch's state does not show yet (the daemon tells before it marks)."""
        return shown_state(str(self.watch.state), self.latest)

    @property
    def last_change_at(self) -> int | None:
        return change_time(self.latest) if self.latest else None

    def sort_key(self) -> tuple[int, int]:
        return (self.last_change_at or 0, self.watch.id)


def change_time(change: ChangeRecord) -> int:
    """When a change happened: the new capture's time, else when it was stored."""
    captured = change.record.get("captured_after")
    if isinstance(captured, int) and not isinstance(captured, bool):
        return captured
    return change.created_at


def watch_rows(store: Store) -> list[WatchRow]:
    """Every watch with its newest change: two queries, whatever their number."""
    latest = store.latest_changes_by_watch()
    return [WatchRow(w, latest.get(w.id)) for w in store.list_watches()]


def filter_rows(
    rows: Sequence[WatchRow], filters: Filters, *, hide_removed: bool = True
) -> list[WatchRow]:
    """The rows every filter admits; removed watches (their history kept) only
    when asked for by state, or with ``hide_removed`` False (search)."""

    def admits(row: WatchRow) -> bool:
        removed = row.watch.state is WatchState.REMOVED
        if hide_removed and filters.state is None and removed:
            return False
        return (
            (filters.site is None or row.watch.site == filters.site)
            and (filters.tag is None or filters.tag in row.watch.tags)
            and (filters.state is None or row.state == filters.state)
            and (filters.kind is None or (row.latest is not None
                                          and filters.kind in row.latest.kinds))
        )  # fmt: skip

    return [r for r in rows if admits(r)]


def watches_page(store: Store, filters: Filters, limit: int, cursor: str | None) -> Page[WatchRow]:
    """The index: newest change first (never-changed watches last, newest first)."""
    return paginate(filter_rows(watch_rows(store), filters), WatchRow.sort_key, limit, cursor)


@dataclass(frozen=True, slots=True)
class Choices:
    """The values the index's filters offer: those present in the database."""

    sites: list[str]
    tags: list[str]
    states: list[str]
    kinds: list[str]


def choices(rows: Sequence[WatchRow]) -> Choices:
    kinds = {k for r in rows if r.latest for k in r.latest.kinds}
    return Choices(
        sites=sorted({r.watch.site for r in rows if r.watch.site}),
        tags=sorted({t for r in rows for t in r.watch.tags}),
        states=list(STATES),
        kinds=sorted(kinds),
    )


# -- changes -------------------------------------------------------------------------


def changes_page(
    store: Store, *, since_ms: int | None, kind: str | None, limit: int, cursor: str | None
) -> Page[ChangeRecord]:
    """Changes recorded at or after ``since_ms`` (when they were stored), of
    ``kind`` if given, oldest first. A client walks the pages with
    ``next_cursor``; on the last one, ``poll_cursor`` (the last change looked
    at, of any kind) is where it asks again later, for only what is new."""
    after = parse_cursor(cursor, 1)[0] if cursor else 0
    found: list[ChangeRecord] = []
    while len(found) <= limit:
        batch = store.changes_after(after, since_ms=since_ms, limit=limit + 1)
        if not batch:
            break
        after = batch[-1].id
        found += [c for c in batch if kind is None or kind in c.kinds]
    page = found[:limit]
    if len(found) > limit:
        return Page(page, str(page[-1].id), str(page[-1].id))
    return Page(page, None, str(after) if after else cursor)


# -- versions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionRow:
    """A version and the change that led to it (None: the first capture)."""

    version: VersionRecord
    change: ChangeRecord | None


def version_rows(store: Store, watch_id: int) -> list[VersionRow]:
    """Every version of a watch with its incoming change, oldest first."""
    incoming = {c.new_version_id: c for c in store.changes(watch_id) if c.new_version_id}
    return [VersionRow(v, incoming.get(v.id)) for v in store.versions(watch_id)]


def versions_page(store: Store, watch_id: int, limit: int, cursor: str | None) -> Page[VersionRow]:
    """An article's versions, newest first."""
    return paginate(version_rows(store, watch_id), lambda r: (r.version.seq,), limit, cursor)


def article_history(store: Store, watch: WatchRecord) -> ArticleHistory:
    """:func:`watcher.api.history` by watch id: the page's id is the key, and a
    URL stored before today's normalisation rules must still find its watch."""
    return api.watch_history(store, watch)


def shown_state(state: str, latest: ChangeRecord | None) -> str:
    """A watch's state as shown: ``gone`` for an active watch whose newest
    change is a takedown."""
    if state == "active" and latest is not None and latest.new_version_id is None:
        return "gone"
    return state
