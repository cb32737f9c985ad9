"""The full-text index (watcher/search/) over a real database: the FTS5 file
on SQLite, the pg_trgm table on PostgreSQL (each test runs on both, through
``open_index``): incremental catch-up, reconciliation, trigram and short-term
queries, filters and cursor pages; then what only PostgreSQL's has (the
migration, servers catching up at once, the foreign key, the GIN indexes)."""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from tests.test_serve import (
    CHINESE,
    KEPT,
    MINUTE,
    REMOVED,
    T0,
    edited_history,
    hostile_history,
    snap,
    store_history,
)
from watcher import api
from watcher.errors import WatcherError
from watcher.search import (
    INDEX_NAME,
    LOOKBACK,
    PgSearchIndex,
    SearchIndex,
    open_index,
    terms,
)
from watcher.search import core as search_core
from watcher.store import Store, current_revision, open_engine, upgrade
from watcher.store import searchtexts as texts
from watcher.store.tables import TRIGRAM_INDEXES

Index = SearchIndex | PgSearchIndex


@pytest.fixture
def index(tmp_path: Path, store: Store) -> Index:
    return open_index(tmp_path / "home", store)


def seqs(index: Index, query: str, **kwargs: object) -> list[int]:
    return [h.seq for h in index.search(query, **kwargs).hits]  # type: ignore[arg-type]


def forget(index: Index, version_id: int) -> None:
    """Drop one version from the index behind its back."""
    if isinstance(index, SearchIndex):
        with sqlite3.connect(index.path) as conn:
            conn.execute("DELETE FROM versions WHERE version_id = ?", (version_id,))
            conn.execute("DELETE FROM texts WHERE rowid = ?", (version_id,))
        return
    with index.engine.begin() as conn:
        conn.execute(text("DELETE FROM search_texts WHERE version_id = :i"), {"i": version_id})


def test_a_removed_phrase_is_found_only_in_the_version_that_had_it(
    store: Store, index: Index
) -> None:
    watch = edited_history(store)
    assert index.catch_up(store)
    assert index.count() == 3
    [hit] = index.search(f'"{REMOVED}"').hits
    assert (hit.watch_id, hit.seq) == (watch.id, 1)
    assert hit.version_id == store.versions(watch.id)[0].id
    assert REMOVED in hit.snippet
    assert [hit.snippet[a:b] for a, b in hit.marks] == [REMOVED]
    assert seqs(index, CHINESE) == [1]
    assert seqs(index, CHINESE[2:6]) == [1]  # any 3+ characters of it
    assert seqs(index, KEPT) == [3, 2, 1]  # newest first
    assert seqs(index, "embargo TALKS") == [3, 2, 1]  # every term, any case, title too
    assert seqs(index, "quietly Vienna") == []
    assert seqs(index, "quietly lifted") == [1]  # both words, anywhere
    assert seqs(index, '"lifted quietly"') == []  # the phrase, as written


def test_terms_shorter_than_three_characters_use_like(store: Store, index: Index) -> None:
    url = "https://news.example/short"
    store_history(store, url, [snap(url, "短", ["拜登说 100% of it", "no percent here"], T0),
                               snap(url, "短", ["习近平说", "no percent here"], T0 + MINUTE)])  # fmt: skip
    index.catch_up(store)
    assert seqs(index, "拜登") == [1]
    assert seqs(index, "近平") == [2]
    assert seqs(index, "% of") == [1]  # % is a character, not a wildcard
    assert seqs(index, "_") == []
    assert seqs(index, "短") == [2, 1]  # the title counts
    assert seqs(index, "拜登 percent") == [1]


def test_catch_up_is_incremental_and_reconcile_drops_purged_watches(
    store: Store, index: Index
) -> None:
    edited = edited_history(store)
    index.reconcile(store)
    hostile = hostile_history(store)
    assert index.catch_up(store)
    assert index.count() == 5
    assert {h.watch_id for h in index.search("paragraph").hits} == {hostile.id}
    api.remove_watches(store, [hostile.url], purge=True)
    index.catch_up(store)  # a purged watch leaves at once
    assert index.count() == 3
    assert index.search("paragraph").hits == ()
    assert seqs(index, "Geneva") == [2, 1]
    assert edited.id in {h.watch_id for h in index.search("Geneva").hits}


def test_a_version_committed_late_below_the_highest_id_is_still_indexed(
    store: Store, index: Index
) -> None:
    """PostgreSQL hands out ids before commit: id 5 may commit after id 6.
    Simulated by forgetting an indexed row below the highest."""
    watch = edited_history(store)
    index.catch_up(store)
    forget(index, store.versions(watch.id)[0].id)
    assert seqs(index, "quietly") == []
    assert LOOKBACK > 3
    index.catch_up(store)
    assert seqs(index, "quietly") == [1]


def test_filters_and_cursor_pages(store: Store, index: Index) -> None:
    edited = edited_history(store)
    hostile = hostile_history(store)
    index.catch_up(store)
    assert {h.watch_id for h in index.search("the", watch_ids=[edited.id]).hits} == {edited.id}
    assert index.search("the", watch_ids=[]).hits == ()
    assert seqs(index, "paragraph", kind="title") == [2]
    seen: list[int] = []
    cursor = None
    while True:
        page = index.search("e", limit=2, cursor=cursor)  # every version has an "e"
        seen += [h.version_id for h in page.hits]
        cursor = page.next_cursor
        if cursor is None:
            break
    every = [v.id for w in (edited, hostile) for v in store.versions(w.id)]
    assert sorted(seen) == sorted(every) and len(seen) == len(set(seen))
    with pytest.raises(WatcherError, match="bad cursor"):
        index.search("the", cursor="1.2.3")
    with pytest.raises(WatcherError, match="search for"):
        terms("   ")


def test_the_index_is_a_file_in_the_data_folder_on_sqlite_and_a_table_on_postgresql(
    tmp_path: Path, store: Store, dialect: str
) -> None:
    edited_history(store)
    index = open_index(tmp_path, store)
    index.catch_up(store)
    if dialect == "sqlite":
        assert isinstance(index, SearchIndex)
        assert index.path == tmp_path / INDEX_NAME and index.path.is_file()
    else:
        assert isinstance(index, PgSearchIndex) and index.schema is not None
        assert list(tmp_path.iterdir()) == []
    again = open_index(tmp_path, store)  # reopened: nothing to do
    assert again.count() == 3 and again.reconcile(store) == 0


def test_every_version_holding_the_terms_is_found_and_no_other(store: Store, index: Index) -> None:
    """Terms cut at random from the stored texts (Chinese, Latin, punctuation,
    any case, across word boundaries): the index agrees with reading every
    text, so no trigram a term needs is ever missing from a text that has it.
    (Latin letters are ASCII here: FTS5's LIKE, for short terms, folds no other.)"""
    edited_history(store)
    hostile_history(store)
    url = "https://news.example/zh"
    store_history(store, url, [
        snap(url, "拜登和习近平会晤", ["拜登和习近平周三在旧金山会晤，讨论台湾、芬太尼与军事沟通。",
                                  "O'Brien's note: 100% (sic) — \\escaped\\ _under_ score."], T0),
        snap(url, "会晤结束", ["双方同意恢复军事沟通渠道。", "Geneva: SUMMER, summer."], T0 + MINUTE),
    ])  # fmt: skip
    index.reconcile(store)
    documents = [
        (head.version_id, (head.title + "\n" + search_core.document_text(store, head)).lower())
        for head in texts.versions_above(store.engine, 0)
    ]
    rng = random.Random(12)
    for _ in range(150):
        wanted = [cut(rng, rng.choice(documents)[1]) for _ in range(rng.choice((1, 1, 2)))]
        query = " ".join(f'"{t}"' if " " in t else t for t in wanted)
        expected = {i for i, text_ in documents if all(t.lower() in text_ for t in wanted)}
        found = {h.version_id for h in index.search(query, limit=100).hits}
        assert found == expected, query


def test_accented_capitals_match_their_small_letters(store: Store, index: Index) -> None:
    url = "https://news.example/fr"
    store_history(store, url, [snap(url, "L'ÉTÉ À GENÈVE", ["Un été sans fin."], T0)])
    index.catch_up(store)
    assert seqs(index, "été") == [1] and seqs(index, "GENÈVE") == [1]
    assert seqs(index, '"à genève"') == [1]


def test_snippets_are_cut_around_the_first_term_however_long_the_text(
    store: Store, index: Index
) -> None:
    """PostgreSQL returns only the part of a text around the first term found:
    the snippets are the ones cut from the whole text."""
    filler = [f"Paragraph {n} of a long live blog, with nothing to find in it." for n in range(300)]
    url = "https://news.example/live"
    bodies = [[*filler[:150], "The Minister RESIGNED at noon.", *filler[150:]],
              ["Resigned, said the first line.", *filler],
              [*filler, "He resigned; the last line."]]  # fmt: skip
    store_history(store, url, [snap(url, "Live", body, T0 + n * MINUTE)
                               for n, body in enumerate(bodies)])  # fmt: skip
    index.catch_up(store)
    hits = index.search("resigned").hits
    assert [h.seq for h in hits] == [3, 2, 1]
    heads = {h.version_id: h for h in texts.versions_above(store.engine, 0)}
    for hit in hits:
        whole = search_core.document_text(store, heads[hit.version_id])
        assert (hit.snippet, hit.marks) == search_core._snippet(whole, ["resigned"])
    assert hits[0].snippet.startswith("…") and not hits[0].snippet.endswith("…")
    assert not hits[1].snippet.startswith("…") and hits[1].snippet.endswith("…")
    assert hits[2].snippet.startswith("…") and hits[2].snippet.endswith("…")


def cut(rng: random.Random, text_: str) -> str:
    """A piece of ``text_`` without line breaks, double spaces or quotes, in any case."""
    while True:
        start = rng.randrange(len(text_))
        piece = text_[start : start + rng.randint(1, 14)]
        if piece.strip() == piece and "\n" not in piece and "  " not in piece and '"' not in piece:
            return "".join(c.upper() if rng.random() < 0.4 else c for c in piece)


# -- PostgreSQL's own index ------------------------------------------------------------


def extension_and_tables(url: str) -> tuple[str | None, set[str], set[str]]:
    """Where pg_trgm lives (None on SQLite or when absent), the tables, and
    the indexes of search_texts."""
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            schema = texts.trigram_schema(conn) if conn.dialect.name == "postgresql" else None
            found = inspect(conn)
            tables = set(found.get_table_names())
            indexes = {i["name"] or "" for i in found.get_indexes("search_texts")} if (
                "search_texts" in tables) else set()  # fmt: skip
    finally:
        engine.dispose()
    return schema, tables, indexes


def test_the_migration_makes_the_table_on_postgresql_and_nothing_on_sqlite(
    db_url: str, dialect: str
) -> None:
    upgrade(db_url, revision="0006")
    _, before, _ = extension_and_tables(db_url)
    upgrade(db_url)
    schema, after, indexes = extension_and_tables(db_url)
    assert current_revision(db_url) == "0007"
    if dialect == "sqlite":
        assert after == before
        return
    assert after - before == {"search_texts"}
    assert schema is not None  # here, or in the schema of the test that created it first
    assert set(TRIGRAM_INDEXES) <= indexes


@pytest.mark.postgres
def test_the_migration_creates_pg_trgm_where_the_role_may(pg_fresh_url: str) -> None:
    assert extension_and_tables(pg_fresh_url)[0] is None  # a database without it
    upgrade(pg_fresh_url)  # as a superuser
    schema, _, indexes = extension_and_tables(pg_fresh_url)
    assert schema == "public" and set(TRIGRAM_INDEXES) <= indexes
    engine = open_engine(pg_fresh_url)
    try:
        with engine.connect() as conn:
            compression = conn.execute(text(
                "SELECT attcompression FROM pg_attribute"
                " WHERE attrelid = 'search_texts'::regclass AND attname = 'body'")).scalar()  # fmt: skip
    finally:
        engine.dispose()
    assert compression == "l"  # LZ4: this server has it


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_two_servers_catching_up_at_once_index_each_version_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both read the same missing versions and write them in small batches at
    the same moment; ON CONFLICT keeps one row each, and neither fails."""
    watches = [edited_history(store, f"https://news.example/{n}") for n in range(8)]
    monkeypatch.setattr(search_core, "BATCH", 4)
    # as if both had checked for rows already written at the same instant
    monkeypatch.setattr(PgSearchIndex, "_unindexed", lambda self, ids: set(ids))
    servers = [PgSearchIndex(store), PgSearchIndex(store)]
    start = threading.Barrier(2)
    done: list[int] = []
    errors: list[BaseException] = []

    def build(index: PgSearchIndex) -> None:
        start.wait()
        try:
            done.append(index.reconcile(store))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == [] and done == [24, 24]
    ids = [h.version_id for h in servers[1].search("Geneva", limit=100).hits]
    assert len(ids) == len(set(ids)) == 16  # two versions of eight watches
    assert servers[0].count() == 24 == sum(len(store.versions(w.id)) for w in watches)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_a_server_skips_what_another_has_indexed(store: Store) -> None:
    edited_history(store)
    first, second = PgSearchIndex(store), PgSearchIndex(store)
    assert first.reconcile(store) == 3
    assert second.reconcile(store) == 0 and second.catch_up(store)
    assert seqs(second, "Geneva") == [2, 1]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_a_purged_watch_leaves_the_index_with_its_versions(store: Store) -> None:
    """No catch-up needed: the foreign key's ON DELETE CASCADE takes the rows."""
    edited = edited_history(store)
    hostile = hostile_history(store)
    index = PgSearchIndex(store)
    index.reconcile(store)
    assert {h.watch_id for h in index.search("the", limit=50).hits} == {edited.id, hostile.id}
    api.remove_watches(store, [hostile.url], purge=True)
    assert index.count() == 3
    assert {h.watch_id for h in index.search("the", limit=50).hits} == {edited.id}
    assert index.search("paragraph").hits == ()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_a_term_of_three_characters_or_more_uses_the_trigram_indexes(store: Store) -> None:
    edited_history(store)
    hostile_history(store)
    index = PgSearchIndex(store)
    index.reconcile(store)
    texts.merge_pending(store.engine)
    with store.engine.begin() as conn:
        conn.execute(text("ANALYZE search_texts"))
    for term in ("quietly", CHINESE[2:6]):
        query = index.table_query([term])
        plan = texts.explain(store.engine, index.schema, query)
        for name in TRIGRAM_INDEXES:
            assert f"Bitmap Index Scan on {name}" in plan, plan
    assert seqs(index, "quietly") == [1]


@pytest.fixture
def unprivileged_url(pg_fresh_url: str) -> Iterator[str]:
    """A database without pg_trgm, and a role that may not create it (no
    CREATE on the database), owning the schema it works in."""
    role = f"watcher_np_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_fresh_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(text(f'CREATE SCHEMA "{role}" AUTHORIZATION "{role}"'))
    url = make_url(pg_fresh_url).set(username=role)
    try:
        yield url.update_query_dict({"options": f"-csearch_path={role}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}" CASCADE'))
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


@pytest.mark.postgres
def test_without_pg_trgm_search_scans_and_the_indexes_come_once_it_is_installed(
    unprivileged_url: str, pg_fresh_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        upgrade(unprivileged_url)
    assert "cannot create the extension pg_trgm" in caplog.text
    assert "CREATE EXTENSION pg_trgm" in caplog.text  # what to do about it
    schema, tables, indexes = extension_and_tables(unprivileged_url)
    assert schema is None and "search_texts" in tables and not set(TRIGRAM_INDEXES) & indexes
    store = Store(open_engine(unprivileged_url))
    try:
        edited_history(store)
        index = PgSearchIndex(store)
        assert index.schema is None
        index.reconcile(store)
        assert seqs(index, "quietly") == [1] and seqs(index, CHINESE) == [1]  # by scanning
        superuser = create_engine(pg_fresh_url)
        with superuser.begin() as conn:
            conn.execute(text("CREATE EXTENSION pg_trgm SCHEMA public"))
        superuser.dispose()
        assert PgSearchIndex(store).schema == "public"  # the next server creates the indexes
        assert set(TRIGRAM_INDEXES) <= extension_and_tables(unprivileged_url)[2]
        assert seqs(index, "quietly") == [1]
    finally:
        store.close()
