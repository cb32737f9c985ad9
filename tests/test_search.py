"""The full-text index (watcher/search.py) over a real database, SQLite and
PostgreSQL: incremental catch-up, reconciliation, trigram and short-term
queries, filters and cursor pages."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

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
from watcher.search import INDEX_NAME, LOOKBACK, SearchIndex, open_index, terms
from watcher.store import Store


@pytest.fixture
def index(tmp_path: Path) -> SearchIndex:
    return open_index(tmp_path / "home")


def seqs(index: SearchIndex, query: str, **kwargs: object) -> list[int]:
    return [h.seq for h in index.search(query, **kwargs).hits]  # type: ignore[arg-type]


def test_a_removed_phrase_is_found_only_in_the_version_that_had_it(
    store: Store, index: SearchIndex
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


def test_terms_shorter_than_three_characters_use_like(store: Store, index: SearchIndex) -> None:
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
    store: Store, index: SearchIndex
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
    store: Store, index: SearchIndex
) -> None:
    """PostgreSQL hands out ids before commit: id 5 may commit after id 6.
    Simulated by forgetting an indexed row below the highest."""
    watch = edited_history(store)
    index.catch_up(store)
    first = store.versions(watch.id)[0]
    with sqlite3.connect(index.path) as conn:
        conn.execute("DELETE FROM versions WHERE version_id = ?", (first.id,))
        conn.execute("DELETE FROM texts WHERE rowid = ?", (first.id,))
    assert seqs(index, "quietly") == []
    assert LOOKBACK > 3
    index.catch_up(store)
    assert seqs(index, "quietly") == [1]


def test_filters_and_cursor_pages(store: Store, index: SearchIndex) -> None:
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


def test_the_index_is_one_file_in_the_data_folder(tmp_path: Path, store: Store) -> None:
    edited_history(store)
    index = open_index(tmp_path)
    index.catch_up(store)
    assert index.path == tmp_path / INDEX_NAME and index.path.is_file()
    again = SearchIndex(tmp_path / INDEX_NAME)  # reopened: nothing to do
    assert again.count() == 3 and again.reconcile(store) == 0
