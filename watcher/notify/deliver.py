"""The delivery worker: send what the outbox owes, at least once per change.

Each pass leases due rows (``claim_deliveries``: SKIP LOCKED on PostgreSQL, so
daemons sharing a database never send the same row), sends them, and marks
each row sent or failed under the lease. A failure retries with exponential
back-off (``delivery_backoff`` doubling, at most an hour) until
``delivery_attempts``, then the row is a dead letter that ``watcher
deliveries`` lists and ``watcher deliveries retry`` sends again.

Digest rows of one channel and period that fall due together go out as one
message. A process killed between sending and marking sends those messages
again once their lease runs out (or at once, when the same daemon restarts
and drops its own leases): that is the "at most the messages in flight"
repeat, and the idempotency key (the change id) lets a receiver drop it.

Sends are synchronous (Apprise, an HTTP POST, a subprocess) and run on a
small thread pool, so one slow channel does not hold up the others.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass

from watcher.errors import WatcherError
from watcher.notify.channels import Channel, build_channels
from watcher.notify.message import Message, item_for, message_for
from watcher.safetext import one_line
from watcher.settings import Settings
from watcher.store import ChangeRecord, DeliveryRecord, Repository, now_ms

log = logging.getLogger(__name__)

#: Rows claimed per pass, and the threads sending them.
BATCH = 64
SENDERS = 8
BACKOFF_CAP_S = 3600.0
#: Slack on a lease beyond the longest a send can take.
LEASE_SLACK_S = 30.0


@dataclass(frozen=True, slots=True)
class DeliveryPass:
    """What one pass did: rows claimed, sent, to be retried, given up on."""

    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    dead: int = 0


def retry_delay_s(settings: Settings, attempts: int) -> float:
    """The wait after the ``attempts``-th failure: backoff · 2^(attempts-1), capped."""
    return float(min(settings.delivery_backoff * 2 ** max(0, min(attempts - 1, 20)), BACKOFF_CAP_S))


class Deliverer:
    """Sends the outbox's notification rows (the ``reports`` channel is the
    pipeline's own: see :class:`watcher.outputs.reports.ReportDeliveries`)."""

    def __init__(
        self,
        store: Repository,
        settings: Settings,
        worker: str,
        *,
        channels: Mapping[str, Channel] | None = None,
        clock: Callable[[], int] = now_ms,
        batch: int = BATCH,
        senders: int = SENDERS,
    ) -> None:
        self.store = store
        self.settings = settings
        self.worker = worker
        self.channels = dict(
            build_channels(settings.config, settings) if channels is None else channels
        )
        self.clock = clock
        self.batch = batch
        self.senders = max(1, senders)
        self._pool = ThreadPoolExecutor(max_workers=self.senders, thread_name_prefix="sender")
        longest = max((c.timeout_s for c in self.channels.values()), default=10.0)
        #: A lease covers one send, with slack. A claim lasts two of them: a row
        #: still queued when its claim runs short is renewed just before its
        #: send (compare-and-set), so a long queue needs no long lease, and a
        #: dead daemon's rows go to the others soon.
        self.send_lease_ms = round((longest + LEASE_SLACK_S) * 1000)
        self.claim_lease_ms = 2 * self.send_lease_ms
        self._lock = threading.Lock()
        self._in_flight: set[int] = set()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.channels)

    def run_once(self) -> DeliveryPass:
        """Claim up to ``batch`` due rows of this daemon's channels, send, mark."""
        if not self.channels:
            return DeliveryPass()
        now = self.clock()
        rows = self.store.claim_deliveries(
            self.worker, now, self.batch, self.claim_lease_ms, channels=self.names
        )
        if not rows:
            return DeliveryPass()
        groups = _groups(rows)
        for group in groups:  # a digest is one message, however many rows it holds
            if group[0].digest is not None:
                group.extend(
                    self.store.claim_deliveries(
                        self.worker, now, 100_000, self.claim_lease_ms,
                        channels=(group[0].channel,), digest=group[0].digest,
                    )
                )  # fmt: skip
        found = self.store.changes_with_seq({r.change_id for g in groups for r in g})
        # Threads only send; this thread alone writes the outcomes, as soon as
        # they are known (one SQLite writer, no lock waits; a crash repeats
        # only the messages whose outcome was not written yet).
        futures = {self._pool.submit(self._send, group, found): group for group in groups}
        total = DeliveryPass(claimed=sum(len(g) for g in groups))
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            # Every send that ended meanwhile is recorded in one commit (a commit
            # per message made PostgreSQL's fsync the bottleneck).
            sent = [(futures[f], f.result()) for f in done if f.exception() is None]
            total = _plus(total, self._sent([(g, m) for g, m in sent if m is not None]))
            for future in done:
                if (error := future.exception()) is not None:
                    total = _plus(total, self._failed(futures[future], error))
            with self._lock:
                self._in_flight.difference_update(r.id for f in done for r in futures[f])
        return total

    def next_due(self) -> int | None:
        """When this daemon's next delivery can be sent (None: none pending)."""
        return self.store.next_delivery_due(channels=self.names) if self.channels else None

    def in_flight(self) -> set[int]:
        """Ids of the rows being sent right now (their outcome is still to come)."""
        with self._lock:
            return set(self._in_flight)

    def close(self) -> None:
        """Send nothing more; sends under way finish (bounded by their timeouts)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run_until_idle(self, *, max_passes: int = 10_000) -> DeliveryPass:
        """Send everything due now (tests, ``watcher deliveries retry --now``)."""
        total = DeliveryPass()
        for _ in range(max_passes):
            done = self.run_once()
            if not done.claimed:
                break
            total = _plus(total, done)
        return total

    def _send(
        self, rows: Sequence[DeliveryRecord], found: Mapping[int, tuple[ChangeRecord, int]]
    ) -> Message | None:
        """Build and send one message (in a sender thread); raises on failure,
        None when the lease ran out while the message waited its turn."""
        ids = [r.id for r in rows]
        message = self._message(rows, found)
        until = self.clock() + self.send_lease_ms
        held_until = min(r.claimed_until or 0 for r in rows)
        # The claim still covers this send (the usual case): no one else can
        # take the rows before it ends. Otherwise renew, compare-and-set.
        if until > held_until and self.store.renew_deliveries(self.worker, ids, until) < len(ids):
            # Another sender may hold it now: sending could send it twice.
            log.warning("lease of %s to %s ran out before its turn; left to the next pass",
                        message.key, rows[0].channel)  # fmt: skip
            self.store.release_deliveries(self.worker, only=ids)
            return None
        with self._lock:
            self._in_flight.update(ids)
        self.channels[rows[0].channel].send(message)
        return message

    def _sent(self, sent: Sequence[tuple[Sequence[DeliveryRecord], Message]]) -> DeliveryPass:
        ids = [r.id for rows, _ in sent for r in rows]
        if not ids:
            return DeliveryPass()
        self.store.mark_sent(self.worker, ids, self.clock())
        for rows, message in sent:
            log.info(
                "delivered %s to %s: %s", message.key, rows[0].channel,
                rows[0].summary if len(rows) == 1 else f"digest of {len(rows)} changes",
            )  # fmt: skip
        return DeliveryPass(sent=len(ids))

    def _message(
        self, rows: Sequence[DeliveryRecord], found: Mapping[int, tuple[ChangeRecord, int]]
    ) -> Message:
        items = []
        for row in rows:
            if row.change_id not in found:
                raise WatcherError(f"change {row.change_id} no longer exists")
            record, seq = found[row.change_id]
            items.append(item_for(record, seq, self.settings))
        return message_for(items, digest=rows[0].digest, channel=rows[0].channel)

    def _failed(self, rows: Sequence[DeliveryRecord], exc: BaseException) -> DeliveryPass:
        name = rows[0].channel
        attempts = max(r.attempts for r in rows) + 1
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        ids = [r.id for r in rows]
        if attempts >= self.settings.delivery_attempts:
            self.store.mark_failed(self.worker, ids, error=reason, retry_at=None)
            log.error(
                "gave up delivering %d message(s) to %s after %d attempts: %s "
                "(see watcher deliveries)", len(ids), name, attempts, reason,
            )  # fmt: skip
            return DeliveryPass(dead=len(ids))
        delay = retry_delay_s(self.settings, attempts)
        self.store.mark_failed(
            self.worker, ids, error=reason, retry_at=self.clock() + round(delay * 1000)
        )
        log.warning(
            "cannot deliver %d message(s) to %s (attempt %d, retry in %.0fs): %s",
            len(ids), name, attempts, delay, reason,
        )  # fmt: skip
        return DeliveryPass(retrying=len(ids))


def _plus(a: DeliveryPass, b: DeliveryPass) -> DeliveryPass:
    return DeliveryPass(
        a.claimed + b.claimed, a.sent + b.sent, a.retrying + b.retrying, a.dead + b.dead
    )


def _groups(rows: Sequence[DeliveryRecord]) -> list[list[DeliveryRecord]]:
    """One group per message: each immediate row alone; digest rows together
    per channel and period."""
    groups: list[list[DeliveryRecord]] = []
    digests: dict[tuple[str, str], list[DeliveryRecord]] = {}
    for row in rows:
        if row.digest is None:
            groups.append([row])
        else:
            digests.setdefault((row.channel, row.digest), []).append(row)
    return groups + list(digests.values())


async def serve(
    deliverer: Deliverer, stop: asyncio.Event, wake: asyncio.Event, poll_s: float
) -> None:
    """The daemon's delivery loop: a pass whenever a change was stored
    (``wake``), a row falls due, or every ``poll_s``; until ``stop``."""
    while not stop.is_set():
        wake.clear()
        try:
            done = await asyncio.to_thread(deliverer.run_once)
            if done.claimed >= deliverer.batch:
                continue  # more are due: no waiting
            due = await asyncio.to_thread(deliverer.next_due)
        except Exception as exc:  # the database may be briefly away: next poll
            log.error("delivery pass failed (will retry): %s", one_line(str(exc) or repr(exc)))
            due = None
        wait = poll_s
        if due is not None:
            wait = min(wait, max(0.0, (due - deliverer.clock()) / 1000))
        stopping = asyncio.ensure_future(stop.wait())
        woken = asyncio.ensure_future(wake.wait())
        _, pending = await asyncio.wait(
            {stopping, woken}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
