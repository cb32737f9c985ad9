"""Leasing rows to one worker: the claim shared by the outbox and the sources
(watches have their own, precompiled, on the hot path of every pass).

Pick the ids (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent
claimers never pick the same row), then set the lease on those rows whose
conditions still hold: a compare-and-set, correct also where the SELECT took
no row locks (SQLite). The caller reads back the rows it now holds
(``claimed_by == worker``, ``claimed_until == until``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from watcher.store.tables import Delivery, Source


def lease(
    s: Session,
    table: type[Delivery] | type[Source],
    conditions: Sequence[ColumnElement[bool]],
    *,
    order_by: Sequence[InstrumentedAttribute[int]],
    limit: int,
    worker_id: str,
    until: int,
) -> list[int]:
    """Lease up to ``limit`` rows of ``table`` meeting ``conditions``, first in
    ``order_by``, to ``worker_id`` until ``until``; the ids picked."""
    pick = select(table.id).where(*conditions).order_by(*order_by).limit(limit)
    if s.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    ids = list(s.scalars(pick))
    if ids:
        s.execute(
            update(table)
            .where(table.id.in_(ids), *conditions)
            .values(claimed_by=worker_id, claimed_until=until)
            .execution_options(synchronize_session=False)
        )
    return ids
