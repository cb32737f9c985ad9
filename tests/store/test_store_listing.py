"""``watcher list`` through the driver alone: the same rows as the Store's,
on SQLite and PostgreSQL, and the ordinary path whenever it cannot be sure."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy import text

from watcher.store import Store, WatchState, upgrade
from watcher.store.listing import list_watches

SITE = "news.example.com"


def _version(store: Store, watch_id: int, body: str, title: str | None) -> None:
    store.add_version(
        watch_id, captured_at=1_700_000_000_000, content_sha256=hashlib.sha256(body.encode()).hexdigest(),
        content_text=body, http_status=200, final_url=None, title=title, archive_path=None,
        page_metadata={},
    )  # fmt: skip


def _populate(store: Store) -> None:
    """Watches in every shape a listing shows."""
    plain, _ = store.add_watch(f"https://{SITE}/a", site=SITE, now_ms=1)
    store.add_watch(f"https://{SITE}/never-checked", site=SITE, interval_s=600, now_ms=2)
    tagged, _ = store.add_watch(f"https://{SITE}/b", site=SITE, tags=["中文", "bbc"], now_ms=3)
    removed, _ = store.add_watch(f"https://{SITE}/c", site=SITE, now_ms=4)
    _version(store, plain.id, "one", "拜登和习近平视像会晤开始")
    _version(store, plain.id, "two", "拜登和习近平视像会晤结束")  # the latest title wins
    _version(store, tagged.id, "three", None)
    store.set_state(removed.url, WatchState.REMOVED)
    meta = {"source": "https://news.example.com/feed", "title": "新闻 “quoted”"}
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE watches SET last_error = :e, failure_count = 3, last_checked_at = 9,"
                " last_change_at = 8, source_meta = :m WHERE id = :i"
            ),
            {"e": "HTTP 500 Internal Server Error", "m": json.dumps(meta), "i": tagged.id},
        )


def test_the_driver_reads_what_the_store_reads(store: Store, db_url: str) -> None:
    _populate(store)
    expected = store.list_watches()
    found = list_watches(db_url)
    assert found == expected
    assert [w.source_meta for w in found] == [w.source_meta for w in expected]
    assert len(found) == 4
    assert found[2].source_meta is not None and found[2].tags == ("中文", "bbc")


def test_an_empty_database_lists_nothing(store: Store, db_url: str) -> None:
    assert list_watches(db_url) == []


def test_another_schema_is_left_to_the_store(db_url: str) -> None:
    """A database behind this watcher: the ordinary path explains it."""
    upgrade(db_url, revision="0004")
    assert list_watches(db_url) is None


def test_urls_it_does_not_know_are_left_to_the_store(tmp_path: Path) -> None:
    db = tmp_path / "watcher.db"
    upgrade(f"sqlite:///{db}")
    assert list_watches(f"sqlite:///{db}") == []
    assert list_watches(f"sqlite:///{db}?timeout=5") is None  # options: the engine's
    assert list_watches(f"sqlite:///{tmp_path}/missing.db") is None
    assert not (tmp_path / "missing.db").exists()  # and nothing was created
    assert list_watches("sqlite://") is None
    assert list_watches("mysql://root@127.0.0.1/test") is None
    assert list_watches("postgresql://nobody@127.0.0.1:1/none") is None  # cannot connect
