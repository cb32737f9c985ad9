"""The outbox: deliveries of changes to channels, claimed and marked by senders.

Rows are written by :meth:`Repository.add_change` in the change's own
transaction, so a stored change always has its messages owed. Senders lease
rows like the scheduler leases watches: a compare-and-set on ``claimed_*``
(with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several daemons never pick
the same row), and every mark names the lease holder, so a sender whose lease
ran out and was taken over cannot overwrite the new holder's outcome.
Delivery is at least once: a sender killed after sending but before marking
sends that message again when the lease runs out (the receiver can drop it by
its idempotency key, the change id).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Table, and_, case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from watcher.store.leases import lease
from watcher.store.records import (
    ChangeRecord,
    ChangeVerdict,
    DeliveryRecord,
    DeliveryState,
    OutboxEntry,
)
from watcher.store.tables import ChangeRow, Delivery, Version, Watch

_COLUMNS = (Delivery, ChangeRow.watch_id, Watch.url, ChangeRow.summary, ChangeRow.verdict)


class OutboxRepository:
    """Outbox operations; mixed into :class:`watcher.store.Repository`."""

    @contextmanager
    def _session(self) -> Iterator[Session]:
        raise NotImplementedError
        yield  # pragma: no cover

    def _enqueue(
        self, s: Session, change_id: int, entries: Sequence[OutboxEntry], now: int
    ) -> None:
        rows = [
            {
                "change_id": change_id,
                "channel": e.channel,
                "state": DeliveryState.PENDING.value,
                "digest": e.digest,
                "attempts": 0,
                "due_at": e.due_at,
                "created_at": now,
            }
            for e in _one_per_channel(entries)
        ]
        if rows:
            s.execute(insert(cast(Table, Delivery.__table__)), rows)

    def claim_deliveries(
        self,
        worker_id: str,
        now_ms: int,
        limit: int,
        lease_ms: int,
        *,
        channels: Iterable[str] | None = None,
        exclude: Iterable[str] = (),
        change_ids: Iterable[int] | None = None,
        digest: str | None = None,
    ) -> list[DeliveryRecord]:
        """Lease up to ``limit`` due pending deliveries (oldest due first) to
        ``worker_id`` until ``now_ms + lease_ms``; only of ``channels``, of
        ``change_ids`` and of one ``digest`` period kind if given."""
        if limit <= 0:
            return []
        until = now_ms + lease_ms
        conditions = _claimable(now_ms)
        if channels is not None:
            conditions = (*conditions, Delivery.channel.in_(sorted(set(channels))))
        if change_ids is not None:
            conditions = (*conditions, Delivery.change_id.in_(sorted(set(change_ids))))
        if excluded := sorted(set(exclude)):
            conditions = (*conditions, Delivery.channel.not_in(excluded))
        if digest is not None:
            conditions = (*conditions, Delivery.digest == digest)
        order = (Delivery.due_at, Delivery.id)
        with self._session() as s:
            ids = lease(
                s,
                Delivery,
                conditions,
                order_by=order,
                limit=limit,
                worker_id=worker_id,
                until=until,
            )
            if not ids:
                return []
            rows = s.execute(
                _joined()
                .where(
                    Delivery.id.in_(ids),
                    Delivery.claimed_by == worker_id,
                    Delivery.claimed_until == until,
                )
                .order_by(Delivery.due_at, Delivery.id)
            )
            return [_delivery(row) for row in rows]

    def changes_with_seq(self, change_ids: Iterable[int]) -> dict[int, tuple[ChangeRecord, int]]:
        """The changes of these ids with the version number their report is
        named after (the new version's; a removal's, the last version's)."""
        ids = sorted(set(change_ids))
        if not ids:
            return {}
        version = func.coalesce(ChangeRow.new_version_id, ChangeRow.old_version_id)
        stmt = (
            select(ChangeRow, Watch.url, Version.seq)
            .join(Watch, Watch.id == ChangeRow.watch_id)
            .join(Version, Version.id == version)
            .where(ChangeRow.id.in_(ids))
        )
        with self._session() as s:
            return {
                row.id: (change_record(row, url), int(seq)) for row, url, seq in s.execute(stmt)
            }

    def next_delivery_due(self, *, channels: Iterable[str]) -> int | None:
        """When the earliest pending delivery of ``channels`` can next be
        claimed: its due time, or the end of the lease someone holds on it.
        None: nothing pending."""
        free_at = case(
            (Delivery.claimed_until > Delivery.due_at, Delivery.claimed_until),
            else_=Delivery.due_at,
        )
        stmt = select(func.min(free_at)).where(
            Delivery.state == DeliveryState.PENDING.value,
            Delivery.channel.in_(sorted(set(channels))),
        )
        with self._session() as s:
            value = s.scalar(stmt)
            return None if value is None else int(value)

    def renew_deliveries(self, worker_id: str, delivery_ids: Iterable[int], until: int) -> int:
        """Extend ``worker_id``'s leases on these rows to ``until``; returns how
        many it still held. A sender renews just before sending, and sends only
        if it still holds every row: one whose lease ran out (and that another
        daemon may be sending) is left alone, so it is never sent twice."""
        ids = sorted(set(delivery_ids))
        if not ids:
            return 0
        with self._session() as s:
            result = s.execute(
                update(Delivery)
                .where(
                    Delivery.id.in_(ids),
                    Delivery.claimed_by == worker_id,
                    Delivery.state == DeliveryState.PENDING.value,
                )
                .values(claimed_until=until)
                .execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def pending_by_channel(self) -> dict[str, int]:
        """Pending deliveries per channel (a daemon warns of channels it lacks)."""
        stmt = (
            select(Delivery.channel, func.count())
            .where(Delivery.state == DeliveryState.PENDING.value)
            .group_by(Delivery.channel)
        )
        with self._session() as s:
            return {str(channel): int(n) for channel, n in s.execute(stmt)}

    def mark_sent(self, worker_id: str, delivery_ids: Iterable[int], now_ms: int) -> int:
        """Mark deliveries this worker holds as sent; returns how many it held."""
        return self._finish(
            worker_id,
            delivery_ids,
            state=DeliveryState.SENT.value,
            sent_at=now_ms,
            last_error=None,
            attempts=Delivery.attempts + 1,
        )

    def mark_failed(
        self,
        worker_id: str,
        delivery_ids: Iterable[int],
        *,
        error: str,
        retry_at: int | None,
    ) -> int:
        """Record a failed attempt: pending again at ``retry_at``, or dead when
        ``retry_at`` is None (the sender gave up). Only rows the worker holds."""
        values: dict[str, Any] = {"last_error": error[:2000], "attempts": Delivery.attempts + 1}
        if retry_at is None:
            values["state"] = DeliveryState.DEAD.value
        else:
            values["due_at"] = retry_at
        return self._finish(worker_id, delivery_ids, **values)

    def _finish(self, worker_id: str, delivery_ids: Iterable[int], **values: Any) -> int:
        ids = sorted(set(delivery_ids))
        if not ids:
            return 0
        with self._session() as s:
            result = s.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), Delivery.claimed_by == worker_id)
                .values(claimed_by=None, claimed_until=None, **values)
                .execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def release_deliveries(
        self, worker_id: str, *, keep: Iterable[int] = (), only: Iterable[int] | None = None
    ) -> int:
        """Drop this worker's delivery leases without an outcome (shutdown, or a
        restart after a crash: the rows are sent again at once): all of them,
        or ``only`` these, but never those of ``keep`` (rows being sent right
        now, whose outcome is still to come)."""
        stmt = update(Delivery).where(Delivery.claimed_by == worker_id)
        if kept := sorted(set(keep)):
            stmt = stmt.where(Delivery.id.not_in(kept))
        if only is not None:
            stmt = stmt.where(Delivery.id.in_(sorted(set(only))))
        with self._session() as s:
            result = s.execute(
                stmt.values(claimed_by=None, claimed_until=None).execution_options(
                    synchronize_session=False
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def deliveries(
        self,
        *,
        state: DeliveryState | str | None = None,
        channel: str | None = None,
        change_id: int | None = None,
        limit: int | None = None,
    ) -> list[DeliveryRecord]:
        """Outbox rows, newest first, optionally of one state, channel or change."""
        stmt = _joined().order_by(Delivery.id.desc()).limit(limit)
        if state is not None:
            stmt = stmt.where(Delivery.state == DeliveryState(state).value)
        if channel is not None:
            stmt = stmt.where(Delivery.channel == channel)
        if change_id is not None:
            stmt = stmt.where(Delivery.change_id == change_id)
        with self._session() as s:
            return [_delivery(row) for row in s.execute(stmt)]

    def delivery_counts(self, *, exclude: Iterable[str] = ()) -> dict[str, int]:
        """How many deliveries are in each state (for ``watcher status``), not
        counting the channels in ``exclude``."""
        stmt = select(Delivery.state, func.count()).group_by(Delivery.state)
        if excluded := sorted(set(exclude)):
            stmt = stmt.where(Delivery.channel.not_in(excluded))
        with self._session() as s:
            found = {str(state): int(n) for state, n in s.execute(stmt)}
        return {st.value: found.get(st.value, 0) for st in DeliveryState}

    def retry_deliveries(self, now_ms: int, delivery_ids: Iterable[int] | None = None) -> int:
        """Dead letters back to pending, due now, attempts reset: all of them,
        or those of ``delivery_ids`` (which must be dead). Returns how many."""
        stmt = update(Delivery).where(Delivery.state == DeliveryState.DEAD.value)
        if delivery_ids is not None:
            stmt = stmt.where(Delivery.id.in_(sorted(set(delivery_ids))))
        with self._session() as s:
            result = s.execute(
                stmt.values(
                    state=DeliveryState.PENDING.value,
                    attempts=0,
                    due_at=now_ms,
                    claimed_by=None,
                    claimed_until=None,
                ).execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0) or 0)


def change_record(row: ChangeRow, url: str) -> ChangeRecord:
    return ChangeRecord(
        id=row.id,
        watch_id=row.watch_id,
        url=url,
        old_version_id=row.old_version_id,
        new_version_id=row.new_version_id,
        created_at=row.created_at,
        verdict=ChangeVerdict(row.verdict),
        kinds=tuple(row.kinds or ()),
        summary=row.summary,
        record=dict(row.record or {}),
        reverted_to_version_id=row.reverted_to_version_id,
    )


def _one_per_channel(entries: Sequence[OutboxEntry]) -> list[OutboxEntry]:
    """The earliest entry per channel: a change reaches a channel once, however
    many routes lead there (an immediate route beats a digest)."""
    best: dict[str, OutboxEntry] = {}
    for e in entries:
        held = best.get(e.channel)
        if held is None or (e.digest is None, -e.due_at) > (held.digest is None, -held.due_at):
            best[e.channel] = e
    return list(best.values())


def _claimable(now: int) -> tuple[ColumnElement[bool], ...]:
    return (
        Delivery.state == DeliveryState.PENDING.value,
        Delivery.due_at <= now,
        or_(Delivery.claimed_until.is_(None), Delivery.claimed_until <= now),
    )


def _joined() -> Any:
    return (
        select(*_COLUMNS)
        .join(ChangeRow, ChangeRow.id == Delivery.change_id)
        .join(Watch, and_(Watch.id == ChangeRow.watch_id))
    )


def _delivery(row: Row[Any]) -> DeliveryRecord:
    d, watch_id, url, summary, verdict = tuple(row)
    return DeliveryRecord(
        id=d.id,
        change_id=d.change_id,
        channel=d.channel,
        state=DeliveryState(d.state),
        digest=d.digest,
        attempts=d.attempts,
        due_at=d.due_at,
        created_at=d.created_at,
        sent_at=d.sent_at,
        last_error=d.last_error,
        claimed_by=d.claimed_by,
        claimed_until=d.claimed_until,
        watch_id=watch_id,
        url=url,
        summary=summary,
        verdict=ChangeVerdict(verdict),
    )
