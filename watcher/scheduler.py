"""APScheduler wiring: claim due watches from the database and run their checks.

Each watch's own schedule lives in the database (``next_check_at``, set by
schedule.py after every check), so the schedule survives restarts and is
shared by every daemon on one PostgreSQL database. APScheduler runs the
dispatcher every ``poll`` seconds; the dispatcher claims as many due watches
as it has free slots (a lease, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and
checks them concurrently, bounded by ``max_connections``.

Leases are short and renewed: a claim lasts ``lease_ms`` (four renewal
periods plus 30 s, 50 s with the default 5 s poll) and the daemon extends the
leases of its in-flight checks, queued ones included, every renewal period
(the poll, between 1 and 30 s). A check holds its watch for as long as it
really runs, however slow; a daemon that dies leaves leases that run out
within ``lease_ms``, and its restart drops them at once (daemon.py).

Quiet checks (unchanged, 304: most of them) are written in batches: the
pipeline hands each one's check row and release to the dispatcher, which
writes up to QUIET_BATCH of them in one transaction, QUIET_WAIT_S after the
first at the latest, and at the end of a pass or at shutdown. Until then the
watch stays in flight: its lease is held and renewed. The rule for a crash:
a quiet check not yet written is lost, which costs nothing but a repeat (it
stored nothing, owes no message); its watch, still leased, is checked again
when the lease runs out, or at once after a restart, which drops the leases.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from watcher.pipeline import Pipeline
from watcher.settings import Settings
from watcher.store import QuietCheck, Store, WatchRecord, now_ms

log = logging.getLogger(__name__)
SITE_FLUSH_S = 60  # how stale the report site in the data folder may get
LEASE_RENEWALS = 4  # renewals a lease outlives: one missed renewal loses nothing
LEASE_SLACK_S = 30.0  # ... plus this, for a slow database or a busy event loop
QUIET_BATCH = 64  # quiet checks written in one transaction, at most ...
QUIET_WAIT_S = 0.05  # ... and how long the first waits for others to join it


def renew_every_s(settings: Settings) -> float:
    """How often the daemon extends its in-flight leases: every poll, within
    1-30 s (a database write per poll in tests, and never rarer than 30 s)."""
    return min(max(settings.poll, 1.0), 30.0)


def lease_ms(settings: Settings) -> int:
    """How long a claim (or a renewal) holds a watch."""
    return round((renew_every_s(settings) * LEASE_RENEWALS + LEASE_SLACK_S) * 1000)


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
        # Short, and renewed while the check runs (renew_leases), rather than
        # long enough for the slowest possible check behind the longest queue:
        # that made a killed daemon's watches wait a quarter of an hour.
        self.lease_ms = lease_ms(settings)
        self.tasks: set[asyncio.Task[object]] = set()
        self.in_flight: set[int] = set()  # ids of the watches this worker holds
        self._claim_lock = asyncio.Lock()
        self.claiming = True
        # quiet checks waiting to be written, their watches (still in flight),
        # the task writing them, and "write now" (a full batch, the pass's end)
        self._quiet: list[QuietCheck] = []
        self._quiet_ids: set[int] = set()
        self._quiet_writer: asyncio.Task[None] | None = None
        self._quiet_now = asyncio.Event()
        self._flushing = False
        pipeline.quiet_sink = self._hold_quiet

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
            self.in_flight.add(watch.id)
            task = asyncio.create_task(self._check(watch), name=f"check {watch.url}")
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return len(watches)

    async def _check(self, watch: WatchRecord) -> object:
        try:
            result: object = await self.pipeline.check(watch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in one check must not take the daemon down
            log.exception("check of %s failed unexpectedly", watch.url)
            result = await self._give_up(watch, exc)
        finally:
            if watch.id not in self._quiet_ids:  # else held until its check is written
                self.in_flight.discard(watch.id)
        # Refill the freed slots now rather than at the next poll, so throughput
        # is bounded by max_connections, not by max_connections per poll.
        await self.dispatch_once()
        return result

    def _hold_quiet(self, check: QuietCheck) -> None:
        """The pipeline's ``quiet_sink``: keep the check for the next batch."""
        self._quiet.append(check)
        self._quiet_ids.add(check.watch_id)
        if len(self._quiet) >= QUIET_BATCH:
            self._quiet_now.set()
        if self._quiet_writer is None:
            self._quiet_writer = asyncio.create_task(self._write_quiet(), name="quiet checks")

    async def _write_quiet(self) -> None:
        """Write the held quiet checks, a batch per transaction, until none is left."""
        try:
            while self._quiet:
                if len(self._quiet) < QUIET_BATCH:
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._quiet_now.wait(), QUIET_WAIT_S)
                batch, self._quiet = self._quiet[:QUIET_BATCH], self._quiet[QUIET_BATCH:]
                if len(self._quiet) < QUIET_BATCH and not self._flushing:
                    self._quiet_now.clear()
                try:
                    await asyncio.to_thread(self.store.record_quiet_checks, batch)
                except Exception as exc:  # lost, which costs a repeat once the leases run out
                    log.error("cannot record %d quiet checks (repeated later): %s", len(batch), exc)
                finally:
                    for check in batch:
                        self._quiet_ids.discard(check.watch_id)
                        self.in_flight.discard(check.watch_id)
        finally:
            self._quiet_writer = None

    async def write_quiet(self) -> None:
        """Write every quiet check held now, without waiting for a full batch."""
        self._flushing = True
        try:
            while self._quiet_writer is not None:
                self._quiet_now.set()
                await asyncio.shield(self._quiet_writer)
        finally:
            self._flushing = False
            self._quiet_now.clear()

    async def _give_up(self, watch: WatchRecord, exc: Exception) -> object:
        """Record the crashed check as an error and release its lease, so the
        watch is retried on its back-off rather than left claimed."""
        try:
            return await self.pipeline.fail(watch, f"internal error: {exc!r}")
        except Exception as again:  # the database too: the lease runs out by itself
            log.error("cannot record the failed check of %s: %s", watch.url, again)
            return None

    async def renew_leases(self, extra_ms: int = 0) -> int:
        """Extend the leases of every in-flight check to now + lease (+ ``extra_ms``);
        returns how many this worker still held. Never raises: a database
        hiccup costs nothing while the leases have time left."""
        if not self.in_flight:
            return 0
        until = self.clock() + self.lease_ms + extra_ms
        try:
            return await asyncio.to_thread(
                self.store.renew_claims, self.worker_id, set(self.in_flight), until
            )
        except Exception as exc:
            log.error("cannot renew the leases of %d checks: %s", len(self.in_flight), exc)
            return 0

    async def run_until_idle(self) -> None:
        """Check everything due now, then return (``watcher check --all``, tests, demo)."""
        while await self.dispatch_once() or self.tasks:
            if self.tasks:
                await asyncio.wait(set(self.tasks), return_when=asyncio.FIRST_COMPLETED)
        await self.write_quiet()
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
        async with self._claim_lock:  # a claim under way lands first, its checks started
            self.claiming = False
        pending = await self._finish_in_flight(grace_s) if self.tasks else set()
        await self.write_quiet()  # the quiet checks that finished release their watches
        # Nothing of ours runs now: a lease still held (an abandoned check, a
        # release that failed) goes, so no watch waits for it to run out.
        try:
            self.store.drop_claims(self.worker_id)
        except Exception as exc:
            log.error("cannot drop leases at exit (the next start takes them back): %s", exc)
        return len(pending)

    async def _finish_in_flight(self, grace_s: float) -> set[asyncio.Task[object]]:
        log.info("waiting up to %.0fs for %d in-flight checks", grace_s, len(self.tasks))
        # The renewal job has stopped: hold the leases through the grace period
        # (alongside the wait, so a database that hangs cannot delay the exit).
        renewal = asyncio.create_task(self.renew_leases(extra_ms=round(grace_s * 1000)))
        _, pending = await asyncio.wait(set(self.tasks), timeout=grace_s)
        renewal.cancel()
        if pending:
            self.pipeline.stop()  # worker threads still processing must not commit
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            log.warning("abandoned %d in-flight checks", len(pending))
        return pending


def _shielded(job: Callable[[], Awaitable[object]]) -> Callable[[], Coroutine[Any, Any, None]]:
    """Shutting the scheduler down cancels the jobs that are running. A job's
    work (a claim in a worker thread) would still land, unseen: a claim's
    leases would be held by no check. Shielded, the work runs to its end
    (drain() waits for a claim under way), and a normal stop logs no
    traceback."""

    @functools.wraps(job)
    async def run() -> None:
        with suppress(asyncio.CancelledError):
            await asyncio.shield(job())

    return run


def build_scheduler(dispatcher: Dispatcher, settings: Settings) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(
        _shielded(dispatcher.dispatch_once),
        "interval",
        seconds=settings.poll,
        id="dispatch",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )
    scheduler.add_job(
        _shielded(dispatcher.flush_site),
        "interval",
        seconds=SITE_FLUSH_S,
        id="site",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),  # at start: reports a crash left unwritten
    )
    scheduler.add_job(
        _shielded(dispatcher.renew_leases),
        "interval",
        seconds=renew_every_s(settings),
        id="renew",
        max_instances=1,
        coalesce=True,
    )
    return scheduler
