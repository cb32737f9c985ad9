"""The store's side of full-text search: the versions an index reads, and on
PostgreSQL the ``search_texts`` table the index lives in (see watcher/search/).

Both indexes read the versions to index here (ids, hashes, titles, the kinds
of the change that led to each). The PostgreSQL index keeps one row per
version in ``search_texts`` (migration 0007): every statement on it is here,
with bound parameters, and its errors leave as StoreError.

**The trigram indexes** are GIN indexes over pg_trgm's trigrams of the title
and of the body (``show_trgm(body)``, an array), not pg_trgm's own
``gin_trgm_ops`` operator class. Both answer "which texts have these
trigrams", but ``gin_trgm_ops`` is lossy for ``ILIKE``: PostgreSQL re-reads
and lower-cases every candidate's whole text before it can sort them by time
and keep a page, ~7 ms for a 125,000-character live blog, so a common term
cost seconds over 100,000 versions (bench/bench_search.py). Array containment
(``@>``) is exact, so a search takes the candidates' ids and times from the
index and the table's narrow rows (the texts are kept out of line:
``toast_tuple_target``), sorts them, and reads the texts of the newest only
until the page is full (:func:`find`), returning of each only the part a
snippet is cut from. Texts are compressed with LZ4 where the server has it:
reading them is most of what a search costs, and pglz takes twice as long.

A term's required trigrams are the ones pg_trgm makes of it that every text
containing it has too: those of the term, less the ones that depend on what
stands before or after it (:func:`required_trigrams`). pg_trgm's function is
named with the schema the extension lives in, which need not be on the
search path (in the tests it is another test's schema). When the extension
is missing (the migration could not create it), :func:`create_trigram_indexes`
says so and searches read every text; once a superuser has run ``CREATE
EXTENSION pg_trgm``, the next call (when a server opens its index) creates
the indexes. Their statistics target is 0: ANALYZE would otherwise compute
the trigrams of thousands of sampled texts each time (18 s per 5,000), and
the planner's default guess for ``@>`` (rare) is the plan wanted anyway.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from watcher.errors import StoreError
from watcher.store.engine import error_detail
from watcher.store.tables import TRIGRAM_INDEXES

log = logging.getLogger(__name__)

MISSING_EXTENSION = (
    "pg_trgm is not installed in this database, so search reads every text"
    " (slow on a large database): a superuser can run `CREATE EXTENSION pg_trgm;`"
    " in it, and the next server to start (`watcher serve`, `watcher run --http`)"
    " creates the trigram indexes"
)


@dataclass(frozen=True, slots=True)
class VersionHead:
    """What an index keeps of a version besides its text."""

    version_id: int
    watch_id: int
    seq: int
    captured_at: int
    title: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Document:
    """A version as an index stores it."""

    head: VersionHead
    kinds: str  # the kinds of the change that led to it, space-separated
    body: str  # the article's plain text


@dataclass(frozen=True, slots=True)
class TextRow:
    """A matching version with its title and text, as a search returns it:
    the whole text, or the part of it from character ``offset`` on around
    the first term found (``more``: the text goes on after it)."""

    version_id: int
    watch_id: int
    seq: int
    captured_at: int
    title: str
    body: str
    offset: int = 0
    more: bool = False


@dataclass(frozen=True, slots=True)
class TermMatch:
    """One term of a search, and the trigrams every text containing it has
    (:func:`required_trigrams`; none for a term too short to have one, which
    is then looked for by reading the texts)."""

    text: str
    trigrams: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class TextQuery:
    """A search of ``search_texts``: every term in the title or the body;
    the rest narrows, as in :meth:`PgSearchIndex.search`."""

    terms: Sequence[TermMatch]
    watch_ids: Sequence[int] | None = None
    kind: str | None = None
    before: tuple[int, int] | None = None  # (captured_at, version_id) of the last hit shown
    limit: int = 20


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreError(f"database error: {type(exc).__name__}: {error_detail(exc)}") from exc


def _rows(engine: Engine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with _translated(), engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


# -- the versions to index (SQLite and PostgreSQL) -------------------------------------


def versions_above(engine: Engine, floor: int) -> list[VersionHead]:
    """Every version whose id is above ``floor``, in id order."""
    sql = (
        "SELECT id, watch_id, seq, captured_at, title, content_sha256 FROM versions"
        " WHERE id > :floor ORDER BY id"
    )
    return [
        VersionHead(int(i), int(w), int(s), int(at), title or "", sha)
        for i, w, s, at, title, sha in _rows(engine, sql, floor=floor)
    ]


def watch_ids(engine: Engine) -> set[int]:
    return {int(i) for (i,) in _rows(engine, "SELECT id FROM watches")}


def incoming_kinds(engine: Engine, first: int, last: int) -> dict[int, str]:
    """The kinds of the change that led to each version in [first, last]."""
    sql = "SELECT new_version_id, kinds FROM changes WHERE new_version_id BETWEEN :first AND :last"
    out: dict[int, str] = {}
    for version_id, kinds in _rows(engine, sql, first=first, last=last):
        listed = json.loads(kinds) if isinstance(kinds, str) else kinds
        out[int(version_id)] = " ".join(str(k) for k in listed or ())
    return out


# -- search_texts (PostgreSQL) ---------------------------------------------------------


def trigram_schema(conn: Connection) -> str | None:
    """The schema pg_trgm is installed in; None when it is not installed."""
    sql = (
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'pg_trgm'"
    )
    found = conn.execute(text(sql)).scalar()
    return None if found is None else str(found)


def create_trigram_indexes(conn: Connection) -> str | None:
    """Create the GIN trigram indexes that are missing; returns the schema of
    pg_trgm, None (and a warning) when it is not installed. Run by migration
    0007 and by every :class:`PgSearchIndex` when it opens (cheap when the
    indexes exist)."""
    schema = trigram_schema(conn)
    if schema is None:
        log.warning(MISSING_EXTENSION)
        return None
    trigrams = _show_trgm(schema)
    for name, column in TRIGRAM_INDEXES.items():
        if conn.execute(text("SELECT to_regclass(:name)"), {"name": name}).scalar() is None:
            log.info("search: creating the trigram index %s (once; slow on a large table)", name)
            conn.execute(
                text(f"CREATE INDEX {name} ON search_texts USING gin ({trigrams}({column}))")
            )
            conn.execute(text(f"ALTER INDEX {name} ALTER COLUMN 1 SET STATISTICS 0"))
    return schema


def _show_trgm(schema: str) -> str:
    """pg_trgm's ``show_trgm``, named with its schema (a quoted identifier)."""
    return '"' + schema.replace('"', '""') + '".show_trgm'


def ensure_trigram_indexes(engine: Engine) -> str | None:
    """:func:`create_trigram_indexes` in a transaction of its own; StoreError
    when they cannot be created (say, the role does not own the table)."""
    with _translated(), engine.begin() as conn:
        return create_trigram_indexes(conn)


def highest(engine: Engine) -> int:
    """The highest version id in ``search_texts``; 0 when it is empty."""
    [(high,)] = _rows(engine, "SELECT coalesce(max(version_id), 0) FROM search_texts")
    return int(high)


def count(engine: Engine) -> int:
    [(n,)] = _rows(engine, "SELECT count(*) FROM search_texts")
    return int(n)


def changed_versions(engine: Engine, floor: int) -> tuple[list[int], list[VersionHead]]:
    """Above ``floor``: the ids in ``search_texts`` whose version changed (its
    content hash; one deleted took its row along), and the versions missing
    or changed, in id order."""
    sql = (
        "SELECT v.id, v.watch_id, v.seq, v.captured_at, v.title, v.content_sha256,"
        " s.version_id IS NOT NULL FROM versions v"
        " LEFT JOIN search_texts s ON s.version_id = v.id"
        " WHERE v.id > :floor AND (s.version_id IS NULL OR s.sha256 <> v.content_sha256)"
        " ORDER BY v.id"
    )
    rows = _rows(engine, sql, floor=floor)
    stale = [int(i) for i, *_, held in rows if held]
    heads = [VersionHead(int(i), int(w), int(s), int(at), title or "", sha)
             for i, w, s, at, title, sha, _ in rows]  # fmt: skip
    return stale, heads


def present(engine: Engine, ids: Sequence[int]) -> set[int]:
    """Those of ``ids`` that have a row (another server may have written them)."""
    sql = "SELECT version_id FROM search_texts WHERE version_id = ANY(:ids)"
    return {int(i) for (i,) in _rows(engine, sql, ids=list(ids))}


def delete(engine: Engine, ids: Sequence[int]) -> None:
    if not ids:
        return
    with _translated(), engine.begin() as conn:
        conn.execute(text("DELETE FROM search_texts WHERE version_id = ANY(:ids)"),
                     {"ids": list(ids)})  # fmt: skip


def required_trigrams(engine: Engine, schema: str, terms: Sequence[str]) -> list[list[str]]:
    """For each term, the trigrams (as pg_trgm's ``show_trgm`` writes them)
    that every text containing it, case aside, has too.

    ``show_trgm`` pads each word with spaces, so "abc" gives "  a", " ab",
    "abc", "bc "; inside a longer word ("xabcx") the padded ones are absent.
    Those that stay when the term is wrapped in a letter, with two different
    letters (one could be the term's own first letter), are the ones that do
    not depend on the term's neighbours. pg_trgm itself splits the words,
    lower-cases them and hashes multi-byte trigrams, so the two sides agree."""
    if not terms:
        return []
    trigrams = _show_trgm(schema)
    with _translated(), engine.connect() as conn:
        sql = (
            f"SELECT ARRAY(SELECT unnest({trigrams}(t))"
            f" INTERSECT SELECT unnest({trigrams}('q' || t || 'q'))"
            f" INTERSECT SELECT unnest({trigrams}('z' || t || 'z')))"
            " FROM unnest(CAST(:terms AS text[])) WITH ORDINALITY AS u(t, n) ORDER BY n"
        )
        return [sorted(found) for (found,) in conn.execute(text(sql), {"terms": list(terms)})]


_INSERT = text(
    "INSERT INTO search_texts (version_id, watch_id, seq, captured_at, sha256, kinds, title, body)"
    " VALUES (:version_id, :watch_id, :seq, :captured_at, :sha256, :kinds, :title, :body)"
    " ON CONFLICT (version_id) DO NOTHING"
)

#: A batch this large (a first build) lets the GIN indexes' pending lists grow
#: to 64 MB, and merges them with as much memory: three times faster than the
#: default 4 MB (then the next small batch merges what is pending).
BULK = 100


def insert(engine: Engine, documents: Sequence[Document]) -> None:
    """Add the documents in one transaction; a version already there (another
    server indexed it meanwhile) is left as it is."""
    if not documents:
        return
    rows = [
        {"version_id": d.head.version_id, "watch_id": d.head.watch_id, "seq": d.head.seq,
         "captured_at": d.head.captured_at, "sha256": d.head.sha256, "kinds": d.kinds,
         "title": _storable(d.head.title), "body": _storable(d.body)}
        for d in documents
    ]  # fmt: skip
    with _translated(), engine.begin() as conn:
        if len(rows) >= BULK:
            conn.execute(text("SET LOCAL gin_pending_list_limit = '64MB'"))
            conn.execute(text("SET LOCAL work_mem = '64MB'"))
        conn.execute(_INSERT, rows)


def merge_pending(engine: Engine) -> None:
    """Merge the trigram indexes' pending lists now (after a bulk build)
    rather than in the next catch-up, before someone's search; only the
    table's owner may, and autovacuum does it anyway."""
    try:
        with _translated(), engine.begin() as conn:
            for name in TRIGRAM_INDEXES:
                conn.execute(text("SELECT gin_clean_pending_list(CAST(:name AS regclass))"),
                             {"name": name})  # fmt: skip
    except StoreError as exc:
        log.debug("search: pending trigram entries left to autovacuum: %s", exc)


def _storable(value: str) -> str:
    """PostgreSQL text holds no NUL and only valid UTF-8 (no lone surrogates)."""
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


# One matching row: where each term is in the body (b0, b1, …: 0 when it is
# not; one reading of the text per term, which PostgreSQL decompresses each
# time) and the part of the text around the first, which the snippet is cut
# from: not all of a 125,000-character live blog.
_ROW = """
SELECT t.version_id, t.watch_id, t.seq, t.captured_at, t.title,
       substr(t.body, e.at, :span + 1), e.at - 1
FROM search_texts t
CROSS JOIN LATERAL (SELECT {positions} OFFSET 0) f
CROSS JOIN LATERAL (SELECT greatest(1, coalesce(least({found}), 1) - :before) AS at) e
WHERE {matches}"""

# Candidates from the trigram indexes alone (ids, times, what the filters
# need), newest first; the texts of the newest read one by one until the page
# is full.
_FIND_BY_TRIGRAMS = f"""
WITH candidates AS MATERIALIZED (
    SELECT version_id, watch_id, captured_at, kinds FROM search_texts t WHERE {{trigrams}}
)
SELECT m.* FROM (SELECT version_id, captured_at FROM candidates t WHERE {{filters}}
                 ORDER BY captured_at DESC, version_id DESC OFFSET 0) c
CROSS JOIN LATERAL ({_ROW} AND t.version_id = c.version_id) m
ORDER BY c.captured_at DESC, c.version_id DESC
LIMIT :limit
"""

# No term has a trigram: every text is a candidate, newest first.
_FIND_BY_READING = f"""{_ROW} AND {{filters}}
ORDER BY t.captured_at DESC, t.version_id DESC
LIMIT :limit
"""

#: Characters of a text returned before the first term found, and in all:
#: room for a snippet (watcher.search.core.SNIPPET_CHARS) on either side.
EXCERPT_BEFORE = 400
EXCERPT_CHARS = 1200


@dataclass(frozen=True, slots=True)
class _Statement:
    sql: str  # fixed text: every value is a bound parameter
    params: dict[str, Any]
    #: The candidates come from the trigram indexes. The planner cannot know
    #: that computing a text's trigrams takes milliseconds: it would rather
    #: read every row and compute them (12 s for 5,000 versions) than use the
    #: indexes, so sequential scans are off for the statement.
    by_trigrams: bool

    def run(self, conn: Connection, prefix: str = "") -> list[tuple[Any, ...]]:
        if self.by_trigrams:
            conn.execute(text("SET LOCAL enable_seqscan = off"))
        return [tuple(r) for r in conn.execute(text(prefix + self.sql), self.params)]


def find(engine: Engine, schema: str | None, query: TextQuery) -> list[TextRow]:
    """The rows matching ``query``, newest capture first, at most ``limit``;
    ``schema``: pg_trgm's (None: no trigram indexes, every text is read)."""
    with _translated(), engine.connect() as conn:
        rows = _statement(schema, query).run(conn)
        conn.rollback()
    return [TextRow(int(i), int(w), int(s), int(at), t or "", (b or "")[:EXCERPT_CHARS],
                    int(o), more=len(b or "") > EXCERPT_CHARS)
            for i, w, s, at, t, b, o in rows]  # fmt: skip


def _statement(schema: str | None, query: TextQuery) -> _Statement:
    """:func:`find`'s SQL and its parameters.

    A term is in a text when ``strpos(lower(text), lower(term))`` finds it:
    what ``ILIKE '%term%'`` does, without a pattern to escape, and telling
    where. ``lower`` costs ~5 ms on a 125,000-character text, so a term with
    no letter that has a case (Chinese, digits) is looked for as it is."""
    show_trgm = _show_trgm(schema) if schema else ""
    trigrams: list[str] = []
    params: dict[str, Any] = {"limit": query.limit, "before": EXCERPT_BEFORE,
                              "span": EXCERPT_CHARS}  # fmt: skip
    for n, term in enumerate(query.terms):
        if show_trgm and term.trigrams:
            trigrams.append(f"({show_trgm}(t.title) @> CAST(:g{n} AS text[])"
                            f" OR {show_trgm}(t.body) @> CAST(:g{n} AS text[]))")  # fmt: skip
            params[f"g{n}"] = list(term.trigrams)
        params[f"t{n}"] = term.text
    numbered = list(enumerate(query.terms))
    filters, filter_params = _filters(query)
    sql = (_FIND_BY_TRIGRAMS if trigrams else _FIND_BY_READING).format(
        trigrams=" AND ".join(trigrams),
        filters=" AND ".join(filters),
        positions=", ".join(f"{_in(n, t, 't.body')} AS b{n}" for n, t in numbered) or "0 AS b0",
        found=", ".join(f"nullif(f.b{n}, 0)" for n, _ in numbered) or "NULL",
        matches=" AND ".join(f"(f.b{n} > 0 OR {_in(n, t, 't.title')} > 0)" for n, t in numbered)
        or "TRUE",
    )
    return _Statement(sql, {**params, **filter_params}, by_trigrams=bool(trigrams))


def _in(n: int, term: TermMatch, column: str) -> str:
    """Where term ``n`` first is in ``column``, from 1; 0 when it is not."""
    if term.text.lower() == term.text == term.text.upper():  # no letter with a case
        return f"strpos({column}, :t{n})"
    return f"strpos(lower({column}), lower(:t{n}))"


def _filters(query: TextQuery) -> tuple[list[str], dict[str, Any]]:
    conditions = ["TRUE"]
    params: dict[str, Any] = {}
    if query.watch_ids is not None:
        conditions.append("t.watch_id = ANY(:watch_ids)")
        params["watch_ids"] = [int(i) for i in query.watch_ids]
    if query.kind:
        conditions.append("(' ' || t.kinds || ' ') LIKE :kind")
        params["kind"] = f"% {query.kind} %"
    if query.before is not None:
        conditions.append("(t.captured_at, t.version_id) < (:at, :version_id)")
        params["at"], params["version_id"] = query.before
    return conditions, params


def explain(engine: Engine, schema: str | None, query: TextQuery, *, analyze: bool = False) -> str:
    """PostgreSQL's plan for :func:`find`, as :func:`find` runs it (tests and
    benchmarks check that the trigram indexes are used); ``analyze`` runs it."""
    with _translated(), engine.connect() as conn:
        rows = _statement(schema, query).run(conn, "EXPLAIN (ANALYZE) " if analyze else "EXPLAIN ")
        conn.rollback()
    return "\n".join(str(r[0]) for r in rows)
