"""Frozen values returned by the store, so no ORM object escapes the package.

Times are epoch milliseconds (UTC). JSON columns come back as tuples (lists)
or plain dicts; the dicts are fresh copies, so mutating one never touches the
database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from watcher.models import TimeBasis


class WatchState(StrEnum):
    """Lifecycle of a watch; ``ACTIVE``, ``FAILING`` and ``GONE`` ones are checked
    (a gone article is re-checked rarely, so a reappearance is noticed)."""

    ACTIVE = "active"
    PAUSED = "paused"
    GONE = "gone"
    RETIRED = "retired"
    FAILING = "failing"


#: States whose watches ``claim_due`` hands out. A failing watch keeps being
#: retried (with back-off decided by the scheduler) until it recovers or the
#: caller marks it gone / retired.
CHECKED_STATES: tuple[WatchState, ...] = (WatchState.ACTIVE, WatchState.FAILING, WatchState.GONE)


class CheckOutcome(StrEnum):
    NEW_VERSION = "new_version"
    UNCHANGED = "unchanged"
    NOT_MODIFIED = "not_modified"
    ERROR = "error"
    GONE = "gone"
    REAPPEARED = "reappeared"


class ChangeVerdict(StrEnum):
    """Same values as :class:`watcher.models.Verdict`; repeated so the store
    validates what it writes without depending on the diff stage."""

    SIGNIFICANT = "significant"
    NOISE = "noise"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class WatchRecord:
    id: int
    url: str
    site: str
    interval_s: int | None
    state: WatchState
    tags: tuple[str, ...]
    created_at: int
    next_check_at: int
    last_checked_at: int | None
    last_change_at: int | None
    etag: str | None
    last_modified: str | None
    last_body_sha256: str | None
    failure_count: int
    unchanged_count: int
    claimed_by: str | None
    claimed_until: int | None


@dataclass(frozen=True, slots=True)
class WatchSummary:
    """One row of ``watcher list``: the watch plus what its history says."""

    id: int
    url: str
    site: str
    state: WatchState
    interval_s: int | None
    tags: tuple[str, ...]
    next_check_at: int
    last_checked_at: int | None
    last_change_at: int | None
    failure_count: int
    version_count: int
    latest_title: str | None


@dataclass(frozen=True, slots=True)
class VersionRecord:
    id: int
    watch_id: int
    seq: int
    captured_at: int
    content_sha256: str
    http_status: int | None
    final_url: str | None
    title: str | None
    archive_path: str | None
    page_metadata: dict[str, Any] = field(compare=False)
    created_at: int

    @property
    def time_basis(self) -> TimeBasis:
        """A version the daemon fetched has an HTTP status and a capture time;
        an imported one has neither, only the time its file states."""
        return TimeBasis.CAPTURED if self.http_status is not None else TimeBasis.STATED


@dataclass(frozen=True, slots=True)
class CheckRecord:
    id: int
    watch_id: int
    checked_at: int
    outcome: CheckOutcome
    duration_ms: int | None
    http_status: int | None
    final_url: str | None
    redirects: tuple[str, ...]
    etag: str | None
    last_modified: str | None
    body_sha256: str | None
    error: str | None
    version_id: int | None


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """A stored change. ``record`` is the serialised change, opaque to the store;
    ``url`` is the watch's URL, joined in so reporters need no second query."""

    id: int
    watch_id: int
    url: str
    old_version_id: int
    new_version_id: int | None  # None for "gone": the article has no new version
    created_at: int
    verdict: ChangeVerdict
    kinds: tuple[str, ...]
    summary: str
    record: dict[str, Any] = field(compare=False)
    reverted_to_version_id: int | None
    reported_at: int | None
