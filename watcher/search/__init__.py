"""Full-text search over every stored version, in whichever index suits the
database (:func:`open_index`):

- **SQLite**: an FTS5 trigram index in its own file, ``$WATCHER_HOME/search.db``
  (:mod:`watcher.search.fts5`), so the main database is never locked by a
  search, and SQLite needs nothing it does not have built in.
- **PostgreSQL**: the ``search_texts`` table in the database itself, with
  pg_trgm's GIN trigram indexes (:mod:`watcher.search.pgtrgm`), so the
  daemons and servers sharing that database share one index, built once,
  instead of each machine building and storing its own.

Both index every version's title and plain text by trigrams, which is what
Chinese needs (no spaces to split words on), and answer a query the same way:
every term a case-insensitive substring of the title or the text, newest
capture first, in cursor pages (:mod:`watcher.search.core`).
"""

from __future__ import annotations

from pathlib import Path

from watcher.search.core import (
    LOOKBACK,
    Hit,
    SearchPage,
    TextIndex,
    parse_cursor,
    plain_text,
    terms,
)
from watcher.search.fts5 import INDEX_NAME, SearchIndex
from watcher.search.pgtrgm import PgSearchIndex
from watcher.store import Store


def open_index(home: Path, store: Store) -> SearchIndex | PgSearchIndex:
    """The index for ``store``: its own table on PostgreSQL, else the FTS5
    file of the data folder ``home`` (created when missing)."""
    if store.engine.dialect.name == "postgresql":
        return PgSearchIndex(store)
    return SearchIndex(home / INDEX_NAME)


__all__ = [
    "INDEX_NAME",
    "LOOKBACK",
    "Hit",
    "PgSearchIndex",
    "SearchIndex",
    "SearchPage",
    "TextIndex",
    "open_index",
    "parse_cursor",
    "plain_text",
    "terms",
]
