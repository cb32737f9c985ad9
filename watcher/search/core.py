"""What both search indexes share: the query language, hits and pages,
snippets, the documents they index, and how they keep up with the versions.

Queries are split on spaces, except inside double quotes ("a phrase"); every
term must occur (AND), as a substring of the title or the text,
case-insensitively for Latin letters.

Each version is one document: watch id, version id, seq, capture time, title,
the kinds of the change that led to it, and the article's plain text (the
parsed blocks' text, one per line, as :func:`watcher.article.parse_article`
reads the stored snapshot). An index is filled incrementally
(:meth:`IncrementalIndex.catch_up`): versions whose id is above the highest
indexed, plus a look-back over the last :data:`LOOKBACK` ids, because on
PostgreSQL ids come from a sequence and two daemons' transactions can commit
out of id order. :meth:`IncrementalIndex.reconcile`, run when the server
starts, compares every id and content hash, so versions deleted (``remove
--purge``) or re-used ids leave the index too.
"""

from __future__ import annotations

import logging
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from watcher.article import parse_article
from watcher.errors import WatcherError
from watcher.snapshot import stored
from watcher.store import Store
from watcher.store.searchtexts import (
    Document,
    TextRow,
    VersionHead,
    incoming_kinds,
    versions_above,
)

log = logging.getLogger(__name__)

#: Ids below the highest indexed that are looked at again on every catch-up.
LOOKBACK = 1000
#: Versions parsed and written per index transaction.
BATCH = 200
MIN_TERM = 3  # the shortest term a trigram index can answer
MAX_TERMS = 8
SNIPPET_CHARS = 160


@dataclass(frozen=True, slots=True)
class Hit:
    """One matching version: where it is, and the text the snippet is cut from."""

    version_id: int
    watch_id: int
    seq: int
    captured_at: int
    title: str
    snippet: str
    #: (start, end) of every term found in ``snippet``, for highlighting.
    marks: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class SearchPage:
    """A page of hits, newest capture first; ``next_cursor`` None on the last page.
    ``complete`` is False while the index is still being built."""

    hits: tuple[Hit, ...]
    next_cursor: str | None
    complete: bool = True


class TextIndex(Protocol):
    """What the web UI needs of a search index (either backend)."""

    def reconcile(self, store: Store) -> int: ...

    def catch_up(self, store: Store, *, wait_s: float = 2.0) -> bool: ...

    def search(
        self,
        query: str,
        *,
        watch_ids: Iterable[int] | None = None,
        kind: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> SearchPage: ...

    def count(self) -> int: ...


_TERM = re.compile(r'"([^"]*)"|(\S+)')


def terms(query: str) -> list[str]:
    """The query's terms: words split on spaces, or a "phrase in double quotes"
    (spaces inside folded to one), each at most once, at most :data:`MAX_TERMS`;
    WatcherError for an empty query."""
    found = [" ".join((quoted or word).replace('"', " ").split())
             for quoted, word in _TERM.findall(query)]  # fmt: skip
    found = list(dict.fromkeys(t for t in found if t))[:MAX_TERMS]
    if not found:
        raise WatcherError("type something to search for")
    return found


def like_pattern(term: str) -> str:
    """A LIKE pattern matching ``term`` anywhere, its ``%``, ``_`` and ``\\``
    escaped with a backslash."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", term) + "%"


def plain_text(article_blocks: Iterable[Any]) -> str:
    """The article as the index keeps it: each block's text on its own line."""
    return "\n".join(b.text for b in article_blocks if b.text)


def parse_cursor(cursor: str, parts: int) -> tuple[int, ...]:
    """A cursor is ``parts`` integers joined by dots; WatcherError otherwise."""
    pieces = cursor.split(".")
    if len(pieces) != parts or not all(re.fullmatch(r"-?\d{1,19}", p) for p in pieces):
        raise WatcherError("bad cursor: use the next_cursor of the previous page")
    return tuple(int(p) for p in pieces)


def search_after(cursor: str | None) -> tuple[int, int] | None:
    """(captured_at, version_id) of the last hit of the page before, from a
    search's ``next_cursor``; None for the first page."""
    if not cursor:
        return None
    at, version_id = parse_cursor(cursor, 2)
    return at, version_id


def page_of(rows: Sequence[TextRow], limit: int, wanted: list[str]) -> SearchPage:
    """The first ``limit`` rows as hits; a cursor when there is a row more."""
    hits = tuple(_hit(row, wanted) for row in rows[:limit])
    if len(rows) <= limit or not hits:
        return SearchPage(hits, None)
    return SearchPage(hits, f"{hits[-1].captured_at}.{hits[-1].version_id}")


def _hit(row: TextRow, wanted: list[str]) -> Hit:
    snippet, marks = _snippet(row.body, wanted, offset=row.offset, more=row.more)
    return Hit(row.version_id, row.watch_id, row.seq, row.captured_at, row.title, snippet, marks)


def _snippet(
    text: str, wanted: list[str], *, offset: int = 0, more: bool = False
) -> tuple[str, tuple[tuple[int, int], ...]]:
    """About :data:`SNIPPET_CHARS` characters of ``text`` around the first term
    found, with the spans of every term inside it (case-insensitive).
    ``text`` may be the part of a longer one, from its character ``offset``
    on (``more``: and before its end), holding the first term found with room
    around it."""
    pattern = re.compile("|".join(re.escape(t) for t in sorted(wanted, key=len, reverse=True)),
                         re.IGNORECASE)  # fmt: skip
    first = pattern.search(text)
    start = max(0, (first.start() if first else 0) - SNIPPET_CHARS // 3)
    end = min(len(text), start + SNIPPET_CHARS)
    piece = " ".join(text[start:end].split())
    prefix = "…" if offset + start > 0 else ""
    suffix = "…" if end < len(text) or more else ""
    shown = prefix + piece + suffix
    return shown, tuple(m.span() for m in pattern.finditer(shown))


def document_text(store: Store, head: VersionHead) -> str:
    """The version's plain text; a version that cannot be read or parsed is
    indexed by its title alone (and logged), so one bad row never stops the rest."""
    try:
        snapshot = stored(store.version_text(head.version_id), head.captured_at)
        return plain_text(parse_article(snapshot).blocks)
    except (WatcherError, ValueError) as exc:
        log.warning("search index: version %d not indexed: %s", head.version_id, exc)
        return ""


class IncrementalIndex(ABC):
    """Keeping an index up with the versions table, whatever holds the index:
    safe to share between threads (one catch-up writes at a time)."""

    def __init__(self) -> None:
        self._writing = threading.Lock()

    def reconcile(self, store: Store) -> int:
        """Compare every stored version with the index, drop what changed or
        went, add what is missing; returns how many versions were indexed."""
        with self._writing:
            return self._sync(store, floor=0)

    def catch_up(self, store: Store, *, wait_s: float = 2.0) -> bool:
        """Index the versions stored since the last catch-up (cheap when there
        are none: two indexed queries). Waits ``wait_s`` for a catch-up already
        running (the first build of a large database); False if it is still
        running then, and the index is searched as it is."""
        if not self._writing.acquire(timeout=wait_s):
            return False
        try:
            self._sync(store, floor=max(0, self._highest() - LOOKBACK))
            return True
        finally:
            self._writing.release()

    def _sync(self, store: Store, *, floor: int) -> int:
        stale, missing = self._changes(store, floor)
        self._forget(store, stale)
        indexed = 0
        for start in range(0, len(missing), BATCH):
            batch = missing[start : start + BATCH]
            todo = self._unindexed([h.version_id for h in batch])
            chunk = [h for h in batch if h.version_id in todo]
            if not chunk:
                continue
            kinds = incoming_kinds(store.engine, chunk[0].version_id, chunk[-1].version_id)
            self._write([Document(head, kinds.get(head.version_id, ""), document_text(store, head))
                         for head in chunk])  # fmt: skip
            indexed += len(chunk)
        if indexed:
            log.info("search index: %d versions indexed", indexed)
        return indexed

    def _changes(self, store: Store, floor: int) -> tuple[list[int], list[VersionHead]]:
        """Above ``floor``: the ids indexed that are gone or changed, and the
        versions to index (those missing or changed), in id order."""
        stored_rows = {r.version_id: r for r in versions_above(store.engine, floor)}
        held = self._held(floor)
        stale = [i for i, sha in held.items()
                 if i not in stored_rows or stored_rows[i].sha256 != sha]  # fmt: skip
        missing = sorted(i for i in stored_rows if i not in held or i in stale)
        return stale, [stored_rows[i] for i in missing]

    def _unindexed(self, ids: list[int]) -> set[int]:
        """Those of ``ids`` still to index, just before they are read and parsed."""
        return set(ids)

    def add_documents(self, rows: Iterable[tuple[int, int, int, int, str, str]]) -> int:
        """Index ready-made documents (version id, watch id, seq, capture time,
        title, text) without reading a store: for benchmarks and tools."""
        documents = [Document(VersionHead(version_id, watch_id, seq, at, title, ""), "", body)
                     for version_id, watch_id, seq, at, title, body in rows]  # fmt: skip
        self._write(documents)
        return len(documents)

    @abstractmethod
    def _highest(self) -> int:
        """The highest version id indexed; 0 for an empty index."""

    def _held(self, floor: int) -> dict[int, str]:
        """version id -> content hash of what is indexed above ``floor`` (for
        :meth:`_changes`, unless an index compares otherwise)."""
        raise NotImplementedError

    @abstractmethod
    def _forget(self, store: Store, stale: list[int]) -> None:
        """Drop the ``stale`` versions, and any of watches no longer stored."""

    @abstractmethod
    def _write(self, documents: list[Document]) -> None:
        """Store the documents (one transaction)."""

    @abstractmethod
    def count(self) -> int:
        """How many versions are indexed."""

    @abstractmethod
    def search(
        self,
        query: str,
        *,
        watch_ids: Iterable[int] | None = None,
        kind: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> SearchPage:
        """Versions matching every term of ``query``, newest capture first.

        ``watch_ids``: only these watches (the caller's site, tag and state
        filters); ``kind``: only versions whose incoming change has this kind.
        ``cursor``: the ``next_cursor`` of the page before. WatcherError for an
        empty query or a bad cursor.
        """
