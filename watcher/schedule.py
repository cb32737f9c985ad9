"""When to check a watch next: fixed, adaptive, back-off, retirement (pure).

The adaptive news schedule checks an article often while it is young or has
just changed and less often the longer it stays the same: the interval is a
sixth of the time since the article last changed (or was added), clamped to
[min_interval, max_interval]. With the defaults (5 min .. 1 day) a new
article is checked every 5 minutes for its first half hour, about every
20 minutes at two hours old, every 4 hours at a day old, and daily from six
days on. After ``retire_after`` (30 days) an unpinned watch is retired.

A pinned interval (``watcher add --interval 10m``) is used as given. Failing
watches back off exponentially from min_interval up to max_interval. Every
interval gets ±10% jitter so watches added together do not stay in lockstep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

JITTER = 0.10
ADAPTIVE_DIVISOR = 6


@dataclass(frozen=True, slots=True)
class Policy:
    min_interval_s: float
    max_interval_s: float
    retire_after_s: float


def jitter(seconds: float, rng: random.Random | None = None) -> float:
    r = (rng or random).uniform(-JITTER, JITTER)
    return seconds * (1 + r)


def interval_s(
    policy: Policy,
    *,
    pinned_s: float | None,
    now_ms: int,
    created_at: int,
    last_change_at: int | None,
) -> float:
    """Seconds until the next check of a healthy watch (before jitter)."""
    if pinned_s:
        return pinned_s
    quiet_for_s = max(0.0, (now_ms - (last_change_at or created_at)) / 1000)
    return min(policy.max_interval_s, max(policy.min_interval_s, quiet_for_s / ADAPTIVE_DIVISOR))


def backoff_s(policy: Policy, failures: int, pinned_s: float | None) -> float:
    """Exponential back-off for a failing watch, never shorter than its own interval."""
    base = pinned_s or policy.min_interval_s
    # typeshed types int ** int as Any (a negative power is a float); this one is >= 0
    factor: int = 2 ** min(max(0, failures - 1), 40)  # past 2**40 only the cap matters
    return min(max(policy.max_interval_s, base), base * factor)


RETIRE_AFTER_QUIET_CHECKS = 12  # a resumed watch gets this many checks before retiring again


def should_retire(
    policy: Policy, *, pinned_s: float | None, now_ms: int, created_at: int, quiet_checks: int
) -> bool:
    """Old enough, and unchanged for a dozen checks in a row (so ``watcher
    resume`` on a retired watch really brings it back for a while)."""
    if pinned_s or policy.retire_after_s <= 0 or quiet_checks < RETIRE_AFTER_QUIET_CHECKS:
        return False
    return (now_ms - created_at) / 1000 > policy.retire_after_s


#: No check is ever scheduled further ahead, whatever a stored interval says
#: (watches pinned before intervals were bounded at ``add``).
MAX_WAIT_S = 366 * 86400


def next_check_at(now_ms: int, seconds: float, rng: random.Random | None = None) -> int:
    return now_ms + round(jitter(min(seconds, MAX_WAIT_S), rng) * 1000)
