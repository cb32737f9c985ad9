"""The adaptive news schedule, back-off and retirement."""

from __future__ import annotations

import random

from watcher.schedule import (
    MAX_WAIT_S,
    Policy,
    backoff_s,
    interval_s,
    next_check_at,
    should_retire,
)

POLICY = Policy(min_interval_s=300, max_interval_s=86400, retire_after_s=30 * 86400)
HOUR_MS = 3_600_000


def _interval(
    age_h: float, pinned: float | None = None, changed_h_ago: float | None = None
) -> float:
    now = 1_000 * HOUR_MS
    created = now - round(age_h * HOUR_MS)
    changed = None if changed_h_ago is None else now - round(changed_h_ago * HOUR_MS)
    return interval_s(
        POLICY, pinned_s=pinned, now_ms=now, created_at=created, last_change_at=changed
    )


def test_young_articles_are_checked_every_few_minutes() -> None:
    assert _interval(0.1) == 300
    assert _interval(0.5) == 300


def test_quiet_articles_are_checked_less_and_less_often() -> None:
    intervals = [_interval(h) for h in (2, 24, 72, 24 * 7)]
    assert intervals == sorted(intervals)
    assert intervals[1] == 4 * 3600
    assert intervals[-1] == 86400


def test_a_recent_change_makes_an_old_article_young_again() -> None:
    assert _interval(24 * 10, changed_h_ago=0.1) == 300


def test_pinned_interval_wins() -> None:
    assert _interval(24 * 10, pinned=600) == 600


def test_backoff_grows_and_is_capped() -> None:
    waits = [backoff_s(POLICY, n, None) for n in range(1, 12)]
    assert waits[0] == 300 and waits[1] == 600 and waits == sorted(waits)
    assert waits[-1] == 86400


def test_retirement_only_for_adaptive_watches() -> None:
    old = 31 * 24 * HOUR_MS
    assert should_retire(POLICY, pinned_s=None, now_ms=old, created_at=0, quiet_checks=12)
    assert not should_retire(POLICY, pinned_s=600, now_ms=old, created_at=0, quiet_checks=12)
    assert not should_retire(POLICY, pinned_s=None, now_ms=HOUR_MS, created_at=0, quiet_checks=12)
    # just resumed (or just changed): a dozen quiet checks before retiring again
    assert not should_retire(POLICY, pinned_s=None, now_ms=old, created_at=0, quiet_checks=3)


def test_jitter_stays_within_ten_percent() -> None:
    rng = random.Random(1)
    times = [next_check_at(0, 1000, rng) for _ in range(200)]
    assert min(times) >= 900_000 and max(times) <= 1_100_000
    assert len(set(times)) > 100


def test_a_stored_enormous_interval_or_failure_count_never_overflows() -> None:
    """Watches pinned before intervals were bounded, or failing for years."""
    policy = Policy(300, 86400, 0)
    far = next_check_at(0, 999999999999 * 86400.0)
    assert 0 < far <= MAX_WAIT_S * 1000 * 1.2
    assert backoff_s(policy, 10**6, None) == 86400
