"""The search index of a SQLite database: an FTS5 file beside it.

The index is its own file, ``$WATCHER_HOME/search.db``, so SQLite's own
database is never locked by a search or by indexing. FTS5's ``trigram``
tokenizer indexes every three-character substring, which is what Chinese
needs (it has no spaces to split words on) and what Latin text tolerates (a
match inside a word counts).

A term of three characters or more is an FTS5 phrase; trigram cannot index a
shorter one, so a term of one or two characters ("拜登" alone is two) falls
back to ``LIKE`` over the indexed text. With a longer term beside it, LIKE
only reads that term's matches; alone, a common one stops at the first page
(~2 ms), but a rare one reads every text: ~2 s per 100,000 versions
(bench/bench_search.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from watcher.errors import WatcherError
from watcher.search.core import (
    MIN_TERM,
    IncrementalIndex,
    SearchPage,
    like_pattern,
    page_of,
    search_after,
    terms,
)
from watcher.store import Store
from watcher.store.searchtexts import Document, TextRow, watch_ids

INDEX_NAME = "search.db"

_SCHEMA = """
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS versions (
    version_id INTEGER PRIMARY KEY,
    watch_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    captured_at INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    kinds TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS versions_by_time ON versions (captured_at DESC, version_id DESC);
CREATE INDEX IF NOT EXISTS versions_by_watch ON versions (watch_id);
CREATE VIRTUAL TABLE IF NOT EXISTS texts USING fts5(title, body, tokenize='trigram');
"""


class SearchIndex(IncrementalIndex):
    """The FTS5 index file; safe to share between threads (each call opens its
    own connection, and one catch-up writes at a time)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with closing(self._connect()) as conn:
                conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise WatcherError(f"cannot open the search index {path}: {exc}") from None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- filling -------------------------------------------------------------------

    def _highest(self) -> int:
        with closing(self._connect()) as conn:
            return int(conn.execute("SELECT max(version_id) FROM versions").fetchone()[0] or 0)

    def _held(self, floor: int) -> dict[int, str]:
        with closing(self._connect()) as conn:
            sql = "SELECT version_id, sha256 FROM versions WHERE version_id > ?"
            return dict(conn.execute(sql, (floor,)).fetchall())

    def _forget(self, store: Store, stale: list[int]) -> None:
        """Drop the stale versions and those of watches gone (purged)."""
        watches = watch_ids(store.engine)
        with self._transaction() as conn:
            self._delete(conn, stale)
            gone = [w for (w,) in conn.execute("SELECT DISTINCT watch_id FROM versions")
                    if w not in watches]  # fmt: skip
            for watch_id in gone:
                ids = [i for (i,) in conn.execute(
                    "SELECT version_id FROM versions WHERE watch_id = ?", (watch_id,))]  # fmt: skip
                self._delete(conn, ids)

    def _write(self, documents: list[Document]) -> None:
        with self._transaction() as conn:
            for doc in documents:
                self._insert(conn, doc)

    @staticmethod
    def _delete(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
        for i in ids:
            conn.execute("DELETE FROM versions WHERE version_id = ?", (i,))
            conn.execute("DELETE FROM texts WHERE rowid = ?", (i,))

    @staticmethod
    def _insert(conn: sqlite3.Connection, doc: Document) -> None:
        head = doc.head
        conn.execute(
            "INSERT OR REPLACE INTO versions VALUES (?, ?, ?, ?, ?, ?)",
            (head.version_id, head.watch_id, head.seq, head.captured_at, head.sha256, doc.kinds),
        )
        conn.execute("DELETE FROM texts WHERE rowid = ?", (head.version_id,))
        conn.execute(
            "INSERT INTO texts (rowid, title, body) VALUES (?, ?, ?)",
            (head.version_id, head.title, doc.body),
        )

    def count(self) -> int:
        with closing(self._connect()) as conn:
            return int(conn.execute("SELECT count(*) FROM versions").fetchone()[0])

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
        where, params = _conditions(wanted, watch_ids, kind, cursor)
        long_terms = [t for t in wanted if len(t) >= MIN_TERM]
        match = " AND ".join('"' + t.replace('"', '""') + '"' for t in long_terms)
        # The page's ids first, without the texts: a sort that carried every
        # matching body cost ten times the query (bench/bench_search.py).
        sql = (
            "SELECT v.version_id, v.watch_id, v.seq, v.captured_at "
            # without MATCH, CROSS JOIN walks versions newest first and stops
            # at the page's end, instead of reading every text, then sorting
            + ("FROM versions v JOIN texts t " if match else "FROM versions v CROSS JOIN texts t ")
            + "ON t.rowid = v.version_id "
            + ("WHERE texts MATCH ? " if match else "WHERE 1 ")
            + "".join(f"AND {w} " for w in where)
            + "ORDER BY v.captured_at DESC, v.version_id DESC LIMIT ?"
        )
        args = [*([match] if match else []), *params, limit + 1]
        with closing(self._connect()) as conn:
            rows = conn.execute(sql, args).fetchall()
            texts = {
                i: (title, body)
                for i, title, body in conn.execute(
                    "SELECT rowid, title, body FROM texts WHERE rowid IN "
                    f"({','.join(str(int(r[0])) for r in rows[:limit]) or '-1'})"
                )
            }
        found = []
        for version_id, watch_id, seq, at in rows:
            title, body = texts.get(version_id, ("", ""))
            found.append(TextRow(version_id, watch_id, seq, at, title or "", body or ""))
        return page_of(found, limit, wanted)


def _conditions(
    wanted: list[str], watch_ids: Iterable[int] | None, kind: str | None, cursor: str | None
) -> tuple[list[str], list[Any]]:
    """The WHERE conditions besides MATCH, and their parameters."""
    where: list[str] = []
    params: list[Any] = []
    for term in (t for t in wanted if len(t) < MIN_TERM):
        where.append("(t.title LIKE ? ESCAPE '\\' OR t.body LIKE ? ESCAPE '\\')")
        params += [like_pattern(term)] * 2
    if watch_ids is not None:
        ids = sorted({int(i) for i in watch_ids}) or [-1]
        where.append(f"v.watch_id IN ({','.join(str(i) for i in ids)})")
    if kind:
        where.append("(' ' || v.kinds || ' ') LIKE ?")
        params.append(f"% {kind} %")
    before = search_after(cursor)
    if before is not None:
        where.append("(v.captured_at, v.version_id) < (?, ?)")
        params += before
    return where, params
