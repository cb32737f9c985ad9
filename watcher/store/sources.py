"""Sources: feeds and section pages, leased by pollers like watches by checkers.

A source is claimed with the same compare-and-set as a watch (and
``FOR UPDATE SKIP LOCKED`` on PostgreSQL), and released only by the worker
holding it, so a poller whose lease ran out cannot overwrite its successor.
Removing a source keeps the watches it found (their ``source_id`` becomes
NULL). Config-file sources (``origin = 'config'``) are owned by the file:
:meth:`SourcesRepository.sync_config_sources` makes the table match it.

A watch found by a source carries ``source_meta`` (see :mod:`watcher.feedmeta`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import ColumnElement, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from watcher import feedmeta
from watcher.config import SourceConfig
from watcher.store.leases import lease
from watcher.store.records import SourceRecord, SourceSync, WatchRecord, WatchState
from watcher.store.tables import ChangeRow, Source, Watch

ORIGINS = ("cli", "config")
ACTIVE = "active"


class SourcesRepository:
    """Source operations; mixed into :class:`watcher.store.Repository`."""

    @contextmanager
    def _session(self) -> Iterator[Session]:
        raise NotImplementedError
        yield  # pragma: no cover

    def add_source(
        self,
        url: str,
        *,
        tags: Iterable[str] = (),
        interval_s: int,
        match: str | None = None,
        origin: str = "cli",
        now_ms: int,
    ) -> tuple[SourceRecord, bool]:
        """Create the source, or give an existing one these settings (and
        ``origin``); return it and whether it is new. New ones are due now."""
        if origin not in ORIGINS:
            raise ValueError(f"unknown source origin {origin!r}")
        settings = {"tags": list(dict.fromkeys(tags)), "interval_s": interval_s, "match": match}
        with self._session() as s:
            insert = _insert(s).values(
                url=url, kind="", state=ACTIVE, origin=origin, created_at=now_ms,
                next_check_at=now_ms, failure_count=0, **settings,
            )  # fmt: skip
            created = s.scalar(
                insert.on_conflict_do_nothing(index_elements=["url"]).returning(Source.id)
            )
            if created is None:
                s.execute(update(Source).where(Source.url == url).values(origin=origin, **settings))
            row = s.scalars(
                select(Source).where(Source.url == url).execution_options(populate_existing=True)
            ).one()
            return _source(row), created is not None

    def get_source(self, url: str) -> SourceRecord | None:
        with self._session() as s:
            row = s.scalars(select(Source).where(Source.url == url)).one_or_none()
            return _source(row) if row else None

    def list_sources(self) -> list[SourceRecord]:
        """Every source with how many watches it found, oldest first."""
        counts = (
            select(Watch.source_id, func.count().label("n"))
            .where(Watch.source_id.is_not(None))
            .group_by(Watch.source_id)
            .subquery()
        )
        stmt = (
            select(Source, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.source_id == Source.id)
            .order_by(Source.id)
        )
        with self._session() as s:
            return [_source(row, int(n)) for row, n in s.execute(stmt)]

    def remove_source(self, url: str) -> bool:
        """Forget a source; the watches it found stay. False if there is none."""
        with self._session() as s:
            source_id = s.scalar(select(Source.id).where(Source.url == url))
            if source_id is None:
                return False
            _forget(s, [source_id])
            return True

    def sync_config_sources(
        self, configs: Sequence[SourceConfig], *, default_interval_s: int, now_ms: int
    ) -> SourceSync:
        """Make the config-file sources match ``configs``: add or update each
        (a CLI source the file names becomes the file's), remove the file's
        sources it no longer names."""
        wanted = {c.url: c for c in configs}
        with self._session() as s:
            known = {
                row.url: row
                for row in s.scalars(select(Source).where(Source.url.in_(list(wanted))))
            }
        added = updated = 0
        for url, c in wanted.items():
            interval = round(c.interval_s) if c.interval_s else default_interval_s
            row = known.get(url)
            if row is not None and (row.origin, list(row.tags), row.interval_s, row.match) == (
                "config", list(dict.fromkeys(c.tags)), interval, c.match,
            ):  # fmt: skip
                continue
            self.add_source(url, tags=c.tags, interval_s=interval, match=c.match,
                            origin="config", now_ms=now_ms)  # fmt: skip
            added, updated = (added + 1, updated) if row is None else (added, updated + 1)
        with self._session() as s:
            gone = list(
                s.scalars(
                    select(Source.id).where(
                        Source.origin == "config", Source.url.not_in(list(wanted))
                    )
                )
            )
            _forget(s, gone)
        return SourceSync(added, updated, len(gone))

    # -- polling -----------------------------------------------------------------

    def claim_sources(
        self,
        worker_id: str,
        now_ms: int,
        limit: int,
        lease_ms: int,
        *,
        ids: Iterable[int] | None = None,
    ) -> list[SourceRecord]:
        """Lease up to ``limit`` due active sources (most overdue first) to
        ``worker_id``; with ``ids``, those sources due or not (``--now``)."""
        if limit <= 0:
            return []
        until = now_ms + lease_ms
        conditions = _claimable(now_ms, due=ids is None)
        if ids is not None:
            conditions = (*conditions, Source.id.in_(sorted(set(ids))))
        order = (Source.next_check_at, Source.id)
        with self._session() as s:
            picked = lease(
                s, Source, conditions, order_by=order, limit=limit, worker_id=worker_id, until=until
            )
            if not picked:
                return []
            rows = s.scalars(
                select(Source)
                .where(
                    Source.id.in_(picked),
                    Source.claimed_by == worker_id,
                    Source.claimed_until == until,
                )
                .order_by(Source.next_check_at, Source.id)
                .execution_options(populate_existing=True)
            )
            return [_source(row) for row in rows]

    def release_source(
        self,
        source_id: int,
        worker_id: str,
        *,
        checked_at: int,
        next_check_at: int,
        failure_count: int = 0,
        error: str | None = None,
        kind: str | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> bool:
        """Record a poll and clear the lease, if ``worker_id`` still holds it.
        ``error`` None: the poll succeeded (the last error is cleared);
        ``kind``/``etag``/``last_modified`` left at None keep the stored value."""
        values: dict[str, Any] = {
            "claimed_by": None,
            "claimed_until": None,
            "last_checked_at": checked_at,
            "next_check_at": next_check_at,
            "failure_count": failure_count,
            "last_error": None if error is None else error[:2000],
        }
        optional = {"kind": kind, "etag": etag, "last_modified": last_modified}
        values.update({k: v for k, v in optional.items() if v is not None})
        with self._session() as s:
            result = s.execute(
                update(Source)
                .where(Source.id == source_id, Source.claimed_by == worker_id)
                .values(**values)
            )
            return bool(getattr(result, "rowcount", 0))

    def drop_source_claims(self, worker_id: str) -> int:
        """Clear this worker's source leases (shutdown, or a restart after a crash)."""
        with self._session() as s:
            result = s.execute(
                update(Source)
                .where(Source.claimed_by == worker_id)
                .values(claimed_by=None, claimed_until=None)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    # -- the watches a source found ----------------------------------------------

    def attach_watch(
        self, watch_id: int, source_id: int, meta: dict[str, Any], *, due_at: int | None = None
    ) -> None:
        """Record what a source says of a watch (a watch found by another
        source keeps that one). ``due_at``: check it by then — a retired
        watch is brought back for it; a paused or removed one stays so."""
        values: dict[str, Any] = {
            "source_id": func.coalesce(Watch.source_id, source_id),
            "source_meta": meta,
        }
        if due_at is not None:
            retired = Watch.state == WatchState.RETIRED.value
            values["next_check_at"] = case(
                (Watch.next_check_at > due_at, due_at), else_=Watch.next_check_at
            )
            values["state"] = case((retired, WatchState.ACTIVE.value), else_=Watch.state)
            values["unchanged_count"] = case((retired, 0), else_=Watch.unchanged_count)
        with self._session() as s:
            s.execute(update(Watch).where(Watch.id == watch_id).values(**values))

    def settle_redating(
        self, watch: WatchRecord, now_ms: int, *, found: str, change_id: int | None = None
    ) -> None:
        """Note on a re-dated watch what its check found (``unchanged``,
        ``noise``, ``significant``, ``first version``), and on the change the
        check recorded, if any, the re-dating (its record's ``feed_redated``).
        Costs nothing unless the feed re-dated the article since its last check."""
        if not feedmeta.pending(watch.source_meta):
            return
        with self._session() as s:
            pick = select(Watch.source_meta).where(Watch.id == watch.id)
            if s.get_bind().dialect.name == "postgresql":
                pick = pick.with_for_update()
            meta = s.scalar(pick)
            if not feedmeta.pending(meta):
                return
            settled = feedmeta.settled(dict(meta or {}), now_ms, found, change_id)
            s.execute(update(Watch).where(Watch.id == watch.id).values(source_meta=settled))
            if change_id is None:
                return
            events = [e for e in settled["redated"] if e.get("change_id") == change_id]
            record = s.scalar(select(ChangeRow.record).where(ChangeRow.id == change_id))
            s.execute(
                update(ChangeRow)
                .where(ChangeRow.id == change_id)
                .values(record={**(record or {}), "feed_redated": events})
            )


def _forget(s: Session, source_ids: list[int]) -> None:
    """Delete sources; their watches stay, no longer attached (also where the
    database does not enforce the foreign key's ON DELETE SET NULL)."""
    if not source_ids:
        return
    s.execute(
        update(Watch)
        .where(Watch.source_id.in_(source_ids))
        .values(source_id=None)
        .execution_options(synchronize_session=False)
    )
    s.execute(delete(Source).where(Source.id.in_(source_ids)))


def _insert(s: Session) -> Any:
    module = postgresql if s.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(Source)


def _claimable(now: int, *, due: bool) -> tuple[ColumnElement[bool], ...]:
    free = or_(Source.claimed_until.is_(None), Source.claimed_until <= now)
    if not due:
        return (free,)
    return (Source.state == ACTIVE, Source.next_check_at <= now, free)


def _source(row: Source, articles: int = 0) -> SourceRecord:
    return SourceRecord(
        id=row.id,
        url=row.url,
        kind=row.kind,
        tags=tuple(row.tags or ()),
        interval_s=row.interval_s,
        match=row.match,
        state=row.state,
        origin=row.origin,
        created_at=row.created_at,
        next_check_at=row.next_check_at,
        last_checked_at=row.last_checked_at,
        etag=row.etag,
        last_modified=row.last_modified,
        failure_count=row.failure_count,
        last_error=row.last_error,
        claimed_by=row.claimed_by,
        claimed_until=row.claimed_until,
        articles=articles,
    )
