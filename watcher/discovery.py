"""Polling sources: due feeds and section pages in, new watches out.

Each due source is claimed (a lease, like a watch), fetched through the
daemon's own :class:`~watcher.fetch.Fetcher` — so the per-host limits are
shared with the watches, and the request is conditional (ETag,
Last-Modified: a 304 means nothing new) — and read by :func:`discover`.
Every article it lists that is not watched yet becomes a watch with the
source's tags, on the adaptive schedule (so it retires when it stops
changing), with what the source says of it in ``source_meta``. An article
already watched whose feed date moved is re-dated: its meta keeps the move
and it is due now, so its next check tells whether anything visible changed.

A failing source (an HTTP error, a timeout, neither feed nor HTML) logs one
line, keeps its reason in ``last_error`` and backs off like a failing watch;
the daemon carries on. A removed watch (``watcher remove``) is never brought
back by its source, nor is a paused one made due.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from watcher import feedmeta, schedule
from watcher.errors import InvalidURLError, WatcherError
from watcher.fetch import Fetcher, validate_url
from watcher.models import FetchResult
from watcher.pipeline import policy_for
from watcher.settings import Settings
from watcher.sources import Discovery, discover
from watcher.store import SourceRecord, SourceSync, Store, Transaction, WatchState, now_ms
from watcher.urlnorm import normalise_url

log = logging.getLogger(__name__)
LEASE_SLACK_S = 60.0
MIN_SOURCE_INTERVAL_S = 60.0  # as for a pinned watch interval


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll of a source did."""

    url: str
    kind: str = ""
    found: int = 0  # article links listed (after --match)
    added: int = 0  # new watches
    redated: int = 0  # watched articles whose feed date moved
    not_modified: bool = False
    error: str | None = None


class _LeaseLost(Exception):
    """Another poller took the source over; this poll's writes are rolled back."""


def source_url(raw: str) -> str:
    """A source's URL, checked like a watch's (http/https, no whitespace or
    control characters) but with its path kept as given: ``/feed/`` and
    ``/feed`` are not always the same resource."""
    text = raw.strip()
    normalise_url(text)  # raises InvalidURLError with the reason
    return validate_url(text)


def compile_match(pattern: str | None) -> re.Pattern[str] | None:
    """``--match`` compiled; WatcherError in one line if it is not a regex."""
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise WatcherError(f"--match {pattern!r} is not a regular expression: {exc}") from None


def sync_config(store: Store, settings: Settings, now: int) -> SourceSync:
    """Make the database's config sources those of the config file."""
    configs = []
    for c in settings.config.sources:
        try:
            configs.append(replace(c, url=source_url(c.url)))
        except InvalidURLError as exc:
            log.error("config source skipped: %s", exc)
            continue
        if c.interval_s is not None and c.interval_s < MIN_SOURCE_INTERVAL_S:
            log.warning("config source %s: interval raised to 1m: be kind to news sites", c.url)
            configs[-1] = replace(configs[-1], interval_s=MIN_SOURCE_INTERVAL_S)
    return store.sync_config_sources(
        configs, default_interval_s=round(settings.source_interval), now_ms=now
    )


class SourcePoller:
    """Claims due sources and turns what they list into watches."""

    def __init__(
        self,
        store: Store,
        fetcher: Fetcher,
        settings: Settings,
        worker: str,
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.settings = settings
        self.worker = worker
        self.clock = clock
        self.policy = policy_for(settings)
        self.batch = max(1, settings.max_connections // 2)
        # One fetch per poll, however slow: no renewal needed.
        self.lease_ms = round((fetcher.settings.worst_case_s + LEASE_SLACK_S) * 1000)
        self.stopping = False

    async def start(self) -> None:
        """At daemon start: take back this worker's leases a crash left, and
        sync the config file's sources. Logs, never raises."""
        try:
            await asyncio.to_thread(self.store.drop_source_claims, self.worker)
            done = await asyncio.to_thread(sync_config, self.store, self.settings, self.clock())
        except WatcherError as exc:
            log.error("cannot sync the config file's sources: %s", exc)
            return
        if done.added or done.updated or done.removed:
            log.info(
                "config sources: %d added, %d updated, %d removed",
                done.added, done.updated, done.removed,
            )  # fmt: skip

    async def stop(self) -> None:
        """Claim nothing more; drop this worker's leases (a poll cut short is
        rolled back and runs again, at once, next time)."""
        self.stopping = True
        try:
            await asyncio.to_thread(self.store.drop_source_claims, self.worker)
        except WatcherError as exc:
            log.error("cannot drop source leases at exit: %s", exc)

    async def job(self) -> None:
        """The daemon's interval job: :meth:`run_once`, shielded, so stopping
        the scheduler lets a poll under way record its outcome (or lose its
        lease at :meth:`stop` and be rolled back) instead of logging a traceback."""
        with suppress(asyncio.CancelledError):
            await asyncio.shield(self.run_once())

    async def run_once(self, now: int | None = None) -> int:
        """Poll every due source (up to a batch); returns how many watches were added."""
        if self.stopping:
            return 0
        when = self.clock() if now is None else now
        try:
            claimed = await asyncio.to_thread(
                self.store.claim_sources, self.worker, when, self.batch, self.lease_ms
            )
        except WatcherError as exc:  # the database may be briefly away: next poll
            log.error("cannot claim due sources: %s", exc)
            return 0
        results = await self.poll(claimed, when)
        return sum(r.added for r in results)

    async def poll_now(self, sources: Sequence[SourceRecord]) -> list[PollResult]:
        """Poll these sources now, due or not (``watcher source add --now``)."""
        when = self.clock()
        ids = [s.id for s in sources]
        claimed = await asyncio.to_thread(
            self.store.claim_sources, self.worker, when, len(ids), self.lease_ms, ids=ids
        )
        return await self.poll(claimed, when)

    async def poll(self, sources: Sequence[SourceRecord], now: int) -> list[PollResult]:
        """Poll claimed sources concurrently (the fetcher's limits apply)."""
        return list(await asyncio.gather(*(self._poll(s, now) for s in sources)))

    async def _poll(self, source: SourceRecord, now: int) -> PollResult:
        try:
            fetched = await self.fetcher.fetch(  # a source's body is not evidence: no WARC
                source.url, etag=source.etag, last_modified=source.last_modified, record=False
            )
            if fetched.not_modified:
                result = await asyncio.to_thread(self._unchanged, source, fetched, now)
            elif fetched.status >= 400 or fetched.text is None:
                return await self._failed(source, now, f"HTTP {fetched.status}")
            else:
                result = await asyncio.to_thread(self._found, source, fetched, now)
        except _LeaseLost:
            log.warning("source %s: lease lost to another poller; nothing recorded", source.url)
            return PollResult(source.url, error="lease lost")
        except WatcherError as exc:
            return await self._failed(source, now, exc.reason)
        except Exception as exc:  # a parser bug: one source fails, the daemon goes on
            log.exception("unexpected error while polling source %s", source.url)
            return await self._failed(source, now, f"internal error: {exc!r}")
        log.info(
            "source %s kind=%s found=%d added=%d redated=%d%s",
            source.url, result.kind or "-", result.found, result.added, result.redated,
            " (not modified)" if result.not_modified else "",
        )  # fmt: skip
        return result

    def _unchanged(self, source: SourceRecord, fetched: FetchResult, now: int) -> PollResult:
        with self.store.transaction() as tx:
            self._release(tx, source, fetched, now, kind=None)
        return PollResult(source.url, source.kind, not_modified=True)

    def _found(self, source: SourceRecord, fetched: FetchResult, now: int) -> PollResult:
        """Discover the source's articles; add the new ones, re-date the moved
        ones, and release the source, in one transaction."""
        found = discover(
            fetched.text or "",
            fetched.content_type,
            fetched.final_url,
            match=compile_match(source.match),
        )
        with self.store.transaction() as tx:
            added, redated = self._record(tx, source, found, now)
            self._release(tx, source, fetched, now, kind=found.kind)
        return PollResult(source.url, found.kind, len(found.entries), added, redated)

    def _record(
        self, tx: Transaction, source: SourceRecord, found: Discovery, now: int
    ) -> tuple[int, int]:
        watched = {w.url: w for w in tx.watches(urls=[e.link for e in found.entries])}
        added = redated = 0
        for entry in found.entries:
            watch = watched.get(entry.link)
            if watch is None:
                new, created = tx.add_watch(
                    entry.link, site=urlsplit(entry.link).hostname or "", tags=source.tags,
                    now_ms=now,
                )  # fmt: skip
                meta = feedmeta.new_meta(entry, source.url, found.kind, now)
                tx.attach_watch(new.id, source.id, meta)
                added += created
                continue
            if watch.state == WatchState.REMOVED or watch.source_id not in (None, source.id):
                continue  # the user's decision, or another source's article
            meta, moved = feedmeta.merged(watch.source_meta, entry, source.url, found.kind, now)
            if moved or watch.source_id is None or meta != watch.source_meta:
                tx.attach_watch(watch.id, source.id, meta, due_at=now if moved else None)
            redated += moved
        return added, redated

    def _release(
        self,
        tx: Transaction,
        source: SourceRecord,
        fetched: FetchResult,
        now: int,
        *,
        kind: str | None,
    ) -> None:
        held = tx.release_source(
            source.id, self.worker, checked_at=now,
            next_check_at=schedule.next_check_at(now, source.interval_s), kind=kind,
            etag=fetched.etag, last_modified=fetched.last_modified,
        )  # fmt: skip
        if not held:
            raise _LeaseLost(source.url)

    async def _failed(self, source: SourceRecord, now: int, reason: str) -> PollResult:
        """One log line, the reason kept, a back-off from the source's interval."""
        failures = source.failure_count + 1
        wait = schedule.backoff_s(self.policy, failures, source.interval_s)
        log.warning(
            "source %s failed (%d in a row, next try in %.0fs): %s",
            source.url, failures, wait, reason,
        )  # fmt: skip
        try:
            await asyncio.to_thread(
                self.store.release_source, source.id, self.worker, checked_at=now,
                next_check_at=schedule.next_check_at(now, wait), failure_count=failures,
                error=reason,
            )  # fmt: skip
        except WatcherError as exc:
            log.error("cannot record the failed poll of %s: %s", source.url, exc)
        return PollResult(source.url, source.kind, error=reason)
