"""Claiming due watches and releasing them, including concurrent claimers."""

from __future__ import annotations

import hashlib
import threading

from watcher.store import CheckOutcome, QuietCheck, Store, WatchState, open_engine

LEASE = 60_000


def add(store: Store, n: int, *, now_ms: int = 0) -> list[int]:
    return [
        store.add_watch(f"https://example.com/{i}", site="example.com", now_ms=now_ms)[0].id
        for i in range(n)
    ]


def release(store: Store, watch_id: int, next_check_at: int, **kwargs: object) -> None:
    store.release(
        watch_id,
        next_check_at=next_check_at,
        failure_count=0,
        unchanged_count=0,
        last_checked_at=next_check_at - 1,
        **kwargs,  # type: ignore[arg-type]
    )


def test_claim_respects_next_check_at(store: Store) -> None:
    early, late = add(store, 2)
    release(store, early, 1000)
    release(store, late, 5000)
    assert store.due_count(999) == 0
    assert store.claim_due("w", 999, 10, LEASE) == []
    assert store.due_count(1000) == 1
    claimed = store.claim_due("w", 1000, 10, LEASE)
    assert [w.id for w in claimed] == [early]
    assert claimed[0].claimed_by == "w"
    assert claimed[0].claimed_until == 1000 + LEASE
    assert [w.id for w in store.claim_due("w2", 5000, 10, LEASE)] == [late]


def test_claim_orders_by_due_time_and_honours_limit(store: Store) -> None:
    ids = add(store, 5)
    for offset, watch_id in enumerate(reversed(ids)):
        release(store, watch_id, 100 + offset)
    claimed = store.claim_due("w", 1000, 3, LEASE)
    assert [w.id for w in claimed] == list(reversed(ids))[:3]
    assert store.claim_due("w", 1000, 0, LEASE) == []


def test_claim_skips_paused_retired_but_retries_failing_and_gone(store: Store) -> None:
    ids = add(store, 5)
    for url_index, state in enumerate(["paused", "gone", "retired", "failing"]):
        store.set_state(f"https://example.com/{url_index}", state)
    claimed = store.claim_due("w", 10, 10, LEASE)
    assert sorted(w.id for w in claimed) == [ids[1], ids[3], ids[4]]
    assert store.due_count(10) == 0


def test_lease_blocks_other_claimers_until_it_expires(store: Store) -> None:
    (watch_id,) = add(store, 1)
    assert len(store.claim_due("a", 10, 10, LEASE)) == 1
    assert store.claim_due("b", 10 + LEASE - 1, 10, LEASE) == []
    stolen = store.claim_due("b", 10 + LEASE, 10, LEASE)
    assert [(w.id, w.claimed_by) for w in stolen] == [(watch_id, "b")]


def test_renewal_extends_only_the_holders_leases(store: Store) -> None:
    mine, other, released = add(store, 3)
    assert len(store.claim_due("a", 10, 2, LEASE)) == 2  # mine, other
    store.drop_claims("a")
    store.claim("a", [mine, released], 10, LEASE)
    store.claim("b", [other], 10, LEASE)
    release(store, released, 10_000_000)

    assert store.renew_claims("a", [mine, other, released], 10 + 3 * LEASE) == 1
    assert store.renew_claims("a", [], 10) == 0
    # past the first lease: b's own expired lease is free again, a's renewed one is not
    assert [w.id for w in store.claim_due("b", 10 + 2 * LEASE, 10, LEASE)] == [other]
    held = store.get_watch_by_id(mine)
    assert held is not None and (held.claimed_by, held.claimed_until) == ("a", 10 + 3 * LEASE)
    untouched = store.get_watch_by_id(released)
    assert untouched is not None and untouched.claimed_by is None


def test_drop_claims_of_one_worker_leaves_the_others(store: Store) -> None:
    mine, theirs = add(store, 2)
    store.claim("restarted", [mine], 10, LEASE)
    store.claim("alive", [theirs], 10, LEASE)
    assert store.drop_claims("restarted") == 1
    claimed_by = [w.claimed_by for w in map(store.get_watch_by_id, (mine, theirs)) if w]
    assert claimed_by == [None, "alive"]


def test_has_archive_path_is_per_watch(store: Store) -> None:
    one, two = add(store, 2)
    store.add_version(
        one, captured_at=1, content_sha256="0" * 64, content_text="t", http_status=200,
        final_url=None, title=None, archive_path="h/a/1.md",
    )  # fmt: skip
    assert store.has_archive_path(one, "h/a/1.md")
    assert not store.has_archive_path(two, "h/a/1.md")
    assert not store.has_archive_path(one, "h/a/2.md")


def test_release_clears_claim_and_reschedules(store: Store) -> None:
    (watch_id,) = add(store, 1)
    store.claim_due("w", 10, 1, LEASE)
    store.release(
        watch_id,
        next_check_at=9_000,
        failure_count=2,
        unchanged_count=7,
        last_checked_at=20,
        etag='"abc"',
        last_modified="Tue, 01 Oct 2024 00:00:00 GMT",
        last_body_sha256="f" * 64,
        last_change_at=15,
    )
    watch = store.get_watch_by_id(watch_id)
    assert watch is not None
    assert (watch.claimed_by, watch.claimed_until) == (None, None)
    assert (watch.next_check_at, watch.failure_count, watch.unchanged_count) == (9_000, 2, 7)
    assert (watch.etag, watch.last_body_sha256, watch.last_change_at) == ('"abc"', "f" * 64, 15)
    # None keeps stored values.
    release(store, watch_id, 10_000)
    kept = store.get_watch_by_id(watch_id)
    assert kept is not None
    assert (kept.etag, kept.last_change_at) == ('"abc"', 15)


def test_release_state_does_not_override_user_pause(store: Store) -> None:
    first, second = add(store, 2)
    store.claim_due("w", 10, 2, LEASE)
    store.set_state("https://example.com/0", WatchState.PAUSED)
    release(store, first, 100, state=WatchState.FAILING)
    release(store, second, 100, state=WatchState.GONE)
    assert store.get_watch_by_id(first).state is WatchState.PAUSED  # type: ignore[union-attr]
    assert store.get_watch_by_id(second).state is WatchState.GONE  # type: ignore[union-attr]


def test_concurrent_claimers_never_share_a_watch(store: Store, db_url: str) -> None:
    """Two engines (as two daemons would have) race to drain 300 due watches."""
    ids = set(add(store, 300))
    barrier = threading.Barrier(2)
    results: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def claimer(worker: str) -> None:
        engine = open_engine(db_url)
        mine: list[int] = []
        try:
            worker_store = Store(engine)
            barrier.wait()
            while batch := worker_store.claim_due(worker, 1000, 7, LEASE):
                mine.extend(w.id for w in batch)
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()
            results[worker] = mine

    threads = [threading.Thread(target=claimer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    a, b = results["a"], results["b"]
    assert len(a) == len(set(a))
    assert len(b) == len(set(b))
    assert not set(a) & set(b)
    assert set(a) | set(b) == ids
    claimed_by = {w.id: w.claimed_by for w in map(store.get_watch_by_id, ids) if w}
    assert all(claimed_by[i] == "a" for i in a)
    assert all(claimed_by[i] == "b" for i in b)


def test_quiet_checks_are_recorded_and_release_their_watches_in_one_call(store: Store) -> None:
    """The daemon's batch of unchanged checks: a check row each, the lease
    cleared, the schedule and counters set, validators None kept, a watch
    paused meanwhile left paused, one retired by its quiet."""
    one, two, three = add(store, 3)
    store.claim_due("w", 10, 3, LEASE)
    store.release(
        one, next_check_at=5, failure_count=2, unchanged_count=1, last_checked_at=5,
        etag='"old"', last_error="HTTP 500",
    )  # fmt: skip
    store.claim_due("w", 10, 3, LEASE)
    store.set_state("https://example.com/1", "paused")

    def quiet(watch_id: int, state: WatchState, etag: str | None) -> QuietCheck:
        return QuietCheck(
            watch_id=watch_id, checked_at=20, outcome=CheckOutcome.NOT_MODIFIED, duration_ms=3,
            http_status=304, final_url=f"https://example.com/{watch_id}", redirects=("r",),
            etag=etag, last_modified=None, body_sha256=None, next_check_at=9_000,
            unchanged_count=4, state=state, last_body_sha256=None,
        )  # fmt: skip

    store.record_quiet_checks(
        [
            quiet(one, WatchState.ACTIVE, None),
            quiet(two, WatchState.ACTIVE, '"new"'),
            quiet(three, WatchState.RETIRED, None),
        ]
    )
    watches = {w.id: w for w in store.watches()}
    assert all(w.claimed_by is None and w.claimed_until is None for w in watches.values())
    assert [(watches[i].state, watches[i].next_check_at) for i in (one, two, three)] == [
        (WatchState.ACTIVE, 9_000), (WatchState.PAUSED, 9_000), (WatchState.RETIRED, 9_000)
    ]  # fmt: skip
    assert (watches[one].etag, watches[two].etag) == ('"old"', '"new"')
    assert (watches[one].failure_count, watches[one].last_error) == (0, None)
    assert (watches[one].unchanged_count, watches[one].last_checked_at) == (4, 20)
    [check] = store.recent_checks(two)
    assert (check.outcome, check.http_status, check.redirects, check.etag) == (
        CheckOutcome.NOT_MODIFIED, 304, ("r",), '"new"'
    )  # fmt: skip
    assert (check.version_id, check.error, check.duration_ms) == (None, None, 3)


def test_version_with_content_is_the_latest_with_that_hash(store: Store) -> None:
    one, two = add(store, 2)
    ids = [
        store.add_version(
            one, captured_at=seq, content_sha256=sha, content_text=text, http_status=200,
            final_url=None, title=None, archive_path=None,
        ).id
        for seq, (sha, text) in enumerate(
            [(hashlib.sha256(t.encode()).hexdigest(), t) for t in ("a", "b", "a")], start=1
        )
    ]  # fmt: skip
    sha_a = hashlib.sha256(b"a").hexdigest()
    assert store.version_with_content(one, sha_a) == ids[2]
    assert store.version_with_content(two, sha_a) is None
    assert store.version_with_content(one, "0" * 64) is None
