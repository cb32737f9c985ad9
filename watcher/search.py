"""Full-text search over every stored version: a SQLite FTS5 index beside the database.

The index is its own file, ``$WATCHER_HOME/search.db``, whatever the main
database is (SQLite or PostgreSQL): one index per machine that serves the
UI, built from the versions table through the store, so PostgreSQL needs no
extension (pg_trgm, zhparser) and no schema change, and SQLite's own database
is never locked by a search. FTS5's ``trigram`` tokenizer indexes every
three-character substring, which is what Chinese needs (it has no spaces to
split words on) and what Latin text tolerates (a match inside a word counts).

Each version is one row: watch id, version id, seq, capture time, title, the
kinds of the change that led to it, and the article's plain text (the parsed
blocks' text, one per line, as :func:`watcher.article.parse_article` reads the
stored snapshot). The index is filled incrementally (:meth:`SearchIndex.catch_up`):
versions whose id is above the highest indexed, plus a look-back over the last
:data:`LOOKBACK` ids, because on PostgreSQL ids come from a sequence and two
daemons' transactions can commit out of id order. :meth:`SearchIndex.reconcile`,
run when the server starts, compares every id and content hash, so versions
deleted (``remove --purge``) or re-used ids leave the index too.

Queries are split on spaces, except inside double quotes ("a phrase"); every
term must occur (AND), as a substring of the title or the text,
case-insensitively for Latin letters. A term of three
characters or more is an FTS5 phrase; trigram cannot index a shorter one, so
a term of one or two characters ("拜登" alone is two) falls back to ``LIKE``
over the indexed text. With a longer term beside it, LIKE only reads that
term's matches; alone, a common one stops at the first page (~2 ms), but a
rare one reads every text: ~2 s per 100,000 versions (bench/bench_search.py).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watcher.article import parse_article
from watcher.errors import WatcherError
from watcher.snapshot import stored
from watcher.store import Store

log = logging.getLogger(__name__)

INDEX_NAME = "search.db"
#: Ids below the highest indexed that are looked at again on every catch-up.
LOOKBACK = 1000
#: Versions parsed and written per index transaction.
BATCH = 200
MIN_TERM = 3  # the trigram tokenizer's shortest indexable term
MAX_TERMS = 8
SNIPPET_CHARS = 160

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


@dataclass(frozen=True, slots=True)
class _Row:
    version_id: int
    watch_id: int
    seq: int
    captured_at: int
    title: str
    sha256: str


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


def plain_text(article_blocks: Iterable[Any]) -> str:
    """The article as the index keeps it: each block's text on its own line."""
    return "\n".join(b.text for b in article_blocks if b.text)


class SearchIndex:
    """The FTS5 index file; safe to share between threads (each call opens its
    own connection, and one catch-up writes at a time)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writing = threading.Lock()
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
    def _write(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- filling -------------------------------------------------------------------

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
            with closing(self._connect()) as conn:
                high = conn.execute("SELECT max(version_id) FROM versions").fetchone()[0] or 0
            self._sync(store, floor=max(0, high - LOOKBACK))
            return True
        finally:
            self._writing.release()

    def _sync(self, store: Store, *, floor: int) -> int:
        stored_rows = {r.version_id: r for r in _versions_above(store, floor)}
        with closing(self._connect()) as conn:
            held = dict(
                conn.execute(
                    "SELECT version_id, sha256 FROM versions WHERE version_id > ?", (floor,)
                ).fetchall()
            )
        stale = [i for i, sha in held.items()
                 if i not in stored_rows or stored_rows[i].sha256 != sha]  # fmt: skip
        watches = _watch_ids(store)
        with self._write() as conn:
            self._delete(conn, stale)
            gone = [
                w
                for (w,) in conn.execute("SELECT DISTINCT watch_id FROM versions")
                if w not in watches
            ]
            for watch_id in gone:
                ids = [i for (i,) in conn.execute(
                    "SELECT version_id FROM versions WHERE watch_id = ?", (watch_id,))]  # fmt: skip
                self._delete(conn, ids)
        missing = sorted(i for i in stored_rows if i not in held or i in stale)
        for start in range(0, len(missing), BATCH):
            chunk = [stored_rows[i] for i in missing[start : start + BATCH]]
            kinds = _incoming_kinds(store, chunk[0].version_id, chunk[-1].version_id)
            documents = [(row, _document(store, row)) for row in chunk]
            with self._write() as conn:
                for row, body in documents:
                    self._insert(conn, row, body, kinds.get(row.version_id, ""))
        if missing:
            log.info("search index: %d versions indexed", len(missing))
        return len(missing)

    @staticmethod
    def _delete(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
        for i in ids:
            conn.execute("DELETE FROM versions WHERE version_id = ?", (i,))
            conn.execute("DELETE FROM texts WHERE rowid = ?", (i,))

    @staticmethod
    def _insert(conn: sqlite3.Connection, row: _Row, body: str, kinds: str) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO versions VALUES (?, ?, ?, ?, ?, ?)",
            (row.version_id, row.watch_id, row.seq, row.captured_at, row.sha256, kinds),
        )
        conn.execute("DELETE FROM texts WHERE rowid = ?", (row.version_id,))
        conn.execute(
            "INSERT INTO texts (rowid, title, body) VALUES (?, ?, ?)",
            (row.version_id, row.title, body),
        )

    def add_documents(self, rows: Iterable[tuple[int, int, int, int, str, str]]) -> int:
        """Index ready-made documents (version id, watch id, seq, capture time,
        title, text) without reading a store: for benchmarks and tools."""
        count = 0
        with self._write() as conn:
            for version_id, watch_id, seq, at, title, body in rows:
                row = _Row(version_id, watch_id, seq, at, title, "")
                self._insert(conn, row, body, "")
                count += 1
        return count

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
        """Versions matching every term of ``query``, newest capture first.

        ``watch_ids``: only these watches (the caller's site, tag and state
        filters); ``kind``: only versions whose incoming change has this kind.
        ``cursor``: the ``next_cursor`` of the page before. WatcherError for an
        empty query or a bad cursor.
        """
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
        hits = tuple(_hit(row, texts.get(row[0], ("", "")), wanted) for row in rows[:limit])
        more = len(rows) > limit
        last = hits[-1] if hits else None
        return SearchPage(hits, f"{last.captured_at}.{last.version_id}" if more and last else None)


def _conditions(
    wanted: list[str], watch_ids: Iterable[int] | None, kind: str | None, cursor: str | None
) -> tuple[list[str], list[Any]]:
    """The WHERE conditions besides MATCH, and their parameters."""
    where: list[str] = []
    params: list[Any] = []
    for term in (t for t in wanted if len(t) < MIN_TERM):
        like = "%" + re.sub(r"([\\%_])", r"\\\1", term) + "%"
        where.append("(t.title LIKE ? ESCAPE '\\' OR t.body LIKE ? ESCAPE '\\')")
        params += [like, like]
    if watch_ids is not None:
        ids = sorted({int(i) for i in watch_ids}) or [-1]
        where.append(f"v.watch_id IN ({','.join(str(i) for i in ids)})")
    if kind:
        where.append("(' ' || v.kinds || ' ') LIKE ?")
        params.append(f"% {kind} %")
    if cursor:
        at, version_id = parse_cursor(cursor, 2)
        where.append("(v.captured_at, v.version_id) < (?, ?)")
        params += [at, version_id]
    return where, params


def parse_cursor(cursor: str, parts: int) -> tuple[int, ...]:
    """A cursor is ``parts`` integers joined by dots; WatcherError otherwise."""
    pieces = cursor.split(".")
    if len(pieces) != parts or not all(re.fullmatch(r"-?\d{1,19}", p) for p in pieces):
        raise WatcherError("bad cursor: use the next_cursor of the previous page")
    return tuple(int(p) for p in pieces)


def _hit(row: tuple[Any, ...], text: tuple[str | None, str | None], wanted: list[str]) -> Hit:
    version_id, watch_id, seq, at = row
    title, body = text
    snippet, marks = _snippet(body or "", wanted)
    return Hit(version_id, watch_id, seq, at, title or "", snippet, marks)


def _snippet(text: str, wanted: list[str]) -> tuple[str, tuple[tuple[int, int], ...]]:
    """About :data:`SNIPPET_CHARS` characters of ``text`` around the first term
    found, with the spans of every term inside it (case-insensitive)."""
    pattern = re.compile("|".join(re.escape(t) for t in sorted(wanted, key=len, reverse=True)),
                         re.IGNORECASE)  # fmt: skip
    first = pattern.search(text)
    start = max(0, (first.start() if first else 0) - SNIPPET_CHARS // 3)
    end = min(len(text), start + SNIPPET_CHARS)
    piece = " ".join(text[start:end].split())
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    shown = prefix + piece + suffix
    return shown, tuple(m.span() for m in pattern.finditer(shown))


# -- reading the main database -------------------------------------------------------
# The store offers versions per watch; the index needs "every version above an
# id" in id order, so it reads the ids and hashes with one plain SELECT on the
# store's engine (integers only, no parameters: the same text on SQLite and
# PostgreSQL) and the texts through the store, which decodes them.


def _rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql)]


def _versions_above(store: Store, floor: int) -> list[_Row]:
    sql = (
        "SELECT id, watch_id, seq, captured_at, title, content_sha256 FROM versions "
        f"WHERE id > {int(floor)} ORDER BY id"
    )
    return [
        _Row(int(i), int(w), int(s), int(at), title or "", sha)
        for i, w, s, at, title, sha in _rows(store, sql)
    ]


def _watch_ids(store: Store) -> set[int]:
    return {int(i) for (i,) in _rows(store, "SELECT id FROM watches")}


def _incoming_kinds(store: Store, first: int, last: int) -> dict[int, str]:
    """The kinds of the change that led to each version in [first, last]."""
    sql = (
        "SELECT new_version_id, kinds FROM changes "
        f"WHERE new_version_id BETWEEN {int(first)} AND {int(last)}"
    )
    out: dict[int, str] = {}
    for version_id, kinds in _rows(store, sql):
        listed = json.loads(kinds) if isinstance(kinds, str) else kinds
        out[int(version_id)] = " ".join(str(k) for k in listed or ())
    return out


def _document(store: Store, row: _Row) -> str:
    """The version's plain text; a version that cannot be read or parsed is
    indexed by its title alone (and logged), so one bad row never stops the rest."""
    try:
        snapshot = stored(store.version_text(row.version_id), row.captured_at)
        return plain_text(parse_article(snapshot).blocks)
    except (WatcherError, ValueError) as exc:
        log.warning("search index: version %d not indexed: %s", row.version_id, exc)
        return ""


def open_index(home: Path) -> SearchIndex:
    """The index of the data folder ``home`` (created when missing)."""
    return SearchIndex(home / INDEX_NAME)
