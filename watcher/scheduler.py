"""APScheduler wiring: claim due watches from the database and run their checks.

Each watch's own schedule lives in the database (``next_check_at``, set by
schedule.py after every check), so the schedule survives restarts and is
shared by every daemon on one PostgreSQL database. APScheduler runs the
dispatcher every ``poll`` seconds; the dispatcher claims as many due watches
as it has free slots (a lease, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and
checks them concurrently, bounded by ``max_connections``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from watcher.pipeline import Pipeline
from watcher.settings import Settings
from watcher.store import Store, WatchRecord, now_ms

log = logging.getLogger(__name__)
SITE_FLUSH_S = 60  # how stale the report site in the data folder may get


class Dispatcher:
    """Claims due watches and runs their checks; stopping only stops claiming."""

    def __init__(
        self,
        store: Store,
        pipeline: Pipeline,
        settings: Settings,
        worker_id: str,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.store = store
        self.clock = clock
        self.pipeline = pipeline
        self.worker_id = worker_id
        self.slots = max(1, settings.max_connections)
        # While checks are running, claim only once a quarter of the slots is
        # free: a claim costs three statements, and claiming one watch per
        # finished check made claim_due a top cost of a pass.
        self.batch = max(1, self.slots // 4)
        # A lease outlives the slowest possible check (every attempt timing out,
        # every back-off at its cap), times the batches a claim may queue behind
        # the per-host limit: a live daemon never loses a watch to another one
        # mid-check. The price: a crashed daemon's watches wait this long on
        # PostgreSQL (a lone SQLite daemon drops stale leases when it starts).
        worst_check_s = settings.fetch_settings().worst_case_s
        queued = math.ceil(self.slots / max(1, settings.per_host))
        self.lease_ms = round((worst_check_s * queued + 60 + settings.grace) * 1000)
        self.tasks: set[asyncio.Task[object]] = set()
        self._claim_lock = asyncio.Lock()
        self.claiming = True

    async def dispatch_once(self) -> int:
        """Claim up to the free slots and start their checks; returns how many.

        One claim at a time: the poll job and finishing checks both call this,
        and two overlapping claims by one worker in the same millisecond would
        read each other's leases as their own (the claim runs in a thread).
        """
        async with self._claim_lock:
            return await self._dispatch()

    async def _dispatch(self) -> int:
        if not self.claiming:
            return 0
        free = self.slots - len(self.tasks)
        if free <= 0 or (self.tasks and free < self.batch):
            return 0
        try:
            watches = await asyncio.to_thread(
                self.store.claim_due, self.worker_id, self.clock(), free, self.lease_ms
            )
        except Exception as exc:  # keep the daemon alive through a database hiccup
            log.error("cannot claim due watches: %s", exc)
            return 0
        for watch in watches:
            task = asyncio.create_task(self._check(watch), name=f"check {watch.url}")
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return len(watches)

    async def _check(self, watch: WatchRecord) -> object:
        try:
            result: object = await self.pipeline.check(watch)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in one check must not take the daemon down
            log.exception("check of %s failed unexpectedly", watch.url)
            result = None
        # Refill the freed slots now rather than at the next poll, so throughput
        # is bounded by max_connections, not by max_connections per poll.
        await self.dispatch_once()
        return result

    async def run_until_idle(self) -> None:
        """Check everything due now, then return (``watcher check --all``, tests, demo)."""
        while await self.dispatch_once() or self.tasks:
            if self.tasks:
                await asyncio.wait(set(self.tasks), return_when=asyncio.FIRST_COMPLETED)
        await asyncio.to_thread(self.pipeline.flush_site)

    async def flush_site(self) -> None:
        """The periodic job, off the event loop: write reports a failure or a
        crash left unwritten, then bring the report site up to date."""
        await asyncio.to_thread(self._report_and_flush)

    def _report_and_flush(self) -> None:
        try:
            self.pipeline.report_pending()
        except Exception as exc:  # the database may be briefly away: next run
            log.error("cannot write pending reports: %s", exc)
        self.pipeline.flush_site()

    async def drain(self, grace_s: float) -> int:
        """Stop claiming; let in-flight checks finish within ``grace_s``, then
        abandon the rest (their transactions roll back; leases are dropped so
        another daemon or the next start picks them up at once)."""
        self.claiming = False
        if not self.tasks:
            return 0
        log.info("waiting up to %.0fs for %d in-flight checks", grace_s, len(self.tasks))
        _, pending = await asyncio.wait(set(self.tasks), timeout=grace_s)
        if pending:
            self.pipeline.stop()  # worker threads still processing must not commit
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            self.store.drop_claims(self.worker_id)
            log.warning("abandoned %d in-flight checks", len(pending))
        return len(pending)


def build_scheduler(dispatcher: Dispatcher, settings: Settings) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(
        dispatcher.dispatch_once,
        "interval",
        seconds=settings.poll,
        id="dispatch",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )
    scheduler.add_job(
        dispatcher.flush_site,
        "interval",
        seconds=SITE_FLUSH_S,
        id="site",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),  # at start: reports a crash left unwritten
    )
    return scheduler
