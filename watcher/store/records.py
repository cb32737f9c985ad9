"""Frozen values returned by the store, so no ORM object escapes the package.

Times are epoch milliseconds (UTC). JSON columns come back as tuples (lists)
or plain dicts; the dicts are fresh copies, so mutating one never touches the
database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, Final

from watcher.evidence import Evidence
from watcher.models import TimeBasis


class WatchState(StrEnum):
    """Lifecycle of a watch; ``ACTIVE``, ``FAILING`` and ``GONE`` ones are checked
    (a gone article is re-checked rarely, so a reappearance is noticed).

    ``REMOVED``: the user stopped watching it but its history (versions,
    changes, reports) is kept; ``watcher list`` hides it, ``watcher add``
    brings it back. ``watcher remove --purge`` deletes the row instead.
    """

    ACTIVE = "active"
    PAUSED = "paused"
    GONE = "gone"
    RETIRED = "retired"
    FAILING = "failing"
    REMOVED = "removed"


#: States whose watches ``claim_due`` hands out. A failing watch keeps being
#: retried (with back-off decided by the scheduler) until it recovers or the
#: caller marks it gone / retired.
CHECKED_STATES: tuple[WatchState, ...] = (WatchState.ACTIVE, WatchState.FAILING, WatchState.GONE)


class Keep(Enum):
    """The type of :data:`KEEP`: an argument left at it keeps the stored value,
    so ``None`` can mean "set to NULL" where NULL is meaningful."""

    KEEP = "keep"


#: "Leave this as it is", for arguments whose ``None`` is a value
#: (``release(last_error=None)`` clears the error).
KEEP: Final = Keep.KEEP


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
    last_error: str | None = None
    source_id: int | None = None
    source_meta: dict[str, Any] | None = field(default=None, compare=False)


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
    last_error: str | None = None
    source_meta: dict[str, Any] | None = field(default=None, compare=False)


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
    #: Snapshot hash, WARC record and hash chain (watcher/evidence.py).
    evidence: Evidence = field(default=Evidence(), compare=False)

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
class QuietCheck:
    """A check that found nothing new (``unchanged`` or ``not_modified``) and
    its release of the watch, as ``record_quiet_checks`` writes it: the lease
    cleared, the failures and the last error too; validators and
    ``last_body_sha256`` left at None keep the stored ones; ``state`` replaces
    only active/failing (as in ``release``)."""

    watch_id: int
    checked_at: int
    outcome: CheckOutcome
    duration_ms: int
    http_status: int | None
    final_url: str | None
    redirects: tuple[str, ...]
    etag: str | None
    last_modified: str | None
    body_sha256: str | None
    next_check_at: int
    unchanged_count: int
    state: WatchState
    last_body_sha256: str | None


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


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A message owed: the change goes to ``channel`` at ``due_at``, alone or,
    with ``digest`` (``hour``/``day``), in that period's digest."""

    channel: str
    due_at: int
    digest: str | None = None


class DeliveryState(StrEnum):
    """An outbox row: waiting (or retrying), delivered, or given up on."""

    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One message of one change to one channel (the outbox row), with what
    the sender needs of the change joined in."""

    id: int
    change_id: int
    channel: str
    state: DeliveryState
    digest: str | None
    attempts: int
    due_at: int
    created_at: int
    sent_at: int | None
    last_error: str | None
    claimed_by: str | None
    claimed_until: int | None
    watch_id: int
    url: str
    summary: str
    verdict: ChangeVerdict


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A feed or section page whose articles become watches. ``kind`` is
    ``feed``, ``page`` or ``""`` (not fetched yet); ``origin`` is ``cli`` or
    ``config``; ``articles`` counts the watches it found (0 unless listed)."""

    id: int
    url: str
    kind: str
    tags: tuple[str, ...]
    interval_s: int
    match: str | None
    state: str
    origin: str
    created_at: int
    next_check_at: int
    last_checked_at: int | None
    etag: str | None
    last_modified: str | None
    failure_count: int
    last_error: str | None
    claimed_by: str | None
    claimed_until: int | None
    articles: int = 0


@dataclass(frozen=True, slots=True)
class SourceSync:
    """What syncing the config file's sources did."""

    added: int
    updated: int
    removed: int
