"""Versions, contents, checks and changes, and the all-or-nothing transaction."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.store.conftest import change_of
from watcher.errors import StoreError
from watcher.models import change_from_dict
from watcher.store import ChangeVerdict, CheckOutcome, Repository, Store, VersionRecord
from watcher.store.tables import ChangeRow, Check, Content, Version

URL = "https://news.example.com/a.html"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def add_version(
    store: Repository, watch_id: int, text: str, captured_at: int = 1000
) -> VersionRecord:
    return store.add_version(
        watch_id,
        captured_at=captured_at,
        content_sha256=sha(text),
        content_text=text,
        http_status=200,
        final_url=URL,
        title=f"title of {text}",
        archive_path=f"news.example.com/{captured_at}.txt",
        page_metadata={"canonical_url": URL},
        created_at=captured_at + 1,
    )


def count(store: Store, table: type) -> int:
    with Session(store.engine) as s:
        return s.scalar(select(func.count()).select_from(table)) or 0


@pytest.fixture
def watch_id(store: Store) -> int:
    return store.add_watch(URL, site="news.example.com", now_ms=1)[0].id


def test_versions_get_increasing_seq_and_share_content(store: Store, watch_id: int) -> None:
    v1 = add_version(store, watch_id, "body A", 1000)
    v2 = add_version(store, watch_id, "body B", 2000)
    v3 = add_version(store, watch_id, "body A", 3000)
    assert [v.seq for v in (v1, v2, v3)] == [1, 2, 3]
    assert v1.content_sha256 == v3.content_sha256 == sha("body A")
    assert count(store, Content) == 2
    assert store.versions(watch_id) == [v1, v2, v3]
    assert store.latest_version(watch_id) == v3
    assert store.get_version(v2.id) == v2
    assert v2.page_metadata == {"canonical_url": URL}
    assert (v2.title, v2.archive_path, v2.created_at) == (
        "title of body B",
        "news.example.com/2000.txt",
        2001,
    )
    assert store.version_text(v2.id) == "body B"


def test_seq_is_per_watch(store: Store, watch_id: int) -> None:
    other = store.add_watch(URL + "?2", site="news.example.com", now_ms=1)[0].id
    add_version(store, watch_id, "x")
    assert add_version(store, other, "x").seq == 1
    assert add_version(store, watch_id, "y").seq == 2


def test_no_versions(store: Store, watch_id: int) -> None:
    assert store.latest_version(watch_id) is None
    assert store.versions(watch_id) == []
    assert store.find_version_by_content(watch_id, sha("x")) is None
    with pytest.raises(StoreError, match="no stored version"):
        store.version_text(424242)


def test_find_version_by_content_returns_latest_match(store: Store, watch_id: int) -> None:
    add_version(store, watch_id, "original", 1000)
    add_version(store, watch_id, "edited", 2000)
    reverted = add_version(store, watch_id, "original", 3000)
    add_version(store, watch_id, "edited again", 4000)
    found = store.find_version_by_content(watch_id, sha("original"))
    assert found == reverted
    other = store.add_watch(URL + "?2", site="news.example.com", now_ms=1)[0].id
    assert store.find_version_by_content(other, sha("original")) is None


def test_checks_are_recorded_and_read_newest_first(store: Store, watch_id: int) -> None:
    version = add_version(store, watch_id, "v")
    first = store.record_check(
        watch_id,
        checked_at=100,
        outcome=CheckOutcome.NEW_VERSION,
        duration_ms=12.6,
        http_status=200,
        final_url=URL,
        redirects=["http://news.example.com/a.html", URL],
        etag='"e"',
        last_modified="Tue, 01 Oct 2024 00:00:00 GMT",
        body_sha256="b" * 64,
        version_id=version.id,
    )
    second = store.record_check(watch_id, checked_at=200, outcome="error", error="timed out")
    newest, oldest = store.recent_checks(watch_id, limit=10)
    assert (newest.id, oldest.id) == (second, first)
    assert newest.outcome is CheckOutcome.ERROR
    assert newest.error == "timed out"
    assert newest.redirects == ()
    assert oldest.duration_ms == 13
    assert oldest.redirects == ("http://news.example.com/a.html", URL)
    assert oldest.version_id == version.id
    assert store.recent_checks(watch_id, limit=1) == [newest]
    with pytest.raises(ValueError):
        store.record_check(watch_id, checked_at=1, outcome="exploded")


def test_errors_since_counts_only_recent_errors(store: Store, watch_id: int) -> None:
    for at, outcome in [(100, "error"), (200, "unchanged"), (300, "error"), (400, "error")]:
        store.record_check(watch_id, checked_at=at, outcome=outcome)
    assert store.errors_since(0) == 3
    assert store.errors_since(300) == 2
    assert store.errors_since(401) == 0


def test_record_check_applies_retention(store: Store, watch_id: int) -> None:
    """Only the watch being checked is pruned; without a retention all is kept."""
    other = store.add_watch(URL + "?2", site="news.example.com", now_ms=1)[0].id
    store.record_check(other, checked_at=1, outcome="unchanged")
    small = Store(store.engine, check_retention=3)
    ids = [small.record_check(watch_id, checked_at=i, outcome="unchanged") for i in range(5)]
    assert [c.id for c in small.recent_checks(watch_id)] == ids[:-4:-1]
    assert len(store.recent_checks(other)) == 1
    store.record_check(watch_id, checked_at=9, outcome="unchanged")
    assert len(store.recent_checks(watch_id, limit=100)) == 4


def test_changes_stored_and_read_back(store: Store, watch_id: int) -> None:
    v1 = add_version(store, watch_id, "a")
    v2 = add_version(store, watch_id, "b")
    v3 = add_version(store, watch_id, "a")
    edit = change_of("paragraph_edited")
    c1 = store.add_change(
        edit, watch_id=watch_id, old_version_id=v1.id, new_version_id=v2.id, created_at=50
    )
    c2 = store.add_change(
        change_of("relative_time", significant=False),
        watch_id=watch_id,
        old_version_id=v2.id,
        new_version_id=v3.id,
        reverted_to_version_id=v1.id,
    )
    first, second = store.changes(watch_id)
    assert (first.id, second.id) == (c1, c2)
    assert first.url == URL
    assert first.verdict is ChangeVerdict.SIGNIFICANT
    assert first.kinds == ("paragraph_edited",)
    assert first.summary == "1 paragraph edited"
    assert change_from_dict(first.record) == edit
    assert first.created_at == 50
    assert second.reverted_to_version_id == v1.id
    assert store.change(c2) == second
    assert store.change(424242) is None


def test_changes_after_an_id_are_read_over_all_watches_in_id_order(
    store: Store, watch_id: int
) -> None:
    other = store.add_watch(URL + "?b", site="news.example.com", now_ms=1)[0].id
    made = []
    for n, watch in enumerate([watch_id, other, watch_id, other]):
        old, new = add_version(store, watch, f"{n}a"), add_version(store, watch, f"{n}b")
        made.append(store.add_change(change_of("title"), watch_id=watch, old_version_id=old.id,
                                     new_version_id=new.id, created_at=100 * (n + 1)))  # fmt: skip
    assert [c.id for c in store.changes_after(0)] == made
    assert [c.id for c in store.changes_after(made[0], limit=2)] == made[1:3]
    assert [c.id for c in store.changes_after(0, since_ms=300)] == made[2:]
    assert [c.watch_id for c in store.changes_after(0)] == [watch_id, other, watch_id, other]
    assert store.changes_after(made[-1]) == []


def test_transaction_commits_all_writes_together(store: Store, watch_id: int) -> None:
    old = add_version(store, watch_id, "old")
    with store.transaction() as tx:
        new = add_version(tx, watch_id, "new")
        assert tx.latest_version(watch_id) == new  # reads see the open transaction
        change = tx.add_change(
            change_of("title"), watch_id=watch_id, old_version_id=old.id, new_version_id=new.id
        )
        tx.record_check(watch_id, checked_at=5, outcome="new_version", version_id=new.id)
    assert store.latest_version(watch_id) == new
    assert [c.id for c in store.changes(watch_id)] == [change]
    assert store.recent_checks(watch_id)[0].version_id == new.id


def test_transaction_rolls_back_everything_on_error(store: Store, watch_id: int) -> None:
    old = add_version(store, watch_id, "old")
    before = {table: count(store, table) for table in (Content, Version, ChangeRow, Check)}

    class Crash(Exception):
        pass

    with pytest.raises(Crash), store.transaction() as tx:
        new = add_version(tx, watch_id, "brand new text")
        tx.add_change(
            change_of("title"), watch_id=watch_id, old_version_id=old.id, new_version_id=new.id
        )
        tx.record_check(watch_id, checked_at=5, outcome="new_version", version_id=new.id)
        raise Crash

    assert {table: count(store, table) for table in before} == before
    assert store.latest_version(watch_id) == old
    # The next attempt reuses seq 2: nothing of the failed one remains.
    assert add_version(store, watch_id, "brand new text").seq == 2


def test_transaction_database_error_is_store_error_and_rolls_back(
    store: Store, watch_id: int
) -> None:
    with pytest.raises(StoreError), store.transaction() as tx:
        tx.record_check(watch_id, checked_at=5, outcome="unchanged")
        tx.add_change(change_of(), watch_id=watch_id, old_version_id=999, new_version_id=998)
    assert store.recent_checks(watch_id) == []


def test_histories_read_in_batches_what_each_watch_reads_alone(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report site's batch read: every watch (across chunks) with the same
    versions and changes as versions()/changes() give it; unknown ids skipped."""
    monkeypatch.setattr("watcher.store.repository.HISTORY_CHUNK", 2)
    ids = []
    for n in range(5):
        wid = store.add_watch(f"{URL}?n={n}", site="news.example.com", now_ms=1)[0].id
        ids.append(wid)
        versions = [add_version(store, wid, f"w{n} v{k}", captured_at=1000 + k) for k in range(n)]
        for old, new in itertools.pairwise(versions):
            store.add_change(
                change_of("paragraph_edited"),
                watch_id=wid,
                old_version_id=old.id,
                new_version_id=new.id,
                created_at=new.captured_at,
            )
    found = list(store.histories([*reversed(ids), 999_999]))
    assert [watch.id for watch, _, _ in found] == ids
    for watch, versions, changes in found:
        assert watch == store.get_watch_by_id(watch.id)
        assert versions == store.versions(watch.id)
        assert changes == store.changes(watch.id)
    assert [len(v) for _, v, _ in found] == [0, 1, 2, 3, 4]
