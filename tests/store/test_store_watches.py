"""Watches: add, list, remove, state; on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

import pytest

from tests.store.conftest import change_of
from watcher.store import Store, VersionRecord, WatchState

URL = "https://news.example.com/2024/05/article.html"


def add_version(store: Store, watch_id: int, text: str, *, title: str = "T") -> VersionRecord:
    return store.add_version(
        watch_id,
        captured_at=1_700_000_000_000,
        content_sha256=hashlib.sha256(text.encode()).hexdigest(),
        content_text=text,
        http_status=200,
        final_url=URL,
        title=title,
        archive_path=f"news.example.com/{hashlib.md5(text.encode()).hexdigest()}.txt",
        page_metadata={"og_title": title},
    )


def test_add_watch_creates_due_active_watch(store: Store) -> None:
    watch, created = store.add_watch(
        URL, site="news.example.com", interval_s=600, tags=["cn", "cn"], now_ms=1000
    )
    assert created
    assert watch.url == URL
    assert watch.site == "news.example.com"
    assert watch.interval_s == 600
    assert watch.state is WatchState.ACTIVE
    assert watch.tags == ("cn",)
    assert watch.next_check_at == watch.created_at == 1000
    assert (watch.failure_count, watch.unchanged_count) == (0, 0)
    assert watch.claimed_by is None
    assert store.get_watch(URL) == watch
    assert store.get_watch_by_id(watch.id) == watch


def test_adding_twice_returns_existing_and_merges_tags(store: Store) -> None:
    first, _ = store.add_watch(URL, site="news.example.com", tags=["a"], now_ms=1000)
    again, created = store.add_watch(URL, site="ignored", tags=["b", "a"], now_ms=5000)
    assert not created
    assert again.id == first.id
    assert again.created_at == 1000
    assert again.site == "news.example.com"
    assert again.tags == ("a", "b")
    assert len(store.list_watches()) == 1


def test_unknown_watch_is_none(store: Store) -> None:
    assert store.get_watch(URL) is None
    assert store.get_watch_by_id(999) is None
    assert store.remove_watch(URL) is False
    assert store.set_state(URL, WatchState.PAUSED) is False


def test_list_watches_summarises_history(store: Store) -> None:
    a, _ = store.add_watch(URL, site="news.example.com", now_ms=1000)
    b, _ = store.add_watch(URL + "?b", site="news.example.com", now_ms=2000)
    add_version(store, a.id, "one", title="First title")
    add_version(store, a.id, "two", title="Second title")
    store.release(
        a.id,
        next_check_at=9000,
        failure_count=0,
        unchanged_count=0,
        last_checked_at=3000,
        last_change_at=3000,
    )
    summaries = store.list_watches()
    assert [s.id for s in summaries] == [a.id, b.id]
    first, second = summaries
    assert first.version_count == 2
    assert first.latest_title == "Second title"
    assert (first.last_checked_at, first.last_change_at, first.next_check_at) == (3000, 3000, 9000)
    assert second.version_count == 0
    assert second.latest_title is None
    assert second.last_checked_at is None


def test_remove_watch_deletes_history_and_unshared_contents(store: Store) -> None:
    a, _ = store.add_watch(URL, site="s", now_ms=1)
    b, _ = store.add_watch(URL + "?b", site="s", now_ms=1)
    v1 = add_version(store, a.id, "shared text")
    v2 = add_version(store, a.id, "only in a")
    store.add_change(
        change_of("paragraph_edited"), watch_id=a.id, old_version_id=v1.id, new_version_id=v2.id
    )
    store.record_check(a.id, checked_at=5, outcome="new_version", version_id=v2.id)
    shared = add_version(store, b.id, "shared text")

    assert store.remove_watch(URL) is True
    assert store.get_watch(URL) is None
    assert store.versions(a.id) == []
    assert store.changes(a.id) == []
    assert store.recent_checks(a.id) == []
    assert store.version_text(shared.id) == "shared text"
    assert [w.url for w in store.list_watches()] == [URL + "?b"]
    # The content only a used is gone: re-adding it inserts it afresh.
    c, _ = store.add_watch(URL, site="s", now_ms=2)
    assert store.version_text(add_version(store, c.id, "only in a").id) == "only in a"


def test_set_state(store: Store) -> None:
    store.add_watch(URL, site="s", now_ms=1)
    assert store.set_state(URL, "paused") is True
    assert store.get_watch(URL).state is WatchState.PAUSED  # type: ignore[union-attr]
    assert store.set_state(URL, WatchState.ACTIVE) is True
    assert store.get_watch(URL).state is WatchState.ACTIVE  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        store.set_state(URL, "sleeping")
