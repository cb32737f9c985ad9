"""Contents kept compressed and as deltas: every version reads back exactly,
chains are bounded, deletion never breaks a chain; on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text

from tests.conftest import SEED
from watcher import snapshot
from watcher.errors import StoreError
from watcher.store import Store, VersionRecord, codec, open_engine, upgrade
from watcher.store import repository as repository_mod

URL = "https://www.bbc.com/zhongwen/simp/world-59301487"
#: The seed article as the daemon stores it: a real page with "14 分钟前" in it.
PAGE = snapshot.content_text(snapshot.read(SEED))


def ticked(hours: int) -> str:
    """The page after its relative time moved on ``hours`` hours."""
    assert "14 分钟前" in PAGE
    return PAGE.replace("14 分钟前", f"{hours} 小时前", 1)


def sha(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def add(store: Store, watch_id: int, content: str, at: int = 1) -> VersionRecord:
    return store.add_version(
        watch_id, captured_at=at, content_sha256=sha(content), content_text=content,
        http_status=200, final_url=URL, title="t", archive_path=None,
    )  # fmt: skip


def rows(store: Store) -> dict[str, tuple[str, str | None, int, int]]:
    """sha256 -> (codec, base_sha256, depth, stored bytes) of every content."""
    with store.engine.connect() as conn:
        found = conn.execute(
            text("SELECT sha256, codec, base_sha256, depth, data, text FROM contents")
        )
        return {
            r.sha256: (r.codec, r.base_sha256, r.depth, len(r.data or b"") + len(r.text or ""))
            for r in found
        }


def watch(store: Store, url: str = URL) -> int:
    return store.add_watch(url, site="www.bbc.com", now_ms=1)[0].id


def test_a_ticking_page_is_stored_as_small_deltas_in_bounded_chains(store: Store) -> None:
    watch_id = watch(store)
    contents = [PAGE, *(ticked(h) for h in range(1, 40))]
    versions = [add(store, watch_id, c, at=n) for n, c in enumerate(contents)]

    stored = rows(store)
    chain = [stored[sha(c)] for c in contents]
    # a full copy, then FULL_EVERY - 1 deltas each against the version before, and again
    assert [depth for _, _, depth, _ in chain] == [n % codec.FULL_EVERY for n in range(40)]
    for n, (kind, base, depth, size) in enumerate(chain):
        if depth == 0:
            assert (kind, base) == (codec.ZSTD, None)
            assert size < len(contents[n].encode()) / 2
        else:
            assert (kind, base) == (codec.DELTA, sha(contents[n - 1]))
            assert size < 100  # a moved relative time, not a page
    for version, content in zip(versions, contents, strict=True):
        assert store.version_text(version.id) == content
        assert snapshot.content_text(store.version_snapshot(version)) == content


def test_a_rewritten_page_is_a_full_copy_and_identical_content_is_stored_once(
    store: Store,
) -> None:
    one, two = watch(store), watch(store, URL + "?amp")
    add(store, one, PAGE)
    # another text altogether (not repetitive: a delta of it is as big as a copy)
    rewritten = "".join(f"<p>{sha(str(n))}</p>" for n in range(300))
    add(store, one, rewritten)
    add(store, two, rewritten)  # the same text elsewhere: the same row

    stored = rows(store)
    assert len(stored) == 2
    assert stored[sha(rewritten)][:3] == (codec.ZSTD, None, 0)
    assert [store.version_text(v.id) for v in store.versions(two)] == [rewritten]


def test_purging_a_watch_removes_its_chain_and_keeps_what_others_read(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another watch shares a delta of this watch's chain: it becomes a full
    copy, and nothing else of the purged watch stays."""
    monkeypatch.setattr(repository_mod, "_GC_CHUNK", 2)  # deltas and bases in other chunks
    purged, other = watch(store), watch(store, URL + "?amp")
    contents = [PAGE, *(ticked(h) for h in range(1, 8))]
    for n, content in enumerate(contents):
        add(store, purged, content, at=n)
    shared = add(store, other, contents[5])  # a delta of contents[4], depth 5
    assert rows(store)[sha(contents[5])][:2] == (codec.DELTA, sha(contents[4]))

    assert store.remove_watch(URL)

    assert {key: row[:3] for key, row in rows(store).items()} == {
        sha(contents[5]): (codec.ZSTD, None, 0)
    }
    assert store.version_text(shared.id) == contents[5]
    assert store.remove_watch(URL + "?amp")
    assert rows(store) == {}


def test_purging_the_watch_that_reads_a_shared_delta_keeps_its_base(store: Store) -> None:
    owner, reader = watch(store), watch(store, URL + "?amp")
    first, second = add(store, owner, PAGE), add(store, owner, ticked(1))
    add(store, reader, ticked(1))

    assert store.remove_watch(URL + "?amp")

    assert set(rows(store)) == {sha(PAGE), sha(ticked(1))}
    assert [store.version_text(v.id) for v in (first, second)] == [PAGE, ticked(1)]


@pytest.mark.parametrize("damage", ["a flipped byte", "another base"])
def test_a_damaged_content_is_an_error_not_a_wrong_text(store: Store, damage: str) -> None:
    watch_id = watch(store)
    add(store, watch_id, PAGE)
    version = add(store, watch_id, ticked(1))
    with store.engine.begin() as conn:
        if damage == "a flipped byte":
            data = bytearray(conn.execute(text("SELECT data FROM contents WHERE sha256 = :s"),
                                          {"s": sha(ticked(1))}).scalar_one())  # fmt: skip
            data[len(data) // 2] ^= 0xFF
            change, values = "data = :d", {"d": bytes(data)}
        else:  # the delta read against a text it was not made from
            change, values = "text = :t, codec = 'text', data = NULL", {"t": ticked(2)}
        conn.execute(
            text(f"UPDATE contents SET {change} WHERE sha256 = :s"),
            {**values, "s": sha(ticked(1)) if damage == "a flipped byte" else sha(PAGE)},
        )
    with pytest.raises(StoreError, match="damaged"):
        store.version_text(version.id)


def test_migration_0004_keeps_plain_text_contents_readable(db_url: str) -> None:
    """A database written before 0004: its text rows read as before, and the
    next version is a delta against one."""
    upgrade(db_url, revision="0003")
    engine = open_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO watches (url, site, state, tags, created_at, next_check_at,"
                    " failure_count, unchanged_count)"
                    " VALUES (:u, 'www.bbc.com', 'active', '[]', 1, 1, 0, 0)"
                ),
                {"u": URL},
            )
            conn.execute(
                text("INSERT INTO contents (sha256, text, size) VALUES (:s, :t, :n)"),
                {"s": sha(PAGE), "t": PAGE, "n": len(PAGE.encode())},
            )
            conn.execute(
                text(
                    "INSERT INTO versions (watch_id, seq, captured_at, content_sha256,"
                    " page_metadata, created_at)"
                    " SELECT id, 1, 1, :s, '{}', 1 FROM watches"
                ),
                {"s": sha(PAGE)},
            )
        upgrade(db_url)
        store = Store(engine)
        assert rows(store) == {sha(PAGE): (codec.TEXT, None, 0, len(PAGE))}
        watch_id = watch(store)  # the one there
        [old] = store.versions(watch_id)
        assert store.version_text(old.id) == PAGE
        later = add(store, watch_id, ticked(1), at=2)
        assert rows(store)[sha(ticked(1))][:3] == (codec.DELTA, sha(PAGE), 1)
        assert store.version_text(later.id) == ticked(1)
    finally:
        engine.dispose()


def test_unchanged_page_metadata_is_stored_once_and_read_back_for_every_version(
    store: Store,
) -> None:
    watch_id = watch(store)
    meta = {"og_title": "拜登和习近平视像会晤开始", "language": "zh-CN"}
    moved = {**meta, "modified_time": "2021-11-16T04:00:00Z"}
    metadata = [meta, meta, meta, moved, moved, meta]
    for n, page_metadata in enumerate(metadata):
        content = ticked(n + 1)
        store.add_version(
            watch_id, captured_at=n, content_sha256=sha(content), content_text=content,
            http_status=200, final_url=URL, title="t", archive_path=None,
            page_metadata=page_metadata,
        )  # fmt: skip

    with store.engine.connect() as conn:
        holders = conn.execute(text("SELECT seq, metadata_seq FROM versions ORDER BY seq")).all()
    assert [tuple(row) for row in holders] == [
        (1, None),
        (2, 1),
        (3, 1),
        (4, None),
        (5, 4),
        (6, None),
    ]
    versions = store.versions(watch_id)
    assert [v.page_metadata for v in versions] == metadata
    for version in versions:
        assert store.get_version(version.id) == version
        assert store.get_version(version.id).page_metadata == version.page_metadata  # type: ignore[union-attr]
    latest = store.latest_version(watch_id)
    assert latest is not None and latest.page_metadata == meta
    found = store.find_version_by_content(watch_id, sha(ticked(5)))
    assert found is not None and found.page_metadata == moved


@pytest.mark.parametrize("given", ["the previous text", "another text"])
def test_a_base_text_at_hand_is_used_only_if_it_is_the_previous_versions(
    store: Store, given: str
) -> None:
    """The daemon passes the text it diffed against; a wrong one (it cannot
    be, but a cache could be stale) is ignored, never stored against."""
    watch_id = watch(store)
    add(store, watch_id, PAGE)
    base = PAGE if given == "the previous text" else ticked(5)
    later = store.add_version(
        watch_id, captured_at=2, content_sha256=sha(ticked(1)), content_text=ticked(1),
        http_status=200, final_url=URL, title="t", archive_path=None, base_text=base,
    )  # fmt: skip
    assert rows(store)[sha(ticked(1))][:3] == (codec.DELTA, sha(PAGE), 1)
    assert store.version_text(later.id) == ticked(1)
