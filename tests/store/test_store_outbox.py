"""The outbox: deliveries written with their change, leased, marked, retried;
on SQLite and PostgreSQL. Also the 0002 -> 0003 migration of owed reports."""

from __future__ import annotations

import threading

from alembic import command
from sqlalchemy import text

from tests.store.conftest import change_of
from tests.store.test_store_history import URL, add_version, watch_id
from watcher.store import DeliveryState, OutboxEntry, Store, open_engine
from watcher.store.schema import _config

__all__ = ["watch_id"]  # the fixture, shared


def add_change(store: Store, watch_id: int, *entries: OutboxEntry) -> int:
    v1 = add_version(store, watch_id, f"a{len(entries)}-{id(entries)}")
    v2 = add_version(store, watch_id, f"b{len(entries)}-{id(entries)}")
    return store.add_change(
        change_of("paragraph_edited"),
        watch_id=watch_id,
        old_version_id=v1.id,
        new_version_id=v2.id,
        deliveries=entries,
    )


def test_a_change_owes_one_delivery_per_channel(store: Store, watch_id: int) -> None:
    change_id = add_change(
        store,
        watch_id,
        OutboxEntry("reports", 10),
        OutboxEntry("desk", 500, "hour"),
        OutboxEntry("desk", 20),  # a second route to the same channel: the immediate one wins
    )
    rows = {d.channel: d for d in store.deliveries(change_id=change_id)}
    assert sorted(rows) == ["desk", "reports"]
    assert (rows["desk"].due_at, rows["desk"].digest) == (20, None)
    assert rows["desk"].url == URL and rows["desk"].summary == "1 paragraph edited"
    assert store.delivery_counts() == {"pending": 2, "sent": 0, "dead": 0}


def test_claims_are_leases_and_only_the_holder_marks(store: Store, watch_id: int) -> None:
    add_change(store, watch_id, OutboxEntry("desk", 10))
    add_change(store, watch_id, OutboxEntry("desk", 5000))  # not due yet
    [row] = store.claim_deliveries("a", 100, 10, 1000)
    assert store.claim_deliveries("b", 200, 10, 1000) == []  # a holds it
    assert store.mark_sent("b", [row.id], 300) == 0  # b holds nothing
    # a's lease ran out: b takes the row over, and a can no longer mark it
    [again] = store.claim_deliveries("b", 1200, 10, 1000)
    assert again.id == row.id
    assert store.mark_sent("a", [row.id], 1300) == 0
    assert store.mark_sent("b", [row.id], 1300) == 1
    [sent] = store.deliveries(state="sent")
    assert (sent.sent_at, sent.attempts, sent.claimed_by) == (1300, 1, None)
    assert store.next_delivery_due(channels=["desk"]) == 5000


def test_a_sender_whose_lease_was_taken_over_cannot_renew_it(store: Store, watch_id: int) -> None:
    """What stops a double send: a sender renews just before sending, and a row
    another sender took after the lease ran out is no longer its to send."""
    add_change(store, watch_id, OutboxEntry("desk", 0))
    [row] = store.claim_deliveries("a", 100, 10, 1000)
    assert store.renew_deliveries("a", [row.id], 5000) == 1  # still a's: renewed
    [taken] = store.claim_deliveries("b", 5001, 10, 1000)  # a's lease ran out; b took it
    assert store.renew_deliveries("a", [taken.id], 9000) == 0  # a must not send it
    assert store.release_deliveries("a", only=[taken.id]) == 0  # nor free b's lease
    assert store.release_deliveries("b", keep=[taken.id]) == 0  # in flight: kept
    assert store.release_deliveries("b") == 1
    assert store.pending_by_channel() == {"desk": 1}


def test_failures_retry_then_die_and_retry_revives(store: Store, watch_id: int) -> None:
    change_id = add_change(store, watch_id, OutboxEntry("hook", 0))
    [row] = store.claim_deliveries("w", 10, 10, 1000)
    assert store.mark_failed("w", [row.id], error="HTTP 500", retry_at=400) == 1
    assert store.claim_deliveries("w", 300, 10, 1000) == []  # backing off
    [row] = store.claim_deliveries("w", 400, 10, 1000)
    assert (row.attempts, row.last_error) == (1, "HTTP 500")
    store.mark_failed("w", [row.id], error="timed out", retry_at=None)
    [dead] = store.deliveries(state=DeliveryState.DEAD)
    assert (dead.change_id, dead.attempts, dead.last_error) == (change_id, 2, "timed out")
    assert store.claim_deliveries("w", 10**12, 10, 1000) == []  # the dead are never claimed

    assert store.retry_deliveries(5000) == 1
    [row] = store.claim_deliveries("w", 5000, 10, 1000)
    assert (row.state, row.attempts) == (DeliveryState.PENDING, 0)


def test_claims_filter_by_channel_and_change(store: Store, watch_id: int) -> None:
    c1 = add_change(store, watch_id, OutboxEntry("reports", 0), OutboxEntry("desk", 0))
    c2 = add_change(store, watch_id, OutboxEntry("reports", 0))
    [mine] = store.claim_deliveries("p", 1, 10, 1000, channels=["reports"], change_ids=[c2])
    assert (mine.change_id, mine.channel) == (c2, "reports")
    others = store.claim_deliveries("d", 1, 10, 1000, exclude=["reports"])
    assert [(d.change_id, d.channel) for d in others] == [(c1, "desk")]
    assert store.release_deliveries("d") == 1
    assert len(store.claim_deliveries("e", 1, 10, 1000)) == 2


def test_concurrent_senders_never_share_a_row(store: Store, watch_id: int) -> None:
    """Two threads claiming at once (SKIP LOCKED on PostgreSQL, compare-and-set
    on SQLite) split the rows between them."""
    for _ in range(40):
        add_change(store, watch_id, OutboxEntry("desk", 0))
    got: dict[str, list[int]] = {"a": [], "b": []}

    def claim(worker: str) -> None:
        while rows := store.claim_deliveries(worker, 10, 3, 60_000):
            got[worker].extend(r.id for r in rows)

    threads = [threading.Thread(target=claim, args=(w,)) for w in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got["a"] + got["b"]) == sorted({*got["a"], *got["b"]})
    assert len(got["a"]) + len(got["b"]) == 40


def test_upgrading_keeps_the_reports_a_change_still_owed(db_url: str) -> None:
    """A 0002 database: one change reported, one not. After the upgrade the
    unreported one owes its reports; nothing else does."""
    config = _config(db_url)
    command.upgrade(config, "0002")
    engine = open_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO watches (id, url, site, state, tags, created_at, next_check_at,"
                    " failure_count, unchanged_count) VALUES (1, :u, 's', 'active', '[]', 0, 0,"
                    " 0, 0)"
                ),
                {"u": URL},
            )
            conn.execute(text("INSERT INTO contents VALUES ('x', 't', 1)"))
            for vid in (1, 2, 3):
                conn.execute(
                    text(
                        "INSERT INTO versions (id, watch_id, seq, captured_at, content_sha256,"
                        " page_metadata, created_at) VALUES (:i, 1, :i, 0, 'x', '{}', 0)"
                    ),
                    {"i": vid},
                )
            for cid, reported in ((1, 99), (2, None)):
                conn.execute(
                    text(
                        "INSERT INTO changes (id, watch_id, old_version_id, new_version_id,"
                        " created_at, verdict, kinds, summary, record, reported_at)"
                        " VALUES (:c, 1, :c, :n, 7, 'significant', '[]', 's', '{}', :r)"
                    ),
                    {"c": cid, "n": cid + 1, "r": reported},
                )
        command.upgrade(config, "head")
        store = Store(engine)
        [owed] = store.deliveries()
        assert (owed.change_id, owed.channel, owed.state) == (2, "reports", DeliveryState.PENDING)
        assert len(store.versions(1)) == 3 and len(store.changes(1)) == 2  # nothing lost
        command.downgrade(config, "0002")
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, reported_at FROM changes ORDER BY id")).all()
            versions = conn.execute(text("SELECT count(*) FROM versions")).scalar_one()
        # still owed: unreported again; otherwise reported (at its creation time)
        assert [tuple(r) for r in rows] == [(1, 7), (2, None)] and versions == 3
    finally:
        engine.dispose()
