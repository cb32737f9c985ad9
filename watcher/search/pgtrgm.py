"""The search index of a PostgreSQL database: the ``search_texts`` table in
it, with GIN indexes over pg_trgm's trigrams of title and body.

Servers that share one database share this index: it is built once, not once
per machine, and a version purged anywhere leaves it by the foreign key's
``ON DELETE CASCADE``. Several servers may catch up at once: each skips the
versions another has written meanwhile, and ``INSERT … ON CONFLICT DO
NOTHING`` keeps one row per version when two write the same.

A version matches when every term is in its title or body, as ``ILIKE
'%term%'`` finds it, so matching is the FTS5 index's: a substring,
case-insensitive. The trigram indexes find the candidates of a term of three
characters or more (Chinese included), newest first, and only the texts of a
page's worth are read to confirm them; a shorter term has no trigram, and the
texts are read newest first until the page is full (quick when the term is
common, every text when it is rare, as the FTS5 index's ``LIKE`` does).
Without pg_trgm (a database where it could not be installed) every search
reads the texts so. How and why: :mod:`watcher.store.searchtexts`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from watcher.errors import StoreError
from watcher.search.core import (
    IncrementalIndex,
    SearchPage,
    page_of,
    search_after,
    terms,
)
from watcher.store import Store
from watcher.store import searchtexts as texts
from watcher.store.searchtexts import Document, TermMatch, TextQuery, VersionHead

log = logging.getLogger(__name__)


class PgSearchIndex(IncrementalIndex):
    """The ``search_texts`` table of the store's PostgreSQL database; safe to
    share between threads, and between servers on that database."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.engine = store.engine
        #: The schema of pg_trgm; None without it (searches read every text).
        self.schema: str | None = None
        try:
            self.schema = texts.ensure_trigram_indexes(self.engine)
        except StoreError as exc:
            log.warning("search: cannot create the trigram indexes, searches read the texts: %s",
                        exc)  # fmt: skip

    # -- filling -------------------------------------------------------------------

    def _highest(self) -> int:
        return texts.highest(self.engine)

    def _changes(self, store: Store, floor: int) -> tuple[list[int], list[VersionHead]]:
        # both tables in one database: compared there (a catch-up with
        # nothing new reads no rows)
        return texts.changed_versions(self.engine, floor)

    def _forget(self, store: Store, stale: list[int]) -> None:
        # versions deleted took their rows with them (ON DELETE CASCADE)
        texts.delete(self.engine, stale)

    def _sync(self, store: Store, *, floor: int) -> int:
        indexed = super()._sync(store, floor=floor)
        if indexed >= texts.BULK and self.schema:
            texts.merge_pending(self.engine)
        return indexed

    def _unindexed(self, ids: list[int]) -> set[int]:
        return set(ids) - texts.present(self.engine, ids)

    def _write(self, documents: list[Document]) -> None:
        texts.insert(self.engine, documents)

    def count(self) -> int:
        return texts.count(self.engine)

    # -- searching -----------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        watch_ids: Iterable[int] | None = None,
        kind: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> SearchPage:
        wanted = terms(query)
        found = self.table_query(wanted, watch_ids=watch_ids, kind=kind, limit=limit, cursor=cursor)
        return page_of(texts.find(self.engine, self.schema, found), limit, wanted)

    def table_query(
        self,
        wanted: list[str],
        *,
        watch_ids: Iterable[int] | None = None,
        kind: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> TextQuery:
        """The table query for a search (one row more than the page, to tell
        whether there is a next one)."""
        trigrams = (texts.required_trigrams(self.engine, self.schema, wanted) if self.schema
                    else [[] for _ in wanted])  # fmt: skip
        return TextQuery(
            terms=[TermMatch(t, g) for t, g in zip(wanted, trigrams, strict=True)],
            watch_ids=None if watch_ids is None else sorted({int(i) for i in watch_ids}),
            kind=kind,
            before=search_after(cursor),
            limit=limit + 1,
        )
