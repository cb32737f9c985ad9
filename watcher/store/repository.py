"""Repository: every read and write watcher makes, as plain functions on a Store.

Each :class:`Store` method runs in its own short transaction. When several
writes must land together (a new version, its change and the check that found
it), use ``with store.transaction() as tx:`` — ``tx`` has the same methods, and
everything it wrote is rolled back if the block raises, so a crash never
leaves half a version behind.

Retention: given ``check_retention`` (Settings.check_retention), ``record_check``
keeps about that many newest checks per watch ("newest" = most recently
recorded) and deletes older ones; versions, contents and changes are kept
forever. ``remove_watch``
deletes the watch's versions, checks and changes, and the contents no other
watch uses.

Claiming: ``claim_due`` leases due watches to one worker until
``claimed_until``; ``release`` clears the lease and reschedules. On
PostgreSQL the due rows are selected ``FOR UPDATE SKIP LOCKED`` so concurrent
daemons never claim the same watch; on SQLite the claim is a conditional
UPDATE that only succeeds on rows still free (one daemon per SQLite file is
enforced elsewhere). A lease is short: the daemon renews the leases of its
in-flight checks (``renew_claims``), and a restarted daemon drops the leases
its previous run left (``drop_claims`` with its own worker id, which is
stable per data folder).

SQLAlchemy errors never leave this module: they become
:class:`watcher.errors.StoreError`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    distinct,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.dml import Update

from watcher import evidence, snapshot
from watcher.errors import StoreError
from watcher.evidence import Evidence
from watcher.models import Change, Snapshot, change_to_dict
from watcher.store import codec
from watcher.store.engine import error_detail, open_engine
from watcher.store.outbox import OutboxRepository, change_record
from watcher.store.records import (
    CHECKED_STATES,
    KEEP,
    ChangeRecord,
    ChangeVerdict,
    CheckOutcome,
    CheckRecord,
    Keep,
    OutboxEntry,
    QuietCheck,
    VersionRecord,
    WatchRecord,
    WatchState,
    WatchSummary,
)
from watcher.store.schema import check_schema
from watcher.store.sources import SourcesRepository
from watcher.store.tables import BlockSighting, ChangeRow, Check, Content, Version, Watch

log = logging.getLogger(__name__)

_GC_CHUNK = 500


# The per-check hot path is written with Core statements built once: the ORM
# unit of work and a statement built per call cost more than SQLite's work.
# Inserts name the Table, not the mapped class: an INSERT of a mapped class
# goes through the ORM's bulk persistence, several times the cost of Core's.
_CHECKS = cast(Table, Check.__table__)
_WATCHES = cast(Table, Watch.__table__)
_VERSIONS = cast(Table, Version.__table__)
_CHANGES = cast(Table, ChangeRow.__table__)
_SIGHTINGS = cast(Table, BlockSighting.__table__)
_CONTENTS = cast(Table, Content.__table__)
_INSERT_VERSION = insert(_VERSIONS).returning(_VERSIONS.c.id)
_INSERT_CHANGE = insert(_CHANGES).returning(_CHANGES.c.id)
_INSERT_CHECK = insert(_CHECKS)
_INSERT_CHECK_ID = insert(_CHECKS).returning(_CHECKS.c.id)
_VERSION_WITH_CONTENT = (
    select(_VERSIONS.c.id)
    .where(
        _VERSIONS.c.watch_id == bindparam("watch_id"),
        _VERSIONS.c.content_sha256 == bindparam("sha256"),
    )
    .order_by(_VERSIONS.c.seq.desc())
    .limit(1)
)
_HOLDER = _VERSIONS.alias("holder")
# A watch's newest version, with its content's delta depth and the metadata
# of the version it points to: what latest_version returns and what
# add_version builds the next version on.
_LATEST_VERSION = (
    select(*_VERSIONS.c, _CONTENTS.c.depth, _HOLDER.c.page_metadata.label("held_metadata"))
    .join(_CONTENTS, _CONTENTS.c.sha256 == _VERSIONS.c.content_sha256)
    .outerjoin(
        _HOLDER,
        and_(
            _HOLDER.c.watch_id == _VERSIONS.c.watch_id,
            _HOLDER.c.seq == _VERSIONS.c.metadata_seq,
        ),
    )
    .where(_VERSIONS.c.watch_id == bindparam("watch_id"))
    .order_by(_VERSIONS.c.seq.desc())
    .limit(1)
)
# record_sightings', by "is PostgreSQL"
_ADD_SIGHTINGS = {
    pg: (postgresql if pg else sqlite).insert(_SIGHTINGS).on_conflict_do_nothing()
    for pg in (False, True)
}
#: Watches whose histories :meth:`Repository.histories` reads in one go
#: (bounds the IN list and the memory of one read: a ticking page's history
#: runs to thousands of versions).
HISTORY_CHUNK = 50
# boilerplate_fingerprints': what one sighting counts for
_STORY_OR_WATCH = func.coalesce(
    BlockSighting.story, literal("watch:") + sql_cast(BlockSighting.watch_id, String)
)
# claim_due's: the due watches, leased if still free, then read back.
_CLAIMABLE_NOW = (
    _WATCHES.c.state.in_([literal(st.value) for st in CHECKED_STATES]),
    _WATCHES.c.next_check_at <= bindparam("now"),
    or_(_WATCHES.c.claimed_until.is_(None), _WATCHES.c.claimed_until <= bindparam("now")),
)
_PICK_DUE = (
    select(_WATCHES.c.id)
    .where(*_CLAIMABLE_NOW)
    .order_by(_WATCHES.c.next_check_at, _WATCHES.c.id)
    .limit(bindparam("limit"))
)
_PICK_DUE_LOCKED = _PICK_DUE.with_for_update(skip_locked=True)  # PostgreSQL
_CLAIM = (
    update(_WATCHES)
    .where(_WATCHES.c.id.in_(bindparam("ids", expanding=True)), *_CLAIMABLE_NOW)
    .values(claimed_by=bindparam("worker"), claimed_until=bindparam("until"))
)
_CLAIMED = (
    select(_WATCHES)
    .where(
        _WATCHES.c.id.in_(bindparam("ids", expanding=True)),
        _WATCHES.c.claimed_by == bindparam("worker"),
        _WATCHES.c.claimed_until == bindparam("until"),
    )
    .order_by(_WATCHES.c.next_check_at, _WATCHES.c.id)
)
# An executemany over this releases many watches; the bound names are not
# column names (SQLAlchemy keeps those for the SET clause).
_RELEASE_QUIET = (
    update(_WATCHES)
    .where(_WATCHES.c.id == bindparam("q_id"))
    .values(
        claimed_by=None,
        claimed_until=None,
        next_check_at=bindparam("q_next"),
        failure_count=0,
        unchanged_count=bindparam("q_unchanged"),
        last_checked_at=bindparam("q_checked"),
        state=case(
            (
                _WATCHES.c.state.in_([literal(st.value) for st in CHECKED_STATES]),
                bindparam("q_state"),
            ),
            else_=_WATCHES.c.state,
        ),
        etag=func.coalesce(bindparam("q_etag"), _WATCHES.c.etag),
        last_modified=func.coalesce(bindparam("q_modified"), _WATCHES.c.last_modified),
        last_body_sha256=func.coalesce(bindparam("q_body"), _WATCHES.c.last_body_sha256),
        last_error=None,
    )
)


def now_ms() -> int:
    """The current time as epoch milliseconds, the unit of every stored time."""
    return time.time_ns() // 1_000_000


class Repository(OutboxRepository, SourcesRepository):
    """The operations shared by :class:`Store` (one transaction per call) and
    :class:`Transaction` (many calls, one transaction). Code that should accept
    either, like the pipeline, can be typed against this class."""

    _check_retention: int | None

    @contextmanager
    def _session(self) -> Iterator[Session]:
        raise NotImplementedError
        yield  # pragma: no cover

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection for Core reads: a session costs more than a hot
        query (the transaction's own connection inside one)."""
        raise NotImplementedError
        yield  # pragma: no cover

    # -- watches -----------------------------------------------------------

    def add_watch(
        self,
        url: str,
        *,
        site: str,
        interval_s: int | None = None,
        tags: Iterable[str] = (),
        now_ms: int,
    ) -> tuple[WatchRecord, bool]:
        """Track ``url`` (already normalised); return the watch and whether it is new.

        Adding a URL twice is not an error: the existing watch is returned,
        with any new ``tags`` merged in, so ``watcher add`` is idempotent. Its
        state is left alone: whether a removed watch comes back is the caller's
        decision (``watcher add`` brings it back, an import does not).
        """
        tag_list = _unique(tags)
        with self._session() as s:
            values = {
                "url": url,
                "site": site,
                "interval_s": interval_s,
                "state": WatchState.ACTIVE.value,
                "tags": tag_list,
                "created_at": now_ms,
                "next_check_at": now_ms,
                "failure_count": 0,
                "unchanged_count": 0,
            }
            insert = _insert(s, Watch).values(**values)
            inserted = s.scalar(
                insert.on_conflict_do_nothing(index_elements=["url"]).returning(Watch.id)
            )
            created = inserted is not None
            row = s.scalars(select(Watch).where(Watch.url == url)).one()
            merged = _unique([*row.tags, *tag_list])
            if not created and merged != list(row.tags):
                row.tags = merged
                s.flush()
            return _watch(row), created

    def add_watches(
        self,
        sites: dict[str, str],
        *,
        interval_s: int | None = None,
        tags: Iterable[str] = (),
        now_ms: int,
    ) -> tuple[set[str], dict[str, tuple[WatchRecord, WatchRecord]]]:
        """:meth:`add_watch` for many URLs (``sites``: each normalised URL and
        its site), with a few statements per 500 URLs instead of three per
        URL, so ``watcher add --from-file`` of 10,000 URLs takes a second, not
        ten. New watches get ids in the order of ``sites``.

        Returns the URLs that are new, and for each URL already watched its
        watch before the add and after it (``tags`` merged in; its state is
        left alone, as :meth:`add_watch` leaves it).
        """
        tag_list, urls, chunk = _unique(tags), list(sites), 500
        existing: dict[str, tuple[WatchRecord, WatchRecord]] = {}

        def merge(s: Session, wanted: list[str]) -> None:
            for row in s.scalars(select(Watch).where(Watch.url.in_(wanted))):
                before = _watch(row)
                merged = _unique([*row.tags, *tag_list])
                if merged != list(row.tags):
                    row.tags = merged
                existing[row.url] = (before, _watch(row))

        with self._session() as s:
            for i in range(0, len(urls), chunk):
                merge(s, urls[i : i + chunk])
            new = [
                {"url": url, "site": sites[url], "interval_s": interval_s,
                 "state": WatchState.ACTIVE.value, "tags": tag_list, "created_at": now_ms,
                 "next_check_at": now_ms, "failure_count": 0, "unchanged_count": 0}
                for url in urls if url not in existing
            ]  # fmt: skip
            insert = _insert(s, Watch).on_conflict_do_nothing(index_elements=["url"])
            created: set[str] = set()
            for i in range(0, len(new), chunk):
                created.update(s.scalars(insert.returning(Watch.url), new[i : i + chunk]))
            # added by someone else since the SELECT: theirs, with our tags merged
            raced = [url for url in urls if url not in existing and url not in created]
            for i in range(0, len(raced), chunk):
                merge(s, raced[i : i + chunk])
        return created, existing

    def get_watch(self, url: str) -> WatchRecord | None:
        with self._session() as s:
            row = s.scalars(select(Watch).where(Watch.url == url)).one_or_none()
            return _watch(row) if row else None

    def get_watch_by_id(self, watch_id: int) -> WatchRecord | None:
        with self._session() as s:
            row = s.get(Watch, watch_id)
            return _watch(row) if row else None

    def list_watches(self, *, urls: Iterable[str] | None = None) -> list[WatchSummary]:
        """Every watch (or those of ``urls``) with its version count and latest
        title, oldest watch first."""
        counts = (
            select(Version.watch_id, func.count().label("n")).group_by(Version.watch_id).subquery()
        )
        latest_title = (
            select(Version.title)
            .where(Version.watch_id == Watch.id)
            .order_by(Version.seq.desc())
            .limit(1)
            .correlate(Watch)
            .scalar_subquery()
        )
        stmt = (
            select(Watch, func.coalesce(counts.c.n, 0), latest_title)
            .outerjoin(counts, counts.c.watch_id == Watch.id)
            .order_by(Watch.id)
        )
        if urls is not None:
            stmt = stmt.where(Watch.url.in_(list(urls)))
        with self._session() as s:
            return [_summary(w, n, title) for w, n, title in s.execute(stmt)]

    def remove_watch(self, url: str) -> bool:
        """Forget ``url`` and its history; False if it was not watched."""
        with self._session() as s:
            watch_id = s.scalar(select(Watch.id).where(Watch.url == url))
            if watch_id is None:
                return False
            shas = list(
                s.scalars(
                    select(Version.content_sha256).where(Version.watch_id == watch_id).distinct()
                )
            )
            for table in (ChangeRow, Check, Version, BlockSighting):
                s.execute(delete(table).where(table.watch_id == watch_id))
            s.execute(delete(Watch).where(Watch.id == watch_id))
            _delete_unused_contents(s, shas)
            log.info("removed watch %s (%d distinct contents)", url, len(shas))
            return True

    def set_state(self, url: str, state: WatchState | str) -> bool:
        """Pause, resume, retire... a watch; False if ``url`` is not watched."""
        new_state = WatchState(state)
        with self._session() as s:
            result = s.execute(update(Watch).where(Watch.url == url).values(state=new_state.value))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def update_watch(
        self, url: str, *, interval_s: int | None, tags: Sequence[str], next_check_at: int
    ) -> bool:
        """Set what the user chose for a watch (``watcher set``): its interval
        (None: adaptive), its tags, and when it is next due; False if ``url``
        is not watched. State, counters and a running check's lease are untouched."""
        values = {"interval_s": interval_s, "tags": _unique(tags), "next_check_at": next_check_at}
        with self._session() as s:
            result = s.execute(update(Watch).where(Watch.url == url).values(**values))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def watches(
        self,
        *,
        ids: Iterable[int] | None = None,
        urls: Iterable[str] | None = None,
        states: Iterable[WatchState | str] | None = None,
    ) -> list[WatchRecord]:
        """The watches matching every filter given (None: any), oldest first,
        in one SELECT however many there are."""
        conditions: list[ColumnElement[bool]] = []
        if ids is not None:
            conditions.append(Watch.id.in_(list(ids)))
        if urls is not None:
            conditions.append(Watch.url.in_(list(urls)))
        if states is not None:
            conditions.append(Watch.state.in_([WatchState(st).value for st in states]))
        stmt = select(Watch).where(*conditions).order_by(Watch.id)
        with self._session() as s:
            return [_watch(row) for row in s.scalars(stmt)]

    def resume(self, url: str, *, now_ms: int, gone: bool = False) -> bool:
        """Make a watch checked again, due at ``now_ms``, its failure and
        quiet-check counts reset; False if ``url`` is not watched.

        ``gone``: the article was removed when it was paused or retired; it
        stays GONE, so its return is recorded as a reappearance. Only the
        schedule changes: a running daemon's lease (``claimed_by``,
        ``claimed_until``) and ``last_checked_at`` are left as they are.
        """
        values = {
            "state": (WatchState.GONE if gone else WatchState.ACTIVE).value,
            "next_check_at": now_ms,
            "failure_count": 0,
            "unchanged_count": 0,
        }
        with self._session() as s:
            result = s.execute(update(Watch).where(Watch.url == url).values(**values))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- scheduling --------------------------------------------------------

    def claim_due(
        self, worker_id: str, now_ms: int, limit: int, lease_ms: int
    ) -> list[WatchRecord]:
        """Lease up to ``limit`` due watches to ``worker_id`` until ``now_ms + lease_ms``.

        Due = state active or failing, ``next_check_at <= now_ms``, and no
        unexpired lease. ``worker_id`` must be unique per claimer.
        """
        if limit <= 0:
            return []
        # Three Core statements built once (see _PICK_DUE): a claim runs for
        # every few checks, and the ORM or a statement built per call cost
        # more than the database's work.
        params = {"now": now_ms, "limit": limit, "worker": worker_id, "until": now_ms + lease_ms}
        with self._session() as s:
            pick = _PICK_DUE_LOCKED if _dialect(s) == "postgresql" else _PICK_DUE
            ids = list(s.scalars(pick, params))
            if not ids:
                return []
            # Re-checking the conditions makes the claim a compare-and-set, so it
            # stays correct even where the SELECT took no row locks (SQLite).
            s.execute(_CLAIM, {**params, "ids": ids})
            return [_watch(row) for row in s.execute(_CLAIMED, {**params, "ids": ids})]

    def release(
        self,
        watch_id: int,
        *,
        next_check_at: int,
        failure_count: int,
        unchanged_count: int,
        last_checked_at: int,
        state: WatchState | str | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        last_body_sha256: str | None = None,
        last_change_at: int | None = None,
        last_error: str | Keep | None = KEEP,
    ) -> None:
        """Clear the lease and record the check's effect on the schedule.

        Optional arguments left at ``None`` keep the stored value. A new
        ``state`` only replaces active/failing: a watch the user paused or
        retired while it was being checked stays that way.

        ``last_error``, what ``watcher list`` and ``status`` show, is the
        exception: ``None`` clears it (the check succeeded), a string records
        a failure's reason, and only :data:`KEEP` (the default) leaves it.
        """
        values: dict[str, Any] = {
            "next_check_at": next_check_at,
            "failure_count": failure_count,
            "unchanged_count": unchanged_count,
            "last_checked_at": last_checked_at,
        }
        optional = {
            "etag": etag,
            "last_modified": last_modified,
            "last_body_sha256": last_body_sha256,
            "last_change_at": last_change_at,
        }
        values.update({k: v for k, v in optional.items() if v is not None})
        if not isinstance(last_error, Keep):
            values["last_error"] = last_error
        if state is not None:
            values["state"] = WatchState(state).value
        params = {f"r_{key}": value for key, value in values.items()}
        with self._session() as s:
            s.execute(_release_statement(frozenset(values)), {**params, "r_id": watch_id})

    def claim(
        self, worker_id: str, watch_ids: list[int], now_ms: int, lease_ms: int
    ) -> list[WatchRecord]:
        """Lease these watches now, due or not (``watcher check``); a watch a
        daemon is checking right now (an unexpired lease) is left out."""
        if not watch_ids:
            return []
        until = now_ms + lease_ms
        free = or_(Watch.claimed_until.is_(None), Watch.claimed_until <= now_ms)
        with self._session() as s:
            s.execute(
                update(Watch)
                .where(Watch.id.in_(watch_ids), free)
                .values(claimed_by=worker_id, claimed_until=until)
                .execution_options(synchronize_session=False)
            )
            claimed = s.scalars(
                select(Watch)
                .where(Watch.id.in_(watch_ids), Watch.claimed_by == worker_id)
                .order_by(Watch.id)
                .execution_options(populate_existing=True)
            )
            return [_watch(row) for row in claimed]

    def drop_claims(self, worker_id: str | None = None) -> int:
        """Clear leases without rescheduling: those of one worker (abandoned
        fetches at shutdown), or all of them (a lone SQLite daemon starting
        after a crash, when no one else can hold a lease)."""
        query = update(Watch).where(Watch.claimed_by.is_not(None))
        if worker_id is not None:
            query = query.where(Watch.claimed_by == worker_id)
        with self._session() as s:
            result = s.execute(query.values(claimed_by=None, claimed_until=None))
            return int(getattr(result, "rowcount", 0) or 0)

    def renew_claims(self, worker_id: str, watch_ids: Iterable[int], until: int) -> int:
        """Extend ``worker_id``'s leases on these watches to ``until`` (a daemon
        does this for its in-flight checks every poll, so a lease can be short);
        returns how many it still held. A watch released meanwhile, or taken by
        another worker after the lease ran out, is left alone."""
        ids = sorted(set(watch_ids))
        if not ids:
            return 0
        with self._session() as s:
            result = s.execute(
                update(Watch)
                .where(Watch.id.in_(ids), Watch.claimed_by == worker_id)
                .values(claimed_until=until)
                .execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def has_archive_path(self, watch_id: int, archive_path: str) -> bool:
        """Does a version of this watch name this archive file? (crash recovery)"""
        stmt = select(Version.id).where(
            Version.watch_id == watch_id, Version.archive_path == archive_path
        )
        with self._session() as s:
            return s.scalars(stmt.limit(1)).first() is not None

    def due_count(self, now_ms: int) -> int:
        """How many watches are due and unclaimed at ``now_ms`` (the backlog)."""
        with self._session() as s:
            return s.scalar(select(func.count()).select_from(Watch).where(*_claimable(now_ms))) or 0

    # -- checks ------------------------------------------------------------

    def record_check(
        self,
        watch_id: int,
        *,
        checked_at: int,
        outcome: CheckOutcome | str,
        duration_ms: float | None = None,
        http_status: int | None = None,
        final_url: str | None = None,
        redirects: Sequence[str] = (),
        etag: str | None = None,
        last_modified: str | None = None,
        body_sha256: str | None = None,
        error: str | None = None,
        version_id: int | None = None,
    ) -> int:
        """Store one check and prune the watch's old checks; return the check id."""
        row = {
            "watch_id": watch_id,
            "checked_at": checked_at,
            "outcome": CheckOutcome(outcome).value,
            "duration_ms": None if duration_ms is None else round(duration_ms),
            "http_status": http_status,
            "final_url": final_url,
            "redirects": list(redirects),
            "etag": etag,
            "last_modified": last_modified,
            "body_sha256": body_sha256,
            "error": error,
            "version_id": version_id,
        }
        with self._session() as s:
            check_id = int(s.execute(_INSERT_CHECK_ID, row).scalar_one())
            keep = self._check_retention
            if keep is not None and _prune_due(keep):
                _prune_checks(s, watch_id, keep)
            return check_id

    def record_quiet_checks(self, checks: Sequence[QuietCheck]) -> None:
        """Store checks that found nothing new and release their watches (see
        :class:`QuietCheck`): two statements, each executed once for all of
        them, so the daemon writes a batch of unchanged checks in one
        transaction. Old checks are pruned as :meth:`record_check` does."""
        if not checks:
            return
        with self._session() as s:
            s.execute(_INSERT_CHECK, [_quiet_check_row(c) for c in checks])
            s.execute(_RELEASE_QUIET, [_quiet_release(c) for c in checks])
            keep = self._check_retention
            if keep is not None:
                for watch_id in sorted({c.watch_id for c in checks if _prune_due(keep)}):
                    _prune_checks(s, watch_id, keep)

    def recent_checks(self, watch_id: int, limit: int = 20) -> list[CheckRecord]:
        """The newest checks of a watch, newest first."""
        stmt = select(Check).where(Check.watch_id == watch_id).order_by(Check.id.desc())
        with self._session() as s:
            return [_check(row) for row in s.scalars(stmt.limit(limit))]

    def errors_since(self, since_ms: int) -> int:
        """How many checks (all watches) failed at or after ``since_ms``."""
        stmt = (
            select(func.count())
            .select_from(Check)
            .where(Check.checked_at >= since_ms, Check.outcome == CheckOutcome.ERROR.value)
        )
        with self._session() as s:
            return s.scalar(stmt) or 0

    # -- versions ----------------------------------------------------------

    def add_version(
        self,
        watch_id: int,
        *,
        captured_at: int,
        content_sha256: str,
        content_text: str,
        http_status: int | None,
        final_url: str | None,
        title: str | None,
        archive_path: str | None,
        page_metadata: dict[str, Any] | None = None,
        created_at: int | None = None,
        seq: int | None = None,
        base_text: str | None = None,
        warc: Evidence | None = None,
        url: str | None = None,
    ) -> VersionRecord:
        """Store the next version of a watch (seq = previous + 1), chained to
        the previous one (watcher/evidence.py).

        ``warc``: where the fetch's WARC response record lies (its ``warc_*``
        fields). ``url``: the watch's URL, when the caller has it at hand
        (else it is read), for the chain entry.

        ``base_text``: the previous version's content text, when the caller
        has it at hand (the daemon diffed against it): used as the delta's
        base if its hash is the previous version's, sparing a read of its chain.

        ``content_sha256`` is the caller's hash of ``content_text`` (the
        snapshot without its capture-time line); the text is stored once per
        hash however many versions share it, compressed, as a delta against
        the watch's previous version where that is small (see
        :mod:`watcher.store.codec`). A caller that already knows the next
        ``seq`` (an import appending a chain) passes it; the unique (watch,
        seq) constraint still guards it.
        """
        with self._session() as s:
            # Statements are built without values and executed with parameters,
            # so SQLAlchemy compiles each once and reuses it from its cache.
            new_content = s.scalar(_CONTENT_EXISTS, {"sha256": content_sha256}) is None
            previous = s.execute(_LATEST_VERSION, {"watch_id": watch_id}).first()
            if new_content:
                base = None
                if previous is not None:
                    if base_text is None or _sha256(base_text) != previous.content_sha256:
                        base_text = _content_text(s, previous.content_sha256)
                    base = codec.Base(previous.content_sha256, base_text, previous.depth)
                _add_content(s, content_sha256, content_text, base)
            if seq is None:
                seq = (previous.seq if previous is not None else 0) + 1
            metadata = dict(page_metadata or {})
            proof = _chained(
                s,
                watch_id,
                url,
                seq=seq,
                captured_at=captured_at,
                content_text=content_text,
                warc=warc or Evidence(),
                previous=previous,
            )
            values: dict[str, Any] = {
                "watch_id": watch_id,
                "seq": seq,
                "captured_at": captured_at,
                "content_sha256": content_sha256,
                "http_status": http_status,
                "final_url": final_url,
                "title": title,
                "archive_path": archive_path,
                "page_metadata": metadata,
                "created_at": now_ms() if created_at is None else created_at,
            }
            holder = _metadata_holder(previous, metadata)
            # A Core INSERT … RETURNING: the ORM unit of work cost more than
            # the statement itself on this hot path.
            version_id = s.execute(
                _INSERT_VERSION,
                {
                    **values,
                    **dataclasses.asdict(proof),
                    "page_metadata": {} if holder else metadata,
                    "metadata_seq": holder,
                },
            ).scalar_one()
            return VersionRecord(id=version_id, **values, evidence=proof)

    def get_version(self, version_id: int) -> VersionRecord | None:
        with self._session() as s:
            row = s.get(Version, version_id)
            return _versions(s, [row])[0] if row else None

    def latest_version(self, watch_id: int) -> VersionRecord | None:
        """The newest version of a watch: one Core query on a plain connection
        (read for every new version; the ORM load cost ten times the query)."""
        with self._reading() as conn:
            row = conn.execute(_LATEST_VERSION, {"watch_id": watch_id}).first()
        if row is None:
            return None
        return _version(row, row.page_metadata if row.metadata_seq is None else row.held_metadata)

    def versions(self, watch_id: int) -> list[VersionRecord]:
        """All versions of a watch, oldest (seq 1) first."""
        stmt = select(Version).where(Version.watch_id == watch_id).order_by(Version.seq)
        with self._session() as s:
            return _versions(s, list(s.scalars(stmt)))

    def find_version_by_content(self, watch_id: int, sha256: str) -> VersionRecord | None:
        """The latest version of a watch with this content, to recognise reverts."""
        stmt = (
            select(Version)
            .where(Version.watch_id == watch_id, Version.content_sha256 == sha256)
            .order_by(Version.seq.desc())
            .limit(1)
        )
        with self._session() as s:
            row = s.scalars(stmt).one_or_none()
            return _versions(s, [row])[0] if row else None

    def version_with_content(self, watch_id: int, sha256: str) -> int | None:
        """The id of the latest version of a watch with this content: one
        cheap look (a revert is rare) before :meth:`find_version_by_content`."""
        with self._reading() as conn:
            found = conn.scalar(_VERSION_WITH_CONTENT, {"watch_id": watch_id, "sha256": sha256})
            return int(found) if found is not None else None

    def version_text(self, version_id: int) -> str:
        """The stored content text of a version (raises StoreError if unknown):
        the plain text, however it is kept (compressed, a delta)."""
        with self._session() as s:
            sha = s.scalar(select(Version.content_sha256).where(Version.id == version_id))
            if sha is None:
                raise StoreError(f"no stored version with id {version_id}")
            return _content_text(s, sha)

    def version_snapshot(self, version: VersionRecord) -> Snapshot:
        """A stored version as a snapshot, at its capture time, from the database alone."""
        text = self.version_text(version.id)
        return snapshot.stored(text, version.captured_at, source=f"version {version.seq}")

    # -- changes -----------------------------------------------------------

    def add_change(
        self,
        change: Change,
        *,
        watch_id: int,
        old_version_id: int,
        new_version_id: int | None,
        reverted_to_version_id: int | None = None,
        created_at: int | None = None,
        deliveries: Sequence[OutboxEntry] = (),
    ) -> int:
        """Store a classified change between two versions (``new_version_id``
        None: the article went away after ``old_version_id``) and the messages
        it owes (the outbox rows, in the same transaction); return its id."""
        values = {
            "watch_id": watch_id,
            "old_version_id": old_version_id,
            "new_version_id": new_version_id,
            "created_at": now_ms() if created_at is None else created_at,
            "verdict": ChangeVerdict(change.verdict.value).value,
            "kinds": change.kinds,
            "summary": change.summary,
            "record": change_to_dict(change),
            "reverted_to_version_id": reverted_to_version_id,
        }
        with self._session() as s:
            change_id = int(s.execute(_INSERT_CHANGE, values).scalar_one())
            self._enqueue(s, change_id, deliveries, now_ms())
            return change_id

    def significant_change_since(self, watch_id: int, version_id: int) -> bool:
        """Whether a significant change led from version ``version_id`` (or a
        later one) to a newer version: what makes a return to it news."""
        stmt = (
            select(ChangeRow.id)
            .where(
                ChangeRow.watch_id == watch_id,
                ChangeRow.old_version_id >= version_id,
                ChangeRow.new_version_id.is_not(None),
                ChangeRow.verdict == ChangeVerdict.SIGNIFICANT.value,
            )
            .limit(1)
        )
        with self._session() as s:
            return s.scalar(stmt) is not None

    # -- boilerplate learning ------------------------------------------------

    def record_sightings(
        self, host: str, watch_id: int, fingerprints: Iterable[str], story: str | None
    ) -> None:
        """Note that these block fingerprints appear in this article of ``host``,
        which tells ``story``."""
        rows = [
            {"host": host, "fingerprint": fp, "watch_id": watch_id, "story": story}
            for fp in sorted(fingerprints)
        ]
        if not rows:
            return
        with self._session() as s:
            s.execute(_ADD_SIGHTINGS[_dialect(s) == "postgresql"], rows)

    def boilerplate_fingerprints(self, host: str, threshold: int) -> frozenset[str]:
        """The fingerprints seen in at least ``threshold`` distinct stories of
        ``host`` (a sighting without a story stands for its own watch's)."""
        stmt = (
            select(BlockSighting.fingerprint)
            .where(BlockSighting.host == host)
            .group_by(BlockSighting.fingerprint)
            .having(func.count(distinct(_STORY_OR_WATCH)) >= threshold)
        )
        with self._session() as s:
            return frozenset(s.scalars(stmt))

    def latest_change(self, watch_id: int) -> ChangeRecord | None:
        """The newest change of a watch (a removal has no new version)."""
        found = self._changes(
            ChangeRow.id
            == select(func.max(ChangeRow.id))
            .where(ChangeRow.watch_id == watch_id)
            .scalar_subquery()
        )
        return found[0] if found else None

    def change(self, change_id: int) -> ChangeRecord | None:
        found = self._changes(ChangeRow.id == change_id)
        return found[0] if found else None

    def changes(self, watch_id: int) -> list[ChangeRecord]:
        """All changes of a watch, oldest first."""
        return self._changes(ChangeRow.watch_id == watch_id)

    def changes_after(
        self, change_id: int, *, since_ms: int | None = None, limit: int = 100
    ) -> list[ChangeRecord]:
        """Up to ``limit`` changes over all watches with ids above ``change_id``
        (recorded at or after ``since_ms`` if given), in id order: a reader
        polling for what is new keeps the last id it saw."""
        conditions = [ChangeRow.id > change_id]
        if since_ms is not None:
            conditions.append(ChangeRow.created_at >= since_ms)
        return self._changes(*conditions, limit=max(0, limit))

    def _changes(
        self, *conditions: ColumnElement[bool], limit: int | None = None
    ) -> list[ChangeRecord]:
        stmt = (
            select(ChangeRow, Watch.url)
            .join(Watch, Watch.id == ChangeRow.watch_id)
            .where(*conditions)
            .order_by(ChangeRow.id)
            .limit(limit)
        )
        with self._session() as s:
            return [_change(row, url) for row, url in s.execute(stmt)]

    # -- read-only queries for the report site -------------------------------

    def histories(
        self, watch_ids: Iterable[int]
    ) -> Iterator[tuple[WatchRecord, list[VersionRecord], list[ChangeRecord]]]:
        """The watches of ``watch_ids`` (those still there, by id) with all
        their versions and changes, oldest first: three queries a chunk of
        :data:`HISTORY_CHUNK` watches, one session each, where a watch at a
        time took three sessions (the report site rewrites pages by the
        hundred). Yielded chunk by chunk, so only one chunk is in memory."""
        ids = sorted(set(watch_ids))
        for start in range(0, len(ids), HISTORY_CHUNK):
            yield from self._histories(ids[start : start + HISTORY_CHUNK])

    def _histories(
        self, chunk: list[int]
    ) -> list[tuple[WatchRecord, list[VersionRecord], list[ChangeRecord]]]:
        history: dict[int, tuple[WatchRecord, list[VersionRecord], list[ChangeRecord]]]
        with self._session() as s:
            watches = s.scalars(select(Watch).where(Watch.id.in_(chunk)).order_by(Watch.id))
            history = {w.id: (_watch(w), [], []) for w in watches}
            rows = s.scalars(
                select(Version)
                .where(Version.watch_id.in_(chunk))
                .order_by(Version.watch_id, Version.seq)
            )
            for version in _versions(s, list(rows)):
                history[version.watch_id][1].append(version)
            changes = (
                select(ChangeRow, Watch.url)
                .join(Watch, Watch.id == ChangeRow.watch_id)
                .where(ChangeRow.watch_id.in_(chunk))
                .order_by(ChangeRow.id)
            )
            for row, url in s.execute(changes):
                history[row.watch_id][2].append(_change(row, url))
        return list(history.values())

    def recent_changes(
        self, *, verdict: ChangeVerdict | str | None = None, limit: int = 100
    ) -> list[ChangeRecord]:
        """The newest ``limit`` changes over all watches (optionally of one verdict),
        newest first: one query, so a site update costs the same for 10 or 10,000
        watches."""
        conditions: list[ColumnElement[bool]] = []
        if verdict is not None:
            conditions.append(ChangeRow.verdict == ChangeVerdict(verdict).value)
        stmt = (
            select(ChangeRow, Watch.url)
            .join(Watch, Watch.id == ChangeRow.watch_id)
            .where(*conditions)
            .order_by(ChangeRow.created_at.desc(), ChangeRow.id.desc())
            .limit(max(0, limit))
        )
        with self._session() as s:
            return [_change(row, url) for row, url in s.execute(stmt)]

    def latest_changes_by_watch(
        self, *, verdict: ChangeVerdict | str | None = None
    ) -> dict[int, ChangeRecord]:
        """Each watch's newest change (optionally of one verdict), by watch id;
        watches without one are absent."""
        conditions: list[ColumnElement[bool]] = []
        if verdict is not None:
            conditions.append(ChangeRow.verdict == ChangeVerdict(verdict).value)
        newest = select(func.max(ChangeRow.id)).where(*conditions).group_by(ChangeRow.watch_id)
        stmt = (
            select(ChangeRow, Watch.url)
            .join(Watch, Watch.id == ChangeRow.watch_id)
            .where(ChangeRow.id.in_(newest))
        )
        with self._session() as s:
            return {row.watch_id: _change(row, url) for row, url in s.execute(stmt)}


class Transaction(Repository):
    """The repository bound to one open transaction (see :meth:`Store.transaction`)."""

    def __init__(self, session: Session, check_retention: int | None) -> None:
        self._s = session
        self._check_retention = check_retention

    @contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            yield self._s
            self._s.flush()
        except SQLAlchemyError as exc:
            raise _store_error(exc) from exc

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        try:
            yield self._s.connection()
        except SQLAlchemyError as exc:
            raise _store_error(exc) from exc


class Store(Repository):
    """The repository over an Engine; each method is its own transaction."""

    def __init__(self, engine: Engine, *, check_retention: int | None = None) -> None:
        """``check_retention``: checks kept per watch; None keeps every check."""
        self._engine = engine
        self._check_retention = check_retention

    @classmethod
    def open(cls, url: str, *, check: bool = True, check_retention: int | None = None) -> Store:
        """Open the database at ``url``; refuse it unless its schema is current."""
        engine = open_engine(url)
        if check:
            try:
                check_schema(engine)
            except BaseException:
                engine.dispose()
                raise
        return cls(engine, check_retention=check_retention)

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        """Close pooled connections (the Engine stays usable and reconnects)."""
        self._engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One transaction for several writes: all of them commit, or none do."""
        try:
            with Session(self._engine, expire_on_commit=False) as s, s.begin():
                yield Transaction(s, self._check_retention)
        except SQLAlchemyError as exc:
            raise _store_error(exc) from exc

    @contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            with Session(self._engine, expire_on_commit=False) as s, s.begin():
                yield s
        except SQLAlchemyError as exc:
            raise _store_error(exc) from exc

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise _store_error(exc) from exc


# -- helpers -------------------------------------------------------------


def _store_error(exc: SQLAlchemyError) -> StoreError:
    """One line: the error's class and the driver's first line, without the
    SQL statement or SQLAlchemy's "Background on this error at" link."""
    return StoreError(f"database error: {type(exc).__name__}: {error_detail(exc)}")


def _dialect(s: Session) -> str:
    return s.get_bind().dialect.name


def _insert(s: Session, table: type[Watch] | type[Content] | type[BlockSighting]) -> Any:
    """An INSERT supporting ON CONFLICT, for the session's database (of the
    class's Table: a Core statement, see _INSERT_VERSION)."""
    module = postgresql if _dialect(s) == "postgresql" else sqlite
    return module.insert(cast(Table, table.__table__))


def _claimable(now: int) -> tuple[ColumnElement[bool], ...]:
    return (
        Watch.state.in_([st.value for st in CHECKED_STATES]),
        Watch.next_check_at <= now,
        or_(Watch.claimed_until.is_(None), Watch.claimed_until <= now),
    )


@functools.cache
def _release_statement(columns: frozenset[str]) -> Update:
    """release()'s UPDATE of these columns (and the lease), built once per
    set: a statement built per call cost more than its execution. A new
    ``state`` replaces only active/failing."""
    values: dict[str, Any] = {"claimed_by": None, "claimed_until": None}
    values.update({column: bindparam(f"r_{column}") for column in sorted(columns)})
    if "state" in columns:
        values["state"] = case(
            (
                _WATCHES.c.state.in_([literal(st.value) for st in CHECKED_STATES]),
                bindparam("r_state"),
            ),
            else_=_WATCHES.c.state,
        )
    return update(_WATCHES).where(_WATCHES.c.id == bindparam("r_id")).values(values)


def _prune_due(keep: int) -> bool:
    """Whether this check prunes its watch's old checks. Pruning costs two
    statements; doing it on about one check in keep/10, at random (no watch
    can keep missing its turn), bounds the log near keep + 10% for a fraction
    of the cost. Small limits are enforced on every check."""
    return random.random() * max(1, min(50, keep // 10)) < 1


def _quiet_check_row(check: QuietCheck) -> dict[str, Any]:
    return {
        "watch_id": check.watch_id,
        "checked_at": check.checked_at,
        "outcome": CheckOutcome(check.outcome).value,
        "duration_ms": check.duration_ms,
        "http_status": check.http_status,
        "final_url": check.final_url,
        "redirects": list(check.redirects),
        "etag": check.etag,
        "last_modified": check.last_modified,
        "body_sha256": check.body_sha256,
        "error": None,
        "version_id": None,
    }


def _quiet_release(check: QuietCheck) -> dict[str, Any]:
    return {
        "q_id": check.watch_id,
        "q_next": check.next_check_at,
        "q_unchanged": check.unchanged_count,
        "q_checked": check.checked_at,
        "q_state": WatchState(check.state).value,
        "q_etag": check.etag,
        "q_modified": check.last_modified,
        "q_body": check.last_body_sha256,
    }


def _prune_checks(s: Session, watch_id: int, keep: int) -> int:
    cutoff = s.scalar(
        select(Check.id)
        .where(Check.watch_id == watch_id)
        .order_by(Check.id.desc())
        .offset(max(keep, 0))
        .limit(1)
    )
    if cutoff is None:
        return 0
    result = s.execute(delete(Check).where(Check.watch_id == watch_id, Check.id <= cutoff))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _add_content(s: Session, sha256: str, text: str, base: codec.Base | None) -> None:
    """Store a new content, compressed or as a delta against ``base``; a
    concurrent writer of the same content (same hash, same text) wins."""
    encoded = codec.encode(text, base)
    content = _insert(s, Content).on_conflict_do_nothing(index_elements=["sha256"])
    s.execute(
        content,
        {
            "sha256": sha256,
            "text": None,
            "size": len(text.encode("utf-8")),
            "codec": encoded.codec,
            "data": encoded.data,
            "base_sha256": encoded.base_sha256,
            "depth": encoded.depth,
        },
    )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _content_text(s: Session, sha256: str) -> str:
    """The plain text of a content, its delta chain read in one query."""
    rows = s.execute(_CONTENT_CHAIN, {"sha256": sha256}).all()
    if not rows:
        raise StoreError(f"no stored content {sha256[:12]}")
    return codec.decode([codec.Stored(r.sha256, r.codec, r.text, r.data) for r in rows])


def _chain_query() -> Any:
    """A content and, through ``base_sha256``, every row it needs, the asked
    one first (a recursive CTE: one round trip however long the chain)."""
    first = select(
        Content.sha256, Content.codec, Content.text, Content.data, Content.base_sha256,
        literal(0).label("n"),
    ).where(Content.sha256 == bindparam("sha256"))  # fmt: skip
    chain = first.cte("chain", recursive=True)
    base = aliased(Content)
    chain = chain.union_all(
        select(
            base.sha256, base.codec, base.text, base.data, base.base_sha256, chain.c.n + 1
        ).where(base.sha256 == chain.c.base_sha256, chain.c.n < codec.FULL_EVERY * 4)
    )
    return select(chain.c.sha256, chain.c.codec, chain.c.text, chain.c.data).order_by(chain.c.n)


_CONTENT_CHAIN = _chain_query()
_CONTENT_EXISTS = select(Content.sha256).where(Content.sha256 == bindparam("sha256"))


def _metadata_holder(previous: Any, metadata: dict[str, Any]) -> int | None:
    """The seq of the earlier version whose metadata a new version can point
    to instead of repeating it: the previous version's holder, when the
    metadata did not change; None to store it (changed, empty, or the first).
    ``previous`` is the watch's _LATEST_VERSION row, or None."""
    if previous is None or not metadata:
        return None
    if previous.metadata_seq is None:
        return int(previous.seq) if previous.page_metadata == metadata else None
    return int(previous.metadata_seq) if previous.held_metadata == metadata else None


def _versions(s: Session, rows: Sequence[Version]) -> list[VersionRecord]:
    """Records of these rows, each with its page metadata, read from the
    earlier version holding it where a row names one (one query at most)."""
    held = {(r.watch_id, r.seq): r.page_metadata for r in rows if r.metadata_seq is None}
    wanted: dict[int, set[int]] = {}
    for r in rows:
        if r.metadata_seq is not None and (r.watch_id, r.metadata_seq) not in held:
            wanted.setdefault(r.watch_id, set()).add(r.metadata_seq)
    for watch_id, seqs in wanted.items():
        stmt = select(Version.seq, Version.page_metadata).where(
            Version.watch_id == watch_id, Version.seq.in_(sorted(seqs))
        )
        held.update({(watch_id, seq): metadata for seq, metadata in s.execute(stmt)})
    return [
        _version(
            r, r.page_metadata if r.metadata_seq is None else held.get((r.watch_id, r.metadata_seq))
        )
        for r in rows
    ]


def _delete_unused_contents(s: Session, shas: list[str]) -> None:
    """Delete the contents of ``shas`` that no version uses.

    A content another (kept) content is a delta of becomes deletable too: the
    kept one is first rewritten as a full copy, so purging a watch leaves
    nothing of its text but what other watches' versions show. The unused
    rows go deltas first (a delta's depth exceeds its base's), so no chunk
    removes a row a later chunk still points at."""
    seen = set(shas)
    pending = list(dict.fromkeys(shas))
    while pending:
        unused = _unused_contents(s, pending)
        doomed = {sha for sha, _, _ in unused}
        _materialise_dependents(s, doomed)
        ordered = [sha for sha, _, _ in sorted(unused, key=lambda row: -row[1])]
        for i in range(0, len(ordered), _GC_CHUNK):
            s.execute(delete(Content).where(Content.sha256.in_(ordered[i : i + _GC_CHUNK])))
        # a base outside ``shas`` (another watch's content) may be unused now
        pending = [base for _, _, base in unused if base is not None and base not in seen]
        seen.update(pending)


def _unused_contents(s: Session, shas: list[str]) -> list[tuple[str, int, str | None]]:
    """(sha256, depth, base_sha256) of the contents of ``shas`` no version uses."""
    still_used = select(Version.id).where(Version.content_sha256 == Content.sha256).exists()
    found: list[tuple[str, int, str | None]] = []
    for i in range(0, len(shas), _GC_CHUNK):
        stmt = select(Content.sha256, Content.depth, Content.base_sha256).where(
            Content.sha256.in_(shas[i : i + _GC_CHUNK]), ~still_used
        )
        found.extend((row.sha256, row.depth, row.base_sha256) for row in s.execute(stmt))
    return found


def _materialise_dependents(s: Session, doomed: set[str]) -> None:
    """Rewrite as full copies the kept contents that are deltas of ``doomed`` ones."""
    listed = sorted(doomed)
    kept: list[str] = []
    for i in range(0, len(listed), _GC_CHUNK):
        stmt = select(Content.sha256).where(Content.base_sha256.in_(listed[i : i + _GC_CHUNK]))
        kept.extend(sha for sha in s.scalars(stmt) if sha not in doomed)
    for sha in kept:
        encoded = codec.encode(_content_text(s, sha), None)
        s.execute(
            update(Content)
            .where(Content.sha256 == sha)
            .values(codec=encoded.codec, data=encoded.data, base_sha256=None, depth=0, text=None)
        )


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _watch(row: Watch | Row[Any]) -> WatchRecord:
    return WatchRecord(
        id=row.id,
        url=row.url,
        site=row.site,
        interval_s=row.interval_s,
        state=WatchState(row.state),
        tags=tuple(row.tags),
        created_at=row.created_at,
        next_check_at=row.next_check_at,
        last_checked_at=row.last_checked_at,
        last_change_at=row.last_change_at,
        etag=row.etag,
        last_modified=row.last_modified,
        last_body_sha256=row.last_body_sha256,
        failure_count=row.failure_count,
        unchanged_count=row.unchanged_count,
        claimed_by=row.claimed_by,
        claimed_until=row.claimed_until,
        last_error=row.last_error,
        source_id=row.source_id,
        source_meta=dict(row.source_meta) if row.source_meta is not None else None,
    )


def _summary(row: Watch, version_count: int, latest_title: str | None) -> WatchSummary:
    return WatchSummary(
        id=row.id,
        url=row.url,
        site=row.site,
        state=WatchState(row.state),
        interval_s=row.interval_s,
        tags=tuple(row.tags),
        next_check_at=row.next_check_at,
        last_checked_at=row.last_checked_at,
        last_change_at=row.last_change_at,
        failure_count=row.failure_count,
        version_count=int(version_count),
        latest_title=latest_title,
        last_error=row.last_error,
        source_meta=dict(row.source_meta) if row.source_meta is not None else None,
    )


def _chained(
    s: Session,
    watch_id: int,
    url: str | None,
    *,
    seq: int,
    captured_at: int,
    content_text: str,
    warc: Evidence,
    previous: Any,
) -> Evidence:
    """The evidence columns of a new version: its snapshot hash, ``warc``'s
    record, and its chain entry after ``previous`` (the watch's latest row)."""
    if url is None:
        url = s.scalar(select(Watch.url).where(Watch.id == watch_id)) or ""
    snapshot_sha = evidence.snapshot_sha256(content_text, captured_at)
    prev = previous.chain_hash if previous is not None else None
    prev = prev or evidence.GENESIS
    return dataclasses.replace(
        warc,
        snapshot_sha256=snapshot_sha,
        prev_hash=prev,
        chain_hash=evidence.chain_hash(
            url=url,
            seq=seq,
            captured_at=captured_at,
            snapshot_sha256=snapshot_sha,
            warc_sha256=warc.warc_sha256,
            prev_hash=prev,
        ),
    )


def _evidence(row: Any) -> Evidence:
    if row.chain_hash is None:
        return Evidence()
    return Evidence(
        snapshot_sha256=row.snapshot_sha256,
        warc_file=row.warc_file,
        warc_offset=row.warc_offset,
        warc_length=row.warc_length,
        warc_record_id=row.warc_record_id,
        warc_sha256=row.warc_sha256,
        prev_hash=row.prev_hash,
        chain_hash=row.chain_hash,
    )


def _version(row: Any, metadata: dict[str, Any] | None) -> VersionRecord:
    """A record of a versions row (a mapped Version or a Core row of its columns)."""
    return VersionRecord(
        id=row.id,
        watch_id=row.watch_id,
        seq=row.seq,
        captured_at=row.captured_at,
        content_sha256=row.content_sha256,
        http_status=row.http_status,
        final_url=row.final_url,
        title=row.title,
        archive_path=row.archive_path,
        page_metadata=dict(metadata or {}),
        created_at=row.created_at,
        evidence=_evidence(row),
    )


def _check(row: Check) -> CheckRecord:
    return CheckRecord(
        id=row.id,
        watch_id=row.watch_id,
        checked_at=row.checked_at,
        outcome=CheckOutcome(row.outcome),
        duration_ms=row.duration_ms,
        http_status=row.http_status,
        final_url=row.final_url,
        redirects=tuple(row.redirects or ()),
        etag=row.etag,
        last_modified=row.last_modified,
        body_sha256=row.body_sha256,
        error=row.error,
        version_id=row.version_id,
    )


def _change(row: ChangeRow, url: str) -> ChangeRecord:
    return change_record(row, url)
