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


def _release(store: Store, watch_id: int, **kwargs: object) -> None:
    store.release(
        watch_id,
        next_check_at=9000,
        failure_count=1,
        unchanged_count=0,
        last_checked_at=3000,
        **kwargs,  # type: ignore[arg-type]
    )


def test_release_records_keeps_and_clears_the_last_error(store: Store) -> None:
    watch, _ = store.add_watch(URL, site="s", now_ms=1)
    _release(store, watch.id, last_error="HTTP 500")
    assert store.get_watch(URL).last_error == "HTTP 500"  # type: ignore[union-attr]
    _release(store, watch.id)  # left at KEEP: a release that says nothing of errors
    assert store.get_watch_by_id(watch.id).last_error == "HTTP 500"  # type: ignore[union-attr]
    assert store.list_watches()[0].last_error == "HTTP 500"
    _release(store, watch.id, last_error=None)  # None is explicit: the check succeeded
    assert store.get_watch(URL).last_error is None  # type: ignore[union-attr]


def test_update_watch_sets_interval_tags_and_due_time_only(store: Store) -> None:
    watch, _ = store.add_watch(URL, site="s", interval_s=600, tags=["a"], now_ms=1)
    store.set_state(URL, WatchState.FAILING)
    [claimed] = store.claim("w", [watch.id], 5, lease_ms=1000)
    assert store.update_watch(URL, interval_s=None, tags=["b", "b", "c"], next_check_at=42)
    after = store.get_watch(URL)
    assert after is not None
    assert (after.interval_s, after.tags, after.next_check_at) == (None, ("b", "c"), 42)
    assert (after.state, after.claimed_by, after.claimed_until) == (
        WatchState.FAILING, "w", claimed.claimed_until,
    )  # fmt: skip
    assert store.update_watch(URL + "?other", interval_s=60, tags=[], next_check_at=1) is False


def test_list_watches_of_some_urls(store: Store) -> None:
    for n in range(3):
        store.add_watch(f"{URL}?{n}", site="s", now_ms=n)
    wanted = [f"{URL}?2", f"{URL}?0", f"{URL}?missing"]
    assert [w.url for w in store.list_watches(urls=wanted)] == [f"{URL}?0", f"{URL}?2"]


def test_a_removed_watch_is_never_claimed_and_a_check_ending_does_not_revive_it(
    store: Store,
) -> None:
    watch, _ = store.add_watch(URL, site="s", now_ms=1)
    add_version(store, watch.id, "kept")
    [claimed] = store.claim("w", [watch.id], 2, lease_ms=1000)
    assert store.set_state(URL, WatchState.REMOVED)  # while a check runs
    _release(store, claimed.id, state=WatchState.ACTIVE, last_error=None)
    after = store.get_watch(URL)
    assert after is not None and after.state is WatchState.REMOVED
    assert store.claim_due("w", 10_000_000, 10, 1000) == []
    assert store.due_count(10_000_000) == 0
    assert [v.content_sha256 for v in store.versions(watch.id)] == [
        hashlib.sha256(b"kept").hexdigest()
    ]
